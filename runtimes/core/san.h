/*
 * san.h - AddressSanitizer fiber annotations for the context switch. With
 * AX_ASAN (set by CMake for the sanitizer build) ASan is told about every
 * stack switch so it does not report false stack errors; otherwise these
 * compile to nothing.
 */
#ifndef AX_SAN_H
#define AX_SAN_H

#include <pthread.h>
#include <stddef.h>

#if defined(AX_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
/* A stack handed out again (or unmapped) may still carry the poison of the
 * frames that last ran on it: clear it. */
static inline void ax__san_unpoison(void *p, size_t n)
{
	ASAN_UNPOISON_MEMORY_REGION(p, n);
}
static inline void ax__san_start_switch(void **fake, const void *lo, size_t size)
{
	__sanitizer_start_switch_fiber(fake, lo, size);
}
static inline void ax__san_finish_switch(void *fake)
{
	__sanitizer_finish_switch_fiber(fake, NULL, NULL);
}
#else
static inline void ax__san_unpoison(void *p, size_t n)
{
	(void)p;
	(void)n;
}
static inline void ax__san_start_switch(void **fake, const void *lo, size_t size)
{
	(void)fake;
	(void)lo;
	(void)size;
}
static inline void ax__san_finish_switch(void *fake)
{
	(void)fake;
}
#endif

/* valgrind must be told where task stacks are, or memcheck takes every
 * switch for a huge stack change; the client requests cost a few
 * instructions outside valgrind. AX_HAVE_VALGRIND comes from CMake. */
#if defined(AX_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
static inline unsigned ax__vg_stack_register(void *lo, size_t n)
{
	return VALGRIND_STACK_REGISTER(lo, (char *)lo + n);
}
static inline void ax__vg_stack_deregister(unsigned id)
{
	VALGRIND_STACK_DEREGISTER(id);
}
/* Whether the process runs under valgrind (a client request: a few
 * instructions, 0 outside valgrind). */
static inline bool ax__vg_running(void)
{
	return RUNNING_ON_VALGRIND != 0;
}
#else
static inline unsigned ax__vg_stack_register(void *lo, size_t n)
{
	(void)lo;
	(void)n;
	return 0;
}
static inline void ax__vg_stack_deregister(unsigned id)
{
	(void)id;
}
static inline bool ax__vg_running(void)
{
	return false;
}
#endif

/* The calling thread's stack bounds (for switches back to the scheduler). */
static inline void ax__san_thread_stack(const void **lo, size_t *size)
{
	pthread_attr_t a;
	void *addr = NULL;
	size_t sz = 0;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstack(&a, &addr, &sz);
		pthread_attr_destroy(&a);
	}
	*lo = addr;
	*size = sz;
}

#endif
