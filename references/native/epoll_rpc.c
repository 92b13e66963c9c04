/* epoll_rpc.c - rpc_fanout written straight on raw epoll: the front
 * service and the backend service share one level-triggered epoll set; each
 * front connection is a hand-written state machine over its own socket and
 * its K backend connections (connect them, read a request, send K calls and
 * collect K replies, send the answer). Same protocol and check as
 * scenarios/rpc_fanout.c. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "native.h"

#define MAX_EVENTS 256
#define MAX_FANOUT 64

/* A backend call: {id, value} -> {id, 2 * value + 1}. */
struct rpc_msg {
	uint64_t id;
	uint64_t value;
};

/* What a descriptor in the epoll set is: its events are dispatched on it. */
enum sock_kind {
	SOCK_FRONT_LISTENER, SOCK_BACK_LISTENER, SOCK_FRONT, SOCK_CALL,
	SOCK_BACKEND,
};

/* Where a front connection is in serving one request. */
enum front_phase {
	FRONT_CONNECTING, FRONT_READING, FRONT_CALLING, FRONT_ANSWERING,
};

struct sock {
	int fd;
	enum sock_kind kind;
	uint32_t events;           /* interest now registered */
	struct front *front;       /* SOCK_FRONT, SOCK_CALL: its front */
	struct sock *next, *prev;  /* SOCK_FRONT, SOCK_BACKEND: live list */
	struct rpc_msg in, out;    /* SOCK_CALL, SOCK_BACKEND */
	size_t in_got, out_off;
};

struct front {
	struct sock s;             /* first: a SOCK_FRONT sock is its front */
	enum front_phase phase;
	size_t got, sent;          /* request bytes read, answer bytes sent */
	int64_t pending;           /* calls still connecting or unanswered */
	uint64_t next_id;
	bool dead;                 /* closed in this batch, freed after it */
	struct front *dead_next;
	struct sock calls[MAX_FANOUT];
	char req[];
};

struct server {
	struct axr_run *r;
	int ep;
	struct sock front_l, back_l;
	struct sockaddr_in back_addr;
	int64_t fanout;
	size_t size;
	struct sock *fronts, *backends;
	struct front *dead;
	uint64_t bad_replies;
};

static void list_add(struct sock **head, struct sock *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void list_del(struct sock **head, struct sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

static int watch(struct server *srv, struct sock *s, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};
	if (op == EPOLL_CTL_MOD && s->events == events)
		return 0;
	s->events = events;
	return epoll_ctl(srv->ep, op, s->fd, &ev) ? -errno : 0;
}

/* Send buf[*off, len): 1 when all is sent, 0 when the socket is full (the
 * caller waits for EPOLLOUT), -1 on an error. */
static int send_some(int fd, const void *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t w = send(fd, (const char *)buf + *off, len - *off, MSG_NOSIGNAL);
		if (w > 0)
			*off += (size_t)w;
		else if (w < 0 && errno == EAGAIN)
			return 0;
		else if (!(w < 0 && errno == EINTR))
			return -1;
	}
	return 1;
}

/* Read into buf[*got, len): 1 when full, 0 when the socket is drained, -1 at
 * EOF or on an error. */
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

/* Close a front and its calls now; free it after the current batch, whose
 * remaining events may still name it. */
static void front_close(struct server *srv, struct front *f)
{
	if (f->dead)
		return;
	for (int64_t i = 0; i < srv->fanout; i++)
		if (f->calls[i].fd >= 0)
			close(f->calls[i].fd);
	close(f->s.fd);
	list_del(&srv->fronts, &f->s);
	f->dead = true;
	f->dead_next = srv->dead;
	srv->dead = f;
}

static void backend_close(struct server *srv, struct sock *b)
{
	close(b->fd);
	list_del(&srv->backends, b);
	free(b);
}

/* Send the K calls of the request just read. */
static void front_call(struct server *srv, struct front *f)
{
	f->phase = FRONT_CALLING;
	f->pending = srv->fanout;
	if (watch(srv, &f->s, EPOLL_CTL_MOD, 0))
		goto fail;
	for (int64_t i = 0; i < srv->fanout; i++) {
		struct sock *c = &f->calls[i];
		uint64_t id = ++f->next_id;
		c->out = (struct rpc_msg){id, (uint64_t)i * 7 + id};
		c->out_off = c->in_got = 0;
		int r = send_some(c->fd, &c->out, sizeof c->out, &c->out_off);
		if (r < 0 || watch(srv, c, EPOLL_CTL_MOD, r ? EPOLLIN : EPOLLIN | EPOLLOUT))
			goto fail;
	}
	return;
fail:
	front_close(srv, f);
}

