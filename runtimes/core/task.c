/*
 * task.c - tasks and time: spawn, join, detach, cancel, yield, names, the
 * task dump, sleeps, deadline scopes, and the wait/interrupt protocol every
 * suspending call follows.
 *
 * The protocol: a suspending call first runs ax__enter (a pending cancel or
 * an expired deadline returns at once), starts its wait, arms the task's
 * timer for the effective deadline, and parks. ax_cancel and the deadline
 * timer both go through ax__interrupt, which asks whatever the task waits on
 * to let go (driver cancel, timer disarm, channel unlink, ...). The task is
 * only resumed once that wait has really ended, so when the call returns
 * nothing refers to its buffers any more.
 */
#include "core.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "san.h"

void ax__ready_front(struct ax_task *t);
void ax__switch_to_new(struct ax_task *child);
void ax__task_main(void *arg);
void ax__yield_now(struct ax_task *t);
void ax__task_exit(struct ax_task *t);
int ax__spawn_main(struct ax_rt *rt, ax_task_fn fn, void *arg,
		   struct ax_task **out);

/* ------------------------------------------------------------------ */
/* creation and exit                                                   */
/* ------------------------------------------------------------------ */

#define TASK_CACHE_MAX 1024

struct ax_task *ax__task_alloc(struct ax_rt *rt)
{
	struct ax_task *t = rt->task_cache;
	if (!t)
		return calloc(1, sizeof *t);
	rt->task_cache = t->all_next;
	rt->task_cache_n--;
	/* Zero all but the embedded op (a third of the record, most of it the
	 * connect address): every I/O call sets the fields it uses and the
	 * core zeroes the driver's words before each op (io.c), so a reused
	 * record's op is no staler than the op a task left from its last call. */
	const size_t op_lo = offsetof(struct ax_task, op);
	const size_t op_hi = op_lo + sizeof t->op;
	memset(t, 0, op_lo);
	memset((char *)t + op_hi, 0, sizeof *t - op_hi);
	return t;
}

void ax__task_free(struct ax_rt *rt, struct ax_task *t)
{
	if (rt->task_cache_n >= TASK_CACHE_MAX) {
		free(t);
		return;
	}
	t->all_next = rt->task_cache;
	rt->task_cache = t;
	rt->task_cache_n++;
}

void ax__task_cache_fini(struct ax_rt *rt)
{
	while (rt->task_cache) {
		struct ax_task *t = rt->task_cache;
		rt->task_cache = t->all_next;
		free(t);
	}
	rt->task_cache_n = 0;
}

static int task_new(struct ax_rt *rt, ax_task_fn fn, void *arg,
		    const char *name, const char *file, int line,
		    struct ax_task **out)
{
	struct ax_task *t = ax__task_alloc(rt);
	if (!t)
		return -ENOMEM;
	t->stack = rt->ws ? ax__ws_stack_get(rt) : ax__stack_get(&rt->stacks);
	if (!t->stack) {
		ax__task_free(rt, t);
		return -ENOMEM;
	}
	t->rt = rt;
	t->fn = fn;
	t->arg = arg;
	t->id = rt->next_id++;
	if (name)
		snprintf(t->name, sizeof t->name, "%s", name);
	t->spawn_file = file;
	t->spawn_line = line;
	t->timer.drv_index = (size_t)-1;
	ax__ctx_init(&t->ctx, t->stack->lo + t->stack->size, ax__task_main, t);
	t->tsan_fiber = ax__tsan_fiber_new();
	if (rt->ws) {
		ax__ws_link(t);
	} else {
		t->all_next = rt->all;
		if (rt->all)
			rt->all->all_prev = t;
		rt->all = t;
	}
	rt->n_spawned++;
	rt->n_live++;
	/* the scheduler's coarse time: switching in sets it again, so it only
	 * shows in a dump taken before the task first ran */
	t->last_run = rt->tick_time;
	*out = t;
	return 0;
}

int ax__spawn_main(struct ax_rt *rt, ax_task_fn fn, void *arg,
		   struct ax_task **out)
{
	int r = task_new(rt, fn, arg, "main", "ax_rt_run", 0, out);
	if (r == 0) {
		(*out)->last_run = ax__coarse_now();
		ax__ready(*out);
	}
	return r;
}

