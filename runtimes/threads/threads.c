/*
 * threads.c - the thread-per-task design, runtime "threads" (the sync
 * oracle): every ax task is a kernel thread, I/O is the kernel's blocking
 * wait (ppoll) followed by the system call, timers are the kernel's (futex
 * and ppoll timeouts), channels are the shared mutex-and-queue channels.
 * It is a whole implementation of ax.h beside the core (design.h), not a
 * driver under the core's scheduler.
 *
 * The token. ax.h says a runtime is single-threaded: tasks share data
 * without locks, a task runs until it suspends, spawn is eager, a yield lets
 * every ready task run once ([AX-TASK-1], [AX-TASK-3]). So one task of a
 * runtime runs ax code at a time: it holds the runtime's token. A task that
 * suspends hands the token to the head of the ready queue (a futex word per
 * task, `go`) and blocks in the kernel on its own thread; when its wait ends
 * it is appended to the ready queue (or takes the token if it is free). The
 * kernel decides when a blocked thread wakes; the token decides the order in
 * which ready tasks run, and keeps the core's FIFO order.
 *
 * Waiting and interruption (docs/decisions.md, "The thread-per-task
 * oracle"). A blocked task waits either
 *   - in ppoll([its descriptor], deadline, mask without SIGURG): I/O. The
 *     thread keeps SIGURG blocked at all other times, so a SIGURG sent to it
 *     (pthread_kill) is either delivered inside ppoll, which returns EINTR,
 *     or stays pending until its next ppoll, which then returns at once:
 *     there is no window between "check the flags" and "sleep" in which an
 *     interrupt is lost (the race a handler without SA_RESTART would have);
 *   - or in a futex wait on its `readied` word with an absolute
 *     CLOCK_MONOTONIC timeout: sleeps, channels, joins, the pool.
 * Whoever ends a wait (ax_cancel, ax_close, a channel release, a joined
 * task's end, a pool worker, a timer) does so under the runtime's mutex:
 * it sets `readied`, queues the task for the token, then wakes the thread
 * (futex wake, or SIGURG for an I/O wait). A woken task checks, holding the
 * token, why it woke: every system call on a descriptor is made while
 * holding the token, and ax_close and ax_cancel run holding it, so a
 * cancelled or closed operation never touches its descriptor or buffer
 * again, and an operation whose system call succeeded returns its real
 * result ([AX-CANCEL-2], [AX-CANCEL-3], [AX-TCP-15]).
 *
 * Timers: a sleeper's futex wait times out in the kernel; the first sleeper
 * to wake fires every due sleep in (deadline, arming order) from a heap
 * (theap.h), so equal deadlines end in arming order ([AX-TIME-2]).
 *
 * Stack overflows: a thread's stack has glibc's guard page; a SIGSEGV
 * handler on an alternate stack kept in the thread's first frame names the
 * task ([AX-TASK-9]).
 *
 * Not here, declared by a feature bit (docs/conformance.md): 100k live
 * tasks (AX_FEAT_CHEAP_TASKS: a task is a thread, and pid_max and
 * threads-max bound them, 32768 threads by default).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "design.h"
#include "kit.h"
#include "theap.h"

/* The signal that ends a task's ppoll (blocked everywhere else). */
#define THR_WAKE_SIG SIGURG

#define THR_FEATURES (AX_FEAT_TCP | AX_FEAT_FILE | AX_FEAT_XTHREAD | \
		      AX_FEAT_STACK_CHECK | AX_FEAT_ONE_WORKER)

/* The alternate signal stack of a task thread, in its first frame: an
 * overflow faults at the other end of the stack, so a report can run here
 * ([AX-TASK-9]). The thread's stack is this much larger than asked. */
#define THR_ALTSTACK (16 * 1024)

enum thr_state { TS_READY, TS_RUNNING, TS_BLOCKED, TS_DONE };
enum thr_wait {
	TW_NONE, TW_IO, TW_SLEEP, TW_CHAN_SEND, TW_CHAN_RECV, TW_JOIN, TW_POOL,
	TW_FILE, TW_YIELD
};
enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DROPPED };

struct thr_rt;

struct thr_job {
	intptr_t (*fn)(void *);
	void *arg;
	intptr_t result;
	int state;
	struct ax_task *task;
	struct thr_job *next;
};

/* A task. The public ax_task handle points to one (ax_task is opaque). */
struct ax_task {
	struct thr_rt *rt;
	pthread_t thread;
	bool loop;               /* the runtime thread's stand-in (posts) */
	ax_task_fn fn;
	void *arg;
	intptr_t result;
	uint64_t id;
	char name[32];
	const char *spawn_file;
	int spawn_line;
	char *stack_lo;          /* lowest usable byte of its stack (about) */
	/* under rt->mu */
	enum thr_state state;
	enum thr_wait wait;
	const void *wait_obj;
	int wait_fd;
	const char *wait_what;   /* the operation, for dumps */
	bool in_rq;
	struct ax_task *rq_next;
	bool ended, detached, released, reaped;
	struct ax_task *joiner;  /* stays set after the end, until it resumed */
	bool join_done;          /* this joiner was woken by its target's end */
	struct ax_task *all_next, *all_prev, *zombie_next;
	struct thr_job *job;
	struct ax_timer timer;   /* a sleep, in rt->timers while armed */
	bool timer_armed, timer_fired;
	int64_t last_run;
	/* futex words */
	atomic_int readied;      /* its wait has ended (set under rt->mu) */
	atomic_int go;           /* the token is its */
	/* touched only while holding the token */
	bool cancel_pending;
	bool closed;             /* its descriptor was closed by ax_close */
	unsigned fast_streak;    /* I/O calls in a row that did not wait */
	struct ax_deadline *dl;
};

struct thr_msg {
	struct thr_msg *next;
	void (*fn)(void *);
	void *arg;
};

/* A descriptor's pending read (or accept) and write ([AX-TCP-9]). */
struct thr_sides {
	struct ax_task *rd, *wr;
};

