/*
 * core.h - internal structures of the ax core shared by its files: the
 * runtime, tasks, stacks, the remote inbox and the wait protocol.
 */
#ifndef AX_CORE_H
#define AX_CORE_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ax.h"
#include "ax_driver.h"
#include "design.h"
#include "kit.h"

/* ---- context switch (ctx.h) ---- */
#include "ctx.h"

/* ---- stacks (stack.c) ---- */
struct ax__slab;
struct ax__stack {
	char *lo;            /* lowest usable byte (a slab stack's canary) */
	size_t size;         /* usable bytes */
	/* the word the scheduler checks at every switch: lo for a slab stack;
	 * for a guarded stack, whose guard page catches an overflow, a
	 * constant, so that its lowest page is never touched (stack.c) */
	const uint64_t *canary;
	char *map;           /* mapping start (guarded) or NULL (slab) */
	size_t map_len;
	struct ax__slab *slab; /* owning slab, or NULL for a guarded stack */
	unsigned vg_id;      /* valgrind's stack id (0 outside valgrind) */
	struct ax__stack *next_free;
};

struct ax__stack_pool {
	size_t size;                  /* usable bytes per stack */
	size_t guarded_budget;        /* max live guarded stacks */
	size_t guarded_live;
	size_t slab_live;
	struct ax__stack *cache;      /* freed guarded stacks kept for reuse */
	size_t cache_n;
	struct ax__slab *slabs;       /* slabs with at least one free stack */
	struct ax__slab *all_slabs;
};

void ax__stack_pool_init(struct ax__stack_pool *p, size_t size);
void ax__stack_pool_fini(struct ax__stack_pool *p);
struct ax__stack *ax__stack_get(struct ax__stack_pool *p);
void ax__stack_put(struct ax__stack_pool *p, struct ax__stack *s);
/* The bytes of s resident now (mincore), or -errno. vec has a byte for
 * each page of s (s->size / page size). */
int64_t ax__stack_resident(const struct ax__stack *s, unsigned char *vec);
#define AX_STACK_CANARY 0xa11ce5ca9ab1e5edULL

/* ---- the remote inbox: work handed to a runtime from any thread ---- */
struct ax__msg {
	struct ax__msg *next;
	void (*fn)(void *arg);
	void *arg;
	bool heap;           /* free after running (ax_post) */
};

/* ---- tasks ---- */
enum ax__tstate { AX_T_READY, AX_T_RUNNING, AX_T_BLOCKED, AX_T_DONE };
enum ax__wait {
	AX_W_NONE, AX_W_OP, AX_W_SLEEP, AX_W_CHAN_SEND, AX_W_CHAN_RECV,
	AX_W_JOIN, AX_W_POOL, AX_W_YIELD
};
enum { AX_INT_CANCEL = 1, AX_INT_TIMEOUT = 2 };

struct ax__waiter;
struct ax__job;

struct ax_task {
	struct ax__ctx ctx;      /* where the task resumes while switched out */
	struct ax_rt *rt;
	struct ax__stack *stack;
	ax_task_fn fn;
	void *arg;
	intptr_t result;
	enum ax__tstate state;
	enum ax__wait wait;
	uint64_t id;
	char name[32];
	const char *spawn_file;
	int spawn_line;
	int64_t last_run;        /* ax_now() when last switched in */
	bool cancel_pending;     /* ax_cancel request not yet consumed */
	bool detached;
	int interrupt;           /* AX_INT_* that interrupted the current wait */
	bool op_cancel_sent;
	unsigned fast_streak;    /* ops finished in a row without waiting */
	struct ax_task *joiner;
	struct ax_deadline *dl;
	/* ready queue (singly linked) and all-tasks links */
	struct ax_task *rq_next;
	bool in_rq;
	struct ax_task *all_next, *all_prev;
	/* the things a task can wait on (one at a time) */
	struct ax_op op;
	struct ax_timer timer;    /* sleep or deadline */
	bool timer_armed;
	struct ax__waiter *cw;    /* channel wait */
	struct ax__job *job;      /* pool wait */
	const void *wait_obj;     /* for dumps: channel, joined task */
	struct ax__msg remote_wake;
	void *tsan_fiber;         /* ThreadSanitizer's fiber (san.h), or NULL */
	/* the work-stealing design (ws.c); unused by the one-thread core */
	atomic_uint ws_flags;     /* WS_* bits, see ws.c */
	atomic_int ws_refs;       /* handle + cancel messages in flight */
	struct ax_rt *_Atomic ws_wait_rt; /* the worker it last parked on */
	bool ws_done;             /* ended, stack released (group lock) */
	struct ax_rt *ws_hop_to;  /* the worker a hop moves it to */
};

