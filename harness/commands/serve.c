/* serve.c - the processes that host the implementation under test: the
 * server side of a network scenario (`__server` child of run, or `axbench
 * serve` in the foreground) and a local scenario (`__local` child). */
#include "commands.h"
#include "proc.h"
#include "results.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

struct srv {
	struct axb_impl impl;
	const struct axs_scenario *sc;
	int64_t values[AXS_MAX_PARAMS];
	struct axs_out out;
	struct axs_ctx ctx;
	ax_rt *rt;
	ax_task *main_task;       /* while serve runs; runtime thread only */
	bool serve_done_stopping; /* serve returned after a stop request */
	struct axr_run ref;
	pthread_t sigth;
	atomic_bool done;
	/* Measurement marks (SIGUSR1 = start, SIGUSR2 = end, sent by the load
	 * generator): rusage taken by the signal thread, read after joining
	 * it; runtime counters taken by posted functions on the runtime
	 * thread, read after ax_rt_run returns. */
	struct rusage ru_mark[2];
	int64_t t_mark[2];
	bool have_mark[2];
	struct ax_rt_stats st_mark[2];
	bool have_st[2];
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
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"loop_iterations", (json_int_t)(a->loop_iterations - base->loop_iterations),
		"events", (json_int_t)(a->events - base->events),
		"switches", (json_int_t)(a->switches - base->switches),
		"tasks_spawned", (json_int_t)(a->tasks_spawned - base->tasks_spawned),
		"tasks_live", (json_int_t)a->tasks_live,
		"hogs", (json_int_t)(a->hogs - base->hogs),
		"posts", (json_int_t)(a->posts - base->posts),
		"stacks_guarded", (json_int_t)a->stacks_guarded,
		"stacks_slab", (json_int_t)a->stacks_slab);
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

static void post_mark(struct srv *s, int k)
{
	if (!s->have_st[k]) {
		ax_rt_stats(s->rt, &s->st_mark[k]);
		s->have_st[k] = true;
	}
}
static void post_mark_start(void *arg) { post_mark(arg, 0); }
static void post_mark_end(void *arg) { post_mark(arg, 1); }

/* Posted on SIGTERM/SIGINT: ask serve to stop and cancel the main task. */
static void post_stop(void *arg)
{
	struct srv *s = arg;
	s->ctx.stopping = true;
	if (s->main_task)
		ax_cancel(s->main_task);
}

/* The main task: remembers itself so that post_stop can cancel it. */
static intptr_t serve_main(void *arg)
{
	struct srv *s = arg;
	intptr_t r = 0;

	s->main_task = ax_current();
	if (!s->ctx.stopping)
		r = s->sc->serve(&s->ctx);
	s->main_task = NULL;
	s->serve_done_stopping = s->ctx.stopping;
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
			getrusage(RUSAGE_SELF, &s->ru_mark[k]);
			s->t_mark[k] = axb_mono_ns();
			s->have_mark[k] = true;
			if (s->rt)
				ax_post(s->rt, k ? post_mark_end : post_mark_start, s);
			continue;
		}
		s->stop_requests++;
		if (s->impl.kind == AXB_IMPL_AX)
			ax_post(s->rt, post_stop, s);
		else
			s->impl.ref->stop(&s->ref);
	}
	return NULL;
}

/* --- the server process -------------------------------------------- */

/* Server side of a network scenario as a child of `run` (hidden) or in the
 * foreground (`axbench serve`). */
