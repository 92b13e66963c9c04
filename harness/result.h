/*
 * result.h - the result document of `axbench run` (schema version 1, see
 * docs/results-schema.md): cells, repetitions and their classification,
 * per-cell aggregation, and the terminal summary table.
 */
#ifndef AXB_RESULT_H
#define AXB_RESULT_H

#include <stdio.h>

#include "harness.h"

/* One cell: implementation x scenario x parameter values. */
struct axb_cell {
	struct axb_impl impl;
	const struct axs_scenario *sc;
	int64_t values[AXS_MAX_PARAMS];
	char label[512];
	bool runnable;        /* false: unsupported (why says why) */
	char why[256];
	int reps_planned;
	int64_t timeout_ns;   /* watchdog per repetition */
	double est_s;         /* expected seconds per repetition, for the ETA */
	json_t *obj;          /* its object in the document (borrowed) */
};

/* What one child left behind. */
struct axb_outcome {
	const char *role;     /* "server", "loadgen", "local"; NULL: not run */
	bool spawned, exited;
	int wstatus;
	bool killed;          /* by the watchdog (kill_reason) or aborted (NULL) */
	const char *kill_reason;
	json_t *result;       /* its {"event":"result"} line, or NULL */
	json_t *error;        /* its {"event":"error"} line, or NULL */
	bool ready;           /* it wrote {"event":"ready"} (servers) */
	char *bad_output;     /* axb_child_bad_output, or NULL */
	char *stderr_tail;
};

/* Everything known about one finished repetition. */
struct axb_rep_in {
	int rep;
	const struct axb_pin *pin;
	double wall_s;
	int64_t started_wall_ns;
	int spawn_error;      /* -errno when a child could not be started */
	bool server_died;     /* the server exited while under load */
	struct axb_netc net0, net1; /* network counters before and after */
	struct axb_cpuload load0, load1; /* the pinned CPUs before and after */
	struct axb_outcome server, loadgen, local;
};

/* A new document with an empty "cells" array; steals the three objects. */
json_t *axb_result_doc_new(json_t *command, json_t *config, json_t *env);

/* Set the document's status ("running", "complete", "interrupted"), its
 * times and counts. */
void axb_result_doc_update(json_t *doc, struct axb_cell *cells, size_t n,
			   const char *status);

/* The cell's object (status "pending" or "unsupported", no repetition). */
json_t *axb_cell_new(const struct axb_cell *c);

/* Classify a repetition and build its object (a new reference). */
json_t *axb_rep_build(const struct axb_cell *c, const struct axb_rep_in *in);

/* Append a repetition (stolen) and recompute the cell's status and
 * summary. */
void axb_cell_add_rep(struct axb_cell *c, json_t *rep);

/* The terminal summary table. */
void axb_summary_print(FILE *f, struct axb_cell *cells, size_t n);

#endif
