/* c_task.c - conformance cases for tasks: eager spawn, join, yield order,
 * nested and detached spawns, 100k live tasks, stack overflow reporting,
 * the task dump and hog detection. */
#include "conform.h"

#include <alloca.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* task.spawn_eager                                                    */
/* ------------------------------------------------------------------ */

static char eager_log[64];
static size_t eager_n;

static void eager_mark(char c)
{
	if (eager_n + 1 < sizeof eager_log)
		eager_log[eager_n++] = c;
	eager_log[eager_n] = 0;
}

static intptr_t eager_yielder(void *arg)
{
	(void)arg;
	eager_mark('x');
	ax_yield();
	eager_mark('X');
	return 0;
}

static intptr_t eager_grandchild(void *arg)
{
	(void)arg;
	eager_mark('g');
	return 0;
}

static intptr_t eager_child(void *arg)
{
	(void)arg;
	ax_task *g;
	eager_mark('y');
	ax_spawn(&g, eager_grandchild, NULL, "eager-grandchild");
	/* nested: the grandchild ran before spawn returned */
	eager_mark('Y');
	conf_join(g);
	return 0;
}

static intptr_t eager_main(void *arg)
{
	(void)arg;
	ax_task *x, *y;
	eager_mark('m');
	CONF_EQ(ax_spawn(&x, eager_yielder, NULL, "eager-x"), 0, "ax_spawn");
	CONF_TRUE(!strcmp(eager_log, "mx"),
		  "after the first spawn returned, expected log \"mx\" (the "
		  "child ran until it yielded), got \"%s\"", eager_log);
	/* x is ready now; the parent of the next spawn resumes before it */
	CONF_EQ(ax_spawn(&y, eager_child, NULL, "eager-y"), 0, "ax_spawn");
	CONF_TRUE(!strcmp(eager_log, "mxygY"),
		  "after the second spawn returned, expected log \"mxygY\" "
		  "(child and grandchild ran at once, and the parent resumed "
		  "before the ready task x), got \"%s\"", eager_log);
	conf_join(x);
	conf_join(y);
	CONF_TRUE(!strcmp(eager_log, "mxygYX"), "final log: expected \"mxygYX\", "
		  "got \"%s\"", eager_log);
	return 0;
}

