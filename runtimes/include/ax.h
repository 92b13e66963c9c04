/*
 * ax.h - the ax async interface: tasks, time, TCP, files, channels,
 * cancellation, deadlines and blocking offload.
 *
 * This header is the specification. Every runtime (epoll, libuv, libevent,
 * io_uring, ...) implements exactly what is written here, and the
 * conformance suite checks the sentences tagged [AX-...].
 *
 * Conventions
 *   - Action functions return 0 or -errno. Counts (bytes, descriptors)
 *     return >= 0 or -errno. Predicates return bool. Nothing returns -1
 *     and sets errno.
 *   - "Suspends" means the call may switch to another task. Only a task
 *     (code running inside ax_rt_run) may call a suspending function;
 *     called elsewhere it returns -EPERM.                      [AX-GEN-1]
 *   - Every suspending call returns -ECANCELED when the calling task was
 *     cancelled (see ax_cancel) and -ETIMEDOUT when the innermost
 *     effective deadline passed (see ax_deadline_enter).        [AX-GEN-2]
 *   - A runtime is single-threaded: its functions may be called only on the
 *     thread running ax_rt_run, except where a comment says "thread-safe".
 *
 * Cost of a task: one stack of opts.stack_size bytes (64 KiB by default) of
 * which only touched pages use memory (one 4 KiB page for a task whose
 * frames fit in it, such as an idle echo connection; ax_rt_stack_usage
 * measures it), plus about 700 bytes of bookkeeping (the 608-byte task
 * record with its embedded operation, and the stack's descriptor). Stacks come from the stack pool: the first ones are
 * each their own mapping with a guard page below them; past a budget derived
 * from vm.max_map_count (a guard page splits a mapping, and the kernel limits
 * mappings per process) they are carved from shared slabs of 64 stacks,
 * protected by a canary word that is checked at every switch instead of a
 * guard page. Freed stacks are reused.                          [AX-TASK-9]
 */
#ifndef AX_H
#define AX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface. Bumped by any change that breaks code
 * compiled against an earlier ax.h: a function's signature or contract, a
 * public struct's layout, a constant's value. Additions do not bump it. A
 * driver loaded from a shared object records the value it was compiled
 * with, and the core refuses one that differs (ax_driver_load). */
#define AX_API_VERSION 1

/* ------------------------------------------------------------------ */
/* Runtime lifecycle                                                   */
/* ------------------------------------------------------------------ */

typedef struct ax_rt ax_rt;
typedef struct ax_task ax_task;
typedef struct ax_chan ax_chan;

/* Feature bits a runtime advertises. Scenarios and conformance cases declare
 * the bits they need; a mismatch is "unsupported", never a failure. */
enum {
	AX_FEAT_TCP = 1u << 0,          /* accept, connect, read, write      */
	AX_FEAT_FILE = 1u << 1,         /* engine-native pread / pwrite (else
	                                   the core's blocking pool does it) */
	AX_FEAT_NATIVE_CANCEL = 1u << 2, /* engine cancels in-flight I/O     */
	AX_FEAT_NATIVE_POOL = 1u << 3,  /* engine's own thread pool used     */
	AX_FEAT_COMPLETION = 1u << 4,   /* completion engine (not readiness) */
	AX_FEAT_NATIVE_TIMERS = 1u << 5, /* engine's own timer structure     */
	AX_FEAT_XTHREAD = 1u << 6,      /* ax_post / cross-thread wake       */
	AX_FEAT_CHEAP_TASKS = 1u << 7,  /* a task costs a small stack: 100k
	                                   can be live at once [AX-TASK-9]   */
	AX_FEAT_STACK_CHECK = 1u << 8,  /* a task's stack overflow is caught
	                                   and reported with its name
	                                                      [AX-TASK-9]   */
	AX_FEAT_ONE_THREAD = 1u << 9,   /* every task runs on the thread
	                                   running ax_rt_run (per-thread
	                                   tools, such as callgrind's
	                                   collection toggle, see them all)  */
	AX_FEAT_ONE_WORKER = 1u << 10,  /* tasks never run in parallel, so the
	                                   ordering sentences ([AX-TASK-1],
	                                   [AX-TASK-3], [AX-TASK-12],
	                                   [AX-TIME-2]) hold runtime-wide    */
	AX_FEAT_MULTI_WORKER = 1u << 11, /* tasks run on several worker
	                                   threads at once and migrate
	                                   between them: [AX-MT-...]          */
};

