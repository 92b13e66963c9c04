/* libevent.c - the libevent 2.1 driver: runs ax operations and timers on one
 * event_base per runtime, with fd events, evtimers and an eventfd wake. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ax_driver.h"
#include "kit.h"

/*
 * Design
 *
 * I/O. A readiness engine: every operation first tries its system call
 * (read, send with MSG_NOSIGNAL, accept4, connect on a new non-blocking
 * socket; the kit's non-blocking steps) and waits only on EAGAIN /
 * EINPROGRESS. The try happens in try_now (the core's fast path: a result
 * there needs no completion at all) or, without it, in submit; a result
 * obtained inside submit is queued on the kit's deferred queue and delivered
 * at the start of the next poll (the contract forbids completing inside
 * submit), and a non-empty queue makes that poll non-blocking. Per fd (the
 * kit's fd table, holding pointers: events keep their lev_fd) the driver
 * keeps one persistent read event and one persistent write event, created on
 * the first wait of that side, and the op pending on each side.
 *
 * Trigger mode (engine flag trigger=edge|level, default edge). Edge: the
 * events are EV_ET and stay added from the first wait until close_fd, so a
 * wait costs no epoll_ctl at all; this is safe because every op tries its
 * system call before waiting, so an edge that arrives with no op pending can
 * be ignored. Level: an event is added while an op waits and deleted when it
 * completes (two epoll_ctl per wait); kept as the comparison point, and used
 * whenever the backend has no EV_ET (poll, select). Measured on a
 * same-thread ping-pong over a socketpair (two waits per round trip):
 * ~8.2 us of CPU per round trip with edge, ~12.2 us with level.
 * Edge mode needs close_fd (ax_close) for every descriptor that was waited
 * on: one closed behind the driver's back keeps a registration libevent
 * believes in, which would hide a new descriptor of the same number; the
 * numbers the driver itself receives (accept, socket) are checked for it.
 *
 * Timers. libevent's min-heap is the timer structure, but two properties of
 * it break the spec if it is used naively: its heap is not stable (equal
 * timeouts pop in arbitrary order, against [AX-TIME-2]), and event_add takes
 * a timeout relative to libevent's own clock read, so two timers with equal
 * ax deadlines get absolute timeouts a microsecond apart depending on when
 * the clock was read. So timers are grouped into buckets: all timers whose
 * deadline rounds up to the same grid step (1 us, libevent's resolution)
 * share ONE evtimer, and a bucket fires its timers sorted by (deadline,
 * seq). Each bucket's libevent timeout L satisfies key <= L <= key + span,
 * where span is the measured gap between the clock reads around event_add
 * (0-1 us); never early follows from L >= key. Bucket callbacks only
 * collect the popped buckets; after the loop pass the driver fires them in
 * key order, together with any bucket of a smaller key that libevent has
 * not popped yet (possible only when its span exceeded 1 us, and then
 * within span keys below): timers fire in (deadline, seq) order across
 * buckets too. See lev_bucket_schedule.
 *
 * Clock: EVENT_BASE_FLAG_PRECISE_TIMER (default, timer=precise) makes
 * libevent read CLOCK_MONOTONIC, the clock of ax_now(), and wait on a
 * timerfd with microsecond precision, at the price of one timerfd_settime
 * per loop iteration (~0.5 us: the ping-pong above takes ~7.1 us per round
 * trip with timer=coarse). timer=coarse keeps libevent's default instead
 * (CLOCK_MONOTONIC_COARSE, millisecond epoll timeouts, no extra system
 * call): buckets are then one coarse tick wide and every timeout gets one
 * tick of margin, so timers are never early but up to a few ticks late.
 *
 * Wake. An eventfd with a persistent read event on the base; wake() writes
 * to it. Chosen over evthread_use_pthreads() + event_active from the waking
 * thread: that switch is process-wide (every base created afterwards, in
 * any library, locks a mutex on every operation; measured here an
 * event_add + event_del pair goes from ~85 to ~95 ns) and the waker would
 * contend for the base lock with the loop, while this base is only ever
 * touched by its own thread. With the eventfd the base is created with
 * EVENT_BASE_FLAG_NOLOCK and a wake costs one write(2), coalesced by an
 * atomic flag; both cost the same system call per wake.
 *
 * Files and blocking calls: libevent has no file I/O and no thread pool, so
 * PREAD, PWRITE and CALL are refused with -ENOTSUP (the core runs them on
 * its own pool).
 */

/* Where an accepted op is (op->drv_u64[LEV_U_STATE]). */
enum {
	LEV_OP_NONE = 0, /* new (the core zeroes the scratch), deferred or
	                    completed */
	LEV_OP_TRIED,    /* try_now just met EAGAIN: submit may park at once */
	LEV_OP_PARKED,   /* pending on its fd's read or write side */
};

/* Use of struct ax_op's scratch words (AX__OP_SENT: a WRITE's progress). */
enum {
	LEV_U_FD = 1,    /* fd the op waits on (for CONNECT, the new socket) */
	LEV_U_STATE = 2, /* LEV_OP_* */
};

