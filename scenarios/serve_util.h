/*
 * serve_util.h - pieces shared by network scenarios: the echo server
 * (tcp_echo.c) that fairness, idle_conns and connect_storm also serve, and
 * the open-loop parameters of the load generator.
 */
#ifndef AX_SERVE_UTIL_H
#define AX_SERVE_UTIL_H

#include "scenario.h"

/* The load generator's open-loop parameters, shared by the request/response
 * scenarios (docs/harness.md): `rate` > 0 sends that many requests per
 * second over all connections from a schedule and measures latency from
 * each request's intended send time; 0 is the closed loop. */
#define AX_SC_OPEN_LOOP_PARAMS \
	{"rate", AX_P_INT, "0", "open loop: requests/s over all connections (0: closed loop)", 0, 10000000}, \
	{"arrivals", AX_P_ENUM, "uniform", "uniform|poisson: open-loop gaps between requests", 0, 1}

/* Accept connections on ctx->listen_fd and echo every byte back, until the
 * harness stops the server; then cancel the open connections and return 0
 * (or -errno when accept failed for another reason). Reads use a buffer of
 * max(4 KiB, min(64 KiB, the "size" parameter)). */
intptr_t ax_sc_echo_serve(struct ax_sc_ctx *ctx);

#endif
