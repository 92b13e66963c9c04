/* doc.c - the one writer of a result file's header (schema, its version,
 * generator, command, status and times, environment block) for run,
 * instructions mode and conform, its status updates, and the document's
 * atomic write. */
#include "results.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

json_t *axb_command_json(int argc, char **argv)
{
	json_t *cmd = json_array();
	json_array_append_new(cmd, json_string("axbench"));
	for (int i = 0; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	return cmd;
}

json_t *axb_doc_header(const char *schema, int version, json_t *command,
		       json_t *env)
{
	char when[64];
	axb_utc_iso(axb_wall_ns(), when, sizeof when);
	return json_pack("{s:s, s:i, s:{s:s, s:s}, s:o, s:s, s:s, s:n, s:n, s:o}",
			 "schema", schema,
			 "schema_version", version,
			 "generator", "name", "axbench", "version", AXB_VERSION,
			 "command", command,
			 "status", "running",
			 "started_utc", when,
			 "updated_utc",
			 "finished_utc",
			 "environment", env);
}

void axb_doc_status(json_t *doc, const char *status)
{
	char when[64];
	axb_utc_iso(axb_wall_ns(), when, sizeof when);
	json_object_set_new(doc, "status", json_string(status));
	json_object_set_new(doc, "updated_utc", json_string(when));
	if (strcmp(status, "running"))
		json_object_set_new(doc, "finished_utc", json_string(when));
}

int axb_doc_write(const char *path, const json_t *doc, size_t flags)
{
	char *text = json_dumps(doc, flags);
	if (!text)
		return -ENOMEM;
	/* a text file: it ends with a newline */
	size_t len = strlen(text);
	char *line = realloc(text, len + 2);
	if (!line) {
		free(text);
		return -ENOMEM;
	}
	line[len] = '\n';
	line[len + 1] = 0;
	int err = axb_write_atomic(path, line, len + 1);
	free(line);
	return err;
}
