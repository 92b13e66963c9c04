/* c_selftest.c - cases that test the conformance runner itself, not a
 * runtime: one of each outcome (pass, fail, crash, hang, leak-at-exit).
 * They exist only when AXBENCH_TEST_CONFORM_SELFTEST=1 is set (see
 * table.c), so that the end-to-end tests can check how each outcome is
 * detected and reported. */
#include "conform.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static intptr_t st_noop(void *arg)
{
	(void)arg;
	return 0;
}

static void case_pass(void)
{
	conf_run(st_noop, NULL);
}

static void case_fail(void)
{
	CONF_EQ(-125, -4, "a deliberate mismatch");
}

static void case_crash(void)
{
	signal(SIGSEGV, SIG_DFL); /* the default action, not a sanitizer's */
	raise(SIGSEGV);
}

static void case_hang(void)
{
	/* a grandchild that outlives its parent must be killed too */
	if (fork() == 0)
		for (;;)
			pause();
	for (;;)
		pause();
}

static void case_no_verdict(void)
{
	_exit(3);
}

const struct conf_case conf_cases_selftest[] = {
	{"selftest.pass", "runner self-test", "passes", 0, 10, 0, case_pass},
	{"selftest.fail", "runner self-test", "fails with expected/got", 0, 10, 0,
	 case_fail},
	{"selftest.crash", "runner self-test", "dies of SIGSEGV", 0, 10, 0,
	 case_crash},
	{"selftest.hang", "runner self-test", "hangs, with a grandchild", 0, 2, 0,
	 case_hang},
	{"selftest.no_verdict", "runner self-test", "exits 3 without a verdict",
	 0, 10, 0, case_no_verdict},
	{"selftest.unsupported", "runner self-test", "needs a feature no "
	 "runtime has", 1u << 31, 10, 0, case_pass},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};