struct thr_rt {
	struct ax__rt_head head;       /* first (design.h) */
	struct ax_rt_opts opts;
	pthread_mutex_t mu;
	pthread_cond_t loop_cv;        /* posts arrived, a task ended */
	pthread_cond_t pool_cv;        /* a job was queued, or stop */
	bool running;
	struct ax_task *holder;        /* the token */
	struct ax_task *rq_head, *rq_tail;
	struct ax_task loop_task;      /* the runtime thread, running posts */
	bool loop_queued;              /* ... is queued for (or has) the token */
	struct ax_task *all;           /* tasks not yet released */
	struct ax_task *zombies;       /* ended, thread not yet joined */
	size_t n_threads;              /* task threads not yet joined */
	uint64_t next_id, timer_seq;
	struct ax_theap timers;
	struct thr_msg *inbox_head, *inbox_tail;
	struct ax__fdtab busy;         /* struct thr_sides; token holder only */
	/* the blocking pool */
	struct thr_job *jobs_head, *jobs_tail;
	pthread_t *pool;
	unsigned pool_n;
	bool pool_stop;
	/* hog detection: when the holder took the token */
	int64_t hold_since;
	int hog_reports;
	/* counters (under mu) */
	uint64_t n_switches, n_spawned, n_live, n_hogs, n_posts, n_events;
	atomic_ullong n_polls;
	char info[160];
};

static _Thread_local struct ax_task *thr_self;     /* the running task */
static _Thread_local struct thr_rt *thr_tls_rt;    /* the thread's runtime */
static _Thread_local sigset_t thr_wait_mask;       /* inside ppoll */

static int64_t thr_coarse_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* futex words                                                         */
/* ------------------------------------------------------------------ */

