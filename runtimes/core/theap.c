/* theap.c - the 4-ary timer min-heap used by heap-based driver timers. */
#include "theap.h"

#include <errno.h>
#include <stdlib.h>

#define theap_less ax__timer_before

static inline void theap_set(struct ax_theap *h, size_t i, struct ax_timer *t)
{
	h->v[i] = t;
	t->drv_index = i;
}

static void theap_up(struct ax_theap *h, size_t i)
{
	struct ax_timer *t = h->v[i];
	while (i > 0) {
		size_t p = (i - 1) / 4;
		if (!theap_less(t, h->v[p]))
			break;
		theap_set(h, i, h->v[p]);
		i = p;
	}
	theap_set(h, i, t);
}

static void theap_down(struct ax_theap *h, size_t i)
{
	struct ax_timer *t = h->v[i];
	for (;;) {
		size_t c = 4 * i + 1, best = i;
		struct ax_timer *bt = t;
		for (size_t k = c; k < c + 4 && k < h->n; k++) {
			if (theap_less(h->v[k], bt)) {
				best = k;
				bt = h->v[k];
			}
		}
		if (best == i)
			break;
		theap_set(h, i, bt);
		i = best;
	}
	theap_set(h, i, t);
}

void ax__theap_init(struct ax_theap *h)
{
	h->v = NULL;
	h->n = h->cap = 0;
}

void ax__theap_fini(struct ax_theap *h)
{
	free(h->v);
	ax__theap_init(h);
}

int ax__theap_reserve(struct ax_theap *h, size_t need)
{
	if (need <= h->cap)
		return 0;
	size_t cap = h->cap ? h->cap : 64;
	while (cap < need)
		cap *= 2;
	struct ax_timer **v = realloc(h->v, cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

int ax__theap_push(struct ax_theap *h, struct ax_timer *t)
{
	if (ax__theap_reserve(h, h->n + 1) < 0)
		return -ENOMEM;
	theap_set(h, h->n++, t);
	theap_up(h, h->n - 1);
	return 0;
}

void ax__theap_remove(struct ax_theap *h, struct ax_timer *t)
{
	size_t i = t->drv_index;
	if (i == AX_THEAP_NONE || i >= h->n || h->v[i] != t)
		return;
	t->drv_index = AX_THEAP_NONE;
	struct ax_timer *last = h->v[--h->n];
	if (i == h->n)
		return;
	theap_set(h, i, last);
	if (i > 0 && theap_less(last, h->v[(i - 1) / 4]))
		theap_up(h, i);
	else
		theap_down(h, i);
}

struct ax_timer *ax__theap_pop_due(struct ax_theap *h, int64_t now)
{
	if (!h->n || h->v[0]->deadline > now)
		return NULL;
	struct ax_timer *t = h->v[0];
	ax__theap_remove(h, t);
	return t;
}

int ax__theap_fire_now(struct ax_theap *h)
{
	int n = 0;
	struct ax_timer *t;
	int64_t now = ax_now();
	while ((t = ax__theap_pop_due(h, now))) {
		t->fire(t);
		n++;
	}
	return n;
}
