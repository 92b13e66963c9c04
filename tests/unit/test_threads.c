/* test_threads.c - two runtimes of one engine at once, on two threads of
 * one process (the thread-per-core server of `-p workers=N`): each has its
 * own SO_REUSEPORT listener on one shared port, accepts and echoes the
 * connections the kernel gives it while its own client tasks connect to
 * the port, sleeps, runs blocking calls and receives posts from the other
 * thread. Then the process-wide SIGSEGV action (the stack-overflow report
 * of ax_rt_run) must stay installed while either runtime runs and be
 * restored only when the last one has stopped. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "t.h"

#define NRT 2
#define CONNS 8      /* client connections per runtime */
#define MSGS 200     /* echoes per connection */
#define WAIT_NS (10 * INT64_C(1000000000))

struct side {
	int idx;
	int lfd;
	uint16_t port;
	ax_rt *rt;
	bool tcp;
	atomic_int accepted;     /* connections this runtime served */
	atomic_int posts_seen;   /* posts from the other thread that ran here */
	atomic_bool on_thread;   /* each post ran on this side's thread */
	pthread_t self;
	int run_err;
	intptr_t result;
};

static struct side sides[NRT];
static atomic_int started, clients_done;
static atomic_bool first_returned;
static struct sigaction segv_before;

static bool segv_is_original(void)
{
	struct sigaction now;
	sigaction(SIGSEGV, NULL, &now);
	return now.sa_sigaction == segv_before.sa_sigaction;
}

/* Wait (suspending) until *v reaches want, at most WAIT_NS. */
static bool wait_for(atomic_int *v, int want)
{
	int64_t end = ax_now() + WAIT_NS;
	while (atomic_load(v) < want && ax_now() < end)
		ax_sleep(1000000);
	return atomic_load(v) >= want;
}

static intptr_t echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[512];
	ssize_t n;
	while ((n = ax_read(fd, buf, sizeof buf)) > 0)
		if (ax_write(fd, buf, (size_t)n) != n)
			break;
	ax_close(fd);
	return 0;
}

static intptr_t acceptor(void *arg)
{
	struct side *s = arg;
	for (;;) {
		int fd = ax_accept(s->lfd);
		if (fd < 0)
			return fd == -ECANCELED ? 0 : fd;
		atomic_fetch_add(&s->accepted, 1);
		if (ax_spawn(NULL, echo_conn, (void *)(intptr_t)fd, "echo") < 0)
			ax_close(fd);
	}
}

/* One connection: MSGS messages that carry the side, connection and
 * sequence number, each checked when it comes back. */
static intptr_t client(void *arg)
{
	struct side *s = &sides[(intptr_t)arg / CONNS];
	int conn = (int)((intptr_t)arg % CONNS);
	int fd = ax_connect("127.0.0.1", s->port);
	if (fd < 0)
		return fd;
	ax_tcp_nodelay(fd, true);
	for (int m = 0; m < MSGS; m++) {
		char out[32], in[32];
		int len = snprintf(out, sizeof out, "%d/%d/%d.", s->idx, conn, m);
		if (ax_write(fd, out, (size_t)len) != len)
			break;
		int got = 0;
		while (got < len) {
			ssize_t n = ax_read(fd, in + got, (size_t)(len - got));
			if (n <= 0)
				break;
			got += (int)n;
		}
		if (got != len || memcmp(in, out, (size_t)len)) {
			ax_close(fd);
			return -EPROTO;
		}
	}
	ax_close(fd);
	return 0;
}

static void post_fn(void *arg)
{
	struct side *s = arg;
	if (!pthread_equal(pthread_self(), s->self))
		atomic_store(&s->on_thread, false);
	atomic_fetch_add(&s->posts_seen, 1);
}

static intptr_t blocking_fn(void *arg)
{
	return (intptr_t)arg * 3;
}

