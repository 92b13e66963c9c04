/* c_chan.c - conformance cases for channels: FIFO order through the buffer
 * and through waiting senders and receivers, a full channel suspends its
 * sender, close wakes every waiter, and a million messages from other
 * threads and another runtime arrive complete and in order. */
#include "conform.h"

#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* chan.fifo                                                           */
/* ------------------------------------------------------------------ */

struct fe {
	int seq;
	char pad[20]; /* elements are copied whole, not as ints */
	int check;
};

struct ff {
	ax_chan *c;
	int value;
	int r;
};

static intptr_t ff_sender(void *arg)
{
	struct ff *s = arg;
	struct fe e = {.seq = s->value, .check = ~s->value};
	memset(e.pad, s->value & 0xff, sizeof e.pad);
	s->r = ax_chan_send(s->c, &e);
	return 0;
}

static intptr_t ff_receiver(void *arg)
{
	struct ff *s = arg;
	struct fe e;
	s->r = ax_chan_recv(s->c, &e);
	return e.seq == ~e.check ? e.seq : -1;
}

static intptr_t ff_stream_tx(void *arg)
{
	ax_chan *c = arg;
	for (int i = 0; i < 100000; i++) {
		struct fe e = {.seq = i, .check = ~i};
		if (ax_chan_send(c, &e) < 0)
			return -1;
	}
	return 0;
}

static intptr_t ff_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	struct fe e;
	struct ff s[3];
	ax_task *t[3];
	ax_chan *bad = NULL;
	CONF_EQ(ax_chan_create(&bad, 0, 4), -EINVAL, "ax_chan_create(elem 0)");
	CONF_EQ(ax_chan_create(&bad, 8, 0), -EINVAL, "ax_chan_create(capacity 0)");
	CONF_EQ(ax_chan_create(&c, sizeof(struct fe), 4), 0, "ax_chan_create");

	/* buffered elements, then senders waiting on the full channel */
	for (int i = 1; i <= 4; i++) {
		e = (struct fe){.seq = i, .check = ~i};
		CONF_EQ(ax_chan_try_send(c, &e), 0, "try_send %d", i);
	}
	for (int i = 0; i < 3; i++) {
		s[i] = (struct ff){c, 5 + i, 1};
		ax_spawn(&t[i], ff_sender, &s[i], "sender");
	}
	for (int i = 1; i <= 7; i++) {
		CONF_EQ(ax_chan_recv(c, &e), 0, "recv %d", i);
		CONF_EQ(e.seq, i, "element %d in order (4 buffered, then 3 "
			"waiting senders)", i);
		CONF_EQ(e.check, ~i, "element %d copied whole", i);
	}
	for (int i = 0; i < 3; i++) {
		CONF_JOIN_WITHIN(t[i], 2 * CONF_S, "a sender waiting on the full "
				 "channel");
		CONF_EQ(s[i].r, 0, "waiting sender %d", i);
	}
	/* receivers waiting on the empty channel are served in order */
	for (int i = 0; i < 3; i++) {
		s[i] = (struct ff){c, 0, 1};
		ax_spawn(&t[i], ff_receiver, &s[i], "receiver");
	}
	for (int i = 0; i < 3; i++) {
		e = (struct fe){.seq = 10 + i, .check = ~(10 + i)};
		CONF_EQ(ax_chan_send(c, &e), 0, "send to waiting receivers");
	}
	for (int i = 0; i < 3; i++)
		CONF_EQ(CONF_JOIN_WITHIN(t[i], 2 * CONF_S, "a waiting receiver"),
			10 + i, "element of waiting receiver %d (first waiting, "
			"first served)", i);
	/* a stream between two tasks */
	ax_task *tx;
	ax_spawn(&tx, ff_stream_tx, c, "stream");
	for (int i = 0; i < 100000; i++) {
		if (ax_chan_recv(c, &e) < 0 ||
		    !CONF_EQ(e.seq, i, "streamed element %d", i)) {
			ax_chan_close(c); /* the sender must not wait forever */
			break;
		}
	}
	CONF_JOIN_WITHIN(tx, 5 * CONF_S, "the streaming sender");
	if (conf_failed()) {
		ax_chan_destroy(c);
		return 0;
	}
	CONF_EQ(ax_chan_try_recv(c, &e), -EAGAIN, "try_recv on an empty channel");
	CONF_EQ(ax_chan_destroy(c), 0, "ax_chan_destroy");
	return 0;
}

