/* c_pool.c - conformance cases for blocking offload and files: results come
 * back from the pool, timers keep firing on time while four 100 ms
 * blocking calls run, and pread/pwrite work without blocking the loop. */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* pool.result                                                         */
/* ------------------------------------------------------------------ */

static pthread_t pr_loop;
static atomic_int pr_on_loop;

static intptr_t pr_fn(void *arg)
{
	intptr_t x = (intptr_t)arg;
	if (pthread_equal(pthread_self(), pr_loop))
		atomic_fetch_add(&pr_on_loop, 1);
	usleep((useconds_t)(x % 3) * 500);
	return x * 3 + 1;
}

static intptr_t pr_task(void *arg)
{
	intptr_t base = (intptr_t)arg;
	for (intptr_t i = 0; i < 25; i++) {
		intptr_t res = -1;
		int r = ax_blocking(pr_fn, (void *)(base + i), &res);
		if (!CONF_EQ(r, 0, "ax_blocking") ||
		    !CONF_EQ(res, (base + i) * 3 + 1, "result of call %ld",
			     (long)(base + i)))
			return -1;
	}
	return 0;
}

static intptr_t pr_main(void *arg)
{
	(void)arg;
	ax_task *t[8];
	pr_loop = pthread_self();
	for (int i = 0; i < 8; i++)
		ax_spawn(&t[i], pr_task, (void *)(intptr_t)(i * 1000), "caller");
	for (int i = 0; i < 8; i++)
		CONF_EQ(conf_join(t[i]), 0, "caller %d", i);
	CONF_EQ(ax_blocking(pr_fn, (void *)(intptr_t)4, NULL), 0,
		"ax_blocking with a NULL result");
	CONF_EQ(atomic_load(&pr_on_loop), 0, "blocking calls that ran on the "
		"loop thread");
	return 0;
}

static void case_result(void)
{
	conf_run(pr_main, NULL);
}

/* ------------------------------------------------------------------ */
/* pool.timers                                                         */
/* ------------------------------------------------------------------ */

static atomic_int pt_running;

static intptr_t pt_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&pt_running, 1);
	usleep(100000);
	atomic_fetch_sub(&pt_running, 1);
	return 1;
}

static intptr_t pt_caller(void *arg)
{
	(void)arg;
	intptr_t res = 0;
	return ax_blocking(pt_fn, NULL, &res) == 0 ? res : -1;
}

static intptr_t pt_main(void *arg)
{
	(void)arg;
	ax_task *t[4];
	int ticks_during = 0;
	int64_t worst = 0;
	for (int i = 0; i < 4; i++)
		ax_spawn(&t[i], pt_caller, NULL, "blocking");
	/* a ticker: 5 ms sleeps for 300 ms */
	for (int i = 0; i < 60; i++) {
		int64_t t0 = ax_now();
		CONF_EQ(ax_sleep(5 * CONF_MS), 0, "ax_sleep beside blocking calls");
		int64_t late = ax_now() - t0 - 5 * CONF_MS;
		CONF_TRUE(late >= 0, "a tick ended %lld ns early", (long long)-late);
		if (late > worst)
			worst = late;
		if (atomic_load(&pt_running) > 0)
			ticks_during++;
	}
	for (int i = 0; i < 4; i++)
		CONF_EQ(conf_join(t[i]), 1, "result of blocking call %d", i);
	CONF_TRUE(ticks_during >= 3, "only %d ticks of 5 ms fired while the "
		  "four 100 ms blocking calls ran (the loop was blocked)",
		  ticks_during);
	CONF_TRUE(worst <= 250 * CONF_MS, "a 5 ms tick was %lld ms late while "
		  "blocking calls ran (bound 250 ms)", (long long)(worst / CONF_MS));
	return 0;
}

static void case_timers(void)
{
	conf_run(pt_main, NULL);
}

/* ------------------------------------------------------------------ */
/* pool.file                                                           */
/* ------------------------------------------------------------------ */