/* Progress a front connection as far as its socket allows. */
static void front_io(struct server *srv, struct front *f, uint32_t events)
{
	int r;
	switch (f->phase) {
	case FRONT_CONNECTING:
	case FRONT_CALLING:
		/* only an error or hang-up is reported in these phases */
		if (events & (EPOLLERR | EPOLLHUP))
			front_close(srv, f);
		return;
	case FRONT_READING:
		r = recv_some(f->s.fd, f->req, srv->size, &f->got);
		if (r < 0)
			front_close(srv, f);
		else if (r > 0)
			front_call(srv, f);
		return;
	case FRONT_ANSWERING:
		r = send_some(f->s.fd, f->req, srv->size, &f->sent);
		if (r == 0 && !watch(srv, &f->s, EPOLL_CTL_MOD, EPOLLOUT))
			return;
		if (r <= 0) {
			front_close(srv, f);
			return;
		}
		f->phase = FRONT_READING;
		f->got = f->sent = 0;
		if (watch(srv, &f->s, EPOLL_CTL_MOD, EPOLLIN))
			front_close(srv, f);
		return;
	}
}

static void call_io(struct server *srv, struct sock *c, uint32_t events)
{
	struct front *f = c->front;
	if (f->phase == FRONT_CONNECTING) {
		int e = 0;
		socklen_t len = sizeof e;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) || e ||
		    watch(srv, c, EPOLL_CTL_MOD, EPOLLIN)) {
			front_close(srv, f);
			return;
		}
		if (--f->pending == 0) {
			f->phase = FRONT_READING;
			if (watch(srv, &f->s, EPOLL_CTL_MOD, EPOLLIN))
				front_close(srv, f);
		}
		return;
	}
	if (events & EPOLLOUT) {
		int r = send_some(c->fd, &c->out, sizeof c->out, &c->out_off);
		if (r < 0 || (r > 0 && watch(srv, c, EPOLL_CTL_MOD, EPOLLIN))) {
			front_close(srv, f);
			return;
		}
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	int r = recv_some(c->fd, &c->in, sizeof c->in, &c->in_got);
	if (r < 0 || (r > 0 && f->phase != FRONT_CALLING)) {
		front_close(srv, f);
		return;
	}
	if (r == 0)
		return;
	if (c->in.id != c->out.id || c->in.value != 2 * c->out.value + 1) {
		srv->bad_replies++;
		front_close(srv, f);
		return;
	}
	if (--f->pending == 0) {
		f->phase = FRONT_ANSWERING;
		front_io(srv, f, EPOLLOUT);
	}
}

/* The backend service: answer a complete call, stop reading while an
 * answer waits for room in the socket. One recv per readiness: the interest
 * is level-triggered, so a call still queued is reported again, and the
 * front sends the next call only after this answer, so reading on would
 * only meet EAGAIN. */
static void backend_io(struct server *srv, struct sock *b, uint32_t events)
{
	if (events & EPOLLOUT) {
		int r = send_some(b->fd, &b->out, sizeof b->out, &b->out_off);
		if (r == 0)
			return;
		if (r < 0 || watch(srv, b, EPOLL_CTL_MOD, EPOLLIN)) {
			backend_close(srv, b);
			return;
		}
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		return;
	int r = recv_some(b->fd, &b->in, sizeof b->in, &b->in_got);
	if (r < 0) {
		backend_close(srv, b);
		return;
	}
	if (r == 0)
		return;
	b->out = (struct rpc_msg){b->in.id, 2 * b->in.value + 1};
	b->in_got = b->out_off = 0;
	r = send_some(b->fd, &b->out, sizeof b->out, &b->out_off);
	if (r < 0 || (r == 0 && watch(srv, b, EPOLL_CTL_MOD, EPOLLOUT)))
		backend_close(srv, b);
}

/* A new front connection: connect its K calls before reading requests. */
static void front_open(struct server *srv, int fd)
{
	struct front *f = calloc(1, sizeof *f + srv->size);
	if (!f) {
		close(fd);
		return;
	}
	f->s = (struct sock){.fd = fd, .kind = SOCK_FRONT, .front = f};
	f->phase = FRONT_CONNECTING;
	f->pending = srv->fanout;
	for (int64_t i = 0; i < MAX_FANOUT; i++)
		f->calls[i] = (struct sock){.fd = -1, .kind = SOCK_CALL, .front = f};
	list_add(&srv->fronts, &f->s);
	if (watch(srv, &f->s, EPOLL_CTL_ADD, 0))
		goto fail;
	for (int64_t i = 0; i < srv->fanout; i++) {
		struct sock *c = &f->calls[i];
		int one = 1;
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			goto fail;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(c->fd, (struct sockaddr *)&srv->back_addr,
			    sizeof srv->back_addr) && errno != EINPROGRESS)
			goto fail;
		/* a connect that finished at once reports EPOLLOUT all the same */
		if (watch(srv, c, EPOLL_CTL_ADD, EPOLLOUT))
			goto fail;
	}
	return;
fail:
	front_close(srv, f);
}