static void case_fifo(void)
{
	conf_run(ff_main, NULL);
}

/* ------------------------------------------------------------------ */
/* chan.full_suspends                                                  */
/* ------------------------------------------------------------------ */

static int fs_sent;

static intptr_t fs_sender(void *arg)
{
	ax_chan *c = arg;
	for (int i = 0; i < 3; i++) {
		if (ax_chan_send(c, &i) < 0)
			return -1;
		fs_sent++;
	}
	return 0;
}

static intptr_t fs_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	ax_task *t;
	int v = 9;
	ax_chan_create(&c, sizeof(int), 2);
	ax_spawn(&t, fs_sender, c, "sender");
	/* spawn is eager: the sender ran until the third send suspended */
	CONF_EQ(fs_sent, 2, "sends completed on a channel of capacity 2");
	CONF_EQ(ax_chan_len(c), 2, "ax_chan_len of the full channel");
	ax_sleep(10 * CONF_MS);
	CONF_EQ(fs_sent, 2, "sends completed 10 ms later (still suspended)");
	CONF_EQ(ax_chan_try_send(c, &v), -EAGAIN, "try_send on a full channel");
	CONF_EQ(ax_chan_recv(c, &v), 0, "recv");
	CONF_EQ(v, 0, "first element");
	ax_yield();
	CONF_EQ(fs_sent, 3, "sends completed after a receive made room");
	CONF_EQ(ax_chan_len(c), 2, "ax_chan_len");
	CONF_EQ(conf_join(t), 0, "the sender");
	ax_chan_recv(c, &v);
	CONF_EQ(v, 1, "second element");
	ax_chan_recv(c, &v);
	CONF_EQ(v, 2, "third element");
	ax_chan_destroy(c);
	return 0;
}

static void case_full_suspends(void)
{
	conf_run(fs_main, NULL);
}

/* ------------------------------------------------------------------ */
/* chan.close_wakes                                                    */
/* ------------------------------------------------------------------ */

static intptr_t cw_recv(void *arg)
{
	int v;
	return ax_chan_recv(arg, &v);
}

static intptr_t cw_send(void *arg)
{
	int v = 5;
	return ax_chan_send(arg, &v);
}

static intptr_t cwk_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	ax_task *t[5];
	int v;

	/* receivers on an empty channel */
	ax_chan_create(&c, sizeof(int), 2);
	for (int i = 0; i < 5; i++)
		ax_spawn(&t[i], cw_recv, c, "receiver");
	CONF_EQ(ax_chan_destroy(c), -EBUSY, "ax_chan_destroy with waiters");
	CONF_EQ(ax_chan_close(c), 0, "ax_chan_close");
	CONF_EQ(ax_chan_close(c), -EPIPE, "ax_chan_close, twice");
	for (int i = 0; i < 5; i++)
		CONF_EQ(CONF_JOIN_WITHIN(t[i], 2 * CONF_S, "a receiver waiting when "
					 "the channel was closed"),
			-EPIPE, "waiting receiver %d after close", i);
	CONF_EQ(ax_chan_destroy(c), 0, "ax_chan_destroy after the waiters left");

	/* senders on a full channel; the buffer drains after close */
	ax_chan_create(&c, sizeof(int), 2);
	for (v = 1; v <= 2; v++)
		ax_chan_try_send(c, &v);
	for (int i = 0; i < 3; i++)
		ax_spawn(&t[i], cw_send, c, "sender");
	CONF_EQ(ax_chan_close(c), 0, "ax_chan_close");
	for (int i = 0; i < 3; i++)
		CONF_EQ(CONF_JOIN_WITHIN(t[i], 2 * CONF_S, "a sender waiting when "
					 "the channel was closed"),
			-EPIPE, "waiting sender %d after close", i);
	v = 3;
	CONF_EQ(ax_chan_send(c, &v), -EPIPE, "ax_chan_send after close");
	CONF_EQ(ax_chan_try_send(c, &v), -EPIPE, "ax_chan_try_send after close");
	CONF_EQ(ax_chan_recv(c, &v), 0, "recv of a buffered element after close");
	CONF_EQ(v, 1, "first buffered element");
	CONF_EQ(ax_chan_try_recv(c, &v), 0, "try_recv of a buffered element");
	CONF_EQ(v, 2, "second buffered element");
	CONF_EQ(ax_chan_recv(c, &v), -EPIPE, "recv on a closed, drained channel");
	CONF_EQ(ax_chan_try_recv(c, &v), -EPIPE, "try_recv on a closed, drained "
		"channel");
	ax_chan_destroy(c);
	return 0;
}