enum lev_trigger { LEV_EDGE, LEV_LEVEL };

struct lev;

/* Per-fd state, allocated on the first wait on the fd. */
struct lev_fd {
	struct lev *lev;
	int fd;
	bool radded, wadded;  /* the event is added to the base */
	struct event *rev;    /* read side, created on its first wait */
	struct event *wev;    /* write side, created on its first wait */
	struct ax__sides op;  /* the pending ops */
};

/* Timers whose deadlines round up to the same grid step, on one evtimer. */
struct lev_bucket {
	struct lev *lev;
	int64_t key;              /* deadline in grid steps, rounded up */
	struct event *ev;         /* its evtimer; kept while pooled */
	struct lev_bucket *next;  /* hash chain, or the pool's free list */
	struct ax__tbatch tb;     /* its armed timers (t->drv_ptr[0] = b) */
	int64_t scan;             /* a bucket up to this many keys above may
	                             pop before it (see lev_bucket_schedule) */
	bool armed;               /* its evtimer is pending in the base */
	bool popped;              /* its evtimer fired; on lev->pv */
	bool firing;              /* lev_bucket_fire is running on it */
};

struct lev {
	struct ax__kit kit;    /* first: counters and engine_info */
	struct event_base *base;
	enum lev_trigger trigger;
	bool coarse;
	int64_t grid_us;   /* bucket width */
	int64_t margin_us; /* added to every timeout: how far libevent's clock
	                      may lag CLOCK_MONOTONIC */
	int64_t scan;      /* the largest scan among live buckets; 0 when
	                      none has scan > 0 */
	size_t nwide;      /* live buckets with scan > 0 */
	int64_t lo;        /* no live bucket has a smaller key */
	struct lev_bucket **pv; /* buckets popped in this loop pass */
	size_t npv, cap_pv;     /* cap_pv >= nbuckets, so a pop never
	                           needs memory */

	struct ax__fdtab fds;     /* struct lev_fd * by descriptor */
	struct ax__defq ready;    /* results known in submit */

	struct lev_bucket **tab; /* buckets by key, chained */
	unsigned tab_bits;
	size_t nbuckets;
	struct lev_bucket *pool;

	struct ax__wake wake;
	struct event *wake_ev;
	bool woken;

};

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

/* Ceiling of a / b for b > 0, any sign of a. */
static int64_t lev_ceil_div(int64_t a, int64_t b)
{
	return a / b + (a % b > 0);
}

/* A timeval of us microseconds, normalised (usec in [0, 1e6)) also when
 * negative: libevent adds it to its clock, which yields a past timeout. */
static struct timeval lev_tv(int64_t us)
{
	struct timeval tv;
	int64_t s = us / 1000000, r = us % 1000000;
	if (r < 0) {
		r += 1000000;
		s -= 1;
	}
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)r;
	return tv;
}

/* ------------------------------------------------------------------ */
/* Completions and system calls                                        */
/* ------------------------------------------------------------------ */

/* Complete op now (from poll, cancel or close_fd). */
static void lev_complete(struct lev *lev, struct ax_op *op, int64_t res)
{
	op->drv_u64[LEV_U_STATE] = LEV_OP_NONE;
	lev->kit.events++;
	ax_op_complete(op, res);
}

/* Queue op's result for the next poll (used where completing now is not
 * allowed, e.g. inside submit). */
static void lev_ready(struct lev *lev, struct ax_op *op, int64_t res)
{
	op->drv_u64[LEV_U_STATE] = LEV_OP_NONE;
	ax__defer(&lev->ready, op, res);
}

/* ------------------------------------------------------------------ */
/* Per-fd state                                                        */
/* ------------------------------------------------------------------ */

static void lev_read_cb(evutil_socket_t fd, short what, void *arg);
static void lev_write_cb(evutil_socket_t fd, short what, void *arg);

/* The state of fd, or NULL. */
static struct lev_fd *lev_fd_get(struct lev *lev, int fd)
{
	struct lev_fd **fp = ax__fdtab_find(&lev->fds, fd);
	return fp ? *fp : NULL;
}

/* The state of fd (>= 0), created if missing. Returns it or NULL
 * (-ENOMEM). */
static struct lev_fd *lev_fd_make(struct lev *lev, int fd)
{
	struct lev_fd **fp = ax__fdtab_get(&lev->fds, fd);
	if (!fp || *fp)
		return fp ? *fp : NULL;
	struct lev_fd *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->lev = lev;
	f->fd = fd;
	*fp = f;
	return f;
}

/* Forget fd's state: free its events (event_free also deletes them) and
 * hand its pending ops res, now or through the deferred queue. */
