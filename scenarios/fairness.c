/*
 * fairness.c - an echo server next to a CPU-bound task that yields every
 * `yield_every` of work: how much the hog's slice length costs the echo
 * latency (compare p99 across -p yield_every=10us,100us,1ms). The echo
 * clients are the load generator's; its byte-for-byte check applies.
 */
#include <errno.h>

#include "serve_util.h"

struct fair_hog {
	struct axs_ctx *ctx;
	int64_t slice;
	int64_t slices;
};

static intptr_t fair_hog_main(void *arg)
{
	struct fair_hog *h = arg;
	while (!h->ctx->stopping) {
		int64_t t0 = ax_now();
		while (ax_now() - t0 < h->slice)
			; /* CPU-bound work */
		h->slices++;
		if (ax_yield() == -ECANCELED)
			break;
	}
	return 0;
}

static intptr_t fair_serve(struct axs_ctx *ctx)
{
	struct fair_hog h = {ctx, axs_param(ctx, "yield_every"), 0};
	ax_task *hog;
	int r = ax_spawn(&hog, fair_hog_main, &h, "cpu-hog");
	if (r < 0)
		return r;
	intptr_t res = axs_echo_serve(ctx);
	ax_cancel(hog);
	ax_join(hog, NULL);
	axs_metric(ctx, "hog_slices", (double)h.slices, "count", 0);
	return res;
}

static const struct axs_param_def fair_params[] = {
	{"connections", AXS_P_INT, "16", "concurrent client connections", 1, 100000},
	{"size", AXS_P_BYTES, "64", "message size in bytes", 1, 1 << 20},
	{"pipeline", AXS_P_INT, "1", "messages in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	{"yield_every", AXS_P_DURATION, "100us", "CPU work of the hog between yields", 1000, 1000000000},
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_fairness = {
	.name = "fairness",
	.summary = "echo latency next to a CPU-bound task yielding every X",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = fair_params,
	.nparams = sizeof fair_params / sizeof fair_params[0],
	.serve = fair_serve,
};
