/* epoll_echo_mt.c - tcp_echo on raw epoll with two threads, in the two ways
 * two threads can split one engine's work (docs/decisions.md, "Work
 * stealing", I/O across workers): the measurement of the design the
 * work-stealing runtimes rejected, isolated from any scheduler.
 *
 * - owned (native-epoll-mt-owned): each thread has its own epoll set and
 *   its own connections; thread 0 accepts and hands connections out in
 *   turn (epoll_ctl ADD on the other thread's set). A connection's events
 *   are only ever seen by its owner: level-triggered, registered once,
 *   changed only when the connection starts or stops waiting to write.
 * - shared (native-epoll-mt-shared): both threads wait on one epoll set;
 *   every descriptor is registered EPOLLONESHOT, so an event goes to one
 *   thread and no other thread can see that connection until the handler
 *   re-arms it (EPOLL_CTL_MOD) when it is done: one more system call per
 *   message, and whichever thread wakes serves whichever connection.
 *
 * Everything else is the same code (the state machine of epoll_echo.c):
 * the difference measured is the engine's sharing alone. The list of live
 * connections (for closing them at the stop) is behind a mutex taken only
 * at accept and close. The stop: the thread whose accept fails writes an
 * eventfd registered level-triggered in every set, so every thread wakes
 * and returns. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

#define MT_THREADS 2 /* as ws-epoll:workers=2, on the 2-CPU reference machine */
#define MAX_EVENTS 256

/* Tags in data.u64 for the two descriptors that are not connections. */
#define TAG_LISTEN 0u
#define TAG_STOP 1u

enum conn_state { CONN_READING, CONN_WRITING };

struct conn {
	int fd, ep;               /* ep: the set it is registered in */
	enum conn_state state;
	size_t off, len;          /* bytes of buf still to send: [off, len) */
	struct conn *next, *prev; /* live connections, under server.lock */
	char buf[];
};

struct server {
	bool shared;
	int eps[MT_THREADS];      /* shared: eps[0] only */
	int lfd, stopfd;
	size_t bufsize;
	unsigned next_owner;      /* owned: the set of the next accepted conn */
	pthread_mutex_t lock;     /* conns */
	struct conn *conns;
	struct axr_run *r;
	atomic_int err;           /* first failure before the stop, -errno */
};

struct worker {
	struct server *s;
	int ep;
};

/* EPOLLONESHOT on every descriptor of the shared set. */
static uint32_t ev_flags(const struct server *s, uint32_t events)
{
	return s->shared ? events | EPOLLONESHOT : events;
}

static void conn_close(struct server *s, struct conn *c)
{
	pthread_mutex_lock(&s->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&s->lock);
	/* also removes it from the set; shared: no other thread holds an event
	 * of it (one-shot, not re-armed) */
	close(c->fd);
	free(c);
}

/* Wait for st next. Owned: the interest changes only when the state does.
 * Shared: every wait re-arms the one-shot registration. */
static int conn_wait(struct server *s, struct conn *c, enum conn_state st)
{
	if (c->state == st && !s->shared)
		return 0;
	struct epoll_event ev = {
		.events = ev_flags(s, st == CONN_READING ? EPOLLIN : EPOLLOUT),
		.data.ptr = c,
	};
	c->state = st;
	return epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &ev) ? -errno : 0;
}

/* Send what is pending; wait for EPOLLOUT when the socket is full. */
static void conn_flush(struct server *s, struct conn *c)
{
	while (c->off < c->len) {
		ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off,
				 MSG_NOSIGNAL);
		if (w > 0) {
			c->off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (conn_wait(s, c, CONN_WRITING))
				conn_close(s, c);
			return;
		}
		conn_close(s, c);
		return;
	}
	if (conn_wait(s, c, CONN_READING))
		conn_close(s, c);
}

static void conn_readable(struct server *s, struct conn *c)
{
	ssize_t n = read(c->fd, c->buf, s->bufsize);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (conn_wait(s, c, CONN_READING)) /* shared: re-arm */
			conn_close(s, c);
		return;
	}
	if (n <= 0) {
		conn_close(s, c);
		return;
	}
	c->off = 0;
	c->len = (size_t)n;
	conn_flush(s, c);
}