static void case_close_wakes(void)
{
	conf_run(cwk_main, NULL);
}

/* ------------------------------------------------------------------ */
/* chan.xthread_1m                                                     */
/* ------------------------------------------------------------------ */

#define XM_THREADS 2
#define XM_PER_THREAD 400000
#define XM_RT_MSGS 200000
#define XM_TOTAL (XM_THREADS * XM_PER_THREAD + XM_RT_MSGS)
#define XM_BACK 100000

struct xm_msg {
	int sender;
	int seq;
};

struct xm {
	ax_chan *c, *back;
	int id;
};

static void *xm_plain(void *arg)
{
	struct xm *s = arg;
	for (int i = 0; i < XM_PER_THREAD; i++) {
		struct xm_msg m = {s->id, i};
		int r = ax_chan_send(s->c, &m);
		if (r < 0)
			conf_die("thread %d: ax_chan_send returned %d", s->id, r);
	}
	return NULL;
}

static intptr_t xm_rt_sender(void *arg)
{
	struct xm *s = arg;
	for (int i = 0; i < XM_RT_MSGS; i++) {
		struct xm_msg m = {s->id, i};
		if (!CONF_EQ(ax_chan_send(s->c, &m), 0, "sender runtime: send"))
			return -1;
	}
	return 0;
}

static void *xm_rt_thread(void *arg)
{
	conf_run(xm_rt_sender, arg);
	return NULL;
}

/* A plain thread receiving what the main runtime's task sends back. */
static void *xm_back_rx(void *arg)
{
	struct xm *s = arg;
	for (int i = 0; i < XM_BACK; i++) {
		int v = -1;
		int r = ax_chan_recv(s->back, &v);
		if (r < 0 || v != i)
			conf_die("back channel: expected element %d, got %d (r=%d)",
				 i, v, r);
	}
	return NULL;
}

static intptr_t xm_main(void *arg)
{
	(void)arg;
	ax_chan *c, *back;
	pthread_t th[XM_THREADS + 2];
	struct xm s[XM_THREADS + 2];
	int next[XM_THREADS + 1] = {0};
	ax_chan_create(&c, sizeof(struct xm_msg), 256);
	ax_chan_create(&back, sizeof(int), 64);
	for (int i = 0; i < XM_THREADS + 2; i++)
		s[i] = (struct xm){c, back, i};
	for (int i = 0; i < XM_THREADS; i++)
		conf_thread(&th[i], xm_plain, &s[i]);
	conf_thread(&th[XM_THREADS], xm_rt_thread, &s[XM_THREADS]);
	conf_thread(&th[XM_THREADS + 1], xm_back_rx, &s[XM_THREADS + 1]);

	/* this task receives the million and sends back 100k meanwhile */
	int sent_back = 0;
	for (int k = 0; k < XM_TOTAL; k++) {
		struct xm_msg m = {-1, -1};
		struct ax_deadline d;
		ax_deadline_enter(&d, ax_now() + 5 * CONF_S);
		int r = ax_chan_recv(c, &m);
		ax_deadline_leave(&d);
		if (r == -ETIMEDOUT)
			conf_die("no message for 5 s after %d of %d (lost wake-up?)",
				 k, XM_TOTAL);
		if (!CONF_EQ(r, 0, "ax_chan_recv") ||
		    !CONF_TRUE(m.sender >= 0 && m.sender <= XM_THREADS,
			       "message from unknown sender %d", m.sender) ||
		    !CONF_EQ(m.seq, next[m.sender], "next sequence number of "
			     "sender %d (in order, none lost or duplicated)",
			     m.sender))
			break;
		next[m.sender]++;
		if (sent_back < XM_BACK && (k & 7) == 0) {
			ax_chan_send(back, &sent_back);
			sent_back++;
		}
	}
	while (sent_back < XM_BACK) {
		ax_chan_send(back, &sent_back);
		sent_back++;
	}
	for (int i = 0; i < XM_THREADS + 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < XM_THREADS; i++)
		CONF_EQ(next[i], XM_PER_THREAD, "messages from thread %d", i);
	CONF_EQ(next[XM_THREADS], XM_RT_MSGS, "messages from the other runtime");
	ax_chan_destroy(c);
	ax_chan_destroy(back);
	return 0;
}

