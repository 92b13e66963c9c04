/* child.c - option parsing shared by the child processes (__server,
 * __load, __local) and the standalone serve / load commands, parameter
 * resolution for one scenario, and the test-only fault hook. */
#include "proc.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_IMPL = 256, OPT_SCENARIO, OPT_CPU, OPT_PORT, OPT_RESULT_FD,
	OPT_SERVER_PID, OPT_MESSAGES, OPT_CLOCK_FREE, OPT_TARGET, OPT_JSON, OPT_QUICK, OPT_STACK, OPT_DURATION,
	OPT_WARMUP, OPT_HELP, OPT_CPUS, OPT_THREAD_HISTS, OPT_SERVER_SIGNALS, OPT_WAIT,
	OPT_NAME,
};

static long parse_long(const char *cmd, const char *opt, const char *v,
		       long lo, long hi)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end)
		axb_bad_input("%s: malformed value for %s: '%s'", cmd, opt, v);
	if (x < lo || x > hi)
		axb_bad_input("%s: %s out of range: %ld (%ld..%ld)", cmd, opt,
			      x, lo, hi);
	return x;
}

void axb_child_opts_parse(int argc, char **argv, const char *cmd,
			  struct axb_child_opts *o)
{
	static const struct option lo[] = {
		{ "impl", required_argument, NULL, OPT_IMPL },
		{ "runtime", required_argument, NULL, OPT_IMPL },
		{ "scenario", required_argument, NULL, OPT_SCENARIO },
		{ "cpu", required_argument, NULL, OPT_CPU },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "thread-histograms", no_argument, NULL, OPT_THREAD_HISTS },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "result-fd", required_argument, NULL, OPT_RESULT_FD },
		{ "server-pid", required_argument, NULL, OPT_SERVER_PID },
		{ "server-signals", no_argument, NULL, OPT_SERVER_SIGNALS },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "messages", required_argument, NULL, OPT_MESSAGES },
		{ "clock-free", no_argument, NULL, OPT_CLOCK_FREE },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "json", required_argument, NULL, OPT_JSON },
		{ "quick", no_argument, NULL, OPT_QUICK },
		{ "stack", required_argument, NULL, OPT_STACK },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "param", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof *o);
	o->cpu = -1;
	o->result_fd = 1;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":p:h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_IMPL: o->impl = optarg; break;
		case OPT_SCENARIO: o->scenario = optarg; break;
		case OPT_CPU:
			o->cpu = (int)parse_long(cmd, "--cpu", optarg, 0, AXB_MAX_CPUS - 1);
			o->cpus.n = 1;
			o->cpus.cpu[0] = o->cpu;
			break;
		case OPT_CPUS:
			if (axb_cpus_parse(optarg, &o->cpus))
				axb_bad_input("%s: malformed --cpus '%s' (want a CPU list "
					      "such as 0-3,6, CPUs 0..%d)", cmd, optarg,
					      AXB_MAX_CPUS - 1);
			o->cpu = o->cpus.cpu[0];
			break;
		case OPT_THREAD_HISTS: o->thread_hists = true; break;
		case OPT_SERVER_SIGNALS: o->server_signals = true; break;
		case OPT_WAIT: o->wait = optarg; break;
		case OPT_NAME: o->name = optarg; break;
		case OPT_PORT: o->port = (int)parse_long(cmd, "--port", optarg, 1, 65535); break;
		case OPT_RESULT_FD: o->result_fd = (int)parse_long(cmd, "--result-fd", optarg, 1, 1 << 20); break;
		case OPT_SERVER_PID: o->server_pid = (pid_t)parse_long(cmd, "--server-pid", optarg, 1, 1L << 30); break;
		case OPT_MESSAGES: o->messages = parse_long(cmd, "--messages", optarg, 1, 1L << 40); break;
		case OPT_TARGET: o->target = optarg; break;
		case OPT_JSON: o->json_path = optarg; break;
		case OPT_QUICK: o->quick = true; break;
		case OPT_STACK: o->stack_size = axb_stack_option(optarg); break;
		case OPT_CLOCK_FREE: o->clock_free = true; break;
		case OPT_DURATION: o->duration = optarg; break;
		case OPT_WARMUP: o->warmup = optarg; break;
		case 'p':
			if (o->npv == AXS_MAX_PARAMS)
				axb_bad_input("%s: too many -p options", cmd);
			o->pv[o->npv++] = optarg;
			break;
		case 'h':
		case OPT_HELP:
			if (!strcmp(cmd, "load"))
				printf("usage: axbench load --scenario S --target HOST:PORT [options]\n"
				       "The load generator alone, against any server speaking the scenario's\n"
				       "protocol (docs/protocols.md). Prints its result object on stdout.\n"
				       "  --target HOST:PORT   the server (a name or an address; [V6]:PORT)\n"
				       "  --scenario S         a network scenario (axbench list)\n"
				       "  -p name=value        a scenario parameter (one value)\n"
				       "  --duration D, --warmup D  the phases (a bare number: seconds)\n"
				       "  --cpu N, --cpus LIST pin the load generator; with a list, one load\n"
				       "                       thread per CPU, connections and the open-loop\n"
				       "                       rate split among them\n"
				       "  --thread-histograms  each load thread's histogram in the result too\n"
				       "  --wait D             wait up to D for the server to accept connections\n"
				       "                       (default 10s; 0: do not wait)\n"
				       "  --server-pid PID     the server's process (on this host): its CPU time\n"
				       "                       (every thread and child) and memory are read from\n"
				       "                       /proc over the measured phase; it must listen on\n"
				       "                       the target's port. Nothing is sent to it\n"
				       "  --server-signals     also mark the measured phase to it with SIGUSR1 and\n"
				       "                       SIGUSR2 (only for servers that handle them, such as\n"
				       "                       axbench serve; most programs die of them)\n"
				       "  --messages N         exactly N requests in a closed loop from the first\n"
				       "                       one (no warm-up, no time limit but 600 s); fewer\n"
				       "                       answers fail the check\n"
				       "  --json FILE          also write a result file (the schema of axbench run,\n"
				       "                       one cell) that compare, report and record accept\n"
				       "  --name NAME          the implementation's name in that file (default\n"
				       "                       external)\n"
				       "exit status: 0 the check passed, 1 the check failed or nothing was\n"
				       "answered (the reason on stderr), 2 bad input (also a --server-pid\n"
				       "that does not listen on the target's port), 5 --json FILE could\n"
				       "not be written.\n"
				       "see docs/harness.md and docs/targets.md\n");
			else
				printf("usage: axbench %s --runtime R --scenario S [-p name=value]... [--port P]\n"
				       "                     [--cpu N | --cpus LIST]\n"
				       "The server side of a network scenario alone, on 127.0.0.1, until\n"
				       "Ctrl-C or SIGTERM; then its result object on stdout. With -p workers=N\n"
				       "(thread-per-core), N runtimes on N threads, worker i pinned to the\n"
				       "i-th CPU of --cpus (round robin).\n"
				       "exit status: 0 served and stopped cleanly, 1 the server failed, 2 bad\n"
				       "input (a port in use, an unknown runtime or scenario).\n"
				       "see docs/harness.md\n", cmd);
			exit(0);
		case ':':
			axb_bad_input("%s: option %s needs a value", cmd, argv[optind - 1]);
		default:
			axb_bad_input("%s: unknown option '%s'", cmd, argv[optind - 1]);
		}
	}
	if (optind < argc)
		axb_bad_input("%s: unexpected argument '%s'", cmd, argv[optind]);
}

