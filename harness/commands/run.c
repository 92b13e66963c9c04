/* run.c - `axbench run` (and its --measure switch to instructions mode,
 * instr.c): validates the request, plans the cells
 * (implementation x scenario x parameters), runs every repetition in fresh
 * child processes under a watchdog, interleaving repetitions, and rewrites
 * the result file atomically after each one. */
#include "commands.h"
#include "proc.h"
#include "results.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_IMPLS AXB_MAX_IMPLS
#define MAX_SCENARIOS 64
#define MAX_SWEEPS AXS_MAX_PARAMS
#define MAX_SWEEP_VALUES 64
#define STOP_GRACE_NS (5 * INT64_C(1000000000))
#define STDERR_TAIL 4096

struct sweep {
	char name[64];
	const char *how;                     /* "-p", "--duration", ... */
	bool bare_seconds;
	char *vals[MAX_SWEEP_VALUES];        /* point into copy */
	size_t nvals;
	char *copy;
};

struct run {
	/* options */
	const char *runtimes_arg, *scenarios_arg, *profile, *pin_arg;
	const char *server_cpus_arg, *load_cpus_arg; /* --server-cpus, --load-cpus */
	const char *json_path;
	char json_buf[512];
	int reps;
	bool reps_set, verbose;
	int port;
	int64_t timeout_ns;                   /* 0: per-cell default */
	int64_t stack_size;                   /* --stack, 0: the runtime's default */
	struct sweep sweeps[MAX_SWEEPS];
	size_t nsweeps;
	/* resolved */
	struct axb_impl impls[MAX_IMPLS];
	size_t nimpls;
	json_t *skipped;                      /* unavailable under "all" */
	const struct axs_scenario *scs[MAX_SCENARIOS];
	size_t nscs;
	struct axb_pin pin;
	bool quick;
	struct axb_cell *cells;
	size_t ncells;
	json_t *doc;
	int64_t t_start;
};

/* ------------------------------------------------------------------ */
/* Option parsing and validation: every problem is one line + exit 2.  */
/* ------------------------------------------------------------------ */

enum {
	OPT_REPS = 256, OPT_DURATION, OPT_WARMUP, OPT_PROFILE, OPT_JSON,
	OPT_PIN, OPT_PORT, OPT_TIMEOUT, OPT_HELP, OPT_SERVER_CPUS, OPT_LOAD_CPUS,
	OPT_STACK,
};

static void run_usage(void)
{
	printf("usage: axbench run [options]\n"
	       "  --runtime R[,R...]|all   implementations (default: epoll); R may be\n"
	       "                           a driver's shared object (./libx.so)\n"
	       "  --scenario S[,S...]|all  scenarios (default: tcp_echo)\n"
	       "  -p name=v[,v...]         set a parameter; a list sweeps it\n"
	       "  --reps N                 repetitions per cell (default 5; quick: 3)\n"
	       "  --duration D, --warmup D shortcuts for -p duration=, -p warmup=\n"
	       "  --profile quick|full|scaling  the profile's parameters and sweeps\n"
	       "                           (default: the scenarios' defaults; scaling:\n"
	       "                           -p workers=1,2,4,... up to the server's CPUs;\n"
	       "                           see docs/harness.md)\n"
	       "  --json FILE              result file (default results/<time>.json)\n"
	       "  --pin split|same         split: server on the first half of the allowed\n"
	       "                           CPUs, load generator on the rest (2 CPUs: 0 and\n"
	       "                           1); same: both on the first CPU\n"
	       "  --server-cpus LIST       the server's CPU set (\"0-3\"; replaces --pin);\n"
	       "                           worker i of -p workers=N runs on its i-th CPU\n"
	       "  --load-cpus LIST         the load generator's CPU set, one thread per CPU\n"
	       "                           (default: the allowed CPUs not in --server-cpus)\n"
	       "  --port P                 server port (default: any free port)\n"
	       "  --timeout D              watchdog per repetition (default: see docs)\n"
	       "  --stack SIZE             ax runtimes: usable stack bytes per task\n"
	       "                           (ax_rt_opts.stack_size, 16k..1g; default 64k)\n"
	       "  -v, --verbose            children's stderr to the terminal\n"
	       "  --measure instructions   count user-space instructions under callgrind\n"
	       "                           instead (axbench run --measure instructions -h)\n"
	       "  -h, --help               this help\n"
	       "exit status: 0 every cell ok or unsupported, 1 some cell failed (crash,\n"
	       "timeout, error, failed check), 2 bad input (nothing was run), 5 the\n"
	       "result file could not be written, 129/130/143 interrupted by SIGHUP/\n"
	       "SIGINT/SIGTERM (the file keeps the finished repetitions).\n"
	       "See docs/harness.md.\n");
}

static struct sweep *sweep_add(struct run *R, const char *name, const char *how,
			       bool bare_seconds, const char *list)
{
	for (size_t i = 0; i < R->nsweeps; i++)
		if (!strcmp(R->sweeps[i].name, name))
			axb_bad_input("parameter %s given twice (%s and %s)", name,
				      R->sweeps[i].how, how);
	if (R->nsweeps == MAX_SWEEPS)
		axb_bad_input("too many parameters");
	if (strlen(name) >= sizeof R->sweeps[0].name)
		axb_bad_input("parameter name too long: '%s'", name);
	struct sweep *s = &R->sweeps[R->nsweeps++];
	snprintf(s->name, sizeof s->name, "%s", name);
	s->how = how;
	s->bare_seconds = bare_seconds;
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		axb_bad_input("out of memory");
	s->copy = copy;
	if (!*copy || copy[strlen(copy) - 1] == ',' || *copy == ',' || strstr(copy, ",,"))
		axb_bad_input("malformed value list for %s: '%s'", name, list);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		bool dup = false;
		for (size_t k = 0; k < s->nvals; k++)
			dup |= !strcmp(s->vals[k], t);
		if (dup)
			continue;
		if (s->nvals == MAX_SWEEP_VALUES)
			axb_bad_input("too many values for %s", name);
		s->vals[s->nvals++] = t;
	}
	return s;
}

