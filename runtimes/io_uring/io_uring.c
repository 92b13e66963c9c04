/* io_uring.c - the io_uring driver: each ax operation is one liburing SQE, completed from its CQE. */
/*
 * Design
 *
 * Setup flags decide io_uring's speed (DESIGN.md section 7), so init probes
 * them, best first: SINGLE_ISSUER|DEFER_TASKRUN (completion work runs only
 * when the loop asks for events, never interrupting a running task), then
 * COOP_TASKRUN (no IPI; work runs at the next kernel entry), then none; each
 * with TASKRUN_FLAG (the ring tells us when entering would produce CQEs, so
 * a non-blocking poll costs no system call when there is nothing to reap)
 * and SUBMIT_ALL (a bad SQE does not stall the ones behind it). engine_flags
 * "setup=defer|coop|none" forces one. A SINGLE_ISSUER ring is created
 * disabled (R_DISABLED) and enabled on the first kernel entry, so that it
 * belongs to the thread that runs the loop, not to the one that created the
 * runtime.
 *
 * Submission is batched: submit() and cancel() only fill SQEs; poll() hands
 * them to the kernel together with its wait (io_uring_submit_and_wait), so a
 * loop iteration is usually one io_uring_enter. A full SQ is flushed and the
 * SQE retried. CQ overflow is left to the kernel (IORING_FEAT_NODROP) and
 * flushed by io_uring_peek_batch_cqe when the ring flags it.
 *
 * user_data carries a pointer with a 3-bit tag in its low bits: an op (its
 * own CQE is its single completion), the wake read, a kernel timer record,
 * or "swallow" for the replies of cancel and timeout-remove requests.
 *
 * Wake: an IORING_OP_READ of 8 bytes from an eventfd into a driver buffer,
 * kept armed (re-armed from its CQE). Any thread may write the eventfd, and
 * the read completes through the ring like any op, so a blocking
 * io_uring_enter returns. Why not the alternatives: another thread may not
 * submit to a SINGLE_ISSUER ring (so no NOP or MSG_RING from the waker);
 * io_uring_register_eventfd signals *from* the ring, not into it; a
 * multishot POLL_ADD would leave the eventfd counter undrained. An atomic
 * flag makes concurrent wakes cost one write(2) until the loop consumes it.
 *
 * Timers (timers=heap, the default): a 4-ary heap (theap) in user space;
 * the earliest deadline becomes the timeout of the wait itself
 * (io_uring_submit_and_wait_timeout, IORING_ENTER_EXT_ARG). That is cheaper
 * than one IORING_OP_TIMEOUT for the earliest deadline: arming a timer is a
 * heap insert with no SQE, no CQE and no re-arm (timeout_update) when the
 * earliest changes; the kernel sees a deadline only when the loop actually
 * sleeps. timers=kernel arms one IORING_OP_TIMEOUT (absolute,
 * CLOCK_MONOTONIC) per timer, for comparison; the timer waits in a second
 * heap until its CQE moves it into the firing heap. Both modes fire from
 * that heap only when ax_now() >= deadline (never early) and in (deadline,
 * seq) order (equal deadlines in arming order); in kernel mode a timer also
 * waits while an earlier-ordered one's CQE is still outstanding, since the
 * kernel does not promise to complete timeouts in expiry order.
 *
 * write=ring (the default) sends every byte through the ring: the SQEs of
 * a loop iteration's writes reach the kernel in one io_uring_enter, and a
 * writing task resumes from its CQE at the next poll. write=now first
 * tries a WRITE on a socket with a non-blocking send(2) (try_now) and
 * queues only what the socket did not take, so the task goes on at once:
 * next to a task that runs long between yields, the wait for the next poll
 * costs half the echo throughput (the fairness scenario); at many
 * connections, sending at once costs the batching. Measured both ways in
 * docs/decisions.md. engine_flags or AX_IO_URING_FLAGS choose.
 *
 * READ and WRITE use recv/send (MSG_NOSIGNAL); a descriptor that answers
 * ENOTSOCK (a pipe) is remembered and served by read/write at the current
 * position instead. A short send is resubmitted for the rest: all-or-error.
 *
 * Cancel: IORING_OP_ASYNC_CANCEL on the op's user_data. The op then
 * completes once from its own CQE (-ECANCELED or its real result); the
 * cancel's CQE is swallowed. close_fd submits IORING_ASYNC_CANCEL_FD|ALL
 * before close(2) (the kernel resolves the fd when the cancel is issued),
 * and only when an op on that fd is in flight; the cancelled ops complete
 * later with -EBADF ([AX-TCP-15]).
 *
 * Design options, each an engine flag so that a run compares them as
 * runtimes of their own (io_uring:recv=multishot, docs/harness.md "Engine
 * variants"; measured in docs/decisions.md, "io_uring at its best"). A
 * variant the kernel cannot run fails init with its reason on stderr; it
 * never runs as another under its name.
 *
 * recv=multishot: a socket's first READ arms one IORING_OP_RECV with
 * IORING_RECV_MULTISHOT, selecting buffers from a provided-buffer ring
 * (registered with io_uring_register_buf_ring over our own mmap; liburing
 * 2.3 has no io_uring_setup_buf_ring). Every CQE brings bytes in a ring
 * buffer; they join the descriptor's queue, and a READ copies from the
 * queue into the caller's buffer (ax_read's contract is unchanged: the
 * caller's buffer, at most n bytes), leaving the rest queued; a buffer
 * read to its end goes back to the ring. A READ that finds bytes queued
 * finishes in try_now (or, past the core's fast-path budget, through the
 * deferred queue); one that finds none waits as the descriptor's reader
 * and is in no SQE. Cancelling it completes it at once with -ECANCELED:
 * the multishot stays armed, and what it brings stays queued for the next
 * read, so nothing is lost or reordered ([AX-TCP-17], [AX-CANCEL-2]: the
 * kernel never had the caller's buffer). EOF or an error ends the
 * multishot and is queued behind the bytes, delivered once, and the next
 * READ arms again (a recv at EOF returns 0 again). An empty ring ends the
 * multishot with ENOBUFS: a waiting reader then gets one plain recv into
 * its own buffer, and the next READ arms the multishot again; an idle
 * connection holds at most what it received. close_fd drops the queue
 * (buffers back to the ring), completes a waiting reader with -EBADF and
 * cancels the multishot by fd; CQEs of a closed descriptor's multishot are
 * recognised by the fd generation in their user_data and dropped. A
 * descriptor that is no socket (ENOTSOCK) falls back to plain reads.
 *
 * files=fixed: a sparse fixed-file table (one slot per possible
 * descriptor, up to RLIMIT_NOFILE or 65536); a descriptor is registered at
 * the index of its own number on its first op (one register call per
 * connection) and its SQEs carry IOSQE_FIXED_FILE, sparing the kernel the
 * fd lookup and reference per request. close_fd clears the slot before
 * close(2) (the table holds a reference to the file).
 *
 * batch=N (batch_us=U, default 50): a blocking wait asks the kernel for
 * min(N, requests in flight) completions, waiting at most U microseconds
 * (or until the next timer): fewer loop iterations and kernel entries per
 * message at the cost of at most U of added latency. Submission is batched
 * in every mode (one io_uring_enter per loop iteration).
 *
 * setup=sqpoll (sq_idle_ms=M, default 2): a kernel thread polls the SQ, so
 * submitting costs no system call while it is awake; the kernel refuses
 * COOP/DEFER_TASKRUN beside it. Waiting for CQEs still enters. close_fd
 * waits until the SQ thread has taken the cancel before close(2).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "ax_driver.h"
#include "kit.h"
#include "theap.h"

#define URING_ENTRIES 4096       /* SQ entries; the CQ gets twice that */
#define URING_BATCH 64           /* CQEs copied out per peek */
#define URING_MAX_IO 0x7ffff000u /* the kernel's per-call I/O cap */

/* user_data tags (low 3 bits; ops and records are 8-byte aligned). */
enum {
	URING_T_OP = 0,      /* struct ax_op: the op's own completion */
	URING_T_SWALLOW = 1, /* cancel / timeout-remove replies: ignored */
	URING_T_WAKE = 2,    /* the eventfd read */
	URING_T_KTIMER = 3,  /* struct uring_ktimer (timers=kernel) */
	URING_T_MSHOT = 4,   /* a descriptor's multishot recv: the fd and its
	                        generation, not a pointer (uring_ms_ud) */
	URING_T_MASK = 7,
};
_Static_assert(_Alignof(struct ax_op) >= 8, "op pointers carry a 3-bit tag");

/* Op scratch: drv_u64[0] bytes sent (WRITE), [1] flags, [2] the socket a
 * CONNECT created, [3] the fd generation at submit. drv_next/drv_prev link
 * the cancel backlog. */
