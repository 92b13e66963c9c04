/* libuv.c - the libuv engine driver: runs ax operations on libuv's own streams, timers, async handle and thread pool. */

/*
 * How ax maps onto libuv (1.44)
 *
 *   sockets     one uv_tcp_t per descriptor, found through the kit's fd table
 *               of pointers. The table holds pointers, not
 *               handles, because a libuv handle must not move once
 *               initialised and uv_close is asynchronous: the descriptor is
 *               closed at once (so its number can be reused by the next
 *               accept) while the handle's memory lives until its close
 *               callback. Reads are uv_read_start with an alloc callback that
 *               hands libuv the operation's own buffer (no copy). Writes:
 *               see "Writes" below.
 *   reading     libuv streams are meant to read continuously; stopping
 *               after each op and starting again costs two epoll_ctl per
 *               read (libuv re-ADDs, gets EEXIST, then MODs). So a stream
 *               whose read completed keeps reading: a task that reads
 *               again before the next blocking poll finds it armed. With
 *               no op pending the alloc callback hands out no buffer, so
 *               libuv reads nothing (UV_ENOBUFS); before a blocking poll,
 *               streams still without a read are stopped (level-triggered
 *               epoll would otherwise wake at once). An error libuv reports
 *               in that window is kept for the next read ([AX-TCP-3]:
 *               after a reset, read(2) would only say EOF).
 *   accept      see "Accept and EMFILE" below.
 *   connect     uv_tcp_init_ex creates the socket, uv_tcp_connect connects.
 *   files       uv_fs_read / uv_fs_write on libuv's thread pool. A read or
 *               write on a descriptor epoll cannot watch (a regular file
 *               or character device, e.g. a redirected stdout) goes the
 *               same way at the current position, as libuv does for files:
 *               handing it to a uv_tcp_t would make libuv abort() when
 *               epoll_ctl refuses it.
 *   AX_OP_CALL  uv_queue_work on libuv's thread pool.
 *   timers      one uv_timer_t per armed ax_timer, from a pool; see "Timers".
 *   wake        uv_async_t.
 *   poll        uv_run(UV_RUN_ONCE or UV_RUN_NOWAIT).
 *
 * Writes
 *   uv_try_write sends from the caller's buffer (no copy) whatever the
 *   socket takes now. When it is full, the only way libuv offers to wait
 *   for room on a uv_tcp_t is a queued uv_write, and a queued uv_write can
 *   never be withdrawn: libuv keeps reading its buffer until it is sent or
 *   the handle is closed. So the driver never queues the caller's buffer:
 *   it queues a copy of the next piece (at most UVD_CHUNK bytes, in a
 *   chunk the driver owns) and, when that is written, goes on with
 *   uv_try_write from the caller's buffer. Only one small copy is made per
 *   time the socket fills up, and a write that fits is never copied. The
 *   op completes (all or error, [AX-TCP-4]) when its last byte is written.
 *   This is what makes cancellation work (below).
 *
 * Accept and EMFILE
 *   libuv 1.44's listening stream (uv_listen) accepts eagerly in
 *   uv__server_io whenever the listener is readable, before anyone asks.
 *   When accept() fails with EMFILE or ENFILE it runs uv__emfile_trick: it
 *   closes a spare descriptor the loop keeps for that purpose, accepts every
 *   pending connection and closes it at once (shedding load), reopens the
 *   spare and, on EAGAIN, returns without calling the connection callback.
 *   So the application never sees EMFILE and the queued connections are
 *   lost, the opposite of [AX-TCP-8] (-EMFILE, connection stays queued, a
 *   later accept succeeds). When the spare could not be reopened (another
 *   thread took the slot) uv__server_io instead calls the connection
 *   callback with UV_EMFILE and loops straight back into accept(): it spins
 *   until the listener is closed or a descriptor is freed.
 *   Hence the default ("accept=poll"): the listener is watched with libuv's
 *   own uv_poll_t, only while an accept operation is pending, and the driver
 *   calls accept4() itself: the first attempt is made at once by try_now
 *   (a queued connection needs no loop iteration), EAGAIN waits for
 *   readability, any other error (EMFILE included) completes the operation
 *   once and stops watching, so nothing spins and the connection stays in
 *   the kernel's queue. The accepted descriptor gets a fresh uv_tcp_t
 *   (uv_tcp_open) that becomes its per-fd state. The native path,
 *   uv_listen + uv_accept into a fresh uv_tcp_t, is kept as an option
 *   ("accept=listen" in engine_flags) for measuring libuv as its users run
 *   it; it inherits libuv's EMFILE behaviour above and re-issues listen()
 *   with SOMAXCONN, since the core's backlog cannot be read back.
 *
 * Timers
 *   libuv timers have millisecond resolution on the loop's cached clock
 *   (loop->time, CLOCK_MONOTONIC or CLOCK_MONOTONIC_COARSE truncated to ms),
 *   and a timer fires once loop->time >= its due time. The deadline (ns on
 *   ax_now()'s clock) is translated to libuv's clock with an offset measured
 *   at init (read so that it can only err late) and rounded UP to a whole
 *   millisecond, and the timeout is given relative to loop->time itself:
 *   since loop->time never runs ahead of the real clock, a timer can never
 *   fire early [AX-TIME-1]. The fire callback still checks ax_now() and
 *   re-arms for the remainder if it ever is early (it would take a clock
 *   that disagrees with CLOCK_MONOTONIC). libuv orders its heap by
 *   (due ms, start order), so equal deadlines fire in arming order; but
 *   different deadlines within one millisecond would fire in arming order
 *   too. So fires are not delivered from the libuv callback: they are
 *   collected during uv_run and delivered after it, sorted by
 *   (deadline, seq) [AX-TIME-2]. Because libuv does not know about that
 *   batch, a fire also calls uv_stop: otherwise a timer already due when
 *   uv_run(UV_RUN_ONCE) starts would fire in its first timer phase and
 *   libuv would then block in epoll_wait with nothing left to wait for.
 *   uv_timer_t handles are pooled: a handle is only freed through
 *   uv_close, which is asynchronous, so they are reused and closed at fini.
 *
 * Cancellation
 *   read: stop reading and complete -ECANCELED at once. accept: stop
 *   watching and complete -ECANCELED at once. connect: uv_close of the
 *   connecting handle, libuv completes the connect request with
 *   UV_ECANCELED. file and call: uv_cancel, which succeeds only while the
 *   request has not started; a running one is waited for and completes
 *   with its real result. write: libuv cannot withdraw a queued uv_write.
 *   Waiting for it could hang forever on a peer that never reads (and a
 *   deadline on such a write must end); uv_close would end it but also
 *   the connection, and would close the descriptor behind its owner's
 *   back. Since the queued piece is the driver's own copy (see "Writes"),
 *   the op completes -ECANCELED at once and the piece is orphaned: libuv
 *   sends it when the peer makes room and the driver frees it then. The
 *   caller's buffer is never touched again [AX-CANCEL-2], the peer gets a
 *   prefix of the buffer (ax_write's "unknown prefix"), and the stream
 *   stays usable: libuv's write queue is FIFO, so a later write follows
 *   the orphan. No cancellation here is the engine's own (the stream ones
 *   are the driver stopping a watcher or dropping a piece), so
 *   AX_FEAT_NATIVE_CANCEL is not advertised.
 *
 * Close
 *   close_fd completes a pending read, write or accept with -EBADF at
 *   once (a write's queued piece is orphaned; uv_close drops it);
 *   thread-pool requests on the fd that have not started are cancelled. uv_close closes a uv_tcp_t's
 *   descriptor itself (errors are not reported: close_fd returns 0) except
 *   0-2, which libuv never closes; those, listeners watched through
 *   uv_poll_t and unpollable fds are closed by the driver. fini closes
 *   every handle still open (so sockets the runtime still wraps are
 *   closed; listeners, fds 0-2 and unpollable fds are left to their
 *   owner), runs the loop until every close callback ran and
 *   uv_loop_close succeeds.
 *
 * Process-wide libuv state (not per runtime): the thread pool (size from
 * UV_THREADPOOL_SIZE, default 4; opts.pool_threads cannot change it) and a
 * signal-lock pipe created by the first uv_loop_init live until exit.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "ax_driver.h"
#include "kit.h"

/* How AX_OP_ACCEPT is carried out (see "Accept and EMFILE"). */
enum uvd_accept_mode {
	UVD_ACCEPT_POLL,   /* uv_poll_t + accept4: conforms to [AX-TCP-8] */
	UVD_ACCEPT_LISTEN, /* uv_listen + uv_accept: libuv's native path */
};

