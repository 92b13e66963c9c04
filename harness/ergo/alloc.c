/* alloc.c - heap allocations per operation, counted at run time: servers
 * and the timers scenario run under the LD_PRELOAD counter
 * (tools/alloc_count.c), started by the harness's one launcher, and the
 * counts sampled over the measured phase; and the `ergo __local` child. */
#include "ergo.h"
#include "proc.h"
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHILD_TIMEOUT_NS (60 * INT64_C(1000000000))

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

void axb_ergo_av(struct axb_ergo_argv *a, const char *fmt, ...)
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
static void av_phases(struct axb_ergo_argv *a)
{
	axb_ergo_av(a, "-p");
	axb_ergo_av(a, "connections=%s", AXB_ALLOC_CONNS);
	axb_ergo_av(a, "-p");
	axb_ergo_av(a, "warmup=%s", AXB_ALLOC_WARMUP);
	axb_ergo_av(a, "-p");
	axb_ergo_av(a, "duration=%s", AXB_ALLOC_DURATION);
}

static void set_preload(const struct axb_ergo *E, const struct shm *m, bool on)
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
static int alloc_net(const struct axb_ergo *E, const char *impl, const char *scenario,
		     double *per_op, char *why, size_t whyn)
{
	struct shm m = {.c = NULL};
	struct axb_ergo_argv a = {.n = 0};
	struct axb_child srv, cli;
	int err = shm_open_counts(&m);
	if (err) {
		snprintf(why, whyn, "cannot create the counter file: %s", strerror(-err));
		return err;
	}
	axb_ergo_av(&a, "axbench");
	axb_ergo_av(&a, "__server");
	axb_ergo_av(&a, "--impl");
	axb_ergo_av(&a, "%s", impl);
	axb_ergo_av(&a, "--scenario");
	axb_ergo_av(&a, "%s", scenario);
	axb_ergo_av(&a, "--cpu");
	axb_ergo_av(&a, "%d", E->server_cpu);
	axb_ergo_av(&a, "--result-fd");
	axb_ergo_av(&a, "3");
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
	axb_child_pump(one, 1, deadline, axb_child_ready_or_exited, &srv);
	json_t *ready = axb_child_event(&srv, "ready");
	axb_child_none(&cli);
	if (ready && !srv.exited) {
		a.n = 0;
		axb_ergo_av(&a, "axbench");
		axb_ergo_av(&a, "__load");
		axb_ergo_av(&a, "--impl");
		axb_ergo_av(&a, "%s", impl);
		axb_ergo_av(&a, "--scenario");
		axb_ergo_av(&a, "%s", scenario);
		axb_ergo_av(&a, "--cpu");
		axb_ergo_av(&a, "%d", E->load_cpu);
		axb_ergo_av(&a, "--result-fd");
		axb_ergo_av(&a, "3");
		axb_ergo_av(&a, "--target");
		axb_ergo_av(&a, "127.0.0.1:%d", (int)json_integer_value(json_object_get(ready, "port")));
		axb_ergo_av(&a, "--server-pid");
		axb_ergo_av(&a, "%ld", (long)getpid());
		av_phases(&a);
		g_have[0] = g_have[1] = 0;
		g_counts = m.c;
		g_server = srv.pid;
		if (axb_child_spawn(&cli, "loadgen", a.v, true) == 0) {
			struct axb_child *two[2] = {&srv, &cli};
			axb_child_pump(two, 2, deadline, NULL, NULL);
		}
		g_server = 0;
		g_counts = NULL;
	}
	json_decref(ready);
	if (!srv.exited) {
		kill(srv.pid, SIGTERM);
		axb_child_pump(one, 1, axb_mono_ns() + 5 * INT64_C(1000000000),
			       axb_child_exited, &srv);
		axb_child_kill(&srv, "the server did not stop after SIGTERM");
	}
	axb_child_kill(&cli, "the load generator exceeded the timeout");
	axb_child_finish(&srv);
	if (cli.pid > 0)
		axb_child_finish(&cli);
	json_t *sres = axb_child_event(&srv, "result");
	json_t *lres = cli.pid > 0 ? axb_child_event(&cli, "result") : NULL;
	err = -EIO;
	if (!axb_child_passed(&srv, why, whyn) ||
	    (cli.pid > 0 && !axb_child_passed(&cli, why, whyn))) {
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
static int alloc_local_once(const struct axb_ergo *E, const char *impl, long count,
			    double *allocs, char *why, size_t whyn)
{
	struct shm m = {.c = NULL};
	struct axb_ergo_argv a = {.n = 0};
	struct axb_child ch;
	int err = shm_open_counts(&m);
	if (err) {
		snprintf(why, whyn, "cannot create the counter file: %s", strerror(-err));
		return err;
	}
	axb_ergo_av(&a, "axbench");
	axb_ergo_av(&a, "ergo");
	axb_ergo_av(&a, "__local");
	axb_ergo_av(&a, "--impl");
	axb_ergo_av(&a, "%s", impl);
	axb_ergo_av(&a, "--count");
	axb_ergo_av(&a, "%ld", count);
	axb_ergo_av(&a, "--cpu");
	axb_ergo_av(&a, "%d", E->server_cpu);
	set_preload(E, &m, true);
	err = axb_child_spawn(&ch, "local", a.v, true);
	set_preload(E, &m, false);
	if (err) {
		snprintf(why, whyn, "cannot start the child: %s", strerror(-err));
		goto close_shm;
	}
	struct axb_child *one[1] = {&ch};
	if (axb_child_pump(one, 1, axb_mono_ns() + CHILD_TIMEOUT_NS, axb_child_exited, &ch))
		axb_child_kill(&ch, "the timers run exceeded the timeout");
	axb_child_finish(&ch);
	json_t *res = axb_child_event(&ch, "result");
	err = -EIO;
	if (!axb_child_passed(&ch, why, whyn)) {
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
static int alloc_local(const struct axb_ergo *E, const char *impl, double *per_op,
		       char *why, size_t whyn)
{
	double a1, a2;
	int err = alloc_local_once(E, impl, AXB_ALLOC_TIMERS, &a1, why, whyn);
	if (!err)
		err = alloc_local_once(E, impl, 2 * AXB_ALLOC_TIMERS, &a2, why, whyn);
	if (!err)
		*per_op = (a2 - a1) / AXB_ALLOC_TIMERS;
	if (!err && *per_op < 0)
		*per_op = 0; /* allocator noise below one allocation in N */
	return err;
}

/* allocs_per_op of one (scenario, implementation) as JSON: a number, or
 * null with a reason in notes. */
static json_t *alloc_cell(const struct axb_ergo *E, const struct axb_ergo_scenario *sc,
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

void axb_ergo_alloc_rows(const struct axb_ergo *E, json_t *rows)
{
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		const char *scn = json_string_value(json_object_get(row, "scenario"));
		const char *kind = json_string_value(json_object_get(row, "kind"));
		const struct axb_ergo_scenario *sc = NULL;
		for (size_t k = 0; k < axb_ergo_nscenarios; k++)
			if (!strcmp(axb_ergo_scenarios[k].name, scn))
				sc = &axb_ergo_scenarios[k];
		json_t *notes = json_object();
		json_object_set_new(row, "allocs_op", json_string(sc->op));
		if (!strcmp(kind, "native")) {
			json_object_set_new(row, "allocs_per_op", alloc_cell(E, sc,
				json_string_value(json_object_get(row, "implementation")), notes));
		} else {
			json_t *per = json_object();
			for (size_t k = 0; k < axb_ergo_nengines; k++)
				json_object_set_new(per, axb_ergo_engines[k].name,
						    alloc_cell(E, sc, axb_ergo_engines[k].name, notes));
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

int axb_ergo_local(int argc, char **argv)
{
	static const struct option lo[] = {
		{"impl", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{"cpu", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	const char *impl = NULL;
	long count = AXB_ALLOC_TIMERS;
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


void axb_ergo_alloc_init(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_mark;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
}
