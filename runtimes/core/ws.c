/*
 * ws.c - the work-stealing design: N worker threads, each a core runtime
 * with its own engine instance, sharing the tasks of one ax runtime
 * through per-worker run queues (a LIFO slot and a bounded ring), a global
 * injection queue, stealing of half a victim's ring, and parking.
 *
 * Invariants (docs/decisions.md, "Work stealing"):
 *   - A task runs on one worker at a time: it is in at most one queue, and
 *     a task that switches away is queued only by the context that runs
 *     after the switch on the same worker (ax__ws_after_switch), never
 *     while its stack is still in use.
 *   - A blocked task stays with the worker it parked on (t->rt): its timer,
 *     its operation and its pool job live in that worker's engine, and
 *     every wake of it runs on that worker's thread (engine callbacks
 *     there, or messages through its inbox). The wake releases that engine
 *     state (ax__ws_ready) before the task can be stolen, so a task that
 *     resumes elsewhere leaves nothing behind. The exception is a channel
 *     wait without a timer, which holds no engine state: a task of the
 *     group that wakes it takes it onto its own worker (ws_chan_wake).
 *   - A descriptor's engine state lives on one worker, its owner (the
 *     first to use it; for accepted and connected descriptors, the worker
 *     that completed the operation). A task that operates on a descriptor
 *     owned by another worker moves there first (a hop), so no engine
 *     handle is ever used from the wrong thread, ax_close always reaches
 *     the engine holding the descriptor, and the one-read-one-write check
 *     of [AX-TCP-9] sees every pending operation.
 *   - Cross-thread requests on a task (cancel, join) go through its
 *     ws_flags word and the group's task lock, so a wake during a run
 *     causes one more run, never two.
 */
#include "core.h"
#include "san.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wsq.h"

/* ws_flags bits */
enum {
	WS_BLOCKED = 1u << 0, /* parked in a wait on ws_wait_rt */
	WS_XCANCEL = 1u << 1, /* ax_cancel from anywhere, not yet absorbed */
	WS_OFF = 1u << 2,     /* parked, and its worker has switched away:
	                         its stack is free */
	WS_CLAIMABLE = 1u << 3, /* the wait holds nothing in its worker's
	                           engine (a channel wait without a timer) */
	WS_LOCK = 1u << 4,    /* its worker is interrupting the wait */
};

#define WS_RING 256          /* per-worker ring entries */
#define WS_GLOBAL_EVERY 61   /* a worker looks at the global queue first
                                every this many pops (fairness) */
#define WS_LIFO_MAX 3        /* LIFO-slot runs in a row before the ring */
#define WS_FD_CHUNK 1024
#define WS_FD_CHUNKS 1024    /* descriptors up to 1M have an owner slot */
#define WS_MAX_WORKERS 256

struct ws_worker {
	struct ax__ws *g;
	unsigned idx;
	struct ax_rt *rt;        /* created on the worker's own thread */
	pthread_t thr;
	int create_r;
	struct ax__wsq q;
	struct ax_task *lifo;    /* owner only */
	bool lifo_front;         /* lifo is the parent of an eager spawn */
	unsigned lifo_streak;
	struct ax_task *pin_head, *pin_tail; /* hops in, owner only */
	struct ax_task *defer;   /* switched away, to queue after the switch */
	struct ax_task *parking; /* switched away blocked: WS_OFF after it */
	struct ax_task *interrupting; /* ws_cancel_here's task, until woken */
	bool defer_front;
	struct ax_rt *defer_hop; /* ... or to move to that worker */
	bool in_drain;           /* running inbox messages */
	unsigned pops;
	atomic_int parked;
	unsigned rng;
	/* counters: the owner counts, others read the published copies */
	uint64_t n_steals, n_parks, n_xwakes, n_hops;
	_Atomic uint64_t pub[12];
};

enum { P_ITER, P_EVENTS, P_SWITCH, P_HOGS, P_POSTS, P_STEALS, P_PARKS,
       P_XWAKES, P_HOPS };

struct ax__ws {
	struct ax__rt_head head;      /* first: the design (design.h) */
	const struct ax_driver *drv;
	char name[40];                /* "ws-epoll" */
	char info[200];
	struct ax_rt_opts opts;
	char engine_flags[128];       /* what the driver gets */
	unsigned n;
	bool lifo_on;
	struct ws_worker *w;
	struct ax__gq global;
	/* tasks: the list of all, joins and detaches */
	pthread_mutex_t tlock;
	struct ax_task *all;
	atomic_long live;
	_Atomic uint64_t spawned, next_id;
	/* stacks, shared: a task ends where it ends, not where it began */
	pthread_mutex_t slock;
	struct ax__stack_pool stacks;
	struct ax__pool *pool;        /* slock */
	/* ax_post: run by worker 0, the thread running ax_rt_run */
	pthread_mutex_t plock;
	struct ax__msg *p_head, *p_tail;
	atomic_int p_n;
	atomic_int p_busy;
	/* parking */
	atomic_int n_idle, n_searching;
	/* descriptor owners: worker index + 1, 0 for none */
	atomic_int *_Atomic own[WS_FD_CHUNKS];
	/* the run */
	bool running;
	pthread_barrier_t bar;
	/* the start gate: worker threads wait until every one was created
	 * (go = 1) or one could not be (go = -1: they leave at once) */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	int go;
	ax_task_fn main_fn;
	void *main_arg;
	struct ax_task *main;
	int run_r;
	atomic_uint rr;
	/* counters of past runs */
	struct ax_rt_stats past;
};

int ax__spawn_main(struct ax_rt *rt, ax_task_fn fn, void *arg,
		   struct ax_task **out);

struct ax_rt *__attribute__((noinline)) ax__tls_rt_get(void)
{
	/* an empty asm keeps the compiler from treating the call as pure */
	__asm__ volatile("" ::: "memory");
	return ax__tls_rt;
}

static inline struct ws_worker *ws_me(struct ax_rt *rt)
{
	return &rt->ws->w[rt->ws_index];
}

/* ------------------------------------------------------------------ */
/* waking idle workers                                                 */
/* ------------------------------------------------------------------ */

static void ws_wake_worker(struct ws_worker *w)
{
	w->g->drv->wake(w->rt->drv_state);
}

/* New work is visible: unpark one worker unless one is searching already
 * (it will find the work, and wakes another when it does). */
