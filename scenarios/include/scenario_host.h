/*
 * scenario_host.h - what a host of scenarios (the harness, a reference
 * implementation) uses beyond scenario.h: the record a run fills, and the
 * parsing, formatting and defaults of scenario parameters.
 *
 * Part of the scenario layer, which sees ax.h and the measurement library
 * only; nothing here knows JSON, processes or the command line.
 */
#ifndef AXS_SCENARIO_HOST_H
#define AXS_SCENARIO_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "scenario.h"

#define AXS_MAX_PARAMS 32  /* parameters a scenario may declare */
#define AXS_MAX_METRICS 64 /* metrics one run may record */
#define AXS_MAX_HISTS 16   /* latency histograms one run may record */
#define AXS_NAME_MAX 48    /* a metric's or histogram's name, with its NUL */

/* What one run recorded through axs_metric, axs_latency and axs_fail.
 * Not thread-safe: one run, one record. */
struct axs_out {
	struct {
		char name[AXS_NAME_MAX];
		char unit[16];
		double value;
		int better;
	} metrics[AXS_MAX_METRICS];
	size_t nmetrics;
	struct {
		char name[AXS_NAME_MAX];
		struct axm_hist *h;
	} hists[AXS_MAX_HISTS];
	size_t nhists;
	bool failed;
	char fail_msg[512];
};

/* Empty o. */
void axs_out_init(struct axs_out *o);
/* Free the histograms o owns; o is empty afterwards. */
void axs_out_free(struct axs_out *o);

/* Parse text as a value of parameter p into base units (ns for
 * durations, bytes for sizes). With bare_seconds, a duration written
 * without a unit is taken as seconds (the --duration shortcut).
 * Returns 0, -EINVAL when malformed, -ERANGE when outside [min, max]. */
int axs_param_parse(const struct axs_param_def *p, const char *text,
		    bool bare_seconds, int64_t *out);

/* Format v in p's syntax, using the largest exact unit ("64k", "300ms"). */
void axs_param_format(const struct axs_param_def *p, int64_t v, char *buf,
		      size_t n);

/* The name of choice idx of an AXS_P_ENUM parameter (its help starts
 * "name0|name1|...: "), copied into buf. Returns 0, or -ERANGE when there
 * is no such choice. */
int axs_param_enum_name(const struct axs_param_def *p, int64_t idx, char *buf,
			size_t n);

/* "int", "bytes", "duration" or "enum". */
const char *axs_param_type_name(enum axs_param_type t);

/* Index of parameter `name` in sc->params, or -1. */
int axs_param_index(const struct axs_scenario *sc, const char *name);

/* Fill values[] (AXS_MAX_PARAMS entries) with sc's defaults. Returns 0, or
 * -EINVAL when a default does not parse (a scenario bug; the offending
 * name is stored in *bad). */
int axs_param_defaults(const struct axs_scenario *sc, int64_t *values,
		       const char **bad);

/* "connections=64,size=64,..." in each parameter's own syntax. */
void axs_params_label(const struct axs_scenario *sc, const int64_t *values,
		      char *buf, size_t n);

#endif
