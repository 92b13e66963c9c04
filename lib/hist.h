/*
 * hist.h - log-linear latency histogram (HdrHistogram-style).
 *
 * Layout "loglinear-v1": values are integers (nanoseconds by convention).
 * Values below 2 * AXM_HIST_SUB (256) each have their own bucket; above, every
 * power-of-two range [2^k, 2^(k+1)) is split into AXM_HIST_SUB (128) equal
 * buckets, so a bucket's width is at most 1/128 of its lowest value: any
 * value reported for a bucket is within 0.79% of every value recorded in it.
 * The range covered is 0 .. 2^42 - 1 ns (about 73 minutes); larger values
 * are clamped into the last bucket and counted in `overflow` (the exact
 * maximum is kept separately). Recording is O(1); histograms with the same
 * layout merge by adding counts; a histogram serialises to a compact JSON
 * object (layout parameters plus a sparse [[index, count], ...] list) so
 * that histograms from different processes can be merged.
 *
 * Not thread-safe: one histogram per thread, merged afterwards.
 */
#ifndef AXM_HIST_H
#define AXM_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define AXM_HIST_SUB_BITS 7
#define AXM_HIST_SUB (1u << AXM_HIST_SUB_BITS)
#define AXM_HIST_TOP_BIT 42 /* values < 2^42 are represented exactly */
#define AXM_HIST_BUCKETS ((AXM_HIST_TOP_BIT - AXM_HIST_SUB_BITS + 1) * AXM_HIST_SUB)
#define AXM_HIST_MAX_TRACKABLE ((INT64_C(1) << AXM_HIST_TOP_BIT) - 1)
#define AXM_HIST_LAYOUT "loglinear-v1"

struct axm_hist {
	uint64_t count;    /* values recorded */
	uint64_t overflow; /* values above AXM_HIST_MAX_TRACKABLE (clamped) */
	int64_t min, max;  /* exact extremes; meaningless while count == 0 */
	double sum;        /* for the mean, reported beside percentiles only */
	uint64_t counts[AXM_HIST_BUCKETS];
};

/* Reset h to empty. */
void axm_hist_init(struct axm_hist *h);

/* Allocate an empty histogram (about 37 KiB). Returns NULL on ENOMEM. */
struct axm_hist *axm_hist_new(void);
void axm_hist_free(struct axm_hist *h);

/* The bucket of value v (negative values count as 0). */
size_t axm_hist_index(int64_t v);

/* The smallest and largest value that map to bucket i. */
int64_t axm_hist_lowest(size_t i);
int64_t axm_hist_highest(size_t i);

/* Record one value, or n copies of it. O(1). */
void axm_hist_record(struct axm_hist *h, int64_t v);
void axm_hist_record_n(struct axm_hist *h, int64_t v, uint64_t n);

/* Add every count of src to dst. */
void axm_hist_merge(struct axm_hist *dst, const struct axm_hist *src);

/* The value at percentile p (0..100): the highest value of the bucket
 * holding the ceil(p/100 * count)-th smallest value, clamped to the exact
 * [min, max]; p <= 0 gives min, p >= 100 gives max. 0 when empty. */
int64_t axm_hist_percentile(const struct axm_hist *h, double p);

/* The mean of the recorded values, 0 when empty. */
double axm_hist_mean(const struct axm_hist *h);

/* Serialise h to a new JSON object:
 *   {"layout":"loglinear-v1","sub_bucket_bits":7,"top_bit":42,"unit":"ns",
 *    "count":N,"overflow":N,"min":V,"max":V,"sum":S,
 *    "buckets":[[index,count],...]}          (non-empty buckets, ascending)
 * Returns NULL on ENOMEM. */
json_t *axm_hist_to_json(const struct axm_hist *h);

/* Parse a histogram written by axm_hist_to_json into h (overwritten).
 * Returns 0, or -EINVAL when the object is malformed or its layout differs. */
int axm_hist_from_json(struct axm_hist *h, const json_t *j);

/* A JSON object of the standard percentiles of h, in ns:
 * {"count","min","p50","p90","p99","p99_9","p99_99","max","mean"}. */
json_t *axm_hist_percentiles_json(const struct axm_hist *h);

#endif