static void parse_opts(struct run *R, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "runtime", required_argument, NULL, 'r' },
		{ "scenario", required_argument, NULL, 's' },
		{ "param", required_argument, NULL, 'p' },
		{ "reps", required_argument, NULL, OPT_REPS },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "profile", required_argument, NULL, OPT_PROFILE },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "pin", required_argument, NULL, OPT_PIN },
		{ "server-cpus", required_argument, NULL, OPT_SERVER_CPUS },
		{ "load-cpus", required_argument, NULL, OPT_LOAD_CPUS },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "stack", required_argument, NULL, OPT_STACK },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	static const struct axs_param_def timeout_p = {
		"timeout", AXS_P_DURATION, "", "", 1000000, 86400000000000LL,
	};
	int c;
	char *end;
	long v;

	R->runtimes_arg = "epoll";
	R->scenarios_arg = "tcp_echo";
	R->profile = "default";
	R->pin_arg = "split";
	R->reps = 5;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":r:s:p:vh", lo, NULL)) != -1) {
		switch (c) {
		case 'r': R->runtimes_arg = optarg; break;
		case 's': R->scenarios_arg = optarg; break;
		case 'p': {
			const char *eq = strchr(optarg, '=');
			char name[64];
			if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof name)
				axb_bad_input("-p wants name=value[,value...], got '%s'", optarg);
			memcpy(name, optarg, (size_t)(eq - optarg));
			name[eq - optarg] = 0;
			sweep_add(R, name, "-p", false, eq + 1);
			break;
		}
		case OPT_REPS:
			if (R->reps_set)
				axb_bad_input("--reps given twice (%d and %s)", R->reps,
					      optarg);
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end)
				axb_bad_input("malformed --reps '%s'", optarg);
			if (v < 1 || v > 1000)
				axb_bad_input("--reps out of range: %ld (1..1000)", v);
			R->reps = (int)v;
			R->reps_set = true;
			break;
		case OPT_DURATION: sweep_add(R, "duration", "--duration", true, optarg); break;
		case OPT_WARMUP: sweep_add(R, "warmup", "--warmup", true, optarg); break;
		case OPT_PROFILE:
			if (strcmp(optarg, "quick") && strcmp(optarg, "full") &&
			    strcmp(optarg, "scaling") && strcmp(optarg, "default"))
				axb_bad_input("--profile must be quick, full, scaling or "
					      "default, not '%s'", optarg);
			R->profile = optarg;
			break;
		case OPT_JSON: R->json_path = optarg; break;
		case OPT_PIN:
			if (strcmp(optarg, "same") && strcmp(optarg, "split"))
				axb_bad_input("--pin must be same or split, not '%s'", optarg);
			R->pin_arg = optarg;
			break;
		case OPT_SERVER_CPUS: R->server_cpus_arg = optarg; break;
		case OPT_LOAD_CPUS: R->load_cpus_arg = optarg; break;
		case OPT_PORT:
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end)
				axb_bad_input("malformed --port '%s'", optarg);
			if (v < 1 || v > 65535)
				axb_bad_input("--port out of range: %ld (1..65535)", v);
			R->port = (int)v;
			break;
		case OPT_TIMEOUT: {
			int err = axs_param_parse(&timeout_p, optarg, true, &R->timeout_ns);
			if (err == -ERANGE)
				axb_bad_input("--timeout out of range: '%s' (1ms..24h)", optarg);
			if (err)
				axb_bad_input("malformed --timeout '%s' (e.g. 30s, 500ms)", optarg);
			break;
		}
		case OPT_STACK:
			R->stack_size = axb_stack_option(optarg);
			break;
		case 'v': R->verbose = true; break;
		case 'h':
		case OPT_HELP: run_usage(); exit(0);
		case ':': axb_bad_input("option %s needs a value", argv[optind - 1]);
		default: axb_bad_input("unknown option '%s' (see axbench run --help)",
				       argv[optind - 1]);
		}
	}
	if (optind < argc)
		axb_bad_input("unexpected argument '%s'", argv[optind]);
	R->quick = !strcmp(R->profile, "quick");
	if (R->quick && !R->reps_set)
		R->reps = 3;
}

static void resolve_impls(struct run *R)
{
	struct axb_rt_sel rsel, *sel = &rsel;
	memset(sel, 0, sizeof *sel);
	axb_runtimes_parse(NULL, R->runtimes_arg, AXB_RT_AVAILABLE, sel);
	R->skipped = json_array();
	for (size_t i = 0; i < sel->nskipped; i++)
		json_array_append_new(R->skipped, json_pack("{s:s, s:s}",
			"name", sel->skipped[i].name, "reason", sel->skipped[i].why));
	if (!sel->n)
		axb_bad_input("no runtime is available here");
	for (size_t i = 0; i < sel->n && R->nimpls < MAX_IMPLS; i++)
		R->impls[R->nimpls++] = sel->impls[i];
}

