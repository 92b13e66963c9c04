/* main.c - the axbench command line: one table of commands (the hidden
 * ones are the child processes' subcommands and aliases) and the usage it
 * prints. */
#include "commands.h"
#include "harness.h"

#include <stdio.h>
#include <string.h>

static int help(int argc, char **argv);

/* One command. summary: its usage lines as `axbench help` prints them;
 * hidden commands (children, aliases) have none. */
struct command {
	const char *name;
	const char *summary;
	int (*handler)(int argc, char **argv);
	bool hidden;
};

static const struct command commands[] = {
	{"list", "list [--json]        runtimes, reference implementations, scenarios",
	 axb_cmd_list, false},
	{"run", "run [options]        measure scenarios x runtimes (axbench run --help)",
	 axb_cmd_run, false},
	{"serve", "serve --runtime R --scenario S [--port P] [-p name=value]...\n"
		  "                       the server side alone, until Ctrl-C",
	 axb_cmd_serve, false},
	{"load", "load --scenario S --target HOST:PORT [-p name=value]... [--json FILE]\n"
		 "                       the load generator alone",
	 axb_cmd_load, false},
	{"targets", "targets [--build] [NAME...]\n"
		    "                       external targets: availability; build them",
	 axb_cmd_targets, false},
	{"conform", "conform [options]    run the conformance cases (axbench conform --help)",
	 axb_cmd_conform, false},
	{"ergo", "ergo [options]       ergonomics table, cost of the abstraction (axbench ergo --help)",
	 axb_cmd_ergo, false},
	{"compare", "compare BASE NEW     compare two result files: ratios, CIs, verdicts",
	 axb_cmd_reports, false},
	{"report", "report RESULTS -o D  HTML report and summary.md (axbench report --help)",
	 axb_cmd_reports, false},
	{"record", "record RESULTS       append a result file to the history database",
	 axb_cmd_reports, false},
	{"ab", "ab --a A --b B -- RUN-OPTIONS\n"
	       "                       two builds measured interleaved, compared pair by pair",
	 axb_cmd_reports, false},
	{"functions", "functions DIR        instructions per operation by function, from a kept\n"
		      "                       profile (run --measure instructions --profile-functions DIR)",
	 axb_cmd_reports, false},
	{"version", "version              print the version", axb_cmd_version, false},
	{"--version", NULL, axb_cmd_version, true},
	{"help", NULL, help, true},
	{"--help", NULL, help, true},
	{"-h", NULL, help, true},
	/* the child processes of run, conform and ergo */
	{"__server", NULL, axb_cmd_serve, true},
	{"__load", NULL, axb_cmd_load, true},
	{"__local", NULL, axb_cmd_local, true},
	{"__instr", NULL, axb_cmd_instr_child, true},
	{"__case", NULL, axb_cmd_case, true},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: axbench <command> [options]\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!commands[i].hidden)
			fprintf(f, "  %s\n", commands[i].summary);
	fprintf(f, "every command takes -h/--help; exit status: 0 success, 1 a failed\n"
		   "cell, case or regression, 2 bad input, 3 inconclusive (compare, ab;\n"
		   "conform: a case the environment kept from running), 4 internal\n"
		   "error, 5 the result file could not be written, 128+N ended by\n"
		   "signal N (129 SIGHUP, 130 SIGINT, 143 SIGTERM)\n"
		   "see docs/harness.md\n");
}

static int help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *names[sizeof commands / sizeof commands[0]];
	size_t n = 0;
	char hint[128];
	/* the drivers a parent loaded from shared objects (plugin.c) */
	axb_plugin_init();
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].handler(argc - 1, argv + 1);
		if (!commands[i].hidden)
			names[n++] = commands[i].name;
	}
	axb_bad_input("unknown command '%s' (try axbench help)%s", argv[1],
		      axb_did_you_mean(argv[1], names, n, hint, sizeof hint));
}
