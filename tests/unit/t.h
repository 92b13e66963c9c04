/*
 * t.h - the minimal test harness of the C unit tests: CHECK macros that
 * report file, line and the failed expression, and the runtime under test
 * taken from AX_RUNTIME (exit 77, "skipped", when it is unavailable here).
 */
#ifndef AX_T_H
#define AX_T_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ax.h"
#include "ax_driver.h"

static int t_failures;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			t_failures++;                                        \
		}                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		if (a_ != b_) {                                              \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s "  \
				"(%lld vs %lld)\n", __FILE__, __LINE__, #a, #b, \
				a_, b_);                                     \
			t_failures++;                                        \
		}                                                            \
	} while (0)

/* How many tasks the many-task tests keep alive at once. ThreadSanitizer
 * (gcc 12's runtime) tracks at most 8128 threads and fibers at a time, and
 * each costs it several mappings of the 65530 the kernel allows, so under
 * it (AX_TSAN, the build-tsan/ tree) the tests use fewer: what TSan checks
 * there is the hand-over between tasks, not the count, which the release
 * and ASan trees keep checking at full size. */
#if defined(AX_TSAN)
#define T_MANY_TASKS 2000
#else
#define T_MANY_TASKS 20000
#endif

/* The factor by which tests that bound a delay stretch both the work and
 * the bound under ThreadSanitizer, which slows code 5-15x and wakes
 * threads later: the check keeps its meaning (a blocked loop is still
 * caught: the bound stays below the work) without failing on the
 * sanitizer's own delays. */
#if defined(AX_TSAN)
#define T_TIME_SCALE 3
#else
#define T_TIME_SCALE 1
#endif

/* The toy driver of docs/adding-a-runtime.md (toy_driver.c), linked into
 * every per-runtime test and registered when AX_RUNTIME names it. */
extern const struct ax_driver ax_driver_toy;

/* The runtime named by AX_RUNTIME (default: epoll); a path (with a '/')
 * names a driver's shared object, loaded here (ax_driver_load) and known
 * by its own name. */
static inline const char *t_runtime(void)
{
	static int registered;
	static const char *loaded;
	const char *r = getenv("AX_RUNTIME");
	if (r && strchr(r, '/')) {
		if (!loaded) {
			const struct ax_driver *d;
			char why[512];
			int e = ax_driver_load(r, &d, why, sizeof why);
			if (e < 0) {
				fprintf(stderr, "ax_driver_load(%s): %s\n", r, why);
				exit(1);
			}
			loaded = d->name;
		}
		return loaded;
	}
	if (r && !strcmp(r, "toy") && !registered) {
		int e = ax_driver_register(&ax_driver_toy);
		if (e < 0 && e != -EEXIST) {
			fprintf(stderr, "ax_driver_register(toy): %s\n", strerror(-e));
			exit(1);
		}
		registered = 1;
	}
	return r && *r ? r : "epoll";
}

/* Create a runtime for the test, or exit 77 (skip) when unavailable. */
static inline ax_rt *t_rt_opts(const struct ax_rt_opts *o)
{
	ax_rt *rt;
	char why[256];
	if (!ax_driver_available(t_runtime(), why, sizeof why)) {
		printf("SKIP: runtime %s unavailable: %s\n", t_runtime(), why);
		exit(77);
	}
	int r = ax_rt_create(&rt, t_runtime(), o);
	if (r < 0) {
		fprintf(stderr, "ax_rt_create(%s): %s\n", t_runtime(), strerror(-r));
		exit(1);
	}
	return rt;
}

static inline ax_rt *t_rt(void)
{
	return t_rt_opts(NULL);
}

/* Run fn as the main task on a fresh runtime, destroy it, return result. */
static inline intptr_t t_run(ax_task_fn fn, void *arg)
{
	ax_rt *rt = t_rt();
	intptr_t res = -1;
	int r = ax_rt_run(rt, fn, arg, &res);
	if (r < 0) {
		fprintf(stderr, "ax_rt_run: %s\n", strerror(-r));
		t_failures++;
	}
	r = ax_rt_destroy(rt);
	if (r < 0) {
		fprintf(stderr, "ax_rt_destroy: %s\n", strerror(-r));
		t_failures++;
	}
	return res;
}

static inline int t_done(const char *name)
{
	if (t_failures) {
		fprintf(stderr, "%s on %s: %d check(s) failed\n", name, t_runtime(),
			t_failures);
		return 1;
	}
	printf("%s on %s: ok\n", name, t_runtime());
	return 0;
}

#endif