/* Options for ax_rt_create. Initialise with ax_rt_opts_init, then change
 * the fields you care about. */
struct ax_rt_opts {
	size_t stack_size;        /* usable stack bytes per task, rounded up to
	                             pages; default 64 KiB, minimum 16 KiB */
	uint64_t hog_threshold_ns; /* a task running this long without
	                              suspending is counted as a hog
	                              (ax_rt_stats.hogs) and reported on
	                              stderr; 0 disables; default 50 ms
	                                                      [AX-TASK-10] */
	unsigned pool_threads;    /* blocking-pool threads; default 4. An
	                             engine with its own pool
	                             (AX_FEAT_NATIVE_POOL) sizes it its own
	                             way: libuv's is process-wide, set by
	                             UV_THREADPOOL_SIZE */
	const char *engine_flags; /* driver-specific tuning, "key=value,..."
	                             (e.g. io_uring "setup=defer"); NULL for
	                             the driver's default */
	int64_t tick_ns;          /* a scheduler tick (up to 61 dispatches
	                             between engine polls) ends early once it
	                             ran this long; default 200 us; -1: ticks
	                             end by count only, so that no scheduling
	                             decision reads the clock (instruction
	                             counts then repeat exactly)
	                                                      [AX-TASK-11] */
};

/* Fill opts with the defaults. Never fails. */
void ax_rt_opts_init(struct ax_rt_opts *opts);

/* Create a runtime on the driver named `driver` (NULL: the first available
 * in preference order).
 * Returns 0 and stores the runtime in *out, or:
 *   -ENOENT   no driver of that name is compiled in;
 *   -ENOTSUP  the driver is compiled in but unavailable here (see
 *             ax_driver_available for the reason);
 *   -EINVAL   an option is out of range (stack_size outside 16 KiB..1 GiB,
 *             tick_ns below -1, pool_threads outside 1..256), or a driver
 *             that takes engine_flags does not know a setting;
 *   -ENOMEM.                                                  [AX-RT-4]
 * The runtime belongs to the calling thread until ax_rt_destroy. */
int ax_rt_create(ax_rt **out, const char *driver, const struct ax_rt_opts *opts);

/* Signature of a task body. The return value is the task's result. */
typedef intptr_t (*ax_task_fn)(void *arg);

/* Run `fn(arg)` as the main task and drive the runtime until every task,
 * main and spawned (detached ones included), has ended.        [AX-RT-1]
 * Stores the main task's result in *result when result is not NULL.
 * Returns 0, -EBUSY when called re-entrantly (from inside a task), or
 * -ENOMEM.                                                     [AX-RT-5] SIGPIPE is blocked on the calling thread while it runs, so a
 * write to a closed peer is -EPIPE and never raises a signal. [AX-TCP-7] */
int ax_rt_run(ax_rt *rt, ax_task_fn fn, void *arg, intptr_t *result);

/* Destroy a runtime that is not running.
 * Returns 0, or -EBUSY (nothing freed) when it still has live tasks or is
 * running.                                                     [AX-RT-3]
 * After a successful destroy no descriptor, timer, thread or memory that
 * the runtime created is left behind.                          [AX-RT-2]
 * (An engine library may keep process-wide state from its first use, such
 * as libuv's signal pipe and thread pool; the conformance suite reports it
 * as a failure of this sentence, see docs/conformance.md.) */
int ax_rt_destroy(ax_rt *rt);

/* The runtime the calling thread is running, or NULL.         [AX-RT-6] */
ax_rt *ax_rt_current(void);

/* The name and feature bits of the runtime's driver. */
const char *ax_rt_driver(const ax_rt *rt);
uint32_t ax_rt_features(const ax_rt *rt);

/* A short human-readable description of the engine configuration in use
 * (io_uring setup flags, libevent backend, ...). Owned by the runtime. */
const char *ax_rt_engine_info(const ax_rt *rt);