static void thr_futex_wake(atomic_int *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wait until *w is non-zero or CLOCK_MONOTONIC reaches `until`
 * (INT64_MAX: no limit). */
static void thr_futex_wait(atomic_int *w, int64_t until)
{
	if (atomic_load_explicit(w, memory_order_acquire))
		return;
	if (until == INT64_MAX) {
		syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		return;
	}
	struct timespec ts = {until / 1000000000, until % 1000000000};
	syscall(SYS_futex, w, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

/* ------------------------------------------------------------------ */
/* the token                                                           */
/* ------------------------------------------------------------------ */

static void thr_hog_check(struct thr_rt *rt, struct ax_task *t)
{
	if (!rt->opts.hog_threshold_ns || t->loop)
		return;
	int64_t ran = thr_coarse_now() - rt->hold_since;
	if (ran < (int64_t)rt->opts.hog_threshold_ns)
		return;
	rt->n_hogs++;
	if (rt->hog_reports < 10) {
		rt->hog_reports++;
		fprintf(stderr,
			"ax: hog: task %llu '%s' (spawned at %s:%d) ran %.1f ms "
			"without suspending\n",
			(unsigned long long)t->id, t->name,
			t->spawn_file ? t->spawn_file : "?", t->spawn_line,
			ran / 1e6);
	}
}

static void thr_give(struct thr_rt *rt, struct ax_task *t)
{
	rt->holder = t;
	/* Set here, under mu, not by t's thread when it wakes: other threads
	 * read t->state under mu (thr_wake_locked, thr_cancel), so a write
	 * outside it was a data race (ThreadSanitizer, conformance case
	 * cancel.recv_no_loss). The holder is the running task. */
	t->state = TS_RUNNING;
	rt->n_switches++;
	atomic_store_explicit(&t->go, 1, memory_order_release);
	if (t != thr_self)
		thr_futex_wake(&t->go);
}

/* Under mu: hand the token to the head of the ready queue, or free it. */
static void thr_fire_due(struct thr_rt *rt, int64_t now);

static void thr_hand_next(struct thr_rt *rt)
{
	/* Sleeps that are due join the queue before the token moves on: a
	 * sleeper's own thread notices its deadline only when the kernel runs
	 * it, which on a busy machine can be long after tasks doing ready I/O
	 * have passed the token round many times (conformance cases
	 * time.lateness_busy, tcp.lateness_io). One clock read per hand-off,
	 * only while a sleep is armed. */
	if (ax__theap_min(&rt->timers))
		thr_fire_due(rt, ax_now());
	struct ax_task *n = rt->rq_head;
	if (!n) {
		rt->holder = NULL;
		return;
	}
	rt->rq_head = n->rq_next;
	if (!rt->rq_head)
		rt->rq_tail = NULL;
	n->in_rq = false;
	thr_give(rt, n);
}

/* Under mu: t wants the token (at the back, or at the front: the parent
 * of an eager spawn). */
static void thr_enqueue(struct thr_rt *rt, struct ax_task *t, bool front)
{
	if (!rt->holder) {
		thr_give(rt, t);
		return;
	}
	t->in_rq = true;
	t->state = TS_READY;
	if (front) {
		t->rq_next = rt->rq_head;
		rt->rq_head = t;
		if (!rt->rq_tail)
			rt->rq_tail = t;
	} else {
		t->rq_next = NULL;
		if (rt->rq_tail)
			rt->rq_tail->rq_next = t;
		else
			rt->rq_head = t;
		rt->rq_tail = t;
	}
}

/* Wait for the token (t was queued or given it). */
static void thr_token_wait(struct ax_task *t)
{
	while (!atomic_load_explicit(&t->go, memory_order_acquire))
		syscall(SYS_futex, &t->go, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	atomic_store_explicit(&t->go, 0, memory_order_relaxed);
	t->rt->hold_since = thr_coarse_now();
	t->last_run = t->rt->hold_since;
}

/* Under mu: end t's wait (it is blocked, not yet readied): queue it for
 * the token and wake its thread, wherever it waits. */
static void thr_wake_locked(struct thr_rt *rt, struct ax_task *t)
{
	if (t->state != TS_BLOCKED || atomic_load(&t->readied))
		return;
	atomic_store_explicit(&t->readied, 1, memory_order_release);
	rt->n_events++;
	thr_enqueue(rt, t, false);
	if (t == thr_self)
		return;
	if (t->wait == TW_IO)
		pthread_kill(t->thread, THR_WAKE_SIG);
	else
		thr_futex_wake(&t->readied);
}

/* The holder t suspends: wait kind w; the token goes to the next ready
 * task. Under mu. */
static void thr_block_locked(struct thr_rt *rt, struct ax_task *t,
			     enum thr_wait w, const void *obj, int fd,
			     const char *what)
{
	thr_hog_check(rt, t);
	t->state = TS_BLOCKED;
	t->wait = w;
	t->wait_obj = obj;
	t->wait_fd = fd;
	t->wait_what = what;
	atomic_store_explicit(&t->readied, 0, memory_order_relaxed);
	thr_hand_next(rt);
}

static void thr_block(struct ax_task *t, enum thr_wait w, const void *obj,
		      int fd, const char *what)
{
	pthread_mutex_lock(&t->rt->mu);
	thr_block_locked(t->rt, t, w, obj, fd, what);
	pthread_mutex_unlock(&t->rt->mu);
}

/* Fire every sleep due at `now`, in (deadline, seq) order. Under mu. */
static void thr_fire_due(struct thr_rt *rt, int64_t now)
{
	struct ax_timer *tm;
	while ((tm = ax__theap_pop_due(&rt->timers, now))) {
		struct ax_task *t = tm->owner;
		t->timer_armed = false;
		t->timer_fired = true;
		thr_wake_locked(rt, t);
	}
}

/* Blocked (thr_block), wait until the wait ends or `until` passes; then
 * take the token back. A sleep (timer) ends through thr_fire_due. */
static void thr_park(struct ax_task *t, int64_t until, bool timer)
{
	struct thr_rt *rt = t->rt;
	while (!atomic_load_explicit(&t->readied, memory_order_acquire)) {
		thr_futex_wait(&t->readied, until);
		atomic_fetch_add_explicit(&rt->n_polls, 1, memory_order_relaxed);
		if (until != INT64_MAX && ax_now() >= until &&
		    !atomic_load(&t->readied)) {
			pthread_mutex_lock(&rt->mu);
			if (timer)
				thr_fire_due(rt, ax_now());
			else
				thr_wake_locked(rt, t);
			pthread_mutex_unlock(&rt->mu);
		}
	}
	thr_token_wait(t);
}

/* Blocked on fd (TW_IO), wait in ppoll until it is ready for ev, the wait
 * is ended by someone else (SIGURG), or `until` passes; then take the
 * token back. */
static void thr_park_fd(struct ax_task *t, int fd, short ev, int64_t until)
{
	struct thr_rt *rt = t->rt;
	while (!atomic_load_explicit(&t->readied, memory_order_acquire)) {
		struct timespec ts, *tsp = NULL;
		bool self = false;
		if (until != INT64_MAX) {
			int64_t rel = until - ax_now();
			if (rel <= 0) {
				self = true;
			} else {
				ts.tv_sec = rel / 1000000000;
				ts.tv_nsec = rel % 1000000000;
				tsp = &ts;
			}
		}
		if (!self) {
			struct pollfd p = {.fd = fd, .events = ev};
			int r = ppoll(&p, 1, tsp, &thr_wait_mask);
			atomic_fetch_add_explicit(&rt->n_polls, 1,
						  memory_order_relaxed);
			self = r > 0 || (until != INT64_MAX && ax_now() >= until);
		}
		if (self) {
			pthread_mutex_lock(&rt->mu);
			thr_wake_locked(rt, t);
			pthread_mutex_unlock(&rt->mu);
		}
	}
	thr_token_wait(t);
}

/* ------------------------------------------------------------------ */
/* entry checks                                                        */
/* ------------------------------------------------------------------ */

static int64_t thr_deadline(const struct ax_task *t)
{
	return t->dl ? t->dl->effective : INT64_MAX;
}

/* -EPERM outside a task, a pending cancel (consumed), an expired
 * deadline ([AX-GEN-1], [AX-GEN-2]). */
static int thr_enter(struct ax_task **tp)
{
	struct ax_task *t = thr_self;
	if (!t)
		return -EPERM;
	*tp = t;
	if (t->cancel_pending) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	if (t->dl && ax_now() >= t->dl->effective)
		return -ETIMEDOUT;
	return 0;
}

/* After a wait: a cancel that arrived (consumed), else a passed
 * deadline, else 0. */
static int thr_interrupted(struct ax_task *t)
{
	if (t->cancel_pending) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	if (t->dl && ax_now() >= t->dl->effective)
		return -ETIMEDOUT;
	return 0;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

static void thr_sig_nop(int sig)
{
	(void)sig;
}

/* The oracle's part of the SIGSEGV handler (design.c): a fault just below
 * the running task's stack is an overflow ([AX-TASK-9]). Runs on the
 * thread's alternate stack. */
static void thr_segv_report(const void *fault)
{
	struct ax_task *t = thr_self;
	const char *addr = fault;
	if (t && t->stack_lo && addr < t->stack_lo + 4096 &&
	    addr >= t->stack_lo - 64 * 1024) {
		char msg[160];
		int n = snprintf(msg, sizeof msg,
				 "ax: stack overflow in task %llu '%s': raise "
				 "ax_rt_opts.stack_size (%zu bytes)\n",
				 (unsigned long long)t->id, t->name,
				 t->rt->opts.stack_size);
		if (n > 0 && write(2, msg, (size_t)n) < 0)
			n = 0;
	}
}

static pthread_once_t thr_sig_once = PTHREAD_ONCE_INIT;

/* SIGURG's handler does nothing: its delivery inside ppoll is the point.
 * Installed once per process (SIGURG is ignored by default, so a stray
 * one is as harmless as before). */
static void thr_sig_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = thr_sig_nop;
	sigemptyset(&sa.sa_mask);
	sigaction(THR_WAKE_SIG, &sa, NULL);
}

static int thr_create(ax_rt **out, const char *name, const struct ax_rt_opts *o)
{
	struct ax_rt_opts def;
	(void)name;
	if (!o) {
		ax_rt_opts_init(&def);
		o = &def;
	}
	if (ax__opts_check(o) < 0)
		return -EINVAL;
	if (o->engine_flags && o->engine_flags[0])
		return -EINVAL; /* it takes no settings */
	struct thr_rt *rt = calloc(1, sizeof *rt);
	if (!rt)
		return -ENOMEM;
	rt->head.design = &ax__design_threads;
	rt->opts = *o;
	rt->opts.engine_flags = NULL;
	rt->next_id = 1;
	rt->loop_task.rt = rt;
	rt->loop_task.loop = true;
	pthread_mutex_init(&rt->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->loop_cv, &ca);
	pthread_cond_init(&rt->pool_cv, &ca);
	pthread_condattr_destroy(&ca);
	ax__theap_init(&rt->timers);
	ax__fdtab_init(&rt->busy, sizeof(struct thr_sides));
	snprintf(rt->info, sizeof rt->info,
		 "thread per task, stack %zu KiB, ppoll + futex waits, "
		 "pool %u threads", o->stack_size / 1024, o->pool_threads);
	pthread_once(&thr_sig_once, thr_sig_install);
	*out = (ax_rt *)rt;
	return 0;
}

static void thr_pool_stop(struct thr_rt *rt);

static void thr_task_free(struct thr_rt *rt, struct ax_task *t)
{
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		rt->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	free(t);
}

static int thr_destroy(ax_rt *r)
{
	struct thr_rt *rt = (struct thr_rt *)r;
	if (rt->running)
		return -EBUSY;
	for (struct ax_task *t = rt->all; t; t = t->all_next)
		if (!t->ended)
			return -EBUSY;
	while (rt->all)
		thr_task_free(rt, rt->all);
	while (rt->inbox_head) {
		struct thr_msg *m = rt->inbox_head;
		rt->inbox_head = m->next;
		free(m);
	}
	thr_pool_stop(rt);
	ax__theap_fini(&rt->timers);
	ax__fdtab_fini(&rt->busy);
	pthread_cond_destroy(&rt->loop_cv);
	pthread_cond_destroy(&rt->pool_cv);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
	return 0;
}

static void *thr_task_main(void *arg)
{
	struct ax_task *t = arg;
	struct thr_rt *rt = t->rt;
	thr_self = t;
	thr_tls_rt = rt;
	ax__tls_design = &ax__design_threads;
	pthread_sigmask(SIG_SETMASK, NULL, &thr_wait_mask);
	sigdelset(&thr_wait_mask, THR_WAKE_SIG);
	/* the alternate stack for an overflow report, in this frame (the top
	 * of the stack), and the stack's low end, to recognise the fault */
	char alt[THR_ALTSTACK];
	stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
	sigaltstack(&ss, NULL);
	t->stack_lo = alt - rt->opts.stack_size;
	thr_token_wait(t);
	t->result = t->fn(t->arg);
	pthread_mutex_lock(&rt->mu);
	thr_hog_check(rt, t);
	t->ended = true;
	t->state = TS_DONE;
	rt->n_live--;
	/* The joiner takes the target only if the end is what wakes it: one
	 * already woken by a cancel or its deadline returns that error
	 * ([AX-TASK-2]). t->joiner stays set either way, so no other task can
	 * join or detach (free) t before its joiner has run again. */
	if (t->joiner && !atomic_load(&t->joiner->readied)) {
		t->joiner->join_done = true;
		thr_wake_locked(rt, t->joiner);
	}
	t->zombie_next = rt->zombies;
	rt->zombies = t;
	pthread_cond_signal(&rt->loop_cv);
	thr_hand_next(rt);
	pthread_mutex_unlock(&rt->mu);
	stack_t off = {.ss_flags = SS_DISABLE};
	sigaltstack(&off, NULL);
	return NULL;
}

/* A new task and its thread, waiting for the token. */
static int thr_task_new(struct thr_rt *rt, ax_task_fn fn, void *arg,
			const char *name, const char *file, int line,
			struct ax_task **out)
{
	struct ax_task *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->rt = rt;
	t->fn = fn;
	t->arg = arg;
	if (name)
		snprintf(t->name, sizeof t->name, "%s", name);
	t->spawn_file = file;
	t->spawn_line = line;
	t->state = TS_READY;
	t->timer.drv_index = AX_THEAP_NONE;
	t->timer.owner = t;
	t->last_run = thr_coarse_now();
	pthread_attr_t a;
	pthread_attr_init(&a);
	size_t ss = rt->opts.stack_size + THR_ALTSTACK + 4096;
	if (ss < (size_t)PTHREAD_STACK_MIN)
		ss = (size_t)PTHREAD_STACK_MIN;
	pthread_attr_setstacksize(&a, ss);
	pthread_mutex_lock(&rt->mu);
	t->id = rt->next_id++;
	/* the thread inherits this thread's mask: SIGURG and SIGPIPE blocked
	 * (ax_rt_run blocks them on the runtime thread) */
	int e = pthread_create(&t->thread, &a, thr_task_main, t);
	pthread_attr_destroy(&a);
	if (e) {
		pthread_mutex_unlock(&rt->mu);
		free(t);
		return -ENOMEM;
	}
	t->all_next = rt->all;
	if (rt->all)
		rt->all->all_prev = t;
	rt->all = t;
	rt->n_spawned++;
	rt->n_live++;
	rt->n_threads++;
	pthread_mutex_unlock(&rt->mu);
	*out = t;
	return 0;
}

static int thr_spawn(ax_task **out, ax_task_fn fn, void *arg, const char *name,
		     const char *file, int line)
{
	struct thr_rt *rt = thr_tls_rt;
	struct ax_task *t, *self = thr_self;
	if (!rt)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	int r = thr_task_new(rt, fn, arg, name, file, line, &t);
	if (r < 0)
		return r;
	if (out)
		*out = t;
	else
		t->detached = true;
	pthread_mutex_lock(&rt->mu);
	if (self) {
		/* eager: the child runs now, the parent right after it
		 * ([AX-TASK-1]) */
		thr_enqueue(rt, self, true);
		thr_give(rt, t);
	} else {
		thr_enqueue(rt, t, false); /* from a post: queued [AX-TASK-12] */
	}
	pthread_mutex_unlock(&rt->mu);
	if (self)
		thr_token_wait(self);
	return 0;
}

/* Join every ended thread; free the records nobody will join. */
static void thr_reap(struct thr_rt *rt)
{
	while (rt->zombies) {
		struct ax_task *z = rt->zombies;
		rt->zombies = NULL;
		pthread_mutex_unlock(&rt->mu);
		for (struct ax_task *t = z; t; t = t->zombie_next)
			pthread_join(t->thread, NULL);
		pthread_mutex_lock(&rt->mu);
		while (z) {
			struct ax_task *n = z->zombie_next;
			z->reaped = true;
			rt->n_threads--;
			if (z->released || z->detached)
				thr_task_free(rt, z);
			z = n;
		}
	}
}

static int thr_run(ax_rt *r, ax_task_fn fn, void *arg, intptr_t *result)
{
	struct thr_rt *rt = (struct thr_rt *)r;
	sigset_t block, old;
	struct ax_task *main_task;
	if (!fn)
		return -EINVAL;
	if (rt->running || thr_tls_rt)
		return -EBUSY;
	sigemptyset(&block);
	sigaddset(&block, SIGPIPE);
	sigaddset(&block, THR_WAKE_SIG);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ax__segv_hold();
	rt->running = true;
	thr_tls_rt = rt;
	const struct ax__design *prev = ax__tls_design;
	ax__tls_design = &ax__design_threads;
	int ret = thr_task_new(rt, fn, arg, "main", "ax_rt_run", 0, &main_task);
	pthread_mutex_lock(&rt->mu);
	if (ret == 0)
		thr_enqueue(rt, main_task, false);
	for (;;) {
		thr_reap(rt);
		if (rt->loop_queued) {
			/* posts run on this thread, holding the token, outside
			 * any task ([AX-POST-1]); ax_post queued it for the
			 * token, so posts run in their turn among ready tasks */
			pthread_mutex_unlock(&rt->mu);
			thr_token_wait(&rt->loop_task);
			pthread_mutex_lock(&rt->mu);
			struct thr_msg *m = rt->inbox_head;
			rt->inbox_head = rt->inbox_tail = NULL;
			pthread_mutex_unlock(&rt->mu);
			uint64_t n_run = 0;
			while (m) {
				struct thr_msg *n = m->next;
				m->fn(m->arg);
				free(m);
				m = n;
				n_run++;
			}
			pthread_mutex_lock(&rt->mu);
			rt->n_posts += n_run;
			/* loop_queued stayed set while they ran, so posters
			 * queued nothing; posts that came meanwhile get a
			 * turn of their own */
			if (rt->inbox_head)
				thr_enqueue(rt, &rt->loop_task, false);
			else
				rt->loop_queued = false;
			thr_hand_next(rt);
			continue;
		}
		if (rt->n_live == 0 && rt->n_threads == 0)
			break;
		pthread_cond_wait(&rt->loop_cv, &rt->mu);
	}
	pthread_mutex_unlock(&rt->mu);
	if (ret == 0) {
		if (result)
			*result = main_task->result;
		thr_task_free(rt, main_task); /* joined implicitly */
	}
	ax__segv_release();
	ax__tls_design = prev;
	thr_tls_rt = NULL;
	rt->running = false;
	{
		/* swallow a SIGPIPE or SIGURG left pending, then restore */
		struct timespec zero = {0, 0};
		while (sigtimedwait(&block, NULL, &zero) > 0)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static int thr_post(ax_rt *r, void (*fn)(void *), void *arg)
{
	struct thr_rt *rt = (struct thr_rt *)r;
	struct thr_msg *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&rt->mu);
	if (rt->inbox_tail)
		rt->inbox_tail->next = m;
	else
		rt->inbox_head = m;
	rt->inbox_tail = m;
	if (!rt->loop_queued) {
		/* the runtime thread takes its turn for the token now, behind
		 * the tasks ready at this moment ([AX-TASK-12]) */
		rt->loop_queued = true;
		thr_enqueue(rt, &rt->loop_task, false);
	}
	pthread_cond_signal(&rt->loop_cv);
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

static ax_rt *thr_rt_current(void)
{
	return (ax_rt *)thr_tls_rt;
}

static const char *thr_rt_driver(const ax_rt *rt)
{
	(void)rt;
	return "threads";
}

static uint32_t thr_rt_features(const ax_rt *rt)
{
	(void)rt;
	return THR_FEATURES;
}

static const char *thr_engine_info(const ax_rt *r)
{
	return ((const struct thr_rt *)r)->info;
}

static void thr_stats(const ax_rt *r, struct ax_rt_stats *st)
{
	struct thr_rt *rt = (struct thr_rt *)r;
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&rt->mu);
	st->loop_iterations = atomic_load(&rt->n_polls);
	st->events = rt->n_events;
	st->switches = rt->n_switches;
	st->tasks_spawned = rt->n_spawned;
	st->tasks_live = rt->n_live;
	st->hogs = rt->n_hogs;
	st->posts = rt->n_posts;
	st->stacks_guarded = rt->n_threads; /* each thread's stack has one */
	pthread_mutex_unlock(&rt->mu);
}

/* ------------------------------------------------------------------ */
/* tasks                                                               */
/* ------------------------------------------------------------------ */

static int thr_join(ax_task *t, intptr_t *result)
{
	struct ax_task *self;
	int r = thr_enter(&self);
	if (r == -EPERM)
		return r;
	if (!t || t == self || t->detached || (t->joiner && t->joiner != self))
		return -EINVAL;
	if (r < 0)
		return r;
	struct thr_rt *rt = self->rt;
	pthread_mutex_lock(&rt->mu);
	if (!t->ended) {
		t->joiner = self;
		self->join_done = false;
		thr_block_locked(rt, self, TW_JOIN, t, -1, "join");
		pthread_mutex_unlock(&rt->mu);
		thr_park(self, thr_deadline(self), false);
		pthread_mutex_lock(&rt->mu);
		/* decided by what woke this task, never by t's state: t may
		 * have ended after a cancel or the deadline woke us, and is
		 * then not ours (it can be joined again) */
		if (!self->join_done) {
			if (t->joiner == self)
				t->joiner = NULL;
			pthread_mutex_unlock(&rt->mu);
			r = thr_interrupted(self);
			return r ? r : -EINTR;
		}
	}
	if (result)
		*result = t->result;
	t->released = true;
	if (t->reaped)
		thr_task_free(rt, t);
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

static int thr_detach(ax_task *t)
{
	if (!t || t->detached || t->joiner)
		return -EINVAL;
	struct thr_rt *rt = t->rt;
	pthread_mutex_lock(&rt->mu);
	t->detached = true;
	if (t->reaped)
		thr_task_free(rt, t);
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

static void thr_pool_unwait_locked(struct thr_rt *rt, struct ax_task *t);

static int thr_cancel(ax_task *t)
{
	if (!t)
		return -EINVAL;
	struct thr_rt *rt = t->rt;
	pthread_mutex_lock(&rt->mu);
	if (!t->ended) {
		t->cancel_pending = true;
		if (t->state == TS_BLOCKED) {
			if (t->wait == TW_POOL)
				thr_pool_unwait_locked(rt, t);
			else if (t->wait != TW_FILE)
				thr_wake_locked(rt, t);
		}
	}
	pthread_mutex_unlock(&rt->mu);
	return 0;
}

/* Go to the back of the ready queue ([AX-TASK-3]). */
static void thr_yield_now(struct ax_task *t)
{
	struct thr_rt *rt = t->rt;
	pthread_mutex_lock(&rt->mu);
	thr_hog_check(rt, t);
	t->wait = TW_YIELD;
	thr_enqueue(rt, t, false);
	thr_hand_next(rt);
	pthread_mutex_unlock(&rt->mu);
	thr_token_wait(t);
	t->wait = TW_NONE;
}

static int thr_yield(void)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	thr_yield_now(t);
	if (t->cancel_pending) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	return 0;
}

static ax_task *thr_current(void)
{
	return thr_self;
}

static int thr_set_name(ax_task *t, const char *name)
{
	if (!t || !name)
		return -EINVAL;
	snprintf(t->name, sizeof t->name, "%s", name);
	return 0;
}

static const char *thr_task_name(const ax_task *t)
{
	return t ? t->name : "";
}

static const char *thr_state_name(enum thr_state s)
{
	switch (s) {
	case TS_READY: return "ready";
	case TS_RUNNING: return "running";
	case TS_BLOCKED: return "blocked";
	default: return "done";
	}
}

static void thr_describe(const struct ax_task *t, char *buf, size_t n)
{
	switch (t->state == TS_BLOCKED ? t->wait : TW_NONE) {
	case TW_IO:
		if (t->wait_fd >= 0)
			snprintf(buf, n, "fd %d %s", t->wait_fd, t->wait_what);
		else
			snprintf(buf, n, "%s", t->wait_what);
		break;
	case TW_SLEEP:
		snprintf(buf, n, "timer in %.3f ms",
			 (t->timer.deadline - ax_now()) / 1e6);
		break;
	case TW_CHAN_SEND:
		snprintf(buf, n, "channel %p send", t->wait_obj);
		break;
	case TW_CHAN_RECV:
		snprintf(buf, n, "channel %p recv", t->wait_obj);
		break;
	case TW_JOIN:
		snprintf(buf, n, "join task %llu", (unsigned long long)
			 ((const struct ax_task *)t->wait_obj)->id);
		break;
	case TW_POOL:
		snprintf(buf, n, "blocking pool");
		break;
	case TW_FILE:
		snprintf(buf, n, "fd %d %s (in the kernel)", t->wait_fd,
			 t->wait_what);
		break;
	default:
		snprintf(buf, n, "-");
		break;
	}
}

static int thr_dump(ax_rt *r, FILE *f)
{
	struct thr_rt *rt = (struct thr_rt *)r;
	int count = 0, err = 0;
	int64_t now = thr_coarse_now();
	pthread_mutex_lock(&rt->mu);
	if (fprintf(f, "ax task dump: runtime threads, %llu live task(s)\n",
		    (unsigned long long)rt->n_live) < 0)
		err = 1;
	for (struct ax_task *t = rt->all; t && !err; t = t->all_next) {
		char wait[96];
		if (t->ended)
			continue;
		thr_describe(t, wait, sizeof wait);
		if (fprintf(f,
			    "  task %llu '%s' %s waiting on: %s; spawned at %s:%d; "
			    "last ran %.3f ms ago\n",
			    (unsigned long long)t->id, t->name,
			    thr_state_name(t->state), wait,
			    t->spawn_file ? t->spawn_file : "?", t->spawn_line,
			    t->state == TS_RUNNING ? 0.0 : (now - t->last_run) / 1e6) < 0)
			err = 1;
		count++;
	}
	pthread_mutex_unlock(&rt->mu);
	if (err)
		return -EIO;
	return fflush(f) == 0 ? count : -EIO;
}

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

static int thr_sleep_until(int64_t at)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if (at <= ax_now()) {
		/* [AX-TIME-3] */
		thr_yield_now(t);
		if (t->cancel_pending) {
			t->cancel_pending = false;
			return -ECANCELED;
		}
		return 0;
	}
	struct thr_rt *rt = t->rt;
	int64_t dl = thr_deadline(t);
	int64_t wake = at < dl ? at : dl;
	pthread_mutex_lock(&rt->mu);
	t->timer.deadline = wake;
	t->timer.seq = ++rt->timer_seq;
	t->timer_fired = false;
	if (ax__theap_push(&rt->timers, &t->timer) < 0) {
		pthread_mutex_unlock(&rt->mu);
		return -ENOMEM;
	}
	t->timer_armed = true;
	thr_block_locked(rt, t, TW_SLEEP, NULL, -1, "sleep");
	pthread_mutex_unlock(&rt->mu);
	thr_park(t, wake, true);
	pthread_mutex_lock(&rt->mu);
	bool fired = t->timer_fired;
	if (t->timer_armed) {
		ax__theap_remove(&rt->timers, &t->timer);
		t->timer_armed = false;
	}
	pthread_mutex_unlock(&rt->mu);
	if (!fired && t->cancel_pending) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	/* woken only by its timer or a cancel */
	return !fired || wake < at ? -ETIMEDOUT : 0;
}

static int thr_deadline_enter(struct ax_deadline *d, int64_t at)
{
	struct ax_task *t = thr_self;
	if (!t)
		return -EPERM;
	d->at = at;
	d->outer = t->dl;
	d->effective = (t->dl && t->dl->effective < at) ? t->dl->effective : at;
	t->dl = d;
	return 0;
}

static int thr_deadline_leave(struct ax_deadline *d)
{
	struct ax_task *t = thr_self;
	if (!t || t->dl != d)
		return -EINVAL;
	t->dl = d->outer;
	return 0;
}

static bool thr_deadline_expired(void)
{
	struct ax_task *t = thr_self;
	return t && t->dl && ax_now() >= t->dl->effective;
}

/* ------------------------------------------------------------------ */
/* TCP                                                                 */
/* ------------------------------------------------------------------ */

enum { SIDE_NONE, SIDE_RD, SIDE_WR };

static struct ax_task **thr_side(struct thr_rt *rt, int fd, int side,
				 bool grow)
{
	struct thr_sides *s = grow ? ax__fdtab_get(&rt->busy, fd)
				   : ax__fdtab_find(&rt->busy, fd);
	if (!s)
		return NULL;
	return side == SIDE_RD ? &s->rd : &s->wr;
}

/* Holding the token, wait until fd is ready for ev. Returns 0 (try the
 * system call again), -EBADF (ax_close closed fd meanwhile), -ECANCELED
 * (consumed) or -ETIMEDOUT. side: the [AX-TCP-9] side the wait holds. */
static int thr_io_wait(struct ax_task *t, int fd, short ev, int side,
		       const char *what)
{
	struct thr_rt *rt = t->rt;
	struct ax_task **slot = NULL;
	if (side != SIDE_NONE) {
		slot = thr_side(rt, fd, side, true);
		if (!slot)
			return -ENOMEM;
		*slot = t;
	}
	t->closed = false;
	t->fast_streak = 0;
	thr_block(t, TW_IO, NULL, side != SIDE_NONE ? fd : -1, what);
	thr_park_fd(t, fd, ev, thr_deadline(t));
	/* the table may have grown meanwhile; ax_close emptied the slot */
	if (side != SIDE_NONE) {
		slot = thr_side(rt, fd, side, false);
		if (slot && *slot == t)
			*slot = NULL;
	}
	if (t->closed) {
		t->closed = false;
		return -EBADF;
	}
	return thr_interrupted(t);
}

/* I/O calls one task may finish in a row without waiting before it
 * yields: the core's fast-path budget (docs/decisions.md), so that a task
 * whose reads always find data cannot keep the token from the others. */
#define THR_FAST_BUDGET 64

/* Entry of a sided operation: the budget, then -EBUSY when the side is
 * taken ([AX-TCP-9]). */
static int thr_side_busy(struct ax_task *t, int fd, int side)
{
	if (++t->fast_streak > THR_FAST_BUDGET) {
		t->fast_streak = 0;
		thr_yield_now(t);
		if (t->cancel_pending) {
			t->cancel_pending = false;
			return -ECANCELED;
		}
	}
	struct ax_task **slot = thr_side(t->rt, fd, side, false);
	return slot && *slot ? -EBUSY : 0;
}

static int thr_accept(int lfd)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if ((r = thr_side_busy(t, lfd, SIDE_RD)) < 0)
		return r;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((r = thr_io_wait(t, lfd, POLLIN, SIDE_RD, "accept")) < 0)
			return r;
	}
}

static int thr_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
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

static int thr_connect(const char *host, uint16_t port)
{
	struct ax_task *t;
	struct sockaddr_storage ss;
	socklen_t len;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if (thr_addr(host, port, &ss, &len) < 0)
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		r = -errno;
		close(fd);
		return r;
	}
	for (;;) {
		if ((r = thr_io_wait(t, fd, POLLOUT, SIDE_NONE, "connect")) < 0)
			break;
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) {
			r = -errno;
			break;
		}
		if (err) {
			r = -err;
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (poll(&p, 1, 0) == 1)
			return fd;
	}
	close(fd);
	return r;
}

/* One non-blocking read: recv with MSG_DONTWAIT, so that a descriptor
 * without O_NONBLOCK never blocks the token; a non-socket is read only
 * when poll says it is readable. */
static ssize_t thr_nb_read(int fd, void *buf, size_t n)
{
	ssize_t k = recv(fd, buf, n, MSG_DONTWAIT);
	if (k >= 0 || errno != ENOTSOCK)
		return k;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 0) == 0) {
		errno = EAGAIN;
		return -1;
	}
	return read(fd, buf, n);
}

