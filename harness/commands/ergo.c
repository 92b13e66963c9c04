/* ergo.c - `axbench ergo`: the ergonomics table of the ax version of each
 * scenario against its native versions (code metrics from the sources,
 * heap allocations per operation counted at run time) and, with --measure,
 * the cost of the abstraction (ax runtime against native version, tcp_echo
 * throughput and p99 in one interleaved run). Definitions:
 * docs/ergonomics.md. */
#include "commands.h"
#include "proc.h"
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERGO_SCHEMA_VERSION 1
#define ALLOC_LIB_NAME "axb_alloc_count.so"
/* Phases of the allocation-counting runs: short, the count is exact; the
 * warm-up is long enough for the servers to finish setting up (accepting,
 * connecting backends) before the count starts, even on a busy machine. */
#define ALLOC_CONNS "16"
#define ALLOC_WARMUP "800ms"
#define ALLOC_DURATION "500ms"
#define ALLOC_TIMERS 20000
#define CHILD_TIMEOUT_NS (60 * INT64_C(1000000000))

/* Whether this binary is built with AddressSanitizer, which must be the
 * first library loaded and so cannot run under the LD_PRELOAD counter. */
#if defined(__SANITIZE_ADDRESS__)
static const bool asan_build = true;
#else
static const bool asan_build = false;
#endif

/* ------------------------------------------------------------------ */
/* What is measured: scenarios, engines, and where their sources are   */
/* ------------------------------------------------------------------ */

/* The engines, in the order of the table; the native version of engine E
 * is the reference "native-E", its sources references/native/<stem>_*.c. */
struct engine {
	const char *name;
	const char *stem;
	const char *const *prefixes; /* its API identifiers start so */
	const char *const *exact;    /* or are exactly these */
};

static const char *const ax_prefixes[] = {"ax_", "AX_", NULL};
static const char *const ax_exact[] = {NULL};
static const char *const epoll_prefixes[] = {"epoll_", "EPOLL", NULL};
static const char *const epoll_exact[] = {NULL};
static const char *const uv_prefixes[] = {"uv_", "UV_", NULL};
static const char *const uv_exact[] = {NULL};
static const char *const ev_prefixes[] = {
	"event_", "evutil_", "bufferevent_", "evbuffer_", "evconnlistener_",
	"evtimer_", "evthread_", "EV_", "EVENT_", "BEV_", "LEV_", NULL,
};
static const char *const ev_exact[] = {"event", NULL};
static const char *const uring_prefixes[] = {"io_uring_", "IORING_", NULL};
static const char *const uring_exact[] = {"io_uring", NULL};

/* The scenario API (scenarios/include/scenario.h) is not an engine API. */
static const char *const harness_prefixes[] = {"axs_", "AXS_", NULL};

static const struct engine engines[] = {
	{"epoll", "epoll", epoll_prefixes, epoll_exact},
	{"libuv", "libuv", uv_prefixes, uv_exact},
	{"libevent", "libevent", ev_prefixes, ev_exact},
	{"io_uring", "uring", uring_prefixes, uring_exact},
};
#define NENGINES (sizeof engines / sizeof engines[0])

static const struct engine ax_engine = {"ax", NULL, ax_prefixes, ax_exact};

/* A part of a source file: from the first line containing `from` (NULL:
 * the first line) to the line before the next one containing `to` (NULL:
 * the last line). */
struct region {
	const char *from, *to;
};

/* One source of an implementation: a file and the parts of it that count. */
struct source {
	const char *path;
	struct region regions[2];     /* {NULL, NULL} after the first: none */
};

#define MAX_SOURCES 3

/* A scenario: the sources of its ax version, and what allocs/op divides
 * by. The ax version is the scenario's file up to its parameter table (the
 * registration the natives do not have either), plus the shared server
 * helpers it calls (scenarios/serve_util.c, and their structures in
 * serve_util.h), since the natives write their accept loops and connection
 * lists out; for timers, only part 1, arm and fire, which is what the
 * natives implement. */
struct ergo_scenario {
	const char *name;
	const char *stem;             /* references/native/<engine>_<stem>.c */
	struct source ax[MAX_SOURCES];
	const char *op;
};

#define SERVE_UTIL_SOURCES                                                     \
	{"scenarios/serve_util.c", {{NULL, NULL}, {NULL, NULL}}},              \
	{"scenarios/serve_util.h", {{"struct axs_conn {", "/* Link c"},      \
				    {"struct axs_start {", "/* Accept on lfd"}}}

static const struct ergo_scenario scenarios[] = {
	{"tcp_echo", "echo",
	 {{"scenarios/tcp_echo.c", {{NULL, "static const struct axs_param_def"}, {NULL, NULL}}},
	  SERVE_UTIL_SOURCES},
	 "echoed message"},
	{"timers", "timers",
	 {{"scenarios/timers.c", {{NULL, "static intptr_t tm_busy"},
				  {"static intptr_t tm_run", "/* 2. "}}}},
	 "timer armed and fired"},
	{"rpc_fanout", "rpc",
	 {{"scenarios/rpc_fanout.c", {{NULL, "static const struct axs_param_def"}, {NULL, NULL}}},
	  SERVE_UTIL_SOURCES},
	 "front request"},
};
#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

struct ergo {
	const char *json_path;
	char json_buf[512];
	const char *src;
	char src_buf[PATH_MAX];
	const char *alloc_lib;
	char lib_buf[PATH_MAX];
	char lib_why[PATH_MAX + 128];
	bool measure, no_alloc;
	const char *profile;
	int reps;
	int connections;
	int server_cpu, load_cpu;
	bool pinned_split;
};

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
static void find_source(struct ergo *E)
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

static void parse_opts(struct ergo *E, int argc, char **argv)
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
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
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
		case O_HELP: ergo_usage(); exit(0);
		case ':': axb_bad_input("option %s needs a value", argv[optind - 1]);
		default: axb_bad_input("unknown option '%s' (see axbench ergo --help)",
				       argv[optind - 1]);
		}
	}
	if (optind < argc)
		axb_bad_input("unexpected argument '%s'", argv[optind]);
}

/* ------------------------------------------------------------------ */
/* Source analysis                                                     */
/* ------------------------------------------------------------------ */

static char *read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 8192, n = 0;
	char *s = malloc(cap);
	size_t k;
	while (s && (k = fread(s + n, 1, cap - n - 1, f)) > 0) {
		n += k;
		if (cap - n < 4096) {
			char *t = realloc(s, cap *= 2);
			if (!t) {
				free(s);
				s = NULL;
			}
			s = t;
		}
	}
	fclose(f);
	if (s) {
		s[n] = 0;
		*len = n;
	}
	return s;
}

/* A copy of C source s with comments blanked and string and character
 * literals emptied (their quotes kept), newlines preserved, so that
 * offsets and line numbers stay those of s. */