static void ws_notify(struct ax__ws *g)
{
	/* The rings' pushes are release stores (wsq.c), not sequentially
	 * consistent: this fence orders the push before the loads of the idle
	 * count, and pairs with the one a parking worker issues between
	 * announcing itself and looking at the rings (ws_loop): either this
	 * producer sees the idle worker or that worker sees the entry. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(&g->n_searching) > 0 || atomic_load(&g->n_idle) == 0)
		return;
	for (unsigned i = 0; i < g->n; i++)
		if (atomic_exchange(&g->w[i].parked, 0)) {
			atomic_fetch_sub(&g->n_idle, 1);
			ws_wake_worker(&g->w[i]);
			return;
		}
}

static void ws_wake_all(struct ax__ws *g)
{
	for (unsigned i = 0; i < g->n; i++)
		ws_wake_worker(&g->w[i]);
}

/* ------------------------------------------------------------------ */
/* queues                                                              */
/* ------------------------------------------------------------------ */

/* How a task joins its worker's queues. */
enum ws_how {
	WS_TAIL,  /* the ring's tail: a yield, a new task */
	WS_WOKEN, /* the LIFO slot when it is on (lifo=1), else the tail */
	WS_FRONT, /* the LIFO slot always: the parent of an eager spawn runs
	             next on this worker ([AX-TASK-1] on one worker) */
};

/* Queue t on worker w (its owner thread); a full ring moves half of
 * itself and t to the global queue. */
static void ws_enqueue(struct ws_worker *w, struct ax_task *t, enum ws_how how)
{
	struct ax__ws *g = w->g;
	if (how == WS_WOKEN && w->lifo && w->lifo_front)
		how = WS_TAIL; /* an eager spawn's parent keeps the slot */
	if (how == WS_FRONT || (how == WS_WOKEN && g->lifo_on)) {
		struct ax_task *old = w->lifo;
		w->lifo = t;
		w->lifo_front = how == WS_FRONT;
		if (!old)
			return; /* not stealable: nobody to wake for it */
		t = old;
	}
	if (!ax__wsq_push(&w->q, t)) {
		void *batch[WS_RING / 2 + 1];
		size_t n = ax__wsq_steal_half(&w->q, batch, WS_RING / 2);
		batch[n++] = t;
		if (ax__gq_push(&g->global, batch, n) < 0) {
			/* no memory for a chunk: keep them here. The ring has
			 * room for the n - 1 taken from it (more if thieves took
			 * some meanwhile), not always for t as well: what does
			 * not fit runs on this worker from its owner-only list */
			for (size_t i = 0; i < n; i++)
				if (!ax__wsq_push(&w->q, batch[i]))
					ax__tq_append(&w->pin_head, &w->pin_tail,
						      batch[i]);
		}
	}
	ws_notify(g);
}

void ax__ws_ready(struct ax_task *t, bool front)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ws_worker *w = ws_me(rt);
	if (t->in_rq || t->state == AX_T_DONE)
		return;
	if (t->state == AX_T_BLOCKED) {
		/* the wait is over: release what this worker's engine holds
		 * for it before another worker can take it */
		ax__timer_disarm(t);
		if (t->wait == AX_W_OP &&
		    (t->op.kind == AX_OP_READ || t->op.kind == AX_OP_WRITE ||
		     t->op.kind == AX_OP_ACCEPT)) {
			struct ax__sides *b = ax__fdtab_find(&rt->busy, t->op.fd);
			if (b)
				ax__side_take(b, &t->op);
		}
		/* the wait is over, and so is the WS_LOCK of a
		 * ws_cancel_here on this worker (the only worker that
		 * readies t): once queued, t may run and end elsewhere, so
		 * that canceller must not touch it again */
		atomic_fetch_and(&t->ws_flags,
				 ~(unsigned)(WS_BLOCKED | WS_OFF | WS_CLAIMABLE |
					     WS_LOCK));
		if (t == w->interrupting)
			w->interrupting = NULL;
		if (t == w->parking)
			w->parking = NULL; /* readied before its switch: no WS_OFF */
		if (w->in_drain)
			w->n_xwakes++;
	}
	t->state = AX_T_READY;
	t->in_rq = true;
	if (t == rt->current) {
		/* still on its stack: queued after the switch */
		w->defer = t;
		w->defer_front = front;
		return;
	}
	ws_enqueue(w, t, front ? WS_FRONT
			       : t->wait == AX_W_YIELD ? WS_TAIL : WS_WOKEN);
}

/* Steal half of another worker's ring into ours; returns one task to run
 * or NULL. At most half of the workers search at once. */
static struct ax_task *ws_steal(struct ws_worker *w)
{
	struct ax__ws *g = w->g;
	if (g->n < 2)
		return NULL;
	int s = atomic_load(&g->n_searching);
	if (2 * (unsigned)s >= g->n)
		return NULL;
	atomic_fetch_add(&g->n_searching, 1);
	struct ax_task *got = NULL;
	w->rng = w->rng * 1103515245u + 12345u;
	unsigned start = (w->rng >> 16) % g->n;
	for (unsigned k = 0; k < g->n && !got; k++) {
		struct ws_worker *v = &g->w[(start + k) % g->n];
		if (v == w)
			continue;
		void *batch[WS_RING / 2];
		size_t n = ax__wsq_steal_half(&v->q, batch, WS_RING / 2);
		if (!n)
			continue;
		w->n_steals++;
		got = batch[0];
		for (size_t i = 1; i < n; i++)
			ax__wsq_push(&w->q, batch[i]); /* ours is empty */
	}
	/* the last searcher to find work wakes another, so that the rest of
	 * what it found is not left to one worker */
	if (atomic_fetch_sub(&g->n_searching, 1) == 1 && got &&
	    ax__wsq_len(&w->q) > 0)
		ws_notify(g);
	return got;
}

static struct ax_task *ws_global(struct ws_worker *w)
{
	void *batch[32];
	size_t n = ax__gq_pop(&w->g->global, batch,
			      1 + (WS_RING - ax__wsq_len(&w->q)) / 2 < 32
				      ? 1 + (WS_RING - ax__wsq_len(&w->q)) / 2
				      : 32);
	for (size_t i = 1; i < n; i++)
		ax__wsq_push(&w->q, batch[i]);
	return n ? batch[0] : NULL;
}

struct ax_task *ax__ws_pop(struct ax_rt *rt)
{
	struct ws_worker *w = ws_me(rt);
	struct ax_task *t = NULL;
	if (w->lifo && w->lifo_front) {
		/* the parent of an eager spawn resumes first ([AX-TASK-1]) */
		t = w->lifo;
		w->lifo = NULL;
		w->lifo_front = false;
		goto found;
	}
	if (++w->pops % WS_GLOBAL_EVERY == 0)
		t = ws_global(w);
	if (!t && w->lifo) {
		struct ax_task *l = w->lifo;
		w->lifo = NULL;
		if (w->lifo_streak < WS_LIFO_MAX) {
			t = l;
			w->lifo_streak++;
		} else {
			/* the slot had its turns: to the back, behind the
			 * others, so that two tasks waking each other cannot
			 * starve the ring */
			w->lifo_streak = 0;
			ws_enqueue(w, l, WS_TAIL);
		}
	} else {
		w->lifo_streak = 0;
	}
	if (!t && w->pin_head) {
		t = w->pin_head;
		w->pin_head = t->rq_next;
		if (!w->pin_head)
			w->pin_tail = NULL;
	}
	if (!t)
		t = ax__wsq_pop(&w->q);
	if (!t)
		t = ws_global(w);
	if (!t)
		t = ws_steal(w);
	if (!t && w->lifo) {
		t = w->lifo;
		w->lifo = NULL;
	}
	if (!t)
		return NULL;
found:
	if (t->rt != rt)
		t->rt = rt; /* migrated: it runs here now */
	t->in_rq = false;
	return t;
}

