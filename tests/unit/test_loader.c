/*
 * test_loader.c - ax_driver_load [AX-DRV-2]: every way a shared object can
 * be wrong is refused with its error and a reason that names the cause,
 * and nothing of it stays registered; the example driver of
 * examples/out-of-tree-driver/ loads, is found by its own name, and runs a
 * TCP round trip and a timer. The objects' paths come from the command
 * line (tests/CMakeLists.txt): the good driver first, then the BAD_*
 * variants of bad_driver.c in the order of `bad` below.
 */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "t.h"

/* What each BAD_* variant must produce: the error and a word of the
 * reason. */
static const struct {
	const char *variant;
	int err;
	const char *says;
} bad[] = {
	{"magic", -EPROTO, "magic"},
	{"abi", -EPROTO, "AX_DRIVER_ABI"},
	{"api", -EPROTO, "AX_API_VERSION"},
	{"size", -EPROTO, "sizeof(struct ax_op)"},
	{"null_driver", -EINVAL, "names no driver"},
	{"vtable_version", -EPROTO, "AX_DRIVER_VERSION"},
	{"no_poll", -EINVAL, "mandatory"},
	{"name_taken", -EEXIST, "'epoll'"},
	{"no_entry", -ENOEXEC, "ax_driver_entry"},
	{"function_entry", -EPROTO, "a function"},
	{"undefined", -ELIBBAD, "ax__no_such_function"},
};

/* One refusal: the error, the reason, and the registry unchanged. */
static void lt_refused(const char *path, int err, const char *says)
{
	char why[512] = "";
	const struct ax_driver *d = (const struct ax_driver *)1;
	size_t before = ax_driver_count();
	int r = ax_driver_load(path, &d, why, sizeof why);
	if (r != err || !strstr(why, says))
		fprintf(stderr, "%s: got %d (%s), want %d with '%s'\n", path, r, why,
			err, says);
	CHECK_EQ(r, err);
	CHECK(strstr(why, says) != NULL);
	CHECK(d == (const struct ax_driver *)1); /* *out untouched */
	CHECK_EQ(ax_driver_count(), before);
}

/* A loopback echo of one message and a 2 ms sleep, as a task. */
static intptr_t lt_task(void *arg)
{
	(void)arg;
	int lfd = ax_tcp_listen(NULL, 0, 8, 0);
	if (lfd < 0)
		return lfd;
	int port = ax_tcp_port(lfd);
	int c = ax_connect("127.0.0.1", (uint16_t)port);
	int s = ax_accept(lfd);
	char buf[8] = "";
	intptr_t bad = c < 0 || s < 0 || ax_write(c, "ping", 4) != 4 ||
		       ax_read(s, buf, sizeof buf) != 4 || memcmp(buf, "ping", 4);
	int64_t t0 = ax_now();
	bad |= ax_sleep(2000000) != 0 || ax_now() - t0 < 2000000;
	ax_close(c);
	ax_close(s);
	ax_close(lfd);
	return bad;
}

int main(int argc, char **argv)
{
	size_t nbad = sizeof bad / sizeof bad[0];
	if (argc != 2 + (int)nbad) {
		fprintf(stderr, "usage: test_loader GOOD.so BAD.so x %zu\n", nbad);
		return 2;
	}
	for (size_t i = 0; i < nbad; i++) {
		fprintf(stderr, "refusal: %s\n", bad[i].variant);
		lt_refused(argv[2 + i], bad[i].err, bad[i].says);
	}

	/* not shared objects at all */
	char txt[] = "/tmp/ax-test-loader-XXXXXX";
	int fd = mkstemp(txt);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "not ELF\n", 8), 8);
	close(fd);
	lt_refused(txt, -ELIBBAD, "dlopen");
	unlink(txt);
	lt_refused("/nonexistent/libx.so", -ENOENT, "No such file");
	lt_refused("libx.so", -EINVAL, "'/'");
	lt_refused("", -EINVAL, "no path");

	/* the example: loaded once, found by its name, runs */
	const struct ax_driver *d = NULL;
	char why[512] = "";
	int r = ax_driver_load(argv[1], &d, why, sizeof why);
	if (r)
		fprintf(stderr, "%s: %s\n", argv[1], why);
	CHECK_EQ(r, 0);
	if (r == 0) {
		CHECK(!strcmp(d->name, "oneshot"));
		CHECK(ax_driver_available("oneshot", NULL, 0));
		CHECK_EQ(ax_driver_load(argv[1], NULL, why, sizeof why), -EEXIST);
		ax_rt *rt;
		CHECK_EQ(ax_rt_create(&rt, "oneshot", NULL), 0);
		intptr_t res = -1;
		CHECK_EQ(ax_rt_run(rt, lt_task, NULL, &res), 0);
		CHECK_EQ(res, 0);
		CHECK_EQ(ax_rt_destroy(rt), 0);
	}
	if (t_failures)
		fprintf(stderr, "%d check(s) failed\n", t_failures);
	return t_failures ? 1 : 0;
}
