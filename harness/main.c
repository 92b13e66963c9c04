/* main.c - the axbench command line: dispatches to list, run, serve, load
 * and the hidden child subcommands. */
#include "commands.h"
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