static int server_main(const struct axb_child_opts *o, bool foreground)
{
	struct srv *s = calloc(1, sizeof *s);
	char msg[512], why[256];
	sigset_t set;
	int lfd = -1, port = 0, rc = 1;
	intptr_t result = 0;
	bool sigth_started = false;
	int64_t t0 = axb_mono_ns();

	if (!s)
		return fail_setup(o, foreground, "server", "out of memory");
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

	if (s->impl.kind == AXB_IMPL_EXT) {
		/* another program: started, pinned and metered from here */
		rc = axb_target_serve(o, &s->impl, s->sc, s->values, foreground);
		goto free_srv;
	}

	/* Every thread created from here on inherits the pinning and the
	 * blocked signals, which only the signal thread waits for. */
	if (o->cpu >= 0 && axb_pin_cpu(o->cpu)) {
		snprintf(msg, sizeof msg, "cannot pin to CPU %d", o->cpu);
		rc = fail_setup(o, foreground, "server", msg);
		goto free_srv;
	}
	server_sigset(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	axb_raise_nofile();

	lfd = ax_tcp_listen("127.0.0.1", (uint16_t)o->port, LISTEN_BACKLOG, 0);
	if (lfd < 0) {
		if (lfd == -EADDRINUSE && foreground)
			axb_bad_input("port %d is in use", o->port);
		snprintf(msg, sizeof msg, "cannot listen on 127.0.0.1:%d: %s",
			 o->port, strerror(-lfd));
		rc = fail_setup(o, foreground, "server", msg);
		goto free_srv;
	}
	port = ax_tcp_port(lfd);

	if (s->impl.kind == AXB_IMPL_AX) {
		struct ax_rt_opts ro;
		ax_rt_opts_init(&ro);
		if (o->clock_free)
			axb_rt_opts_clock_free(&ro);
		int err = ax_rt_create(&s->rt, s->impl.name, &ro);
		if (err) {
			snprintf(msg, sizeof msg, "cannot create runtime %s: %s",
				 s->impl.name, strerror(-err));
			rc = fail_setup(o, foreground, "server", msg);
			goto close_listener;
		}
	} else {
		int fl = fcntl(lfd, F_GETFL);
		fcntl(lfd, F_SETFL, fl & ~O_NONBLOCK);
		s->ref.listen_fd = lfd;
		s->ref.sc = s->sc;
		s->ref.values = s->values;
		atomic_init(&s->ref.stopping, false);
	}
	s->ctx.sc = s->sc;
	s->ctx.values = s->values;
	s->ctx.listen_fd = lfd;
	s->ctx.quick = o->quick;
	s->ctx.stopping = false;
	s->ctx.out = &s->out;
	atomic_init(&s->done, false);

	if (pthread_create(&s->sigth, NULL, sig_thread, s)) {
		rc = fail_setup(o, foreground, "server", "cannot start the signal thread");
		goto destroy_rt;
	}
	sigth_started = true;

	axb_test_fault("server-setup", s->impl.name, o->result_fd);
	if (foreground) {
		fprintf(stderr, "axbench: serving %s on %s at 127.0.0.1:%d (Ctrl-C to stop)\n",
			s->sc->name, s->impl.name, port);
	} else {
		json_t *j = json_pack("{s:s, s:i, s:I}", "event", "ready", "port",
				      port, "pid", (json_int_t)getpid());
		axb_write_json_line(o->result_fd, j);
		json_decref(j);
	}
	if (axb_test_fault("server", s->impl.name, o->result_fd))
		axs_fail(&s->ctx, "AXBENCH_TEST_FAULT asked the server to fail");

	int run_err = 0;
	if (s->impl.kind == AXB_IMPL_AX) {
		run_err = ax_rt_run(s->rt, serve_main, s, &result);
	} else {
		result = s->impl.ref->serve(&s->ref);
		s->serve_done_stopping = atomic_load(&s->ref.stopping);
		if (s->ref.fail[0])
			axs_fail(&s->ctx, "%s", s->ref.fail);
	}
	int64_t t1 = axb_mono_ns();

	atomic_store(&s->done, true);
	pthread_kill(s->sigth, SIGUSR1);
	pthread_join(s->sigth, NULL);
	sigth_started = false;

	/* the verdict: a recorded failure, or serve failing on its own */
	if (run_err)
		axs_fail(&s->ctx, "ax_rt_run failed: %s", strerror(-run_err));
	else if (result < 0 && !s->serve_done_stopping)
		axs_fail(&s->ctx, "serve returned %s before being stopped",
			   strerror((int)-result));

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
	json_object_set_new(j, "engine_info", json_string(s->rt ? ax_rt_engine_info(s->rt)
					      : s->impl.ref->engine_info));
	json_object_set_new(j, "wall_s", json_real((double)(t1 - t0) / 1e9));
	json_object_set_new(j, "rusage", axb_rusage_json(&ru));
	if (s->have_mark[0] && s->have_mark[1]) {
		json_t *m = rusage_delta_json(&s->ru_mark[0], &s->ru_mark[1],
			(double)(s->t_mark[1] - s->t_mark[0]) / 1e9);
		if (s->have_st[0] && s->have_st[1])
			json_object_set_new(m, "stats", stats_json(&s->st_mark[1], &s->st_mark[0]));
		json_object_set_new(j, "measured", m);
	} else {
		json_object_set_new(j, "measured", json_null());
	}
	if (s->rt) {
		struct ax_rt_stats st;
		ax_rt_stats(s->rt, &st);
		json_object_set_new(j, "stats", stats_json(&st, NULL));
	} else {
		json_object_set_new(j, "stats", json_null());
	}
	json_object_set_new(j, "metrics", axb_out_metrics_json(&s->out));
	json_object_set_new(j, "histograms", axb_out_hists_json(&s->out));
	json_object_set_new(j, "stop_requests", json_integer(s->stop_requests));
	if (s->rt) {
		int derr = ax_rt_destroy(s->rt);
		json_object_set_new(j, "destroy_result", json_integer(derr));
		s->rt = NULL;
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
	if (s->rt)
		ax_rt_destroy(s->rt);
close_listener:
	close(lfd);
free_srv:
	axs_out_free(&s->out);
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
		int err = ax_rt_create(&rt, impl.name, &ro);
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
