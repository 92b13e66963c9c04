/*
 * san.h - sanitizer fiber annotations for the context switch. With AX_ASAN
 * (set by CMake for the ASan+UBSan build) ASan is told about every stack
 * switch so it does not report false stack errors; with AX_TSAN (the
 * ThreadSanitizer build) every task is a TSan fiber and every switch is
 * announced, so TSan keeps one shadow call stack and one clock per task
 * instead of taking the thread's stack for one that jumps. Otherwise these
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

/* ThreadSanitizer's fibers: a task gets one when it is created and loses
 * it when its stack is released (never on the fiber itself); the thread
 * that runs a scheduler keeps its own, which ax__tsan_fiber_self returns.
 * ax__tsan_switch goes immediately before the stack switch, with the
 * default flags: a switch orders everything before it on the old fiber
 * before everything after it on the new one, which is what running tasks
 * one at a time on one thread means (no false races between the tasks of
 * one scheduler), while work handed between threads still needs its own
 * synchronisation for TSan to accept it. */
#if defined(AX_TSAN)
#include <sanitizer/tsan_interface.h>
static inline void *ax__tsan_fiber_new(void)
{
	return __tsan_create_fiber(0);
}
static inline void ax__tsan_fiber_free(void *f)
{
	if (f)
		__tsan_destroy_fiber(f);
}
static inline void *ax__tsan_fiber_self(void)
{
	return __tsan_get_current_fiber();
}
static inline void ax__tsan_switch(void *f)
{
	__tsan_switch_to_fiber(f, 0);
}
#else
static inline void *ax__tsan_fiber_new(void)
{
	return NULL;
}
static inline void ax__tsan_fiber_free(void *f)
{
	(void)f;
}
static inline void *ax__tsan_fiber_self(void)
{
	return NULL;
}
static inline void ax__tsan_switch(void *f)
{
	(void)f;
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
