/*
 * faults.c - tcp_echo and http_plaintext under faults: the same servers,
 * unchanged, while the harness impairs the network (delay with jitter,
 * loss, reordering, in a private network namespace) or runs bad clients
 * beside the well-behaved ones (peers that reset mid-message, slow
 * readers, a slowloris flood). The figures are the well-behaved clients';
 * `fault=none` and `fault=baseline` are the same paths without the fault,
 * to divide by. The faults themselves are the harness's
 * (harness/common/fault.c, harness/load/faults.c): a server sees only
 * what a real peer would send it. docs/harness.md, "Fault scenarios".
 */
#include "scenario.h"
#include "serve_util.h"

/* the order is the harness's enum axb_fault */
#define FAULT_PARAMS \
	{"fault", AXS_P_ENUM, "none", \
	 "none|baseline|delay|loss|reorder|reset|slow_reader|slowloris: " \
	 "the fault beside the measured clients (baseline: the delay/loss/" \
	 "reorder path with nothing impaired)", 0, 7}, \
	{"delay", AXS_P_DURATION, "1ms", "fault=delay|reorder: added delay per packet", \
	 0, 1000000000}, \
	{"jitter", AXS_P_DURATION, "250us", "fault=delay: uniform jitter (+/-) on the delay", \
	 0, 1000000000}, \
	{"bad_clients", AXS_P_INT, "64", \
	 "fault=reset|slow_reader|slowloris: connections of bad clients", 1, 20000}

static const struct axs_param_def echo_fault_params[] = {
	{"connections", AXS_P_INT, "16", "well-behaved client connections", 1, 100000},
	{"size", AXS_P_BYTES, "64", "message size in bytes", 1, 1 << 20},
	{"pipeline", AXS_P_INT, "1", "messages in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	FAULT_PARAMS,
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_tcp_echo_faults = {
	.name = "tcp_echo_faults",
	.summary = "tcp_echo under a fault (-p fault=delay|loss|reorder|reset|slow_reader|slowloris): what the well-behaved clients get",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = echo_fault_params,
	.nparams = sizeof echo_fault_params / sizeof echo_fault_params[0],
	.serve = axs_echo_serve,
};

static const struct axs_param_def http_fault_params[] = {
	{"connections", AXS_P_INT, "16", "well-behaved client connections", 1, 100000},
	{"pipeline", AXS_P_INT, "1", "requests in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	FAULT_PARAMS,
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_http_plaintext_faults = {
	.name = "http_plaintext_faults",
	.summary = "http_plaintext under a fault (-p fault=...): what the well-behaved clients get",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "http",
	.params = http_fault_params,
	.nparams = sizeof http_fault_params / sizeof http_fault_params[0],
	.serve = axs_http_serve,
};
