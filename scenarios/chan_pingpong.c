/*
 * chan_pingpong.c - channel round trips: two tasks on one runtime, then a
 * task on this runtime and one on a second runtime in another thread (the
 * cross-thread wake latency). The check: every reply carried the value sent
 * plus one, in order.
 */
#include <errno.h>
#include <pthread.h>

#include "scenario.h"

struct pp {
	ax_chan *ping, *pong;
	int64_t n;
	int64_t bad;
};

static intptr_t pp_echo(void *arg)
{
	struct pp *p = arg;
	int64_t v;
	while (ax_chan_recv(p->ping, &v) == 0) {
		v++;
		if (ax_chan_send(p->pong, &v) < 0)
			break;
	}
	return 0;
}

static void *pp_thread(void *arg)
{
	ax_rt *rt;
	if (ax_rt_create(&rt, ax_rt_driver(((void **)arg)[1]), NULL) < 0)
		return NULL;
	ax_rt_run(rt, pp_echo, ((void **)arg)[0], NULL);
	ax_rt_destroy(rt);
	return NULL;
}

static int64_t pp_drive(struct pp *p)
{
	int64_t t0 = ax_now();
	for (int64_t i = 0; i < p->n; i++) {
		int64_t v = i, r = -1;
		if (ax_chan_send(p->ping, &v) < 0 || ax_chan_recv(p->pong, &r) < 0 ||
		    r != i + 1)
			p->bad++;
	}
	return ax_now() - t0;
}

static int pp_open(struct pp *p, int64_t n)
{
	p->n = n;
	p->bad = 0;
	if (ax_chan_create(&p->ping, sizeof(int64_t), 1) < 0)
		return -ENOMEM;
	if (ax_chan_create(&p->pong, sizeof(int64_t), 1) < 0) {
		ax_chan_destroy(p->ping);
		return -ENOMEM;
	}
	return 0;
}

static void pp_close(struct pp *p)
{
	ax_chan_destroy(p->ping);
	ax_chan_destroy(p->pong);
}

/* Local round trips between this task and an echo task; returns the
 * elapsed ns, with p->bad counting wrong replies. */
static int64_t pp_local(struct pp *p)
{
	ax_task *t;
	ax_spawn(&t, pp_echo, p, "echo");
	int64_t el = pp_drive(p);
	ax_chan_close(p->ping);
	ax_join(t, NULL);
	return el;
}

static intptr_t pp_run(struct axs_ctx *ctx)
{
	struct pp p;
	if (pp_open(&p, axs_param(ctx, "count")) < 0)
		return -ENOMEM;
	int64_t el = pp_local(&p);
	pp_close(&p);
	if (p.bad) {
		axs_fail(ctx, "%ld of %ld local round trips wrong", (long)p.bad,
			   (long)p.n);
		return -1;
	}
	axs_metric(ctx, "local_rtt_ns", (double)el / (double)p.n, "ns", -1);

	if (pp_open(&p, axs_param(ctx, "xcount")) < 0)
		return -ENOMEM;
	pthread_t th;
	void *args[2] = {&p, ax_rt_current()};
	if (pthread_create(&th, NULL, pp_thread, args) != 0) {
		pp_close(&p);
		return -EAGAIN;
	}
	el = pp_drive(&p);
	ax_chan_close(p.ping);
	pthread_join(th, NULL);
	pp_close(&p);
	if (p.bad) {
		axs_fail(ctx, "%ld of %ld cross-runtime round trips wrong",
			   (long)p.bad, (long)p.n);
		return -1;
	}
	axs_metric(ctx, "xthread_rtt_ns", (double)el / (double)p.n, "ns", -1);
	return 0;
}

/* Instructions mode: the local round trips only (a second thread would
 * make the count depend on how the threads interleave). */
static int64_t pp_instr(struct axs_ctx *ctx)
{
	struct pp p;
	if (pp_open(&p, axs_param(ctx, "count")) < 0)
		return -ENOMEM;
	pp_local(&p);
	pp_close(&p);
	return p.bad ? -EIO : p.n;
}

static const struct axs_param_def pp_params[] = {
	{"count", AXS_P_INT, "1000000", "round trips between two local tasks", 1, 1000000000},
	{"xcount", AXS_P_INT, "20000", "round trips to a task on a second runtime", 1, 100000000},
};

const struct axs_scenario axs_chan_pingpong = {
	.name = "chan_pingpong",
	.summary = "channel round trips: same runtime, and across two runtimes on two threads",
	.kind = AXS_LOCAL,
	.features = AX_FEAT_XTHREAD,
	.params = pp_params,
	.nparams = sizeof pp_params / sizeof pp_params[0],
	.run = pp_run,
	.instr = pp_instr,
};
