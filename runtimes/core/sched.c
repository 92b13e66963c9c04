/*
 * sched.c - the runtime: lifecycle, the FIFO scheduler loop, context
 * switches between tasks, the remote inbox (posts and cross-thread wakes),
 * hog detection, stack-overflow reporting and driver discovery.
 *
 * Scheduling: one FIFO run queue. A task that suspends switches directly to
 * the next ready task (one switch, not two through a scheduler context). To
 * keep I/O from starving behind tasks that keep each other ready, the loop
 * works in ticks: a tick dispatches at most AX_TICK_DISPATCHES tasks (fewer
 * when it has run for AX_TICK_NS already), then
 * the scheduler drains the inbox and polls the engine without blocking (the
 * same trade as Tokio's event interval: a poll per dispatch would cost a
 * system call per switch). It blocks in the engine only when nothing is
 * ready.
 */
#include "core.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "san.h"

_Thread_local struct ax_rt *ax__tls_rt;

/* Dispatches per tick before the engine is polled again, and the time
 * after which a tick ends early (checked every 4th dispatch). */
#define AX_TICK_DISPATCHES 61
#define AX_TICK_NS 200000

/* A cheap clock for hog detection and dumps: the coarse monotonic clock
 * (a few ms resolution) costs a few ns, so every switch can read it. */
int64_t ax__coarse_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* driver discovery                                                    */
/* ------------------------------------------------------------------ */

