/*
 * ergo.h - the ergonomics of `axbench ergo` (docs/ergonomics.md), split by
 * job: what is measured and the source analysis (source.c), the heap
 * allocations counted at run time (alloc.c), the cost of the abstraction
 * (cost.c) and the terminal table (output.c). commands/ergo.c parses the
 * options and runs them in turn.
 */
#ifndef AXB_ERGO_H
#define AXB_ERGO_H

#include <limits.h>

#include "harness.h"

/* The allocation-counting runs. Phases: short, the count is exact; the
 * warm-up is long enough for the servers to finish setting up (accepting,
 * connecting backends) before the count starts, even on a busy machine. */
#define AXB_ALLOC_LIB_NAME "axb_alloc_count.so"
#define AXB_ALLOC_CONNS "16"
#define AXB_ALLOC_WARMUP "800ms"
#define AXB_ALLOC_DURATION "500ms"
#define AXB_ALLOC_TIMERS 20000

/* The options of one `axbench ergo`, resolved. */
struct axb_ergo {
	const char *json_path;
	char json_buf[512];
	const char *src;
	char src_buf[PATH_MAX];
	const char *alloc_lib;
	char lib_buf[PATH_MAX];
	char lib_why[PATH_MAX + 128];
	bool measure, no_alloc;
	const char *profile;
	int reps;
	int connections;
	int server_cpu, load_cpu;
	bool pinned_split;
};

/* ------------------------------------------------------------------ */
/* source.c: what is measured, and the source analysis                 */
/* ------------------------------------------------------------------ */

/* An engine; the native version of engine E is the reference "native-E",
 * its sources references/native/<stem>_*.c. */
struct axb_ergo_engine {
	const char *name;
	const char *stem;
	const char *const *prefixes; /* its API identifiers start so */
	const char *const *exact;    /* or are exactly these */
};

/* A part of a source file: from the first line containing `from` (NULL:
 * the first line) to the line before the next one containing `to` (NULL:
 * the last line). */
struct axb_ergo_region {
	const char *from, *to;
};

/* One source of an implementation: a file and the parts of it that count. */
struct axb_ergo_source {
	const char *path;
	struct axb_ergo_region regions[2];     /* {NULL, NULL} after the first: none */
};

#define AXB_ERGO_MAX_SOURCES 3

/* A scenario: the sources of its ax version, and what allocs/op divides
 * by. The ax version is the scenario's file up to its parameter table (the
 * registration the natives do not have either), plus the shared server
 * helpers it calls (scenarios/serve_util.c, and their structures in
 * serve_util.h), since the natives write their accept loops and connection
 * lists out; for timers, only part 1, arm and fire, which is what the
 * natives implement. */
struct axb_ergo_scenario {
	const char *name;
	const char *stem;             /* references/native/<engine>_<stem>.c */
	struct axb_ergo_source ax[AXB_ERGO_MAX_SOURCES];
	const char *op;
};

/* The engines and the scenarios, in the order of the table. */
extern const struct axb_ergo_engine axb_ergo_engines[];
extern const size_t axb_ergo_nengines;
extern const struct axb_ergo_scenario axb_ergo_scenarios[];
extern const size_t axb_ergo_nscenarios;

/* The whole of a file (malloc'd, NUL-terminated; its length in *len), or
 * NULL. */
char *axb_ergo_read_text(const char *path, size_t *len);

/* The static row of the table for scenario sc in its ax version (en NULL)
 * or in engine en's native version, its sources read under E->src. */
json_t *axb_ergo_static_row(const struct axb_ergo *E,
			    const struct axb_ergo_scenario *sc,
			    const struct axb_ergo_engine *en);

/* ------------------------------------------------------------------ */
/* alloc.c: heap allocations per operation, counted at run time        */
/* ------------------------------------------------------------------ */

/* An argument vector of a child, built with axb_ergo_av. Start from
 * {.n = 0}. */
struct axb_ergo_argv {
	char *v[48];
	char store[48][160];
	size_t n;
};

/* Append one printf-formatted argument. */
void axb_ergo_av(struct axb_ergo_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Install the handlers of the marks the load generator sends. */
void axb_ergo_alloc_init(void);

/* Add allocs_per_op, allocs_op and allocs_notes to every row. */
void axb_ergo_alloc_rows(const struct axb_ergo *E, json_t *rows);

/* `axbench ergo __local`: the child that runs the timers scenario's work
 * with its own allocations sampled around it. */
int axb_ergo_local(int argc, char **argv);

/* ------------------------------------------------------------------ */
/* cost.c: the cost of the abstraction                                 */
/* ------------------------------------------------------------------ */

/* Run every engine's ax runtime and native version in one interleaved
 * `axbench run` (its result file kept beside the ergo file), then pair
 * them. Returns the rows (or JSON null), and the run's description in
 * *run. */
json_t *axb_ergo_measure(const struct axb_ergo *E, json_t **run);

/* ------------------------------------------------------------------ */
/* output.c: the terminal table                                        */
/* ------------------------------------------------------------------ */

void axb_ergo_print_table(json_t *rows, json_t *cost, json_t *run);

#endif
