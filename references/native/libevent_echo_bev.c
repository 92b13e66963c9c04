/* libevent_echo_bev.c - tcp_echo written with libevent's buffered layer, the
 * way its documentation and most libevent servers write one: an
 * evconnlistener accepts, each connection is a socket bufferevent, and the
 * read callback moves the input buffer's chains to the output buffer
 * (evbuffer_add_buffer, no copy); libevent reads and writes. The label
 * native-libevent-bufferevent; native-libevent keeps raw events
 * (libevent_echo.c; docs/ergonomics.md says why both). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "native.h"

/* Echoes waiting in a connection's output beyond which it stops reading
 * until the output has drained (a client that sends without reading). */
#define OUT_HIGH (256 * 1024)

struct conn {
	struct bufferevent *bev;
	struct server *s;
	struct conn *next, *prev; /* live connections, freed at stop */
};

struct server {
	struct event_base *base;
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
	bufferevent_free(c->bev); /* closes the socket: BEV_OPT_CLOSE_ON_FREE */
	free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(bev);
	if (evbuffer_add_buffer(out, bufferevent_get_input(bev)) < 0) {
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(out) > OUT_HIGH)
		bufferevent_disable(bev, EV_READ);
}

/* The output drained (the write low-watermark is 0): read again. */
static void on_drained(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct server *s = arg;
	int one = 1;
	(void)l;
	(void)sa;
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct conn *c = calloc(1, sizeof *c);
	struct bufferevent *bev =
		bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !bev) {
		if (bev)
			bufferevent_free(bev);
		else
			evutil_closesocket(fd);
		free(c);
		return;
	}
	*c = (struct conn){.bev = bev, .s = s, .next = s->conns};
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	bufferevent_setcb(bev, on_read, on_drained, on_event, c);
	if (bufferevent_enable(bev, EV_READ) < 0)
		conn_free(c);
}

/* An accept failed for good: EINVAL after the stop shut the listener down. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct server *s = arg;
	(void)l;
	if (!atomic_load(&s->r->stopping))
		s->err = -EVUTIL_SOCKET_ERROR();
	event_base_loopbreak(s->base);
}

int axr_libevent_echo_bev(struct axr_run *r)
{
	struct server s = {.r = r};
	struct evconnlistener *l = NULL;
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
	/* backlog 0: listening already; no LEV_OPT_CLOSE_ON_FREE: the
	 * harness owns the listener */
	l = evconnlistener_new(s.base, on_accept, &s, LEV_OPT_CLOSE_ON_EXEC, 0,
			       r->listen_fd);
	if (l) {
		evconnlistener_set_error_cb(l, on_accept_error);
		err = event_base_dispatch(s.base) < 0 ? -EIO : s.err;
		evconnlistener_free(l);
	}
	while (s.conns)
		conn_free(s.conns);
	event_base_free(s.base);
	return err;
}
