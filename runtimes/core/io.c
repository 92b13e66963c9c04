/*
 * io.c - the I/O calls of ax.h (TCP, files, engine-pool calls): each fills
 * the calling task's embedded operation, hands it to the driver, and parks
 * until the driver completes it exactly once.
 */
#include "core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void ax__yield_now(struct ax_task *t);

/* Operations one task may finish in a row on the fast path before it
 * yields. */
#define AX_FAST_BUDGET 64

static void io_done(struct ax_op *op)
{
	ax__ready(op->owner);
}

static int64_t io_wait(struct ax_task *t, struct ax__sides *b, bool sided);

/* Run the task's prepared op to completion, honouring cancel and deadline
 * (see the wait protocol in task.c). `sided` is constant at each call:
 * READ and ACCEPT take a descriptor's read side, WRITE its write side
 * ([AX-TCP-9]); CONNECT, files and calls take none. Inlined into each
 * call: an op that finishes at once (the readiness fast path) costs a few
 * tests and the driver's try; submitting and waiting are io_wait's. */
static inline __attribute__((always_inline)) int64_t io_run(struct ax_task *t,
							    bool sided)
{
	struct ax_rt *rt = t->rt;
	struct ax_op *op = &t->op;
	op->done = io_done;
	op->owner = t;
	op->res = 0;
	memset(op->drv_u64, 0, sizeof op->drv_u64);
	struct ax__sides *b = NULL;
	if (sided) {
		int (*try_now)(void *, struct ax_op *) = rt->drv->try_now;
		/* the readiness fast path has a budget, so that one busy task
		 * cannot starve the others (cf. cooperative budgets) */
		if (try_now && ++t->fast_streak > AX_FAST_BUDGET) {
			t->fast_streak = 0;
			if (rt->ws) /* stays on this worker, which owns fd */
				ax__ws_yield_here(t);
			else
				ax__yield_now(t);
			if (t->cancel_pending) {
				t->cancel_pending = false;
				return -ECANCELED;
			}
		}
		/* one read and one write per descriptor, for every driver: a
		 * lookup in the busy table, no allocation until an op really
		 * waits */
		b = ax__fdtab_find(&rt->busy, op->fd);
		if (b && *ax__side(b, op))
			return -EBUSY;
		if (try_now && try_now(rt->drv_state, op) == 1)
			return op->res;
	}
	return io_wait(t, b, sided);
}

/* The op would wait: submit it and park until it completes. */
__attribute__((noinline))
static int64_t io_wait(struct ax_task *t, struct ax__sides *b, bool sided)
{
	struct ax_rt *rt = t->rt;
	struct ax_op *op = &t->op;
	int r;
	t->fast_streak = 0;
	if (sided && !b && op->fd >= 0 && !(b = ax__fdtab_get(&rt->busy, op->fd)))
		return -ENOMEM;
	r = rt->drv->submit(rt->drv_state, op);
	if (r < 0)
		return r;
	if (b)
		*ax__side(b, op) = op;
	int64_t dl = ax__deadline_of(t);
	if (dl != INT64_MAX)
		ax__timer_arm(t, dl); /* on failure the op just has no deadline */
	int bits = ax__park(AX_W_OP, NULL);
	rt = t->rt; /* a work-stealing task may resume on another worker */
	ax__timer_disarm(t);
	/* the table may have moved meanwhile, and ax_close emptied the entry
	 * of a closed descriptor, whose number may now be another's */
	b = sided ? ax__fdtab_find(&rt->busy, op->fd) : NULL;
	if (b)
		ax__side_take(b, op);
	if (bits && op->res == -ECANCELED)
		return ax__interrupt_errno(t, bits);
	return op->res;
}

static int io_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (!host)
		host = "127.0.0.1";
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof *in6;
		return 0;
	}
	return -EINVAL;
}

int ax_tcp_listen(const char *host, uint16_t port, int backlog, unsigned flags)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, r;
	if (io_addr(host, port, &ss, &len) < 0)
		return -EINVAL;
	if (backlog <= 0)
		backlog = 1024;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail_close;
	if ((flags & AX_LISTEN_REUSEPORT) &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		goto fail_close;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		goto fail_close;
	if (listen(fd, backlog) < 0)
		goto fail_close;
	return fd;

fail_close:
	r = -errno;
	close(fd);
	return r;
}

