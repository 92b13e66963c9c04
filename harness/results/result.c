/* result.c - builds the result document: classifies each repetition (ok,
 * check_failed, error, timeout, crash), derives its metrics, aggregates a
 * cell's repetitions (median, confidence interval, merged histograms) and
 * prints the terminal summary table. */
#include "results.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ */
/* Document                                                            */
/* ------------------------------------------------------------------ */

json_t *axb_result_doc_new(json_t *command, json_t *config, json_t *env)
{
	json_t *doc = axb_doc_header("axbench-results", AXB_SCHEMA_VERSION, command, env);
	json_object_set_new(doc, "config", config);
	json_object_set_new(doc, "counts", json_object());
	json_object_set_new(doc, "cells", json_array());
	return doc;
}

void axb_result_doc_update(json_t *doc, struct axb_cell *cells, size_t n,
			   const char *status)
{
	axb_doc_status(doc, status);
	json_t *counts = json_object();
	size_t reps_done = 0, reps_planned = 0;
	for (size_t i = 0; i < n; i++) {
		const char *st = json_string_value(json_object_get(cells[i].obj, "status"));
		json_t *k = json_object_get(counts, st);
		json_object_set_new(counts, st, json_integer(k ? json_integer_value(k) + 1 : 1));
		reps_done += json_array_size(json_object_get(cells[i].obj, "reps"));
		reps_planned += (size_t)cells[i].reps_planned;
	}
	json_object_set_new(counts, "cells", json_integer((json_int_t)n));
	json_object_set_new(counts, "reps_done", json_integer((json_int_t)reps_done));
	json_object_set_new(counts, "reps_planned", json_integer((json_int_t)reps_planned));
	json_object_set_new(doc, "counts", counts);
}

json_t *axb_cell_new(const struct axb_cell *c)
{
	char id[1024];
	snprintf(id, sizeof id, "%s/%s/%s", c->impl.name, c->sc->name, c->label);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "runtime", json_string(c->impl.name));
	json_object_set_new(o, "runtime_kind", json_string(axb_impl_kind_name(&c->impl)));
	json_object_set_new(o, "scenario", json_string(c->sc->name));
	json_object_set_new(o, "kind", json_string(c->sc->kind == AXS_NET ? "net" : "local"));
	json_object_set_new(o, "protocol", c->sc->protocol && c->sc->kind == AXS_NET
			    ? json_string(c->sc->protocol) : json_null());
	json_object_set_new(o, "params", axb_params_json(c->sc, c->values));
	json_object_set_new(o, "label", json_string(c->label));
	json_object_set_new(o, "status", json_string(c->runnable ? "pending" : "unsupported"));
	json_object_set_new(o, "message", c->runnable ? json_null() : json_string(c->why));
	json_object_set_new(o, "reps_planned", json_integer(c->reps_planned));
	json_object_set_new(o, "timeout_s", json_real((double)c->timeout_ns / 1e9));
	json_object_set_new(o, "reps", json_array());
	json_object_set_new(o, "summary", json_null());
	return o;
}

/* ------------------------------------------------------------------ */
/* One repetition                                                      */
/* ------------------------------------------------------------------ */

static int status_rank(const char *s)
{
	static const char *const order[] = { "ok", "check_failed", "error",
					     "timeout", "crash" };
	for (int i = 0; i < 5; i++)
		if (!strcmp(s, order[i]))
			return i;
	return 0;
}


static double num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* The standard percentiles of a percentiles object as metrics. */
static void latency_metrics(json_t *m, const char *prefix, const json_t *lat)
{
	static const char *const keys[] = { "p50", "p90", "p99", "p99_9", "p99_99", "max" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		char name[96];
		snprintf(name, sizeof name, "%s_%s", prefix, keys[i]);
		axb_metric_set(m, name, num(lat, keys[i]), "ns", -1);
	}
}

/* Copy the named members of src (if present) into a new object. */
static json_t *pick(const json_t *src, const char *const *keys)
{
	json_t *o = json_object();
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(src, keys[i]);
		if (v)
			json_object_set(o, keys[i], v);
	}
	return o;
}

