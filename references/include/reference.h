/*
 * reference.h - the reference implementations measured beside the ax
 * runtimes: servers and local workloads written directly on the operating
 * system or an engine's own API (references/native/: one per engine and
 * scenario; references/blocking.c: a thread per connection on blocking
 * sockets). The harness starts, measures and stops them exactly as it does
 * an ax runtime serving a scenario.
 *
 * This layer sees ax.h (for the scenario types), the scenario layer and
 * the measurement library, never the harness.
 */
#ifndef AXR_REFERENCE_H
#define AXR_REFERENCE_H

#include <stdatomic.h>
#include <stdint.h>

#include "scenario.h"

/* A running reference server: what the harness hands it, and what it
 * reports back. */
struct axr_run {
	int listen_fd;                 /* blocking listener, owned by caller */
	const struct axs_scenario *sc;
	const int64_t *values;         /* one per sc->params, base units */
	atomic_bool stopping;          /* set by stop() */
	char fail[256];                /* check failure, "" when none */
	void *state;                   /* the reference's own */
};

/* A reference implementation. */
struct axr_ref {
	const char *name;
	const char *summary;
	const char *engine_info;
	const char *const *scenarios;  /* NULL-terminated names it serves */
	/* Serve r->listen_fd until stop is called. Returns 0 or -errno. */
	int (*serve)(struct axr_run *r);
	/* Make serve return soon. Thread-safe; called from another thread. */
	void (*stop)(struct axr_run *r);
	/* The AXS_LOCAL scenarios among `scenarios`: do the scenario's work
	 * on the calling thread, outside any ax runtime, recording metrics and
	 * check failures through ctx as a scenario's run does. Returns 0 or
	 * -errno. NULL when the reference only serves. */
	intptr_t (*run_local)(struct axs_ctx *ctx);
};

/* Every reference compiled in, NULL-terminated: the blocking server, then
 * one native version per engine found at build time. */
extern const struct axr_ref *const axr_refs[];

#endif
