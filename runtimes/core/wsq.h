/*
 * wsq.h - the queues of the work-stealing design (ws.c): a bounded ring per
 * worker, owned by one thread and robbed of half its entries by others, and
 * the unbounded global injection queue. They hold opaque pointers, so that
 * they are tested alone (tests/unit/test_wsq.c).
 *
 * The ring is lock-free: the owner alone pushes at the tail, and everyone
 * (the owner popping one, a thief or the owner's overflow taking half)
 * takes from the head by compare-and-swap. wsq.c argues the orderings;
 * docs/decisions.md ("Work stealing") the design. The global queue is
 * mutex-protected (it is touched once per 61 pops, on overflow and when a
 * worker's ring is empty).
 */
#ifndef AX_WSQ_H
#define AX_WSQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A bounded FIFO ring of cap (a power of two) pointers. head and tail are
 * 64-bit positions that only grow (slot = position & (cap - 1)); they never
 * wrap in practice (2^64 takes), so a compare-and-swap on head cannot be
 * fooled by a head that went round to the same value (ABA). */
struct ax__wsq {
	_Atomic(void *) *buf; /* slots: atomic because a thief reads one the
			       * owner may be overwriting (then its CAS fails) */
	size_t cap;
	_Atomic uint64_t head; /* next to take; changed by CAS only */
	_Atomic uint64_t tail; /* next free slot; stored by the owner only */
};

/* 0, -EINVAL (cap not a power of two >= 2) or -ENOMEM. */
int ax__wsq_init(struct ax__wsq *q, size_t cap);
void ax__wsq_fini(struct ax__wsq *q);
/* Owner only. Append p; false when the ring is full (nothing done). */
bool ax__wsq_push(struct ax__wsq *q, void *p);
/* Owner only. The oldest entry, or NULL when empty. */
void *ax__wsq_pop(struct ax__wsq *q);
/* Take the older half (rounded up) of victim's entries, at most max, into
 * out in FIFO order. Returns the number taken: 0 only when the ring was
 * seen empty (or max is 0). Any thread, the owner too (its overflow);
 * lock-free against the owner and other thieves. */
size_t ax__wsq_steal_half(struct ax__wsq *victim, void **out, size_t max);
/* Entries now: exact for the owner between its own calls, a hint for
 * other threads (a snapshot of two words, clamped to 0..cap). Relaxed: no
 * reader uses it to reach an entry's contents (a take does that). */
static inline size_t ax__wsq_len(struct ax__wsq *q)
{
	uint64_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	/* head read first: t >= h unless the two reads straddle takes and
	 * pushes that moved both (then t - h may exceed cap, or be
	 * "negative" when a stale tail is seen) */
	if ((int64_t)(t - h) <= 0)
		return 0;
	return t - h > q->cap ? q->cap : (size_t)(t - h);
}

/* The global injection queue: an unbounded FIFO of pointers in chunks. */
struct ax__gq_chunk;
struct ax__gq {
	pthread_mutex_t lock;
	struct ax__gq_chunk *head, *tail;
	size_t head_i, tail_i;
	atomic_size_t len;
};

void ax__gq_init(struct ax__gq *q);
void ax__gq_fini(struct ax__gq *q);
/* Append the n pointers of v; -ENOMEM (nothing appended) or 0. */
int ax__gq_push(struct ax__gq *q, void *const *v, size_t n);
/* Take up to max of the oldest into out; returns the number taken. */
size_t ax__gq_pop(struct ax__gq *q, void **out, size_t max);
static inline size_t ax__gq_len(struct ax__gq *q)
{
	return atomic_load(&q->len);
}

#endif