struct ax_rt {
	struct ax__rt_head head;   /* first: the design (design.h) */
	const struct ax_driver *drv;
	void *drv_state;
	struct ax_rt_opts opts;
	char engine_flags[128];
	pthread_t owner;
	bool running;
	struct ax__ctx sched_ctx; /* the scheduler's, while a task runs */
	struct ax_task *current;
	struct ax_task *rq_head, *rq_tail;
	size_t rq_len;
	size_t budget;            /* dispatches left in this tick */
	int64_t tick_time;        /* coarse clock at the start of the tick */
	int64_t tick_start;       /* ax_now() at the start of the tick */
	struct ax_task *all;      /* every live (not freed) task */
	struct ax_task *dead;     /* exited task whose stack awaits release */
	struct ax_task *task_cache; /* freed task records (via all_next) */
	size_t task_cache_n;
	uint64_t next_id;
	uint64_t timer_seq;
	struct ax__stack_pool stacks;
	/* remote inbox */
	pthread_mutex_t inbox_lock;
	struct ax__msg *inbox_head, *inbox_tail;
	atomic_int inbox_n;
	atomic_int polling;
	atomic_int wake_sent;
	/* struct ax__sides per descriptor: one read and one write at a time */
	struct ax__fdtab busy;
	/* blocking pool */
	struct ax__pool *pool;
	/* sanitizer bookkeeping of the scheduler's own stack */
	const void *sched_stack_lo;
	size_t sched_stack_size;
	void *sched_fiber;        /* the running thread's TSan fiber */
	/* the work-stealing group this runtime is a worker of (ws.c), or
	 * NULL for a one-thread core runtime */
	struct ax__ws *ws;
	unsigned ws_index;        /* this worker's index in the group */
	/* counters */
	uint64_t n_switches, n_spawned, n_live, n_hogs, n_posts, n_events,
		n_polls;
	int hog_reports;
};

/* The runtime and task of the calling thread. */
extern _Thread_local struct ax_rt *ax__tls_rt;

/* ax__tls_rt read through a call the compiler cannot see into: a task of
 * the work-stealing design may resume on another thread after a switch,
 * so code that runs on both sides of a switch must not reuse a
 * thread-local address computed before it (ws.c). */
struct ax_rt *ax__tls_rt_get(void);

/* ---- the work-stealing design's hooks (ws.c), called by the core only
 * for a runtime whose `ws` is set ---- */
struct ax__ws;
/* make t ready on the calling worker (front: the parent of an eager
 * spawn); t may be the running task (queued once it switched away) */
void ax__ws_ready(struct ax_task *t, bool front);
/* the next task for the calling worker, or NULL */
struct ax_task *ax__ws_pop(struct ax_rt *rt);
/* in every context right after a switch: releases the task that ended,
 * queues the task that just switched away */
void ax__ws_after_switch(struct ax_rt *rt);
/* the running task t is about to block: a cancel from another worker that
 * came in meanwhile interrupts the wait */
void ax__ws_park(struct ax_task *t);
/* an interrupt of t waiting in a join */
void ax__ws_join_interrupt(struct ax_task *t);
/* stacks come from the group's shared pool */
struct ax__stack *ax__ws_stack_get(struct ax_rt *rt);
/* a yield that stays on the calling worker (the readiness fast path's
 * budget: the task keeps the worker that owns its descriptor) */
void ax__ws_yield_here(struct ax_task *t);
/* the group's blocking pool, shared by its workers (created on first
 * use) */
struct ax__pool *ax__ws_pool(struct ax_rt *rt);
struct ax__pool *ax__pool_create(struct ax_rt *rt);
/* the group's list of every task */
void ax__ws_link(struct ax_task *t);
void ax__ws_unlink(struct ax_task *t);

/* What the core exports to ws.c's worker loop (sched.c). */
int ax__sched_worker(struct ax_rt *rt, void (*loop)(struct ax_rt *rt));
void ax__sched_dispatch(struct ax_rt *rt, struct ax_task *t);
int ax__sched_poll(struct ax_rt *rt, bool block);
int ax__sched_drain(struct ax_rt *rt);

/* CLOCK_MONOTONIC_COARSE in ns: hog detection and dump ages. */
int64_t ax__coarse_now(void);

/* Task records: a per-runtime cache of freed ones, so that spawn does not
 * allocate at steady state. */
struct ax_task *ax__task_alloc(struct ax_rt *rt);
void ax__task_free(struct ax_rt *rt, struct ax_task *t);
void ax__task_cache_fini(struct ax_rt *rt);

/* Make t ready (append to the run queue). Loop thread only. */
void ax__ready(struct ax_task *t);

/* Make t ready from any thread (through t's runtime inbox when needed). */
void ax__wake_any(struct ax_task *t);

/* Suspend the current task in wait state w until ax__ready is called on
 * it. Returns the AX_INT_* bits that interrupted the wait (0 for a normal
 * wake). */
int ax__park(enum ax__wait w, const void *obj);

/* Append t to a singly linked queue of tasks (head, tail): the run queue,
 * and a work-stealing worker's queue of tasks that hopped to it. */
