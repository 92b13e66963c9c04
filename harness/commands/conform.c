/* conform.c - `axbench conform`, which runs the conformance cases on the
 * selected runtimes, each case in a fresh child process with a timeout, and
 * reports a matrix of cases x runtimes and a JSON file; and `axbench
 * __case`, the hidden child side that runs one case on one runtime.
 *
 * The child protocol: the parent starts /proc/self/exe __case ID --runtime
 * R --result-fd 3 through the harness's one launcher (proc.h: its own
 * process group, PDEATHSIG, stdout and stderr in a memory file, descriptor
 * 3 a pipe). The child writes one line on the pipe ("PASS", "FAIL
 * <detail>" or "UNSUPPORTED <reason>") and exits 0, 1 or 77. The parent
 * maps that to an outcome; a child killed by a signal is a CRASH, one still
 * running at its timeout is a TIMEOUT (its whole process group is killed).
 */
#include "commands.h"
#include "proc.h"
#include "results.h"

#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONF_SCHEMA_VERSION 1
#define CONF_MAX_RT 16
#define CONF_OUT_TAIL 8192 /* bytes of a child's output kept */
#define CONF_EXIT_UNSUP 77

/* O_ERROR: the test environment kept the case from running (a resource
 * limit such as RLIMIT_NOFILE, a child that could not be started); it says
 * nothing about the runtime, so it is not a FAIL. */
enum conf_outcome { O_PENDING, O_PASS, O_FAIL, O_UNSUP, O_TIMEOUT, O_CRASH,
		    O_ERROR };

static const char *const conf_outcome_name[] = {
	[O_PENDING] = "PENDING", [O_PASS] = "PASS", [O_FAIL] = "FAIL",
	[O_UNSUP] = "UNSUPPORTED", [O_TIMEOUT] = "TIMEOUT", [O_CRASH] = "CRASH",
	[O_ERROR] = "ERROR",
};

/* Short forms for the terminal matrix. */
static const char *const conf_outcome_cell[] = {
	[O_PENDING] = "?", [O_PASS] = "PASS", [O_FAIL] = "FAIL",
	[O_UNSUP] = "UNSUP", [O_TIMEOUT] = "TIME", [O_CRASH] = "CRASH",
	[O_ERROR] = "ERROR",
};

struct conf_rt {
	const char *name;
	bool available;
	char why[256];
	uint32_t features;
	double seconds;      /* wall time spent in its cases */
	unsigned count[O_ERROR + 1];
};

struct conf_job {
	const struct conf_case *c;
	size_t rt;
	enum conf_outcome out;
	char detail[1024];
	char sig[32];        /* CRASH: the signal's name */
	char *output;        /* non-PASS: tail of the child's stdout+stderr */
	double seconds;
	/* while running */
	struct axb_child ch;
	int64_t start, deadline;
	bool running;
};

/* ------------------------------------------------------------------ */
/* runtimes and features                                               */
/* ------------------------------------------------------------------ */

/* Whether runtime `name` can run here, as every axbench command sees it
 * (including the AXBENCH_TEST_UNAVAILABLE hook, docs/harness.md). A
 * variant's engine flags are tried (a runtime created and destroyed) only
 * when try_flags: the parent does it once; a case's child must not, as
 * that runtime's leftovers (an SQPOLL thread ending) would blur the case's
 * own thread and descriptor counts. */
static bool conf_rt_available(const char *name, bool try_flags, char *why,
			      size_t n)
{
	struct axb_impl im;
	if (axb_impl_find(name, &im) < 0 || im.kind != AXB_IMPL_AX) {
		snprintf(why, n, "no runtime named '%s' is compiled in", name);
		return false;
	}
	if (!try_flags)
		im.engine_flags = NULL;
	return axb_impl_available(&im, why, n);
}

/* The runtime's feature bits, minus those named in the test-only
 * AXBENCH_TEST_CONFORM_NO_FEATURES (comma-separated feature names), which
 * exercises the UNSUPPORTED path. */