static char *strip_c(const char *s, size_t n)
{
	char *o = malloc(n + 1);
	if (!o)
		return NULL;
	memcpy(o, s, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/' && s[i + 1] == '/') {
			for (; i < n && s[i] != '\n'; i++)
				o[i] = ' ';
			i--;
		} else if (s[i] == '/' && s[i + 1] == '*') {
			size_t j = i;
			for (; j < n && !(s[j] == '*' && s[j + 1] == '/' && j > i + 1); j++)
				if (s[j] != '\n')
					o[j] = ' ';
			if (j < n)
				o[j] = o[j + 1] = ' ';
			i = j + 1;
		} else if (s[i] == '"' || s[i] == '\'') {
			char q = s[i];
			size_t j = i + 1;
			for (; j < n && s[j] != q && s[j] != '\n'; j++) {
				if (s[j] == '\\' && j + 1 < n) {
					o[j] = ' ';
					j++;
				}
				o[j] = ' ';
			}
			i = j;
		}
	}
	return o;
}

/* The implementation's text: the selected lines of the file, with
 * unbalanced braces (a function cut at a region's end) closed. */
static char *extract(const char *path, const struct region *rg, size_t nrg,
		     char *why, size_t whyn)
{
	size_t len;
	char *s = read_text(path, &len);
	if (!s) {
		snprintf(why, whyn, "cannot read %.200s: %s", path, strerror(errno));
		return NULL;
	}
	char *out = malloc(len + 64);
	size_t on = 0;
	for (size_t r = 0; r < nrg && out; r++) {
		if (r > 0 && !rg[r].from && !rg[r].to)
			break;
		char *p = s;
		if (rg[r].from) {
			char *hit = strstr(s, rg[r].from);
			if (!hit) {
				snprintf(why, whyn, "%.200s: no line with '%s'", path, rg[r].from);
				free(out);
				out = NULL;
				break;
			}
			while (hit > s && hit[-1] != '\n')
				hit--;
			p = hit;
		}
		char *e = s + len;
		if (rg[r].to) {
			char *hit = strstr(p, rg[r].to);
			if (hit) {
				while (hit > p && hit[-1] != '\n')
					hit--;
				e = hit;
			}
		}
		memcpy(out + on, p, (size_t)(e - p));
		on += (size_t)(e - p);
	}
	free(s);
	if (!out)
		return NULL;
	out[on] = 0;
	char *code = strip_c(out, on);
	int depth = 0;
	for (size_t i = 0; code && i < on; i++)
		depth += code[i] == '{' ? 1 : code[i] == '}' ? -1 : 0;
	free(code);
	for (; depth > 0 && on + 3 < len + 64; depth--) {
		memcpy(out + on, "}\n", 3);
		on += 2;
	}
	return out;
}

struct ident {
	const char *p;
	size_t n;
};

static bool id_is(const struct ident *t, const char *s)
{
	return strlen(s) == t->n && !memcmp(t->p, s, t->n);
}

static bool id_has_prefix(const struct ident *t, const char *pfx)
{
	size_t k = strlen(pfx);
	return t->n >= k && !memcmp(t->p, pfx, k);
}

static bool id_has_suffix(const struct ident *t, const char *sfx)
{
	size_t k = strlen(sfx);
	return t->n >= k && !memcmp(t->p + t->n - k, sfx, k);
}

static bool id_in(const struct ident *t, json_t *names)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
		if (id_is(t, json_string_value(v)))
			return true;
	return false;
}

static void add_unique(json_t *arr, const struct ident *t)
{
	if (!id_in(t, arr))
		json_array_append_new(arr, json_stringn(t->p, t->n));
}

static bool is_id_start(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_id_char(char c)
{
	return is_id_start(c) || (c >= '0' && c <= '9');
}

static char next_char(const char *s, size_t i)
{
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')
		i++;
	return s[i];
}

/* The identifier right before offset i (skipping blanks), or {NULL, 0}. */
static struct ident ident_before(const char *s, size_t i)
{
	struct ident t = {NULL, 0};
	while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '\n'))
		i--;
	size_t e = i;
	while (i > 0 && is_id_char(s[i - 1]))
		i--;
	if (e > i && is_id_start(s[i])) {
		t.p = s + i;
		t.n = e - i;
	}
	return t;
}

/* The function whose call's argument list encloses offset i, or {NULL, 0}
 * when i is not inside a call (an initialiser, an assignment). */
static struct ident enclosing_call(const char *s, size_t i)
{
	int depth = 0;
	while (i-- > 0) {
		char c = s[i];
		if (c == ')')
			depth++;
		else if (c == '(' && depth-- == 0)
			return ident_before(s, i);
		else if (depth == 0 && (c == ';' || c == '{' || c == '}'))
			break;
	}
	return (struct ident){NULL, 0};
}

static bool engine_ident(const struct engine *en, const struct ident *t)
{
	for (size_t k = 0; harness_prefixes[k]; k++)
		if (id_has_prefix(t, harness_prefixes[k]))
			return false;
	for (size_t k = 0; en->prefixes[k]; k++)
		if (id_has_prefix(t, en->prefixes[k]))
			return true;
	for (size_t k = 0; en->exact[k]; k++)
		if (id_is(t, en->exact[k]))
			return true;
	return false;
}

/* A release: close, free, munmap, or any *_free, *_close, *_destroy,
 * *_exit function the implementation does not define itself. */
static bool release_ident(const struct ident *t)
{
	return id_is(t, "free") || id_is(t, "close") || id_is(t, "munmap") ||
	       id_has_suffix(t, "_free") || id_has_suffix(t, "_close") ||
	       id_has_suffix(t, "_destroy") || id_has_suffix(t, "_exit");
}

/* A hand-written event loop's wait: the loop around it dispatches the
 * engine's events itself (libuv and libevent run their own loops and call
 * back instead). */
static bool wait_ident(const struct ident *t)
{
	static const char *const waits[] = {
		"epoll_wait", "epoll_pwait", "epoll_pwait2", "io_uring_submit_and_wait",
		"io_uring_submit_and_wait_timeout", "io_uring_wait_cqe",
		"io_uring_wait_cqes", "io_uring_wait_cqe_timeout", NULL,
	};
	for (size_t k = 0; waits[k]; k++)
		if (id_is(t, waits[k]))
			return true;
	return false;
}

/* Run pmccabe on text: per function, the traditional McCabe number. Adds
 * functions[] (names) and fills the sums. Returns 0 or -errno. */
