/* c_mt.c - conformance cases of the multi-worker sentences ([AX-MT-...]):
 * runtimes whose tasks run on several threads at once and migrate
 * between them (AX_FEAT_MULTI_WORKER). */
#include "conform.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* mt.wake_storm                                                       */
/* ------------------------------------------------------------------ */

#define WS_TASKS 32
#define WS_PER 2000          /* elements per task */
#define WS_THREADS 2

struct ws_case {
	ax_chan *c[WS_TASKS];
	atomic_int in_run[WS_TASKS];
	atomic_int doubles;
	atomic_long got;
};

struct ws_arg {
	struct ws_case *s;
	int i;
};

static intptr_t ws_receiver(void *arg)
{
	struct ws_arg *a = arg;
	struct ws_case *s = a->s;
	long got = 0;
	for (;;) {
		long v;
		/* a second worker running this task now would find the flag
		 * set: [AX-MT-1] */
		if (atomic_exchange(&s->in_run[a->i], 1))
			atomic_fetch_add(&s->doubles, 1);
		for (volatile int k = 0; k < 50; k++)
			;
		atomic_store(&s->in_run[a->i], 0);
		int r = ax_chan_recv(s->c[a->i], &v);
		if (r == -EPIPE)
			break;
		if (r != 0)
			return -1000 + r;
		got++;
	}
	atomic_fetch_add(&s->got, got);
	return got;
}

/* Half the elements come from plain threads, half from tasks: each sender
 * sends its share to every channel in turn, so wakes of one task arrive
 * from several threads while it runs. */
static void ws_send_share(struct ws_case *s, int share, int nshares)
{
	for (int k = 0; k < WS_PER; k++)
		for (int i = 0; i < WS_TASKS; i++)
			if ((k + i) % nshares == share) {
				long v = k;
				ax_chan_send(s->c[i], &v);
			}
}

struct ws_sender {
	struct ws_case *s;
	int share;
	ax_chan *done;
};

static void *ws_thread(void *arg)
{
	struct ws_sender *sd = arg;
	ws_send_share(sd->s, sd->share, 4);
	long v = 0;
	ax_chan_send(sd->done, &v); /* the main task must not block its worker */
	return NULL;
}

static intptr_t ws_task_sender(void *arg)
{
	struct ws_sender *sd = arg;
	ws_send_share(sd->s, sd->share, 4);
	return 0;
}

static intptr_t ws_main(void *arg)
{
	(void)arg;
	static struct ws_case s;
	memset(&s, 0, sizeof s);
	struct ws_arg a[WS_TASKS];
	ax_task *t[WS_TASKS], *st[2];
	pthread_t th[WS_THREADS];
	struct ws_sender sd[4];
	ax_chan *done;
	ax_chan_create(&done, sizeof(long), WS_THREADS);
	for (int i = 0; i < WS_TASKS; i++) {
		ax_chan_create(&s.c[i], sizeof(long), 4);
		a[i] = (struct ws_arg){&s, i};
		ax_spawn(&t[i], ws_receiver, &a[i], "receiver");
	}
	for (int k = 0; k < 4; k++)
		sd[k] = (struct ws_sender){&s, k, done};
	for (int k = 0; k < WS_THREADS; k++)
		conf_thread(&th[k], ws_thread, &sd[k]);
	for (int k = 0; k < 2; k++)
		ax_spawn(&st[k], ws_task_sender, &sd[WS_THREADS + k], "sender");
	for (int k = 0; k < 2; k++)
		conf_join(st[k]);
	for (int k = 0; k < WS_THREADS; k++) {
		long v;
		ax_chan_recv(done, &v);
	}
	for (int k = 0; k < WS_THREADS; k++)
		pthread_join(th[k], NULL);
	ax_chan_destroy(done);
	for (int i = 0; i < WS_TASKS; i++)
		ax_chan_close(s.c[i]);
	for (int i = 0; i < WS_TASKS; i++)
		CONF_EQ(conf_join(t[i]), WS_PER, "elements received by task %d "
			"(a wake during its run must cause one more run)", i);
	CONF_EQ(atomic_load(&s.doubles), 0, "resumptions that found the task "
		"already running on another worker");
	for (int i = 0; i < WS_TASKS; i++)
		ax_chan_destroy(s.c[i]);
	return 0;
}

static void case_wake_storm(void)
{
	conf_run(ws_main, NULL);
}

/* ------------------------------------------------------------------ */
/* mt.park_wake                                                        */
/* ------------------------------------------------------------------ */

#define PW_ROUNDS 2000

