/* libuv_rpc.c - rpc_fanout written straight on libuv callbacks: the front
 * and backend services on one loop; each front connection connects its K
 * backend connections (uv_tcp_connect), then per request reads `size`
 * bytes, writes K calls, counts the K replies in their read callbacks and
 * writes the answer; every write is uv_try_write first and uv_write only
 * for what the socket refused, as in libuv_echo.c. Same protocol and check
 * as scenarios/rpc_fanout.c. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "native.h"

#define MAX_FANOUT 64
/* The loop's read buffer, libuv's suggested size. */
#define RBUF_SIZE 65536

/* A backend call: {id, value} -> {id, 2 * value + 1}. */
struct rpc_msg {
	uint64_t id;
	uint64_t value;
};

/* One of a front's K backend connections. One call is in flight on it at a
 * time (the front waits for every reply), so one uv_write_t suffices. */
struct call {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_write_t wreq;
	struct front *f;
	struct rpc_msg out, in;
	size_t in_got;
};

struct front {
	uv_tcp_t h;
	uv_write_t wreq;
	struct server *s;
	struct front *next, *prev;
	int64_t connected, pending; /* calls connected; replies awaited */
	int64_t handles;            /* handles not yet closed */
	bool closing;
	uint64_t next_id;
	size_t got;                 /* request bytes read */
	struct call calls[MAX_FANOUT];
	char req[];
};

/* A connection of the backend service, answering one call at a time. */
struct backend {
	uv_tcp_t h;
	uv_write_t wreq;
	struct server *s;
	struct backend *next, *prev;
	struct rpc_msg in, out;
	size_t in_got;
	bool writing;               /* wreq is in flight */
};

struct server {
	uv_loop_t loop;
	uv_tcp_t front_l, back_l;
	struct sockaddr_in back_addr;
	int64_t fanout;
	size_t size;
	struct front *fronts;
	struct backend *backends;
	uint64_t bad_replies;
	int err;
	struct axr_run *r;
	/* Calls and the backend read into this loop-wide buffer and copy out
	 * the 16-byte messages: a read that fills its buffer makes libuv read
	 * again (and meet EAGAIN), a short one ends its read loop. */
	char *rbuf;
};

static void front_free_part(struct front *f)
{
	if (--f->handles == 0)
		free(f);
}

static void on_front_closed(uv_handle_t *h)
{
	front_free_part(h->data);
}

static void on_call_closed(uv_handle_t *h)
{
	front_free_part(((struct call *)h->data)->f);
}

static void front_close(struct front *f)
{
	struct server *s = f->s;
	if (f->closing)
		return;
	f->closing = true;
	if (f->prev)
		f->prev->next = f->next;
	else
		s->fronts = f->next;
	if (f->next)
		f->next->prev = f->prev;
	uv_close((uv_handle_t *)&f->h, on_front_closed);
	for (int64_t i = 0; i < s->fanout; i++)
		uv_close((uv_handle_t *)&f->calls[i].h, on_call_closed);
}

static void on_backend_closed(uv_handle_t *h)
{
	struct backend *b = h->data;
	struct server *s = b->s;
	if (b->prev)
		b->prev->next = b->next;
	else
		s->backends = b->next;
	if (b->next)
		b->next->prev = b->prev;
	free(b);
}

static void backend_close(struct backend *b)
{
	if (!uv_is_closing((uv_handle_t *)&b->h))
		uv_close((uv_handle_t *)&b->h, on_backend_closed);
}

/* Write buf[0, len) on st as Node.js streams do: uv_try_write first, which
 * needs no request and no callback when the socket takes it all (the
 * usual case for these small messages), else uv_write of the rest through
 * req, whose callback cb finishes. Returns 1 when all was written at once,
 * 0 when cb will be called, or a libuv error (nothing will be called). */
static int write_now_or_queue(uv_stream_t *st, uv_write_t *req, char *buf,
			      size_t len, uv_write_cb cb)
{
	uv_buf_t b = uv_buf_init(buf, (unsigned)len);
	int w = uv_try_write(st, &b, 1);
	if (w == (int)len)
		return 1;
	if (w < 0 && w != UV_EAGAIN)
		return w;
	w = w < 0 ? 0 : w;
	b = uv_buf_init(buf + w, (unsigned)(len - (size_t)w));
	return uv_write(req, st, &b, 1, cb);
}

/* --- the backend service ------------------------------------------ */

static void on_backend_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct backend *be = h->data;
	(void)hint;
	*b = uv_buf_init(be->s->rbuf, RBUF_SIZE);
}