static int run_pmccabe(const char *text, json_t *funcs, int *ccn_sum, int *ccn_max)
{
	char tmp[] = "/tmp/axb-ergo-XXXXXX.c";
	int fd = mkstemps(tmp, 2);
	if (fd < 0)
		return -errno;
	int err = axb_write_all(fd, text, strlen(text));
	close(fd);
	if (err) {
		unlink(tmp);
		return err;
	}
	char cmd[sizeof tmp + 64];
	snprintf(cmd, sizeof cmd, "pmccabe '%s' 2>/dev/null", tmp);
	FILE *p = popen(cmd, "r");
	char line[1024];
	*ccn_sum = *ccn_max = 0;
	while (p && fgets(line, sizeof line, p)) {
		int mod, trad, stmts, first, nlines;
		if (sscanf(line, "%d %d %d %d %d", &mod, &trad, &stmts, &first, &nlines) != 5)
			continue;
		char *colon = strrchr(line, ':');
		if (!colon)
			continue;
		char *name = colon + 1;
		name += strspn(name, " \t");
		name[strcspn(name, " \t\r\n")] = 0;
		json_array_append_new(funcs, json_string(name));
		*ccn_sum += trad;
		if (trad > *ccn_max)
			*ccn_max = trad;
	}
	int st = p ? pclose(p) : -1;
	unlink(tmp);
	if (st != 0 || json_array_size(funcs) == 0)
		return -ENOENT;
	return 0;
}

/* The metrics of one implementation's text into row. Returns 0 or -errno
 * (why says what went wrong). */
static int analyse(const char *text, const struct engine *en, json_t *row,
		   char *why, size_t whyn)
{
	json_t *funcs = json_array(), *cbs = json_array(), *tasks = json_array();
	json_t *states = json_array(), *api = json_array();
	int ccn_sum = 0, ccn_max = 0, loc = 0, frees = 0, loops = 0;
	int err = run_pmccabe(text, funcs, &ccn_sum, &ccn_max);
	if (err) {
		snprintf(why, whyn, "pmccabe failed (is it installed?)");
		goto out;
	}
	char *code = strip_c(text, strlen(text));
	if (!code) {
		err = -ENOMEM;
		goto out;
	}
	/* lines with code */
	for (const char *l = code; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		for (size_t i = 0; i < n; i++)
			if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r') {
				loc++;
				break;
			}
		l += n + (nl != NULL);
	}
	for (size_t i = 0; code[i];) {
		if (!is_id_start(code[i]) || (i > 0 && is_id_char(code[i - 1]))) {
			i++;
			continue;
		}
		struct ident t = {code + i, 0};
		size_t s0 = i;
		while (is_id_char(code[i]))
			i++;
		t.n = i - s0;
		char nx = next_char(code, i);
		char pv = s0 > 0 ? code[s0 - 1] : 0;
		bool member = pv == '.' || (pv == '>' && s0 > 1 && code[s0 - 2] == '-');
		if (id_is(&t, "enum")) {
			/* enum [tag] { A, B = 2, C }: each enumerator is a state */
			size_t j = i;
			while (code[j] == ' ' || code[j] == '\t' || code[j] == '\n' ||
			       is_id_char(code[j]))
				j++;
			if (code[j] != '{')
				continue;
			bool want = true;
			for (j++; code[j] && code[j] != '}'; j++) {
				if (code[j] == ',') {
					want = true;
				} else if (want && is_id_start(code[j])) {
					struct ident e = {code + j, 0};
					while (is_id_char(code[j + e.n]))
						e.n++;
					json_array_append_new(states, json_stringn(e.p, e.n));
					j += e.n - 1;
					want = false;
				}
			}
			i = j;
			continue;
		}
		if (member)
			continue;
		bool defined = id_in(&t, funcs);
		if (defined && nx != '(') {
			struct ident call = enclosing_call(code, s0);
			if (call.p && (id_is(&call, "ax_spawn") || id_is(&call, "ax_spawn_at") ||
				       id_is(&call, "pthread_create") ||
				       id_is(&call, "axs_accept_loop")))
				add_unique(tasks, &t);
			else
				add_unique(cbs, &t);
			continue;
		}
		if (defined)
			continue;
		if (engine_ident(en, &t))
			add_unique(api, &t);
		if (nx == '(' && release_ident(&t))
			frees++;
		if (nx == '(' && wait_ident(&t))
			loops++;
	}
	free(code);
	json_object_set_new(row, "loc", json_integer(loc));
	json_object_set_new(row, "functions", json_integer((json_int_t)json_array_size(funcs)));
	json_object_set_new(row, "ccn_total", json_integer(ccn_sum));
	json_object_set_new(row, "ccn_max", json_integer(ccn_max));
	json_object_set_new(row, "callbacks", json_incref(cbs));
	json_object_set_new(row, "states", json_incref(states));
	json_object_set_new(row, "dispatch_loops", json_integer(loops));
	json_object_set_new(row, "ioc", json_integer((json_int_t)(json_array_size(cbs) +
		json_array_size(states)) + loops));
	json_object_set_new(row, "tasks", json_incref(tasks));
	json_object_set_new(row, "api_identifiers", json_incref(api));
	json_object_set_new(row, "api_count", json_integer((json_int_t)json_array_size(api)));
	json_object_set_new(row, "frees", json_integer(frees));
out:
	json_decref(funcs);
	json_decref(cbs);
	json_decref(tasks);
	json_decref(states);
	json_decref(api);
	return err;
}

static json_t *regions_json(const struct region *rg, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !rg[i].from && !rg[i].to)
			break;
		json_array_append_new(a, json_pack("{s:s?, s:s?}", "from", rg[i].from,
						   "to", rg[i].to));
	}
	return a;
}

/* One row of the table: scenario sc in implementation `impl` (engine en;
 * NULL for the ax version). */
static json_t *static_row(const struct ergo *E, const struct ergo_scenario *sc,
			  const struct engine *en)
{
	char impl[64], why[256] = "";
	struct source native[1];
	char native_path[256];
	const struct source *src = sc->ax;
	size_t nsrc = 0;

	if (en) {
		snprintf(native_path, sizeof native_path, "references/native/%s_%s.c",
			 en->stem, sc->stem);
		native[0] = (struct source){native_path, {{NULL, NULL}, {NULL, NULL}}};
		src = native;
		nsrc = 1;
		snprintf(impl, sizeof impl, "native-%s", en->name);
	} else {
		while (nsrc < MAX_SOURCES && sc->ax[nsrc].path)
			nsrc++;
		snprintf(impl, sizeof impl, "ax");
	}
	json_t *sources = json_array();
	size_t cap = 1, len = 0;
	char *text = calloc(1, cap);
	for (size_t i = 0; i < nsrc && text; i++) {
		char path[PATH_MAX + 128];
		snprintf(path, sizeof path, "%s/%s", E->src, src[i].path);
		json_array_append_new(sources, json_pack("{s:s, s:o}", "path", src[i].path,
					"regions", regions_json(src[i].regions, 2)));
		char *part = extract(path, src[i].regions, 2, why, sizeof why);
		if (!part) {
			free(text);
			text = NULL;
			break;
		}
		size_t n = strlen(part);
		char *t = realloc(text, len + n + 1);
		if (t) {
			memcpy(t + len, part, n + 1);
			len += n;
		} else {
			free(text);
		}
		text = t;
		free(part);
	}
	json_t *row = json_pack("{s:s, s:s, s:s, s:s?, s:o}",
				"scenario", sc->name, "implementation", impl,
				"kind", en ? "native" : "ax", "engine", en ? en->name : NULL,
				"sources", sources);
	if (!text || analyse(text, en ? en : &ax_engine, row, why, sizeof why)) {
		json_object_set_new(row, "error", json_string(why[0] ? why : "out of memory"));
		axb_err("ergo: %s %s: %s", sc->name, impl, why);
	}
	free(text);
	return row;
}

