/* c_rt.c - conformance cases for the runtime's life: the run call returns
 * when every task has ended, nothing (descriptor, thread) is left behind,
 * destroying a busy runtime is -EBUSY, posts wait for the next run or are
 * dropped at destroy, and suspending calls outside a task are -EPERM. */
#include "conform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* rt.run_waits_all                                                    */
/* ------------------------------------------------------------------ */

static int rw_done[8];

static intptr_t rw_late(void *arg)
{
	int i = (int)(intptr_t)arg;
	ax_sleep((10 + 10 * i) * CONF_MS);
	if (i == 0)
		ax_spawn(NULL, rw_late, (void *)(intptr_t)7, "spawned-late");
	rw_done[i] = 1;
	return 0;
}

static intptr_t rw_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		ax_spawn(NULL, rw_late, (void *)(intptr_t)i, "detached");
	return 7;
}

static void case_run_waits_all(void)
{
	int64_t t0 = ax_now();
	CONF_EQ(conf_run(rw_main, NULL), 7, "the main task's result");
	int64_t el = ax_now() - t0;
	for (int i = 0; i < 4; i++)
		CONF_EQ(rw_done[i], 1, "detached task %d ended before ax_rt_run "
			"returned", i);
	CONF_EQ(rw_done[7], 1, "a task spawned by a detached task ended before "
		"ax_rt_run returned");
	CONF_TRUE(el >= 40 * CONF_MS, "ax_rt_run returned after %lld ms, before "
		  "its detached tasks could have ended", (long long)(el / CONF_MS));
}

/* ------------------------------------------------------------------ */
/* rt.no_fd_left / rt.no_thread_left                                   */
/* ------------------------------------------------------------------ */

static intptr_t nl_echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char b[256];
	ssize_t n;
	while ((n = ax_read(fd, b, sizeof b)) > 0)
		ax_write(fd, b, (size_t)n);
	ax_close(fd);
	return 0;
}

static intptr_t nl_block(void *arg)
{
	return (intptr_t)arg;
}

static void nl_post(void *arg)
{
	(*(int *)arg)++;
}

/* A workload touching every kind of resource a runtime may create. */
static intptr_t nl_main(void *arg)
{
	(void)arg;
	int fds[2], posted = 0;
	char b[8];
	ax_task *t;
	if (CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair")) {
		ax_spawn(&t, nl_echo, (void *)(intptr_t)fds[1], "echo");
		ax_write(fds[0], "ping", 4);
		conf_read_full(fds[0], b, 4);
		ax_close(fds[0]);
		conf_join(t);
	}
	/* a listener left with a cancelled accept, timers left armed by
	 * cancelled sleeps, the pool, a post */
	int l = ax_tcp_listen("127.0.0.1", 0, 8, 0);
	ax_task *s;
	ax_spawn(&s, nl_block, NULL, "noop");
	conf_join(s);
	intptr_t res;
	ax_blocking(nl_block, (void *)(intptr_t)3, &res);
	ax_post(ax_rt_current(), nl_post, &posted);
	struct ax_deadline d;
	ax_deadline_enter(&d, ax_now() + 5 * CONF_MS);
	ax_accept(l);
	ax_deadline_leave(&d);
	ax_close(l);
	ax_sleep(1 * CONF_MS);
	char path[] = "/tmp/axbench-conform-XXXXXX";
	int f = mkstemp(path);
	if (f >= 0) {
		unlink(path);
		ax_pwrite(f, "x", 1, 0);
		ax_pread(f, b, 1, 0);
		close(f);
	}
	return 0;
}

static void case_no_fd_left(void)
{
	char *s0 = conf_fd_snapshot();
	ax_rt *rt = conf_rt(NULL);
	CONF_EQ(ax_rt_destroy(rt), 0, "ax_rt_destroy of a fresh runtime");
	CONF_FDS_SAME(s0, "after the first runtime was created and destroyed");
	/* more, without running: nothing may pile up either */
	char *s1 = conf_fd_snapshot();
	for (int i = 0; i < 20; i++) {
		rt = conf_rt(NULL);
		CONF_EQ(ax_rt_destroy(rt), 0, "ax_rt_destroy of a fresh runtime");
	}
	CONF_FDS_SAME(s1, "after 20 more runtimes were created and destroyed");
	/* after a workload */
	char *s2 = conf_fd_snapshot();
	for (int i = 0; i < 3; i++)
		conf_run(nl_main, NULL);
	CONF_FDS_SAME(s2, "after 3 runtimes ran TCP, timers, the pool, posts "
		      "and files and were destroyed");
	free(s0);
	free(s1);
	free(s2);
}

/* Threads of the process, waiting up to 1 s for ones that are ending. */
static int nt_settle(int want)
{
	int n = conf_thread_count();
	for (int i = 0; i < 100 && n > want; i++) {
		usleep(10000);
		n = conf_thread_count();
	}
	return n;
}

