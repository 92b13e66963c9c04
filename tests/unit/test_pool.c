/* test_pool.c - blocking offload and cross-thread posts: results come back,
 * timers keep firing while blocking calls run, posts from another thread
 * each run exactly once, and a hog is counted. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "t.h"

static atomic_int running, most_running;

static intptr_t slow_double(void *arg)
{
	int now = atomic_fetch_add(&running, 1) + 1;
	int m = atomic_load(&most_running);
	while (now > m && !atomic_compare_exchange_weak(&most_running, &m, now))
		;
	usleep(100000 * T_TIME_SCALE);
	atomic_fetch_sub(&running, 1);
	return (intptr_t)arg * 2;
}

static intptr_t offload(void *arg)
{
	intptr_t r = 0;
	CHECK_EQ(ax_blocking(slow_double, arg, &r), 0);
	return r;
}

static intptr_t ticker(void *arg)
{
	int64_t *worst = arg;
	for (int i = 0; i < 20; i++) {
		int64_t t0 = ax_now();
		ax_sleep(5000000);
		int64_t late = ax_now() - t0 - 5000000;
		if (late > *worst)
			*worst = late;
	}
	return 0;
}

/* [AX-POOL-1] */
static intptr_t pool_main(void *arg)
{
	(void)arg;
	ax_task *t[4], *tk;
	int64_t worst = 0;
	ax_spawn(&tk, ticker, &worst, "ticker");
	for (intptr_t i = 0; i < 4; i++)
		ax_spawn(&t[i], offload, (void *)i, "offload");
	for (intptr_t i = 0; i < 4; i++) {
		intptr_t r = -1;
		ax_join(t[i], &r);
		CHECK_EQ(r, i * 2);
	}
	ax_join(tk, NULL);
	/* four 100 ms calls (x T_TIME_SCALE) on four pool threads overlap:
	 * counted, not timed
	 * (a serial pool would have at most one running at a time) */
	CHECK(atomic_load(&most_running) >= 2);
	/* the loop was never blocked by a call: one blocked loop would make a
	 * tick at least ~95 ms late (x T_TIME_SCALE); the bound leaves room for
	 * a loaded machine */
	CHECK(worst < 90000000ll * T_TIME_SCALE);
	return 0;
}

#define NPOST 100000
static int posted_runs;
static void on_post(void *arg)
{
	(void)arg;
	posted_runs++;
}

static void *poster(void *arg)
{
	ax_rt *rt = arg;
	for (int i = 0; i < NPOST; i++)
		while (ax_post(rt, on_post, NULL) != 0)
			;
	return NULL;
}

static intptr_t post_main(void *arg)
{
	(void)arg;
	pthread_t th;
	pthread_create(&th, NULL, poster, ax_rt_current());
	/* keep the loop blocking in its engine while posts arrive */
	while (posted_runs < NPOST)
		ax_sleep(1000000);
	pthread_join(th, NULL);
	CHECK_EQ(posted_runs, NPOST);
	return 0;
}

static intptr_t hog_main(void *arg)
{
	(void)arg;
	int64_t t0 = ax_now();
	while (ax_now() - t0 < 30000000)
		;
	ax_yield();
	return 0;
}

int main(void)
{
	t_run(pool_main, NULL);
	t_run(post_main, NULL);

	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.hog_threshold_ns = 10000000;
	ax_rt *rt = t_rt_opts(&o);
	CHECK_EQ(ax_rt_run(rt, hog_main, NULL, NULL), 0);
	struct ax_rt_stats st;
	ax_rt_stats(rt, &st);
	CHECK_EQ(st.hogs, 1);
	CHECK(st.switches > 0);
	CHECK_EQ(ax_rt_destroy(rt), 0);
	return t_done("pool");
}