/* ------------------------------------------------------------------ */
/* switching, parking, ending                                          */
/* ------------------------------------------------------------------ */

static void ws_hop_arrive(void *arg)
{
	struct ax_task *t = arg;
	struct ax_rt *rt = ax__tls_rt;
	struct ws_worker *w = ws_me(rt);
	t->rt = rt;
	ax__tq_append(&w->pin_head, &w->pin_tail, t);
}

static void ws_release(struct ax_rt *rt, struct ax_task *t);

void ax__ws_after_switch(struct ax_rt *rt)
{
	struct ws_worker *w = ws_me(rt);
	struct ax__ws *g = rt->ws;
	struct ax_task *p = w->parking;
	if (p) {
		/* still blocked (a wake before the switch cleared w->parking);
		 * its stack is free from here: a waker on another worker may
		 * take it (ws_chan_wake); p is not touched after this */
		w->parking = NULL;
		atomic_fetch_or_explicit(&p->ws_flags, WS_OFF,
					 memory_order_release);
	}
	struct ax_task *d = rt->dead;
	if (d) {
		rt->dead = NULL;
		/* cleared under slock: ws_stack_usage reads it there */
		pthread_mutex_lock(&g->slock);
		ax__stack_put(&g->stacks, d->stack);
		d->stack = NULL;
		pthread_mutex_unlock(&g->slock);
		/* its TSan fiber ends with its stack, from another fiber */
		ax__tsan_fiber_free(d->tsan_fiber);
		d->tsan_fiber = NULL;
		pthread_mutex_lock(&g->tlock);
		d->ws_done = true;
		struct ax_task *j = d->joiner;
		bool det = d->detached;
		pthread_mutex_unlock(&g->tlock);
		if (det) {
			ax__ws_unlink(d);
			ws_release(rt, d);
		} else if (j) {
			ax__wake_any(j);
		}
		if (atomic_fetch_sub(&g->live, 1) == 1)
			ws_wake_all(g);
	}
	struct ax_task *t = w->defer;
	if (t) {
		w->defer = NULL;
		if (w->defer_hop) {
			struct ax_rt *to = w->defer_hop;
			w->defer_hop = NULL;
			t->remote_wake.fn = ws_hop_arrive;
			t->remote_wake.arg = t;
			t->remote_wake.heap = false;
			w->n_hops++;
			ax__inbox_push(to, &t->remote_wake);
			return;
		}
		ws_enqueue(w, t, w->defer_front ? WS_FRONT
				 : t->wait == AX_W_YIELD ? WS_TAIL : WS_WOKEN);
	}
}

void ax__ws_park(struct ax_task *t)
{
	atomic_store(&t->ws_wait_rt, t->rt);
	unsigned claim = 0;
	if ((t->wait == AX_W_CHAN_SEND || t->wait == AX_W_CHAN_RECV) &&
	    !t->timer_armed)
		claim = WS_CLAIMABLE;
	/* WS_OFF and WS_CLAIMABLE are clear here: every wake clears them with
	 * WS_BLOCKED (ax__ws_ready, ws_claim), and a wake before the switch
	 * away drops the pending WS_OFF (w->parking) */
	unsigned old = atomic_fetch_or(&t->ws_flags, WS_BLOCKED | claim);
	ws_me(t->rt)->parking = t;
	if (old & WS_XCANCEL) {
		atomic_fetch_and(&t->ws_flags, ~(unsigned)WS_XCANCEL);
		t->cancel_pending = true;
		ax__interrupt(t, AX_INT_CANCEL);
	}
}

/* ------------------------------------------------------------------ */
/* tasks: list, stacks, release                                        */
/* ------------------------------------------------------------------ */

struct ax__stack *ax__ws_stack_get(struct ax_rt *rt)
{
	struct ax__ws *g = rt->ws;
	pthread_mutex_lock(&g->slock);
	struct ax__stack *s = ax__stack_get(&g->stacks);
	pthread_mutex_unlock(&g->slock);
	return s;
}

struct ax__pool *ax__ws_pool(struct ax_rt *rt)
{
	struct ax__ws *g = rt->ws;
	pthread_mutex_lock(&g->slock);
	if (!g->pool)
		g->pool = ax__pool_create(rt);
	struct ax__pool *p = g->pool;
	pthread_mutex_unlock(&g->slock);
	return p;
}

void ax__ws_link(struct ax_task *t)
{
	struct ax__ws *g = t->rt->ws;
	atomic_init(&t->ws_flags, 0);
	atomic_init(&t->ws_refs, 1);
	atomic_init(&t->ws_wait_rt, NULL);
	t->ws_done = false;
	t->id = atomic_fetch_add(&g->next_id, 1) + 1;
	atomic_fetch_add(&g->spawned, 1);
	pthread_mutex_lock(&g->tlock);
	t->all_prev = NULL;
	t->all_next = g->all;
	if (g->all)
		g->all->all_prev = t;
	g->all = t;
	pthread_mutex_unlock(&g->tlock);
}

void ax__ws_unlink(struct ax_task *t)
{
	struct ax__ws *g = ax__tls_rt->ws;
	pthread_mutex_lock(&g->tlock);
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		g->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	pthread_mutex_unlock(&g->tlock);
}

/* Drop one reference to t's record (the handle, or a cancel message in
 * flight); the last frees it. */
static void ws_release(struct ax_rt *rt, struct ax_task *t)
{
	if (atomic_fetch_sub(&t->ws_refs, 1) == 1)
		ax__task_free(rt, t);
}

/* ------------------------------------------------------------------ */
/* cancel and join across workers                                      */
/* ------------------------------------------------------------------ */

/* A cancel request that ran on another thread reaches the calling task:
 * every suspending call absorbs it before its entry check. */
static void ws_absorb(void)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ax_task *t = rt ? rt->current : NULL;
	if (t && (atomic_load_explicit(&t->ws_flags, memory_order_relaxed) &
		  WS_XCANCEL)) {
		atomic_fetch_and(&t->ws_flags, ~(unsigned)WS_XCANCEL);
		t->cancel_pending = true;
	}
}

/* On the worker t is blocked on, with WS_XCANCEL set (so that no waker
 * takes it meanwhile: ws_claim): interrupt its wait. WS_LOCK keeps wakers
 * off while the wait's state is touched here. When the interrupt woke t,
 * ax__ws_ready dropped WS_LOCK and t is not touched again: queued, it may
 * already run on another worker, wait again (a later WS_LOCK of another
 * worker must not be cleared from here), end and be freed. */
static void ws_cancel_here(struct ax_task *t)
{
	struct ws_worker *w = ws_me(ax__tls_rt);
	atomic_fetch_or(&t->ws_flags, WS_LOCK);
	atomic_fetch_and(&t->ws_flags, ~(unsigned)WS_XCANCEL);
	t->cancel_pending = true;
	w->interrupting = t;
	ax__interrupt(t, AX_INT_CANCEL);
	if (w->interrupting == t) {
		/* still blocked here: its wake, if any, is in our inbox */
		w->interrupting = NULL;
		atomic_fetch_and(&t->ws_flags, ~(unsigned)WS_LOCK);
	}
}

