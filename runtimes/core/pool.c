/*
 * pool.c - the core's blocking pool: worker threads that run ax_blocking
 * calls for drivers without a pool of their own, and hand each result back
 * to the waiting task through its runtime's inbox.
 */
#include "core.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>

int ax__engine_call(struct ax_task *t, intptr_t (*fn)(void *), void *arg,
		    intptr_t *result);

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_DROPPED };

struct ax__job {
	intptr_t (*fn)(void *);
	void *arg;
	intptr_t result;
	struct ax_task *task;
	int state;
	struct ax__job *next;
	struct ax__msg done;
};

struct ax__pool {
	struct ax_rt *rt;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ax__job *head, *tail;
	bool stop;
	unsigned n;
	pthread_t threads[];
};

static void *pool_worker(void *arg)
{
	struct ax__pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->head)
			break;
		struct ax__job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&p->lock);
		intptr_t r = j->fn(j->arg);
		pthread_mutex_lock(&p->lock);
		j->result = r;
		j->state = JOB_DONE;
		/* the task stays parked until this message runs on its loop */
		ax__inbox_push(j->task->rt, &j->done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static struct ax__pool *pool_create(struct ax_rt *rt)
{
	unsigned n = rt->opts.pool_threads;
	struct ax__pool *p = calloc(1, sizeof *p + n * sizeof(pthread_t));
	sigset_t all, old;
	if (!p)
		return NULL;
	p->rt = rt;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* workers take no signals: they belong to the threads that asked */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (p->n = 0; p->n < n; p->n++)
		if (pthread_create(&p->threads[p->n], NULL, pool_worker, p) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->n == 0) {
		ax__pool_destroy(p);
		return NULL;
	}
	return p;
}

void ax__pool_destroy(struct ax__pool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void pool_job_done(void *arg)
{
	struct ax__job *j = arg;
	ax__ready(j->task);
}

struct ax__pool *ax__pool_create(struct ax_rt *rt)
{
	return pool_create(rt);
}

void ax__pool_unwait(struct ax_task *t)
{
	struct ax__pool *p = t->rt->pool;
	struct ax__job *j = t->job;
	bool dropped = false;
	pthread_mutex_lock(&p->lock);
	if (j->state == JOB_QUEUED) {
		struct ax__job **pp = &p->head, *prev = NULL;
		while (*pp && *pp != j) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp) {
			*pp = j->next;
			if (p->tail == j)
				p->tail = prev;
			j->state = JOB_DROPPED;
			dropped = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	/* a running call is waited for: its done message wakes the task */
	if (dropped)
		ax__ready(t);
}

int ax__core_blocking(intptr_t (*fn)(void *arg), void *arg, intptr_t *result)
{
	struct ax_task *t;
	int r = ax__enter(&t);
	if (r < 0)
		return r;
	if (!fn)
		return -EINVAL;
	return ax__pool_call(t, fn, arg, result);
}

int ax__pool_call(struct ax_task *t, intptr_t (*fn)(void *), void *arg,
		  intptr_t *result)
{
	if (t->rt->drv->features & AX_FEAT_NATIVE_POOL)
		return ax__engine_call(t, fn, arg, result);
	if (!t->rt->pool &&
	    !(t->rt->pool = t->rt->ws ? ax__ws_pool(t->rt) : pool_create(t->rt)))
		return -ENOMEM;

	struct ax__pool *p = t->rt->pool;
	struct ax__job j = {
		.fn = fn, .arg = arg, .task = t, .state = JOB_QUEUED,
		.done = {.fn = pool_job_done, .heap = false},
	};
	j.done.arg = &j;
	t->job = &j;
	int64_t dl = ax__deadline_of(t);
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = &j;
	else
		p->head = &j;
	p->tail = &j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (dl != INT64_MAX)
		ax__timer_arm(t, dl);
	int bits = ax__park(AX_W_POOL, NULL);
	ax__timer_disarm(t);
	t->job = NULL;
	if (bits)
		return ax__interrupt_errno(t, bits);
	if (result)
		*result = j.result;
	return 0;
}
