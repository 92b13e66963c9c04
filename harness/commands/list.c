/* list.c - `axbench list [--json]`: the ax runtimes, the reference
 * implementations, the external targets (targets/) and the scenarios with
 * their parameters. */
#include "commands.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void param_range(const struct axs_param_def *p, char *buf, size_t n)
{
	char lo[48], hi[48];
	if (p->type == AXS_P_ENUM) {
		/* the choices, as the help lists them */
		snprintf(buf, n, "%.*s", (int)strcspn(p->help, ":"), p->help);
		return;
	}
	if (p->min == 0 && p->max == 0) {
		snprintf(buf, n, ">= 0");
		return;
	}
	axs_param_format(p, p->min, lo, sizeof lo);
	axs_param_format(p, p->max, hi, sizeof hi);
	snprintf(buf, n, "%s..%s", lo, hi);
}

static int list_json(void)
{
	struct axb_impl all[64];
	size_t n = axb_impl_all(all, 64);
	json_t *rts = json_array(), *refs = json_array(), *scs = json_array();
	json_t *exts = json_array();
	for (size_t i = 0; i < n; i++) {
		char why[256], feats[256] = "";
		bool ok = axb_impl_available(&all[i], why, sizeof why);
		if (all[i].kind == AXB_IMPL_AX) {
			axb_features_str(ax_driver_features(all[i].name), feats, sizeof feats);
			json_array_append_new(rts, json_pack("{s:s, s:s, s:b, s:s?, s:s, s:s?}",
				"name", all[i].name, "summary", axb_impl_summary(&all[i]),
				"available", ok, "unavailable_reason", ok ? NULL : why,
				"features", feats, "path", axb_plugin_path(all[i].name)));
		} else if (all[i].kind == AXB_IMPL_EXT) {
			const struct axb_target *t = all[i].target;
			json_t *s = json_array();
			for (size_t k = 0; t->scenarios && t->scenarios[k]; k++)
				json_array_append_new(s, json_string(t->scenarios[k]));
			json_array_append_new(exts, json_pack("{s:s, s:s, s:b, s:s?, s:o, s:s, s:b}",
				"name", all[i].name, "summary", axb_impl_summary(&all[i]),
				"available", ok, "unavailable_reason", ok ? NULL : why,
				"scenarios", s, "dir", t->dir, "signals", t->signals));
		} else {
			json_t *s = json_array();
			for (size_t k = 0; all[i].ref->scenarios[k]; k++)
				json_array_append_new(s, json_string(all[i].ref->scenarios[k]));
			json_array_append_new(refs, json_pack("{s:s, s:s, s:b, s:o}",
				"name", all[i].name, "summary", axb_impl_summary(&all[i]),
				"available", ok, "scenarios", s));
		}
	}
	for (size_t i = 0; axs_scenarios[i]; i++) {
		const struct axs_scenario *sc = axs_scenarios[i];
		char feats[256];
		axb_features_str(sc->features, feats, sizeof feats);
		json_t *ps = json_array();
		for (size_t k = 0; k < sc->nparams; k++) {
			const struct axs_param_def *p = &sc->params[k];
			json_array_append_new(ps, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}",
				"name", p->name, "type", axs_param_type_name(p->type),
				"default", p->def, "help", p->help ? p->help : "",
				"min", (json_int_t)p->min, "max", (json_int_t)p->max));
		}
		json_array_append_new(scs, json_pack("{s:s, s:s, s:s, s:s?, s:s, s:o}",
			"name", sc->name, "summary", sc->summary ? sc->summary : "",
			"kind", sc->kind == AXS_NET ? "net" : "local",
			"protocol", sc->kind == AXS_NET ? sc->protocol : NULL,
			"features", feats, "params", ps));
	}
	/* targets whose spec is broken are listed too (unavailable) */
	const struct axb_target *ts;
	size_t nt = axb_targets(&ts);
	for (size_t i = 0; i < nt; i++) {
		struct axb_impl im;
		if (axb_impl_find(ts[i].name, &im) == 0 && im.target == &ts[i])
			continue;
		json_array_append_new(exts, json_pack("{s:s, s:s, s:b, s:s, s:[], s:s, s:b}",
			"name", ts[i].name, "summary", ts[i].description ? ts[i].description : "",
			"available", false, "unavailable_reason", ts[i].error[0] ? ts[i].error
			: "its name is taken by an ax runtime or a reference",
			"scenarios", "dir", ts[i].dir, "signals", false));
	}
	json_t *j = json_pack("{s:o, s:o, s:o, s:o}", "runtimes", rts,
			      "references", refs, "targets", exts, "scenarios", scs);
	char *txt = json_dumps(j, JSON_INDENT(2));
	if (txt)
		printf("%s\n", txt);
	free(txt);
	json_decref(j);
	return 0;
}

