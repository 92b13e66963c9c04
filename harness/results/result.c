/* result.c - the document of `axbench run` and its cells: classifies each
 * repetition (ok, check_failed, error, timeout, crash) from what its
 * children left and derives its metrics. */
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
		"measured", "stats", "metrics", "destroy_result", "cpus", "workers",
		"per_worker", "target", "backend", NULL };
	static const char *const lg_keys[] = { "mode", "connections", "pipeline", "size",
		"measured", "warmup_round_trips", "rusage", "saturated", "open_loop",
		"idle", "measure_start_late_s", "cpus", "threads", "per_thread", "fault", NULL };
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
			/* multi-worker runtimes (work stealing) */
			if (num(st, "workers") > 0) {
				axb_metric_set(m, "steals_per_msg", rt > 0 ? num(st, "steals") / rt : NAN, "count", 0);
				axb_metric_set(m, "parks_per_msg", rt > 0 ? num(st, "parks") / rt : NAN, "count", 0);
				axb_metric_set(m, "wakes_remote_per_msg", rt > 0 ? num(st, "wakes_remote") / rt : NAN, "count", 0);
				axb_metric_set(m, "hops_per_msg", rt > 0 ? num(st, "hops") / rt : NAN, "count", 0);
			}
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
	 * its own CPUs busy. Shared CPUs (same, or overlapping sets): when
	 * they are busy and the load generator takes at least the server's
	 * share. */
	bool sat, shared = !strcmp(in->pin->mode, "same");
	for (int i = 0; i < in->pin->server.n; i++)
		shared |= axb_cpus_has(&in->pin->load, in->pin->server.cpu[i]);
	if (shared)
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

/* rpc_fanout on an external target: the harness's backend counted the
 * calls the server made; each answered request needs `fanout` of them,
 * and no request makes more (the requests sent bound it). True, with the
 * message, when the count is off. */
static bool backend_short(const struct axb_rep_in *in, char *msg, size_t n)
{
	const json_t *b = json_object_get(in->server.result, "backend");
	const json_t *lr = in->loadgen.result;
	if (!json_is_object(b) || !json_object_get(lr, "responses"))
		return false;
	double calls = num(b, "calls"), fanout = num(b, "fanout");
	double resp = num(lr, "responses"), req = num(lr, "requests");
	if (calls >= resp * fanout && calls <= req * fanout)
		return false;
	char want[96];
	if (req > resp)
		snprintf(want, sizeof want, "%.0f to %.0f", resp * fanout, req * fanout);
	else
		snprintf(want, sizeof want, "%.0f", resp * fanout);
	snprintf(msg, n, "server: its backend received %.0f calls for %.0f answered "
		 "requests at fanout %.0f (expected %s): %s", calls, resp, fanout, want,
		 calls < resp * fanout ? "requests were answered without their fan-out"
				       : "more calls than the requests allow");
	return true;
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
		/* a broken result writer: nothing it reported can be trusted */
		const struct axb_outcome *o = outs[i];
		if (o->bad_output) {
			*role = o->role;
			snprintf(msg, n, "%s wrote %s", o->role, o->bad_output);
			return "error";
		}
	}
	for (size_t i = 0; i < k; i++) {
		const struct axb_outcome *o = outs[i];
		/* (one that said why in an error event is reported below) */
		if (net && o == &in->server && o->exited && !o->ready &&
		    !o->killed && !o->error) {
			*role = o->role;
			if (WIFEXITED(o->wstatus))
				snprintf(msg, n, "the server exited with status %d "
					 "before it reported ready", WEXITSTATUS(o->wstatus));
			else
				snprintf(msg, n, "the server exited before it "
					 "reported ready");
			return "error";
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
	if (!*role && net && backend_short(in, msg, n)) {
		*role = "server";
		return "check_failed";
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
	 * processes used (rusage of the children, whole lives), as a share of
	 * the time those CPUs' counters advanced. /proc/stat counts in clock
	 * ticks (10 ms), each field rounded on its own and read at other
	 * moments than the wall clock: busy time over wall time could exceed
	 * 1 on short repetitions ("107% busy"). Over the counters' own total
	 * the share is at most 1 by construction; it is capped all the same. */
	json_t *mach = axb_cpuload_delta_json(&in->load0, &in->load1);
	json_t *busy = json_object_get(mach, "busy_s");
	json_t *tot = json_object_get(mach, "total_s");
	double bsum = 0, own = 0, tsum = 0;
	for (size_t i = 0; i < json_array_size(busy); i++) {
		bsum += json_number_value(json_array_get(busy, i));
		tsum += json_number_value(json_array_get(tot, i));
	}
	const struct axb_outcome *kids[3] = { &in->server, &in->loadgen, &in->local };
	for (int i = 0; i < 3; i++) {
		const json_t *ru = json_object_get(kids[i]->result, "rusage");
		own += num(ru, "user_s") + num(ru, "sys_s");
	}
	double others = bsum > own ? bsum - own : 0;
	double cap = tsum > 0 ? tsum : in->wall_s * (double)json_array_size(busy);
	double share = cap > 0 ? others / cap : NAN;
	if (share > 1)
		share = 1;
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
