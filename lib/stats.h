/*
 * stats.h - the statistics of repeated measurements: a median with a
 * distribution-free confidence interval. Part of the measurement library
 * (lib/), which knows nothing of ax, scenarios or the harness.
 */
#ifndef AXM_STATS_H
#define AXM_STATS_H

#include <stddef.h>

/* The coverage a confidence interval aims for. */
#define AXM_CI_TARGET 0.95

/* Median of n values with a distribution-free confidence interval
 * [x_(lo_rank), x_(hi_rank)] (1-based order statistics) whose coverage
 * `level` is the largest symmetric one >= AXM_CI_TARGET, or [min, max]
 * with its smaller true level when n is too small (n = 5: 93.75%).
 * v is not modified; with n == 0 every field is 0. */
struct axm_ci {
	size_t n;
	double median, lo, hi, level;
	size_t lo_rank, hi_rank;
};
void axm_median_ci(const double *v, size_t n, struct axm_ci *out);

#endif
