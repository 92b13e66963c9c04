/* ergo.c - `axbench ergo`: its options, and the order of its jobs (ergo/):
 * the ergonomics table of the ax version of each scenario against its
 * native versions (code metrics from the sources, heap allocations per
 * operation counted at run time) and, with --measure, the cost of the
 * abstraction (ax runtime against native version, tcp_echo throughput and
 * p99 in one interleaved run); then the table and the JSON file.
 * Definitions: docs/ergonomics.md. */
#include "commands.h"
#include "ergo.h"
#include "proc.h"
#include "results.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERGO_SCHEMA_VERSION 1

/* Whether this binary is built with AddressSanitizer, which must be the
 * first library loaded and so cannot run under the LD_PRELOAD counter. */
#if defined(__SANITIZE_ADDRESS__)
static const bool asan_build = true;
#else
static const bool asan_build = false;
#endif

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void ergo_usage(void)
{
	printf("usage: axbench ergo [options]\n"
	       "  --json FILE          result file (default results/ergo-<time>.json)\n"
	       "  --measure            also measure the cost of the abstraction: ax\n"
	       "                       runtime against native version, tcp_echo, one run\n"
	       "  --profile quick|full that run's phases: quick 1 s x 3 reps (default),\n"
	       "                       full 2 s x 5 reps\n"
	       "  --reps N             its repetitions instead\n"
	       "  --connections N      its connections (default 64)\n"
	       "  --no-alloc           skip the allocation-counting runs\n"
	       "  --src DIR            source tree (default: found from the build)\n"
	       "  --alloc-lib FILE     the LD_PRELOAD counter (default: beside axbench)\n"
	       "  -h, --help           this help\n"
	       "exit status: 0 done, 1 a measurement failed, 2 bad input.\n"
	       "see docs/ergonomics.md\n");
}

/* The directory of this executable, with a trailing slash. */
static void exe_dir(char *buf, size_t n)
{
	ssize_t k = readlink("/proc/self/exe", buf, n - 1);
	buf[k > 0 ? k : 0] = 0;
	char *slash = strrchr(buf, '/');
	if (slash)
		slash[1] = 0;
}

static bool is_source_tree(const char *dir)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof p, "%s/scenarios/tcp_echo.c", dir);
	return access(p, R_OK) == 0;
}

/* The source tree this binary was built from, when the build says. */
#ifdef AX_SOURCE_DIR
static const char build_source_dir[] = AX_SOURCE_DIR;
#else
static const char build_source_dir[] = "";
#endif

/* The source tree: --src, $AXBENCH_SRC, the one this binary was built
 * from (the build's definition, else the CMake cache beside the binary),
 * or the working directory. */
static void find_source(struct axb_ergo *E)
{
	if (E->src) {
		if (!is_source_tree(E->src))
			axb_bad_input("--src %s: no scenarios/tcp_echo.c there", E->src);
		return;
	}
	const char *env = getenv("AXBENCH_SRC");
	if (env && is_source_tree(env)) {
		E->src = env;
		return;
	}
	if (build_source_dir[0] && is_source_tree(build_source_dir)) {
		E->src = build_source_dir;
		return;
	}
	char cache[PATH_MAX + 32];
	exe_dir(cache, PATH_MAX);
	strcat(cache, "CMakeCache.txt");
	FILE *f = fopen(cache, "r");
	char line[PATH_MAX + 64];
	while (f && fgets(line, sizeof line, f)) {
		const char *key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
		if (strncmp(line, key, strlen(key)))
			continue;
		size_t n = strcspn(line + strlen(key), "\r\n");
		if (n >= sizeof E->src_buf)
			break;
		memcpy(E->src_buf, line + strlen(key), n);
		E->src_buf[n] = 0;
		if (is_source_tree(E->src_buf))
			E->src = E->src_buf;
		break;
	}
	if (f)
		fclose(f);
	if (!E->src && is_source_tree("."))
		E->src = ".";
	if (!E->src)
		axb_bad_input("cannot find the source tree (run from it, or give --src DIR)");
}

static void parse_opts(struct axb_ergo *E, int argc, char **argv)
{
	enum { O_JSON = 256, O_MEASURE, O_PROFILE, O_REPS, O_CONNS, O_NOALLOC,
	       O_SRC, O_LIB, O_HELP };
	static const struct option lo[] = {
		{"json", required_argument, NULL, O_JSON},
		{"measure", no_argument, NULL, O_MEASURE},
		{"profile", required_argument, NULL, O_PROFILE},
		{"reps", required_argument, NULL, O_REPS},
		{"connections", required_argument, NULL, O_CONNS},
		{"no-alloc", no_argument, NULL, O_NOALLOC},
		{"src", required_argument, NULL, O_SRC},
		{"alloc-lib", required_argument, NULL, O_LIB},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	char *end;
	long v;
	int c;

	E->profile = "quick";
	E->connections = 64;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case O_JSON: E->json_path = optarg; break;
		case O_MEASURE: E->measure = true; break;
		case O_PROFILE:
			if (strcmp(optarg, "quick") && strcmp(optarg, "full"))
				axb_bad_input("--profile must be quick or full, not '%s'", optarg);
			E->profile = optarg;
			break;
		case O_REPS:
		case O_CONNS:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 100000)
				axb_bad_input("malformed %s '%s'",
					      c == O_REPS ? "--reps" : "--connections", optarg);
			if (c == O_REPS)
				E->reps = (int)v;
			else
				E->connections = (int)v;
			break;
		case O_NOALLOC: E->no_alloc = true; break;
		case O_SRC: E->src = optarg; break;
		case O_LIB: E->alloc_lib = optarg; break;
		case 'h':
		case O_HELP: ergo_usage(); exit(0);
		case ':': axb_bad_input("option %s needs a value", argv[optind - 1]);
		default: axb_bad_input("unknown option '%s' (see axbench ergo --help)",
				       argv[optind - 1]);
		}
	}
	if (optind < argc)
		axb_bad_input("unexpected argument '%s'", argv[optind]);
}

