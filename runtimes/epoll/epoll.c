/*
 * epoll.c - the reference driver: a hand-written readiness engine on Linux
 * epoll, edge-triggered, with a timer heap and an eventfd wakeup.
 *
 * Design: every descriptor is registered once, on its first wait, for
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP in edge-triggered mode, and stays registered
 * until it is closed: no epoll_ctl per operation. An operation first tries
 * its system call (try_now, then submit); only on EAGAIN does it park on the
 * descriptor's read or write slot, and the next edge retries it.
 *
 * Timers: a 4-ary min-heap ordered by (deadline, seq) (see theap.h for why a
 * heap over a hierarchical wheel: exact order with no tick rounding, O(1)
 * next deadline for the wait timeout). The wait uses epoll_pwait2's
 * nanosecond timeout where the kernel has it, else epoll_wait rounded up to
 * the next millisecond, so a timer is never served early.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ax_driver.h"
#include "kit.h"
#include "theap.h"

#define EP_MAX_EVENTS 256

/* Test hook: AX_TEST_ECHO_DELAY_NS busy-waits that long after every read
 * that returned data, a deliberate slowdown of this runtime only, so that
 * the regression tests can check that `axbench compare` flags exactly it.
 * Read once per process (runtimes on several threads share it; the
 * variable does not change while the process runs); unset (0) in every
 * real run. */
static int64_t ep_test_delay_ns;
static pthread_once_t ep_test_delay_once = PTHREAD_ONCE_INIT;

static void ep_test_delay_read(void)
{
	const char *delay = getenv("AX_TEST_ECHO_DELAY_NS");
	ep_test_delay_ns = delay ? strtoll(delay, NULL, 10) : 0;
}

struct ep_fd {
	struct ax__sides op; /* the ops waiting */
	bool added;
	bool rd_ready;     /* an EPOLLIN edge not yet drained: a read may
	                      find data; false after EAGAIN or a short read,
	                      so the fast path skips a read bound to fail */
	bool rd_hup;       /* EOF/error seen: always try (no further edge) */
};

struct ep_state {
	struct ax__kit kit;       /* first: counters for ax__kit_stats */
	int epfd;
	struct ax__wake wake;
	struct ax__fdtab fds;     /* struct ep_fd by descriptor */
	struct ax_theap timers;
	struct ax__defq late;     /* finished in submit, delivered by poll */
	bool have_pwait2;
};

/* ------------------------------------------------------------------ */
/* per-descriptor state                                                */
/* ------------------------------------------------------------------ */

/* Add fd to the epoll set once, for both directions, edge-triggered; it
 * stays until close, so a wait costs no epoll_ctl. A fresh registration
 * may have missed an edge: the read side starts ready. */
static int ep_register(struct ep_state *s, int fd, struct ep_fd *f)
{
	if (f->added)
		return 0;
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.fd = fd,
	};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (errno != EEXIST)
			return -errno;
	}
	f->added = true;
	f->rd_ready = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* system call attempts: 1 finished (op->res set), 0 would block        */
/* ------------------------------------------------------------------ */

/* A read through the kit, plus the test hook's slowdown after data. */
static int ep_try_read(struct ax_op *op)
{
	int r = ax__nb_read(op);
	if (r == 1 && ep_test_delay_ns && op->res > 0) {
		int64_t t0 = ax_now();
		while (ax_now() - t0 < ep_test_delay_ns)
			;
	}
	return r;
}

/* A descriptor number just returned by the kernel cannot be in our epoll
 * set (close removed its predecessor), whatever the slot remembers. */
static void ep_fresh(struct ep_state *s, int fd)
{
	ax__fdtab_clear(&s->fds, fd);
}

/* One attempt at op's system call (1 finished, 0 would block), keeping
 * the read-readiness hint and forgetting the slots of descriptor numbers
 * the kernel hands out anew. */
static int ep_try(struct ep_state *s, struct ax_op *op)
{
	int r;
	switch (op->kind) {
	case AX_OP_ACCEPT:
		r = ax__nb_accept(op);
		if (r == 1)
			ep_fresh(s, (int)op->res);
		return r;
	case AX_OP_READ: {
		struct ep_fd *f = ax__fdtab_find(&s->fds, op->fd);
		if (f && f->added && !f->rd_ready)
			return 0;
		r = ep_try_read(op);
		if (f && f->added && !f->rd_hup &&
		    (r == 0 || (op->res > 0 && (size_t)op->res < op->len)))
			f->rd_ready = false;
		return r;
	}
	case AX_OP_WRITE: return ax__nb_write(op);
	case AX_OP_CONNECT:
		r = ax__nb_connect_finish(op);
		if (r == 1 && op->res < 0)
			ep_fresh(s, op->fd);
		return r;
	default: return 0;
	}
}