/* ------------------------------------------------------------------ */
/* Heap allocations per operation, counted at run time                 */
/* ------------------------------------------------------------------ */

/* The counter's shared file (tools/alloc_count.c has the same layout). */
struct alloc_counts {
	_Atomic uint64_t allocs, frees, bytes;
	_Atomic uint64_t pid; /* set by the counter once it counts here */
};

struct shm {
	char path[64];
	struct alloc_counts *c;
};

static int shm_open_counts(struct shm *m)
{
	snprintf(m->path, sizeof m->path, "/tmp/axb-alloc-XXXXXX");
	int fd = mkstemp(m->path);
	if (fd < 0)
		return -errno;
	int err = ftruncate(fd, 4096) ? -errno : 0;
	void *p = err ? MAP_FAILED
		      : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		unlink(m->path);
		return err ? err : -errno;
	}
	m->c = p;
	return 0;
}

static void shm_close(struct shm *m)
{
	if (m->c)
		munmap(m->c, 4096);
	unlink(m->path);
	m->c = NULL;
}

/* Samples taken when the load generator marks the measured phase. The
 * load generator signals this process (--server-pid), which samples the
 * server's counts and passes the signal on, so the server takes its own
 * marks as in `axbench run`. */
static struct alloc_counts *volatile g_counts;
static volatile pid_t g_server;
static volatile uint64_t g_mark[2];
static volatile sig_atomic_t g_have[2];

static void on_mark(int sig)
{
	int saved = errno;
	int k = sig == SIGUSR2;
	struct alloc_counts *c = g_counts;
	if (c && !g_have[k]) {
		g_mark[k] = atomic_load_explicit(&c->allocs, memory_order_relaxed);
		g_have[k] = 1;
	}
	if (g_server > 0)
		kill(g_server, sig);
	errno = saved;
}

struct argv_buf {
	char *v[48];
	char store[48][160];
	size_t n;
};