static intptr_t pf_main(void *arg)
{
	(void)arg;
	char path[] = "/tmp/axbench-conform-XXXXXX";
	char buf[4096];
	int fd = mkstemp(path);
	if (!CONF_TRUE(fd >= 0, "mkstemp failed"))
		return 0;
	unlink(path);
	CONF_EQ(ax_pwrite(fd, "0123456789", 10, 100), 10, "ax_pwrite at 100");
	memset(buf, 0, sizeof buf);
	CONF_EQ(ax_pread(fd, buf, 4, 103), 4, "ax_pread at 103");
	CONF_TRUE(!memcmp(buf, "3456", 4), "ax_pread read the wrong bytes");
	CONF_EQ(ax_pread(fd, buf, sizeof buf, 0), 110, "ax_pread of the whole "
		"file (a hole, then the data)");
	CONF_EQ(buf[0], 0, "the hole reads as zeros");
	CONF_EQ(ax_pread(fd, buf, 4, 1000), 0, "ax_pread past the end");
	CONF_EQ(ax_pread(fd, buf, 4, -1), -EINVAL, "ax_pread at offset -1");
	CONF_EQ(ax_pread(-1, buf, 4, 0), -EBADF, "ax_pread on fd -1");
	/* many, concurrently with a ticking timer */
	for (int i = 0; i < 64; i++) {
		memset(buf, 'a' + i % 26, 4096);
		if (!CONF_EQ(ax_pwrite(fd, buf, 4096, (int64_t)i * 4096), 4096,
			     "ax_pwrite of block %d", i))
			break;
	}
	for (int i = 0; i < 64; i++) {
		if (!CONF_EQ(ax_pread(fd, buf, 4096, (int64_t)i * 4096), 4096,
			     "ax_pread of block %d", i))
			break;
		CONF_TRUE(buf[0] == 'a' + i % 26 && buf[4095] == 'a' + i % 26,
			  "block %d read back wrong", i);
	}
	close(fd);
	return 0;
}

static void case_file(void)
{
	conf_run(pf_main, NULL);
}

/* ------------------------------------------------------------------ */
/* pool.deadline_waits                                                 */
/* ------------------------------------------------------------------ */

struct dw_call {
	atomic_int started, finished;
	int value;
};

static intptr_t dw_fn(void *arg)
{
	struct dw_call *c = arg;
	atomic_store(&c->started, 1);
	usleep(60000);
	c->value = 99; /* touches arg: must happen before ax_blocking returns */
	atomic_store(&c->finished, 1);
	return 5;
}

struct dw_task {
	struct dw_call call;
	int r, finished_at_return;
	intptr_t res;
	int64_t elapsed;
};

static intptr_t dw_caller(void *arg)
{
	struct dw_task *s = arg;
	struct ax_deadline d;
	int64_t t0 = ax_now();
	s->res = -12345;
	ax_deadline_enter(&d, t0 + 20 * CONF_MS);
	s->r = ax_blocking(dw_fn, &s->call, &s->res);
	s->finished_at_return = atomic_load(&s->call.finished);
	s->elapsed = ax_now() - t0;
	ax_deadline_leave(&d);
	return 0;
}

static intptr_t dw_main(void *arg)
{
	(void)arg;
	struct dw_task s;
	ax_task *t;

	/* a running call: waited for, then -ETIMEDOUT */
	for (int it = 0; it < 3; it++) {
		memset(&s, 0, sizeof s);
		ax_spawn(&t, dw_caller, &s, "caller");
		conf_join(t);
		CONF_EQ(s.r, -ETIMEDOUT, "ax_blocking of a 60 ms call in a 20 ms "
			"deadline scope");
		CONF_TRUE(s.finished_at_return, "a 60 ms blocking call cut by a "
			  "20 ms deadline returned after %lld ms, before the call "
			  "finished (it must be waited for)",
			  (long long)(s.elapsed / CONF_MS));
		CONF_EQ(s.res, -12345, "*result of a timed-out call (discarded)");
		if (conf_failed())
			return 0;
	}
	intptr_t res = 0;
	struct dw_call again = {0};
	CONF_EQ(ax_blocking(dw_fn, &again, &res), 0, "the ax_blocking after a "
		"timed-out one");
	CONF_EQ(res, 5, "its result");

	/* a queued call: dropped, never runs */
	struct conf_pool_fill f;
	if (!CONF_TRUE(conf_pool_fill(&f) > 0, "the blocking pool could not be "
		       "saturated with %d calls", CONF_POOL_MAX))
		return 0;
	memset(&s, 0, sizeof s);
	ax_spawn(&t, dw_caller, &s, "queued");
	conf_join(t);
	CONF_EQ(s.r, -ETIMEDOUT, "ax_blocking queued behind a saturated pool in "
		"a 20 ms deadline scope");
	int started = atomic_load(&s.call.started);
	conf_pool_release(&f);
	ax_sleep(100 * CONF_MS);
	CONF_EQ(started, 0, "a call queued behind a saturated pool had started");
	CONF_EQ(atomic_load(&s.call.started), 0, "a queued blocking call that "
		"timed out ran anyway (it must be dropped)");
	return 0;
}