static void on_backend_written(uv_write_t *req, int status)
{
	struct backend *be = req->data;
	be->writing = false;
	if (status < 0)
		backend_close(be);
}

/* Answer each call completed by these n bytes. A front sends a call only
 * after the last one's answer, so a second call while an answer is still
 * queued breaks the protocol: the connection is closed. */
static void on_backend_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct backend *be = st->data;
	if (n < 0) {
		backend_close(be);
		return;
	}
	for (size_t at = 0; at < (size_t)n;) {
		size_t take = sizeof be->in - be->in_got;
		take = take < (size_t)n - at ? take : (size_t)n - at;
		memcpy((char *)&be->in + be->in_got, b->base + at, take);
		at += take;
		be->in_got += take;
		if (be->in_got < sizeof be->in)
			return;
		be->in_got = 0;
		if (be->writing) {
			backend_close(be);
			return;
		}
		be->out = (struct rpc_msg){be->in.id, 2 * be->in.value + 1};
		be->wreq.data = be;
		int r = write_now_or_queue(st, &be->wreq, (char *)&be->out,
					   sizeof be->out, on_backend_written);
		if (r < 0) {
			backend_close(be);
			return;
		}
		be->writing = r == 0;
	}
}

static void on_backend_conn(uv_stream_t *l, int status)
{
	struct server *s = l->data;
	struct backend *b;
	if (status < 0 || !(b = calloc(1, sizeof *b)))
		return;
	uv_tcp_init(&s->loop, &b->h);
	b->h.data = b;
	b->s = s;
	b->next = s->backends;
	if (s->backends)
		s->backends->prev = b;
	s->backends = b;
	if (uv_accept(l, (uv_stream_t *)&b->h) < 0 || uv_tcp_nodelay(&b->h, 1) < 0 ||
	    uv_read_start((uv_stream_t *)&b->h, on_backend_alloc, on_backend_read) < 0)
		backend_close(b);
}

/* --- the front service --------------------------------------------- */

static void on_front_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

static void on_front_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct front *f = h->data;
	(void)hint;
	*b = uv_buf_init(f->req + f->got, (unsigned)(f->s->size - f->got));
}

/* The answer is written (status 0) or failed: read the next request. */
static void front_answered(struct front *f, int status)
{
	f->got = 0;
	if (status < 0 ||
	    uv_read_start((uv_stream_t *)&f->h, on_front_alloc, on_front_read) < 0)
		front_close(f);
}

static void on_answered(uv_write_t *req, int status)
{
	front_answered(req->data, status);
}

static void on_call_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct call *c = h->data;
	(void)hint;
	*b = uv_buf_init(c->f->s->rbuf, RBUF_SIZE);
}

static void on_call_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct call *c = st->data;
	struct front *f = c->f;
	if (n < 0) {
		front_close(f);
		return;
	}
	/* one reply is awaited: more bytes than it has are wrong */
	if ((size_t)n > sizeof c->in - c->in_got) {
		f->s->bad_replies++;
		front_close(f);
		return;
	}
	memcpy((char *)&c->in + c->in_got, b->base, (size_t)n);
	c->in_got += (size_t)n;
	if (c->in_got < sizeof c->in)
		return;
	c->in_got = 0;
	if (c->in.id != c->out.id || c->in.value != 2 * c->out.value + 1) {
		f->s->bad_replies++;
		front_close(f);
		return;
	}
	if (--f->pending > 0)
		return;
	f->wreq.data = f;
	int r = write_now_or_queue((uv_stream_t *)&f->h, &f->wreq, f->req,
				   f->s->size, on_answered);
	if (r != 0)
		front_answered(f, r < 0 ? r : 0);
}

static void on_call_written(uv_write_t *req, int status)
{
	if (status < 0)
		front_close(((struct call *)req->data)->f);
}

/* A whole request arrived: stop reading (one request at a time) and send
 * the K calls. */
static void on_front_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct front *f = st->data;
	(void)b;
	if (n < 0) {
		front_close(f);
		return;
	}
	f->got += (size_t)n;
	if (f->got < f->s->size)
		return;
	uv_read_stop(st);
	f->pending = f->s->fanout;
	for (int64_t i = 0; i < f->s->fanout; i++) {
		struct call *c = &f->calls[i];
		uint64_t id = ++f->next_id;
		c->out = (struct rpc_msg){id, (uint64_t)i * 7 + id};
		if (write_now_or_queue((uv_stream_t *)&c->h, &c->wreq, (char *)&c->out,
				       sizeof c->out, on_call_written) < 0) {
			front_close(f);
			return;
		}
	}
}

