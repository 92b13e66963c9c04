/* summary.c - the terminal summary table of `axbench run`: one row per
 * cell with its headline figure, and a note when other processes kept the
 * pinned CPUs busy. */
#include "results.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
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

/* When a repetition of c measured less than asked (loadgen.idle.limited:
 * fewer idle connections than requested, RLIMIT_NOFILE), one line saying
 * how much less and why into buf, and true. */
static bool limited_line(const struct axb_cell *c, char *buf, size_t bn)
{
	size_t k;
	json_t *rep;
	json_array_foreach(json_object_get(c->obj, "reps"), k, rep) {
		json_t *idle = json_object_get(json_object_get(rep, "loadgen"), "idle");
		if (!json_is_true(json_object_get(idle, "limited")))
			continue;
		const char *by = json_string_value(json_object_get(idle, "limited_by"));
		snprintf(buf, bn, "%s %s %.200s rep %d: %lld of %lld connections "
			 "opened (%.200s); its figures are for %lld connections",
			 c->impl.name, c->sc->name, c->label,
			 (int)json_integer_value(json_object_get(rep, "rep")),
			 (long long)json_integer_value(json_object_get(idle, "connections")),
			 (long long)json_integer_value(json_object_get(idle,
							"connections_requested")),
			 by ? by : "a resource limit",
			 (long long)json_integer_value(json_object_get(idle, "connections")));
		return true;
	}
	return false;
}

/* "name=median [lo, hi] unit" of metric key of a summary into buf; the
 * server's cost figures under short names. */
static void fmt_metric(const json_t *sum, const char *key, bool named, char *buf,
		       size_t bn)
{
	static const char *const shortname[][2] = {
		{"server_cpu_us_per_msg", "cpu/msg"},
		{"server_rss_per_conn", "rss/conn"},
	};
	json_t *m = json_object_get(json_object_get(sum, "metrics"), key);
	const char *unit = json_string_value(json_object_get(m, "unit"));
	char a[16], b[16], d[16];

	if (!m) {
		snprintf(buf, bn, "-");
		return;
	}
	fmt_si(num(m, "median"), a, sizeof a);
	fmt_si(num(m, "ci_low"), b, sizeof b);
	fmt_si(num(m, "ci_high"), d, sizeof d);
	const char *label = key;
	for (size_t i = 0; i < sizeof shortname / sizeof shortname[0]; i++)
		if (!strcmp(key, shortname[i][0]))
			label = shortname[i][1];
	snprintf(buf, bn, "%.48s%s%s [%s, %s]%s%.16s", named ? label : "", named ? "=" : "",
		 a, b, d, unit && *unit ? " " : "", unit ? unit : "");
}

/* The stable figure leads (DESIGN.md section 7): a network cell's row
 * opens with the server's CPU per message, which moves 2-5% beside other
 * work, and shows throughput after it, marked when the load generator was
 * the bottleneck (the throughput is then the client's); a local cell opens
 * with its own first metric. */
void axb_summary_print(FILE *f, struct axb_cell *cells, size_t n)
{
	static const char *const head[NCOL] = { "runtime", "scenario", "params",
		"status", "cost median [CI]", "throughput", "p50", "p99", "rss" };
	char (*rows)[NCOL][192] = calloc(n ? n : 1, sizeof *rows);
	size_t w[NCOL];
	bool any_bound = false;
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
		char lim[1024];
		/* a cell that measured less than asked is never a plain ok */
		snprintf(r[3], 192, "%s", !strcmp(st, "ok") && limited_line(c, lim, sizeof lim)
			 ? "limited" : st);
		for (int k = 4; k < NCOL; k++)
			snprintf(r[k], 192, "-");
		if (!json_is_object(sum))
			goto widths;
		json_t *ms = json_object_get(sum, "metrics");
		if (c->sc->kind == AXS_NET) {
			if (json_object_get(ms, "server_cpu_us_per_msg"))
				fmt_metric(sum, "server_cpu_us_per_msg", true, r[4], 192);
			if (json_object_get(ms, "throughput")) {
				char a[16];
				const char *unit = json_string_value(json_object_get(
					json_object_get(ms, "throughput"), "unit"));
				fmt_si(med(sum, "throughput"), a, sizeof a);
				bool bound = json_is_true(json_object_get(sum, "loadgen_saturated"));
				any_bound |= bound;
				snprintf(r[5], 192, "%s %s%s", a, unit ? unit : "", bound ? " *" : "");
			} else {
				/* a mode without throughput: its headline (idle) */
				void *it = json_object_iter(ms);
				if (it && strcmp(r[4], "-") == 0)
					fmt_metric(sum, json_object_iter_key(it), true, r[4], 192);
			}
			if (json_object_get(ms, "server_rss_per_conn"))
				fmt_metric(sum, "server_rss_per_conn", true, r[4], 192);
			fmt_ns(med(sum, "latency_p50"), r[6], 192);
			fmt_ns(med(sum, "latency_p99"), r[7], 192);
			double kib = med(sum, "server_maxrss_kib");
			if (isfinite(kib))
				snprintf(r[8], 192, "%.1fMiB", kib / 1024);
		} else {
			void *it = json_object_iter(ms);
			if (it)
				fmt_metric(sum, json_object_iter_key(it), true, r[4], 192);
			double kib = med(sum, "maxrss_kib");
			if (isfinite(kib))
				snprintf(r[8], 192, "%.1fMiB", kib / 1024);
		}
		if (json_is_false(json_object_get(sum, "rate_sustained")))
			strncat(r[4], " (rate not sustained)", 192 - strlen(r[4]) - 1);
widths:
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
	for (size_t i = 0; i < n; i++) {
		char lim[1024];
		if (!strcmp(rows[i][3], "limited") && limited_line(&cells[i], lim, sizeof lim))
			fprintf(f, "limited: %s\n", lim);
	}
	if (any_bound)
		fprintf(f, "* load-generator-bound: the load generator, not the server, was "
			"the bottleneck; the\n  throughput is the client's, the server's "
			"cpu/msg is the figure to compare\n");
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