static intptr_t side_main(void *arg)
{
	struct side *s = arg;
	struct side *other = &sides[1 - s->idx];
	ax_task *acc = NULL, *cl[CONNS];
	intptr_t r;

	/* both runtimes are running from here on */
	atomic_fetch_add(&started, 1);
	CHECK(wait_for(&started, NRT));
	CHECK(!segv_is_original());
	for (int i = 0; i < 100; i++)
		CHECK_EQ(ax_post(other->rt, post_fn, other), 0);
	CHECK_EQ(ax_blocking(blocking_fn, (void *)(intptr_t)(s->idx + 5), &r), 0);
	CHECK_EQ(r, 3 * (s->idx + 5));
	ax_sleep(2000000);

	if (s->tcp) {
		ax_spawn(&acc, acceptor, s, "accept");
		for (intptr_t i = 0; i < CONNS; i++)
			ax_spawn(&cl[i], client, (void *)(s->idx * CONNS + i), "client");
		for (int i = 0; i < CONNS; i++) {
			CHECK_EQ(ax_join(cl[i], &r), 0);
			CHECK_EQ(r, 0);
		}
	}
	/* the other side's clients may still need this side's acceptor */
	atomic_fetch_add(&clients_done, 1);
	CHECK(wait_for(&clients_done, NRT));
	if (acc) {
		ax_cancel(acc);
		CHECK_EQ(ax_join(acc, &r), 0);
	}
	CHECK(wait_for(&s->posts_seen, 100));
	/* the second side outlives the first: the SIGSEGV action must stay */
	if (s->idx == 1) {
		int64_t end = ax_now() + WAIT_NS;
		while (!atomic_load(&first_returned) && ax_now() < end)
			ax_sleep(1000000);
		CHECK(atomic_load(&first_returned));
		CHECK(!segv_is_original());
	}
	return 0;
}

static void *side_thread(void *arg)
{
	struct side *s = arg;
	s->self = pthread_self();
	/* created on its own thread, as the server's workers do */
	s->rt = t_rt();
	s->run_err = ax_rt_run(s->rt, side_main, s, &s->result);
	if (s->idx == 0)
		atomic_store(&first_returned, true);
	return NULL;
}

int main(void)
{
	pthread_t th[NRT];
	char why[256];

	if (!ax_driver_available(t_runtime(), why, sizeof why)) {
		printf("SKIP: runtime %s unavailable: %s\n", t_runtime(), why);
		return 77;
	}
	bool tcp = (ax_driver_features(t_runtime()) & AX_FEAT_TCP) != 0;
	sigaction(SIGSEGV, NULL, &segv_before);
	for (int i = 0; i < NRT; i++) {
		struct side *s = &sides[i];
		s->idx = i;
		s->tcp = tcp;
		atomic_init(&s->on_thread, true);
		/* one port, one listener per runtime */
		s->lfd = ax_tcp_listen("127.0.0.1", i ? sides[0].port : 0, 128,
				       AX_LISTEN_REUSEPORT);
		CHECK(s->lfd >= 0);
		s->port = (uint16_t)ax_tcp_port(sides[0].lfd);
	}
	/* the first side's rt must exist before the second posts to it:
	 * both are created before either main task posts (started barrier) */
	for (int i = 0; i < NRT; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, side_thread, &sides[i]), 0);
	/* side 0 stays behind until side 1 waits for it: join in order */
	for (int i = 0; i < NRT; i++)
		pthread_join(th[i], NULL);
	int total = 0;
	for (int i = 0; i < NRT; i++) {
		struct side *s = &sides[i];
		CHECK_EQ(s->run_err, 0);
		CHECK_EQ(s->result, 0);
		CHECK_EQ(atomic_load(&s->posts_seen), 100);
		CHECK(atomic_load(&s->on_thread));
		total += atomic_load(&s->accepted);
		printf("runtime %d (%s): accepted %d connections\n", i, t_runtime(),
		       atomic_load(&s->accepted));
		CHECK_EQ(ax_rt_destroy(s->rt), 0);
		close(s->lfd);
	}
	if (tcp)
		CHECK_EQ(total, NRT * CONNS);
	/* both runtimes stopped: the action found at the start is back */
	CHECK(segv_is_original());
	if (t_failures)
		fprintf(stderr, "%d check(s) failed\n", t_failures);
	return t_failures ? 1 : 0;
}
