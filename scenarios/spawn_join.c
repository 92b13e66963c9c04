/*
 * spawn_join.c - task creation cost: spawn one task and join it, N times
 * in a row (ns per spawn+join), then N tasks alive at once (memory per
 * task). The check: every join returned the task's own result.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "scenario.h"

static intptr_t sj_child(void *arg)
{
	return (intptr_t)arg + 1;
}

static intptr_t sj_parked(void *arg)
{
	/* stay alive until the parent has spawned all of them */
	ax_chan *c = arg;
	int v;
	return ax_chan_recv(c, &v) == -EPIPE ? 0 : -1;
}

static long sj_rss_kib(void)
{
	long kib = -1;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* n spawn+join pairs; returns how many joins gave a wrong result. */
static int64_t sj_pairs(int64_t n)
{
	int64_t bad = 0;
	for (int64_t i = 0; i < n; i++) {
		ax_task *t;
		intptr_t r = 0;
		if (ax_spawn(&t, sj_child, (void *)(intptr_t)i, NULL) < 0 ||
		    ax_join(t, &r) < 0 || r != i + 1)
			bad++;
	}
	return bad;
}

static intptr_t sj_run(struct axs_ctx *ctx)
{
	int64_t n = axs_param(ctx, "count");
	int64_t live = axs_param(ctx, "live");
	int64_t bad = 0;

	/* warm the stack cache */
	for (int64_t i = 0; i < 1000; i++) {
		ax_task *t;
		ax_spawn(&t, sj_child, (void *)(intptr_t)i, NULL);
		ax_join(t, NULL);
	}
	int64_t t0 = ax_now();
	bad = sj_pairs(n);
	int64_t el = ax_now() - t0;
	if (bad) {
		axs_fail(ctx, "%ld of %ld joins returned a wrong result",
			   (long)bad, (long)n);
		return -1;
	}
	axs_metric(ctx, "spawn_join_ns", (double)el / (double)n, "ns", -1);
	axs_metric(ctx, "spawn_join_per_s", (double)n * 1e9 / (double)el,
		     "ops/s", +1);

	/* memory per live task */
	ax_chan *c;
	if (ax_chan_create(&c, sizeof(int), 1) < 0)
		return -1;
	ax_task **v = calloc((size_t)live, sizeof *v);
	long before = sj_rss_kib();
	int64_t spawned = 0;
	for (; v && spawned < live; spawned++)
		if (ax_spawn(&v[spawned], sj_parked, c, NULL) < 0)
			break;
	long after = sj_rss_kib();
	ax_chan_close(c);
	for (int64_t i = 0; i < spawned; i++) {
		intptr_t r = -1;
		ax_join(v[i], &r);
		bad += r != 0;
	}
	free(v);
	ax_chan_destroy(c);
	if (spawned != live || bad) {
		axs_fail(ctx, "spawned %ld of %ld live tasks, %ld bad",
			   (long)spawned, (long)live, (long)bad);
		return -1;
	}
	axs_metric(ctx, "bytes_per_live_task",
		     (double)(after - before) * 1024.0 / (double)live, "bytes", -1);
	return 0;
}

/* Instructions mode: the timed part of run, `count` spawn+join pairs. */
static int64_t sj_instr(struct axs_ctx *ctx)
{
	int64_t n = axs_param(ctx, "count");
	return sj_pairs(n) ? -EIO : n;
}

static const struct axs_param_def sj_params[] = {
	{"count", AXS_P_INT, "200000", "spawn+join pairs timed", 1, 1000000000},
	{"live", AXS_P_INT, "10000", "tasks alive at once for the memory figure", 1, 1000000},
};

const struct axs_scenario axs_spawn_join = {
	.name = "spawn_join",
	.summary = "spawn+join cost and memory per live task",
	.kind = AXS_LOCAL,
	.params = sj_params,
	.nparams = sizeof sj_params / sizeof sj_params[0],
	.run = sj_run,
	.instr = sj_instr,
};