/* Set parameter `name` of sc from text, exiting on bad input. */
static void set_value(const struct axs_scenario *sc, int64_t *values,
		      const char *name, const char *text, bool bare_seconds,
		      const char *how)
{
	int i = axs_param_index(sc, name);
	if (i < 0) {
		const char *names[AXS_MAX_PARAMS];
		char hint[128];
		size_t n = 0;
		for (; n < sc->nparams && n < AXS_MAX_PARAMS; n++)
			names[n] = sc->params[n].name;
		axb_bad_input("unknown parameter '%s' for scenario %s (%s)%s", name,
			      sc->name, how,
			      axb_did_you_mean(name, names, n, hint, sizeof hint));
	}
	if (strchr(text, ','))
		axb_bad_input("parameter %s takes one value here, not a list: '%s'",
			      name, text);
	int err = axs_param_parse(&sc->params[i], text, bare_seconds, &values[i]);
	if (err == -ERANGE)
		axb_bad_input("value %s=%s out of range for scenario %s (%lld..%lld)",
			      name, text, sc->name, (long long)sc->params[i].min,
			      (long long)sc->params[i].max);
	if (err && sc->params[i].type == AXS_P_ENUM)
		axb_bad_input("malformed value %s=%s (expected one of %.*s)", name, text,
			      (int)strcspn(sc->params[i].help, ":"), sc->params[i].help);
	if (err)
		axb_bad_input("malformed value %s=%s (expected %s)", name, text,
			      axs_param_type_name(sc->params[i].type));
}

