/*
 * instr.c - instructions mode: user-space scenarios run under valgrind's
 * callgrind, counting the instructions of a fixed, clock-free workload per
 * operation. Unlike seconds, these counts do not move with machine noise,
 * so a CI gate on a shared runner can use them (docs/ci.md).
 *
 * `axbench run --measure instructions [--runtime R,...|all]
 *  [--scenario S,...] [--reps N] [-p name=value] [--json FILE]` runs, for
 * each cell and repetition, `valgrind --tool=callgrind --collect-atstart=no
 * /proc/self/exe __instr ...`: only the scenario's `instr` workload is
 * counted (collection is toggled around it in axb_instr_region), the
 * runtime is created with hog detection off and count-only scheduler
 * ticks, so no decision reads the clock. It counts user space only: the
 * runtime's overhead, not the kernel's I/O cost.
 *
 * Network scenarios (tcp_echo, http_plaintext, rpc_fanout, ...) are
 * counted on their servers, ax runtimes and reference implementations
 * alike: the server runs whole under callgrind while the ordinary load
 * generator (a separate process, not counted) sends a fixed number of
 * requests in a closed loop (`__load --messages N`), then the server is
 * stopped. Two runs, with N1 and N2 = 5 N1 requests, cancel what does not
 * depend on the count (start-up, accepting the connections, shutdown):
 * instructions per message = (I(N2) - I(N1)) / (N2 - N1). The same client
 * counts for every server, so the figures compare servers, not clients.
 *
 * A scenario may name further workloads (`--scenario timers:fire`), which
 * the native versions that do the same work run too. `--profile-functions
 * DIR` keeps callgrind's files and has reports/axreports/functions.py
 * write the instructions per operation of each function (docs/profiles.md).
 */
#include "commands.h"
#include "proc.h"
#include "results.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define INSTR_MAX_CELLS 64

/* Collection is switched on and off around the workload with callgrind's
 * client requests rather than --toggle-collect: tasks switch stacks, and
 * callgrind's function-entry tracking does not follow a context switch. */
#if defined(AX_HAVE_VALGRIND)
#include <valgrind/callgrind.h>
static void instr_collect_toggle(void)
{
	CALLGRIND_TOGGLE_COLLECT;
}
static const bool instr_supported = true;
#else
static void instr_collect_toggle(void)
{
}
static const bool instr_supported = false;
#endif

/* ------------------------------------------------------------------ */
/* the child: `axbench __instr --runtime R --scenario S [-p ...]`       */
/* ------------------------------------------------------------------ */

struct instr_job {
	const struct axs_scenario *sc;
	int64_t (*work)(struct axs_ctx *ctx);   /* an ax workload, or NULL */
	const struct axr_ref *ref;              /* else a native version's */
	struct axs_ctx *ctx;
	int64_t ops;
};

/* The only function callgrind counts (with everything it calls). */
__attribute__((noinline)) int64_t axb_instr_region(struct instr_job *j);
__attribute__((noinline)) int64_t axb_instr_region(struct instr_job *j)
{
	int64_t ops;
	instr_collect_toggle();
	if (j->work) {
		ops = j->work(j->ctx);
	} else {
		intptr_t r = j->ref->run_local(j->ctx);
		ops = r < 0 ? (int64_t)r : 0;
	}
	instr_collect_toggle();
	return ops;
}

static intptr_t instr_main(void *arg)
{
	struct instr_job *j = arg;
	j->ops = axb_instr_region(j);
	return 0;
}

/* Split "SCENARIO:WORKLOAD" in place: returns the workload name, or NULL
 * when the name has no colon. */
static char *instr_split_workload(char *name)
{
	char *colon = strchr(name, ':');
	if (!colon)
		return NULL;
	*colon = 0;
	return colon + 1;
}