static void case_no_thread_left(void)
{
	int before = conf_thread_count();
	conf_run(nl_main, NULL);
	int after1 = nt_settle(before);
	CONF_EQ(after1, before, "threads of the process after the first "
		"runtime that used the blocking pool was destroyed");
	for (int i = 0; i < 3; i++)
		conf_run(nl_main, NULL);
	CONF_EQ(nt_settle(after1), after1, "threads of the process after 3 more "
		"such runtimes were destroyed");
}

/* ------------------------------------------------------------------ */
/* rt.destroy_busy                                                     */
/* ------------------------------------------------------------------ */

static intptr_t db_sleeper(void *arg)
{
	(void)arg;
	return ax_sleep(20 * CONF_MS);
}

static intptr_t db_inner(void *arg)
{
	(void)arg;
	return 0;
}

static intptr_t db_main(void *arg)
{
	ax_rt *other = arg;
	ax_task *t;
	ax_rt *rt = ax_rt_current();
	ax_spawn(&t, db_sleeper, NULL, "sleeper");
	CONF_EQ(ax_rt_destroy(rt), -EBUSY, "ax_rt_destroy of the running "
		"runtime from its task");
	CONF_EQ(ax_rt_run(rt, db_inner, NULL, NULL), -EBUSY, "ax_rt_run of the "
		"running runtime from its task (re-entrant)");
	CONF_EQ(ax_rt_run(other, db_inner, NULL, NULL), -EBUSY, "ax_rt_run of "
		"another runtime from a task");
	CONF_EQ(conf_join(t), 0, "the sleeper");
	/* a task left ended but never joined */
	ax_spawn(&t, db_inner, NULL, "never-joined");
	return 0;
}

static void case_destroy_busy(void)
{
	ax_rt *rt = conf_rt(NULL), *other = conf_rt(NULL);
	intptr_t res = -1;
	CONF_EQ(ax_rt_run(rt, db_main, other, &res), 0, "ax_rt_run");
	CONF_EQ(res, 0, "main result");
	/* the runtime still works, and destroy frees the unjoined task */
	CONF_EQ(ax_rt_run(rt, db_inner, NULL, &res), 0, "a second ax_rt_run");
	CONF_EQ(ax_rt_destroy(rt), 0, "ax_rt_destroy after the runs (an ended, "
		"unjoined task is freed)");
	CONF_EQ(ax_rt_destroy(other), 0, "ax_rt_destroy of the other runtime");
}

/* ------------------------------------------------------------------ */
/* rt.posts_between_runs                                               */
/* ------------------------------------------------------------------ */

static int pb_ran[4];
static pthread_t pb_loop;
static int pb_wrong_thread;

static void pb_fn(void *arg)
{
	pb_ran[(intptr_t)arg]++;
	if (!pthread_equal(pthread_self(), pb_loop))
		pb_wrong_thread++;
}

static intptr_t pb_main(void *arg)
{
	int which = (int)(intptr_t)arg;
	ax_sleep(5 * CONF_MS);
	CONF_EQ(pb_ran[which], 1, "a post made before ax_rt_run ran once during "
		"the run");
	return 0;
}

static void case_posts_between_runs(void)
{
	ax_rt *rt = conf_rt(NULL);
	pb_loop = pthread_self();
	CONF_EQ(ax_post(rt, pb_fn, (void *)0), 0, "ax_post before the first run");
	CONF_EQ(ax_post(NULL, pb_fn, NULL), -EINVAL, "ax_post(NULL runtime)");
	CONF_EQ(ax_post(rt, NULL, NULL), -EINVAL, "ax_post(NULL function)");
	usleep(5000);
	CONF_EQ(pb_ran[0], 0, "a post ran before its runtime ran");
	CONF_EQ(ax_rt_run(rt, pb_main, (void *)0, NULL), 0, "first run");
	ax_post(rt, pb_fn, (void *)1);
	CONF_EQ(pb_ran[1], 0, "a post between runs ran at once");
	CONF_EQ(ax_rt_run(rt, pb_main, (void *)1, NULL), 0, "second run");
	ax_post(rt, pb_fn, (void *)2);
	CONF_EQ(ax_rt_destroy(rt), 0, "ax_rt_destroy with a post queued");
	CONF_EQ(pb_ran[2], 0, "a post still queued at destroy ran (it must be "
		"dropped)");
	CONF_EQ(pb_wrong_thread, 0, "posts run off the runtime's thread");
}

/* ------------------------------------------------------------------ */
/* rt.eperm                                                            */
/* ------------------------------------------------------------------ */

static intptr_t ep_fn(void *arg)
{
	return (intptr_t)arg;
}