static void case_xthread_1m(void)
{
	conf_run(xm_main, NULL);
}

/* ------------------------------------------------------------------ */
/* chan.close_thread                                                   */
/* ------------------------------------------------------------------ */

struct ct {
	ax_chan *c;
	atomic_int waiting;
};

static intptr_t ct_receiver(void *arg)
{
	struct ct *s = arg;
	int v;
	s->waiting++;
	return ax_chan_recv(s->c, &v);
}

static intptr_t ct_sender(void *arg)
{
	struct ct *s = arg;
	int v = 1;
	s->waiting++;
	return ax_chan_send(s->c, &v);
}

static void *ct_closer(void *arg)
{
	usleep(20000); /* the loop is asleep in its engine by then */
	if (ax_chan_close(arg) != 0)
		conf_die("ax_chan_close from a plain thread failed");
	return NULL;
}

static intptr_t ct_main(void *arg)
{
	(void)arg;
	struct ct r = {0}, w = {0};
	ax_task *rt[3], *st[3];
	pthread_t th;
	int v = 0;
	/* receivers on an empty channel, senders on a full one */
	ax_chan_create(&r.c, sizeof(int), 1);
	ax_chan_create(&w.c, sizeof(int), 1);
	ax_chan_try_send(w.c, &v);
	for (int i = 0; i < 3; i++) {
		ax_spawn(&rt[i], ct_receiver, &r, "receiver");
		ax_spawn(&st[i], ct_sender, &w, "sender");
	}
	CONF_EQ(r.waiting + w.waiting, 6, "tasks waiting");
	conf_thread(&th, ct_closer, r.c);
	for (int i = 0; i < 3; i++)
		CONF_EQ(CONF_JOIN_WITHIN(rt[i], 2 * CONF_S, "a receiver waiting "
					 "when a plain thread closed the channel"),
			-EPIPE, "a receive woken by a close from a plain thread");
	pthread_join(th, NULL);
	conf_thread(&th, ct_closer, w.c);
	for (int i = 0; i < 3; i++)
		CONF_EQ(CONF_JOIN_WITHIN(st[i], 2 * CONF_S, "a sender waiting "
					 "when a plain thread closed the channel"),
			-EPIPE, "a send woken by a close from a plain thread");
	pthread_join(th, NULL);
	CONF_EQ(ax_chan_recv(w.c, &v), 0, "draining the closed channel");
	CONF_EQ(ax_chan_recv(w.c, &v), -EPIPE, "a receive on the drained, "
		"closed channel");
	CONF_EQ(ax_chan_destroy(r.c), 0, "ax_chan_destroy");
	CONF_EQ(ax_chan_destroy(w.c), 0, "ax_chan_destroy");
	return 0;
}

static void case_close_thread(void)
{
	conf_run(ct_main, NULL);
}

/* ------------------------------------------------------------------ */
/* chan.cancel_race                                                    */
/* ------------------------------------------------------------------ */