static void av(struct argv_buf *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void av(struct argv_buf *a, const char *fmt, ...)
{
	va_list ap;
	if (a->n + 1 >= sizeof a->v / sizeof a->v[0])
		return;
	va_start(ap, fmt);
	vsnprintf(a->store[a->n], sizeof a->store[0], fmt, ap);
	va_end(ap);
	a->v[a->n] = a->store[a->n];
	a->v[++a->n] = NULL;
}

/* The parameters of an allocation-counting run, server and load alike. */
static void av_phases(struct argv_buf *a)
{
	av(a, "-p");
	av(a, "connections=%s", ALLOC_CONNS);
	av(a, "-p");
	av(a, "warmup=%s", ALLOC_WARMUP);
	av(a, "-p");
	av(a, "duration=%s", ALLOC_DURATION);
}

static bool until_ready(void *arg)
{
	struct axb_child *c = arg;
	json_t *j = axb_child_event(c, "ready");
	json_decref(j);
	return c->exited || j != NULL;
}

static bool until_exited(void *arg)
{
	return ((struct axb_child *)arg)->exited;
}

struct two {
	struct axb_child *a, *b;
};

static bool until_either(void *arg)
{
	struct two *t = arg;
	return t->a->exited || t->b->exited;
}

/* A child's verdict: its result's check, or why it has none. */
static bool child_passed(const struct axb_child *c, json_t *res, char *why, size_t n)
{
	if (!res) {
		json_t *e = axb_child_event(c, "error");
		snprintf(why, n, "%s: %s", c->role,
			 e ? json_string_value(json_object_get(e, "error"))
			   : c->killed ? c->kill_reason : "no result");
		json_decref(e);
		return false;
	}
	json_t *chk = json_object_get(res, "check");
	if (!json_is_true(json_object_get(chk, "passed"))) {
		const char *m = json_string_value(json_object_get(chk, "message"));
		snprintf(why, n, "%s check failed: %s", c->role, m ? m : "?");
		return false;
	}
	return true;
}

static void set_preload(const struct ergo *E, const struct shm *m, bool on)
{
	if (on) {
		setenv("AXB_ALLOC_SHM", m->path, 1);
		setenv("LD_PRELOAD", E->alloc_lib, 1);
	} else {
		unsetenv("AXB_ALLOC_SHM");
		unsetenv("LD_PRELOAD");
	}
}

/* Allocations per round trip of a server implementation, over the load
 * generator's measured phase. Returns 0 or -errno (why). */
static int alloc_net(const struct ergo *E, const char *impl, const char *scenario,
		     double *per_op, char *why, size_t whyn)
{
	struct shm m = {.c = NULL};
	struct argv_buf a = {.n = 0};
	struct axb_child srv, cli;
	int err = shm_open_counts(&m);
	if (err) {
		snprintf(why, whyn, "cannot create the counter file: %s", strerror(-err));
		return err;
	}
	av(&a, "axbench");
	av(&a, "__server");
	av(&a, "--impl");
	av(&a, "%s", impl);
	av(&a, "--scenario");
	av(&a, "%s", scenario);
	av(&a, "--cpu");
	av(&a, "%d", E->server_cpu);
	av(&a, "--result-fd");
	av(&a, "3");
	av_phases(&a);
	set_preload(E, &m, true);
	err = axb_child_spawn(&srv, "server", a.v, true);
	set_preload(E, &m, false);
	if (err) {
		snprintf(why, whyn, "cannot start the server: %s", strerror(-err));
		goto close_shm;
	}
	int64_t deadline = axb_mono_ns() + CHILD_TIMEOUT_NS;
	struct axb_child *one[1] = {&srv};
	axb_child_pump(one, 1, deadline, until_ready, &srv);
	json_t *ready = axb_child_event(&srv, "ready");
	axb_child_none(&cli);
	if (ready && !srv.exited) {
		a.n = 0;
		av(&a, "axbench");
		av(&a, "__load");
		av(&a, "--impl");
		av(&a, "%s", impl);
		av(&a, "--scenario");
		av(&a, "%s", scenario);
		av(&a, "--cpu");
		av(&a, "%d", E->load_cpu);
		av(&a, "--result-fd");
		av(&a, "3");
		av(&a, "--target");
		av(&a, "127.0.0.1:%d", (int)json_integer_value(json_object_get(ready, "port")));
		av(&a, "--server-pid");
		av(&a, "%ld", (long)getpid());
		av_phases(&a);
		g_have[0] = g_have[1] = 0;
		g_counts = m.c;
		g_server = srv.pid;
		if (axb_child_spawn(&cli, "loadgen", a.v, true) == 0) {
			struct axb_child *two[2] = {&srv, &cli};
			struct two t = {&srv, &cli};
			axb_child_pump(two, 2, deadline, until_either, &t);
		}
		g_server = 0;
		g_counts = NULL;
	}
	json_decref(ready);
	if (!srv.exited) {
		kill(srv.pid, SIGTERM);
		axb_child_pump(one, 1, axb_mono_ns() + 5 * INT64_C(1000000000),
			       until_exited, &srv);
		axb_child_kill(&srv, "the server did not stop after SIGTERM");
	}
	axb_child_kill(&cli, "the load generator exceeded the timeout");
	axb_child_finish(&srv);
	if (cli.pid > 0)
		axb_child_finish(&cli);
	json_t *sres = axb_child_event(&srv, "result");
	json_t *lres = cli.pid > 0 ? axb_child_event(&cli, "result") : NULL;
	err = -EIO;
	if (!child_passed(&srv, sres, why, whyn) ||
	    (cli.pid > 0 && !child_passed(&cli, lres, why, whyn))) {
		/* why is set */
	} else if (atomic_load(&m.c->pid) != (uint64_t)srv.pid) {
		snprintf(why, whyn, "the allocation counter did not load into the server");
	} else if (cli.pid <= 0 || !g_have[0] || !g_have[1]) {
		snprintf(why, whyn, "the measured phase was not marked");
	} else {
		double ops = json_number_value(json_object_get(
			json_object_get(lres, "measured"), "round_trips"));
		if (ops > 0) {
			*per_op = (double)(g_mark[1] - g_mark[0]) / ops;
			err = 0;
		} else {
			snprintf(why, whyn, "no round trip in the measured phase");
		}
	}
	json_decref(sres);
	json_decref(lres);
	axb_child_free(&srv);
	axb_child_free(&cli);
close_shm:
	shm_close(&m);
	return err;
}

/* Allocations inside one `ergo __local` run of `count` timers: the child
 * samples its own counts around the scenario's work. */
static int alloc_local_once(const struct ergo *E, const char *impl, long count,
			    double *allocs, char *why, size_t whyn)
{
	struct shm m = {.c = NULL};
	struct argv_buf a = {.n = 0};
	struct axb_child ch;
	int err = shm_open_counts(&m);
	if (err) {
		snprintf(why, whyn, "cannot create the counter file: %s", strerror(-err));
		return err;
	}
	av(&a, "axbench");
	av(&a, "ergo");
	av(&a, "__local");
	av(&a, "--impl");
	av(&a, "%s", impl);
	av(&a, "--count");
	av(&a, "%ld", count);
	av(&a, "--cpu");
	av(&a, "%d", E->server_cpu);
	set_preload(E, &m, true);
	err = axb_child_spawn(&ch, "local", a.v, true);
	set_preload(E, &m, false);
	if (err) {
		snprintf(why, whyn, "cannot start the child: %s", strerror(-err));
		goto close_shm;
	}
	struct axb_child *one[1] = {&ch};
	if (axb_child_pump(one, 1, axb_mono_ns() + CHILD_TIMEOUT_NS, until_exited, &ch))
		axb_child_kill(&ch, "the timers run exceeded the timeout");
	axb_child_finish(&ch);
	json_t *res = axb_child_event(&ch, "result");
	err = -EIO;
	if (!child_passed(&ch, res, why, whyn)) {
		/* why is set */
	} else if (atomic_load(&m.c->pid) != (uint64_t)ch.pid ||
		   !json_is_true(json_object_get(res, "counted"))) {
		snprintf(why, whyn, "the allocation counter did not load into the child");
	} else {
		*allocs = json_number_value(json_object_get(res, "allocs"));
		err = 0;
	}
	json_decref(res);
	axb_child_free(&ch);
close_shm:
	shm_close(&m);
	return err;
}

/* Steady-state allocations per timer: the difference between runs of 2N
 * and N timers, divided by N, so that setup and teardown cancel out. */
static int alloc_local(const struct ergo *E, const char *impl, double *per_op,
		       char *why, size_t whyn)
{
	double a1, a2;
	int err = alloc_local_once(E, impl, ALLOC_TIMERS, &a1, why, whyn);
	if (!err)
		err = alloc_local_once(E, impl, 2 * ALLOC_TIMERS, &a2, why, whyn);
	if (!err)
		*per_op = (a2 - a1) / ALLOC_TIMERS;
	if (!err && *per_op < 0)
		*per_op = 0; /* allocator noise below one allocation in N */
	return err;
}

/* allocs_per_op of one (scenario, implementation) as JSON: a number, or
 * null with a reason in notes. */
static json_t *alloc_cell(const struct ergo *E, const struct ergo_scenario *sc,
			  const char *impl, json_t *notes)
{
	struct axb_impl im;
	char why[512] = "";
	double v = 0;
	int err;
	if (axb_impl_find(impl, &im) || !axb_impl_available(&im, why, sizeof why)) {
		json_object_set_new(notes, impl, json_string(why[0] ? why : "not compiled in"));
		return json_null();
	}
	if (!strcmp(sc->name, "timers"))
		err = alloc_local(E, impl, &v, why, sizeof why);
	else
		err = alloc_net(E, impl, sc->name, &v, why, sizeof why);
	if (err) {
		axb_err("ergo: allocations of %s on %s: %s", sc->name, impl, why);
		json_object_set_new(notes, impl, json_string(why));
		return json_null();
	}
	return json_real(v);
}

static void alloc_rows(const struct ergo *E, json_t *rows)
{
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		const char *scn = json_string_value(json_object_get(row, "scenario"));
		const char *kind = json_string_value(json_object_get(row, "kind"));
		const struct ergo_scenario *sc = NULL;
		for (size_t k = 0; k < NSCENARIOS; k++)
			if (!strcmp(scenarios[k].name, scn))
				sc = &scenarios[k];
		json_t *notes = json_object();
		json_object_set_new(row, "allocs_op", json_string(sc->op));
		if (!strcmp(kind, "native")) {
			json_object_set_new(row, "allocs_per_op", alloc_cell(E, sc,
				json_string_value(json_object_get(row, "implementation")), notes));
		} else {
			json_t *per = json_object();
			for (size_t k = 0; k < NENGINES; k++)
				json_object_set_new(per, engines[k].name,
						    alloc_cell(E, sc, engines[k].name, notes));
			json_object_set_new(row, "allocs_per_op", per);
		}
		json_object_set_new(row, "allocs_notes", notes);
		fprintf(stderr, ".");
	}
	fprintf(stderr, "\n");
}

