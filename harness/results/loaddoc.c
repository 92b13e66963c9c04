/* loaddoc.c - `axbench load --json FILE`: the load generator's result
 * against an outside server as a result file of the same schema as
 * `axbench run`'s (one cell, one repetition, implementation kind
 * "external"), so that compare, report and record read it like any other.
 * The server's figures are those metered from /proc with --server-pid. */
#include "results.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int axb_load_doc_write(const char *path, int argc, char **argv, const char *name,
		       const struct axs_scenario *sc, const int64_t *values,
		       int cpu, const json_t *loadgen, const json_t *server)
{
	struct axb_cell c;
	/* static: the CPU sets are large */
	static struct axb_pin pin;
	struct axb_rep_in in;
	size_t off = 0;

	memset(&c, 0, sizeof c);
	memset(&pin, 0, sizeof pin);
	pin.mode = "none";
	pin.server_cpu = -1;
	pin.load_cpu = cpu;
	c.impl.name = name;
	c.impl.kind = AXB_IMPL_EXT;
	c.sc = sc;
	memcpy(c.values, values, sizeof c.values);
	for (size_t i = 0; i < sc->nparams && off < sizeof c.label; i++) {
		char v[64];
		axs_param_format(&sc->params[i], values[i], v, sizeof v);
		int w = snprintf(c.label + off, sizeof c.label - off, "%s%s=%s",
				 i ? "," : "", sc->params[i].name, v);
		off += w > 0 ? (size_t)w : 0;
	}
	c.runnable = true;
	c.reps_planned = 1;

	json_t *config = json_pack("{s:[s], s:[], s:[s], s:{}, s:i, s:s, s:{}, s:s, "
				   "s:n, s:n, s:s}",
				   "runtimes", name, "skipped_runtimes", "scenarios",
				   sc->name, "params", "reps", 1, "profile", "default",
				   "profile_params", "pin", "none", "port", "timeout_s",
				   "source", "axbench load");
	json_object_set_new(config, "target", json_string(
		json_string_value(json_object_get(loadgen, "target"))));
	json_t *doc = axb_result_doc_new(axb_command_json(argc, argv), config,
					 axb_environment(&pin));
	c.obj = axb_cell_new(&c);
	json_array_append_new(json_object_get(doc, "cells"), c.obj);

	memset(&in, 0, sizeof in);
	in.rep = 1;
	in.pin = &pin;
	in.started_wall_ns = axb_wall_ns();
	in.loadgen.role = "loadgen";
	in.loadgen.spawned = in.loadgen.exited = true;
	in.loadgen.result = (json_t *)loadgen;
	if (server) {
		in.server.role = "server";
		in.server.spawned = in.server.ready = true;
		in.server.result = (json_t *)server;
	}
	in.wall_s = json_number_value(json_object_get(loadgen, "warmup_s")) +
		    json_number_value(json_object_get(loadgen, "duration_s"));
	axb_cell_add_rep(&c, axb_rep_build(&c, &in));
	axb_result_doc_update(doc, &c, 1, "complete");
	int err = axb_doc_write(path, doc, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
	json_decref(doc);
	return err;
}
