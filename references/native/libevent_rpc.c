/* libevent_rpc.c - rpc_fanout written straight on libevent's events: the
 * front and backend services on one event_base; every socket has a
 * persistent read event and a write event added only while a send is
 * refused; each front connection connects its K backend connections, then
 * per request reads `size` bytes, sends K calls, counts the K replies and
 * sends the answer. Same protocol and check as scenarios/rpc_fanout.c. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "native.h"

#define MAX_FANOUT 64

/* A backend call: {id, value} -> {id, 2 * value + 1}. */
struct rpc_msg {
	uint64_t id;
	uint64_t value;
};

/* Where a front connection is in serving one request (before its calls
 * are connected, its read event is not added). */
enum front_phase { FRONT_READING, FRONT_CALLING, FRONT_ANSWERING };

struct call {
	int fd;
	struct event *rd, *wr;   /* wr: the connect, then refused sends */
	struct front *f;
	struct rpc_msg out, in;
	size_t out_off, in_got;
};

struct front {
	int fd;
	struct event *rd, *wr;
	struct server *s;
	struct front *next, *prev;
	enum front_phase phase;
	int64_t connected, pending; /* calls connected; replies awaited */
	uint64_t next_id;
	size_t got, sent;           /* request bytes read, answer bytes sent */
	struct call calls[MAX_FANOUT];
	char req[];
};

struct backend {
	int fd;
	struct event *rd, *wr;
	struct server *s;
	struct backend *next, *prev;
	struct rpc_msg in, out;
	size_t in_got, out_off;
};

struct server {
	struct event_base *base;
	struct event *front_l, *back_l;
	int back_fd;
	struct sockaddr_in back_addr;
	int64_t fanout;
	size_t size;
	struct front *fronts;
	struct backend *backends;
	uint64_t bad_replies;
	int err;
	struct axr_run *r;
};

/* Send buf[*off, len): 1 when all is sent, 0 when the socket is full (wr
 * is added and its callback goes on), -1 on an error. */
static int flush(int fd, struct event *wr, const void *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t w = send(fd, (const char *)buf + *off, len - *off, MSG_NOSIGNAL);
		if (w > 0)
			*off += (size_t)w;
		else if (w < 0 && errno == EAGAIN)
			return event_add(wr, NULL) < 0 ? -1 : 0;
		else if (!(w < 0 && errno == EINTR))
			return -1;
	}
	return event_del(wr) < 0 ? -1 : 1;
}

/* Read into buf[*got, len): 1 when full, 0 when drained, -1 at EOF or on
 * an error. */
static int recv_some(int fd, void *buf, size_t len, size_t *got)
{
	while (*got < len) {
		ssize_t n = recv(fd, (char *)buf + *got, len - *got, 0);
		if (n > 0)
			*got += (size_t)n;
		else if (n < 0 && errno == EAGAIN)
			return 0;
		else if (!(n < 0 && errno == EINTR))
			return -1;
	}
	return 1;
}

/* Events may be freed from inside their own callbacks: libevent drops
 * freed events from its active queue. */
static void front_close(struct front *f)
{
	struct server *s = f->s;
	if (f->prev)
		f->prev->next = f->next;
	else
		s->fronts = f->next;
	if (f->next)
		f->next->prev = f->prev;
	for (int64_t i = 0; i < s->fanout; i++) {
		struct call *c = &f->calls[i];
		if (c->rd)
			event_free(c->rd);
		if (c->wr)
			event_free(c->wr);
		if (c->fd >= 0)
			close(c->fd);
	}
	if (f->rd)
		event_free(f->rd);
	if (f->wr)
		event_free(f->wr);
	close(f->fd);
	free(f);
}

static void backend_close(struct backend *b)
{
	struct server *s = b->s;
	if (b->prev)
		b->prev->next = b->next;
	else
		s->backends = b->next;
	if (b->next)
		b->next->prev = b->prev;
	if (b->rd)
		event_free(b->rd);
	if (b->wr)
		event_free(b->wr);
	close(b->fd);
	free(b);
}

/* --- the backend service ------------------------------------------ */

static void on_backend_writable(evutil_socket_t fd, short what, void *arg)
{
	struct backend *b = arg;
	(void)what;
	if (flush(fd, b->wr, &b->out, sizeof b->out, &b->out_off) < 0)
		backend_close(b);
}

static void on_backend_read(evutil_socket_t fd, short what, void *arg)
{
	struct backend *b = arg;
	(void)what;
	int r = recv_some(fd, &b->in, sizeof b->in, &b->in_got);
	if (r <= 0) {
		if (r < 0)
			backend_close(b);
		return;
	}
	b->in_got = b->out_off = 0;
	b->out = (struct rpc_msg){b->in.id, 2 * b->in.value + 1};
	on_backend_writable(fd, EV_WRITE, b);
}

/* --- the front service --------------------------------------------- */

static void on_front_writable(evutil_socket_t fd, short what, void *arg)
{
	struct front *f = arg;
	(void)what;
	int r = flush(fd, f->wr, f->req, f->s->size, &f->sent);
	if (r < 0)
		front_close(f);
	else if (r > 0)
		f->phase = FRONT_READING;
}