static void case_spawn_eager(void)
{
	conf_run(eager_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.join_result                                                    */
/* ------------------------------------------------------------------ */

static intptr_t ret_after_sleep(void *arg)
{
	ax_sleep(2 * CONF_MS);
	return (intptr_t)arg;
}

static intptr_t ret_now(void *arg)
{
	return (intptr_t)arg;
}

static intptr_t join_other(void *arg)
{
	intptr_t r = INTPTR_MIN;
	int e = ax_join(arg, &r);
	return e < 0 ? e : r;
}

static intptr_t join_main(void *arg)
{
	(void)arg;
	ax_task *t, *j;
	intptr_t r = 0;

	/* a task that suspends before it ends */
	ax_spawn(&t, ret_after_sleep, (void *)(intptr_t)42, "sleep-42");
	CONF_EQ(ax_join(t, &r), 0, "join of a sleeping task");
	CONF_EQ(r, 42, "result of a task that slept");
	/* a task that already ended (eager spawn ran it to its end) */
	ax_spawn(&t, ret_now, (void *)(intptr_t)-7, "ret-7");
	CONF_EQ(ax_join(t, &r), 0, "join of an ended task");
	CONF_EQ(r, -7, "result of an ended task");
	ax_spawn(&t, ret_now, (void *)(intptr_t)1, "ret-1");
	CONF_EQ(ax_join(t, NULL), 0, "join with a NULL result");
	/* the caller itself */
	CONF_EQ(ax_join(ax_current(), &r), -EINVAL, "join of the caller");
	/* a task that already has a joiner */
	ax_spawn(&t, ret_after_sleep, (void *)(intptr_t)5, "sleep-5");
	ax_spawn(&j, join_other, t, "joiner");
	CONF_EQ(ax_join(t, &r), -EINVAL, "second joiner of one task");
	CONF_EQ(CONF_JOIN_WITHIN(j, 2 * CONF_S, "the first joiner"), 5,
		"the first joiner's result");
	return 0;
}

static void case_join_result(void)
{
	conf_run(join_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.join_interrupted                                               */
/* ------------------------------------------------------------------ */

static int slow_done;
static ax_chan *slow_gate;

/* Ends only when the main task opens the gate, so that it is certainly
 * still running while its joins are interrupted (a timed sleep was not:
 * on a loaded machine the main task's 2 ms sleep could outlast it). */
static intptr_t slow_task(void *arg)
{
	(void)arg;
	int v;
	CONF_EQ(ax_chan_recv(slow_gate, &v), 0, "the target's wait on its gate");
	slow_done = 1;
	return 77;
}

/* Ready again behind the caller after its one yield, then ends. */
static intptr_t yield_then_end(void *arg)
{
	ax_yield();
	return (intptr_t)arg;
}

static intptr_t joinint_main(void *arg)
{
	(void)arg;
	ax_task *t, *j;
	intptr_t r = 0;

	if (ax_chan_create(&slow_gate, sizeof(int), 1) < 0)
		conf_die("ax_chan_create failed");
	ax_spawn(&t, slow_task, NULL, "slow");
	ax_spawn(&j, join_other, t, "joiner");
	ax_sleep(2 * CONF_MS);
	ax_cancel(j);
	CONF_EQ(conf_join(j), -ECANCELED, "a cancelled ax_join");
	CONF_EQ(slow_done, 0, "target ended early (flag)");
	/* the target keeps running and can be joined again */
	struct ax_deadline d;
	ax_deadline_enter(&d, ax_now() + 2 * CONF_MS);
	CONF_EQ(ax_join(t, &r), -ETIMEDOUT, "ax_join past its deadline");
	ax_deadline_leave(&d);
	CONF_EQ(ax_chan_try_send(slow_gate, &(int){1}), 0, "opening the gate");
	CONF_EQ(CONF_JOIN_WITHIN(t, 2 * CONF_S, "joining the target again"),
		77, "the target's result");
	CONF_EQ(slow_done, 1, "the target ran to its end (flag)");
	ax_chan_destroy(slow_gate);

	/* The target ends after the cancel readied its joiner and before
	 * the joiner resumes (eager spawn and FIFO order make this certain:
	 * the target yielded, so it runs first). The cancel took effect
	 * first: the join returns -ECANCELED and leaves the target, which is
	 * joined once more. (A join that took the target's result here freed
	 * it, and the second join freed it again.) */
	ax_spawn(&t, yield_then_end, (void *)(intptr_t)78, "yield-78");
	ax_spawn(&j, join_other, t, "joiner-2");
	ax_cancel(j);
	r = conf_join(j);
	if (CONF_EQ(r, -ECANCELED, "a join cancelled before its target ended, "
		    "which ended before the joiner resumed"))
		CONF_EQ(CONF_JOIN_WITHIN(t, 2 * CONF_S, "joining that target "
					 "again"), 78, "that target's result");
	return 0;
}

static void case_join_interrupted(void)
{
	conf_run(joinint_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.yield_fair                                                     */
/* ------------------------------------------------------------------ */

#define YF_N 5
static int yf_count[YF_N];

static intptr_t yf_task(void *arg)
{
	int i = (int)(intptr_t)arg;
	for (int k = 0; k < 4; k++) {
		yf_count[i]++;
		ax_yield();
	}
	return 0;
}

static intptr_t yf_main(void *arg)
{
	(void)arg;
	ax_task *t[YF_N];
	/* alone: a yield returns at once */
	CONF_EQ(ax_yield(), 0, "ax_yield with nothing else ready");
	for (int i = 0; i < YF_N; i++)
		ax_spawn(&t[i], yf_task, (void *)(intptr_t)i, "yielder");
	for (int round = 2; round <= 4; round++) {
		CONF_EQ(ax_yield(), 0, "ax_yield");
		for (int i = 0; i < YF_N; i++)
			CONF_EQ(yf_count[i], round,
				"after the main task's yield %d, runs of ready "
				"task %d (each ready task runs exactly once)",
				round - 1, i);
	}
	for (int i = 0; i < YF_N; i++)
		conf_join(t[i]);
	return 0;
}

static void case_yield_fair(void)
{
	conf_run(yf_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.spawn_nested                                                   */
/* ------------------------------------------------------------------ */

static int nest_leaves, nest_mid;

static intptr_t nest_leaf(void *arg)
{
	(void)arg;
	ax_sleep((1 + rand() % 5) * CONF_MS);
	nest_leaves++;
	return 0;
}

static intptr_t nest_mid_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		CONF_EQ(ax_spawn(NULL, nest_leaf, NULL, "leaf"), 0,
			"detached spawn from a task");
	ax_yield();
	nest_mid++;
	return 0;
}

static intptr_t nest_main(void *arg)
{
	(void)arg;
	ax_task *t[4];
	for (int i = 0; i < 4; i++)
		CONF_EQ(ax_spawn(&t[i], nest_mid_task, NULL, "mid"), 0, "ax_spawn");
	for (int i = 0; i < 4; i++)
		conf_join(t[i]);
	/* return without waiting for the detached leaves */
	return 9;
}

static void case_spawn_nested(void)
{
	CONF_EQ(conf_run(nest_main, NULL), 9, "main task result");
	CONF_EQ(nest_mid, 4, "tasks spawned by the main task that ended");
	CONF_EQ(nest_leaves, 16, "detached grandchildren that ended before "
		"ax_rt_run returned");
}

/* ------------------------------------------------------------------ */
/* task.100k                                                           */
/* ------------------------------------------------------------------ */

#define HK_N 100000
/* counted by tasks that may run on several workers at once (ws-<engine>) */
static atomic_int hk_started, hk_ended, hk_epipe;

static intptr_t hk_task(void *arg)
{
	int v;
	hk_started++;
	int r = ax_chan_recv(arg, &v);
	hk_epipe += r == -EPIPE;
	hk_ended++;
	return 0;
}

static intptr_t hk_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	CONF_EQ(ax_chan_create(&c, sizeof(int), 1), 0, "ax_chan_create");
	for (int i = 0; i < HK_N; i++) {
		int r = ax_spawn(NULL, hk_task, c, NULL);
		if (!CONF_EQ(r, 0, "ax_spawn of task %d", i))
			break;
	}
	CONF_EQ(hk_started, HK_N, "tasks started");
	CONF_EQ(hk_ended, 0, "tasks ended while all should wait");
	struct ax_rt_stats st;
	ax_rt_stats(ax_rt_current(), &st);
	CONF_TRUE(st.tasks_live >= HK_N, "ax_rt_stats.tasks_live %llu < %d",
		  (unsigned long long)st.tasks_live, HK_N);
	ax_chan_close(c);
	/* every waiter ends before the main task's join: wait for them */
	while (hk_ended < hk_started)
		ax_sleep(1 * CONF_MS);
	CONF_EQ(hk_epipe, HK_N, "waiters woken with -EPIPE by the close");
	CONF_EQ(ax_chan_destroy(c), 0, "ax_chan_destroy");
	return 0;
}

static void case_100k(void)
{
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.stack_size = 16 * 1024;
	conf_run_opts(hk_main, NULL, &o);
}

/* ------------------------------------------------------------------ */
/* task.stack_overflow                                                 */
/* ------------------------------------------------------------------ */

/* Recurse with a large frame that is really written, so the stack grows
 * page by page into whatever lies below it. */
static int deep(int n)
{
	volatile char frame[512];
	for (size_t i = 0; i < sizeof frame; i += 64)
		frame[i] = (char)n;
	if (n == 0)
		return frame[0];
	return deep(n - 1) + frame[n % sizeof frame];
}

static intptr_t so_task(void *arg)
{
	(void)arg;
	return deep(1 << 20); /* far more than 64 KiB of stack */
}

static intptr_t so_main(void *arg)
{
	(void)arg;
	ax_task *t;
	ax_spawn(&t, so_task, NULL, "deep-recursion");
	ax_join(t, NULL);
	return 0;
}

/* In the grandchild: overflow a task's stack. Must not return. */
static void so_grandchild(void)
{
	ax_rt *rt;
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.engine_flags = conf_engine_flags();
	if (ax_rt_create(&rt, conf_runtime(), &o) < 0)
		_exit(3);
	ax_rt_run(rt, so_main, NULL, NULL);
	_exit(4); /* the overflow went unnoticed */
}

static void case_stack_overflow(void)
{
	int st;
	char out[4096];
	int r = conf_grandchild(so_grandchild, 20000, &st, out, sizeof out);
	if (!CONF_EQ(r, 0, "starting the grandchild"))
		return;
	if (st == -1) {
		conf_fail("the process that overflowed a task stack hung");
		return;
	}
	if (WIFEXITED(st) && (WEXITSTATUS(st) == 4 || WEXITSTATUS(st) == 0)) {
		conf_fail("a task recursed through far more than its stack and "
			  "the process went on (exit status %d)", WEXITSTATUS(st));
		return;
	}
	/* it must die, and say why: the overflow and the task's name */
	CONF_TRUE(strstr(out, "overflow") != NULL,
		  "the process died (%s %d) without reporting a stack "
		  "overflow; its output: %.200s",
		  WIFSIGNALED(st) ? "signal" : "exit status",
		  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), out);
	CONF_TRUE(strstr(out, "deep-recursion") != NULL,
		  "the overflow report does not name the task "
		  "'deep-recursion'; output: %.200s", out);
}

/* ------------------------------------------------------------------ */
/* task.dump                                                           */
/* ------------------------------------------------------------------ */

static intptr_t dump_reader(void *arg)
{
	char b[16];
	return ax_read((int)(intptr_t)arg, b, sizeof b);
}

static intptr_t dump_sleeper(void *arg)
{
	(void)arg;
	return ax_sleep(30 * CONF_S);
}

static intptr_t dump_recv(void *arg)
{
	int v;
	return ax_chan_recv(arg, &v);
}

/* The dump line naming `name`, copied to line; false when missing. */
static bool dump_line(const char *dump, const char *name, char *line, size_t n)
{
	char quoted[64];
	snprintf(quoted, sizeof quoted, "%s", name);
	const char *p = strstr(dump, quoted);
	if (!p)
		return false;
	const char *s = p, *e = p;
	while (s > dump && s[-1] != '\n')
		s--;
	while (*e && *e != '\n')
		e++;
	snprintf(line, n, "%.*s", (int)(e - s), s);
	return true;
}

static bool has_word_num(const char *s, int num)
{
	char w[16];
	snprintf(w, sizeof w, "%d", num);
	size_t l = strlen(w);
	for (const char *p = strstr(s, w); p; p = strstr(p + 1, w))
		if ((p == s || (p[-1] < '0' || p[-1] > '9')) &&
		    (p[l] < '0' || p[l] > '9'))
			return true;
	return false;
}

static intptr_t dump_main(void *arg)
{
	(void)arg;
	int fds[2];
	ax_task *rd, *sl, *rc, *jn;
	ax_chan *c;
	if (!CONF_EQ(conf_tcp_pair(fds), 0, "loopback pair"))
		return 0;
	ax_chan_create(&c, sizeof(int), 1);
	ax_spawn(&rd, dump_reader, (void *)(intptr_t)fds[0], "dump-reader");
	ax_spawn(&sl, dump_sleeper, NULL, "dump-sleeper");
	ax_spawn(&rc, dump_recv, c, "dump-chan");
	ax_spawn(&jn, join_other, sl, "dump-joiner");
	ax_sleep(2 * CONF_MS);

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int n = ax_dump(ax_rt_current(), f);
	fclose(f);
	CONF_EQ(n, 5, "ax_dump's count (main + 4 blocked tasks)");
	char line[512];
	if (CONF_TRUE(dump_line(text, "dump-reader", line, sizeof line),
		      "the dump does not name 'dump-reader': %.300s", text)) {
		CONF_TRUE(strstr(line, "blocked") && strstr(line, "read") &&
			  has_word_num(line, fds[0]),
			  "the reader's line should say blocked, read and fd %d: %s",
			  fds[0], line);
		CONF_TRUE(strstr(line, "c_task.c"),
			  "the reader's line lacks its spawn site: %s", line);
	}
	if (CONF_TRUE(dump_line(text, "dump-sleeper", line, sizeof line),
		      "the dump does not name 'dump-sleeper'"))
		CONF_TRUE(strstr(line, "blocked") &&
			  (strstr(line, "timer") || strstr(line, "sleep")),
			  "the sleeper's line should say blocked on a timer: %s",
			  line);
	if (CONF_TRUE(dump_line(text, "dump-chan", line, sizeof line),
		      "the dump does not name 'dump-chan'"))
		CONF_TRUE(strstr(line, "blocked") && strstr(line, "chan"),
			  "the receiver's line should say blocked on a channel: %s",
			  line);
	if (CONF_TRUE(dump_line(text, "dump-joiner", line, sizeof line),
		      "the dump does not name 'dump-joiner'"))
		CONF_TRUE(strstr(line, "blocked") && strstr(line, "join"),
			  "the joiner's line should say blocked in a join: %s",
			  line);
	free(text);

	ax_cancel(rd);
	ax_cancel(sl);
	ax_cancel(rc);
	conf_join(rd);
	conf_join(rc);
	conf_join(jn);
	ax_close(fds[0]);
	ax_close(fds[1]);
	ax_chan_destroy(c);
	return 0;
}

static void case_dump(void)
{
	conf_run(dump_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.hog                                                            */
/* ------------------------------------------------------------------ */

/* The other ready task of the second phase; it notes its own longest
 * slice, which on a multi-worker runtime it runs on another thread. */
struct hog_comp {
	atomic_int stop;
	_Atomic int64_t longest;
};

static intptr_t hog_companion(void *arg)
{
	struct hog_comp *c = arg;
	int64_t in = ax_now();
	while (!atomic_load(&c->stop)) {
		int64_t slice = ax_now() - in; /* since it was switched in */
		if (slice > atomic_load(&c->longest))
			atomic_store(&c->longest, slice);
		ax_yield();
		in = ax_now();
	}
	return 0;
}

/* 150 ms in 1 ms slices, each ended by a yield (then a sleep, a switch
 * that lets the runtime judge the task). Returns the hogs counted meanwhile;
 * *longest is the longest wall time the task ran between two switches, as
 * the task itself saw it. */
static uint64_t hog_polite(ax_rt *rt, int64_t *longest)
{
	struct ax_rt_stats a, b;
	ax_rt_stats(rt, &a);
	*longest = 0;
	int64_t in = ax_now();
	for (int i = 0; i < 150; i++) {
		conf_spin(1 * CONF_MS);
		int64_t out = ax_now();
		if (out - in > *longest)
			*longest = out - in;
		ax_yield();
		in = ax_now();
	}
	ax_sleep(1 * CONF_MS);
	ax_rt_stats(rt, &b);
	return b.hogs - a.hogs;
}

/* A polite phase is judged only when neither the task nor its companion
 * (comp, when there is one) ran 50 ms between two switches by its own
 * clock: a longer slice means the machine preempted the thread (the hog
 * clock is wall time, [AX-TASK-10]), and the phase is run again, up to 5
 * times. A hog counted in a phase whose slices all stayed under 50 ms is
 * the runtime's error. */
static bool hog_polite_judged(ax_rt *rt, const char *what,
			      struct hog_comp *comp)
{
	int64_t longest = 0;
	for (int attempt = 0; attempt < 5; attempt++) {
		if (comp)
			atomic_store(&comp->longest, 0);
		uint64_t hogs = hog_polite(rt, &longest);
		if (comp && atomic_load(&comp->longest) > longest)
			longest = atomic_load(&comp->longest);
		if (longest >= 50 * CONF_MS)
			continue;
		return CONF_EQ(hogs, 0, "hogs counted for a task %s that yields "
			       "every 1 ms for 150 ms (threshold 100 ms; its "
			       "longest slice was %lld us)", what,
			       (long long)(longest / CONF_US));
	}
	conf_env_error("the machine preempted the task for %lld ms in each of "
		       "5 attempts: too busy to judge hog detection",
		       (long long)(longest / CONF_MS));
	return false;
}

static intptr_t hog_main(void *arg)
{
	(void)arg;
	struct ax_rt_stats b, c;
	ax_rt *rt = ax_rt_current();
	/* polite, and alone */
	if (!hog_polite_judged(rt, "alone on its runtime", NULL))
		return 0;
	/* polite, beside another ready task */
	static struct hog_comp comp;
	atomic_store(&comp.stop, 0);
	atomic_store(&comp.longest, 0);
	ax_task *t;
	ax_spawn(&t, hog_companion, &comp, "companion");
	bool ok = hog_polite_judged(rt, "beside another ready task", &comp);
	ax_rt_stats(rt, &b);
	/* a hog: 300 ms without suspending */
	if (ok) {
		conf_spin(300 * CONF_MS);
		ax_sleep(1 * CONF_MS);
		ax_rt_stats(rt, &c);
		CONF_TRUE(c.hogs > b.hogs, "a task ran 300 ms without "
			  "suspending (threshold 100 ms) and ax_rt_stats.hogs "
			  "did not grow");
	}
	atomic_store(&comp.stop, 1);
	conf_join(t);
	return 0;
}

static void case_hog(void)
{
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.hog_threshold_ns = 100 * CONF_MS;
	conf_run_opts(hog_main, NULL, &o);
}

/* ------------------------------------------------------------------ */
/* task.detach                                                         */
/* ------------------------------------------------------------------ */

static atomic_int dt_ended;

static intptr_t dt_sleeper(void *arg)
{
	ax_sleep((int64_t)(intptr_t)arg * CONF_MS);
	dt_ended++;
	return 0;
}

static intptr_t dt_quick(void *arg)
{
	(void)arg;
	dt_ended++;
	return 0;
}

static intptr_t dt_joiner(void *arg)
{
	return ax_join(arg, NULL);
}

static intptr_t dt_main(void *arg)
{
	(void)arg;
	ax_task *t, *q, *j;
	dt_ended = 0;

	/* a running task: detached, no longer joinable, still run to its end */
	ax_spawn(&t, dt_sleeper, (void *)(intptr_t)50, "detached");
	CONF_EQ(ax_detach(t), 0, "ax_detach of a sleeping task");
	/* t is still sleeping, so its handle still points at it */
	CONF_EQ(ax_join(t, NULL), -EINVAL, "ax_join of a detached task");
	CONF_EQ(ax_detach(t), -EINVAL, "ax_detach of a detached task");

	/* an ended, unjoined task: detach frees it */
	ax_spawn(&q, dt_quick, NULL, "quick"); /* eager: it has ended */
	CONF_EQ(dt_ended, 1, "the quick task ran");
	/* whether it is freed then is not observable through ax.h (an ended
	 * task no longer counts as live either way); only the result is */
	CONF_EQ(ax_detach(q), 0, "ax_detach of an ended task");

	/* a task that already has a joiner cannot be detached */
	ax_spawn(&q, dt_sleeper, (void *)(intptr_t)5, "joined");
	ax_spawn(&j, dt_joiner, q, "joiner");
	CONF_EQ(ax_detach(q), -EINVAL, "ax_detach of a task with a joiner");
	CONF_EQ(conf_join(j), 0, "the joiner's ax_join");

	/* the detached sleeper ends on its own; the run waits for it */
	CONF_EQ(dt_ended, 2, "tasks ended before main returns (the detached "
		"one still sleeps)");
	return 0;
}

static void case_detach(void)
{
	conf_run(dt_main, NULL);
	CONF_EQ(dt_ended, 3, "tasks ended when ax_rt_run returned (the detached "
		"one included)");
}

/* ------------------------------------------------------------------ */
/* task.name                                                           */
/* ------------------------------------------------------------------ */

static intptr_t nm_idle(void *arg)
{
	(void)arg;
	return 0;
}

static intptr_t nm_main(void *arg)
{
	(void)arg;
	const char *longname = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
	ax_task *t;
	ax_spawn(&t, nm_idle, NULL, longname);
	CONF_TRUE(!strcmp(ax_task_name(t), "0123456789abcdefghijklmnopqrstu"),
		  "a 42-byte spawn name kept as '%s' (the first 31 bytes "
		  "expected)", ax_task_name(t));
	CONF_EQ(ax_task_set_name(t, "short"), 0, "ax_task_set_name");
	CONF_TRUE(!strcmp(ax_task_name(t), "short"), "renamed task is '%s'",
		  ax_task_name(t));
	char exact[32];
	memset(exact, 'x', 31);
	exact[31] = '\0';
	CONF_EQ(ax_task_set_name(t, exact), 0, "ax_task_set_name of 31 bytes");
	CONF_TRUE(!strcmp(ax_task_name(t), exact), "a 31-byte name kept as "
		  "'%s'", ax_task_name(t));
	CONF_EQ(ax_task_set_name(t, longname + 2), 0, "ax_task_set_name of 40 "
		"bytes");
	CONF_TRUE(!strcmp(ax_task_name(t), "23456789abcdefghijklmnopqrstuvw"),
		  "a 40-byte name kept as '%s' (the first 31 bytes expected)",
		  ax_task_name(t));
	CONF_EQ(ax_task_set_name(t, NULL), -EINVAL, "ax_task_set_name(NULL)");
	conf_join(t);
	ax_spawn(&t, nm_idle, NULL, NULL);
	CONF_TRUE(!strcmp(ax_task_name(t), ""), "an unnamed task is '%s'",
		  ax_task_name(t));
	conf_join(t);
	return 0;
}

static void case_name(void)
{
	conf_run(nm_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.stack_usage                                                    */
/* ------------------------------------------------------------------ */

#define SU_DEEP (24 * 1024)
/* enough tasks to use up the guarded stacks (a quarter of
 * vm.max_map_count, two mappings each) and fill a slab */
#define SU_MAX 40000

/* Touch SU_DEEP bytes of stack, then wait on the channel. */
static intptr_t su_deep(void *arg)
{
	char *p = alloca(SU_DEEP);
	memset(p, 0x5a, SU_DEEP);
	__asm__ volatile("" : : "r"(p) : "memory"); /* keep the memset */
	int v;
	return ax_chan_recv(arg, &v);
}

static intptr_t su_wait(void *arg)
{
	int v;
	return ax_chan_recv(arg, &v);
}

static intptr_t su_main(void *arg)
{
	(void)arg;
	ax_rt *rt = ax_rt_current();
	ax_chan *c;
	ax_task *t;
	struct ax_stack_usage u;
	ax_chan_create(&c, sizeof(int), 1);
	ax_spawn(&t, su_deep, c, "deep");
	CONF_EQ(ax_rt_stack_usage(rt, NULL), -EINVAL, "ax_rt_stack_usage(rt, NULL)");
	CONF_EQ(ax_rt_stack_usage(NULL, &u), -EINVAL, "ax_rt_stack_usage(NULL, u)");
	if (CONF_EQ(ax_rt_stack_usage(rt, &u), 0, "ax_rt_stack_usage")) {
		CONF_EQ(u.stacks, 2, "stacks measured (main and one waiter)");
		CONF_EQ(u.stack_size, 64 * 1024, "stack size (the default)");
		CONF_TRUE(u.resident_max >= SU_DEEP && u.resident_max <= u.stack_size,
			  "resident_max %llu: a task touched %d bytes of a %llu-byte stack",
			  (unsigned long long)u.resident_max, SU_DEEP,
			  (unsigned long long)u.stack_size);
		CONF_TRUE(u.resident_total >= u.resident_max &&
			  u.resident_total <= 2 * u.stack_size,
			  "resident_total %llu for 2 stacks (max %llu)",
			  (unsigned long long)u.resident_total,
			  (unsigned long long)u.resident_max);
	}
	/* past the guarded stacks, into a full slab: a task that waits with
	 * its frames in one page holds one page, whichever kind its stack is
	 * (no canary page of its own) */
	struct ax_rt_stats st;
	int n = 0;
	for (ax_rt_stats(rt, &st); st.stacks_slab < 64 && n < SU_MAX; n++) {
		if (ax_spawn(NULL, su_wait, c, NULL) < 0)
			break;
		ax_rt_stats(rt, &st);
	}
	CONF_TRUE(st.stacks_slab >= 64, "no full slab of stacks after %d tasks", n);
	if (CONF_EQ(ax_rt_stack_usage(rt, &u), 0, "ax_rt_stack_usage")) {
		CONF_EQ(u.stacks, (uint64_t)n + 2, "stacks measured");
		/* one page each; the deep task's and main's deeper pages */
		uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
		CONF_TRUE(u.resident_total <= pg * u.stacks + 64 * 1024,
			  "%llu bytes resident in %llu stacks (%llu guarded, %llu "
			  "from slabs) of tasks waiting on a channel: more than one "
			  "page each", (unsigned long long)u.resident_total,
			  (unsigned long long)u.stacks,
			  (unsigned long long)st.stacks_guarded,
			  (unsigned long long)st.stacks_slab);
	}
	ax_chan_close(c);
	conf_join(t);
	ax_chan_destroy(c);
	return 0;
}

static void case_stack_usage(void)
{
	conf_run(su_main, NULL);
}

/* ------------------------------------------------------------------ */
/* task.overflow_slab                                                  */
/* ------------------------------------------------------------------ */

/* Enough live tasks to use up the guarded stacks (a quarter of
 * vm.max_map_count, two mappings each) and reach the canary slabs. */
#define OS_MAX 40000

static intptr_t os_waiter(void *arg)
{
	int v;
	return ax_chan_recv(arg, &v);
}

static intptr_t os_victim(void *arg)
{
	(void)arg;
	/* fill 20 KiB from below the bottom of a 16 KiB stack upwards:
	 * through the canary word, into the stack below in the slab (or the
	 * slab's guard page), not far beyond */
	char *p = alloca(20 * 1024);
	memset(p, 0x55, 20 * 1024);
	__asm__ volatile("" : : "r"(p) : "memory"); /* keep the memset */
	ax_yield(); /* the scheduler checks the canary as the task leaves */
	return 0;
}

static intptr_t os_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	ax_task *t;
	struct ax_rt_stats st;
	ax_rt *rt = ax_rt_current();
	ax_chan_create(&c, sizeof(int), 1);
	for (int i = 0; i < OS_MAX; i++) {
		ax_rt_stats(rt, &st);
		if (st.stacks_slab >= 2)
			break;
		if (ax_spawn(NULL, os_waiter, c, NULL) < 0)
			_exit(5);
	}
	ax_rt_stats(rt, &st);
	uint64_t slab = st.stacks_slab;
	if (slab < 2)
		_exit(5); /* no slab stack reached */
	ax_spawn(&t, os_victim, NULL, "slab-overflow");
	ax_join(t, NULL);
	_exit(4); /* the overflow went unnoticed */
}

static void os_grandchild(void)
{
	ax_rt *rt;
	struct ax_rt_opts o;
	ax_rt_opts_init(&o);
	o.stack_size = 16 * 1024;
	o.engine_flags = conf_engine_flags();
	if (ax_rt_create(&rt, conf_runtime(), &o) < 0)
		_exit(3);
	ax_rt_run(rt, os_main, NULL, NULL);
	_exit(4);
}

static void case_overflow_slab(void)
{
	int st;
	char out[4096];
	int r = conf_grandchild(os_grandchild, 30000, &st, out, sizeof out);
	if (!CONF_EQ(r, 0, "starting the grandchild"))
		return;
	if (st == -1) {
		conf_fail("the process that overflowed a slab stack hung");
		return;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 5) {
		conf_fail("no stack came from a canary slab after %d live tasks",
			  OS_MAX);
		return;
	}
	if (WIFEXITED(st) && (WEXITSTATUS(st) == 4 || WEXITSTATUS(st) == 0)) {
		conf_fail("a task on a slab stack wrote past its bottom and the "
			  "process went on (exit status %d)", WEXITSTATUS(st));
		return;
	}
	CONF_TRUE(strstr(out, "overflow") != NULL && strstr(out, "slab-overflow"),
		  "the process died (%s %d) without reporting a stack overflow "
		  "in task 'slab-overflow'; its output: %.200s",
		  WIFSIGNALED(st) ? "signal" : "exit status",
		  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), out);
}

const struct conf_case conf_cases_task[] = {
	{"task.spawn_eager", "[AX-TASK-1] spawn is eager: the child runs until it "
	 "first suspends before ax_spawn returns, and the parent resumes before "
	 "any other ready task",
	 "log the order in which a parent, its children and a grandchild run",
	 AX_FEAT_ONE_WORKER, 10, 0, case_spawn_eager},
	{"task.join_result", "[AX-TASK-2] ax_join returns 0 and the task's result; "
	 "-EINVAL for the caller itself or a task that already has a joiner",
	 "join running and ended tasks, the caller, and a task joined twice",
	 0, 10, 0, case_join_result},
	{"task.join_interrupted", "[AX-TASK-2] a cancelled or timed-out ax_join "
	 "returns -ECANCELED / -ETIMEDOUT; the target keeps running and can be "
	 "joined again",
	 "cancel a joiner, time out a join, then join the target for its "
	 "result; cancel a joiner whose target ends before it resumes",
	 AX_FEAT_ONE_WORKER, 10, 0, case_join_interrupted},
	{"task.yield_fair", "[AX-TASK-3] ax_yield lets every other ready task run "
	 "once before the caller resumes",
	 "five yielding tasks each advance exactly one step per main-task yield",
	 AX_FEAT_ONE_WORKER, 10, 0, case_yield_fair},
	{"task.spawn_nested", "[AX-TASK-1] [AX-RT-1] tasks spawn tasks; ax_rt_run "
	 "returns only when every task, detached ones included, has ended",
	 "a tree of 4 tasks spawning 16 detached sleeping leaves; main returns "
	 "first", 0, 10, 0, case_spawn_nested},
	{"task.100k", "[AX-TASK-9] a task costs one small stack: 100k tasks can "
	 "be live at once (16 KiB stacks)",
	 "100,000 tasks blocked on one channel, all woken by its close",
	 AX_FEAT_CHEAP_TASKS, 60, CONF_SERIAL, case_100k},
	{"task.stack_overflow", "[AX-TASK-9] a task overflowing its stack is "
	 "caught (guard page or canary) and reported with the task's name",
	 "a grandchild process recurses far past 64 KiB in a task and must die "
	 "with a report naming it", AX_FEAT_STACK_CHECK, 30, 0, case_stack_overflow},
	{"task.dump", "[AX-TASK-5] ax_dump writes every live task with its name, "
	 "state, what a blocked task waits on (fd and operation, timer, channel, "
	 "join) and its spawn site",
	 "dump a reader, a sleeper, a channel receiver and a joiner",
	 AX_FEAT_TCP, 10, 0, case_dump},
	{"task.hog", "[AX-TASK-10] ax_rt_opts.hog_threshold_ns: a task running longer than the "
	 "threshold without suspending is counted (ax_rt_stats.hogs) and reported",
	 "a task yielding every 1 ms is no hog (alone or not); one spinning "
	 "300 ms is",
	 0, 10, 0, case_hog},
	{"task.detach", "[AX-TASK-14] [AX-RT-1] a detached task can no longer be "
	 "joined (-EINVAL) or detached again, still runs to its end, and the "
	 "run waits for it; detaching an ended task frees it; a task with a "
	 "joiner cannot be detached",
	 "detach a sleeping task, an ended one, and one with a joiner",
	 0, 10, 0, case_detach},
	{"task.name", "[AX-TASK-16] names are copied, at most "
	 "31 bytes kept; an unnamed task's name is \"\"",
	 "spawn with a 42-byte name, rename to 5, 31 and 40 bytes, NULL",
	 0, 10, 0, case_name},
	{"task.overflow_slab", "[AX-TASK-9] a task overflowing a stack carved "
	 "from a canary slab is caught at its next switch and reported with its "
	 "name", "a grandchild uses up the guarded stacks, then a task on a "
	 "slab stack writes a few KiB past its bottom and yields",
	 AX_FEAT_STACK_CHECK | AX_FEAT_CHEAP_TASKS, 60, CONF_SERIAL,
	 case_overflow_slab},
	{"task.stack_usage", "[AX-TASK-17] ax_rt_stack_usage measures the live "
	 "tasks' stacks: their count, the stack size, the most bytes resident "
	 "in one (at least what a task touched) and the total",
	 "a task touches 24 KiB of its stack and waits; main measures; then "
	 "tasks waiting on a channel until a slab of stacks is full hold one "
	 "page each", AX_FEAT_CHEAP_TASKS, 30, CONF_SERIAL,
	 case_stack_usage},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