const struct axs_scenario *axb_child_values(const struct axb_child_opts *o,
					   int64_t *values)
{
	if (!o->scenario)
		axb_bad_input("--scenario is required");
	const struct axs_scenario *sc = axs_scenario_find(o->scenario);
	char hint[128];
	if (!sc)
		axb_bad_input("unknown scenario '%s' (see axbench list)%s", o->scenario,
			      axb_scenario_hint(o->scenario, hint, sizeof hint));
	const char *bad = NULL;
	if (axs_param_defaults(sc, values, &bad))
		axb_bad_input("scenario %s: default of parameter %s does not parse",
			      sc->name, bad);
	if (o->duration)
		set_value(sc, values, "duration", o->duration, true, "--duration");
	if (o->warmup)
		set_value(sc, values, "warmup", o->warmup, true, "--warmup");
	for (size_t k = 0; k < o->npv; k++) {
		char name[64];
		const char *eq = strchr(o->pv[k], '=');
		if (!eq || eq == o->pv[k] || (size_t)(eq - o->pv[k]) >= sizeof name)
			axb_bad_input("-p wants name=value, got '%s'", o->pv[k]);
		memcpy(name, o->pv[k], (size_t)(eq - o->pv[k]));
		name[eq - o->pv[k]] = 0;
		set_value(sc, values, name, eq + 1, false, "-p");
	}
	return sc;
}

/* Write text on the result descriptor and exit with status st at once. */
static _Noreturn void test_fault_exit(int result_fd, const char *text, int st)
{
	size_t n = strlen(text);
	if (n && write(result_fd, text, n) < 0)
		st = 98;
	_exit(st);
}

bool axb_test_fault(const char *role, const char *impl, int result_fd)
{
	const char *spec = getenv("AXBENCH_TEST_FAULT");
	char buf[256], *save = NULL;

	if (!spec || !*spec)
		return false;
	snprintf(buf, sizeof buf, "%s", spec);
	/* comma-separated "role:fault[@impl]" */
	for (char *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		if (!colon)
			continue;
		*colon = 0;
		char *fault = colon + 1;
		char *at = strchr(fault, '@');
		if (at) {
			*at = 0;
			if (strcmp(at + 1, impl ? impl : ""))
				continue;
		}
		if (strcmp(tok, role))
			continue;
		if (!strcmp(fault, "crash")) {
			/* the default action, not a sanitizer's handler */
			signal(SIGSEGV, SIG_DFL);
			raise(SIGSEGV);
			_exit(99);
		}
		if (!strcmp(fault, "hang")) {
			sigset_t all;
			sigfillset(&all);
			pthread_sigmask(SIG_BLOCK, &all, NULL);
			for (;;)
				pause();
		}
		if (!strcmp(fault, "fail"))
			return true;
		/* what a child with a broken result writer could leave */
		if (!strcmp(fault, "garbage"))
			test_fault_exit(result_fd, "this is not JSON\n", 0);
		if (!strcmp(fault, "truncated"))
			test_fault_exit(result_fd, "{\"event\":\"result\",\"check\":{\"pas", 0);
		if (!strcmp(fault, "noresult"))
			test_fault_exit(result_fd, "", 0);
		if (!strcmp(fault, "error"))
			test_fault_exit(result_fd, "{\"event\":\"error\",\"error\":"
					"\"AXBENCH_TEST_FAULT reported an error\"}\n", 1);
	}
	return false;
}
