/* epoll_timers.c - the timers scenario's arm-and-fire part written straight
 * on raw epoll, which has no timers: a binary min-heap of deadlines in user
 * space, and epoll_pwait2's nanosecond timeout to sleep until the earliest
 * (epoll_wait's milliseconds, rounded up, where the kernel or valgrind
 * lacks it).
 * `tasks` sleepers each arm `count / tasks` timers in a row, with deadlines
 * spread over [0, 1 ms); the check is that none fires early. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "native.h"

struct sleeper {
	int64_t due;       /* absolute deadline, CLOCK_MONOTONIC ns */
	int64_t armed, d;  /* when it was armed, and for how long */
	int64_t left;      /* timers still to arm after this one */
	uint64_t x;        /* its xorshift state: the spread deadlines */
};

/* The timer structure: a binary min-heap of sleepers by deadline. */
struct heap {
	struct sleeper **v;
	size_t n;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void heap_push(struct heap *h, struct sleeper *s)
{
	size_t i = h->n++;
	while (i > 0 && h->v[(i - 1) / 2]->due > s->due) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = s;
}

static struct sleeper *heap_pop(struct heap *h)
{
	struct sleeper *top = h->v[0], *last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->due < h->v[c]->due)
			c++;
		if (h->v[c]->due >= last->due)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

/* Arm the sleeper's next timer: a deadline in [0, 1 ms) from now. */
static void arm(struct heap *h, struct sleeper *s)
{
	s->x ^= s->x << 13;
	s->x ^= s->x >> 7;
	s->x ^= s->x << 17;
	s->d = (int64_t)(s->x % 1000000);
	s->armed = now_ns();
	s->due = s->armed + s->d;
	heap_push(h, s);
}

intptr_t axr_epoll_timers(struct axs_ctx *ctx)
{
	int64_t count = axs_param(ctx, "count"), tasks = axs_param(ctx, "tasks");
	int64_t per = count / tasks, early = 0, fired = 0;
	uint64_t seed = 42;
	struct sleeper *ss = calloc((size_t)tasks, sizeof *ss);
	struct heap h = {.v = calloc((size_t)tasks, sizeof *h.v)};
	struct epoll_event ev;
	intptr_t err = 0;
	bool pwait2 = true;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!ss || !h.v || ep < 0) {
		err = ep < 0 ? -errno : -ENOMEM;
		goto free_all;
	}
	int64_t t0 = now_ns();
	for (int64_t i = 0; i < tasks && per > 0; i++) {
		ss[i].x = seed += 0x9e3779b97f4a7c15ull;
		ss[i].left = per - 1;
		arm(&h, &ss[i]);
	}
	while (h.n) {
		int64_t now = now_ns();
		if (h.v[0]->due > now) {
			struct timespec ts = {
				.tv_sec = (h.v[0]->due - now) / 1000000000,
				.tv_nsec = (h.v[0]->due - now) % 1000000000,
			};
			int n = pwait2 ? epoll_pwait2(ep, &ev, 1, &ts, NULL) : -1;
			if (n < 0 && pwait2 && errno == ENOSYS)
				pwait2 = false; /* an older kernel, or valgrind */
			if (n < 0 && !pwait2) {
				/* whole milliseconds, rounded up: never early */
				int ms = (int)((h.v[0]->due - now + 999999) / 1000000);
				n = epoll_wait(ep, &ev, 1, ms);
			}
			if (n < 0 && errno != EINTR) {
				err = -errno;
				goto free_all;
			}
			continue;
		}
		while (h.n && h.v[0]->due <= now) {
			struct sleeper *s = heap_pop(&h);
			fired++;
			if (now_ns() - s->armed < s->d)
				early++;
			if (s->left-- > 0)
				arm(&h, s);
		}
	}
	int64_t el = now_ns() - t0;
	if (early) {
		axs_fail(ctx, "%ld of %ld timers fired early", (long)early, (long)fired);
		err = -1;
		goto free_all;
	}
	axs_metric(ctx, "timers_per_s", (double)fired * 1e9 / (double)el, "ops/s", +1);
	axs_metric(ctx, "arm_fire_ns", (double)el / (double)fired, "ns", -1);
free_all:
	if (ep >= 0)
		close(ep);
	free(h.v);
	free(ss);
	return err;
}