/* Accept everything pending on a listener. Returns false once it is shut
 * down (the stop) or broken. */
static bool accept_all(struct server *srv, struct sock *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ||
			       errno == EMFILE || errno == ENFILE;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (l->kind == SOCK_FRONT_LISTENER) {
			front_open(srv, fd);
			continue;
		}
		struct sock *b = calloc(1, sizeof *b);
		if (!b) {
			close(fd);
			continue;
		}
		*b = (struct sock){.fd = fd, .kind = SOCK_BACKEND};
		list_add(&srv->backends, b);
		if (watch(srv, b, EPOLL_CTL_ADD, EPOLLIN))
			backend_close(srv, b);
	}
}

static int backend_listen(struct server *srv)
{
	socklen_t len = sizeof srv->back_addr;
	int one = 1;
	srv->back_l = (struct sock){.kind = SOCK_BACK_LISTENER};
	srv->back_l.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->back_l.fd < 0)
		return -errno;
	srv->back_addr = (struct sockaddr_in){.sin_family = AF_INET,
					      .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(srv->back_l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(srv->back_l.fd, (struct sockaddr *)&srv->back_addr, len) ||
	    listen(srv->back_l.fd, 4096) ||
	    getsockname(srv->back_l.fd, (struct sockaddr *)&srv->back_addr, &len))
		return -errno;
	return watch(srv, &srv->back_l, EPOLL_CTL_ADD, EPOLLIN);
}

int axr_epoll_rpc(struct axr_run *r)
{
	struct server srv = {
		.r = r, .fanout = axr_param(r, "fanout"),
		.size = (size_t)axr_param(r, "size"),
		.front_l = {.fd = r->listen_fd, .kind = SOCK_FRONT_LISTENER},
	};
	struct epoll_event evs[MAX_EVENTS];
	int err;

	srv.ep = epoll_create1(EPOLL_CLOEXEC);
	if (srv.ep < 0)
		return -errno;
	fcntl(r->listen_fd, F_SETFL, fcntl(r->listen_fd, F_GETFL) | O_NONBLOCK);
	err = backend_listen(&srv);
	if (!err)
		err = watch(&srv, &srv.front_l, EPOLL_CTL_ADD, EPOLLIN);
	for (bool running = !err; running;) {
		int n = epoll_wait(srv.ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno != EINTR)
			err = -errno;
		for (int i = 0; i < n; i++) {
			struct sock *s = evs[i].data.ptr;
			uint32_t e = evs[i].events;
			if (s->kind <= SOCK_BACK_LISTENER)
				running &= accept_all(&srv, s);
			else if (s->kind == SOCK_BACKEND)
				backend_io(&srv, s, e);
			else if (!s->front->dead)
				(s->kind == SOCK_FRONT ? front_io(&srv, s->front, e)
						       : call_io(&srv, s, e));
		}
		while (srv.dead) {
			struct front *f = srv.dead;
			srv.dead = f->dead_next;
			free(f);
		}
		running &= !err;
	}
	if (!atomic_load(&r->stopping) && !err)
		err = -EIO; /* a listener failed on its own */
	while (srv.fronts)
		front_close(&srv, srv.fronts->front);
	while (srv.dead) {
		struct front *f = srv.dead;
		srv.dead = f->dead_next;
		free(f);
	}
	while (srv.backends)
		backend_close(&srv, srv.backends);
	if (srv.back_l.fd >= 0)
		close(srv.back_l.fd);
	close(srv.ep);
	if (srv.bad_replies)
		axr_fail(r, "%llu backend replies were wrong",
			 (unsigned long long)srv.bad_replies);
	return err;
}
