/* test_cancel.c - cancellation: sleep, channel send and receive, join,
 * blocking pool, read; each returns -ECANCELED once; a finished task is
 * harmless to cancel; a cancelled receive loses no message; an interrupted
 * join whose target ends before the joiner resumes leaves the target to be
 * joined again. */
#include <fcntl.h>
#include <unistd.h>

#include "t.h"

static intptr_t sleep_long(void *arg)
{
	(void)arg;
	int r = ax_sleep(10ll * 1000000000);
	/* consumed: the next call behaves normally [AX-CANCEL-1] */
	CHECK_EQ(ax_sleep(1000), 0);
	return r;
}

static intptr_t recv_one(void *arg)
{
	int v;
	return ax_chan_recv(arg, &v);
}

static intptr_t send_one(void *arg)
{
	int v = 5;
	return ax_chan_send(arg, &v);
}

static intptr_t pool_fn(void *arg)
{
	(void)arg;
	usleep(50000);
	return 9;
}

static intptr_t pool_call(void *arg)
{
	(void)arg;
	intptr_t res = 0;
	return ax_blocking(pool_fn, NULL, &res);
}

static intptr_t read_pipe(void *arg)
{
	int fd = *(int *)arg;
	char buf[16];
	return ax_read(fd, buf, sizeof buf);
}

static intptr_t nothing(void *arg)
{
	(void)arg;
	return 3;
}

static intptr_t yield_once(void *arg)
{
	ax_yield();
	return (intptr_t)arg;
}

static intptr_t sleep_1ms(void *arg)
{
	ax_sleep(1000000);
	return (intptr_t)arg;
}

static intptr_t join_arg(void *arg)
{
	intptr_t r = INTPTR_MIN;
	int e = ax_join(arg, &r);
	return e < 0 ? e : r;
}

/* Yields once, so that it runs after a target spawned before it, then
 * tries to join and to detach that target. */
static intptr_t yield_then_claim(void *arg)
{
	ax_yield();
	int j = ax_join(arg, NULL);
	int d = ax_detach(arg);
	return j == -EINVAL && d == -EINVAL ? 0 : -1;
}

static intptr_t join_arg_within_2ms(void *arg)
{
	struct ax_deadline d;
	intptr_t r = INTPTR_MIN;
	ax_deadline_enter(&d, ax_now() + 2000000);
	int e = ax_join(arg, &r);
	ax_deadline_leave(&d);
	return e < 0 ? e : r;
}

/* [AX-TASK-2] The interrupt of a join takes effect when it wakes the
 * joiner; a target that ends after that, but before the joiner runs again,
 * is not the joiner's any more: the join returns the interrupt's error and
 * the target can be joined again (once: it used to be freed by both). */
static intptr_t join_race_main(void *arg)
{
	(void)arg;
	ax_task *t, *j;
	intptr_t r = 0;

	/* cancel: t yields (ready), j parks on it; the cancel readies j
	 * behind t, so t ends before j resumes (eager spawn, FIFO) */
	ax_spawn(&t, yield_once, (void *)(intptr_t)77, "yield-77");
	ax_spawn(&j, join_arg, t, "joiner");
	CHECK_EQ(ax_cancel(j), 0);
	CHECK_EQ(ax_join(j, &r), 0);
	CHECK_EQ(r, -ECANCELED);
	r = 0;
	CHECK_EQ(ax_join(t, &r), 0);
	CHECK_EQ(r, 77);

	/* deadline: t's sleep (1 ms) and j's deadline (2 ms) both pass while
	 * this task runs; they fire in one poll in deadline order, so t ends
	 * after j's deadline readied j and before j resumes */
	ax_spawn(&t, sleep_1ms, (void *)(intptr_t)78, "sleep-78");
	ax_spawn(&j, join_arg_within_2ms, t, "joiner-2ms");
	int64_t end = ax_now() + 20000000;
	while (ax_now() < end)
		;
	CHECK_EQ(ax_join(j, &r), 0);
	CHECK_EQ(r, -ETIMEDOUT);
	r = 0;
	CHECK_EQ(ax_join(t, &r), 0);
	CHECK_EQ(r, 78);

	/* a target that ended stays its joiner's until the joiner resumed:
	 * k runs between t's end and j's resumption, and can neither join
	 * nor detach (free) t */
	ax_task *k;
	ax_spawn(&t, yield_once, (void *)(intptr_t)79, "yield-79");
	ax_spawn(&j, join_arg, t, "joiner");
	ax_spawn(&k, yield_then_claim, t, "claimer");
	CHECK_EQ(ax_join(k, &r), 0);
	CHECK_EQ(r, 0);
	CHECK_EQ(ax_join(j, &r), 0);
	CHECK_EQ(r, 79);
	return 0;
}

static intptr_t cancel_main(void *arg)
{
	(void)arg;
	ax_task *t;
	intptr_t r;

	ax_spawn(&t, sleep_long, NULL, "sleeper");
	CHECK_EQ(ax_cancel(t), 0);
	ax_join(t, &r);
	CHECK_EQ(r, -ECANCELED);

	ax_chan *c;
	ax_chan_create(&c, sizeof(int), 1);
	ax_spawn(&t, recv_one, c, "recv");
	ax_cancel(t);
	ax_join(t, &r);
	CHECK_EQ(r, -ECANCELED);
	CHECK_EQ(ax_chan_try_send(c, &(int){1}), 0);
	ax_spawn(&t, send_one, c, "send");
	ax_cancel(t);
	ax_join(t, &r);
	CHECK_EQ(r, -ECANCELED);
	CHECK_EQ(ax_chan_len(c), 1);

	/* [AX-CANCEL-3] a receive that got its element keeps it */
	int v;
	ax_chan_try_recv(c, &v);
	ax_spawn(&t, recv_one, c, "recv2");
	CHECK_EQ(ax_chan_try_send(c, &(int){2}), 0); /* handed to recv2 */
	ax_cancel(t);
	ax_join(t, &r);
	CHECK_EQ(r, 0);
	CHECK_EQ(ax_chan_len(c), 0);
	ax_chan_destroy(c);

	/* blocking pool: a running call is waited for, then -ECANCELED */
	ax_spawn(&t, pool_call, NULL, "pool");
	ax_sleep(5000000);
	ax_cancel(t);
	ax_join(t, &r);
	CHECK_EQ(r, -ECANCELED);

	/* read on a pipe */
	int p[2];
	CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	ax_spawn(&t, read_pipe, &p[0], "reader");
	ax_cancel(t);
	ax_join(t, &r);
	CHECK_EQ(r, -ECANCELED);
	ax_close(p[0]);
	ax_close(p[1]);

	/* [AX-CANCEL-4] cancelling a finished task is harmless */
	ax_spawn(&t, nothing, NULL, "nothing");
	CHECK_EQ(ax_cancel(t), 0);
	ax_join(t, &r);
	CHECK_EQ(r, 3);

	/* a pending cancel is consumed by the next suspending call */
	ax_cancel(ax_current());
	CHECK_EQ(ax_yield(), -ECANCELED);
	CHECK_EQ(ax_yield(), 0);
	return 0;
}

int main(void)
{
	t_run(cancel_main, NULL);
	t_run(join_race_main, NULL);
	return t_done("cancel");
}
