/*
 * oneshot.c - an ax driver built outside axbench, against the installed
 * package only (pkg-config axbench-driver), and loaded by it at run time:
 *
 *     axbench conform --runtime ./liboneshot.so
 *     axbench run --runtime ./liboneshot.so --scenario tcp_echo
 *
 * The engine is epoll in one-shot mode: a descriptor is armed
 * (EPOLLONESHOT, level-triggered) for exactly the sides that have an
 * operation waiting, the kernel disarms it when it reports it, and the
 * driver re-arms it while something still waits. Level-triggered arming
 * cannot miss an edge that came before it, so an operation whose fast-path
 * attempt failed parks without trying again; the price is one epoll_ctl per
 * wait, which the in-tree epoll driver (registered once, edge-triggered)
 * does not pay. A read that came back short drained the socket: the next
 * read on it parks at once instead of failing with EAGAIN first, until the
 * kernel reports the descriptor readable again. Timers are the core's heap behind epoll_pwait2's
 * nanosecond timeout (epoll_wait's milliseconds, rounded up so that none
 * fires early, on a kernel without it).
 *
 * What it uses of axbench: ax_driver.h (the contract), kit.h (the driver
 * kit) and theap.h (the timer heap), whose functions it leaves undefined:
 * the axbench that loads it provides them (runtimes/driver.exports).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* epoll_pwait2 */
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ax_driver.h"
#include "kit.h"
#include "theap.h"

#define OS_MAX_EVENTS 128

/* What the driver keeps per descriptor. */
struct os_fd {
	struct ax__sides op; /* the ops waiting, read side and write side */
	uint32_t armed;      /* EPOLLIN/EPOLLOUT armed and not yet reported */
	bool added;          /* in the epoll set (maybe disarmed) */
	bool drained;        /* the last read was short: no data until the
	                        kernel reports the descriptor readable */
};

struct os_state {
	struct ax__kit kit;      /* first: counters for ax__kit_stats */
	int epfd;
	struct ax__wake wake;    /* an eventfd other threads write to */
	struct ax__fdtab fds;    /* struct os_fd by descriptor */
	struct ax_theap timers;  /* (deadline, seq) heap */
	struct ax__defq late;    /* connects finished inside submit */
	bool have_pwait2;        /* until the kernel says ENOSYS */
};

/* Arm fd for the sides that have an op waiting, unless it is armed for
 * them already. A slot may outlive its descriptor (a socket the kit closed
 * after a failed connect leaves the epoll set with it): MOD then finds no
 * entry and ADD takes over. Returns 0 or -errno. */
