/* test_hist_json.c - unit test of the histogram's JSON form
 * (lib/hist_json.c): round trip, merging after a round trip as run does
 * across processes, and rejection of malformed or foreign layouts. */
#include "hist.h"

#include <stdio.h>
#include <string.h>

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

int main(void)
{
	struct axm_hist *a = axm_hist_new(), *b = axm_hist_new(), *c = axm_hist_new();
	for (int64_t v = 1; v < 5000000; v = v * 3 / 2 + 1)
		axm_hist_record_n(a, v, (uint64_t)(v % 7 + 1));
	axm_hist_record(a, AXM_HIST_MAX_TRACKABLE + 5); /* overflow survives too */

	/* round trip through text, as between a child and the parent */
	json_t *j = axm_hist_to_json(a);
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	json_error_t je;
	json_t *back = json_loads(txt, 0, &je);
	CHECK(back != NULL, "JSON does not parse back");
	CHECK(axm_hist_from_json(b, back) == 0, "from_json failed");
	CHECK(memcmp(a->counts, b->counts, sizeof a->counts) == 0, "buckets differ");
	CHECK(a->count == b->count && a->min == b->min && a->max == b->max &&
	      a->overflow == b->overflow, "totals differ");
	CHECK(axm_hist_percentile(a, 99.9) == axm_hist_percentile(b, 99.9), "p99.9 differs");
	printf("test_hist_json: %zu bytes for %llu values\n", strlen(txt),
	       (unsigned long long)a->count);
	free(txt);

	/* the sparse list holds only non-empty buckets */
	size_t nonzero = 0;
	for (size_t i = 0; i < AXM_HIST_BUCKETS; i++)
		nonzero += a->counts[i] != 0;
	CHECK(json_array_size(json_object_get(back, "buckets")) == nonzero,
	      "bucket list not sparse");

	/* merge after the round trip equals merge before */
	axm_hist_merge(c, a);
	axm_hist_merge(c, a);
	axm_hist_merge(b, b);
	CHECK(memcmp(c->counts, b->counts, sizeof c->counts) == 0, "merge differs");

	/* foreign layouts and malformed input are refused */
	json_t *bad = json_deep_copy(back);
	json_object_set_new(bad, "sub_bucket_bits", json_integer(8));
	CHECK(axm_hist_from_json(c, bad) < 0, "other sub_bucket_bits accepted");
	json_decref(bad);
	bad = json_deep_copy(back);
	json_object_set_new(bad, "count", json_integer(1));
	CHECK(axm_hist_from_json(c, bad) < 0, "count mismatch accepted");
	json_decref(bad);
	bad = json_deep_copy(back);
	json_array_append_new(json_object_get(bad, "buckets"),
			      json_pack("[ii]", (int)AXM_HIST_BUCKETS, 1));
	CHECK(axm_hist_from_json(c, bad) < 0, "bucket index out of range accepted");
	json_decref(bad);
	bad = json_pack("{s:s}", "layout", "hdr");
	CHECK(axm_hist_from_json(c, bad) < 0, "garbage accepted");
	json_decref(bad);

	/* an empty histogram round-trips */
	axm_hist_init(c);
	j = axm_hist_to_json(c);
	CHECK(axm_hist_from_json(b, j) == 0 && b->count == 0, "empty round trip");
	json_decref(j);

	json_decref(back);
	axm_hist_free(a);
	axm_hist_free(b);
	axm_hist_free(c);
	printf("test_hist_json: %d checks, %d failed\n", checks, failures);
	return failures ? 1 : 0;
}