/* Tell every thread to return (the eventfd stays readable). */
static void stop_all(struct server *s)
{
	uint64_t one = 1;
	while (write(s->stopfd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

/* Accept every pending connection into its set. Returns false when the
 * listener is shut down (the stop) or broken. */
static bool accept_all(struct server *s, int ep)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				break;
			int e = -errno;
			if (!atomic_load(&s->r->stopping)) {
				int zero = 0;
				atomic_compare_exchange_strong(&s->err, &zero, e);
			}
			stop_all(s);
			return false;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = malloc(sizeof *c + s->bufsize);
		if (!c) {
			close(fd);
			continue;
		}
		int cep = s->shared ? ep : s->eps[s->next_owner++ % MT_THREADS];
		*c = (struct conn){.fd = fd, .ep = cep, .state = CONN_READING};
		pthread_mutex_lock(&s->lock);
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		pthread_mutex_unlock(&s->lock);
		/* registered last: from here on its owner (or, shared, any
		 * thread) may serve it */
		struct epoll_event ev = {.events = ev_flags(s, EPOLLIN), .data.ptr = c};
		if (epoll_ctl(cep, EPOLL_CTL_ADD, fd, &ev))
			conn_close(s, c);
	}
	if (s->shared) { /* re-arm the listener for the next thread */
		struct epoll_event lev = {.events = EPOLLIN | EPOLLONESHOT,
					  .data.u64 = TAG_LISTEN};
		if (epoll_ctl(ep, EPOLL_CTL_MOD, s->lfd, &lev)) {
			int zero = 0;
			atomic_compare_exchange_strong(&s->err, &zero, -errno);
			stop_all(s);
			return false;
		}
	}
	return true;
}

static void *worker_loop(void *arg)
{
	struct worker *w = arg;
	struct server *s = w->s;
	struct epoll_event evs[MAX_EVENTS];

	for (bool running = true; running;) {
		int n = epoll_wait(w->ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&s->err, &zero, -errno);
			stop_all(s);
			break;
		}
		for (int i = 0; i < n && running; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == TAG_STOP) {
				running = false;
			} else if (tag == TAG_LISTEN) {
				running = accept_all(s, w->ep);
			} else {
				struct conn *c = evs[i].data.ptr;
				if (c->state == CONN_READING)
					conn_readable(s, c);
				else
					conn_flush(s, c);
			}
		}
	}
	return NULL;
}

static int serve_mt(struct axr_run *r, bool shared)
{
	int64_t size = axr_param(r, "size");
	struct server s = {
		.shared = shared,
		.lfd = r->listen_fd,
		.bufsize = size < 4096 ? 4096 : size > 65536 ? 65536 : (size_t)size,
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.r = r,
	};
	int nsets = shared ? 1 : MT_THREADS, made = 0, err = 0;
	struct worker ws[MT_THREADS];
	pthread_t th[MT_THREADS];
	int started = 1; /* thread 0 is the caller */

	s.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s.stopfd < 0)
		return -errno;
	fcntl(s.lfd, F_SETFL, fcntl(s.lfd, F_GETFL) | O_NONBLOCK);
	for (; made < nsets; made++) {
		s.eps[made] = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event sev = {.events = EPOLLIN, .data.u64 = TAG_STOP};
		if (s.eps[made] < 0 ||
		    epoll_ctl(s.eps[made], EPOLL_CTL_ADD, s.stopfd, &sev)) {
			err = -errno;
			if (s.eps[made] >= 0)
				made++;
			goto out;
		}
	}
	/* the listener: in the one set (shared, one-shot) or thread 0's */
	struct epoll_event lev = {.events = ev_flags(&s, EPOLLIN),
				  .data.u64 = TAG_LISTEN};
	if (epoll_ctl(s.eps[0], EPOLL_CTL_ADD, s.lfd, &lev)) {
		err = -errno;
		goto out;
	}
	for (int i = 0; i < MT_THREADS; i++)
		ws[i] = (struct worker){.s = &s, .ep = s.eps[shared ? 0 : i]};
	for (; started < MT_THREADS; started++) {
		int e = pthread_create(&th[started], NULL, worker_loop, &ws[started]);
		if (e) {
			err = -e;
			stop_all(&s);
			break;
		}
	}
	worker_loop(&ws[0]);
	for (int i = 1; i < started; i++)
		pthread_join(th[i], NULL);
	if (!err)
		err = atomic_load(&s.err);
	while (s.conns)
		conn_close(&s, s.conns);
out:
	for (int i = 0; i < made; i++)
		close(s.eps[i]);
	close(s.stopfd);
	return err;
}

static int echo_owned(struct axr_run *r)
{
	return serve_mt(r, false);
}

static int echo_shared(struct axr_run *r)
{
	return serve_mt(r, true);
}

/* The same stop as every native reference (native.c): the listener shut
 * down, which the accepting thread sees as a failing accept. */
static void mt_stop(struct axr_run *r)
{
	atomic_store(&r->stopping, true);
	shutdown(r->listen_fd, SHUT_RDWR);
}

static const char *const mt_scenarios[] = { "tcp_echo", NULL };

const struct axr_ref axr_native_epoll_mt_owned = {
	.name = "native-epoll-mt-owned",
	.summary = "tcp_echo on raw epoll, 2 threads, an epoll set each "
		   "(references/native/epoll_echo_mt.c)",
	.engine_info = "raw epoll, level-triggered, 2 threads each with its own "
		       "set and connections (thread 0 accepts, hands out in turn)",
	.scenarios = mt_scenarios,
	.serve = echo_owned,
	.stop = mt_stop,
};

const struct axr_ref axr_native_epoll_mt_shared = {
	.name = "native-epoll-mt-shared",
	.summary = "tcp_echo on raw epoll, 2 threads sharing one epoll set "
		   "(references/native/epoll_echo_mt.c)",
	.engine_info = "raw epoll, EPOLLONESHOT re-armed per wait, 2 threads "
		       "waiting on one set, any thread serves any connection",
	.scenarios = mt_scenarios,
	.serve = echo_shared,
	.stop = mt_stop,
};