static const struct ax_driver *sched_find_driver(const char *name)
{
	for (size_t i = 0; i < ax__driver_n(); i++)
		if (strcmp(ax__driver_at(i)->name, name) == 0)
			return ax__driver_at(i);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

int64_t ax_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

void ax_rt_opts_init(struct ax_rt_opts *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->stack_size = 64 * 1024;
	opts->hog_threshold_ns = 50 * 1000000ll;
	opts->pool_threads = 4;
	opts->engine_flags = NULL;
	opts->tick_ns = AX_TICK_NS;
}

int ax__core_rt_create(ax_rt **out, const char *driver, const struct ax_rt_opts *opts)
{
	struct ax_rt_opts def;
	const struct ax_driver *drv = NULL;
	int r;

	if (!opts) {
		ax_rt_opts_init(&def);
		opts = &def;
	}
	if (ax__opts_check(opts) < 0)
		return -EINVAL;
	if (driver) {
		drv = sched_find_driver(driver);
		if (!drv)
			return -ENOENT;
		if (drv->probe && drv->probe(NULL, 0) < 0)
			return -ENOTSUP;
	} else {
		for (size_t i = 0; i < ax__driver_n() && !drv; i++)
			if (!ax__driver_at(i)->probe ||
			    ax__driver_at(i)->probe(NULL, 0) == 0)
				drv = ax__driver_at(i);
		if (!drv)
			return -ENOTSUP;
	}
	if (drv->version < 1)
		return -ENOTSUP;

	struct ax_rt *rt = calloc(1, sizeof *rt);
	if (!rt)
		return -ENOMEM;
	rt->head.design = &ax__design_core;
	rt->drv = drv;
	rt->opts = *opts;
	if (opts->engine_flags) {
		snprintf(rt->engine_flags, sizeof rt->engine_flags, "%s",
			 opts->engine_flags);
		rt->opts.engine_flags = rt->engine_flags;
	}
	rt->owner = pthread_self();
	rt->next_id = 1;
	ax__fdtab_init(&rt->busy, sizeof(struct ax__sides));
	ax__stack_pool_init(&rt->stacks, opts->stack_size);
	r = pthread_mutex_init(&rt->inbox_lock, NULL);
	if (r) {
		r = -r;
		goto fail_free;
	}
	r = drv->init(&rt->drv_state, &rt->opts);
	if (r < 0)
		goto fail_mutex;
	*out = rt;
	return 0;

fail_mutex:
	pthread_mutex_destroy(&rt->inbox_lock);
fail_free:
	free(rt);
	return r;
}

bool ax__tasks_reap_all(struct ax_rt *rt);

int ax__core_rt_destroy(ax_rt *rt)
{
	if (!rt)
		return -EINVAL;
	if (rt->running || !ax__tasks_reap_all(rt))
		return -EBUSY;
	/* The pool first: its threads are joined, so none is left pushing a
	 * done message into this inbox. */
	if (rt->pool)
		ax__pool_destroy(rt->pool);
	/* posts that never ran are dropped; under the lock, so that a pusher
	 * from another thread still inside ax__inbox_push (its wake) has left
	 * before rt goes */
	pthread_mutex_lock(&rt->inbox_lock);
	while (rt->inbox_head) {
		struct ax__msg *m = rt->inbox_head;
		rt->inbox_head = m->next;
		if (m->heap)
			free(m);
	}
	rt->inbox_tail = NULL;
	pthread_mutex_unlock(&rt->inbox_lock);
	rt->drv->fini(rt->drv_state);
	ax__stack_pool_fini(&rt->stacks);
	ax__task_cache_fini(rt);
	ax__fdtab_fini(&rt->busy);
	pthread_mutex_destroy(&rt->inbox_lock);
	free(rt);
	return 0;
}

ax_rt *ax__core_rt_current(void)
{
	return ax__tls_rt;
}

const char *ax__core_rt_driver(const ax_rt *rt)
{
	return rt->drv->name;
}

uint32_t ax__core_rt_features(const ax_rt *rt)
{
	return rt->drv->features | AX__CORE_FEATURES;
}

const char *ax__core_rt_engine_info(const ax_rt *rt)
{
	if (rt->drv->engine_info)
		return rt->drv->engine_info(rt->drv_state);
	return rt->drv->name;
}

void ax__core_rt_stats(const ax_rt *rt, struct ax_rt_stats *st)
{
	struct ax_driver_stats ds = {0};
	if (rt->drv->stats)
		rt->drv->stats(rt->drv_state, &ds);
	memset(st, 0, sizeof *st);
	st->loop_iterations = ds.polls ? ds.polls : rt->n_polls;
	st->events = ds.events ? ds.events : rt->n_events;
	st->switches = rt->n_switches;
	st->tasks_spawned = rt->n_spawned;
	st->tasks_live = rt->n_live;
	st->hogs = rt->n_hogs;
	st->posts = rt->n_posts;
	st->stacks_guarded = rt->stacks.guarded_live;
	st->stacks_slab = rt->stacks.slab_live;
}

/* ------------------------------------------------------------------ */
/* run queue                                                           */
/* ------------------------------------------------------------------ */

/* Append t to the run queue. The queue is singly linked: it is only ever
 * popped at the head, so a back link would be written and never read. */
static inline void sched_enqueue(struct ax_rt *rt, struct ax_task *t)
{
	t->state = AX_T_READY;
	ax__tq_append(&rt->rq_head, &rt->rq_tail, t);
	rt->rq_len++;
}

void ax__ready(struct ax_task *t)
{
	struct ax_rt *rt = t->rt;
	if (rt->ws) {
		ax__ws_ready(t, false);
		return;
	}
	if (t->in_rq || t->state == AX_T_DONE)
		return;
	sched_enqueue(rt, t);
}

/* Put t at the head of the run queue (the parent of an eager spawn). */
void ax__ready_front(struct ax_task *t);
void ax__ready_front(struct ax_task *t)
{
	struct ax_rt *rt = t->rt;
	if (rt->ws) {
		ax__ws_ready(t, true);
		return;
	}
	t->state = AX_T_READY;
	t->in_rq = true;
	t->rq_next = rt->rq_head;
	if (!rt->rq_head)
		rt->rq_tail = t;
	rt->rq_head = t;
	rt->rq_len++;
	rt->budget++;
}

static struct ax_task *sched_pop(struct ax_rt *rt)
{
	struct ax_task *t = rt->rq_head;
	if (rt->ws)
		return ax__ws_pop(rt);
	if (!t)
		return NULL;
	rt->rq_head = t->rq_next;
	if (!rt->rq_head)
		rt->rq_tail = NULL;
	t->in_rq = false;
	rt->rq_len--;
	return t;
}

/* ------------------------------------------------------------------ */
/* switching                                                           */
/* ------------------------------------------------------------------ */

/* The report of a hog, out of line: the check inlined into every switch
 * is one subtraction and one comparison. */
__attribute__((noinline, cold))
static void sched_hog_report(struct ax_rt *rt, struct ax_task *t, int64_t ran)
{
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

static inline void sched_hog_check(struct ax_rt *rt, struct ax_task *t,
				   int64_t now)
{
	int64_t ran = now - t->last_run;
	if (__builtin_expect(rt->opts.hog_threshold_ns &&
			     ran >= (int64_t)rt->opts.hog_threshold_ns, 0))
		sched_hog_report(rt, t, ran);
}

/* An overwritten canary ends the process, naming the task (out of line:
 * the switch only compares one word). */
__attribute__((noinline, cold, noreturn))
static void sched_canary_fail(const struct ax_task *t)
{
	fprintf(stderr,
		"ax: stack overflow in task %llu '%s' (spawned at %s:%d): "
		"canary overwritten; raise ax_rt_opts.stack_size\n",
		(unsigned long long)t->id, t->name,
		t->spawn_file ? t->spawn_file : "?", t->spawn_line);
	abort();
}

/* A task keeps its stack until the switch after its exit (the next
 * context releases it), so the check is two loads and one compare of the
 * word the stack's canary pointer names (a slab stack's lowest word; a
 * constant for a guarded stack, whose guard page does the job: stack.c). */
static inline void sched_canary_check(const struct ax_task *t)
{
	if (__builtin_expect(*t->stack->canary != AX_STACK_CANARY, 0))
		sched_canary_fail(t);
}

/* Release the stack of the task that exited just before this switch, and
 * free its record when it was detached. */
__attribute__((noinline))
static void sched_reap_dead(struct ax_rt *rt)
{
	struct ax_task *d = rt->dead;
	rt->dead = NULL;
	ax__stack_put(&rt->stacks, d->stack);
	d->stack = NULL;
	/* its fiber ends with its stack, destroyed from another one */
	ax__tsan_fiber_free(d->tsan_fiber);
	d->tsan_fiber = NULL;
	if (d->detached) {
		/* unlink and free a detached task now */
		if (d->all_prev)
			d->all_prev->all_next = d->all_next;
		else
			rt->all = d->all_next;
		if (d->all_next)
			d->all_next->all_prev = d->all_prev;
		ax__task_free(rt, d);
	}
}

/* Called by every context right after it was switched to: a test of one
 * word unless a task just exited. */
static inline void sched_after_switch(struct ax_rt *rt)
{
	if (__builtin_expect(rt->ws != NULL, 0)) {
		ax__ws_after_switch(rt);
		return;
	}
	if (__builtin_expect(rt->dead != NULL, 0))
		sched_reap_dead(rt);
}

/* Switch from the current context (task `from`, or the scheduler when
 * from is NULL) to task `to` (or to the scheduler when to is NULL).
 * core_only: the caller knows rt is a core runtime (no work-stealing
 * group), so the context resumes on rt and skips that test. */
static inline __attribute__((always_inline))
void sched_switch(struct ax_rt *rt, struct ax_task *from,
		  struct ax_task *to, bool from_dying, bool core_only)
{
	struct ax__ctx *save = from ? &from->ctx : &rt->sched_ctx;
	void *fake = NULL;
	int64_t now = 0;

	if (from) {
		sched_canary_check(from);
		if (rt->opts.hog_threshold_ns) {
			now = ax__coarse_now();
			sched_hog_check(rt, from, now);
		}
	}
	if (to) {
		to->state = AX_T_RUNNING;
		/* without hog detection, the dump's "last ran" has the
		 * resolution of a scheduler tick, and a switch reads no clock */
		to->last_run = now ? now : rt->tick_time;
		rt->n_switches++;
		rt->current = to;
		ax__san_start_switch(from_dying ? NULL : &fake, to->stack->lo,
				     to->stack->size);
		ax__tsan_switch(to->tsan_fiber);
		ax__ctx_jump(save, &to->ctx);
	} else {
		rt->current = NULL;
		ax__san_start_switch(from_dying ? NULL : &fake,
				     rt->sched_stack_lo, rt->sched_stack_size);
		ax__tsan_switch(rt->sched_fiber);
		ax__ctx_jump(save, &rt->sched_ctx);
	}
	ax__san_finish_switch(fake);
	if (core_only) {
		/* a core runtime's task resumes on the same runtime; read it
		 * back from the task, so that no register or stack slot keeps
		 * it across the switch */
		rt = from->rt;
		if (__builtin_expect(rt->dead != NULL, 0))
			sched_reap_dead(rt);
		return;
	}
	/* a work-stealing task may resume on another worker */
	if (rt->ws)
		rt = ax__tls_rt_get();
	sched_after_switch(rt);
}

/* Whether the tick has run for its time (read every 4th dispatch: long
 * task slices must not delay timers and I/O by 61 slices). */
static inline bool sched_tick_over(const struct ax_rt *rt)
{
	return rt->opts.tick_ns >= 0 &&
	       ax_now() - rt->tick_start > rt->opts.tick_ns;
}

/* Leave the current task: run the next ready task of this tick, or go back
 * to the scheduler. */
static inline __attribute__((always_inline))
void sched_leave(struct ax_rt *rt, struct ax_task *self, bool dying)
{
	struct ax_task *next = NULL;
	/* every 4th dispatch, end the tick early once it has run for
	 * AX_TICK_NS: long task slices must not delay timers and I/O by 61
	 * slices */
	if (rt->budget > 0 && (rt->budget & 3) == 0 && sched_tick_over(rt))
		rt->budget = 0;
	if (rt->budget > 0) {
		next = sched_pop(rt);
		if (next)
			rt->budget--;
	}
	if (next == self) {
		/* a yield with nobody else ready: keep running; it still counts
		 * as a suspension for hog detection */
		self->state = AX_T_RUNNING;
		if (rt->opts.hog_threshold_ns) {
			int64_t now = ax__coarse_now();
			sched_hog_check(rt, self, now);
			self->last_run = now;
		}
		return;
	}
	sched_switch(rt, self, next, dying, false);
}

int ax__park(enum ax__wait w, const void *obj)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ax_task *t = rt->current;
	t->state = AX_T_BLOCKED;
	t->wait = w;
	t->wait_obj = obj;
	t->interrupt = 0;
	t->op_cancel_sent = false;
	if (rt->ws)
		ax__ws_park(t);
	sched_leave(rt, t, false);
	t->wait = AX_W_NONE;
	t->wait_obj = NULL;
	return t->interrupt;
}

/* The first frame of every task. */
void ax__task_main(void *arg);
void ax__task_exit(struct ax_task *t);
void ax__task_main(void *arg)
{
	struct ax_task *t = arg;
	ax__san_finish_switch(NULL);
	sched_after_switch(t->rt);
	t->result = t->fn(t->arg);
	ax__task_exit(t);
	sched_leave(t->rt, t, true);
	abort(); /* a dead task is never resumed */
}

/* Switch into a freshly spawned task right now (eager spawn). */
void ax__switch_to_new(struct ax_task *child);
void ax__switch_to_new(struct ax_task *child)
{
	struct ax_rt *rt = child->rt;
	struct ax_task *self = rt->current;
	ax__ready_front(self);
	sched_switch(rt, self, child, false, false);
}

/* Yield: go to the back of the run queue. The general case: the
 * work-stealing design, an empty queue, or the end of a tick. */
__attribute__((noinline))
static void sched_yield_slow(struct ax_rt *rt, struct ax_task *t)
{
	t->wait = AX_W_YIELD;
	if (rt->ws)
		ax__ws_ready(t, false);
	else
		sched_enqueue(rt, t); /* t runs: neither queued nor done */
	sched_leave(rt, t, false);
	t->wait = AX_W_NONE;
}

/* Yield, the common case inline: a core runtime with another task ready
 * and the tick's budget not spent hands over to the queue's head and
 * takes its place at the tail (what the enqueue-then-pop of the general
 * case does, without counting the queue's length up and down). The
 * tick's clock is still read every 4th dispatch, as in sched_leave. */
static inline __attribute__((always_inline))
void sched_yield_fast(struct ax_task *t)
{
	struct ax_rt *rt = t->rt;
	struct ax_task *next = rt->rq_head;
	size_t budget = rt->budget;
	if (__builtin_expect(rt->ws != NULL || !next || budget == 0, 0) ||
	    ((budget & 3) == 0 && sched_tick_over(rt))) {
		sched_yield_slow(rt, t);
		return;
	}
	rt->budget = budget - 1;
	next->in_rq = false;
	t->state = AX_T_READY;
	t->wait = AX_W_YIELD;
	t->in_rq = true;
	t->rq_next = NULL;
	rt->rq_head = next->rq_next;
	if (rt->rq_head)
		rt->rq_tail->rq_next = t;
	else
		rt->rq_head = t;
	rt->rq_tail = t;
	sched_switch(rt, t, next, false, true);
	t->wait = AX_W_NONE;
}

void ax__yield_now(struct ax_task *t);
void ax__yield_now(struct ax_task *t)
{
	sched_yield_fast(t);
}

/* ax_yield (here rather than in task.c so that the yield is inline). */
int ax__core_yield(void)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	sched_yield_fast(t);
	if (t->cancel_pending) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* remote inbox                                                        */
/* ------------------------------------------------------------------ */

/* The push is done with rt when it releases inbox_lock: the count and the
 * wake are made under the lock. Once a message is in the inbox, the loop
 * may run it, let its task end and return from the run, and rt may then
 * be freed while the pusher is still in this function: a work-stealing
 * worker's runtime is freed at the end of each run while the group's pool
 * thread that woke the last task may be here; a core runtime may be
 * destroyed right after a run that a plain thread's ax_post let end.
 * Whoever frees rt takes inbox_lock first (ax__core_rt_destroy), so a
 * pusher that made its message visible has left. The wake is a driver's
 * thread-safe signal (an eventfd write, uv_async_send) that takes no lock
 * of ours. */
void ax__inbox_push(struct ax_rt *rt, struct ax__msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&rt->inbox_lock);
	if (rt->inbox_tail)
		rt->inbox_tail->next = m;
	else
		rt->inbox_head = m;
	rt->inbox_tail = m;
	atomic_fetch_add(&rt->inbox_n, 1);
	/* wake only a loop that is (about to be) blocked, once per poll */
	if (atomic_load(&rt->polling) && !atomic_exchange(&rt->wake_sent, 1))
		rt->drv->wake(rt->drv_state);
	pthread_mutex_unlock(&rt->inbox_lock);
}

