/* alloc_count.c - an LD_PRELOAD heap-allocation counter: replaces malloc and
 * its relatives with wrappers that count calls into a shared file named by
 * AXB_ALLOC_SHM, so that `axbench ergo` can sample a server's counts at the
 * start and end of its measured phase (docs/ergonomics.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's own allocator entry points, which the wrappers forward to: no
 * dlsym, so no allocation while resolving them. */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);
extern void *__libc_valloc(size_t n);
extern void *__libc_pvalloc(size_t n);

/* The layout of the shared file; harness/ergo/alloc.c reads the same. */
struct axb_alloc_counts {
	_Atomic uint64_t allocs; /* calls that return new memory */
	_Atomic uint64_t frees;  /* free of a non-NULL pointer */
	_Atomic uint64_t bytes;  /* bytes asked for */
	_Atomic uint64_t pid;    /* the process counting, once it is */
};

static struct axb_alloc_counts local;
static struct axb_alloc_counts *counts = &local;

/* Count into the shared file from here on; before (or without it) into a
 * private copy nobody reads. */
__attribute__((constructor)) static void alloc_count_init(void)
{
	const char *path = getenv("AXB_ALLOC_SHM");
	if (!path)
		return;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	void *m = mmap(NULL, sizeof *counts, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	counts = m;
	atomic_store(&counts->pid, (uint64_t)getpid());
}

static void count_alloc(size_t n)
{
	atomic_fetch_add_explicit(&counts->allocs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&counts->bytes, n, memory_order_relaxed);
}

void *malloc(size_t n)
{
	count_alloc(n);
	return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
	count_alloc(k * n);
	return __libc_calloc(k, n);
}

/* Every realloc counts as an allocation: it may move the block. */
void *realloc(void *p, size_t n)
{
	count_alloc(n);
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (p)
		atomic_fetch_add_explicit(&counts->frees, 1, memory_order_relaxed);
	__libc_free(p);
}

void *memalign(size_t align, size_t n)
{
	count_alloc(n);
	return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	count_alloc(n);
	return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	count_alloc(n);
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	count_alloc(n);
	return __libc_valloc(n);
}

void *pvalloc(size_t n)
{
	count_alloc(n);
	return __libc_pvalloc(n);
}
