/*
 * toy_driver.c - the worked example of docs/adding-a-runtime.md: a
 * complete, minimal ax driver on poll(2), built from the driver kit. It is
 * level-triggered and rebuilds its pollfd array on every wait, so it is
 * O(descriptors) per loop iteration: a teaching engine, not a fast one. The
 * unit tests register it at run time (ax_driver_register) and run every
 * per-runtime test on it, so the guide's code is known to work.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ax_driver.h"
#include "kit.h"
#include "theap.h"

/* The driver's state. The kit's counters come first, so that the kit's
 * stats and engine_info serve as the vtable's. */
struct toy_state {
	struct ax__kit kit;
	struct ax__fdtab fds;     /* struct ax__sides by descriptor */
	struct ax__defq late;     /* finished inside submit, delivered by poll */
	struct ax_theap timers;   /* the core's (deadline, seq) heap (theap.h) */
	struct ax__wake wake;     /* an eventfd other threads write to */
	struct pollfd *pfd;       /* the wait's array, rebuilt every poll */
	size_t pfd_cap;
};

/* vtable submit: finish the op now if its system call can (the result is
 * delivered by the next poll: submit must never complete), else park it on
 * its descriptor's read or write side until poll(2) says it is ready. */
static int toy_submit(void *state, struct ax_op *op)
{
	struct toy_state *s = state;
	int r;

	if (op->kind == AX_OP_CONNECT) {
		r = ax__nb_connect_start(op);
		if (r < 0)
			return r;
	} else if (op->kind == AX_OP_ACCEPT || op->kind == AX_OP_READ ||
		   op->kind == AX_OP_WRITE) {
		r = ax__nb_step(op);
	} else {
		return -ENOTSUP; /* no AX_FEAT_FILE: the core uses its pool */
	}
	if (r == 1) {
		ax__defer(&s->late, op, op->res);
		return 0;
	}
	struct ax__sides *sides = ax__fdtab_get(&s->fds, op->fd);
	if (!sides) {
		if (op->kind == AX_OP_CONNECT)
			close(op->fd);
		return op->fd < 0 ? -EBADF : -ENOMEM;
	}
	*ax__side(sides, op) = op;
	return 0;
}

/* vtable cancel: synchronous. A waiting op completes -ECANCELED at once;
 * one whose result is already queued keeps it ([AX-CANCEL-3]). */
static void toy_cancel(void *state, struct ax_op *op)
{
	struct toy_state *s = state;
	if (ax__deferred(op))
		return;
	struct ax__sides *sides = ax__fdtab_find(&s->fds, op->fd);
	if (!sides || !ax__side_take(sides, op))
		return;
	if (op->kind == AX_OP_CONNECT)
		close(op->fd);
	ax_op_complete(op, -ECANCELED);
}

/* vtable close_fd: what waits on fd completes -EBADF, then close(2). */
static int toy_close_fd(void *state, int fd)
{
	struct toy_state *s = state;
	struct ax__sides *sides = ax__fdtab_find(&s->fds, fd);
	if (sides) {
		struct ax__sides waiting = *sides;
		memset(sides, 0, sizeof *sides);
		ax__sides_fail(&waiting, -EBADF);
	}
	return close(fd) < 0 ? -errno : 0;
}

/* vtable timer_arm and timer_cancel: the core's timer heap (theap.h). */
static int toy_timer_arm(void *state, struct ax_timer *t)
{
	struct toy_state *s = state;
	return ax__theap_push(&s->timers, t);
}

static void toy_timer_cancel(void *state, struct ax_timer *t)
{
	struct toy_state *s = state;
	ax__theap_remove(&s->timers, t);
}

/* The wait's timeout in ms: 0 when not blocking or something is due, -1
 * without timers, else the earliest deadline rounded UP (a timer must
 * never fire early, [AX-TIME-1]). */
static int toy_timeout_ms(struct toy_state *s, bool block)
{
	struct ax_timer *t = ax__theap_min(&s->timers);
	if (!block || ax__defq_pending(&s->late))
		return 0;
	if (!t)
		return -1;
	int64_t ns = t->deadline - ax_now();
	if (ns <= 0)
		return 0;
	return ns >= (int64_t)INT_MAX * 1000000 ? INT_MAX : (int)((ns + 999999) / 1000000);
}

