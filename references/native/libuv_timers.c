/* libuv_timers.c - the timers scenario's arm-and-fire part written straight
 * on libuv: one uv_timer_t per sleeper, re-armed from its own callback
 * `count / tasks` times with deadlines spread over [0, 1 ms); the check is
 * that none fires early. */
#include <errno.h>
#include <stdlib.h>

#include <uv.h>

#include "native.h"

struct sleeper {
	uv_timer_t t;      /* first: the handle is the sleeper */
	int64_t armed, d;  /* uv_hrtime() when armed, and the wait in ns */
	int64_t left;      /* timers still to arm after this one */
	uint64_t x;        /* its xorshift state: the spread deadlines */
	struct tally *tally;
};

struct tally {
	int64_t fired, early;
};

static void on_fire(uv_timer_t *t);

/* libuv times in whole milliseconds of the loop's cached clock (uv_now,
 * never ahead of uv_hrtime): round the deadline up on that clock so the
 * timer cannot fire before armed + d. */
static void arm(struct sleeper *s)
{
	s->x ^= s->x << 13;
	s->x ^= s->x >> 7;
	s->x ^= s->x << 17;
	s->d = (int64_t)(s->x % 1000000);
	s->armed = (int64_t)uv_hrtime();
	uint64_t since = (uint64_t)s->armed + (uint64_t)s->d -
			 uv_now(s->t.loop) * 1000000;
	uv_timer_start(&s->t, on_fire, (since + 999999) / 1000000, 0);
}

static void on_fire(uv_timer_t *t)
{
	struct sleeper *s = (struct sleeper *)t;
	s->tally->fired++;
	if ((int64_t)uv_hrtime() - s->armed < s->d)
		s->tally->early++;
	if (s->left-- > 0)
		arm(s);
}

intptr_t axr_libuv_timers(struct axs_ctx *ctx)
{
	int64_t count = axs_param(ctx, "count"), tasks = axs_param(ctx, "tasks");
	int64_t per = count / tasks;
	uint64_t seed = 42;
	struct tally tally = {0, 0};
	uv_loop_t loop;
	struct sleeper *ss = calloc((size_t)tasks, sizeof *ss);
	intptr_t err = ss ? uv_loop_init(&loop) : -ENOMEM;

	if (err) {
		free(ss);
		return err;
	}
	int64_t t0 = (int64_t)uv_hrtime();
	for (int64_t i = 0; i < tasks && per > 0; i++) {
		uv_timer_init(&loop, &ss[i].t);
		ss[i].tally = &tally;
		ss[i].x = seed += 0x9e3779b97f4a7c15ull;
		ss[i].left = per - 1;
		arm(&ss[i]);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	int64_t el = (int64_t)uv_hrtime() - t0;
	for (int64_t i = 0; i < tasks && per > 0; i++)
		uv_close((uv_handle_t *)&ss[i].t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT); /* the closes */
	uv_loop_close(&loop);
	free(ss);
	if (tally.early) {
		axs_fail(ctx, "%ld of %ld timers fired early", (long)tally.early,
			   (long)tally.fired);
		return -1;
	}
	axs_metric(ctx, "timers_per_s", (double)tally.fired * 1e9 / (double)el,
		     "ops/s", +1);
	axs_metric(ctx, "arm_fire_ns", (double)el / (double)tally.fired, "ns", -1);
	return 0;
}
