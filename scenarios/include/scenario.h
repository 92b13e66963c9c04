/*
 * scenario.h - how a scenario is described to the harness.
 *
 * A scenario is one file in scenarios/, written against ax.h only, and
 * registered in scenarios/registry.c. Two kinds:
 *
 *   AXS_NET    a network scenario: `serve` runs the server side as the main
 *                task of the runtime under test, on a listening socket the
 *                harness created; the client side is the harness's load
 *                generator speaking the scenario's `protocol`.
 *   AXS_LOCAL  a user-space scenario (spawn, channels, timers): `run` runs
 *                as the main task of the runtime under test, does a fixed
 *                amount of work and records metrics.
 *
 * Every scenario has a `check` verdict: a run whose check failed reports the
 * failure and no numbers.
 */
#ifndef AXS_SCENARIO_H
#define AXS_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ax.h"

enum axs_param_type {
	AXS_P_INT,      /* plain integer: "64", "1000"                     */
	AXS_P_BYTES,    /* bytes with optional k/m/g suffix (1024-based)    */
	AXS_P_DURATION, /* nanoseconds written with ns/us/ms/s suffix       */
	AXS_P_ENUM,     /* one of the names that start `help`, written
			* "name0|name1|...: the help text"; the value is the
			* index of the name (min 0, max the last index)     */
};

struct axs_param_def {
	const char *name;
	enum axs_param_type type;
	const char *def;   /* default, in the same syntax the user types */
	const char *help;
	int64_t min, max;  /* accepted range (inclusive), in base units */
};

enum axs_kind { AXS_NET, AXS_LOCAL };

struct axs_ctx;

/* A further instructions workload of an AXS_LOCAL scenario, selected as
 * "SCENARIO:NAME" in instructions mode (timers:fire). Same contract as
 * axs_scenario.instr: run as the main task, a fixed amount of work,
 * returns the operations done (> 0) or -errno. */
struct axs_instr_alt {
	const char *name;
	const char *summary;
	int64_t (*instr)(struct axs_ctx *ctx);
	/* non-NULL when a reference's native version of the scenario
	 * (run_local) does exactly this work: its operation count from the
	 * parameters, so the native version is counted beside the runtimes */
	int64_t (*native_ops)(const struct axs_ctx *ctx);
};

/* What a running scenario sees. */
struct axs_ctx {
	const struct axs_scenario *sc;
	const int64_t *values;  /* one per sc->params entry, in base units */
	int listen_fd;          /* AXS_NET: the listening socket; else -1 */
	bool quick;             /* the quick profile is in effect */
	/* AXS_NET: set by the harness (from an ax_post function) when the
	 * server must stop; serve should then return promptly. The harness also
	 * cancels the main task. */
	volatile bool stopping;
	/* Results, filled by run / serve through axs_metric and friends. */
	struct axs_out *out;
};

/* The value of parameter `name`; aborts on an unknown name (a scenario bug,
 * caught by the tests). */
int64_t axs_param(const struct axs_ctx *ctx, const char *name);

/* Record a named metric. unit is "ops/s", "ns", "bytes", ... and
 * `better` is +1 when higher is better, -1 when lower is. */
void axs_metric(struct axs_ctx *ctx, const char *name, double value,
		  const char *unit, int better);

/* Record a latency sample in nanoseconds into the scenario's histogram
 * named `name` (created on first use). */
void axs_latency(struct axs_ctx *ctx, const char *name, int64_t ns);

/* Fail the check with a message (printf-style). The first failure wins. */
void axs_fail(struct axs_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct axs_scenario {
	const char *name;
	const char *summary;
	enum axs_kind kind;
	uint32_t features;            /* AX_FEAT_* the runtime must have */
	const char *protocol;         /* AXS_NET: load generator protocol */
	const struct axs_param_def *params;
	size_t nparams;
	/* AXS_NET: the server, run as the main task. Returns 0 or -errno. */
	intptr_t (*serve)(struct axs_ctx *ctx);
	/* AXS_LOCAL: the measured work, run as the main task. Returns 0 or
	 * -errno; records metrics and calls axs_fail on a check failure. */
	intptr_t (*run)(struct axs_ctx *ctx);
	/* AXS_NET: how the load generator drives the server. NULL or
	 * "requests": request/response loop, closed (or open at a fixed rate
	 * when the scenario has a `rate` parameter set > 0); "idle": open
	 * `connections` connections, leave them idle and sample the server's
	 * memory; "connect": short-lived connections, one echo each. */
	const char *loadgen_mode;
	/* optional, AXS_LOCAL: a fixed amount of work that reads no clock
	 * and depends on no timing, for instructions mode (callgrind counts
	 * repeat exactly only then). Run as the main task; returns the number
	 * of operations done (> 0) or -errno. */
	int64_t (*instr)(struct axs_ctx *ctx);
	/* optional: more instructions workloads, ended by a NULL name */
	const struct axs_instr_alt *instr_alts;
};

/* The instructions workload `name` of sc (NULL when it has none). */
const struct axs_instr_alt *axs_instr_alt_find(const struct axs_scenario *sc,
					       const char *name);

/* The registry (scenarios/registry.c). */
extern const struct axs_scenario *const axs_scenarios[];
const struct axs_scenario *axs_scenario_find(const char *name);

#endif