static void resolve_scenarios(struct run *R)
{
	if (!strcmp(R->scenarios_arg, "all")) {
		for (size_t i = 0; axs_scenarios[i] && R->nscs < MAX_SCENARIOS; i++)
			R->scs[R->nscs++] = axs_scenarios[i];
		return;
	}
	char *copy = strdup(R->scenarios_arg), *save = NULL;
	if (!copy || !*copy)
		axb_bad_input("--scenario needs at least one name");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		const struct axs_scenario *sc = axs_scenario_find(t);
		char hint[128];
		if (!sc)
			axb_bad_input("unknown scenario '%s' (see axbench list)%s", t,
				      axb_scenario_hint(t, hint, sizeof hint));
		bool dup = false;
		for (size_t i = 0; i < R->nscs; i++)
			dup |= R->scs[i] == sc;
		if (!dup && R->nscs < MAX_SCENARIOS)
			R->scs[R->nscs++] = sc;
	}
	free(copy);
}

/* Every sweep must name a parameter of some selected scenario, and each
 * of its values must parse and be in range for every scenario having it. */
static void validate_sweeps(struct run *R)
{
	for (size_t k = 0; k < R->nsweeps; k++) {
		struct sweep *s = &R->sweeps[k];
		bool used = false;
		for (size_t i = 0; i < R->nscs; i++) {
			const struct axs_scenario *sc = R->scs[i];
			int pi = axs_param_index(sc, s->name);
			if (pi < 0)
				continue;
			used = true;
			const struct axs_param_def *p = &sc->params[pi];
			for (size_t j = 0; j < s->nvals; j++) {
				int64_t v;
				int err = axs_param_parse(p, s->vals[j], s->bare_seconds, &v);
				if (err == -ERANGE) {
					char lo[64], hi[64];
					axs_param_format(p, p->min, lo, sizeof lo);
					axs_param_format(p, p->max, hi, sizeof hi);
					axb_bad_input("value %s=%s out of range for scenario %s (%s..%s)",
						      s->name, s->vals[j], sc->name, lo, hi);
				}
				if (err && p->type == AXS_P_ENUM)
					axb_bad_input("malformed value %s=%s (expected one of %.*s)",
						      s->name, s->vals[j],
						      (int)strcspn(p->help, ":"), p->help);
				if (err)
					axb_bad_input("malformed value %s=%s (expected %s%s)",
						      s->name, s->vals[j],
						      axs_param_type_name(p->type),
						      p->type == AXS_P_DURATION ? " with ns/us/ms/s"
						      : p->type == AXS_P_BYTES ? ", optional k/m/g" : "");
			}
		}
		if (!used) {
			const char *names[MAX_SCENARIOS * AXS_MAX_PARAMS];
			size_t nn = 0;
			char hint[128];
			for (size_t i = 0; i < R->nscs; i++)
				for (size_t j = 0; j < R->scs[i]->nparams &&
				     nn < sizeof names / sizeof names[0]; j++)
					names[nn++] = R->scs[i]->params[j].name;
			axb_did_you_mean(s->name, names, nn, hint, sizeof hint);
			if (R->nscs == 1)
				axb_bad_input("unknown parameter '%s' for scenario %s%s",
					      s->name, R->scs[0]->name, hint);
			axb_bad_input("unknown parameter '%s' (no selected scenario has it)%s",
				      s->name, hint);
		}
	}
}

/* A CPU set option: parsed, and every CPU in it allowed here. */
static void cpus_option(const char *opt, const char *arg,
			const struct axb_cpus *allowed, struct axb_cpus *out)
{
	char al[256];
	axb_cpus_format(allowed, al, sizeof al);
	int e = axb_cpus_parse(arg, out);
	if (e)
		axb_bad_input("%s: %s '%s' (want a CPU list such as 0-3,6)", opt,
			      e == -ERANGE ? "CPU number out of range in" : "malformed",
			      arg);
	for (int i = 0; i < out->n; i++)
		if (!axb_cpus_has(allowed, out->cpu[i]))
			axb_bad_input("%s: CPU %d is not one this process may use "
				      "(allowed: %s)", opt, out->cpu[i], al);
}

/* The CPU sets of the server and of the load generator: --server-cpus and
 * --load-cpus (either alone: the other gets the allowed CPUs it leaves),
 * else --pin: split gives the server the first half of the allowed CPUs
 * (at least one) and the load generator the rest, same puts both on the
 * first allowed CPU. */
static void resolve_pin(struct run *R)
{
	struct axb_cpus allowed;
	if (axb_cpus_allowed(&allowed) || allowed.n < 1)
		axb_bad_input("cannot read the CPU affinity mask");
	R->pin.mode = R->pin_arg;
	if (R->server_cpus_arg || R->load_cpus_arg) {
		R->pin.mode = "sets";
		if (R->server_cpus_arg)
			cpus_option("--server-cpus", R->server_cpus_arg, &allowed, &R->pin.server);
		if (R->load_cpus_arg)
			cpus_option("--load-cpus", R->load_cpus_arg, &allowed, &R->pin.load);
		struct axb_cpus *given = R->server_cpus_arg ? &R->pin.server : &R->pin.load;
		struct axb_cpus *rest = R->server_cpus_arg ? &R->pin.load : &R->pin.server;
		if (!R->server_cpus_arg || !R->load_cpus_arg) {
			rest->n = 0;
			for (int i = 0; i < allowed.n; i++)
				if (!axb_cpus_has(given, allowed.cpu[i]))
					rest->cpu[rest->n++] = allowed.cpu[i];
			if (!rest->n)
				axb_bad_input("%s takes every allowed CPU: give %s too "
					      "(the two sets may overlap)",
					      R->server_cpus_arg ? "--server-cpus" : "--load-cpus",
					      R->server_cpus_arg ? "--load-cpus" : "--server-cpus");
		}
	} else if (!strcmp(R->pin_arg, "split")) {
		if (allowed.n < 2)
			axb_bad_input("--pin split needs two CPUs and only one is allowed "
				      "here; use --pin same");
		int ns = allowed.n / 2;
		R->pin.server.n = R->pin.load.n = 0;
		for (int i = 0; i < allowed.n; i++) {
			struct axb_cpus *to = i < ns ? &R->pin.server : &R->pin.load;
			to->cpu[to->n++] = allowed.cpu[i];
		}
	} else {
		R->pin.server.n = R->pin.load.n = 1;
		R->pin.server.cpu[0] = R->pin.load.cpu[0] = allowed.cpu[0];
	}
	R->pin.server_cpu = R->pin.server.cpu[0];
	R->pin.load_cpu = R->pin.load.cpu[0];
}

