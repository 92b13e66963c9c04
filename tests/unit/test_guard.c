/* test_guard.c - a stack overflow ends the process with a message naming the
 * task, instead of corrupting memory (run in a child process). Also the
 * hand-written context switch keeps callee-saved state across switches. */
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"

static volatile int sink;

static int recurse(int n)
{
	volatile char pad[1024];
	pad[0] = (char)n;
	sink += pad[0];
	return n > 0 ? recurse(n - 1) + pad[0] : 0;
}

static intptr_t overflow(void *arg)
{
	(void)arg;
	return recurse(1 << 20);
}

static intptr_t overflow_main(void *arg)
{
	(void)arg;
	ax_task *t;
	ax_spawn(&t, overflow, NULL, "deep-recursion");
	ax_join(t, NULL);
	return 0;
}

static intptr_t fp_task(void *arg)
{
	double x = *(double *)arg;
	for (int i = 0; i < 100; i++) {
		x = x * 1.0001 + 0.5;
		ax_yield();
	}
	*(double *)arg = x;
	return 0;
}

static intptr_t ctx_main(void *arg)
{
	(void)arg;
	double a = 1.0, b = 2.0, expect_a = 1.0, expect_b = 2.0;
	for (int i = 0; i < 100; i++) {
		expect_a = expect_a * 1.0001 + 0.5;
		expect_b = expect_b * 1.0001 + 0.5;
	}
	ax_task *x, *y;
	ax_spawn(&x, fp_task, &a, "fa");
	ax_spawn(&y, fp_task, &b, "fb");
	ax_join(x, NULL);
	ax_join(y, NULL);
	CHECK(a == expect_a && b == expect_b);
	return 0;
}

int main(void)
{
	t_run(ctx_main, NULL);

	int p[2];
	CHECK_EQ(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		t_run(overflow_main, NULL);
		_exit(0);
	}
	close(p[1]);
	char buf[4096] = "";
	size_t got = 0;
	ssize_t n;
	while ((n = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(WIFSIGNALED(st));
	CHECK(strstr(buf, "stack overflow") != NULL);
	CHECK(strstr(buf, "deep-recursion") != NULL);
	if (t_failures)
		fprintf(stderr, "child status %d, stderr: %s\n", st, buf);
	return t_done("guard");
}