int axb_cmd_instr_child(int argc, char **argv)
{
	struct axb_child_opts o;
	int64_t values[AXS_MAX_PARAMS];
	struct axs_out *out = calloc(1, sizeof *out);
	struct axs_ctx ctx;
	struct instr_job j;
	struct axb_impl impl;
	char scname[128];
	ax_rt *rt = NULL;
	int r = 0;

	axb_child_opts_parse(argc, argv, "__instr", &o);
	if (!out)
		return 1;
	axs_out_init(out);
	const char *alt_name = NULL;
	if (o.scenario) {
		snprintf(scname, sizeof scname, "%s", o.scenario);
		alt_name = instr_split_workload(scname);
		o.scenario = scname;
	}
	memset(&j, 0, sizeof j);
	j.sc = axb_child_values(&o, values);
	if (!o.impl)
		axb_bad_input("--runtime is required");
	if (axb_impl_find(o.impl, &impl))
		axb_bad_input("unknown runtime '%s' (see axbench list)", o.impl);
	const struct axs_instr_alt *alt = alt_name ? axs_instr_alt_find(j.sc, alt_name) : NULL;
	if (alt_name && !alt)
		axb_bad_input("scenario %s has no instructions workload '%s'", j.sc->name,
			      alt_name);
	j.work = alt ? alt->instr : j.sc->instr;
	if (!j.work)
		axb_bad_input("scenario %s has no instructions workload", j.sc->name);
	memset(&ctx, 0, sizeof ctx);
	ctx.sc = j.sc;
	ctx.values = values;
	ctx.listen_fd = -1;
	ctx.out = out;
	j.ctx = &ctx;
	if (impl.kind == AXB_IMPL_REF) {
		/* a native version runs on this thread, outside any runtime:
		 * only a workload that is exactly its run_local's work */
		if (!alt || !alt->native_ops || !impl.ref->run_local ||
		    !axb_impl_supports(&impl, j.sc, NULL, 0))
			axb_bad_input("%s has no native version of %s", impl.name,
				      o.scenario);
		j.work = NULL;
		j.ref = impl.ref;
		j.ops = axb_instr_region(&j);
		if (!j.ops && !out->failed)
			j.ops = alt->native_ops(&ctx);
	} else if (impl.kind == AXB_IMPL_AX) {
		struct ax_rt_opts ro;
		ax_rt_opts_init(&ro);
		axb_rt_opts_clock_free(&ro);
		r = axb_impl_rt_create(&rt, &impl, &ro);
		if (r < 0) {
			fprintf(stderr, "axbench: cannot create runtime %s: %s\n", o.impl,
				strerror(-r));
			return 1;
		}
		r = ax_rt_run(rt, instr_main, &j, NULL);
		ax_rt_destroy(rt);
	} else {
		axb_bad_input("%s is an external target: instructions mode counts "
			      "only its server", impl.name);
	}
	/* the scenario's own check (a native version's early timer) */
	if (out->failed && j.ops >= 0)
		j.ops = -EIO;
	if (out->failed)
		fprintf(stderr, "axbench: check failed: %s\n", out->fail_msg);
	axs_out_free(out);
	free(out);
	if (r < 0 || j.ops <= 0) {
		fprintf(stderr, "axbench: the %s workload failed: %s\n", j.sc->name,
			strerror(r < 0 ? -r : (j.ops < 0 ? (int)-j.ops : EIO)));
		return 1;
	}
	printf("{\"ops\": %lld}\n", (long long)j.ops);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the parent                                                          */
/* ------------------------------------------------------------------ */

struct instr_cell {
	const char *runtime;    /* its name (a variant's label may be long) */
	bool reference;         /* a reference implementation, not an ax runtime */
	const struct axs_scenario *sc;
	const struct axs_instr_alt *alt; /* a named workload (timers:fire) */
	char name[96];                   /* scenario[:workload] */
	int64_t values[AXS_MAX_PARAMS];
	double per_op[32];
	long long ops[32];               /* local: operations of each rep */
	int nreps;
	char error[256];
};

/* Total instructions from a callgrind output file ("totals:" or, failing
 * that, "summary:"), or -1. */
static long long instr_totals(const char *path)
{
	char line[512];
	long long totals = -1, summary = -1;
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "totals:", 7))
			totals = strtoll(line + 7, NULL, 10);
		else if (!strncmp(line, "summary:", 8))
			summary = strtoll(line + 8, NULL, 10);
	}
	fclose(f);
	return totals >= 0 ? totals : summary;
}

/* Run one repetition under valgrind, started by the harness's one launcher
 * and stopped by its watchdog after timeout_s: returns instructions per
 * operation, or -1 with a message in err. */
static double instr_rep(struct instr_cell *c, const char *self, double timeout_s,
			const char *keep, long long *ops_out, char *err, size_t errn)
{
	char out_path[4800] = "/tmp/axbench-callgrind-XXXXXX";
	char ops_path[] = "/tmp/axbench-instr-ops-XXXXXX";
	char outarg[4900];
	int ofd = keep ? -2 : mkstemp(out_path), pfd = mkstemp(ops_path);
	double res = -1;
	if (ofd == -1 || pfd < 0) {
		snprintf(err, errn, "cannot create a temporary file: %s", strerror(errno));
		goto out;
	}
	if (keep)
		snprintf(out_path, sizeof out_path, "%s", keep);
	else
		close(ofd);
	snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", out_path);

	char *argv[16 + 2 * AXS_MAX_PARAMS];
	char pv[AXS_MAX_PARAMS][96];
	int a = 0;
	argv[a++] = "valgrind";
	argv[a++] = "--tool=callgrind";
	argv[a++] = "--collect-atstart=no";
	argv[a++] = outarg;
	/* kept for a profile: the addresses tell calls from the resumptions
	 * of switched tasks (docs/profiles.md); the counts are the same */
	if (keep)
		argv[a++] = "--dump-instr=yes";
	argv[a++] = "-q";
	argv[a++] = (char *)self;
	argv[a++] = "__instr";
	argv[a++] = "--runtime";
	argv[a++] = (char *)c->runtime;
	argv[a++] = "--scenario";
	argv[a++] = c->name;
	for (size_t i = 0; i < c->sc->nparams && i < AXS_MAX_PARAMS; i++) {
		char v[64];
		axs_param_format(&c->sc->params[i], c->values[i], v, sizeof v);
		snprintf(pv[i], sizeof pv[i], "%s=%s", c->sc->params[i].name, v);
		argv[a++] = "-p";
		argv[a++] = pv[i];
	}
	argv[a] = NULL;

	struct axb_spawn sp = {
		.role = "valgrind", .prog = "valgrind", .argv = argv,
		.out = AXB_SINK_FD, .out_fd = pfd,
		.err = getenv("AXBENCH_INSTR_VERBOSE") ? AXB_SINK_INHERIT : AXB_SINK_NULL,
	};
	struct axb_child ch;
	int r = axb_child_start(&ch, &sp);
	if (r) {
		snprintf(err, errn, "cannot start valgrind: %s", strerror(-r));
		goto out;
	}
	struct axb_child *one[1] = { &ch };
	if (axb_child_pump(one, 1, axb_mono_ns() + (int64_t)(timeout_s * 1e9),
			   axb_child_exited, &ch) == -ETIMEDOUT)
		axb_child_kill(&ch, "timeout");
	axb_child_finish(&ch);
	int st = ch.wstatus;
	bool timed_out = ch.killed;
	axb_child_free(&ch);
	if (WIFSIGNALED(st)) {
		char sb[32];
		snprintf(err, errn, "the workload died of %s%s",
			 axb_signal_name(WTERMSIG(st), sb, sizeof sb),
			 timed_out ? " (timeout)" : "");
		goto out;
	}
	if (WEXITSTATUS(st) == 127) {
		snprintf(err, errn, "cannot run valgrind (install it: scripts/setup)");
		goto out;
	}
	if (WEXITSTATUS(st) != 0) {
		snprintf(err, errn, "the workload failed (exit %d)", WEXITSTATUS(st));
		goto out;
	}
	char buf[128] = "";
	ssize_t n = pread(pfd, buf, sizeof buf - 1, 0);
	long long ops = 0;
	if (n <= 0 || sscanf(buf, "{\"ops\": %lld}", &ops) != 1 || ops <= 0) {
		snprintf(err, errn, "the workload reported no operation count");
		goto out;
	}
	long long tot = instr_totals(out_path);
	if (tot <= 0) {
		snprintf(err, errn, "no instruction total in callgrind's output");
		goto out;
	}
	res = (double)tot / (double)ops;
	if (ops_out)
		*ops_out = ops;
out:
	if (pfd >= 0) {
		close(pfd);
		unlink(ops_path);
	}
	if (!keep)
		unlink(out_path);
	return res;
}

