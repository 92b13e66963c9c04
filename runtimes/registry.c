/* registry.c - the compiled-in drivers, in preference order. CMake defines
 * AX_HAVE_<ENGINE> for each engine whose library was found; this is the one
 * place besides CMake where that is tested. */
#include "ax_driver.h"

#ifdef AX_HAVE_EPOLL
extern const struct ax_driver ax_driver_epoll;
#endif
#ifdef AX_HAVE_IO_URING
extern const struct ax_driver ax_driver_io_uring;
#endif
#ifdef AX_HAVE_LIBUV
extern const struct ax_driver ax_driver_libuv;
#endif
#ifdef AX_HAVE_LIBEVENT
extern const struct ax_driver ax_driver_libevent;
#endif

const struct ax_driver *const ax__drivers[] = {
#ifdef AX_HAVE_EPOLL
	&ax_driver_epoll,
#endif
#ifdef AX_HAVE_IO_URING
	&ax_driver_io_uring,
#endif
#ifdef AX_HAVE_LIBUV
	&ax_driver_libuv,
#endif
#ifdef AX_HAVE_LIBEVENT
	&ax_driver_libevent,
#endif
	NULL,
};

const size_t ax__driver_count = sizeof ax__drivers / sizeof ax__drivers[0] - 1;