static void resolve_json(struct axb_ergo *E)
{
	if (!E->json_path) {
		char when[64];
		axb_utc_iso(axb_wall_ns(), when, sizeof when);
		snprintf(E->json_buf, sizeof E->json_buf,
			 "results/ergo-%.4s%.2s%.2s-%.2s%.2s%.2s.json", when, when + 5,
			 when + 8, when + 11, when + 14, when + 17);
		if (mkdir("results", 0755) && errno != EEXIST)
			axb_bad_input("cannot create directory results: %s", strerror(errno));
		E->json_path = E->json_buf;
	}
	int err = axb_check_writable(E->json_path);
	if (err)
		axb_bad_input("cannot write %s: %s", E->json_path, strerror(-err));
}

static void resolve_alloc(struct axb_ergo *E, json_t *doc)
{
	const char *why = NULL;
	if (E->no_alloc) {
		why = "skipped (--no-alloc)";
	} else if (asan_build) {
		why = "not measured: this axbench is built with AddressSanitizer";
	} else {
		if (!E->alloc_lib)
			E->alloc_lib = getenv("AXBENCH_ALLOC_LIB");
		if (!E->alloc_lib) {
			exe_dir(E->lib_buf, sizeof E->lib_buf - sizeof AXB_ALLOC_LIB_NAME);
			strcat(E->lib_buf, AXB_ALLOC_LIB_NAME);
			E->alloc_lib = E->lib_buf;
		}
		if (access(E->alloc_lib, R_OK)) {
			snprintf(E->lib_why, sizeof E->lib_why,
				 "not measured: no counter library at %s (built by "
				 "bench/CMakeLists.txt)", E->alloc_lib);
			why = E->lib_why;
		}
	}
	json_object_set_new(doc, "allocs", json_pack("{s:b, s:s?, s:s?, s:s, s:s, s:s, s:i}",
		"measured", why == NULL, "reason", why, "library", why ? NULL : E->alloc_lib,
		"net_connections", AXB_ALLOC_CONNS, "net_warmup", AXB_ALLOC_WARMUP,
		"net_duration", AXB_ALLOC_DURATION, "timers_n", AXB_ALLOC_TIMERS));
	if (why) {
		E->no_alloc = true;
		axb_err("ergo: allocations %s", why);
	}
}

int axb_cmd_ergo(int argc, char **argv)
{
	struct axb_ergo E;
	memset(&E, 0, sizeof E);
	if (argc > 1 && !strcmp(argv[1], "__local"))
		return axb_ergo_local(argc - 1, argv + 1);
	parse_opts(&E, argc, argv);
	find_source(&E);
	resolve_json(&E);

	int cpus[2];
	int ncpu = axb_allowed_cpus(cpus, 2);
	E.server_cpu = ncpu > 0 ? cpus[0] : 0;
	E.load_cpu = ncpu > 1 ? cpus[1] : E.server_cpu;
	if (axb_proc_init())
		axb_bad_input("cannot install signal handlers");
	axb_ergo_alloc_init();
	axb_raise_nofile();

	char when[64];
	axb_utc_iso(axb_wall_ns(), when, sizeof when);
	json_t *doc = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}",
		"schema", "axbench-ergo", "schema_version", ERGO_SCHEMA_VERSION,
		"generator", "axbench " AXB_VERSION, "generated_utc", when,
		"source_dir", E.src, "definitions", "docs/ergonomics.md");
	json_t *rows = json_array();
	for (size_t s = 0; s < axb_ergo_nscenarios; s++) {
		json_array_append_new(rows, axb_ergo_static_row(&E, &axb_ergo_scenarios[s], NULL));
		for (size_t k = 0; k < axb_ergo_nengines; k++)
			json_array_append_new(rows, axb_ergo_static_row(&E, &axb_ergo_scenarios[s], &axb_ergo_engines[k]));
	}
	resolve_alloc(&E, doc);
	if (!E.no_alloc) {
		fprintf(stderr, "axbench ergo: counting allocations (%zu runs) ",
			json_array_size(rows));
		axb_ergo_alloc_rows(&E, rows);
	}
	json_object_set_new(doc, "rows", rows);
	json_t *run = json_null();
	json_t *cost = E.measure ? axb_ergo_measure(&E, &run) : json_null();
	json_object_set_new(doc, "abstraction_cost", cost);
	json_object_set_new(doc, "abstraction_cost_run", run);
	static struct axb_pin pin;
	pin.mode = E.server_cpu != E.load_cpu ? "split" : "same";
	pin.server_cpu = E.server_cpu;
	pin.load_cpu = E.load_cpu;
	json_object_set_new(doc, "environment", axb_environment(&pin));

	axb_ergo_print_table(rows, cost, run);
	int rc = 0;
	char *txt = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
	if (!txt || axb_write_atomic(E.json_path, txt, strlen(txt))) {
		axb_err("cannot write %s", E.json_path);
		rc = 1;
	} else {
		fprintf(stderr, "axbench ergo: results in %s\n", E.json_path);
	}
	free(txt);
	json_decref(doc);
	return rc;
}