/* Counters a runtime keeps; read them with ax_rt_stats. */
struct ax_rt_stats {
	uint64_t loop_iterations;  /* engine polls */
	uint64_t events;           /* completions delivered by the engine */
	uint64_t switches;         /* context switches into tasks */
	uint64_t tasks_spawned;
	uint64_t tasks_live;
	uint64_t hogs;             /* hog detections, see hog_threshold_ns */
	uint64_t posts;            /* ax_post functions run */
	uint64_t stacks_guarded;   /* live stacks with a guard page */
	uint64_t stacks_slab;      /* live stacks from canary slabs */
	/* multi-worker runtimes (AX_FEAT_MULTI_WORKER); 0 elsewhere */
	uint64_t workers;          /* worker threads */
	uint64_t steals;           /* successful steals (each takes half of
	                              a victim's queue) */
	uint64_t parks;            /* times a worker found nothing and
	                              blocked in its engine */
	uint64_t wakes_remote;     /* wakes delivered to a worker by another
	                              thread (another worker, a plain thread,
	                              the blocking pool) */
	uint64_t hops;             /* moves of a task to the worker owning
	                              the descriptor it operates on */
};

/* Copy the runtime's counters into *st. Never fails. */
void ax_rt_stats(const ax_rt *rt, struct ax_rt_stats *st);

/* How much of their stacks the live tasks of a runtime use (see
 * ax_rt_stack_usage). */
struct ax_stack_usage {
	uint64_t stacks;          /* live tasks' stacks measured */
	uint64_t stack_size;      /* usable bytes per stack (whole pages) */
	uint64_t resident_max;    /* the most bytes resident in one stack */
	uint64_t resident_total;  /* bytes resident in all of them */
};

/* Measure the stacks of rt's live tasks with mincore(2), one call per task,
 * touching nothing. A stack page is resident once a task touched it and
 * stays so while the stack is reused, so resident_max is the deepest any
 * task on these stacks went, in whole pages: the stack high-water mark,
 * which bounds the smallest opts.stack_size the workload works with, and
 * resident_total / stacks is what a task's stack costs in memory
 * (docs/decisions.md, "Memory per idle connection"). Must be called on rt's
 * thread (from a task or an ax_post function); not cheap with many tasks.
 * On the work-stealing design it measures the whole group's tasks,
 * whichever worker they run on, and may be called from any of its tasks.
 * Returns 0, -EINVAL, -ENOTSUP for a design whose stacks are not its own
 * (the thread-per-task oracle's are glibc's), or -ENOMEM.     [AX-TASK-17] */
int ax_rt_stack_usage(ax_rt *rt, struct ax_stack_usage *u);

/* Driver discovery. ax_driver_count drivers are compiled in, in
 * preference order; ax_driver_name(i) names the i-th (NULL past the end).
 * ax_driver_available returns true when the driver can run on this
 * machine; when it returns false and why is not NULL, a one-line reason
 * is written there (at most n bytes, NUL-terminated).         [AX-RT-7] */
size_t ax_driver_count(void);
const char *ax_driver_name(size_t i);
const char *ax_driver_summary(const char *name);
uint32_t ax_driver_features(const char *name);
bool ax_driver_available(const char *name, char *why, size_t n);

/* The name of a feature bit ("tcp", "file", ...), or NULL. */
const char *ax_feature_name(uint32_t bit);

/* ------------------------------------------------------------------ */
/* Tasks                                                               */
/* ------------------------------------------------------------------ */

/* Spawn a task running fn(arg) on the calling thread's runtime.
 * Spawn is eager: when called from a task, the child runs at once until it
 * first suspends or ends, and the parent resumes right after, before any
 * other ready task.                                           [AX-TASK-1]
 * Called from an ax_post function, the child is queued and runs after the
 * tasks already ready.                                       [AX-TASK-12]
 * `name` (copied; may be NULL) appears in task dumps. The spawn site
 * (file and line) is recorded by the ax_spawn macro.
 * Stores a handle in *out (out may be NULL for a detached task: then the
 * task is detached at once). The handle stays valid until ax_join returns
 * or ax_detach is called.
 * Returns 0, -EPERM when the thread runs no runtime, or -ENOMEM.
 * Does not suspend in the sense of [AX-GEN-2]: it never returns -ECANCELED
 * or -ETIMEDOUT.                                             [AX-TASK-13] */