/* ------------------------------------------------------------------ */
/* network scenarios: the server under callgrind, a fixed message count */
/* ------------------------------------------------------------------ */

/* Requests of the larger of the two runs per repetition (--messages), and
 * the smaller's share of it. */
#define INSTR_NET_MESSAGES 20000
#define INSTR_NET_SMALL_DIV 5
/* How long a server under callgrind may take to stop and write its counts
 * (a few seconds at most when it can stop at all). */
#define INSTR_STOP_GRACE_NS (15 * INT64_C(1000000000))

/* argv of a child of the cell: [valgrind prefix] SELF sub --runtime R
 * --scenario S --cpu N --result-fd 3 -p ... (strings in store). */
static int instr_cell_argv(const struct instr_cell *c, const char *self, const char *sub,
			   int cpu, char **argv, int a, char store[][96])
{
	int k = 0;
	argv[a++] = (char *)self;
	argv[a++] = (char *)sub;
	argv[a++] = "--runtime";
	argv[a++] = (char *)c->runtime;
	argv[a++] = "--scenario";
	argv[a++] = (char *)c->sc->name;
	argv[a++] = "--result-fd";
	argv[a++] = "3";
	if (cpu >= 0) {
		snprintf(store[k], 96, "%d", cpu);
		argv[a++] = "--cpu";
		argv[a++] = store[k++];
	}
	for (size_t i = 0; i < c->sc->nparams && i < AXS_MAX_PARAMS; i++) {
		char v[64];
		axs_param_format(&c->sc->params[i], c->values[i], v, sizeof v);
		snprintf(store[k], 96, "%s=%s", c->sc->params[i].name, v);
		argv[a++] = "-p";
		argv[a++] = store[k++];
	}
	argv[a] = NULL;
	return a;
}

/* One server run under callgrind answering `messages` requests: returns
 * the server's total instructions, or -1 with a message in err. */
