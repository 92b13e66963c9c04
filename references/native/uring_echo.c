/* uring_echo.c - tcp_echo written straight on liburing: a multishot accept,
 * then per connection a recv SQE into its buffer and a send SQE of what
 * arrived, each completion tagged with the operation it finishes. One ring,
 * SINGLE_ISSUER|DEFER_TASKRUN when the kernel has them (else COOP_TASKRUN,
 * else no flag); a stop cancels everything in flight with one
 * IORING_ASYNC_CANCEL_ANY. */
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

/* What a completion finishes: the low bits of its user_data (the rest is
 * the connection, malloc'd and so aligned to at least 8). */
enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL };
#define OP_MASK 3u

struct conn {
	int fd;
	size_t off, len;          /* bytes of buf still to send: [off, len) */
	struct conn *next, *prev; /* live connections, each with one op */
	char buf[];
};

struct server {
	struct io_uring ring;
	int lfd;
	size_t bufsize;
	struct conn *conns;
	bool accepting, stopping;
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

/* A free SQE, submitting what is queued when the ring is full. */
static struct io_uring_sqe *sqe_get(struct server *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
	if (!sqe) {
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	return sqe;
}

static void conn_close(struct server *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	free(c);
}

static void submit_recv(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_recv(sqe, c->fd, c->buf, s->bufsize, 0);
	io_uring_sqe_set_data64(sqe, (uintptr_t)c | OP_RECV);
}

static void submit_send(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_send(sqe, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uintptr_t)c | OP_SEND);
}

static void submit_accept(struct server *s)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
	s->accepting = true;
}

static void on_accept(struct server *s, struct io_uring_cqe *cqe,
		      struct axr_run *r, int *err)
{
	if (cqe->res >= 0) {
		int one = 1;
		setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = malloc(sizeof *c + s->bufsize);
		if (!c) {
			close(cqe->res);
		} else {
			*c = (struct conn){.fd = cqe->res, .next = s->conns};
			if (s->conns)
				s->conns->prev = c;
			s->conns = c;
			submit_recv(s, c);
		}
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	s->accepting = false;
	if (cqe->res >= 0 || cqe->res == -EMFILE || cqe->res == -ENFILE ||
	    cqe->res == -ECONNABORTED || cqe->res == -EINTR) {
		submit_accept(s);
		return;
	}
	/* EINVAL after the stop shut the listener down */
	if (!atomic_load(&r->stopping))
		*err = cqe->res;
	s->stopping = true;
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data64(sqe, OP_CANCEL);
}

static void on_io(struct server *s, struct io_uring_cqe *cqe)
{
	struct conn *c = (struct conn *)(uintptr_t)(cqe->user_data & ~(uint64_t)OP_MASK);
	if (cqe->res <= 0 || s->stopping) {
		conn_close(s, c);
		return;
	}
	if ((cqe->user_data & OP_MASK) == OP_RECV) {
		c->off = 0;
		c->len = (size_t)cqe->res;
		submit_send(s, c);
		return;
	}
	c->off += (size_t)cqe->res;
	if (c->off < c->len)
		submit_send(s, c);
	else
		submit_recv(s, c);
}

int axr_uring_echo(struct axr_run *r)
{
	int64_t size = axr_param(r, "size");
	struct server s = {
		.lfd = r->listen_fd,
		.bufsize = size < 4096 ? 4096 : size > 65536 ? 65536 : (size_t)size,
	};
	int err = ring_init(&s.ring);
	if (err < 0)
		return err;
	submit_accept(&s);
	while (s.accepting || s.conns) {
		int e = io_uring_submit_and_wait(&s.ring, 1);
		if (e < 0 && e != -EINTR) {
			err = e;
			break;
		}
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&s.ring, head, cqe) {
			n++;
			switch (cqe->user_data & OP_MASK) {
			case OP_ACCEPT:
				on_accept(&s, cqe, r, &err);
				break;
			case OP_RECV:
			case OP_SEND:
				on_io(&s, cqe);
				break;
			case OP_CANCEL:
				break;
			}
		}
		io_uring_cq_advance(&s.ring, n);
	}
	/* connections are left only when the ring itself failed: tearing the
	 * ring down cancels their operations in the kernel */
	io_uring_queue_exit(&s.ring);
	while (s.conns)
		conn_close(&s, s.conns);
	return err;
}
