/* serve.c - the processes that host the implementation under test: the
 * server side of a network scenario (`__server` child of run, or `axbench
 * serve` in the foreground) and a local scenario (`__local` child). */
#include "commands.h"
#include "proc.h"
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

/* One runtime of the server: with -p workers=N (thread-per-core) there are
 * N, each on its own thread pinned to its own CPU, with its own engine
 * instance, its own SO_REUSEPORT listener on the common port and its own
 * copy of the scenario's server; nothing is shared between them but the
 * port. Without workers (or workers=1) the one worker runs on the main
 * thread, as a server always did. */
struct worker {
	struct srv *s;
	int idx;
	int cpu;                  /* -1: the process's CPUs */
	int lfd;
	ax_rt *rt;
	struct axs_ctx ctx;
	struct axs_out out;
	ax_task *main_task;       /* while serve runs; runtime thread only */
	bool serve_done_stopping; /* serve returned after a stop request */
	intptr_t result;
	int run_err, create_err;
	pthread_t th;
	bool th_started;
	/* runtime counters at the measurement marks, taken by posted
	 * functions on the runtime thread, read after ax_rt_run returns */
	struct ax_rt_stats st_mark[2];
	bool have_st[2];
	/* the live tasks' stacks at the end mark (ax_rt_stack_usage) */
	struct ax_stack_usage stacks;
	bool have_stacks;
};

struct srv {
	struct axb_impl impl;
	const struct axs_scenario *sc;
	const struct axb_child_opts *o;
	int64_t values[AXS_MAX_PARAMS];
	struct axs_out out;       /* the workers' outputs, merged */
	struct worker *w;
	int nw;
	struct axr_run ref;
	pthread_t sigth;
	atomic_bool done;
	/* worker threads: each reports its runtime created (or not), then
	 * waits for the go (or the abort) */
	sem_t created, go;
	atomic_bool abort;
	/* Measurement marks (SIGUSR1 = start, SIGUSR2 = end, sent by the load
	 * generator): rusage of the whole process (every worker) taken by
	 * the signal thread, read after joining it. */
	struct rusage ru_mark[2];
	int64_t t_mark[2];
	bool have_mark[2];
	int stop_requests;
};

static void server_sigset(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

static json_t *stats_json(const struct ax_rt_stats *a, const struct ax_rt_stats *base)
{
	struct ax_rt_stats z;
	if (!base) {
		memset(&z, 0, sizeof z);
		base = &z;
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:I, s:I, s:I}",
		"loop_iterations", (json_int_t)(a->loop_iterations - base->loop_iterations),
		"events", (json_int_t)(a->events - base->events),
		"switches", (json_int_t)(a->switches - base->switches),
		"tasks_spawned", (json_int_t)(a->tasks_spawned - base->tasks_spawned),
		"tasks_live", (json_int_t)a->tasks_live,
		"hogs", (json_int_t)(a->hogs - base->hogs),
		"posts", (json_int_t)(a->posts - base->posts),
		"stacks_guarded", (json_int_t)a->stacks_guarded,
		"stacks_slab", (json_int_t)a->stacks_slab,
		"workers", (json_int_t)a->workers,
		"steals", (json_int_t)(a->steals - base->steals),
		"parks", (json_int_t)(a->parks - base->parks),
		"wakes_remote", (json_int_t)(a->wakes_remote - base->wakes_remote),
		"hops", (json_int_t)(a->hops - base->hops));
}

/* The workers' stacks at the end mark as one (ax_rt_stack_usage): counts
 * and totals summed, the largest stack's bytes; null when not measured (a
 * reference server, the thread-per-task oracle). */
