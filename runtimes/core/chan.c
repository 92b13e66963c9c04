/*
 * chan.c - bounded channels: a ring buffer with FIFO queues of waiting
 * senders and receivers under one mutex, usable from tasks of any runtime
 * and from plain threads.
 *
 * A receiver that waits on an empty channel is handed the next element
 * directly; a sender that waits on a full one has its element moved into
 * the ring by the receiver that makes room. Either way the element order is
 * the send order ([AX-CHAN-1]), and a waiter is woken only once its transfer
 * is complete, so an interrupted waiter either got its element or none.
 *
 * Channels belong to no runtime: a waiting task is parked and woken by its
 * own design (design.h: chan_enter, chan_wait, chan_wake), so tasks of the
 * core and of the thread-per-task design can share a channel.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "design.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { W_WAITING, W_DONE, W_CLOSED, W_GONE };

struct ax__waiter {
	struct ax__waiter *next, *prev;
	void *task;             /* NULL: a plain thread waiting on cond */
	const struct ax__design *design; /* the task's, which wakes it */
	pthread_cond_t cond;
	void *elem;             /* send: source; recv: destination */
	int state;
	struct ax_chan *chan;
	bool sender;
};

struct ax_wlist {
	struct ax__waiter *head, *tail;
};

struct ax_chan {
	pthread_mutex_t lock;
	size_t esz, cap, head, len;
	bool closed;
	/* waits begun and not yet returned from chan_wait: a waiter released
	 * by a send or a close still reads its outcome under the lock, on a
	 * worker or thread of its own, after the release (ax_chan_destroy
	 * must not free the channel under it) */
	atomic_long waits;
	struct ax_wlist senders, receivers;
	unsigned char *buf;
};

static void wl_push(struct ax_wlist *l, struct ax__waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
}

static void wl_del(struct ax_wlist *l, struct ax__waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
}

static struct ax__waiter *wl_pop(struct ax_wlist *l)
{
	struct ax__waiter *w = l->head;
	if (w)
		wl_del(l, w);
	return w;
}

/* Finish w's wait with state st. Called with the channel locked. */
static void chan_release(struct ax__waiter *w, int st)
{
	w->state = st;
	if (w->task)
		w->design->chan_wake(w->task);
	else
		pthread_cond_signal(&w->cond);
}