int axb_cmd_list(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: axbench list [--json]\n"
		       "The runtimes (availability, feature bits), the reference\n"
		       "implementations, the external targets (availability, and why not)\n"
		       "and the scenarios with their parameters; --json\n"
		       "prints the same as JSON. Drivers in shared objects are listed\n"
		       "when AXBENCH_DRIVERS names them (AXBENCH_DRIVERS=$PWD/libx.so).\n"
		       "exit status: 0, or 2 on bad input.\n");
		return 0;
	}
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json")))
		axb_bad_input("list takes no argument but --json (see axbench list --help)");
	if (argc == 2)
		return list_json();

	struct axb_impl all[64];
	size_t n = axb_impl_all(all, 64);
	printf("runtimes:\n");
	for (size_t i = 0; i < n; i++) {
		if (all[i].kind != AXB_IMPL_AX)
			continue;
		char why[256], feats[256], state[300];
		bool ok = axb_impl_available(&all[i], why, sizeof why);
		axb_features_str(ax_driver_features(all[i].name), feats, sizeof feats);
		if (ok)
			snprintf(state, sizeof state, "available");
		else
			snprintf(state, sizeof state, "unavailable: %s", why);
		printf("  %-14s %-12s %s\n", all[i].name, ok ? "available" : "unavailable",
		       axb_impl_summary(&all[i]));
		printf("  %-14s features: %s\n", "", feats[0] ? feats : "none");
		if (axb_plugin_path(all[i].name))
			printf("  %-14s loaded from %s\n", "", axb_plugin_path(all[i].name));
		if (!ok)
			printf("  %-14s %s\n", "", state);
	}
	printf("\nreference implementations:\n");
	for (size_t i = 0; i < n; i++) {
		if (all[i].kind != AXB_IMPL_REF)
			continue;
		printf("  %-14s %-12s %s\n", all[i].name, "available",
		       axb_impl_summary(&all[i]));
		printf("  %-14s scenarios:", "");
		for (size_t k = 0; all[i].ref->scenarios[k]; k++)
			printf(" %s", all[i].ref->scenarios[k]);
		printf("\n");
	}
	printf("\nexternal targets (targets/, docs/targets.md):\n");
	const struct axb_target *ts;
	size_t nt = axb_targets(&ts);
	if (!nt)
		printf("  none found%s\n", getenv("AXBENCH_TARGETS")
		       ? " in AXBENCH_TARGETS" : "");
	for (size_t i = 0; i < nt; i++) {
		const struct axb_target *t = &ts[i];
		struct axb_impl im;
		char why[512];
		bool ok;
		if (axb_impl_find(t->name, &im) == 0 && im.target == t) {
			ok = axb_impl_available(&im, why, sizeof why);
		} else {
			ok = false;
			snprintf(why, sizeof why, "%s", t->error[0] ? t->error
				 : "its name is taken by an ax runtime or a reference");
		}
		printf("  %-14s %-12s %s\n", t->name, ok ? "available" : "unavailable",
		       t->description ? t->description : "");
		printf("  %-14s scenarios:", "");
		for (size_t k = 0; t->scenarios && t->scenarios[k]; k++)
			printf(" %s", t->scenarios[k]);
		printf("\n");
		if (!ok)
			printf("  %-14s %s\n", "", why);
	}
	printf("\nscenarios:\n");
	for (size_t i = 0; axs_scenarios[i]; i++) {
		const struct axs_scenario *sc = axs_scenarios[i];
		char feats[256];
		axb_features_str(sc->features, feats, sizeof feats);
		printf("  %-16s %s\n", sc->name, sc->summary ? sc->summary : "");
		printf("  %-16s kind %s", "", sc->kind == AXS_NET ? "net" : "local");
		if (sc->kind == AXS_NET)
			printf(", protocol %s", sc->protocol ? sc->protocol : "?");
		printf(", needs %s\n", feats[0] ? feats : "nothing");
		for (size_t k = 0; k < sc->nparams; k++) {
			const struct axs_param_def *p = &sc->params[k];
			char range[128];
			param_range(p, range, sizeof range);
			printf("  %-16s   %-12s %-8s default %-8s %-16s %s\n", "", p->name,
			       axs_param_type_name(p->type), p->def, range,
			       p->help ? p->help : "");
		}
	}
	return 0;
}
