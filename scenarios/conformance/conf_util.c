/* conf_util.c - the helpers conformance cases share: verdict reporting in
 * the child, runtime creation, descriptor and thread counts, grandchild
 * processes, loopback socket pairs and guard buffers. */
#include "conform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sanitizer/asan_interface.h>

/* ------------------------------------------------------------------ */
/* verdict                                                             */
/* ------------------------------------------------------------------ */

static struct {
	const char *runtime;
	const char *engine_flags;
	int result_fd;
	pthread_mutex_t lock;
	char first[768];
	unsigned nfail;
} conf_st = {.result_fd = 1, .lock = PTHREAD_MUTEX_INITIALIZER};

void conf_child_init(const char *runtime, const char *engine_flags,
		     int result_fd)
{
	conf_st.runtime = runtime;
	conf_st.engine_flags = engine_flags;
	conf_st.result_fd = result_fd;
}

const char *conf_runtime(void)
{
	return conf_st.runtime;
}

const char *conf_engine_flags(void)
{
	return conf_st.engine_flags;
}

bool conf_failed(void)
{
	pthread_mutex_lock(&conf_st.lock);
	bool f = conf_st.nfail > 0;
	pthread_mutex_unlock(&conf_st.lock);
	return f;
}

static void conf_vfail(const char *file, int line, const char *fmt, va_list ap)
{
	char msg[640];
	const char *base = strrchr(file, '/');
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* the verdict is one line */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = '|';
	pthread_mutex_lock(&conf_st.lock);
	if (conf_st.nfail++ == 0)
		snprintf(conf_st.first, sizeof conf_st.first, "%s (%s:%d)", msg,
			 base ? base + 1 : file, line);
	pthread_mutex_unlock(&conf_st.lock);
}

void conf_fail_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conf_vfail(file, line, fmt, ap);
	va_end(ap);
}

/* Write the verdict line once: a single write(2), so it is atomic on the
 * pipe and survives an _exit right after. */
static int conf_report(void)
{
	char line[900];
	int n, code;
	pthread_mutex_lock(&conf_st.lock);
	if (conf_st.nfail == 0) {
		n = snprintf(line, sizeof line, "PASS\n");
		code = 0;
	} else if (conf_st.nfail == 1) {
		n = snprintf(line, sizeof line, "FAIL %s\n", conf_st.first);
		code = 1;
	} else {
		n = snprintf(line, sizeof line, "FAIL %s; and %u more failure(s)\n",
			     conf_st.first, conf_st.nfail - 1);
		code = 1;
	}
	pthread_mutex_unlock(&conf_st.lock);
	if (n >= (int)sizeof line) {
		line[sizeof line - 2] = '\n';
		n = (int)sizeof line - 1;
	}
	/* nothing to do on a failed write: the parent sees no verdict */
	if (write(conf_st.result_fd, line, (size_t)n) < 0)
		code = 1;
	return code;
}

int conf_child_finish(void)
{
	return conf_report();
}

_Noreturn void conf_die_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	conf_vfail(file, line, fmt, ap);
	va_end(ap);
	conf_report();
	_exit(1);
}