struct ws_cancel_msg {
	struct ax__msg m;
	struct ax_task *t;
};

/* On the worker t parked on: interrupt the wait if t still waits there
 * and the request was not absorbed meanwhile. */
static void ws_cancel_arrive(void *arg)
{
	struct ws_cancel_msg *cm = arg;
	struct ax_task *t = cm->t;
	struct ax_rt *rt = ax__tls_rt;
	free(cm);
	unsigned f = atomic_load(&t->ws_flags);
	if ((f & WS_BLOCKED) && (f & WS_XCANCEL) &&
	    atomic_load(&t->ws_wait_rt) == rt)
		ws_cancel_here(t);
	ws_release(rt, t);
}

static int ws_cancel(ax_task *t)
{
	if (!t)
		return -EINVAL;
	unsigned old = atomic_fetch_or(&t->ws_flags, WS_XCANCEL);
	if ((old & WS_BLOCKED) && !(old & WS_XCANCEL)) {
		struct ax_rt *to = atomic_load(&t->ws_wait_rt);
		if (to == ax__tls_rt) {
			/* blocked on this worker: interrupt it now, as the
			 * one-thread core does */
			ws_cancel_here(t);
			return 0;
		}
		struct ws_cancel_msg *cm = malloc(sizeof *cm);
		if (!cm) {
			atomic_fetch_and(&t->ws_flags, ~(unsigned)WS_XCANCEL);
			return -ENOMEM;
		}
		atomic_fetch_add(&t->ws_refs, 1);
		cm->t = t;
		cm->m.fn = ws_cancel_arrive;
		cm->m.arg = cm;
		cm->m.heap = false;
		ax__inbox_push(to, &cm->m);
	}
	return 0;
}

void ax__ws_join_interrupt(struct ax_task *t)
{
	struct ax__ws *g = t->rt->ws;
	struct ax_task *target = (struct ax_task *)t->wait_obj;
	bool ready = false;
	pthread_mutex_lock(&g->tlock);
	if (target && target->joiner == t && !target->ws_done) {
		target->joiner = NULL;
		ready = true;
	}
	pthread_mutex_unlock(&g->tlock);
	/* else the target ended and its wake is on its way */
	if (ready)
		ax__ready(t);
}

static int ws_join(ax_task *t, intptr_t *result)
{
	struct ax_task *self;
	ws_absorb();
	int r = ax__enter(&self);
	if (r == -EPERM)
		return r;
	struct ax__ws *g = self->rt->ws;
	if (!t || t == self)
		return -EINVAL;
	pthread_mutex_lock(&g->tlock);
	if (t->detached || (t->joiner && t->joiner != self)) {
		pthread_mutex_unlock(&g->tlock);
		return -EINVAL;
	}
	if (r < 0) {
		pthread_mutex_unlock(&g->tlock);
		return r;
	}
	if (!t->ws_done) {
		pthread_mutex_unlock(&g->tlock);
		int64_t dl = ax__deadline_of(self);
		if (dl != INT64_MAX && (r = ax__timer_arm(self, dl)) < 0)
			return r;
		pthread_mutex_lock(&g->tlock);
		bool done = t->ws_done;
		t->joiner = self;
		pthread_mutex_unlock(&g->tlock);
		if (!done) {
			int bits = ax__park(AX_W_JOIN, t);
			ax__timer_disarm(self);
			pthread_mutex_lock(&g->tlock);
			done = t->ws_done && t->joiner == self;
			pthread_mutex_unlock(&g->tlock);
			/* interrupted before t ended: t is not ours any more */
			if (!done)
				return ax__interrupt_errno(self, bits);
		} else {
			ax__timer_disarm(self);
		}
	} else {
		t->joiner = self;
		pthread_mutex_unlock(&g->tlock);
	}
	if (result)
		*result = t->result;
	ax__ws_unlink(t);
	ws_release(ax__tls_rt_get(), t);
	return 0;
}

static int ws_detach(ax_task *t)
{
	struct ax_rt *rt = ax__tls_rt;
	if (!t || !rt)
		return -EINVAL;
	struct ax__ws *g = rt->ws;
	pthread_mutex_lock(&g->tlock);
	if (t->detached || t->joiner) {
		pthread_mutex_unlock(&g->tlock);
		return -EINVAL;
	}
	t->detached = true;
	bool done = t->ws_done;
	pthread_mutex_unlock(&g->tlock);
	if (done) {
		ax__ws_unlink(t);
		ws_release(rt, t);
	}
	return 0;
}

static int ws_spawn(ax_task **out, ax_task_fn fn, void *arg, const char *name,
		    const char *file, int line)
{
	struct ax_rt *rt = ax__tls_rt;
	if (!rt)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	struct ax__ws *g = rt->ws;
	atomic_fetch_add(&g->live, 1);
	int r = ax__core_spawn_at(out, fn, arg, name, file, line);
	if (r < 0)
		atomic_fetch_sub(&g->live, 1);
	return r;
}

/* ------------------------------------------------------------------ */
/* descriptors: owners and hops                                        */
/* ------------------------------------------------------------------ */

static atomic_int *ws_own_slot(struct ax__ws *g, int fd)
{
	if (fd < 0 || fd >= WS_FD_CHUNK * WS_FD_CHUNKS)
		return NULL;
	atomic_int *c = atomic_load(&g->own[fd / WS_FD_CHUNK]);
	if (!c) {
		atomic_int *fresh = calloc(WS_FD_CHUNK, sizeof *fresh);
		if (!fresh)
			return NULL;
		atomic_int *none = NULL;
		if (atomic_compare_exchange_strong(&g->own[fd / WS_FD_CHUNK],
						   &none, fresh))
			c = fresh;
		else {
			free(fresh);
			c = none;
		}
	}
	return &c[fd % WS_FD_CHUNK];
}

void ax__yield_now(struct ax_task *t);

/* Move the calling task to worker `to` (a suspension like a yield). */
static void ws_hop(struct ax_task *t, struct ax_rt *to)
{
	struct ax_rt *rt = t->rt;
	ws_me(rt)->defer_hop = to;
	ax__yield_now(t);
}

void ax__ws_yield_here(struct ax_task *t)
{
	ws_hop(t, t->rt);
}

/* Run the calling task on the owner of fd, making the current worker the
 * owner of a descriptor that has none. */
static void ws_home(int fd)
{
	struct ax_rt *rt = ax__tls_rt_get();
	struct ax_task *t = rt ? rt->current : NULL;
	if (!t)
		return;
	struct ax__ws *g = rt->ws;
	atomic_int *slot = ws_own_slot(g, fd);
	if (!slot)
		return; /* no slot: the descriptor stays unowned */
	for (int tries = 0; tries < 8; tries++) {
		int me = (int)rt->ws_index + 1;
		int o = 0;
		if (atomic_compare_exchange_strong(slot, &o, me) || o == me)
			return;
		ws_hop(t, g->w[o - 1].rt);
		rt = ax__tls_rt_get();
	}
}

/* After an accept or connect that returned fd: its engine state (if
 * any) is on the worker where the operation waited, or ran. */
