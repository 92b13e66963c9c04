/* target_serve.c - the server side of a network scenario on an external
 * target (targets/README.md): `__server --impl asyncio` as a child of run,
 * or `axbench serve --runtime asyncio` in the foreground. This process
 * stands in for the target towards the harness: it starts the target's
 * command pinned to the server's CPUs in a process group of its own
 * (target.c), runs the rpc_fanout backend when the scenario has one
 * (backend.c), waits for the target to accept connections, reports ready,
 * and takes the marks of the measured phase itself: the load generator's
 * SIGUSR1/SIGUSR2 come here, and the target's CPU and memory are read from
 * /proc at that moment (meter.c). The target gets the signals only when
 * its spec says it understands them. On SIGTERM it stops the target
 * (SIGTERM, then SIGKILL to the group) and reports a result of the same
 * shape as an ax runtime's server. */
#include "commands.h"
#include "loadgen.h"
#include "proc.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ENV 512

struct envv {
	char *v[MAX_ENV + 1];
	size_t n;
};

/* Set name=value, replacing an inherited one. */
static void env_set(struct envv *e, const char *name, const char *value)
{
	size_t nl = strlen(name);
	char *kv;
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		abort();
	for (size_t i = 0; i < e->n; i++)
		if (!strncmp(e->v[i], name, nl) && e->v[i][nl] == '=') {
			free(e->v[i]);
			e->v[i] = kv;
			return;
		}
	if (e->n < MAX_ENV)
		e->v[e->n++] = kv;
	else
		free(kv);
	e->v[e->n] = NULL;
}

static void env_free(struct envv *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
}

/* The environment of the target: ours, minus the harness's own test
 * hooks, plus the AXB_* values, its worker count and its spec's env. */
static void build_env(struct envv *e, const struct axb_target *t,
		      const struct axb_target_vars *v)
{
	char num[32];
	e->n = 0;
	for (char **p = environ; *p && e->n < MAX_ENV; p++)
		if (strncmp(*p, "AXBENCH_TEST_", 13))
			e->v[e->n++] = strdup(*p);
	e->v[e->n] = NULL;
	snprintf(num, sizeof num, "%d", v->port);
	env_set(e, "AXB_PORT", num);
	env_set(e, "AXB_SCENARIO", v->sc->name);
	snprintf(num, sizeof num, "%d", v->ncpus);
	env_set(e, "AXB_CPUS", num);
	env_set(e, "AXB_CPU_LIST", v->cpu_list);
	if (v->backend)
		env_set(e, "AXB_BACKEND", v->backend);
	for (size_t i = 0; i < v->sc->nparams; i++) {
		char name[96];
		size_t k = (size_t)snprintf(name, sizeof name, "AXB_PARAM_%s",
					    v->sc->params[i].name);
		for (size_t j = 10; j < k && j < sizeof name; j++)
			if (name[j] >= 'a' && name[j] <= 'z')
				name[j] = (char)(name[j] - 'a' + 'A');
		snprintf(num, sizeof num, "%lld", (long long)v->values[i]);
		env_set(e, name, num);
	}
	snprintf(num, sizeof num, "%d", v->ncpus);
	for (size_t i = 0; t->workers_env && t->workers_env[i]; i++)
		env_set(e, t->workers_env[i], num);
	const char *key;
	json_t *val;
	json_object_foreach(t->env, key, val) {
		char *x = axb_target_expand(json_string_value(val), v);
		env_set(e, key, x);
		free(x);
	}
}

static int report_fail(const struct axb_child_opts *o, bool foreground,
		       const char *msg)
{
	if (foreground) {
		axb_err("%s", msg);
		return 1;
	}
	json_t *j = json_pack("{s:s, s:s, s:s}", "event", "error", "role", "server",
			      "error", msg);
	axb_write_json_line(o->result_fd, j);
	json_decref(j);
	return 1;
}

/* How a wait status reads. */
static void status_str(int st, char *buf, size_t n)
{
	char sb[32];
	if (WIFEXITED(st))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by %s",
			 axb_signal_name(WTERMSIG(st), sb, sizeof sb));
	else
		snprintf(buf, n, "ended (status 0x%x)", st);
}