static void lev_fd_release(struct lev *lev, struct lev_fd *f, int64_t res,
                           bool now)
{
	struct ax__sides ops = f->op;
	ax__fdtab_clear(&lev->fds, f->fd);
	if (f->rev)
		event_free(f->rev);
	if (f->wev)
		event_free(f->wev);
	free(f);
	if (now) {
		lev->kit.events += (uint64_t)ax__sides_fail(&ops, res);
		return;
	}
	if (ops.rd)
		lev_ready(lev, ops.rd, res);
	if (ops.wr)
		lev_ready(lev, ops.wr, res);
}

/* Drop fd's state, if any, from submit-like context: an op still pending
 * on it gets -EBADF at the next poll. */
static void lev_fd_drop(struct lev *lev, int fd)
{
	struct lev_fd *f = lev_fd_get(lev, fd);
	if (f)
		lev_fd_release(lev, f, -EBADF, false);
}

/* fd was just created by the kernel (accept, socket): any state under that
 * number belongs to a descriptor closed without close_fd. Drop it so that
 * its stale registration (edge mode keeps events added) cannot hide the new
 * descriptor from the base. */
static void lev_fd_fresh(struct lev *lev, int fd)
{
	lev_fd_drop(lev, fd);
}

/* Park op on f's write side (wside) or read side, creating and adding the
 * side's event as needed. Returns 0 or -errno (op not parked). */
static int lev_park(struct lev *lev, struct lev_fd *f, struct ax_op *op,
                    bool wside)
{
	struct event **evp = wside ? &f->wev : &f->rev;
	bool *added = wside ? &f->wadded : &f->radded;
	if (!*evp) {
		short what = (short)((wside ? EV_WRITE : EV_READ) | EV_PERSIST |
		                     (lev->trigger == LEV_EDGE ? EV_ET : 0));
		*evp = event_new(lev->base, f->fd, what,
		                 wside ? lev_write_cb : lev_read_cb, f);
		if (!*evp)
			return -ENOMEM;
	}
	if (!*added) {
		errno = 0;
		if (event_add(*evp, NULL) < 0)
			return errno ? -errno : -ENOMEM;
		*added = true;
	}
	*ax__side(&f->op, op) = op;
	op->drv_u64[LEV_U_FD] = (uint64_t)f->fd;
	op->drv_u64[LEV_U_STATE] = LEV_OP_PARKED;
	return 0;
}

/* Take f's pending op off a side. In level mode the event goes too, so an
 * idle fd is never reported; in edge mode it stays added. */
static void lev_unpark(struct lev *lev, struct lev_fd *f, bool wside)
{
	if (wside)
		f->op.wr = NULL;
	else
		f->op.rd = NULL;
	if (lev->trigger == LEV_LEVEL) {
		bool *added = wside ? &f->wadded : &f->radded;
		if (*added) {
			event_del(wside ? f->wev : f->rev);
			*added = false;
		}
	}
}

/* Readiness on one side of f: move its pending op on (READ, ACCEPT,
 * WRITE, or the end of a CONNECT). An edge with nothing waiting is
 * ignored: the next op tries its system call first. */
static void lev_side_ready(struct lev_fd *f, bool wside)
{
	struct lev *lev = f->lev;
	struct ax_op *op = wside ? f->op.wr : f->op.rd;
	if (op && !ax__nb_step(op))
		return;
	lev_unpark(lev, f, wside);
	if (!op)
		return;
	if (op->kind == AX_OP_ACCEPT && op->res >= 0)
		lev_fd_fresh(lev, (int)op->res);
	/* A failed connect closed its socket, which was the driver's: release
	 * its state too (libevent allows freeing an event from its own
	 * callback). */
	if (op->kind == AX_OP_CONNECT && op->res < 0)
		lev_fd_release(lev, f, 0, true);
	lev_complete(lev, op, op->res);
}

/* libevent callback of a read side. */
static void lev_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lev_side_ready(arg, false);
}

/* libevent callback of a write side. */
static void lev_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lev_side_ready(arg, true);
}

/* ------------------------------------------------------------------ */
/* Submit, cancel, close                                               */
/* ------------------------------------------------------------------ */

/* Park op on fd, or fail to start it. */
static int lev_wait(struct lev *lev, int fd, struct ax_op *op, bool wside)
{
	if (fd < 0)
		return -EBADF;
	struct lev_fd *f = lev_fd_make(lev, fd);
	if (!f)
		return -ENOMEM;
	return lev_park(lev, f, op, wside);
}

/* CONNECT: a new non-blocking socket; wait for writability unless the
 * connect finished at once. */
static int lev_submit_connect(struct lev *lev, struct ax_op *op)
{
	int rc = ax__nb_connect_start(op);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		lev_fd_fresh(lev, (int)op->res);
		lev_ready(lev, op, op->res);
		return 0;
	}
	lev_fd_fresh(lev, op->fd);
	rc = lev_wait(lev, op->fd, op, true);
	if (rc < 0)
		goto close_socket;
	return 0;

close_socket:
	lev_fd_drop(lev, op->fd); /* the empty state lev_wait may have made */
	close(op->fd);
	return rc;
}