int ax_spawn_at(ax_task **out, ax_task_fn fn, void *arg, const char *name,
		const char *file, int line);
#define ax_spawn(out, fn, arg, name) \
	ax_spawn_at((out), (fn), (arg), (name), __FILE__, __LINE__)

/* Wait for task t to end and store its result in *result (may be NULL).
 * Suspends. Returns 0 and frees the handle, or:
 *   -EINVAL    t is detached, is the caller, or already has a joiner;
 *   -ECANCELED / -ETIMEDOUT  the caller was cancelled or its deadline
 *              passed; t keeps running and can be joined again. [AX-TASK-2] */
int ax_join(ax_task *t, intptr_t *result);

/* Detach t: it is freed when it ends and can no longer be joined.
 * Returns 0 or -EINVAL (already detached or joined).         [AX-TASK-14] */
int ax_detach(ax_task *t);

/* Request cancellation of t: its current suspending call, or its next one
 * if it is running or ready, returns -ECANCELED.              [AX-CANCEL-1]
 * The request is consumed by that one call; later calls behave normally.
 *                                                             [AX-CANCEL-5]
 * When that call returns, the operation it started is finished: the engine
 * will never touch its buffer again.                          [AX-CANCEL-2]
 * An operation that completed before the cancellation could take effect
 * returns its real result and the request stays pending for the next
 * call; in particular a cancelled ax_chan_recv never loses a message.
 *                                                             [AX-CANCEL-3]
 * Cancelling a task that has ended (but is not yet joined) is harmless and
 * returns 0.                                                  [AX-CANCEL-4]
 * Must be called on t's runtime thread. Returns 0 or -EINVAL. Never
 * suspends. */
int ax_cancel(ax_task *t);

/* Let every other task that is ready now run once before the caller
 * resumes.                                                    [AX-TASK-3]
 * Suspends. Returns 0, -ECANCELED or -ETIMEDOUT. */
int ax_yield(void);

/* The calling task, or NULL outside a task.                  [AX-TASK-15] */
ax_task *ax_current(void);

/* Replace t's name (copied, at most 31 bytes kept). Returns 0 or -EINVAL.
 * ax_task_name returns it, never NULL ("" when unnamed); valid until t is
 * freed.                                                      [AX-TASK-16] */
int ax_task_set_name(ax_task *t, const char *name);

/* t's name (see ax_task_set_name). */
const char *ax_task_name(const ax_task *t);

/* Write a dump of every live task of rt to f: id, name, state (running,
 * ready, blocked), what a blocked task waits on (fd and operation, timer,
 * channel, join, blocking pool), its spawn site, and the time since it last
 * ran.                                                        [AX-TASK-5]
 * Must be called on rt's thread (typically from a task). Returns the
 * number of tasks written, or -errno on a write error. */
int ax_dump(ax_rt *rt, FILE *f);

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

/* Monotonic time in nanoseconds: CLOCK_MONOTONIC, read at each call (never
 * a cached value), never decreasing. Thread-safe.             [AX-TIME-4] */
int64_t ax_now(void);

/* Suspend for at least ns nanoseconds. Timers never fire early: the call
 * returns 0 no sooner than ns after it was made.              [AX-TIME-1]
 * Sleeps that end at the same instant end in the order they were armed.
 *                                                             [AX-TIME-2]
 * A sleep of 0 (or a negative value) yields like ax_yield.    [AX-TIME-3]
 * Suspends. Returns 0, -ECANCELED or -ETIMEDOUT. */
int ax_sleep(int64_t ns);

/* Suspend until ax_now() >= at: never returns 0 before.       [AX-TIME-5]
 * As ax_sleep otherwise. */
int ax_sleep_until(int64_t at);

/* A deadline scope. Lives on the caller's stack; do not touch its fields. */
struct ax_deadline {
	int64_t at;                 /* this scope's own deadline */
	int64_t effective;          /* min of this and every enclosing scope */
	struct ax_deadline *outer;
};

