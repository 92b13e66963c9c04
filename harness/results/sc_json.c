/* sc_json.c - a scenario run's parameters, metrics and histograms as the
 * JSON of the result schema (docs/results-schema.md); the scenario layer
 * itself knows no JSON. */
#include "results.h"

json_t *axb_params_json(const struct axs_scenario *sc, const int64_t *values)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < sc->nparams; i++) {
		char name[64];
		/* an enum by its name: the index means nothing to a reader */
		if (sc->params[i].type == AXS_P_ENUM &&
		    axs_param_enum_name(&sc->params[i], values[i], name, sizeof name) == 0)
			json_object_set_new(o, sc->params[i].name, json_string(name));
		else
			json_object_set_new(o, sc->params[i].name,
					    json_integer((json_int_t)values[i]));
	}
	return o;
}

json_t *axb_out_metrics_json(const struct axs_out *o)
{
	json_t *m = json_object();
	for (size_t i = 0; m && i < o->nmetrics; i++)
		axb_metric_set(m, o->metrics[i].name, o->metrics[i].value,
			       o->metrics[i].unit, o->metrics[i].better);
	return m;
}

json_t *axb_out_hists_json(const struct axs_out *o)
{
	json_t *m = json_object();
	for (size_t i = 0; m && i < o->nhists; i++)
		json_object_set_new(m, o->hists[i].name,
				    axm_hist_to_json(o->hists[i].h));
	return m;
}