/* vtable submit: try the system call (unless try_now just did), else park
 * the op on its side. */
static int lev_submit(void *state, struct ax_op *op)
{
	struct lev *lev = state;

	/* Right after try_now met EAGAIN the fd cannot have become ready
	 * unseen (no poll ran since: a new edge is still queued in the
	 * kernel, a first registration reports readiness), so the system call
	 * is not repeated. A WRITE continues from the bytes try_now sent. */
	bool tried = op->drv_u64[LEV_U_STATE] == LEV_OP_TRIED;
	op->drv_u64[LEV_U_STATE] = LEV_OP_NONE;
	switch (op->kind) {
	case AX_OP_READ:
	case AX_OP_ACCEPT:
		if (tried || !ax__nb_step(op))
			return lev_wait(lev, op->fd, op, false);
		if (op->kind == AX_OP_ACCEPT && op->res >= 0)
			lev_fd_fresh(lev, (int)op->res);
		lev_ready(lev, op, op->res);
		return 0;
	case AX_OP_WRITE:
		if (tried || !ax__nb_write(op))
			return lev_wait(lev, op->fd, op, true);
		lev_ready(lev, op, op->res);
		return 0;
	case AX_OP_CONNECT:
		return lev_submit_connect(lev, op);
	default:
		/* PREAD, PWRITE: libevent has no file I/O; CALL: no thread
		 * pool. The core runs them on its own pool. */
		return -ENOTSUP;
	}
}

/* The fast path: finish a READ, ACCEPT or WRITE at once if its system call
 * allows, without any completion (1, op->res set); else 0, recording the
 * try (and a WRITE's progress) for submit. */
static int lev_try_now(void *state, struct ax_op *op)
{
	struct lev *lev = state;
	if (!ax__nb_step(op)) {
		op->drv_u64[LEV_U_STATE] = LEV_OP_TRIED;
		return 0;
	}
	if (op->kind == AX_OP_ACCEPT && op->res >= 0)
		lev_fd_fresh(lev, (int)op->res);
	return 1;
}

/* Synchronous: a parked op completes here with -ECANCELED; a deferred op
 * already has its result and gets it at the next poll
 * ([AX-CANCEL-3]: a read that consumed data must not lose it). */
static void lev_cancel(void *state, struct ax_op *op)
{
	struct lev *lev = state;
	if (op->drv_u64[LEV_U_STATE] != LEV_OP_PARKED)
		return;
	int fd = (int)op->drv_u64[LEV_U_FD];
	struct lev_fd *f = lev_fd_get(lev, fd);
	if (!f || *ax__side(&f->op, op) != op)
		return;
	lev_unpark(lev, f, ax__side(&f->op, op) == &f->op.wr);
	if (op->kind == AX_OP_CONNECT) {
		/* The socket was never handed out: it is the driver's to close. */
		lev_fd_release(lev, f, 0, true);
		close(fd);
	}
	lev_complete(lev, op, -ECANCELED);
}

/* vtable close_fd: free the fd's events and complete its ops -EBADF, then
 * close. */
