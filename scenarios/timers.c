/*
 * timers.c - timer cost and accuracy: arm and fire many timers (sleeping
 * tasks with spread deadlines), the lateness of 1 ms sleeps while other
 * tasks keep the loop busy, and timeout churn (a deadline armed on every
 * wait and cancelled before it fires, as request timeouts are).
 * The check: no sleep ever ended early ([AX-TIME-1]) and every churn wait
 * was served by its message, not its timeout.
 */
#include <errno.h>
#include <stdlib.h>

#include "scenario.h"

struct tm_shared {
	int64_t per_task;
	int64_t early;
	uint64_t seed;
};

static intptr_t tm_sleeper(void *arg)
{
	struct tm_shared *sh = arg;
	/* a per-task xorshift so deadlines spread over [0, 1 ms) */
	uint64_t x = sh->seed += 0x9e3779b97f4a7c15ull;
	for (int64_t i = 0; i < sh->per_task; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t d = (int64_t)(x % 1000000);
		int64_t t0 = ax_now();
		ax_sleep(d);
		if (ax_now() - t0 < d)
			sh->early++;
	}
	return 0;
}

static intptr_t tm_busy(void *arg)
{
	volatile bool *stop = arg;
	while (!*stop) {
		int64_t t0 = ax_now();
		while (ax_now() - t0 < 100000)
			; /* 100 us of work between yields */
		ax_yield();
	}
	return 0;
}

struct tm_churn {
	ax_chan *c;
	int64_t n;
	int64_t timeouts;
};

static intptr_t tm_churn_rx(void *arg)
{
	struct tm_churn *ch = arg;
	int v;
	for (int64_t i = 0; i < ch->n; i++) {
		struct ax_deadline dl;
		ax_deadline_enter(&dl, ax_now() + 1000000000);
		if (ax_chan_recv(ch->c, &v) == -ETIMEDOUT)
			ch->timeouts++;
		ax_deadline_leave(&dl);
	}
	return 0;
}

/* ch->n waits, each with a deadline armed and disarmed when the message
 * arrives. Returns 0 or -ENOMEM. */
static int tm_churn_run(struct tm_churn *ch)
{
	ax_task *rx;
	if (ax_chan_create(&ch->c, sizeof(int), 1) < 0)
		return -ENOMEM;
	ax_spawn(&rx, tm_churn_rx, ch, "churn");
	for (int64_t i = 0; i < ch->n; i++) {
		int x = (int)i;
		ax_chan_send(ch->c, &x);
		/* let the receiver take it and park again, arming its deadline */
		ax_yield();
	}
	ax_join(rx, NULL);
	ax_chan_destroy(ch->c);
	return 0;
}