static void case_deadline_waits(void)
{
	conf_run(dw_main, NULL);
}

/* ------------------------------------------------------------------ */
/* file.cancel                                                         */
/* ------------------------------------------------------------------ */

#define FC_BIG (16u << 20)

struct fc_read {
	int fd;
	struct conf_guard *g;
	ssize_t r;
	atomic_int returned;
};

static intptr_t fc_reader(void *arg)
{
	struct fc_read *s = arg;
	s->r = ax_pread(s->fd, s->g->p, s->g->n, 0);
	s->returned = 1;
	return 0;
}

static atomic_int fc_stop;
static atomic_long fc_ticks;

struct fc_big {
	int fd;
	long ticks_during; /* ticks seen while its preads ran */
};

static intptr_t fc_big_reader(void *arg)
{
	struct fc_big *s = arg;
	char *buf = malloc(FC_BIG);
	if (!buf)
		conf_die("out of memory");
	for (int i = 0; i < 4; i++) {
		long t0 = fc_ticks;
		ssize_t r = ax_pread(s->fd, buf, FC_BIG, 0);
		s->ticks_during += fc_ticks - t0;
		if (!CONF_EQ(r, FC_BIG, "a 16 MiB ax_pread"))
			break;
	}
	free(buf);
	return 0;
}

static intptr_t fc_tick_count(void *arg)
{
	(void)arg;
	while (!fc_stop) {
		ax_sleep(1 * CONF_MS);
		fc_ticks++;
	}
	return 0;
}