/* The `ergo __local` child: one run of the timers scenario's work on an
 * ax runtime or a native version, its own allocations sampled around it. */
static intptr_t local_task(void *arg)
{
	struct axs_ctx *ctx = arg;
	return ctx->sc->run(ctx);
}

static uint64_t counts_now(const struct alloc_counts *c)
{
	return c ? atomic_load_explicit(&c->allocs, memory_order_relaxed) : 0;
}

static int ergo_local(int argc, char **argv)
{
	static const struct option lo[] = {
		{"impl", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{"cpu", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	const char *impl = NULL;
	long count = ALLOC_TIMERS;
	int cpu = -1, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'i')
			impl = optarg;
		else if (c == 'n')
			count = strtol(optarg, NULL, 10);
		else if (c == 'c')
			cpu = (int)strtol(optarg, NULL, 10);
		else
			axb_bad_input("ergo __local: unknown option");
	}
	const struct axs_scenario *sc = axs_scenario_find("timers");
	struct axb_impl im;
	if (!impl || !sc || axb_impl_find(impl, &im) ||
	    (im.kind == AXB_IMPL_REF && !im.ref->run_local))
		axb_bad_input("ergo __local: --impl must name a runtime or native version");
	int64_t values[AXS_MAX_PARAMS];
	const char *bad = NULL;
	if (axs_param_defaults(sc, values, &bad))
		axb_bad_input("timers: default of %s does not parse", bad);
	int ci = axs_param_index(sc, "count"), si = axs_param_index(sc, "samples");
	if (ci < 0)
		axb_bad_input("ergo __local: timers has no parameter count");
	values[ci] = count;
	if (si >= 0)
		values[si] = 1; /* part 2's fixed cost, as small as it goes */
	if (cpu >= 0)
		axb_pin_cpu(cpu);

	struct alloc_counts *counts = NULL;
	const char *shm = getenv("AXB_ALLOC_SHM");
	int fd = shm ? open(shm, O_RDWR | O_CLOEXEC) : -1;
	if (fd >= 0) {
		void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		counts = p == MAP_FAILED ? NULL : p;
		close(fd);
	}
	struct axs_out *out = calloc(1, sizeof *out);
	if (!out)
		return 1;
	axs_out_init(out);
	struct axs_ctx ctx = {.sc = sc, .values = values, .listen_fd = -1,
				.quick = true, .out = out};
	intptr_t result = 0;
	uint64_t a0 = 0, a1 = 0;
	if (im.kind == AXB_IMPL_AX) {
		ax_rt *rt;
		struct ax_rt_opts ro;
		ax_rt_opts_init(&ro);
		int err = ax_rt_create(&rt, impl, &ro);
		if (err) {
			axs_fail(&ctx, "cannot create runtime %s: %s", impl, strerror(-err));
		} else {
			a0 = counts_now(counts);
			err = ax_rt_run(rt, local_task, &ctx, &result);
			a1 = counts_now(counts);
			if (err)
				axs_fail(&ctx, "ax_rt_run failed: %s", strerror(-err));
			ax_rt_destroy(rt);
		}
	} else {
		a0 = counts_now(counts);
		result = im.ref->run_local(&ctx);
		a1 = counts_now(counts);
	}
	if (result < 0)
		axs_fail(&ctx, "run returned %ld", (long)result);
	json_t *j = json_pack("{s:s, s:s, s:I, s:b, s:{s:b, s:s?}, s:o}",
		"event", "result", "impl", impl, "allocs", (json_int_t)(a1 - a0),
		"counted", counts != NULL,
		"check", "passed", !out->failed, "message", out->failed ? out->fail_msg : NULL,
		"metrics", axb_out_metrics_json(out));
	axb_write_json_line(3, j);
	json_decref(j);
	axs_out_free(out);
	free(out);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The cost of the abstraction: one interleaved `axbench run`          */
/* ------------------------------------------------------------------ */

/* Per repetition value of metric m of a cell, by repetition number. */
static double rep_value(json_t *cell, int rep, const char *m)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(cell, "reps"), i, r) {
		if (json_integer_value(json_object_get(r, "rep")) != rep ||
		    strcmp(json_string_value(json_object_get(r, "status")), "ok"))
			continue;
		json_t *v = json_object_get(json_object_get(json_object_get(r, "metrics"), m),
					    "value");
		return json_is_number(v) ? json_number_value(v) : NAN;
	}
	return NAN;
}

static double median_of(json_t *cell, const char *m)
{
	json_t *v = json_object_get(json_object_get(json_object_get(
		json_object_get(cell, "summary"), "metrics"), m), "median");
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of the per-repetition ratios ax / native (repetitions are
 * interleaved, so each pair ran minutes apart at most seconds). */
static double paired_ratio(json_t *ax, json_t *nat, const char *m, int reps)
{
	double r[1024];
	int n = 0;
	for (int k = 1; k <= reps && n < 1024; k++) {
		double a = rep_value(ax, k, m), b = rep_value(nat, k, m);
		if (isfinite(a) && isfinite(b) && b > 0)
			r[n++] = a / b;
	}
	if (!n)
		return NAN;
	qsort(r, (size_t)n, sizeof r[0], cmp_double);
	return n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
}

/* The run's own result file, kept beside the ergo file: FILE.json ->
 * FILE-run.json. */
static void run_path(const char *json, char *buf, size_t n)
{
	size_t len = strlen(json);
	if (len > 5 && !strcmp(json + len - 5, ".json"))
		len -= 5;
	snprintf(buf, n, "%.*s-run.json", (int)len, json);
}

/* The run's parameters: every tcp_echo parameter the profile might sweep
 * is pinned, so that each implementation is one closed-loop cell. */
static void measure_params(const struct ergo *E, struct argv_buf *a, bool full)
{
	const struct axs_scenario *sc = axs_scenario_find("tcp_echo");
	const char *fixed[][2] = {
		{"size", "64"}, {"pipeline", "1"}, {"rate", "0"}, {"arrivals", "uniform"},
		{"duration", full ? "2s" : "1s"}, {"warmup", full ? "500ms" : "200ms"},
	};
	av(a, "-p");
	av(a, "connections=%d", E->connections);
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		if (!sc || axs_param_index(sc, fixed[i][0]) < 0)
			continue;
		av(a, "-p");
		av(a, "%s=%s", fixed[i][0], fixed[i][1]);
	}
}

/* One row of the cost table: engine's ax runtime against its native
 * version, from the cells of the run. */
