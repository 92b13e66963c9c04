/* cost.c - the cost of the abstraction: every engine's ax runtime against
 * its native version in one interleaved `axbench run` of tcp_echo, started
 * by the harness's one launcher, then paired by repetition. */
#include "ergo.h"
#include "proc.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* The cost of the abstraction: one interleaved `axbench run`          */
/* ------------------------------------------------------------------ */

/* Per repetition value of metric m of a cell, by repetition number. */
static double rep_value(json_t *cell, int rep, const char *m)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(cell, "reps"), i, r) {
		if (json_integer_value(json_object_get(r, "rep")) != rep ||
		    strcmp(json_string_value(json_object_get(r, "status")), "ok"))
			continue;
		json_t *v = json_object_get(json_object_get(json_object_get(r, "metrics"), m),
					    "value");
		return json_is_number(v) ? json_number_value(v) : NAN;
	}
	return NAN;
}

static double median_of(json_t *cell, const char *m)
{
	json_t *v = json_object_get(json_object_get(json_object_get(
		json_object_get(cell, "summary"), "metrics"), m), "median");
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of the per-repetition ratios ax / native (repetitions are
 * interleaved, so each pair ran minutes apart at most seconds). */
static double paired_ratio(json_t *ax, json_t *nat, const char *m, int reps)
{
	double r[1024];
	int n = 0;
	for (int k = 1; k <= reps && n < 1024; k++) {
		double a = rep_value(ax, k, m), b = rep_value(nat, k, m);
		if (isfinite(a) && isfinite(b) && b > 0)
			r[n++] = a / b;
	}
	if (!n)
		return NAN;
	qsort(r, (size_t)n, sizeof r[0], cmp_double);
	return n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
}

/* The run's own result file, kept beside the ergo file: FILE.json ->
 * FILE-run.json. */
static void run_path(const char *json, char *buf, size_t n)
{
	size_t len = strlen(json);
	if (len > 5 && !strcmp(json + len - 5, ".json"))
		len -= 5;
	snprintf(buf, n, "%.*s-run.json", (int)len, json);
}

/* The run's parameters: every tcp_echo parameter the profile might sweep
 * is pinned, so that each implementation is one closed-loop cell. */
static void measure_params(const struct axb_ergo *E, struct axb_ergo_argv *a, bool full)
{
	const struct axs_scenario *sc = axs_scenario_find("tcp_echo");
	const char *fixed[][2] = {
		{"size", "64"}, {"pipeline", "1"}, {"rate", "0"}, {"arrivals", "uniform"},
		{"duration", full ? "2s" : "1s"}, {"warmup", full ? "500ms" : "200ms"},
	};
	axb_ergo_av(a, "-p");
	axb_ergo_av(a, "connections=%d", E->connections);
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		if (!sc || axs_param_index(sc, fixed[i][0]) < 0)
			continue;
		axb_ergo_av(a, "-p");
		axb_ergo_av(a, "%s=%s", fixed[i][0], fixed[i][1]);
	}
}

/* One row of the cost table: engine's ax runtime against its native
 * version, from the cells of the run. */
static json_t *cost_row(const char *engine, json_t *ax, json_t *nat, int nreps,
			int connections)
{
	double ta = median_of(ax, "throughput"), tn = median_of(nat, "throughput");
	double pa = median_of(ax, "latency_p99"), pn = median_of(nat, "latency_p99");
	double ca = median_of(ax, "server_cpu_us_per_msg");
	double cn = median_of(nat, "server_cpu_us_per_msg");
	json_t *p = json_object();
	json_object_set_new(p, "engine", json_string(engine));
	json_object_set_new(p, "scenario", json_string("tcp_echo"));
	json_object_set_new(p, "connections", json_integer(connections));
	json_object_set_new(p, "ax_status", json_incref(json_object_get(ax, "status")));
	json_object_set_new(p, "native_status", json_incref(json_object_get(nat, "status")));
	json_object_set_new(p, "ax_throughput", axb_real(ta));
	json_object_set_new(p, "native_throughput", axb_real(tn));
	json_object_set_new(p, "throughput_ratio", axb_real(tn > 0 ? ta / tn : NAN));
	json_object_set_new(p, "throughput_ratio_paired",
			    axb_real(paired_ratio(ax, nat, "throughput", nreps)));
	json_object_set_new(p, "ax_p99_ns", axb_real(pa));
	json_object_set_new(p, "native_p99_ns", axb_real(pn));
	json_object_set_new(p, "p99_ratio", axb_real(pn > 0 ? pa / pn : NAN));
	json_object_set_new(p, "p99_ratio_paired",
			    axb_real(paired_ratio(ax, nat, "latency_p99", nreps)));
	json_object_set_new(p, "ax_cpu_us_per_msg", axb_real(ca));
	json_object_set_new(p, "native_cpu_us_per_msg", axb_real(cn));
	json_object_set_new(p, "cpu_ratio", axb_real(cn > 0 ? ca / cn : NAN));
	json_object_set_new(p, "meets_90pct", json_boolean(tn > 0 && ta / tn >= 0.9));
	return p;
}

