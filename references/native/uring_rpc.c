/* uring_rpc.c - rpc_fanout written straight on liburing: the front and
 * backend services on one ring; every step is an SQE (multishot accept,
 * connect, recv, send) whose completion, tagged with the step, submits the
 * next; each front connection connects its K backend connections, then per
 * request receives `size` bytes, sends K calls and receives K replies, and
 * sends the answer. A connection closes by cancelling its operations on its
 * descriptors and is freed when the last one has completed. Same protocol
 * and check as scenarios/rpc_fanout.c. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "native.h"

#define RING_ENTRIES 4096
#define MAX_FANOUT 64

/* A backend call: {id, value} -> {id, 2 * value + 1}. */
struct rpc_msg {
	uint64_t id;
	uint64_t value;
};

/* The step a completion finishes: the low bits of its user_data, above
 * them the front, call or backend (all aligned to 16). */
enum op {
	OP_ACCEPT_FRONT, OP_ACCEPT_BACK, OP_CONNECT, OP_FRONT_RECV,
	OP_FRONT_SEND, OP_CALL_SEND, OP_CALL_RECV, OP_BACK_RECV, OP_BACK_SEND,
	OP_CANCEL,
};
#define OP_MASK 15u

struct call {
	_Alignas(16) int fd;
	struct front *f;
	struct rpc_msg out, in;
	size_t out_off, in_got;
};

struct front {
	_Alignas(16) int fd;
	struct front *next, *prev;
	int64_t connected, pending; /* calls connected; replies awaited */
	int64_t inflight;           /* operations naming it or its calls */
	bool closing;
	uint64_t next_id;
	size_t got, sent;           /* request bytes received, answer sent */
	struct call calls[MAX_FANOUT];
	char req[];
};

struct backend {
	_Alignas(16) int fd;
	struct backend *next, *prev;
	int64_t inflight;
	bool closing;
	struct rpc_msg in, out;
	size_t in_got, out_off;
};

struct server {
	struct io_uring ring;
	int front_lfd, back_lfd;
	struct sockaddr_in back_addr;
	int64_t fanout;
	size_t size;
	struct front *fronts;
	struct backend *backends;
	int accepts;                /* multishot accepts in flight */
	bool stopping;
	uint64_t bad_replies;
};

static int ring_init(struct io_uring *ring)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int err = -EINVAL;
	for (size_t i = 0; i < sizeof tries / sizeof tries[0] && err == -EINVAL; i++) {
		struct io_uring_params p = {.flags = tries[i]};
		err = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
	}
	return err;
}

