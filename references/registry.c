/* registry.c - the reference implementations compiled in: the blocking
 * server, then a native version for each engine found at build time. */
#include "native/native.h"

const struct axr_ref *const axr_refs[] = {
	&axr_blocking,
	/* the native versions (references/native/, docs/ergonomics.md) */
	&axr_native_epoll,
#ifdef AX_HAVE_LIBUV
	&axr_native_libuv,
#endif
#ifdef AX_HAVE_LIBEVENT
	&axr_native_libevent,
#endif
#ifdef AX_HAVE_IO_URING
	&axr_native_io_uring,
#endif
	/* labelled second idioms (native.c), after every engine's first */
#ifdef AX_HAVE_LIBEVENT
	&axr_native_libevent_bev,
#endif
#ifdef AX_HAVE_IO_URING
	&axr_native_io_uring_heap,
	&axr_native_io_uring_multishot,
#endif
	/* two threads on epoll: the engine owned per thread, or shared
	 * (docs/decisions.md, "Work stealing") */
	&axr_native_epoll_mt_owned,
	&axr_native_epoll_mt_shared,
	NULL,
};
