/*
 * stack.c - task stacks: guarded mappings while the process's mapping budget
 * allows, canary-checked slabs past it, and a cache of freed stacks.
 *
 * Why two kinds: a guard page below a stack turns an overflow into a fault
 * that names the task, but it splits the mapping, and the kernel caps a
 * process at vm.max_map_count mappings (65530 by default). A quarter of that
 * goes to guarded stacks; beyond it, stacks are carved 64 at a time from one
 * slab mapping (one guard page below the slab) and their lowest word holds a
 * canary that the scheduler checks whenever the task switches out.
 *
 * What a stack costs is the pages its tasks touch (only those are resident),
 * so nothing here writes a page a task would not: a guarded stack has no
 * canary (its guard page does that job), and a slab stack's canary shares
 * the page of the stack below's top, which that stack's entry frames touch
 * anyway. A task whose frames stay within one page costs one page.
 */
#include "core.h"
#include "san.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLAB_STACKS 64
#define CACHE_MAX 256
/* A slab stack starts this far below a page boundary: its canary (and the
 * 16-byte alignment of every stack's top) sits in the last page of the
 * stack below, or in the slab's spare page for the first one. */
#define SLAB_SHIFT 16

/* What a guarded stack's canary pointer reads: its guard page catches an
 * overflow, and this word never changes. */
static const uint64_t stack_no_canary = AX_STACK_CANARY;

struct ax__slab {
	char *map;
	size_t map_len;
	size_t free_n;
	struct ax__stack *free;
	struct ax__slab *next_avail, *prev_avail;
	bool in_avail;
	struct ax__slab *next_all;
	struct ax__stack st[SLAB_STACKS];
};

static size_t stack_page(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

static size_t stack_guard_budget(void)
{
	long max = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	/* two mappings per guarded stack, a quarter of the budget in all */
	return max > 16 ? (size_t)max / 8 : 1;
}

void ax__stack_pool_init(struct ax__stack_pool *p, size_t size)
{
	size_t pg = stack_page();
	p->size = (size + pg - 1) / pg * pg;
	p->guarded_budget = stack_guard_budget();
	p->guarded_live = p->slab_live = 0;
	p->cache = NULL;
	p->cache_n = 0;
	p->slabs = p->all_slabs = NULL;
}

static struct ax__stack *stack_new_guarded(struct ax__stack_pool *p)
{
	size_t pg = stack_page();
	struct ax__stack *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	s->map_len = p->size + pg;
	s->map = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		      -1, 0);
	if (s->map == MAP_FAILED)
		goto fail_free;
	if (mprotect(s->map, pg, PROT_NONE) != 0)
		goto fail_unmap;
	s->lo = s->map + pg;
	s->size = p->size;
	s->canary = &stack_no_canary;
	s->slab = NULL;
	s->next_free = NULL;
	s->vg_id = ax__vg_stack_register(s->lo, s->size);
	return s;

fail_unmap:
	munmap(s->map, s->map_len);
fail_free:
	free(s);
	return NULL;
}

static void slab_avail_add(struct ax__stack_pool *p, struct ax__slab *sl)
{
	sl->prev_avail = NULL;
	sl->next_avail = p->slabs;
	if (p->slabs)
		p->slabs->prev_avail = sl;
	p->slabs = sl;
	sl->in_avail = true;
}

static void slab_avail_del(struct ax__stack_pool *p, struct ax__slab *sl)
{
	if (sl->prev_avail)
		sl->prev_avail->next_avail = sl->next_avail;
	else
		p->slabs = sl->next_avail;
	if (sl->next_avail)
		sl->next_avail->prev_avail = sl->prev_avail;
	sl->in_avail = false;
}

static struct ax__slab *slab_new(struct ax__stack_pool *p)
{
	size_t pg = stack_page();
	struct ax__slab *sl = calloc(1, sizeof *sl);
	if (!sl)
		return NULL;
	/* guard page, spare page (the first stack's canary), the stacks */
	sl->map_len = 2 * pg + SLAB_STACKS * p->size;
	sl->map = mmap(NULL, sl->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		       -1, 0);
	if (sl->map == MAP_FAILED)
		goto fail_free;
	if (mprotect(sl->map, pg, PROT_NONE) != 0)
		goto fail_unmap;
	for (size_t i = 0; i < SLAB_STACKS; i++) {
		struct ax__stack *s = &sl->st[i];
		s->lo = sl->map + 2 * pg + i * p->size - SLAB_SHIFT;
		s->size = p->size;
		s->canary = (const uint64_t *)s->lo;
		s->map = NULL;
		s->slab = sl;
		s->vg_id = ax__vg_stack_register(s->lo, s->size);
		s->next_free = sl->free;
		sl->free = s;
	}
	sl->free_n = SLAB_STACKS;
	sl->next_all = p->all_slabs;
	p->all_slabs = sl;
	slab_avail_add(p, sl);
	return sl;

fail_unmap:
	munmap(sl->map, sl->map_len);
fail_free:
	free(sl);
	return NULL;
}

