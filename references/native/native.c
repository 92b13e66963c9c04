/* native.c - the native references (native-epoll, native-libuv,
 * native-libevent, native-io_uring, and the labelled second idioms
 * native-libevent-bufferevent, native-io_uring-heap and
 * native-io_uring-multishot): each maps a
 * scenario to the version written straight on its engine, and all share one
 * stop, shutting the listener down, which every engine sees as a failing
 * accept. */
#include "native.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int64_t axr_param(const struct axr_run *r, const char *name)
{
	int i = axs_param_index(r->sc, name);
	if (i < 0) {
		fprintf(stderr, "axbench: native %s asked for unknown parameter %s\n",
			r->sc->name, name);
		abort();
	}
	return r->values[i];
}

void axr_fail(struct axr_run *r, const char *fmt, ...)
{
	va_list ap;
	if (r->fail[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->fail, sizeof r->fail, fmt, ap);
	va_end(ap);
}

/* One reference's versions, by scenario name; NULL where it has none (a
 * labelled idiom variant serves only the scenarios where its idiom differs). */
struct axr_engine {
	int (*echo)(struct axr_run *r);
	int (*rpc)(struct axr_run *r);
	intptr_t (*timers)(struct axs_ctx *ctx);
};

static int serve_with(const struct axr_engine *e, struct axr_run *r)
{
	if (!strcmp(r->sc->name, "tcp_echo") && e->echo)
		return e->echo(r);
	if (!strcmp(r->sc->name, "rpc_fanout") && e->rpc)
		return e->rpc(r);
	return -ENOTSUP;
}

static intptr_t local_with(const struct axr_engine *e, struct axs_ctx *ctx)
{
	if (!strcmp(ctx->sc->name, "timers") && e->timers)
		return e->timers(ctx);
	return -ENOTSUP;
}

/* Thread-safe: a system call on a descriptor the server keeps open until
 * serve returns. Each version's accept then fails (EINVAL), and it sees
 * r->stopping set. */
static void native_stop(struct axr_run *r)
{
	atomic_store(&r->stopping, true);
	shutdown(r->listen_fd, SHUT_RDWR);
}

static const char *const native_scenarios[] = {
	"tcp_echo", "rpc_fanout", "timers", NULL,
};
static const char *const echo_only[] = { "tcp_echo", NULL };
static const char *const timers_only[] = { "timers", NULL };

/* A reference named `refname` serving `scens` with the versions in `...`
 * (echo, rpc, timers). */
#define NATIVE_REF(id, refname, scens, label, info, ...)                       \
	static const struct axr_engine id##_engine = { __VA_ARGS__ };          \
	static int id##_serve(struct axr_run *r)                               \
	{                                                                      \
		return serve_with(&id##_engine, r);                            \
	}                                                                      \
	static intptr_t id##_local(struct axs_ctx *ctx)                        \
	{                                                                      \
		return local_with(&id##_engine, ctx);                          \
	}                                                                      \
	const struct axr_ref axr_native_##id = {                               \
		.name = refname,                                                \
		.summary = label,                                              \
		.engine_info = info,                                           \
		.scenarios = scens,                                            \
		.serve = id##_serve,                                           \
		.stop = native_stop,                                           \
		.run_local = id##_local,                                       \
	};

/* Each engine's reference (native-<engine>) serves all three scenarios in
 * that engine's first idiom; where a second idiom is as common and costs
 * materially differently, it is a reference of its own labelled
 * native-<engine>-<idiom>, serving only the scenarios it changes
 * (docs/ergonomics.md, docs/decisions.md). */
NATIVE_REF(epoll, "native-epoll", native_scenarios,
	   "native version on raw epoll (references/native/epoll_*.c)",
	   "raw epoll, level-triggered, one thread; timers: heap + epoll_pwait2",
	   axr_epoll_echo, axr_epoll_rpc, axr_epoll_timers)

#ifdef AX_HAVE_LIBUV
NATIVE_REF(libuv, "native-libuv", native_scenarios,
	   "native version on libuv callbacks (references/native/libuv_*.c)",
	   "libuv streams and timers, one loop",
	   axr_libuv_echo, axr_libuv_rpc, axr_libuv_timers)
#endif

#ifdef AX_HAVE_LIBEVENT
NATIVE_REF(libevent, "native-libevent", native_scenarios,
	   "native version on libevent events (references/native/libevent_*.c)",
	   "libevent events and evtimers, one event_base",
	   axr_libevent_echo, axr_libevent_rpc, axr_libevent_timers)
NATIVE_REF(libevent_bev, "native-libevent-bufferevent", echo_only,
	   "tcp_echo on libevent bufferevents (references/native/libevent_echo_bev.c)",
	   "libevent evconnlistener + socket bufferevents, one event_base",
	   .echo = axr_libevent_echo_bev)
#endif

#ifdef AX_HAVE_IO_URING
NATIVE_REF(io_uring, "native-io_uring", native_scenarios,
	   "native version on liburing (references/native/uring_*.c)",
	   "liburing, SINGLE_ISSUER|DEFER_TASKRUN when the kernel has it; "
	   "timers: one IORING_OP_TIMEOUT per timer",
	   axr_uring_echo, axr_uring_rpc, axr_uring_timers)
NATIVE_REF(io_uring_heap, "native-io_uring-heap", timers_only,
	   "timers on liburing: user-space heap behind the wait's one timeout "
	   "(references/native/uring_timers_heap.c)",
	   "liburing, binary heap + io_uring_submit_and_wait_timeout (EXT_ARG)",
	   .timers = axr_uring_timers_heap)
NATIVE_REF(io_uring_multishot, "native-io_uring-multishot", echo_only,
	   "tcp_echo on liburing: multishot recv into a provided-buffer ring "
	   "(references/native/uring_echo_multishot.c)",
	   "liburing, multishot accept + multishot recv, provided buffer ring, "
	   "SINGLE_ISSUER|DEFER_TASKRUN when the kernel has it",
	   .echo = axr_uring_echo_multishot)
#endif
