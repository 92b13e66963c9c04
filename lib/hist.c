/* hist.c - the log-linear latency histogram: O(1) recording, merging and
 * percentile queries (see hist.h; the JSON form is in hist_json.c). */
#include "hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void axm_hist_init(struct axm_hist *h)
{
	memset(h, 0, sizeof *h);
}

struct axm_hist *axm_hist_new(void)
{
	return calloc(1, sizeof(struct axm_hist));
}

void axm_hist_free(struct axm_hist *h)
{
	free(h);
}

size_t axm_hist_index(int64_t v)
{
	if (v < (int64_t)AXM_HIST_SUB)
		return v < 0 ? 0 : (size_t)v;
	if (v > AXM_HIST_MAX_TRACKABLE)
		v = AXM_HIST_MAX_TRACKABLE;
	/* msb >= AXM_HIST_SUB_BITS here; the top AXM_HIST_SUB_BITS + 1 bits
	 * select the bucket inside the value's power-of-two range. */
	unsigned msb = 63u - (unsigned)__builtin_clzll((unsigned long long)v);
	unsigned shift = msb - AXM_HIST_SUB_BITS;
	return (size_t)shift * AXM_HIST_SUB + (size_t)((uint64_t)v >> shift);
}

int64_t axm_hist_lowest(size_t i)
{
	if (i < AXM_HIST_SUB)
		return (int64_t)i;
	unsigned shift = (unsigned)(i / AXM_HIST_SUB) - 1;
	return (int64_t)((AXM_HIST_SUB + i % AXM_HIST_SUB) << shift);
}

int64_t axm_hist_highest(size_t i)
{
	if (i < AXM_HIST_SUB)
		return (int64_t)i;
	unsigned shift = (unsigned)(i / AXM_HIST_SUB) - 1;
	return axm_hist_lowest(i) + (INT64_C(1) << shift) - 1;
}

void axm_hist_record_n(struct axm_hist *h, int64_t v, uint64_t n)
{
	if (n == 0)
		return;
	if (v < 0)
		v = 0;
	if (h->count == 0) {
		h->min = v;
		h->max = v;
	} else {
		if (v < h->min)
			h->min = v;
		if (v > h->max)
			h->max = v;
	}
	if (v > AXM_HIST_MAX_TRACKABLE)
		h->overflow += n;
	h->counts[axm_hist_index(v)] += n;
	h->count += n;
	h->sum += (double)v * (double)n;
}

void axm_hist_record(struct axm_hist *h, int64_t v)
{
	axm_hist_record_n(h, v, 1);
}

void axm_hist_merge(struct axm_hist *dst, const struct axm_hist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0) {
		dst->min = src->min;
		dst->max = src->max;
	} else {
		if (src->min < dst->min)
			dst->min = src->min;
		if (src->max > dst->max)
			dst->max = src->max;
	}
	for (size_t i = 0; i < AXM_HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->overflow += src->overflow;
	dst->sum += src->sum;
}

int64_t axm_hist_percentile(const struct axm_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (!(p > 0))
		return h->min;
	if (p >= 100)
		return h->max;
	/* rank of the wanted value among the sorted samples, 1-based */
	double r = ceil(p / 100.0 * (double)h->count);
	uint64_t rank = r < 1 ? 1 : (uint64_t)r;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (size_t i = 0; i < AXM_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			int64_t v = axm_hist_highest(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double axm_hist_mean(const struct axm_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