static json_t *stack_usage_json(const struct srv *s)
{
	struct ax_stack_usage a = {0};
	if (s->impl.kind != AXB_IMPL_AX)
		return json_null();
	for (int i = 0; i < s->nw; i++) {
		const struct ax_stack_usage *u = &s->w[i].stacks;
		if (!s->w[i].have_stacks)
			return json_null();
		a.stacks += u->stacks;
		a.stack_size = u->stack_size;
		a.resident_total += u->resident_total;
		if (u->resident_max > a.resident_max)
			a.resident_max = u->resident_max;
	}
	return json_pack("{s:I, s:I, s:I, s:I}",
		"stacks", (json_int_t)a.stacks,
		"stack_size", (json_int_t)a.stack_size,
		"resident_max", (json_int_t)a.resident_max,
		"resident_total", (json_int_t)a.resident_total);
}

/* acc += a, counter by counter (the workers' counters summed). */
static void stats_add(struct ax_rt_stats *acc, const struct ax_rt_stats *a)
{
	acc->loop_iterations += a->loop_iterations;
	acc->events += a->events;
	acc->switches += a->switches;
	acc->tasks_spawned += a->tasks_spawned;
	acc->tasks_live += a->tasks_live;
	acc->hogs += a->hogs;
	acc->posts += a->posts;
	acc->stacks_guarded += a->stacks_guarded;
	acc->stacks_slab += a->stacks_slab;
	acc->workers += a->workers;
	acc->steals += a->steals;
	acc->parks += a->parks;
	acc->wakes_remote += a->wakes_remote;
	acc->hops += a->hops;
}

static json_t *rusage_delta_json(const struct rusage *a, const struct rusage *b,
				 double wall_s)
{
	double user = axb_tv_s(b->ru_utime) - axb_tv_s(a->ru_utime);
	double sys = axb_tv_s(b->ru_stime) - axb_tv_s(a->ru_stime);
	return json_pack("{s:f, s:f, s:f, s:o, s:I, s:I, s:I}",
			 "wall_s", wall_s, "user_s", user, "sys_s", sys,
			 "cpu_util", axb_real(wall_s > 0 ? (user + sys) / wall_s : 0),
			 "nvcsw", (json_int_t)(b->ru_nvcsw - a->ru_nvcsw),
			 "nivcsw", (json_int_t)(b->ru_nivcsw - a->ru_nivcsw),
			 "minflt", (json_int_t)(b->ru_minflt - a->ru_minflt));
}

/* Report a setup failure: a JSON line for run, one line for a person. */
static int fail_setup(const struct axb_child_opts *o, bool foreground,
		      const char *role, const char *msg)
{
	if (foreground) {
		axb_err("%s", msg);
		return 1;
	}
	json_t *j = json_pack("{s:s, s:s, s:s}", "event", "error", "role", role,
			      "error", msg);
	axb_write_json_line(o->result_fd, j);
	json_decref(j);
	return 1;
}

/* --- runtime-thread side ------------------------------------------ */

static void post_mark(struct worker *w, int k)
{
	if (!w->have_st[k]) {
		ax_rt_stats(w->rt, &w->st_mark[k]);
		w->have_st[k] = true;
		/* at the end of the measured phase, what the tasks then live
		 * (idle connections, ...) hold of their stacks */
		if (k == 1)
			w->have_stacks = ax_rt_stack_usage(w->rt, &w->stacks) == 0;
	}
}
static void post_mark_start(void *arg) { post_mark(arg, 0); }
static void post_mark_end(void *arg) { post_mark(arg, 1); }

/* Posted on SIGTERM/SIGINT: ask serve to stop and cancel the main task. */
static void post_stop(void *arg)
{
	struct worker *w = arg;
	w->ctx.stopping = true;
	if (w->main_task)
		ax_cancel(w->main_task);
}

/* The main task: remembers itself so that post_stop can cancel it. */
static intptr_t serve_main(void *arg)
{
	struct worker *w = arg;
	intptr_t r = 0;

	w->main_task = ax_current();
	if (!w->ctx.stopping)
		r = w->s->sc->serve(&w->ctx);
	w->main_task = NULL;
	w->serve_done_stopping = w->ctx.stopping;
	return r;
}

/* --- signal thread -------------------------------------------------- */