int ax_chan_create(ax_chan **out, size_t elem_size, size_t capacity)
{
	if (!out || elem_size == 0 || capacity == 0 ||
	    capacity > SIZE_MAX / elem_size)
		return -EINVAL;
	struct ax_chan *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->buf = malloc(elem_size * capacity);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	c->esz = elem_size;
	c->cap = capacity;
	atomic_init(&c->waits, 0);
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

int ax_chan_destroy(ax_chan *c)
{
	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	bool busy = c->senders.head || c->receivers.head ||
		    atomic_load_explicit(&c->waits, memory_order_acquire) > 0;
	pthread_mutex_unlock(&c->lock);
	if (busy)
		return -EBUSY;
	pthread_mutex_destroy(&c->lock);
	free(c->buf);
	free(c);
	return 0;
}

/* Try to send without waiting. Called locked. */
static int chan_send_locked(struct ax_chan *c, const void *elem)
{
	if (c->closed)
		return -EPIPE;
	struct ax__waiter *r = wl_pop(&c->receivers);
	if (r) {
		memcpy(r->elem, elem, c->esz);
		chan_release(r, W_DONE);
		return 0;
	}
	if (c->len == c->cap)
		return -EAGAIN;
	memcpy(c->buf + ((c->head + c->len) % c->cap) * c->esz, elem, c->esz);
	c->len++;
	return 0;
}

/* Try to receive without waiting. Called locked. */
static int chan_recv_locked(struct ax_chan *c, void *elem)
{
	if (c->len == 0)
		return c->closed ? -EPIPE : -EAGAIN;
	memcpy(elem, c->buf + c->head * c->esz, c->esz);
	c->head = (c->head + 1) % c->cap;
	c->len--;
	struct ax__waiter *s = wl_pop(&c->senders);
	if (s) {
		memcpy(c->buf + ((c->head + c->len) % c->cap) * c->esz, s->elem,
		       c->esz);
		c->len++;
		chan_release(s, W_DONE);
	}
	return 0;
}

/* Wait (locked on entry, unlocked on return) until w is released: a plain
 * thread on its condition variable, a task through its design. */
static int chan_wait(struct ax_chan *c, struct ax__waiter *w)
{
	struct ax_wlist *l = w->sender ? &c->senders : &c->receivers;
	w->chan = c;
	w->state = W_WAITING;
	atomic_fetch_add_explicit(&c->waits, 1, memory_order_relaxed);
	if (!w->task) {
		pthread_cond_init(&w->cond, NULL);
		wl_push(l, w);
		while (w->state == W_WAITING)
			pthread_cond_wait(&w->cond, &c->lock);
		int r = w->state == W_DONE ? 0 : -EPIPE;
		atomic_fetch_sub_explicit(&c->waits, 1, memory_order_relaxed);
		pthread_mutex_unlock(&c->lock);
		pthread_cond_destroy(&w->cond);
		return r;
	}
	wl_push(l, w);
	pthread_mutex_unlock(&c->lock);
	int r = w->design->chan_wait(w, w->task, c, w->sender);
	/* the last access to c: a destroy that sees 0 frees it */
	atomic_fetch_sub_explicit(&c->waits, 1, memory_order_release);
	return r;
}

bool ax__chan_unwait(struct ax__waiter *w)
{
	struct ax_chan *c = w->chan;
	bool gone = false;
	pthread_mutex_lock(&c->lock);
	if (w->state == W_WAITING) {
		wl_del(w->sender ? &c->senders : &c->receivers, w);
		w->state = W_GONE;
		gone = true;
	}
	pthread_mutex_unlock(&c->lock);
	return gone;
}

int ax__chan_outcome(struct ax__waiter *w)
{
	struct ax_chan *c = w->chan;
	pthread_mutex_lock(&c->lock);
	int st = w->state;
	pthread_mutex_unlock(&c->lock);
	return st == W_DONE ? 0 : st == W_CLOSED ? -EPIPE : -EAGAIN;
}

int ax_chan_send(ax_chan *c, const void *elem)
{
	void *task;
	if (!c || !elem)
		return -EINVAL;
	const struct ax__design *d = ax__tls_design;
	int r = d->chan_enter(&task);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	r = chan_send_locked(c, elem);
	if (r != -EAGAIN) {
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	struct ax__waiter w = {.elem = (void *)elem, .sender = true,
			       .task = task, .design = d};
	return chan_wait(c, &w);
}

int ax_chan_recv(ax_chan *c, void *elem)
{
	void *task;
	if (!c || !elem)
		return -EINVAL;
	const struct ax__design *d = ax__tls_design;
	int r = d->chan_enter(&task);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	r = chan_recv_locked(c, elem);
	if (r != -EAGAIN) {
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	struct ax__waiter w = {.elem = elem, .sender = false,
			       .task = task, .design = d};
	return chan_wait(c, &w);
}

int ax_chan_try_send(ax_chan *c, const void *elem)
{
	if (!c || !elem)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int r = chan_send_locked(c, elem);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int ax_chan_try_recv(ax_chan *c, void *elem)
{
	if (!c || !elem)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	int r = chan_recv_locked(c, elem);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int ax_chan_close(ax_chan *c)
{
	struct ax__waiter *w;
	if (!c)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->closed) {
		pthread_mutex_unlock(&c->lock);
		return -EPIPE;
	}
	c->closed = true;
	while ((w = wl_pop(&c->senders)))
		chan_release(w, W_CLOSED);
	while ((w = wl_pop(&c->receivers)))
		chan_release(w, W_CLOSED);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

size_t ax_chan_len(ax_chan *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->len;
	pthread_mutex_unlock(&c->lock);
	return n;
}
