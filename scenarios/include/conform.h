/*
 * conform.h - the conformance suite: what a case is, the case table, and
 * the helpers cases use to create runtimes, report failures and set up
 * sockets, buffers and threads.
 *
 * A case checks one group of testable sentences of ax.h (the [AX-...] IDs
 * in its `requirement`) on one runtime. It runs alone in a fresh child
 * process (`axbench __case ID --runtime R`), creates the runtime itself with
 * conf_run / conf_rt, and reports through conf_fail and the CONF_* macros:
 * a case that recorded no failure passed. Cases use ax.h only, never an
 * engine header, and never look at a runtime's name: what a runtime lacks is
 * declared in `features` and reported as unsupported.
 *
 * Cases assert semantics, not speed: every time bound in a case is a
 * generous upper bound that only a hang, a lost wake-up or a spinning loop
 * can exceed.
 */
#ifndef AX_CONFORM_H
#define AX_CONFORM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ax.h"

/* Case flags. */
enum {
	CONF_SERIAL = 1u << 0, /* run with no other case beside it: heavy
	                          (many threads, much memory) or measuring
	                          CPU time */
};

struct conf_case {
	const char *id;          /* "group.name", e.g. "cancel.read" */
	const char *requirement; /* the [AX-...] IDs checked, then a short
	                            statement of what they require */
	const char *summary;     /* one line: what the case does */
	uint32_t features;       /* AX_FEAT_* the runtime must advertise */
	unsigned timeout_s;      /* default timeout of the child process */
	unsigned flags;          /* CONF_* */
	void (*run)(void);       /* the case, run in the child process */
};

/* The case table (table.c): every group's cases in a fixed order. */
size_t conf_case_count(void);
const struct conf_case *conf_case_at(size_t i);
const struct conf_case *conf_case_find(const char *id);

/* The groups, each an array ended by an entry whose id is NULL. */
extern const struct conf_case conf_cases_task[];
extern const struct conf_case conf_cases_time[];
extern const struct conf_case conf_cases_tcp[];
extern const struct conf_case conf_cases_cancel[];
extern const struct conf_case conf_cases_chan[];
extern const struct conf_case conf_cases_xthread[];
extern const struct conf_case conf_cases_pool[];
extern const struct conf_case conf_cases_rt[];
extern const struct conf_case conf_cases_mt[];
extern const struct conf_case conf_cases_selftest[];

/* ------------------------------------------------------------------ */
/* The child side (util.c)                                             */
/* ------------------------------------------------------------------ */

/* Prepare the child to run one case on driver `runtime` with
 * `engine_flags` (a variant's ax_rt_opts.engine_flags, or NULL),
 * reporting to result_fd. */
void conf_child_init(const char *runtime, const char *engine_flags,
		     int result_fd);

/* Write the verdict (a "PASS" line or a "FAIL <detail>" line) to the
 * result descriptor and return the child's exit status (0 or 1). */
int conf_child_finish(void);

/* The runtime under test: its driver's name, and the engine_flags every
 * runtime a case creates must be given (conf_rt does). */
const char *conf_runtime(void);
const char *conf_engine_flags(void);

/* Record a failure; the first one becomes the case's detail and later
 * ones are counted. Thread-safe. */
void conf_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define conf_fail(...) conf_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* Record a failure and end the child now (when going on would hang or
 * crash, e.g. in a helper thread). */
_Noreturn void conf_die_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define conf_die(...) conf_die_at(__FILE__, __LINE__, __VA_ARGS__)

/* The test environment cannot run this case (a resource limit below what
 * it needs, such as RLIMIT_NOFILE's hard limit): report "ERROR <reason>"
 * and end the child with CONF_EXIT_ENV. Says nothing about the runtime:
 * the runner shows ERROR with the reason, not FAIL. */
#define CONF_EXIT_ENV 78
_Noreturn void conf_env_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Make at least `need` descriptors available (the soft RLIMIT_NOFILE
 * raised toward the hard one); conf_env_error when the hard limit is
 * lower. */
void conf_need_nofile(unsigned need);

/* True once a failure was recorded. */
bool conf_failed(void);

/* Check got == want; on a mismatch record "<what>: expected W, got G",
 * printing negative values as errno names (-ECANCELED). Returns whether
 * they were equal. */
