/* table.c - the conformance case table: the groups of cases in the order
 * they are run and shown, and lookup by case ID. */
#include "conform.h"

#include <stdlib.h>
#include <string.h>

static const struct conf_case *const conf_groups[] = {
	conf_cases_task,
	conf_cases_time,
	conf_cases_tcp,
	conf_cases_cancel,
	conf_cases_chan,
	conf_cases_xthread,
	conf_cases_pool,
	conf_cases_rt,
	conf_cases_mt,
	conf_cases_selftest, /* last: present only in self-test mode */
};

/* The runner's own tests (c_selftest.c) are visible only when
 * AXBENCH_TEST_CONFORM_SELFTEST=1. */
static size_t conf_ngroups(void)
{
	const char *st = getenv("AXBENCH_TEST_CONFORM_SELFTEST");
	size_t all = sizeof conf_groups / sizeof conf_groups[0];
	return st && !strcmp(st, "1") ? all : all - 1;
}

#define CONF_NGROUPS conf_ngroups()

size_t conf_case_count(void)
{
	size_t n = 0;
	for (size_t g = 0; g < CONF_NGROUPS; g++)
		for (const struct conf_case *c = conf_groups[g]; c->id; c++)
			n++;
	return n;
}

const struct conf_case *conf_case_at(size_t i)
{
	for (size_t g = 0; g < CONF_NGROUPS; g++)
		for (const struct conf_case *c = conf_groups[g]; c->id; c++)
			if (i-- == 0)
				return c;
	return NULL;
}

const struct conf_case *conf_case_find(const char *id)
{
	for (size_t g = 0; g < CONF_NGROUPS; g++)
		for (const struct conf_case *c = conf_groups[g]; c->id; c++)
			if (strcmp(c->id, id) == 0)
				return c;
	return NULL;
}