static intptr_t tm_run(struct axs_ctx *ctx)
{
	int64_t count = axs_param(ctx, "count");
	int64_t tasks = axs_param(ctx, "tasks");
	int64_t samples = axs_param(ctx, "samples");
	struct tm_shared sh = {.per_task = count / tasks, .seed = 42};
	int r;
	ax_task **v = calloc((size_t)tasks, sizeof *v);
	if (!v)
		return -ENOMEM;

	/* 1. arm and fire */
	int64_t t0 = ax_now();
	for (int64_t i = 0; i < tasks; i++)
		ax_spawn(&v[i], tm_sleeper, &sh, "sleeper");
	for (int64_t i = 0; i < tasks; i++)
		ax_join(v[i], NULL);
	int64_t el = ax_now() - t0;
	free(v);
	int64_t fired = sh.per_task * tasks;
	if (sh.early) {
		axs_fail(ctx, "%ld of %ld sleeps ended early", (long)sh.early,
			   (long)fired);
		return -1;
	}
	axs_metric(ctx, "timers_per_s", (double)fired * 1e9 / (double)el,
		     "ops/s", +1);
	axs_metric(ctx, "arm_fire_ns", (double)el / (double)fired, "ns", -1);

	/* 2. lateness of 1 ms sleeps next to four busy tasks */
	volatile bool stop = false;
	ax_task *busy[4];
	for (int i = 0; i < 4; i++)
		ax_spawn(&busy[i], tm_busy, (void *)&stop, "busy");
	for (int64_t i = 0; i < samples; i++) {
		int64_t s0 = ax_now();
		ax_sleep(1000000);
		int64_t late = ax_now() - s0 - 1000000;
		if (late < 0) {
			axs_fail(ctx, "a 1 ms sleep ended %ld ns early", (long)-late);
			stop = true;
			break;
		}
		axs_latency(ctx, "sleep_lateness", late);
	}
	stop = true;
	for (int i = 0; i < 4; i++)
		ax_join(busy[i], NULL);

	/* 3. timeout churn: arm a deadline per wait, cancel it on the message */
	struct tm_churn ch = {.n = count / 4};
	t0 = ax_now();
	if ((r = tm_churn_run(&ch)) < 0)
		return r;
	el = ax_now() - t0;
	if (ch.timeouts) {
		axs_fail(ctx, "%ld churn waits timed out", (long)ch.timeouts);
		return -1;
	}
	axs_metric(ctx, "churn_ns", (double)el / (double)ch.n, "ns", -1);
	return 0;
}

/* Instructions mode: the timeout churn of run (arm + cancel: the timer
 * structure's work), with deadlines that never fire, so no clock matters. */
static int64_t tm_instr(struct axs_ctx *ctx)
{
	struct tm_churn ch = {.n = axs_param(ctx, "count") / 4};
	int r = tm_churn_run(&ch);
	if (r < 0)
		return r;
	return ch.timeouts ? -EIO : ch.n;
}

/* Instructions mode, timers:fire: the arm-and-fire part of run (`tasks`
 * sleepers, count / tasks spread sleeps each), the work the native
 * versions do too. Unlike the churn, it waits for the clock: how many
 * timers one wait of the loop fires depends on timing, so its count moves
 * by a little between runs (docs/profiles.md). */
static int64_t tm_instr_fire(struct axs_ctx *ctx)
{
	int64_t tasks = axs_param(ctx, "tasks");
	struct tm_shared sh = {.per_task = axs_param(ctx, "count") / tasks, .seed = 42};
	ax_task **v = calloc((size_t)tasks, sizeof *v);
	if (!v)
		return -ENOMEM;
	for (int64_t i = 0; i < tasks; i++)
		ax_spawn(&v[i], tm_sleeper, &sh, "sleeper");
	for (int64_t i = 0; i < tasks; i++)
		ax_join(v[i], NULL);
	free(v);
	return sh.early ? -EIO : sh.per_task * tasks;
}

static int64_t tm_fire_ops(const struct axs_ctx *ctx)
{
	int64_t tasks = axs_param(ctx, "tasks");
	return axs_param(ctx, "count") / tasks * tasks;
}

static const struct axs_instr_alt tm_alts[] = {
	{"fire", "one timer armed and fired (sleeps spread over [0, 1 ms))",
	 tm_instr_fire, tm_fire_ops},
	{NULL, NULL, NULL, NULL},
};

static const struct axs_param_def tm_params[] = {
	{"count", AXS_P_INT, "1000000", "timers armed and fired", 1000, 100000000},
	{"tasks", AXS_P_INT, "1000", "sleeping tasks sharing them", 1, 100000},
	{"samples", AXS_P_INT, "500", "1 ms sleeps measured for lateness", 1, 1000000},
};

const struct axs_scenario axs_timers = {
	.name = "timers",
	.summary = "arm+fire cost, 1 ms sleep lateness under load, timeout churn",
	.kind = AXS_LOCAL,
	.params = tm_params,
	.nparams = sizeof tm_params / sizeof tm_params[0],
	.run = tm_run,
	.instr = tm_instr,
	.instr_alts = tm_alts,
};