static inline void ax__tq_append(struct ax_task **head, struct ax_task **tail,
				 struct ax_task *t)
{
	t->in_rq = true;
	t->rq_next = NULL;
	if (*tail)
		(*tail)->rq_next = t;
	else
		*head = t;
	*tail = t;
}

/* Entry check of every suspending call: -EPERM outside a task, then a
 * pending cancel (consumed) or an expired deadline. Stores the current task
 * in *tp. Inline: every I/O call starts with it. */
static inline int ax__enter(struct ax_task **tp)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ax_task *t = rt ? rt->current : NULL;
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

/* The effective deadline of t (INT64_MAX when none). */
static inline int64_t ax__deadline_of(const struct ax_task *t)
{
	return t->dl ? t->dl->effective : INT64_MAX;
}

/* Arm t's timer at `at` for a wait (sleep or deadline). */
int ax__timer_arm(struct ax_task *t, int64_t at);
void ax__timer_disarm_slow(struct ax_task *t);
/* Disarm t's timer if armed (inline: every wait ends with it, and most
 * waits have no deadline). */
static inline void ax__timer_disarm(struct ax_task *t)
{
	if (t->timer_armed)
		ax__timer_disarm_slow(t);
}

/* Interrupt t's current wait for reason (AX_INT_*). */
void ax__interrupt(struct ax_task *t, int reason);

/* Post a message into rt's inbox from any thread, waking the loop. */
void ax__inbox_push(struct ax_rt *rt, struct ax__msg *m);

/* Channel and pool hooks used by cancellation (chan.c, pool.c). */
void ax__pool_unwait(struct ax_task *t);
void ax__pool_destroy(struct ax__pool *p);

/* ax_blocking after its entry check (for callers that already made it). */
int ax__pool_call(struct ax_task *t, intptr_t (*fn)(void *), void *arg,
		  intptr_t *result);

/* Translate the outcome of an interrupted wait into the errno to return,
 * consuming a cancel request. */
int ax__interrupt_errno(struct ax_task *t, int bits);

/* What the core design adds to its drivers' feature bits: tasks are small
 * stackful coroutines (100k live at once) whose stack overflows are caught
 * and reported by name (guard page or canary), all on the thread running
 * ax_rt_run. */
#define AX__CORE_FEATURES \
	(AX_FEAT_CHEAP_TASKS | AX_FEAT_STACK_CHECK | AX_FEAT_ONE_THREAD | \
	 AX_FEAT_ONE_WORKER)

/* The core's ax.h functions, which design.c reaches through
 * ax__design_core (design.h). */
int ax__core_rt_create(ax_rt **out, const char *driver,
		       const struct ax_rt_opts *opts);
int ax__core_rt_run(ax_rt *rt, ax_task_fn fn, void *arg, intptr_t *result);
int ax__core_rt_destroy(ax_rt *rt);
const char *ax__core_rt_driver(const ax_rt *rt);
uint32_t ax__core_rt_features(const ax_rt *rt);
const char *ax__core_rt_engine_info(const ax_rt *rt);
void ax__core_rt_stats(const ax_rt *rt, struct ax_rt_stats *st);
int ax__core_dump(ax_rt *rt, FILE *f);
int ax__core_stack_usage(ax_rt *rt, struct ax_stack_usage *u);
int ax__core_post(ax_rt *rt, void (*fn)(void *arg), void *arg);
ax_rt *ax__core_rt_current(void);
int ax__core_spawn_at(ax_task **out, ax_task_fn fn, void *arg,
		      const char *name, const char *file, int line);
int ax__core_join(ax_task *t, intptr_t *result);
int ax__core_detach(ax_task *t);
int ax__core_cancel(ax_task *t);
int ax__core_yield(void);
ax_task *ax__core_current(void);
int ax__core_task_set_name(ax_task *t, const char *name);
const char *ax__core_task_name(const ax_task *t);
int ax__core_sleep_until(int64_t at);
int ax__core_deadline_enter(struct ax_deadline *d, int64_t at);
int ax__core_deadline_leave(struct ax_deadline *d);
bool ax__core_deadline_expired(void);
int ax__core_accept(int lfd);
int ax__core_connect(const char *host, uint16_t port);
ssize_t ax__core_read(int fd, void *buf, size_t n);
ssize_t ax__core_write(int fd, const void *buf, size_t n);
int ax__core_close(int fd);
ssize_t ax__core_pread(int fd, void *buf, size_t n, int64_t off);
ssize_t ax__core_pwrite(int fd, const void *buf, size_t n, int64_t off);
int ax__core_blocking(intptr_t (*fn)(void *arg), void *arg, intptr_t *result);
int ax__core_chan_enter(void **task);
int ax__core_chan_wait(struct ax__waiter *w, void *task, const void *chan,
		       bool sender);
void ax__core_chan_wake(void *task);

#endif
