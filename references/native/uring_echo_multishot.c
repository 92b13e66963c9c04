/* uring_echo_multishot.c - tcp_echo on liburing the way a server for Linux
 * 6.0 and later is written: a multishot accept, one multishot recv per
 * connection that stays armed across messages, and a ring of provided
 * buffers shared by every connection (the kernel picks one per completion,
 * so memory does not grow with idle connections); each received buffer is
 * sent back and returned to the ring once sent. Sends on one connection go
 * one at a time, in order, from a queue of its received buffers. The label
 * native-io_uring-multishot; native-io_uring keeps one recv and one send
 * SQE per message into the connection's own buffer (uring_echo.c). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "native.h"

#define RING_ENTRIES 4096
#define BGID 0                    /* the one buffer group */
#define POOL_BYTES (4u << 20)     /* the provided buffers, in all */
#define MAX_BUFS 1024u            /* at most this many (a power of two) */
#define NO_BUF 0xffffu

/* What a completion finishes: the low bits of its user_data (the rest is
 * the connection, malloc'd and so aligned to at least 8). */
enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL };
#define OP_MASK 3u

struct conn {
	int fd;
	bool recv_armed;          /* its multishot recv is in flight */
	bool sending;             /* a send is in flight */
	bool starved;             /* its recv ended for want of buffers */
	bool closing;             /* freed when nothing is in flight */
	uint16_t head, tail;      /* queue of received buffers to send */
	uint32_t off;             /* bytes of the head buffer already sent */
	struct conn *next, *prev; /* live connections */
};

struct server {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	char *bufs;               /* nbufs buffers of bufsize bytes */
	unsigned nbufs, bufsize, free_bufs;
	unsigned nstarved;        /* connections waiting for buffers */
	uint16_t *next_bid;       /* per buffer: the next in its queue */
	uint32_t *len;            /* per buffer: the bytes it holds */
	int lfd;
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

/* Give buffer bid back to the kernel. */
static void buf_return(struct server *s, uint16_t bid)
{
	io_uring_buf_ring_add(s->br, s->bufs + (size_t)bid * s->bufsize,
			      s->bufsize, bid, io_uring_buf_ring_mask(s->nbufs), 0);
	io_uring_buf_ring_advance(s->br, 1);
	s->free_bufs++;
}

/* The provided-buffer ring, registered as group BGID, every buffer in it.
 * Returns 0 or -errno. */
static int bufs_init(struct server *s, size_t bufsize)
{
	s->bufsize = (unsigned)bufsize;
	s->nbufs = MAX_BUFS;
	while (s->nbufs > 16 && (size_t)s->nbufs * bufsize > POOL_BYTES)
		s->nbufs /= 2;
	s->br_bytes = s->nbufs * sizeof(struct io_uring_buf);
	void *br = mmap(NULL, s->br_bytes, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED)
		return -errno;
	s->br = br;
	s->bufs = malloc((size_t)s->nbufs * bufsize);
	s->next_bid = calloc(s->nbufs, sizeof *s->next_bid);
	s->len = calloc(s->nbufs, sizeof *s->len);
	if (!s->bufs || !s->next_bid || !s->len)
		return -ENOMEM;
	struct io_uring_buf_reg reg = {
		.ring_addr = (uintptr_t)br, .ring_entries = s->nbufs, .bgid = BGID,
	};
	int err = io_uring_register_buf_ring(&s->ring, &reg, 0);
	if (err)
		return err;
	io_uring_buf_ring_init(s->br);
	for (unsigned i = 0; i < s->nbufs; i++)
		buf_return(s, (uint16_t)i);
	return 0;
}

static void bufs_free(struct server *s)
{
	if (s->br)
		munmap(s->br, s->br_bytes);
	free(s->bufs);
	free(s->next_bid);
	free(s->len);
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

static void submit_recv(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, (uintptr_t)c | OP_RECV);
	c->recv_armed = true;
	if (c->starved)
		s->nstarved--;
	c->starved = false;
}

/* Send the rest of the head buffer of c's queue. */
static void submit_send(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_send(sqe, c->fd, s->bufs + (size_t)c->head * s->bufsize + c->off,
			   s->len[c->head] - c->off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uintptr_t)c | OP_SEND);
	c->sending = true;
}

static void submit_accept(struct server *s)
{
	struct io_uring_sqe *sqe = sqe_get(s);
	io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
	s->accepting = true;
}

