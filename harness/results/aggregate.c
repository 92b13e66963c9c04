/* aggregate.c - a cell's repetitions aggregated: its status (the worst of
 * its repetitions'), and for a cell whose repetitions are all ok each
 * metric's median with its confidence interval, and the merged histograms. */
#include "results.h"

#include <stdlib.h>
#include <string.h>

static int status_rank(const char *s)
{
	static const char *const order[] = { "ok", "check_failed", "error",
					     "timeout", "crash" };
	for (int i = 0; i < 5; i++)
		if (!strcmp(s, order[i]))
			return i;
	return 0;
}


/* ------------------------------------------------------------------ */
/* Aggregation                                                         */
/* ------------------------------------------------------------------ */

static const char *const numbers_keys[] = {
	"metrics", "latency", "histogram", "histograms", "server", "loadgen",
	"loadgen_saturated", "stats", "kernel_net", "latency_uncorrected",
	"histogram_uncorrected", "rate_sustained", NULL,
};

static json_t *merged_hist_json(json_t *reps, const char *key, const char *name)
{
	struct axm_hist *acc = axm_hist_new(), *h = axm_hist_new();
	size_t i;
	json_t *rep;
	json_t *out = NULL;
	if (!acc || !h)
		goto out;
	json_array_foreach(reps, i, rep) {
		json_t *hj = json_object_get(rep, key);
		if (name)
			hj = json_object_get(hj, name);
		if (hj && !axm_hist_from_json(h, hj))
			axm_hist_merge(acc, h);
	}
	out = axm_hist_percentiles_json(acc);
	json_object_set_new(out, "histogram", axm_hist_to_json(acc));
out:
	axm_hist_free(acc);
	axm_hist_free(h);
	return out;
}

static json_t *summarize(const struct axb_cell *c, json_t *reps)
{
	json_t *first = json_array_get(reps, 0);
	json_t *ms = json_object();
	const char *name;
	json_t *m0;
	size_t nreps = json_array_size(reps);
	double *v = calloc(nreps ? nreps : 1, sizeof *v);

	json_object_foreach(json_object_get(first, "metrics"), name, m0) {
		json_t *vals = json_array();
		size_t n = 0, i;
		json_t *rep;
		json_array_foreach(reps, i, rep) {
			json_t *x = json_object_get(json_object_get(json_object_get(rep, "metrics"),
								    name), "value");
			if (json_is_number(x)) {
				v[n++] = json_number_value(x);
				json_array_append_new(vals, json_real(json_number_value(x)));
			}
		}
		struct axm_ci ci;
		axm_median_ci(v, n, &ci);
		json_object_set_new(ms, name, json_pack(
			"{s:O, s:O, s:I, s:o, s:o, s:o, s:f, s:I, s:I, s:o}",
			"unit", json_object_get(m0, "unit"),
			"better", json_object_get(m0, "better"),
			"n", (json_int_t)n,
			"median", n ? axb_real(ci.median) : json_null(),
			"ci_low", n ? axb_real(ci.lo) : json_null(),
			"ci_high", n ? axb_real(ci.hi) : json_null(),
			"ci_level", ci.level,
			"ci_rank_low", (json_int_t)ci.lo_rank,
			"ci_rank_high", (json_int_t)ci.hi_rank,
			"values", vals));
	}
	free(v);
	json_t *s = json_pack("{s:I, s:o}", "reps", (json_int_t)nreps, "metrics", ms);
	if (c->sc->kind == AXS_NET) {
		json_object_set_new(s, "latency_merged", merged_hist_json(reps, "histogram", NULL));
		bool any_sat = false, open = false, all_sustained = true;
		size_t i;
		json_t *rep;
		json_array_foreach(reps, i, rep) {
			any_sat |= json_is_true(json_object_get(rep, "loadgen_saturated"));
			json_t *rs = json_object_get(rep, "rate_sustained");
			open |= rs != NULL;
			all_sustained &= !json_is_false(rs);
		}
		json_object_set_new(s, "loadgen_saturated", json_boolean(any_sat));
		if (open) {
			json_object_set_new(s, "latency_uncorrected_merged",
				merged_hist_json(reps, "histogram_uncorrected", NULL));
			json_object_set_new(s, "rate_sustained", json_boolean(all_sustained));
		}
	} else {
		json_t *hm = json_object();
		json_t *hj;
		json_object_foreach(json_object_get(first, "histograms"), name, hj)
			json_object_set_new(hm, name, merged_hist_json(reps, "histograms", name));
		json_object_set_new(s, "histograms_merged", hm);
	}
	return s;
}

void axb_cell_add_rep(struct axb_cell *c, json_t *rep)
{
	json_t *o = c->obj;
	json_t *reps = json_object_get(o, "reps");
	json_array_append_new(reps, rep);

	const char *worst = "ok";
	json_t *wmsg = NULL;
	json_t *counts = json_object();
	size_t i;
	json_t *r;
	json_array_foreach(reps, i, r) {
		const char *st = json_string_value(json_object_get(r, "status"));
		json_t *k = json_object_get(counts, st);
		json_object_set_new(counts, st, json_integer(k ? json_integer_value(k) + 1 : 1));
		if (status_rank(st) > status_rank(worst)) {
			worst = st;
			wmsg = json_object_get(r, "message");
		}
	}
	json_object_set_new(o, "rep_status", counts);
	json_object_set_new(o, "status", json_string(worst));
	if (wmsg)
		json_object_set_new(o, "message", json_string(json_string_value(wmsg)));
	else
		json_object_set_new(o, "message", json_null());
	if (strcmp(worst, "ok")) {
		/* a failed cell reports the failure and no numbers */
		json_array_foreach(reps, i, r)
			for (size_t k = 0; numbers_keys[k]; k++)
				json_object_del(r, numbers_keys[k]);
		json_object_set_new(o, "summary", json_null());
		return;
	}
	json_object_set_new(o, "summary", summarize(c, reps));
}

