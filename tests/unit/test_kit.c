/* test_kit.c - the driver kit (runtimes/core/kit.h) on its own: fd table,
 * deferred queue, op list, timer batch order, non-blocking steps, the
 * engine_flags parser; and each driver's engine_flags through
 * ax_rt_create (good flags accepted, bad ones -EINVAL). */
#include "t.h"

#include <sys/socket.h>
#include <unistd.h>

#include "kit.h"

static int n_done;

/* Completion hook: count. */
static void kt_done(struct ax_op *op)
{
	(void)op;
	n_done++;
}

/* fd table: slots appear zeroed, survive growth, clear resets one. */
static void kt_fdtab(void)
{
	struct ax__fdtab t;
	ax__fdtab_init(&t, sizeof(int));
	CHECK(ax__fdtab_find(&t, 3) == NULL);
	CHECK(ax__fdtab_get(&t, -1) == NULL);
	int *p = ax__fdtab_get(&t, 3);
	CHECK(p && *p == 0);
	*p = 7;
	int *q = ax__fdtab_get(&t, 5000);
	CHECK(q && *q == 0);
	CHECK_EQ(*(int *)ax__fdtab_find(&t, 3), 7);
	ax__fdtab_clear(&t, 3);
	CHECK_EQ(*(int *)ax__fdtab_find(&t, 3), 0);
	CHECK(ax__fdtab_find(&t, 1 << 20) == NULL);
	ax__fdtab_fini(&t);
}

/* deferred queue: FIFO, marked while queued, results delivered. */
static void kt_defq(void)
{
	struct ax__defq q = {0};
	struct ax_op a = {.done = kt_done}, b = {.done = kt_done};
	CHECK(!ax__defq_pending(&q));
	ax__defer(&q, &a, 5);
	ax__defer(&q, &b, -EPIPE);
	CHECK(ax__deferred(&a) && ax__deferred(&b) && ax__defq_pending(&q));
	n_done = 0;
	CHECK_EQ(ax__defq_flush(&q), 2);
	CHECK_EQ(n_done, 2);
	CHECK_EQ(a.res, 5);
	CHECK_EQ(b.res, -EPIPE);
	CHECK(!ax__deferred(&a) && !ax__defq_pending(&q));
}

/* op list: O(1) removal anywhere. */
static void kt_oplist(void)
{
	struct ax__oplist l = {0};
	struct ax_op a = {0}, b = {0}, c = {0};
	ax__oplist_add(&l, &a);
	ax__oplist_add(&l, &b);
	ax__oplist_add(&l, &c);
	ax__oplist_del(&l, &b);
	CHECK(l.head == &c && c.drv_next == &a && a.drv_prev == &c);
	ax__oplist_del(&l, &c);
	ax__oplist_del(&l, &a);
	CHECK(l.head == NULL);
}

static int fired[8], n_fired;
static struct ax__tbatch *kt_batch;
static struct ax_timer kt_t[6];

/* Fire hook: record the order; timer 0 removes timer 5 (not yet fired). */
static void kt_fire(struct ax_timer *t)
{
	int i = (int)(t - kt_t);
	fired[n_fired++] = i;
	if (i == 0)
		ax__tbatch_remove(kt_batch, &kt_t[5]);
}

/* timer batch: (deadline, seq) order whatever the arrival order; removed
 * timers and holes never fire. */