/* vtable try_now: the fast path is one attempt. */
static int epoll_try_now(void *state, struct ax_op *op)
{
	return ep_try(state, op);
}

/* ------------------------------------------------------------------ */
/* submit / cancel / close                                             */
/* ------------------------------------------------------------------ */

/* vtable submit: register the descriptor, try once more (the edge may
 * have come first), else wait on its side; a result found here is
 * delivered by the next poll. */
static int epoll_submit(void *state, struct ax_op *op)
{
	struct ep_state *s = state;
	struct ep_fd *f;
	int r;

	switch (op->kind) {
	case AX_OP_CONNECT:
		r = ax__nb_connect_start(op);
		if (r < 0)
			return r;
		ep_fresh(s, op->fd);
		if (r == 1) {
			/* connected, or refused at once: still a completion,
			 * since the op was accepted */
			ax__defer(&s->late, op, op->res);
			return 0;
		}
		f = ax__fdtab_get(&s->fds, op->fd);
		r = f ? ep_register(s, op->fd, f) : -ENOMEM;
		if (r < 0) {
			close(op->fd);
			return r;
		}
		f->op.wr = op;
		return 0;
	case AX_OP_ACCEPT:
	case AX_OP_READ:
	case AX_OP_WRITE:
		break;
	default:
		return -ENOTSUP;
	}

	f = ax__fdtab_get(&s->fds, op->fd);
	if (!f)
		return op->fd < 0 ? -EBADF : -ENOMEM;
	if ((r = ep_register(s, op->fd, f)) < 0)
		return r;
	/* the edge may have come before the registration: try once more */
	if (ep_try(s, op)) {
		ax__defer(&s->late, op, op->res);
		return 0;
	}
	*ax__side(&f->op, op) = op;
	return 0;
}

/* vtable cancel: synchronous; a waiting op completes -ECANCELED at once,
 * a deferred one keeps its real result. */
static void epoll_cancel(void *state, struct ax_op *op)
{
	struct ep_state *s = state;
	/* a completion already queued for the next poll wins */
	if (ax__deferred(op))
		return;
	int fd = op->fd;
	struct ep_fd *f = ax__fdtab_find(&s->fds, fd);
	if (f && !ax__side_take(&f->op, op))
		return;
	if (op->kind == AX_OP_CONNECT && fd >= 0) {
		ep_fresh(s, fd);
		close(fd);
	}
	ax_op_complete(op, -ECANCELED);
}

/* vtable close_fd: the waiting ops complete -EBADF now; close(2) leaves
 * the epoll set by itself. */
