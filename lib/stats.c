/* stats.c - the median of repetitions and its distribution-free confidence
 * interval from order statistics (see docs/harness.md, "Aggregation"). */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* P(B <= k) for B ~ Binomial(n, 1/2). */
static double binom_half_cdf(size_t n, size_t k)
{
	double sum = 0;
	for (size_t i = 0; i <= k && i <= n; i++)
		sum += exp(lgamma((double)n + 1) - lgamma((double)i + 1) -
			   lgamma((double)(n - i) + 1) - (double)n * log(2.0));
	return sum > 1 ? 1 : sum;
}

void axm_median_ci(const double *v, size_t n, struct axm_ci *out)
{
	memset(out, 0, sizeof *out);
	out->n = n;
	if (n == 0)
		return;
	double *s = malloc(n * sizeof *s);
	if (!s)
		abort();
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	out->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;

	/* [x_(j), x_(n+1-j)] covers the population median with probability
	 * P(j <= B <= n-j) = 1 - 2 P(B <= j-1), B ~ Bin(n, 1/2). Take the
	 * largest j whose coverage is still >= 95%; when even j = 1 falls
	 * short (n <= 5), use [min, max] and report its true level. */
	size_t j = 1;
	double level = n >= 2 ? 1 - 2 * binom_half_cdf(n, 0) : 0;
	for (size_t t = 2; t <= n / 2; t++) {
		double c = 1 - 2 * binom_half_cdf(n, t - 1);
		if (c < AXM_CI_TARGET)
			break;
		j = t;
		level = c;
	}
	out->lo = s[j - 1];
	out->hi = s[n - j];
	out->level = level;
	out->lo_rank = j;
	out->hi_rank = n + 1 - j;
	free(s);
}