static void sched_wake_msg(void *arg)
{
	ax__ready(arg);
}

void ax__wake_any(struct ax_task *t)
{
	struct ax_rt *rt = t->rt;
	if (ax__tls_rt == rt && pthread_equal(pthread_self(), rt->owner)) {
		ax__ready(t);
		return;
	}
	t->remote_wake.fn = sched_wake_msg;
	t->remote_wake.arg = t;
	t->remote_wake.heap = false;
	ax__inbox_push(rt, &t->remote_wake);
}

int ax__core_post(ax_rt *rt, void (*fn)(void *arg), void *arg)
{
	if (!rt || !fn)
		return -EINVAL;
	struct ax__msg *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->heap = true;
	ax__inbox_push(rt, m);
	return 0;
}

static int sched_drain_inbox(struct ax_rt *rt)
{
	if (atomic_load(&rt->inbox_n) == 0)
		return 0;
	pthread_mutex_lock(&rt->inbox_lock);
	struct ax__msg *m = rt->inbox_head;
	rt->inbox_head = rt->inbox_tail = NULL;
	pthread_mutex_unlock(&rt->inbox_lock);
	int n = 0;
	while (m) {
		struct ax__msg *next = m->next;
		bool heap = m->heap;
		if (heap)
			rt->n_posts++;
		m->fn(m->arg);
		if (heap)
			free(m);
		m = next;
		n++;
	}
	atomic_fetch_sub(&rt->inbox_n, n);
	return n;
}