static void *sig_thread(void *arg)
{
	struct srv *s = arg;
	sigset_t set;
	int sig;

	server_sigset(&set);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (atomic_load(&s->done))
			break;
		if (sig == SIGUSR1 || sig == SIGUSR2) {
			int k = sig == SIGUSR2;
			if (s->have_mark[k])
				continue;
			/* RUSAGE_SELF: every thread of the process */
			getrusage(RUSAGE_SELF, &s->ru_mark[k]);
			s->t_mark[k] = axb_mono_ns();
			s->have_mark[k] = true;
			for (int i = 0; i < s->nw; i++)
				if (s->w[i].rt)
					ax_post(s->w[i].rt, k ? post_mark_end : post_mark_start,
						&s->w[i]);
			continue;
		}
		s->stop_requests++;
		if (s->impl.kind == AXB_IMPL_AX) {
			for (int i = 0; i < s->nw; i++)
				ax_post(s->w[i].rt, post_stop, &s->w[i]);
		} else {
			s->impl.ref->stop(&s->ref);
		}
	}
	return NULL;
}

/* --- workers --------------------------------------------------------- */

/* Create worker w's runtime on the calling thread (pinned to w->cpu
 * first when it has one), so that the engine's memory and its io_uring
 * issuer belong to the thread that runs it. */
static void worker_create(struct worker *w)
{
	struct ax_rt_opts ro;
	if (w->cpu >= 0 && axb_pin_cpu(w->cpu)) {
		w->create_err = -EPERM;
		return;
	}
	ax_rt_opts_init(&ro);
	if (w->s->o->clock_free)
		axb_rt_opts_clock_free(&ro);
	if (w->s->o->stack_size)
		ro.stack_size = (size_t)w->s->o->stack_size;
	w->create_err = axb_impl_rt_create(&w->rt, &w->s->impl, &ro);
	if (w->create_err)
		w->rt = NULL;
}

static void worker_run(struct worker *w)
{
	w->run_err = ax_rt_run(w->rt, serve_main, w, &w->result);
}

/* A worker's thread (workers > 1): create, report, wait for the go. */
static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	worker_create(w);
	sem_post(&w->s->created);
	while (sem_wait(&w->s->go) && errno == EINTR)
		;
	if (!w->create_err && !atomic_load(&w->s->abort))
		worker_run(w);
	return NULL;
}

/* The workers' outputs as one: failures (the first, naming its worker),
 * metrics (counts summed, other units from the first worker that has
 * them) and histograms (merged). */
static void merge_outs(struct srv *s)
{
	if (s->nw == 1) {
		s->out = s->w[0].out;
		axs_out_init(&s->w[0].out);
		return;
	}
	struct axs_out *m = &s->out;
	for (int i = 0; i < s->nw; i++) {
		const struct axs_out *o = &s->w[i].out;
		if (o->failed && !m->failed) {
			m->failed = true;
			int w = snprintf(m->fail_msg, sizeof m->fail_msg, "worker %d: ", i);
			snprintf(m->fail_msg + w, sizeof m->fail_msg - (size_t)w, "%.*s",
				 (int)(sizeof m->fail_msg - (size_t)w - 1), o->fail_msg);
		}
		for (size_t k = 0; k < o->nmetrics; k++) {
			size_t j = 0;
			while (j < m->nmetrics && strcmp(m->metrics[j].name, o->metrics[k].name))
				j++;
			if (j == m->nmetrics) {
				if (m->nmetrics == AXS_MAX_METRICS)
					continue;
				m->metrics[m->nmetrics++] = o->metrics[k];
			} else if (!strcmp(o->metrics[k].unit, "count")) {
				m->metrics[j].value += o->metrics[k].value;
			}
		}
		for (size_t k = 0; k < o->nhists; k++) {
			size_t j = 0;
			while (j < m->nhists && strcmp(m->hists[j].name, o->hists[k].name))
				j++;
			if (j == m->nhists) {
				if (m->nhists == AXS_MAX_HISTS)
					continue;
				m->hists[j].h = axm_hist_new();
				if (!m->hists[j].h)
					continue;
				snprintf(m->hists[j].name, sizeof m->hists[j].name, "%s",
					 o->hists[k].name);
				m->nhists++;
			}
			axm_hist_merge(m->hists[j].h, o->hists[k].h);
		}
	}
}