_Noreturn void conf_env_error(const char *fmt, ...)
{
	char msg[640], line[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = '|';
	int n = snprintf(line, sizeof line, "ERROR %s\n", msg);
	if (n >= (int)sizeof line)
		n = (int)sizeof line - 1;
	line[n - 1] = '\n';
	/* one write, atomic on the pipe; nothing to do if it fails */
	(void)!write(conf_st.result_fd, line, (size_t)n);
	_exit(CONF_EXIT_ENV);
}

void conf_need_nofile(unsigned need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		conf_env_error("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need)
		conf_env_error("RLIMIT_NOFILE hard limit %llu is below the %u "
			       "descriptors this case needs (raise it: ulimit -n)",
			       (unsigned long long)rl.rlim_max, need);
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		conf_env_error("setrlimit(RLIMIT_NOFILE, %u): %s", need,
			       strerror(errno));
}

const char *conf_val(long long v, char *buf, size_t n)
{
	const char *name = v < 0 && v > -4096 ? strerrorname_np((int)-v) : NULL;
	if (name)
		snprintf(buf, n, "-%s", name);
	else
		snprintf(buf, n, "%lld", v);
	return buf;
}

bool conf_eq_at(const char *file, int line, long long got, long long want,
		const char *fmt, ...)
{
	char what[384], g[32], w[32];
	va_list ap;
	if (got == want)
		return true;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	conf_fail_at(file, line, "%s: expected %s, got %s", what,
		     conf_val(want, w, sizeof w), conf_val(got, g, sizeof g));
	return false;
}

/* ------------------------------------------------------------------ */
/* runtimes                                                            */
/* ------------------------------------------------------------------ */

ax_rt *conf_rt(const struct ax_rt_opts *opts)
{
	ax_rt *rt;
	char v[32];
	struct ax_rt_opts o;
	if (opts)
		o = *opts;
	else
		ax_rt_opts_init(&o);
	if (!o.engine_flags)
		o.engine_flags = conf_st.engine_flags;
	int r = ax_rt_create(&rt, conf_st.runtime, &o);
	/* no descriptor for the engine before the case has opened any: the
	 * environment's limit, not the runtime */
	if (r == -EMFILE || r == -ENFILE)
		conf_env_error("ax_rt_create(%s) returned %s: the descriptor limit "
			       "of this environment is too low", conf_st.runtime,
			       conf_val(r, v, sizeof v));
	if (r < 0)
		conf_die("ax_rt_create(%s) returned %s", conf_st.runtime,
			 conf_val(r, v, sizeof v));
	return rt;
}

static pthread_t conf_runner;

pthread_t conf_rt_thread(void)
{
	return conf_runner;
}

intptr_t conf_run_opts(ax_task_fn fn, void *arg, const struct ax_rt_opts *opts)
{
	ax_rt *rt = conf_rt(opts);
	intptr_t res = INTPTR_MIN;
	conf_runner = pthread_self();
	CONF_EQ(ax_rt_run(rt, fn, arg, &res), 0, "ax_rt_run");
	CONF_EQ(ax_rt_destroy(rt), 0, "ax_rt_destroy after the run");
	return res;
}

intptr_t conf_run(ax_task_fn fn, void *arg)
{
	return conf_run_opts(fn, arg, NULL);
}

intptr_t conf_join(ax_task *t)
{
	intptr_t res = INTPTR_MIN;
	CONF_EQ(ax_join(t, &res), 0, "ax_join");
	return res;
}

intptr_t conf_join_within_at(const char *file, int line, ax_task *t,
			     int64_t ns, const char *what)
{
	struct ax_deadline d;
	intptr_t res = INTPTR_MIN;
	char v[32];
	ax_deadline_enter(&d, ax_now() + ns);
	int r = ax_join(t, &res);
	ax_deadline_leave(&d);
	if (r == -ETIMEDOUT) {
		conf_fail_at(file, line, "%s: still running after %lld ms", what,
			     (long long)(ns / CONF_MS));
		ax_cancel(t);
		ax_join(t, NULL);
		return INTPTR_MIN;
	}
	if (r < 0) {
		conf_fail_at(file, line, "%s: ax_join returned %s", what,
			     conf_val(r, v, sizeof v));
		return INTPTR_MIN;
	}
	return res;
}

/* ------------------------------------------------------------------ */
/* time, processes, descriptors                                        */
/* ------------------------------------------------------------------ */

int64_t conf_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * CONF_S + ts.tv_nsec;
}

void conf_spin(int64_t ns)
{
	int64_t end = ax_now() + ns;
	while (ax_now() < end)
		;
}

static int conf_dir_count(const char *path)
{
	int n = 0;
	DIR *d = opendir(path);
	struct dirent *e;
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int conf_fd_count(void)
{
	int n = conf_dir_count("/proc/self/fd");
	return n > 0 ? n - 1 : n; /* minus the directory being read */
}

int conf_thread_count(void)
{
	return conf_dir_count("/proc/self/task");
}

static int conf_int_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

char *conf_fd_snapshot(void)
{
	int fds[4096], n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	if (!d)
		return NULL;
	while ((e = readdir(d)) && n < 4096) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != dirfd(d))
			fds[n++] = fd;
	}
	closedir(d);
	qsort(fds, (size_t)n, sizeof fds[0], conf_int_cmp);
	size_t cap = (size_t)n * 96 + 1, len = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		char path[64], target[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fds[i]);
		ssize_t t = readlink(path, target, sizeof target - 1);
		target[t > 0 ? t : 0] = 0;
		len += (size_t)snprintf(out + len, cap - len, "%d -> %s\n", fds[i],
					target);
	}
	return out;
}

void conf_fd_diff(const char *before, const char *after, char *out, size_t n)
{
	size_t len = 0;
	out[0] = 0;
	for (const char *p = after; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		/* is this whole line in `before`? */
		bool found = false;
		for (const char *q = before; q && *q;) {
			const char *qe = strchr(q, '\n');
			size_t ql = qe ? (size_t)(qe - q) : strlen(q);
			if (ql == l && !memcmp(p, q, l)) {
				found = true;
				break;
			}
			q = qe ? qe + 1 : q + ql;
		}
		if (!found && len + l + 3 < n) {
			len += (size_t)snprintf(out + len, n - len, "%s%.*s",
						len ? ", " : "", (int)l, p);
		}
		p = e ? e + 1 : p + l;
	}
}

bool conf_fd_check_at(const char *file, int line, const char *before,
		      const char *what)
{
	char *now = conf_fd_snapshot(), diff[512];
	bool same = !before || !now || !strcmp(before, now);
	if (!same) {
		conf_fd_diff(before, now, diff, sizeof diff);
		conf_fail_at(file, line, "%s: descriptors differ from before; "
			     "new: %s", what, diff[0] ? diff : "(none, some closed)");
	}
	free(now);
	return same;
}