struct pw_case {
	ax_rt *rt;
	ax_chan *c, *ack;
};

static void pw_post(void *arg)
{
	struct pw_case *s = arg;
	long v = 2;
	ax_chan_try_send(s->c, &v);
}

static void *pw_thread(void *arg)
{
	struct pw_case *s = arg;
	unsigned seed = 7;
	for (int i = 0; i < PW_ROUNDS; i++) {
		/* let the workers run out of work and park first, often */
		struct timespec ts = {0, (long)(rand_r(&seed) % 200) * 1000};
		nanosleep(&ts, NULL);
		if (i % 2) {
			long v = 1;
			ax_chan_send(s->c, &v);
		} else if (ax_post(s->rt, pw_post, s) != 0) {
			break;
		}
		/* one element at a time: the post's try_send finds room */
		long a;
		if (ax_chan_recv(s->ack, &a) != 0)
			break;
	}
	return NULL;
}

static intptr_t pw_main(void *arg)
{
	(void)arg;
	struct pw_case s = {.rt = ax_rt_current()};
	pthread_t th;
	ax_chan_create(&s.c, sizeof(long), 1);
	ax_chan_create(&s.ack, sizeof(long), 1);
	conf_thread(&th, pw_thread, &s);
	int lost = 0;
	for (int i = 0; i < PW_ROUNDS; i++) {
		struct ax_deadline d;
		long v;
		ax_deadline_enter(&d, ax_now() + 5 * CONF_S);
		int r = ax_chan_recv(s.c, &v);
		ax_deadline_leave(&d);
		if (r == -ETIMEDOUT) {
			lost++;
			break;
		}
		CONF_EQ(r, 0, "receive %d", i);
		ax_chan_send(s.ack, &v);
	}
	ax_chan_close(s.ack);
	CONF_EQ(lost, 0, "wakes lost while the workers parked (a receive "
		"waited 5 s for an element sent or posted at once)");
	pthread_join(th, NULL);
	ax_chan_destroy(s.c);
	ax_chan_destroy(s.ack);
	return 0;
}

static void case_park_wake(void)
{
	conf_run(pw_main, NULL);
}

/* ------------------------------------------------------------------ */
/* mt.chan_across                                                      */
/* ------------------------------------------------------------------ */

#define CA_PROD 4
#define CA_CONS 4
#define CA_PER 25000

struct ca_case {
	ax_chan *c;
	atomic_long sum, count;
	atomic_int disorder;
};

struct ca_parg {
	struct ca_case *s;
	long id;
};

static intptr_t ca_prod(void *arg)
{
	struct ca_parg *p = arg;
	for (long k = 0; k < CA_PER; k++) {
		long v = (p->id << 32) | k;
		if (ax_chan_send(p->s->c, &v) != 0)
			return -1;
		if (k % 64 == 0)
			conf_spin(2 * CONF_US); /* work, so tasks spread */
	}
	return 0;
}

static intptr_t ca_cons(void *arg)
{
	struct ca_case *s = arg;
	long last[CA_PROD];
	for (int i = 0; i < CA_PROD; i++)
		last[i] = -1;
	long v;
	while (ax_chan_recv(s->c, &v) == 0) {
		long id = v >> 32, k = v & 0xffffffff;
		/* one consumer sees each producer's elements in order */
		if (id < 0 || id >= CA_PROD || k <= last[id])
			atomic_fetch_add(&s->disorder, 1);
		else
			last[id] = k;
		atomic_fetch_add(&s->sum, k);
		atomic_fetch_add(&s->count, 1);
	}
	return 0;
}

static intptr_t ca_main(void *arg)
{
	(void)arg;
	static struct ca_case s;
	memset(&s, 0, sizeof s);
	struct ca_parg pa[CA_PROD];
	ax_task *p[CA_PROD], *c[CA_CONS];
	ax_chan_create(&s.c, sizeof(long), 16);
	for (int i = 0; i < CA_CONS; i++)
		ax_spawn(&c[i], ca_cons, &s, "consumer");
	for (int i = 0; i < CA_PROD; i++) {
		pa[i] = (struct ca_parg){&s, i};
		ax_spawn(&p[i], ca_prod, &pa[i], "producer");
	}
	for (int i = 0; i < CA_PROD; i++)
		CONF_EQ(conf_join(p[i]), 0, "producer %d", i);
	ax_chan_close(s.c);
	for (int i = 0; i < CA_CONS; i++)
		conf_join(c[i]);
	long per = (long)CA_PER * (CA_PER - 1) / 2;
	CONF_EQ(atomic_load(&s.count), (long)CA_PROD * CA_PER,
		"elements received (none lost or duplicated)");
	CONF_EQ(atomic_load(&s.sum), per * CA_PROD, "sum of the elements");
	CONF_EQ(atomic_load(&s.disorder), 0, "elements of one producer seen "
		"out of order by a consumer");
	ax_chan_destroy(s.c);
	return 0;
}

