/* uring_timers_heap.c - the timers scenario's arm-and-fire part on liburing
 * as an event loop written by hand keeps its timers: a binary min-heap of
 * deadlines in user space, and the earliest one as the timeout of the wait
 * itself (io_uring_submit_and_wait_timeout, IORING_ENTER_EXT_ARG), so arming
 * a timer is a heap insert with no SQE and no CQE. The label
 * native-io_uring-heap; native-io_uring keeps one IORING_OP_TIMEOUT per timer
 * (uring_timers.c). `tasks` sleepers each arm `count / tasks` timers in a row
 * with deadlines spread over [0, 1 ms); the check is that none fires early. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <liburing.h>

#include "native.h"

#define RING_ENTRIES 256

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

static int ring_init(struct io_uring *ring)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int err = -EINVAL;
	for (size_t i = 0; i < sizeof tries / sizeof tries[0] && err == -EINVAL; i++) {
		struct io_uring_params p = {.flags = tries[i]};
		err = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
	}
	return err;
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

/* Sleep in the ring until `ns` from now has passed or a completion came
 * (this scenario has none: the loop an I/O server would run). The kernel's
 * timeout starts inside io_uring_enter, after `now` was read, so it cannot
 * end before the deadline. Returns 0 or -errno. */
static int wait_for(struct io_uring *ring, int64_t ns)
{
	struct __kernel_timespec ts = {
		.tv_sec = ns / 1000000000,
		.tv_nsec = ns % 1000000000,
	};
	struct io_uring_cqe *cqe = NULL;
	int e = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
	if (e == -ETIME || e == -EINTR)
		return 0;
	if (e < 0)
		return e;
	/* nothing is submitted here: a completion would be a bug */
	return -EPROTO;
}

intptr_t axr_uring_timers_heap(struct axs_ctx *ctx)
{
	int64_t count = axs_param(ctx, "count"), tasks = axs_param(ctx, "tasks");
	int64_t per = count / tasks, early = 0, fired = 0;
	uint64_t seed = 42;
	struct io_uring ring;
	struct sleeper *ss = calloc((size_t)tasks, sizeof *ss);
	struct heap h = {.v = calloc((size_t)tasks, sizeof *h.v)};
	intptr_t err = ss && h.v ? ring_init(&ring) : -ENOMEM;

	if (err)
		goto free_all;
	int64_t t0 = now_ns();
	for (int64_t i = 0; i < tasks && per > 0; i++) {
		ss[i].x = seed += 0x9e3779b97f4a7c15ull;
		ss[i].left = per - 1;
		arm(&h, &ss[i]);
	}
	while (h.n) {
		int64_t now = now_ns();
		if (h.v[0]->due > now) {
			err = wait_for(&ring, h.v[0]->due - now);
			if (err)
				break;
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
	io_uring_queue_exit(&ring);
	if (err)
		goto free_all;
	if (early) {
		axs_fail(ctx, "%ld of %ld timers fired early", (long)early, (long)fired);
		err = -1;
		goto free_all;
	}
	axs_metric(ctx, "timers_per_s", (double)fired * 1e9 / (double)el, "ops/s", +1);
	axs_metric(ctx, "arm_fire_ns", (double)el / (double)fired, "ns", -1);
free_all:
	free(h.v);
	free(ss);
	return err;
}
