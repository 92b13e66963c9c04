/* libuv_echo.c - tcp_echo written straight on libuv callbacks: a uv_tcp_t
 * listener on (a duplicate of) the harness's socket, one uv_tcp_t per
 * connection reading into its own buffer, echoing with uv_try_write and
 * falling back to uv_write (reads paused) when the socket is full. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "native.h"

struct conn {
	uv_tcp_t h;               /* first: the handle is the connection */
	uv_write_t wreq;
	uv_buf_t pending;         /* what uv_write still owns */
	struct server *s;
	struct conn *next, *prev; /* live connections, closed at stop */
	char buf[];
};

struct server {
	uv_loop_t loop;
	uv_tcp_t listener;
	size_t bufsize;
	struct conn *conns;
	int err;
	struct axr_run *r;
};

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct server *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->h))
		uv_close((uv_handle_t *)&c->h, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;
	(void)hint;
	*b = uv_buf_init(c->buf, (unsigned)c->s->bufsize);
}

static void on_written(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	if (status < 0 ||
	    uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) < 0)
		conn_close(c);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = st->data;
	if (n < 0) {
		conn_close(c);
		return;
	}
	uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
	int w = n ? uv_try_write(st, &out, 1) : 0;
	if (w == n)
		return;
	if (w < 0 && w != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	/* the socket is full: hand the rest to uv_write and stop reading
	 * into the buffer it now owns until it is written */
	w = w < 0 ? 0 : w;
	c->pending = uv_buf_init(b->base + w, (unsigned)(n - w));
	c->wreq.data = c;
	if (uv_read_stop(st) < 0 ||
	    uv_write(&c->wreq, st, &c->pending, 1, on_written) < 0)
		conn_close(c);
}

/* Close everything: uv_run returns once the last handle is closed. */
static void server_stop(struct server *s)
{
	if (!uv_is_closing((uv_handle_t *)&s->listener))
		uv_close((uv_handle_t *)&s->listener, NULL);
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
}

static void on_connection(uv_stream_t *l, int status)
{
	struct server *s = l->data;
	if (status < 0) {
		/* EINVAL after the stop shut the listener down */
		if (!atomic_load(&s->r->stopping))
			s->err = status;
		server_stop(s);
		return;
	}
	struct conn *c = malloc(sizeof *c + s->bufsize);
	if (!c || uv_tcp_init(&s->loop, &c->h) < 0) {
		free(c);
		return;
	}
	c->h.data = c;
	c->s = s;
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (uv_accept(l, (uv_stream_t *)&c->h) < 0 ||
	    uv_tcp_nodelay(&c->h, 1) < 0 ||
	    uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read) < 0)
		conn_close(c);
}

int axr_libuv_echo(struct axr_run *r)
{
	int64_t size = axr_param(r, "size");
	struct server s = {
		.bufsize = size < 4096 ? 4096 : size > 65536 ? 65536 : (size_t)size,
		.r = r,
	};
	int err = uv_loop_init(&s.loop);
	if (err < 0)
		return err;
	/* libuv owns (and closes) the descriptor it is given: a duplicate */
	int fd = dup(r->listen_fd);
	if (fd < 0) {
		err = -errno;
		goto close_loop;
	}
	uv_tcp_init(&s.loop, &s.listener);
	s.listener.data = &s;
	err = uv_tcp_open(&s.listener, fd);
	if (err < 0) {
		close(fd);
	} else {
		err = uv_listen((uv_stream_t *)&s.listener, 4096, on_connection);
		if (err == 0) {
			uv_run(&s.loop, UV_RUN_DEFAULT);
			err = s.err;
		}
	}
	server_stop(&s);
	uv_run(&s.loop, UV_RUN_DEFAULT); /* runs the close callbacks */
close_loop:
	uv_loop_close(&s.loop);
	return err;
}
