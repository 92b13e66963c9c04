/*
 * test_wsq.c - the work-stealing design's queues on their own (wsq.h):
 * ring order, capacity, steal-half arithmetic, the global queue across
 * chunk boundaries, and an owner racing two thieves: every entry is taken
 * exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

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

#define RACE_N 200000

static struct ax__wsq race_q;
static atomic_uchar race_seen[RACE_N + 1];
static atomic_int race_done;
static atomic_long race_dups, race_stolen;

static void race_take(void *p)
{
	intptr_t i = (intptr_t)p;
	if (i < 1 || i > RACE_N || atomic_fetch_add(&race_seen[i], 1) != 0)
		atomic_fetch_add(&race_dups, 1);
}

static void *race_thief(void *arg)
{
	(void)arg;
	void *out[64];
	while (!atomic_load(&race_done) || ax__wsq_len(&race_q)) {
		size_t n = ax__wsq_steal_half(&race_q, out, 64);
		for (size_t k = 0; k < n; k++)
			race_take(out[k]);
		atomic_fetch_add(&race_stolen, (long)n);
	}
	return NULL;
}

/* The owner pushes and pops while two thieves steal: no entry is lost or
 * taken twice. */
static void ring_race(void)
{
	pthread_t th[2];
	CHECK_EQ(ax__wsq_init(&race_q, 256), 0);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, race_thief, NULL);
	intptr_t next = 1;
	while (next <= RACE_N) {
		if (ax__wsq_push(&race_q, (void *)next))
			next++;
		if (next % 3 == 0) {
			void *p = ax__wsq_pop(&race_q);
			if (p)
				race_take(p);
		}
	}
	void *p;
	while ((p = ax__wsq_pop(&race_q)))
		race_take(p);
	atomic_store(&race_done, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&race_dups), 0);
	long missing = 0;
	for (int i = 1; i <= RACE_N; i++)
		if (atomic_load(&race_seen[i]) != 1)
			missing++;
	CHECK_EQ(missing, 0);
	ax__wsq_fini(&race_q);
}

int main(void)
{
	ring_basics();
	global_basics();
	ring_race();
	if (t_failures) {
		fprintf(stderr, "wsq: %d check(s) failed\n", t_failures);
		return 1;
	}
	printf("wsq: ok (%ld entries stolen in the race)\n",
	       atomic_load(&race_stolen));
	return 0;
}