static ssize_t thr_nb_write(int fd, const void *buf, size_t n)
{
	ssize_t k = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (k >= 0 || errno != ENOTSOCK)
		return k;
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, 0) == 0) {
		errno = EAGAIN;
		return -1;
	}
	return write(fd, buf, n);
}

static ssize_t thr_read(int fd, void *buf, size_t n)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if ((r = thr_side_busy(t, fd, SIDE_RD)) < 0)
		return r;
	for (;;) {
		ssize_t k = thr_nb_read(fd, buf, n);
		if (k >= 0)
			return k;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((r = thr_io_wait(t, fd, POLLIN, SIDE_RD, "read")) < 0)
			return r;
	}
}

static ssize_t thr_write(int fd, const void *buf, size_t n)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	if ((r = thr_side_busy(t, fd, SIDE_WR)) < 0)
		return r;
	size_t sent = 0;
	while (sent < n) {
		ssize_t k = thr_nb_write(fd, (const char *)buf + sent, n - sent);
		if (k >= 0) {
			sent += (size_t)k;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if ((r = thr_io_wait(t, fd, POLLOUT, SIDE_WR, "write")) < 0)
			return r;
	}
	return (ssize_t)n;
}

/* [AX-TCP-15]: the tasks waiting on fd end their waits with -EBADF (they
 * touch fd no more: every system call on it is made holding the token,
 * which the caller holds), then fd is closed. */
