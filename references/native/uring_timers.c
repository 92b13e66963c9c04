/* uring_timers.c - the timers scenario's arm-and-fire part written straight
 * on liburing: every timer is its own IORING_OP_TIMEOUT (the kernel's
 * hrtimer, relative to its submission), re-armed from its completion
 * `count / tasks` times per sleeper with deadlines spread over [0, 1 ms);
 * the check is that none fires early. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <liburing.h>

#include "native.h"

#define RING_ENTRIES 4096

struct sleeper {
	struct __kernel_timespec ts; /* read by the kernel at submission */
	int64_t armed, d;  /* CLOCK_MONOTONIC ns when armed, and the wait */
	int64_t left;      /* timers still to arm after this one */
	uint64_t x;        /* its xorshift state: the spread deadlines */
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

/* A relative timeout starts when the kernel takes the SQE, after `armed`
 * was read: it cannot end before armed + d. */
static void arm(struct io_uring *ring, struct sleeper *s)
{
	s->x ^= s->x << 13;
	s->x ^= s->x >> 7;
	s->x ^= s->x << 17;
	s->d = (int64_t)(s->x % 1000000);
	s->ts.tv_sec = 0;
	s->ts.tv_nsec = s->d;
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (!sqe) {
		io_uring_submit(ring);
		sqe = io_uring_get_sqe(ring);
	}
	s->armed = now_ns();
	io_uring_prep_timeout(sqe, &s->ts, 0, 0);
	io_uring_sqe_set_data(sqe, s);
}

intptr_t axr_uring_timers(struct axs_ctx *ctx)
{
	int64_t count = axs_param(ctx, "count"), tasks = axs_param(ctx, "tasks");
	int64_t per = count / tasks, fired = 0, early = 0, live = 0;
	uint64_t seed = 42;
	struct io_uring ring;
	struct sleeper *ss = calloc((size_t)tasks, sizeof *ss);
	intptr_t err = ss ? ring_init(&ring) : -ENOMEM;

	if (err) {
		free(ss);
		return err;
	}
	int64_t t0 = now_ns();
	for (int64_t i = 0; i < tasks && per > 0; i++, live++) {
		ss[i].x = seed += 0x9e3779b97f4a7c15ull;
		ss[i].left = per - 1;
		arm(&ring, &ss[i]);
	}
	while (live > 0) {
		int e = io_uring_submit_and_wait(&ring, 1);
		if (e < 0 && e != -EINTR) {
			err = e;
			break;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			struct sleeper *s = io_uring_cqe_get_data(cqe);
			n++;
			fired++;
			if (cqe->res != -ETIME || now_ns() - s->armed < s->d)
				early++;
			if (s->left-- > 0)
				arm(&ring, s);
			else
				live--;
		}
		io_uring_cq_advance(&ring, n);
	}
	int64_t el = now_ns() - t0;
	io_uring_queue_exit(&ring);
	free(ss);
	if (err)
		return err;
	if (early) {
		axs_fail(ctx, "%ld of %ld timers fired early (or failed)", (long)early,
			   (long)fired);
		return -1;
	}
	axs_metric(ctx, "timers_per_s", (double)fired * 1e9 / (double)el, "ops/s", +1);
	axs_metric(ctx, "arm_fire_ns", (double)el / (double)fired, "ns", -1);
	return 0;
}