/* --- the server process -------------------------------------------- */

/* Server side of a network scenario as a child of `run` (hidden) or in the
 * foreground (`axbench serve`). */
static int server_main(const struct axb_child_opts *o, bool foreground)
{
	struct srv *s = calloc(1, sizeof *s);
	char msg[512], why[256];
	sigset_t set;
	int port = 0, rc = 1, nw;
	bool sigth_started = false, sems = false;
	int64_t t0 = axb_mono_ns();

	if (!s)
		return fail_setup(o, foreground, "server", "out of memory");
	s->o = o;
	axs_out_init(&s->out);
	s->sc = axb_child_values(o, s->values);
	if (!o->impl)
		axb_bad_input("--runtime is required");
	if (axb_impl_find(o->impl, &s->impl)) {
		char hint[128];
		axb_bad_input("unknown runtime '%s' (see axbench list)%s", o->impl,
			      axb_runtime_hint(o->impl, hint, sizeof hint));
	}
	if (s->sc->kind != AXS_NET)
		axb_bad_input("scenario %s is not a network scenario", s->sc->name);
	if (!axb_impl_available(&s->impl, why, sizeof why))
		axb_bad_input("runtime %s is unavailable here: %s", s->impl.name, why);
	if (!axb_impl_supports(&s->impl, s->sc, why, sizeof why))
		axb_bad_input("runtime %s cannot run %s: %s", s->impl.name,
			      s->sc->name, why);
	int wi = axs_param_index(s->sc, "workers");
	nw = wi < 0 ? 1 : (int)s->values[wi];
	if (nw > 1 && s->impl.kind != AXB_IMPL_AX)
		axb_bad_input("%s has no thread-per-core mode: workers=%d needs an "
			      "ax runtime", s->impl.name, nw);
	s->nw = nw;
	s->w = calloc((size_t)nw, sizeof *s->w);
	if (!s->w) {
		free(s);
		return fail_setup(o, foreground, "server", "out of memory");
	}
	for (int i = 0; i < nw; i++) {
		struct worker *w = &s->w[i];
		w->s = s;
		w->idx = i;
		w->lfd = -1;
		w->cpu = nw > 1 && o->cpus.n ? o->cpus.cpu[i % o->cpus.n] : -1;
		axs_out_init(&w->out);
	}

	if (s->impl.kind == AXB_IMPL_EXT) {
		/* another program: started, pinned and metered from here */
		rc = axb_target_serve(o, &s->impl, s->sc, s->values, foreground);
		goto free_srv;
	}

	/* Every thread created from here on inherits the pinning and the
	 * blocked signals, which only the signal thread waits for. One
	 * worker: the thread that runs it on the set's first CPU (as with
	 * --cpu N); several: the process on the whole set, each worker on
	 * its own CPU. */
	if (o->cpus.n && (nw == 1 ? axb_pin_cpu(o->cpus.cpu[0]) : axb_pin_cpus(&o->cpus))) {
		char cl[256];
		axb_cpus_format(&o->cpus, cl, sizeof cl);
		snprintf(msg, sizeof msg, "cannot pin to CPU%s %s",
			 o->cpus.n > 1 ? "s" : "", cl);
		rc = fail_setup(o, foreground, "server", msg);
		goto free_srv;
	}
	server_sigset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	axb_raise_nofile();

	/* a network fault (fault.c): serve in a private namespace, which
	 * the load generator joins and impairs; still one thread here */
	if (axb_fault_in_netns(axb_fault_of(s->sc, s->values)) &&
	    axb_netns_private(why, sizeof why)) {
		rc = fail_setup(o, foreground, "server", why);
		goto free_srv;
	}
	/* one listener per worker, all on one port (SO_REUSEPORT: the
	 * kernel spreads the connections over them by address hash) */
	for (int i = 0; i < nw; i++) {
		int lfd = ax_tcp_listen("127.0.0.1", (uint16_t)(i ? port : o->port),
					LISTEN_BACKLOG, nw > 1 ? AX_LISTEN_REUSEPORT : 0);
		if (lfd < 0) {
			if (lfd == -EADDRINUSE && foreground && i == 0)
				axb_bad_input("port %d is in use", o->port);
			snprintf(msg, sizeof msg, "cannot listen on 127.0.0.1:%d: %s",
				 i ? port : o->port, strerror(-lfd));
			rc = fail_setup(o, foreground, "server", msg);
			goto close_listener;
		}
		s->w[i].lfd = lfd;
		if (i == 0)
			port = ax_tcp_port(lfd);
	}

	if (s->impl.kind == AXB_IMPL_AX && nw == 1) {
		worker_create(&s->w[0]);
	} else if (s->impl.kind == AXB_IMPL_AX) {
		if (sem_init(&s->created, 0, 0) || sem_init(&s->go, 0, 0)) {
			rc = fail_setup(o, foreground, "server", "sem_init failed");
			goto close_listener;
		}
		sems = true;
		atomic_init(&s->abort, false);
		for (int i = 0; i < nw; i++) {
			struct worker *w = &s->w[i];
			if (pthread_create(&w->th, NULL, worker_thread, w)) {
				w->create_err = -EAGAIN;
				continue;
			}
			w->th_started = true;
			while (sem_wait(&s->created) && errno == EINTR)
				;
		}
	} else {
		int fl = fcntl(s->w[0].lfd, F_GETFL);
		fcntl(s->w[0].lfd, F_SETFL, fl & ~O_NONBLOCK);
		s->ref.listen_fd = s->w[0].lfd;
		s->ref.sc = s->sc;
		s->ref.values = s->values;
		atomic_init(&s->ref.stopping, false);
	}
	for (int i = 0; i < nw && s->impl.kind == AXB_IMPL_AX; i++) {
		struct worker *w = &s->w[i];
		if (!w->create_err)
			continue;
		if (w->create_err == -EPERM)
			snprintf(msg, sizeof msg, "worker %d: cannot pin to CPU %d", i, w->cpu);
		else if (w->create_err == -EAGAIN && !w->th_started)
			snprintf(msg, sizeof msg, "worker %d: cannot start its thread", i);
		else
			snprintf(msg, sizeof msg, "cannot create runtime %s%s: %s",
				 s->impl.name, nw > 1 ? " for a worker" : "",
				 strerror(-w->create_err));
		rc = fail_setup(o, foreground, "server", msg);
		goto destroy_rt;
	}
	for (int i = 0; i < nw; i++) {
		struct worker *w = &s->w[i];
		w->ctx.sc = s->sc;
		w->ctx.values = s->values;
		w->ctx.listen_fd = w->lfd;
		w->ctx.quick = o->quick;
		w->ctx.stopping = false;
		w->ctx.out = &w->out;
	}
	atomic_init(&s->done, false);

	if (pthread_create(&s->sigth, NULL, sig_thread, s)) {
		rc = fail_setup(o, foreground, "server", "cannot start the signal thread");
		goto destroy_rt;
	}
	sigth_started = true;

	axb_test_fault("server-setup", s->impl.name, o->result_fd);
	if (foreground) {
		fprintf(stderr, "axbench: serving %s on %s at 127.0.0.1:%d%s (Ctrl-C to stop)\n",
			s->sc->name, s->impl.name, port,
			nw > 1 ? " with several workers" : "");
		if (axb_fault_in_netns(axb_fault_of(s->sc, s->values)))
			fprintf(stderr, "axbench: in a private network namespace: "
				"axbench load --server-pid %d impairs and reaches it\n",
				(int)getpid());
	} else {
		json_t *j = json_pack("{s:s, s:i, s:I}", "event", "ready", "port",
				      port, "pid", (json_int_t)getpid());
		axb_write_json_line(o->result_fd, j);
		json_decref(j);
	}
	if (axb_test_fault("server", s->impl.name, o->result_fd))
		axs_fail(&s->w[0].ctx, "AXBENCH_TEST_FAULT asked the server to fail");

	intptr_t result = 0;
	if (s->impl.kind == AXB_IMPL_AX && nw == 1) {
		worker_run(&s->w[0]);
	} else if (s->impl.kind == AXB_IMPL_AX) {
		for (int i = 0; i < nw; i++)
			sem_post(&s->go);
		for (int i = 0; i < nw; i++) {
			pthread_join(s->w[i].th, NULL);
			s->w[i].th_started = false;
		}
	} else {
		s->w[0].result = s->impl.ref->serve(&s->ref);
		s->w[0].serve_done_stopping = atomic_load(&s->ref.stopping);
		if (s->ref.fail[0])
			axs_fail(&s->w[0].ctx, "%s", s->ref.fail);
	}
	int64_t t1 = axb_mono_ns();

	atomic_store(&s->done, true);
	pthread_kill(s->sigth, SIGUSR1);
	pthread_join(s->sigth, NULL);
	sigth_started = false;

	/* the verdict: a recorded failure, or serve failing on its own */
	for (int i = 0; i < nw; i++) {
		struct worker *w = &s->w[i];
		if (w->run_err)
			axs_fail(&w->ctx, "ax_rt_run failed: %s", strerror(-w->run_err));
		else if (w->result < 0 && !w->serve_done_stopping)
			axs_fail(&w->ctx, "serve returned %s before being stopped",
				 strerror((int)-w->result));
		if (w->result < 0 && result >= 0)
			result = w->result;
	}
	merge_outs(s);

	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	json_t *j = json_object();
	json_object_set_new(j, "event", json_string("result"));
	json_object_set_new(j, "role", json_string("server"));
	json_object_set_new(j, "runtime", json_string(s->impl.name));
	json_object_set_new(j, "runtime_kind", json_string(axb_impl_kind_name(&s->impl)));
	json_object_set_new(j, "scenario", json_string(s->sc->name));
	json_object_set_new(j, "port", json_integer(port));
	json_object_set_new(j, "serve_result", json_integer((json_int_t)result));
	json_object_set_new(j, "check", json_pack("{s:b, s:s?}", "passed", !s->out.failed,
		"message", s->out.failed ? s->out.fail_msg : NULL));
	json_object_set_new(j, "engine_info", json_string(s->w[0].rt
		? ax_rt_engine_info(s->w[0].rt) : s->impl.ref->engine_info));
	json_object_set_new(j, "wall_s", json_real((double)(t1 - t0) / 1e9));
	json_object_set_new(j, "rusage", axb_rusage_json(&ru));
	json_object_set_new(j, "cpus", o->cpus.n ? axb_cpus_json(&o->cpus) : json_null());
	json_object_set_new(j, "workers", json_integer(nw));
	bool have_st = s->impl.kind == AXB_IMPL_AX;
	struct ax_rt_stats st0 = {0}, st1 = {0}, all = {0};
	for (int i = 0; i < nw && have_st; i++) {
		struct worker *w = &s->w[i];
		have_st = w->have_st[0] && w->have_st[1];
		stats_add(&st0, &w->st_mark[0]);
		stats_add(&st1, &w->st_mark[1]);
	}
	if (s->have_mark[0] && s->have_mark[1]) {
		json_t *m = rusage_delta_json(&s->ru_mark[0], &s->ru_mark[1],
			(double)(s->t_mark[1] - s->t_mark[0]) / 1e9);
		if (have_st)
			json_object_set_new(m, "stats", stats_json(&st1, &st0));
		json_object_set_new(m, "stack_usage", stack_usage_json(s));
		json_object_set_new(j, "measured", m);
	} else {
		json_object_set_new(j, "measured", json_null());
	}
	if (s->impl.kind == AXB_IMPL_AX) {
		json_t *per = nw > 1 ? json_array() : NULL;
		for (int i = 0; i < nw; i++) {
			struct ax_rt_stats st;
			ax_rt_stats(s->w[i].rt, &st);
			stats_add(&all, &st);
			if (per)
				json_array_append_new(per, json_pack("{s:i, s:i, s:o}",
					"worker", i, "cpu", s->w[i].cpu,
					"stats", stats_json(&st, NULL)));
		}
		json_object_set_new(j, "stats", stats_json(&all, NULL));
		if (per)
			json_object_set_new(j, "per_worker", per);
	} else {
		json_object_set_new(j, "stats", json_null());
	}
	json_object_set_new(j, "metrics", axb_out_metrics_json(&s->out));
	json_object_set_new(j, "histograms", axb_out_hists_json(&s->out));
	json_object_set_new(j, "stop_requests", json_integer(s->stop_requests));
	if (s->impl.kind == AXB_IMPL_AX) {
		int derr = 0;
		for (int i = 0; i < nw; i++) {
			int e = ax_rt_destroy(s->w[i].rt);
			if (e && !derr)
				derr = e;
			s->w[i].rt = NULL;
		}
		json_object_set_new(j, "destroy_result", json_integer(derr));
	}
	if (foreground) {
		char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		if (txt) {
			printf("%s\n", txt);
			free(txt);
		}
		fflush(stdout);
	} else {
		axb_write_json_line(o->result_fd, j);
	}
	json_decref(j);
	rc = 0;

destroy_rt:
	if (sigth_started) {
		atomic_store(&s->done, true);
		pthread_kill(s->sigth, SIGUSR1);
		pthread_join(s->sigth, NULL);
	}
	/* workers still waiting for the go (setup failed): release them */
	if (sems) {
		atomic_store(&s->abort, true);
		for (int i = 0; i < nw; i++)
			sem_post(&s->go);
	}
	for (int i = 0; i < nw; i++) {
		if (s->w[i].th_started)
			pthread_join(s->w[i].th, NULL);
		if (s->w[i].rt)
			ax_rt_destroy(s->w[i].rt);
	}
	if (sems) {
		sem_destroy(&s->created);
		sem_destroy(&s->go);
	}
close_listener:
	for (int i = 0; i < nw; i++)
		if (s->w[i].lfd >= 0)
			close(s->w[i].lfd);
free_srv:
	for (int i = 0; i < nw; i++)
		axs_out_free(&s->w[i].out);
	axs_out_free(&s->out);
	free(s->w);
	free(s);
	return rc;
}

