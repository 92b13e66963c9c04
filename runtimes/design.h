/*
 * design.h - runtime designs behind ax.h.
 *
 * A driver (ax_driver.h) is an engine under the core's scheduler. A design
 * is a whole implementation of ax.h: the core (runtimes/core/: one thread,
 * stackful tasks, a FIFO scheduler over a driver) is one, the
 * thread-per-task oracle (runtimes/threads/: a kernel thread per task,
 * blocking system calls) another. Every public ax.h function whose meaning
 * depends on the implementation forwards through the table of its design
 * (runtimes/design.c):
 *
 *   - a function given a runtime (ax_rt_run, ax_post, ax_rt_stats, ...)
 *     uses the runtime's design: every design's runtime object starts with
 *     a struct ax__rt_head;
 *   - a function of the calling task (ax_spawn, ax_read, ax_sleep, ...)
 *     uses the calling thread's design, ax__tls_design: the core on every
 *     thread until a design says otherwise (the oracle sets it on the
 *     threads of its tasks and on the thread running ax_rt_run), so a
 *     thread running no runtime gets the core's answers (-EPERM, ...).
 *
 * Functions that mean the same everywhere are not dispatched: ax_now,
 * ax_rt_opts_init, ax_tcp_listen, ax_tcp_port, ax_shutdown,
 * ax_tcp_nodelay, ax_feature_name, and the channels, whose only
 * design-specific part (a task waiting) goes through the hooks below.
 *
 * The table is append-only; a design that has no runtime of its own to
 * list (the core lists its drivers) answers discovery through `count` etc.
 */
#ifndef AX_DESIGN_H
#define AX_DESIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ax.h"

struct ax__design;
struct ax__waiter;

/* The first member of every design's runtime object. */
struct ax__rt_head {
	const struct ax__design *design;
};

struct ax__design {
	const char *name;                 /* "core", "threads" */

	/* discovery: the runtimes this design offers, i < count() */
	size_t (*count)(void);
	const char *(*rt_name)(size_t i);
	const char *(*summary)(size_t i);
	uint32_t (*features)(size_t i);
	bool (*available)(size_t i, char *why, size_t n);
	/* name: one of this design's runtimes, or NULL (only asked of the
	 * default design: its preferred runtime) */
	int (*create)(ax_rt **out, const char *name, const struct ax_rt_opts *o);

	/* by runtime object */
	int (*run)(ax_rt *rt, ax_task_fn fn, void *arg, intptr_t *result);
	int (*destroy)(ax_rt *rt);
	const char *(*rt_driver)(const ax_rt *rt);
	uint32_t (*rt_features)(const ax_rt *rt);
	const char *(*engine_info)(const ax_rt *rt);
	void (*stats)(const ax_rt *rt, struct ax_rt_stats *st);
	int (*dump)(ax_rt *rt, FILE *f);
	int (*post)(ax_rt *rt, void (*fn)(void *), void *arg);

	/* by the calling thread */
	ax_rt *(*rt_current)(void);
	int (*spawn)(ax_task **out, ax_task_fn fn, void *arg, const char *name,
		     const char *file, int line);
	int (*join)(ax_task *t, intptr_t *result);
	int (*detach)(ax_task *t);
	int (*cancel)(ax_task *t);
	int (*yield)(void);
	ax_task *(*current)(void);
	int (*set_name)(ax_task *t, const char *name);
	const char *(*task_name)(const ax_task *t);
	int (*sleep_until)(int64_t at);
	int (*deadline_enter)(struct ax_deadline *d, int64_t at);
	int (*deadline_leave)(struct ax_deadline *d);
	bool (*deadline_expired)(void);
	int (*accept)(int lfd);
	int (*connect)(const char *host, uint16_t port);
	ssize_t (*read)(int fd, void *buf, size_t n);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t n, int64_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, int64_t off);
	int (*blocking)(intptr_t (*fn)(void *), void *arg, intptr_t *result);

	/* channels (core/chan.c) */
	/* Entry check of a suspending channel call: stores the calling task
	 * (NULL when the caller is no task: it then waits as a plain thread)
	 * and returns 0, or -ECANCELED / -ETIMEDOUT ([AX-GEN-2]). */
	int (*chan_enter)(void **task);
	/* Wait until w, already queued on channel `chan` (unlocked), is
	 * released (ax__chan_outcome != -EAGAIN) or the task is interrupted;
	 * an interrupted wait calls ax__chan_unwait, and when that returns
	 * false the release came first (its chan_wake has been made). Returns
	 * the call's result: the outcome (0, -EPIPE) of a released waiter,
	 * which wins over an interrupt ([AX-CANCEL-3]), else -ECANCELED
	 * (consuming the request) or -ETIMEDOUT. */
	int (*chan_wait)(struct ax__waiter *w, void *task, const void *chan,
			 bool sender);
	/* Make `task`, waiting in chan_wait, see its release. Thread-safe. */
	void (*chan_wake)(void *task);

	/* A SIGSEGV at addr on the calling thread (of this design): when it
	 * is an overflow of the current task's stack, write a report naming
	 * the task on stderr ([AX-TASK-9]). Async-signal-safe. */
	void (*segv_report)(const void *addr);

	/* by runtime object: ax_rt_stack_usage (NULL: -ENOTSUP) */
	int (*stack_usage)(ax_rt *rt, struct ax_stack_usage *u);
};

/* The designs, the default (the core) first. */
extern const struct ax__design ax__design_core;
extern const struct ax__design ax__design_threads;
extern const struct ax__design ax__design_ws;
/* the core again, listing the drivers registered at run time */
extern const struct ax__design ax__design_core_registered;

/* The calling thread's design (the core unless a design set its own). */
extern _Thread_local const struct ax__design *ax__tls_design;

/* The option ranges of ax_rt_create shared by every design: 0 or -EINVAL
 * ([AX-RT-4]). */
int ax__opts_check(const struct ax_rt_opts *o);

/* The process-wide SIGSEGV handler that asks the faulting thread's design
 * for a report, then lets the signal kill the process. Runtimes of any
 * design may run at once on different threads, so it is counted: the first
 * hold installs it, the last release restores the action found. Each
 * thread that runs tasks brings its own alternate signal stack. */
void ax__segv_hold(void);
void ax__segv_release(void);

/* chan.c, for a design's chan_wait: end w's wait if it is still queued
 * (true: nothing was transferred), false when a sender, receiver or close
 * already released it. Thread-safe. */
bool ax__chan_unwait(struct ax__waiter *w);

/* chan.c: w's outcome: 0 (transfer done), -EPIPE (closed), -EAGAIN (still
 * waiting). Thread-safe. */
int ax__chan_outcome(struct ax__waiter *w);

#endif /* AX_DESIGN_H */
