/* test_hist.c - unit test of the log-linear histogram (lib/hist.c):
 * bucket layout, the 1% relative error bound from 1 ns to one hour,
 * percentiles, merging, overflow and edge values. */
#include "hist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		checks++;                                                 \
		if (!(cond)) {                                            \
			failures++;                                       \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                         \
			fprintf(stderr, __VA_ARGS__);                     \
			fputc('\n', stderr);                              \
		}                                                         \
	} while (0)

/* Deterministic xorshift so that runs repeat. */
static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_layout(void)
{
	/* buckets tile the range without gaps or overlaps */
	for (size_t i = 0; i < AXM_HIST_BUCKETS; i++) {
		int64_t lo = axm_hist_lowest(i), hi = axm_hist_highest(i);
		CHECK(lo <= hi, "bucket %zu: [%lld, %lld]", i, (long long)lo, (long long)hi);
		CHECK(axm_hist_index(lo) == i, "index(lowest(%zu)) = %zu", i, axm_hist_index(lo));
		CHECK(axm_hist_index(hi) == i, "index(highest(%zu)) = %zu", i, axm_hist_index(hi));
		if (i + 1 < AXM_HIST_BUCKETS)
			CHECK(axm_hist_lowest(i + 1) == hi + 1, "gap after bucket %zu", i);
		/* width relative to the smallest value: the error bound */
		if (lo > 0)
			CHECK((double)(hi - lo) / (double)lo <= 1.0 / 128 + 1e-12,
			      "bucket %zu too wide: [%lld, %lld]", i, (long long)lo,
			      (long long)hi);
	}
	CHECK(axm_hist_highest(AXM_HIST_BUCKETS - 1) == AXM_HIST_MAX_TRACKABLE,
	      "last bucket ends at %lld", (long long)axm_hist_highest(AXM_HIST_BUCKETS - 1));
	CHECK(AXM_HIST_MAX_TRACKABLE >= INT64_C(3600) * 1000000000,
	      "range does not reach one hour");
	CHECK(axm_hist_index(-5) == 0, "negative value not in bucket 0");
	CHECK(axm_hist_index(INT64_MAX) == AXM_HIST_BUCKETS - 1, "huge value not clamped");
}

/* Every value from 1 ns to one hour is reported within 1%. */
static void test_relative_error(void)
{
	struct axm_hist *h = axm_hist_new();
	double worst = 0;
	const double top = 3600e9;
	for (int k = 0; k < 200000; k++) {
		/* log-uniform over [1, 1h], plus exact powers of two and their
		 * neighbours, where bucket boundaries fall */
		int64_t v;
		if (k < 3 * 42) {
			int64_t p = INT64_C(1) << (k / 3);
			v = p + (k % 3) - 1;
			if (v < 1)
				v = 1;
		} else {
			double u = (double)(next_rand() >> 11) / 9007199254740992.0;
			v = (int64_t)exp(u * log(top));
		}
		if ((double)v > top)
			v = (int64_t)top;
		axm_hist_init(h);
		axm_hist_record(h, v);
		/* a much larger second value, so that the answer is the bucket's
		 * upper edge and not clamped to the exact maximum */
		axm_hist_record(h, 4 * v + 1000);
		int64_t got = axm_hist_percentile(h, 50);
		double err = fabs((double)got - (double)v) / (double)v;
		if (err > worst)
			worst = err;
		CHECK(err <= 0.01, "value %lld reported as %lld (%.4f%%)", (long long)v,
		      (long long)got, err * 100);
	}
	printf("test_hist: worst relative error over 1 ns .. 1 h: %.4f%%\n", worst * 100);
	axm_hist_free(h);
}