/* The pollfd array: the wake eventfd, then every descriptor with a
 * waiting op. Returns the count, or -ENOMEM. */
static int toy_build(struct toy_state *s)
{
	size_t n = 0;
	if (s->pfd_cap < s->fds.n + 1) {
		struct pollfd *p = realloc(s->pfd, (s->fds.n + 1) * sizeof *p);
		if (!p)
			return -ENOMEM;
		s->pfd = p;
		s->pfd_cap = s->fds.n + 1;
	}
	s->pfd[n++] = (struct pollfd){.fd = s->wake.fd, .events = POLLIN};
	for (size_t fd = 0; fd < s->fds.n; fd++) {
		struct ax__sides *sides = ax__fdtab_find(&s->fds, (int)fd);
		short ev = (short)((sides->rd ? POLLIN : 0) | (sides->wr ? POLLOUT : 0));
		if (ev)
			s->pfd[n++] = (struct pollfd){.fd = (int)fd, .events = ev};
	}
	return (int)n;
}

/* Move the op waiting on one side on, now that poll(2) says it is ready.
 * Returns 1 when it completed. */
static int toy_ready(struct ax_op **side)
{
	struct ax_op *op = *side;
	if (!op || !ax__nb_step(op))
		return 0;
	*side = NULL;
	ax_op_complete(op, op->res);
	return 1;
}

/* vtable poll: wait, move the ready ops on, deliver what submit finished,
 * fire the due timers in (deadline, seq) order. */
static int toy_poll(void *state, bool block)
{
	struct toy_state *s = state;
	int done = 0, n = toy_build(s);
	if (n < 0)
		return n;
	s->kit.polls++;
	int ready = poll(s->pfd, (nfds_t)n, toy_timeout_ms(s, block));
	if (ready < 0 && errno != EINTR)
		return -errno;
	if (ready > 0 && s->pfd[0].revents)
		ax__wake_drain(&s->wake);
	for (int i = 1; ready > 0 && i < n; i++) {
		short re = s->pfd[i].revents;
		struct ax__sides *sides = ax__fdtab_find(&s->fds, s->pfd[i].fd);
		/* POLLNVAL: closed behind ax_close's back; the step then
		 * fails with -EBADF instead of the loop spinning on it */
		if (re & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
			done += toy_ready(&sides->rd);
		if (re & (POLLOUT | POLLERR | POLLHUP | POLLNVAL))
			done += toy_ready(&sides->wr);
	}
	done += ax__defq_flush(&s->late);
	done += ax__theap_fire_due(&s->timers);
	s->kit.events += (uint64_t)done;
	return done;
}

/* vtable wake: thread-safe, through the kit's eventfd. */
static void toy_wake(void *state)
{
	struct toy_state *s = state;
	ax__wake_signal(&s->wake);
}

/* vtable init: empty tables and the wake eventfd; no engine option. */
static int toy_init(void **state, const struct ax_rt_opts *opts)
{
	(void)opts;
	struct toy_state *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	int r = ax__wake_open(&s->wake, true);
	if (r < 0)
		goto free_state;
	ax__fdtab_init(&s->fds, sizeof(struct ax__sides));
	ax__theap_init(&s->timers);
	ax__kit_printf(&s->kit, "poll(2), level-triggered, timers: the core's heap");
	*state = s;
	return 0;

free_state:
	free(s);
	return r;
}

/* vtable fini: called with no op in flight and no timer armed. */
static void toy_fini(void *state)
{
	struct toy_state *s = state;
	ax__wake_close(&s->wake);
	ax__theap_fini(&s->timers);
	ax__fdtab_fini(&s->fds);
	free(s->pfd);
	free(s);
}

const struct ax_driver ax_driver_toy = {
	.version = AX_DRIVER_VERSION,
	.name = "toy",
	.summary = "the worked example of docs/adding-a-runtime.md: poll(2) on the driver kit",
	.features = AX_FEAT_TCP | AX_FEAT_XTHREAD,
	.init = toy_init,
	.fini = toy_fini,
	.submit = toy_submit,
	.cancel = toy_cancel,
	.timer_arm = toy_timer_arm,
	.timer_cancel = toy_timer_cancel,
	.poll = toy_poll,
	.wake = toy_wake,
	.close_fd = toy_close_fd,
	.engine_info = ax__kit_info,
	.stats = ax__kit_stats,
};