static void on_call_connected(uv_connect_t *req, int status)
{
	struct call *c = req->data;
	struct front *f = c->f;
	if (status < 0 || uv_tcp_nodelay(&c->h, 1) < 0 ||
	    uv_read_start((uv_stream_t *)&c->h, on_call_alloc, on_call_read) < 0) {
		front_close(f);
		return;
	}
	if (++f->connected == f->s->fanout &&
	    uv_read_start((uv_stream_t *)&f->h, on_front_alloc, on_front_read) < 0)
		front_close(f);
}

static void server_stop(struct server *s)
{
	if (!uv_is_closing((uv_handle_t *)&s->front_l))
		uv_close((uv_handle_t *)&s->front_l, NULL);
	if (!uv_is_closing((uv_handle_t *)&s->back_l))
		uv_close((uv_handle_t *)&s->back_l, NULL);
	while (s->fronts)
		front_close(s->fronts);
	for (struct backend *b = s->backends; b; b = b->next)
		backend_close(b);
}

static void on_front_conn(uv_stream_t *l, int status)
{
	struct server *s = l->data;
	if (status < 0) {
		/* EINVAL after the stop shut the listener down */
		if (!atomic_load(&s->r->stopping))
			s->err = status;
		server_stop(s);
		return;
	}
	struct front *f = calloc(1, sizeof *f + s->size);
	if (!f)
		return;
	f->s = s;
	f->handles = 1 + s->fanout;
	uv_tcp_init(&s->loop, &f->h);
	f->h.data = f;
	for (int64_t i = 0; i < s->fanout; i++) {
		struct call *c = &f->calls[i];
		c->f = f;
		uv_tcp_init(&s->loop, &c->h);
		c->h.data = c->creq.data = c->wreq.data = c;
	}
	f->next = s->fronts;
	if (s->fronts)
		s->fronts->prev = f;
	s->fronts = f;
	if (uv_accept(l, (uv_stream_t *)&f->h) < 0 || uv_tcp_nodelay(&f->h, 1) < 0) {
		front_close(f);
		return;
	}
	for (int64_t i = 0; i < s->fanout; i++) {
		struct call *c = &f->calls[i];
		if (uv_tcp_connect(&c->creq, &c->h, (struct sockaddr *)&s->back_addr,
				   on_call_connected) < 0) {
			front_close(f);
			return;
		}
	}
}

int axr_libuv_rpc(struct axr_run *r)
{
	struct server s = {
		.fanout = axr_param(r, "fanout"),
		.size = (size_t)axr_param(r, "size"),
		.r = r,
	};
	int len = sizeof s.back_addr;
	s.rbuf = malloc(RBUF_SIZE);
	int err = s.rbuf ? uv_loop_init(&s.loop) : UV_ENOMEM;
	if (err < 0) {
		free(s.rbuf);
		return err;
	}
	uv_tcp_init(&s.loop, &s.front_l);
	uv_tcp_init(&s.loop, &s.back_l);
	s.front_l.data = s.back_l.data = &s;
	/* libuv owns (and closes) the descriptor it is given: a duplicate */
	int fd = dup(r->listen_fd);
	err = fd < 0 ? -errno : uv_tcp_open(&s.front_l, fd);
	if (err < 0 && fd >= 0)
		close(fd);
	if (!err)
		err = uv_ip4_addr("127.0.0.1", 0, &s.back_addr);
	if (!err)
		err = uv_tcp_bind(&s.back_l, (struct sockaddr *)&s.back_addr, 0);
	if (!err)
		err = uv_tcp_getsockname(&s.back_l, (struct sockaddr *)&s.back_addr, &len);
	if (!err)
		err = uv_listen((uv_stream_t *)&s.back_l, 4096, on_backend_conn);
	if (!err)
		err = uv_listen((uv_stream_t *)&s.front_l, 4096, on_front_conn);
	if (!err) {
		uv_run(&s.loop, UV_RUN_DEFAULT);
		err = s.err;
	}
	server_stop(&s);
	uv_run(&s.loop, UV_RUN_DEFAULT); /* runs the close callbacks */
	uv_loop_close(&s.loop);
	free(s.rbuf);
	if (s.bad_replies)
		axr_fail(r, "%llu backend replies were wrong",
			 (unsigned long long)s.bad_replies);
	return err;
}