static void net_numbers(json_t *rep, const struct axb_rep_in *in)
{
	static const char *const srv_keys[] = { "engine_info", "serve_result", "rusage",
		"measured", "stats", "metrics", "destroy_result", NULL };
	static const char *const lg_keys[] = { "mode", "connections", "pipeline", "size",
		"measured", "warmup_round_trips", "rusage", "saturated", "open_loop",
		"idle", "measure_start_late_s", NULL };
	const json_t *sr = in->server.result, *lr = in->loadgen.result;
	const json_t *lm = json_object_get(lr, "measured");
	const json_t *sm = json_object_get(sr, "measured");
	const json_t *lgm = json_object_get(lr, "metrics");
	json_t *m = json_object();
	double rt = num(lm, "round_trips");
	const char *tunit = json_string_value(json_object_get(lm, "throughput_unit"));
	const char *name;
	json_t *v;

	/* the first metric is the cell's headline: throughput, or the load
	 * generator's own figure in modes without one (idle connections) */
	if (json_object_get(lm, "throughput_msgs_s"))
		axb_metric_set(m, "throughput", num(lm, "throughput_msgs_s"),
		       tunit ? tunit : "msgs/s", +1);
	if (json_object_get(lm, "throughput_mib_s"))
		axb_metric_set(m, "throughput_mib", num(lm, "throughput_mib_s"), "MiB/s", +1);
	json_object_foreach((json_t *)lgm, name, v)
		json_object_set(m, name, v);
	axb_metric_set(m, "round_trips", rt, "count", 0);
	/* open loop: latency from the intended send time; the uncorrected
	 * figures (from the actual send time) beside it */
	latency_metrics(m, "latency", json_object_get(lr, "latency"));
	if (json_object_get(lr, "latency_uncorrected"))
		latency_metrics(m, "latency_uncorrected",
				json_object_get(lr, "latency_uncorrected"));
	double scpu = 0;
	if (json_is_object(sm)) {
		double wall = num(sm, "wall_s");
		scpu = num(sm, "user_s") + num(sm, "sys_s");
		axb_metric_set(m, "server_cpu_us_per_msg", rt > 0 ? scpu * 1e6 / rt : NAN, "us", -1);
		axb_metric_set(m, "server_cpu_util", num(sm, "cpu_util"), "ratio", 0);
		axb_metric_set(m, "server_sys_share", scpu > 0 ? num(sm, "sys_s") / scpu : NAN, "ratio", 0);
		axb_metric_set(m, "server_vcsw_per_s", wall > 0 ? num(sm, "nvcsw") / wall : NAN, "1/s", 0);
		axb_metric_set(m, "server_ivcsw_per_s", wall > 0 ? num(sm, "nivcsw") / wall : NAN, "1/s", 0);
		const json_t *st = json_object_get(sm, "stats");
		if (json_is_object(st)) {
			double it = num(st, "loop_iterations");
			axb_metric_set(m, "loop_iterations_per_msg", rt > 0 ? it / rt : NAN, "count", 0);
			axb_metric_set(m, "events_per_iteration", it > 0 ? num(st, "events") / it : NAN, "count", 0);
			axb_metric_set(m, "switches_per_msg", rt > 0 ? num(st, "switches") / rt : NAN, "count", 0);
		}
	}
	axb_metric_set(m, "server_maxrss_kib", num(json_object_get(sr, "rusage"), "maxrss_kb"), "KiB", -1);
	axb_metric_set(m, "loadgen_cpu_util", num(lm, "cpu_util"), "ratio", 0);
	axb_metric_set(m, "loadgen_cpu_us_per_msg", num(lm, "cpu_us_per_msg"), "us", 0);
	/* messages per CPU-second of server and load generator together: a
	 * cost, so it barely moves when other work takes CPU time from the
	 * pair, unlike the rate (docs/harness.md, "Repeatability") */
	double lcpu = num(lm, "user_s") + num(lm, "sys_s");
	if (json_is_object(sm) && json_object_get(lm, "throughput_msgs_s"))
		axb_metric_set(m, "msgs_per_cpu_s", scpu + lcpu > 0 ? rt / (scpu + lcpu) : NAN,
		       "msgs/cpu-s", +1);
	json_object_set_new(rep, "metrics", m);

	/* Split pinning: the load generator is the bottleneck when it keeps
	 * its own CPU busy. Same CPU: when the shared CPU is busy and the
	 * load generator takes at least the server's share. */
	bool sat;
	if (!strcmp(in->pin->mode, "same"))
		sat = json_is_object(sm) &&
		      num(lm, "cpu_util") + num(sm, "cpu_util") >= 0.9 &&
		      num(lm, "cpu_util") >= num(sm, "cpu_util");
	else
		sat = json_is_true(json_object_get(lr, "saturated"));
	json_object_set_new(rep, "loadgen_saturated", json_boolean(sat));
	json_object_set(rep, "latency", json_object_get(lr, "latency"));
	json_object_set(rep, "histogram", json_object_get(lr, "histogram"));
	if (json_object_get(lr, "latency_uncorrected")) {
		json_object_set(rep, "latency_uncorrected",
				json_object_get(lr, "latency_uncorrected"));
		json_object_set(rep, "histogram_uncorrected",
				json_object_get(lr, "histogram_uncorrected"));
		json_object_set(rep, "rate_sustained", json_object_get(lr, "rate_sustained"));
	}
	json_object_set(rep, "engine_info", json_object_get(sr, "engine_info"));
	/* machine-wide, over the whole repetition: loopback loss explains
	 * latency tails of 200 ms and more (retransmission timeouts) */
	json_t *kn = axb_netc_delta_json(&in->net0, &in->net1);
	axb_metric_set(m, "tcp_retransmits", (double)json_integer_value(
		json_object_get(kn, "tcp_retrans_segs")), "count", -1);
	json_object_set_new(rep, "kernel_net", kn);
	json_object_set_new(rep, "server", pick(sr, srv_keys));
	json_object_set_new(rep, "loadgen", pick(lr, lg_keys));
}

