/* main.c - the axbench command line: dispatches to list, run, serve, load
 * and the hidden child subcommands, and implements `axbench list`. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* conform.c: the conformance runner and its child side. */
int axb_cmd_conform(int argc, char **argv);
int axb_cmd_case(int argc, char **argv);
/* ergo.c: the ergonomics table and the cost of the abstraction. */
int axb_cmd_ergo(int argc, char **argv);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: axbench <command> [options]\n"
		"  list [--json]        runtimes, reference implementations, scenarios\n"
		"  run [options]        measure scenarios x runtimes (axbench run --help)\n"
		"  serve --runtime R --scenario S [--port P] [-p name=value]...\n"
		"                       the server side alone, until Ctrl-C\n"
		"  load --scenario S --target HOST:PORT [-p name=value]... [--json FILE]\n"
		"                       the load generator alone\n"
		"  conform [options]    run the conformance cases (axbench conform --help)\n"
		"  ergo [options]       ergonomics table, cost of the abstraction (axbench ergo --help)\n"
		"  compare BASE NEW     compare two result files: ratios, CIs, verdicts\n"
		"  report RESULTS -o D  HTML report and summary.md (axbench report --help)\n"
		"  record RESULTS       append a result file to the history database\n"
		"  version              print the version\n"
		"see docs/harness.md\n");
}

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
	for (size_t i = 0; i < n; i++) {
		char why[256], feats[256] = "";
		bool ok = axb_impl_available(&all[i], why, sizeof why);
		if (all[i].kind == AXB_IMPL_AX) {
			axb_features_str(ax_driver_features(all[i].name), feats, sizeof feats);
			json_array_append_new(rts, json_pack("{s:s, s:s, s:b, s:s?, s:s}",
				"name", all[i].name, "summary", axb_impl_summary(&all[i]),
				"available", ok, "unavailable_reason", ok ? NULL : why,
				"features", feats));
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
	json_t *j = json_pack("{s:o, s:o, s:o}", "runtimes", rts,
			      "references", refs, "scenarios", scs);
	char *txt = json_dumps(j, JSON_INDENT(2));
	if (txt)
		printf("%s\n", txt);
	free(txt);
	json_decref(j);
	return 0;
}

int axb_cmd_list(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json")))
		axb_bad_input("list takes no argument but --json");
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

#ifndef AX_SOURCE_DIR
#define AX_SOURCE_DIR ""
#endif

/* compare, report and record live in reports/ (Python, matplotlib): run
 * its launcher with the arguments unchanged. It is found in the source tree
 * this binary was built from, else beside the binary's directory. */
static int forward_reports(const char *cmd, int argc, char **argv)
{
	char path[4200], exe[4096];
	snprintf(path, sizeof path, "%s/reports/axbench-reports", AX_SOURCE_DIR);
	if (!AX_SOURCE_DIR[0] || access(path, X_OK) != 0) {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		exe[n > 0 ? n : 0] = 0;
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = 0;
		snprintf(path, sizeof path, "%s/../reports/axbench-reports", exe);
	}
	char **av = calloc((size_t)argc + 2, sizeof *av);
	if (!av)
		axb_bad_input("out of memory");
	av[0] = path;
	av[1] = (char *)cmd;
	for (int i = 1; i < argc; i++)
		av[i + 1] = argv[i];
	execv(path, av);
	axb_bad_input("cannot run %s for '%s': %s", path, cmd, strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	argc--;
	argv++;
	if (!strcmp(cmd, "list"))
		return axb_cmd_list(argc, argv);
	if (!strcmp(cmd, "run")) {
		/* --measure instructions is its own machinery (instr.c);
		 * --measure time is the default and needs nothing */
		for (int i = 1; i < argc; i++) {
			const char *m = NULL;
			int n = 1;
			if (!strcmp(argv[i], "--measure") && i + 1 < argc) {
				m = argv[i + 1];
				n = 2;
			} else if (!strncmp(argv[i], "--measure=", 10)) {
				m = argv[i] + 10;
			}
			if (!m)
				continue;
			if (!strcmp(m, "instructions"))
				return axb_cmd_instr(argc, argv);
			if (strcmp(m, "time"))
				axb_bad_input("--measure must be time or instructions, not '%s'", m);
			memmove(&argv[i], &argv[i + n], (size_t)(argc - i - n + 1) * sizeof *argv);
			argc -= n;
			i--;
		}
		return axb_cmd_run(argc, argv);
	}
	if (!strcmp(cmd, "__instr"))
		return axb_cmd_instr_child(argc, argv);
	if (!strcmp(cmd, "serve") || !strcmp(cmd, "__server"))
		return axb_cmd_serve(argc, argv);
	if (!strcmp(cmd, "load") || !strcmp(cmd, "__load"))
		return axb_cmd_load(argc, argv);
	if (!strcmp(cmd, "__local"))
		return axb_cmd_local(argc, argv);
	if (!strcmp(cmd, "compare") || !strcmp(cmd, "report") || !strcmp(cmd, "record"))
		return forward_reports(cmd, argc, argv);
	if (!strcmp(cmd, "conform"))
		return axb_cmd_conform(argc, argv);
	if (!strcmp(cmd, "__case"))
		return axb_cmd_case(argc, argv);
	if (!strcmp(cmd, "ergo"))
		return axb_cmd_ergo(argc, argv);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("axbench %s (results schema %d)\n", AXB_VERSION, AXB_SCHEMA_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	axb_bad_input("unknown command '%s' (try axbench help)", cmd);
}
