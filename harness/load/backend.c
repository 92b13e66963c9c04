/* backend.c - the harness's own rpc_fanout backend, for servers that are
 * not axbench's (external targets): a thread serving the backend protocol
 * of docs/protocols.md (16-byte calls {id u64, value u64}, little endian,
 * answered by {id, 2 * value + 1}) on a loopback port, counting the calls
 * it answered, so that the harness can check that the fan-out happened. */
#include "loadgen.h"
#include "harness.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CALL 16

struct bconn {
	struct bconn *prev, *next; /* every open connection, to free at stop */
	int fd;
	uint8_t in[CALL];       /* a call being received */
	size_t have;
	uint8_t out[64 * CALL]; /* answers not yet written */
	size_t out_len;
};

struct axb_backend {
	int lfd, ep, stop_fd;
	pthread_t th;
	struct bconn *head;     /* backend thread only, then the stopper */
	atomic_ullong calls;
	atomic_ulong conns;
	atomic_ulong errors;
};

static uint64_t get_le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put_le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static bool flush_out(struct bconn *c)
{
	size_t off = 0;
	while (off < c->out_len) {
		ssize_t w = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		return false;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
	return true;
}

/* Read and answer what arrived; false when the connection is over. */
static bool serve_conn(struct axb_backend *b, struct bconn *c)
{
	uint8_t buf[sizeof c->out];
	for (;;) {
		if (c->out_len && !flush_out(c))
			return false;
		/* room for every answer the bytes read can complete, counting
		 * the call already begun */
		size_t slots = (sizeof c->out - c->out_len) / CALL;
		if (slots < 2)
			return true; /* the peer does not read: wait for EPOLLOUT */
		ssize_t r = recv(c->fd, buf, (slots - 1) * CALL, 0);
		if (r == 0)
			return false;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN;
		for (ssize_t i = 0; i < r; i++) {
			c->in[c->have++] = buf[i];
			if (c->have < CALL)
				continue;
			c->have = 0;
			put_le(c->out + c->out_len, get_le(c->in));
			put_le(c->out + c->out_len + 8, 2 * get_le(c->in + 8) + 1);
			c->out_len += CALL;
			atomic_fetch_add_explicit(&b->calls, 1, memory_order_relaxed);
		}
		if (!flush_out(c))
			return false;
	}
}

static void *backend_main(void *arg)
{
	struct axb_backend *b = arg;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(b->ep, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &b->stop_fd)
				return NULL;
			if (p == &b->lfd) {
				for (;;) {
					int fd = accept4(b->lfd, NULL, NULL,
							 SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (fd < 0)
						break;
					struct bconn *c = calloc(1, sizeof *c);
					struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
								  .data.ptr = c };
					int one = 1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					if (!c || epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev)) {
						atomic_fetch_add(&b->errors, 1);
						close(fd);
						free(c);
						continue;
					}
					c->fd = fd;
					c->next = b->head;
					if (b->head)
						b->head->prev = c;
					b->head = c;
					atomic_fetch_add(&b->conns, 1);
				}
				continue;
			}
			struct bconn *c = p;
			if (!serve_conn(b, c)) {
				/* its epoll entry goes with the descriptor */
				if (c->prev)
					c->prev->next = c->next;
				else
					b->head = c->next;
				if (c->next)
					c->next->prev = c->prev;
				close(c->fd);
				free(c);
			}
		}
	}
	return NULL;
}

int axb_backend_start(struct axb_backend **out, int *port)
{
	struct axb_backend *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->lfd = ax_tcp_listen("127.0.0.1", 0, 4096, 0);
	if (b->lfd < 0) {
		int e = b->lfd;
		free(b);
		return e;
	}
	*port = ax_tcp_port(b->lfd);
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	b->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event el = { .events = EPOLLIN | EPOLLET, .data.ptr = &b->lfd };
	struct epoll_event es = { .events = EPOLLIN, .data.ptr = &b->stop_fd };
	if (b->ep < 0 || b->stop_fd < 0 ||
	    epoll_ctl(b->ep, EPOLL_CTL_ADD, b->lfd, &el) ||
	    epoll_ctl(b->ep, EPOLL_CTL_ADD, b->stop_fd, &es) ||
	    pthread_create(&b->th, NULL, backend_main, b)) {
		int e = -errno;
		close(b->lfd);
		if (b->ep >= 0)
			close(b->ep);
		if (b->stop_fd >= 0)
			close(b->stop_fd);
		free(b);
		return e ? e : -EIO;
	}
	*out = b;
	return 0;
}

uint64_t axb_backend_calls(struct axb_backend *b)
{
	return atomic_load(&b->calls);
}

void axb_backend_stop(struct axb_backend *b, uint64_t *calls, unsigned long *conns)
{
	uint64_t one = 1;
	if (write(b->stop_fd, &one, sizeof one) < 0)
		abort();
	pthread_join(b->th, NULL);
	*calls = atomic_load(&b->calls);
	*conns = atomic_load(&b->conns);
	/* connections still open: the server's, closed as it stops */
	for (struct bconn *c = b->head, *nx; c; c = nx) {
		nx = c->next;
		close(c->fd);
		free(c);
	}
	close(b->ep);
	close(b->stop_fd);
	close(b->lfd);
	free(b);
}
