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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ax_driver.h"
#include "theap.h"

#define EP_MAX_EVENTS 256

/* Test hook: AX_TEST_ECHO_DELAY_NS busy-waits that long after every read
 * that returned data, a deliberate slowdown of this runtime only, so that
 * the regression tests can check that `axbench compare` flags exactly it.
 * Read once at init; unset (0) in every real run. */
static int64_t ep_test_delay_ns;

struct ep_fd {
	struct ax_op *rd;  /* READ or ACCEPT waiting */
	struct ax_op *wr;  /* WRITE or CONNECT waiting */
	bool added;
	bool rd_ready;     /* an EPOLLIN edge not yet drained: a read may
	                      find data; false after EAGAIN or a short read,
	                      so the fast path skips a read bound to fail */
	bool rd_hup;       /* EOF/error seen: always try (no further edge) */
};

struct ep_state {
	int epfd;
	int evfd;
	struct ep_fd *fds;
	size_t nfds;
	struct ax_theap timers;
	struct ax_op *late_head, *late_tail; /* finished in submit, delivered
					       by the next poll */
	bool have_pwait2;
	uint64_t polls, events;
};

/* ------------------------------------------------------------------ */
/* per-descriptor state                                                */
/* ------------------------------------------------------------------ */

static struct ep_fd *ep_slot(struct ep_state *s, int fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= s->nfds) {
		size_t n = s->nfds ? s->nfds : 256;
		while (n <= (size_t)fd)
			n *= 2;
		struct ep_fd *v = realloc(s->fds, n * sizeof *v);
		if (!v)
			return NULL;
		memset(v + s->nfds, 0, (n - s->nfds) * sizeof *v);
		s->fds = v;
		s->nfds = n;
	}
	return &s->fds[fd];
}

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

static int ep_try_accept(struct ax_op *op)
{
	for (;;) {
		int fd = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			op->res = fd;
			return 1;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN)
			return 0;
		/* EMFILE/ENFILE end the op: the connection stays queued and
		 * the caller decides when to try again [AX-TCP-8] */
		op->res = -errno;
		return 1;
	}
}

static int64_t ep_now(void);

