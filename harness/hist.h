/*
 * hist.h - log-linear latency histogram (HdrHistogram-style).
 *
 * Layout "loglinear-v1": values are integers (nanoseconds by convention).
 * Values below 2 * AX_HIST_SUB (256) each have their own bucket; above, every
 * power-of-two range [2^k, 2^(k+1)) is split into AX_HIST_SUB (128) equal
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
#ifndef AXB_HIST_H
#define AXB_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define AX_HIST_SUB_BITS 7
#define AX_HIST_SUB (1u << AX_HIST_SUB_BITS)
#define AX_HIST_TOP_BIT 42 /* values < 2^42 are represented exactly */
#define AX_HIST_BUCKETS ((AX_HIST_TOP_BIT - AX_HIST_SUB_BITS + 1) * AX_HIST_SUB)
#define AX_HIST_MAX_TRACKABLE ((INT64_C(1) << AX_HIST_TOP_BIT) - 1)
#define AX_HIST_LAYOUT "loglinear-v1"

struct ax_hist {
	uint64_t count;    /* values recorded */
	uint64_t overflow; /* values above AX_HIST_MAX_TRACKABLE (clamped) */
	int64_t min, max;  /* exact extremes; meaningless while count == 0 */
	double sum;        /* for the mean, reported beside percentiles only */
	uint64_t counts[AX_HIST_BUCKETS];
};

/* Reset h to empty. */
void ax_hist_init(struct ax_hist *h);

/* Allocate an empty histogram (about 37 KiB). Returns NULL on ENOMEM. */
struct ax_hist *ax_hist_new(void);
void ax_hist_free(struct ax_hist *h);

/* The bucket of value v (negative values count as 0). */
size_t ax_hist_index(int64_t v);

/* The smallest and largest value that map to bucket i. */
int64_t ax_hist_lowest(size_t i);
int64_t ax_hist_highest(size_t i);

/* Record one value, or n copies of it. O(1). */
void ax_hist_record(struct ax_hist *h, int64_t v);
void ax_hist_record_n(struct ax_hist *h, int64_t v, uint64_t n);

/* Add every count of src to dst. */
void ax_hist_merge(struct ax_hist *dst, const struct ax_hist *src);

/* The value at percentile p (0..100): the highest value of the bucket
 * holding the ceil(p/100 * count)-th smallest value, clamped to the exact
 * [min, max]; p <= 0 gives min, p >= 100 gives max. 0 when empty. */
int64_t ax_hist_percentile(const struct ax_hist *h, double p);

/* The mean of the recorded values, 0 when empty. */
double ax_hist_mean(const struct ax_hist *h);

/* Serialise h to a new JSON object:
 *   {"layout":"loglinear-v1","sub_bucket_bits":7,"top_bit":42,"unit":"ns",
 *    "count":N,"overflow":N,"min":V,"max":V,"sum":S,
 *    "buckets":[[index,count],...]}          (non-empty buckets, ascending)
 * Returns NULL on ENOMEM. */
json_t *ax_hist_to_json(const struct ax_hist *h);

/* Parse a histogram written by ax_hist_to_json into h (overwritten).
 * Returns 0, or -EINVAL when the object is malformed or its layout differs. */
int ax_hist_from_json(struct ax_hist *h, const json_t *j);

/* A JSON object of the standard percentiles of h, in ns:
 * {"count","min","p50","p90","p99","p99_9","p99_99","max","mean"}. */
json_t *ax_hist_percentiles_json(const struct ax_hist *h);

#endif
