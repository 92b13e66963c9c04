/*
 * example_pipeline.c - the worked example of docs/adding-a-scenario.md: a
 * pipeline of `stages` tasks joined by channels carries `count` numbered
 * tokens from a source to a sink. The check: the sink received every token
 * exactly once and in order ([AX-CHAN-1]). The metric: ns per hop (one
 * channel hand-off between two tasks). Registered as a hidden scenario, so
 * the tests run it through `axbench run` and the guide cannot rot.
 */
#include <errno.h>
#include <stdint.h>

#include "scenario.h"

#define PL_MAX_STAGES 64

/* One stage: pass every token from `in` to `out`; when `in` is closed
 * and drained, close `out` so that the end travels down the pipeline. */
struct pl_stage {
	ax_chan *in, *out;
};

static intptr_t pl_stage_main(void *arg)
{
	struct pl_stage *s = arg;
	int64_t v;
	int err;

	while ((err = ax_chan_recv(s->in, &v)) == 0)
		if ((err = ax_chan_send(s->out, &v)) != 0)
			break;
	ax_chan_close(s->out);
	return err == -EPIPE ? 0 : err;
}

/* The sink: count the tokens that arrive in order and those that do not. */
struct pl_sink {
	ax_chan *in;
	int64_t next, bad;
};

static intptr_t pl_sink_main(void *arg)
{
	struct pl_sink *k = arg;
	int64_t v;
	int err;

	while ((err = ax_chan_recv(k->in, &v)) == 0) {
		if (v == k->next)
			k->next++;
		else
			k->bad++;
	}
	return err == -EPIPE ? 0 : err;
}

/* Send `count` tokens through `stages` tasks into the sink. Returns the
 * tokens lost, duplicated or out of order (0 when the check holds) and the
 * hops made in *hops, or -errno when the pipeline could not be built. */
static int64_t pl_pipeline(struct axs_ctx *ctx, int64_t *hops)
{
	int64_t stages = axs_param(ctx, "stages");
	int64_t count = axs_param(ctx, "count");
	ax_chan *ch[PL_MAX_STAGES + 1];
	struct pl_stage st[PL_MAX_STAGES];
	ax_task *t[PL_MAX_STAGES + 1];
	struct pl_sink sink = {0};
	int64_t nch, ntask = 0, i;
	int err = 0;

	for (nch = 0; nch <= stages; nch++)
		if ((err = ax_chan_create(&ch[nch], sizeof(int64_t), 16)) != 0)
			goto destroy_chans;
	for (; ntask < stages; ntask++) {
		st[ntask] = (struct pl_stage){ch[ntask], ch[ntask + 1]};
		err = ax_spawn(&t[ntask], pl_stage_main, &st[ntask], "stage");
		if (err)
			goto join_tasks;
	}
	sink.in = ch[stages];
	if ((err = ax_spawn(&t[ntask], pl_sink_main, &sink, "sink")) != 0)
		goto join_tasks;
	ntask++;
	for (i = 0; i < count; i++)
		if ((err = ax_chan_send(ch[0], &i)) != 0)
			break;
join_tasks:
	ax_chan_close(ch[0]);
	while (ntask > 0)
		ax_join(t[--ntask], NULL);
destroy_chans:
	while (nch > 0)
		ax_chan_destroy(ch[--nch]);
	if (err)
		return err;
	*hops = sink.next * (stages + 1);
	return sink.bad + (count - sink.next);
}

/* The measured run: time the pipeline, then check, then record. */
static intptr_t pl_run(struct axs_ctx *ctx)
{
	int64_t hops = 0, t0 = ax_now();
	int64_t bad = pl_pipeline(ctx, &hops);
	int64_t elapsed = ax_now() - t0;

	if (bad < 0)
		return bad;
	if (bad > 0) {
		axs_fail(ctx, "%lld tokens lost, duplicated or out of order",
			 (long long)bad);
		return 0;
	}
	axs_metric(ctx, "hop_ns", (double)elapsed / (double)hops, "ns", -1);
	axs_metric(ctx, "tokens_per_s", 1e9 * (double)axs_param(ctx, "count") /
		   (double)elapsed, "tokens/s", +1);
	return 0;
}

/* Instructions mode: the same work, no clock; returns the hops done. */
static int64_t pl_instr(struct axs_ctx *ctx)
{
	int64_t hops = 0;
	int64_t bad = pl_pipeline(ctx, &hops);
	return bad < 0 ? bad : bad > 0 ? -EIO : hops;
}

static const struct axs_param_def pl_params[] = {
	{"stages", AXS_P_INT, "4", "tasks between source and sink", 1,
	 PL_MAX_STAGES},
	{"count", AXS_P_INT, "100000", "tokens sent through the pipeline",
	 1, 100000000},
};

const struct axs_scenario axs_example_pipeline = {
	.name = "example_pipeline",
	.summary = "tokens through a pipeline of tasks and channels: ns per hop",
	.kind = AXS_LOCAL,
	.params = pl_params,
	.nparams = sizeof pl_params / sizeof pl_params[0],
	.run = pl_run,
	.instr = pl_instr,
};