static void case_chan_across(void)
{
	conf_run(ca_main, NULL);
}

/* ------------------------------------------------------------------ */
/* mt.cancel_across                                                    */
/* ------------------------------------------------------------------ */

#define CX_ROUNDS 50
#define CX_VICTIMS 16

static intptr_t cx_canceller(void *arg)
{
	ax_task *t = arg;
	conf_spin(20 * CONF_US); /* work, so cancellers spread over workers */
	return ax_cancel(t);
}

struct cx_victim {
	ax_chan *c;
	int r1, r2;
};

struct cx_slot {
	struct cx_victim v;
	int odd;
};

static intptr_t cx_victim2(void *arg)
{
	struct cx_slot *s = arg;
	long e;
	s->v.r1 = s->odd ? ax_sleep(10 * CONF_S) : ax_chan_recv(s->v.c, &e);
	s->v.r2 = ax_sleep(CONF_MS);
	return 0;
}

static intptr_t cx_main(void *arg)
{
	(void)arg;
	ax_chan *c;
	ax_chan_create(&c, sizeof(long), 1);
	for (int round = 0; round < CX_ROUNDS && !conf_failed(); round++) {
		struct cx_slot s[CX_VICTIMS];
		ax_task *v[CX_VICTIMS], *k[CX_VICTIMS];
		for (int i = 0; i < CX_VICTIMS; i++) {
			s[i] = (struct cx_slot){{c, 1, 1}, i % 2};
			ax_spawn(&v[i], cx_victim2, &s[i], "victim");
		}
		for (int i = 0; i < CX_VICTIMS; i++)
			ax_spawn(&k[i], cx_canceller, v[i], "canceller");
		for (int i = 0; i < CX_VICTIMS; i++)
			CONF_EQ(conf_join(k[i]), 0, "ax_cancel");
		for (int i = 0; i < CX_VICTIMS; i++) {
			CONF_JOIN_WITHIN(v[i], 5 * CONF_S, "a cancelled victim");
			CONF_EQ(s[i].v.r1, -ECANCELED, "round %d: the %s of a task "
				"cancelled from another worker", round,
				s[i].odd ? "sleep" : "receive");
			CONF_EQ(s[i].v.r2, 0, "round %d: the call after it (the "
				"request is consumed once)", round);
		}
	}
	ax_chan_destroy(c);
	return 0;
}

static void case_cancel_across(void)
{
	conf_run(cx_main, NULL);
}

/* ------------------------------------------------------------------ */
/* mt.migrate_1m                                                       */
/* ------------------------------------------------------------------ */

#define MG_SPAWNERS 8
#define MG_BATCH 64
#define MG_TOTAL 1000000

static atomic_long mg_moved;

static intptr_t mg_child(void *arg)
{
	pthread_t before = pthread_self();
	int r = ax_yield();
	if (r != 0)
		return -1;
	if (!pthread_equal(before, pthread_self()))
		atomic_fetch_add(&mg_moved, 1);
	return (intptr_t)arg * 2;
}

static intptr_t mg_spawner(void *arg)
{
	long base = (long)(intptr_t)arg;
	long per = MG_TOTAL / MG_SPAWNERS;
	long bad = 0;
	for (long done = 0; done < per; done += MG_BATCH) {
		ax_task *t[MG_BATCH];
		for (int i = 0; i < MG_BATCH; i++)
			if (ax_spawn(&t[i], mg_child, (void *)(intptr_t)(base + done + i),
				     "child") != 0)
				return -1;
		for (int i = 0; i < MG_BATCH; i++) {
			intptr_t r;
			if (ax_join(t[i], &r) != 0 || r != (base + done + i) * 2)
				bad++;
		}
	}
	return bad;
}