/* What the per-fd handle is. */
enum uvd_kind {
	UVD_STREAM,  /* uv_tcp_t carrying reads and writes (or connecting) */
	UVD_LPOLL,   /* listener watched with uv_poll_t (accept=poll) */
	UVD_LLISTEN, /* listener as a listening uv_tcp_t (accept=listen) */
	UVD_FILE,    /* not pollable: reads/writes via uv_fs_*, no handle */
};

/* Per-descriptor state. Freed by the handle's close callback. */
struct uvd_fd {
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_poll_t poll;
	} u;
	uv_connect_t creq;      /* the connect of a socket the driver made */
	struct uvd_chunk *wchunk; /* the pending write's queued piece */
	struct ax_op *rop;      /* pending read */
	struct ax_op *wop;      /* pending write */
	struct ax_op *aop;      /* pending accept (listeners) */
	struct ax_op *cop;      /* pending connect */
	int fd;
	enum uvd_kind kind;
	bool ccancel;           /* connect cancelled through uv_close */
	bool conn_ready;        /* accept=listen: libuv holds an accepted fd */
	bool reading;           /* uv_read_start in effect */
	bool idle_listed;       /* on the idle-readers list */
	int rerr;               /* read error seen with no read pending */
	int lerr;               /* accept=listen: uv_listen failed with this */
	struct uvd_fd *idle_prev; /* idle readers: reading, no read pending */
	struct uvd_fd *idle_next;
};

/* A piece of a write, copied out of the caller's buffer, queued with
 * uv_write while the socket is full (see "Writes"). Freed by its write
 * callback. */
struct uvd_chunk {
	uv_write_t w;
	struct ax_op *op;       /* NULL once the op was cancelled: orphan */
	char data[];
};

/* The largest piece copied (see "Writes"): small, as every blocked writer
 * holds one, yet enough to send a sizeable segment when room appears. */
#define UVD_CHUNK 4096

/* A pooled timer handle. */
struct uvd_timer {
	uv_timer_t h;
	struct uvd_timer *next_free;
	struct uvd_timer *next_all;
};

/* A thread-pool request (file I/O or AX_OP_CALL), pooled. */
struct uvd_req {
	union {
		uv_req_t req;
		uv_fs_t fs;
		uv_work_t work;
	} u;
	struct ax_op *op;
	struct uvd_req *next_free;
};

/* The engine state. */
struct uvd {
	struct ax__kit kit;       /* first: counters and engine_info */
	uv_loop_t loop;
	uv_async_t async;
	enum uvd_accept_mode accept_mode;
	bool woken;               /* the async handle fired during this poll */

	struct ax__fdtab fds;     /* struct uvd_fd * by descriptor */
	struct uvd_fd *idle;      /* streams left reading after their read */

	struct uvd_timer *timer_free;
	struct uvd_timer *timer_all;
	size_t narmed;            /* armed timers: in libuv or in due */
	struct ax__tbatch due;    /* fired during uv_run, delivered after it */
	int64_t clock_offset;     /* libuv clock (uv_hrtime) minus ax_now() */

	struct uvd_req *req_free;
	struct ax__oplist fsops;  /* in-flight uv_fs requests */

	struct ax__defq dq;       /* results known at submit, delivered by poll */

	int delivered;            /* completions and fires in this poll */
};

/* The structure embedding member `m` at ptr (libuv callbacks get the
 * handle or request; the driver's state around it is found by offset, so
 * the handles' `data` fields are not relied on). */
#define uvd_container(ptr, type, m) \
	((type *)(void *)((char *)(ptr) - offsetof(type, m)))

/* Op scratch: drv_ptr[0] is the op's uvd_fd or uvd_req; drv_u64[1] the
 * flags below; drv_u64[AX__OP_SENT] bytes of a write already sent. The core
 * zeroes drv_u64 before every op. */
#define UVD_OP_TRIED 2u     /* try_now met EAGAIN: submit need not retry */
#define UVD_OP_FS 4u        /* a READ/WRITE running as a uvd_req (UVD_FILE) */
#define UVD_OP_CANCEL 8u    /* cancel asked: do not resubmit a WRITE's rest */

#define UVD_NS_PER_MS 1000000

/* ------------------------------------------------------------------ */
/* Completions                                                         */
/* ------------------------------------------------------------------ */

/* Complete op with res and count it. */
static void uvd_complete(struct uvd *st, struct ax_op *op, int64_t res)
{
	st->kit.events++;
	st->delivered++;
	ax_op_complete(op, res);
}

/* ------------------------------------------------------------------ */
/* Per-fd state                                                        */
/* ------------------------------------------------------------------ */

/* Close callback of every per-fd handle: the memory can go now. */
static void uvd_fd_closed(uv_handle_t *h)
{
	free(uvd_container(h, struct uvd_fd, u.h));
}

/* The state of fd, or NULL. */
static struct uvd_fd *uvd_fd_find(const struct uvd *st, int fd)
{
	struct uvd_fd **fp = ax__fdtab_find(&st->fds, fd);
	return fp ? *fp : NULL;
}

/* Enter f as the state of descriptor fd. Returns 0, or -EBADF / -ENOMEM
 * (f is then not entered). */
static int uvd_fd_enter(struct uvd *st, struct uvd_fd *f, int fd)
{
	struct uvd_fd **fp = ax__fdtab_get(&st->fds, fd);
	if (!fp)
		return fd < 0 ? -EBADF : -ENOMEM;
	f->fd = fd;
	*fp = f;
	return 0;
}

