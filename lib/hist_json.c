/* hist_json.c - the histogram's compact JSON form (layout parameters plus a
 * sparse bucket list), so histograms merge across processes (see hist.h). */
#include "hist.h"

#include <errno.h>
#include <string.h>

json_t *axm_hist_to_json(const struct axm_hist *h)
{
	json_t *b = json_array();
	if (!b)
		return NULL;
	for (size_t i = 0; i < AXM_HIST_BUCKETS; i++) {
		if (!h->counts[i])
			continue;
		json_t *pair = json_pack("[II]", (json_int_t)i,
					 (json_int_t)h->counts[i]);
		if (!pair || json_array_append_new(b, pair)) {
			json_decref(b);
			return NULL;
		}
	}
	json_t *j = json_pack("{s:s, s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:f, s:o}",
			      "layout", AXM_HIST_LAYOUT,
			      "sub_bucket_bits", AXM_HIST_SUB_BITS,
			      "top_bit", AXM_HIST_TOP_BIT,
			      "unit", "ns",
			      "count", (json_int_t)h->count,
			      "overflow", (json_int_t)h->overflow,
			      "min", (json_int_t)(h->count ? h->min : 0),
			      "max", (json_int_t)(h->count ? h->max : 0),
			      "sum", h->sum,
			      "buckets", b);
	return j;
}

int axm_hist_from_json(struct axm_hist *h, const json_t *j)
{
	const char *layout = NULL;
	int bits = 0, top = 0;
	json_int_t count = 0, overflow = 0, min = 0, max = 0;
	double sum = 0;
	json_t *b = NULL;

	axm_hist_init(h);
	if (json_unpack((json_t *)j, "{s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:F, s:o}",
			"layout", &layout, "sub_bucket_bits", &bits,
			"top_bit", &top, "count", &count, "overflow", &overflow,
			"min", &min, "max", &max, "sum", &sum, "buckets", &b))
		return -EINVAL;
	if (strcmp(layout, AXM_HIST_LAYOUT) || bits != AXM_HIST_SUB_BITS ||
	    top != AXM_HIST_TOP_BIT || !json_is_array(b) || count < 0)
		return -EINVAL;
	uint64_t total = 0;
	size_t k;
	json_t *pair;
	json_array_foreach(b, k, pair) {
		json_int_t idx, n;
		if (json_unpack(pair, "[II]", &idx, &n) || idx < 0 ||
		    idx >= (json_int_t)AXM_HIST_BUCKETS || n < 0)
			return -EINVAL;
		h->counts[idx] += (uint64_t)n;
		total += (uint64_t)n;
	}
	if (total != (uint64_t)count)
		return -EINVAL;
	h->count = (uint64_t)count;
	h->overflow = (uint64_t)overflow;
	h->min = min;
	h->max = max;
	h->sum = sum;
	return 0;
}

json_t *axm_hist_percentiles_json(const struct axm_hist *h)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
			 "count", (json_int_t)h->count,
			 "min", (json_int_t)(h->count ? h->min : 0),
			 "p50", (json_int_t)axm_hist_percentile(h, 50),
			 "p90", (json_int_t)axm_hist_percentile(h, 90),
			 "p99", (json_int_t)axm_hist_percentile(h, 99),
			 "p99_9", (json_int_t)axm_hist_percentile(h, 99.9),
			 "p99_99", (json_int_t)axm_hist_percentile(h, 99.99),
			 "max", (json_int_t)(h->count ? h->max : 0),
			 "mean", axm_hist_mean(h));
}