int conf_grandchild(void (*fn)(void), int timeout_ms, int *status, char *out,
		    size_t n)
{
	int p[2];
	size_t got = 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		fn();
		_exit(0);
	}
	close(p[1]);
	int64_t end = ax_now() + (int64_t)timeout_ms * CONF_MS;
	for (;;) {
		int64_t left = (end - ax_now()) / CONF_MS;
		if (left <= 0)
			break;
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		char tmp[512];
		ssize_t r = read(p[0], tmp, sizeof tmp);
		if (r <= 0)
			break; /* EOF: the grandchild is gone */
		for (ssize_t i = 0; i < r && got + 1 < n; i++)
			out[got++] = tmp[i];
	}
	if (n)
		out[got < n ? got : n - 1] = 0;
	close(p[0]);
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			*status = st;
			return 0;
		}
		if (ax_now() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			*status = -1;
			return 0;
		}
		usleep(2000);
	}
}

void conf_thread(pthread_t *th, void *(*fn)(void *), void *arg)
{
	int r = pthread_create(th, NULL, fn, arg);
	if (r)
		conf_die("pthread_create: %s", strerror(r));
}

/* ------------------------------------------------------------------ */
/* TCP                                                                 */
/* ------------------------------------------------------------------ */

int conf_tcp_pair(int fds[2])
{
	int lfd = ax_tcp_listen("127.0.0.1", 0, 16, 0);
	if (lfd < 0)
		return lfd;
	int port = ax_tcp_port(lfd);
	if (port < 0) {
		ax_close(lfd);
		return port;
	}
	/* a loopback connect completes in the kernel's accept queue, so
	 * connecting and then accepting from one task does not deadlock */
	int c = ax_connect("127.0.0.1", (uint16_t)port);
	if (c < 0) {
		ax_close(lfd);
		return c;
	}
	int s = ax_accept(lfd);
	ax_close(lfd);
	if (s < 0) {
		ax_close(c);
		return s;
	}
	fds[0] = c;
	fds[1] = s;
	return 0;
}

int conf_peer_send(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, 100);
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t conf_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = ax_read(fd, (char *)buf + got, n - got);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* ------------------------------------------------------------------ */
/* guard buffers                                                       */
/* ------------------------------------------------------------------ */

unsigned char conf_pattern(size_t i, unsigned seed)
{
	return (unsigned char)((i * 131u + (i >> 9) + seed * 29u) ^ 0x5a);
}

void conf_guard_init(struct conf_guard *g, size_t n, unsigned seed)
{
	g->p = malloc(n);
	if (!g->p)
		conf_die("out of memory (%zu bytes)", n);
	g->n = n;
	g->seed = seed;
	for (size_t i = 0; i < n; i++)
		g->p[i] = conf_pattern(i, seed);
}

void conf_guard_seal(struct conf_guard *g)
{
	ASAN_UNPOISON_MEMORY_REGION(g->p, g->n);
	for (size_t i = 0; i < g->n; i++)
		g->p[i] = conf_pattern(i, g->seed);
	ASAN_POISON_MEMORY_REGION(g->p, g->n);
}

size_t conf_guard_check(struct conf_guard *g, size_t *first)
{
	size_t bad = 0;
	ASAN_UNPOISON_MEMORY_REGION(g->p, g->n);
	for (size_t i = 0; i < g->n; i++)
		if (g->p[i] != conf_pattern(i, g->seed)) {
			if (!bad && first)
				*first = i;
			bad++;
		}
	return bad;
}

void conf_guard_free(struct conf_guard *g)
{
	ASAN_UNPOISON_MEMORY_REGION(g->p, g->n);
	free(g->p);
	g->p = NULL;
}

/* A call that holds a pool thread until released (at most 10 s). */
static intptr_t conf_pool_hold(void *arg)
{
	struct conf_pool_fill *f = arg;
	atomic_fetch_add(&f->started, 1);
	for (int i = 0; i < 10000 && !atomic_load(&f->release); i++)
		usleep(1000);
	return 0;
}

static intptr_t conf_pool_holder(void *arg)
{
	return ax_blocking(conf_pool_hold, arg, NULL);
}

int conf_pool_fill(struct conf_pool_fill *f)
{
	atomic_store(&f->release, 0);
	atomic_store(&f->started, 0);
	for (f->n = 0; f->n <= CONF_POOL_MAX; f->n++) {
		if (ax_spawn(&f->t[f->n], conf_pool_holder, f, "pool-holder") < 0)
			break;
		/* wait for it to start; a thread of a loaded machine may be
		 * slow, so a call is taken as queued only after 100 ms */
		for (int ms = 0; ms < 100 && atomic_load(&f->started) <= f->n; ms++)
			ax_sleep(1 * CONF_MS);
		if (atomic_load(&f->started) <= f->n) {
			int busy = atomic_load(&f->started);
			f->n++;
			return busy;
		}
	}
	/* never saturated: let the holders go rather than leave them
	 * blocking the pool (and the run) until their own timeout */
	conf_pool_release(f);
	return 0;
}

void conf_pool_release(struct conf_pool_fill *f)
{
	atomic_store(&f->release, 1);
	for (int i = 0; i < f->n; i++)
		CONF_EQ(conf_join(f->t[i]), 0, "a pool-holding blocking call");
	f->n = 0;
}
