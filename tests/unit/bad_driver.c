/*
 * bad_driver.c - shared objects that ax_driver_load must refuse, one per
 * way a driver can be wrong, built from this file with one BAD_* macro
 * each (tests/CMakeLists.txt); test_loader.c loads every one. The vtable's
 * members do nothing: none is ever called.
 */
#include <errno.h>

#include "ax_driver.h"

#if !defined(BAD_NO_ENTRY) && !defined(BAD_FUNCTION_ENTRY)
static int bd_init(void **state, const struct ax_rt_opts *opts)
{
	(void)state;
	(void)opts;
	return -ENOSYS;
}
static void bd_fini(void *state) { (void)state; }
static int bd_submit(void *state, struct ax_op *op)
{
	(void)state;
	(void)op;
	return -ENOSYS;
}
static void bd_cancel(void *state, struct ax_op *op)
{
	(void)state;
	(void)op;
}
static int bd_timer_arm(void *state, struct ax_timer *t)
{
	(void)state;
	(void)t;
	return -ENOSYS;
}
static void bd_timer_cancel(void *state, struct ax_timer *t)
{
	(void)state;
	(void)t;
}
__attribute__((used)) static int bd_poll(void *state, bool block)
{
	(void)state;
	(void)block;
#ifdef BAD_UNDEFINED
	/* a core function axbench does not export */
	extern int ax__no_such_function(void);
	return ax__no_such_function();
#else
	return -ENOSYS;
#endif
}
static void bd_wake(void *state) { (void)state; }
static int bd_close_fd(void *state, int fd)
{
	(void)state;
	(void)fd;
	return -ENOSYS;
}

__attribute__((used)) static const struct ax_driver bd_driver = {
#ifdef BAD_VTABLE_VERSION
	.version = AX_DRIVER_VERSION + 1, /* a vtable from a later core */
#else
	.version = AX_DRIVER_VERSION,
#endif
#ifdef BAD_NAME_TAKEN
	.name = "epoll",
#else
	.name = "bad",
#endif
	.summary = "refused by ax_driver_load",
	.features = AX_FEAT_TCP,
	.init = bd_init,
	.fini = bd_fini,
	.submit = bd_submit,
	.cancel = bd_cancel,
	.timer_arm = bd_timer_arm,
	.timer_cancel = bd_timer_cancel,
#ifndef BAD_NO_POLL
	.poll = bd_poll,
#endif
	.wake = bd_wake,
	.close_fd = bd_close_fd,
};

/* The entry, field by field, so that each variant can spoil one. */
__attribute__((visibility("default"), used))
const struct ax_driver_entry ax_driver_entry = {
#ifdef BAD_MAGIC
	.magic = 0x12345678u,
#else
	.magic = AX_DRIVER_ENTRY_MAGIC,
#endif
#ifdef BAD_ABI
	.abi = AX_DRIVER_ABI + 1,
#else
	.abi = AX_DRIVER_ABI,
#endif
#ifdef BAD_API
	.api = AX_API_VERSION + 1,
#else
	.api = AX_API_VERSION,
#endif
	.entry_size = sizeof(struct ax_driver_entry),
	.driver_size = sizeof(struct ax_driver),
#ifdef BAD_SIZE
	.op_size = sizeof(struct ax_op) + 8,
#else
	.op_size = sizeof(struct ax_op),
#endif
	.timer_size = sizeof(struct ax_timer),
	.opts_size = sizeof(struct ax_rt_opts),
#ifdef BAD_NULL_DRIVER
	.driver = 0,
#else
	.driver = &bd_driver,
#endif
};
#elif defined(BAD_FUNCTION_ENTRY)
/* the name, but a function: never read as an entry */
__attribute__((visibility("default"))) int ax_driver_entry(void) { return 0; }
#else
/* a shared object, but no entry: not an ax driver */
__attribute__((visibility("default"))) int bd_something(void) { return 0; }
#endif