/* The CPUs of both sets (for the machine's busy time), ascending. */
static void pinned_cpus(const struct run *R, struct axb_cpus *u)
{
	u->n = 0;
	for (int c = 0; c < AXB_MAX_CPUS; c++)
		if (axb_cpus_has(&R->pin.server, c) || axb_cpus_has(&R->pin.load, c))
			u->cpu[u->n++] = c;
}

static void check_port(struct run *R)
{
	if (!R->port)
		return;
	int fd = ax_tcp_listen("127.0.0.1", (uint16_t)R->port, 1, 0);
	if (fd == -EADDRINUSE)
		axb_bad_input("port %d is in use", R->port);
	if (fd < 0)
		axb_bad_input("cannot listen on port %d: %s", R->port, strerror(-fd));
	close(fd);
}

static void resolve_json(struct run *R)
{
	if (!R->json_path) {
		char when[64];
		int64_t t = axb_wall_ns();
		axb_utc_iso(t, when, sizeof when);
		if (mkdir("results", 0755) && errno != EEXIST)
			axb_bad_input("cannot create directory results: %s", strerror(errno));
		/* 2024-05-01T12:34:56Z -> results/20240501-123456.json, with -2,
		 * -3, ... when a run of the same second already wrote one */
		for (int k = 1; k < 1000; k++) {
			char suffix[16] = "";
			if (k > 1)
				snprintf(suffix, sizeof suffix, "-%d", k);
			snprintf(R->json_buf, sizeof R->json_buf,
				 "results/%.4s%.2s%.2s-%.2s%.2s%.2s%s.json", when, when + 5,
				 when + 8, when + 11, when + 14, when + 17, suffix);
			if (access(R->json_buf, F_OK))
				break;
		}
		R->json_path = R->json_buf;
	}
	char why[512];
	if (axb_claim_output(R->json_path, why, sizeof why))
		axb_bad_input("--json: %s", why);
}

/* ------------------------------------------------------------------ */
/* Planning                                                            */
/* ------------------------------------------------------------------ */

static int64_t default_timeout(const struct axb_cell *c)
{
	if (c->sc->kind == AXS_LOCAL)
		return 120 * INT64_C(1000000000);
	int d = axs_param_index(c->sc, "duration"), w = axs_param_index(c->sc, "warmup");
	int64_t phases = (d >= 0 ? c->values[d] : 5000000000LL) +
			 (w >= 0 ? c->values[w] : 1000000000LL);
	return 10 * INT64_C(1000000000) + 2 * phases;
}

static double estimate_s(const struct axb_cell *c)
{
	if (c->sc->kind == AXS_LOCAL)
		return 2.0;
	int d = axs_param_index(c->sc, "duration"), w = axs_param_index(c->sc, "warmup");
	return ((d >= 0 ? (double)c->values[d] : 5e9) +
		(w >= 0 ? (double)c->values[w] : 1e9)) / 1e9 + 0.3;
}

/* Split "a=1,2;b=3" (len bytes of text) into sweeps of scenario sc, for
 * the profile table (profile.c); an entry that does not fit the scenario
 * is a bug of the table, reported as bad input. Returns the count. */