enum {
	URING_F_CANCEL = 1u << 0,   /* cancel() was called */
	URING_F_BACKLOG = 1u << 1,  /* its cancel SQE is still to be queued */
	URING_F_MSWAIT = 1u << 2,   /* a READ waiting for its descriptor's
	                               multishot data: in no SQE, only in the
	                               fd's reader slot */
};

/* recv=multishot: the provided-buffer group, and the flag ranges. */
#define URING_BGID 0
#define URING_BUFS_DEFAULT 2048u
#define URING_BUFSIZE_DEFAULT 2048u
#define URING_FIXED_MAX 65536u   /* files=fixed: table slots (index = fd) */

/* Setup modes, best first; auto tries DEFER..NONE, SQPOLL only when asked
 * (it spends a kernel thread polling the SQ). */
enum {
	URING_SETUP_DEFER,
	URING_SETUP_COOP,
	URING_SETUP_NONE,
	URING_SETUP_SQPOLL,
	URING_SETUP_AUTO
};

static const struct {
	const char *name;
	unsigned flags;
} uring_modes[] = {
	[URING_SETUP_DEFER] = {"defer", IORING_SETUP_SINGLE_ISSUER |
						IORING_SETUP_DEFER_TASKRUN},
	[URING_SETUP_COOP] = {"coop", IORING_SETUP_COOP_TASKRUN},
	[URING_SETUP_NONE] = {"none", 0},
	/* the kernel refuses COOP/DEFER/TASKRUN_FLAG beside SQPOLL: the SQ
	 * thread runs the task work */
	[URING_SETUP_SQPOLL] = {"sqpoll", IORING_SETUP_SQPOLL},
};

/* One kernel timeout (timers=kernel). It outlives a cancelled ax_timer
 * until its own CQE arrives, so that the core may reuse the timer at once. */
struct uring_ktimer {
	struct ax_timer *t;          /* NULL once disarmed: CQE ignored */
	struct __kernel_timespec ts; /* read by the kernel at submission */
	struct uring_ktimer *next, *prev;
};

/* Per-descriptor bookkeeping: close_fd, registered files, and the
 * multishot receive queue (recv=multishot). */
struct uring_fd {
	uint32_t ops;   /* kernel requests in flight on this fd (an armed
	                   multishot counts as one) */
	uint32_t gen;   /* bumped by close_fd: stale writes must not resubmit,
	                   a stale multishot's CQEs are dropped */
	bool nosock;    /* recv/send said ENOTSOCK (a pipe, a tty): use
	                   read/write at the current position instead */
	bool fixed;     /* files=fixed: registered at table index fd */
	bool nofix;     /* files=fixed: the registration was refused */
	bool ms_armed;  /* a multishot recv is in the kernel */
	bool has_end;   /* `end` follows the queued bytes */
	int32_t end;    /* 0 (EOF) or -errno that ended the multishot */
	struct ax_op *reader; /* a READ waiting for multishot data */
	uint32_t qhead, qtail; /* queued ring buffers, id + 1 (0: none),
	                          linked through uring.bnext */
	uint32_t qoff;  /* bytes of the head buffer already read */
};

struct uring {
	struct ax__kit kit;      /* first: counters and engine_info */
	struct io_uring ring;
	unsigned setup;          /* IORING_SETUP_* in use */
	int mode;                /* URING_SETUP_DEFER / COOP / NONE */
	bool enabled;            /* ring usable (R_DISABLED lifted) */
	bool under_valgrind;     /* waits are cut (URING_VALGRIND_WAIT_NS) */
	bool nb_enter;           /* non-blocking polls must enter to run task
	                            work (no TASKRUN_FLAG) */
	bool kernel_timers;      /* timers=kernel */
	bool send_now;           /* write=now: try send(2) before the ring */
	bool accept_now;         /* accept=now: try accept4(2) before the ring */
	unsigned entries;

	struct ax__wake wake;    /* read only through the ring */
	uint64_t efd_buf;        /* the armed read's target */
	bool wake_armed;

	struct ax_theap heap;    /* timers=heap: armed timers; timers=kernel:
	                            timers whose kernel timeout completed */
	struct ax_theap kheap;   /* timers=kernel: armed, CQE not yet seen */
	uint64_t seq_hi;         /* highest seq armed */
	struct uring_ktimer *kt_live, *kt_free;

	struct ax__fdtab fds;    /* struct uring_fd by descriptor */
	struct ax__oplist cancel_backlog; /* ops whose cancel SQE could not
	                                     be queued */
	struct ax__defq defq;    /* READs served from the multishot queue
	                            inside submit, closed readers */
	unsigned inflight;       /* requests whose CQE is awaited (batch=) */

	/* recv=multishot: one provided-buffer ring of nbufs x bufsize */
	bool multishot;
	unsigned nbufs, bufsize;
	struct io_uring_buf_ring *br;
	char *bufs;
	uint32_t *bnext;         /* queue links by buffer id (id + 1) */
	uint32_t *blen;          /* bytes received into each queued buffer */
	uint64_t ms_enobufs;     /* multishots ended by an empty ring */

	/* files=fixed: a sparse table, descriptor n at index n */
	bool fixed_files;
	unsigned nfixed;
	uint64_t unfixed;        /* descriptors the table could not take */

	/* batch=N: a blocking wait asks for min(N, inflight) CQEs, for at
	 * most batch_us */
	unsigned batch, batch_us;
	unsigned sq_idle_ms;     /* setup=sqpoll: the SQ thread's idle time */
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */
/* ------------------------------------------------------------------ */

/* user_data for p with tag. */
static inline uint64_t uring_ud(const void *p, unsigned tag)
{
	return (uint64_t)(uintptr_t)p | tag;
}

/* The pointer in a user_data. */
static inline void *uring_ud_ptr(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~(uint64_t)URING_T_MASK);
}

/* Lift R_DISABLED on the first kernel entry: the ring's single issuer
 * becomes the calling thread, which is the loop's. */
static int uring_enable(struct uring *u)
{
	if (u->enabled)
		return 0;
	int r = io_uring_register(u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
				  NULL, 0);
	if (r < 0)
		return r;
	u->enabled = true;
	return 0;
}

/* An SQE, flushing a full SQ to the kernel once. Returns 0 or -errno. */
static int uring_get_sqe(struct uring *u, struct io_uring_sqe **out)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	if (!sqe) {
		int r = uring_enable(u);
		if (r < 0)
			return r;
		r = io_uring_submit(&u->ring);
		if (r < 0)
			return r;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;
	}
	*out = sqe;
	return 0;
}

/* A length the kernel takes in one call. */
static inline size_t uring_clamp(size_t len)
{
	return len > URING_MAX_IO ? URING_MAX_IO : len;
}

/* Fill sqe for op's (next) system call; READ and WRITE use recv/send on
 * sockets and read/write at the current position on other streams; a
 * descriptor in the fixed-file table (files=fixed) is named by its index,
 * which is its number. */
static void uring_prep(struct io_uring_sqe *sqe, struct ax_op *op,
		       const struct uring_fd *slot)
{
	size_t sent = (size_t)op->drv_u64[0];
	bool nosock = slot && slot->nosock;
	switch (op->kind) {
	case AX_OP_ACCEPT:
		io_uring_prep_accept(sqe, op->fd, NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case AX_OP_CONNECT:
		io_uring_prep_connect(sqe, (int)op->drv_u64[2],
				      (struct sockaddr *)&op->addr, op->addrlen);
		break;
	case AX_OP_READ:
		if (nosock)
			io_uring_prep_read(sqe, op->fd, op->buf,
					   (unsigned)uring_clamp(op->len), (uint64_t)-1);
		else
			io_uring_prep_recv(sqe, op->fd, op->buf,
					   uring_clamp(op->len), 0);
		break;
	case AX_OP_WRITE:
		if (nosock)
			io_uring_prep_write(sqe, op->fd, (char *)op->buf + sent,
					    (unsigned)uring_clamp(op->len - sent),
					    (uint64_t)-1);
		else
			io_uring_prep_send(sqe, op->fd, (char *)op->buf + sent,
					   uring_clamp(op->len - sent), MSG_NOSIGNAL);
		break;
	case AX_OP_PREAD:
		io_uring_prep_read(sqe, op->fd, op->buf,
				   (unsigned)uring_clamp(op->len), (uint64_t)op->off);
		break;
	case AX_OP_PWRITE:
		io_uring_prep_write(sqe, op->fd, op->buf,
				    (unsigned)uring_clamp(op->len), (uint64_t)op->off);
		break;
	default:
		break;
	}
	if (slot && slot->fixed && op->kind != AX_OP_CONNECT)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, uring_ud(op, URING_T_OP));
}

/* ------------------------------------------------------------------ */
/* probe, setup                                                        */
/* ------------------------------------------------------------------ */