/* Free c once nothing of it is in flight, giving its queued buffers back. */
static void conn_reap(struct server *s, struct conn *c)
{
	if (c->recv_armed || c->sending)
		return;
	for (uint16_t b = c->head; b != NO_BUF; b = s->next_bid[b])
		buf_return(s, b);
	if (c->starved)
		s->nstarved--;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	free(c);
}

static void conn_close(struct server *s, struct conn *c)
{
	if (!c->closing) {
		c->closing = true;
		if (c->recv_armed || c->sending) {
			struct io_uring_sqe *sqe = sqe_get(s);
			io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, OP_CANCEL);
		}
	}
	conn_reap(s, c);
}

static void on_accept(struct server *s, struct io_uring_cqe *cqe,
		      struct axr_run *r, int *err)
{
	if (cqe->res >= 0) {
		int one = 1;
		setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = malloc(sizeof *c);
		if (!c) {
			close(cqe->res);
		} else {
			*c = (struct conn){.fd = cqe->res, .head = NO_BUF,
					   .tail = NO_BUF, .next = s->conns};
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
	/* a connection waiting for buffers has nothing to cancel */
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->starved)
			conn_close(s, c);
	}
}

static void on_recv(struct server *s, struct conn *c, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		s->free_bufs--;
		if (cqe->res <= 0 || c->closing || s->stopping) {
			buf_return(s, bid);
		} else {
			s->len[bid] = (uint32_t)cqe->res;
			s->next_bid[bid] = NO_BUF;
			if (c->tail == NO_BUF)
				c->head = bid;
			else
				s->next_bid[c->tail] = bid;
			c->tail = bid;
			if (!c->sending) {
				c->off = 0;
				submit_send(s, c);
			}
		}
	}
	if (c->closing || s->stopping || cqe->res == 0 ||
	    (cqe->res < 0 && cqe->res != -ENOBUFS)) {
		conn_close(s, c);
		return;
	}
	if (!c->recv_armed) {
		/* ended for want of buffers (re-armed once some come back),
		 * or by the kernel's choice */
		if (cqe->res == -ENOBUFS && s->free_bufs == 0) {
			c->starved = true;
			s->nstarved++;
		} else
			submit_recv(s, c);
	}
}

static void on_send(struct server *s, struct conn *c, struct io_uring_cqe *cqe)
{
	c->sending = false;
	if (cqe->res < 0 || c->closing || s->stopping) {
		conn_close(s, c);
		return;
	}
	c->off += (uint32_t)cqe->res;
	if (c->off < s->len[c->head]) {
		submit_send(s, c);
		return;
	}
	uint16_t done = c->head;
	c->head = s->next_bid[done];
	if (c->head == NO_BUF)
		c->tail = NO_BUF;
	buf_return(s, done);
	c->off = 0;
	if (c->head != NO_BUF)
		submit_send(s, c);
}

/* Re-arm the recvs that ran out of buffers, now that some came back. */
static void rearm_starved(struct server *s)
{
	for (struct conn *c = s->conns; c && s->free_bufs; c = c->next)
		if (c->starved && !c->closing)
			submit_recv(s, c);
}

int axr_uring_echo_multishot(struct axr_run *r)
{
	int64_t size = axr_param(r, "size");
	struct server s = {.lfd = r->listen_fd};
	int err = ring_init(&s.ring);
	if (err < 0)
		return err;
	err = bufs_init(&s, size < 4096 ? 4096 : size > 65536 ? 65536 : (size_t)size);
	if (err < 0)
		goto exit_ring;
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
			struct conn *c = (struct conn *)(uintptr_t)(cqe->user_data &
								    ~(uint64_t)OP_MASK);
			n++;
			switch (cqe->user_data & OP_MASK) {
			case OP_ACCEPT:
				on_accept(&s, cqe, r, &err);
				break;
			case OP_RECV:
				on_recv(&s, c, cqe);
				break;
			case OP_SEND:
				on_send(&s, c, cqe);
				break;
			case OP_CANCEL:
				break;
			}
		}
		io_uring_cq_advance(&s.ring, n);
		if (s.nstarved && s.free_bufs)
			rearm_starved(&s);
	}
exit_ring:
	/* connections are left only when the ring itself failed: tearing the
	 * ring down cancels their operations in the kernel */
	io_uring_queue_exit(&s.ring);
	while (s.conns) {
		struct conn *c = s.conns;
		s.conns = c->next;
		close(c->fd);
		free(c);
	}
	bufs_free(&s);
	return err;
}
