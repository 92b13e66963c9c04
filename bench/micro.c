/* micro.c - the micro-benchmarks of bench/axbench-micro: task switch,
 * spawn+join, yield, channel send+receive and hand-off, timer arm+cancel on
 * every ax runtime available here (named "<benchmark>/<runtime>"), and the
 * latency histogram's record; Google Benchmark runs them through gbench.h.
 * Without --benchmark_out the JSON report goes to results/micro-<time>.json
 * beside the other results. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ax.h"
#include "gbench.h"
#include "hist.h"

#define MAX_BENCHES 64

/* A benchmark body: runs as the main task of a fresh runtime, does its
 * untimed setup, the timed gb_loop, and its teardown. */
typedef void (*bm_body)(gb_state *st);

struct bm_spec {
	const char *runtime;
	bm_body body;
};

struct bm_call {
	gb_state *st;
	bm_body body;
};

static intptr_t bm_main(void *arg)
{
	struct bm_call *c = arg;
	c->body(c->st);
	return 0;
}

/* Every runtime benchmark: a fresh runtime per call, created untimed. */
static void bm_on_runtime(gb_state *st, void *arg)
{
	const struct bm_spec *b = arg;
	struct ax_rt_opts o;
	ax_rt *rt;
	ax_rt_opts_init(&o);
	o.hog_threshold_ns = 0; /* loops that never suspend are the point here */
	int err = ax_rt_create(&rt, b->runtime, &o);
	if (err) {
		gb_skip(st, strerror(-err));
		return;
	}
	struct bm_call c = {st, b->body};
	ax_rt_run(rt, bm_main, &c, NULL);
	ax_rt_destroy(rt);
}

/* --- the bodies ----------------------------------------------------- */

static intptr_t yield_until(void *arg)
{
	volatile bool *stop = arg;
	while (!*stop)
		ax_yield();
	return 0;
}

/* One iteration is one task switch: two tasks yield to each other. */
static void body_ctx_switch(gb_state *st)
{
	volatile bool stop = false;
	ax_task *partner;
	ax_spawn(&partner, yield_until, (void *)&stop, "partner");
	while (gb_loop(st))
		for (uint64_t i = 0; i < (gb_iterations(st) + 1) / 2; i++)
			ax_yield();
	stop = true;
	ax_join(partner, NULL);
	gb_label(st, "one task switch per iteration");
}

static intptr_t return_zero(void *arg)
{
	(void)arg;
	return 0;
}

/* Spawn a task that returns at once (spawn is eager), join it. */
static void body_spawn_join(gb_state *st)
{
	while (gb_loop(st))
		for (uint64_t i = 0; i < gb_iterations(st); i++) {
			ax_task *t;
			ax_spawn(&t, return_zero, NULL, NULL);
			ax_join(t, NULL);
		}
}

/* ax_yield with no other task ready: the scheduler's round and its
 * periodic engine poll, no switch. */
static void body_yield(gb_state *st)
{
	while (gb_loop(st))
		for (uint64_t i = 0; i < gb_iterations(st); i++)
			ax_yield();
	gb_label(st, "alone: no other task ready");
}

/* Send then receive one int on a channel of capacity 1, in one task: the
 * channel's own cost, no switch. */
static void body_chan_send_recv(gb_state *st)
{
	ax_chan *c;
	int v = 1;
	if (ax_chan_create(&c, sizeof v, 1)) {
		gb_skip(st, "ax_chan_create failed");
		return;
	}
	while (gb_loop(st))
		for (uint64_t i = 0; i < gb_iterations(st); i++) {
			ax_chan_send(c, &v);
			ax_chan_recv(c, &v);
		}
	ax_chan_destroy(c);
}

static intptr_t drain(void *arg)
{
	ax_chan *c = arg;
	int v;
	while (ax_chan_recv(c, &v) == 0)
		;
	return 0;
}

/* Hand ints to another task through a channel of capacity 1: channel plus
 * the switches a full channel forces. */
static void body_chan_handoff(gb_state *st)
{
	ax_chan *c;
	ax_task *rx;
	int v = 1;
	if (ax_chan_create(&c, sizeof v, 1)) {
		gb_skip(st, "ax_chan_create failed");
		return;
	}
	ax_spawn(&rx, drain, c, "drain");
	while (gb_loop(st))
		for (uint64_t i = 0; i < gb_iterations(st); i++)
			ax_chan_send(c, &v);
	ax_chan_close(c);
	ax_join(rx, NULL);
	ax_chan_destroy(c);
	gb_label(st, "one message to another task per iteration");
}

