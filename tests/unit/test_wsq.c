/*
 * test_wsq.c - the work-stealing design's queues on their own (wsq.h):
 * ring order, capacity, steal-half arithmetic, the global queue across
 * chunk boundaries, and an owner pushing, popping and overflowing while
 * three thieves steal: every entry is taken exactly once, in order.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "t.h"
#include "wsq.h"

static void ring_basics(void)
{
	struct ax__wsq q;
	CHECK_EQ(ax__wsq_init(&q, 3), -EINVAL);
	CHECK_EQ(ax__wsq_init(&q, 8), 0);
	CHECK(ax__wsq_pop(&q) == NULL);
	for (intptr_t i = 1; i <= 8; i++)
		CHECK(ax__wsq_push(&q, (void *)i));
	CHECK(!ax__wsq_push(&q, (void *)9)); /* full: refused */
	CHECK_EQ(ax__wsq_len(&q), 8);
	CHECK_EQ((intptr_t)ax__wsq_pop(&q), 1); /* FIFO */
	void *out[8];
	/* 7 left: a thief takes the older half, rounded up */
	CHECK_EQ(ax__wsq_steal_half(&q, out, 8), 4);
	CHECK_EQ((intptr_t)out[0], 2);
	CHECK_EQ((intptr_t)out[3], 5);
	CHECK_EQ(ax__wsq_steal_half(&q, out, 1), 1); /* bounded by max */
	CHECK_EQ((intptr_t)out[0], 6);
	CHECK_EQ((intptr_t)ax__wsq_pop(&q), 7);
	CHECK_EQ((intptr_t)ax__wsq_pop(&q), 8);
	CHECK_EQ(ax__wsq_steal_half(&q, out, 8), 0);
	/* wrap around the buffer */
	for (intptr_t round = 0; round < 5; round++) {
		for (intptr_t i = 0; i < 6; i++)
			CHECK(ax__wsq_push(&q, (void *)(round * 10 + i + 1)));
		for (intptr_t i = 0; i < 6; i++)
			CHECK_EQ((intptr_t)ax__wsq_pop(&q), round * 10 + i + 1);
	}
	ax__wsq_fini(&q);
}

static void global_basics(void)
{
	struct ax__gq g;
	ax__gq_init(&g);
	void *v[300], *out[300];
	for (intptr_t i = 0; i < 300; i++)
		v[i] = (void *)(i + 1);
	CHECK_EQ(ax__gq_pop(&g, out, 10), 0);
	CHECK_EQ(ax__gq_push(&g, v, 1), 0);
	CHECK_EQ(ax__gq_push(&g, v + 1, 299), 0); /* spans chunks */
	CHECK_EQ(ax__gq_len(&g), 300);
	size_t got = 0;
	while (got < 300) {
		size_t n = ax__gq_pop(&g, out + got, 7);
		if (!n)
			break;
		got += n;
	}
	CHECK_EQ(got, 300);
	for (intptr_t i = 0; i < 300; i++)
		CHECK_EQ((intptr_t)out[i], i + 1);
	CHECK_EQ(ax__gq_len(&g), 0);
	CHECK_EQ(ax__gq_push(&g, v, 5), 0); /* left for fini to free */
	ax__gq_fini(&g);
}

/* The race: the owner pushes 1..RACE_N in order, pops, and, when the ring
 * is full, takes half of it as ws.c's overflow does (ax__wsq_steal_half on
 * its own ring), while RACE_THIEVES thieves steal half with varied limits.
 * Every entry must be taken exactly once, and every take must be a run of
 * consecutive entries later than the same taker's previous one (FIFO): a
 * take that read a slot being reused, or a stale one, breaks that. Bounded
 * by the count and by a deadline (a lost entry must fail, not hang). */
#define RACE_N 200000
#define RACE_THIEVES 3
#define RACE_DEADLINE_S 15 /* each of 3 races: under ctest's 60 s */

/* What an entry points at: written plainly by the owner before the push and
 * read plainly by the taker, as ws.c's tasks are, so that TSan sees a
 * missing release/acquire pair between them as a data race. */
struct race_item {
	intptr_t v;
};

struct race {
	struct ax__wsq q;
	struct race_item items[RACE_N + 1];
	atomic_uchar seen[RACE_N + 1];
	atomic_int done, ready;
	double deadline;
	atomic_long bad, order_errs, stolen, overflowed, steals;
};

static struct race race;
static long total_stolen;