int ax__core_spawn_at(ax_task **out, ax_task_fn fn, void *arg, const char *name,
		const char *file, int line)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ax_task *t;
	if (!rt)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	int r = task_new(rt, fn, arg, name, file, line, &t);
	if (r < 0)
		return r;
	if (out)
		*out = t;
	else
		t->detached = true;
	if (rt->current)
		ax__switch_to_new(t);
	else
		ax__ready(t);
	return 0;
}

static void task_unlink(struct ax_rt *rt, struct ax_task *t)
{
	if (rt->ws) {
		ax__ws_unlink(t);
		return;
	}
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		rt->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
}

/* Called on the task's own stack when its function returned. */
void ax__task_exit(struct ax_task *t)
{
	struct ax_rt *rt = t->rt;
	t->state = AX_T_DONE;
	rt->n_live--;
	/* the work-stealing design wakes the joiner once the stack is
	 * released (ax__ws_after_switch) */
	/* rt->ws first: on a work-stealing runtime t->joiner is written by
	 * other workers under the group lock, so reading it here unlocked was
	 * a data race (ThreadSanitizer, mt.cancel_across, mt.migrate_1m) even
	 * though its value was then ignored */
	if (!rt->ws && t->joiner) {
		/* The join is complete from here: its deadline must not fire
		 * and mark it interrupted, and t->joiner stays set, so no other
		 * task can join or detach (free) t before the joiner resumes
		 * and frees it. */
		ax__timer_disarm(t->joiner);
		ax__ready(t->joiner);
	}
	/* the stack is released by whoever runs next (sched_after_switch) */
	rt->dead = t;
}

/* ------------------------------------------------------------------ */
/* the wait protocol                                                   */
/* ------------------------------------------------------------------ */

int ax__interrupt_errno(struct ax_task *t, int bits)
{
	if (bits & AX_INT_CANCEL) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	if (bits & AX_INT_TIMEOUT)
		return -ETIMEDOUT;
	return 0;
}

static void task_timer_fire(struct ax_timer *tm)
{
	struct ax_task *t = tm->owner;
	t->timer_armed = false;
	if (t->wait == AX_W_SLEEP) {
		ax__ready(t);
		return;
	}
	ax__interrupt(t, AX_INT_TIMEOUT);
}

int ax__timer_arm(struct ax_task *t, int64_t at)
{
	struct ax_rt *rt = t->rt;
	t->timer.deadline = at;
	t->timer.seq = ++rt->timer_seq;
	t->timer.fire = task_timer_fire;
	t->timer.owner = t;
	int r = rt->drv->timer_arm(rt->drv_state, &t->timer);
	if (r == 0)
		t->timer_armed = true;
	return r;
}

void ax__timer_disarm_slow(struct ax_task *t)
{
	t->rt->drv->timer_cancel(t->rt->drv_state, &t->timer);
	t->timer_armed = false;
}