static void on_front_read(evutil_socket_t fd, short what, void *arg)
{
	struct front *f = arg;
	char extra;
	(void)what;
	if (f->phase != FRONT_READING) {
		/* one request at a time: only EOF or an error can come now */
		ssize_t n = recv(fd, &extra, 1, 0);
		if (!(n < 0 && (errno == EAGAIN || errno == EINTR)))
			front_close(f);
		return;
	}
	int r = recv_some(fd, f->req, f->s->size, &f->got);
	if (r <= 0) {
		if (r < 0)
			front_close(f);
		return;
	}
	f->got = 0;
	f->phase = FRONT_CALLING;
	f->pending = f->s->fanout;
	for (int64_t i = 0; i < f->s->fanout; i++) {
		struct call *c = &f->calls[i];
		uint64_t id = ++f->next_id;
		c->out = (struct rpc_msg){id, (uint64_t)i * 7 + id};
		c->out_off = 0;
		if (flush(c->fd, c->wr, &c->out, sizeof c->out, &c->out_off) < 0) {
			front_close(f);
			return;
		}
	}
}

static void on_call_writable(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	(void)what;
	if (flush(fd, c->wr, &c->out, sizeof c->out, &c->out_off) < 0)
		front_close(c->f);
}

static void on_call_read(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	struct front *f = c->f;
	(void)what;
	int r = recv_some(fd, &c->in, sizeof c->in, &c->in_got);
	if (r == 0)
		return;
	c->in_got = 0;
	if (r < 0 || f->phase != FRONT_CALLING) {
		front_close(f);
		return;
	}
	if (c->in.id != c->out.id || c->in.value != 2 * c->out.value + 1) {
		f->s->bad_replies++;
		front_close(f);
		return;
	}
	if (--f->pending > 0)
		return;
	f->phase = FRONT_ANSWERING;
	f->sent = 0;
	on_front_writable(f->fd, EV_WRITE, f);
}

/* The connect finished: the write event now serves refused sends, and the
 * front starts reading once its last call is connected. */
static void on_call_connected(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	struct front *f = c->f;
	int e = 0;
	socklen_t len = sizeof e;
	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) || e ||
	    event_assign(c->wr, f->s->base, fd, EV_WRITE | EV_PERSIST,
			 on_call_writable, c) < 0 ||
	    event_add(c->rd, NULL) < 0 ||
	    (++f->connected == f->s->fanout && event_add(f->rd, NULL) < 0))
		front_close(f);
}

static void front_open(struct server *s, int fd)
{
	struct front *f = calloc(1, sizeof *f + s->size);
	if (!f) {
		close(fd);
		return;
	}
	f->fd = fd;
	f->s = s;
	f->next = s->fronts;
	if (s->fronts)
		s->fronts->prev = f;
	s->fronts = f;
	for (int64_t i = 0; i < s->fanout; i++)
		f->calls[i].fd = -1;
	f->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_front_read, f);
	f->wr = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_front_writable, f);
	if (!f->rd || !f->wr)
		goto fail;
	for (int64_t i = 0; i < s->fanout; i++) {
		struct call *c = &f->calls[i];
		int one = 1;
		c->f = f;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			goto fail;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(c->fd, (struct sockaddr *)&s->back_addr, sizeof s->back_addr) &&
		    errno != EINPROGRESS)
			goto fail;
		c->rd = event_new(s->base, c->fd, EV_READ | EV_PERSIST, on_call_read, c);
		c->wr = event_new(s->base, c->fd, EV_WRITE, on_call_connected, c);
		if (!c->rd || !c->wr || event_add(c->wr, NULL) < 0)
			goto fail;
	}
	return;
fail:
	front_close(f);
}

static void backend_open(struct server *s, int fd)
{
	struct backend *b = calloc(1, sizeof *b);
	if (!b) {
		close(fd);
		return;
	}
	b->fd = fd;
	b->s = s;
	b->next = s->backends;
	if (s->backends)
		s->backends->prev = b;
	s->backends = b;
	b->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, on_backend_read, b);
	b->wr = event_new(s->base, fd, EV_WRITE | EV_PERSIST, on_backend_writable, b);
	if (!b->rd || !b->wr || event_add(b->rd, NULL) < 0)
		backend_close(b);
}

/* Both listeners: accept everything pending. */
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
		if (lfd == s->back_fd)
			backend_open(s, fd);
		else
			front_open(s, fd);
	}
}

static int backend_listen(struct server *s)
{
	socklen_t len = sizeof s->back_addr;
	int one = 1;
	s->back_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->back_fd < 0)
		return -errno;
	s->back_addr = (struct sockaddr_in){.sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(s->back_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s->back_fd, (struct sockaddr *)&s->back_addr, len) ||
	    listen(s->back_fd, 4096) ||
	    getsockname(s->back_fd, (struct sockaddr *)&s->back_addr, &len))
		return -errno;
	s->back_l = event_new(s->base, s->back_fd, EV_READ | EV_PERSIST, on_accept, s);
	return s->back_l && event_add(s->back_l, NULL) == 0 ? 0 : -ENOMEM;
}

int axr_libevent_rpc(struct axr_run *r)
{
	struct server s = {
		.fanout = axr_param(r, "fanout"),
		.size = (size_t)axr_param(r, "size"),
		.back_fd = -1,
		.r = r,
	};
	int err;

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
	err = backend_listen(&s);
	if (!err) {
		s.front_l = event_new(s.base, r->listen_fd, EV_READ | EV_PERSIST,
				      on_accept, &s);
		err = s.front_l && event_add(s.front_l, NULL) == 0 ? 0 : -ENOMEM;
	}
	if (!err)
		err = event_base_dispatch(s.base) < 0 ? -EIO : s.err;
	while (s.fronts)
		front_close(s.fronts);
	while (s.backends)
		backend_close(s.backends);
	if (s.front_l)
		event_free(s.front_l);
	if (s.back_l)
		event_free(s.back_l);
	if (s.back_fd >= 0)
		close(s.back_fd);
	event_base_free(s.base);
	if (s.bad_replies)
		axr_fail(r, "%llu backend replies were wrong",
			 (unsigned long long)s.bad_replies);
	return err;
}