static int os_arm(struct os_state *s, int fd, struct os_fd *f)
{
	uint32_t want = (f->op.rd ? EPOLLIN : 0) | (f->op.wr ? EPOLLOUT : 0);
	if (!want || (want & ~f->armed) == 0)
		return 0;
	struct epoll_event ev = {
		.events = want | EPOLLRDHUP | EPOLLONESHOT,
		.data.fd = fd,
	};
	int r = epoll_ctl(s->epfd, f->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
	if (r < 0 && errno == (f->added ? ENOENT : EEXIST))
		r = epoll_ctl(s->epfd, f->added ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
	if (r < 0)
		return -errno;
	f->added = true;
	f->armed = want;
	return 0;
}

/* A descriptor number the kernel just handed out (accept, socket), or
 * one the driver closed itself (a cancelled connect): what a slot
 * remembers of an earlier descriptor of that number (armed, in the set,
 * drained) is stale, since close(2) took it out of the epoll set. */
static void os_fresh(struct os_state *s, int fd)
{
	ax__fdtab_clear(&s->fds, fd);
}

/* One attempt at op's system call (1 finished, 0 would block); a read
 * skips it while its socket is known drained, and a short one marks it so
 * (a count below the buffer's size, or EAGAIN; never EOF or an error,
 * which a read returns again at once). */
static int os_step(struct os_state *s, struct ax_op *op)
{
	if (op->kind == AX_OP_ACCEPT) {
		int r = ax__nb_accept(op);
		if (r == 1 && op->res >= 0)
			os_fresh(s, (int)op->res);
		return r;
	}
	if (op->kind != AX_OP_READ)
		return ax__nb_step(op);
	struct os_fd *f = ax__fdtab_find(&s->fds, op->fd);
	if (f && f->drained)
		return 0;
	int r = ax__nb_read(op);
	if (f)
		f->drained = r == 0 || (op->res > 0 && (size_t)op->res < op->len);
	return r;
}

/* vtable try_now: one attempt, before the task parks. */
static int os_try_now(void *state, struct ax_op *op)
{
	return os_step(state, op);
}

/* vtable submit: park op on its descriptor's side and arm the descriptor.
 * The core tried the system call already (try_now); a level-triggered
 * arm reports a readiness that came in between. A connect starts here; one
 * that finishes at once is delivered by the next poll (submit must never
 * complete). */
static int os_submit(void *state, struct ax_op *op)
{
	struct os_state *s = state;
	if (op->kind == AX_OP_CONNECT) {
		int r = ax__nb_connect_start(op);
		if (r < 0)
			return r;
		if (op->fd >= 0)
			os_fresh(s, op->fd);
		if (r == 1) {
			ax__defer(&s->late, op, op->res);
			return 0;
		}
	} else if (op->kind != AX_OP_ACCEPT && op->kind != AX_OP_READ &&
		   op->kind != AX_OP_WRITE) {
		return -ENOTSUP; /* no AX_FEAT_FILE: the core uses its pool */
	}
	struct os_fd *f = ax__fdtab_get(&s->fds, op->fd);
	int r = f ? 0 : op->fd < 0 ? -EBADF : -ENOMEM;
	if (f) {
		*ax__side(&f->op, op) = op;
		r = os_arm(s, op->fd, f);
		if (r < 0)
			ax__side_take(&f->op, op);
	}
	if (r < 0 && op->kind == AX_OP_CONNECT)
		close(op->fd);
	return r;
}

/* vtable cancel: synchronous. A waiting op completes -ECANCELED at once
 * (its descriptor may stay armed: a report with nothing waiting is
 * ignored); one whose result is already queued keeps it ([AX-CANCEL-3]). */
static void os_cancel(void *state, struct ax_op *op)
{
	struct os_state *s = state;
	if (ax__deferred(op))
		return;
	struct os_fd *f = ax__fdtab_find(&s->fds, op->fd);
	if (!f || !ax__side_take(&f->op, op))
		return;
	if (op->kind == AX_OP_CONNECT) {
		close(op->fd); /* ours: the caller never saw it */
		os_fresh(s, op->fd);
	}
	ax_op_complete(op, -ECANCELED);
}

/* vtable close_fd: what waits on fd completes -EBADF; close(2) takes fd
 * out of the epoll set. */
static int os_close_fd(void *state, int fd)
{
	struct os_state *s = state;
	struct os_fd *f = ax__fdtab_find(&s->fds, fd);
	if (f) {
		struct ax__sides waiting = f->op;
		memset(f, 0, sizeof *f);
		ax__sides_fail(&waiting, -EBADF);
	}
	return close(fd) < 0 ? -errno : 0;
}

/* vtable timer_arm and timer_cancel: the core's timer heap. */
static int os_timer_arm(void *state, struct ax_timer *t)
{
	struct os_state *s = state;
	return ax__theap_push(&s->timers, t);
}

static void os_timer_cancel(void *state, struct ax_timer *t)
{
	struct os_state *s = state;
	ax__theap_remove(&s->timers, t);
}

/* Wait for events until the earliest timer: 0 when not blocking or a
 * completion is queued, forever without timers. A millisecond wait rounds
 * UP, so that no timer fires early ([AX-TIME-1]). */
static int os_wait(struct os_state *s, struct epoll_event *evs, bool block)
{
	struct ax_timer *t = ax__theap_min(&s->timers);
	bool forever = block && !t && !ax__defq_pending(&s->late);
	int64_t ns = 0;
	if (block && t && !ax__defq_pending(&s->late)) {
		ns = t->deadline - ax_now(); /* one clock reading */
		if (ns < 0)
			ns = 0; /* due already: an invalid timespec would fail */
	}
	if (s->have_pwait2) {
		struct timespec ts = {ns / 1000000000, ns % 1000000000};
		int n = epoll_pwait2(s->epfd, evs, OS_MAX_EVENTS, forever ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		s->have_pwait2 = false;
	}
	int ms = forever ? -1
		 : ns >= (int64_t)INT_MAX * 1000000 ? INT_MAX
		 : (int)((ns + 999999) / 1000000);
	return epoll_wait(s->epfd, evs, OS_MAX_EVENTS, ms);
}

/* Move the op waiting on one side on. Returns 1 when it completed. */
static int os_ready(struct os_state *s, struct ax_op **side)
{
	struct ax_op *op = *side;
	if (!op || !os_step(s, op))
		return 0;
	*side = NULL;
	ax_op_complete(op, op->res);
	return 1;
}

/* vtable poll: wait, move the reported ops on and re-arm what still
 * waits, deliver the queued connects, fire the due timers. */
static int os_poll(void *state, bool block)
{
	struct os_state *s = state;
	struct epoll_event evs[OS_MAX_EVENTS];
	int done = 0;

	s->kit.polls++;
	int n = os_wait(s, evs, block);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		uint32_t e = evs[i].events;
		if (fd == s->wake.fd) {
			ax__wake_drain(&s->wake);
			continue;
		}
		struct os_fd *f = ax__fdtab_find(&s->fds, fd);
		if (!f)
			continue;
		f->armed = 0; /* one-shot: the kernel disarmed it */
		if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
			f->drained = false;
			done += os_ready(s, &f->op.rd);
		}
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			done += os_ready(s, &f->op.wr);
		int r = os_arm(s, fd, f);
		if (r < 0) {
			/* cannot wait any more: what waits fails */
			struct ax__sides waiting = f->op;
			memset(&f->op, 0, sizeof f->op);
			done += ax__sides_fail(&waiting, r);
		}
	}
	done += ax__defq_flush(&s->late);
	done += ax__theap_fire_due(&s->timers);
	s->kit.events += (uint64_t)done;
	return done;
}

/* vtable wake: thread-safe, through the kit's eventfd. */
static void os_wake(void *state)
{
	struct os_state *s = state;
	ax__wake_signal(&s->wake);
}

/* vtable probe: an epoll instance can be created here. */
static int os_probe(char *why, size_t n)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(why, n, "epoll_create1: %s", strerror(e));
		return -e;
	}
	close(fd);
	return 0;
}