static int epoll_close_fd(void *state, int fd)
{
	struct ep_state *s = state;
	struct ep_fd *f = ax__fdtab_find(&s->fds, fd);
	if (f) {
		struct ax__sides ops = f->op;
		memset(f, 0, sizeof *f);
		ax__sides_fail(&ops, -EBADF);
	}
	return close(fd) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* timers                                                              */
/* ------------------------------------------------------------------ */

/* vtable timer_arm: into the heap. */
static int epoll_timer_arm(void *state, struct ax_timer *t)
{
	struct ep_state *s = state;
	return ax__theap_push(&s->timers, t);
}

/* vtable timer_cancel: out of the heap. */
static void epoll_timer_cancel(void *state, struct ax_timer *t)
{
	struct ep_state *s = state;
	ax__theap_remove(&s->timers, t);
}

/* ------------------------------------------------------------------ */
/* poll                                                                */
/* ------------------------------------------------------------------ */

/* Wait for events until the earliest timer (never early: the millisecond
 * fallback rounds up). */
static int ep_wait(struct ep_state *s, struct epoll_event *evs, bool block)
{
	int64_t timeout = 0; /* ns; -1 infinite */
	if (block) {
		struct ax_timer *t = ax__theap_min(&s->timers);
		if (!t) {
			timeout = -1;
		} else {
			timeout = t->deadline - ax_now();
			if (timeout < 0)
				timeout = 0;
		}
	}
	if (s->have_pwait2) {
		struct timespec ts = {timeout / 1000000000, timeout % 1000000000};
		int n = epoll_pwait2(s->epfd, evs, EP_MAX_EVENTS,
				     timeout < 0 ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		s->have_pwait2 = false;
	}
	int ms = timeout < 0 ? -1 : (int)((timeout + 999999) / 1000000);
	return epoll_wait(s->epfd, evs, EP_MAX_EVENTS, ms);
}

/* vtable poll: wait, retry the ops the edges woke, deliver the deferred
 * completions, fire the due timers. */
static int epoll_poll(void *state, bool block)
{
	struct ep_state *s = state;
	struct epoll_event evs[EP_MAX_EVENTS];
	int done = 0;

	if (ax__defq_pending(&s->late))
		block = false;
	s->kit.polls++;
	int n = ep_wait(s, evs, block);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		uint32_t e = evs[i].events;
		if (fd == s->wake.fd) {
			ax__wake_drain(&s->wake);
			continue;
		}
		struct ep_fd *f = ax__fdtab_find(&s->fds, fd);
		if (!f)
			continue;
		if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			f->rd_ready = true;
		if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			f->rd_hup = true;
		if (f->op.rd && (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
			struct ax_op *op = f->op.rd;
			if (ep_try(s, op)) {
				f->op.rd = NULL;
				ax_op_complete(op, op->res);
				done++;
			}
		}
		if (f->op.wr && (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			struct ax_op *op = f->op.wr;
			if (ep_try(s, op)) {
				f->op.wr = NULL;
				ax_op_complete(op, op->res);
				done++;
			}
		}
	}
	done += ax__defq_flush(&s->late);
	done += ax__theap_fire_due(&s->timers);
	s->kit.events += (uint64_t)done;
	return done;
}

/* vtable wake: through the kit's eventfd. */
static void epoll_wake(void *state)
{
	struct ep_state *s = state;
	ax__wake_signal(&s->wake);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

/* vtable probe: an epoll instance can be created. */
static int epoll_probe(char *why, size_t n)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) {
		if (why && n)
			snprintf(why, n, "epoll_create1: %s", strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

/* vtable init: the epoll set with the wake eventfd in it. */
static int epoll_init(void **state, const struct ax_rt_opts *opts)
{
	int r;
	/* epoll has no engine_flags: any item is refused, so that a variant
	 * name (docs/harness.md) never runs the plain driver under its label */
	if (opts && opts->engine_flags && opts->engine_flags[0])
		return -EINVAL;
	pthread_once(&ep_test_delay_once, ep_test_delay_read);
	struct ep_state *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	ax__theap_init(&s->timers);
	ax__fdtab_init(&s->fds, sizeof(struct ep_fd));
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		r = -errno;
		goto fail_free;
	}
	r = ax__wake_open(&s->wake, true);
	if (r < 0)
		goto fail_epfd;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = s->wake.fd};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake.fd, &ev) < 0) {
		r = -errno;
		goto fail_evfd;
	}
	s->have_pwait2 = true;
	*state = s;
	return 0;

fail_evfd:
	ax__wake_close(&s->wake);
fail_epfd:
	close(s->epfd);
fail_free:
	free(s);
	return r;
}

/* vtable fini. */
static void epoll_fini(void *state)
{
	struct ep_state *s = state;
	ax__wake_close(&s->wake);
	close(s->epfd);
	ax__theap_fini(&s->timers);
	ax__fdtab_fini(&s->fds);
	free(s);
}

/* vtable engine_info: the wait in use changes when epoll_pwait2 turns out
 * to be missing. */
static const char *epoll_engine_info(void *state)
{
	struct ep_state *s = state;
	return s->have_pwait2
		? "epoll edge-triggered, timers: 4-ary heap, wait: epoll_pwait2 (ns)"
		: "epoll edge-triggered, timers: 4-ary heap, wait: epoll_wait (ms)";
}

const struct ax_driver ax_driver_epoll = {
	.version = AX_DRIVER_VERSION,
	.name = "epoll",
	.summary = "hand-written reference: edge-triggered epoll, timer heap, eventfd wake",
	.features = AX_FEAT_TCP | AX_FEAT_XTHREAD,
	.probe = epoll_probe,
	.init = epoll_init,
	.fini = epoll_fini,
	.submit = epoll_submit,
	.cancel = epoll_cancel,
	.timer_arm = epoll_timer_arm,
	.timer_cancel = epoll_timer_cancel,
	.poll = epoll_poll,
	.wake = epoll_wake,
	.close_fd = epoll_close_fd,
	.engine_info = epoll_engine_info,
	.stats = ax__kit_stats,
	.try_now = epoll_try_now,
};
