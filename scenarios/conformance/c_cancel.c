/* c_cancel.c - conformance cases for cancellation: a task blocked in read,
 * write, accept, connect, sleep, channel send and receive, or a blocking
 * call returns -ECANCELED exactly once; after it returns the engine never
 * touches its buffer; a cancelled receive loses no message; cancelling an
 * ended task is harmless. */
#include "conform.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Wait (sleeping, at most 2 s) until *flag is set. */
static bool wait_flag(atomic_int *flag)
{
	int64_t end = ax_now() + 2 * CONF_S;
	while (!*flag && ax_now() < end)
		ax_sleep(1 * CONF_MS);
	return *flag;
}

/* ------------------------------------------------------------------ */
/* cancel.read                                                         */
/* ------------------------------------------------------------------ */

struct cr {
	int fd;
	struct conf_guard g;
	ax_chan *go;
	atomic_int returned;
	ssize_t r1, r2;
	char late[8];
};

static intptr_t cr_reader(void *arg)
{
	struct cr *s = arg;
	int v;
	s->r1 = ax_read(s->fd, s->g.p, s->g.n);
	s->returned = 1;
	ax_chan_recv(s->go, &v);
	s->r2 = conf_read_full(s->fd, s->late, 5);
	return 0;
}

static intptr_t cr_main(void *arg)
{
	(void)arg;
	for (int it = 0; it < 8 && !conf_failed(); it++) {
		struct cr s = {0};
		int fds[2], v = 1;
		ax_task *t;
		if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
			return 0;
		s.fd = fds[0];
		conf_guard_init(&s.g, 4096, (unsigned)it);
		ax_chan_create(&s.go, sizeof v, 1);
		ax_spawn(&t, cr_reader, &s, "reader");
		/* cancel at once after the read started, or once it waits */
		if (it % 2)
			ax_sleep(it * CONF_MS);
		ax_cancel(t);
		if (CONF_TRUE(wait_flag(&s.returned), "a cancelled ax_read did "
			      "not return within 2 s"))
			CONF_EQ(s.r1, -ECANCELED, "cancelled ax_read (try %d)", it);
		/* the buffer is the caller's again: poison it, send data, and
		 * see whether anything still writes into it */
		conf_guard_seal(&s.g);
		conf_peer_send(fds[1], "late!", 5);
		ax_sleep(20 * CONF_MS);
		size_t first = 0, bad = conf_guard_check(&s.g, &first);
		CONF_TRUE(bad == 0, "%zu byte(s) of the buffer of a cancelled "
			  "ax_read were written after it returned (first at "
			  "offset %zu)", bad, first);
		/* exactly once: the next read behaves normally and gets the
		 * data the cancelled one must not have taken */
		ax_chan_send(s.go, &v);
		conf_join(t);
		CONF_EQ(s.r2, 5, "the ax_read after a cancelled one");
		CONF_TRUE(!memcmp(s.late, "late!", 5), "data sent after a "
			  "cancelled ax_read was lost or corrupted");
		conf_guard_free(&s.g);
		ax_chan_destroy(s.go);
		ax_close(fds[0]);
		ax_close(fds[1]);
	}
	return 0;
}

