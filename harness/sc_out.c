/* sc_out.c - the ax_sc_* functions scenarios call to read parameters and
 * record metrics, latency samples and check failures (scenario.h). */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void axb_sc_out_init(struct ax_sc_out *o)
{
	memset(o, 0, sizeof *o);
}

void axb_sc_out_free(struct ax_sc_out *o)
{
	for (size_t i = 0; i < o->nhists; i++)
		ax_hist_free(o->hists[i].h);
	o->nhists = 0;
}

int64_t ax_sc_param(const struct ax_sc_ctx *ctx, const char *name)
{
	int i = axb_param_index(ctx->sc, name);
	if (i < 0) {
		fprintf(stderr, "axbench: scenario %s asked for unknown parameter %s\n",
			ctx->sc->name, name);
		abort();
	}
	return ctx->values[i];
}

void ax_sc_metric(struct ax_sc_ctx *ctx, const char *name, double value,
		  const char *unit, int better)
{
	struct ax_sc_out *o = ctx->out;
	size_t i;

	for (i = 0; i < o->nmetrics; i++)
		if (!strcmp(o->metrics[i].name, name))
			break;
	if (i == o->nmetrics) {
		if (o->nmetrics == AXB_SC_MAX_METRICS) {
			ax_sc_fail(ctx, "more than %d metrics recorded",
				   AXB_SC_MAX_METRICS);
			return;
		}
		o->nmetrics++;
		snprintf(o->metrics[i].name, sizeof o->metrics[i].name, "%s", name);
	}
	snprintf(o->metrics[i].unit, sizeof o->metrics[i].unit, "%s",
		 unit ? unit : "");
	o->metrics[i].value = value;
	o->metrics[i].better = better > 0 ? 1 : better < 0 ? -1 : 0;
}

void ax_sc_latency(struct ax_sc_ctx *ctx, const char *name, int64_t ns)
{
	struct ax_sc_out *o = ctx->out;
	size_t i;

	for (i = 0; i < o->nhists; i++)
		if (!strcmp(o->hists[i].name, name))
			break;
	if (i == o->nhists) {
		if (o->nhists == AXB_SC_MAX_HISTS) {
			ax_sc_fail(ctx, "more than %d latency histograms",
				   AXB_SC_MAX_HISTS);
			return;
		}
		struct ax_hist *h = ax_hist_new();
		if (!h) {
			ax_sc_fail(ctx, "out of memory for histogram %s", name);
			return;
		}
		o->hists[i].h = h;
		snprintf(o->hists[i].name, sizeof o->hists[i].name, "%s", name);
		o->nhists++;
	}
	ax_hist_record(o->hists[i].h, ns);
}

void ax_sc_fail(struct ax_sc_ctx *ctx, const char *fmt, ...)
{
	struct ax_sc_out *o = ctx->out;
	va_list ap;

	if (o->failed)
		return;
	o->failed = true;
	va_start(ap, fmt);
	vsnprintf(o->fail_msg, sizeof o->fail_msg, fmt, ap);
	va_end(ap);
}

json_t *axb_sc_out_metrics_json(const struct ax_sc_out *o)
{
	json_t *m = json_object();
	for (size_t i = 0; m && i < o->nmetrics; i++)
		axb_metric_set(m, o->metrics[i].name, o->metrics[i].value,
			       o->metrics[i].unit, o->metrics[i].better);
	return m;
}

json_t *axb_sc_out_hists_json(const struct ax_sc_out *o)
{
	json_t *m = json_object();
	for (size_t i = 0; m && i < o->nhists; i++)
		json_object_set_new(m, o->hists[i].name,
				    ax_hist_to_json(o->hists[i].h));
	return m;
}