static void kt_tbatch(void)
{
	struct ax__tbatch b = {0};
	static const int64_t dl[6] = {10, 30, 10, 20, 5, 40};
	kt_batch = &b;
	for (int i = 0; i < 6; i++) {
		kt_t[i].deadline = dl[i];
		kt_t[i].seq = (uint64_t)i;
		kt_t[i].fire = kt_fire;
		CHECK_EQ(ax__tbatch_push(&b, &kt_t[i]), 0);
	}
	ax__tbatch_remove(&b, &kt_t[1]);
	CHECK(!ax__tbatch_holds(&b, &kt_t[1]) && ax__tbatch_holds(&b, &kt_t[2]));
	CHECK_EQ(ax__tbatch_fire(&b), 4);
	static const int want[4] = {4, 0, 2, 3};
	CHECK_EQ(n_fired, 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(fired[i], want[i]);
	CHECK_EQ(b.live, 0);
	ax__tbatch_fini(&b);
}

/* non-blocking steps on a socket pair: EAGAIN is 0, data and EOF are 1. */
static void kt_nb(void)
{
	int sv[2];
	char buf[8];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct ax_op r = {.fd = sv[0], .buf = buf, .len = sizeof buf};
	CHECK_EQ(ax__nb_read(&r), 0);
	struct ax_op w = {.fd = sv[1], .buf = "hello", .len = 5};
	CHECK_EQ(ax__nb_write(&w), 1);
	CHECK_EQ(w.res, 5);
	CHECK_EQ(ax__nb_read(&r), 1);
	CHECK_EQ(r.res, 5);
	close(sv[1]);
	CHECK_EQ(ax__nb_read(&r), 1);
	CHECK_EQ(r.res, 0);
	struct ax_op a = {.fd = sv[0]};
	CHECK_EQ(ax__nb_accept(&a), 1); /* not a listener: an error ends it */
	CHECK(a.res < 0);
	close(sv[0]);
}

static int kt_seen;

/* Flag hook: count the items, refuse key "bad". */
static int kt_flag(void *ctx, const char *key, const char *val)
{
	(void)ctx;
	(void)val;
	kt_seen++;
	return strcmp(key, "bad") ? 0 : -EINVAL;
}

/* engine_flags: items, empty items, a missing '=', a failing item. */
static void kt_flags(void)
{
	static const char *const names[] = {"a", "bb", NULL};
	kt_seen = 0;
	CHECK_EQ(ax__flags_each(NULL, kt_flag, NULL), 0);
	CHECK_EQ(ax__flags_each("x=1,,y=2,", kt_flag, NULL), 0);
	CHECK_EQ(kt_seen, 2);
	CHECK_EQ(ax__flags_each("x", kt_flag, NULL), -EINVAL);
	CHECK_EQ(ax__flags_each("x=1,bad=2", kt_flag, NULL), -EINVAL);
	CHECK_EQ(ax__flag_pick("bb", names), 1);
	CHECK_EQ(ax__flag_pick("b", names), -EINVAL);
}

/* Each driver's engine_flags: one good and one bad setting each. */
static void kt_engine_flags(void)
{
	static const struct {
		const char *drv, *good, *bad;
	} cases[] = {
		{"io_uring", "setup=auto,timers=kernel,entries=64", "entries=7"},
		{"io_uring", "setup=none", "setup=fast"},
		{"io_uring", "write=now", "write=later"},
		{"io_uring", "write=ring", "write="},
		{"libevent", "trigger=level,timer=coarse", "trigger=both"},
		{"libevent", "backend=poll", "backend=nope"},
		{"libuv", "accept=listen", "accept=later"},
		{"epoll", "", "anything=1"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ax_rt_opts o;
		ax_rt *rt;
		if (!ax_driver_available(cases[i].drv, NULL, 0))
			continue;
		ax_rt_opts_init(&o);
		o.engine_flags = cases[i].good;
		int r = ax_rt_create(&rt, cases[i].drv, &o);
		CHECK_EQ(r, 0);
		if (r == 0) {
			printf("%s [%s]: %s\n", cases[i].drv, cases[i].good,
			       ax_rt_engine_info(rt));
			CHECK_EQ(ax_rt_destroy(rt), 0);
		}
		if (!strcmp(cases[i].drv, "epoll"))
			continue; /* epoll takes no flags and ignores them */
		o.engine_flags = cases[i].bad;
		CHECK_EQ(ax_rt_create(&rt, cases[i].drv, &o), -EINVAL);
	}
}

/* ax_driver_register [AX-DRV-1]: a registered driver is found by name and
 * runs; bad vtables, versions it does not implement, a taken name and a
 * full table are refused. */
static void kt_register(void)
{
	struct ax_driver d = ax_driver_toy;
	d.name = "toy-copy";
	d.version = 0;
	CHECK_EQ(ax_driver_register(&d), -EPROTO);
	d.version = AX_DRIVER_VERSION + 1;
	CHECK_EQ(ax_driver_register(&d), -EPROTO);
	d.version = AX_DRIVER_VERSION;
	d.poll = NULL;
	CHECK_EQ(ax_driver_register(&d), -EINVAL);
	CHECK_EQ(ax_driver_register(NULL), -EINVAL);
	struct ax_driver same = ax_driver_toy;
	same.name = ax_driver_name(0); /* a compiled-in name */
	CHECK_EQ(ax_driver_register(&same), -EEXIST);

	size_t before = ax_driver_count();
	CHECK_EQ(ax_driver_register(&ax_driver_toy), 0);
	CHECK_EQ(ax_driver_register(&ax_driver_toy), -EEXIST);
	CHECK_EQ(ax_driver_count(), before + 1);
	CHECK(!strcmp(ax_driver_name(before), "toy"));
	CHECK(ax_driver_available("toy", NULL, 0));
	ax_rt *rt;
	CHECK_EQ(ax_rt_create(&rt, "toy", NULL), 0);
	CHECK(!strcmp(ax_rt_driver(rt), "toy"));
	CHECK_EQ(ax_rt_destroy(rt), 0);

	static struct ax_driver more[8];
	static char names[8][16];
	int r = 0, added = 0;
	for (int i = 0; i < 8 && r == 0; i++) {
		more[i] = ax_driver_toy;
		snprintf(names[i], sizeof names[i], "toy%d", i);
		more[i].name = names[i];
		r = ax_driver_register(&more[i]);
		added += r == 0;
	}
	CHECK_EQ(r, -ENOSPC);
	CHECK_EQ(added, 7); /* 8 slots, one taken by toy */
}

int main(void)
{
	kt_fdtab();
	kt_defq();
	kt_oplist();
	kt_tbatch();
	kt_nb();
	kt_flags();
	kt_engine_flags();
	kt_register();
	if (t_failures)
		fprintf(stderr, "%d check(s) failed\n", t_failures);
	return t_failures ? 1 : 0;
}
