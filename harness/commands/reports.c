/* reports.c - `axbench compare`, `report`, `record` and `ab`: they live in
 * reports/ (Python, matplotlib), so the command runs its launcher with the
 * arguments unchanged. */
#include "commands.h"
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AX_SOURCE_DIR
#define AX_SOURCE_DIR ""
#endif

/* The launcher is found in the source tree this binary was built from,
 * else beside the binary's directory. */
void axb_reports_launcher(char *path, size_t n)
{
	char exe[4096];
	snprintf(path, n, "%s/reports/axbench-reports", AX_SOURCE_DIR);
	if (!AX_SOURCE_DIR[0] || access(path, X_OK) != 0) {
		ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
		exe[k > 0 ? k : 0] = 0;
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = 0;
		snprintf(path, n, "%s/../reports/axbench-reports", exe);
	}
}

int axb_cmd_reports(int argc, char **argv)
{
	char path[4200];
	axb_reports_launcher(path, sizeof path);
	char **av = calloc((size_t)argc + 2, sizeof *av);
	if (!av)
		axb_bad_input("out of memory");
	av[0] = path;
	for (int i = 0; i < argc; i++)
		av[i + 1] = argv[i];
	execv(path, av);
	axb_bad_input("cannot run %s for '%s': %s", path, argv[0], strerror(errno));
}