static int thr_close(int fd)
{
	struct thr_rt *rt = thr_tls_rt;
	if (fd < 0)
		return -EBADF;
	if (rt) {
		struct thr_sides *s = ax__fdtab_find(&rt->busy, fd);
		if (s && (s->rd || s->wr)) {
			pthread_mutex_lock(&rt->mu);
			struct ax_task *w[2] = {s->rd, s->wr};
			for (int i = 0; i < 2; i++)
				if (w[i]) {
					w[i]->closed = true;
					thr_wake_locked(rt, w[i]);
				}
			pthread_mutex_unlock(&rt->mu);
			s->rd = s->wr = NULL;
		}
	}
	return close(fd) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------------ */
/* files: the system call on the task's own thread                     */
/* ------------------------------------------------------------------ */

static ssize_t thr_file(bool rd, int fd, void *buf, size_t n, int64_t off)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if (off < 0)
		return -EINVAL;
	struct thr_rt *rt = t->rt;
	/* the token goes on while this thread is in the kernel; a cancel
	 * cannot stop a file read, so the call returns its real result
	 * ([AX-CANCEL-3]) and the request stays pending */
	thr_block(t, TW_FILE, NULL, fd, rd ? "pread" : "pwrite");
	ssize_t k = rd ? pread(fd, buf, n, off) : pwrite(fd, buf, n, off);
	int e = errno;
	pthread_mutex_lock(&rt->mu);
	thr_wake_locked(rt, t);
	pthread_mutex_unlock(&rt->mu);
	thr_token_wait(t);
	return k < 0 ? -e : k;
}