static size_t profile_group(const struct run *R, const struct axs_scenario *sc,
			    const char *text, size_t len, struct sweep *out,
			    char **copy)
{
	size_t n = 0;
	char *save = NULL;
	*copy = strndup(text, len);
	if (!*copy)
		axb_bad_input("out of memory");
	for (char *t = strtok_r(*copy, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(t, '='), *s2 = NULL;
		if (!eq || n == MAX_SWEEPS)
			axb_bad_input("profile %s of %s: malformed entry '%s' (harness/common/profile.c)",
				      R->profile, sc->name, t);
		*eq = 0;
		int pi = axs_param_index(sc, t);
		if (pi < 0 || strlen(t) >= sizeof out[n].name)
			axb_bad_input("profile %s sets parameter '%s', which %s does not have "
				      "(harness/common/profile.c)", R->profile, t, sc->name);
		struct sweep *sw = &out[n++];
		memset(sw, 0, sizeof *sw);
		snprintf(sw->name, sizeof sw->name, "%s", t);
		sw->how = "--profile";
		for (char *v = strtok_r(eq + 1, ",", &s2); v; v = strtok_r(NULL, ",", &s2)) {
			int64_t x;
			if (sw->nvals == MAX_SWEEP_VALUES ||
			    axs_param_parse(&sc->params[pi], v, false, &x))
				axb_bad_input("profile %s: bad value %s=%s for %s "
					      "(harness/common/profile.c)", R->profile, t, v, sc->name);
			sw->vals[sw->nvals++] = v;
		}
		if (!sw->nvals)
			axb_bad_input("profile %s: no value for %s of %s (harness/common/profile.c)",
				      R->profile, t, sc->name);
	}
	return n;
}

/* Whether a cell of this implementation, scenario and label exists. */
static bool cell_exists(const struct run *R, const struct axb_impl *im,
			const struct axs_scenario *sc, const char *label)
{
	for (size_t i = 0; i < R->ncells; i++)
		if (R->cells[i].sc == sc && !strcmp(R->cells[i].impl.name, im->name) &&
		    !strcmp(R->cells[i].label, label))
			return true;
	return false;
}

/* The cells of one profile group of scenario sc: the group's sweeps, the
 * user's replacing any of the same name, as an odometer, times every
 * implementation. */
static void plan_group(struct run *R, const struct axs_scenario *sc,
		       const int64_t *base, struct sweep *gsw, size_t ng,
		       size_t *cap)
{
	size_t idx[2 * MAX_SWEEPS] = { 0 };
	int pidx[2 * MAX_SWEEPS];
	struct sweep *sw[2 * MAX_SWEEPS];
	size_t nsw = 0;
	for (size_t k = 0; k < ng; k++) {
		bool user = false;
		for (size_t u = 0; u < R->nsweeps; u++)
			user |= !strcmp(R->sweeps[u].name, gsw[k].name);
		if (user)
			continue;
		pidx[nsw] = axs_param_index(sc, gsw[k].name);
		sw[nsw++] = &gsw[k];
	}
	for (size_t k = 0; k < R->nsweeps; k++) {
		int pi = axs_param_index(sc, R->sweeps[k].name);
		if (pi < 0)
			continue;
		pidx[nsw] = pi;
		sw[nsw++] = &R->sweeps[k];
	}
	for (;;) {
		int64_t vals[AXS_MAX_PARAMS];
		char label[512];
		memcpy(vals, base, sizeof vals);
		for (size_t k = 0; k < nsw; k++)
			axs_param_parse(&sc->params[pidx[k]], sw[k]->vals[idx[k]],
					sw[k]->bare_seconds, &vals[pidx[k]]);
		axs_params_label(sc, vals, label, sizeof label);
		for (size_t ii = 0; ii < R->nimpls; ii++) {
			if (cell_exists(R, &R->impls[ii], sc, label))
				continue;
			if (R->ncells == *cap) {
				struct axb_cell *more = realloc(R->cells, 2 * *cap * sizeof *more);
				if (!more)
					axb_bad_input("out of memory");
				R->cells = more;
				*cap *= 2;
			}
			struct axb_cell *c = &R->cells[R->ncells++];
			memset(c, 0, sizeof *c);
			c->impl = R->impls[ii];
			c->sc = sc;
			memcpy(c->values, vals, sizeof vals);
			snprintf(c->label, sizeof c->label, "%s", label);
			c->runnable = axb_impl_supports(&c->impl, sc, c->why, sizeof c->why);
			int wi = axs_param_index(sc, "workers");
			if (c->runnable && wi >= 0 && vals[wi] > 1 &&
			    c->impl.kind != AXB_IMPL_AX) {
				c->runnable = false;
				snprintf(c->why, sizeof c->why, "%s %s has no "
					 "thread-per-core mode (workers > 1)",
					 c->impl.kind == AXB_IMPL_EXT ? "external target"
					 : "reference", c->impl.name);
			}
			if (c->runnable)
				c->runnable = axb_fault_supported(sc, vals, c->why, sizeof c->why);
			c->reps_planned = c->runnable ? R->reps : 0;
			c->timeout_ns = R->timeout_ns ? R->timeout_ns : default_timeout(c);
			c->est_s = estimate_s(c);
		}
		/* next combination */
		size_t k = nsw;
		while (k > 0) {
			k--;
			if (++idx[k] < sw[k]->nvals)
				break;
			idx[k] = 0;
			if (k == 0) {
				k = SIZE_MAX;
				break;
			}
		}
		if (nsw == 0 || k == SIZE_MAX)
			break;
	}
}

static void plan_cells(struct run *R)
{
	size_t cap = 16;
	R->cells = calloc(cap, sizeof *R->cells);
	if (!R->cells)
		axb_bad_input("out of memory");
	for (size_t si = 0; si < R->nscs; si++) {
		const struct axs_scenario *sc = R->scs[si];
		int64_t base[AXS_MAX_PARAMS];
		const char *bad = NULL;
		if (axs_param_defaults(sc, base, &bad))
			axb_bad_input("scenario %s: the default of %s does not parse",
				      sc->name, bad);
		const char *entry = axb_profile_entry(R->profile, sc->name,
						      R->pin.server.n);
		/* a scenario the table leaves out (test-only ones): the quick
		 * profile still shortens its phases */
		if (R->quick && !entry) {
			int d = axs_param_index(sc, "duration"), w = axs_param_index(sc, "warmup");
			if (d >= 0 && base[d] > 1000000000LL)
				base[d] = 1000000000LL;
			if (w >= 0 && base[w] > 200000000LL)
				base[w] = 200000000LL;
		}
		/* each '|'-separated group of the profile's entry */
		const char *p = entry ? entry : "";
		for (;;) {
			const char *bar = strchr(p, '|');
			size_t len = bar ? (size_t)(bar - p) : strlen(p);
			struct sweep gsw[MAX_SWEEPS];
			char *copy = NULL;
			size_t ng = profile_group(R, sc, p, len, gsw, &copy);
			plan_group(R, sc, base, gsw, ng, &cap);
			free(copy);
			if (!bar)
				break;
			p = bar + 1;
		}
	}
	size_t runnable = 0;
	for (size_t i = 0; i < R->ncells; i++)
		runnable += R->cells[i].runnable;
	if (!runnable)
		axb_bad_input("nothing to run: %s", R->ncells ? R->cells[0].why
							      : "no cell");
}

/* ------------------------------------------------------------------ */
/* Running one repetition                                              */
/* ------------------------------------------------------------------ */

struct argv_buf {
	char *v[2 * AXS_MAX_PARAMS + 40];
	size_t n;
};

static void av_add(struct argv_buf *a, const char *s)
{
	if (a->n + 1 < sizeof a->v / sizeof a->v[0])
		a->v[a->n++] = strdup(s);
	a->v[a->n] = NULL;
}

static void av_addf(struct argv_buf *a, const char *fmt, long x)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, fmt, x);
	av_add(a, tmp);
}

