/*
 * native.h - the entry points of the native versions (one file per engine and
 * scenario in references/native/) and the two engine-free helpers that stand
 * in for axs_param and axs_fail on a reference run.
 *
 * Nothing here is counted in any version's ergonomics metrics, just as the
 * ax versions are not charged for the harness (docs/ergonomics.md).
 *
 * A native server serves r->listen_fd (blocking as handed over; each version
 * sets the mode its engine wants) until the listener is shut down, which is
 * how the references are stopped (native.c): its accept then fails and the
 * version closes every connection it holds and returns 0, or -errno when it
 * failed before being stopped. A native local scenario runs on the calling
 * thread, outside any ax runtime, and records through ctx as an ax scenario
 * does.
 */
#ifndef AXR_NATIVE_H
#define AXR_NATIVE_H

#include "reference.h"
#include "scenario_host.h"

/* The value of parameter `name` of the scenario being served (base units);
 * aborts on an unknown name, a bug caught by the tests. */
int64_t axr_param(const struct axr_run *r, const char *name);

/* Fail the run's check with a message; the first failure wins. */
void axr_fail(struct axr_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int axr_epoll_echo(struct axr_run *r);
int axr_epoll_rpc(struct axr_run *r);
intptr_t axr_epoll_timers(struct axs_ctx *ctx);

int axr_libuv_echo(struct axr_run *r);
int axr_libuv_rpc(struct axr_run *r);
intptr_t axr_libuv_timers(struct axs_ctx *ctx);

int axr_libevent_echo(struct axr_run *r);
int axr_libevent_echo_bev(struct axr_run *r);
int axr_libevent_rpc(struct axr_run *r);
intptr_t axr_libevent_timers(struct axs_ctx *ctx);

int axr_uring_echo(struct axr_run *r);
int axr_uring_echo_multishot(struct axr_run *r);
int axr_uring_rpc(struct axr_run *r);
intptr_t axr_uring_timers(struct axs_ctx *ctx);
intptr_t axr_uring_timers_heap(struct axs_ctx *ctx);

/* The references, listed in references/registry.c. */
extern const struct axr_ref axr_blocking;
extern const struct axr_ref axr_native_epoll;
extern const struct axr_ref axr_native_libuv;
extern const struct axr_ref axr_native_libevent;
extern const struct axr_ref axr_native_io_uring;
/* labelled idiom variants (native.c) */
extern const struct axr_ref axr_native_libevent_bev;
extern const struct axr_ref axr_native_io_uring_heap;
extern const struct axr_ref axr_native_io_uring_multishot;
/* tcp_echo on two threads: an epoll set each, or one shared (epoll_echo_mt.c) */
extern const struct axr_ref axr_native_epoll_mt_owned;
extern const struct axr_ref axr_native_epoll_mt_shared;

#endif