/* Run every engine's ax runtime and native version in one interleaved
 * `axbench run` (its result file kept beside the ergo file), then pair
 * them. Returns the list of rows, and the run's description in *run. */
json_t *axb_ergo_measure(const struct axb_ergo *E, json_t **run)
{
	char runtimes[512] = "", tmp[PATH_MAX];
	struct axb_ergo_argv a = {.n = 0};
	bool full = !strcmp(E->profile, "full");
	int reps = E->reps ? E->reps : full ? 5 : 3;
	size_t off = 0;

	*run = json_null();
	for (size_t k = 0; k < axb_ergo_nengines; k++) {
		struct axb_impl x, n;
		char native[64], why[256];
		snprintf(native, sizeof native, "native-%s", axb_ergo_engines[k].name);
		if (axb_impl_find(axb_ergo_engines[k].name, &x) || axb_impl_find(native, &n) ||
		    !axb_impl_available(&x, why, sizeof why) ||
		    !axb_impl_available(&n, why, sizeof why))
			continue;
		off += (size_t)snprintf(runtimes + off, sizeof runtimes - off, "%s%s,%s",
					off ? "," : "", axb_ergo_engines[k].name, native);
	}
	if (!off) {
		axb_err("ergo: --measure: no engine has both an ax runtime and a native version");
		return json_null();
	}
	run_path(E->json_path, tmp, sizeof tmp);
	axb_ergo_av(&a, "axbench");
	axb_ergo_av(&a, "run");
	axb_ergo_av(&a, "--runtime");
	axb_ergo_av(&a, "%s", runtimes);
	axb_ergo_av(&a, "--scenario");
	axb_ergo_av(&a, "tcp_echo");
	measure_params(E, &a, full);
	axb_ergo_av(&a, "--profile");
	axb_ergo_av(&a, "%s", E->profile);
	axb_ergo_av(&a, "--reps");
	axb_ergo_av(&a, "%d", reps);
	axb_ergo_av(&a, "--json");
	axb_ergo_av(&a, "%s", tmp);
	json_t *cmd = json_array();
	for (size_t i = 0; i < a.n; i++)
		json_array_append_new(cmd, json_string(a.v[i]));
	fprintf(stderr, "axbench ergo: measuring the cost of the abstraction:");
	for (size_t i = 0; i < a.n; i++)
		fprintf(stderr, " %s", a.v[i]);
	fprintf(stderr, "\n");
	/* the run's own table goes to stderr: stdout is the ergo table */
	struct axb_spawn sp = {
		.role = "run", .argv = a.v, .out = AXB_SINK_STDERR, .err = AXB_SINK_INHERIT,
	};
	struct axb_child ch;
	int st = -1;
	int err = axb_child_start(&ch, &sp);
	if (!err) {
		/* the run is in a process group of its own: pass a Ctrl-C on,
		 * so that it stops and writes what it has, as it would alone */
		struct axb_child *one[1] = { &ch };
		if (axb_child_pump(one, 1, axb_mono_ns() + 86400 * INT64_C(1000000000),
				   axb_child_exited, &ch) == -EINTR)
			kill(ch.pid, axb_proc_interrupted());
		axb_child_finish(&ch);
		st = ch.wstatus;
		axb_child_free(&ch);
	}
	size_t len;
	char *txt = err ? NULL : axb_ergo_read_text(tmp, &len);
	json_error_t je;
	json_t *doc = txt ? json_loads(txt, 0, &je) : NULL;
	free(txt);
	if (!doc) {
		axb_err("ergo: --measure: the run produced no result (exit status %d)", st);
		json_decref(cmd);
		return json_null();
	}
	json_t *cells = json_object_get(doc, "cells");
	int nreps = (int)json_integer_value(json_object_get(json_object_get(doc, "config"), "reps"));
	json_t *rows = json_array();
	for (size_t k = 0; k < axb_ergo_nengines; k++) {
		char native[64];
		json_t *ax = NULL, *nat = NULL, *c;
		size_t i;
		snprintf(native, sizeof native, "native-%s", axb_ergo_engines[k].name);
		json_array_foreach(cells, i, c) {
			const char *rt = json_string_value(json_object_get(c, "runtime"));
			if (rt && !strcmp(rt, axb_ergo_engines[k].name))
				ax = c;
			else if (rt && !strcmp(rt, native))
				nat = c;
		}
		if (ax && nat)
			json_array_append_new(rows, cost_row(axb_ergo_engines[k].name, ax, nat, nreps,
							     E->connections));
	}
	json_t *env = json_object_get(doc, "environment");
	*run = json_pack("{s:s, s:o, s:s, s:i, s:i, s:o}", "run_file", tmp, "command", cmd,
			 "profile", E->profile, "reps", nreps, "connections", E->connections,
			 "environment", env ? json_incref(env) : json_null());
	json_decref(doc);
	return rows;
}

