/* test_io.c - TCP and files: echo, short reads, EOF, half-close, refused
 * connect, peer reset, EPIPE without SIGPIPE, a large write to a slow
 * reader, pread/pwrite, and no descriptor left behind. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "t.h"

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1;
}

static intptr_t echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	ssize_t n;
	while ((n = ax_read(fd, buf, sizeof buf)) > 0)
		if (ax_write(fd, buf, (size_t)n) != n)
			break;
	ax_close(fd);
	return 0;
}

static intptr_t echo_server(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	int fd = ax_accept(lfd);
	CHECK(fd >= 0);
	return echo_conn((void *)(intptr_t)fd);
}

#define BIG (8u << 20)

static intptr_t slow_reader(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	int fd = ax_accept(lfd);
	unsigned char *buf = malloc(65536);
	size_t got = 0;
	ssize_t n;
	ax_sleep(20000000); /* let the writer fill the socket buffers */
	while ((n = ax_read(fd, buf, 65536)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != (unsigned char)((got + (size_t)i) * 7)) {
				CHECK(!"corrupt byte");
				n = -1;
				break;
			}
		if (n < 0)
			break;
		got += (size_t)n;
	}
	free(buf);
	ax_close(fd);
	return (intptr_t)got;
}

static intptr_t io_main(void *arg)
{
	(void)arg;
	int lfd = ax_tcp_listen("127.0.0.1", 0, 128, 0);
	CHECK(lfd >= 0);
	int port = ax_tcp_port(lfd);
	CHECK(port > 0);

	/* echo and short reads [AX-TCP-1] */
	ax_task *srv;
	ax_spawn(&srv, echo_server, (void *)(intptr_t)lfd, "echo");
	int fd = ax_connect("127.0.0.1", (uint16_t)port);
	CHECK(fd >= 0);
	CHECK_EQ(ax_tcp_nodelay(fd, true), 0);
	CHECK_EQ(ax_write(fd, "hello", 5), 5);
	char buf[64];
	size_t got = 0;
	while (got < 5) {
		ssize_t n = ax_read(fd, buf + got, 2); /* short on purpose */
		CHECK(n > 0 && n <= 2);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK(memcmp(buf, "hello", 5) == 0);
	/* half-close: the server sees EOF, closes; we read EOF [AX-TCP-6] */
	CHECK_EQ(ax_shutdown(fd, SHUT_WR), 0);
	CHECK_EQ(ax_read(fd, buf, sizeof buf), 0); /* [AX-TCP-2] */
	ax_close(fd);
	ax_join(srv, NULL);

	/* a large write-all to a slow reader [AX-TCP-4] */
	ax_task *rd;
	ax_spawn(&rd, slow_reader, (void *)(intptr_t)lfd, "slow");
	fd = ax_connect("127.0.0.1", (uint16_t)port);
	unsigned char *big = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 7);
	CHECK_EQ(ax_write(fd, big, BIG), BIG);
	ax_close(fd);
	free(big);
	intptr_t total = 0;
	ax_join(rd, &total);
	CHECK_EQ(total, BIG);

	/* connect refused */
	int l2 = ax_tcp_listen("127.0.0.1", 0, 1, 0);
	int dead_port = ax_tcp_port(l2);
	ax_close(l2);
	CHECK_EQ(ax_connect("127.0.0.1", (uint16_t)dead_port), -ECONNREFUSED);
	CHECK_EQ(ax_connect("not-an-address", 1), -EINVAL);

	/* peer reset [AX-TCP-3] and EPIPE without SIGPIPE [AX-TCP-5] */
	fd = ax_connect("127.0.0.1", (uint16_t)port);
	int afd = ax_accept(lfd);
	CHECK(afd >= 0);
	struct linger lg = {1, 0};
	setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	ax_close(afd);
	ssize_t r = ax_read(fd, buf, sizeof buf);
	CHECK_EQ(r, -ECONNRESET);
	ax_close(fd);

	fd = ax_connect("127.0.0.1", (uint16_t)port);
	afd = ax_accept(lfd);
	ax_close(afd);
	ax_sleep(1000000);
	r = 0;
	for (int i = 0; i < 100 && r >= 0; i++)
		r = ax_write(fd, buf, sizeof buf);
	CHECK(r == -EPIPE || r == -ECONNRESET);
	ax_close(fd);

	/* port in use */
	CHECK_EQ(ax_tcp_listen("127.0.0.1", (uint16_t)port, 1, 0), -EADDRINUSE);
	CHECK_EQ(ax_tcp_listen("1.2.3", 0, 1, 0), -EINVAL);
	ax_close(lfd);

	/* files [AX-FILE-1] */
	char path[] = "/tmp/ax-test-io-XXXXXX";
	int ffd = mkstemp(path);
	CHECK(ffd >= 0);
	unlink(path);
	CHECK_EQ(ax_pwrite(ffd, "0123456789", 10, 100), 10);
	memset(buf, 0, sizeof buf);
	CHECK_EQ(ax_pread(ffd, buf, 4, 103), 4);
	CHECK(memcmp(buf, "3456", 4) == 0);
	CHECK_EQ(ax_pread(ffd, buf, 4, 1000), 0);
	close(ffd);
	return 0;
}

static intptr_t nop_main(void *arg)
{
	(void)arg;
	return 0;
}

int main(void)
{
	/* Some engines keep process-wide state from their first use (libuv's
	 * signal pipe and thread pool); the conformance case rt.no_fd_left
	 * reports that. This test checks that a runtime leaks nothing of its
	 * own, so it takes the baseline after one warm-up runtime. */
	t_run(nop_main, NULL);
	int before = count_fds();
	signal(SIGPIPE, SIG_DFL); /* a raised SIGPIPE would kill the test */
	t_run(io_main, NULL);
	CHECK_EQ(count_fds(), before); /* [AX-RT-2] */
	return t_done("io");
}