static long long instr_net_once(const struct instr_cell *c, const char *self,
				long messages, const int cpus[2], double timeout_s,
				const char *keep, char *err, size_t errn)
{
	char out_path[4800] = "/tmp/axbench-callgrind-XXXXXX";
	char outarg[4900], msgarg[32], target[64];
	char store[2][AXS_MAX_PARAMS + 2][96];
	char *sargv[24 + 2 * AXS_MAX_PARAMS], *largv[24 + 2 * AXS_MAX_PARAMS];
	struct axb_child srv, cli;
	long long res = -1;
	int64_t deadline = axb_mono_ns() + (int64_t)(timeout_s * 1e9);
	int ofd = keep ? -2 : mkstemp(out_path);

	axb_child_none(&srv);
	axb_child_none(&cli);
	if (ofd == -1) {
		snprintf(err, errn, "cannot create a temporary file: %s", strerror(errno));
		return -1;
	}
	if (keep)
		snprintf(out_path, sizeof out_path, "%s", keep);
	else
		close(ofd);
	snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", out_path);
	int a = 0;
	sargv[a++] = "valgrind";
	sargv[a++] = "--tool=callgrind";
	sargv[a++] = outarg;
	if (keep)
		sargv[a++] = "--dump-instr=yes";
	sargv[a++] = "-q";
	a = instr_cell_argv(c, self, "__server", cpus[0], sargv, a, store[0]);
	sargv[a++] = "--clock-free";
	sargv[a] = NULL;
	bool verbose = getenv("AXBENCH_INSTR_VERBOSE") != NULL;
	struct axb_spawn sp = {
		.role = "server", .prog = "valgrind", .argv = sargv, .result_pipe = true,
		.out = verbose ? AXB_SINK_INHERIT : AXB_SINK_CAPTURE,
		.err = verbose ? AXB_SINK_INHERIT : AXB_SINK_CAPTURE,
	};
	int r = axb_child_start(&srv, &sp);
	if (r) {
		snprintf(err, errn, "cannot start valgrind: %s", strerror(-r));
		goto unlink_out;
	}
	struct axb_child *one[1] = { &srv };
	r = axb_child_pump(one, 1, deadline, axb_child_ready_or_exited, &srv);
	json_t *ready = axb_child_event(&srv, "ready");
	if (r || !ready || srv.exited) {
		json_decref(ready);
		if (srv.exited && WIFEXITED(srv.wstatus) && WEXITSTATUS(srv.wstatus) == 127)
			snprintf(err, errn, "cannot run valgrind (install it: scripts/setup)");
		else
			snprintf(err, errn, "the server did not get ready under callgrind%s",
				 r == -ETIMEDOUT ? " before the timeout" : "");
		goto stop_children;
	}
	snprintf(target, sizeof target, "127.0.0.1:%d",
		 (int)json_integer_value(json_object_get(ready, "port")));
	json_decref(ready);
	snprintf(msgarg, sizeof msgarg, "%ld", messages);
	a = instr_cell_argv(c, self, "__load", cpus[1], largv, 0, store[1]);
	largv[a++] = "--target";
	largv[a++] = target;
	largv[a++] = "--messages";
	largv[a++] = msgarg;
	largv[a] = NULL;
	struct axb_spawn lp = {
		.role = "loadgen", .argv = largv, .result_pipe = true,
		.out = verbose ? AXB_SINK_INHERIT : AXB_SINK_CAPTURE,
		.err = verbose ? AXB_SINK_INHERIT : AXB_SINK_CAPTURE,
	};
	r = axb_child_start(&cli, &lp);
	if (r) {
		snprintf(err, errn, "cannot start the load generator: %s", strerror(-r));
		goto stop_children;
	}
	struct axb_child *two[2] = { &srv, &cli };
	r = axb_child_pump(two, 2, deadline, NULL, NULL);
	if (r || !cli.exited) {
		snprintf(err, errn, "%s", r == -ETIMEDOUT ? "the run exceeded the timeout"
			 : r ? "interrupted" : "the server died under load");
		goto stop_children;
	}
	axb_child_finish(&cli);
	/* the load generator's check covers the count: count mode fails it
	 * unless every one of the requests was answered */
	if (!axb_child_passed(&cli, err, errn))
		goto stop_children;
	/* stop the server as a person would; callgrind then writes its counts */
	kill(srv.pid, SIGTERM);
	r = axb_child_pump(one, 1, axb_mono_ns() + INSTR_STOP_GRACE_NS, axb_child_exited, &srv);
	if (r || !srv.exited) {
		/* valgrind runs one thread at a time; a runtime thread blocked
		 * in a wait valgrind does not release the lock for (io_uring_enter
		 * in valgrind 3.19) keeps the server's signal thread from ever
		 * running (docs/harness.md) */
		snprintf(err, errn, "the server did not stop within %d s of SIGTERM under "
			 "callgrind (a thread blocked in io_uring_enter keeps valgrind's "
			 "other threads from running: not countable here)",
			 (int)(INSTR_STOP_GRACE_NS / 1000000000));
		goto stop_children;
	}
	axb_child_finish(&srv);
	/* no figure without the server's own check (rpc_fanout's backends,
	 * a reference's failure): a server that failed exits 0 all the same */
	if (!axb_child_passed(&srv, err, errn))
		goto stop_children;
	res = instr_totals(out_path);
	if (res <= 0) {
		snprintf(err, errn, "no instruction total in callgrind's output");
		res = -1;
	}
stop_children:
	axb_child_kill(&cli, NULL);
	axb_child_kill(&srv, NULL);
	if (cli.pid > 0)
		axb_child_finish(&cli);
	if (srv.pid > 0)
		axb_child_finish(&srv);
	axb_child_free(&cli);
	axb_child_free(&srv);
unlink_out:
	if (!keep)
		unlink(out_path);
	return res;
}

/* One repetition of a network cell: two server runs, N/5 and N requests;
 * returns instructions per message or -1 with a message in err. */
static double instr_net_rep(const struct instr_cell *c, const char *self, long messages,
			    const int cpus[2], double timeout_s, const char *keep1,
			    const char *keep2, char *err, size_t errn)
{
	long small = messages / INSTR_NET_SMALL_DIV;
	long long i1 = instr_net_once(c, self, small, cpus, timeout_s, keep1, err, errn);
	if (i1 < 0)
		return -1;
	long long i2 = instr_net_once(c, self, messages, cpus, timeout_s, keep2, err, errn);
	if (i2 < 0)
		return -1;
	if (i2 <= i1) {
		snprintf(err, errn, "the larger run counted no more instructions (%lld <= %lld)",
			 i2, i1);
		return -1;
	}
	return (double)(i2 - i1) / (double)(messages - small);
}

/* ------------------------------------------------------------------ */
/* --profile-functions: callgrind's output kept, tables by function     */
/* ------------------------------------------------------------------ */

#define INSTR_PROFILE_TOP 25

static json_t *instr_cell_json(const struct instr_cell *c);

