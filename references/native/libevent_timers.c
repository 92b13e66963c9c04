/* libevent_timers.c - the timers scenario's arm-and-fire part written
 * straight on libevent: one evtimer per sleeper, re-added from its own
 * callback `count / tasks` times with deadlines spread over [0, 1 ms); the
 * check is that none fires early. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "native.h"

struct sleeper {
	struct event *ev;
	int64_t armed, d;  /* CLOCK_MONOTONIC ns when armed, and the wait */
	int64_t left;      /* timers still to arm after this one */
	uint64_t x;        /* its xorshift state: the spread deadlines */
	struct tally *tally;
};

struct tally {
	int64_t fired, early;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* libevent reads the clock again inside evtimer_add (the base caches no
 * time) and truncates it to microseconds: rounding d up and adding one
 * microsecond keeps the deadline at or after armed + d. */
static void arm(struct sleeper *s)
{
	s->x ^= s->x << 13;
	s->x ^= s->x >> 7;
	s->x ^= s->x << 17;
	s->d = (int64_t)(s->x % 1000000);
	s->armed = now_ns();
	struct timeval tv = {0, (suseconds_t)((s->d + 999) / 1000 + 1)};
	evtimer_add(s->ev, &tv);
}

static void on_fire(evutil_socket_t fd, short what, void *arg)
{
	struct sleeper *s = arg;
	(void)fd;
	(void)what;
	s->tally->fired++;
	if (now_ns() - s->armed < s->d)
		s->tally->early++;
	if (s->left-- > 0)
		arm(s);
}

intptr_t axr_libevent_timers(struct axs_ctx *ctx)
{
	int64_t count = axs_param(ctx, "count"), tasks = axs_param(ctx, "tasks");
	int64_t per = count / tasks;
	uint64_t seed = 42;
	struct tally tally = {0, 0};
	struct sleeper *ss = calloc((size_t)tasks, sizeof *ss);
	struct event_config *cfg = event_config_new();
	struct event_base *base = NULL;
	intptr_t err = -ENOMEM;

	if (!ss || !cfg)
		goto free_all;
	/* CLOCK_MONOTONIC itself (not the coarse clock), read afresh at
	 * every evtimer_add; one thread: no locks */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER |
			      EVENT_BASE_FLAG_NO_CACHE_TIME | EVENT_BASE_FLAG_NOLOCK);
	base = event_base_new_with_config(cfg);
	if (!base)
		goto free_all;
	int64_t t0 = now_ns();
	for (int64_t i = 0; i < tasks && per > 0; i++) {
		ss[i].ev = evtimer_new(base, on_fire, &ss[i]);
		if (!ss[i].ev)
			goto free_all;
		ss[i].tally = &tally;
		ss[i].x = seed += 0x9e3779b97f4a7c15ull;
		ss[i].left = per - 1;
		arm(&ss[i]);
	}
	if (event_base_dispatch(base) < 0) {
		err = -EIO;
		goto free_all;
	}
	int64_t el = now_ns() - t0;
	err = 0;
	if (tally.early) {
		axs_fail(ctx, "%ld of %ld timers fired early", (long)tally.early,
			   (long)tally.fired);
		err = -1;
	} else {
		axs_metric(ctx, "timers_per_s", (double)tally.fired * 1e9 / (double)el,
			     "ops/s", +1);
		axs_metric(ctx, "arm_fire_ns", (double)el / (double)tally.fired,
			     "ns", -1);
	}
free_all:
	for (int64_t i = 0; ss && i < tasks; i++)
		if (ss[i].ev)
			event_free(ss[i].ev);
	if (base)
		event_base_free(base);
	if (cfg)
		event_config_free(cfg);
	free(ss);
	return err;
}