/* ------------------------------------------------------------------ */
/* stack overflow reporting                                            */
/* ------------------------------------------------------------------ */

/* The core's part of the SIGSEGV handler (design.c): a fault just below
 * the running task's guarded stack is an overflow. */
static void sched_segv_report(const void *fault)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ax_task *t = rt ? rt->current : NULL;
	const char *addr = fault;
	if (t && t->stack) {
		long pg = sysconf(_SC_PAGESIZE);
		char *lo = t->stack->lo;
		if (addr < lo && addr >= lo - 16 * pg) {
			char msg[160];
			int n = snprintf(msg, sizeof msg,
					 "ax: stack overflow in task %llu '%s': "
					 "raise ax_rt_opts.stack_size (%zu bytes)\n",
					 (unsigned long long)t->id, t->name,
					 t->stack->size);
			if (n > 0 && write(2, msg, (size_t)n) < 0)
				n = 0;
		}
	}
}

/* The SIGSEGV action is process-wide while the alternate signal stack is
 * per thread, and several runtimes may run at once on different threads
 * (thread-per-core, or runtimes of other designs). The handler is shared
 * by every design and counted (ax__segv_hold, design.c): the first runtime
 * to start installs it and the last to stop restores the action it found;
 * each thread has its own alternate stack. (Installing and restoring per
 * run would let two overlapping runs restore each other's action in the
 * wrong order and leave the handler behind, or remove it under a runtime
 * still running.) */
