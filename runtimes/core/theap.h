/*
 * theap.h - a 4-ary min-heap of struct ax_timer ordered by (deadline, seq),
 * shared by the drivers whose timer structure is a heap (epoll, io_uring).
 *
 * Why a heap: it keeps the exact order the spec demands (never early, equal
 * deadlines in arming order, [AX-TIME-1], [AX-TIME-2]) with no rounding to
 * ticks, peeks the next deadline in O(1) (the poll timeout), and arms and
 * cancels in O(log n) with the index stored in the timer. A 4-ary layout
 * halves the depth of a binary heap and keeps siblings in one cache line.
 */
#ifndef AX_THEAP_H
#define AX_THEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ax_driver.h"

struct ax_theap {
	struct ax_timer **v;
	size_t n;
	size_t cap;
};

#define AX_THEAP_NONE ((size_t)-1)

/* The order timers fire in: by deadline, then by arming sequence
 * ([AX-TIME-2]). */
static inline bool ax__timer_before(const struct ax_timer *a,
				    const struct ax_timer *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

/* qsort comparator over struct ax_timer pointers in that order. */
static inline int ax__timer_cmp(const void *pa, const void *pb)
{
	const struct ax_timer *a = *(struct ax_timer *const *)pa;
	const struct ax_timer *b = *(struct ax_timer *const *)pb;
	return ax__timer_before(a, b) ? -1 : ax__timer_before(b, a);
}

/* Make room for `need` timers, so that pushes up to that count cannot
 * fail. Returns 0 or -ENOMEM. */
int ax__theap_reserve(struct ax_theap *h, size_t need);

/* Initialise an empty heap. Never fails. */
void ax__theap_init(struct ax_theap *h);

/* Free the heap's array (not the timers). */
void ax__theap_fini(struct ax_theap *h);

/* Insert t (t->drv_index receives its slot). Returns 0 or -ENOMEM. */
int ax__theap_push(struct ax_theap *h, struct ax_timer *t);

/* Remove t if present (t->drv_index == AX_THEAP_NONE means absent). */
void ax__theap_remove(struct ax_theap *h, struct ax_timer *t);

/* The earliest timer, or NULL when empty. */
static inline struct ax_timer *ax__theap_min(const struct ax_theap *h)
{
	return h->n ? h->v[0] : NULL;
}

/* Remove and return the earliest timer whose deadline is <= now, or NULL. */
struct ax_timer *ax__theap_pop_due(struct ax_theap *h, int64_t now);

/* The work of ax__theap_fire_due once the heap holds a timer. */
int ax__theap_fire_now(struct ax_theap *h);

/* Fire every timer due now, in (deadline, seq) order ([AX-TIME-2]); a
 * fire may arm or cancel others. Returns the number fired. Inline, so that
 * a loop with no timer pays one test and no call or clock read. */
static inline int ax__theap_fire_due(struct ax_theap *h)
{
	return h->n ? ax__theap_fire_now(h) : 0;
}

#endif
