/*
 * idle_conns.c - memory per idle connection: the load generator opens
 * `connections` connections (10k by default) to an echo server, exchanges
 * one message on each, leaves them idle for `duration` while the harness
 * samples the server's resident memory, then exchanges one more message on
 * each to check that every connection is still served. Both processes
 * raise RLIMIT_NOFILE; the result says when the limit kept the count below
 * what was asked (docs/harness.md).
 */
#include "scenario.h"
#include "serve_util.h"

static const struct axs_param_def idle_params[] = {
	{"connections", AXS_P_INT, "10000", "idle connections held open", 1, 100000},
	{"size", AXS_P_BYTES, "64", "size of the check message sent on each", 1, 65536},
	{"duration", AXS_P_DURATION, "1s", "idle time before the memory sample", 1000000, 3600000000000},
};

const struct axs_scenario axs_idle_conns = {
	.name = "idle_conns",
	.summary = "server memory per idle connection (10k connections, each checked by an echo)",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = idle_params,
	.nparams = sizeof idle_params / sizeof idle_params[0],
	.serve = axs_echo_serve,
	.loadgen_mode = "idle",
};