/* Make DIR and DIR/raw, or exit with bad input. */
static void instr_profile_dir(const char *dir)
{
	char raw[4200];
	if (mkdir(dir, 0777) && errno != EEXIST)
		axb_bad_input("--profile-functions %s: %s", dir, strerror(errno));
	struct stat st;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		axb_bad_input("--profile-functions %s: not a directory", dir);
	snprintf(raw, sizeof raw, "%s/raw", dir);
	if (mkdir(raw, 0777) && errno != EEXIST)
		axb_bad_input("--profile-functions %s: %s", raw, strerror(errno));
	if (access(raw, W_OK))
		axb_bad_input("--profile-functions %s: %s", raw, strerror(errno));
}

/* The kept callgrind file of cell i, repetition rep (0-based), run
 * `run` ("" for a local cell, "n1" and "n2" for a server's two runs),
 * relative to the profile directory. */
static void instr_profile_file(const struct instr_cell *c, size_t i, int rep,
			       const char *run, char *buf, size_t n)
{
	char name[256];
	/* runtime-scenario; a variant's or workload's ':' (and anything
	 * else that is not plain in a file name) becomes '-' */
	snprintf(name, sizeof name, "%s-%s", c->runtime, c->name);
	for (char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._+=-", *p))
			*p = '-';
	snprintf(buf, n, "raw/%02zu-%s.rep%d%s%s.callgrind", i + 1, name, rep + 1,
		 run[0] ? "." : "", run);
}

/* DIR/cells.json: every cell, with the kept callgrind file and the
 * operation count of each repetition, for the tables' builder. */
static int instr_profile_manifest(const char *dir, struct instr_cell *cells, size_t ncells,
				  long messages)
{
	char path[4200], f[512];
	json_t *doc = json_pack("{s:s, s:i, s:I}", "schema", "axbench-profile-input",
				"schema_version", 1, "messages", (json_int_t)messages);
	json_t *jc = json_array();
	long small = messages / INSTR_NET_SMALL_DIV;
	for (size_t i = 0; i < ncells; i++) {
		struct instr_cell *c = &cells[i];
		json_t *cell = instr_cell_json(c);
		json_t *reps = json_array();
		bool ok = !c->error[0];
		for (int r = 0; ok && r < c->nreps; r++) {
			json_t *rep = json_pack("{s:i}", "rep", r + 1);
			if (c->sc->kind == AXS_NET) {
				json_t *runs = json_array();
				instr_profile_file(c, i, r, "n1", f, sizeof f);
				json_array_append_new(runs, json_pack("{s:s, s:I}", "file", f,
						      "messages", (json_int_t)small));
				instr_profile_file(c, i, r, "n2", f, sizeof f);
				json_array_append_new(runs, json_pack("{s:s, s:I}", "file", f,
						      "messages", (json_int_t)messages));
				json_object_set_new(rep, "runs", runs);
			} else {
				instr_profile_file(c, i, r, "", f, sizeof f);
				json_object_set_new(rep, "file", json_string(f));
				json_object_set_new(rep, "ops", json_integer(c->ops[r]));
			}
			json_array_append_new(reps, rep);
		}
		json_object_set_new(cell, "profile_reps", reps);
		json_array_append_new(jc, cell);
	}
	json_object_set_new(doc, "cells", jc);
	snprintf(path, sizeof path, "%s/cells.json", dir);
	int r = axb_doc_write(path, doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(doc);
	return r;
}

/* Build the tables from DIR/cells.json (`axbench-reports functions DIR`,
 * in reports/). Returns its exit status, or 4 when it could not run. */
static int instr_profile_tables(const char *dir, long top)
{
	char prog[4200], topv[32];
	axb_reports_launcher(prog, sizeof prog);
	snprintf(topv, sizeof topv, "%ld", top);
	char *argv[] = { "axbench-reports", "functions", (char *)dir, "--top", topv, NULL };
	struct axb_spawn sp = {
		.role = "functions", .prog = prog, .argv = argv,
		.out = AXB_SINK_INHERIT, .err = AXB_SINK_INHERIT,
	};
	struct axb_child ch;
	if (axb_child_start(&ch, &sp))
		return 4;
	struct axb_child *one[1] = { &ch };
	if (axb_child_pump(one, 1, axb_mono_ns() + 600 * INT64_C(1000000000),
			   axb_child_exited, &ch) == -ETIMEDOUT)
		axb_child_kill(&ch, "timeout");
	axb_child_finish(&ch);
	int st = ch.wstatus;
	axb_child_free(&ch);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 4;
}

static json_t *instr_cell_json(const struct instr_cell *c)
{
	char label[512];
	axs_params_label(c->sc, c->values, label, sizeof label);
	json_t *cell = json_object();
	json_t *id = json_sprintf("%s/%s/%s", c->runtime, c->name, label);
	json_object_set_new(cell, "id", id ? id : json_null());
	json_object_set_new(cell, "runtime", json_string(c->runtime));
	bool net = c->sc->kind == AXS_NET;
	const char *metric = net ? "instructions_per_msg" : "instructions_per_op";
	json_object_set_new(cell, "runtime_kind", json_string(c->reference ? "reference" : "ax"));
	/* a named workload is a scenario of its own to compare and report
	 * (timers:fire is not timers' churn) */
	json_object_set_new(cell, "scenario", json_string(c->name));
	json_object_set_new(cell, "workload", c->alt ? json_string(c->alt->name) : json_null());
	json_object_set_new(cell, "kind", json_string(net ? "net" : "local"));
	json_object_set_new(cell, "protocol", net && c->sc->protocol
			    ? json_string(c->sc->protocol) : json_null());
	json_object_set_new(cell, "params", axb_params_json(c->sc, c->values));
	json_object_set_new(cell, "label", json_string(label));
	json_object_set_new(cell, "reps_planned", json_integer(c->nreps));
	json_t *reps = json_array();
	bool ok = !c->error[0] && c->nreps > 0;
	for (int i = 0; i < c->nreps; i++) {
		/* a cell that failed shows no number, not even those of the
		 * repetitions before the failure */
		json_t *m = json_object();
		if (ok)
			axb_metric_set(m, metric, c->per_op[i], "instructions", -1);
		json_array_append_new(reps, json_pack("{s:i, s:s, s:o}", "rep", i + 1,
						      "status", "ok", "metrics", m));
	}
	json_object_set_new(cell, "reps", reps);
	json_object_set_new(cell, "status", json_string(ok ? "ok" : "error"));
	json_object_set_new(cell, "message", ok ? json_null() : json_string(c->error));
	if (ok) {
		struct axm_ci ci;
		axm_median_ci(c->per_op, (size_t)c->nreps, &ci);
		json_t *vals = json_array();
		for (int i = 0; i < c->nreps; i++)
			json_array_append_new(vals, json_real(c->per_op[i]));
		json_t *m = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:o}",
				      "unit", "instructions", "better", -1, "n", c->nreps,
				      "median", ci.median, "ci_low", ci.lo, "ci_high", ci.hi,
				      "ci_level", ci.level, "values", vals);
		json_object_set_new(cell, "summary",
				    json_pack("{s:i, s:{s:o}}", "reps", c->nreps, "metrics",
					      metric, m));
	} else {
		json_object_set_new(cell, "summary", json_null());
	}
	return cell;
}