void ax__interrupt(struct ax_task *t, int reason)
{
	t->interrupt |= reason;
	if (t->state != AX_T_BLOCKED)
		return;
	switch (t->wait) {
	case AX_W_OP:
		if (!t->op_cancel_sent) {
			t->op_cancel_sent = true;
			t->rt->drv->cancel(t->rt->drv_state, &t->op);
		}
		break;
	case AX_W_SLEEP:
		ax__timer_disarm(t);
		ax__ready(t);
		break;
	case AX_W_CHAN_SEND:
	case AX_W_CHAN_RECV:
		/* when the release came first, its wake is on its way */
		if (t->cw && ax__chan_unwait(t->cw))
			ax__ready(t);
		break;
	case AX_W_JOIN: {
		if (t->rt->ws) {
			ax__ws_join_interrupt(t);
			break;
		}
		struct ax_task *target = (struct ax_task *)t->wait_obj;
		if (target && target->joiner == t)
			target->joiner = NULL;
		ax__ready(t);
		break;
	}
	case AX_W_POOL:
		ax__pool_unwait(t);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------ */
/* tasks                                                               */
/* ------------------------------------------------------------------ */

int ax__core_join(ax_task *t, intptr_t *result)
{
	struct ax_task *self;
	int r = ax__enter(&self);
	if (r == -EPERM)
		return r;
	if (!t || t == self || t->detached || (t->joiner && t->joiner != self))
		return -EINVAL;
	if (r < 0)
		return r;
	if (t->state != AX_T_DONE) {
		int64_t dl = ax__deadline_of(self);
		t->joiner = self;
		if (dl != INT64_MAX && (r = ax__timer_arm(self, dl)) < 0) {
			t->joiner = NULL;
			return r;
		}
		int bits = ax__park(AX_W_JOIN, t);
		ax__timer_disarm(self);
		/* Interrupted: ax__interrupt let go of t when it readied this
		 * task. t may have ended since, and even been joined and freed
		 * by another task, so it is not looked at: it is not ours. Not
		 * interrupted: t's exit readied this task and kept t for it. */
		if (bits)
			return ax__interrupt_errno(self, bits);
	}
	if (result)
		*result = t->result;
	task_unlink(self->rt, t);
	ax__task_free(self->rt, t);
	return 0;
}

int ax__core_detach(ax_task *t)
{
	if (!t || t->detached || t->joiner)
		return -EINVAL;
	struct ax_rt *rt = t->rt;
	if (t->state == AX_T_DONE && rt->dead != t) {
		task_unlink(rt, t);
		ax__task_free(rt, t);
		return 0;
	}
	t->detached = true;
	return 0;
}

int ax__core_cancel(ax_task *t)
{
	if (!t)
		return -EINVAL;
	if (t->state == AX_T_DONE)
		return 0;
	t->cancel_pending = true;
	if (t->state == AX_T_BLOCKED)
		ax__interrupt(t, AX_INT_CANCEL);
	return 0;
}

ax_task *ax__core_current(void)
{
	return ax__tls_rt ? ax__tls_rt->current : NULL;
}

int ax__core_task_set_name(ax_task *t, const char *name)
{
	if (!t || !name)
		return -EINVAL;
	snprintf(t->name, sizeof t->name, "%s", name);
	return 0;
}

const char *ax__core_task_name(const ax_task *t)
{
	return t ? t->name : "";
}

static const char *task_state_name(enum ax__tstate s)
{
	switch (s) {
	case AX_T_READY: return "ready";
	case AX_T_RUNNING: return "running";
	case AX_T_BLOCKED: return "blocked";
	default: return "done";
	}
}

static const char *task_op_name(enum ax_op_kind k)
{
	static const char *const names[] = {
		"accept", "connect", "read", "write", "pread", "pwrite", "call",
	};
	return (unsigned)k < AX_OP__COUNT ? names[k] : "?";
}

static void task_describe_wait(const struct ax_task *t, char *buf, size_t n)
{
	switch (t->wait) {
	case AX_W_OP:
		if (t->op.kind == AX_OP_CALL)
			snprintf(buf, n, "blocking pool (engine)");
		else if (t->op.kind == AX_OP_CONNECT)
			snprintf(buf, n, "connect");
		else
			snprintf(buf, n, "fd %d %s", t->op.fd,
				 task_op_name(t->op.kind));
		break;
	case AX_W_SLEEP:
		snprintf(buf, n, "timer in %.3f ms",
			 (t->timer.deadline - ax_now()) / 1e6);
		break;
	case AX_W_CHAN_SEND:
		snprintf(buf, n, "channel %p send", t->wait_obj);
		break;
	case AX_W_CHAN_RECV:
		snprintf(buf, n, "channel %p recv", t->wait_obj);
		break;
	case AX_W_JOIN:
		snprintf(buf, n, "join task %llu",
			 t->wait_obj ? (unsigned long long)
				((const struct ax_task *)t->wait_obj)->id : 0ull);
		break;
	case AX_W_POOL:
		snprintf(buf, n, "blocking pool");
		break;
	case AX_W_YIELD:
		snprintf(buf, n, "yield");
		break;
	default:
		snprintf(buf, n, "-");
		break;
	}
}

int ax__core_dump(ax_rt *rt, FILE *f)
{
	int count = 0;
	int64_t now = ax__coarse_now();
	if (!rt || !f)
		return -EINVAL;
	if (fprintf(f, "ax task dump: runtime %s, %llu live task(s)\n",
		    rt->drv->name, (unsigned long long)rt->n_live) < 0)
		return -EIO;
	for (struct ax_task *t = rt->all; t; t = t->all_next) {
		char wait[96];
		if (t->state == AX_T_DONE)
			continue;
		task_describe_wait(t, wait, sizeof wait);
		if (fprintf(f,
			    "  task %llu '%s' %s waiting on: %s; spawned at %s:%d; "
			    "last ran %.3f ms ago\n",
			    (unsigned long long)t->id, t->name,
			    task_state_name(t->state), wait,
			    t->spawn_file ? t->spawn_file : "?", t->spawn_line,
			    t->state == AX_T_RUNNING || now < t->last_run
				    ? 0.0 : (now - t->last_run) / 1e6) < 0)
			return -EIO;
		count++;
	}
	return fflush(f) == 0 ? count : -EIO;
}

/* Free every ended, never-joined task (ax_rt_destroy). Returns false when a
 * live task remains. */
bool ax__tasks_reap_all(struct ax_rt *rt);
bool ax__tasks_reap_all(struct ax_rt *rt)
{
	for (struct ax_task *t = rt->all; t; t = t->all_next)
		if (t->state != AX_T_DONE)
			return false;
	while (rt->all) {
		struct ax_task *t = rt->all;
		rt->all = t->all_next;
		if (t->stack)
			ax__stack_put(&rt->stacks, t->stack);
		ax__tsan_fiber_free(t->tsan_fiber);
		free(t);
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

int ax__core_sleep_until(int64_t at)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	int64_t dl = ax__deadline_of(t);
	int64_t wake = at < dl ? at : dl;
	if (at <= ax_now()) {
		ax__yield_now(t);
		if (t->cancel_pending) {
			t->cancel_pending = false;
			return -ECANCELED;
		}
		return 0;
	}
	r = ax__timer_arm(t, wake);
	if (r < 0)
		return r;
	int bits = ax__park(AX_W_SLEEP, NULL);
	ax__timer_disarm(t);
	if (bits)
		return ax__interrupt_errno(t, bits);
	if (wake < at)
		return -ETIMEDOUT;
	return 0;
}

int ax__core_deadline_enter(struct ax_deadline *d, int64_t at)
{
	struct ax_task *t = ax__core_current();
	if (!t)
		return -EPERM;
	d->at = at;
	d->outer = t->dl;
	d->effective = (t->dl && t->dl->effective < at) ? t->dl->effective : at;
	t->dl = d;
	return 0;
}

int ax__core_deadline_leave(struct ax_deadline *d)
{
	struct ax_task *t = ax__core_current();
	if (!t || t->dl != d)
		return -EINVAL;
	t->dl = d->outer;
	return 0;
}

bool ax__core_deadline_expired(void)
{
	struct ax_task *t = ax__core_current();
	return t && t->dl && ax_now() >= t->dl->effective;
}

/* ------------------------------------------------------------------ */
/* channel waits of core tasks (design.h)                              */
/* ------------------------------------------------------------------ */

int ax__core_chan_enter(void **task)
{
	struct ax_rt *rt = ax__tls_rt;
	struct ax_task *t = NULL;
	int r = 0;
	if (rt && rt->current)
		r = ax__enter(&t);
	*task = t;
	return r;
}

int ax__core_chan_wait(struct ax__waiter *w, void *task, const void *chan,
		       bool sender)
{
	struct ax_task *t = task;
	t->cw = w;
	int64_t dl = ax__deadline_of(t);
	if (dl != INT64_MAX)
		ax__timer_arm(t, dl);
	int bits = ax__park(sender ? AX_W_CHAN_SEND : AX_W_CHAN_RECV, chan);
	ax__timer_disarm(t);
	t->cw = NULL;
	/* a completed transfer wins over a cancel: [AX-CANCEL-3] */
	int o = ax__chan_outcome(w);
	return o != -EAGAIN ? o : ax__interrupt_errno(t, bits);
}

void ax__core_chan_wake(void *task)
{
	ax__wake_any(task);
}