static void ws_own_new(int fd, struct ax_task *t, struct ax_rt *waited)
{
	struct ax__ws *g = t->rt->ws;
	atomic_int *slot = ws_own_slot(g, fd);
	if (slot)
		atomic_store(slot, (int)(waited ? waited : t->rt)->ws_index + 1);
}

static int ws_accept(int lfd)
{
	ws_absorb();
	ws_home(lfd);
	struct ax_rt *rt = ax__tls_rt_get();
	struct ax_task *t = rt ? rt->current : NULL;
	if (t)
		atomic_store(&t->ws_wait_rt, NULL);
	int r = ax__core_accept(lfd);
	if (r >= 0)
		ws_own_new(r, t, atomic_load(&t->ws_wait_rt));
	return r;
}

static int ws_connect(const char *host, uint16_t port)
{
	ws_absorb();
	struct ax_rt *rt = ax__tls_rt_get();
	struct ax_task *t = rt ? rt->current : NULL;
	if (t)
		atomic_store(&t->ws_wait_rt, NULL);
	int r = ax__core_connect(host, port);
	if (r >= 0)
		ws_own_new(r, t, atomic_load(&t->ws_wait_rt));
	return r;
}

static ssize_t ws_read(int fd, void *buf, size_t n)
{
	ws_absorb();
	ws_home(fd);
	return ax__core_read(fd, buf, n);
}

static ssize_t ws_write(int fd, const void *buf, size_t n)
{
	ws_absorb();
	ws_home(fd);
	return ax__core_write(fd, buf, n);
}

static ssize_t ws_pread(int fd, void *buf, size_t n, int64_t off)
{
	ws_absorb();
	ws_home(fd);
	return ax__core_pread(fd, buf, n, off);
}

static ssize_t ws_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
	ws_absorb();
	ws_home(fd);
	return ax__core_pwrite(fd, buf, n, off);
}

static int ws_close(int fd)
{
	struct ax_rt *rt = ax__tls_rt_get();
	if (fd < 0)
		return -EBADF;
	if (!rt)
		return close(fd) < 0 ? -errno : 0;
	struct ax__ws *g = rt->ws;
	atomic_int *slot = ws_own_slot(g, fd);
	if (rt->current)
		ws_home(fd);
	int r = ax__core_close(fd);
	if (slot)
		atomic_store(slot, 0);
	return r;
}

static int ws_yield(void)
{
	ws_absorb();
	return ax__core_yield();
}

static int ws_sleep_until(int64_t at)
{
	ws_absorb();
	return ax__core_sleep_until(at);
}

static int ws_blocking(intptr_t (*fn)(void *), void *arg, intptr_t *result)
{
	ws_absorb();
	return ax__core_blocking(fn, arg, result);
}

static int ws_chan_enter(void **task)
{
	ws_absorb();
	return ax__core_chan_enter(task);
}

/* Take t, blocked in a channel wait on another worker, for this one: it
 * holds nothing in its worker's engine (WS_CLAIMABLE), its stack is free
 * (WS_OFF), and no cancel is being delivered to it (WS_XCANCEL, WS_LOCK).
 * The compare-and-swap that clears WS_BLOCKED is the wake; the channel's
 * lock made this caller its only waker. */
static bool ws_claim(struct ax_task *t)
{
	const unsigned need = WS_BLOCKED | WS_OFF | WS_CLAIMABLE;
	unsigned f = atomic_load_explicit(&t->ws_flags, memory_order_relaxed);
	while ((f & need) == need && !(f & (WS_XCANCEL | WS_LOCK)))
		if (atomic_compare_exchange_weak_explicit(
			    &t->ws_flags, &f, f & ~need, memory_order_acquire,
			    memory_order_relaxed))
			return true;
	return false;
}

/* A channel wakes t (with the channel locked). A waker running on a worker
 * of t's group readies it here, in this worker's LIFO slot, as the
 * one-thread core would: the two tasks of a ping-pong end up on one worker
 * instead of paying a park and an engine wake per message. Otherwise (a
 * plain thread, another runtime, a wait with a timer, a cancel in flight)
 * the wake goes to the worker t is blocked on. */
static void ws_chan_wake(void *task)
{
	struct ax_task *t = task;
	struct ax_rt *rt = ax__tls_rt;
	if (rt && rt->ws && rt->ws == t->rt->ws && ws_claim(t)) {
		struct ws_worker *w = ws_me(rt);
		t->state = AX_T_READY;
		t->in_rq = true;
		ws_enqueue(w, t, WS_WOKEN);
		return;
	}
	ax__wake_any(t);
}

static bool ws_deadline_expired(void)
{
	return ax__core_deadline_expired();
}

/* ------------------------------------------------------------------ */
/* posts                                                               */
/* ------------------------------------------------------------------ */

static int ws_post(ax_rt *rt_, void (*fn)(void *), void *arg)
{
	struct ax__ws *g = (struct ax__ws *)rt_;
	if (!rt_ || !fn)
		return -EINVAL;
	struct ax__msg *m = malloc(sizeof *m);
	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->heap = true;
	m->next = NULL;
	pthread_mutex_lock(&g->plock);
	if (g->p_tail)
		g->p_tail->next = m;
	else
		g->p_head = m;
	g->p_tail = m;
	atomic_fetch_add(&g->p_n, 1);
	/* worker 0 runs it; the wake is made under the lock, which a worker
	 * takes before its engine goes away */
	if (g->running)
		ws_wake_worker(&g->w[0]);
	pthread_mutex_unlock(&g->plock);
	return 0;
}

/* Run the posts on worker 0, the thread running ax_rt_run, in order
 * ([AX-POST-1] holds as on one thread). */
static void ws_run_posts(struct ax__ws *g, struct ax_rt *rt)
{
	if (rt->ws_index != 0 || atomic_load(&g->p_n) == 0 ||
	    atomic_exchange(&g->p_busy, 1))
		return;
	pthread_mutex_lock(&g->plock);
	struct ax__msg *m = g->p_head;
	g->p_head = g->p_tail = NULL;
	pthread_mutex_unlock(&g->plock);
	int n = 0;
	while (m) {
		struct ax__msg *next = m->next;
		rt->n_posts++;
		m->fn(m->arg);
		free(m);
		m = next;
		n++;
	}
	atomic_fetch_sub(&g->p_n, n);
	atomic_store(&g->p_busy, 0);
}

/* ------------------------------------------------------------------ */
/* the workers                                                         */
/* ------------------------------------------------------------------ */

static void ws_publish(struct ws_worker *w)
{
	struct ax_rt_stats st;
	ax__core_rt_stats(w->rt, &st);
	atomic_store_explicit(&w->pub[P_ITER], st.loop_iterations, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_EVENTS], st.events, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_SWITCH], st.switches, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_HOGS], st.hogs, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_POSTS], st.posts, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_STEALS], w->n_steals, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_PARKS], w->n_parks, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_XWAKES], w->n_xwakes, memory_order_relaxed);
	atomic_store_explicit(&w->pub[P_HOPS], w->n_hops, memory_order_relaxed);
}