static intptr_t sleep_until(void *arg)
{
	volatile bool *stop = arg;
	while (!*stop)
		ax_sleep(1000000000);
	return 0;
}

/* A task sleeps 1 s and is cancelled at once, over and over: one timer
 * armed and cancelled per iteration, with the two switches it takes. */
static void body_timer_arm_cancel(gb_state *st)
{
	volatile bool stop = false;
	ax_task *t;
	ax_spawn(&t, sleep_until, (void *)&stop, "sleeper");
	while (gb_loop(st))
		for (uint64_t i = 0; i < gb_iterations(st); i++) {
			ax_cancel(t);
			ax_yield(); /* the sleeper wakes, and sleeps again */
		}
	stop = true;
	ax_cancel(t);
	ax_join(t, NULL);
	gb_label(st, "arm+cancel, includes two task switches");
}

/* Record values spread over [0, 1 s) into the latency histogram. */
static void bm_hist_record(gb_state *st, void *arg)
{
	static int64_t vals[4096];
	struct axm_hist *h = axm_hist_new();
	uint64_t x = 88172645463325252ull;
	(void)arg;
	if (!h) {
		gb_skip(st, "out of memory");
		return;
	}
	for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		vals[k] = (int64_t)(x % 1000000000);
	}
	while (gb_loop(st))
		for (uint64_t i = 0; i < gb_iterations(st); i++)
			axm_hist_record(h, vals[i & 4095]);
	axm_hist_free(h);
}

static const struct {
	const char *name;
	bm_body body;
} bodies[] = {
	{"ctx_switch", body_ctx_switch},
	{"spawn_join", body_spawn_join},
	{"yield", body_yield},
	{"chan_send_recv", body_chan_send_recv},
	{"chan_handoff", body_chan_handoff},
	{"timer_arm_cancel", body_timer_arm_cancel},
};

static struct bm_spec specs[MAX_BENCHES];

/* Register every body on every runtime available here, and record each
 * runtime's engine configuration in the report's context. */
static int register_all(void)
{
	size_t n = 0;
	for (size_t r = 0; r < ax_driver_count(); r++) {
		const char *rt = ax_driver_name(r);
		char why[256], key[64];
		if (!ax_driver_available(rt, why, sizeof why)) {
			fprintf(stderr, "axbench-micro: runtime %s unavailable: %s\n", rt, why);
			continue;
		}
		ax_rt *probe;
		if (ax_rt_create(&probe, rt, NULL) == 0) {
			snprintf(key, sizeof key, "ax_engine_%s", rt);
			gb_context(key, ax_rt_engine_info(probe));
			ax_rt_destroy(probe);
		}
		for (size_t b = 0; b < sizeof bodies / sizeof bodies[0] && n < MAX_BENCHES; b++) {
			char name[128];
			specs[n] = (struct bm_spec){rt, bodies[b].body};
			snprintf(name, sizeof name, "%s/%s", bodies[b].name, rt);
			if (gb_register(name, bm_on_runtime, &specs[n++]))
				return -ENOMEM;
		}
	}
	return gb_register("hist_record", bm_hist_record, NULL);
}

int main(int argc, char **argv)
{
	char out[128], when[32];
	char *args[256];
	int n = 0;
	bool has_out = false;

	for (int i = 0; i < argc && n < 250; i++) {
		args[n++] = argv[i];
		has_out |= !strncmp(argv[i], "--benchmark_out=", 16);
	}
	if (!has_out) {
		time_t t = time(NULL);
		strftime(when, sizeof when, "%Y%m%d-%H%M%S", gmtime(&t));
		if (mkdir("results", 0755) && errno != EEXIST) {
			fprintf(stderr, "axbench-micro: cannot create results/: %s\n",
				strerror(errno));
			return 1;
		}
		snprintf(out, sizeof out, "--benchmark_out=results/micro-%s.json", when);
		args[n++] = out;
		args[n++] = "--benchmark_out_format=json";
		fprintf(stderr, "axbench-micro: JSON report in %s\n", out + 16);
	}
	args[n] = NULL;
	if (register_all()) {
		fprintf(stderr, "axbench-micro: out of memory\n");
		return 1;
	}
	return gb_main(n, args);
}
