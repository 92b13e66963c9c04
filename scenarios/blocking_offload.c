/*
 * blocking_offload.c - the blocking pool: `tasks` tasks each offload calls
 * that burn `work` of CPU, and the throughput of calls is measured; a ticker
 * task sleeping 1 ms records how late it wakes meanwhile (the loop must stay
 * responsive). The check: every call returned its own argument transformed.
 */
#include <errno.h>
#include <time.h>

#include "scenario.h"

struct bo {
	int64_t calls_per_task;
	int64_t work_ns;
	int64_t bad;
	volatile bool stop;
};

struct bo_arg {
	struct bo *b;
	int64_t x;
};

static intptr_t bo_work(void *arg)
{
	struct bo_arg *a = arg;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t1);
	while ((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec) <
	       a->b->work_ns);
	return (intptr_t)(a->x * 3 + 1);
}

static intptr_t bo_task(void *arg)
{
	struct bo *b = arg;
	for (int64_t i = 0; i < b->calls_per_task; i++) {
		struct bo_arg a = {b, i};
		intptr_t r = 0;
		if (ax_blocking(bo_work, &a, &r) < 0 || r != i * 3 + 1)
			b->bad++;
	}
	return 0;
}

struct bo_tick {
	struct bo *b;
	struct axs_ctx *ctx;
};

/* Sleeps 1 ms at a time while the pool works; records how late it wakes. */
static intptr_t bo_ticker(void *arg)
{
	struct bo_tick *tk = arg;
	while (!tk->b->stop) {
		int64_t s0 = ax_now();
		ax_sleep(1000000);
		axs_latency(tk->ctx, "tick_lateness", ax_now() - s0 - 1000000);
	}
	return 0;
}

static intptr_t bo_run(struct axs_ctx *ctx)
{
	int64_t tasks = axs_param(ctx, "tasks");
	struct bo b = {.calls_per_task = axs_param(ctx, "calls") / tasks,
		       .work_ns = axs_param(ctx, "work")};
	struct bo_tick tk = {&b, ctx};
	ax_task *t[256], *ticker;
	if (b.calls_per_task < 1)
		b.calls_per_task = 1;
	ax_spawn(&ticker, bo_ticker, &tk, "ticker");
	int64_t t0 = ax_now();
	for (int64_t i = 0; i < tasks; i++)
		ax_spawn(&t[i], bo_task, &b, "offloader");
	for (int64_t i = 0; i < tasks; i++)
		ax_join(t[i], NULL);
	int64_t el = ax_now() - t0;
	b.stop = true;
	ax_join(ticker, NULL);
	int64_t calls = b.calls_per_task * tasks;
	if (b.bad) {
		axs_fail(ctx, "%ld of %ld offloaded calls failed", (long)b.bad,
			   (long)calls);
		return -1;
	}
	axs_metric(ctx, "calls_per_s", (double)calls * 1e9 / (double)el, "ops/s", +1);
	return 0;
}

static const struct axs_param_def bo_params[] = {
	{"calls", AXS_P_INT, "20000", "offloaded calls in all", 1, 100000000},
	{"tasks", AXS_P_INT, "8", "tasks offloading concurrently", 1, 256},
	{"work", AXS_P_DURATION, "10us", "CPU burnt by each call", 0, 1000000000},
};

const struct axs_scenario axs_blocking_offload = {
	.name = "blocking_offload",
	.summary = "blocking-pool call throughput and loop responsiveness meanwhile",
	.kind = AXS_LOCAL,
	.params = bo_params,
	.nparams = sizeof bo_params / sizeof bo_params[0],
	.run = bo_run,
};
