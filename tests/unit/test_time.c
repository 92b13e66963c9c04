/* test_time.c - sleeps and deadlines: never early, equal deadlines in arming
 * order, zero sleep yields, nested deadline scopes where the earliest wins. */
#include "t.h"

static int fired[8];
static int nfired;

static intptr_t sleeper(void *arg)
{
	int64_t *at = arg;
	CHECK_EQ(ax_sleep_until(at[0]), 0);
	CHECK(ax_now() >= at[0]);
	fired[nfired++] = (int)at[1];
	return 0;
}

static intptr_t time_main(void *arg)
{
	(void)arg;
	/* [AX-TIME-1] never early */
	for (int i = 0; i < 50; i++) {
		int64_t d = 100000 * (i % 7 + 1), t0 = ax_now();
		CHECK_EQ(ax_sleep(d), 0);
		CHECK(ax_now() - t0 >= d);
	}
	/* [AX-TIME-2] equal deadlines in arming order */
	/* 50 ms ahead: all six must arm their timers before it passes (a
	 * sleeper that finds it passed returns at once, in spawn order but
	 * before those that armed), and spawning is slow under TSan */
	int64_t at = ax_now() + 50000000;
	static int64_t args[6][2];
	ax_task *t[6];
	for (int i = 0; i < 6; i++) {
		args[i][0] = at;
		args[i][1] = i;
		ax_spawn(&t[i], sleeper, args[i], "sleeper");
	}
	for (int i = 0; i < 6; i++)
		ax_join(t[i], NULL);
	CHECK_EQ(nfired, 6);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fired[i], i);

	/* [AX-DL-1] nested scopes: the earliest wins */
	struct ax_deadline outer, inner;
	int64_t t0 = ax_now();
	ax_deadline_enter(&outer, t0 + 20000000);
	ax_deadline_enter(&inner, t0 + 200000000);
	CHECK_EQ(ax_sleep(1000000000), -ETIMEDOUT);
	int64_t el = ax_now() - t0;
	CHECK(el >= 20000000 && el < 150000000);
	CHECK(ax_deadline_expired());
	CHECK_EQ(ax_yield(), -ETIMEDOUT);
	CHECK_EQ(ax_deadline_leave(&outer), -EINVAL);
	CHECK_EQ(ax_deadline_leave(&inner), 0);
	CHECK_EQ(ax_deadline_leave(&outer), 0);
	CHECK(!ax_deadline_expired());
	CHECK_EQ(ax_sleep(1000), 0);

	/* a sleep shorter than the deadline completes normally */
	ax_deadline_enter(&outer, ax_now() + 100000000);
	CHECK_EQ(ax_sleep(1000000), 0);
	ax_deadline_leave(&outer);
	return 0;
}

static int zero_order[4], nz;
static intptr_t zero_other(void *arg)
{
	(void)arg;
	/* runs eagerly at spawn: step aside, so the parent goes first */
	ax_yield();
	zero_order[nz++] = 2;
	return 0;
}

/* [AX-TIME-3] a zero sleep yields: the other ready task runs before the
 * sleeper resumes */
static intptr_t zero_main(void *arg)
{
	(void)arg;
	ax_task *t;
	ax_spawn(&t, zero_other, NULL, NULL);
	zero_order[nz++] = 1;
	CHECK_EQ(ax_sleep(0), 0);
	zero_order[nz++] = 3;
	ax_join(t, NULL);
	return 0;
}

int main(void)
{
	t_run(time_main, NULL);
	t_run(zero_main, NULL);
	CHECK_EQ(nz, 3);
	CHECK(zero_order[0] == 1 && zero_order[1] == 2 && zero_order[2] == 3);
	return t_done("time");
}
