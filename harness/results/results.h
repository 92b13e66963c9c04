/*
 * results.h - the result file (schema version 1, see
 * docs/results-schema.md): its document, cells, repetitions and their
 * classification, per-cell aggregation, the terminal summary table, the
 * environment block, a scenario run as JSON, machine counters and atomic
 * writes.
 */
#ifndef AXB_RESULTS_H
#define AXB_RESULTS_H

#include <stdio.h>

#include "harness.h"
#include "proc.h"

/* ------------------------------------------------------------------ */
/* atomic.c                                                            */
/* ------------------------------------------------------------------ */

/* Write `len` bytes to path atomically: path.tmp.<pid>, fsync, rename,
 * fsync of the directory. Returns 0 or -errno. */
int axb_write_atomic(const char *path, const char *data, size_t len);

/* Check that a result file can be created at path (its directory exists
 * and is writable, and path is not a directory). Returns 0 or -errno. */
int axb_check_writable(const char *path);

/* ------------------------------------------------------------------ */
/* machine.c                                                           */
/* ------------------------------------------------------------------ */

/* System-wide network counters that explain latency tails on loopback
 * (drops, retransmissions); read before and after a repetition. */
struct axb_netc {
	int64_t retrans_segs, tcp_timeouts, loss_probes, listen_drops,
		listen_overflows, backlog_drops, softnet_dropped;
};
/* Read them; counters that cannot be read are 0. */
void axb_netc_read(struct axb_netc *c);
/* b - a as a JSON object. */
json_t *axb_netc_delta_json(const struct axb_netc *a, const struct axb_netc *b);

/* Busy (non-idle) and steal time of the pinned CPUs (the server's and the
 * load generator's sets) from /proc/stat, seconds; and the 1-minute load
 * average. To tell whether other work shared the CPUs of a repetition. */
struct axb_cpuload {
	int n;
	int cpu[AXB_MAX_CPUS];
	double busy_s[AXB_MAX_CPUS], steal_s[AXB_MAX_CPUS];
	double loadavg1;
};
void axb_cpuload_read(struct axb_cpuload *c, const struct axb_cpus *cpus);
json_t *axb_cpuload_delta_json(const struct axb_cpuload *a,
			       const struct axb_cpuload *b);
/* The load averages (1, 5, 15 minutes); -1 when unreadable. */
void axb_loadavg(double la[3]);

/* ------------------------------------------------------------------ */
/* doc.c: the header every result file opens with                      */
/* ------------------------------------------------------------------ */

/* The command line as JSON: ["axbench", argv[0], argv[1], ...], argv[0]
 * being the command's name. */
json_t *axb_command_json(int argc, char **argv);

/* A new result document holding the header that run, instructions mode and
 * conform all write: schema, schema_version, generator {name, version},
 * command, status "running", started_utc, updated_utc and finished_utc
 * (null), environment. Steals command and env. */
json_t *axb_doc_header(const char *schema, int version, json_t *command,
		       json_t *env);

/* Set the document's status ("running", "complete", "interrupted") and
 * updated_utc; finished_utc too unless it is running. */
void axb_doc_status(json_t *doc, const char *status);

/* Write the document to path atomically, as json_dumps(doc, flags) says,
 * with a newline at the end.
 * Returns 0 or -errno. */
int axb_doc_write(const char *path, const json_t *doc, size_t flags);

/* ------------------------------------------------------------------ */
/* env.c                                                               */
/* ------------------------------------------------------------------ */

/* The environment block of every result file (run, instructions mode,
 * conform, ergo); pin says where run pins its children ("none" when
 * nothing is pinned). */
json_t *axb_environment(const struct axb_pin *pin);

/* Build-time facts (compiler, flags, library versions) as JSON. */
json_t *axb_build_info(void);

/* ------------------------------------------------------------------ */
/* sc_json.c: a scenario run as result-schema JSON                     */
/* ------------------------------------------------------------------ */

/* {"name": value, ...} in base units (an enum by its name). */
json_t *axb_params_json(const struct axs_scenario *sc, const int64_t *values);
/* {"name": {"value", "unit", "better"}, ...} */
json_t *axb_out_metrics_json(const struct axs_out *o);
/* {"name": <histogram JSON>, ...} */
json_t *axb_out_hists_json(const struct axs_out *o);

/* ------------------------------------------------------------------ */
/* result.c, aggregate.c, summary.c: the document of `axbench run`     */
/* ------------------------------------------------------------------ */

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

/* aggregate.c: append a repetition (stolen) and recompute the cell's
 * status and summary. */
void axb_cell_add_rep(struct axb_cell *c, json_t *rep);

/* summary.c: the terminal summary table. */
void axb_summary_print(FILE *f, struct axb_cell *cells, size_t n);

#endif
