/* native.c - the native references (native-epoll, native-libuv,
 * native-libevent, native-io_uring): each maps a scenario to the version
 * written straight on its engine, and all share one stop, shutting the
 * listener down, which every engine sees as a failing accept. */
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

/* One engine's versions, by scenario name. */
struct axr_engine {
	int (*echo)(struct axr_run *r);
	int (*rpc)(struct axr_run *r);
	intptr_t (*timers)(struct axs_ctx *ctx);
};

static int serve_with(const struct axr_engine *e, struct axr_run *r)
{
	if (!strcmp(r->sc->name, "tcp_echo"))
		return e->echo(r);
	if (!strcmp(r->sc->name, "rpc_fanout"))
		return e->rpc(r);
	return -ENOTSUP;
}

static intptr_t local_with(const struct axr_engine *e, struct axs_ctx *ctx)
{
	if (!strcmp(ctx->sc->name, "timers"))
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

#define NATIVE_REF(id, label, info, ...)                                      \
	static const struct axr_engine id##_engine = { __VA_ARGS__ };          \
	static int id##_serve(struct axr_run *r)                           \
	{                                                                      \
		return serve_with(&id##_engine, r);                            \
	}                                                                      \
	static intptr_t id##_local(struct axs_ctx *ctx)                      \
	{                                                                      \
		return local_with(&id##_engine, ctx);                          \
	}                                                                      \
	const struct axr_ref axr_native_##id = {                           \
		.name = "native-" #id,                                         \
		.summary = label,                                              \
		.engine_info = info,                                           \
		.scenarios = native_scenarios,                                 \
		.serve = id##_serve,                                           \
		.stop = native_stop,                                           \
		.run_local = id##_local,                                       \
	};

NATIVE_REF(epoll, "native version on raw epoll (references/native/epoll_*.c)",
	   "raw epoll, level-triggered, one thread",
	   axr_epoll_echo, axr_epoll_rpc, axr_epoll_timers)

#ifdef AX_HAVE_LIBUV
NATIVE_REF(libuv, "native version on libuv callbacks (references/native/libuv_*.c)",
	   "libuv streams and timers, one loop",
	   axr_libuv_echo, axr_libuv_rpc, axr_libuv_timers)
#endif

#ifdef AX_HAVE_LIBEVENT
NATIVE_REF(libevent, "native version on libevent events (references/native/libevent_*.c)",
	   "libevent events and evtimers, one event_base",
	   axr_libevent_echo, axr_libevent_rpc, axr_libevent_timers)
#endif

#ifdef AX_HAVE_IO_URING
NATIVE_REF(io_uring, "native version on liburing (references/native/uring_*.c)",
	   "liburing, SINGLE_ISSUER|DEFER_TASKRUN when the kernel has it",
	   axr_uring_echo, axr_uring_rpc, axr_uring_timers)
#endif