static bool ws_work_visible(struct ax__ws *g, struct ws_worker *me)
{
	if (ax__gq_len(&g->global) || (me->idx == 0 && atomic_load(&g->p_n)))
		return true;
	for (unsigned i = 0; i < g->n; i++)
		if (&g->w[i] != me && ax__wsq_len(&g->w[i].q))
			return true;
	return false;
}

static void ws_loop(struct ax_rt *rt)
{
	struct ws_worker *w = ws_me(rt);
	struct ax__ws *g = rt->ws;
	if (w->idx == 0) {
		int r = ax__spawn_main(rt, g->main_fn, g->main_arg, &g->main);
		if (r < 0) {
			g->run_r = r;
			atomic_store(&g->live, 0);
			ws_wake_all(g);
		}
	}
	for (;;) {
		w->in_drain = true;
		ax__sched_drain(rt);
		w->in_drain = false;
		ws_run_posts(g, rt);
		struct ax_task *t = ax__ws_pop(rt);
		if (t) {
			ax__sched_dispatch(rt, t);
			/* the tick's counters are published before the poll
			 * that may wake a task parked here (its timer, its
			 * descriptor): a task that counted as a hog when it
			 * suspended here, and resumes on another worker, finds
			 * its hog in ax_rt_stats (task.hog with lifo=0, where
			 * the woken task is stealable at once) */
			ws_publish(w);
			/* every tick polls this worker's engine: a worker that
			 * keeps finding work to steal must still deliver the
			 * events of the descriptors it owns */
			ax__sched_poll(rt, false);
			continue;
		}
		if (atomic_load(&g->live) == 0 &&
		    (w->idx != 0 || atomic_load(&g->p_n) == 0))
			break;
		/* park: announce, look once more, then wait in the engine,
		 * whose wake any worker may call ([AX-MT-2]) */
		atomic_store(&w->parked, 1);
		atomic_fetch_add(&g->n_idle, 1);
		/* pairs with ws_notify's fence: the rings' lengths are relaxed
		 * loads */
		atomic_thread_fence(memory_order_seq_cst);
		if (ws_work_visible(g, w) || atomic_load(&g->live) == 0) {
			if (atomic_exchange(&w->parked, 0))
				atomic_fetch_sub(&g->n_idle, 1);
			ax__sched_poll(rt, false);
			continue;
		}
		w->n_parks++;
		ws_publish(w);
		int r = ax__sched_poll(rt, true);
		if (atomic_exchange(&w->parked, 0))
			atomic_fetch_sub(&g->n_idle, 1);
		if (r < 0) {
			fprintf(stderr, "ax: engine %s failed: %s\n",
				g->drv->name, strerror(-r));
			abort();
		}
	}
	ws_publish(w);
}

/* A worker's life during one ax_rt_run: its core runtime (engine
 * instance) is created and destroyed on its own thread, as engines that
 * tie a ring or loop to its creator (io_uring's SINGLE_ISSUER) need. */
static void ws_worker_body(struct ws_worker *w)
{
	struct ax__ws *g = w->g;
	const struct ax__design *saved = ax__tls_design;
	w->create_r = ax__core_rt_create(&w->rt, g->drv->name, &g->opts);
	if (w->create_r == 0) {
		w->rt->ws = g;
		w->rt->ws_index = w->idx;
	}
	pthread_barrier_wait(&g->bar);
	bool ok = true;
	for (unsigned i = 0; i < g->n; i++)
		if (g->w[i].create_r < 0)
			ok = false;
	if (ok) {
		ax__tls_design = &ax__design_ws;
		ax__sched_worker(w->rt, ws_loop);
		ax__tls_design = saved;
	}
	/* everybody is out of the loop before anything is destroyed: a
	 * late wake may still name another worker's engine */
	pthread_barrier_wait(&g->bar);
	pthread_mutex_lock(&g->plock); /* a post's wake of us is over */
	pthread_mutex_unlock(&g->plock);
	if (w->create_r == 0) {
		w->rt->ws = NULL;
		w->rt->pool = NULL; /* the group's */ /* its lists are empty: destroy as core */
		ax__core_rt_destroy(w->rt);
		w->rt = NULL;
	}
}

static void *ws_thread(void *arg)
{
	struct ws_worker *w = arg;
	struct ax__ws *g = w->g;
	pthread_mutex_lock(&g->gate_lock);
	while (g->go == 0)
		pthread_cond_wait(&g->gate_cond, &g->gate_lock);
	int go = g->go;
	pthread_mutex_unlock(&g->gate_lock);
	if (go > 0)
		ws_worker_body(w);
	return NULL;
}

static void ws_open_gate(struct ax__ws *g, int go)
{
	pthread_mutex_lock(&g->gate_lock);
	g->go = go;
	pthread_cond_broadcast(&g->gate_cond);
	pthread_mutex_unlock(&g->gate_lock);
}