/* Opcodes the driver issues, plus IORING_OP_SOCKET as the marker of 5.19,
 * the release that brought IORING_ASYNC_CANCEL_FD (used by close_fd). */
static const struct {
	int op;
	const char *name;
} uring_needed[] = {
	{IORING_OP_ACCEPT, "accept"},   {IORING_OP_CONNECT, "connect"},
	{IORING_OP_RECV, "recv"},       {IORING_OP_SEND, "send"},
	{IORING_OP_READ, "read"},       {IORING_OP_WRITE, "write"},
	{IORING_OP_TIMEOUT, "timeout"}, {IORING_OP_TIMEOUT_REMOVE, "timeout_remove"},
	{IORING_OP_ASYNC_CANCEL, "async_cancel"},
	{IORING_OP_SOCKET, "socket (5.19: cancel by fd)"},
};

/* Check that the ring offers every opcode the driver needs; on success
 * append the supported opcode numbers (as ranges) to k's info line when k
 * is not NULL. Returns 0 or -ENOTSUP (why names what is missing). */
static int uring_check_ops(struct io_uring *ring, char *why, size_t n,
			   struct ax__kit *k)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	int r = 0;
	if (!p) {
		if (why && n)
			snprintf(why, n, "io_uring opcode probe unsupported (kernel < 5.6)");
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof uring_needed / sizeof uring_needed[0]; i++) {
		if (!io_uring_opcode_supported(p, uring_needed[i].op)) {
			if (why && n)
				snprintf(why, n, "kernel io_uring lacks opcode %s",
					 uring_needed[i].name);
			r = -ENOTSUP;
			goto free_probe;
		}
	}
	if (k) {
		int first = -1;
		bool any = false;
		ax__kit_printf(k, " ops=");
		for (int op = 0; op <= (int)p->last_op + 1; op++) {
			bool ok = op <= (int)p->last_op && io_uring_opcode_supported(p, op);
			if (ok && first < 0)
				first = op;
			if (!ok && first >= 0) {
				ax__kit_printf(k, "%s%d", any ? "," : "", first);
				if (first < op - 1)
					ax__kit_printf(k, "-%d", op - 1);
				any = true;
				first = -1;
			}
		}
	}
free_probe:
	io_uring_free_probe(p);
	return r;
}

/* Explain a failed io_uring_setup in one line (sysctl, seccomp, kernel). */
static void uring_why_setup(int err, char *why, size_t n)
{
	if (!why || !n)
		return;
	int disabled = -1;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	if (f) {
		if (fscanf(f, "%d", &disabled) != 1)
			disabled = -1;
		fclose(f);
	}
	if (err == -ENOSYS)
		snprintf(why, n, "kernel has no io_uring (ENOSYS: not built in, or filtered by seccomp)");
	else if (err == -EPERM && disabled == 2)
		snprintf(why, n, "io_uring disabled by kernel.io_uring_disabled=2");
	else if (err == -EPERM && disabled == 1)
		snprintf(why, n, "io_uring restricted by kernel.io_uring_disabled=1 "
				 "(caller not in kernel.io_uring_group)");
	else if (err == -EPERM)
		snprintf(why, n, "io_uring_setup denied (EPERM): seccomp or container policy");
	else
		snprintf(why, n, "io_uring_setup failed: %s", strerror(-err));
}

/* vtable probe: a small ring can be created and offers every opcode used. */
static int uring_probe(char *why, size_t n)
{
	struct io_uring ring;
	int r = io_uring_queue_init(2, &ring, 0);
	if (r < 0) {
		uring_why_setup(r, why, n);
		return r;
	}
	r = uring_check_ops(&ring, why, n, NULL);
	io_uring_queue_exit(&ring);
	return r;
}

/* The engine_flags being parsed. */
struct uring_conf {
	struct uring *u;
	int mode;
};

/* An unsigned engine_flags value in [lo, hi], or -EINVAL. */
static long uring_flag_num(const char *val, unsigned long lo, unsigned long hi)
{
	char *e;
	unsigned long x = strtoul(val, &e, 10);
	if (!*val || *e || *val == '-' || x < lo || x > hi)
		return -EINVAL;
	return (long)x;
}

/* Apply one engine_flags item: setup=auto|defer|coop|none|sqpoll,
 * timers=heap|kernel, write=now|ring, entries=N (SQ size, 8..32768),
 * accept=now|ring, recv=single|multishot, bufs=N (a power of two, 16..32768),
 * bufsize=B (64..65536), files=plain|fixed, batch=N (1..4096),
 * batch_us=U (1..100000), sq_idle_ms=M (1..10000). Returns 0 or -EINVAL. */
static int uring_flag(void *ctx, const char *key, const char *val)
{
	static const char *const setups[] = {"defer", "coop", "none", "sqpoll",
					     "auto", NULL};
	static const char *const timers[] = {"heap", "kernel", NULL};
	static const char *const writes[] = {"now", "ring", NULL};
	static const char *const recvs[] = {"single", "multishot", NULL};
	static const char *const files[] = {"plain", "fixed", NULL};
	static const char *const accepts[] = {"now", "ring", NULL};
	struct uring_conf *c = ctx;
	struct uring *u = c->u;
	long x;
	int i;
	if (!strcmp(key, "setup")) {
		if ((i = ax__flag_pick(val, setups)) < 0)
			return i;
		c->mode = i; /* the list follows URING_SETUP_* */
	} else if (!strcmp(key, "timers")) {
		if ((i = ax__flag_pick(val, timers)) < 0)
			return i;
		c->u->kernel_timers = i == 1;
	} else if (!strcmp(key, "write")) {
		if ((i = ax__flag_pick(val, writes)) < 0)
			return i;
		c->u->send_now = i == 0;
	} else if (!strcmp(key, "entries")) {
		if ((x = uring_flag_num(val, 8, 32768)) < 0)
			return -EINVAL;
		u->entries = (unsigned)x;
	} else if (!strcmp(key, "accept")) {
		if ((i = ax__flag_pick(val, accepts)) < 0)
			return i;
		u->accept_now = i == 0;
	} else if (!strcmp(key, "recv")) {
		if ((i = ax__flag_pick(val, recvs)) < 0)
			return i;
		u->multishot = i == 1;
	} else if (!strcmp(key, "bufs")) {
		if ((x = uring_flag_num(val, 16, 32768)) < 0 || (x & (x - 1)))
			return -EINVAL;
		u->nbufs = (unsigned)x;
	} else if (!strcmp(key, "bufsize")) {
		if ((x = uring_flag_num(val, 64, 65536)) < 0)
			return -EINVAL;
		u->bufsize = (unsigned)x;
	} else if (!strcmp(key, "files")) {
		if ((i = ax__flag_pick(val, files)) < 0)
			return i;
		u->fixed_files = i == 1;
	} else if (!strcmp(key, "batch")) {
		if ((x = uring_flag_num(val, 1, 4096)) < 0)
			return -EINVAL;
		u->batch = (unsigned)x;
	} else if (!strcmp(key, "batch_us")) {
		if ((x = uring_flag_num(val, 1, 100000)) < 0)
			return -EINVAL;
		u->batch_us = (unsigned)x;
	} else if (!strcmp(key, "sq_idle_ms")) {
		if ((x = uring_flag_num(val, 1, 10000)) < 0)
			return -EINVAL;
		u->sq_idle_ms = (unsigned)x;
	} else {
		return -EINVAL;
	}
	return 0;
}

/* Create the ring with the best setup flags the kernel accepts (or the
 * forced mode's). Optional extras are dropped one by one on EINVAL before
 * falling back to the next mode. Returns 0 or -errno (-ENOTSUP when a
 * forced mode is refused). */
static int uring_setup_ring(struct uring *u, int want)
{
	static const unsigned optional[] = {
		IORING_SETUP_TASKRUN_FLAG, IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_R_DISABLED,
	};
	int r = -EINVAL;
	for (int m = URING_SETUP_DEFER; m < URING_SETUP_AUTO; m++) {
		if (want == URING_SETUP_AUTO ? m > URING_SETUP_NONE : m != want)
			continue;
		unsigned base = uring_modes[m].flags;
		unsigned extra = IORING_SETUP_SUBMIT_ALL;
		if (m == URING_SETUP_DEFER || m == URING_SETUP_COOP)
			extra |= IORING_SETUP_TASKRUN_FLAG;
		if (base & IORING_SETUP_SINGLE_ISSUER)
			extra |= IORING_SETUP_R_DISABLED;
		for (size_t drop = 0;; drop++) {
			struct io_uring_params p;
			memset(&p, 0, sizeof p);
			p.flags = base | extra;
			p.sq_thread_idle = u->sq_idle_ms;
			r = io_uring_queue_init_params(u->entries, &u->ring, &p);
			if (r == 0) {
				u->setup = p.flags;
				u->mode = m;
				u->enabled = !(p.flags & IORING_SETUP_R_DISABLED);
				u->nb_enter = (m == URING_SETUP_DEFER ||
					       m == URING_SETUP_COOP) &&
					      !(p.flags & IORING_SETUP_TASKRUN_FLAG);
				return 0;
			}
			if (r != -EINVAL || drop == sizeof optional / sizeof optional[0])
				break;
			extra &= ~optional[drop];
		}
		if (r != -EINVAL)
			return r;
	}
	return want != URING_SETUP_AUTO ? -ENOTSUP : r;
}