static void av_free(struct argv_buf *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	a->n = 0;
}

/* The arguments common to every child of cell c. */
static void av_cell(struct argv_buf *a, struct run *R, const struct axb_cell *c,
		    const char *sub, const struct axb_cpus *cpus)
{
	char cl[1024];
	av_add(a, "axbench");
	av_add(a, sub);
	av_add(a, "--impl");
	av_add(a, c->impl.name);
	av_add(a, "--scenario");
	av_add(a, c->sc->name);
	axb_cpus_format(cpus, cl, sizeof cl);
	av_add(a, "--cpus");
	av_add(a, cl);
	av_add(a, "--result-fd");
	av_add(a, "3");
	if (R->quick)
		av_add(a, "--quick");
	if (R->stack_size) {
		av_add(a, "--stack");
		av_addf(a, "%ld", (long)R->stack_size);
	}
	for (size_t i = 0; i < c->sc->nparams; i++) {
		char v[64], pv[160];
		axs_param_format(&c->sc->params[i], c->values[i], v, sizeof v);
		snprintf(pv, sizeof pv, "%s=%s", c->sc->params[i].name, v);
		av_add(a, "-p");
		av_add(a, pv);
	}
}

/* Outcome of one child, for the classification. */
static void child_outcome(struct axb_child *c, struct axb_outcome *o)
{
	memset(o, 0, sizeof *o);
	o->role = c->role;
	o->spawned = c->pid > 0;
	o->exited = c->exited;
	o->wstatus = c->wstatus;
	o->killed = c->killed;
	o->kill_reason = c->kill_reason;
	o->result = axb_child_event(c, "result");
	o->error = axb_child_event(c, "error");
	json_t *ready = axb_child_event(c, "ready");
	o->ready = ready != NULL;
	json_decref(ready);
	o->bad_output = axb_child_bad_output(c);
	o->stderr_tail = axb_child_stderr(c, STDERR_TAIL);
}

static void outcome_free(struct axb_outcome *o)
{
	json_decref(o->result);
	json_decref(o->error);
	free(o->bad_output);
	free(o->stderr_tail);
}

/* Run repetition `rep` of a network cell. Returns false when interrupted. */
static bool run_net(struct run *R, struct axb_cell *c, struct axb_rep_in *in)
{
	struct argv_buf a = { .n = 0 };
	struct axb_child srv, cli;
	int64_t deadline = axb_mono_ns() + c->timeout_ns;
	bool interrupted = false;
	int r;

	axb_netc_read(&in->net0);
	axb_child_none(&cli);
	av_cell(&a, R, c, "__server", &R->pin.server);
	if (R->port) {
		av_add(&a, "--port");
		av_addf(&a, "%ld", R->port);
	}
	r = axb_child_spawn(&srv, "server", a.v, !R->verbose);
	av_free(&a);
	if (r) {
		in->spawn_error = r;
		return true;
	}
	struct axb_child *one[1] = { &srv };
	r = axb_child_pump(one, 1, deadline, axb_child_ready_or_exited, &srv);
	if (r == -EINTR)
		goto interrupted;
	if (r == -ETIMEDOUT)
		axb_child_kill(&srv, "the server did not get ready before the timeout");
	json_t *ready = axb_child_event(&srv, "ready");
	if (ready && !srv.exited) {
		int port = (int)json_integer_value(json_object_get(ready, "port"));
		char target[64];
		snprintf(target, sizeof target, "127.0.0.1:%d", port);
		av_cell(&a, R, c, "__load", &R->pin.load);
		av_add(&a, "--target");
		av_add(&a, target);
		av_add(&a, "--server-pid");
		av_addf(&a, "%ld", srv.pid);
		r = axb_child_spawn(&cli, "loadgen", a.v, !R->verbose);
		av_free(&a);
		if (r) {
			in->spawn_error = r;
			axb_child_kill(&srv, "aborted: the load generator could not start");
		} else {
			struct axb_child *two[2] = { &srv, &cli };
			r = axb_child_pump(two, 2, deadline, NULL, NULL);
			if (r == -EINTR) {
				json_decref(ready);
				goto interrupted;
			}
			if (r == -ETIMEDOUT) {
				axb_child_kill(&cli, "the load generator exceeded the timeout");
				axb_child_kill(&srv, "the cell exceeded the timeout");
			} else if (srv.exited && !cli.exited) {
				/* the server died under load: nothing left to measure */
				axb_child_kill(&cli, NULL);
				in->server_died = true;
			}
		}
	}
	json_decref(ready);
	if (!srv.exited) {
		/* ask it to stop, as a person would with Ctrl-C */
		kill(srv.pid, SIGTERM);
		int64_t grace = STOP_GRACE_NS < c->timeout_ns ? STOP_GRACE_NS : c->timeout_ns;
		r = axb_child_pump(one, 1, axb_mono_ns() + grace, axb_child_exited, &srv);
		if (r == -EINTR)
			goto interrupted;
		if (r == -ETIMEDOUT)
			axb_child_kill(&srv, "the server did not stop after SIGTERM");
	}
	axb_child_kill(&cli, NULL);
	axb_child_finish(&srv);
	if (cli.pid > 0)
		axb_child_finish(&cli);
	axb_netc_read(&in->net1);
	child_outcome(&srv, &in->server);
	if (cli.pid > 0)
		child_outcome(&cli, &in->loadgen);
	goto free_children;

interrupted:
	interrupted = true;
	axb_child_kill(&srv, "interrupted");
	axb_child_kill(&cli, "interrupted");
	axb_child_finish(&srv);
	if (cli.pid > 0)
		axb_child_finish(&cli);
free_children:
	axb_child_free(&srv);
	axb_child_free(&cli);
	return !interrupted;
}

