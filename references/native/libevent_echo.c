/* libevent_echo.c - tcp_echo written straight on libevent's events: a
 * persistent read event per connection, and a write event added only while
 * the socket refuses an echo (the read event is removed meanwhile, so the
 * buffer is not overwritten). Events rather than bufferevents: see
 * docs/ergonomics.md. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "native.h"

struct conn {
	int fd;
	struct event *rd, *wr;
	size_t off, len;          /* bytes of buf still to send: [off, len) */
	struct server *s;
	struct conn *next, *prev; /* live connections, freed at stop */
	char buf[];
};

struct server {
	struct event_base *base;
	size_t bufsize;
	struct conn *conns;
	int err;
	struct axr_run *r;
};

static void conn_free(struct conn *c)
{
	struct server *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->rd)
		event_free(c->rd);
	if (c->wr)
		event_free(c->wr);
	close(c->fd);
	free(c);
}

/* Send what is pending; on a full socket swap the read event for the
 * write event until it drains. */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)what;
	while (c->off < c->len) {
		ssize_t w = send(fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (w > 0) {
			c->off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			if (event_pending(c->wr, EV_WRITE, NULL) ||
			    (event_del(c->rd) == 0 && event_add(c->wr, NULL) == 0))
				return;
		}
		conn_free(c);
		return;
	}
	if (event_pending(c->wr, EV_WRITE, NULL) &&
	    (event_del(c->wr) < 0 || event_add(c->rd, NULL) < 0))
		conn_free(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)what;
	ssize_t n = read(fd, c->buf, c->s->bufsize);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	c->off = 0;
	c->len = (size_t)n;
	on_writable(fd, EV_WRITE, c);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct server *s = arg;
	(void)what;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				return;
			/* EINVAL after the stop shut the listener down */
			if (!atomic_load(&s->r->stopping))
				s->err = -errno;
			event_base_loopbreak(s->base);
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c + s->bufsize);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->s = s;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_readable, c);
		c->wr = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
		if (!c->rd || !c->wr || event_add(c->rd, NULL) < 0)
			conn_free(c);
	}
}

int axr_libevent_echo(struct axr_run *r)
{
	int64_t size = axr_param(r, "size");
	struct server s = {
		.bufsize = size < 4096 ? 4096 : size > 65536 ? 65536 : (size_t)size,
		.r = r,
	};
	struct event *lev = NULL;
	int err = -ENOMEM;

	struct event_config *cfg = event_config_new();
	if (!cfg)
		return -ENOMEM;
	/* one thread touches this base: no locks */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
	s.base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (!s.base)
		return -ENOMEM;
	evutil_make_socket_nonblocking(r->listen_fd);
	lev = event_new(s.base, r->listen_fd, EV_READ | EV_PERSIST, on_accept, &s);
	if (lev && event_add(lev, NULL) == 0) {
		err = event_base_dispatch(s.base) < 0 ? -EIO : s.err;
		event_del(lev);
	}
	while (s.conns)
		conn_free(s.conns);
	if (lev)
		event_free(lev);
	event_base_free(s.base);
	return err;
}