static ssize_t thr_pread(int fd, void *buf, size_t n, int64_t off)
{
	return thr_file(true, fd, buf, n, off);
}

static ssize_t thr_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
	return thr_file(false, fd, (void *)buf, n, off);
}

/* ------------------------------------------------------------------ */
/* the blocking pool: opts.pool_threads workers, started on first use  */
/* ------------------------------------------------------------------ */

static void *thr_pool_worker(void *arg)
{
	struct thr_rt *rt = arg;
	pthread_mutex_lock(&rt->mu);
	for (;;) {
		while (!rt->jobs_head && !rt->pool_stop)
			pthread_cond_wait(&rt->pool_cv, &rt->mu);
		struct thr_job *j = rt->jobs_head;
		if (!j)
			break;
		rt->jobs_head = j->next;
		if (!rt->jobs_head)
			rt->jobs_tail = NULL;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&rt->mu);
		intptr_t r = j->fn(j->arg);
		pthread_mutex_lock(&rt->mu);
		j->result = r;
		j->state = JOB_DONE;
		thr_wake_locked(rt, j->task);
	}
	pthread_mutex_unlock(&rt->mu);
	return NULL;
}

static int thr_pool_start(struct thr_rt *rt)
{
	sigset_t all, old;
	rt->pool = calloc(rt->opts.pool_threads, sizeof *rt->pool);
	if (!rt->pool)
		return -ENOMEM;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (rt->pool_n = 0; rt->pool_n < rt->opts.pool_threads; rt->pool_n++)
		if (pthread_create(&rt->pool[rt->pool_n], NULL, thr_pool_worker, rt))
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rt->pool_n ? 0 : -ENOMEM;
}