bool conf_eq_at(const char *file, int line, long long got, long long want,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define CONF_EQ(got, want, ...)                                              \
	conf_eq_at(__FILE__, __LINE__, (long long)(got), (long long)(want),  \
		   __VA_ARGS__)

/* Check cond; on false record the printf-style message. Returns cond. */
#define CONF_TRUE(cond, ...)                                                 \
	((cond) ? true : (conf_fail_at(__FILE__, __LINE__, __VA_ARGS__), false))

/* v as text: "-ECANCELED" for a negative errno value, else the number. */
const char *conf_val(long long v, char *buf, size_t n);

/* ------------------------------------------------------------------ */
/* Runtimes                                                            */
/* ------------------------------------------------------------------ */

/* Create a runtime of the driver under test (opts may be NULL); on error
 * the case dies with the reason (conf_env_error for -EMFILE/-ENFILE: no
 * descriptor left before the case opened any is the environment's limit). */
ax_rt *conf_rt(const struct ax_rt_opts *opts);

/* Create a runtime, run fn(arg) as its main task, check that run and
 * destroy both return 0, and return the main task's result. */
intptr_t conf_run_opts(ax_task_fn fn, void *arg, const struct ax_rt_opts *opts);
/* The thread that called ax_rt_run in conf_run: "rt's thread", where
 * posted functions run ([AX-POST-1]); with one thread per task (runtime
 * threads) it is not the thread of any task. */
pthread_t conf_rt_thread(void);

intptr_t conf_run(ax_task_fn fn, void *arg);

/* Join t, expecting success; returns its result (or INTPTR_MIN). */
intptr_t conf_join(ax_task *t);

/* Join t within ns: when it is still running then, record "<what>: still
 * running after N ms", cancel it, join it, and return INTPTR_MIN. Turns
 * a hang into a failure that says what hung. */
intptr_t conf_join_within_at(const char *file, int line, ax_task *t,
			     int64_t ns, const char *what);
#define CONF_JOIN_WITHIN(t, ns, what) \
	conf_join_within_at(__FILE__, __LINE__, (t), (ns), (what))

/* ------------------------------------------------------------------ */
/* Time, processes, descriptors                                        */
/* ------------------------------------------------------------------ */

#define CONF_US 1000ll
#define CONF_MS 1000000ll
#define CONF_S 1000000000ll

/* CPU time (user + system) of the whole process, in ns. */
int64_t conf_cpu_ns(void);

/* Busy-wait for ns without suspending (a task that hogs the loop). */
void conf_spin(int64_t ns);

/* Number of open descriptors of the process / threads of the process. */
int conf_fd_count(void);
int conf_thread_count(void);

/* A text snapshot of the open descriptors ("3 -> socket:[123]\n..."),
 * malloc'd; NULL on error. */
char *conf_fd_snapshot(void);

/* The lines of snapshot `after` missing from `before`, comma separated
 * into out (n bytes). */
void conf_fd_diff(const char *before, const char *after, char *out, size_t n);

/* Check that the open descriptors match snapshot `before` (from
 * conf_fd_snapshot); on a difference record "<what>: ... new: <fds>". */
bool conf_fd_check_at(const char *file, int line, const char *before,
		      const char *what);
#define CONF_FDS_SAME(before, what) \
	conf_fd_check_at(__FILE__, __LINE__, (before), (what))

/* Run fn in a forked grandchild with stdout and stderr captured; wait at
 * most timeout_ms. Stores the wait status in *status (or -1 when it had to
 * be killed) and up to n-1 bytes of its output in out. Returns 0 or
 * -errno. */
int conf_grandchild(void (*fn)(void), int timeout_ms, int *status, char *out,
		    size_t n);

/* Start a plain thread (it runs no runtime); dies on failure. */
void conf_thread(pthread_t *th, void *(*fn)(void *), void *arg);

/* ------------------------------------------------------------------ */
/* Blocking pool (inside a task)                                       */
/* ------------------------------------------------------------------ */

#define CONF_POOL_MAX 64

/* Blocking calls that hold every thread of the runtime's blocking pool
 * until conf_pool_release. */
struct conf_pool_fill {
	_Atomic int release;  /* set: the holding calls return */
	_Atomic int started;  /* holding calls that have started */
	int n;                /* holding calls made (the last one queued) */
	ax_task *t[CONF_POOL_MAX + 1];
};

/* Saturate the pool: make holding calls one at a time until one has not
 * started 100 ms after it was made (it is queued, every thread is busy).
 * Returns the number of busy threads (> 0), or 0 when CONF_POOL_MAX calls
 * all started (the pool could not be filled). Any later blocking call stays
 * queued until conf_pool_release. */
int conf_pool_fill(struct conf_pool_fill *f);

/* Let the holding calls return and join them. */
void conf_pool_release(struct conf_pool_fill *f);

/* ------------------------------------------------------------------ */
/* TCP (inside a task)                                                 */
/* ------------------------------------------------------------------ */

/* A connected loopback pair: fds[0] from ax_connect, fds[1] from
 * ax_accept. Returns 0 or -errno. */
int conf_tcp_pair(int fds[2]);

/* Send all of buf on fd with plain non-blocking send(2) calls (the
 * "peer", not the runtime under test), waiting with poll(2) when the
 * socket buffer is full. Returns 0 or -errno. */
int conf_peer_send(int fd, const void *buf, size_t n);

/* Read exactly n bytes with ax_read (short reads are looped). Returns n,
 * a smaller count at EOF, or -errno. */
ssize_t conf_read_full(int fd, void *buf, size_t n);

/* ------------------------------------------------------------------ */
/* Guard buffers: detect an engine touching a buffer after the call     */
/* that owned it returned                                               */
/* ------------------------------------------------------------------ */

struct conf_guard {
	unsigned char *p;
	size_t n;
	unsigned seed;
};

/* Allocate n bytes filled with a pattern derived from seed. */
void conf_guard_init(struct conf_guard *g, size_t n, unsigned seed);
/* Refill with the pattern and, under AddressSanitizer, poison the bytes so
 * that any user-space access is reported as an error at once. */
void conf_guard_seal(struct conf_guard *g);
/* Unpoison and compare with the pattern: returns the number of bytes that
 * changed since conf_guard_seal (0: untouched), and the first such offset
 * in *first. */
size_t conf_guard_check(struct conf_guard *g, size_t *first);
void conf_guard_free(struct conf_guard *g);
/* Byte i of the pattern of seed. */
unsigned char conf_pattern(size_t i, unsigned seed);

#endif
