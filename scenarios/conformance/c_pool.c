/* c_pool.c - conformance cases for blocking offload and files: results come
 * back from the pool, timers keep firing on time while four 100 ms
 * blocking calls run, and pread/pwrite work without blocking the loop. */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