/* The one place per-fd state is made: a zeroed state of `kind`, entered
 * as fd's when fd >= 0 (else the handle will tell its descriptor, see
 * uvd_fd_enter). Returns 0 and stores it in *out, or -errno. */
static int uvd_fd_new(struct uvd *st, int fd, enum uvd_kind kind,
		      struct uvd_fd **out)
{
	struct uvd_fd *f = calloc(1, sizeof *f);
	if (!f)
		return -ENOMEM;
	f->fd = -1;
	f->kind = kind;
	if (fd >= 0 && uvd_fd_enter(st, f, fd) < 0) {
		free(f);
		return -ENOMEM;
	}
	*out = f;
	return 0;
}

/* Forget f in the per-fd array (its descriptor is being closed). */
static void uvd_fd_detach(struct uvd *st, struct uvd_fd *f)
{
	if (uvd_fd_find(st, f->fd) == f)
		ax__fdtab_clear(&st->fds, f->fd);
}

/* Undo uvd_fd_new: forget f and free it, through uv_close when its handle
 * was initialised (which closes the descriptor only if it was attached). */
static int uvd_fd_undo(struct uvd *st, struct uvd_fd *f, bool handle, int err)
{
	uvd_fd_detach(st, f);
	if (handle)
		uv_close(&f->u.h, uvd_fd_closed);
	else
		free(f);
	return err;
}

/* Wrap the open stream socket fd in a fresh uv_tcp_t and record it as fd's
 * state. On failure the descriptor is left open and untouched (libuv
 * attaches it last). Returns 0 and stores the state in *out, or -errno. */
static int uvd_fd_wrap(struct uvd *st, int fd, struct uvd_fd **out)
{
	struct uvd_fd *f;
	int err = uvd_fd_new(st, fd, UVD_STREAM, &f);
	if (err)
		return err;
	err = uv_tcp_init(&st->loop, &f->u.tcp);
	if (err)
		goto drop_state;
	err = uv_tcp_open(&f->u.tcp, fd);
	if (err)
		goto close_handle;
	*out = f;
	return 0;

close_handle:
	return uvd_fd_undo(st, f, true, err);
drop_state:
	return uvd_fd_undo(st, f, false, err);
}

/* The state of fd for reads and writes (UVD_STREAM or UVD_FILE), created
 * on first use. Returns it, or NULL with -errno in *err. */
static struct uvd_fd *uvd_fd_stream(struct uvd *st, int fd, int *err)
{
	struct uvd_fd *f = uvd_fd_find(st, fd);

	if (f) {
		if (f->kind == UVD_LPOLL || f->kind == UVD_LLISTEN) {
			*err = -ENOTCONN; /* read/write on a listener */
			return NULL;
		}
		return f;
	}
	/* A descriptor the driver did not create: sockets, pipes and ttys
	 * get a uv_tcp_t; what epoll cannot watch is served by uv_fs_*. */
	if (uv_guess_handle(fd) == UV_FILE)
		*err = uvd_fd_new(st, fd, UVD_FILE, &f);
	else
		*err = uvd_fd_wrap(st, fd, &f);
	return *err ? NULL : f;
}

static int uvd_submit_fs(struct uvd *st, struct ax_op *op, int64_t off);
static int uvd_try_write(struct uvd *st, struct ax_op *op);
static int uvd_try_accept(struct uvd *st, struct ax_op *op);

/* ------------------------------------------------------------------ */
/* Read and write                                                      */
/* ------------------------------------------------------------------ */

/* Put f on the idle-readers list (reading, no read pending). */
static void uvd_idle_add(struct uvd *st, struct uvd_fd *f)
{
	if (f->idle_listed)
		return;
	f->idle_listed = true;
	f->idle_prev = NULL;
	f->idle_next = st->idle;
	if (st->idle)
		st->idle->idle_prev = f;
	st->idle = f;
}

/* Take f off the idle-readers list. */
static void uvd_idle_del(struct uvd *st, struct uvd_fd *f)
{
	if (!f->idle_listed)
		return;
	f->idle_listed = false;
	if (f->idle_prev)
		f->idle_prev->idle_next = f->idle_next;
	else
		st->idle = f->idle_next;
	if (f->idle_next)
		f->idle_next->idle_prev = f->idle_prev;
	f->idle_prev = f->idle_next = NULL;
}

/* Stop reading on f. */
static void uvd_read_off(struct uvd *st, struct uvd_fd *f)
{
	uvd_idle_del(st, f);
	if (f->reading) {
		f->reading = false;
		uv_read_stop(&f->u.s);
	}
}

/* Before blocking: stop the streams that were left reading and got no new
 * read since (see "reading" above). */
static void uvd_idle_stop(struct uvd *st)
{
	struct uvd_fd *f;

	while ((f = st->idle) != NULL) {
		uvd_idle_del(st, f);
		if (!f->rop && f->reading) {
			f->reading = false;
			uv_read_stop(&f->u.s);
		}
	}
}

/* Hand libuv the pending read's own buffer, or none (libuv then reads
 * nothing and reports UV_ENOBUFS). */
static void uvd_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct uvd_fd *f = uvd_container(h, struct uvd_fd, u.h);

	(void)hint;
	if (f->rop) {
		buf->base = f->rop->buf;
		buf->len = f->rop->len;
	} else {
		buf->base = NULL;
		buf->len = 0;
	}
}

/* Data, EOF or an error on a stream: complete the pending read. */
static void uvd_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct uvd_fd *f = uvd_container(s, struct uvd_fd, u.s);
	struct uvd *st = s->loop->data;
	struct ax_op *op = f->rop;

	(void)buf;
	if (nread == 0)
		return; /* EAGAIN: libuv keeps watching */
	if (nread < 0 && nread != UV_ENOBUFS) {
		/* EOF or an error: libuv has stopped reading. */
		f->reading = false;
		uvd_idle_del(st, f);
	}
	if (!op) {
		/* Nobody reads now. UV_ENOBUFS: libuv read nothing. EOF will
		 * be read again; an error might not be (after a reset read(2)
		 * says EOF), so the next read reports it. */
		if (nread < 0 && nread != UV_ENOBUFS && nread != UV_EOF)
			f->rerr = (int)nread;
		return;
	}
	f->rop = NULL;
	if (f->reading)
		uvd_idle_add(st, f); /* stays armed for the task's next read */
	uvd_complete(st, op, nread == UV_EOF ? 0 : (int64_t)nread);
}

/* READ: uv_read_start into the op's own buffer (see "reading"); an
 * unpollable fd goes to the pool. */
static int uvd_submit_read(struct uvd *st, struct ax_op *op)
{
	struct uvd_fd *f;
	int err;

	f = uvd_fd_stream(st, op->fd, &err);
	if (!f)
		return err;
	if (f->kind == UVD_FILE)
		return uvd_submit_fs(st, op, -1);
	if (f->rerr) {
		ax__defer(&st->dq, op, f->rerr); /* seen while nobody was reading */
		f->rerr = 0;
		return 0;
	}
	if (op->len == 0) {
		ax__defer(&st->dq, op, 0); /* as read(2): nothing to wait for */
		return 0;
	}
	op->drv_ptr[0] = f;
	f->rop = op;
	if (!f->reading) {
		err = uv_read_start(&f->u.s, uvd_alloc_cb, uvd_read_cb);
		if (err) {
			f->rop = NULL;
			return err;
		}
		f->reading = true;
	}
	return 0;
}