/* Receivers are cancelled at random moments while producers feed them:
 * cancels land before, during and after the hand-over of an element. A
 * receive that returned -ECANCELED took nothing ([AX-CANCEL-3]), so every
 * element arrives exactly once and each producer's in order. Half the
 * receivers wait under a deadline (a timer beside the wait). On a
 * multi-worker runtime the waker, the receiver and the canceller sit on
 * different workers. */

#define CR_PROD 2
#define CR_CONS 4
#define CR_PER 20000          /* elements per producer, at least */
#define CR_CANCELS 1000       /* wanted; fewer than 100 fails */

struct cr_case {
	ax_chan *c;
	ax_task *cons[CR_CONS];
	atomic_int done;                 /* the cancellers stop */
	atomic_long sum, count, cancels;
	atomic_long sent_sum, sent;      /* what the producers sent */
	atomic_int disorder, bad;
	int64_t start;
};

struct cr_arg {
	struct cr_case *s;
	long id;
};

/* Sends CR_PER elements, then goes on until the receivers saw
 * CR_CANCELS cancels or 5 s passed (a busy machine, many workers). */
static intptr_t cr_prod(void *arg)
{
	struct cr_arg *a = arg;
	struct cr_case *s = a->s;
	for (long k = 0;; k++) {
		if (k >= CR_PER && (atomic_load(&s->cancels) >= CR_CANCELS ||
				    ax_now() - s->start > 5 * CONF_S))
			break;
		long v = (a->id << 32) | k;
		if (ax_chan_send(s->c, &v) != 0)
			return -1;
		atomic_fetch_add(&s->sent_sum, k);
		atomic_fetch_add(&s->sent, 1);
		if (k % 128 == 0)
			conf_spin(2 * CONF_US); /* work, so tasks spread */
	}
	return 0;
}

static intptr_t cr_cons(void *arg)
{
	struct cr_arg *a = arg;
	struct cr_case *s = a->s;
	long last[CR_PROD] = {-1, -1};
	for (;;) {
		long v = -1;
		struct ax_deadline d;
		if (a->id % 2)
			ax_deadline_enter(&d, ax_now() + 20 * CONF_S);
		int r = ax_chan_recv(s->c, &v);
		if (a->id % 2)
			ax_deadline_leave(&d);
		if (r == -ECANCELED) {
			if (v != -1) /* the buffer of a cancelled receive */
				atomic_fetch_add(&s->bad, 1);
			atomic_fetch_add(&s->cancels, 1);
			continue;
		}
		if (r == -EPIPE)
			return 0;
		if (r != 0)
			return r;
		long id = v >> 32, k = v & 0xffffffff;
		if (id < 0 || id >= CR_PROD || k <= last[id])
			atomic_fetch_add(&s->disorder, 1);
		else
			last[id] = k;
		atomic_fetch_add(&s->sum, k);
		atomic_fetch_add(&s->count, 1);
	}
}

static intptr_t cr_canceller(void *arg)
{
	struct cr_arg *a = arg;
	struct cr_case *s = a->s;
	unsigned x = 17u + (unsigned)a->id;
	while (!atomic_load(&s->done)) {
		x = x * 1103515245u + 12345u;
		ax_cancel(s->cons[(x >> 16) % CR_CONS]);
		if (x & 0x100000)
			ax_yield();
		else
			conf_spin((x >> 24) % 8 * CONF_US);
	}
	return 0;
}