static int lev_close_fd(void *state, int fd)
{
	struct lev *lev = state;
	struct lev_fd *f = lev_fd_get(lev, fd);
	if (f)
		lev_fd_release(lev, f, -EBADF, true);
	/* Linux frees the descriptor even when close reports EINTR. */
	if (close(fd) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

static void lev_bucket_cb(evutil_socket_t fd, short what, void *arg);

/* The table slot of a bucket key (Fibonacci hashing). */
static size_t lev_hash(const struct lev *lev, int64_t key)
{
	return (size_t)(((uint64_t)key * 0x9E3779B97F4A7C15ull) >> (64 - lev->tab_bits));
}

/* The bucket of key that still takes timers (not firing; it may have
 * popped, then the timer fires with it), or NULL. */
static struct lev_bucket *lev_bucket_find(struct lev *lev, int64_t key)
{
	struct lev_bucket *b = lev->tab[lev_hash(lev, key)];
	while (b && (b->key != key || b->firing))
		b = b->next;
	return b;
}

/* Double the table when it is fuller than one bucket per slot; on ENOMEM
 * keep the old one (chains just get longer). */
static void lev_tab_grow(struct lev *lev)
{
	unsigned bits = lev->tab_bits + 1;
	size_t n = (size_t)1 << bits;
	struct lev_bucket **tab = calloc(n, sizeof *tab);
	if (!tab)
		return;
	size_t old = (size_t)1 << lev->tab_bits;
	lev->tab_bits = bits;
	for (size_t i = 0; i < old; i++) {
		struct lev_bucket *b = lev->tab[i];
		while (b) {
			struct lev_bucket *next = b->next;
			size_t h = lev_hash(lev, b->key);
			b->next = tab[h];
			tab[h] = b;
			b = next;
		}
	}
	free(lev->tab);
	lev->tab = tab;
}

/* A bucket for key, from the pool or new, entered in the table. */
static struct lev_bucket *lev_bucket_new(struct lev *lev, int64_t key)
{
	struct lev_bucket *b = lev->pool;
	if (b) {
		lev->pool = b->next;
	} else {
		b = calloc(1, sizeof *b);
		if (!b)
			return NULL;
		b->lev = lev;
		b->ev = evtimer_new(lev->base, lev_bucket_cb, b);
		if (!b->ev) {
			free(b);
			return NULL;
		}
	}
	if (lev->nbuckets >= lev->cap_pv) {
		size_t cap = lev->cap_pv ? lev->cap_pv * 2 : 64;
		struct lev_bucket **pv = realloc(lev->pv, cap * sizeof *pv);
		if (!pv) {
			b->next = lev->pool;
			lev->pool = b;
			return NULL;
		}
		lev->pv = pv;
		lev->cap_pv = cap;
	}
	b->key = key;
	if (key < lev->lo)
		lev->lo = key;
	if (lev->nbuckets >= ((size_t)1 << lev->tab_bits))
		lev_tab_grow(lev);
	size_t h = lev_hash(lev, key);
	b->next = lev->tab[h];
	lev->tab[h] = b;
	lev->nbuckets++;
	return b;
}

/* Withdraw b's scan from the driver's: with no wide bucket left, a popped
 * bucket has no predecessor to look for. */
static void lev_bucket_unwide(struct lev *lev, struct lev_bucket *b)
{
	if (b->scan > 0 && --lev->nwide == 0)
		lev->scan = 0;
	b->scan = 0;
}

/* Take b's evtimer out of the base (when it is still in). */
static void lev_bucket_disarm(struct lev_bucket *b)
{
	if (b->armed) {
		event_del(b->ev);
		b->armed = false;
	}
}

/* Take b out of the table and the base, back to the pool. */
static void lev_bucket_release(struct lev *lev, struct lev_bucket *b)
{
	struct lev_bucket **pp = &lev->tab[lev_hash(lev, b->key)];
	while (*pp != b)
		pp = &(*pp)->next;
	*pp = b->next;
	lev->nbuckets--;
	lev_bucket_disarm(b);
	lev_bucket_unwide(lev, b);
	ax__tbatch_clear(&b->tb);
	b->popped = b->firing = false;
	b->next = lev->pool;
	lev->pool = b;
}

/*
 * Give b's evtimer the timeout key * grid_us (+ margin) in libevent's clock.
 *
 * libevent computes L = c + rel, c being its clock read inside event_add
 * (or the loop's cached time, refreshed first), which happens between our
 * reads t0 and t1. With rel = key*grid + margin - t0:
 *     key*grid <= L <= key*grid + span,   span = margin + (t1 - t0)
 * (the lower bound needs c >= t0 - margin: exact for CLOCK_MONOTONIC, one
 * coarse tick for CLOCK_MONOTONIC_COARSE). L >= key*grid: a bucket never
 * pops before its last deadline. The upper bound: libevent pops, in one
 * pass at its time t, every bucket with L <= t. If b popped (t >= L(b) >=
 * key(b)*grid) and p with a smaller key did not (L(p) > t), then
 * key(p)*grid + span(p) > key(b)*grid: p is less than span(p)/grid keys
 * below b. p's scan records that distance, lev->scan the largest among live
 * buckets, and lev_timers_run looks that far below the popped buckets
 * (at most scan lookups per pass). In precise mode span is almost always 0
 * or 1 us, so scan is 0 and nothing is looked up; a span over
 * LEV_SCAN_RETRY keys (the thread was preempted between the reads) is
 * retried once, so that one preemption does not cost lookups in every
 * pass for as long as that bucket lives.
 * rel may be negative (a past deadline): libevent then simply holds a past
 * timeout, which keeps L within the bounds above.
 */
#define LEV_SCAN_RETRY 8

/* Schedule b's evtimer as explained above. Returns 0 or -ENOMEM. */
static int lev_bucket_schedule(struct lev *lev, struct lev_bucket *b)
{
	int64_t scan;
	lev_bucket_unwide(lev, b);
	for (int tries = 0;; tries++) {
		int64_t t0 = ax_now() / 1000;
		event_base_update_cache_time(lev->base);
		struct timeval tv = lev_tv(b->key * lev->grid_us + lev->margin_us - t0);
		if (event_add(b->ev, &tv) < 0)
			return -ENOMEM;
		b->armed = true;
		int64_t span = lev->margin_us + (ax_now() / 1000 - t0);
		scan = lev_ceil_div(span, lev->grid_us) - 1;
		if (scan <= LEV_SCAN_RETRY || tries == 1)
			break;
	}
	if (scan > 0) {
		b->scan = scan;
		lev->nwide++;
		if (scan > lev->scan)
			lev->scan = scan;
	}
	return 0;
}


/* Fire b's timers in (deadline, seq) order and release b. fire() may arm
 * (into a new bucket: b no longer takes timers) or cancel (a hole in b). */
static void lev_bucket_fire(struct lev *lev, struct lev_bucket *b)
{
	b->firing = true;
	lev->kit.events += (uint64_t)ax__tbatch_fire(&b->tb);
	lev_bucket_release(lev, b);
}

/* A bucket's evtimer popped: note it for lev_timers_run. */
static void lev_bucket_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lev_bucket *b = arg;
	struct lev *lev = b->lev;
	(void)fd;
	(void)what;
	b->armed = false;
	if (ax_now() < b->key * lev->grid_us * 1000) {
		/* libevent's clock ran ahead of CLOCK_MONOTONIC (not expected,
		 * see lev_bucket_schedule): wait for the rest. Re-adding cannot
		 * fail in practice (the heap has room for the event it just
		 * popped); if it did, firing now beats never firing. */
		if (lev_bucket_schedule(lev, b) == 0)
			return;
	}
	b->popped = true;
	lev->pv[lev->npv++] = b; /* cap_pv >= nbuckets */
}

/* After a loop pass: fire the popped buckets in key order, each preceded
 * by the buckets below it that libevent has not popped yet. fire() may
 * cancel timers of buckets still on the list (they stay there, emptied, and
 * are released here) or arm new ones (into a popped bucket of the same key,
 * which fires here, or into new buckets, which lower lev->lo). */
static void lev_timers_run(struct lev *lev)
{
	size_t n = lev->npv;
	if (!n)
		return;
	/* libevent pops in timeout order, which is key order up to the
	 * spans: an insertion sort is linear here. */
	for (size_t i = 1; i < n; i++) {
		struct lev_bucket *b = lev->pv[i];
		size_t j = i;
		for (; j > 0 && lev->pv[j - 1]->key > b->key; j--)
			lev->pv[j] = lev->pv[j - 1];
		lev->pv[j] = b;
	}
	/* A bucket libevent did not pop in this pass has a key of at least
	 * top - lev->scan, top being the largest popped key (see
	 * lev_bucket_schedule with b the top bucket), and not below lev->lo.
	 * So the window scanned for unpopped buckets below the popped ones
	 * is [max(lo, top - scan), key) per popped bucket, scan keys per
	 * pass at most, and empty in precise mode (scan 0). */
	int64_t top = lev->pv[n - 1]->key;
	for (size_t i = 0; i < n; i++) {
		struct lev_bucket *b = lev->pv[i];
		b->popped = false;
		if (!b->tb.live) {
			lev_bucket_release(lev, b);
			continue;
		}
		/* Afterwards no live bucket has a key <= b's but those armed
		 * by the fires below, which lower lo again. */
		int64_t from = top - lev->scan;
		if (from < lev->lo)
			from = lev->lo;
		lev->lo = b->key + 1;
		for (int64_t k = from; k < b->key; k++) {
			struct lev_bucket *p = lev_bucket_find(lev, k);
			if (p && !p->popped) {
				lev_bucket_disarm(p);
				lev_bucket_fire(lev, p);
			}
		}
		lev_bucket_fire(lev, b);
	}
	lev->npv = 0;
}

/* vtable timer_arm: into the bucket of t's grid step, scheduling a new
 * bucket's evtimer. */
static int lev_timer_arm(void *state, struct ax_timer *t)
{
	struct lev *lev = state;
	int64_t key = lev_ceil_div(t->deadline, lev->grid_us * 1000);
	struct lev_bucket *b = lev_bucket_find(lev, key);
	bool fresh = !b;
	int rc;

	if (fresh) {
		b = lev_bucket_new(lev, key);
		if (!b)
			return -ENOMEM;
	}
	rc = ax__tbatch_push(&b->tb, t);
	if (rc < 0)
		goto release_bucket;
	t->drv_ptr[0] = b;
	if (fresh) {
		rc = lev_bucket_schedule(lev, b);
		if (rc < 0)
			goto pop_timer;
	}
	return 0;

pop_timer:
	ax__tbatch_remove(&b->tb, t);
release_bucket:
	if (fresh)
		lev_bucket_release(lev, b);
	return rc;
}

/* Disarm t if it is armed here. t's scratch is trusted only once the
 * bucket it names is found among the live buckets of t's key, so a timer
 * that was never armed (whatever its scratch holds) is left alone. */
static void lev_timer_cancel(void *state, struct ax_timer *t)
{
	struct lev *lev = state;
	int64_t key = lev_ceil_div(t->deadline, lev->grid_us * 1000);
	struct lev_bucket *b = lev->tab[lev_hash(lev, key)];
	while (b && b != t->drv_ptr[0])
		b = b->next;
	if (!b || b->key != key || !ax__tbatch_holds(&b->tb, t))
		return;
	ax__tbatch_remove(&b->tb, t);
	if (!b->tb.live && !b->firing && !b->popped)
		lev_bucket_release(lev, b);
}

/* ------------------------------------------------------------------ */
/* Poll and wake                                                       */
/* ------------------------------------------------------------------ */

/* vtable poll: deliver the deferred completions, run the base once (or
 * until something happened, when blocking), then fire the popped buckets
 * in order. */
static int lev_poll(void *state, bool block)
{
	struct lev *lev = state;
	uint64_t start = lev->kit.events;

	lev->kit.events += (uint64_t)ax__defq_flush(&lev->ready);
	bool wait = block && lev->kit.events == start;
	lev->woken = false;
	for (;;) {
		lev->kit.polls++;
		/* EVLOOP_ONCE returns after the first iteration that ran a
		 * callback; that callback may have found nothing to complete
		 * (an edge with no op, a spurious readiness), hence the loop. */
		if (event_base_loop(lev->base, wait ? EVLOOP_ONCE : EVLOOP_NONBLOCK) < 0)
			return -EIO;
		lev_timers_run(lev);
		if (!wait || lev->kit.events != start || lev->woken ||
		    ax__defq_pending(&lev->ready))
			break;
	}
	return (int)(lev->kit.events - start);
}

/* The wake eventfd is readable: drain it and end this poll. */
static void lev_wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lev *lev = arg;
	(void)fd;
	(void)what;
	ax__wake_drain(&lev->wake);
	lev->woken = true;
}