/* `axbench run --measure instructions ...` */
int axb_cmd_instr(int argc, char **argv)
{
	const char *runtimes = "epoll", *scenarios = "spawn_join,chan_pingpong,timers";
	const char *json_path = NULL, *prof_dir = NULL;
	int reps = 2;
	long top = INSTR_PROFILE_TOP;
	long messages = INSTR_NET_MESSAGES;
	const char *pv[AXS_MAX_PARAMS];
	bool pv_used[AXS_MAX_PARAMS] = {false};
	size_t npv = 0;
	static const struct option lo[] = {
		{"messages", required_argument, NULL, 'M'},
		{"runtime", required_argument, NULL, 'r'},
		{"scenario", required_argument, NULL, 's'},
		{"reps", required_argument, NULL, 'n'},
		{"json", required_argument, NULL, 'j'},
		{"measure", required_argument, NULL, 'm'},
		{"profile-functions", required_argument, NULL, 'P'},
		{"top", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "p:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'r': runtimes = optarg; break;
		case 's': scenarios = optarg; break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 32)
				axb_bad_input("--reps must be 1..32, not '%s'", optarg);
			reps = (int)v;
			break;
		}
		case 'j': json_path = optarg; break;
		case 'P':
			if (!optarg[0])
				axb_bad_input("--profile-functions wants a directory");
			prof_dir = optarg;
			break;
		case 'T': {
			char *end;
			errno = 0;
			top = strtol(optarg, &end, 10);
			if (errno || *end || top < 1 || top > 100000)
				axb_bad_input("--top wants a count in [1, 100000], not '%s'", optarg);
			break;
		}
		case 'm':
			if (strcmp(optarg, "instructions"))
				axb_bad_input("--measure must be time or instructions, not '%s'", optarg);
			break;
		case 'M': {
			char *end;
			errno = 0;
			messages = strtol(optarg, &end, 10);
			if (errno || *end || messages < 10 * INSTR_NET_SMALL_DIV ||
			    messages > 100000000)
				axb_bad_input("--messages wants a count in [%d, 100000000], not '%s'",
					      10 * INSTR_NET_SMALL_DIV, optarg);
			break;
		}
		case 'p':
			if (npv == AXS_MAX_PARAMS)
				axb_bad_input("too many -p options");
			pv[npv++] = optarg;
			break;
		case 'h':
			printf("usage: axbench run --measure instructions [--runtime R,...|all]\n"
			       "       [--scenario S,...] [--reps N (default 2)] [-p name=value]\n"
			       "       [--messages N (default %d)] [--json FILE]\n"
			       "       [--profile-functions DIR [--top N (default %d)]]\n"
			       "Counts the instructions of each user-space scenario's fixed\n"
			       "workload under callgrind, and of each network scenario's server\n"
			       "(ax runtimes and reference implementations) per message, from two\n"
			       "runs of N/5 and N requests of the load generator (see docs/ci.md).\n"
			       "A scenario may name a further workload: timers:fire counts a\n"
			       "timer armed and fired (ax runtimes and native versions).\n"
			       "--profile-functions keeps callgrind's output in DIR and writes\n"
			       "per cell the instructions per operation of each function, self\n"
			       "and inclusive (DIR/index.md; docs/profiles.md).\n"
			       "exit status: 0 every cell ok, 1 some cell failed, 2 bad input\n"
			       "(valgrind missing, an unknown runtime or scenario), 5 the result\n"
			       "file could not be written.\n",
			       INSTR_NET_MESSAGES, INSTR_PROFILE_TOP);
			return 0;
		default:
			axb_bad_input("unknown option (see axbench run --measure instructions --help)");
		}
	}
	if (optind < argc)
		axb_bad_input("unexpected argument '%s'", argv[optind]);
	if (top != INSTR_PROFILE_TOP && !prof_dir)
		axb_bad_input("--top is the length of the tables of --profile-functions DIR");
	if (prof_dir)
		instr_profile_dir(prof_dir);
	char default_path[128];
	if (!json_path) {
		char t[32];
		axb_utc_iso(axb_wall_ns(), t, sizeof t);
		snprintf(default_path, sizeof default_path, "results/instr-%s.json", t);
		mkdir("results", 0777);
		json_path = default_path;
	}
	char why[512];
	if (axb_claim_output(json_path, why, sizeof why))
		axb_bad_input("--json: %s", why);

	/* cells: runtimes x scenarios */
	static struct instr_cell cells[INSTR_MAX_CELLS];
	size_t ncells = 0;
	struct axb_rt_sel rsel, *sel = &rsel;
	memset(sel, 0, sizeof *sel);
	axb_runtimes_parse(NULL, runtimes, AXB_RT_AVAILABLE | AXB_RT_NO_EXTERNAL, sel);
	const struct axb_impl *impls = sel->impls;
	size_t nimpl = sel->n;
	char sbuf[512];
	snprintf(sbuf, sizeof sbuf, "%s", scenarios);
	for (char *sv, *t = strtok_r(sbuf, ",", &sv); t; t = strtok_r(NULL, ",", &sv)) {
		char full[96];
		snprintf(full, sizeof full, "%s", t);
		const char *alt_name = instr_split_workload(t);
		const struct axs_scenario *sc = axs_scenario_find(t);
		if (!sc)
		{
			char hint[128];
			axb_bad_input("unknown scenario '%s' (see axbench list)%s", t,
				      axb_scenario_hint(t, hint, sizeof hint));
		}
		const struct axs_instr_alt *alt = alt_name ? axs_instr_alt_find(sc, alt_name)
					       : NULL;
		if (alt_name && !alt)
			axb_bad_input("scenario %s has no instructions workload '%s' (these "
				      "do: timers:fire)", t, alt_name);
		bool net = sc->kind == AXS_NET;
		if (net && sc->loadgen_mode && strcmp(sc->loadgen_mode, "requests"))
			axb_bad_input("scenario %s is not a closed request loop: its server "
				      "cannot be counted per message (these can: tcp_echo, "
				      "http_plaintext, rpc_fanout)", t);
		if (axs_param_index(sc, "fault") >= 0)
			axb_bad_input("scenario %s is a fault scenario: its count would "
				      "depend on the fault's timing; count tcp_echo or "
				      "http_plaintext instead", t);
		if (!net && !sc->instr)
			axb_bad_input("scenario %s has no instructions workload (these do: "
				      "spawn_join, ctx_switch, chan_pingpong, timers; and the "
				      "servers of tcp_echo, http_plaintext, rpc_fanout)", t);
		for (size_t i = 0; i < nimpl && ncells < INSTR_MAX_CELLS; i++) {
			/* a local workload runs on an ax runtime, or on a
			 * native version that does exactly its work; a
			 * server is any implementation that serves the
			 * scenario */
			bool native = !net && impls[i].kind == AXB_IMPL_REF &&
				      alt && alt->native_ops && impls[i].ref->run_local &&
				      axb_impl_supports(&impls[i], sc, NULL, 0);
			if (!net && impls[i].kind != AXB_IMPL_AX && !native)
				continue;
			/* callgrind's collection toggle is per thread: a local
			 * workload is counted only when every task runs on the
			 * thread that toggles it */
			if (!net && !native && !(ax_driver_features(impls[i].driver) &
						 AX_FEAT_ONE_THREAD)) {
				fprintf(stderr, "axbench: skipping %s on %s: its tasks "
					"run on threads of their own, and callgrind "
					"counts only the thread that switches "
					"collection on\n", sc->name, impls[i].name);
				continue;
			}
			char why[256];
			if (net && !axb_impl_supports(&impls[i], sc, why, sizeof why))
				continue;
			struct instr_cell *c = &cells[ncells++];
			memset(c, 0, sizeof *c);
			c->runtime = impls[i].name; /* lives as long as the process */
			c->reference = impls[i].kind != AXB_IMPL_AX;
			c->sc = sc;
			c->alt = alt;
			snprintf(c->name, sizeof c->name, "%s", full);
			const char *bad = NULL;
			if (axs_param_defaults(sc, c->values, &bad) < 0)
				axb_bad_input("scenario %s: bad default for %s", sc->name, bad);
			/* a smaller default workload: callgrind runs ~50x slower */
			int ci = axs_param_index(sc, "count");
			if (ci >= 0)
				c->values[ci] = c->values[ci] > 100000 ? 100000 : c->values[ci];
			/* one connection by default: every message is then one trip
			 * through the loop, and the count repeats; with many, how
			 * many messages one wait returns depends on timing even
			 * under callgrind (libevent's count moved 16% at 16) */
			int cc = net ? axs_param_index(sc, "connections") : -1;
			if (cc >= 0)
				c->values[cc] = 1;
			for (size_t k = 0; k < npv; k++) {
				char name[64];
				const char *eq = strchr(pv[k], '=');
				if (!eq || eq == pv[k] || (size_t)(eq - pv[k]) >= sizeof name)
					axb_bad_input("-p wants name=value, not '%s'", pv[k]);
				memcpy(name, pv[k], (size_t)(eq - pv[k]));
				name[eq - pv[k]] = 0;
				int pi = axs_param_index(sc, name);
				if (pi < 0)
					continue; /* applies to another scenario */
				pv_used[k] = true;
				if (axs_param_parse(&sc->params[pi], eq + 1, false, &c->values[pi]) < 0)
					axb_bad_input("bad value '%s' for %s", eq + 1, name);
			}
			int ri = axs_param_index(sc, "rate");
			if (net && ri >= 0 && c->values[ri] > 0)
				axb_bad_input("scenario %s: instructions mode counts a closed "
					      "loop; leave rate at 0", sc->name);
		}
	}
	for (size_t k = 0; k < npv; k++)
		if (!pv_used[k] && ncells)
			axb_bad_input("-p %s: no selected scenario has that parameter "
				      "(see axbench list)", pv[k]);
	if (!ncells)
		axb_bad_input("no cell to run");
	if (!instr_supported)
		axb_bad_input("this axbench was built without valgrind's headers: "
			      "install valgrind (scripts/setup) and rebuild");

	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0)
		axb_bad_input("cannot find the axbench binary");
	self[sl] = 0;

	/* network cells: the server on one CPU, the load generator on another */
	int allowed[2] = { -1, -1 };
	int nallowed = axb_allowed_cpus(allowed, 2);
	int cpus[2] = { nallowed >= 2 ? allowed[0] : -1, nallowed >= 2 ? allowed[1] : -1 };
	static struct axb_pin pin;
	pin.mode = cpus[0] >= 0 ? "split" : "none";
	pin.server_cpu = cpus[0];
	pin.load_cpu = cpus[1];
	json_t *doc = axb_doc_header("axbench-results", AXB_SCHEMA_VERSION,
				     axb_command_json(argc, argv), axb_environment(&pin));
	json_object_set_new(doc, "measure", json_string("instructions"));
	json_object_set_new(doc, "config", json_pack("{s:s, s:i, s:I}", "measure", "instructions",
						      "reps", reps, "messages", (json_int_t)messages));
	int failed = 0;
	int64_t t0 = axb_mono_ns();
	/* interleaved: repetition 1 of every cell, then 2, ... */
	for (int rep = 0; rep < reps; rep++) {
		for (size_t i = 0; i < ncells; i++) {
			struct instr_cell *c = &cells[i];
			if (c->error[0])
				continue;
			fprintf(stderr, "instr %zu/%zu  %s %s  rep %d/%d  elapsed %.0fs\n",
				rep * ncells + i + 1, ncells * (size_t)reps, c->runtime,
				c->name, rep + 1, reps, (axb_mono_ns() - t0) / 1e9);
			char k1[4800], k2[4800], f[512];
			const char *keep1 = NULL, *keep2 = NULL;
			if (prof_dir) {
				bool net = c->sc->kind == AXS_NET;
				instr_profile_file(c, i, rep, net ? "n1" : "", f, sizeof f);
				snprintf(k1, sizeof k1, "%s/%s", prof_dir, f);
				instr_profile_file(c, i, rep, "n2", f, sizeof f);
				snprintf(k2, sizeof k2, "%s/%s", prof_dir, f);
				keep1 = k1;
				keep2 = k2;
			}
			long long ops = 0;
			double v = c->sc->kind == AXS_NET
				? instr_net_rep(c, self, messages, cpus, 600, keep1, keep2,
						c->error, sizeof c->error)
				: instr_rep(c, self, 600, keep1, &ops, c->error,
					    sizeof c->error);
			if (v < 0) {
				failed++;
			} else {
				c->ops[c->nreps] = ops;
				c->per_op[c->nreps++] = v;
			}
		}
	}
	json_t *jc = json_array();
	printf("%-16s %-14s %16s %10s\n", "runtime", "scenario", "instr/op", "spread");
	for (size_t i = 0; i < ncells; i++) {
		struct instr_cell *c = &cells[i];
		json_array_append_new(jc, instr_cell_json(c));
		if (c->error[0] || !c->nreps) {
			printf("%-16s %-14s  %s\n", c->runtime, c->name, c->error);
			continue;
		}
		struct axm_ci ci;
		axm_median_ci(c->per_op, (size_t)c->nreps, &ci);
		double lo = c->per_op[0], hi = c->per_op[0];
		for (int k = 1; k < c->nreps; k++) {
			lo = c->per_op[k] < lo ? c->per_op[k] : lo;
			hi = c->per_op[k] > hi ? c->per_op[k] : hi;
		}
		printf("%-16s %-14s %16.1f %9.3f%%\n", c->runtime, c->name,
		       ci.median, lo > 0 ? (hi - lo) / lo * 100 : 0);
	}
	json_object_set_new(doc, "cells", jc);
	axb_doc_status(doc, "complete");
	int r = axb_doc_write(json_path, doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(doc);
	if (r < 0) {
		axb_err("results NOT written to %s: %s", json_path, strerror(-r));
		return AXB_EXIT_WRITE;
	}
	fprintf(stderr, "axbench: results in %s\n", json_path);
	if (prof_dir) {
		r = instr_profile_manifest(prof_dir, cells, ncells, messages);
		if (r < 0) {
			axb_err("profile NOT written to %s: %s", prof_dir, strerror(-r));
			return AXB_EXIT_WRITE;
		}
		/* its exit status follows axbench's (5: not written) */
		r = instr_profile_tables(prof_dir, top);
		if (r)
			return r;
		fprintf(stderr, "axbench: instructions by function in %s/index.md\n",
			prof_dir);
	}
	return failed ? 1 : 0;
}
