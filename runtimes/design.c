/*
 * design.c - the ax.h entry points that depend on the implementation, each
 * forwarding to its design (design.h): by the runtime object it is given,
 * or by the calling thread's design. Runtime discovery lists every design's
 * runtimes: the core's drivers in preference order, then the other designs'.
 *
 * Cost: a forwarded call is one thread-local load and one indirect call
 * more than a direct one (docs/decisions.md, "Designs behind ax.h").
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "design.h"

_Thread_local const struct ax__design *ax__tls_design = &ax__design_core;

/* Every design, the default first; the core's registered drivers last,
 * after every compiled-in runtime ([AX-DRV-1]). */
static const struct ax__design *const designs[] = {
	&ax__design_core,
	&ax__design_threads,
	&ax__design_ws,
	&ax__design_core_registered,
};
#define NDESIGNS (sizeof designs / sizeof designs[0])

static inline const struct ax__design *rt_design(const ax_rt *rt)
{
	return ((const struct ax__rt_head *)rt)->design;
}

/* ------------------------------------------------------------------ */
/* discovery                                                           */
/* ------------------------------------------------------------------ */

/* The design and index of the i-th runtime overall. */
static const struct ax__design *design_at(size_t *i)
{
	for (size_t k = 0; k < NDESIGNS; k++) {
		size_t n = designs[k]->count();
		if (*i < n)
			return designs[k];
		*i -= n;
	}
	return NULL;
}

/* The design offering a runtime called name, and its index there. */
static const struct ax__design *design_find(const char *name, size_t *idx)
{
	if (!name)
		return NULL;
	for (size_t k = 0; k < NDESIGNS; k++)
		for (size_t i = 0; i < designs[k]->count(); i++)
			if (!strcmp(designs[k]->rt_name(i), name)) {
				*idx = i;
				return designs[k];
			}
	return NULL;
}

size_t ax_driver_count(void)
{
	size_t n = 0;
	for (size_t k = 0; k < NDESIGNS; k++)
		n += designs[k]->count();
	return n;
}

const char *ax_driver_name(size_t i)
{
	const struct ax__design *d = design_at(&i);
	return d ? d->rt_name(i) : NULL;
}

const char *ax_driver_summary(const char *name)
{
	size_t i;
	const struct ax__design *d = design_find(name, &i);
	return d ? d->summary(i) : NULL;
}

uint32_t ax_driver_features(const char *name)
{
	size_t i;
	const struct ax__design *d = design_find(name, &i);
	return d ? d->features(i) : 0;
}

bool ax_driver_available(const char *name, char *why, size_t n)
{
	size_t i;
	const struct ax__design *d = design_find(name, &i);
	if (!d) {
		if (why && n)
			snprintf(why, n, "no runtime named '%s' is compiled in",
				 name ? name : "(null)");
		return false;
	}
	return d->available(i, why, n);
}

const char *ax_feature_name(uint32_t bit)
{
	switch (bit) {
	case AX_FEAT_TCP: return "tcp";
	case AX_FEAT_FILE: return "file";
	case AX_FEAT_NATIVE_CANCEL: return "native-cancel";
	case AX_FEAT_NATIVE_POOL: return "native-pool";
	case AX_FEAT_COMPLETION: return "completion";
	case AX_FEAT_NATIVE_TIMERS: return "native-timers";
	case AX_FEAT_XTHREAD: return "xthread";
	case AX_FEAT_CHEAP_TASKS: return "cheap-tasks";
	case AX_FEAT_STACK_CHECK: return "stack-check";
	case AX_FEAT_ONE_THREAD: return "one-thread";
	case AX_FEAT_ONE_WORKER: return "one-worker";
	case AX_FEAT_MULTI_WORKER: return "multi-worker";
	default: return NULL;
	}
}

/* ------------------------------------------------------------------ */
/* stack overflow reports                                              */
/* ------------------------------------------------------------------ */

static void design_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	ax__tls_design->segv_report(si->si_addr);
	/* die of the original signal with the default action */
	signal(sig, SIG_DFL);
}

static pthread_mutex_t segv_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned segv_users;
static struct sigaction segv_old_sa;

void ax__segv_hold(void)
{
	pthread_mutex_lock(&segv_lock);
	if (segv_users++ == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = design_segv;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, &segv_old_sa);
	}
	pthread_mutex_unlock(&segv_lock);
}