/* vtable init: the epoll set with the wake eventfd in it (level-triggered,
 * permanent). No engine option. */
static int os_init(void **state, const struct ax_rt_opts *opts)
{
	(void)opts;
	int r;
	struct os_state *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		r = -errno;
		goto free_state;
	}
	r = ax__wake_open(&s->wake, true);
	if (r < 0)
		goto close_ep;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->wake.fd};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake.fd, &ev) < 0) {
		r = -errno;
		goto close_wake;
	}
	ax__fdtab_init(&s->fds, sizeof(struct os_fd));
	ax__theap_init(&s->timers);
	s->have_pwait2 = true;
	ax__kit_printf(&s->kit, "epoll one-shot, level-triggered, re-armed per wait; "
		       "timers: the core's heap");
	*state = s;
	return 0;

close_wake:
	ax__wake_close(&s->wake);
close_ep:
	close(s->epfd);
free_state:
	free(s);
	return r;
}

/* vtable fini: called with no op in flight and no timer armed. */
static void os_fini(void *state)
{
	struct os_state *s = state;
	ax__wake_close(&s->wake);
	close(s->epfd);
	ax__theap_fini(&s->timers);
	ax__fdtab_fini(&s->fds);
	free(s);
}

static const struct ax_driver oneshot_driver = {
	.version = AX_DRIVER_VERSION,
	.name = "oneshot",
	.summary = "out-of-tree example: epoll one-shot, re-armed per wait",
	.features = AX_FEAT_TCP | AX_FEAT_XTHREAD,
	.probe = os_probe,
	.init = os_init,
	.fini = os_fini,
	.submit = os_submit,
	.cancel = os_cancel,
	.timer_arm = os_timer_arm,
	.timer_cancel = os_timer_cancel,
	.poll = os_poll,
	.wake = os_wake,
	.close_fd = os_close_fd,
	.engine_info = ax__kit_info,
	.stats = ax__kit_stats,
	.try_now = os_try_now,
};

/* The one exported symbol: the vtable and the ABI it was built for. */
AX_DRIVER_ENTRY(&oneshot_driver);