int axb_cmd_serve(int argc, char **argv)
{
	struct axb_child_opts o;
	bool hidden = !strcmp(argv[0], "__server");
	axb_child_opts_parse(argc, argv, argv[0], &o);
	return server_main(&o, !hidden);
}

/* --- local scenarios ------------------------------------------------ */

struct loc {
	const struct axs_scenario *sc;
	struct axs_ctx ctx;
};

static intptr_t local_main(void *arg)
{
	struct loc *l = arg;
	return l->sc->run(&l->ctx);
}

/* A local scenario on an ax runtime (run as the main task), or on a
 * reference's native version (run_local, on this thread, no runtime). */
int axb_cmd_local(int argc, char **argv)
{
	struct axb_child_opts o;
	struct axb_impl impl;
	struct axs_out *out = calloc(1, sizeof *out);
	int64_t values[AXS_MAX_PARAMS];
	struct loc l;
	ax_rt *rt = NULL;
	char msg[512], why[256];
	intptr_t result = 0;
	int run_err = 0;

	axb_child_opts_parse(argc, argv, "__local", &o);
	if (!out)
		return fail_setup(&o, false, "local", "out of memory");
	axs_out_init(out);
	l.sc = axb_child_values(&o, values);
	if (!o.impl)
		axb_bad_input("--runtime is required");
	if (axb_impl_find(o.impl, &impl)) {
		char hint[128];
		axb_bad_input("unknown runtime '%s' (see axbench list)%s", o.impl,
			      axb_runtime_hint(o.impl, hint, sizeof hint));
	}
	if (l.sc->kind != AXS_LOCAL)
		axb_bad_input("scenario %s is not a local scenario", l.sc->name);
	if (!axb_impl_available(&impl, why, sizeof why))
		axb_bad_input("runtime %s is unavailable here: %s", impl.name, why);
	if (!axb_impl_supports(&impl, l.sc, why, sizeof why) ||
	    (impl.kind == AXB_IMPL_REF && !impl.ref->run_local))
		axb_bad_input("%s cannot run %s%s%s", impl.name, l.sc->name,
			      why[0] ? ": " : "", why);
	if (o.cpu >= 0 && axb_pin_cpu(o.cpu)) {
		snprintf(msg, sizeof msg, "cannot pin to CPU %d", o.cpu);
		free(out);
		return fail_setup(&o, false, "local", msg);
	}
	axb_raise_nofile();

	if (impl.kind == AXB_IMPL_AX) {
		struct ax_rt_opts ro;
		ax_rt_opts_init(&ro);
		if (o.stack_size)
			ro.stack_size = (size_t)o.stack_size;
		int err = axb_impl_rt_create(&rt, &impl, &ro);
		if (err) {
			snprintf(msg, sizeof msg, "cannot create runtime %s: %s",
				 impl.name, strerror(-err));
			free(out);
			return fail_setup(&o, false, "local", msg);
		}
	}
	memset(&l.ctx, 0, sizeof l.ctx);
	l.ctx.sc = l.sc;
	l.ctx.values = values;
	l.ctx.listen_fd = -1;
	l.ctx.quick = o.quick;
	l.ctx.out = out;
	if (axb_test_fault("local", impl.name, o.result_fd))
		axs_fail(&l.ctx, "AXBENCH_TEST_FAULT asked the scenario to fail");

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	int64_t t0 = axb_mono_ns();
	if (rt)
		run_err = ax_rt_run(rt, local_main, &l, &result);
	else
		result = impl.ref->run_local(&l.ctx);
	int64_t t1 = axb_mono_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (run_err)
		axs_fail(&l.ctx, "ax_rt_run failed: %s", strerror(-run_err));
	else if (result < 0)
		axs_fail(&l.ctx, "run returned %s", strerror((int)-result));

	json_t *j = json_object();
	json_object_set_new(j, "event", json_string("result"));
	json_object_set_new(j, "role", json_string("local"));
	json_object_set_new(j, "runtime", json_string(impl.name));
	json_object_set_new(j, "runtime_kind", json_string(axb_impl_kind_name(&impl)));
	json_object_set_new(j, "scenario", json_string(l.sc->name));
	json_object_set_new(j, "run_result", json_integer((json_int_t)result));
	json_object_set_new(j, "check", json_pack("{s:b, s:s?}", "passed", !out->failed,
		"message", out->failed ? out->fail_msg : NULL));
	json_object_set_new(j, "engine_info", json_string(rt ? ax_rt_engine_info(rt)
							   : impl.ref->engine_info));
	json_object_set_new(j, "measured", rusage_delta_json(&ru0, &ru1,
							     (double)(t1 - t0) / 1e9));
	json_object_set_new(j, "rusage", axb_rusage_json(&ru1));
	if (rt) {
		struct ax_rt_stats st;
		ax_rt_stats(rt, &st);
		json_object_set_new(j, "stats", stats_json(&st, NULL));
	} else {
		json_object_set_new(j, "stats", json_null());
	}
	json_object_set_new(j, "metrics", axb_out_metrics_json(out));
	json_object_set_new(j, "histograms", axb_out_hists_json(out));
	if (rt)
		json_object_set_new(j, "destroy_result", json_integer(ax_rt_destroy(rt)));
	axb_write_json_line(o.result_fd, j);
	json_decref(j);
	axs_out_free(out);
	free(out);
	return 0;
}
