/* test_sched.c - tasks and the scheduler: eager spawn, join results, FIFO
 * order and ax_yield, detach, spawning from tasks, many live tasks, dumps. */
#include "t.h"

static char order[64];
static int norder;

static void mark(char c)
{
	if (norder < (int)sizeof order - 1)
		order[norder++] = c;
}

static intptr_t child_mark(void *arg)
{
	mark(*(char *)arg);
	return (intptr_t)*(char *)arg;
}

/* [AX-TASK-1]: the child runs before spawn returns. */
static intptr_t eager_main(void *arg)
{
	(void)arg;
	ax_task *t;
	static char c = 'c';
	mark('a');
	CHECK_EQ(ax_spawn(&t, child_mark, &c, "child"), 0);
	mark('b');
	intptr_t res = 0;
	CHECK_EQ(ax_join(t, &res), 0);
	CHECK_EQ(res, 'c');
	return 42;
}

static intptr_t yielder(void *arg)
{
	char c = *(char *)arg;
	for (int i = 0; i < 3; i++) {
		mark(c);
		CHECK_EQ(ax_yield(), 0);
	}
	return 0;
}

/* [AX-TASK-3]: yield runs every other ready task first, FIFO. */
static intptr_t yield_main(void *arg)
{
	(void)arg;
	static char a = 'x', b = 'y', c = 'z';
	ax_task *t[3];
	ax_spawn(&t[0], yielder, &a, "x");
	ax_spawn(&t[1], yielder, &b, "y");
	ax_spawn(&t[2], yielder, &c, "z");
	for (int i = 0; i < 3; i++)
		CHECK_EQ(ax_join(t[i], NULL), 0);
	return 0;
}

/* Suspends once, so that every child spawned in a row is live at once. */
static intptr_t sum_child(void *arg)
{
	ax_yield();
	return (intptr_t)arg * 2;
}

static intptr_t nested(void *arg)
{
	intptr_t depth = (intptr_t)arg;
	if (depth == 0)
		return 1;
	ax_task *a, *b;
	intptr_t ra = 0, rb = 0;
	CHECK_EQ(ax_spawn(&a, nested, (void *)(depth - 1), "n"), 0);
	CHECK_EQ(ax_spawn(&b, nested, (void *)(depth - 1), "n"), 0);
	ax_join(a, &ra);
	ax_join(b, &rb);
	return ra + rb;
}

static int detached_ran;
static intptr_t detached_fn(void *arg)
{
	(void)arg;
	ax_yield();
	detached_ran++;
	return 0;
}

static intptr_t many_main(void *arg)
{
	intptr_t n = (intptr_t)arg;
	ax_task **v = calloc((size_t)n, sizeof *v);
	for (intptr_t i = 0; i < n; i++)
		CHECK_EQ(ax_spawn(&v[i], sum_child, (void *)i, NULL), 0);
	struct ax_rt_stats st;
	ax_rt_stats(ax_rt_current(), &st);
	CHECK_EQ(st.tasks_live, (uint64_t)n + 1); /* all of them, and main */
	intptr_t total = 0;
	for (intptr_t i = 0; i < n; i++) {
		intptr_t r = 0;
		CHECK_EQ(ax_join(v[i], &r), 0);
		total += r;
	}
	free(v);
	CHECK_EQ(total, n * (n - 1));
	for (int i = 0; i < 10; i++)
		CHECK_EQ(ax_spawn(NULL, detached_fn, NULL, "detached"), 0);
	/* join errors */
	CHECK_EQ(ax_join(ax_current(), NULL), -EINVAL);
	return nested((void *)6);
}

static intptr_t blocker(void *arg)
{
	ax_chan *c = arg;
	int v;
	return ax_chan_recv(c, &v);
}

/* [AX-TASK-5]: the dump names a blocked task and what it waits on. */
static intptr_t dump_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	ax_task *t;
	CHECK_EQ(ax_chan_create(&c, sizeof(int), 1), 0);
	CHECK_EQ(ax_spawn(&t, blocker, c, "the-blocker"), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int n = ax_dump(ax_rt_current(), f);
	fclose(f);
	CHECK(n >= 2);
	CHECK(strstr(buf, "the-blocker") != NULL);
	CHECK(strstr(buf, "blocked") != NULL);
	CHECK(strstr(buf, "recv") != NULL);
	CHECK(strstr(buf, "test_sched.c") != NULL);
	free(buf);
	ax_chan_close(c);
	intptr_t r = 0;
	CHECK_EQ(ax_join(t, &r), 0);
	CHECK_EQ(r, -EPIPE);
	CHECK_EQ(ax_chan_destroy(c), 0);
	return 0;
}

static intptr_t live_forever(void *arg)
{
	(void)arg;
	return ax_sleep(3600ll * 1000000000);
}

static intptr_t busy_main(void *arg)
{
	ax_rt *rt = arg;
	/* destroy from inside a running runtime: an error, not a crash */
	CHECK_EQ(ax_rt_destroy(rt), -EBUSY);
	CHECK_EQ(ax_rt_run(rt, live_forever, NULL, NULL), -EBUSY);
	return 0;
}

int main(void)
{
	CHECK_EQ(t_run(eager_main, NULL), 42);
	order[norder] = 0;
	CHECK(strcmp(order, "acb") == 0);

	norder = 0;
	t_run(yield_main, NULL);
	order[norder] = 0;
	CHECK(strcmp(order, "xyzxyzxyz") == 0);
	if (strcmp(order, "xyzxyzxyz"))
		fprintf(stderr, "order: %s\n", order);

	CHECK_EQ(t_run(many_main, (void *)T_MANY_TASKS), 64);
	CHECK_EQ(detached_ran, 10);
	t_run(dump_main, NULL);

	ax_rt *rt = t_rt();
	CHECK_EQ(ax_rt_run(rt, busy_main, rt, NULL), 0);
	CHECK_EQ(ax_rt_destroy(rt), 0);

	/* outside a task */
	CHECK_EQ(ax_yield(), -EPERM);
	CHECK_EQ(ax_sleep(1), -EPERM);
	CHECK(ax_current() == NULL);
	CHECK_EQ(ax_rt_create(&rt, "no-such-runtime", NULL), -ENOENT);
	return t_done("sched");
}
