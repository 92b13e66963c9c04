/* registry.c - the drivers: the compiled-in ones in preference order (CMake
 * defines AX_HAVE_<ENGINE> for each engine whose library was found; this is
 * the one place besides CMake where that is tested), then those registered
 * at run time with ax_driver_register. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

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

static const struct ax_driver *const compiled[] = {
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

static const size_t ncompiled = sizeof compiled / sizeof compiled[0] - 1;

#define AX_MAX_REGISTERED 8

/* Registered drivers: a slot is written before the count that publishes
 * it, so a reader that loads the count sees whole slots. */
static const struct ax_driver *registered[AX_MAX_REGISTERED];
static atomic_size_t nregistered;
static pthread_mutex_t register_lock = PTHREAD_MUTEX_INITIALIZER;

size_t ax__driver_compiled_n(void)
{
	return ncompiled;
}

size_t ax__driver_n(void)
{
	return ncompiled + atomic_load_explicit(&nregistered, memory_order_acquire);
}

const struct ax_driver *ax__driver_at(size_t i)
{
	if (i < ncompiled)
		return compiled[i];
	i -= ncompiled;
	return i < atomic_load_explicit(&nregistered, memory_order_acquire)
		? registered[i] : NULL;
}

int ax_driver_register(const struct ax_driver *d)
{
	int r = 0;
	if (!d || !d->name || !d->name[0] || !d->init || !d->fini || !d->submit ||
	    !d->cancel || !d->timer_arm || !d->timer_cancel || !d->poll || !d->wake ||
	    !d->close_fd)
		return -EINVAL;
	if (d->version == 0 || d->version > AX_DRIVER_VERSION)
		return -EPROTO;
	pthread_mutex_lock(&register_lock);
	for (size_t i = 0; i < ax__driver_n(); i++)
		if (!strcmp(ax__driver_at(i)->name, d->name)) {
			r = -EEXIST;
			goto unlock;
		}
	size_t n = atomic_load_explicit(&nregistered, memory_order_relaxed);
	if (n == AX_MAX_REGISTERED) {
		r = -ENOSPC;
		goto unlock;
	}
	registered[n] = d;
	atomic_store_explicit(&nregistered, n + 1, memory_order_release);
unlock:
	pthread_mutex_unlock(&register_lock);
	return r;
}