int ax_tcp_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int ax__core_accept(int lfd)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	t->op.kind = AX_OP_ACCEPT;
	t->op.fd = lfd;
	return (int)io_run(t, true);
}

int ax__core_connect(const char *host, uint16_t port)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	if (io_addr(host, port, &t->op.addr, &t->op.addrlen) < 0)
		return -EINVAL;
	t->op.kind = AX_OP_CONNECT;
	t->op.fd = -1;
	return (int)io_run(t, false);
}

ssize_t ax__core_read(int fd, void *buf, size_t n)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	t->op.kind = AX_OP_READ;
	t->op.fd = fd;
	t->op.buf = buf;
	t->op.len = n;
	return (ssize_t)io_run(t, true);
}

ssize_t ax__core_write(int fd, const void *buf, size_t n)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	t->op.kind = AX_OP_WRITE;
	t->op.fd = fd;
	t->op.buf = (void *)buf;
	t->op.len = n;
	return (ssize_t)io_run(t, true);
}

int ax_shutdown(int fd, int how)
{
	return shutdown(fd, how) < 0 ? -errno : 0;
}

int ax__core_close(int fd)
{
	struct ax_rt *rt = ax__tls_rt;
	if (fd < 0)
		return -EBADF;
	if (rt) {
		/* the ops pending on fd end with it; its number is free */
		ax__fdtab_clear(&rt->busy, fd);
		return rt->drv->close_fd(rt->drv_state, fd);
	}
	return close(fd) < 0 ? -errno : 0;
}

int ax_tcp_nodelay(int fd, bool on)
{
	int v = on;
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0 ? -errno : 0;
}

struct io_file_call {
	enum ax_op_kind kind;
	int fd;
	void *buf;
	size_t n;
	int64_t off;
};

static intptr_t io_file_blocking(void *arg)
{
	struct io_file_call *c = arg;
	ssize_t r = c->kind == AX_OP_PREAD ? pread(c->fd, c->buf, c->n, c->off)
					   : pwrite(c->fd, c->buf, c->n, c->off);
	return r < 0 ? -errno : r;
}

/* File I/O for engines without their own: the blocking pool does it. */
static ssize_t io_file_pool(struct ax_task *t, enum ax_op_kind kind, int fd,
			    void *buf, size_t n, int64_t off)
{
	struct io_file_call c = {kind, fd, buf, n, off};
	intptr_t res;
	int r = ax__pool_call(t, io_file_blocking, &c, &res);
	return r < 0 ? r : (ssize_t)res;
}

static ssize_t io_file(enum ax_op_kind kind, int fd, void *buf, size_t n,
		       int64_t off)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	if (off < 0)
		return -EINVAL;
	if (!(t->rt->drv->features & AX_FEAT_FILE))
		return io_file_pool(t, kind, fd, buf, n, off);
	t->op.kind = kind;
	t->op.fd = fd;
	t->op.buf = buf;
	t->op.len = n;
	t->op.off = off;
	return (ssize_t)io_run(t, false);
}

ssize_t ax__core_pread(int fd, void *buf, size_t n, int64_t off)
{
	return io_file(AX_OP_PREAD, fd, buf, n, off);
}

ssize_t ax__core_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
	return io_file(AX_OP_PWRITE, fd, (void *)buf, n, off);
}

/* ax_blocking on an engine with its own pool (AX_FEAT_NATIVE_POOL). */
int ax__engine_call(struct ax_task *t, intptr_t (*fn)(void *), void *arg,
		    intptr_t *result);
int ax__engine_call(struct ax_task *t, intptr_t (*fn)(void *), void *arg,
		    intptr_t *result)
{
	t->op.kind = AX_OP_CALL;
	t->op.fd = -1;
	t->op.call_fn = fn;
	t->op.call_arg = arg;
	t->op.call_result = 0;
	int64_t r = io_run(t, false);
	if (t->interrupt && r >= 0)
		return ax__interrupt_errno(t, t->interrupt); /* [AX-POOL-2] */
	if (r < 0)
		return (int)r;
	if (result)
		*result = t->op.call_result;
	return 0;
}
