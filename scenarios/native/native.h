/*
 * native.h - the entry points of the native versions (one file per engine and
 * scenario in scenarios/native/) and the two engine-free helpers that stand
 * in for ax_sc_param and ax_sc_fail on a reference run.
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
#ifndef AXN_NATIVE_H
#define AXN_NATIVE_H

#include "harness.h"

/* The value of parameter `name` of the scenario being served (base units);
 * aborts on an unknown name, a bug caught by the tests. */
int64_t axn_param(const struct axb_ref_run *r, const char *name);

/* Fail the run's check with a message; the first failure wins. */
void axn_fail(struct axb_ref_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int axn_epoll_echo(struct axb_ref_run *r);
int axn_epoll_rpc(struct axb_ref_run *r);
intptr_t axn_epoll_timers(struct ax_sc_ctx *ctx);

int axn_libuv_echo(struct axb_ref_run *r);
int axn_libuv_rpc(struct axb_ref_run *r);
intptr_t axn_libuv_timers(struct ax_sc_ctx *ctx);

int axn_libevent_echo(struct axb_ref_run *r);
int axn_libevent_rpc(struct axb_ref_run *r);
intptr_t axn_libevent_timers(struct ax_sc_ctx *ctx);

int axn_uring_echo(struct axb_ref_run *r);
int axn_uring_rpc(struct axb_ref_run *r);
intptr_t axn_uring_timers(struct ax_sc_ctx *ctx);

/* The native references, listed in harness/impl.c. */
extern const struct axb_ref axb_ref_native_epoll;
extern const struct axb_ref axb_ref_native_libuv;
extern const struct axb_ref axb_ref_native_libevent;
extern const struct axb_ref axb_ref_native_io_uring;

#endif