/* Thread-safe. Writes only when no wake is pending already. */
static void lev_wake(void *state)
{
	struct lev *lev = state;
	ax__wake_signal(&lev->wake);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

/* The engine_flags settings. */
struct lev_conf {
	enum lev_trigger trigger;
	bool trigger_set;
	bool coarse;
	char backend[16]; /* "" for libevent's choice */
};

/* Apply one engine_flags item: trigger=edge|level, timer=precise|coarse,
 * backend=epoll|poll|select. Returns 0 or -EINVAL. */
static int lev_conf_flag(void *ctx, const char *key, const char *val)
{
	static const char *const triggers[] = {"edge", "level", NULL};
	static const char *const timers[] = {"precise", "coarse", NULL};
	struct lev_conf *c = ctx;
	int i;
	if (!strcmp(key, "trigger")) {
		if ((i = ax__flag_pick(val, triggers)) < 0)
			return i;
		c->trigger = i == 0 ? LEV_EDGE : LEV_LEVEL;
		c->trigger_set = true;
	} else if (!strcmp(key, "timer")) {
		if ((i = ax__flag_pick(val, timers)) < 0)
			return i;
		c->coarse = i == 1;
	} else if (!strcmp(key, "backend") && strlen(val) < sizeof c->backend) {
		strcpy(c->backend, val);
	} else {
		return -EINVAL;
	}
	return 0;
}

/* Parse engine_flags (NULL or "" for the defaults) into c. Returns 0 or
 * -EINVAL. */
static int lev_conf_parse(const char *flags, struct lev_conf *c)
{
	memset(c, 0, sizeof *c);
	c->trigger = LEV_EDGE;
	return ax__flags_each(flags, lev_conf_flag, c);
}

/* A base for c: single-threaded (NOLOCK), deaf to EVENT_* environment
 * variables (results must not depend on them), precise clock unless
 * coarse, and only c->backend when one is named. Returns 0 or -errno. */
static int lev_base_new(const struct lev_conf *c, struct event_base **out)
{
	int rc = -ENOMEM;
	struct event_config *cfg = event_config_new();
	if (!cfg)
		return -ENOMEM;
	int flags = EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_IGNORE_ENV;
	if (!c->coarse)
		flags |= EVENT_BASE_FLAG_PRECISE_TIMER;
	if (event_config_set_flag(cfg, flags) < 0)
		goto free_config;
	if (c->backend[0]) {
		bool known = false;
		for (const char **m = event_get_supported_methods(); m && *m; m++) {
			if (!strcmp(*m, c->backend))
				known = true;
			else if (event_config_avoid_method(cfg, *m) < 0)
				goto free_config;
		}
		if (!known) {
			rc = -EINVAL;
			goto free_config;
		}
	}
	*out = event_base_new_with_config(cfg);
	rc = *out ? 0 : -ENOTSUP;
free_config:
	event_config_free(cfg);
	return rc;
}

/* vtable probe: libevent 2.1 or later, and a base can be created. */
static int lev_probe(char *why, size_t n)
{
	struct lev_conf c;
	struct event_base *base;
	if (event_get_version_number() < 0x02010000) {
		snprintf(why, n, "libevent %s is older than 2.1", event_get_version());
		return -ENOTSUP;
	}
	lev_conf_parse(NULL, &c);
	int rc = lev_base_new(&c, &base);
	if (rc < 0) {
		snprintf(why, n, "libevent %s: cannot create an event_base",
		         event_get_version());
		return rc;
	}
	event_base_free(base);
	return 0;
}

static void lev_fini(void *state);

/* vtable init: parse engine_flags, create the base, pick the trigger and
 * timer grid, add the wake event. */
static int lev_init(void **state, const struct ax_rt_opts *opts)
{
	struct lev_conf c;
	int rc = lev_conf_parse(opts ? opts->engine_flags : NULL, &c);
	if (rc < 0)
		return rc;

	struct lev *lev = calloc(1, sizeof *lev);
	if (!lev)
		return -ENOMEM;
	lev->wake.fd = -1;
	ax__fdtab_init(&lev->fds, sizeof(struct lev_fd *));
	lev->tab_bits = 6;
	lev->lo = INT64_MAX;
	lev->tab = calloc((size_t)1 << lev->tab_bits, sizeof *lev->tab);
	if (!lev->tab) {
		rc = -ENOMEM;
		goto free_state;
	}
	rc = lev_base_new(&c, &lev->base);
	if (rc < 0)
		goto free_state;

	/* Edge triggering needs the backend's support (epoll has it; poll
	 * and select would report a persistent EV_ET event level-triggered,
	 * and an idle fd would spin). */
	lev->trigger = c.trigger;
	if (!(event_base_get_features(lev->base) & EV_FEATURE_ET)) {
		if (c.trigger_set && c.trigger == LEV_EDGE) {
			rc = -EINVAL;
			goto free_state;
		}
		lev->trigger = LEV_LEVEL;
	}

	lev->coarse = c.coarse;
	lev->grid_us = 1;
	lev->margin_us = 0;
	if (c.coarse) {
		/* libevent reads CLOCK_MONOTONIC_COARSE, which lags by up to one
		 * tick: one tick of margin, buckets one tick wide. */
		struct timespec res;
		if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) < 0) {
			rc = -errno;
			goto free_state;
		}
		lev->grid_us = lev_ceil_div((int64_t)res.tv_sec * 1000000000 + res.tv_nsec, 1000);
		if (lev->grid_us < 1)
			lev->grid_us = 1;
		lev->margin_us = lev->grid_us;
	}

	rc = ax__wake_open(&lev->wake, true);
	if (rc < 0)
		goto free_state;
	lev->wake_ev = event_new(lev->base, lev->wake.fd, EV_READ | EV_PERSIST,
	                         lev_wake_cb, lev);
	if (!lev->wake_ev || event_add(lev->wake_ev, NULL) < 0) {
		rc = -ENOMEM;
		goto free_state;
	}

	ax__kit_printf(&lev->kit,
	         "libevent %s, backend %s, %s timers (%s), %s-triggered fd events, eventfd wake",
	         event_get_version(), event_base_get_method(lev->base),
	         c.coarse ? "coarse" : "precise",
	         c.coarse ? "CLOCK_MONOTONIC_COARSE" : "CLOCK_MONOTONIC",
	         lev->trigger == LEV_EDGE ? "edge" : "level");
	*state = lev;
	return 0;