/* Enter a deadline scope ending at absolute time `at` (ax_now clock).
 * While the scope is active, every suspending call of the task returns
 * -ETIMEDOUT once the earliest deadline of all active scopes has passed;
 * scopes nest and the earliest wins.                          [AX-DL-1]
 * Scopes must be left in reverse order of entry. Returns 0 or -EPERM
 * outside a task. Never suspends.                             [AX-DL-2] */
int ax_deadline_enter(struct ax_deadline *d, int64_t at);

/* Leave the innermost scope, which must be d. Returns 0, or -EINVAL when d
 * is not the innermost scope (nothing is left).               [AX-DL-3] */
int ax_deadline_leave(struct ax_deadline *d);

/* True when the innermost effective deadline of the caller has passed.
 *                                                             [AX-DL-4] */
bool ax_deadline_expired(void);

/* ------------------------------------------------------------------ */
/* TCP                                                                 */
/* ------------------------------------------------------------------ */

enum {
	AX_LISTEN_REUSEPORT = 1u << 0, /* SO_REUSEPORT, for one listener per
	                                  runtime on one port */
};

/* Create a TCP socket bound to host:port and listening.
 * host is a numeric IPv4 or IPv6 address (NULL: "127.0.0.1"); port 0
 * picks a free port (see ax_tcp_port). SO_REUSEADDR is always set.
 * Returns the descriptor (>= 0, non-blocking, close-on-exec) or -errno:
 * -EADDRINUSE when the port is taken, -EINVAL for a malformed host.
 * Never suspends; may be called outside a task.               [AX-TCP-10] */
int ax_tcp_listen(const char *host, uint16_t port, int backlog, unsigned flags);

/* The local port a socket is bound to, or -errno.            [AX-TCP-11] */
int ax_tcp_port(int fd);

/* Accept one connection on listening socket lfd.
 * Suspends until a connection arrives. Returns the new descriptor
 * (non-blocking, close-on-exec: [AX-TCP-12]) or -errno; -EMFILE when the process has no
 * free descriptor, in which case the pending connection stays queued and a
 * later call succeeds once a descriptor is freed.             [AX-TCP-8] */
int ax_accept(int lfd);

/* Connect to host:port (numeric address). Suspends until connected.
 * Returns the descriptor (non-blocking, close-on-exec) or -errno
 * (-ECONNREFUSED, -ETIMEDOUT, ...; -EINVAL for a malformed address), and
 * leaves no descriptor behind on an error.                    [AX-TCP-13] */
int ax_connect(const char *host, uint16_t port);

/* Read at most n bytes. Suspends until at least one byte, EOF or an error.
 * Returns the count (may be short: [AX-TCP-1]), 0 at EOF [AX-TCP-2], or
 * -errno; a peer reset is -ECONNRESET.                        [AX-TCP-3]
 * buf must stay valid until the call returns; after it returns the engine
 * never touches buf again, whatever the result.              [AX-TCP-14]
 * At most one read (ax_read or ax_accept) and one write may be pending on
 * one descriptor at a time: a second concurrent read, accept or write on a
 * side that is already pending returns -EBUSY at once and starts nothing,
 * while one read and one write pending together both complete. [AX-TCP-9] */
/* An engine may receive a descriptor's bytes before a read asks for them
 * (into its own buffers: io_uring's recv=multishot). They belong to the
 * stream all the same: the next reads return them in order, n bytes at
 * most each, the rest staying queued; a read that returns -ECANCELED or
 * -ETIMEDOUT took none of them; EOF or an error that ended the receiving
 * comes after them; ax_close drops them.                      [AX-TCP-17] */
ssize_t ax_read(int fd, void *buf, size_t n);

/* Write all n bytes. Suspends until every byte is handed to the kernel.
 * Returns n or -errno, never a short count.                    [AX-TCP-4]
 * Writing to a closed peer returns -EPIPE (or -ECONNRESET) and never
 * raises SIGPIPE.                                              [AX-TCP-5]
 * On an error or cancellation, an unknown prefix of buf may have been
 * sent. */
ssize_t ax_write(int fd, const void *buf, size_t n);

/* shutdown(2): how is SHUT_RD, SHUT_WR or SHUT_RDWR. After SHUT_WR the
 * peer reads EOF and this side can still read.                [AX-TCP-6]
 * Returns 0 or -errno. Never suspends. */