/* Run repetition `rep` of a local cell. Returns false when interrupted. */
static bool run_local(struct run *R, struct axb_cell *c, struct axb_rep_in *in)
{
	struct argv_buf a = { .n = 0 };
	struct axb_child ch;
	bool ok = true;

	/* a local scenario is single-threaded: the server set's first CPU */
	static struct axb_cpus first;
	first.n = 1;
	first.cpu[0] = R->pin.server_cpu;
	av_cell(&a, R, c, "__local", &first);
	int r = axb_child_spawn(&ch, "local", a.v, !R->verbose);
	av_free(&a);
	if (r) {
		in->spawn_error = r;
		return true;
	}
	struct axb_child *one[1] = { &ch };
	r = axb_child_pump(one, 1, axb_mono_ns() + c->timeout_ns, axb_child_exited, &ch);
	if (r == -ETIMEDOUT)
		axb_child_kill(&ch, "the scenario exceeded the timeout");
	if (r == -EINTR) {
		axb_child_kill(&ch, "interrupted");
		ok = false;
	}
	axb_child_finish(&ch);
	child_outcome(&ch, &in->local);
	axb_child_free(&ch);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Progress                                                            */
/* ------------------------------------------------------------------ */

static void fmt_secs(double s, char *buf, size_t n)
{
	if (s < 60)
		snprintf(buf, n, "%.1fs", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static void progress(struct run *R, size_t i, size_t n, const struct axb_cell *c,
		     int rep, double done_est, double left_est)
{
	char el[32], eta[32];
	double elapsed = (double)(axb_mono_ns() - R->t_start) / 1e9;
	/* scale the remaining estimate by how the estimates fared so far */
	double ratio = done_est > 0 ? elapsed / done_est : 1.0;
	fmt_secs(elapsed, el, sizeof el);
	fmt_secs(left_est * ratio, eta, sizeof eta);
	bool tty = isatty(2);
	fprintf(stderr, "%scell %zu/%zu  %s %s %s  rep %d/%d  elapsed %s  ETA %s%s",
		tty ? "\r\033[K" : "", i, n, c->impl.name, c->sc->name, c->label,
		rep, R->reps, el, eta, tty ? "" : "\n");
	fflush(stderr);
}

/* ------------------------------------------------------------------ */
/* The command                                                         */
/* ------------------------------------------------------------------ */

static int write_doc(struct run *R)
{
	int err = axb_doc_write(R->json_path, R->doc,
				JSON_INDENT(1) | JSON_REAL_PRECISION(10));
	if (err)
		axb_err("cannot write %s: %s", R->json_path, strerror(-err));
	return err;
}

/* `axbench run` measuring time. */
static int run_timed(int argc, char **argv)
{
	struct run *R = calloc(1, sizeof *R);
	if (!R)
		axb_bad_input("out of memory");

	/* validate everything before running anything */
	parse_opts(R, argc, argv);
	resolve_impls(R);
	resolve_scenarios(R);
	validate_sweeps(R);
	resolve_pin(R);
	check_port(R);
	plan_cells(R);
	resolve_json(R);

	if (axb_proc_init())
		axb_bad_input("cannot install signal handlers");
	axb_raise_nofile();
	R->t_start = axb_mono_ns();
	double la[3];
	axb_loadavg(la);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (la[0] > 0.5 * (double)(ncpu > 0 ? ncpu : 1))
		axb_err("warning: load average %.1f on %ld CPUs: other work is "
			"running, results will be noisy", la[0], ncpu);
	for (size_t i = 0; i < json_array_size(R->skipped); i++) {
		json_t *s = json_array_get(R->skipped, i);
		axb_err("note: skipping %s: unavailable (%s)",
			json_string_value(json_object_get(s, "name")),
			json_string_value(json_object_get(s, "reason")));
	}

	/* the document, written once before the first cell */
	json_t *config = json_object();
	json_t *rts = json_array(), *scs = json_array(), *params = json_object();
	for (size_t i = 0; i < R->nimpls; i++)
		json_array_append_new(rts, json_string(R->impls[i].name));
	for (size_t i = 0; i < R->nscs; i++)
		json_array_append_new(scs, json_string(R->scs[i]->name));
	for (size_t k = 0; k < R->nsweeps; k++) {
		json_t *vals = json_array();
		for (size_t j = 0; j < R->sweeps[k].nvals; j++)
			json_array_append_new(vals, json_string(R->sweeps[k].vals[j]));
		json_object_set_new(params, R->sweeps[k].name, vals);
	}
	json_object_set_new(config, "runtimes", rts);
	json_object_set_new(config, "skipped_runtimes", json_incref(R->skipped));
	json_object_set_new(config, "scenarios", scs);
	json_object_set_new(config, "params", params);
	json_object_set_new(config, "reps", json_integer(R->reps));
	json_object_set_new(config, "profile", json_string(R->profile));
	json_t *pp = json_object();
	for (size_t i = 0; i < R->nscs; i++) {
		const char *e = axb_profile_entry(R->profile, R->scs[i]->name,
						  R->pin.server.n);
		json_object_set_new(pp, R->scs[i]->name, e ? json_string(e) : json_null());
	}
	json_object_set_new(config, "profile_params", pp);
	json_object_set_new(config, "pin", json_string(R->pin.mode));
	json_object_set_new(config, "server_cpus", axb_cpus_json(&R->pin.server));
	json_object_set_new(config, "load_cpus", axb_cpus_json(&R->pin.load));
	json_object_set_new(config, "port", R->port ? json_integer(R->port) : json_null());
	json_object_set_new(config, "timeout_s", R->timeout_ns
			    ? json_real((double)R->timeout_ns / 1e9) : json_null());
	json_object_set_new(config, "stack_size", R->stack_size
			    ? json_integer((json_int_t)R->stack_size) : json_null());
	json_t *env = axb_environment(&R->pin);
	json_object_set_new(env, "targets", axb_env_targets(R->impls, R->nimpls));
	R->doc = axb_result_doc_new(axb_command_json(argc, argv), config, env);
	json_t *cells = json_object_get(R->doc, "cells");
	for (size_t i = 0; i < R->ncells; i++) {
		struct axb_cell *c = &R->cells[i];
		c->obj = axb_cell_new(c);
		json_array_append_new(cells, c->obj);
	}
	axb_result_doc_update(R->doc, R->cells, R->ncells, "running");
	if (write_doc(R))
		return AXB_EXIT_WRITE;

	/* interleaved: repetition 1 of every cell, then repetition 2, ... */
	size_t total = 0, done = 0;
	double est_total = 0, est_done = 0;
	for (size_t i = 0; i < R->ncells; i++)
		if (R->cells[i].runnable) {
			total += (size_t)R->reps;
			est_total += R->cells[i].est_s * R->reps;
		}
	bool interrupted = false;
	static struct axb_cpus pinned;
	pinned_cpus(R, &pinned);
	for (int rep = 1; rep <= R->reps && !interrupted; rep++) {
		for (size_t i = 0; i < R->ncells && !interrupted; i++) {
			struct axb_cell *c = &R->cells[i];
			if (!c->runnable)
				continue;
			progress(R, done + 1, total, c, rep, est_done, est_total - est_done);
			struct axb_rep_in in;
			memset(&in, 0, sizeof in);
			in.rep = rep;
			in.pin = &R->pin;
			int64_t t0 = axb_mono_ns(), w0 = axb_wall_ns();
			axb_cpuload_read(&in.load0, &pinned);
			bool ok = c->sc->kind == AXS_NET ? run_net(R, c, &in)
							   : run_local(R, c, &in);
			axb_cpuload_read(&in.load1, &pinned);
			in.wall_s = (double)(axb_mono_ns() - t0) / 1e9;
			in.started_wall_ns = w0;
			if (!ok) {
				interrupted = true;
			} else {
				json_t *repj = axb_rep_build(c, &in);
				const char *st = json_string_value(json_object_get(repj, "status"));
				if (strcmp(st, "ok")) {
					if (isatty(2))
						fputc('\n', stderr);
					axb_err("%s %s %s rep %d: %s: %s", c->impl.name,
						c->sc->name, c->label, rep, st,
						json_string_value(json_object_get(repj, "message")));
					const char *role = json_string_value(json_object_get(repj, "role"));
					const char *tail = role ? json_string_value(json_object_get(
						json_object_get(repj, "stderr"), role)) : NULL;
					if (tail && *tail)
						fprintf(stderr, "%s%s", tail,
							tail[strlen(tail) - 1] == '\n' ? "" : "\n");
				}
				axb_cell_add_rep(c, repj);
				done++;
				est_done += c->est_s;
			}
			outcome_free(&in.server);
			outcome_free(&in.loadgen);
			outcome_free(&in.local);
			axb_result_doc_update(R->doc, R->cells, R->ncells,
					      interrupted ? "interrupted" : "running");
			write_doc(R);
		}
	}
	if (isatty(2))
		fputc('\n', stderr);
	axb_result_doc_update(R->doc, R->cells, R->ncells,
			      interrupted ? "interrupted" : "complete");
	int werr = write_doc(R);
	axb_summary_print(stdout, R->cells, R->ncells);
	if (werr)
		axb_err("results NOT written: %s keeps its previous version (%s)",
			R->json_path, strerror(-werr));
	else
		fprintf(stderr, "axbench: results in %s%s\n", R->json_path,
			interrupted ? " (interrupted)" : "");

	int rc = 0;
	for (size_t i = 0; i < R->ncells; i++) {
		const char *st = json_string_value(json_object_get(R->cells[i].obj, "status"));
		if (strcmp(st, "ok") && strcmp(st, "unsupported") && strcmp(st, "pending"))
			rc = 1;
	}
	if (interrupted)
		rc = 128 + axb_proc_interrupted();
	if (werr)
		rc = AXB_EXIT_WRITE;
	for (size_t k = 0; k < R->nsweeps; k++)
		free(R->sweeps[k].copy);
	json_decref(R->doc);
	json_decref(R->skipped);
	free(R->cells);
	free(R);
	return rc;
}

int axb_cmd_run(int argc, char **argv)
{
	/* --measure instructions is its own machinery (instr.c);
	 * --measure time is the default and needs nothing */
	for (int i = 1; i < argc; i++) {
		const char *m = NULL;
		int n = 1;
		if (!strcmp(argv[i], "--measure") && i + 1 < argc) {
			m = argv[i + 1];
			n = 2;
		} else if (!strncmp(argv[i], "--measure=", 10)) {
			m = argv[i] + 10;
		}
		if (!m)
			continue;
		if (!strcmp(m, "instructions"))
			return axb_cmd_instr(argc, argv);
		if (strcmp(m, "time"))
			axb_bad_input("--measure must be time or instructions, not '%s'", m);
		memmove(&argv[i], &argv[i + n], (size_t)(argc - i - n + 1) * sizeof *argv);
		argc -= n;
		i--;
	}
	return run_timed(argc, argv);
}
