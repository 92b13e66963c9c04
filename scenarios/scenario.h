/*
 * scenario.h - how a scenario is described to the harness.
 *
 * A scenario is one file in scenarios/, written against ax.h only, and
 * registered in scenarios/registry.c. Two kinds:
 *
 *   AX_SC_NET    a network scenario: `serve` runs the server side as the main
 *                task of the runtime under test, on a listening socket the
 *                harness created; the client side is the harness's load
 *                generator speaking the scenario's `protocol`.
 *   AX_SC_LOCAL  a user-space scenario (spawn, channels, timers): `run` runs
 *                as the main task of the runtime under test, does a fixed
 *                amount of work and records metrics.
 *
 * Every scenario has a `check` verdict: a run whose check failed reports the
 * failure and no numbers.
 */
#ifndef AX_SCENARIO_H
#define AX_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ax.h"

enum ax_param_type {
	AX_P_INT,      /* plain integer: "64", "1000"                     */
	AX_P_BYTES,    /* bytes with optional k/m/g suffix (1024-based)    */
	AX_P_DURATION, /* nanoseconds written with ns/us/ms/s suffix       */
	AX_P_ENUM,     /* one of the names that start `help`, written
			* "name0|name1|...: the help text"; the value is the
			* index of the name (min 0, max the last index)     */
};

struct ax_param {
	const char *name;
	enum ax_param_type type;
	const char *def;   /* default, in the same syntax the user types */
	const char *help;
	int64_t min, max;  /* accepted range (inclusive), in base units */
};

enum ax_sc_kind { AX_SC_NET, AX_SC_LOCAL };

/* What a running scenario sees. */
struct ax_sc_ctx {
	const struct ax_scenario *sc;
	const int64_t *values;  /* one per sc->params entry, in base units */
	int listen_fd;          /* AX_SC_NET: the listening socket; else -1 */
	bool quick;             /* the quick profile is in effect */
	/* AX_SC_NET: set by the harness (from an ax_post function) when the
	 * server must stop; serve should then return promptly. The harness also
	 * cancels the main task. */
	volatile bool stopping;
	/* Results, filled by run / serve through ax_sc_metric and friends. */
	struct ax_sc_out *out;
};

/* The value of parameter `name`; aborts on an unknown name (a scenario bug,
 * caught by the tests). */
int64_t ax_sc_param(const struct ax_sc_ctx *ctx, const char *name);

/* Record a named metric. unit is "ops/s", "ns", "bytes", ... and
 * `better` is +1 when higher is better, -1 when lower is. */
void ax_sc_metric(struct ax_sc_ctx *ctx, const char *name, double value,
		  const char *unit, int better);

/* Record a latency sample in nanoseconds into the scenario's histogram
 * named `name` (created on first use). */
void ax_sc_latency(struct ax_sc_ctx *ctx, const char *name, int64_t ns);

/* Fail the check with a message (printf-style). The first failure wins. */
void ax_sc_fail(struct ax_sc_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct ax_scenario {
	const char *name;
	const char *summary;
	enum ax_sc_kind kind;
	uint32_t features;            /* AX_FEAT_* the runtime must have */
	const char *protocol;         /* AX_SC_NET: load generator protocol */
	const struct ax_param *params;
	size_t nparams;
	/* AX_SC_NET: the server, run as the main task. Returns 0 or -errno. */
	intptr_t (*serve)(struct ax_sc_ctx *ctx);
	/* AX_SC_LOCAL: the measured work, run as the main task. Returns 0 or
	 * -errno; records metrics and calls ax_sc_fail on a check failure. */
	intptr_t (*run)(struct ax_sc_ctx *ctx);
	/* AX_SC_NET: how the load generator drives the server. NULL or
	 * "requests": request/response loop, closed (or open at a fixed rate
	 * when the scenario has a `rate` parameter set > 0); "idle": open
	 * `connections` connections, leave them idle and sample the server's
	 * memory; "connect": short-lived connections, one echo each. */
	const char *loadgen_mode;
	/* optional, AX_SC_LOCAL: a fixed amount of work that reads no clock
	 * and depends on no timing, for instructions mode (callgrind counts
	 * repeat exactly only then). Run as the main task; returns the number
	 * of operations done (> 0) or -errno. */
	int64_t (*instr)(struct ax_sc_ctx *ctx);
};

/* The registry (scenarios/registry.c). */
extern const struct ax_scenario *const ax_scenarios[];
const struct ax_scenario *ax_scenario_find(const char *name);

#endif
