/* c_tcp.c - conformance cases for TCP: short reads, EOF, write-all to a
 * slow reader, half-close, refused connects, peer resets, EPIPE without
 * SIGPIPE, accept without free descriptors, 1000 connections, close of a
 * descriptor in use, deadlines on I/O, listen errors, and timers beside a
 * busy stream. */
#include "conform.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* tcp.short_read                                                      */
/* ------------------------------------------------------------------ */

static int sr_peer;

static intptr_t sr_late_sender(void *arg)
{
	(void)arg;
	ax_sleep(10 * CONF_MS);
	return conf_peer_send(sr_peer, "xyz", 3);
}

static intptr_t sr_main(void *arg)
{
	(void)arg;
	int fds[2];
	static char buf[65536];
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	sr_peer = fds[1];
	/* a read that waits for more than is there ends the case, not hangs */
	struct ax_deadline d;
	ax_deadline_enter(&d, ax_now() + 5 * CONF_S);

	/* reads of at most 4 bytes return at most 4, and add up */
	conf_peer_send(fds[1], "abcdefghij", 10);
	size_t got = 0;
	while (got < 10) {
		ssize_t n = ax_read(fds[0], buf + got, 4);
		if (!CONF_TRUE(n > 0 && n <= 4, "ax_read(n=4) returned %zd", n))
			break;
		got += (size_t)n;
	}
	CONF_TRUE(got == 10 && !memcmp(buf, "abcdefghij", 10),
		  "short reads did not reassemble the 10 bytes sent");

	/* a large read returns what is there instead of waiting to fill */
	conf_peer_send(fds[1], "hello", 5);
	ssize_t n = conf_read_full(fds[0], buf, 5);
	CONF_EQ(n, 5, "reading 5 sent bytes");
	conf_peer_send(fds[1], "12345", 5);
	ax_sleep(2 * CONF_MS);
	n = ax_read(fds[0], buf, sizeof buf);
	CONF_TRUE(n >= 1 && n <= 5, "ax_read(64 KiB) with 5 bytes available "
		  "returned %zd (expected a short count, not a wait)", n);
	if (n > 0 && n < 5)
		conf_read_full(fds[0], buf + n, (size_t)(5 - n));

	/* a blocked read returns as soon as some bytes arrive */
	ax_task *t;
	ax_spawn(&t, sr_late_sender, NULL, "late-sender");
	n = ax_read(fds[0], buf, sizeof buf);
	CONF_TRUE(n >= 1 && n <= 3 && !memcmp(buf, "xyz", (size_t)(n > 0 ? n : 0)),
		  "blocked ax_read(64 KiB) woken by 3 bytes returned %zd", n);
	ax_deadline_leave(&d);
	conf_join(t);
	ax_close(fds[0]);
	ax_close(fds[1]);
	return 0;
}

