/*
 * wsq.h - the queues of the work-stealing design (ws.c): a bounded ring per
 * worker, owned by one thread and robbed of half its entries by others, and
 * the unbounded global injection queue. They hold opaque pointers, so that
 * they are tested alone (tests/unit/test_wsq.c).
 *
 * Both are mutex-protected: the ring's lock is uncontended except while a
 * thief takes half of it (one lock per steal, not per task). A lock-free
 * ring (Chase-Lev, Tokio's) would save the owner's lock per push and pop;
 * docs/decisions.md ("Work stealing") records the trade.
 */
#ifndef AX_WSQ_H
#define AX_WSQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* A bounded FIFO ring of cap (a power of two) pointers. */
struct ax__wsq {
	pthread_mutex_t lock;
	void **buf;
	size_t cap;
	size_t head;          /* next to pop (lock) */
	size_t tail;          /* next free slot (lock) */
	atomic_size_t len;    /* tail - head, readable without the lock */
};

/* 0, -EINVAL (cap not a power of two >= 2) or -ENOMEM. */
int ax__wsq_init(struct ax__wsq *q, size_t cap);
void ax__wsq_fini(struct ax__wsq *q);
/* Append p; false when the ring is full (nothing done). */
bool ax__wsq_push(struct ax__wsq *q, void *p);
/* The oldest entry, or NULL when empty. */
void *ax__wsq_pop(struct ax__wsq *q);
/* Take the older half (rounded up) of victim's entries, at most max, into
 * out in FIFO order. Returns the number taken. Thread-safe against the
 * owner and other thieves. */
size_t ax__wsq_steal_half(struct ax__wsq *victim, void **out, size_t max);
/* Entries now (a snapshot). */
static inline size_t ax__wsq_len(struct ax__wsq *q)
{
	return atomic_load(&q->len);
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
