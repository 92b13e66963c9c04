/* registry.c - the table of scenarios axbench knows, in the order `axbench
 * list` shows them (network scenarios first), and the hidden test-only
 * ones; add a scenario by declaring it here and listing it. */
#include <string.h>

#include "scenario.h"

extern const struct axs_scenario axs_tcp_echo;
extern const struct axs_scenario axs_http_plaintext;
extern const struct axs_scenario axs_tcp_echo_faults;
extern const struct axs_scenario axs_http_plaintext_faults;
extern const struct axs_scenario axs_fairness;
extern const struct axs_scenario axs_rpc_fanout;
extern const struct axs_scenario axs_spawn_join;
extern const struct axs_scenario axs_ctx_switch;
extern const struct axs_scenario axs_chan_pingpong;
extern const struct axs_scenario axs_timers;
extern const struct axs_scenario axs_blocking_offload;
extern const struct axs_scenario axs_file_read;
extern const struct axs_scenario axs_idle_conns;
extern const struct axs_scenario axs_connect_storm;
extern const struct axs_scenario axs_stall_echo;
extern const struct axs_scenario axs_example_pipeline;

const struct axs_scenario *const axs_scenarios[] = {
	&axs_tcp_echo,
	&axs_http_plaintext,
	&axs_fairness,
	&axs_rpc_fanout,
	&axs_idle_conns,
	&axs_connect_storm,
	&axs_tcp_echo_faults,
	&axs_http_plaintext_faults,
	&axs_spawn_join,
	&axs_ctx_switch,
	&axs_chan_pingpong,
	&axs_timers,
	&axs_blocking_offload,
	&axs_file_read,
	NULL,
};

/* Test-only scenarios: found by name, but neither listed nor part of
 * `--scenario all` (docs/harness.md). */
static const struct axs_scenario *const hidden[] = {
	&axs_stall_echo,
	&axs_example_pipeline, /* docs/adding-a-scenario.md */
	NULL,
};

const struct axs_scenario *axs_scenario_find(const char *name)
{
	for (size_t i = 0; axs_scenarios[i]; i++)
		if (!strcmp(axs_scenarios[i]->name, name))
			return axs_scenarios[i];
	for (size_t i = 0; hidden[i]; i++)
		if (!strcmp(hidden[i]->name, name))
			return hidden[i];
	return NULL;
}

const struct axs_instr_alt *axs_instr_alt_find(const struct axs_scenario *sc,
					       const char *name)
{
	for (const struct axs_instr_alt *a = sc->instr_alts; a && a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}
