/* sc_out.c - the axs_* functions scenarios call to read parameters and
 * record metrics, latency samples and check failures (scenario.h). */
#include "scenario_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void axs_out_init(struct axs_out *o)
{
	memset(o, 0, sizeof *o);
}

void axs_out_free(struct axs_out *o)
{
	for (size_t i = 0; i < o->nhists; i++)
		axm_hist_free(o->hists[i].h);
	o->nhists = 0;
}

int64_t axs_param(const struct axs_ctx *ctx, const char *name)
{
	int i = axs_param_index(ctx->sc, name);
	if (i < 0) {
		fprintf(stderr, "axbench: scenario %s asked for unknown parameter %s\n",
			ctx->sc->name, name);
		abort();
	}
	return ctx->values[i];
}

void axs_metric(struct axs_ctx *ctx, const char *name, double value,
		  const char *unit, int better)
{
	struct axs_out *o = ctx->out;
	size_t i;

	for (i = 0; i < o->nmetrics; i++)
		if (!strcmp(o->metrics[i].name, name))
			break;
	if (i == o->nmetrics) {
		if (o->nmetrics == AXS_MAX_METRICS) {
			axs_fail(ctx, "more than %d metrics recorded",
				   AXS_MAX_METRICS);
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

void axs_latency(struct axs_ctx *ctx, const char *name, int64_t ns)
{
	struct axs_out *o = ctx->out;
	size_t i;

	for (i = 0; i < o->nhists; i++)
		if (!strcmp(o->hists[i].name, name))
			break;
	if (i == o->nhists) {
		if (o->nhists == AXS_MAX_HISTS) {
			axs_fail(ctx, "more than %d latency histograms",
				   AXS_MAX_HISTS);
			return;
		}
		struct axm_hist *h = axm_hist_new();
		if (!h) {
			axs_fail(ctx, "out of memory for histogram %s", name);
			return;
		}
		o->hists[i].h = h;
		snprintf(o->hists[i].name, sizeof o->hists[i].name, "%s", name);
		o->nhists++;
	}
	axm_hist_record(o->hists[i].h, ns);
}

void axs_fail(struct axs_ctx *ctx, const char *fmt, ...)
{
	struct axs_out *o = ctx->out;
	va_list ap;

	if (o->failed)
		return;
	o->failed = true;
	va_start(ap, fmt);
	vsnprintf(o->fail_msg, sizeof o->fail_msg, fmt, ap);
	va_end(ap);
}