static void thr_pool_stop(struct thr_rt *rt)
{
	pthread_mutex_lock(&rt->mu);
	rt->pool_stop = true;
	pthread_cond_broadcast(&rt->pool_cv);
	pthread_mutex_unlock(&rt->mu);
	for (unsigned i = 0; i < rt->pool_n; i++)
		pthread_join(rt->pool[i], NULL);
	free(rt->pool);
	rt->pool = NULL;
	rt->pool_n = 0;
}

/* Under mu: a cancelled call still queued is dropped ([AX-POOL-2]); a
 * running one is waited for (its worker wakes the task). */
static void thr_pool_unwait_locked(struct thr_rt *rt, struct ax_task *t)
{
	struct thr_job *j = t->job, **pp = &rt->jobs_head, *prev = NULL;
	if (!j || j->state != JOB_QUEUED)
		return;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = j->next;
	if (rt->jobs_tail == j)
		rt->jobs_tail = prev;
	j->state = JOB_DROPPED;
	thr_wake_locked(rt, t);
}

static int thr_blocking(intptr_t (*fn)(void *), void *arg, intptr_t *result)
{
	struct ax_task *t;
	int r = thr_enter(&t);
	if (r < 0)
		return r;
	if (!fn)
		return -EINVAL;
	struct thr_rt *rt = t->rt;
	if (!rt->pool && (r = thr_pool_start(rt)) < 0)
		return r;
	struct thr_job j = {.fn = fn, .arg = arg, .state = JOB_QUEUED, .task = t};
	int64_t dl = thr_deadline(t);
	pthread_mutex_lock(&rt->mu);
	if (rt->jobs_tail)
		rt->jobs_tail->next = &j;
	else
		rt->jobs_head = &j;
	rt->jobs_tail = &j;
	t->job = &j;
	pthread_cond_signal(&rt->pool_cv);
	thr_block_locked(rt, t, TW_POOL, NULL, -1, "blocking pool");
	pthread_mutex_unlock(&rt->mu);
	for (;;) {
		thr_park(t, dl, false);
		pthread_mutex_lock(&rt->mu);
		if (j.state == JOB_DONE || j.state == JOB_DROPPED)
			break;
		/* the deadline passed: drop the call if it is still queued,
		 * else wait for it without a deadline ([AX-POOL-2]) */
		thr_block_locked(rt, t, TW_POOL, NULL, -1, "blocking pool");
		thr_pool_unwait_locked(rt, t);
		dl = INT64_MAX;
		pthread_mutex_unlock(&rt->mu);
	}
	t->job = NULL;
	pthread_mutex_unlock(&rt->mu);
	r = thr_interrupted(t);
	if (r < 0)
		return r; /* fn never touches arg after this: it ended or never ran */
	if (j.state == JOB_DROPPED)
		return -ECANCELED;
	if (result)
		*result = j.result;
	return 0;
}