/* Send what the socket takes now from op's buffer with uv_try_write,
 * recording progress in drv_u64[AX__OP_SENT]. Returns 1 when all is sent, 0 when the
 * socket is full (or libuv still has queued data), or -errno. */
static int uvd_send_now(struct uvd_fd *f, struct ax_op *op)
{
	uv_buf_t b;
	int n;

	while (op->drv_u64[AX__OP_SENT] < op->len) {
		b.base = (char *)op->buf + op->drv_u64[AX__OP_SENT];
		b.len = op->len - op->drv_u64[AX__OP_SENT];
		if (b.len > INT_MAX)
			b.len = INT_MAX; /* uv_try_write returns an int */
		n = uv_try_write(&f->u.s, &b, 1);
		if (n == UV_EAGAIN)
			return 0;
		if (n < 0)
			return n;
		op->drv_u64[AX__OP_SENT] += (uint64_t)n;
		if ((size_t)n < b.len && op->drv_u64[AX__OP_SENT] < op->len)
			return 0; /* a short write: the send buffer is full */
	}
	return 1;
}

static void uvd_chunk_cb(uv_write_t *w, int status);

/* Move f's pending write op on (see "Writes"): send what fits, then queue
 * a copy of the next piece. Returns 0 when a piece is queued (the chunk
 * callback continues), or 1 with the op's result in *res. */
static int uvd_write_step(struct uvd_fd *f, struct ax_op *op, bool try_first,
			  int64_t *res)
{
	struct uvd_chunk *c;
	size_t len;
	uv_buf_t b;
	int err;

	if (try_first) {
		err = uvd_send_now(f, op);
		if (err != 0) {
			*res = err < 0 ? err : (int64_t)op->len;
			return 1;
		}
	}
	len = op->len - op->drv_u64[AX__OP_SENT];
	if (len > UVD_CHUNK)
		len = UVD_CHUNK;
	c = malloc(sizeof *c + len);
	if (!c) {
		*res = -ENOMEM;
		return 1;
	}
	memcpy(c->data, (char *)op->buf + op->drv_u64[AX__OP_SENT], len);
	c->op = op;
	b.base = c->data;
	b.len = len;
	err = uv_write(&c->w, &f->u.s, &b, 1, uvd_chunk_cb);
	if (err) {
		free(c);
		*res = err;
		return 1;
	}
	op->drv_u64[AX__OP_SENT] += len;
	f->wchunk = c;
	return 0;
}

/* A queued piece was written, failed, or was dropped by uv_close. */
static void uvd_chunk_cb(uv_write_t *w, int status)
{
	struct uvd_chunk *c = uvd_container(w, struct uvd_chunk, w);
	struct uvd_fd *f = uvd_container(w->handle, struct uvd_fd, u.s);
	struct uvd *st = w->handle->loop->data;
	struct ax_op *op = c->op;
	int64_t res;

	free(c);
	if (!op)
		return; /* the orphan of a cancelled or closed write */
	f->wchunk = NULL;
	if (status < 0)
		res = status;
	else if (op->drv_u64[AX__OP_SENT] >= op->len)
		res = (int64_t)op->len;
	else if (uvd_write_step(f, op, true, &res) == 0)
		return; /* the next piece is queued */
	f->wop = NULL;
	uvd_complete(st, op, res);
}

/* Finish f's pending write at once with res, orphaning its queued piece. */
static void uvd_write_drop(struct uvd *st, struct uvd_fd *f, int64_t res)
{
	struct ax_op *op = f->wop;

	if (f->wchunk) {
		f->wchunk->op = NULL;
		f->wchunk = NULL;
	}
	f->wop = NULL;
	uvd_complete(st, op, res);
}

/* WRITE: send what the socket takes (unless try_now just did), then queue
 * a copied piece while it is full (see "Writes"). */
