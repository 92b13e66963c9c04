/*
 * wsq.c - the work-stealing design's run queues: the per-worker bounded
 * ring and the global injection queue (wsq.h).
 */
#include "wsq.h"

#include <errno.h>
#include <stdlib.h>

int ax__wsq_init(struct ax__wsq *q, size_t cap)
{
	if (cap < 2 || (cap & (cap - 1)))
		return -EINVAL;
	q->buf = calloc(cap, sizeof *q->buf);
	if (!q->buf)
		return -ENOMEM;
	int r = pthread_mutex_init(&q->lock, NULL);
	if (r) {
		free(q->buf);
		return -r;
	}
	q->cap = cap;
	q->head = q->tail = 0;
	atomic_init(&q->len, 0);
	return 0;
}

void ax__wsq_fini(struct ax__wsq *q)
{
	pthread_mutex_destroy(&q->lock);
	free(q->buf);
	q->buf = NULL;
}

bool ax__wsq_push(struct ax__wsq *q, void *p)
{
	bool ok = false;
	pthread_mutex_lock(&q->lock);
	if (q->tail - q->head < q->cap) {
		q->buf[q->tail++ & (q->cap - 1)] = p;
		atomic_store(&q->len, q->tail - q->head);
		ok = true;
	}
	pthread_mutex_unlock(&q->lock);
	return ok;
}

void *ax__wsq_pop(struct ax__wsq *q)
{
	void *p = NULL;
	if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&q->lock);
	if (q->head != q->tail) {
		p = q->buf[q->head++ & (q->cap - 1)];
		atomic_store(&q->len, q->tail - q->head);
	}
	pthread_mutex_unlock(&q->lock);
	return p;
}

size_t ax__wsq_steal_half(struct ax__wsq *victim, void **out, size_t max)
{
	size_t n = 0;
	if (atomic_load(&victim->len) == 0 || max == 0)
		return 0;
	pthread_mutex_lock(&victim->lock);
	size_t have = victim->tail - victim->head;
	size_t want = (have + 1) / 2;
	if (want > max)
		want = max;
	for (; n < want; n++)
		out[n] = victim->buf[victim->head++ & (victim->cap - 1)];
	atomic_store(&victim->len, victim->tail - victim->head);
	pthread_mutex_unlock(&victim->lock);
	return n;
}

/* ---- the global queue ---- */

#define GQ_CHUNK 126

struct ax__gq_chunk {
	struct ax__gq_chunk *next;
	void *v[GQ_CHUNK];
};

void ax__gq_init(struct ax__gq *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
	q->head_i = q->tail_i = 0;
	atomic_init(&q->len, 0);
}

void ax__gq_fini(struct ax__gq *q)
{
	while (q->head) {
		struct ax__gq_chunk *c = q->head;
		q->head = c->next;
		free(c);
	}
	pthread_mutex_destroy(&q->lock);
}

int ax__gq_push(struct ax__gq *q, void *const *v, size_t n)
{
	pthread_mutex_lock(&q->lock);
	/* chunks first, so that a failure appends nothing */
	size_t room = q->tail ? GQ_CHUNK - q->tail_i : 0;
	struct ax__gq_chunk *fresh = NULL, **fp = &fresh;
	for (size_t need = n > room ? n - room : 0; need > 0;
	     need -= need < GQ_CHUNK ? need : GQ_CHUNK) {
		*fp = calloc(1, sizeof **fp);
		if (!*fp) {
			while (fresh) {
				struct ax__gq_chunk *c = fresh;
				fresh = c->next;
				free(c);
			}
			pthread_mutex_unlock(&q->lock);
			return -ENOMEM;
		}
		fp = &(*fp)->next;
	}
	for (size_t i = 0; i < n; i++) {
		if (!q->tail || q->tail_i == GQ_CHUNK) {
			struct ax__gq_chunk *c = fresh;
			fresh = c->next;
			c->next = NULL;
			if (q->tail)
				q->tail->next = c;
			else
				q->head = c;
			q->tail = c;
			q->tail_i = 0;
		}
		q->tail->v[q->tail_i++] = v[i];
	}
	atomic_fetch_add(&q->len, n);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

size_t ax__gq_pop(struct ax__gq *q, void **out, size_t max)
{
	size_t n = 0;
	if (atomic_load(&q->len) == 0)
		return 0;
	pthread_mutex_lock(&q->lock);
	while (n < max && q->head) {
		if (q->head == q->tail && q->head_i == q->tail_i)
			break;
		out[n++] = q->head->v[q->head_i++];
		if (q->head_i == GQ_CHUNK) {
			struct ax__gq_chunk *c = q->head;
			q->head = c->next;
			q->head_i = 0;
			if (!q->head)
				q->tail = NULL, q->tail_i = 0;
			free(c);
		}
	}
	atomic_fetch_sub(&q->len, n);
	pthread_mutex_unlock(&q->lock);
	return n;
}