static void local_numbers(json_t *rep, const struct axb_rep_in *in)
{
	const json_t *r = in->local.result;
	const json_t *meas = json_object_get(r, "measured");
	json_t *m = json_deep_copy(json_object_get(r, "metrics"));
	if (!json_is_object(m)) {
		json_decref(m);
		m = json_object();
	}
	json_t *lat = json_object();
	const char *name;
	json_t *hj;
	json_object_foreach(json_object_get(r, "histograms"), name, hj) {
		struct axm_hist *h = axm_hist_new();
		if (h && !axm_hist_from_json(h, hj)) {
			json_t *p = axm_hist_percentiles_json(h);
			latency_metrics(m, name, p);
			json_object_set_new(lat, name, p);
		}
		axm_hist_free(h);
	}
	axb_metric_set(m, "wall_s", num(meas, "wall_s"), "s", 0);
	axb_metric_set(m, "cpu_s", num(meas, "user_s") + num(meas, "sys_s"), "s", -1);
	axb_metric_set(m, "maxrss_kib", num(json_object_get(r, "rusage"), "maxrss_kb"), "KiB", -1);
	json_object_set_new(rep, "metrics", m);
	json_object_set_new(rep, "latency", lat);
	json_object_set(rep, "histograms", json_object_get(r, "histograms"));
	json_object_set(rep, "engine_info", json_object_get(r, "engine_info"));
	json_object_set(rep, "stats", json_object_get(r, "stats"));
}