static int uvd_submit_write(struct uvd *st, struct ax_op *op)
{
	struct uvd_fd *f;
	int64_t res;

	if (!(op->drv_u64[1] & UVD_OP_TRIED) && uvd_try_write(st, op)) {
		ax__defer(&st->dq, op, op->res);
		return 0;
	}
	f = uvd_fd_find(st, op->fd);
	if (f->kind == UVD_FILE)
		return uvd_submit_fs(st, op, -1);
	/* The socket is full: continue after what was sent. */
	if (uvd_write_step(f, op, false, &res)) {
		ax__defer(&st->dq, op, res);
		return 0;
	}
	op->drv_ptr[0] = f;
	f->wop = op;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Accept                                                              */
/* ------------------------------------------------------------------ */

/* accept=poll: take one connection from op's listener and wrap it.
 * Returns the new descriptor, -EAGAIN when none is queued, or -errno
 * (-EMFILE leaves the connection queued: [AX-TCP-8]). */
static int64_t uvd_accept_now(struct uvd *st, struct ax_op *op)
{
	struct uvd_fd *nf;
	int err;

	if (!ax__nb_accept(op))
		return -EAGAIN;
	if (op->res < 0)
		return op->res;
	err = uvd_fd_wrap(st, (int)op->res, &nf);
	if (err) {
		close((int)op->res);
		return err;
	}
	return op->res;
}

/* accept=poll: the listener is readable (or failed). */
static void uvd_lpoll_cb(uv_poll_t *p, int status, int events)
{
	struct uvd_fd *f = uvd_container(p, struct uvd_fd, u.poll);
	struct uvd *st = p->loop->data;
	struct ax_op *op = f->aop;
	int64_t res;

	(void)events;
	if (!op) {
		uv_poll_stop(p);
		return;
	}
	res = status < 0 ? status : uvd_accept_now(st, op);
	if (res == -EAGAIN)
		return; /* another taker, or a spurious wake: keep waiting */
	f->aop = NULL;
	uv_poll_stop(p);
	uvd_complete(st, op, res);
}

static void uvd_connection_cb(uv_stream_t *server, int status);

/* accept=listen: move the connection libuv accepted into a fresh uv_tcp_t
 * that becomes the new descriptor's state. Returns the fd or -errno. */
static int64_t uvd_listen_take(struct uvd *st, struct uvd_fd *lf)
{
	struct uvd_fd *nf;
	uv_os_fd_t fd;
	int err;

	/* on failure here libuv keeps the connection for the next try */
	err = uvd_fd_new(st, -1, UVD_STREAM, &nf);
	if (err)
		return err;
	err = uv_tcp_init(&st->loop, &nf->u.tcp);
	if (err)
		goto drop_state;
	lf->conn_ready = false;
	err = uv_accept(&lf->u.s, &nf->u.s);
	if (err) {
		/* libuv closed the accepted fd and, in 1.44, does not resume
		 * watching the listener after a failed uv_accept: listening
		 * again restarts it. */
		uv_listen(&lf->u.s, SOMAXCONN, uvd_connection_cb);
		goto close_handle;
	}
	err = uv_fileno(&nf->u.h, &fd);
	if (!err)
		err = uvd_fd_enter(st, nf, fd);
	if (err)
		goto close_handle;
	return fd;

close_handle: /* closes the accepted fd, if any */
	return uvd_fd_undo(st, nf, true, err);
drop_state:
	return uvd_fd_undo(st, nf, false, err);
}

/* accept=listen: libuv accepted a connection (status 0) or failed. */
static void uvd_connection_cb(uv_stream_t *server, int status)
{
	struct uvd_fd *f = uvd_container(server, struct uvd_fd, u.s);
	struct uvd *st = server->loop->data;
	struct ax_op *op = f->aop;

	if (status == 0 && !op) {
		f->conn_ready = true; /* libuv holds it and stops watching */
		return;
	}
	if (!op)
		return; /* an error nobody waits for (see the header comment) */
	f->aop = NULL;
	uvd_complete(st, op, status < 0 ? status : uvd_listen_take(st, f));
}

/* Create the state of listener fd for the configured accept mode. */
static int uvd_listener_open(struct uvd *st, int fd, struct uvd_fd **out)
{
	bool poll = st->accept_mode == UVD_ACCEPT_POLL;
	struct uvd_fd *f;
	int err = uvd_fd_new(st, fd, poll ? UVD_LPOLL : UVD_LLISTEN, &f);

	if (err)
		return err;
	if (poll) {
		err = uv_poll_init(&st->loop, &f->u.poll, fd);
		if (err) /* libuv initialises the handle last */
			goto drop_state;
	} else {
		err = uv_tcp_init(&st->loop, &f->u.tcp);
		if (err)
			goto drop_state;
		err = uv_tcp_open(&f->u.tcp, fd);
		if (err)
			goto close_handle;
		/* From here the handle owns fd (uv_close would close it), so a
		 * failing uv_listen is kept as the listener's state: every
		 * accept reports it, and close_fd closes fd as asked. */
		f->lerr = uv_listen(&f->u.s, SOMAXCONN, uvd_connection_cb);
	}
	*out = f;
	return 0;

close_handle: /* fd not attached: stays open */
	return uvd_fd_undo(st, f, true, err);
drop_state:
	return uvd_fd_undo(st, f, false, err);
}

/* ACCEPT: take a connection libuv or the kernel holds (unless try_now just
 * found none), else wait for one. */
static int uvd_submit_accept(struct uvd *st, struct ax_op *op)
{
	struct uvd_fd *f;
	int err;

	if (!(op->drv_u64[1] & UVD_OP_TRIED) && uvd_try_accept(st, op)) {
		ax__defer(&st->dq, op, op->res);
		return 0;
	}
	f = uvd_fd_find(st, op->fd);
	if (f->kind == UVD_STREAM || f->kind == UVD_FILE)
		return -EINVAL; /* not a listener */
	if (f->kind == UVD_LLISTEN && f->lerr)
		return f->lerr;
	op->drv_ptr[0] = f;
	f->aop = op;
	if (f->kind == UVD_LLISTEN)
		return 0; /* uvd_connection_cb completes it */
	err = uv_poll_start(&f->u.poll, UV_READABLE, uvd_lpoll_cb);
	if (err)
		f->aop = NULL;
	return err;
}

/* ------------------------------------------------------------------ */
/* Connect                                                             */
/* ------------------------------------------------------------------ */

/* The connection is established, failed, or was cancelled. */
static void uvd_connect_cb(uv_connect_t *req, int status)
{
	struct uvd_fd *f = uvd_container(req, struct uvd_fd, creq);
	struct uvd *st = req->handle->loop->data;
	struct ax_op *op = f->cop;

	f->cop = NULL;
	if (status == 0) {
		uvd_complete(st, op, f->fd);
		return;
	}
	if (!uv_is_closing(&f->u.h)) {
		uvd_fd_detach(st, f);
		uv_close(&f->u.h, uvd_fd_closed); /* closes the socket */
	}
	uvd_complete(st, op, f->ccancel ? -ECANCELED : status);
}

/* CONNECT: uv_tcp_init_ex makes the socket, uv_tcp_connect connects it. */
static int uvd_submit_connect(struct uvd *st, struct ax_op *op)
{
	int family = op->addr.ss_family;
	struct uvd_fd *f;
	uv_os_fd_t fd;
	int err;

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	err = uvd_fd_new(st, -1, UVD_STREAM, &f);
	if (err)
		return err;
	/* Creates the socket (non-blocking, close-on-exec); on failure libuv
	 * unlinks the handle again, so plain free is right. */
	err = uv_tcp_init_ex(&st->loop, &f->u.tcp, (unsigned)family);
	if (err)
		goto drop_state;
	err = uv_fileno(&f->u.h, &fd);
	if (!err)
		err = uvd_fd_enter(st, f, fd);
	if (!err)
		err = uv_tcp_connect(&f->creq, &f->u.tcp,
				     (const struct sockaddr *)&op->addr,
				     uvd_connect_cb);
	if (err)
		goto close_handle;
	f->cop = op;
	op->drv_ptr[0] = f;
	return 0;

close_handle: /* closes the new socket too */
	return uvd_fd_undo(st, f, true, err);
drop_state:
	return uvd_fd_undo(st, f, false, err);
}

/* ------------------------------------------------------------------ */
/* Thread pool: files and AX_OP_CALL                                   */
/* ------------------------------------------------------------------ */

/* A pool request from the free list, or a new one. */
static struct uvd_req *uvd_req_get(struct uvd *st)
{
	struct uvd_req *r = st->req_free;

	if (r) {
		st->req_free = r->next_free;
		return r;
	}
	return malloc(sizeof *r);
}

/* Back to the free list (freed at fini). */
static void uvd_req_put(struct uvd *st, struct uvd_req *r)
{
	r->next_free = st->req_free;
	st->req_free = r;
}

static void uvd_fs_cb(uv_fs_t *fs);

/* Start r's file request at off (-1: the current position). A WRITE (all
 * or error) continues after the bytes already written (drv_u64[AX__OP_SENT]). */
static int uvd_fs_start(struct uvd *st, struct uvd_req *r, int64_t off)
{
	struct ax_op *op = r->op;
	size_t done = op->kind == AX_OP_WRITE ? op->drv_u64[AX__OP_SENT] : 0;
	uv_buf_t b;

	b.base = (char *)op->buf + done;
	b.len = op->len - done;
	if (op->kind == AX_OP_PREAD || op->kind == AX_OP_READ)
		return uv_fs_read(&st->loop, &r->u.fs, op->fd, &b, 1, off,
				  uvd_fs_cb);
	return uv_fs_write(&st->loop, &r->u.fs, op->fd, &b, 1, off, uvd_fs_cb);
}

/* A file request finished, failed, or was cancelled before it ran. */
static void uvd_fs_cb(uv_fs_t *fs)
{
	struct uvd_req *r = uvd_container(fs, struct uvd_req, u.fs);
	struct uvd *st = fs->loop->data;
	struct ax_op *op = r->op;
	int64_t res = fs->result;
	int err;

	uv_fs_req_cleanup(fs);
	if (op->kind == AX_OP_WRITE && res >= 0) {
		/* AX_OP_WRITE on an unpollable fd: all or error. */
		op->drv_u64[AX__OP_SENT] += (uint64_t)res;
		if (op->drv_u64[AX__OP_SENT] >= op->len) {
			res = (int64_t)op->len;
		} else if (res == 0) {
			res = -EIO; /* no progress: do not loop */
		} else if (op->drv_u64[1] & UVD_OP_CANCEL) {
			res = -ECANCELED;
		} else {
			err = uvd_fs_start(st, r, -1);
			if (err == 0)
				return;
			res = err;
		}
	}
	ax__oplist_del(&st->fsops, op);
	uvd_req_put(st, r);
	uvd_complete(st, op, res);
}

/* Run op (PREAD/PWRITE, or READ/WRITE on a UVD_FILE fd) on the pool. */
static int uvd_submit_fs(struct uvd *st, struct ax_op *op, int64_t off)
{
	struct uvd_req *r;
	int err;

	if (op->kind == AX_OP_WRITE && op->drv_u64[AX__OP_SENT] >= op->len) {
		ax__defer(&st->dq, op, (int64_t)op->len); /* nothing to write */
		return 0;
	}
	r = uvd_req_get(st);
	if (!r)
		return -ENOMEM;
	r->op = op;
	err = uvd_fs_start(st, r, off);
	if (err) {
		uvd_req_put(st, r);
		return err;
	}
	op->drv_ptr[0] = r;
	op->drv_u64[1] |= UVD_OP_FS;
	ax__oplist_add(&st->fsops, op); /* for close_fd */
	return 0;
}

/* PREAD / PWRITE at their offset on libuv's pool. */
static int uvd_submit_file(struct uvd *st, struct ax_op *op)
{
	if (op->off < 0)
		return -EINVAL; /* libuv would take -1 as "current position" */
	return uvd_submit_fs(st, op, op->off);
}

/* Runs on a libuv pool thread. The op is not touched by the runtime thread
 * until the after-work callback, which libuv orders after this. */
static void uvd_work_cb(uv_work_t *w)
{
	struct uvd_req *r = uvd_container(w, struct uvd_req, u.work);

	r->op->call_result = r->op->call_fn(r->op->call_arg);
}

/* Back on the loop thread: status 0, or UV_ECANCELED when uv_cancel
 * dropped the call before it started. */
static void uvd_after_work_cb(uv_work_t *w, int status)
{
	struct uvd_req *r = uvd_container(w, struct uvd_req, u.work);
	struct uvd *st = w->loop->data;
	struct ax_op *op = r->op;

	uvd_req_put(st, r);
	uvd_complete(st, op, status);
}

/* AX_OP_CALL: uv_queue_work on libuv's pool. */
static int uvd_submit_call(struct uvd *st, struct ax_op *op)
{
	struct uvd_req *r;
	int err;

	if (!op->call_fn)
		return -EINVAL;
	r = uvd_req_get(st);
	if (!r)
		return -ENOMEM;
	r->op = op;
	err = uv_queue_work(&st->loop, &r->u.work, uvd_work_cb,
			    uvd_after_work_cb);
	if (err) {
		uvd_req_put(st, r);
		return err;
	}
	op->drv_ptr[0] = r;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The fast path                                                       */
/* ------------------------------------------------------------------ */

/* Write what the socket takes now (uv_try_write, libuv's own non-queuing
 * write), recording progress for submit. */
static int uvd_try_write(struct uvd *st, struct ax_op *op)
{
	struct uvd_fd *f;
	int err;

	f = uvd_fd_stream(st, op->fd, &err);
	if (!f) {
		op->res = err;
		return 1;
	}
	if (f->kind == UVD_FILE)
		return 0; /* submit goes to the pool */
	err = uvd_send_now(f, op);
	if (err == 0) {
		op->drv_u64[1] |= UVD_OP_TRIED;
		return 0;
	}
	op->res = err < 0 ? err : (int64_t)op->len;
	return 1;
}

/* Accept a connection that is already queued. */
static int uvd_try_accept(struct uvd *st, struct ax_op *op)
{
	struct uvd_fd *f = uvd_fd_find(st, op->fd);
	int64_t res;
	int err;

	if (!f) {
		err = uvd_listener_open(st, op->fd, &f);
		if (err) {
			op->res = err;
			return 1;
		}
	}
	if (f->kind == UVD_STREAM || f->kind == UVD_FILE)
		return 0; /* submit reports -EINVAL */
	if (f->kind == UVD_LLISTEN) {
		if (f->lerr || !f->conn_ready)
			return 0;
		op->res = uvd_listen_take(st, f);
		return 1;
	}
	res = uvd_accept_now(st, op);
	if (res == -EAGAIN) {
		op->drv_u64[1] |= UVD_OP_TRIED;
		return 0;
	}
	op->res = res;
	return 1;
}

/* Reads have no libuv equivalent of uv_try_write in 1.44 (and reading
 * behind libuv's back is what this driver must not do): they always go
 * through uv_read_start. */
static int uvd_try_now(void *state, struct ax_op *op)
{
	struct uvd *st = state;

	switch (op->kind) {
	case AX_OP_WRITE:
		return uvd_try_write(st, op);
	case AX_OP_ACCEPT:
		return uvd_try_accept(st, op);
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Submit, cancel, close                                               */
/* ------------------------------------------------------------------ */

/* vtable submit: by kind. */
static int uvd_submit(void *state, struct ax_op *op)
{
	struct uvd *st = state;

	op->drv_ptr[0] = NULL;
	switch (op->kind) {
	case AX_OP_READ:
		return uvd_submit_read(st, op);
	case AX_OP_WRITE:
		return uvd_submit_write(st, op);
	case AX_OP_ACCEPT:
		return uvd_submit_accept(st, op);
	case AX_OP_CONNECT:
		return uvd_submit_connect(st, op);
	case AX_OP_PREAD:
	case AX_OP_PWRITE:
		return uvd_submit_file(st, op);
	case AX_OP_CALL:
		return uvd_submit_call(st, op);
	default:
		return -EINVAL;
	}
}

/* See "Cancellation" in the header comment. */
static void uvd_cancel(void *state, struct ax_op *op)
{
	struct uvd *st = state;
	struct uvd_fd *f = op->drv_ptr[0];
	struct uvd_req *r = op->drv_ptr[0];

	if (ax__deferred(op))
		return; /* its real result is already known: delivered next poll */
	if (op->drv_u64[1] & UVD_OP_FS) {
		op->drv_u64[1] |= UVD_OP_CANCEL;
		uv_cancel(&r->u.req); /* as for files below */
		return;
	}
	switch (op->kind) {
	case AX_OP_READ:
		if (f && f->rop == op) {
			f->rop = NULL;
			uvd_read_off(st, f);
			uvd_complete(st, op, -ECANCELED);
		}
		break;
	case AX_OP_ACCEPT:
		if (f && f->aop == op) {
			f->aop = NULL;
			if (f->kind == UVD_LPOLL)
				uv_poll_stop(&f->u.poll);
			uvd_complete(st, op, -ECANCELED);
		}
		break;
	case AX_OP_WRITE:
		if (f && f->wop == op)
			uvd_write_drop(st, f, -ECANCELED);
		break;
	case AX_OP_CONNECT:
		if (f && f->cop == op && !uv_is_closing(&f->u.h)) {
			f->ccancel = true;
			uvd_fd_detach(st, f);
			uv_close(&f->u.h, uvd_fd_closed);
		}
		break;
	case AX_OP_PREAD:
	case AX_OP_PWRITE:
	case AX_OP_CALL:
		/* 0: dropped, the callback reports UV_ECANCELED; UV_EBUSY:
		 * running, the callback reports the real result. */
		if (r)
			uv_cancel(&r->u.req);
		break;
	default:
		break;
	}
}

/* vtable close_fd: see "Close" in the header comment. */
static int uvd_close_fd(void *state, int fd)
{
	struct uvd *st = state;
	struct uvd_fd *f = uvd_fd_find(st, fd);
	struct ax_op *op;
	int err = 0;

	/* File operations on fd that have not started are dropped; running
	 * ones finish on their own (pread on a closed fd: -EBADF). */
	for (op = st->fsops.head; op; op = op->drv_next)
		if (op->fd == fd)
			uv_cancel(&((struct uvd_req *)op->drv_ptr[0])->u.req);

	if (!f)
		return close(fd) == 0 ? 0 : -errno;

	uvd_fd_detach(st, f);
	if (f->kind == UVD_FILE) {
		free(f); /* no handle; its requests were cancelled above */
		return close(fd) == 0 ? 0 : -errno;
	}
	uvd_idle_del(st, f); /* uv_close stops reading */
	if ((op = f->rop) != NULL) {
		f->rop = NULL;
		uvd_complete(st, op, -EBADF);
	}
	if ((op = f->aop) != NULL) {
		f->aop = NULL;
		uvd_complete(st, op, -EBADF);
	}
	if (f->wop)
		uvd_write_drop(st, f, -EBADF); /* uv_close drops the piece */
	uv_close(&f->u.h, uvd_fd_closed);
	/* uv_poll_t never owns its descriptor, and libuv does not close 0-2
	 * when closing a stream: the driver closes those itself. */
	if ((f->kind == UVD_LPOLL || fd <= STDERR_FILENO) && close(fd) != 0)
		err = -errno;
	return err;
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

/* Close callback of a pooled timer handle (at fini). */
static void uvd_timer_closed(uv_handle_t *h)
{
	free(uvd_container(h, struct uvd_timer, h));
}

/* The libuv timeout (ms from loop->time) that fires no sooner than the ax
 * deadline: see "Timers" in the header comment. */
static uint64_t uvd_timeout_ms(struct uvd *st, int64_t deadline)
{
	uint64_t target, now;
	int64_t d;

	if (deadline > INT64_MAX - st->clock_offset)
		return UINT64_MAX; /* libuv clamps: never */
	d = deadline + st->clock_offset;
	if (d <= 0)
		return 0;
	target = ((uint64_t)d + UVD_NS_PER_MS - 1) / UVD_NS_PER_MS;
	now = uv_now(&st->loop);
	return target > now ? target - now : 0;
}

/* Fire t now: the timer callback's last resort when the batch cannot
 * grow. */
static void uvd_timer_fire(struct uvd *st, struct ax_timer *t)
{
	st->narmed--;
	st->kit.events++;
	st->delivered++;
	t->fire(t);
}

/* A libuv timer expired: queue its ax_timer for ordered delivery. */
static void uvd_timer_cb(uv_timer_t *h)
{
	struct uvd_timer *ut = uvd_container(h, struct uvd_timer, h);
	struct uvd *st = h->loop->data;
	struct ax_timer *t = h->data;
	int64_t now = ax_now();

	if (now < t->deadline) {
		/* Early against ax_now() (a clock disagreement): wait out the
		 * rest, rounded up, at least 1 ms so it cannot spin. */
		uint64_t rest = ((uint64_t)(t->deadline - now) + UVD_NS_PER_MS -
				 1) / UVD_NS_PER_MS;
		uv_timer_start(h, uvd_timer_cb, rest ? rest : 1, 0);
		return;
	}
	t->drv_ptr[0] = NULL;
	ut->next_free = st->timer_free;
	st->timer_free = ut;
	/* The fire is delivered after uv_run returns, which libuv does not
	 * know: when this runs in the timer phase at the start of
	 * UV_RUN_ONCE, libuv would go on to block in epoll_wait with nothing
	 * left to wait for. uv_stop makes this iteration's poll not block. */
	uv_stop(h->loop);
	if (ax__tbatch_push(&st->due, t) != 0)
		uvd_timer_fire(st, t); /* out of memory: fire unordered */
}

/* Deliver the fires collected during uv_run in (deadline, seq) order. A
 * fire hook may cancel a timer still in the batch or arm new ones (they go
 * to libuv, not here). */
static void uvd_deliver_due(struct uvd *st)
{
	int n = ax__tbatch_fire(&st->due);

	st->narmed -= (size_t)n;
	st->kit.events += (uint64_t)n;
	st->delivered += n;
}

/* vtable timer_arm: a pooled uv_timer_t, due no sooner than the deadline
 * (see "Timers"). */
static int uvd_timer_arm(void *state, struct ax_timer *t)
{
	struct uvd *st = state;
	struct uvd_timer *ut;
	int err;

	/* Room in due for every armed timer, so that the expiry callback
	 * does not need to allocate. */
	err = ax__tbatch_reserve(&st->due, st->narmed + 1);
	if (err)
		return err;
	ut = st->timer_free;
	if (ut) {
		st->timer_free = ut->next_free;
	} else {
		ut = malloc(sizeof *ut);
		if (!ut)
			return -ENOMEM;
		err = uv_timer_init(&st->loop, &ut->h);
		if (err) {
			free(ut);
			return err;
		}
		ut->next_all = st->timer_all;
		st->timer_all = ut;
	}
	ut->h.data = t;
	t->drv_ptr[0] = ut;
	err = uv_timer_start(&ut->h, uvd_timer_cb,
			     uvd_timeout_ms(st, t->deadline), 0);
	if (err) {
		t->drv_ptr[0] = NULL;
		ut->next_free = st->timer_free;
		st->timer_free = ut;
		return err;
	}
	st->narmed++;
	return 0;
}

/* vtable timer_cancel: stop its uv_timer_t, or take it out of the batch
 * collected in this poll. */
static void uvd_timer_cancel(void *state, struct ax_timer *t)
{
	struct uvd *st = state;
	struct uvd_timer *ut = t->drv_ptr[0];

	if (ut) {
		uv_timer_stop(&ut->h);
		ut->next_free = st->timer_free;
		st->timer_free = ut;
		t->drv_ptr[0] = NULL;
		st->narmed--;
	} else if (ax__tbatch_holds(&st->due, t)) {
		ax__tbatch_remove(&st->due, t);
		st->narmed--;
	}
}

/* ------------------------------------------------------------------ */
/* Poll and wake                                                       */
/* ------------------------------------------------------------------ */

/* The async handle fired: a wake, this poll ends. */
static void uvd_async_cb(uv_async_t *a)
{
	struct uvd *st = a->loop->data;

	st->woken = true;
}

/* vtable poll: deliver the deferred completions, run the loop once, fire
 * the collected timers in order. */
static int uvd_poll(void *state, bool block)
{
	struct uvd *st = state;

	st->woken = false;
	st->delivered = ax__defq_flush(&st->dq);
	st->kit.events += (uint64_t)st->delivered;
	if (st->delivered)
		block = false;
	/* UV_RUN_ONCE can return without a completion (a partial write, a
	 * read that hit EAGAIN, a timer re-armed): keep going until one of
	 * the things the core waits for happened. The always-active async
	 * handle keeps the loop alive, so this blocks instead of spinning. */
	for (;;) {
		if (block)
			uvd_idle_stop(st);
		st->kit.polls++;
		uv_run(&st->loop, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
		uvd_deliver_due(st);
		if (!block || st->delivered || st->woken)
			break;
	}
	return st->delivered;
}

/* vtable wake: uv_async_send. */
static void uvd_wake(void *state)
{
	struct uvd *st = state;

	uv_async_send(&st->async);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

/* vtable probe. */
static int uvd_probe(char *why, size_t n)
{
	(void)why;
	(void)n;
	return 0; /* linked in, so usable: libuv needs nothing from the kernel
	           * beyond epoll */
}

/* Apply one engine_flags item: "accept=poll" (default) or
 * "accept=listen". Returns 0 or -EINVAL. */
static int uvd_flag(void *ctx, const char *key, const char *val)
{
	static const char *const modes[] = {"poll", "listen", NULL};
	struct uvd *st = ctx;
	int i = ax__flag_pick(val, modes);

	if (strcmp(key, "accept") || i < 0)
		return -EINVAL;
	st->accept_mode = i == 0 ? UVD_ACCEPT_POLL : UVD_ACCEPT_LISTEN;
	return 0;
}

/* Name the kernel interface behind libuv's backend descriptor. */
static const char *uvd_backend_name(uv_loop_t *loop)
{
	char path[64];
	char link[64];
	ssize_t n;

	snprintf(path, sizeof path, "/proc/self/fd/%d", uv_backend_fd(loop));
	n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		return "unknown";
	link[n] = '\0';
	if (strcmp(link, "anon_inode:[eventpoll]") == 0)
		return "epoll";
	if (strstr(link, "io_uring"))
		return "io_uring";
	return "unknown";
}

/* vtable init: parse engine_flags, the loop, the async handle, the clock
 * offset. */
static int uvd_init(void **state, const struct ax_rt_opts *opts)
{
	const char *tp = getenv("UV_THREADPOOL_SIZE");
	struct uvd *st;
	int err;

	st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	st->accept_mode = UVD_ACCEPT_POLL;
	ax__fdtab_init(&st->fds, sizeof(struct uvd_fd *));
	err = ax__flags_each(opts ? opts->engine_flags : NULL, uvd_flag, st);
	if (err)
		goto free_st;
	err = uv_loop_init(&st->loop);
	if (err)
		goto free_st;
	st->loop.data = st;
	/* Stays active and referenced: it keeps UV_RUN_ONCE blocking while
	 * nothing else is pending, until a wake. */
	err = uv_async_init(&st->loop, &st->async, uvd_async_cb);
	if (err)
		goto close_loop;
	/* ax_now() first, uv_hrtime() second: any gap between the two reads
	 * makes the offset larger, so translated deadlines can only be late. */
	st->clock_offset = -ax_now();
	st->clock_offset += (int64_t)uv_hrtime();
	ax__kit_printf(&st->kit,
		 "libuv %s, %s backend, accept=%s, threadpool=%s%s",
		 uv_version_string(), uvd_backend_name(&st->loop),
		 st->accept_mode == UVD_ACCEPT_POLL ? "poll" : "listen",
		 tp ? tp : "4", tp ? "" : " (default)");
	*state = st;
	return 0;

close_loop:
	uv_loop_close(&st->loop);
free_st:
	free(st);
	return err;
}

/* vtable fini: close every handle, run the loop until their callbacks
 * ran, close the loop. */
static void uvd_fini(void *state)
{
	struct uvd *st = state;
	struct uvd_timer *ut, *next;
	struct uvd_req *r;
	size_t i;
	int err;

	for (i = 0; i < st->fds.n; i++) {
		struct uvd_fd *f = uvd_fd_find(st, (int)i);

		if (!f)
			continue;
		uvd_fd_detach(st, f);
		if (f->kind == UVD_FILE)
			free(f);
		else
			uv_close(&f->u.h, uvd_fd_closed);
	}
	for (ut = st->timer_all; ut; ut = next) {
		next = ut->next_all; /* ut is freed by the close callback */
		uv_close((uv_handle_t *)&ut->h, uvd_timer_closed);
	}
	uv_close((uv_handle_t *)&st->async, NULL);
	/* Runs the close callbacks; returns once nothing is active. */
	uv_run(&st->loop, UV_RUN_DEFAULT);
	err = uv_loop_close(&st->loop);
	if (err) {
		/* A handle or request is still alive: freeing the loop would
		 * leave libuv pointing into freed memory. Report and leak. */
		fprintf(stderr, "libuv driver: uv_loop_close: %s\n",
			uv_strerror(err));
		uv_print_all_handles(&st->loop, stderr);
		return;
	}
	while ((r = st->req_free) != NULL) {
		st->req_free = r->next_free;
		free(r);
	}
	ax__fdtab_fini(&st->fds);
	ax__tbatch_fini(&st->due);
	free(st);
}

const struct ax_driver ax_driver_libuv = {
	.version = AX_DRIVER_VERSION,
	.name = "libuv",
	.summary = "libuv: uv_tcp_t streams, uv_timer_t, uv_async_t wake, "
		   "libuv thread pool for files and blocking calls",
	.features = AX_FEAT_TCP | AX_FEAT_FILE | AX_FEAT_NATIVE_POOL |
		    AX_FEAT_NATIVE_TIMERS | AX_FEAT_XTHREAD,
	.probe = uvd_probe,
	.init = uvd_init,
	.fini = uvd_fini,
	.submit = uvd_submit,
	.cancel = uvd_cancel,
	.timer_arm = uvd_timer_arm,
	.timer_cancel = uvd_timer_cancel,
	.poll = uvd_poll,
	.wake = uvd_wake,
	.close_fd = uvd_close_fd,
	.engine_info = ax__kit_info,
	.stats = ax__kit_stats, /* libuv makes the system calls */
	.try_now = uvd_try_now,
};
