/*
 * ctx_switch.c - the cost of one task switch: two tasks yield to each other
 * N times each, so every ax_yield is exactly one switch. The check: the two
 * tasks strictly alternated ([AX-TASK-3]).
 */
#include <errno.h>

#include "scenario.h"

struct cs_state {
	int64_t n;
	int last;
	int64_t violations;
};

struct cs_arg {
	struct cs_state *st;
	int id;
};

static intptr_t cs_task(void *arg)
{
	struct cs_arg *a = arg;
	for (int64_t i = 0; i < a->st->n; i++) {
		if (a->st->last == a->id)
			a->st->violations++;
		a->st->last = a->id;
		ax_yield();
	}
	return 0;
}

/* The ping-pong: two tasks, `count` yields each; returns the violations. */
static int64_t cs_pingpong(struct axs_ctx *ctx, int64_t *switches)
{
	struct cs_state st = {.n = axs_param(ctx, "count"), .last = -1};
	struct cs_arg a = {&st, 0}, b = {&st, 1};
	ax_task *x, *y;
	ax_spawn(&x, cs_task, &a, "ping");
	ax_spawn(&y, cs_task, &b, "pong");
	ax_join(x, NULL);
	ax_join(y, NULL);
	*switches = 2 * st.n;
	return st.violations;
}

static intptr_t cs_run(struct axs_ctx *ctx)
{
	int64_t switches, t0 = ax_now();
	int64_t violations = cs_pingpong(ctx, &switches);
	int64_t el = ax_now() - t0;
	if (violations) {
		axs_fail(ctx, "tasks did not alternate %ld times", (long)violations);
		return -1;
	}
	axs_metric(ctx, "switch_ns", (double)el / (double)switches, "ns", -1);
	return 0;
}

/* Instructions mode: the same ping-pong. */
static int64_t cs_instr(struct axs_ctx *ctx)
{
	int64_t switches;
	return cs_pingpong(ctx, &switches) ? -EIO : switches;
}

static const struct axs_param_def cs_params[] = {
	{"count", AXS_P_INT, "2000000", "yields per task", 1, 1000000000},
};

const struct axs_scenario axs_ctx_switch = {
	.name = "ctx_switch",
	.summary = "two tasks yielding to each other: ns per task switch",
	.kind = AXS_LOCAL,
	.params = cs_params,
	.nparams = sizeof cs_params / sizeof cs_params[0],
	.run = cs_run,
	.instr = cs_instr,
};