int ax_shutdown(int fd, int how);

/* Close a descriptor obtained from ax (or any descriptor ax has used).
 * Pending operations of other tasks on it complete with -EBADF, and the
 * descriptor is closed when this returns (its number may be reused).
 *                                                             [AX-TCP-15]
 * Returns 0 or -errno. Never suspends. */
int ax_close(int fd);

/* Set or clear TCP_NODELAY. Returns 0 or -errno.             [AX-TCP-16] */
int ax_tcp_nodelay(int fd, bool on);

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* Read up to n bytes at offset off of a regular file descriptor (opened by
 * the caller, e.g. with open(2); O_DIRECT allowed when buf, n and off are
 * aligned). Suspends. Returns the count (0 at end of file) or -errno.
 * Runtimes with AX_FEAT_FILE use the engine's file I/O; the others run the
 * call on the blocking pool, so it never blocks the loop.      [AX-FILE-1] */
ssize_t ax_pread(int fd, void *buf, size_t n, int64_t off);

/* Write n bytes at offset off. Suspends. Returns the count written (short
 * only at a device limit) or -errno. As ax_pread otherwise.  [AX-FILE-2] */
ssize_t ax_pwrite(int fd, const void *buf, size_t n, int64_t off);

/* ------------------------------------------------------------------ */
/* Channels                                                            */
/* ------------------------------------------------------------------ */

/* Create a bounded channel of `capacity` (>= 1) elements of elem_size
 * (>= 1) bytes each. Elements are copied in and out.
 * Returns 0 and stores the channel in *out, or -EINVAL (a size of 0) /
 * -ENOMEM. Thread-safe; needs no runtime.                     [AX-CHAN-5] */
int ax_chan_create(ax_chan **out, size_t elem_size, size_t capacity);

/* Free a channel. No task may be waiting on it (close it and let waiters
 * return first). Returns 0 or -EBUSY (waiters remain, or a waiter that a
 * send or close released has not returned from its call yet, as on
 * another worker or thread; nothing freed).                   [AX-CHAN-6] */
int ax_chan_destroy(ax_chan *c);

/* Send one element (elem_size bytes copied from elem). Suspends while the
 * channel is full.                                            [AX-CHAN-2]
 * Elements are received in the order they were sent, none is lost or
 * duplicated.                                                 [AX-CHAN-1]
 * Returns 0, -EPIPE when the channel is closed, -ECANCELED, -ETIMEDOUT.
 * Thread-safe: may be called from a task of any runtime, or from a thread
 * that runs no runtime, in which case it blocks that thread.  [AX-CHAN-4] */
int ax_chan_send(ax_chan *c, const void *elem);

/* Receive one element into elem. Suspends while the channel is empty.
 * Returns 0, -EPIPE when the channel is closed and empty, -ECANCELED or
 * -ETIMEDOUT (no element was taken: [AX-CANCEL-3]). Thread-safe as
 * ax_chan_send. */
int ax_chan_recv(ax_chan *c, void *elem);

/* Non-suspending variants: return 0, -EAGAIN (full / empty) or -EPIPE
 * (closed; try_recv: closed and empty). Thread-safe; callable from any
 * context.                                                    [AX-CHAN-7] */
int ax_chan_try_send(ax_chan *c, const void *elem);
int ax_chan_try_recv(ax_chan *c, void *elem);

/* Close the channel: every waiting sender and receiver wakes; sends
 * return -EPIPE, receives drain what is buffered, then return -EPIPE.
 *                                                             [AX-CHAN-3]
 * Returns 0, or -EPIPE when already closed.                  [AX-CHAN-8]
 * Thread-safe. */
int ax_chan_close(ax_chan *c);

/* Number of elements buffered now. Thread-safe (a snapshot). [AX-CHAN-9] */
size_t ax_chan_len(ax_chan *c);

/* ------------------------------------------------------------------ */
/* Cross-thread post                                                   */
/* ------------------------------------------------------------------ */