/* ------------------------------------------------------------------ */
/* channels (core/chan.c, through design.h)                            */
/* ------------------------------------------------------------------ */

static void thr_chan_wake(void *task);

static int thr_chan_enter(void **task)
{
	struct ax_task *t = NULL;
	int r = 0;
	if (thr_self)
		r = thr_enter(&t);
	*task = t;
	return r;
}

static int thr_chan_wait(struct ax__waiter *w, void *task, const void *chan,
			 bool sender)
{
	struct ax_task *t = task;
	for (;;) {
		thr_block(t, sender ? TW_CHAN_SEND : TW_CHAN_RECV, chan, -1,
			  sender ? "send" : "recv");
		/* a release between chan.c's queueing and thr_block found the
		 * task running and woke nothing: look once more, now that a
		 * release will wake it */
		if (ax__chan_outcome(w) != -EAGAIN)
			thr_chan_wake(t);
		thr_park(t, thr_deadline(t), false);
		/* a completed transfer wins over a cancel: [AX-CANCEL-3] */
		int o = ax__chan_outcome(w);
		if (o != -EAGAIN)
			return o;
		bool cancelled = t->cancel_pending;
		if (cancelled || (t->dl && ax_now() >= t->dl->effective)) {
			if (!ax__chan_unwait(w))
				return ax__chan_outcome(w);
			if (cancelled)
				t->cancel_pending = false;
			return cancelled ? -ECANCELED : -ETIMEDOUT;
		}
	}
}

static void thr_chan_wake(void *task)
{
	struct ax_task *t = task;
	pthread_mutex_lock(&t->rt->mu);
	thr_wake_locked(t->rt, t);
	pthread_mutex_unlock(&t->rt->mu);
}

/* ------------------------------------------------------------------ */
/* the design                                                          */
/* ------------------------------------------------------------------ */

static size_t thr_count(void)
{
	return 1;
}

static const char *thr_name(size_t i)
{
	(void)i;
	return "threads";
}

static const char *thr_summary(size_t i)
{
	(void)i;
	return "thread per task (the sync oracle): a kernel thread per task, "
	       "blocking waits, kernel timers";
}

static uint32_t thr_features(size_t i)
{
	(void)i;
	return THR_FEATURES;
}

static bool thr_available(size_t i, char *why, size_t n)
{
	(void)i;
	(void)why;
	(void)n;
	return true;
}

const struct ax__design ax__design_threads = {
	.name = "threads",
	.count = thr_count,
	.rt_name = thr_name,
	.summary = thr_summary,
	.features = thr_features,
	.available = thr_available,
	.create = thr_create,
	.run = thr_run,
	.destroy = thr_destroy,
	.rt_driver = thr_rt_driver,
	.rt_features = thr_rt_features,
	.engine_info = thr_engine_info,
	.stats = thr_stats,
	.dump = thr_dump,
	.post = thr_post,
	.rt_current = thr_rt_current,
	.spawn = thr_spawn,
	.join = thr_join,
	.detach = thr_detach,
	.cancel = thr_cancel,
	.yield = thr_yield,
	.current = thr_current,
	.set_name = thr_set_name,
	.task_name = thr_task_name,
	.sleep_until = thr_sleep_until,
	.deadline_enter = thr_deadline_enter,
	.deadline_leave = thr_deadline_leave,
	.deadline_expired = thr_deadline_expired,
	.accept = thr_accept,
	.connect = thr_connect,
	.read = thr_read,
	.write = thr_write,
	.close = thr_close,
	.pread = thr_pread,
	.pwrite = thr_pwrite,
	.blocking = thr_blocking,
	.chan_enter = thr_chan_enter,
	.chan_wait = thr_chan_wait,
	.chan_wake = thr_chan_wake,
	.segv_report = thr_segv_report,
};