static intptr_t mg_main(void *arg)
{
	(void)arg;
	ax_task *t[MG_SPAWNERS];
	atomic_store(&mg_moved, 0);
	int64_t t0 = ax_now();
	for (int i = 0; i < MG_SPAWNERS; i++)
		ax_spawn(&t[i], mg_spawner,
			 (void *)(intptr_t)((long)i * (MG_TOTAL / MG_SPAWNERS)),
			 "spawner");
	for (int i = 0; i < MG_SPAWNERS; i++)
		CONF_EQ(conf_join(t[i]), 0, "children of spawner %d with a wrong "
			"result or join", i);
	struct ax_rt_stats st;
	ax_rt_stats(ax_rt_current(), &st);
	CONF_TRUE(st.tasks_spawned >= MG_TOTAL, "tasks spawned: %llu",
		  (unsigned long long)st.tasks_spawned);
	CONF_TRUE(ax_now() - t0 < 100 * CONF_S, "1M tasks took %.1f s",
		  (ax_now() - t0) / 1e9);
	return 0;
}

static void case_migrate_1m(void)
{
	conf_run(mg_main, NULL);
}

/* ------------------------------------------------------------------ */
/* mt.join_across                                                      */
/* ------------------------------------------------------------------ */

#define JA_ROUNDS 300

struct ja_case {
	ax_chan *c;
	ax_task *target;
};

static intptr_t ja_target(void *arg)
{
	struct ja_case *s = arg;
	long v;
	if (ax_chan_recv(s->c, &v) != 0)
		return -1;
	conf_spin(5 * CONF_US);
	return v + 1;
}

static intptr_t ja_joiner(void *arg)
{
	struct ja_case *s = arg;
	intptr_t r = 0;
	conf_spin(5 * CONF_US);
	int e = ax_join(s->target, &r);
	return e ? e : r;
}

static intptr_t ja_main(void *arg)
{
	(void)arg;
	struct ja_case s;
	ax_chan_create(&s.c, sizeof(long), 1);
	for (int i = 0; i < JA_ROUNDS && !conf_failed(); i++) {
		ax_task *j, *d;
		ax_spawn(&s.target, ja_target, &s, "target");
		ax_spawn(&j, ja_joiner, &s, "joiner");
		/* a detached task that ends while its handle is released */
		ax_spawn(&d, ja_target, &s, "detached");
		CONF_EQ(ax_detach(d), 0, "ax_detach of a running task");
		long v = i;
		ax_chan_send(s.c, &v);
		ax_chan_send(s.c, &v);
		CONF_EQ(CONF_JOIN_WITHIN(j, 5 * CONF_S, "a joiner"), i + 1,
			"round %d: the result a join from another worker got", i);
	}
	ax_chan_destroy(s.c);
	return 0;
}

static void case_join_across(void)
{
	conf_run(ja_main, NULL);
}

const struct conf_case conf_cases_mt[] = {
	{"mt.wake_storm", "[AX-MT-1] a task never runs on two workers at once, "
	 "and a wake that arrives while it runs makes it run once more",
	 "32 receivers woken by 2 threads and 2 tasks at once, 64k elements",
	 AX_FEAT_MULTI_WORKER | AX_FEAT_XTHREAD, 30, 0, case_wake_storm},
	{"mt.park_wake", "[AX-MT-2] [AX-POST-2] a send or post that arrives while "
	 "every worker parks wakes one: no wake is lost",
	 "2000 sends and posts from a thread, each after the workers went idle",
	 AX_FEAT_MULTI_WORKER | AX_FEAT_XTHREAD, 60, 0, case_park_wake},
	{"mt.chan_across", "[AX-MT-3] [AX-CHAN-1] channels between tasks on "
	 "different workers lose, duplicate and reorder nothing",
	 "4 producers, 4 consumers, 100k elements through one channel",
	 AX_FEAT_MULTI_WORKER, 30, 0, case_chan_across},
	{"mt.cancel_across", "[AX-MT-4] [AX-CANCEL-1] [AX-CANCEL-5] ax_cancel "
	 "from another worker interrupts the task's wait; the request is "
	 "consumed once",
	 "50 rounds of 16 blocked tasks cancelled by 16 other tasks",
	 AX_FEAT_MULTI_WORKER, 60, 0, case_cancel_across},
	{"mt.migrate_1m", "[AX-MT-5] [AX-TASK-2] tasks migrate between workers "
	 "with their stacks: 1M tasks that yield and are joined return "
	 "their results, in bounded time",
	 "8 spawners x 125k children that yield, in batches of 64",
	 AX_FEAT_MULTI_WORKER, 240, CONF_SERIAL, case_migrate_1m},
	{"mt.join_across", "[AX-MT-6] [AX-TASK-2] [AX-TASK-14] ax_join and "
	 "ax_detach of a task running on another worker",
	 "300 rounds: a joiner and a detached task beside a blocked target",
	 AX_FEAT_MULTI_WORKER, 30, 0, case_join_across},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
