/* test_cancel.c - cancellation: sleep, channel send and receive, join,
 * blocking pool, read; each returns -ECANCELED once; a finished task is
 * harmless to cancel; a cancelled receive loses no message. */
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
	return t_done("cancel");
}