void ax__segv_release(void)
{
	pthread_mutex_lock(&segv_lock);
	if (--segv_users == 0)
		sigaction(SIGSEGV, &segv_old_sa, NULL);
	pthread_mutex_unlock(&segv_lock);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */
/* ------------------------------------------------------------------ */

int ax__opts_check(const struct ax_rt_opts *o)
{
	if (o->stack_size < 16 * 1024 || o->stack_size > (1u << 30) ||
	    o->tick_ns < -1 || o->pool_threads < 1 || o->pool_threads > 256)
		return -EINVAL;
	return 0;
}

int ax_rt_create(ax_rt **out, const char *driver, const struct ax_rt_opts *opts)
{
	size_t i;
	const struct ax__design *d = design_find(driver, &i);
	/* an unknown name is the default design's to refuse (-ENOENT, after
	 * the option checks) */
	return (d ? d : designs[0])->create(out, driver, opts);
}

int ax_rt_run(ax_rt *rt, ax_task_fn fn, void *arg, intptr_t *result)
{
	return rt ? rt_design(rt)->run(rt, fn, arg, result) : -EINVAL;
}

int ax_rt_destroy(ax_rt *rt)
{
	return rt ? rt_design(rt)->destroy(rt) : -EINVAL;
}

ax_rt *ax_rt_current(void)
{
	return ax__tls_design->rt_current();
}

const char *ax_rt_driver(const ax_rt *rt)
{
	return rt_design(rt)->rt_driver(rt);
}

uint32_t ax_rt_features(const ax_rt *rt)
{
	return rt_design(rt)->rt_features(rt);
}

const char *ax_rt_engine_info(const ax_rt *rt)
{
	return rt_design(rt)->engine_info(rt);
}

void ax_rt_stats(const ax_rt *rt, struct ax_rt_stats *st)
{
	rt_design(rt)->stats(rt, st);
}

int ax_rt_stack_usage(ax_rt *rt, struct ax_stack_usage *u)
{
	if (!rt || !u)
		return -EINVAL;
	if (!rt_design(rt)->stack_usage)
		return -ENOTSUP;
	return rt_design(rt)->stack_usage(rt, u);
}

int ax_dump(ax_rt *rt, FILE *f)
{
	return rt && f ? rt_design(rt)->dump(rt, f) : -EINVAL;
}

int ax_post(ax_rt *rt, void (*fn)(void *arg), void *arg)
{
	return rt && fn ? rt_design(rt)->post(rt, fn, arg) : -EINVAL;
}

/* ------------------------------------------------------------------ */
/* the calling task                                                    */
/* ------------------------------------------------------------------ */

int ax_spawn_at(ax_task **out, ax_task_fn fn, void *arg, const char *name,
		const char *file, int line)
{
	return ax__tls_design->spawn(out, fn, arg, name, file, line);
}

int ax_join(ax_task *t, intptr_t *result)
{
	return ax__tls_design->join(t, result);
}

int ax_detach(ax_task *t)
{
	return ax__tls_design->detach(t);
}

int ax_cancel(ax_task *t)
{
	return ax__tls_design->cancel(t);
}

int ax_yield(void)
{
	return ax__tls_design->yield();
}

ax_task *ax_current(void)
{
	return ax__tls_design->current();
}

int ax_task_set_name(ax_task *t, const char *name)
{
	return ax__tls_design->set_name(t, name);
}

const char *ax_task_name(const ax_task *t)
{
	return ax__tls_design->task_name(t);
}

int ax_sleep_until(int64_t at)
{
	return ax__tls_design->sleep_until(at);
}

int ax_sleep(int64_t ns)
{
	if (ns <= 0)
		return ax__tls_design->sleep_until(0);
	return ax__tls_design->sleep_until(ax_now() + ns);
}

int ax_deadline_enter(struct ax_deadline *d, int64_t at)
{
	return ax__tls_design->deadline_enter(d, at);
}

int ax_deadline_leave(struct ax_deadline *d)
{
	return ax__tls_design->deadline_leave(d);
}

bool ax_deadline_expired(void)
{
	return ax__tls_design->deadline_expired();
}

int ax_accept(int lfd)
{
	return ax__tls_design->accept(lfd);
}

int ax_connect(const char *host, uint16_t port)
{
	return ax__tls_design->connect(host, port);
}

ssize_t ax_read(int fd, void *buf, size_t n)
{
	return ax__tls_design->read(fd, buf, n);
}

ssize_t ax_write(int fd, const void *buf, size_t n)
{
	return ax__tls_design->write(fd, buf, n);
}

int ax_close(int fd)
{
	return ax__tls_design->close(fd);
}

ssize_t ax_pread(int fd, void *buf, size_t n, int64_t off)
{
	return ax__tls_design->pread(fd, buf, n, off);
}

ssize_t ax_pwrite(int fd, const void *buf, size_t n, int64_t off)
{
	return ax__tls_design->pwrite(fd, buf, n, off);
}

int ax_blocking(intptr_t (*fn)(void *arg), void *arg, intptr_t *result)
{
	return ax__tls_design->blocking(fn, arg, result);
}
