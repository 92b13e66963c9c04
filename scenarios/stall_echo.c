/*
 * stall_echo.c - test-only (hidden: not listed, not in `--scenario all`):
 * an echo server whose runtime stops serving for `stall` once every
 * `period` (a task spins without yielding), to prove that the open-loop
 * latency is measured from each request's intended send time
 * (tests/e2e/test_openloop.py, docs/harness.md).
 */
#include <errno.h>

#include "scenario.h"
#include "serve_util.h"

struct staller {
	struct axs_ctx *ctx;
	int64_t stall, period, stalls;
};

static intptr_t staller_main(void *arg)
{
	struct staller *s = arg;
	while (!s->ctx->stopping) {
		if (ax_sleep(s->period - s->stall) == -ECANCELED)
			break;
		/* hold the runtime's thread: no I/O is served meanwhile */
		int64_t t0 = ax_now();
		while (ax_now() - t0 < s->stall && !s->ctx->stopping)
			;
		s->stalls++;
	}
	return 0;
}

static intptr_t stall_serve(struct axs_ctx *ctx)
{
	struct staller s = {ctx, axs_param(ctx, "stall"), axs_param(ctx, "period"), 0};
	ax_task *t;
	if (s.stall >= s.period)
		return -EINVAL;
	int r = ax_spawn(&t, staller_main, &s, "staller");
	if (r < 0)
		return r;
	intptr_t res = axs_echo_serve(ctx);
	ax_cancel(t);
	ax_join(t, NULL);
	axs_metric(ctx, "stalls", (double)s.stalls, "count", 0);
	return res;
}

static const struct axs_param_def stall_params[] = {
	{"connections", AXS_P_INT, "4", "concurrent client connections", 1, 10000},
	{"size", AXS_P_BYTES, "64", "message size in bytes", 1, 65536},
	{"pipeline", AXS_P_INT, "1", "messages in flight per connection", 1, 1024},
	{"rate", AXS_P_INT, "2000", "open loop: requests/s over all connections (0: closed loop)", 0, 10000000},
	{"arrivals", AXS_P_ENUM, "uniform", "uniform|poisson: open-loop gaps between requests", 0, 1},
	{"stall", AXS_P_DURATION, "100ms", "how long the server stops serving", 1000, 10000000000},
	{"period", AXS_P_DURATION, "1s", "one stall every period", 1000000, 60000000000},
	{"duration", AXS_P_DURATION, "3s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_stall_echo = {
	.name = "stall_echo",
	.summary = "test only: echo server stalling `stall` every `period`",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = stall_params,
	.nparams = sizeof stall_params / sizeof stall_params[0],
	.serve = stall_serve,
};