static json_t *cost_row(const char *engine, json_t *ax, json_t *nat, int nreps,
			int connections)
{
	double ta = median_of(ax, "throughput"), tn = median_of(nat, "throughput");
	double pa = median_of(ax, "latency_p99"), pn = median_of(nat, "latency_p99");
	double ca = median_of(ax, "server_cpu_us_per_msg");
	double cn = median_of(nat, "server_cpu_us_per_msg");
	json_t *p = json_object();
	json_object_set_new(p, "engine", json_string(engine));
	json_object_set_new(p, "scenario", json_string("tcp_echo"));
	json_object_set_new(p, "connections", json_integer(connections));
	json_object_set_new(p, "ax_status", json_incref(json_object_get(ax, "status")));
	json_object_set_new(p, "native_status", json_incref(json_object_get(nat, "status")));
	json_object_set_new(p, "ax_throughput", axb_real(ta));
	json_object_set_new(p, "native_throughput", axb_real(tn));
	json_object_set_new(p, "throughput_ratio", axb_real(tn > 0 ? ta / tn : NAN));
	json_object_set_new(p, "throughput_ratio_paired",
			    axb_real(paired_ratio(ax, nat, "throughput", nreps)));
	json_object_set_new(p, "ax_p99_ns", axb_real(pa));
	json_object_set_new(p, "native_p99_ns", axb_real(pn));
	json_object_set_new(p, "p99_ratio", axb_real(pn > 0 ? pa / pn : NAN));
	json_object_set_new(p, "p99_ratio_paired",
			    axb_real(paired_ratio(ax, nat, "latency_p99", nreps)));
	json_object_set_new(p, "ax_cpu_us_per_msg", axb_real(ca));
	json_object_set_new(p, "native_cpu_us_per_msg", axb_real(cn));
	json_object_set_new(p, "cpu_ratio", axb_real(cn > 0 ? ca / cn : NAN));
	json_object_set_new(p, "meets_90pct", json_boolean(tn > 0 && ta / tn >= 0.9));
	return p;
}

/* Run every engine's ax runtime and native version in one interleaved
 * `axbench run` (its result file kept beside the ergo file), then pair
 * them. Returns the list of rows, and the run's description in *run. */