static void case_read(void)
{
	conf_run(cr_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.write                                                        */
/* ------------------------------------------------------------------ */

#define CW_SIZE (32u << 20)

struct cw {
	int fd;
	struct conf_guard g;
	ax_chan *go;
	atomic_int returned;
	ssize_t r1, r2;
};

static intptr_t cw_writer(void *arg)
{
	struct cw *s = arg;
	int v;
	s->r1 = ax_write(s->fd, s->g.p, s->g.n);
	s->returned = 1;
	ax_chan_recv(s->go, &v);
	s->r2 = ax_write(s->fd, "END-MARK", 8);
	ax_shutdown(s->fd, SHUT_WR);
	return 0;
}

static intptr_t cw_main(void *arg)
{
	(void)arg;
	struct cw s = {0};
	int fds[2], v = 1;
	ax_task *t;
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	s.fd = fds[0];
	conf_guard_init(&s.g, CW_SIZE, 3);
	ax_chan_create(&s.go, sizeof v, 1);
	ax_spawn(&t, cw_writer, &s, "writer");
	ax_sleep(20 * CONF_MS); /* the peer does not read: the write blocks */
	ax_cancel(t);
	if (!CONF_TRUE(wait_flag(&s.returned), "a cancelled ax_write did not "
		       "return within 2 s"))
		conf_die("giving up");
	CONF_EQ(s.r1, -ECANCELED, "cancelled ax_write (the peer reads nothing)");
	/* new content: if the engine sends from the buffer after the
	 * cancelled write returned, the peer sees these bytes */
	s.g.seed = 200;
	conf_guard_seal(&s.g);

	/* drain what the kernel holds until nothing more comes for 100 ms:
	 * an engine still sending from the buffer would keep it coming */
	unsigned char *in = malloc(CW_SIZE + 64);
	size_t got = 0;
	ssize_t n;
	struct ax_deadline d;
	for (;;) {
		ax_deadline_enter(&d, ax_now() + 100 * CONF_MS);
		n = ax_read(fds[1], in + got, CW_SIZE + 64 - got);
		ax_deadline_leave(&d);
		if (n <= 0 || (got += (size_t)n) >= CW_SIZE + 64)
			break;
	}
	CONF_EQ(n, -ETIMEDOUT, "the peer's read once the cancelled write's bytes "
		"were drained (nothing more may come)");
	/* now the writer goes on: its marker must follow directly */
	ax_chan_send(s.go, &v);
	ax_deadline_enter(&d, ax_now() + 20 * CONF_S);
	while (got < CW_SIZE + 64 &&
	       (n = ax_read(fds[1], in + got, CW_SIZE + 64 - got)) > 0)
		got += (size_t)n;
	ax_deadline_leave(&d);
	conf_join(t);
	CONF_EQ(s.r2, 8, "the ax_write after a cancelled one");
	if (CONF_TRUE(got >= 8 && !memcmp(in + got - 8, "END-MARK", 8),
		      "the stream (%zu bytes) does not end with the marker "
		      "written after the cancelled write", got)) {
		/* everything before the marker: a prefix of the old content */
		for (size_t i = 0; i + 8 < got; i++)
			if (in[i] != conf_pattern(i, 3)) {
				conf_fail("byte %zu of %zu sent before the marker is "
					  "not the cancelled write's byte %s", i,
					  got - 8, in[i] == conf_pattern(i, 200)
					  ? "(it is the buffer's NEW content: sent "
					    "after the write returned)" : "");
				break;
			}
		CONF_TRUE(got - 8 < CW_SIZE, "the whole cancelled write was "
			  "sent, yet it returned -ECANCELED");
	}
	free(in);
	conf_guard_free(&s.g);
	ax_chan_destroy(s.go);
	ax_close(fds[0]);
	ax_close(fds[1]);
	return 0;
}

static void case_write(void)
{
	conf_run(cw_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.accept                                                       */
/* ------------------------------------------------------------------ */

static intptr_t ca_acceptor(void *arg)
{
	return ax_accept((int)(intptr_t)arg);
}

static intptr_t ca_main(void *arg)
{
	(void)arg;
	char vb[32];
	int lfd = ax_tcp_listen("127.0.0.1", 0, 16, 0);
	int port = ax_tcp_port(lfd);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	/* one accept first, so that what an engine sets up once (a reserve
	 * descriptor, say) is not counted as a leak */
	int w = ax_connect("127.0.0.1", (uint16_t)port);
	int wa = ax_accept(lfd);
	ax_close(w);
	ax_close(wa);
	for (int it = 0; it < 6 && !conf_failed(); it++) {
		ax_task *t;
		ax_spawn(&t, ca_acceptor, (void *)(intptr_t)lfd, "acceptor");
		if (it % 2)
			ax_sleep(it * CONF_MS);
		ax_cancel(t);
		CONF_EQ(conf_join(t), -ECANCELED, "cancelled ax_accept (try %d)", it);
		char *before = conf_fd_snapshot();
		/* a connection arriving now is for the next accept */
		int cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(cli, (struct sockaddr *)&sa, sizeof sa) < 0)
			conf_die("connect: %s", strerror(errno));
		struct ax_deadline d;
		ax_deadline_enter(&d, ax_now() + 2 * CONF_S);
		int a = ax_accept(lfd);
		ax_deadline_leave(&d);
		CONF_TRUE(a >= 0, "ax_accept after a cancelled one returned %s "
			  "(did the cancelled accept take the connection?)",
			  conf_val(a, vb, sizeof vb));
		ax_sleep(10 * CONF_MS);
		if (a >= 0)
			ax_close(a);
		close(cli);
		ax_sleep(5 * CONF_MS);
		CONF_FDS_SAME(before, "after a connection was accepted and closed "
			      "following a cancelled ax_accept (a late completion "
			      "of the cancelled accept would leave one)");
		free(before);
	}
	ax_close(lfd);
	return 0;
}

static void case_accept(void)
{
	conf_run(ca_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.connect                                                      */
/* ------------------------------------------------------------------ */

static uint16_t cc_port;

static intptr_t cc_connector(void *arg)
{
	(void)arg;
	return ax_connect("127.0.0.1", cc_port);
}

/* A listener whose accept queue is full, so that a new connect hangs
 * (the kernel drops its SYNs). Returns the listener; fillers in fill[]. */
static int cc_full_listener(int *fill, int *nfill)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(l, 0) < 0 || getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		conf_die("listener: %s", strerror(errno));
	*nfill = 0;
	while (*nfill < 8) {
		int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		fill[(*nfill)++] = c;
		connect(c, (struct sockaddr *)&sa, sizeof sa);
		struct pollfd pf = {.fd = c, .events = POLLOUT};
		if (poll(&pf, 1, 100) == 0)
			break; /* this one hangs: the queue is full */
	}
	cc_port = ntohs(sa.sin_port);
	return l;
}

static intptr_t cc_main(void *arg)
{
	(void)arg;
	char vb[32];
	/* one connect first, so that what an engine sets up once is not
	 * counted as a leak */
	int wl = ax_tcp_listen("127.0.0.1", 0, 8, 0);
	int w = ax_connect("127.0.0.1", (uint16_t)ax_tcp_port(wl));
	ax_close(w);
	ax_close(wl);
	for (int it = 0; it < 3 && !conf_failed(); it++) {
		int fill[8], nfill;
		int l = cc_full_listener(fill, &nfill);
		char *before = conf_fd_snapshot();
		ax_task *t;
		ax_spawn(&t, cc_connector, NULL, "connector");
		ax_sleep((it * 10 + 5) * CONF_MS);
		ax_cancel(t);
		intptr_t r = conf_join(t);
		CONF_EQ(r, -ECANCELED, "cancelled ax_connect to a full backlog "
			"(try %d)", it);
		if (r >= 0)
			ax_close((int)r);
		ax_sleep(20 * CONF_MS);
		CONF_FDS_SAME(before, "after a cancelled ax_connect (its socket "
			      "must be closed)");
		free(before);
		for (int i = 0; i < nfill; i++)
			close(fill[i]);
		close(l);
	}
	/* the next connect behaves normally */
	int l = ax_tcp_listen("127.0.0.1", 0, 8, 0);
	int c = ax_connect("127.0.0.1", (uint16_t)ax_tcp_port(l));
	CONF_TRUE(c >= 0, "ax_connect after cancelled ones returned %s",
		  conf_val(c, vb, sizeof vb));
	if (c >= 0)
		ax_close(c);
	ax_close(l);
	return 0;
}

static void case_connect(void)
{
	conf_run(cc_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.sleep                                                        */
/* ------------------------------------------------------------------ */

struct cs {
	ax_chan *c;
	int r1, r2, r3, r4, v4;
	atomic_int woke;  /* the cancelled sleep returned */
	int64_t el2, el3;
};

static intptr_t cs_sleeper(void *arg)
{
	struct cs *s = arg;
	int64_t t0;
	s->r1 = ax_sleep(20 * CONF_MS);
	s->woke = 1;
	/* a wait that uses no timer of its own: a timer of the cancelled
	 * sleep left armed would end it early (-ETIMEDOUT, no deadline) */
	s->r4 = ax_chan_recv(s->c, &s->v4);
	t0 = ax_now();
	s->r2 = ax_sleep(2 * CONF_MS);
	s->el2 = ax_now() - t0;
	t0 = ax_now();
	s->r3 = ax_sleep(30 * CONF_MS);
	s->el3 = ax_now() - t0;
	return 0;
}

static intptr_t cs_main(void *arg)
{
	(void)arg;
	for (int it = 0; it < 3; it++) {
		struct cs s = {0};
		ax_task *t;
		int v = 77;
		ax_chan_create(&s.c, sizeof v, 1);
		ax_spawn(&t, cs_sleeper, &s, "sleeper");
		if (it)
			ax_sleep(it * 5 * CONF_MS);
		ax_cancel(t);
		/* at once: a runtime that let the cancel wait for the sleep's
		 * own timer would still be asleep (a late wake-up here can
		 * only make the check easier, never fail it wrongly) */
		ax_sleep(1 * CONF_MS);
		CONF_TRUE(s.woke, "a cancelled ax_sleep(20 ms) had not returned 1 ms "
			  "after ax_cancel");
		/* past the cancelled sleep's deadline, then the element */
		ax_sleep(60 * CONF_MS);
		ax_chan_send(s.c, &v);
		if (CONF_JOIN_WITHIN(t, 3 * CONF_S, "a task cancelled in "
				     "ax_sleep(20 ms)") == INTPTR_MIN)
			return 0;
		ax_chan_destroy(s.c);
		CONF_EQ(s.r1, -ECANCELED, "ax_sleep(20 ms) cancelled within 10 ms");
		CONF_EQ(s.r4, 0, "an ax_chan_recv after the cancelled sleep, "
			"past that sleep's deadline (a stale timer?)");
		CONF_EQ(s.v4, 77, "its element");
		/* exactly once, and the cancelled timer is gone */
		CONF_EQ(s.r2, 0, "the ax_sleep after a cancelled one");
		CONF_TRUE(s.el2 >= 2 * CONF_MS, "the sleep after a cancelled one "
			  "ended early (%lld us)", (long long)(s.el2 / 1000));
		CONF_EQ(s.r3, 0, "a later ax_sleep");
		CONF_TRUE(s.el3 >= 30 * CONF_MS, "a later sleep ended early (%lld "
			  "us)", (long long)(s.el3 / 1000));
	}
	return 0;
}

static void case_sleep(void)
{
	conf_run(cs_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.chan_send / cancel.chan_recv                                 */
/* ------------------------------------------------------------------ */

struct cch {
	ax_chan *c;
	int r1, r2;
};

/* The element of the sender: static, so that its stores are not
 * optimised away. */
static int cch_v;

static intptr_t cch_sender(void *arg)
{
	struct cch *s = arg;
	cch_v = 2;
	s->r1 = ax_chan_send(s->c, &cch_v);
	/* the element buffer is the caller's again: a channel that still
	 * held it would now deliver 666 to the receives below */
	cch_v = 666;
	ax_sleep(10 * CONF_MS);
	cch_v = 3;
	s->r2 = ax_chan_send(s->c, &cch_v);
	return 0;
}

static intptr_t ccs_main(void *arg)
{
	(void)arg;
	struct cch s = {0};
	ax_task *t;
	int v = 1;
	ax_chan_create(&s.c, sizeof(int), 1);
	ax_chan_try_send(s.c, &v);
	ax_spawn(&t, cch_sender, &s, "sender"); /* blocks: the channel is full */
	ax_cancel(t);
	ax_yield();
	CONF_EQ(s.r1, -ECANCELED, "cancelled ax_chan_send on a full channel");
	CONF_EQ(ax_chan_len(s.c), 1, "channel length after the cancelled send");
	CONF_EQ(ax_chan_recv(s.c, &v), 0, "recv");
	CONF_EQ(v, 1, "the element before the cancelled send");
	CONF_EQ(ax_chan_recv(s.c, &v), 0, "recv");
	CONF_EQ(v, 3, "the element after the cancelled send (the cancelled "
		"one must not be delivered, nor read late: 666)");
	conf_join(t);
	CONF_EQ(s.r2, 0, "the ax_chan_send after a cancelled one");
	CONF_EQ(ax_chan_try_recv(s.c, &v), -EAGAIN, "try_recv on the drained "
		"channel");
	ax_chan_destroy(s.c);
	return 0;
}

static void case_chan_send(void)
{
	conf_run(ccs_main, NULL);
}

struct ccr {
	ax_chan *c;
	int r1, r2, r3;
	int v1, v3;
};

static intptr_t cch_receiver(void *arg)
{
	struct ccr *s = arg;
	s->v1 = -1;
	s->r1 = ax_chan_recv(s->c, &s->v1);
	s->r2 = ax_sleep(20 * CONF_MS);
	s->r3 = ax_chan_recv(s->c, &s->v3);
	return 0;
}

static intptr_t ccr_main(void *arg)
{
	(void)arg;
	struct ccr s = {0};
	ax_task *t;
	int v;
	ax_chan_create(&s.c, sizeof(int), 2);

	/* cancelled, and back from its call: it is no receiver any more */
	ax_spawn(&t, cch_receiver, &s, "receiver"); /* blocks: empty */
	ax_cancel(t);
	ax_yield();
	CONF_EQ(s.r1, -ECANCELED, "cancelled ax_chan_recv on an empty channel");
	CONF_EQ(s.v1, -1, "element of the cancelled receive (untouched)");
	v = 7;
	CONF_EQ(ax_chan_try_send(s.c, &v), 0, "try_send");
	CONF_EQ(ax_chan_len(s.c), 1, "buffered elements after a send that "
		"followed the cancelled receive (it must not go to the gone "
		"receiver)");
	CONF_EQ(ax_chan_try_recv(s.c, &v), 0, "try_recv");
	CONF_EQ(v, 7, "the buffered element");
	v = 8;
	ax_chan_send(s.c, &v);
	conf_join(t);
	CONF_EQ(s.r2, 0, "the call after the cancelled receive");
	CONF_EQ(s.r3, 0, "a later ax_chan_recv");
	CONF_EQ(s.v3, 8, "its element");

	/* an element sent after the cancel but before the receiver ran */
	s = (struct ccr){.c = s.c};
	ax_spawn(&t, cch_receiver, &s, "receiver");
	ax_cancel(t);
	v = 7;
	CONF_EQ(ax_chan_try_send(s.c, &v), 0, "try_send");
	ax_yield();
	if (s.r1 == -ECANCELED) {
		/* the cancelled receiver took nothing: 7 is still there */
		CONF_EQ(s.v1, -1, "element of the cancelled receive (untouched)");
		CONF_EQ(ax_chan_len(s.c), 1, "buffered elements after a send that "
			"followed the cancelled receive");
		CONF_EQ(ax_chan_try_recv(s.c, &v), 0, "try_recv");
		CONF_EQ(v, 7, "the buffered element");
		CONF_EQ(s.r2, 0, "the call after the cancelled receive");
	} else if (CONF_EQ(s.r1, 0, "cancelled ax_chan_recv on an empty "
			   "channel (-ECANCELED, or 0 if the element won)")) {
		/* the element won the race: kept, and the request pending */
		CONF_EQ(s.v1, 7, "element of the receive that won the race");
		CONF_EQ(s.r2, -ECANCELED, "the call after a receive that won "
			"the race with its cancel");
		CONF_EQ(ax_chan_len(s.c), 0, "elements left");
	}
	v = 8;
	ax_chan_send(s.c, &v);
	conf_join(t);
	CONF_EQ(s.r3, 0, "a later ax_chan_recv");
	CONF_EQ(s.v3, 8, "its element");
	ax_chan_destroy(s.c);
	return 0;
}

static void case_chan_recv(void)
{
	conf_run(ccr_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.recv_no_loss                                                 */
/* ------------------------------------------------------------------ */

#define NL_N 20000

struct nl {
	ax_chan *c;
	atomic_int done;
	int next, cancels, r_after;
	ax_task *rx;
};

static intptr_t nl_one(void *arg)
{
	struct nl *s = arg;
	int v = -1;
	int r = ax_chan_recv(s->c, &v);
	s->r_after = ax_yield(); /* the pending cancel lands here */
	return r == 0 ? v : r;
}

static void *nl_thread(void *arg)
{
	struct nl *s = arg;
	unsigned x = 5;
	for (int i = 0; i < NL_N; i++) {
		/* a little jitter, so that the receiver is often waiting and
		 * the element is handed over while a cancel may be on its way */
		x = x * 1103515245u + 12345u;
		if (x & 0x100)
			conf_spin((x >> 16) % 20000);
		int r = ax_chan_send(s->c, &i);
		if (r == -EPIPE)
			break; /* the receiver gave up and closed the channel */
		if (r < 0)
			conf_die("thread: ax_chan_send failed at %d", i);
	}
	return NULL;
}

static intptr_t nl_rx(void *arg)
{
	struct nl *s = arg;
	int64_t progress = ax_now(); /* when the last element arrived */
	while (s->next < NL_N) {
		int v = -1;
		struct ax_deadline d;
		ax_deadline_enter(&d, progress + 2 * CONF_S);
		int r = ax_chan_recv(s->c, &v);
		ax_deadline_leave(&d);
		if (r == -ECANCELED && ax_now() < progress + 2 * CONF_S) {
			s->cancels++;
			continue;
		}
		if (r == -ETIMEDOUT || r == -ECANCELED) {
			conf_fail("element %d never arrived within 2 s (lost by a "
				  "cancelled receive?)", s->next);
			ax_chan_close(s->c); /* release the sending thread */
			break;
		}
		if (!CONF_EQ(r, 0, "ax_chan_recv") ||
		    !CONF_EQ(v, s->next, "element received (in order, none lost)")) {
			ax_chan_close(s->c);
			break;
		}
		s->next++;
		progress = ax_now();
	}
	s->done = 1;
	return 0;
}

static intptr_t nl_canceller(void *arg)
{
	struct nl *s = arg;
	unsigned x = 1;
	while (!s->done) {
		x = x * 1103515245u + 12345u;
		if (x & 0x30000)
			ax_yield();
		else
			ax_sleep((x >> 20) % 50 * CONF_US);
		if (!s->done)
			ax_cancel(s->rx);
	}
	return 0;
}

static intptr_t nl_main(void *arg)
{
	(void)arg;
	struct nl s = {0};
	ax_task *t, *k;
	int v;
	/* capacity 1: most elements are handed to a waiting receiver */
	ax_chan_create(&s.c, sizeof(int), 1);

	/* an element handed over before the cancel is kept */
	ax_spawn(&t, nl_one, &s, "receiver");
	v = 42;
	CONF_EQ(ax_chan_try_send(s.c, &v), 0, "try_send to a waiting receiver");
	ax_cancel(t);
	CONF_EQ(conf_join(t), 42, "a receive that got its element before the "
		"cancel took effect");
	CONF_EQ(s.r_after, -ECANCELED, "the request stays pending for the next "
		"call");
	CONF_EQ(ax_chan_len(s.c), 0, "elements left");

	/* many cancels racing a sender on another thread */
	pthread_t th;
	ax_spawn(&s.rx, nl_rx, &s, "receiver");
	ax_spawn(&k, nl_canceller, &s, "canceller");
	conf_thread(&th, nl_thread, &s);
	conf_join(k);
	conf_join(s.rx);
	pthread_join(th, NULL);
	CONF_EQ(s.next, NL_N, "elements received across %d cancellations",
		s.cancels);
	CONF_TRUE(s.cancels > 0, "no receive was cancelled (test did not "
		  "exercise the race)");
	ax_chan_destroy(s.c);
	return 0;
}

static void case_recv_no_loss(void)
{
	conf_run(nl_main, NULL);
}

/* ------------------------------------------------------------------ */
/* cancel.pool_running / cancel.pool_queued                            */
/* ------------------------------------------------------------------ */

struct cp_call {
	atomic_int started, finished;
	int value;
	int sleep_ms;
};

static intptr_t cp_fn(void *arg)
{
	struct cp_call *c = arg;
	atomic_store(&c->started, 1);
	usleep((useconds_t)c->sleep_ms * 1000);
	c->value = 99; /* touches arg: must happen before ax_blocking returns */
	atomic_store(&c->finished, 1);
	return 5;
}

struct cp_task {
	struct cp_call *call;
	intptr_t res;
	int r, r_next;
	intptr_t res_next;
	int finished_at_return, started_at_return;
	atomic_int returned; /* the first call returned */
};

static intptr_t cp_caller(void *arg)
{
	struct cp_task *s = arg;
	s->res = -12345;
	s->r = ax_blocking(cp_fn, s->call, &s->res);
	s->finished_at_return = atomic_load(&s->call->finished);
	s->started_at_return = atomic_load(&s->call->started);
	s->returned = 1;
	/* exactly once: the next call is normal */
	struct cp_call again = {.sleep_ms = 1};
	s->r_next = ax_blocking(cp_fn, &again, &s->res_next);
	return 0;
}

static intptr_t cpr_main(void *arg)
{
	(void)arg;
	struct cp_call call = {.sleep_ms = 100};
	struct cp_task s = {.call = &call};
	ax_task *t;
	ax_spawn(&t, cp_caller, &s, "caller");
	int64_t end = ax_now() + 2 * CONF_S;
	while (!atomic_load(&call.started) && ax_now() < end)
		ax_sleep(1 * CONF_MS);
	CONF_TRUE(atomic_load(&call.started), "the blocking call did not start "
		  "within 2 s");
	ax_cancel(t);
	conf_join(t);
	CONF_EQ(s.r, -ECANCELED, "cancelled ax_blocking of a running call");
	CONF_EQ(s.finished_at_return, 1, "the running call had finished when "
		"ax_blocking returned (it must be waited for)");
	CONF_EQ(s.res, -12345, "*result of a cancelled call (discarded)");
	CONF_EQ(s.r_next, 0, "the ax_blocking after a cancelled one");
	CONF_EQ(s.res_next, 5, "its result");
	return 0;
}

static void case_pool_running(void)
{
	conf_run(cpr_main, NULL);
}

static intptr_t cpq_main(void *arg)
{
	(void)arg;
	struct cp_call queued = {.sleep_ms = 20};
	struct cp_task qs = {.call = &queued};
	struct conf_pool_fill f;
	ax_task *qt;
	/* hold every pool thread (one asked for; an engine's own pool may
	 * have more), so that the next call is queued whatever the pool size */
	if (!CONF_TRUE(conf_pool_fill(&f) > 0, "the blocking pool could not be "
		       "saturated with %d calls", CONF_POOL_MAX))
		return 0;
	ax_spawn(&qt, cp_caller, &qs, "queued");
	ax_sleep(10 * CONF_MS);
	int started_before = atomic_load(&queued.started);
	ax_cancel(qt);
	bool returned = wait_flag(&qs.returned);
	conf_pool_release(&f); /* its next call needs the pool */
	conf_join(qt);
	if (!CONF_TRUE(returned, "a cancelled ax_blocking queued behind a "
		       "saturated pool did not return within 2 s (while the "
		       "pool stayed saturated)"))
		return 0;
	CONF_EQ(started_before, 0, "a call queued behind a saturated pool had "
		"started");
	CONF_EQ(qs.r, -ECANCELED, "cancelled ax_blocking of a queued call");
	CONF_EQ(qs.started_at_return, 0, "a queued call had started when its "
		"cancelled ax_blocking returned");
	ax_sleep(50 * CONF_MS);
	CONF_EQ(atomic_load(&queued.started), 0, "a blocking call that had not "
		"started when it was cancelled ran anyway (it must be dropped)");
	CONF_EQ(qs.r_next, 0, "the ax_blocking after a cancelled one");
	CONF_EQ(qs.res_next, 5, "its result");
	return 0;
}

static void case_pool_queued(void)
{
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.pool_threads = 1;
	conf_run_opts(cpq_main, NULL, &o);
}

/* ------------------------------------------------------------------ */
/* cancel.finished / cancel.consumed                                   */
/* ------------------------------------------------------------------ */

static intptr_t cf_quick(void *arg)
{
	return (intptr_t)arg;
}

static intptr_t cf_short_sleep(void *arg)
{
	ax_sleep(1 * CONF_MS);
	return (intptr_t)arg;
}

static intptr_t cf_main(void *arg)
{
	(void)arg;
	ax_task *t;
	ax_spawn(&t, cf_quick, (void *)(intptr_t)3, "quick");
	CONF_EQ(ax_cancel(t), 0, "ax_cancel of an ended task");
	CONF_EQ(ax_cancel(t), 0, "ax_cancel of an ended task, twice");
	CONF_EQ(conf_join(t), 3, "result of an ended task that was cancelled");
	ax_spawn(&t, cf_short_sleep, (void *)(intptr_t)4, "sleeper");
	ax_sleep(10 * CONF_MS);
	CONF_EQ(ax_cancel(t), 0, "ax_cancel of a task that ended after "
		"suspending");
	CONF_EQ(conf_join(t), 4, "its result");
	/* the canceller itself is unaffected */
	CONF_EQ(ax_sleep(1 * CONF_MS), 0, "the canceller's next sleep");
	CONF_EQ(ax_cancel(NULL), -EINVAL, "ax_cancel(NULL)");
	return 0;
}

static void case_finished(void)
{
	conf_run(cf_main, NULL);
}

struct cn {
	int r1, r2, r3;
};

static intptr_t cn_ready(void *arg)
{
	struct cn *s = arg;
	s->r1 = ax_yield();
	s->r2 = ax_yield();
	s->r3 = ax_sleep(1 * CONF_MS);
	return 0;
}

static intptr_t cn_main(void *arg)
{
	(void)arg;
	struct cn s;
	ax_task *t;
	/* the caller cancels itself: its next suspending call returns
	 * -ECANCELED, and only that one */
	CONF_EQ(ax_cancel(ax_current()), 0, "ax_cancel of the caller");
	CONF_EQ(ax_sleep(1 * CONF_MS), -ECANCELED, "the next call after a "
		"self-cancel");
	CONF_EQ(ax_yield(), 0, "the call after that");
	CONF_EQ(ax_sleep(1 * CONF_MS), 0, "and the next");
	/* a ready task (it yielded): its current call returns -ECANCELED */
	ax_spawn(&t, cn_ready, &s, "ready");
	ax_cancel(t);
	conf_join(t);
	CONF_EQ(s.r1, -ECANCELED, "the yield of a ready task that was cancelled");
	CONF_EQ(s.r2, 0, "its next yield");
	CONF_EQ(s.r3, 0, "its next sleep");
	return 0;
}

static void case_consumed(void)
{
	conf_run(cn_main, NULL);
}

const struct conf_case conf_cases_cancel[] = {
	{"cancel.read", "[AX-CANCEL-1] [AX-CANCEL-2] [AX-TCP-14] a blocked ax_read returns "
	 "-ECANCELED once; afterwards the engine never writes its buffer and "
	 "data sent later goes to the next read",
	 "cancel a read 8 times, poison its buffer, let the peer send, check "
	 "the buffer", AX_FEAT_TCP, 15, 0, case_read},
	{"cancel.write", "[AX-CANCEL-1] [AX-CANCEL-2] a blocked ax_write returns "
	 "-ECANCELED once; afterwards the engine never reads its buffer",
	 "cancel a 32 MiB write, overwrite the buffer, check the peer only "
	 "got old bytes", AX_FEAT_TCP, 30, 0, case_write},
	{"cancel.accept", "[AX-CANCEL-1] [AX-CANCEL-2] a blocked ax_accept "
	 "returns -ECANCELED once and takes no connection or descriptor",
	 "cancel an accept, connect, accept again, count descriptors",
	 AX_FEAT_TCP, 15, 0, case_accept},
	{"cancel.connect", "[AX-CANCEL-1] [AX-CANCEL-2] a blocked ax_connect "
	 "returns -ECANCELED once and leaves no descriptor",
	 "connect to a listener with a full backlog, cancel, count descriptors",
	 AX_FEAT_TCP, 15, 0, case_connect},
	{"cancel.sleep", "[AX-CANCEL-1] a sleeping task's ax_sleep returns "
	 "-ECANCELED at once, exactly once; later sleeps are not cut short",
	 "cancel a 20 ms sleep, wait on a channel past its deadline, then "
	 "sleep 2 ms and 30 ms", 0, 10, 0, case_sleep},
	{"cancel.chan_send", "[AX-CANCEL-1] [AX-CANCEL-3] a send blocked on a "
	 "full channel returns -ECANCELED once and its element is not delivered",
	 "cancel a blocked send, drain the channel, send again",
	 AX_FEAT_ONE_WORKER, 10, 0, case_chan_send},
	{"cancel.chan_recv", "[AX-CANCEL-1] [AX-CANCEL-3] a blocked receive "
	 "returns -ECANCELED once and takes no element",
	 "cancel a blocked receive; a later element stays buffered",
	 AX_FEAT_ONE_WORKER, 10, 0, case_chan_recv},
	{"cancel.recv_no_loss", "[AX-CANCEL-3] [AX-CHAN-1] a receive that got "
	 "its element before the cancel returns it and the request stays "
	 "pending; cancelled receives lose no message",
	 "hand-off then cancel; 20k elements from a thread under random cancels",
	 AX_FEAT_XTHREAD, 20, 0, case_recv_no_loss},
	{"cancel.pool_running", "[AX-CANCEL-1] [AX-POOL-2] cancelling a running "
	 "blocking call waits for it, then returns -ECANCELED and discards the "
	 "result", "cancel a 100 ms blocking call while it runs",
	 0, 10, 0, case_pool_running},
	{"cancel.pool_queued", "[AX-CANCEL-1] [AX-POOL-2] a cancelled blocking "
	 "call that had not started is dropped (never runs); one that had "
	 "started is waited for",
	 "hold every pool thread (however many), cancel a queued call",
	 0, 10, 0, case_pool_queued},
	{"cancel.finished", "[AX-CANCEL-4] cancelling a task that has ended (not "
	 "yet joined) is harmless and returns 0",
	 "cancel ended tasks, join them for their results",
	 0, 10, 0, case_finished},
	{"cancel.consumed", "[AX-CANCEL-1] [AX-CANCEL-5] the request is consumed by one "
	 "suspending call: the current one if blocked or ready, else the next",
	 "self-cancel, and cancel a ready (yielding) task", AX_FEAT_ONE_WORKER, 10, 0,
	 case_consumed},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
