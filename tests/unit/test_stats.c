/* test_stats.c - unit test of the median and its distribution-free
 * confidence interval (lib/stats.c). */
#include "stats.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

static int failures, checks;

#define CHECK(cond, msg)                                                   \
	do {                                                               \
		checks++;                                                  \
		if (!(cond)) {                                             \
			failures++;                                        \
			fprintf(stderr, "%s:%d: %s (%s)\n", __FILE__, __LINE__, \
				msg, #cond);                               \
		}                                                          \
	} while (0)

static bool near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

int main(void)
{
	struct axm_ci ci;

	/* 5 repetitions: [min, max] at 1 - 2/32 = 93.75% */
	double five[] = { 5, 1, 4, 2, 3 };
	axm_median_ci(five, 5, &ci);
	CHECK(near(ci.median, 3) && near(ci.lo, 1) && near(ci.hi, 5), "n=5 interval");
	CHECK(near(ci.level, 0.9375), "n=5 level is 93.75%");
	CHECK(ci.lo_rank == 1 && ci.hi_rank == 5, "n=5 ranks");

	/* even count: the median is the mean of the middle two */
	double four[] = { 4, 1, 3, 2 };
	axm_median_ci(four, 4, &ci);
	CHECK(near(ci.median, 2.5), "n=4 median");
	CHECK(near(ci.level, 0.875), "n=4 level 1 - 2/16");

	/* 6: [x1, x6] at 1 - 2/64 = 96.9%, [x2, x5] would be 78% */
	double six[] = { 1, 2, 3, 4, 5, 6 };
	axm_median_ci(six, 6, &ci);
	CHECK(ci.lo_rank == 1 && ci.hi_rank == 6 && near(ci.level, 1 - 2.0 / 64), "n=6");

	/* 10: [x2, x9] at 97.85%; [x3, x8] is 89% */
	double ten[10];
	for (int i = 0; i < 10; i++)
		ten[i] = 10 - i;
	axm_median_ci(ten, 10, &ci);
	CHECK(ci.lo_rank == 2 && ci.hi_rank == 9, "n=10 ranks");
	CHECK(near(ci.lo, 2) && near(ci.hi, 9), "n=10 values");
	CHECK(fabs(ci.level - (1 - 2 * 11.0 / 1024)) < 1e-9, "n=10 level");

	/* 100: the textbook interval is [x40, x61] at >= 95% */
	double hundred[100];
	for (int i = 0; i < 100; i++)
		hundred[i] = i + 1;
	axm_median_ci(hundred, 100, &ci);
	CHECK(ci.lo_rank == 40 && ci.hi_rank == 61, "n=100 ranks");
	CHECK(ci.level >= 0.95 && ci.level < 0.97, "n=100 level");

	/* degenerate sizes */
	double one[] = { 7 };
	axm_median_ci(one, 1, &ci);
	CHECK(near(ci.median, 7) && near(ci.lo, 7) && near(ci.hi, 7) && ci.level == 0, "n=1");
	axm_median_ci(one, 0, &ci);
	CHECK(ci.n == 0, "n=0");

	printf("test_stats: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