static json_t *measure(const struct ergo *E, json_t **run)
{
	char runtimes[512] = "", tmp[PATH_MAX];
	struct argv_buf a = {.n = 0};
	bool full = !strcmp(E->profile, "full");
	int reps = E->reps ? E->reps : full ? 5 : 3;
	size_t off = 0;

	*run = json_null();
	for (size_t k = 0; k < NENGINES; k++) {
		struct axb_impl x, n;
		char native[64], why[256];
		snprintf(native, sizeof native, "native-%s", engines[k].name);
		if (axb_impl_find(engines[k].name, &x) || axb_impl_find(native, &n) ||
		    !axb_impl_available(&x, why, sizeof why) ||
		    !axb_impl_available(&n, why, sizeof why))
			continue;
		off += (size_t)snprintf(runtimes + off, sizeof runtimes - off, "%s%s,%s",
					off ? "," : "", engines[k].name, native);
	}
	if (!off) {
		axb_err("ergo: --measure: no engine has both an ax runtime and a native version");
		return json_null();
	}
	run_path(E->json_path, tmp, sizeof tmp);
	av(&a, "axbench");
	av(&a, "run");
	av(&a, "--runtime");
	av(&a, "%s", runtimes);
	av(&a, "--scenario");
	av(&a, "tcp_echo");
	measure_params(E, &a, full);
	av(&a, "--profile");
	av(&a, "%s", E->profile);
	av(&a, "--reps");
	av(&a, "%d", reps);
	av(&a, "--json");
	av(&a, "%s", tmp);
	json_t *cmd = json_array();
	for (size_t i = 0; i < a.n; i++)
		json_array_append_new(cmd, json_string(a.v[i]));
	fprintf(stderr, "axbench ergo: measuring the cost of the abstraction:");
	for (size_t i = 0; i < a.n; i++)
		fprintf(stderr, " %s", a.v[i]);
	fprintf(stderr, "\n");
	/* the run's own table goes to stderr: stdout is the ergo table */
	struct axb_spawn sp = {
		.role = "run", .argv = a.v, .out = AXB_SINK_STDERR, .err = AXB_SINK_INHERIT,
	};
	struct axb_child ch;
	int st = -1;
	int err = axb_child_start(&ch, &sp);
	if (!err) {
		/* the run is in a process group of its own: pass a Ctrl-C on,
		 * so that it stops and writes what it has, as it would alone */
		struct axb_child *one[1] = { &ch };
		if (axb_child_pump(one, 1, axb_mono_ns() + 86400 * INT64_C(1000000000),
				   until_exited, &ch) == -EINTR)
			kill(ch.pid, axb_proc_interrupted());
		axb_child_finish(&ch);
		st = ch.wstatus;
		axb_child_free(&ch);
	}
	size_t len;
	char *txt = err ? NULL : read_text(tmp, &len);
	json_error_t je;
	json_t *doc = txt ? json_loads(txt, 0, &je) : NULL;
	free(txt);
	if (!doc) {
		axb_err("ergo: --measure: the run produced no result (exit status %d)", st);
		json_decref(cmd);
		return json_null();
	}
	json_t *cells = json_object_get(doc, "cells");
	int nreps = (int)json_integer_value(json_object_get(json_object_get(doc, "config"), "reps"));
	json_t *rows = json_array();
	for (size_t k = 0; k < NENGINES; k++) {
		char native[64];
		json_t *ax = NULL, *nat = NULL, *c;
		size_t i;
		snprintf(native, sizeof native, "native-%s", engines[k].name);
		json_array_foreach(cells, i, c) {
			const char *rt = json_string_value(json_object_get(c, "runtime"));
			if (rt && !strcmp(rt, engines[k].name))
				ax = c;
			else if (rt && !strcmp(rt, native))
				nat = c;
		}
		if (ax && nat)
			json_array_append_new(rows, cost_row(engines[k].name, ax, nat, nreps,
							     E->connections));
	}
	json_t *env = json_object_get(doc, "environment");
	*run = json_pack("{s:s, s:o, s:s, s:i, s:i, s:o}", "run_file", tmp, "command", cmd,
			 "profile", E->profile, "reps", nreps, "connections", E->connections,
			 "environment", env ? json_incref(env) : json_null());
	json_decref(doc);
	return rows;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static void fmt_allocs(json_t *v, char *buf, size_t n)
{
	if (json_is_number(v)) {
		snprintf(buf, n, "%.2f", json_number_value(v));
	} else if (json_is_object(v)) {
		size_t off = 0;
		for (size_t k = 0; k < NENGINES && off < n; k++) {
			json_t *x = json_object_get(v, engines[k].name);
			off += (size_t)snprintf(buf + off, n - off, "%s", k ? "/" : "");
			if (json_is_number(x))
				off += (size_t)snprintf(buf + off, n - off, "%.2f",
							json_number_value(x));
			else
				off += (size_t)snprintf(buf + off, n - off, "-");
		}
	} else {
		snprintf(buf, n, "-");
	}
}

static int ji(json_t *row, const char *k)
{
	return (int)json_integer_value(json_object_get(row, k));
}

static void print_table(json_t *rows, json_t *cost, json_t *run)
{
	size_t i;
	json_t *row;
	printf("%-11s %-16s %5s %5s %8s %4s %6s %5s %4s %5s %4s %5s  %s\n", "scenario",
	       "implementation", "LOC", "funcs", "CCN s/m", "cbs", "states", "loops",
	       "IoC", "tasks", "API", "frees", "allocs/op");
	json_array_foreach(rows, i, row) {
		char ccn[32], al[96];
		if (json_object_get(row, "error")) {
			printf("%-11s %-16s  %s\n",
			       json_string_value(json_object_get(row, "scenario")),
			       json_string_value(json_object_get(row, "implementation")),
			       json_string_value(json_object_get(row, "error")));
			continue;
		}
		snprintf(ccn, sizeof ccn, "%d/%d", ji(row, "ccn_total"), ji(row, "ccn_max"));
		fmt_allocs(json_object_get(row, "allocs_per_op"), al, sizeof al);
		printf("%-11s %-16s %5d %5d %8s %4zu %6zu %5d %4d %5zu %4d %5d  %s\n",
		       json_string_value(json_object_get(row, "scenario")),
		       json_string_value(json_object_get(row, "implementation")),
		       ji(row, "loc"), ji(row, "functions"), ccn,
		       json_array_size(json_object_get(row, "callbacks")),
		       json_array_size(json_object_get(row, "states")),
		       ji(row, "dispatch_loops"), ji(row, "ioc"),
		       json_array_size(json_object_get(row, "tasks")), ji(row, "api_count"),
		       ji(row, "frees"), al);
	}
	printf("allocs/op of the ax version: on epoll/libuv/libevent/io_uring; per echoed\n"
	       "message, timer, or front request; '-' not measured (see the JSON notes)\n");
	if (!json_is_array(cost))
		return;
	printf("\ncost of the abstraction: tcp_echo, %d connections, one interleaved run "
	       "(%s profile, %d reps)\n",
	       (int)json_integer_value(json_object_get(run, "connections")),
	       json_string_value(json_object_get(run, "profile")),
	       (int)json_integer_value(json_object_get(run, "reps")));
	printf("%-9s %11s %11s %7s %7s %9s %9s %7s %7s %7s  %s\n", "engine", "ax msg/s",
	       "native", "ratio", "paired", "ax p99", "native", "ratio", "paired",
	       "cpu", ">=90%");
	json_array_foreach(cost, i, row) {
		printf("%-9s %11.0f %11.0f %7.3f %7.3f %8.0fus %8.0fus %7.3f %7.3f %7.3f  %s\n",
		       json_string_value(json_object_get(row, "engine")),
		       json_number_value(json_object_get(row, "ax_throughput")),
		       json_number_value(json_object_get(row, "native_throughput")),
		       json_number_value(json_object_get(row, "throughput_ratio")),
		       json_number_value(json_object_get(row, "throughput_ratio_paired")),
		       json_number_value(json_object_get(row, "ax_p99_ns")) / 1e3,
		       json_number_value(json_object_get(row, "native_p99_ns")) / 1e3,
		       json_number_value(json_object_get(row, "p99_ratio")),
		       json_number_value(json_object_get(row, "p99_ratio_paired")),
		       json_number_value(json_object_get(row, "cpu_ratio")),
		       json_is_true(json_object_get(row, "meets_90pct")) ? "yes" : "NO");
	}
	printf("ratios are ax / native: throughput (median of medians, and median of the\n"
	       "per-repetition pairs), p99 latency, server CPU per message\n");
}

static void resolve_json(struct ergo *E)
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

static void resolve_alloc(struct ergo *E, json_t *doc)
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
			exe_dir(E->lib_buf, sizeof E->lib_buf - sizeof ALLOC_LIB_NAME);
			strcat(E->lib_buf, ALLOC_LIB_NAME);
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
		"net_connections", ALLOC_CONNS, "net_warmup", ALLOC_WARMUP,
		"net_duration", ALLOC_DURATION, "timers_n", ALLOC_TIMERS));
	if (why) {
		E->no_alloc = true;
		axb_err("ergo: allocations %s", why);
	}
}

int axb_cmd_ergo(int argc, char **argv)
{
	struct ergo E;
	memset(&E, 0, sizeof E);
	if (argc > 1 && !strcmp(argv[1], "__local"))
		return ergo_local(argc - 1, argv + 1);
	parse_opts(&E, argc, argv);
	find_source(&E);
	resolve_json(&E);

	int cpus[2];
	int ncpu = axb_allowed_cpus(cpus, 2);
	E.server_cpu = ncpu > 0 ? cpus[0] : 0;
	E.load_cpu = ncpu > 1 ? cpus[1] : E.server_cpu;
	if (axb_proc_init())
		axb_bad_input("cannot install signal handlers");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_mark;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	axb_raise_nofile();

	char when[64];
	axb_utc_iso(axb_wall_ns(), when, sizeof when);
	json_t *doc = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}",
		"schema", "axbench-ergo", "schema_version", ERGO_SCHEMA_VERSION,
		"generator", "axbench " AXB_VERSION, "generated_utc", when,
		"source_dir", E.src, "definitions", "docs/ergonomics.md");
	json_t *rows = json_array();
	for (size_t s = 0; s < NSCENARIOS; s++) {
		json_array_append_new(rows, static_row(&E, &scenarios[s], NULL));
		for (size_t k = 0; k < NENGINES; k++)
			json_array_append_new(rows, static_row(&E, &scenarios[s], &engines[k]));
	}
	resolve_alloc(&E, doc);
	if (!E.no_alloc) {
		fprintf(stderr, "axbench ergo: counting allocations (%zu runs) ",
			json_array_size(rows));
		alloc_rows(&E, rows);
	}
	json_object_set_new(doc, "rows", rows);
	json_t *run = json_null();
	json_t *cost = E.measure ? measure(&E, &run) : json_null();
	json_object_set_new(doc, "abstraction_cost", cost);
	json_object_set_new(doc, "abstraction_cost_run", run);
	struct axb_pin pin = {E.server_cpu != E.load_cpu ? "split" : "same",
			      E.server_cpu, E.load_cpu};
	json_object_set_new(doc, "environment", axb_environment(&pin));

	print_table(rows, cost, run);
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