/* A free SQE tagged with (obj, op), submitting the queue when it is full. */
static struct io_uring_sqe *sqe_for(struct server *s, void *obj, enum op op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
	if (!sqe) {
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	io_uring_sqe_set_data64(sqe, (uintptr_t)obj | op);
	return sqe;
}

static void cancel_fd(struct server *s, int fd)
{
	io_uring_prep_cancel_fd(sqe_for(s, NULL, OP_CANCEL), fd, IORING_ASYNC_CANCEL_ALL);
}

static void front_free(struct server *s, struct front *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		s->fronts = f->next;
	if (f->next)
		f->next->prev = f->prev;
	for (int64_t i = 0; i < s->fanout; i++)
		if (f->calls[i].fd >= 0)
			close(f->calls[i].fd);
	close(f->fd);
	free(f);
}

/* Cancel what f has in flight; it is freed when the last one completes. */
static void front_close(struct server *s, struct front *f)
{
	if (f->closing)
		return;
	f->closing = true;
	if (f->inflight == 0) {
		front_free(s, f);
		return;
	}
	cancel_fd(s, f->fd);
	for (int64_t i = 0; i < s->fanout; i++)
		if (f->calls[i].fd >= 0)
			cancel_fd(s, f->calls[i].fd);
}

static void backend_free(struct server *s, struct backend *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		s->backends = b->next;
	if (b->next)
		b->next->prev = b->prev;
	close(b->fd);
	free(b);
}

static void backend_close(struct server *s, struct backend *b)
{
	if (b->closing)
		return;
	b->closing = true;
	if (b->inflight == 0)
		backend_free(s, b);
	else
		cancel_fd(s, b->fd);
}

/* --- submissions ---------------------------------------------------- */

static void front_recv(struct server *s, struct front *f)
{
	f->inflight++;
	io_uring_prep_recv(sqe_for(s, f, OP_FRONT_RECV), f->fd, f->req + f->got,
			   s->size - f->got, 0);
}

static void front_send(struct server *s, struct front *f)
{
	f->inflight++;
	io_uring_prep_send(sqe_for(s, f, OP_FRONT_SEND), f->fd, f->req + f->sent,
			   s->size - f->sent, MSG_NOSIGNAL);
}

static void call_send(struct server *s, struct call *c)
{
	c->f->inflight++;
	io_uring_prep_send(sqe_for(s, c, OP_CALL_SEND), c->fd,
			   (char *)&c->out + c->out_off, sizeof c->out - c->out_off,
			   MSG_NOSIGNAL);
}

static void call_recv(struct server *s, struct call *c)
{
	c->f->inflight++;
	io_uring_prep_recv(sqe_for(s, c, OP_CALL_RECV), c->fd,
			   (char *)&c->in + c->in_got, sizeof c->in - c->in_got, 0);
}

static void back_recv(struct server *s, struct backend *b)
{
	b->inflight++;
	io_uring_prep_recv(sqe_for(s, b, OP_BACK_RECV), b->fd,
			   (char *)&b->in + b->in_got, sizeof b->in - b->in_got, 0);
}

static void back_send(struct server *s, struct backend *b)
{
	b->inflight++;
	io_uring_prep_send(sqe_for(s, b, OP_BACK_SEND), b->fd,
			   (char *)&b->out + b->out_off, sizeof b->out - b->out_off,
			   MSG_NOSIGNAL);
}

static void accept_multi(struct server *s, int lfd, enum op op)
{
	s->accepts++;
	io_uring_prep_multishot_accept(sqe_for(s, NULL, op), lfd, NULL, NULL,
				       SOCK_CLOEXEC);
}

/* --- completions ---------------------------------------------------- */

static void front_open(struct server *s, int fd)
{
	struct front *f = calloc(1, sizeof *f + s->size);
	if (!f) {
		close(fd);
		return;
	}
	f->fd = fd;
	f->next = s->fronts;
	if (s->fronts)
		s->fronts->prev = f;
	s->fronts = f;
	for (int64_t i = 0; i < MAX_FANOUT; i++)
		f->calls[i] = (struct call){.fd = -1, .f = f};
	for (int64_t i = 0; i < s->fanout; i++) {
		struct call *c = &f->calls[i];
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			front_close(s, f);
			return;
		}
		f->inflight++;
		io_uring_prep_connect(sqe_for(s, c, OP_CONNECT), c->fd,
				      (struct sockaddr *)&s->back_addr,
				      sizeof s->back_addr);
	}
}

static void on_accept(struct server *s, struct io_uring_cqe *cqe, enum op op,
		      struct axr_run *r, int *err)
{
	int fd = cqe->res;
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct backend *b;
		if (op == OP_ACCEPT_FRONT) {
			front_open(s, fd);
		} else if ((b = calloc(1, sizeof *b))) {
			b->fd = fd;
			b->next = s->backends;
			if (s->backends)
				s->backends->prev = b;
			s->backends = b;
			back_recv(s, b);
		} else {
			close(fd);
		}
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	s->accepts--;
	if (!s->stopping && (fd >= 0 || fd == -EMFILE || fd == -ENFILE ||
			     fd == -ECONNABORTED || fd == -EINTR)) {
		accept_multi(s, op == OP_ACCEPT_FRONT ? s->front_lfd : s->back_lfd, op);
		return;
	}
	if (s->stopping)
		return;
	/* EINVAL after the stop shut the listener down */
	if (!atomic_load(&r->stopping))
		*err = fd;
	s->stopping = true;
	io_uring_prep_cancel(sqe_for(s, NULL, OP_CANCEL), NULL, IORING_ASYNC_CANCEL_ANY);
}

