/* registry.c - the table of scenarios axbench knows, in the order `axbench
 * list` shows them (network scenarios first), and the hidden test-only
 * ones; add a scenario by declaring it here and listing it. */
#include <string.h>

#include "scenario.h"

extern const struct ax_scenario ax_sc_tcp_echo;
extern const struct ax_scenario ax_sc_http_plaintext;
extern const struct ax_scenario ax_sc_fairness;
extern const struct ax_scenario ax_sc_rpc_fanout;
extern const struct ax_scenario ax_sc_spawn_join;
extern const struct ax_scenario ax_sc_ctx_switch;
extern const struct ax_scenario ax_sc_chan_pingpong;
extern const struct ax_scenario ax_sc_timers;
extern const struct ax_scenario ax_sc_blocking_offload;
extern const struct ax_scenario ax_sc_file_read;
extern const struct ax_scenario ax_sc_idle_conns;
extern const struct ax_scenario ax_sc_connect_storm;
extern const struct ax_scenario ax_sc_stall_echo;

const struct ax_scenario *const ax_scenarios[] = {
	&ax_sc_tcp_echo,
	&ax_sc_http_plaintext,
	&ax_sc_fairness,
	&ax_sc_rpc_fanout,
	&ax_sc_idle_conns,
	&ax_sc_connect_storm,
	&ax_sc_spawn_join,
	&ax_sc_ctx_switch,
	&ax_sc_chan_pingpong,
	&ax_sc_timers,
	&ax_sc_blocking_offload,
	&ax_sc_file_read,
	NULL,
};

/* Test-only scenarios: found by name, but neither listed nor part of
 * `--scenario all` (docs/harness.md). */
static const struct ax_scenario *const hidden[] = {
	&ax_sc_stall_echo,
	NULL,
};

const struct ax_scenario *ax_scenario_find(const char *name)
{
	for (size_t i = 0; ax_scenarios[i]; i++)
		if (!strcmp(ax_scenarios[i]->name, name))
			return ax_scenarios[i];
	for (size_t i = 0; hidden[i]; i++)
		if (!strcmp(hidden[i]->name, name))
			return hidden[i];
	return NULL;
}