/* Decide a repetition's status from what its children left. */
static const char *classify(const struct axb_rep_in *in, bool net,
			    const char **role, char *msg, size_t n)
{
	const struct axb_outcome *outs[2];
	size_t k = 0;
	char sig[32];

	if (net) {
		outs[k++] = &in->server;
		if (in->loadgen.role)
			outs[k++] = &in->loadgen;
	} else {
		outs[k++] = &in->local;
	}
	*role = NULL;
	if (in->spawn_error) {
		snprintf(msg, n, "cannot start a child process: %s", strerror(-in->spawn_error));
		return "error";
	}
	for (size_t i = 0; i < k; i++) {
		const struct axb_outcome *o = outs[i];
		if (o->exited && WIFSIGNALED(o->wstatus) && !o->killed) {
			*role = o->role;
			snprintf(msg, n, "%s killed by %s%s", o->role,
				 axb_signal_name(WTERMSIG(o->wstatus), sig, sizeof sig),
				 WCOREDUMP(o->wstatus) ? " (core dumped)" : "");
			return "crash";
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct axb_outcome *o = outs[i];
		if (o->killed && o->kill_reason) {
			*role = o->role;
			snprintf(msg, n, "%s", o->kill_reason);
			return "timeout";
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct axb_outcome *o = outs[i];
		if (o->exited && !o->result && !o->error && !o->killed) {
			*role = o->role;
			if (WIFEXITED(o->wstatus) && WEXITSTATUS(o->wstatus)) {
				snprintf(msg, n, "%s exited with status %d without a result",
					 o->role, WEXITSTATUS(o->wstatus));
				return "crash";
			}
			snprintf(msg, n, "%s exited without a result", o->role);
			return "error";
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct axb_outcome *o = outs[i];
		if (o->result && o->exited && WIFEXITED(o->wstatus) &&
		    WEXITSTATUS(o->wstatus)) {
			/* e.g. LeakSanitizer after a clean run: a bug all the same */
			*role = o->role;
			snprintf(msg, n, "%s exited with status %d after its result "
				 "(see its stderr)", o->role, WEXITSTATUS(o->wstatus));
			return "error";
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct axb_outcome *o = outs[i];
		if (o->error) {
			*role = o->role;
			snprintf(msg, n, "%s", json_string_value(json_object_get(o->error, "error")));
			return "error";
		}
	}
	if (net && json_is_true(json_object_get(in->loadgen.result, "stalled"))) {
		double late = num(in->loadgen.result, "measure_start_late_s");
		*role = "server";
		if (late > 0.05) {
			/* the phase was over before the load generator could
			 * start it: the machine, not the server */
			*role = "loadgen";
			snprintf(msg, n, "no round trip completed in the measured phase: "
				 "the load generator started it %.0f ms late (kept off "
				 "its CPU: is the machine busy?)", late * 1e3);
			return "error";
		}
		snprintf(msg, n, "no round trip completed in the measured phase "
			 "(server stalled or far too slow for this duration)");
		return "error";
	}
	if (net && in->server_died && !json_is_false(json_object_get(
		    json_object_get(in->server.result, "check"), "passed"))) {
		*role = "server";
		snprintf(msg, n, "the server exited while under load");
		return "error";
	}
	size_t off = 0;
	msg[0] = 0;
	for (size_t i = 0; i < k; i++) {
		const json_t *chk = json_object_get(outs[i]->result, "check");
		if (!json_is_false(json_object_get(chk, "passed")))
			continue;
		if (!*role)
			*role = outs[i]->role;
		const char *m = json_string_value(json_object_get(chk, "message"));
		int w = snprintf(msg + off, n - off, "%s%s: %s", off ? "; " : "",
				 outs[i]->role, m ? m : "check failed");
		if (w > 0 && (size_t)w < n - off)
			off += (size_t)w;
	}
	if (*role)
		return "check_failed";
	if (net && !in->loadgen.result) {
		*role = "loadgen";
		snprintf(msg, n, "the load generator left no result");
		return "error";
	}
	return "ok";
}

json_t *axb_rep_build(const struct axb_cell *c, const struct axb_rep_in *in)
{
	bool net = c->sc->kind == AXS_NET;
	const char *role = NULL;
	char msg[1400], when[64];
	const char *status = classify(in, net, &role, msg, sizeof msg);

	axb_utc_iso(in->started_wall_ns, when, sizeof when);
	json_t *rep = json_pack("{s:i, s:s, s:s?, s:s?, s:s, s:f}",
				"rep", in->rep, "status", status, "role", role,
				"message", strcmp(status, "ok") ? msg : NULL,
				"started_utc", when, "wall_s", in->wall_s);
	if (!strcmp(status, "ok")) {
		if (net)
			net_numbers(rep, in);
		else
			local_numbers(rep, in);
	}
	/* Other work on the pinned CPUs: their busy time beyond what our
	 * processes used (rusage of the children, whole lives) */
	json_t *mach = axb_cpuload_delta_json(&in->load0, &in->load1);
	json_t *busy = json_object_get(mach, "busy_s");
	double bsum = 0, own = 0;
	for (size_t i = 0; i < json_array_size(busy); i++)
		bsum += json_number_value(json_array_get(busy, i));
	const struct axb_outcome *kids[3] = { &in->server, &in->loadgen, &in->local };
	for (int i = 0; i < 3; i++) {
		const json_t *ru = json_object_get(kids[i]->result, "rusage");
		own += num(ru, "user_s") + num(ru, "sys_s");
	}
	double others = bsum > own ? bsum - own : 0;
	double share = in->wall_s > 0 && json_array_size(busy)
		? others / (in->wall_s * (double)json_array_size(busy)) : NAN;
	json_object_set_new(mach, "others_cpu_s", json_real(others));
	json_object_set_new(mach, "others_share", axb_real(share));
	json_object_set_new(rep, "machine", mach);
	json_t *mm = json_object_get(rep, "metrics");
	if (mm)
		axb_metric_set(mm, "machine_others_share", share, "ratio", 0);
	json_t *errs = json_object();
	const struct axb_outcome *all[3] = { &in->server, &in->loadgen, &in->local };
	for (int i = 0; i < 3; i++)
		if (all[i]->role && all[i]->stderr_tail && *all[i]->stderr_tail)
			json_object_set_new(errs, all[i]->role, json_string(all[i]->stderr_tail));
	if (json_object_size(errs))
		json_object_set_new(rep, "stderr", errs);
	else
		json_decref(errs);
	return rep;
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

/* ------------------------------------------------------------------ */
/* Terminal summary                                                    */
/* ------------------------------------------------------------------ */

/* 12345678 -> "12.3M" */
static void fmt_si(double v, char *buf, size_t n)
{
	const char *u = "";
	double a = fabs(v);
	if (a >= 1e9) { v /= 1e9; u = "G"; }
	else if (a >= 1e6) { v /= 1e6; u = "M"; }
	else if (a >= 1e3) { v /= 1e3; u = "k"; }
	snprintf(buf, n, fabs(v) >= 100 ? "%.0f%s" : "%.3g%s", v, u);
}

static void fmt_ns(double ns, char *buf, size_t n)
{
	if (!isfinite(ns))
		snprintf(buf, n, "-");
	else if (ns >= 1e9)
		snprintf(buf, n, "%.3gs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, n, "%.3gms", ns / 1e6);
	else if (ns >= 1e3)
		snprintf(buf, n, "%.3gus", ns / 1e3);
	else
		snprintf(buf, n, "%.3gns", ns);
}

static double med(const json_t *summary, const char *name)
{
	json_t *m = json_object_get(json_object_get(summary, "metrics"), name);
	json_t *v = json_object_get(m, "median");
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Parameters that take more than one value among a scenario's cells. */
static void varying_label(struct axb_cell *cells, size_t n, const struct axb_cell *c,
			  char *buf, size_t bn)
{
	size_t off = 0;
	buf[0] = 0;
	for (size_t p = 0; p < c->sc->nparams; p++) {
		bool varies = false;
		for (size_t i = 0; i < n && !varies; i++)
			varies = cells[i].sc == c->sc && cells[i].values[p] != c->values[p];
		if (!varies)
			continue;
		char v[64];
		axs_param_format(&c->sc->params[p], c->values[p], v, sizeof v);
		int w = snprintf(buf + off, bn - off, "%s%s=%s", off ? "," : "",
				 c->sc->params[p].name, v);
		if (w < 0 || (size_t)w >= bn - off)
			break;
		off += (size_t)w;
	}
	if (!buf[0])
		snprintf(buf, bn, "-");
}

#define NCOL 9

void axb_summary_print(FILE *f, struct axb_cell *cells, size_t n)
{
	static const char *const head[NCOL] = { "runtime", "scenario", "params",
		"status", "result median [CI]", "p50", "p99", "cpu/msg", "rss" };
	char (*rows)[NCOL][192] = calloc(n ? n : 1, sizeof *rows);
	size_t w[NCOL];
	if (!rows)
		return;
	for (int k = 0; k < NCOL; k++)
		w[k] = strlen(head[k]);
	for (size_t i = 0; i < n; i++) {
		struct axb_cell *c = &cells[i];
		char (*r)[192] = rows[i];
		const char *st = json_string_value(json_object_get(c->obj, "status"));
		json_t *sum = json_object_get(c->obj, "summary");
		snprintf(r[0], 192, "%s", c->impl.name);
		snprintf(r[1], 192, "%s", c->sc->name);
		varying_label(cells, n, c, r[2], 192);
		snprintf(r[3], 192, "%s", st);
		for (int k = 4; k < NCOL; k++)
			snprintf(r[k], 192, "-");
		if (json_is_object(sum)) {
			const char *key = NULL, *unit = "";
			if (c->sc->kind == AXS_NET) {
				/* throughput, or the headline of a mode without it */
				json_t *ms = json_object_get(sum, "metrics");
				void *it = json_object_iter(ms);
				key = json_object_get(ms, "throughput") ? "throughput"
					: it ? json_object_iter_key(it) : NULL;
				unit = json_string_value(json_object_get(
					json_object_get(ms, key ? key : ""), "unit"));
				if (!unit || !strcmp(unit, "msgs/s"))
					unit = "msg/s";
				fmt_ns(med(sum, "latency_p50"), r[5], 192);
				fmt_ns(med(sum, "latency_p99"), r[6], 192);
				double us = med(sum, "server_cpu_us_per_msg");
				if (isfinite(us))
					snprintf(r[7], 192, "%.2fus", us);
				double kib = med(sum, "server_maxrss_kib");
				if (isfinite(kib))
					snprintf(r[8], 192, "%.1fMiB", kib / 1024);
			} else {
				/* a local scenario: its first own metric */
				void *it = json_object_iter(json_object_get(sum, "metrics"));
				key = it ? json_object_iter_key(it) : NULL;
				json_t *m = it ? json_object_iter_value(it) : NULL;
				unit = json_string_value(json_object_get(m, "unit"));
				double kib = med(sum, "maxrss_kib");
				if (isfinite(kib))
					snprintf(r[8], 192, "%.1fMiB", kib / 1024);
			}
			json_t *m = key ? json_object_get(json_object_get(sum, "metrics"), key) : NULL;
			if (m) {
				char a[16], b[16], d[16];
				fmt_si(num(m, "median"), a, sizeof a);
				fmt_si(num(m, "ci_low"), b, sizeof b);
				fmt_si(num(m, "ci_high"), d, sizeof d);
				if (c->sc->kind == AXS_NET && !strcmp(key, "throughput"))
					snprintf(r[4], 192, "%s [%s, %s] %s", a, b, d, unit);
				else
					snprintf(r[4], 192, "%.48s=%s [%s, %s]%s%.16s", key, a, b, d,
						 unit && *unit ? " " : "", unit ? unit : "");
			}
			if (json_is_true(json_object_get(sum, "loadgen_saturated")))
				strncat(r[4], " (loadgen-bound)", 192 - strlen(r[4]) - 1);
			if (json_is_false(json_object_get(sum, "rate_sustained")))
				strncat(r[4], " (rate not sustained)", 192 - strlen(r[4]) - 1);
		}
		for (int k = 0; k < NCOL; k++)
			if (strlen(r[k]) > w[k])
				w[k] = strlen(r[k]);
	}
	fputc('\n', f);
	size_t hidden = 0;
	for (size_t i = 0; i <= n; i++) {
		/* row 0 is the heading; text columns left, numbers right;
		 * unsupported cells (nothing ran) are only counted */
		if (i && !strcmp(rows[i - 1][3], "unsupported")) {
			hidden++;
			continue;
		}
		for (int k = 0; k < NCOL; k++)
			fprintf(f, k < 5 ? "%-*s%s" : "%*s%s", (int)w[k],
				i ? rows[i - 1][k] : head[k], k + 1 < NCOL ? "  " : "\n");
	}
	if (hidden)
		fprintf(f, "(%zu unsupported cell%s not shown: the implementation lacks "
			"a feature or does not serve the scenario)\n", hidden,
			hidden == 1 ? "" : "s");
	/* how much of the pinned CPUs other processes took, over all reps */
	double *sh = NULL;
	size_t nsh = 0, cap = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		json_t *rep;
		json_array_foreach(json_object_get(cells[i].obj, "reps"), k, rep) {
			json_t *v = json_object_get(json_object_get(rep, "machine"), "others_share");
			if (!json_is_number(v))
				continue;
			if (nsh == cap) {
				double *more = realloc(sh, (cap = cap ? 2 * cap : 64) * sizeof *sh);
				if (!more)
					break;
				sh = more;
			}
			sh[nsh++] = json_number_value(v);
		}
	}
	if (nsh) {
		struct axm_ci ci;
		axm_median_ci(sh, nsh, &ci);
		if (ci.median > 0.05)
			fprintf(f, "note: other processes kept the pinned CPUs %.0f%% busy "
				"during the repetitions (median; machine.others_share): "
				"expect noisy numbers\n", ci.median * 100);
	}
	free(sh);
	fflush(f);
	free(rows);
}