/* One line for engine_info: setup flags, ring sizes, timers, wake, ring
 * features (then uring_check_ops appends the supported opcodes). */
static void uring_describe(struct uring *u)
{
	static const struct {
		unsigned bit;
		const char *name;
	} setups[] = {
		{IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
		{IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
		{IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
		{IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
		{IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
		{IORING_SETUP_R_DISABLED, "R_DISABLED"},
		{IORING_SETUP_SQPOLL, "SQPOLL"},
	}, feats[] = {
		{IORING_FEAT_SINGLE_MMAP, "SINGLE_MMAP"},
		{IORING_FEAT_NODROP, "NODROP"},
		{IORING_FEAT_SUBMIT_STABLE, "SUBMIT_STABLE"},
		{IORING_FEAT_RW_CUR_POS, "RW_CUR_POS"},
		{IORING_FEAT_CUR_PERSONALITY, "CUR_PERSONALITY"},
		{IORING_FEAT_FAST_POLL, "FAST_POLL"},
		{IORING_FEAT_POLL_32BITS, "POLL_32BITS"},
		{IORING_FEAT_SQPOLL_NONFIXED, "SQPOLL_NONFIXED"},
		{IORING_FEAT_EXT_ARG, "EXT_ARG"},
		{IORING_FEAT_NATIVE_WORKERS, "NATIVE_WORKERS"},
		{IORING_FEAT_RSRC_TAGS, "RSRC_TAGS"},
		{IORING_FEAT_CQE_SKIP, "CQE_SKIP"},
		{IORING_FEAT_LINKED_FILE, "LINKED_FILE"},
	};
	unsigned known = 0;
#define URING_PUT(...) ax__kit_printf(&u->kit, __VA_ARGS__)
	URING_PUT("io_uring setup=%s flags=", uring_modes[u->mode].name);
	bool any = false;
	for (size_t i = 0; i < sizeof setups / sizeof setups[0]; i++)
		if (u->setup & setups[i].bit) {
			URING_PUT("%s%s", any ? "|" : "", setups[i].name);
			any = true;
		}
	if (!any)
		URING_PUT("0");
	URING_PUT(" sq=%u cq=%u accept=%s timers=%s write=%s wake=eventfd-read features=",
		  u->ring.sq.ring_entries, u->ring.cq.ring_entries,
		  u->accept_now ? "now(accept4 first)" : "ring",
		  u->kernel_timers ? "kernel(one IORING_OP_TIMEOUT each)"
				   : "heap(wait timeout)",
		  u->send_now ? "now(send first, ring on EAGAIN)" : "ring");
	if (u->multishot)
		URING_PUT(" recv=multishot(provided buffers %ux%u B)", u->nbufs,
			  u->bufsize);
	else
		URING_PUT(" recv=single");
	if (u->fixed_files)
		URING_PUT(" files=fixed(%u slots)", u->nfixed);
	if (u->batch > 1)
		URING_PUT(" batch=%u(wait <= %u us)", u->batch, u->batch_us);
	if (u->mode == URING_SETUP_SQPOLL)
		URING_PUT(" sq_idle_ms=%u", u->sq_idle_ms);
	any = false;
	for (size_t i = 0; i < sizeof feats / sizeof feats[0]; i++) {
		known |= feats[i].bit;
		if (u->ring.features & feats[i].bit) {
			URING_PUT("%s%s", any ? "|" : "", feats[i].name);
			any = true;
		}
	}
	if (u->ring.features & ~known)
		URING_PUT("%s0x%x", any ? "|" : "", u->ring.features & ~known);
#undef URING_PUT
}

/* ------------------------------------------------------------------ */
/* wake                                                                */
/* ------------------------------------------------------------------ */

/* Queue the eventfd read (a failure is retried at the next poll). */
static void uring_arm_wake(struct uring *u)
{
	struct io_uring_sqe *sqe;
	if (uring_get_sqe(u, &sqe) < 0)
		return;
	io_uring_prep_read(sqe, u->wake.fd, &u->efd_buf, sizeof u->efd_buf, 0);
	io_uring_sqe_set_data64(sqe, uring_ud(NULL, URING_T_WAKE));
	u->wake_armed = true;
}

/* vtable wake: through the kit's eventfd; the ring's read of it ends the
 * wait. */
static void uring_wake(void *state)
{
	struct uring *u = state;
	ax__wake_signal(&u->wake);
}

/* The wake read completed: allow the next wake to write, then re-arm. The
 * flag is cleared before poll returns, and the core looks at its inbox
 * after poll returns, so a wake that found the flag still set is seen.
 * Re-armed whatever the result: a read cancelled because the thread that
 * issued it exited must not leave a later run without wakes. */
static void uring_wake_cqe(struct uring *u)
{
	ax__wake_consumed(&u->wake);
	u->wake_armed = false;
	uring_arm_wake(u);
}

/* ------------------------------------------------------------------ */
/* timers                                                              */
/* ------------------------------------------------------------------ */

/* timers=kernel: one IORING_OP_TIMEOUT for t, and t in the armed heap until
 * its CQE arrives. */
static int uring_ktimer_arm(struct uring *u, struct ax_timer *t)
{
	struct io_uring_sqe *sqe;
	struct uring_ktimer *k;
	int64_t at = t->deadline < 0 ? 0 : t->deadline;
	int r = ax__theap_reserve(&u->heap, u->heap.n + u->kheap.n + 1);
	if (r < 0)
		return r;
	k = u->kt_free;
	if (k) {
		u->kt_free = k->next;
	} else {
		k = malloc(sizeof *k);
		if (!k)
			return -ENOMEM;
	}
	r = uring_get_sqe(u, &sqe);
	if (r < 0)
		goto free_record;
	r = ax__theap_push(&u->kheap, t);
	if (r < 0)
		goto drop_sqe;
	k->t = t;
	k->ts.tv_sec = at / 1000000000;
	k->ts.tv_nsec = at % 1000000000;
	io_uring_prep_timeout(sqe, &k->ts, 0, IORING_TIMEOUT_ABS);
	io_uring_sqe_set_data64(sqe, uring_ud(k, URING_T_KTIMER));
	k->prev = NULL;
	k->next = u->kt_live;
	if (u->kt_live)
		u->kt_live->prev = k;
	u->kt_live = k;
	t->drv_ptr[0] = k;
	return 0;

drop_sqe:
	/* an SQE cannot be handed back: turn it into a no-op */
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, uring_ud(NULL, URING_T_SWALLOW));
free_record:
	k->next = u->kt_free;
	u->kt_free = k;
	return r;
}

/* vtable timer_arm: into the heap, or one kernel timeout (timers=kernel). */
static int uring_timer_arm(void *state, struct ax_timer *t)
{
	struct uring *u = state;
	int r;
	t->drv_index = AX_THEAP_NONE;
	t->drv_ptr[0] = NULL;
	r = u->kernel_timers ? uring_ktimer_arm(u, t) : ax__theap_push(&u->heap, t);
	if (r == 0 && t->seq > u->seq_hi)
		u->seq_hi = t->seq;
	return r;
}

/* vtable timer_cancel: synchronous; a kernel timeout is detached at once
 * and removed in the background. */
static void uring_timer_cancel(void *state, struct ax_timer *t)
{
	struct uring *u = state;
	struct uring_ktimer *k = t->drv_ptr[0];
	struct io_uring_sqe *sqe;
	if (k && k->t == t) {
		/* detach at once (its CQE is then ignored); the remove SQE only
		 * spares the kernel the wait */
		k->t = NULL;
		t->drv_ptr[0] = NULL;
		ax__theap_remove(&u->kheap, t);
		if (uring_get_sqe(u, &sqe) == 0) {
			io_uring_prep_timeout_remove(sqe, uring_ud(k, URING_T_KTIMER), 0);
			io_uring_sqe_set_data64(sqe, uring_ud(NULL, URING_T_SWALLOW));
		}
		return;
	}
	ax__theap_remove(&u->heap, t);
}

/* A kernel timeout's CQE: its timer (unless disarmed) moves from the armed
 * heap to the firing heap. */
static void uring_ktimer_cqe(struct uring *u, struct uring_ktimer *k)
{
	struct ax_timer *t = k->t;
	if (k->prev)
		k->prev->next = k->next;
	else
		u->kt_live = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->next = u->kt_free;
	u->kt_free = k;
	if (t) {
		t->drv_ptr[0] = NULL;
		ax__theap_remove(&u->kheap, t);
		ax__theap_push(&u->heap, t); /* cannot fail: reserved at arm */
	}
}

/* The earliest timer of the firing heap when it may fire: with kernel
 * timers, not while an earlier one's CQE is still on its way (a timeout
 * armed in the past completes at submission, ahead of an earlier hrtimer
 * whose completion still waits in task work). */
static struct ax_timer *uring_next_timer(struct uring *u)
{
	struct ax_timer *t = ax__theap_min(&u->heap);
	struct ax_timer *k = ax__theap_min(&u->kheap);
	return t && k && ax__timer_before(k, t) ? NULL : t;
}

/* Fire due timers in (deadline, seq) order, never before ax_now() reaches
 * their deadline. Timers armed by a fire callback wait for the next poll,
 * so a callback re-arming a due timer cannot keep this loop going. */
static int uring_fire(struct uring *u)
{
	struct ax_timer *t = uring_next_timer(u);
	if (!t)
		return 0;
	int64_t now = ax_now();
	uint64_t lim = u->seq_hi;
	int n = 0;
	while ((t = uring_next_timer(u)) && t->deadline <= now && t->seq <= lim) {
		ax__theap_remove(&u->heap, t);
		t->fire(t);
		n++;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* recv=multishot: provided buffers, per-descriptor queues             */
/* ------------------------------------------------------------------ */

/* user_data of fd's multishot recv: the descriptor and its generation
 * rather than a pointer (the fd table may move), so that the CQEs of a
 * closed descriptor's multishot are recognised and dropped. */
static inline uint64_t uring_ms_ud(int fd, uint32_t gen)
{
	return ((uint64_t)gen << 32) | ((uint64_t)(uint32_t)fd << 3) |
	       URING_T_MSHOT;
}

/* Give buffer bid back to the kernel's ring. */
static void uring_buf_put(struct uring *u, unsigned bid)
{
	io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * u->bufsize,
			      u->bufsize, (unsigned short)bid,
			      io_uring_buf_ring_mask(u->nbufs), 0);
	io_uring_buf_ring_advance(u->br, 1);
}

/* Whether a READ on s can finish now: bytes are queued, or the end. */
static inline bool uring_q_ready(const struct uring_fd *s)
{
	return s->qhead || s->has_end;
}

/* Queue len bytes received into buffer bid behind s's queued bytes. */
static void uring_q_push(struct uring *u, struct uring_fd *s, unsigned bid,
			 unsigned len)
{
	u->bnext[bid] = 0;
	u->blen[bid] = len;
	if (s->qtail)
		u->bnext[s->qtail - 1] = bid + 1;
	else
		s->qhead = bid + 1, s->qoff = 0;
	s->qtail = bid + 1;
}

/* The result of a READ of op->len bytes from s's queue (uring_q_ready):
 * the queued bytes, copied into op's buffer in arrival order, at most
 * op->len; what does not fit stays queued for the next read. Only when no
 * byte is queued, the end (0 or -errno), delivered once. Buffers read to
 * their end go back to the ring. */
static int64_t uring_q_take(struct uring *u, struct uring_fd *s,
			    struct ax_op *op)
{
	size_t got = 0;
	while (s->qhead && got < op->len) {
		unsigned bid = s->qhead - 1;
		size_t n = u->blen[bid] - s->qoff;
		if (n > op->len - got)
			n = op->len - got;
		memcpy((char *)op->buf + got,
		       u->bufs + (size_t)bid * u->bufsize + s->qoff, n);
		got += n;
		s->qoff += (uint32_t)n;
		if (s->qoff == u->blen[bid]) {
			s->qhead = u->bnext[bid];
			s->qoff = 0;
			if (!s->qhead)
				s->qtail = 0;
			uring_buf_put(u, bid);
		}
	}
	if (got > 0 || !s->has_end)
		return (int64_t)got;
	s->has_end = false;
	return s->end;
}

/* Drop s's queue (its descriptor is closed): buffers back to the ring. */
static void uring_q_drop(struct uring *u, struct uring_fd *s)
{
	while (s->qhead) {
		unsigned bid = s->qhead - 1;
		s->qhead = u->bnext[bid];
		uring_buf_put(u, bid);
	}
	s->qtail = s->qoff = 0;
	s->has_end = false;
}

/* Arm fd's multishot recv: every CQE brings bytes in a ring buffer until
 * EOF, an error or an empty ring ends it. Returns 0 or -errno. */
static int uring_ms_arm(struct uring *u, int fd, struct uring_fd *s)
{
	struct io_uring_sqe *sqe;
	int r = uring_get_sqe(u, &sqe);
	if (r < 0)
		return r;
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	if (s->fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, uring_ms_ud(fd, s->gen));
	s->ms_armed = true;
	s->ops++;
	u->inflight++;
	return 0;
}

/* A plain recv (or read, on a pipe) straight into op's buffer, for a READ
 * the multishot cannot serve (an empty ring, ENOTSOCK). Returns 0 or
 * -errno. */
static int uring_ms_plain(struct uring *u, struct uring_fd *s,
			  struct ax_op *op)
{
	struct io_uring_sqe *sqe;
	int r = uring_get_sqe(u, &sqe);
	if (r < 0)
		return r;
	uring_prep(sqe, op, s);
	op->drv_u64[3] = s->gen;
	s->ops++;
	u->inflight++;
	return 0;
}

/* Detach s's waiting reader and complete it with res. */
static void uring_ms_finish(struct uring_fd *s, struct ax_op *op, int64_t res)
{
	s->reader = NULL;
	op->drv_u64[1] &= ~(uint64_t)URING_F_MSWAIT;
	ax_op_complete(op, res);
}

/* A multishot CQE. Bytes join the descriptor's queue; EOF or an error
 * ends the multishot and is queued behind the bytes; an empty ring
 * (ENOBUFS) ends it with nothing queued. Then a waiting reader is served,
 * or the multishot re-armed for it (a plain recv into its own buffer when
 * the ring is empty or the descriptor is no socket). Returns 1 when a
 * READ completed. */
static int uring_ms_cqe(struct uring *u, uint64_t ud, int res, unsigned flags)
{
	int fd = (int)((ud >> 3) & 0x1fffffffu);
	struct uring_fd *s = ax__fdtab_find(&u->fds, fd);
	bool more = flags & IORING_CQE_F_MORE;
	unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
	if (!more) {
		u->inflight--;
		if (s)
			s->ops--;
	}
	if (!s || s->gen != (uint32_t)(ud >> 32)) {
		/* closed meanwhile: nobody reads these bytes */
		if (flags & IORING_CQE_F_BUFFER)
			uring_buf_put(u, bid);
		return 0;
	}
	if (!more)
		s->ms_armed = false;
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		uring_q_push(u, s, bid, (unsigned)res);
	} else if (res == -ENOBUFS) {
		u->ms_enobufs++;
	} else if (res == -ENOTSOCK) {
		s->nosock = true;
	} else if (res != -ECANCELED) {
		/* EOF (0) or an error: after the bytes already queued. An
		 * -ECANCELED nobody asked for (the ring's owner thread
		 * exited) only ends the multishot. */
		s->has_end = true;
		s->end = res > 0 ? -EIO : res;
	}
	struct ax_op *op = s->reader;
	if (!op)
		return 0; /* re-armed by the next READ */
	if (uring_q_ready(s)) {
		uring_ms_finish(s, op, uring_q_take(u, s, op));
		return 1;
	}
	if (s->ms_armed)
		return 0;
	int r;
	if (res == -ENOBUFS || s->nosock) {
		s->reader = NULL;
		op->drv_u64[1] &= ~(uint64_t)URING_F_MSWAIT;
		r = uring_ms_plain(u, s, op);
		if (r == 0)
			return 0;
	} else if ((r = uring_ms_arm(u, fd, s)) == 0) {
		return 0;
	}
	uring_ms_finish(s, op, r);
	return 1;
}

/* A READ on a socket with recv=multishot: served from the queue (through
 * the deferred queue: submit must not complete), else it waits as the
 * descriptor's reader, with the multishot armed. Returns 0 or -errno. */
static int uring_ms_read(struct uring *u, struct uring_fd *s, struct ax_op *op)
{
	if (uring_q_ready(s)) {
		ax__defer(&u->defq, op, uring_q_take(u, s, op));
		return 0;
	}
	if (!s->ms_armed) {
		int r = uring_ms_arm(u, op->fd, s);
		if (r < 0)
			return r;
	}
	s->reader = op;
	op->drv_u64[1] |= URING_F_MSWAIT;
	return 0;
}

/* Register fd at index fd of the fixed-file table (files=fixed); a
 * descriptor the table cannot take stays a plain one, counted. */
static void uring_fix(struct uring *u, int fd, struct uring_fd *s)
{
	if ((unsigned)fd < u->nfixed && uring_enable(u) == 0 &&
	    io_uring_register_files_update(&u->ring, (unsigned)fd, &fd, 1) == 1) {
		s->fixed = true;
		return;
	}
	s->nofix = true;
	u->unfixed++;
}

/* Create the provided-buffer ring (io_uring_register_buf_ring over our
 * own mmap: liburing 2.3 has no io_uring_setup_buf_ring). Returns 0 or
 * -errno. */
static int uring_bufs_init(struct uring *u)
{
	size_t rsz = (size_t)u->nbufs * sizeof(struct io_uring_buf);
	size_t bsz = (size_t)u->nbufs * u->bufsize;
	struct io_uring_buf_reg reg;
	int r;
	void *ring = mmap(NULL, rsz, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ring == MAP_FAILED)
		return -ENOMEM;
	u->br = ring;
	u->bufs = mmap(NULL, bsz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->bufs == MAP_FAILED) {
		u->bufs = NULL;
		return -ENOMEM;
	}
	u->bnext = calloc(u->nbufs, sizeof *u->bnext);
	u->blen = calloc(u->nbufs, sizeof *u->blen);
	if (!u->bnext || !u->blen)
		return -ENOMEM;
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (unsigned long)ring;
	reg.ring_entries = u->nbufs;
	reg.bgid = URING_BGID;
	r = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (r < 0)
		return r;
	io_uring_buf_ring_init(u->br);
	for (unsigned i = 0; i < u->nbufs; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * u->bufsize,
				      u->bufsize, (unsigned short)i,
				      io_uring_buf_ring_mask(u->nbufs), (int)i);
	io_uring_buf_ring_advance(u->br, (int)u->nbufs);
	return 0;
}

/* Free what uring_bufs_init made (the ring's exit unregisters it). */
static void uring_bufs_fini(struct uring *u)
{
	if (u->bufs)
		munmap(u->bufs, (size_t)u->nbufs * u->bufsize);
	if (u->br)
		munmap(u->br, (size_t)u->nbufs * sizeof(struct io_uring_buf));
	free(u->bnext);
	free(u->blen);
}

/* Can this kernel run a multishot recv into a provided-buffer ring? A
 * throwaway ring receives one byte over a socketpair. Returns 0, or
 * -ENOTSUP with the reason in why. */
static int uring_ms_probe(char *why, size_t n)
{
	struct io_uring ring;
	struct io_uring_buf_reg reg;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {.tv_sec = 5};
	char buf[64];
	int sv[2], r;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *br = mmap(NULL, pg, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED) {
		snprintf(why, n, "recv=multishot: cannot map a buffer ring");
		return -ENOMEM;
	}
	r = io_uring_queue_init(4, &ring, 0);
	if (r < 0) {
		snprintf(why, n, "recv=multishot: probe ring: %s", strerror(-r));
		goto unmap;
	}
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = 1;
	reg.bgid = URING_BGID;
	r = io_uring_register_buf_ring(&ring, &reg, 0);
	if (r < 0) {
		snprintf(why, n, "recv=multishot: io_uring_register_buf_ring: %s "
			 "(provided-buffer rings need kernel 5.19)", strerror(-r));
		r = -ENOTSUP;
		goto exit_ring;
	}
	io_uring_buf_ring_init(br);
	io_uring_buf_ring_add(br, buf, sizeof buf, 0, io_uring_buf_ring_mask(1), 0);
	io_uring_buf_ring_advance(br, 1);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		snprintf(why, n, "recv=multishot: probe socketpair: %s", strerror(-r));
		goto exit_ring;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URING_BGID;
	if (write(sv[1], "x", 1) != 1) {
		r = -EIO;
		snprintf(why, n, "recv=multishot: probe write failed");
		goto close_pair;
	}
	r = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
	if (r < 0) {
		snprintf(why, n, "recv=multishot: probe wait: %s", strerror(-r));
		goto close_pair;
	}
	if (cqe->res == 1 && (cqe->flags & IORING_CQE_F_BUFFER) &&
	    (cqe->flags & IORING_CQE_F_MORE)) {
		r = 0;
	} else {
		snprintf(why, n, "recv=multishot: kernel answered %d (flags 0x%x): "
			 "no IORING_RECV_MULTISHOT (kernel 6.0)", cqe->res, cqe->flags);
		r = -ENOTSUP;
	}
	io_uring_cqe_seen(&ring, cqe);
close_pair:
	close(sv[0]);
	close(sv[1]);
exit_ring:
	io_uring_queue_exit(&ring);
unmap:
	munmap(br, pg);
	return r;
}

/* setup=sqpoll: wait until the SQ thread has taken every queued SQE, so
 * that a cancel by descriptor is issued before close(2) (the kernel
 * resolves the descriptor when it issues the cancel). Bounded. */
static void uring_sq_drain(struct uring *u)
{
	for (int i = 0; i < 100000 && io_uring_sq_ready(&u->ring); i++) {
		io_uring_submit(&u->ring); /* wakes an idle SQ thread */
		sched_yield();
	}
}

/* ------------------------------------------------------------------ */
/* ops                                                                 */
/* ------------------------------------------------------------------ */

/* vtable submit: one SQE, handed to the kernel by the next poll; CONNECT
 * first creates its socket. */
static int uring_submit(void *state, struct ax_op *op)
{
	struct uring *u = state;
	struct io_uring_sqe *sqe;
	struct uring_fd *slot = NULL;
	int sfd = -1, r;

	switch (op->kind) {
	case AX_OP_CONNECT:
		sfd = socket(op->addr.ss_family,
			     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sfd < 0)
			return -errno;
		op->drv_u64[2] = (uint64_t)sfd;
		break;
	case AX_OP_ACCEPT:
	case AX_OP_READ:
	case AX_OP_WRITE:
	case AX_OP_PREAD:
	case AX_OP_PWRITE:
		if (op->fd < 0)
			return -EBADF;
		slot = ax__fdtab_get(&u->fds, op->fd);
		if (!slot)
			return -ENOMEM;
		break;
	case AX_OP_CALL:
		return -ENOTSUP; /* no engine pool: the core's pool runs calls */
	default:
		return -EINVAL;
	}
	if (slot && u->fixed_files && !slot->fixed && !slot->nofix)
		uring_fix(u, op->fd, slot);
	if (op->kind == AX_OP_READ && u->multishot && !slot->nosock && op->len > 0)
		return uring_ms_read(u, slot, op);
	r = uring_get_sqe(u, &sqe);
	if (r < 0)
		goto close_socket;
	uring_prep(sqe, op, slot);
	if (slot) {
		slot->ops++;
		op->drv_u64[3] = slot->gen;
	}
	u->inflight++;
	return 0;

close_socket:
	if (sfd >= 0)
		close(sfd);
	return r;
}

/* vtable try_now. accept=now (the default): an ACCEPT takes a queued
 * connection at once with accept4(2), and goes through the ring only when
 * none is queued: through the ring alone, an accept completes once per
 * loop iteration, and with 1,000 busy connections an iteration is long
 * enough that the last connections wait seconds in the accept queue.
 * recv=multishot: a READ whose descriptor has bytes (or
 * its end) queued finishes at once from the queue, with no system call.
 * write=now: a WRITE on a socket is sent at once with a
 * non-blocking send(2), so that the task goes on without waiting for a
 * poll to reap its CQE; what the socket does not take (EAGAIN) continues
 * through the ring from the bytes sent (drv_u64[0]). Otherwise a READ
 * must wait for the peer anyway, and its SQE completes inline when the
 * data is there by the poll that submits it. Why: docs/decisions.md,
 * "io_uring sends at once". */
static int uring_try_now(void *state, struct ax_op *op)
{
	struct uring *u = state;
	if (op->kind == AX_OP_ACCEPT)
		return u->accept_now ? ax__nb_accept(op) : 0;
	if (op->kind == AX_OP_READ && u->multishot && op->len > 0) {
		struct uring_fd *s = ax__fdtab_find(&u->fds, op->fd);
		if (!s || !uring_q_ready(s))
			return 0;
		op->res = uring_q_take(u, s, op);
		return 1;
	}
	if (op->kind != AX_OP_WRITE || !u->send_now)
		return 0;
	struct uring_fd *slot = ax__fdtab_find(&u->fds, op->fd);
	if (slot && slot->nosock)
		return 0; /* a pipe: the ring's read/write path */
	const char *p = op->buf;
	uint64_t *sent = &op->drv_u64[AX__OP_SENT];
	while (*sent < op->len) {
		ssize_t n = send(op->fd, p + *sent, op->len - *sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			*sent += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno == EAGAIN || errno == ENOTSOCK)
			return 0; /* the ring goes on (and learns ENOTSOCK) */
		op->res = -errno;
		return 1;
	}
	op->res = (int64_t)op->len;
	return 1;
}

/* Queue the ASYNC_CANCEL for op. Returns 0 or -errno. */
static int uring_queue_cancel(struct uring *u, struct ax_op *op)
{
	struct io_uring_sqe *sqe;
	int r = uring_get_sqe(u, &sqe);
	if (r < 0)
		return r;
	io_uring_prep_cancel64(sqe, uring_ud(op, URING_T_OP), 0);
	io_uring_sqe_set_data64(sqe, uring_ud(NULL, URING_T_SWALLOW));
	return 0;
}

/* vtable cancel: an ASYNC_CANCEL; the op then completes once from its own
 * CQE. A READ waiting for multishot data is in no SQE: it is detached and
 * completes here, while the multishot stays armed and what it brings
 * stays queued for the next read. An op whose result is already known
 * (deferred) keeps it ([AX-CANCEL-3]). */
static void uring_cancel(void *state, struct ax_op *op)
{
	struct uring *u = state;
	if (ax__deferred(op))
		return;
	if (op->drv_u64[1] & URING_F_MSWAIT) {
		struct uring_fd *s = ax__fdtab_find(&u->fds, op->fd);
		if (s && s->reader == op)
			s->reader = NULL;
		op->drv_u64[1] &= ~(uint64_t)URING_F_MSWAIT;
		ax_op_complete(op, -ECANCELED);
		return;
	}
	op->drv_u64[1] |= URING_F_CANCEL;
	if (op->drv_u64[1] & URING_F_BACKLOG)
		return;
	if (uring_queue_cancel(u, op) < 0) {
		/* no SQE now: retried at the start of the next poll */
		op->drv_u64[1] |= URING_F_BACKLOG;
		ax__oplist_add(&u->cancel_backlog, op);
	}
}

/* Take op off the cancel backlog (its cancel went out, or it completed
 * before). */
static void uring_backlog_del(struct uring *u, struct ax_op *op)
{
	ax__oplist_del(&u->cancel_backlog, op);
	op->drv_u64[1] &= ~(uint64_t)URING_F_BACKLOG;
}

/* Queue the cancels that found the SQ full and its flush failing. */
static void uring_flush_backlog(struct uring *u)
{
	struct ax_op *op;
	while ((op = u->cancel_backlog.head) && uring_queue_cancel(u, op) == 0)
		uring_backlog_del(u, op);
}

/* An op's CQE. Returns 1 when the op completed, 0 when a write goes on. */
static int uring_op_cqe(struct uring *u, struct ax_op *op, int res)
{
	struct io_uring_sqe *sqe;
	uint64_t fl = op->drv_u64[1];
	struct uring_fd *slot = op->kind == AX_OP_CONNECT ? NULL
				: ax__fdtab_find(&u->fds, op->fd);
	int64_t val = res;

	if (res == -ENOTSOCK && slot && !slot->nosock &&
	    (op->kind == AX_OP_READ || op->kind == AX_OP_WRITE)) {
		/* not a socket: retry as a plain read/write, and remember */
		slot->nosock = true;
		if (fl & URING_F_CANCEL)
			val = -ECANCELED;
		else if (slot->gen != (uint32_t)op->drv_u64[3])
			val = -EBADF;
		else if ((val = uring_get_sqe(u, &sqe)) == 0) {
			uring_prep(sqe, op, slot);
			return 0;
		}
		goto complete;
	}
	switch (op->kind) {
	case AX_OP_WRITE:
		if (res < 0)
			break;
		op->drv_u64[0] += (uint64_t)res;
		if (op->drv_u64[0] >= op->len) {
			val = (int64_t)op->len;
			break;
		}
		/* a short send: resubmit the rest, all-or-error [AX-TCP-4] */
		if (res == 0)
			val = -EIO; /* no progress on a stream: do not spin */
		else if (fl & URING_F_CANCEL)
			val = -ECANCELED;
		else if (slot->gen != (uint32_t)op->drv_u64[3])
			val = -EBADF; /* closed meanwhile: the number may be reused */
		else if ((val = uring_get_sqe(u, &sqe)) == 0) {
			uring_prep(sqe, op, slot);
			return 0;
		}
		break;
	case AX_OP_CONNECT:
		if (res == 0) {
			val = (int64_t)op->drv_u64[2];
		} else {
			close((int)op->drv_u64[2]);
		}
		break;
	default:
		break;
	}
complete:
	/* an -ECANCELED nobody asked for came from close_fd's cancel */
	if (val == -ECANCELED && !(fl & URING_F_CANCEL))
		val = -EBADF;
	if (fl & URING_F_BACKLOG)
		uring_backlog_del(u, op);
	if (slot)
		slot->ops--;
	u->inflight--;
	ax_op_complete(op, val);
	return 1;
}

/* Drain the CQ and deliver. Returns the completions delivered; *woke is
 * set when the wake read completed. */
static int uring_reap(struct uring *u, bool *woke)
{
	struct io_uring_cqe *cqes[URING_BATCH];
	struct {
		uint64_t ud;
		int res;
		unsigned flags;
	} ev[URING_BATCH];
	int n = 0;
	unsigned k;

	/* peek_batch also flushes CQ overflow and, on COOP/DEFER rings with
	 * TASKRUN_FLAG, runs pending task work when the ring asks for it */
	while ((k = io_uring_peek_batch_cqe(&u->ring, cqes, URING_BATCH)) > 0) {
		/* copy out and release the slots first: handlers queue SQEs */
		for (unsigned i = 0; i < k; i++) {
			ev[i].ud = cqes[i]->user_data;
			ev[i].res = cqes[i]->res;
			ev[i].flags = cqes[i]->flags;
		}
		io_uring_cq_advance(&u->ring, k);
		for (unsigned i = 0; i < k; i++) {
			uint64_t ud = ev[i].ud;
			switch (ud & URING_T_MASK) {
			case URING_T_OP:
				n += uring_op_cqe(u, uring_ud_ptr(ud), ev[i].res);
				break;
			case URING_T_WAKE:
				uring_wake_cqe(u);
				*woke = true;
				break;
			case URING_T_KTIMER:
				uring_ktimer_cqe(u, uring_ud_ptr(ud));
				break;
			case URING_T_MSHOT:
				n += uring_ms_cqe(u, ud, ev[i].res, ev[i].flags);
				break;
			default:
				/* cancel and timeout-remove replies, liburing's
				 * own timeout (LIBURING_UDATA_TIMEOUT): nothing
				 * to deliver */
				break;
			}
		}
	}
	return n;
}

/* Under valgrind a wait is cut to this, and only there: valgrind (3.19)
 * keeps its one-thread-at-a-time lock while a thread sits in
 * io_uring_enter, so a wait with no end would starve the process's other
 * threads (a server's signal thread, the pool) for good. */
#define URING_VALGRIND_WAIT_NS (10 * INT64_C(1000000))

/* Nanoseconds until the next timer may fire (0 when due), or -1 when none
 * can fire before a kernel completion arrives (but see above). */
static int64_t uring_next_timeout(struct uring *u)
{
	struct ax_timer *t = uring_next_timer(u);
	int64_t d = t ? t->deadline - ax_now() : -1;
	if (t && d < 0)
		d = 0;
	if (u->under_valgrind && (d < 0 || d > URING_VALGRIND_WAIT_NS))
		d = URING_VALGRIND_WAIT_NS;
	return d;
}

/* Hand queued SQEs to the kernel without waiting. Without TASKRUN_FLAG a
 * COOP/DEFER ring must also enter to run its task work. */
static int uring_submit_nowait(struct uring *u)
{
	int r = u->nb_enter ? io_uring_submit_and_get_events(&u->ring)
			    : io_uring_submit(&u->ring);
	return r == -EINTR || r == -EAGAIN || r == -EBUSY || r == -ETIME ? 0 : r;
}

/* vtable poll: one io_uring_enter per iteration where possible (submit,
 * wait with the timer timeout), then reap and fire. */
static int uring_poll(void *state, bool block)
{
	struct uring *u = state;
	bool woke = false;
	int n = 0, r;

	r = uring_enable(u);
	if (r < 0)
		return r;
	uring_flush_backlog(u);
	if (!u->wake_armed)
		uring_arm_wake(u);
	n += ax__defq_flush(&u->defq);

	/* Non-blocking, or something already waits in the CQ: submit, reap,
	 * fire. A blocking poll with an empty CQ goes straight to the wait,
	 * which submits too: one io_uring_enter per loop iteration. */
	if (!block || n || io_uring_cq_ready(&u->ring)) {
		r = uring_submit_nowait(u);
		if (r < 0)
			return r;
		n += uring_reap(u, &woke);
		n += uring_fire(u);
	}
	bool batched = false;
	while (block && n == 0 && !woke) {
		struct io_uring_cqe *cqe;
		int64_t ns = uring_next_timeout(u);
		unsigned want = 1;
		if (u->batch > 1 && u->inflight > 1 && !batched) {
			/* batch=N: wait for up to N completions, but never
			 * longer than batch_us (nor past the next timer); when
			 * that brought nothing, the next wait is an ordinary
			 * one, so that an idle loop does not wake every
			 * batch_us */
			batched = true;
			int64_t cap = (int64_t)u->batch_us * 1000;
			want = u->inflight < u->batch ? u->inflight : u->batch;
			if (ns < 0 || ns > cap)
				ns = cap;
		}
		if (ns == 0) {
			r = uring_submit_nowait(u);
		} else if (ns < 0) {
			u->kit.polls++;
			r = io_uring_submit_and_wait(&u->ring, 1);
		} else {
			struct __kernel_timespec ts = {
				.tv_sec = ns / 1000000000,
				.tv_nsec = ns % 1000000000,
			};
			u->kit.polls++;
			r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, want,
							     &ts, NULL);
		}
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
		/* under valgrind a wait that ran out hands the lock over: only a
		 * blocking system call such as sched_yield lets valgrind run the
		 * other threads (see URING_VALGRIND_WAIT_NS) */
		if (r == -ETIME && u->under_valgrind)
			sched_yield();
		n += uring_reap(u, &woke);
		n += uring_fire(u);
		if (r == -EINTR)
			break; /* a signal: let the core look around */
	}
	u->kit.events += (uint64_t)n;
	return n;
}

/* vtable close_fd: cancel the fd's ops in the kernel before close(2);
 * they complete later with -EBADF. */
static int uring_close_fd(void *state, int fd)
{
	struct uring *u = state;
	struct io_uring_sqe *sqe;
	struct uring_fd *slot = ax__fdtab_find(&u->fds, fd);
	if (slot) {
		slot->gen++;
		slot->nosock = false; /* the number may come back as a socket */
		/* recv=multishot: the queued bytes are dropped, a waiting
		 * reader completes with -EBADF at the next poll; the old
		 * multishot is cancelled below and its CQEs are stale */
		uring_q_drop(u, slot);
		slot->ms_armed = false;
		if (slot->reader) {
			struct ax_op *op = slot->reader;
			slot->reader = NULL;
			op->drv_u64[1] &= ~(uint64_t)URING_F_MSWAIT;
			ax__defer(&u->defq, op, -EBADF);
		}
		/* The kernel resolves a cancel's fd when it issues it, so the
		 * cancel must reach the kernel before close(2) (and before the
		 * number can be reused). Ops queued on fd are submitted ahead
		 * of it and cancelled too. */
		if (slot->ops > 0 && uring_enable(u) == 0 &&
		    uring_get_sqe(u, &sqe) == 0) {
			io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, uring_ud(NULL, URING_T_SWALLOW));
			io_uring_submit(&u->ring);
			if (u->mode == URING_SETUP_SQPOLL)
				uring_sq_drain(u);
		}
		/* files=fixed: the table holds a reference to the file, so
		 * the socket would outlive close(2) without this */
		if (slot->fixed) {
			int none = -1;
			io_uring_register_files_update(&u->ring, (unsigned)fd,
						       &none, 1);
			slot->fixed = false;
		}
		slot->nofix = false;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

/* Free a list of kernel-timer records. */
static void uring_free_ktimers(struct uring_ktimer *k)
{
	while (k) {
		struct uring_ktimer *next = k->next;
		free(k);
		k = next;
	}
}

/* vtable init: parse engine_flags, create the wake eventfd and the ring,
 * check the opcodes, arm the wake read. */
static int uring_init(void **state, const struct ax_rt_opts *opts)
{
	struct uring *u = calloc(1, sizeof *u);
	int mode, r;
	if (!u)
		return -ENOMEM;
	struct uring_conf conf = {u, URING_SETUP_AUTO};
	char why[200];
	u->entries = URING_ENTRIES;
	u->nbufs = URING_BUFS_DEFAULT;
	u->bufsize = URING_BUFSIZE_DEFAULT;
	u->batch = 1;
	/* accept=now by default: docs/decisions.md, "io_uring at its best" */
	u->accept_now = true;
	u->batch_us = 50;
	u->sq_idle_ms = 2;
	/* write=ring by default: docs/decisions.md, "io_uring: writes through
	 * the ring, or sent at once" */
	u->send_now = false;
	/* AX_IO_URING_FLAGS (same syntax) reaches the driver in every child
	 * the harness starts; the runtime's own engine_flags apply after it */
	r = ax__flags_each(getenv("AX_IO_URING_FLAGS"), uring_flag, &conf);
	if (r == 0)
		r = ax__flags_each(opts ? opts->engine_flags : NULL, uring_flag, &conf);
	if (r < 0)
		goto free_state;
	mode = conf.mode;
	u->under_valgrind = ax__kit_under_valgrind();
	ax__theap_init(&u->heap);
	ax__theap_init(&u->kheap);
	ax__fdtab_init(&u->fds, sizeof(struct uring_fd));
	/* no EFD_NONBLOCK: nobody read(2)s it directly, and io_uring may
	 * complete a read of an O_NONBLOCK file with -EAGAIN instead of
	 * polling (6.x polls either way; a blocking fd is safe everywhere) */
	r = ax__wake_open(&u->wake, false);
	if (r < 0)
		goto free_state;
	r = uring_setup_ring(u, mode);
	if (r < 0) {
		if (mode == URING_SETUP_SQPOLL)
			fprintf(stderr, "io_uring: setup=sqpoll: io_uring_setup "
				"refused IORING_SETUP_SQPOLL\n");
		goto close_efd;
	}
	uring_describe(u);
	r = uring_check_ops(&u->ring, NULL, 0, &u->kit);
	if (r < 0)
		goto exit_ring;
	/* a variant asked for and not available fails here, with its reason
	 * on stderr: it never runs as something else under its name */
	if (u->multishot) {
		r = uring_ms_probe(why, sizeof why);
		if (r == 0 && (r = uring_bufs_init(u)) < 0)
			snprintf(why, sizeof why, "recv=multishot: buffer ring: %s",
				 strerror(-r));
		if (r < 0)
			goto unavailable;
	}
	if (u->fixed_files) {
		struct rlimit rl;
		u->nfixed = URING_FIXED_MAX;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < u->nfixed)
			u->nfixed = (unsigned)rl.rlim_cur;
		r = io_uring_register_files_sparse(&u->ring, u->nfixed);
		if (r < 0) {
			snprintf(why, sizeof why, "files=fixed: "
				 "io_uring_register_files_sparse(%u): %s (kernel 5.19)",
				 u->nfixed, strerror(-r));
			goto unavailable;
		}
	}
	uring_arm_wake(u); /* an empty SQ cannot fail */
	*state = u;
	return 0;

unavailable:
	fprintf(stderr, "io_uring: %s\n", why);
	r = r == -EINVAL || r == -ENOTSUP ? -ENOTSUP : r;
exit_ring:
	io_uring_queue_exit(&u->ring);
	uring_bufs_fini(u);
close_efd:
	ax__wake_close(&u->wake);
free_state:
	free(u);
	return r;
}

/* vtable fini. */
static void uring_fini(void *state)
{
	struct uring *u = state;
	/* exiting the ring cancels the wake read and any disarmed timeout */
	io_uring_queue_exit(&u->ring);
	uring_bufs_fini(u);
	ax__wake_close(&u->wake);
	uring_free_ktimers(u->kt_live);
	uring_free_ktimers(u->kt_free);
	ax__theap_fini(&u->heap);
	ax__theap_fini(&u->kheap);
	ax__fdtab_fini(&u->fds);
	free(u);
}

const struct ax_driver ax_driver_io_uring = {
	.version = AX_DRIVER_VERSION,
	.name = "io_uring",
	.summary = "liburing completion engine: DEFER_TASKRUN when available, "
		   "timer heap behind the wait timeout, eventfd-read wake",
	.features = AX_FEAT_TCP | AX_FEAT_FILE | AX_FEAT_NATIVE_CANCEL |
		    AX_FEAT_COMPLETION | AX_FEAT_XTHREAD,
	.probe = uring_probe,
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.timer_arm = uring_timer_arm,
	.timer_cancel = uring_timer_cancel,
	.poll = uring_poll,
	.wake = uring_wake,
	.close_fd = uring_close_fd,
	.engine_info = ax__kit_info,
	.stats = ax__kit_stats, /* liburing decides when to enter */
	.try_now = uring_try_now,
};