static int ep_try_read(struct ax_op *op)
{
	for (;;) {
		ssize_t n = read(op->fd, op->buf, op->len);
		if (n >= 0) {
			op->res = n;
			if (ep_test_delay_ns && n > 0) {
				int64_t t0 = ep_now();
				while (ep_now() - t0 < ep_test_delay_ns)
					;
			}
			return 1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		op->res = -errno;
		return 1;
	}
}

/* drv_u64[0]: bytes of the write already sent. */
static int ep_try_write(struct ax_op *op)
{
	const char *p = op->buf;
	while (op->drv_u64[0] < op->len) {
		ssize_t n = send(op->fd, p + op->drv_u64[0],
				 op->len - op->drv_u64[0], MSG_NOSIGNAL);
		if (n < 0 && errno == ENOTSOCK)
			n = write(op->fd, p + op->drv_u64[0],
				  op->len - op->drv_u64[0]);
		if (n >= 0) {
			op->drv_u64[0] += (uint64_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return 0;
		op->res = -errno;
		return 1;
	}
	op->res = (int64_t)op->len;
	return 1;
}

/* drv_u64[1]: 1 once the connecting socket exists. */
static int ep_finish_connect(struct ax_op *op)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return 0;
	if (err) {
		close(op->fd);
		op->res = -err;
	} else {
		op->res = op->fd;
	}
	return 1;
}

/* A descriptor number just returned by the kernel cannot be in our epoll
 * set (close removed its predecessor), whatever the slot remembers. */
static void ep_fresh(struct ep_state *s, int fd)
{
	if (fd >= 0 && (size_t)fd < s->nfds)
		memset(&s->fds[fd], 0, sizeof s->fds[fd]);
}

static int ep_try(struct ep_state *s, struct ax_op *op)
{
	int r;
	switch (op->kind) {
	case AX_OP_ACCEPT:
		r = ep_try_accept(op);
		if (r == 1)
			ep_fresh(s, (int)op->res);
		return r;
	case AX_OP_READ: {
		struct ep_fd *f = op->fd >= 0 && (size_t)op->fd < s->nfds ? &s->fds[op->fd] : NULL;
		if (f && f->added && !f->rd_ready)
			return 0;
		r = ep_try_read(op);
		if (f && f->added && !f->rd_hup &&
		    (r == 0 || (op->res > 0 && (size_t)op->res < op->len)))
			f->rd_ready = false;
		return r;
	}
	case AX_OP_WRITE: return ep_try_write(op);
	case AX_OP_CONNECT:
		r = ep_finish_connect(op);
		if (r == 1 && op->res < 0)
			ep_fresh(s, op->fd);
		return r;
	default: return 0;
	}
}

static int epoll_try_now(void *state, struct ax_op *op)
{
	return ep_try(state, op);
}

/* ------------------------------------------------------------------ */
/* submit / cancel / close                                             */
/* ------------------------------------------------------------------ */

static void ep_late(struct ep_state *s, struct ax_op *op)
{
	op->drv_next = NULL;
	if (s->late_tail)
		s->late_tail->drv_next = op;
	else
		s->late_head = op;
	s->late_tail = op;
}

static int epoll_submit(void *state, struct ax_op *op)
{
	struct ep_state *s = state;
	struct ep_fd *f;
	int r;

	switch (op->kind) {
	case AX_OP_CONNECT: {
		int fd = socket(op->addr.ss_family,
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		op->fd = fd;
		ep_fresh(s, fd);
		if (connect(fd, (struct sockaddr *)&op->addr, op->addrlen) == 0) {
			op->res = fd;
			ep_late(s, op);
			return 0;
		}
		if (errno != EINPROGRESS) {
			r = -errno;
			close(fd);
			/* a refused loopback connect fails at once: still a
			 * completion, since the op was accepted */
			op->fd = -1;
			op->res = r;
			ep_late(s, op);
			return 0;
		}
		f = ep_slot(s, fd);
		if (!f) {
			close(fd);
			return -ENOMEM;
		}
		if ((r = ep_register(s, fd, f)) < 0) {
			close(fd);
			return r;
		}
		f->wr = op;
		return 0;
	}
	case AX_OP_ACCEPT:
	case AX_OP_READ:
	case AX_OP_WRITE:
		break;
	default:
		return -ENOTSUP;
	}

	f = ep_slot(s, op->fd);
	if (!f)
		return op->fd < 0 ? -EBADF : -ENOMEM;
	bool rd = op->kind != AX_OP_WRITE;
	if (rd ? f->rd != NULL : f->wr != NULL)
		return -EBUSY;
	if ((r = ep_register(s, op->fd, f)) < 0)
		return r;
	/* the edge may have come before the registration: try once more */
	if (ep_try(s, op)) {
		ep_late(s, op);
		return 0;
	}
	if (rd)
		f->rd = op;
	else
		f->wr = op;
	return 0;
}

static void epoll_cancel(void *state, struct ax_op *op)
{
	struct ep_state *s = state;
	/* a completion already queued for the next poll wins */
	for (struct ax_op *o = s->late_head; o; o = o->drv_next)
		if (o == op)
			return;
	int fd = op->fd;
	if (fd >= 0 && (size_t)fd < s->nfds) {
		struct ep_fd *f = &s->fds[fd];
		if (f->rd == op)
			f->rd = NULL;
		else if (f->wr == op)
			f->wr = NULL;
		else
			return;
	}
	if (op->kind == AX_OP_CONNECT && fd >= 0) {
		if ((size_t)fd < s->nfds)
			s->fds[fd].added = false;
		close(fd);
	}
	ax_op_complete(op, -ECANCELED);
}

static int epoll_close_fd(void *state, int fd)
{
	struct ep_state *s = state;
	if (fd >= 0 && (size_t)fd < s->nfds) {
		struct ep_fd *f = &s->fds[fd];
		struct ax_op *rd = f->rd, *wr = f->wr;
		memset(f, 0, sizeof *f);
		if (rd)
			ax_op_complete(rd, -EBADF);
		if (wr)
			ax_op_complete(wr, -EBADF);
	}
	return close(fd) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* timers                                                              */
/* ------------------------------------------------------------------ */

static int epoll_timer_arm(void *state, struct ax_timer *t)
{
	struct ep_state *s = state;
	return ax__theap_push(&s->timers, t);
}

static void epoll_timer_cancel(void *state, struct ax_timer *t)
{
	struct ep_state *s = state;
	ax__theap_remove(&s->timers, t);
}

static int64_t ep_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int ep_fire_timers(struct ep_state *s)
{
	int n = 0;
	struct ax_timer *t;
	if (!s->timers.n)
		return 0;
	int64_t now = ep_now();
	while ((t = ax__theap_pop_due(&s->timers, now))) {
		t->fire(t);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* poll                                                                */
/* ------------------------------------------------------------------ */

static int ep_wait(struct ep_state *s, struct epoll_event *evs, bool block)
{
	int64_t timeout = 0; /* ns; -1 infinite */
	if (block) {
		struct ax_timer *t = ax__theap_min(&s->timers);
		if (!t) {
			timeout = -1;
		} else {
			timeout = t->deadline - ep_now();
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

static int epoll_poll(void *state, bool block)
{
	struct ep_state *s = state;
	struct epoll_event evs[EP_MAX_EVENTS];
	int done = 0;

	if (s->late_head)
		block = false;
	s->polls++;
	int n = ep_wait(s, evs, block);
	if (n < 0 && errno != EINTR)
		return -errno;
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		uint32_t e = evs[i].events;
		if (fd == s->evfd) {
			uint64_t v;
			if (read(s->evfd, &v, sizeof v) < 0) {
				/* EAGAIN: already drained */
			}
			continue;
		}
		if ((size_t)fd >= s->nfds)
			continue;
		struct ep_fd *f = &s->fds[fd];
		if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			f->rd_ready = true;
		if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			f->rd_hup = true;
		if (f->rd && (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
			struct ax_op *op = f->rd;
			if (ep_try(s, op)) {
				f->rd = NULL;
				ax_op_complete(op, op->res);
				done++;
			}
		}
		if (f->wr && (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			struct ax_op *op = f->wr;
			if (ep_try(s, op)) {
				f->wr = NULL;
				ax_op_complete(op, op->res);
				done++;
			}
		}
	}
	while (s->late_head) {
		struct ax_op *op = s->late_head;
		s->late_head = op->drv_next;
		if (!s->late_head)
			s->late_tail = NULL;
		ax_op_complete(op, op->res);
		done++;
	}
	done += ep_fire_timers(s);
	s->events += (uint64_t)done;
	return done;
}

static void epoll_wake(void *state)
{
	struct ep_state *s = state;
	uint64_t one = 1;
	if (write(s->evfd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is saturated, a wake is pending anyway */
	}
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

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

static int epoll_init(void **state, const struct ax_rt_opts *opts)
{
	(void)opts;
	int r;
	const char *delay = getenv("AX_TEST_ECHO_DELAY_NS");
	ep_test_delay_ns = delay ? strtoll(delay, NULL, 10) : 0;
	struct ep_state *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	ax__theap_init(&s->timers);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		r = -errno;
		goto fail_free;
	}
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->evfd < 0) {
		r = -errno;
		goto fail_epfd;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = s->evfd};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) < 0) {
		r = -errno;
		goto fail_evfd;
	}
	s->have_pwait2 = true;
	*state = s;
	return 0;

fail_evfd:
	close(s->evfd);
fail_epfd:
	close(s->epfd);
fail_free:
	free(s);
	return r;
}

static void epoll_fini(void *state)
{
	struct ep_state *s = state;
	close(s->evfd);
	close(s->epfd);
	ax__theap_fini(&s->timers);
	free(s->fds);
	free(s);
}

static const char *epoll_engine_info(void *state)
{
	struct ep_state *s = state;
	return s->have_pwait2
		? "epoll edge-triggered, timers: 4-ary heap, wait: epoll_pwait2 (ns)"
		: "epoll edge-triggered, timers: 4-ary heap, wait: epoll_wait (ms)";
}

static void epoll_stats(void *state, struct ax_driver_stats *st)
{
	struct ep_state *s = state;
	st->polls = s->polls;
	st->events = s->events;
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
	.stats = epoll_stats,
	.try_now = epoll_try_now,
};