static intptr_t cr_main(void *arg)
{
	(void)arg;
	static struct cr_case s;
	memset(&s, 0, sizeof s);
	s.start = ax_now();
	struct cr_arg pa[CR_PROD], ca[CR_CONS], ka[2];
	ax_task *p[CR_PROD], *k[2];
	ax_chan_create(&s.c, sizeof(long), 1);
	for (int i = 0; i < CR_CONS; i++) {
		ca[i] = (struct cr_arg){&s, i};
		ax_spawn(&s.cons[i], cr_cons, &ca[i], "receiver");
	}
	for (int i = 0; i < 2; i++) {
		ka[i] = (struct cr_arg){&s, i};
		ax_spawn(&k[i], cr_canceller, &ka[i], "canceller");
	}
	for (int i = 0; i < CR_PROD; i++) {
		pa[i] = (struct cr_arg){&s, i};
		ax_spawn(&p[i], cr_prod, &pa[i], "producer");
	}
	for (int i = 0; i < CR_PROD; i++)
		CONF_EQ(CONF_JOIN_WITHIN(p[i], 30 * CONF_S, "a producer"), 0,
			"producer %d's sends", i);
	ax_chan_close(s.c);
	atomic_store(&s.done, 1);
	for (int i = 0; i < 2; i++)
		conf_join(k[i]);
	for (int i = 0; i < CR_CONS; i++)
		CONF_EQ(CONF_JOIN_WITHIN(s.cons[i], 10 * CONF_S, "a receiver"),
			0, "receiver %d's end (-EPIPE after the close)", i);
	fprintf(stderr, "chan.cancel_race: %ld receives cancelled, %ld "
		"elements\n", atomic_load(&s.cancels), atomic_load(&s.sent));
	CONF_TRUE(atomic_load(&s.sent) >= (long)CR_PROD * CR_PER, "only %ld "
		  "elements sent", atomic_load(&s.sent));
	CONF_EQ(atomic_load(&s.count), atomic_load(&s.sent), "elements "
		"received of those sent, across %ld cancelled receives (none "
		"lost or duplicated)", atomic_load(&s.cancels));
	CONF_EQ(atomic_load(&s.sum), atomic_load(&s.sent_sum), "sum of the "
		"elements received and sent");
	CONF_EQ(atomic_load(&s.disorder), 0, "elements of one producer seen "
		"out of order by a receiver");
	CONF_EQ(atomic_load(&s.bad), 0, "cancelled receives that wrote their "
		"buffer");
	CONF_TRUE(atomic_load(&s.cancels) >= 100, "only %ld receives were "
		  "cancelled (the case did not exercise the race)",
		  atomic_load(&s.cancels));
	ax_chan_destroy(s.c);
	return 0;
}

static void case_cancel_race(void)
{
	conf_run(cr_main, NULL);
}

const struct conf_case conf_cases_chan[] = {
	{"chan.fifo", "[AX-CHAN-1] elements are received in send order, none lost "
	 "or duplicated, whether buffered or handed to waiting tasks",
	 "4 buffered + 3 waiting senders; 3 waiting receivers; a 100k stream",
	 0, 10, 0, case_fifo},
	{"chan.full_suspends", "[AX-CHAN-2] ax_chan_send suspends while the "
	 "channel is full and resumes once a receive makes room",
	 "a sender of 3 elements on a channel of 2", AX_FEAT_ONE_WORKER, 10, 0,
	 case_full_suspends},
	{"chan.close_wakes", "[AX-CHAN-3] close wakes every waiting sender and "
	 "receiver; sends return -EPIPE, receives drain then return -EPIPE",
	 "5 waiting receivers, 3 waiting senders, drain after close",
	 0, 10, 0, case_close_wakes},
	{"chan.xthread_1m", "[AX-CHAN-4] [AX-CHAN-1] channels work from plain "
	 "threads and other runtimes: 1M messages, none lost, in order per "
	 "sender, no hang",
	 "2 threads and a second runtime send 1M; the task sends 100k back to "
	 "a thread", AX_FEAT_XTHREAD, 60, CONF_SERIAL, case_xthread_1m},
	{"chan.close_thread", "[AX-CHAN-3] [AX-CHAN-4] [AX-POST-2] "
	 "ax_chan_close from a thread that runs no runtime wakes every waiting "
	 "task of a runtime asleep in its engine",
	 "a plain thread closes a channel with 3 waiting receivers, then one "
	 "with 3 waiting senders", AX_FEAT_XTHREAD, 10, 0, case_close_thread},
	{"chan.cancel_race", "[AX-CANCEL-3] [AX-CHAN-1] [AX-MT-3] a receive "
	 "cancelled as an element is handed to it returns the element or "
	 "-ECANCELED having taken nothing: every element arrives once",
	 "2 producers, 4 receivers (2 under a deadline) cancelled at random by "
	 "2 tasks, 40k elements or more (until 1000 cancels, at most 5 s)", 0, 60,
	 0, case_cancel_race},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