/* Run fn(arg) on rt's thread (the one running ax_rt_run), outside any
 * task, soon. Each posted function
 * runs exactly once, in posting order per posting thread.     [AX-POST-1]
 * A post that arrives while rt is blocked in its engine wakes it; no wake
 * is lost.                                                    [AX-POST-2]
 * fn may spawn tasks (queued, see ax_spawn), cancel tasks and use the try_
 * channel calls; it must not suspend.
 * Thread-safe. Returns 0, -EINVAL or -ENOMEM.
 * Posts made while rt is not running run at its next ax_rt_run; posts still
 * queued when it is destroyed are dropped without running.   [AX-POST-3] */
int ax_post(ax_rt *rt, void (*fn)(void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* Multi-worker runtimes (AX_FEAT_MULTI_WORKER)                        */
/* ------------------------------------------------------------------ */

/* A runtime with AX_FEAT_MULTI_WORKER (the work-stealing runtimes,
 * "ws-<engine>") runs its tasks on several worker threads at once; the
 * thread calling ax_rt_run is worker 0. Everything above holds, except
 * where these sentences say otherwise; a scenario or conformance case
 * that needs the one-worker orderings declares AX_FEAT_ONE_WORKER.
 *
 * A task runs on one worker at a time and may resume on another after
 * any suspension. A wake (I/O completion, timer, channel transfer, join,
 * cancel) that arrives while the task runs makes it run exactly once
 * more; it never runs on two workers at once.                  [AX-MT-1]
 * A worker with nothing to run parks in its engine; work that becomes
 * ready anywhere (a wake, a spawn, a post, a send from another thread)
 * unparks one: no wake is lost.                                [AX-MT-2]
 * Channels keep [AX-CHAN-1] between tasks on different workers: one
 * receiver sees one sender's elements in order.                [AX-MT-3]
 * ax_cancel and ax_join may be called from any worker of the task's
 * runtime. A cancel from the worker the task waits on takes effect at
 * once, as on one worker; from another worker it takes effect when that
 * worker handles it, so an operation that completes meanwhile returns its
 * real result and the request stays pending for the next suspending call
 * ([AX-CANCEL-3]).                                             [AX-MT-4]
 * Tasks migrate with their stacks: thread-local state (errno, the address
 * of any _Thread_local) must not be kept across a suspending call, and
 * pthread_self() may differ after one.                         [AX-MT-5]
 * ax_detach and ax_join of a task running on another worker are safe; the
 * task is freed once, by whichever comes last.                 [AX-MT-6]
 * What holds only on one worker: the eager spawn's "before any other
 * ready task" ([AX-TASK-1]) and a yield's "every other ready task runs
 * first" ([AX-TASK-3], [AX-TIME-3]) hold per worker; equal deadlines
 * ([AX-TIME-2]) keep their order per worker; posts ([AX-POST-1]) run on
 * worker 0, in order; a descriptor's operations run on the worker that
 * owns its engine state, so an I/O call (and ax_close) may first move the
 * calling task there.                                          [AX-MT-7]
 * Worker count and the LIFO slot are engine_flags of the runtime
 * ("workers=N,lifo=0|1"; the environment variable AX_WS_FLAGS, read
 * first, sets them for runtimes the harness starts); the default is one
 * worker per CPU the process may run on, LIFO slot on. ax_rt_run returns
 * -EAGAIN (nothing run) when a worker thread cannot be started. [AX-MT-8] */

/* ------------------------------------------------------------------ */
/* Blocking offload                                                    */
/* ------------------------------------------------------------------ */

/* Run fn(arg) on the runtime's blocking pool (the engine's own thread pool
 * where it has one: AX_FEAT_NATIVE_POOL) and suspend until it returns;
 * other tasks and timers keep running meanwhile.              [AX-POOL-1]
 * Stores fn's return value in *result (may be NULL).
 * Returns 0, -ENOMEM, -ECANCELED or -ETIMEDOUT. On cancellation or
 * deadline, a call not yet started is dropped; a call already running is
 * waited for, then -ECANCELED / -ETIMEDOUT is returned and its result is
 * discarded, so fn never touches arg after this returns.      [AX-POOL-2] */
int ax_blocking(intptr_t (*fn)(void *arg), void *arg, intptr_t *result);

#ifdef __cplusplus
}
#endif
#endif /* AX_H */