static double race_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Record a take of n entries; *last is the taker's previous entry. */
static void race_take(void *const *v, size_t n, intptr_t *last)
{
	for (size_t k = 0; k < n; k++) {
		/* an entry not from items (computed without pointer
		 * arithmetic on it: it may be garbage), or a wrong payload,
		 * or taken before */
		uintptr_t off = (uintptr_t)v[k] - (uintptr_t)race.items;
		intptr_t i = (intptr_t)(off / sizeof race.items[0]);
		if (off % sizeof race.items[0] || i < 1 || i > RACE_N ||
		    race.items[i].v != i ||
		    atomic_fetch_add(&race.seen[i], 1) != 0)
			atomic_fetch_add(&race.bad, 1);
		if (i <= *last || (k > 0 && i != *last + 1))
			atomic_fetch_add(&race.order_errs, 1);
		*last = i;
	}
}

static void *race_thief(void *arg)
{
	static const size_t maxes[] = { 1, 3, 64, 128 };
	size_t which = (size_t)(uintptr_t)arg;
	void *out[128];
	intptr_t last = 0;
	atomic_fetch_add(&race.ready, 1);
	for (unsigned long it = 1;
	     !atomic_load(&race.done) || ax__wsq_len(&race.q); it++) {
		/* a broken ring may never look empty: the deadline ends it */
		if (it % 1024 == 0 && race_now() > race.deadline)
			break;
		size_t max = maxes[which++ % 4];
		size_t n = ax__wsq_steal_half(&race.q, out, max);
		CHECK(n <= max);
		race_take(out, n, &last);
		if (n) {
			atomic_fetch_add(&race.stolen, (long)n);
			atomic_fetch_add(&race.steals, 1);
		} else {
			sched_yield(); /* leave the CPU to the owner */
		}
	}
	return NULL;
}

/* One race on a ring of cap entries; the owner pops after every pop_every
 * pushes. */
static void ring_race(size_t cap, int pop_every)
{
	pthread_t th[RACE_THIEVES];
	memset(&race, 0, sizeof race);
	CHECK_EQ(ax__wsq_init(&race.q, cap), 0);
	race.deadline = race_now() + RACE_DEADLINE_S;
	for (int i = 0; i < RACE_THIEVES; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, race_thief,
					(void *)(uintptr_t)i), 0);
	double deadline = race.deadline;
	while (atomic_load(&race.ready) < RACE_THIEVES && race_now() < deadline)
		sched_yield();
	intptr_t next = 1, last = 0;
	void *out[128];
	bool late = false;
	for (long step = 0; next <= RACE_N; step++) {
		race.items[next].v = next;
		if (ax__wsq_push(&race.q, &race.items[next])) {
			next++;
		} else {
			/* full: the overflow path, half of it (bounded as ws.c
			 * bounds it) */
			size_t n = ax__wsq_steal_half(&race.q, out,
						      cap / 2 < 128 ? cap / 2 : 128);
			race_take(out, n, &last);
			atomic_fetch_add(&race.overflowed, (long)n);
		}
		if (step % pop_every == 0) {
			void *p = ax__wsq_pop(&race.q);
			if (p)
				race_take(&p, 1, &last);
		}
		/* on 2 CPUs the thieves need the owner's CPU now and then */
		if (step % 64 == 0)
			sched_yield();
		if (step % 4096 == 0 && race_now() > deadline) {
			late = true;
			break;
		}
	}
	void *p;
	for (size_t k = 0; k <= cap && (p = ax__wsq_pop(&race.q)); k++)
		race_take(&p, 1, &last);
	CHECK_EQ(ax__wsq_len(&race.q), 0);
	atomic_store(&race.done, 1);
	for (int i = 0; i < RACE_THIEVES; i++)
		pthread_join(th[i], NULL);
	CHECK(!late);
	CHECK_EQ(atomic_load(&race.bad), 0);
	CHECK_EQ(atomic_load(&race.order_errs), 0);
	long missing = 0;
	for (int i = 1; i <= RACE_N; i++)
		if (atomic_load(&race.seen[i]) != 1)
			missing++;
	CHECK_EQ(missing, 0);
	total_stolen += atomic_load(&race.stolen);
	printf("wsq: race cap %zu: %ld stolen in %ld steals, %ld by overflow\n",
	       cap, atomic_load(&race.stolen), atomic_load(&race.steals),
	       atomic_load(&race.overflowed));
	ax__wsq_fini(&race.q);
}

int main(void)
{
	ring_basics();
	global_basics();
	ring_race(256, 3); /* ws.c's size: the owner mostly ahead */
	ring_race(4, 2);   /* tiny: slots reused while thieves read them */
	ring_race(64, 1);  /* the owner popping as fast as it pushes */
	CHECK(total_stolen > 0); /* the thieves did race */
	if (t_failures) {
		fprintf(stderr, "wsq: %d check(s) failed\n", t_failures);
		return 1;
	}
	printf("wsq: ok\n");
	return 0;
}