free_state:
	/* lev_fini releases whatever was set up so far. */
	lev_fini(lev);
	return rc;
}

/* vtable fini (also undoes a partial init). */
static void lev_fini(void *state)
{
	struct lev *lev = state;
	if (!lev)
		return;
	/* No op is in flight and no timer armed (contract), so nothing is
	 * completed here; release what is left: fd states of descriptors
	 * never passed to close_fd (not closed: they are the caller's), the
	 * bucket pool, the wake. */
	for (int fd = 0; (size_t)fd < lev->fds.n; fd++) {
		struct lev_fd *f = lev_fd_get(lev, fd);
		if (!f)
			continue;
		f->op.rd = f->op.wr = NULL;
		lev_fd_release(lev, f, 0, true);
	}
	ax__fdtab_fini(&lev->fds);
	if (lev->tab) {
		for (size_t i = 0; i < ((size_t)1 << lev->tab_bits); i++) {
			while (lev->tab[i])
				lev_bucket_release(lev, lev->tab[i]);
		}
		free(lev->tab);
	}
	free(lev->pv);
	while (lev->pool) {
		struct lev_bucket *b = lev->pool;
		lev->pool = b->next;
		event_free(b->ev);
		ax__tbatch_fini(&b->tb);
		free(b);
	}
	if (lev->wake_ev)
		event_free(lev->wake_ev);
	ax__wake_close(&lev->wake);
	if (lev->base)
		event_base_free(lev->base);
	free(lev);
}

const struct ax_driver ax_driver_libevent = {
	.version = AX_DRIVER_VERSION,
	.name = "libevent",
	.summary = "libevent 2.1 event_base: edge-triggered fd events, "
	           "min-heap evtimers, eventfd wake",
	.features = AX_FEAT_TCP | AX_FEAT_NATIVE_TIMERS | AX_FEAT_XTHREAD,
	.probe = lev_probe,
	.init = lev_init,
	.fini = lev_fini,
	.submit = lev_submit,
	.cancel = lev_cancel,
	.timer_arm = lev_timer_arm,
	.timer_cancel = lev_timer_cancel,
	.poll = lev_poll,
	.wake = lev_wake,
	.close_fd = lev_close_fd,
	.engine_info = ax__kit_info,
	.stats = ax__kit_stats, /* libevent makes the system calls */
	.try_now = lev_try_now,
};