static void sched_install_segv(stack_t *alt, stack_t *old_alt)
{
	alt->ss_size = 64 * 1024;
	alt->ss_sp = malloc(alt->ss_size);
	alt->ss_flags = 0;
	if (!alt->ss_sp)
		return;
	sigaltstack(alt, old_alt);
	ax__segv_hold();
}

static void sched_remove_segv(stack_t *alt, stack_t *old_alt)
{
	if (!alt->ss_sp)
		return;
	ax__segv_release();
	sigaltstack(old_alt->ss_sp ? old_alt : NULL, NULL);
	if (!old_alt->ss_sp) {
		stack_t dis = {.ss_flags = SS_DISABLE};
		sigaltstack(&dis, NULL);
	}
	free(alt->ss_sp);
}

/* ------------------------------------------------------------------ */
/* the loop                                                            */
/* ------------------------------------------------------------------ */

int ax__spawn_main(struct ax_rt *rt, ax_task_fn fn, void *arg,
		   struct ax_task **out);

static int sched_poll(struct ax_rt *rt, bool block)
{
	if (block) {
		/* Re-open the wake gate before announcing the wait: a pusher
		 * that saw the previous wait may have closed it after it
		 * ended, and its wake was consumed by a non-blocking poll.
		 * Pushers increment inbox_n, then read polling; we set polling,
		 * then read inbox_n: one of the two sees the other. */
		atomic_store(&rt->wake_sent, 0);
		atomic_store(&rt->polling, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load(&rt->inbox_n) > 0)
			block = false;
	}
	int n = rt->drv->poll(rt->drv_state, block);
	rt->n_polls++;
	if (block)
		atomic_store(&rt->polling, 0);
	if (n > 0)
		rt->n_events += (uint64_t)n;
	return n;
}