static void case_short_read(void)
{
	conf_run(sr_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.eof                                                             */
/* ------------------------------------------------------------------ */

static intptr_t eof_closer(void *arg)
{
	ax_sleep(10 * CONF_MS);
	return ax_close((int)(intptr_t)arg);
}

static intptr_t eof_main(void *arg)
{
	(void)arg;
	int fds[2];
	char buf[64];
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	conf_peer_send(fds[1], "xyz", 3);
	ax_close(fds[1]);
	CONF_EQ(conf_read_full(fds[0], buf, 3), 3, "bytes sent before the close");
	CONF_EQ(ax_read(fds[0], buf, sizeof buf), 0, "ax_read at EOF");
	CONF_EQ(ax_read(fds[0], buf, sizeof buf), 0, "ax_read at EOF, again");
	ax_close(fds[0]);

	/* a read blocked when the peer closes */
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	ax_task *t;
	ax_spawn(&t, eof_closer, (void *)(intptr_t)fds[1], "closer");
	CONF_EQ(ax_read(fds[0], buf, sizeof buf), 0, "blocked ax_read when the "
		"peer closes");
	conf_join(t);
	ax_close(fds[0]);
	return 0;
}

static void case_eof(void)
{
	conf_run(eof_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.write_all_64m                                                   */
/* ------------------------------------------------------------------ */

#define WA_SIZE (64u << 20)

static unsigned char wa_byte(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 13));
}

static intptr_t wa_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = malloc(65536);
	size_t got = 0, next_pause = 1u << 20;
	ssize_t n;
	ax_sleep(20 * CONF_MS); /* let the writer fill every buffer first */
	while ((n = ax_read(fd, buf, 65536)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != wa_byte(got + (size_t)i)) {
				conf_fail("byte %zu of the stream is corrupt",
					  got + (size_t)i);
				free(buf);
				return -EIO;
			}
		got += (size_t)n;
		if (got >= next_pause) {
			/* slow: a pause after every MiB */
			ax_sleep(1 * CONF_MS);
			next_pause += 1u << 20;
		}
	}
	CONF_EQ(n, 0, "the reader's last ax_read");
	free(buf);
	return (intptr_t)got;
}

static intptr_t wa_main(void *arg)
{
	(void)arg;
	int fds[2];
	ax_task *t;
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	unsigned char *big = malloc(WA_SIZE);
	if (!big)
		conf_die("out of memory");
	for (size_t i = 0; i < WA_SIZE; i++)
		big[i] = wa_byte(i);
	ax_spawn(&t, wa_reader, (void *)(intptr_t)fds[1], "slow-reader");
	CONF_EQ(ax_write(fds[0], big, WA_SIZE), WA_SIZE,
		"ax_write of 64 MiB to a slow reader (all or error)");
	ax_close(fds[0]);
	CONF_EQ(conf_join(t), WA_SIZE, "bytes the reader received");
	ax_close(fds[1]);
	free(big);
	return 0;
}

static void case_write_all(void)
{
	conf_run(wa_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.half_close                                                      */
/* ------------------------------------------------------------------ */

static intptr_t hc_server(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];
	size_t got = 0;
	ssize_t n;
	while ((n = ax_read(fd, buf + got, sizeof buf - got)) > 0)
		got += (size_t)n;
	CONF_EQ(n, 0, "server: ax_read after the client's SHUT_WR (EOF)");
	CONF_TRUE(got == 7 && !memcmp(buf, "request", 7),
		  "server: got %zu bytes before EOF instead of \"request\"", got);
	/* the other direction is still open */
	CONF_EQ(ax_write(fd, "reply", 5), 5, "server: ax_write after the "
		"client's SHUT_WR");
	ax_close(fd);
	return 0;
}

static intptr_t hc_main(void *arg)
{
	(void)arg;
	int fds[2];
	char buf[64];
	ax_task *t;
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	ax_spawn(&t, hc_server, (void *)(intptr_t)fds[1], "server");
	CONF_EQ(ax_write(fds[0], "request", 7), 7, "client: ax_write");
	CONF_EQ(ax_shutdown(fds[0], SHUT_WR), 0, "ax_shutdown(SHUT_WR)");
	CONF_EQ(conf_read_full(fds[0], buf, 5), 5, "client: reading the reply "
		"after SHUT_WR");
	CONF_TRUE(!memcmp(buf, "reply", 5), "client: wrong reply");
	CONF_EQ(ax_read(fds[0], buf, sizeof buf), 0, "client: EOF after the "
		"reply");
	CONF_EQ(ax_write(fds[0], "x", 1), -EPIPE, "client: ax_write after its "
		"own SHUT_WR");
	CONF_EQ(ax_shutdown(fds[0], 12345), -EINVAL, "ax_shutdown with a bad how");
	conf_join(t);
	ax_close(fds[0]);
	return 0;
}

static void case_half_close(void)
{
	conf_run(hc_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.refused                                                         */
/* ------------------------------------------------------------------ */

static intptr_t rf_main(void *arg)
{
	(void)arg;
	int l = ax_tcp_listen("127.0.0.1", 0, 1, 0);
	int port = ax_tcp_port(l);
	ax_close(l);
	/* one first, so that what an engine sets up once is not counted */
	CONF_EQ(ax_connect("127.0.0.1", (uint16_t)port), -ECONNREFUSED,
		"ax_connect to a closed port");
	char *before = conf_fd_snapshot();
	for (int i = 0; i < 3; i++)
		CONF_EQ(ax_connect("127.0.0.1", (uint16_t)port), -ECONNREFUSED,
			"ax_connect to a closed port (try %d)", i);
	CONF_EQ(ax_connect("not-an-address", 80), -EINVAL,
		"ax_connect to a malformed address");
	ax_sleep(5 * CONF_MS);
	CONF_FDS_SAME(before, "after 3 refused connects (a failed connect "
		      "leaves no descriptor)");
	free(before);
	return 0;
}

static void case_refused(void)
{
	conf_run(rf_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.peer_reset                                                      */
/* ------------------------------------------------------------------ */

static void pr_reset(int fd)
{
	struct linger lg = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	ax_close(fd);
}

static intptr_t pr_resetter(void *arg)
{
	ax_sleep(10 * CONF_MS);
	pr_reset((int)(intptr_t)arg);
	return 0;
}

static intptr_t pr_main(void *arg)
{
	(void)arg;
	int fds[2];
	char buf[64];
	ax_task *t;

	/* a read blocked when the reset arrives */
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	ax_spawn(&t, pr_resetter, (void *)(intptr_t)fds[1], "resetter");
	CONF_EQ(ax_read(fds[0], buf, sizeof buf), -ECONNRESET,
		"blocked ax_read when the peer resets");
	conf_join(t);
	ax_close(fds[0]);

	/* a read after the reset arrived */
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	pr_reset(fds[1]);
	ax_sleep(5 * CONF_MS);
	CONF_EQ(ax_read(fds[0], buf, sizeof buf), -ECONNRESET,
		"ax_read after the peer reset");
	ax_close(fds[0]);
	return 0;
}

static void case_peer_reset(void)
{
	conf_run(pr_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.epipe                                                           */
/* ------------------------------------------------------------------ */

static intptr_t ep_main(void *arg)
{
	(void)arg;
	int fds[2];
	char buf[4096] = {0};
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	ax_close(fds[1]);
	ax_sleep(2 * CONF_MS);
	ssize_t r = 0;
	int i;
	/* the first write may still be accepted; the peer answers it with a
	 * reset, after which writes fail */
	for (i = 0; i < 100 && r >= 0; i++) {
		r = ax_write(fds[0], buf, sizeof buf);
		if (r >= 0)
			ax_sleep(1 * CONF_MS);
	}
	CONF_TRUE(r == -EPIPE || r == -ECONNRESET, "ax_write to a closed peer "
		  "returned %zd after %d writes (expected -EPIPE or -ECONNRESET)",
		  r, i);
	r = ax_write(fds[0], buf, sizeof buf);
	CONF_TRUE(r == -EPIPE || r == -ECONNRESET, "a further ax_write to the "
		  "closed peer returned %zd (expected -EPIPE or -ECONNRESET)", r);
	ax_close(fds[0]);
	/* had SIGPIPE been raised, its default action had killed us */
	return 0;
}

static void case_epipe(void)
{
	sigset_t before, after;
	signal(SIGPIPE, SIG_DFL);
	pthread_sigmask(SIG_SETMASK, NULL, &before);
	conf_run(ep_main, NULL);
	pthread_sigmask(SIG_SETMASK, NULL, &after);
	CONF_EQ(sigismember(&after, SIGPIPE), sigismember(&before, SIGPIPE),
		"SIGPIPE blocked after ax_rt_run returned (the mask must be "
		"restored)");
}

/* ------------------------------------------------------------------ */
/* tcp.emfile_accept                                                   */
/* ------------------------------------------------------------------ */

#define EM_MAXFILL 4096

static intptr_t em_acceptor(void *arg)
{
	return ax_accept((int)(intptr_t)arg);
}

static intptr_t em_main(void *arg)
{
	(void)arg;
	int *fill, nfill = 0;
	struct rlimit old, low;
	char vb[32];

	int lfd = ax_tcp_listen("127.0.0.1", 0, 16, 0);
	int port = ax_tcp_port(lfd);
	/* the client socket exists before the descriptors run out */
	int cli = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!CONF_TRUE(lfd >= 0 && port > 0 && cli >= 0, "setup failed"))
		return 0;
	fill = malloc(EM_MAXFILL * sizeof *fill);

	/* run out of descriptors: a low limit, filled to the brim */
	getrlimit(RLIMIT_NOFILE, &old);
	int maxfd = 0;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			maxfd = fd;
	low = old;
	low.rlim_cur = (rlim_t)maxfd + 32;
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		conf_die("setrlimit: %s", strerror(errno));
	for (;;) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		if (nfill == EM_MAXFILL)
			conf_die("could not exhaust the descriptor table");
		fill[nfill++] = fd;
	}

	/* an accept waiting when the connection arrives */
	ax_task *t;
	ax_spawn(&t, em_acceptor, (void *)(intptr_t)lfd, "acceptor");
	int64_t cpu0 = conf_cpu_ns(), wall0 = ax_now();
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(cli, (struct sockaddr *)&sa, sizeof sa) < 0 &&
	    errno != EINPROGRESS)
		conf_die("connect: %s", strerror(errno));
	struct ax_deadline d;
	ax_deadline_enter(&d, ax_now() + 2 * CONF_S);
	intptr_t r = INTPTR_MIN;
	int jr = ax_join(t, &r);
	ax_deadline_leave(&d);
	if (jr == -ETIMEDOUT) {
		conf_fail("a pending ax_accept did not return within 2 s of a "
			  "connection arriving with no free descriptor "
			  "(expected -EMFILE)");
		ax_cancel(t);
		conf_join(t);
	} else {
		CONF_EQ(r, -EMFILE, "pending ax_accept with no free descriptor");
	}
	struct pollfd pf = {.fd = cli, .events = POLLOUT};
	poll(&pf, 1, 1000);
	conf_peer_send(cli, "Z", 1);

	/* idle with the connection still queued: the loop must not spin */
	ax_sleep(300 * CONF_MS);
	int64_t cpu = conf_cpu_ns() - cpu0, wall = ax_now() - wall0;
	CONF_TRUE(cpu * 2 < wall, "the process used %lld ms of CPU in %lld ms "
		  "while a connection waited with no free descriptor (spinning)",
		  (long long)(cpu / CONF_MS), (long long)(wall / CONF_MS));

	/* still no descriptor: a new accept fails the same way */
	ax_deadline_enter(&d, ax_now() + 2 * CONF_S);
	int a = ax_accept(lfd);
	ax_deadline_leave(&d);
	CONF_EQ(a, -EMFILE, "ax_accept with no free descriptor and a "
		"connection queued");
	if (a >= 0)
		ax_close(a);

	/* one descriptor freed: the queued connection is accepted */
	close(fill[--nfill]);
	ax_deadline_enter(&d, ax_now() + 2 * CONF_S);
	a = ax_accept(lfd);
	ax_deadline_leave(&d);
	if (CONF_TRUE(a >= 0, "ax_accept after a descriptor was freed returned "
		      "%s (the queued connection must still be there)",
		      conf_val(a, vb, sizeof vb))) {
		char c = 0;
		ax_deadline_enter(&d, ax_now() + 2 * CONF_S);
		CONF_EQ(ax_read(a, &c, 1), 1, "reading the queued client's byte");
		ax_deadline_leave(&d);
		CONF_EQ(c, 'Z', "the byte the queued client sent");
		ax_close(a);
	}
	while (nfill)
		close(fill[--nfill]);
	setrlimit(RLIMIT_NOFILE, &old);
	free(fill);
	close(cli);
	ax_close(lfd);
	return 0;
}

static void case_emfile(void)
{
	conf_run(em_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.1000_conns                                                      */
/* ------------------------------------------------------------------ */

#define K_N 1000
static int k_port, k_connected, k_served, k_ok;
static ax_chan *k_go;

static intptr_t k_handler(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16];
	if (conf_read_full(fd, buf, 8) == 8 && ax_write(fd, buf, 8) == 8 &&
	    ax_read(fd, buf, sizeof buf) == 0)
		k_served++;
	ax_close(fd);
	return 0;
}

static intptr_t k_acceptor(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (int i = 0; i < K_N; i++) {
		int fd = ax_accept(lfd);
		if (fd < 0) {
			char v[32];
			conf_fail("ax_accept of connection %d returned %s", i,
				  conf_val(fd, v, sizeof v));
			return fd;
		}
		ax_spawn(NULL, k_handler, (void *)(intptr_t)fd, "handler");
	}
	return 0;
}

static intptr_t k_client(void *arg)
{
	int id = (int)(intptr_t)arg, v;
	char out[9], in[9] = {0};
	int fd = ax_connect("127.0.0.1", (uint16_t)k_port);
	if (fd < 0) {
		char vb[32];
		conf_fail("ax_connect %d returned %s", id, conf_val(fd, vb, sizeof vb));
		k_connected++;
		return fd;
	}
	k_connected++;
	/* every connection stays open until all are */
	ax_chan_recv(k_go, &v);
	snprintf(out, sizeof out, "%08d", id);
	if (ax_write(fd, out, 8) == 8 && conf_read_full(fd, in, 8) == 8 &&
	    !memcmp(in, out, 8))
		k_ok++;
	ax_close(fd);
	return 0;
}

static intptr_t k_main(void *arg)
{
	(void)arg;
	ax_task *acc;
	int lfd = ax_tcp_listen("127.0.0.1", 0, 1024, 0);
	if (!CONF_TRUE(lfd >= 0, "ax_tcp_listen failed"))
		return 0;
	k_port = ax_tcp_port(lfd);
	ax_chan_create(&k_go, sizeof(int), 1);
	ax_spawn(&acc, k_acceptor, (void *)(intptr_t)lfd, "acceptor");
	for (int i = 0; i < K_N; i++)
		ax_spawn(NULL, k_client, (void *)(intptr_t)i, "client");
	struct ax_deadline d;
	ax_deadline_enter(&d, ax_now() + 20 * CONF_S);
	while (k_connected < K_N && ax_sleep(1 * CONF_MS) == 0)
		;
	CONF_EQ(k_connected, K_N, "clients connected at once");
	CONF_EQ(conf_join(acc), 0, "the acceptor");
	ax_deadline_leave(&d);
	ax_chan_close(k_go);
	ax_close(lfd);
	return 0;
}

static void case_1000(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * K_N + 64) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < 2 * K_N + 64)
		conf_die("RLIMIT_NOFILE hard limit %llu is too low for %d "
			 "connections", (unsigned long long)rl.rlim_max, K_N);
	conf_run(k_main, NULL);
	CONF_EQ(k_ok, K_N, "connections whose 8-byte echo came back intact");
	CONF_EQ(k_served, K_N, "connections the server served to EOF");
	ax_chan_destroy(k_go);
}

/* ------------------------------------------------------------------ */
/* tcp.close_pending                                                   */
/* ------------------------------------------------------------------ */

static intptr_t cp_reader(void *arg)
{
	char b[16];
	return ax_read((int)(intptr_t)arg, b, sizeof b);
}

static intptr_t cp_main(void *arg)
{
	(void)arg;
	int fds[2];
	ax_task *t;
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	int before = conf_fd_count();
	ax_spawn(&t, cp_reader, (void *)(intptr_t)fds[0], "reader");
	ax_sleep(2 * CONF_MS);
	CONF_EQ(ax_close(fds[0]), 0, "ax_close of a descriptor with a pending "
		"read");
	struct ax_deadline d;
	ax_deadline_enter(&d, ax_now() + 2 * CONF_S);
	intptr_t r = INTPTR_MIN;
	int j = ax_join(t, &r);
	ax_deadline_leave(&d);
	if (j == -ETIMEDOUT) {
		conf_fail("a read pending on a closed descriptor did not complete "
			  "within 2 s");
		ax_cancel(t);
		conf_join(t);
	} else {
		CONF_EQ(r, -EBADF, "a read pending when another task closed its "
			"descriptor");
	}
	ax_sleep(5 * CONF_MS);
	CONF_EQ(conf_fd_count(), before - 1, "open descriptors after ax_close");
	ax_close(fds[1]);
	return 0;
}

static void case_close_pending(void)
{
	conf_run(cp_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.busy                                                            */
/* ------------------------------------------------------------------ */

#define TB_BIG (8u << 20) /* far more than a loopback socket buffers */

static intptr_t tb_read(void *arg)
{
	char b[16];
	return ax_read((int)(intptr_t)arg, b, sizeof b);
}

static intptr_t tb_accept(void *arg)
{
	return ax_accept((int)(intptr_t)arg);
}

static char *tb_buf;

static intptr_t tb_writer(void *arg)
{
	return ax_write((int)(intptr_t)arg, tb_buf, TB_BIG);
}

static intptr_t tb_main(void *arg)
{
	(void)arg;
	int fds[2];
	char b[16];
	ax_task *rd, *wr, *ac;
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	tb_buf = calloc(1, TB_BIG);
	char *sink = malloc(TB_BIG);
	if (!tb_buf || !sink)
		conf_die("out of memory");
	/* one read and one write pending together on fds[0] */
	ax_spawn(&rd, tb_read, (void *)(intptr_t)fds[0], "reader");
	ax_spawn(&wr, tb_writer, (void *)(intptr_t)fds[0], "writer");
	ax_sleep(2 * CONF_MS);
	CONF_EQ(ax_read(fds[0], b, sizeof b), -EBUSY,
		"a second ax_read while a read is pending on the descriptor");
	CONF_EQ(ax_write(fds[0], "x", 1), -EBUSY,
		"a second ax_write while a write is pending on the descriptor");
	/* both pending ones still complete: the peer sends, then drains */
	CONF_EQ(conf_peer_send(fds[1], "hello", 5), 0, "peer send");
	CONF_EQ(CONF_JOIN_WITHIN(rd, 2 * CONF_S, "the pending read"), 5,
		"the read pending beside a write");
	CONF_EQ(conf_read_full(fds[1], sink, TB_BIG), TB_BIG,
		"peer reads everything written");
	CONF_EQ(CONF_JOIN_WITHIN(wr, 5 * CONF_S, "the pending write"), TB_BIG,
		"the write pending beside a read");
	/* the sides are free again */
	CONF_EQ(ax_write(fds[0], "y", 1), 1, "a write once the other ended");
	CONF_EQ(ax_read(fds[1], b, 1), 1, "the peer reads it");
	/* ax_accept takes a listener's read side */
	int lfd = ax_tcp_listen(NULL, 0, 16, 0);
	if (CONF_TRUE(lfd >= 0, "ax_tcp_listen: %d", lfd)) {
		ax_spawn(&ac, tb_accept, (void *)(intptr_t)lfd, "acceptor");
		ax_sleep(2 * CONF_MS);
		CONF_EQ(ax_accept(lfd), -EBUSY,
			"a second ax_accept while one is pending on the listener");
		int c = ax_connect(NULL, (uint16_t)ax_tcp_port(lfd));
		CONF_TRUE(c >= 0, "ax_connect: %d", c);
		intptr_t a = CONF_JOIN_WITHIN(ac, 2 * CONF_S, "the pending accept");
		CONF_TRUE(a >= 0, "the pending accept: %ld", (long)a);
		if (a >= 0)
			ax_close((int)a);
		if (c >= 0)
			ax_close(c);
		ax_close(lfd);
	}
	free(sink);
	free(tb_buf);
	ax_close(fds[0]);
	ax_close(fds[1]);
	return 0;
}

static void case_busy(void)
{
	conf_run(tb_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.deadline                                                        */
/* ------------------------------------------------------------------ */

#define TD_CHECK(what, call)                                                 \
	do {                                                                 \
		struct ax_deadline d_;                                       \
		int64_t t0_ = ax_now();                                      \
		ax_deadline_enter(&d_, t0_ + 20 * CONF_MS);                  \
		long long r_ = (call);                                       \
		int64_t el_ = ax_now() - t0_;                                \
		ax_deadline_leave(&d_);                                      \
		CONF_EQ(r_, -ETIMEDOUT, "%s in a 20 ms deadline scope", what); \
		CONF_TRUE(el_ >= 20 * CONF_MS && el_ < 3 * CONF_S,           \
			  "%s in a 20 ms deadline scope returned after %lld us", \
			  what, (long long)(el_ / 1000));                    \
	} while (0)

static intptr_t td_main(void *arg)
{
	(void)arg;
	int fds[2];
	char buf[64];
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	TD_CHECK("ax_read on an idle connection", ax_read(fds[0], buf, sizeof buf));
	/* the timed-out read consumed nothing: data sent now is read whole */
	conf_peer_send(fds[1], "after", 5);
	CONF_EQ(conf_read_full(fds[0], buf, 5), 5, "ax_read after a timed-out "
		"read");
	CONF_TRUE(!memcmp(buf, "after", 5), "data after a timed-out read was "
		  "corrupted");

	int lfd = ax_tcp_listen("127.0.0.1", 0, 4, 0);
	TD_CHECK("ax_accept on an idle listener", ax_accept(lfd));
	ax_close(lfd);

	size_t big = 32u << 20;
	char *p = calloc(1, big);
	TD_CHECK("ax_write of 32 MiB to a peer that does not read",
		 ax_write(fds[0], p, big));
	free(p);
	ax_close(fds[0]);
	ax_close(fds[1]);
	return 0;
}

static void case_deadline(void)
{
	conf_run(td_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.listen_errors                                                   */
/* ------------------------------------------------------------------ */

static intptr_t le_main(void *arg)
{
	(void)arg;
	char vb[32];
	int l = ax_tcp_listen(NULL, 0, 8, 0);
	if (!CONF_TRUE(l >= 0, "ax_tcp_listen(NULL, 0) returned %s",
		       conf_val(l, vb, sizeof vb)))
		return 0;
	int port = ax_tcp_port(l);
	CONF_TRUE(port > 0, "ax_tcp_port returned %d", port);
	CONF_TRUE(fcntl(l, F_GETFL) & O_NONBLOCK, "listener not non-blocking");
	CONF_TRUE(fcntl(l, F_GETFD) & FD_CLOEXEC, "listener not close-on-exec");
	CONF_EQ(ax_tcp_listen("127.0.0.1", (uint16_t)port, 8, 0), -EADDRINUSE,
		"ax_tcp_listen on a port in use");
	CONF_EQ(ax_tcp_listen("1.2.3", 0, 8, 0), -EINVAL,
		"ax_tcp_listen on a malformed address");
	int c = ax_connect(NULL, (uint16_t)port);
	CONF_TRUE(c >= 0, "ax_connect(NULL host) returned %s",
		  conf_val(c, vb, sizeof vb));
	int a = ax_accept(l);
	if (CONF_TRUE(a >= 0, "ax_accept returned %s", conf_val(a, vb, sizeof vb))) {
		CONF_TRUE(fcntl(a, F_GETFL) & O_NONBLOCK,
			  "accepted descriptor not non-blocking");
		CONF_TRUE(fcntl(a, F_GETFD) & FD_CLOEXEC,
			  "accepted descriptor not close-on-exec");
		CONF_EQ(ax_tcp_nodelay(a, true), 0, "ax_tcp_nodelay");
		ax_close(a);
	}
	if (c >= 0) {
		CONF_TRUE(fcntl(c, F_GETFL) & O_NONBLOCK,
			  "connected descriptor not non-blocking");
		CONF_TRUE(fcntl(c, F_GETFD) & FD_CLOEXEC,
			  "connected descriptor not close-on-exec");
		ax_close(c);
	}
	ax_close(l);
	/* IPv6 loopback, where the machine has it */
	int l6 = ax_tcp_listen("::1", 0, 8, 0);
	if (l6 >= 0) {
		int p6 = ax_tcp_port(l6);
		int c6 = ax_connect("::1", (uint16_t)p6);
		CONF_TRUE(c6 >= 0, "ax_connect(::1) returned %s",
			  conf_val(c6, vb, sizeof vb));
		int a6 = ax_accept(l6);
		CONF_TRUE(a6 >= 0, "ax_accept on ::1 returned %s",
			  conf_val(a6, vb, sizeof vb));
		if (c6 >= 0)
			ax_close(c6);
		if (a6 >= 0)
			ax_close(a6);
		ax_close(l6);
	}
	return 0;
}

static void case_listen_errors(void)
{
	conf_run(le_main, NULL);
}

/* ------------------------------------------------------------------ */
/* tcp.lateness_io                                                     */
/* ------------------------------------------------------------------ */

/* As time.lateness_busy, lateness is counted in work: 16 KiB chunks the
 * streams moved after the sleep's deadline passed and before the sleeper
 * resumed. */
#define LI_BOUND 20000
static volatile int li_stop;
static volatile int64_t li_deadline = INT64_MAX;
static int li_after;

static intptr_t li_writer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static char chunk[16384];
	int64_t end = ax_now() + 10 * CONF_S;
	while (!li_stop && ax_now() < end) {
		if (ax_write(fd, chunk, sizeof chunk) < 0)
			break;
		if (ax_now() >= li_deadline)
			li_after++;
	}
	ax_shutdown(fd, SHUT_WR);
	return 0;
}

static intptr_t li_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	while (ax_read(fd, buf, sizeof buf) > 0)
		if (ax_now() >= li_deadline)
			li_after++;
	return 0;
}

static intptr_t li_main(void *arg)
{
	(void)arg;
	int a[2], b[2];
	ax_task *t[4];
	int worst = 0;
	if (!CONF_EQ(conf_tcp_pair(a), 0, "loopback pair") ||
	    !CONF_EQ(conf_tcp_pair(b), 0, "loopback pair"))
		return 0;
	ax_spawn(&t[0], li_reader, (void *)(intptr_t)a[1], "reader");
	ax_spawn(&t[1], li_reader, (void *)(intptr_t)b[1], "reader");
	ax_spawn(&t[2], li_writer, (void *)(intptr_t)a[0], "writer");
	ax_spawn(&t[3], li_writer, (void *)(intptr_t)b[0], "writer");
	for (int i = 0; i < 20; i++) {
		int64_t t0 = ax_now();
		li_after = 0;
		li_deadline = t0 + 5 * CONF_MS;
		CONF_EQ(ax_sleep(5 * CONF_MS), 0, "ax_sleep beside streams");
		li_deadline = INT64_MAX;
		int64_t late = ax_now() - t0 - 5 * CONF_MS;
		CONF_TRUE(late >= 0, "a sleep ended %lld ns early", (long long)-late);
		if (li_after > worst)
			worst = li_after;
	}
	li_stop = 1;
	for (int i = 0; i < 4; i++)
		conf_join(t[i]);
	CONF_TRUE(worst <= LI_BOUND, "a 5 ms sleep resumed only after two "
		  "loopback streams moved %d chunks of 16 KiB past its deadline "
		  "(bound %d): timers starve behind ready I/O", worst, LI_BOUND);
	ax_close(a[0]);
	ax_close(a[1]);
	ax_close(b[0]);
	ax_close(b[1]);
	return 0;
}

static void case_lateness_io(void)
{
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.hog_threshold_ns = 0;
	conf_run_opts(li_main, NULL, &o);
}

const struct conf_case conf_cases_tcp[] = {
	{"tcp.short_read", "[AX-TCP-1] ax_read returns at most n bytes, as soon "
	 "as some are there (short counts), never waiting to fill the buffer",
	 "4-byte reads reassemble 10 bytes; a 64 KiB read returns 5 available "
	 "bytes", AX_FEAT_TCP, 10, 0, case_short_read},
	{"tcp.eof", "[AX-TCP-2] ax_read returns 0 at EOF, again and again, also "
	 "when blocked as the peer closes",
	 "data then EOF twice; a blocked read woken by the close",
	 AX_FEAT_TCP, 10, 0, case_eof},
	{"tcp.write_all_64m", "[AX-TCP-4] ax_write returns the full length or "
	 "-errno, never a short count",
	 "one 64 MiB ax_write to a reader that pauses every MiB; every byte "
	 "checked", AX_FEAT_TCP, 30, CONF_SERIAL, case_write_all},
	{"tcp.half_close", "[AX-TCP-6] after SHUT_WR the peer reads EOF and this "
	 "side can still read",
	 "request, SHUT_WR, the server answers after EOF, the client reads the "
	 "reply", AX_FEAT_TCP, 10, 0, case_half_close},
	{"tcp.refused", "[AX-TCP-13] ax_connect returns -ECONNREFUSED for a closed port and "
	 "-EINVAL for a malformed address, leaving no descriptor",
	 "three connects to a closed port, one to a bad address",
	 AX_FEAT_TCP, 10, 0, case_refused},
	{"tcp.peer_reset", "[AX-TCP-3] a peer reset is -ECONNRESET",
	 "SO_LINGER 0 close while a read is blocked, and before a read",
	 AX_FEAT_TCP, 10, 0, case_peer_reset},
	{"tcp.epipe", "[AX-TCP-5] [AX-TCP-7] writing to a closed peer returns "
	 "-EPIPE (or -ECONNRESET) and never raises SIGPIPE; the signal mask is "
	 "restored after ax_rt_run",
	 "write to a closed peer with SIGPIPE at its default action (fatal)",
	 AX_FEAT_TCP, 10, 0, case_epipe},
	{"tcp.emfile_accept", "[AX-TCP-8] with no free descriptor ax_accept "
	 "returns -EMFILE without spinning, the connection stays queued, and a "
	 "later accept succeeds once a descriptor is freed",
	 "exhaust RLIMIT_NOFILE, connect, measure CPU while idle, free one fd, "
	 "accept", AX_FEAT_TCP, 15, CONF_SERIAL, case_emfile},
	{"tcp.1000_conns", "[AX-TCP-1] [AX-TCP-4] 1000 connections open at once "
	 "each echo intact",
	 "1000 client tasks connect, wait for all, then each echoes 8 bytes",
	 AX_FEAT_TCP, 30, CONF_SERIAL, case_1000},
	{"tcp.close_pending", "[AX-TCP-15] ax_close: pending operations of other tasks on the "
	 "descriptor complete with -EBADF",
	 "close a descriptor while another task is blocked reading it",
	 AX_FEAT_TCP, 10, 0, case_close_pending},
	{"tcp.busy", "[AX-TCP-9] at most one read (or accept) and one write "
	 "pending per descriptor: a second one on a busy side returns -EBUSY; "
	 "a read and a write pending together both complete",
	 "a second read, write and accept beside pending ones; then the "
	 "pending read and 8 MiB write complete",
	 AX_FEAT_TCP, 15, 0, case_busy},
	{"tcp.deadline", "[AX-GEN-2] [AX-DL-1] ax_read, ax_accept and ax_write "
	 "return -ETIMEDOUT when the deadline passes; a timed-out read loses "
	 "no data", "read, accept, and a blocked 32 MiB write in 20 ms scopes",
	 AX_FEAT_TCP, 15, 0, case_deadline},
	{"tcp.listen_errors", "[AX-TCP-10] [AX-TCP-12] [AX-TCP-13] ax_tcp_listen/ax_accept/ax_connect: -EADDRINUSE, "
	 "-EINVAL for a bad host, non-blocking close-on-exec descriptors, IPv6",
	 "listen on a used port and a bad address; check descriptor flags",
	 AX_FEAT_TCP, 10, 0, case_listen_errors},
	{"tcp.lateness_io", "[AX-TIME-1] timers fire on time while streams keep "
	 "the loop busy (within 20000 chunks of other I/O past the deadline)",
	 "20 sleeps of 5 ms beside two saturated loopback streams",
	 AX_FEAT_TCP, 15, 0, case_lateness_io},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
