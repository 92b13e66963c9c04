/* epoll_echo.c - tcp_echo written straight on raw epoll: one thread, a
 * level-triggered interest set, and a two-state machine per connection
 * (waiting to read, or waiting to finish a write the socket refused). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

#define MAX_EVENTS 256

/* What a connection waits for: its interest in the epoll set follows it. */
enum conn_state { CONN_READING, CONN_WRITING };

struct conn {
	int fd;
	enum conn_state state;
	size_t off, len;          /* bytes of buf still to send: [off, len) */
	struct conn *next, *prev; /* live connections, closed at stop */
	char buf[];
};

struct server {
	int ep, lfd;
	size_t bufsize;
	struct conn *conns;
};

static void conn_close(struct server *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd); /* also removes it from the epoll set */
	free(c);
}

/* Move c to state st, changing its interest when the state changes. */
static int conn_set_state(struct server *s, struct conn *c, enum conn_state st)
{
	if (c->state == st)
		return 0;
	struct epoll_event ev = {
		.events = st == CONN_READING ? EPOLLIN : EPOLLOUT,
		.data.ptr = c,
	};
	c->state = st;
	return epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) ? -errno : 0;
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
			if (conn_set_state(s, c, CONN_WRITING))
				conn_close(s, c);
			return;
		}
		conn_close(s, c);
		return;
	}
	if (conn_set_state(s, c, CONN_READING))
		conn_close(s, c);
}

static void conn_readable(struct server *s, struct conn *c)
{
	ssize_t n = read(c->fd, c->buf, s->bufsize);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(s, c);
		return;
	}
	c->off = 0;
	c->len = (size_t)n;
	conn_flush(s, c);
}

/* Accept every pending connection. Returns false when the listener is shut
 * down (the stop) or broken, with *err set in the second case. */
static bool accept_all(struct server *s, struct axr_run *r, int *err)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				return true;
			if (!atomic_load(&r->stopping))
				*err = -errno;
			return false;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = malloc(sizeof *c + s->bufsize);
		if (!c) {
			close(fd);
			continue;
		}
		*c = (struct conn){.fd = fd, .state = CONN_READING, .next = s->conns};
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
	}
}

int axr_epoll_echo(struct axr_run *r)
{
	int64_t size = axr_param(r, "size");
	struct server s = {
		.lfd = r->listen_fd,
		.bufsize = size < 4096 ? 4096 : size > 65536 ? 65536 : (size_t)size,
	};
	struct epoll_event evs[MAX_EVENTS];
	int err = 0;

	s.ep = epoll_create1(EPOLL_CLOEXEC);
	if (s.ep < 0)
		return -errno;
	fcntl(s.lfd, F_SETFL, fcntl(s.lfd, F_GETFL) | O_NONBLOCK);
	/* the listener's data.ptr is NULL: every other entry is a conn */
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev)) {
		err = -errno;
		goto close_ep;
	}
	for (bool running = true; running;) {
		int n = epoll_wait(s.ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c)
				running = accept_all(&s, r, &err);
			else if (c->state == CONN_READING)
				conn_readable(&s, c);
			else
				conn_flush(&s, c);
		}
	}
	while (s.conns)
		conn_close(&s, s.conns);
close_ep:
	close(s.ep);
	return err;
}
