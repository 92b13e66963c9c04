/* version.c - `axbench version`: the program's and the result schema's
 * versions. */
#include "commands.h"
#include "harness.h"

#include <stdio.h>

int axb_cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("axbench %s (results schema %d)\n", AXB_VERSION, AXB_SCHEMA_VERSION);
	return 0;
}