static intptr_t ep_noop(void *arg)
{
	(void)arg;
	return 0;
}

static void case_eperm(void)
{
	char b[4];
	ax_chan *c;
	struct ax_deadline d;
	struct ax_rt_opts o;
	ax_rt *rt;
	/* no runtime on this thread */
	CONF_TRUE(ax_current() == NULL && ax_rt_current() == NULL,
		  "ax_current / ax_rt_current outside a runtime");
	CONF_EQ(ax_sleep(1), -EPERM, "ax_sleep outside a task");
	CONF_EQ(ax_sleep_until(0), -EPERM, "ax_sleep_until outside a task");
	CONF_EQ(ax_yield(), -EPERM, "ax_yield outside a task");
	CONF_EQ(ax_read(0, b, 1), -EPERM, "ax_read outside a task");
	CONF_EQ(ax_write(1, b, 1), -EPERM, "ax_write outside a task");
	CONF_EQ(ax_accept(0), -EPERM, "ax_accept outside a task");
	CONF_EQ(ax_connect("127.0.0.1", 1), -EPERM, "ax_connect outside a task");
	CONF_EQ(ax_pread(0, b, 1, 0), -EPERM, "ax_pread outside a task");
	CONF_EQ(ax_blocking(ep_fn, NULL, NULL), -EPERM, "ax_blocking outside a "
		"task");
	CONF_EQ(ax_spawn(NULL, ep_fn, NULL, "x"), -EPERM, "ax_spawn outside a "
		"runtime");
	CONF_EQ(ax_deadline_enter(&d, 0), -EPERM, "ax_deadline_enter outside a "
		"task");
	/* channel calls without a runtime are allowed (they block the
	 * thread); the non-blocking ones must answer at once */
	ax_chan_create(&c, 1, 1);
	CONF_EQ(ax_chan_try_recv(c, b), -EAGAIN, "try_recv outside a runtime");
	CONF_EQ(ax_chan_send(c, b), 0, "ax_chan_send outside a runtime (room)");
	CONF_EQ(ax_chan_recv(c, b), 0, "ax_chan_recv outside a runtime (element)");
	ax_chan_destroy(c);
	/* creation errors */
	CONF_EQ(ax_rt_create(&rt, "no-such-runtime", NULL), -ENOENT,
		"ax_rt_create of an unknown driver");
	ax_rt_opts_init(&o);
	o.stack_size = 1024;
	CONF_EQ(ax_rt_create(&rt, conf_runtime(), &o), -EINVAL,
		"ax_rt_create with a 1 KiB stack");
	ax_rt_opts_init(&o);
	o.pool_threads = 0;
	CONF_EQ(ax_rt_create(&rt, conf_runtime(), &o), -EINVAL,
		"ax_rt_create with 0 pool threads");
	/* inside a run, on this thread, outside any task: posts (see
	 * post.context); after the run, outside again */
	conf_run(ep_noop, NULL);
	CONF_EQ(ax_yield(), -EPERM, "ax_yield after a run, outside a task");
}

const struct conf_case conf_cases_rt[] = {
	{"rt.run_waits_all", "[AX-RT-1] ax_rt_run returns when every task, main "
	 "and spawned (detached ones included), has ended",
	 "main returns at once; detached tasks sleep, and one spawns another",
	 0, 10, 0, case_run_waits_all},
	{"rt.no_fd_left", "[AX-RT-2] after ax_rt_destroy no descriptor the "
	 "runtime created is left open",
	 "compare /proc/self/fd before and after runtimes doing TCP, timers, "
	 "pool, posts, files", AX_FEAT_TCP, 15, 0, case_no_fd_left},
	{"rt.no_thread_left", "[AX-RT-2] after ax_rt_destroy no thread the "
	 "runtime created is left behind",
	 "compare /proc/self/task before and after runtimes that used the pool",
	 AX_FEAT_TCP, 15, 0, case_no_thread_left},
	{"rt.destroy_busy", "[AX-RT-3] [AX-RT-5] destroying a running runtime is -EBUSY "
	 "(not a crash); ax_rt_run re-entered from a task is -EBUSY",
	 "destroy and re-run from inside a task; destroy after the run",
	 0, 10, 0, case_destroy_busy},
	{"rt.posts_between_runs", "[AX-POST-1] [AX-POST-3] posts made while the runtime is "
	 "not running run at its next ax_rt_run; posts queued at destroy are "
	 "dropped", "post before, between and after runs", 0, 10, 0,
	 case_posts_between_runs},
	{"rt.eperm", "[AX-GEN-1] [AX-RT-4] suspending calls outside a task return -EPERM; "
	 "ax_rt_create rejects unknown drivers and bad options",
	 "every suspending call from plain code; bad ax_rt_create arguments",
	 0, 10, 0, case_eperm},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
