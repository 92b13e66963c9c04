/* test_chan.c - channels: FIFO, a full channel suspends the sender, close
 * wakes every waiter, try variants, and messages from plain threads. */
#include <pthread.h>

#include "t.h"

static intptr_t producer(void *arg)
{
	ax_chan *c = arg;
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(ax_chan_send(c, &i), 0);
	return 0;
}

static intptr_t waiter(void *arg)
{
	ax_chan *c = arg;
	int v;
	return ax_chan_recv(c, &v);
}

static intptr_t chan_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	CHECK_EQ(ax_chan_create(&c, sizeof(int), 4), 0);
	ax_task *p;
	ax_spawn(&p, producer, c, "producer");
	/* [AX-CHAN-2] the producer is suspended on a full channel */
	CHECK_EQ(ax_chan_len(c), 4);
	for (int i = 0; i < 1000; i++) {
		int v = -1;
		CHECK_EQ(ax_chan_recv(c, &v), 0);
		CHECK_EQ(v, i); /* [AX-CHAN-1] */
	}
	ax_join(p, NULL);
	int v = 7;
	CHECK_EQ(ax_chan_try_recv(c, &v), -EAGAIN);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(ax_chan_try_send(c, &i), 0);
	CHECK_EQ(ax_chan_try_send(c, &v), -EAGAIN);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(ax_chan_try_recv(c, &v), 0);

	/* [AX-CHAN-3] close wakes every waiter */
	ax_task *w[5];
	for (int i = 0; i < 5; i++)
		ax_spawn(&w[i], waiter, c, "waiter");
	CHECK_EQ(ax_chan_close(c), 0);
	CHECK_EQ(ax_chan_close(c), -EPIPE);
	for (int i = 0; i < 5; i++) {
		intptr_t r = 0;
		ax_join(w[i], &r);
		CHECK_EQ(r, -EPIPE);
	}
	CHECK_EQ(ax_chan_send(c, &v), -EPIPE);
	CHECK_EQ(ax_chan_destroy(c), 0);
	return 0;
}

#define XN 200000
static void *thread_sender(void *arg)
{
	ax_chan *c = arg;
	for (int i = 0; i < XN; i++)
		if (ax_chan_send(c, &i) != 0)
			abort();
	ax_chan_close(c);
	return NULL;
}

/* [AX-CHAN-4] sends from a plain thread: lossless, in order, no hang */
static intptr_t xthread_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	pthread_t th;
	CHECK_EQ(ax_chan_create(&c, sizeof(int), 64), 0);
	pthread_create(&th, NULL, thread_sender, c);
	int v, expect = 0, r;
	while ((r = ax_chan_recv(c, &v)) == 0) {
		if (v != expect) {
			CHECK_EQ(v, expect);
			break;
		}
		expect++;
	}
	CHECK_EQ(r, -EPIPE);
	CHECK_EQ(expect, XN);
	pthread_join(th, NULL);
	CHECK_EQ(ax_chan_destroy(c), 0);
	return 0;
}

int main(void)
{
	t_run(chan_main, NULL);
	t_run(xthread_main, NULL);
	CHECK_EQ(ax_chan_create(NULL, 4, 4), -EINVAL);
	ax_chan *c;
	CHECK_EQ(ax_chan_create(&c, 0, 4), -EINVAL);
	return t_done("chan");
}
