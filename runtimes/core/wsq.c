/*
 * wsq.c - the work-stealing design's run queues: the per-worker bounded
 * ring and the global injection queue (wsq.h).
 */
#include "wsq.h"

#include <errno.h>
#include <stdlib.h>

/*
 * The ring. Positions only grow; the owner alone stores tail, and every take
 * (the owner's pop of one, a steal of half by a thief or by the owner for
 * its overflow) claims [h, h + n) by one compare-and-swap of head from h.
 * A thief copies the slots out before its CAS and keeps them only if the
 * CAS succeeds (the scheme of Go's runqgrab; Tokio's ring claims first and
 * copies after, with a second head word that blocks other thieves until
 * the copy is done, which this scheme does not need).
 *
 * Why a successful take got exactly the entries pushed at [h, h + n), once:
 * - Once: every change of head is a CAS, and two successful CASes cannot
 *   both read the same value (atomicity of read-modify-write); head only
 *   grows, so a CAS from h succeeds only if nobody took position h since
 *   it was read. (64-bit positions do not wrap: no ABA.)
 * - The right values: the taker read tail t >= h + n with acquire, which
 *   pairs with the owner's release store of t: the slot stores of the
 *   positions below t (and what the owner wrote to the entries before
 *   pushing them) happen before the taker's reads.
 * - Not a newer value: the owner stores position p + cap (the same slot as
 *   p) only after reading head > p. That head value was written by the
 *   take of p or a later CAS (all in the take's release sequence, being
 *   RMWs); the taker of p did its release CAS after reading the slot, and
 *   the owner's head load is acquire, so the taker's read of p happens
 *   before the owner's store of p + cap and cannot see it. A thief that
 *   read a slot being overwritten (it lost the race for p) fails its CAS
 *   and discards what it read; the slots are relaxed atomics so that this
 *   race is not undefined behaviour.
 * - The owner's pop needs no ordering for the entry: it stored the slot
 *   itself, and nobody else stores slots.
 */

int ax__wsq_init(struct ax__wsq *q, size_t cap)
{
	if (cap < 2 || (cap & (cap - 1)))
		return -EINVAL;
	q->buf = calloc(cap, sizeof *q->buf);
	if (!q->buf)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		atomic_init(&q->buf[i], NULL);
	q->cap = cap;
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	return 0;
}

void ax__wsq_fini(struct ax__wsq *q)
{
	free((void *)q->buf);
	q->buf = NULL;
}

bool ax__wsq_push(struct ax__wsq *q, void *p)
{
	/* relaxed: only this thread stores tail */
	uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	/* acquire: the take that freed the slot reused below read it before
	 * its release CAS (see above). A stale head only makes the ring look
	 * fuller: the caller's overflow path, never a lost entry. */
	uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
	if (t - h >= q->cap)
		return false;
	atomic_store_explicit(&q->buf[t & (q->cap - 1)], p, memory_order_relaxed);
	/* release: publishes the slot (and the entry) to a taker's acquire
	 * load of tail */
	atomic_store_explicit(&q->tail, t + 1, memory_order_release);
	return true;
}

void *ax__wsq_pop(struct ax__wsq *q)
{
	uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	/* relaxed: a stale head fails the CAS, which reloads it; the owner's
	 * own tail bounds it (head never passes tail) */
	uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	while (h != t) {
		/* relaxed: the claim needs only atomicity; the slot was stored
		 * by this thread. Still in the release sequence of an earlier
		 * thief's CAS (an RMW), so push's acquire of this value
		 * synchronises with that thief. */
		if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return atomic_load_explicit(&q->buf[h & (q->cap - 1)],
						    memory_order_relaxed);
	}
	return NULL;
}

size_t ax__wsq_steal_half(struct ax__wsq *q, void **out, size_t max)
{
	if (max == 0)
		return 0;
	uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	for (;;) {
		/* acquire: pairs with the owner's release of tail, so that
		 * the slots below it are readable */
		uint64_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
		uint64_t have = t - h;
		if (have == 0)
			return 0;
		if (have > q->cap) {
			/* an inconsistent pair (head moved on after we read it
			 * and pushes followed, or a tail older than the head):
			 * read both again */
			h = atomic_load_explicit(&q->head, memory_order_relaxed);
			continue;
		}
		size_t n = (size_t)(have + 1) / 2;
		if (n > max)
			n = max;
		for (size_t i = 0; i < n; i++)
			out[i] = atomic_load_explicit(&q->buf[(h + i) & (q->cap - 1)],
						      memory_order_relaxed);
		/* release on success: the reads above happen before the
		 * owner's reuse of these slots (its acquire of head in push).
		 * Relaxed on failure: nothing taken, h now holds the current
		 * head and the loop validates it against a fresh tail. */
		if (atomic_compare_exchange_weak_explicit(&q->head, &h, h + n,
							  memory_order_release,
							  memory_order_relaxed))
			return n;
	}
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