static uint32_t conf_rt_features(const char *name)
{
	struct axb_impl im;
	uint32_t f = axb_impl_find(name, &im) == 0 && im.driver
		     ? ax_driver_features(im.driver) : 0;
	const char *mask = getenv("AXBENCH_TEST_CONFORM_NO_FEATURES");
	char buf[256], *save = NULL;
	if (!mask || !*mask)
		return f;
	snprintf(buf, sizeof buf, "%s", mask);
	for (char *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		for (unsigned b = 0; b < 32; b++) {
			const char *fn = ax_feature_name(1u << b);
			if (fn && !strcmp(fn, tok))
				f &= ~(1u << b);
		}
	return f;
}

/* Names of the feature bits of `need` missing from `have`, comma
 * separated; "" when none is missing. */
static const char *conf_missing(uint32_t need, uint32_t have, char *buf,
				size_t n)
{
	axb_features_str(need & ~have, buf, n);
	return buf;
}

static json_t *conf_features_json(uint32_t feats)
{
	json_t *a = json_array();
	for (unsigned b = 0; b < 32; b++)
		if (feats & (1u << b)) {
			const char *name = ax_feature_name(1u << b);
			json_array_append_new(a, name ? json_string(name)
						      : json_integer(b));
		}
	return a;
}

/* ------------------------------------------------------------------ */
/* the child: axbench __case ID --runtime R [--result-fd N]            */
/* ------------------------------------------------------------------ */

static int conf_verdict(int fd, const char *line)
{
	if (axb_write_all(fd, line, strlen(line)) < 0)
		return 1;
	return 0;
}

int axb_cmd_case(int argc, char **argv)
{
	static const struct option lo[] = {
		{"runtime", required_argument, NULL, 'r'},
		{"result-fd", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	const char *runtime = NULL, *id = NULL;
	int fd = 1, opt;
	char line[600], why[256], miss[256];

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'r': runtime = optarg; break;
		case 'f': fd = atoi(optarg); break;
		default:
			axb_bad_input("__case: unknown option '%s'",
				      argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		axb_bad_input("__case: usage: __case ID --runtime R [--result-fd N]");
	id = argv[optind];
	const struct conf_case *c = conf_case_find(id);
	if (!c)
		axb_bad_input("__case: unknown case '%s'", id);
	if (!runtime)
		axb_bad_input("__case: --runtime is required");
	if (!conf_rt_available(runtime, false, why, sizeof why)) {
		snprintf(line, sizeof line, "UNSUPPORTED runtime unavailable: %s\n",
			 why);
		conf_verdict(fd, line);
		return CONF_EXIT_UNSUP;
	}
	conf_missing(c->features, conf_rt_features(runtime), miss, sizeof miss);
	if (miss[0]) {
		snprintf(line, sizeof line, "UNSUPPORTED lacks feature(s): %s\n",
			 miss);
		conf_verdict(fd, line);
		return CONF_EXIT_UNSUP;
	}
	/* a SIGPIPE that escapes the runtime must kill the child visibly */
	signal(SIGPIPE, SIG_DFL);
	struct axb_impl im;
	axb_impl_find(runtime, &im); /* found: conf_rt_available */
	conf_child_init(im.driver, im.engine_flags, fd);
	c->run();
	return conf_child_finish();
}

/* ------------------------------------------------------------------ */
/* the parent: starting and reaping children                           */
/* ------------------------------------------------------------------ */

static void conf_job_start(struct conf_job *j, const struct conf_rt *rt,
			   double timeout_override)
{
	char *args[] = {
		"axbench", "__case", (char *)j->c->id, "--runtime",
		(char *)rt->name, "--result-fd", "3", NULL,
	};
	struct axb_spawn sp = {
		.role = "case", .argv = args, .result_pipe = true,
		.out = AXB_SINK_CAPTURE, .err = AXB_SINK_CAPTURE,
	};
	j->start = axb_mono_ns();
	double tmo = timeout_override > 0 ? timeout_override : j->c->timeout_s;
	j->deadline = j->start + (int64_t)(tmo * 1e9);
	int err = axb_child_start(&j->ch, &sp);
	if (err) {
		j->out = O_ERROR;
		snprintf(j->detail, sizeof j->detail,
			 "harness: cannot start the child: %s", strerror(-err));
		return;
	}
	/* the verdict is read once the child has ended; a grandchild that
	 * still holds the pipe must not block that read */
	fcntl(j->ch.res_fd, F_SETFL, O_NONBLOCK);
	j->running = true;
}

/* The last CONF_OUT_TAIL bytes the child wrote to stdout/stderr, made
 * fit for a JSON string. */
static char *conf_output_tail(const struct axb_child *ch)
{
	char *buf = axb_child_stderr(ch, CONF_OUT_TAIL);
	if (!buf || !buf[0]) {
		free(buf);
		return NULL;
	}
	/* JSON strings must be UTF-8: replace stray bytes */
	for (unsigned char *q = (unsigned char *)buf; *q; q++)
		if (*q >= 0x80 || (*q < 0x20 && *q != '\n' && *q != '\t'))
			*q = '?';
	return buf;
}

/* The line of s that says most about a death, into buf: the first
 * sanitizer error line if there is one, else the last non-empty line. */
static void conf_last_line(const char *s, char *buf, size_t n)
{
	static const char *const marks[] = {
		"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
		"WARNING: ThreadSanitizer",
	};
	buf[0] = 0;
	if (!s)
		return;
	for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++) {
		const char *m = strstr(s, marks[k]);
		if (m) {
			const char *ls = m, *le = strchr(m, '\n');
			while (ls > s && ls[-1] != '\n')
				ls--;
			snprintf(buf, n, "%.*s", (int)(le ? le - ls : (long)strlen(ls)), ls);
			return;
		}
	}
	const char *end = s + strlen(s);
	while (end > s && end[-1] == '\n')
		end--;
	const char *start = end;
	while (start > s && start[-1] != '\n')
		start--;
	snprintf(buf, n, "%.*s", (int)(end - start), start);
}

static void conf_job_finish(struct conf_job *j, int status, bool timed_out)
{
	char res[1024] = "";
	size_t len = 0;
	ssize_t r;
	while (len + 1 < sizeof res &&
	       (r = read(j->ch.res_fd, res + len, sizeof res - 1 - len)) > 0)
		len += (size_t)r;
	res[len] = 0;
	char *nl = strchr(res, '\n');
	if (nl)
		*nl = 0;
	/* leave nothing behind: grandchildren included */
	kill(-j->ch.pid, SIGKILL);
	j->running = false;
	j->seconds = (double)(axb_mono_ns() - j->start) / 1e9;

	char *output = conf_output_tail(&j->ch);
	axb_child_free(&j->ch);
	char last[400];
	conf_last_line(output, last, sizeof last);

	bool pass = strcmp(res, "PASS") == 0;
	bool fail = strncmp(res, "FAIL ", 5) == 0;
	bool unsup = strncmp(res, "UNSUPPORTED ", 12) == 0;
	bool env = strncmp(res, "ERROR ", 6) == 0;
	if (timed_out) {
		j->out = O_TIMEOUT;
		snprintf(j->detail, sizeof j->detail,
			 "no verdict after %.1f s (process group killed)%s%.900s",
			 j->seconds, fail ? "; it had reported: " : "",
			 fail ? res + 5 : "");
	} else if (WIFSIGNALED(status)) {
		j->out = O_CRASH;
		axb_signal_name(WTERMSIG(status), j->sig, sizeof j->sig);
		snprintf(j->detail, sizeof j->detail, "killed by %s%s%s", j->sig,
			 last[0] ? "; output: " : "", last);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && pass) {
		j->out = O_PASS;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CONF_EXIT_UNSUP &&
		   unsup) {
		j->out = O_UNSUP;
		snprintf(j->detail, sizeof j->detail, "%.900s", res + 12);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CONF_EXIT_ENV &&
		   env) {
		j->out = O_ERROR;
		snprintf(j->detail, sizeof j->detail, "environment: %.900s", res + 6);
	} else if (fail) {
		j->out = O_FAIL;
		snprintf(j->detail, sizeof j->detail, "%.1000s", res + 5);
	} else {
		/* e.g. a sanitizer report, a leak found at exit, an exit()
		 * from inside the runtime */
		j->out = O_FAIL;
		snprintf(j->detail, sizeof j->detail,
			 "exited with status %d %s%s%s",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			 pass ? "after reporting PASS" : "without a verdict",
			 last[0] ? "; output: " : "", last);
	}
	if (j->out != O_PASS && j->out != O_UNSUP)
		j->output = output;
	else
		free(output);
}

/* Reap or time out running jobs. Returns how many ended. */
static int conf_reap(struct conf_job *jobs, size_t njobs)
{
	int ended = 0;
	int64_t now = axb_mono_ns();
	for (size_t i = 0; i < njobs; i++) {
		struct conf_job *j = &jobs[i];
		int st;
		if (!j->running)
			continue;
		pid_t w = waitpid(j->ch.pid, &st, WNOHANG);
		if (w == j->ch.pid) {
			conf_job_finish(j, st, false);
			ended++;
		} else if (now >= j->deadline || axb_proc_interrupted()) {
			kill(-j->ch.pid, SIGKILL);
			waitpid(j->ch.pid, &st, 0);
			conf_job_finish(j, st, true);
			if (now < j->deadline) {
				/* stopped by the interruption: no verdict */
				j->out = O_PENDING;
				free(j->output);
				j->output = NULL;
			}
			ended++;
		}
	}
	return ended;
}

/* ------------------------------------------------------------------ */
/* reporting                                                           */
/* ------------------------------------------------------------------ */

static void conf_print_matrix(const struct conf_job *jobs, size_t ncases,
			      const struct conf_case **cases, struct conf_rt *rts,
			      size_t nrt)
{
	size_t idw = 4;
	for (size_t i = 0; i < ncases; i++)
		if (strlen(cases[i]->id) > idw)
			idw = strlen(cases[i]->id);
	for (size_t r = 0; r < nrt; r++)
		if (!rts[r].available)
			printf("runtime %s: unavailable: %s\n", rts[r].name,
			       rts[r].why);
	printf("%-*s", (int)idw + 2, "case");
	for (size_t r = 0; r < nrt; r++)
		printf("  %-8s", rts[r].name);
	printf("\n");
	for (size_t i = 0; i < ncases; i++) {
		printf("%-*s", (int)idw + 2, cases[i]->id);
		for (size_t r = 0; r < nrt; r++) {
			const struct conf_job *j = &jobs[i * nrt + r];
			printf("  %-*s", (int)(strlen(rts[r].name) > 8
						 ? strlen(rts[r].name) : 8),
			       rts[r].available ? conf_outcome_cell[j->out] : "n/a");
		}
		printf("\n");
	}
	bool any = false;
	for (size_t k = 0; k < ncases * nrt; k++) {
		const struct conf_job *j = &jobs[k];
		if (!rts[j->rt].available || j->out == O_PASS || j->out == O_UNSUP)
			continue;
		if (!any)
			printf("\nnot passing:\n");
		any = true;
		printf("  %s on %s: %s: %s\n", j->c->id, rts[j->rt].name,
		       conf_outcome_name[j->out], j->detail);
	}
	printf("\n");
	for (size_t r = 0; r < nrt; r++) {
		if (!rts[r].available)
			continue;
		printf("%s: %u pass, %u fail, %u unsupported, %u timeout, %u crash",
		       rts[r].name, rts[r].count[O_PASS], rts[r].count[O_FAIL],
		       rts[r].count[O_UNSUP], rts[r].count[O_TIMEOUT],
		       rts[r].count[O_CRASH]);
		if (rts[r].count[O_ERROR])
			printf(", %u not run (environment)", rts[r].count[O_ERROR]);
		if (rts[r].count[O_PENDING])
			printf(", %u not run (interrupted)", rts[r].count[O_PENDING]);
		printf(" (%.1f s of case time)\n", rts[r].seconds);
	}
}

/* The matrix as JSON (docs/conformance.md) into root, which holds the
 * header every result file has (results.h), and root to path. Takes
 * root. */
static int conf_write_json(const char *path, json_t *root,
			   const struct conf_job *jobs, size_t ncases,
			   const struct conf_case **cases,
			   const struct conf_rt *rts, size_t nrt, unsigned njobs,
			   double timeout, bool ok, const char *status)
{
	/* generator.version since the common header; kept for older readers */
	json_object_set_new(root, "axbench_version", json_string(AXB_VERSION));
	json_object_set_new(root, "config", json_pack("{s:I, s:o}",
		"jobs", (json_int_t)njobs,
		"timeout_override_s", timeout > 0 ? json_real(timeout) : json_null()));

	json_t *jr = json_array();
	for (size_t r = 0; r < nrt; r++) {
		json_t *o = json_pack("{s:s, s:b, s:o, s:o}",
				      "name", rts[r].name,
				      "available", rts[r].available,
				      "reason", rts[r].available
					? json_null() : json_string(rts[r].why),
				      "features", conf_features_json(rts[r].features));
		struct axb_impl im;
		const char *sum = axb_impl_find(rts[r].name, &im) == 0 && im.driver
				  ? ax_driver_summary(im.driver) : NULL;
		json_object_set_new(o, "summary", sum ? json_string(sum) : json_null());
		json_array_append_new(jr, o);
	}
	json_object_set_new(root, "runtimes", jr);

	json_t *jc = json_array();
	for (size_t i = 0; i < ncases; i++)
		json_array_append_new(jc, json_pack(
			"{s:s, s:s, s:s, s:o, s:I, s:b}",
			"id", cases[i]->id,
			"requirement", cases[i]->requirement,
			"summary", cases[i]->summary,
			"features", conf_features_json(cases[i]->features),
			"timeout_s", (json_int_t)cases[i]->timeout_s,
			"serial", (cases[i]->flags & CONF_SERIAL) != 0));
	json_object_set_new(root, "cases", jc);

	json_t *res = json_object();
	json_t *tot = json_object();
	for (size_t r = 0; r < nrt; r++) {
		if (!rts[r].available)
			continue;
		json_t *per = json_object();
		for (size_t i = 0; i < ncases; i++) {
			const struct conf_job *j = &jobs[i * nrt + r];
			json_t *o = json_pack("{s:s, s:s, s:f}",
					      "outcome", conf_outcome_name[j->out],
					      "detail", j->detail,
					      "duration_s", j->seconds);
			if (j->out == O_CRASH)
				json_object_set_new(o, "signal", json_string(j->sig));
			if (j->output)
				json_object_set_new(o, "output", json_string(j->output));
			json_object_set_new(per, cases[i]->id, o);
		}
		json_object_set_new(res, rts[r].name, per);
		json_t *t = json_object();
		for (int k = O_PENDING; k <= O_ERROR; k++)
			json_object_set_new(t, conf_outcome_name[k],
					    json_integer(rts[r].count[k]));
		json_object_set_new(tot, rts[r].name, t);
	}
	json_object_set_new(root, "results", res);
	json_object_set_new(root, "totals", tot);
	json_object_set_new(root, "ok", json_boolean(ok));
	axb_doc_status(root, status);

	int err = axb_doc_write(path, root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	json_decref(root);
	return err;
}

/* ------------------------------------------------------------------ */
/* the command                                                         */
/* ------------------------------------------------------------------ */

static void conf_usage(void)
{
	printf("usage: axbench conform [--runtime R[,R...]|all]... [--case GLOB]...\n"
	       "                       [--json FILE] [--timeout S] [--jobs N]\n"
	       "                       [--list] [--verbose]\n"
	       "Runs the conformance cases (see docs/conformance.md) on each runtime,\n"
	       "each case in a fresh child process; prints a matrix of cases x runtimes.\n"
	       "A runtime may be a driver's shared object (--runtime ./libx.so).\n"
	       "Exit status: 0 all passed (or unsupported), 1 a case failed, timed out\n"
	       "or crashed, 2 bad input, 3 a case could not run in this environment\n"
	       "(ERROR: a resource limit), 5 the --json file could not be written,\n"
	       "128+N interrupted by signal N (the finished cases are kept).\n");
}

static double conf_parse_seconds(const char *v)
{
	char *end;
	errno = 0;
	double s = strtod(v, &end);
	if (errno || end == v || *end || !(s > 0) || s > 86400)
		axb_bad_input("conform: --timeout wants seconds in (0, 86400], got '%s'",
			      v);
	return s;
}

static void conf_list(void)
{
	char feats[256];
	for (size_t i = 0; i < conf_case_count(); i++) {
		const struct conf_case *c = conf_case_at(i);
		axb_features_str(c->features, feats, sizeof feats);
		printf("%-28s %s\n%-28s   requires: %s; features: %s\n", c->id,
		       c->summary, "", c->requirement, feats[0] ? feats : "-");
	}
}

int axb_cmd_conform(int argc, char **argv)
{
	static const struct option lo[] = {
		{"runtime", required_argument, NULL, 'r'},
		{"case", required_argument, NULL, 'c'},
		{"json", required_argument, NULL, 'o'},
		{"timeout", required_argument, NULL, 't'},
		{"jobs", required_argument, NULL, 'j'},
		{"list", no_argument, NULL, 'l'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct axb_rt_sel rsel, *sel = &rsel;
	bool verbose = false;
	const char *globs[64];
	size_t nglobs = 0;
	const char *json_path = NULL;
	double timeout = 0;
	unsigned njobs = 2;
	int opt;

	memset(sel, 0, sizeof *sel);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":vj:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'r':
			axb_runtimes_parse("conform", optarg,
					   AXB_RT_AX_ONLY | AXB_RT_REGISTRY_ORDER, sel);
			break;
		case 'c':
			if (nglobs == sizeof globs / sizeof globs[0])
				axb_bad_input("conform: too many --case options");
			globs[nglobs++] = optarg;
			break;
		case 'o': json_path = optarg; break;
		case 't': timeout = conf_parse_seconds(optarg); break;
		case 'j': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 64)
				axb_bad_input("conform: --jobs wants 1..64, got '%s'",
					      optarg);
			njobs = (unsigned)v;
			break;
		}
		case 'l': conf_list(); return 0;
		case 'v': verbose = true; break;
		case 'h': conf_usage(); return 0;
		case ':':
			axb_bad_input("conform: option %s needs a value",
				      argv[optind - 1]);
		default:
			axb_bad_input("conform: unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		axb_bad_input("conform: unexpected argument '%s'", argv[optind]);
	if (!sel->n)
		axb_runtimes_parse("conform", "all",
				   AXB_RT_AX_ONLY | AXB_RT_REGISTRY_ORDER, sel);
	if (json_path) {
		char why[512];
		if (axb_claim_output(json_path, why, sizeof why))
			axb_bad_input("conform: --json: %s", why);
	}

	/* the cases */
	size_t total = conf_case_count(), ncases = 0;
	const struct conf_case **cases = calloc(total ? total : 1, sizeof *cases);
	bool *glob_used = calloc(nglobs ? nglobs : 1, sizeof *glob_used);
	if (!cases || !glob_used)
		axb_bad_input("conform: out of memory");
	for (size_t i = 0; i < total; i++) {
		const struct conf_case *c = conf_case_at(i);
		bool take = nglobs == 0;
		for (size_t g = 0; g < nglobs; g++)
			if (fnmatch(globs[g], c->id, 0) == 0) {
				take = true;
				glob_used[g] = true;
			}
		if (take)
			cases[ncases++] = c;
	}
	for (size_t g = 0; g < nglobs; g++)
		if (!glob_used[g])
			axb_bad_input("conform: --case '%s' matches no case (see "
				      "axbench conform --list)", globs[g]);
	free(glob_used);

	/* the runtimes */
	struct conf_rt rts[CONF_MAX_RT];
	size_t nrt = 0;
	for (size_t i = 0; i < sel->n && i < CONF_MAX_RT; i++) {
		struct conf_rt *r = &rts[nrt++];
		memset(r, 0, sizeof *r);
		r->name = sel->impls[i].name;
		r->features = conf_rt_features(r->name);
		r->available = conf_rt_available(r->name, true, r->why, sizeof r->why);
	}

	/* one job per case and runtime, row-major as the matrix */
	size_t n = ncases * nrt;
	struct conf_job *jobs = calloc(n ? n : 1, sizeof *jobs);
	if (!jobs)
		axb_bad_input("conform: out of memory");
	for (size_t i = 0; i < ncases; i++)
		for (size_t r = 0; r < nrt; r++) {
			struct conf_job *j = &jobs[i * nrt + r];
			char miss[256];
			j->c = cases[i];
			j->rt = r;
			axb_child_none(&j->ch);
			if (!rts[r].available) {
				j->out = O_UNSUP;
				snprintf(j->detail, sizeof j->detail,
					 "runtime unavailable: %s", rts[r].why);
			} else if (conf_missing(cases[i]->features, rts[r].features,
						miss, sizeof miss)[0]) {
				/* the child would say the same; spare it */
				j->out = O_UNSUP;
				snprintf(j->detail, sizeof j->detail,
					 "lacks feature(s): %s", miss);
			}
		}

	if (axb_proc_init())
		axb_bad_input("conform: cannot install signal handlers");
	static struct axb_pin nopin = {.mode = "none", .server_cpu = -1, .load_cpu = -1};
	json_t *root = json_path ? axb_doc_header("axbench-conform", CONF_SCHEMA_VERSION,
						  axb_command_json(argc, argv),
						  axb_environment(&nopin))
				 : NULL;

	size_t done = 0, running = 0;
	bool serial_running = false, tty = isatty(2);
	for (size_t k = 0; k < n; k++)
		done += jobs[k].out != O_PENDING;
	size_t next = 0;
	while ((done < n || running) && !axb_proc_interrupted()) {
		/* start what may start: a serial case runs alone */
		for (size_t k = next; k < n && running < njobs && !serial_running;
		     k++) {
			struct conf_job *j = &jobs[k];
			if (j->out != O_PENDING || j->running)
				continue;
			bool serial = j->c->flags & CONF_SERIAL;
			if (serial && running > 0)
				break; /* keep the order: wait until idle */
			conf_job_start(j, &rts[j->rt], timeout);
			if (!j->running) {
				done++; /* could not start: already a FAIL */
				continue;
			}
			running++;
			serial_running = serial;
		}
		while (next < n && (jobs[next].out != O_PENDING || jobs[next].running))
			next++;
		struct timespec ts = {0, 2 * 1000000};
		nanosleep(&ts, NULL);
		for (size_t k = 0; k < n; k++) {
			struct conf_job *j = &jobs[k];
			if (!j->running)
				continue;
			if (conf_reap(j, 1) == 0)
				continue;
			running--;
			done++;
			if (j->c->flags & CONF_SERIAL)
				serial_running = false;
			if (verbose)
				printf("%-11s %-9s %-28s %6.2fs %s\n",
				       conf_outcome_name[j->out], rts[j->rt].name,
				       j->c->id, j->seconds, j->detail);
			if (tty && !verbose)
				fprintf(stderr, "\r\033[K[%zu/%zu] %s on %s: %s", done, n,
					j->c->id, rts[j->rt].name,
					conf_outcome_name[j->out]);
		}
	}
	if (tty && !verbose)
		fprintf(stderr, "\r\033[K");
	int sig = axb_proc_interrupted();
	if (sig) {
		/* the cases still running are stopped and stay PENDING; the
		 * finished ones are kept, as run keeps finished repetitions */
		for (size_t k = 0; k < n; k++)
			if (jobs[k].running)
				conf_reap(&jobs[k], 1);
		for (size_t k = 0; k < n; k++)
			if (jobs[k].out == O_PENDING)
				snprintf(jobs[k].detail, sizeof jobs[k].detail,
					 "not run: interrupted");
		axb_err("conform: interrupted");
	}

	bool ok = true, env = false;
	for (size_t k = 0; k < n; k++) {
		struct conf_job *j = &jobs[k];
		if (!rts[j->rt].available)
			continue;
		rts[j->rt].count[j->out]++;
		rts[j->rt].seconds += j->seconds;
		if (j->out == O_FAIL || j->out == O_TIMEOUT || j->out == O_CRASH)
			ok = false;
		env |= j->out == O_ERROR;
	}
	conf_print_matrix(jobs, ncases, cases, rts, nrt);
	int rc = !ok ? AXB_EXIT_FAILED : env ? AXB_EXIT_INCONCLUSIVE : AXB_EXIT_OK;
	if (sig)
		rc = 128 + sig;
	if (json_path) {
		int e = conf_write_json(json_path, root, jobs, ncases, cases, rts,
					nrt, njobs, timeout, ok,
					sig ? "interrupted" : "complete");
		if (e < 0) {
			axb_err("conform: results NOT written to %s: %s", json_path,
				strerror(-e));
			rc = AXB_EXIT_WRITE;
		} else if (sig) {
			axb_err("conform: the finished cases are in %s (interrupted)",
				json_path);
		}
	}
	for (size_t k = 0; k < n; k++)
		free(jobs[k].output);
	free(jobs);
	free(cases);
	return rc;
}