static void on_front_op(struct server *s, struct io_uring_cqe *cqe, enum op op,
			void *obj)
{
	struct call *c = obj;
	struct front *f = op == OP_FRONT_RECV || op == OP_FRONT_SEND ? obj : c->f;
	int res = cqe->res;
	f->inflight--;
	if (f->closing || s->stopping ||
	    res < 0 || (res == 0 && (op == OP_FRONT_RECV || op == OP_CALL_RECV))) {
		if (f->closing && f->inflight == 0)
			front_free(s, f);
		else
			front_close(s, f);
		return;
	}
	switch (op) {
	case OP_CONNECT: {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (++f->connected == s->fanout)
			front_recv(s, f);
		return;
	}
	case OP_FRONT_RECV:
		f->got += (size_t)res;
		if (f->got < s->size) {
			front_recv(s, f);
			return;
		}
		f->got = 0;
		f->pending = s->fanout;
		for (int64_t i = 0; i < s->fanout; i++) {
			struct call *k = &f->calls[i];
			uint64_t id = ++f->next_id;
			k->out = (struct rpc_msg){id, (uint64_t)i * 7 + id};
			k->out_off = k->in_got = 0;
			call_send(s, k);
			call_recv(s, k);
		}
		return;
	case OP_CALL_SEND:
		c->out_off += (size_t)res;
		if (c->out_off < sizeof c->out)
			call_send(s, c);
		return;
	case OP_CALL_RECV:
		c->in_got += (size_t)res;
		if (c->in_got < sizeof c->in) {
			call_recv(s, c);
			return;
		}
		if (c->in.id != c->out.id || c->in.value != 2 * c->out.value + 1) {
			s->bad_replies++;
			front_close(s, f);
			return;
		}
		if (--f->pending == 0) {
			f->sent = 0;
			front_send(s, f);
		}
		return;
	case OP_FRONT_SEND:
		f->sent += (size_t)res;
		if (f->sent < s->size)
			front_send(s, f);
		else
			front_recv(s, f);
		return;
	default:
		return;
	}
}

static void on_backend_op(struct server *s, struct io_uring_cqe *cqe, enum op op,
			  struct backend *b)
{
	int res = cqe->res;
	b->inflight--;
	if (b->closing || s->stopping || res < 0 || (res == 0 && op == OP_BACK_RECV)) {
		if (b->closing && b->inflight == 0)
			backend_free(s, b);
		else
			backend_close(s, b);
		return;
	}
	if (op == OP_BACK_RECV) {
		b->in_got += (size_t)res;
		if (b->in_got < sizeof b->in) {
			back_recv(s, b);
			return;
		}
		b->in_got = b->out_off = 0;
		b->out = (struct rpc_msg){b->in.id, 2 * b->in.value + 1};
		back_send(s, b);
		return;
	}
	b->out_off += (size_t)res;
	if (b->out_off < sizeof b->out)
		back_send(s, b);
	else
		back_recv(s, b);
}

static int backend_listen(struct server *s)
{
	socklen_t len = sizeof s->back_addr;
	int one = 1;
	s->back_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->back_lfd < 0)
		return -errno;
	s->back_addr = (struct sockaddr_in){.sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(s->back_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s->back_lfd, (struct sockaddr *)&s->back_addr, len) ||
	    listen(s->back_lfd, 4096) ||
	    getsockname(s->back_lfd, (struct sockaddr *)&s->back_addr, &len))
		return -errno;
	return 0;
}

int axr_uring_rpc(struct axr_run *r)
{
	struct server s = {
		.front_lfd = r->listen_fd,
		.back_lfd = -1,
		.fanout = axr_param(r, "fanout"),
		.size = (size_t)axr_param(r, "size"),
	};
	int err = backend_listen(&s);
	if (err || (err = ring_init(&s.ring)) < 0)
		goto close_back;
	accept_multi(&s, s.back_lfd, OP_ACCEPT_BACK);
	accept_multi(&s, s.front_lfd, OP_ACCEPT_FRONT);
	while (s.accepts || s.fronts || s.backends) {
		int e = io_uring_submit_and_wait(&s.ring, 1);
		if (e < 0 && e != -EINTR) {
			err = e;
			break;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&s.ring, head, cqe) {
			enum op op = cqe->user_data & OP_MASK;
			void *obj = (void *)(uintptr_t)(cqe->user_data & ~(uint64_t)OP_MASK);
			n++;
			if (op == OP_ACCEPT_FRONT || op == OP_ACCEPT_BACK)
				on_accept(&s, cqe, op, r, &err);
			else if (op == OP_BACK_RECV || op == OP_BACK_SEND)
				on_backend_op(&s, cqe, op, obj);
			else if (op != OP_CANCEL)
				on_front_op(&s, cqe, op, obj);
		}
		io_uring_cq_advance(&s.ring, n);
	}
	/* connections are left only when the ring itself failed: tearing the
	 * ring down cancels their operations in the kernel */
	io_uring_queue_exit(&s.ring);
	while (s.fronts)
		front_free(&s, s.fronts);
	while (s.backends)
		backend_free(&s, s.backends);
close_back:
	if (s.back_lfd >= 0)
		close(s.back_lfd);
	if (s.bad_replies)
		axr_fail(r, "%llu backend replies were wrong",
			 (unsigned long long)s.bad_replies);
	return err;
}