static intptr_t fc_main(void *arg)
{
	(void)arg;
	char path[] = "/tmp/axbench-conform-XXXXXX";
	bool engine_file = ax_rt_features(ax_rt_current()) & AX_FEAT_FILE;
	int fd = mkstemp(path);
	if (!CONF_TRUE(fd >= 0, "mkstemp failed"))
		return 0;
	unlink(path);
	char data[4096];
	memset(data, 'd', sizeof data);
	CONF_EQ(ax_pwrite(fd, data, sizeof data, 0), sizeof data, "ax_pwrite");

	/* a cancelled pread queued behind a saturated pool never runs */
	for (int it = 0; it < 3 && !conf_failed(); it++) {
		struct conf_pool_fill f;
		struct conf_guard g;
		struct fc_read s = {.fd = fd, .g = &g};
		ax_task *t;
		if (!CONF_TRUE(conf_pool_fill(&f) > 0, "the blocking pool could "
			       "not be saturated with %d calls", CONF_POOL_MAX))
			break;
		conf_guard_init(&g, sizeof data, 60u + (unsigned)it);
		ax_spawn(&t, fc_reader, &s, "reader");
		ax_sleep((1 + it * 5) * CONF_MS);
		/* without engine file I/O the pool runs it: it cannot have
		 * run yet [AX-FILE-1] */
		if (!engine_file)
			CONF_EQ(s.returned, 0, "an ax_pread behind a saturated "
				"pool returned (it ran on the loop?)");
		ax_cancel(t);
		if (!CONF_TRUE(CONF_JOIN_WITHIN(t, 2 * CONF_S, "a cancelled "
						"ax_pread") != INTPTR_MIN,
			       "a cancelled ax_pread did not return"))
			break;
		size_t first = 0;
		if (s.r == -ECANCELED) {
			CONF_TRUE(conf_guard_check(&g, &first) == 0, "the buffer of "
				  "an ax_pread that returned -ECANCELED was "
				  "written (offset %zu)", first);
			conf_guard_seal(&g);
		} else {
			/* [AX-CANCEL-3]: done before the cancel took effect */
			CONF_TRUE(engine_file, "a cancelled ax_pread queued behind "
				  "a saturated pool returned %zd, not -ECANCELED",
				  s.r);
			CONF_EQ(s.r, sizeof data, "a cancelled ax_pread that "
				"completed first");
		}
		conf_pool_release(&f);
		ax_sleep(50 * CONF_MS);
		if (s.r == -ECANCELED)
			CONF_TRUE(conf_guard_check(&g, &first) == 0, "the buffer of "
				  "an ax_pread that returned -ECANCELED was written "
				  "after the pool was released (offset %zu): the "
				  "cancelled call ran", first);
		conf_guard_free(&g);
	}

	/* the loop keeps ticking while large preads run [AX-FILE-1] */
	CONF_EQ(ftruncate(fd, FC_BIG), 0, "ftruncate");
	ax_task *tk, *rd[4];
	struct fc_big b[4];
	fc_stop = 0;
	fc_ticks = 0;
	ax_spawn(&tk, fc_tick_count, NULL, "ticker");
	for (int i = 0; i < 4; i++) {
		b[i] = (struct fc_big){.fd = fd};
		ax_spawn(&rd[i], fc_big_reader, &b[i], "reader");
	}
	long during = 0;
	for (int i = 0; i < 4; i++) {
		conf_join(rd[i]);
		during += b[i].ticks_during;
	}
	fc_stop = 1;
	conf_join(tk);
	if (!engine_file)
		CONF_TRUE(during > 0, "no tick of a 1 ms timer fired while 16 "
			  "preads of 16 MiB ran (%ld ticks in all): the preads "
			  "blocked the loop", fc_ticks);
	fprintf(stderr, "file.cancel: %ld ticks during preads, %ld in all\n",
		during, fc_ticks);
	close(fd);
	return 0;
}

static void case_file_cancel(void)
{
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.hog_threshold_ns = 0;
	conf_run_opts(fc_main, NULL, &o);
}

const struct conf_case conf_cases_pool[] = {
	{"pool.result", "[AX-POOL-1] ax_blocking runs fn off the loop thread and "
	 "returns its result",
	 "8 tasks make 25 blocking calls each and check every result",
	 0, 10, 0, case_result},
	{"pool.timers", "[AX-POOL-1] other tasks and timers keep running while "
	 "blocking calls run",
	 "a 5 ms ticker beside four concurrent 100 ms blocking calls",
	 0, 10, 0, case_timers},
	{"pool.file", "[AX-FILE-1] ax_pread / ax_pwrite read and write at offsets "
	 "(engine file I/O or the blocking pool) and report errors as -errno",
	 "pwrite and pread at offsets, holes, EOF, bad offset and descriptor",
	 0, 10, 0, case_file},
	{"pool.deadline_waits", "[AX-POOL-2] [AX-GEN-2] a blocking call cut by "
	 "a deadline: one already running is waited for, then -ETIMEDOUT and its "
	 "result discarded; one not yet started is dropped and never runs",
	 "a 60 ms call in a 20 ms scope, three times; a call queued behind a "
	 "saturated pool in a 20 ms scope", 0, 15, 0, case_deadline_waits},
	{"file.cancel", "[AX-FILE-1] [AX-CANCEL-2] [AX-CANCEL-3] a cancelled "
	 "ax_pread queued behind a saturated pool never runs and its buffer is "
	 "untouched (with engine file I/O: or it returns its real result); "
	 "without engine file I/O, preads never block the loop",
	 "cancel a pread behind a saturated pool 3 times; a 1 ms ticker beside "
	 "16 preads of 16 MiB", 0, 20, 0, case_file_cancel},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