struct ax__stack *ax__stack_get(struct ax__stack_pool *p)
{
	struct ax__stack *s = NULL;
	if (p->cache) {
		s = p->cache;
		p->cache = s->next_free;
		p->cache_n--;
		p->guarded_live++;
	} else if (p->guarded_live < p->guarded_budget) {
		s = stack_new_guarded(p);
		if (s)
			p->guarded_live++;
	}
	if (!s) {
		struct ax__slab *sl = p->slabs ? p->slabs : slab_new(p);
		if (!sl)
			return NULL;
		s = sl->free;
		sl->free = s->next_free;
		if (--sl->free_n == 0)
			slab_avail_del(p, sl);
		p->slab_live++;
	}
	ax__san_unpoison(s->lo, s->size);
	if (s->slab)
		*(uint64_t *)s->lo = AX_STACK_CANARY;
	return s;
}

void ax__stack_put(struct ax__stack_pool *p, struct ax__stack *s)
{
	if (!s->slab) {
		p->guarded_live--;
		if (p->cache_n < CACHE_MAX) {
			s->next_free = p->cache;
			p->cache = s;
			p->cache_n++;
			return;
		}
		ax__san_unpoison(s->lo, s->size);
		ax__vg_stack_deregister(s->vg_id);
		munmap(s->map, s->map_len);
		free(s);
		return;
	}
	struct ax__slab *sl = s->slab;
	p->slab_live--;
	s->next_free = sl->free;
	sl->free = s;
	if (++sl->free_n == 1)
		slab_avail_add(p, sl);
	if (sl->free_n == SLAB_STACKS) {
		/* the slab is empty: give its memory back (keep its mapping
		 * count low too) unless it is the only one available */
		madvise(sl->map, sl->map_len, MADV_DONTNEED);
	}
}

void ax__stack_pool_fini(struct ax__stack_pool *p)
{
	while (p->cache) {
		struct ax__stack *s = p->cache;
		p->cache = s->next_free;
		ax__san_unpoison(s->lo, s->size);
		ax__vg_stack_deregister(s->vg_id);
		munmap(s->map, s->map_len);
		free(s);
	}
	p->cache_n = 0;
	while (p->all_slabs) {
		struct ax__slab *sl = p->all_slabs;
		p->all_slabs = sl->next_all;
		ax__san_unpoison(sl->st[0].lo, SLAB_STACKS * p->size);
		for (size_t i = 0; i < SLAB_STACKS; i++)
			ax__vg_stack_deregister(sl->st[i].vg_id);
		munmap(sl->map, sl->map_len);
		free(sl);
	}
	p->slabs = NULL;
}

int64_t ax__stack_resident(const struct ax__stack *s, unsigned char *vec)
{
	size_t pg = stack_page();
	/* a slab stack's first partial page is the stack below's top */
	uintptr_t lo = ((uintptr_t)s->lo + pg - 1) / pg * pg;
	size_t n = s->size / pg;
	if (mincore((void *)lo, n * pg, vec) != 0)
		return -errno;
	int64_t pages = 0;
	for (size_t i = 0; i < n; i++)
		pages += vec[i] & 1;
	return pages * (int64_t)pg;
}

int ax__core_stack_usage(ax_rt *rt, struct ax_stack_usage *u)
{
	unsigned char *vec = malloc(rt->stacks.size / stack_page() + 1);
	if (!vec)
		return -ENOMEM;
	memset(u, 0, sizeof *u);
	u->stack_size = rt->stacks.size;
	for (struct ax_task *t = rt->all; t; t = t->all_next) {
		if (t->state == AX_T_DONE || !t->stack)
			continue;
		int64_t r = ax__stack_resident(t->stack, vec);
		if (r < 0) {
			free(vec);
			return (int)r;
		}
		u->stacks++;
		u->resident_total += (uint64_t)r;
		if ((uint64_t)r > u->resident_max)
			u->resident_max = (uint64_t)r;
	}
	free(vec);
	return 0;
}
