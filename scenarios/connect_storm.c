/*
 * connect_storm.c - short-lived connections accepted per second: each of
 * `connections` concurrent connectors (closed loop) connects, sends one
 * message, checks its echo, closes and starts again. The latency is the
 * connection's whole life, connect to echo.
 */
#include "scenario.h"
#include "serve_util.h"

static const struct axs_param_def storm_params[] = {
	{"connections", AXS_P_INT, "16", "concurrent connectors", 1, 10000},
	{"size", AXS_P_BYTES, "64", "message echoed on each connection", 1, 65536},
	AX_SC_WORKERS_PARAM,
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_connect_storm = {
	.name = "connect_storm",
	.summary = "short-lived connections per second: connect, one echo, close",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = storm_params,
	.nparams = sizeof storm_params / sizeof storm_params[0],
	.serve = axs_echo_serve,
	.loadgen_mode = "connect",
};