static int ws_run(ax_rt *rt_, ax_task_fn fn, void *arg, intptr_t *result)
{
	struct ax__ws *g = (struct ax__ws *)rt_;
	if (!rt_ || !fn)
		return -EINVAL;
	if (g->running || ax__tls_rt)
		return -EBUSY;
	pthread_mutex_lock(&g->plock);
	g->running = true;
	pthread_mutex_unlock(&g->plock);
	g->main_fn = fn;
	g->main_arg = arg;
	g->main = NULL;
	g->run_r = 0;
	atomic_store(&g->live, 1); /* the main task */
	g->go = 0;
	for (unsigned i = 0; i < g->n; i++) {
		struct ws_worker *w = &g->w[i];
		w->lifo = w->pin_head = w->pin_tail = w->defer = NULL;
		w->defer_hop = NULL;
		w->n_steals = w->n_parks = w->n_xwakes = w->n_hops = 0;
		for (size_t k = 0; k < sizeof w->pub / sizeof w->pub[0]; k++)
			atomic_store(&w->pub[k], 0);
		w->rng = 2654435761u * (i + 1);
	}
	unsigned started = 1;
	int r = 0;
	for (unsigned i = 1; i < g->n; i++) {
		r = -pthread_create(&g->w[i].thr, NULL, ws_thread, &g->w[i]);
		if (r < 0)
			break;
		started++;
	}
	if (r < 0) {
		/* no run without every worker: the started ones leave */
		ws_open_gate(g, -1);
		for (unsigned i = 1; i < started; i++)
			pthread_join(g->w[i].thr, NULL);
		pthread_mutex_lock(&g->plock);
		g->running = false;
		pthread_mutex_unlock(&g->plock);
		return r;
	}
	pthread_barrier_init(&g->bar, NULL, g->n);
	ws_open_gate(g, 1);
	ws_worker_body(&g->w[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(g->w[i].thr, NULL);
	pthread_barrier_destroy(&g->bar);
	if (g->pool) {
		ax__pool_destroy(g->pool);
		g->pool = NULL;
	}
	for (unsigned i = 0; i < g->n; i++) {
		struct ws_worker *w = &g->w[i];
		if (w->create_r < 0 && r == 0)
			r = w->create_r;
		g->past.loop_iterations += atomic_load(&w->pub[P_ITER]);
		g->past.events += atomic_load(&w->pub[P_EVENTS]);
		g->past.switches += atomic_load(&w->pub[P_SWITCH]);
		g->past.hogs += atomic_load(&w->pub[P_HOGS]);
		g->past.posts += atomic_load(&w->pub[P_POSTS]);
		g->past.steals += atomic_load(&w->pub[P_STEALS]);
		g->past.parks += atomic_load(&w->pub[P_PARKS]);
		g->past.wakes_remote += atomic_load(&w->pub[P_XWAKES]);
		g->past.hops += atomic_load(&w->pub[P_HOPS]);
	}
	pthread_mutex_lock(&g->plock);
	g->running = false;
	pthread_mutex_unlock(&g->plock);
	if (r == 0 && g->run_r < 0)
		r = g->run_r;
	if (r == 0 && g->main) {
		if (result)
			*result = g->main->result;
		struct ax_task *m = g->main;
		if (m->all_prev)
			m->all_prev->all_next = m->all_next;
		else
			g->all = m->all_next;
		if (m->all_next)
			m->all_next->all_prev = m->all_prev;
		free(m);
	}
	g->main = NULL;
	return r;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

/* engine_flags keys the design keeps for itself; the rest go to the
 * driver. */
struct ws_flags_ctx {
	struct ax__ws *g;
	char rest[128];
	size_t len;
	bool bad;
};

static int ws_flag(void *ctx_, const char *key, const char *val)
{
	struct ws_flags_ctx *c = ctx_;
	char *end;
	if (!strcmp(key, "workers")) {
		long v = strtol(val, &end, 10);
		if (*val == '\0' || *end || v < 1 || v > WS_MAX_WORKERS)
			return -EINVAL;
		c->g->n = (unsigned)v;
		return 0;
	}
	if (!strcmp(key, "lifo")) {
		if (strcmp(val, "0") && strcmp(val, "1"))
			return -EINVAL;
		c->g->lifo_on = val[0] == '1';
		return 0;
	}
	int n = snprintf(c->rest + c->len, sizeof c->rest - c->len, "%s%s=%s",
			 c->len ? "," : "", key, val);
	if (n < 0 || (size_t)n >= sizeof c->rest - c->len)
		return -EINVAL;
	c->len += (size_t)n;
	return 0;
}

static unsigned ws_default_workers(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n >= 1)
			return n > WS_MAX_WORKERS ? WS_MAX_WORKERS : (unsigned)n;
	}
	return 2;
}

static const struct ax_driver *ws_drv_of(const char *name)
{
	if (!name || strncmp(name, "ws-", 3))
		return NULL;
	for (size_t i = 0; i < ax__driver_compiled_n(); i++)
		if (!strcmp(ax__driver_at(i)->name, name + 3))
			return ax__driver_at(i);
	return NULL;
}

static int ws_destroy(ax_rt *rt_);

static int ws_create(ax_rt **out, const char *name, const struct ax_rt_opts *o)
{
	struct ax_rt_opts def;
	if (!o) {
		ax_rt_opts_init(&def);
		o = &def;
	}
	if (ax__opts_check(o) < 0)
		return -EINVAL;
	const struct ax_driver *drv = ws_drv_of(name);
	if (!drv)
		return -ENOENT;
	if (drv->probe && drv->probe(NULL, 0) < 0)
		return -ENOTSUP;
	struct ax__ws *g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	g->head.design = &ax__design_ws;
	g->drv = drv;
	g->n = ws_default_workers();
	g->lifo_on = true;
	snprintf(g->name, sizeof g->name, "%s", name);
	struct ws_flags_ctx fc = {.g = g};
	/* AX_WS_FLAGS first (the harness's servers take no engine_flags),
	 * then the runtime's own engine_flags */
	int r = ax__flags_each(getenv("AX_WS_FLAGS"), ws_flag, &fc);
	if (r == 0)
		r = ax__flags_each(o->engine_flags, ws_flag, &fc);
	if (r < 0) {
		free(g);
		return -EINVAL;
	}
	g->opts = *o;
	snprintf(g->engine_flags, sizeof g->engine_flags, "%s", fc.rest);
	g->opts.engine_flags = fc.len ? g->engine_flags : NULL;
	/* the driver judges the rest of the flags now, not at the run */
	ax_rt *probe;
	r = ax__core_rt_create(&probe, drv->name, &g->opts);
	if (r < 0) {
		free(g);
		return r;
	}
	snprintf(g->info, sizeof g->info, "%u workers (lifo %s) x %s",
		 g->n, g->lifo_on ? "on" : "off",
		 ax__core_rt_engine_info(probe));
	ax__core_rt_destroy(probe);
	g->w = calloc(g->n, sizeof *g->w);
	if (!g->w) {
		free(g);
		return -ENOMEM;
	}
	pthread_mutex_init(&g->tlock, NULL);
	pthread_mutex_init(&g->slock, NULL);
	pthread_mutex_init(&g->plock, NULL);
	pthread_mutex_init(&g->gate_lock, NULL);
	pthread_cond_init(&g->gate_cond, NULL);
	ax__gq_init(&g->global);
	ax__stack_pool_init(&g->stacks, o->stack_size);
	for (unsigned i = 0; i < g->n; i++) {
		g->w[i].g = g;
		g->w[i].idx = i;
		if (ax__wsq_init(&g->w[i].q, WS_RING) < 0) {
			g->n = i;
			ws_destroy((ax_rt *)g);
			return -ENOMEM;
		}
	}
	*out = (ax_rt *)g;
	return 0;
}

static int ws_destroy(ax_rt *rt_)
{
	struct ax__ws *g = (struct ax__ws *)rt_;
	if (!rt_)
		return -EINVAL;
	if (g->running)
		return -EBUSY;
	for (struct ax_task *t = g->all; t; t = t->all_next)
		if (!t->ws_done)
			return -EBUSY;
	while (g->all) {
		struct ax_task *t = g->all;
		g->all = t->all_next;
		if (t->stack)
			ax__stack_put(&g->stacks, t->stack);
		ax__tsan_fiber_free(t->tsan_fiber);
		free(t);
	}
	while (g->p_head) {
		struct ax__msg *m = g->p_head;
		g->p_head = m->next;
		free(m);
	}
	for (unsigned i = 0; i < g->n; i++)
		ax__wsq_fini(&g->w[i].q);
	for (size_t i = 0; i < WS_FD_CHUNKS; i++)
		free(atomic_load(&g->own[i]));
	ax__gq_fini(&g->global);
	ax__stack_pool_fini(&g->stacks);
	pthread_mutex_destroy(&g->tlock);
	pthread_mutex_destroy(&g->slock);
	pthread_mutex_destroy(&g->plock);
	pthread_mutex_destroy(&g->gate_lock);
	pthread_cond_destroy(&g->gate_cond);
	free(g->w);
	free(g);
	return 0;
}

/* ------------------------------------------------------------------ */
/* queries                                                             */
/* ------------------------------------------------------------------ */

static ax_rt *ws_rt_current(void)
{
	struct ax_rt *rt = ax__tls_rt;
	return rt && rt->ws ? (ax_rt *)rt->ws : NULL;
}

static const char *ws_rt_driver(const ax_rt *rt_)
{
	return ((const struct ax__ws *)rt_)->name;
}

#define WS__FEATURES (AX_FEAT_CHEAP_TASKS | AX_FEAT_STACK_CHECK | AX_FEAT_MULTI_WORKER)

static uint32_t ws_rt_features(const ax_rt *rt_)
{
	return ((const struct ax__ws *)rt_)->drv->features | WS__FEATURES;
}

static const char *ws_engine_info(const ax_rt *rt_)
{
	return ((const struct ax__ws *)rt_)->info;
}

static void ws_stats(const ax_rt *rt_, struct ax_rt_stats *st)
{
	struct ax__ws *g = (struct ax__ws *)rt_;
	*st = g->past;
	struct ax_rt *me = ax__tls_rt;
	if (g->running) {
		if (me && me->ws == g)
			ws_publish(ws_me(me));
		for (unsigned i = 0; i < g->n; i++) {
			struct ws_worker *w = &g->w[i];
			st->loop_iterations += atomic_load(&w->pub[P_ITER]);
			st->events += atomic_load(&w->pub[P_EVENTS]);
			st->switches += atomic_load(&w->pub[P_SWITCH]);
			st->hogs += atomic_load(&w->pub[P_HOGS]);
			st->posts += atomic_load(&w->pub[P_POSTS]);
			st->steals += atomic_load(&w->pub[P_STEALS]);
			st->parks += atomic_load(&w->pub[P_PARKS]);
			st->wakes_remote += atomic_load(&w->pub[P_XWAKES]);
			st->hops += atomic_load(&w->pub[P_HOPS]);
		}
	}
	st->tasks_spawned = atomic_load(&g->spawned);
	st->tasks_live = (uint64_t)atomic_load(&g->live);
	pthread_mutex_lock(&g->slock);
	st->stacks_guarded = g->stacks.guarded_live;
	st->stacks_slab = g->stacks.slab_live;
	pthread_mutex_unlock(&g->slock);
	st->workers = g->n;
}

static int ws_dump(ax_rt *rt_, FILE *f)
{
	struct ax__ws *g = (struct ax__ws *)rt_;
	if (!rt_ || !f)
		return -EINVAL;
	/* the core's dump walks one worker's list; ours are the group's: show
	 * them through a worker runtime whose list is lent for the call */
	struct ax_rt *me = ax__tls_rt;
	if (!me || me->ws != g)
		return -EPERM;
	pthread_mutex_lock(&g->tlock);
	struct ax_task *saved = me->all;
	uint64_t live = me->n_live;
	me->all = g->all;
	me->n_live = (uint64_t)atomic_load(&g->live);
	int r = ax__core_dump(me, f);
	me->all = saved;
	me->n_live = live;
	pthread_mutex_unlock(&g->tlock);
	return r;
}

/* [AX-TASK-17] over the group's tasks: the list is the group's (tlock)
 * and so are the stacks (slock), whichever worker a task runs on. A task
 * in the list keeps its stack until the context after its end returns it,
 * which clears t->stack under slock; holding both locks, every non-NULL
 * stack seen is live and stays mapped while mincore looks at it (tasks
 * on other workers keep running: mincore only reads page tables). Lock
 * order tlock, then slock; nothing takes them the other way round. */
static int ws_stack_usage(ax_rt *rt_, struct ax_stack_usage *u)
{
	struct ax__ws *g = (struct ax__ws *)rt_;
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *vec = malloc(g->stacks.size / (size_t)pg + 1);
	if (!vec)
		return -ENOMEM;
	memset(u, 0, sizeof *u);
	u->stack_size = g->stacks.size;
	int r = 0;
	pthread_mutex_lock(&g->tlock);
	pthread_mutex_lock(&g->slock);
	for (struct ax_task *t = g->all; t; t = t->all_next) {
		if (t->ws_done || !t->stack)
			continue;
		int64_t n = ax__stack_resident(t->stack, vec);
		if (n < 0) {
			r = (int)n;
			break;
		}
		u->stacks++;
		u->resident_total += (uint64_t)n;
		if ((uint64_t)n > u->resident_max)
			u->resident_max = (uint64_t)n;
	}
	pthread_mutex_unlock(&g->slock);
	pthread_mutex_unlock(&g->tlock);
	free(vec);
	return r;
}

static int ws_set_name(ax_task *t, const char *name)
{
	return ax__core_task_set_name(t, name);
}

/* ------------------------------------------------------------------ */
/* discovery                                                           */
/* ------------------------------------------------------------------ */

static size_t ws_count(void)
{
	return ax__driver_compiled_n();
}

static const char *const ws_names[] = {
	"ws-epoll", "ws-libuv", "ws-libevent", "ws-io_uring",
};

static const char *ws_rt_name(size_t i)
{
	const char *d = ax__driver_at(i)->name;
	for (size_t k = 0; k < sizeof ws_names / sizeof ws_names[0]; k++)
		if (!strcmp(ws_names[k] + 3, d))
			return ws_names[k];
	return "ws-?";
}

static const char *ws_summary(size_t i)
{
	(void)i;
	return "work-stealing: N workers (engine_flags workers=N, lifo=0|1), "
	       "one engine instance each";
}

static uint32_t ws_features(size_t i)
{
	return ax__driver_at(i)->features | WS__FEATURES;
}

static bool ws_available(size_t i, char *why, size_t n)
{
	const struct ax_driver *d = ax__driver_at(i);
	char buf[256] = "";
	if (d->probe && d->probe(buf, sizeof buf) < 0) {
		if (why && n)
			snprintf(why, n, "%s", buf[0] ? buf : "unavailable");
		return false;
	}
	return true;
}

static void ws_segv_report(const void *addr)
{
	ax__design_core.segv_report(addr);
}

const struct ax__design ax__design_ws = {
	.name = "ws",
	.count = ws_count,
	.rt_name = ws_rt_name,
	.summary = ws_summary,
	.features = ws_features,
	.available = ws_available,
	.create = ws_create,
	.run = ws_run,
	.destroy = ws_destroy,
	.rt_driver = ws_rt_driver,
	.rt_features = ws_rt_features,
	.engine_info = ws_engine_info,
	.stats = ws_stats,
	.stack_usage = ws_stack_usage,
	.dump = ws_dump,
	.post = ws_post,
	.rt_current = ws_rt_current,
	.spawn = ws_spawn,
	.join = ws_join,
	.detach = ws_detach,
	.cancel = ws_cancel,
	.yield = ws_yield,
	.current = ax__core_current,
	.set_name = ws_set_name,
	.task_name = ax__core_task_name,
	.sleep_until = ws_sleep_until,
	.deadline_enter = ax__core_deadline_enter,
	.deadline_leave = ax__core_deadline_leave,
	.deadline_expired = ws_deadline_expired,
	.accept = ws_accept,
	.connect = ws_connect,
	.read = ws_read,
	.write = ws_write,
	.close = ws_close,
	.pread = ws_pread,
	.pwrite = ws_pwrite,
	.blocking = ws_blocking,
	.chan_enter = ws_chan_enter,
	.chan_wait = ax__core_chan_wait,
	.chan_wake = ws_chan_wake,
	.segv_report = ws_segv_report,
};