int axb_target_serve(const struct axb_child_opts *o, const struct axb_impl *im,
		     const struct axs_scenario *sc, const int64_t *values,
		     bool foreground)
{
	const struct axb_target *t = im->target;
	struct axb_target_vars v = { .dir = t->dir, .sc = sc, .values = values };
	struct axb_backend *backend = NULL;
	struct axb_tproc tp = { .pid = -1, .pidfd = -1 };
	struct envv env = { .n = 0 };
	char *argv[256] = { NULL };
	char cpu_list[256], backend_addr[64], msg[1024];
	struct axb_meter mark[2], last;
	bool have_mark[2] = { false, false }, have_last = false;
	int rc = 1, sfd = -1, stop_requests = 0;
	int64_t t0 = axb_mono_ns();
	const char *ended = NULL;
	char failed[512] = "";

	/* signals: taken through a signalfd, never by default action; blocked
	 * before the backend's thread starts, which inherits the mask */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);

	/* the server's CPUs: --cpus (run gives its server set), else all
	 * this process may use */
	cpu_set_t cpus;
	CPU_ZERO(&cpus);
	if (o->cpus.n) {
		for (int i = 0; i < o->cpus.n; i++)
			CPU_SET(o->cpus.cpu[i], &cpus);
	} else if (sched_getaffinity(0, sizeof cpus, &cpus)) {
		return report_fail(o, foreground, "cannot read the CPU affinity mask");
	}
	v.ncpus = axb_cpu_list(&cpus, cpu_list, sizeof cpu_list);
	v.cpu_list = cpu_list;

	/* the port: --port, or one the kernel hands out now */
	v.port = o->port;
	if (!v.port) {
		int fd = ax_tcp_listen("127.0.0.1", 0, 1, 0);
		if (fd < 0)
			return report_fail(o, foreground, "cannot find a free port");
		v.port = ax_tcp_port(fd);
		close(fd);
	}
	if (axs_param_index(sc, "fanout") >= 0) {
		int bport = 0, err = axb_backend_start(&backend, &bport);
		if (err) {
			snprintf(msg, sizeof msg, "cannot start the rpc backend: %s",
				 strerror(-err));
			return report_fail(o, foreground, msg);
		}
		snprintf(backend_addr, sizeof backend_addr, "127.0.0.1:%d", bport);
		v.backend = backend_addr;
	}

	size_t na = 0;
	for (; t->command[na] && na + 1 < sizeof argv / sizeof argv[0]; na++)
		argv[na] = axb_target_expand(t->command[na], &v);
	build_env(&env, t, &v);

	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		rc = report_fail(o, foreground, "cannot create a signalfd");
		goto out;
	}
	axb_test_fault("server-setup", im->name, o->result_fd);

	int err = axb_tproc_start(&tp, argv, env.v, t->dir, &cpus, -1);
	if (err) {
		snprintf(msg, sizeof msg, "cannot start target %s (%s): %s", t->name,
			 argv[0], err == -ENOENT ? "no such program" : strerror(-err));
		rc = report_fail(o, foreground, msg);
		goto out;
	}
	err = axb_tproc_wait_ready(&tp, v.port,
				   (int64_t)(t->ready_timeout_s * 1e9));
	if (err) {
		char st[96] = "";
		if (err == -ECHILD)
			status_str(tp.wstatus, st, sizeof st);
		if (err == -ECHILD)
			snprintf(msg, sizeof msg, "target %s %s before it accepted "
				 "connections on port %d", t->name, st, v.port);
		else if (err == -EADDRINUSE)
			snprintf(msg, sizeof msg, "port %d is served by another process, "
				 "not by target %s", v.port, t->name);
		else
			snprintf(msg, sizeof msg, "target %s did not accept connections "
				 "on port %d within %g s", t->name, v.port,
				 t->ready_timeout_s);
		axb_tproc_stop(&tp, 0);
		rc = report_fail(o, foreground, msg);
		goto out;
	}
	if (foreground) {
		fprintf(stderr, "axbench: serving %s on %s (pid %d) at 127.0.0.1:%d "
			"(Ctrl-C to stop)\n", sc->name, t->name, (int)tp.pid, v.port);
	} else {
		json_t *j = json_pack("{s:s, s:i, s:I, s:I}", "event", "ready", "port",
				      v.port, "pid", (json_int_t)getpid(),
				      "target_pid", (json_int_t)tp.pid);
		axb_write_json_line(o->result_fd, j);
		json_decref(j);
	}
	bool fault_fail = axb_test_fault("server", im->name, o->result_fd);

	/* serve: until SIGTERM/SIGINT, or the target's own exit */
	for (;;) {
		struct pollfd pf[2] = { { .fd = sfd, .events = POLLIN },
					{ .fd = tp.pidfd, .events = POLLIN } };
		int r = poll(pf, tp.pidfd >= 0 ? 2 : 1, tp.pidfd >= 0 ? -1 : 50);
		if (r < 0 && errno != EINTR)
			break;
		if (axb_tproc_exited(&tp)) {
			char st[96];
			status_str(tp.wstatus, st, sizeof st);
			snprintf(failed, sizeof failed, "target %s %s while serving",
				 t->name, st);
			break;
		}
		struct signalfd_siginfo si;
		bool stop = false;
		while (read(sfd, &si, sizeof si) == sizeof si) {
			int sig = (int)si.ssi_signo;
			if (sig == SIGUSR1 || sig == SIGUSR2) {
				int k = sig == SIGUSR2;
				if (!have_mark[k] && axb_meter_read(tp.pid, &mark[k]) == 0)
					have_mark[k] = true;
				if (t->signals)
					kill(tp.pid, sig);
				continue;
			}
			stop_requests++;
			stop = true;
		}
		if (stop)
			break;
	}
	have_last = axb_meter_read(tp.pid, &last) == 0;
	ended = axb_tproc_stop(&tp, (int64_t)(t->stop_grace_s * 1e9));
	if (!failed[0] && tp.exited && strcmp(ended, "exited") &&
	    WIFSIGNALED(tp.wstatus) && WTERMSIG(tp.wstatus) == SIGKILL)
		ended = "killed with SIGKILL after the grace period";
	int64_t t1 = axb_mono_ns();
	uint64_t calls = 0;
	unsigned long bconns = 0;
	if (backend) {
		axb_backend_stop(backend, &calls, &bconns);
		backend = NULL;
	}
	if (fault_fail && !failed[0])
		snprintf(failed, sizeof failed, "AXBENCH_TEST_FAULT asked the server to fail");

	/* the result, in the shape of an ax runtime server's */
	char engine[PATH_MAX + 256];
	snprintf(engine, sizeof engine, "external %s: %s (CPUs %s%s%s)", t->name,
		 argv[0], cpu_list, t->workers_env ? ", workers via " : "",
		 t->workers_env ? t->workers_env[0] : "");
	json_t *j = json_object();
	json_object_set_new(j, "event", json_string("result"));
	json_object_set_new(j, "role", json_string("server"));
	json_object_set_new(j, "runtime", json_string(im->name));
	json_object_set_new(j, "runtime_kind", json_string(axb_impl_kind_name(im)));
	json_object_set_new(j, "scenario", json_string(sc->name));
	json_object_set_new(j, "port", json_integer(v.port));
	json_object_set_new(j, "serve_result", json_integer(0));
	json_object_set_new(j, "check", json_pack("{s:b, s:s?}", "passed", !failed[0],
		"message", failed[0] ? failed : NULL));
	json_object_set_new(j, "engine_info", json_string(engine));
	json_object_set_new(j, "wall_s", json_real((double)(t1 - t0) / 1e9));
	/* whole life: wait4's rusage of the target (its reaped children
	 * included); the peak RSS is VmHWM read before it was stopped */
	json_t *ru = axb_rusage_json(&tp.ru);
	json_object_set_new(ru, "maxrss_kb", have_last && last.hwm_kib >= 0
			    ? json_integer(last.hwm_kib) : json_null());
	json_object_set_new(j, "rusage", ru);
	json_object_set_new(j, "measured", have_mark[0] && have_mark[1]
			    ? axb_meter_delta_json(&mark[0], &mark[1]) : json_null());
	json_object_set_new(j, "stats", json_null());
	json_object_set_new(j, "metrics", json_object());
	json_object_set_new(j, "histograms", json_object());
	json_object_set_new(j, "stop_requests", json_integer(stop_requests));
	json_t *tj = json_pack("{s:s, s:I, s:s, s:b, s:s, s:i}", "name", t->name,
			       "pid", (json_int_t)tp.pid, "ended", ended,
			       "signals", t->signals, "cpu_list", cpu_list,
			       "cpus", v.ncpus);
	json_t *cmd = json_array();
	for (size_t i = 0; i < na; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	json_object_set_new(tj, "command", cmd);
	if (have_last)
		json_object_set_new(tj, "end", json_pack("{s:I, s:I, s:I, s:i}",
			"rss_kib", (json_int_t)last.rss_kib, "hwm_kib",
			(json_int_t)last.hwm_kib, "threads", (json_int_t)last.threads,
			"processes", last.procs));
	json_object_set_new(j, "target", tj);
	if (v.backend)
		json_object_set_new(j, "backend", json_pack("{s:I, s:I, s:I}",
			"calls", (json_int_t)calls, "connections", (json_int_t)bconns,
			"fanout", (json_int_t)values[axs_param_index(sc, "fanout")]));
	if (foreground) {
		char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		if (txt)
			printf("%s\n", txt);
		free(txt);
		fflush(stdout);
	} else {
		axb_write_json_line(o->result_fd, j);
	}
	json_decref(j);
	rc = 0;
out:
	if (backend) {
		uint64_t c;
		unsigned long b;
		axb_backend_stop(backend, &c, &b);
	}
	if (tp.pid > 0 && !tp.exited)
		axb_tproc_stop(&tp, 0);
	axb_tproc_free(&tp);
	if (sfd >= 0)
		close(sfd);
	for (size_t i = 0; i < na; i++)
		free(argv[i]);
	env_free(&env);
	return rc;
}