static void test_percentiles(void)
{
	struct axm_hist *h = axm_hist_new();
	CHECK(axm_hist_percentile(h, 50) == 0, "empty histogram p50 not 0");
	for (int64_t v = 1; v <= 100000; v++)
		axm_hist_record(h, v);
	CHECK(h->count == 100000, "count %llu", (unsigned long long)h->count);
	CHECK(h->min == 1 && h->max == 100000, "min %lld max %lld", (long long)h->min,
	      (long long)h->max);
	static const double ps[] = { 50, 90, 99, 99.9, 99.99 };
	int64_t prev = 0;
	for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
		int64_t got = axm_hist_percentile(h, ps[i]);
		double want = ps[i] * 1000;
		CHECK(fabs((double)got - want) / want <= 0.01, "p%g = %lld, want ~%.0f",
		      ps[i], (long long)got, want);
		CHECK(got >= prev, "percentiles not monotonic at p%g", ps[i]);
		prev = got;
	}
	CHECK(axm_hist_percentile(h, 100) == 100000, "p100 is not the max");
	CHECK(axm_hist_percentile(h, 0) == 1, "p0 is not the min");
	CHECK(fabs(axm_hist_mean(h) - 50000.5) < 1e-6, "mean %f", axm_hist_mean(h));

	/* a single sample is every percentile, exactly */
	axm_hist_init(h);
	axm_hist_record(h, 123456789);
	CHECK(axm_hist_percentile(h, 50) == 123456789, "single p50 %lld",
	      (long long)axm_hist_percentile(h, 50));
	CHECK(axm_hist_percentile(h, 99.99) == 123456789, "single p99.99");

	/* record_n is n records */
	struct axm_hist *g = axm_hist_new();
	axm_hist_init(h);
	axm_hist_record_n(h, 777, 5);
	axm_hist_record_n(h, 10, 0);
	for (int i = 0; i < 5; i++)
		axm_hist_record(g, 777);
	CHECK(memcmp(h, g, sizeof *h) == 0, "record_n differs from n records");
	axm_hist_free(g);
	axm_hist_free(h);
}

static void test_merge(void)
{
	struct axm_hist *a = axm_hist_new(), *b = axm_hist_new(), *all = axm_hist_new();
	for (int i = 0; i < 50000; i++) {
		int64_t v = (int64_t)(next_rand() % 10000000) + 1;
		axm_hist_record(i % 2 ? a : b, v);
		axm_hist_record(all, v);
	}
	axm_hist_merge(a, b);
	CHECK(a->count == all->count && a->min == all->min && a->max == all->max,
	      "merged totals differ");
	CHECK(memcmp(a->counts, all->counts, sizeof a->counts) == 0,
	      "merged buckets differ");
	CHECK(axm_hist_percentile(a, 99) == axm_hist_percentile(all, 99), "merged p99 differs");

	/* merging into and from an empty histogram */
	struct axm_hist *e = axm_hist_new();
	axm_hist_merge(e, all);
	CHECK(e->min == all->min && e->max == all->max && e->count == all->count,
	      "merge into empty");
	axm_hist_init(b);
	axm_hist_merge(e, b);
	CHECK(e->count == all->count, "merging an empty histogram changed counts");
	axm_hist_free(e);
	axm_hist_free(a);
	axm_hist_free(b);
	axm_hist_free(all);
}

static void test_overflow(void)
{
	struct axm_hist *h = axm_hist_new();
	int64_t big = AXM_HIST_MAX_TRACKABLE + 12345;
	axm_hist_record(h, 5);
	axm_hist_record(h, big);
	axm_hist_record(h, -3);
	CHECK(h->overflow == 1, "overflow %llu", (unsigned long long)h->overflow);
	CHECK(h->max == big, "exact max lost: %lld", (long long)h->max);
	CHECK(h->min == 0, "negative not clamped to 0: %lld", (long long)h->min);
	CHECK(axm_hist_percentile(h, 100) == big, "p100 is not the exact max");
	CHECK(h->counts[AXM_HIST_BUCKETS - 1] == 1, "overflow not in the last bucket");
	axm_hist_free(h);
}

int main(void)
{
	test_layout();
	test_relative_error();
	test_percentiles();
	test_merge();
	test_overflow();
	printf("test_hist: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
