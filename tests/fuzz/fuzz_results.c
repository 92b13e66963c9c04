/*
 * fuzz_results.c - libFuzzer target for the result-file reader, which is
 * Python (reports/axreports/results.py). The target embeds CPython, writes
 * each input to a file and calls tests/fuzz/results_target.py's run(path):
 * load_results and every accessor compare and report use. InputError is
 * the reader's one allowed failure; any other exception prints its
 * traceback and aborts, which libFuzzer records as a crash (with the input
 * saved). Hangs and unbounded memory are caught by -timeout and
 * -rss_limit_mb.
 *
 * Coverage: libFuzzer only sees instrumented C, and CPython is not
 * instrumented, so a C-level trace function (PyEval_SetTrace) turns every
 * Python line executed into an edge (previous line, this line) counted in
 * libFuzzer's extra-counters section. The fuzzer is thereby guided by the
 * Python code paths of the reader (and of json's Python layer).
 *
 * AXF_PY_DIRS (compile-time) lists the folders put first on sys.path:
 * reports/ and tests/fuzz/.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AXF_COUNTERS (1u << 16)

/* libFuzzer reads every byte of this section as an 8-bit hit counter. */
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t axf_counters[AXF_COUNTERS];

static uintptr_t axf_prev;        /* the previous line's location hash */
static PyObject *axf_run;         /* results_target.run */
static PyObject *axf_input_error; /* axreports.util.InputError */
static char axf_path[256];        /* the file each input is written to */

/* Called by the interpreter for every line (and call/return); a location
 * is the code object and the bytecode offset of the line's start. */
static int axf_trace(PyObject *obj, PyFrameObject *frame, int what,
		     PyObject *arg)
{
	(void)obj;
	(void)arg;
	if (what != PyTrace_LINE && what != PyTrace_CALL &&
	    what != PyTrace_EXCEPTION)
		return 0;
	PyCodeObject *code = PyFrame_GetCode(frame);
	uintptr_t loc = (uintptr_t)code * 31u + (uintptr_t)PyFrame_GetLasti(frame) * 2654435761u +
			(uintptr_t)what;
	Py_DECREF(code);
	loc ^= loc >> 17;
	axf_counters[(loc ^ axf_prev) % AXF_COUNTERS]++;
	axf_prev = loc >> 1;
	return 0;
}

static void axf_die(const char *what)
{
	fprintf(stderr, "fuzz_results: %s\n", what);
	if (PyErr_Occurred())
		PyErr_Print();
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	PyConfig config;
	PyConfig_InitIsolatedConfig(&config);
	config.install_signal_handlers = 0; /* libFuzzer owns SIGINT, SIGSEGV */
	config.write_bytecode = 0;          /* no __pycache__ in the source tree */
	PyStatus st = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(st))
		Py_ExitStatusException(st);

	PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
	const char *dirs = AXF_PY_DIRS;
	for (const char *p = dirs; *p;) {
		const char *e = strchr(p, ':');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		PyObject *d = PyUnicode_FromStringAndSize(p, (Py_ssize_t)n);
		if (!d || PyList_Insert(sys_path, 0, d) < 0)
			axf_die("cannot set sys.path");
		Py_DECREF(d);
		p += n + (e ? 1 : 0);
	}
	PyObject *mod = PyImport_ImportModule("results_target");
	if (!mod)
		axf_die("cannot import results_target (tests/fuzz)");
	axf_run = PyObject_GetAttrString(mod, "run");
	axf_input_error = PyObject_GetAttrString(mod, "InputError");
	Py_DECREF(mod);
	if (!axf_run || !axf_input_error)
		axf_die("results_target has no run or InputError");

	const char *tmp = getenv("TMPDIR");
	snprintf(axf_path, sizeof axf_path, "%s/axfuzz-results.%d.json",
		 tmp && *tmp ? tmp : "/tmp", (int)getpid());
	PyEval_SetTrace(axf_trace, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = open(axf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		axf_die("cannot create the input file");
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			axf_die("cannot write the input file");
		}
		off += (size_t)w;
	}
	close(fd);

	axf_prev = 0;
	PyObject *r = PyObject_CallFunction(axf_run, "s", axf_path);
	if (r) {
		Py_DECREF(r);
	} else if (PyErr_ExceptionMatches(axf_input_error)) {
		PyErr_Clear();
	} else {
		/* the contract is broken: show the exception, then crash so
		 * libFuzzer saves the input */
		fprintf(stderr, "fuzz_results: load_results raised something other "
			"than InputError on a %zu-byte input:\n", size);
		PyErr_Print();
		unlink(axf_path);
		abort();
	}
	return 0;
}