int ax__core_rt_run(ax_rt *rt, ax_task_fn fn, void *arg, intptr_t *result)
{
	struct ax_task *main_task;
	sigset_t pipe_set, old_set;
	stack_t alt = {0}, old_alt = {0};
	int r;

	if (!rt || !fn)
		return -EINVAL;
	if (rt->running || ax__tls_rt)
		return -EBUSY;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	sched_install_segv(&alt, &old_alt);
	ax__san_thread_stack(&rt->sched_stack_lo, &rt->sched_stack_size);
	rt->sched_fiber = ax__tsan_fiber_self();

	rt->owner = pthread_self();
	rt->running = true;
	ax__tls_rt = rt;
	r = ax__spawn_main(rt, fn, arg, &main_task);
	if (r < 0)
		goto out;

	for (;;) {
		sched_drain_inbox(rt);
		if (rt->rq_head) {
			/* one clock read per tick: the tick's start (when ticks
			 * are timed) doubles as its coarse time, which only
			 * stamps the dump's "last ran" (hog detection reads its
			 * own clock at the switch) */
			if (rt->opts.tick_ns >= 0) {
				rt->tick_start = ax_now();
				rt->tick_time = rt->tick_start;
			} else {
				rt->tick_time = ax__coarse_now();
			}
			rt->budget = AX_TICK_DISPATCHES - 1;
			struct ax_task *t = sched_pop(rt);
			sched_switch(rt, NULL, t, false, false);
			/* back when the tick ran out or nothing was ready */
			if (rt->rq_head) {
				sched_poll(rt, false);
				continue;
			}
		}
		if (rt->n_live == 0) {
			if (atomic_load(&rt->inbox_n) > 0)
				continue;
			break;
		}
		r = sched_poll(rt, true);
		if (r < 0) {
			fprintf(stderr, "ax: engine %s failed: %s\n",
				rt->drv->name, strerror((int)-r));
			abort();
		}
	}
	r = 0;
	if (result)
		*result = main_task->result;
	/* the main task is joined implicitly */
	if (main_task->all_prev)
		main_task->all_prev->all_next = main_task->all_next;
	else
		rt->all = main_task->all_next;
	if (main_task->all_next)
		main_task->all_next->all_prev = main_task->all_prev;
	ax__task_free(rt, main_task);

out:
	ax__tls_rt = NULL;
	rt->running = false;
	sched_remove_segv(&alt, &old_alt);
	{
		/* swallow a SIGPIPE raised while blocked, then restore */
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	return r;
}

/* ------------------------------------------------------------------ */
/* the core as a design (design.h): its runtimes are its drivers       */
/* ------------------------------------------------------------------ */

/* Discovery lists the compiled-in drivers first (the default design's
 * preference order), the other designs' runtimes next, and the drivers
 * registered at run time last ([AX-DRV-1]): the core appears twice in
 * design.c's list, as ax__design_core (compiled-in drivers) and
 * ax__design_core_registered (the rest), with the same calls. */
static size_t core_count(void)
{
	return ax__driver_compiled_n();
}

static size_t core_reg_count(void)
{
	return ax__driver_n() - ax__driver_compiled_n();
}

static const struct ax_driver *core_drv(size_t i, bool reg)
{
	return ax__driver_at(reg ? i + ax__driver_compiled_n() : i);
}

static bool core_probe(const struct ax_driver *d, char *why, size_t n)
{
	char buf[256] = "";
	if (d->probe && d->probe(buf, sizeof buf) < 0) {
		if (why && n)
			snprintf(why, n, "%s", buf[0] ? buf : "unavailable");
		return false;
	}
	return true;
}

#define CORE_DISCOVERY(pre, reg)                                           \
	static const char *pre##_rt_name(size_t i)                         \
	{                                                                  \
		return core_drv(i, reg)->name;                             \
	}                                                                  \
	static const char *pre##_summary(size_t i)                         \
	{                                                                  \
		return core_drv(i, reg)->summary;                          \
	}                                                                  \
	static uint32_t pre##_features(size_t i)                           \
	{                                                                  \
		return core_drv(i, reg)->features | AX__CORE_FEATURES;     \
	}                                                                  \
	static bool pre##_available(size_t i, char *why, size_t n)         \
	{                                                                  \
		return core_probe(core_drv(i, reg), why, n);               \
	}
CORE_DISCOVERY(core, false)
CORE_DISCOVERY(core_reg, true)

/* The calls, the same for both tables: only discovery differs (compiled-in
 * drivers, or drivers registered at run time). */
#define CORE_CALLS \
	.create = ax__core_rt_create, \
	.run = ax__core_rt_run, \
	.destroy = ax__core_rt_destroy, \
	.rt_driver = ax__core_rt_driver, \
	.rt_features = ax__core_rt_features, \
	.engine_info = ax__core_rt_engine_info, \
	.stats = ax__core_rt_stats, \
	.dump = ax__core_dump, \
	.post = ax__core_post, \
	.rt_current = ax__core_rt_current, \
	.spawn = ax__core_spawn_at, \
	.join = ax__core_join, \
	.detach = ax__core_detach, \
	.cancel = ax__core_cancel, \
	.yield = ax__core_yield, \
	.current = ax__core_current, \
	.set_name = ax__core_task_set_name, \
	.task_name = ax__core_task_name, \
	.sleep_until = ax__core_sleep_until, \
	.deadline_enter = ax__core_deadline_enter, \
	.deadline_leave = ax__core_deadline_leave, \
	.deadline_expired = ax__core_deadline_expired, \
	.accept = ax__core_accept, \
	.connect = ax__core_connect, \
	.read = ax__core_read, \
	.write = ax__core_write, \
	.close = ax__core_close, \
	.pread = ax__core_pread, \
	.pwrite = ax__core_pwrite, \
	.blocking = ax__core_blocking, \
	.chan_enter = ax__core_chan_enter, \
	.chan_wait = ax__core_chan_wait, \
	.chan_wake = ax__core_chan_wake, \
	.segv_report = sched_segv_report, \
	.stack_usage = ax__core_stack_usage,

const struct ax__design ax__design_core = {
	.name = "core",
	.count = core_count,
	.rt_name = core_rt_name,
	.summary = core_summary,
	.features = core_features,
	.available = core_available,
	CORE_CALLS
};

const struct ax__design ax__design_core_registered = {
	.name = "core",
	.count = core_reg_count,
	.rt_name = core_reg_rt_name,
	.summary = core_reg_summary,
	.features = core_reg_features,
	.available = core_reg_available,
	CORE_CALLS
};

/* ------------------------------------------------------------------ */
/* the core's parts of the work-stealing design's workers (ws.c)       */
/* ------------------------------------------------------------------ */

/* Run loop(rt) on the calling thread as rt's scheduler, with what
 * ax_rt_run sets up around its own loop: SIGPIPE blocked, the SIGSEGV
 * report, the sanitizers' idea of the scheduler's stack. */
int ax__sched_worker(struct ax_rt *rt, void (*loop)(struct ax_rt *rt))
{
	sigset_t pipe_set, old_set;
	stack_t alt = {0}, old_alt = {0};

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	sched_install_segv(&alt, &old_alt);
	ax__san_thread_stack(&rt->sched_stack_lo, &rt->sched_stack_size);
	rt->sched_fiber = ax__tsan_fiber_self();
	rt->owner = pthread_self();
	rt->running = true;
	ax__tls_rt = rt;
	loop(rt);
	ax__tls_rt = NULL;
	rt->running = false;
	sched_remove_segv(&alt, &old_alt);
	struct timespec zero = {0, 0};
	while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
		;
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
	return 0;
}

/* One tick from the scheduler's context: run t, then the tasks it leaves
 * ready, until the tick's budget is spent or nothing is ready. */
void ax__sched_dispatch(struct ax_rt *rt, struct ax_task *t)
{
	rt->tick_time = ax__coarse_now();
	rt->tick_start = ax_now();
	rt->budget = AX_TICK_DISPATCHES - 1;
	sched_switch(rt, NULL, t, false, false);
}

int ax__sched_poll(struct ax_rt *rt, bool block)
{
	return sched_poll(rt, block);
}

int ax__sched_drain(struct ax_rt *rt)
{
	return sched_drain_inbox(rt);
}
