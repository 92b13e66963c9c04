/* profile.c - the `quick` and `full` profiles of `axbench run` in one
 * table: per scenario, the parameter values each profile sets, where a
 * list of values sweeps the parameter (docs/harness.md, "Profiles"). */
#include "harness.h"

#include <string.h>

/*
 * One row per scenario. A profile's entry is one or more groups separated
 * by '|'; a group is "param=v[,v...];param=v..." and gives the Cartesian
 * product of its lists. Parameters a group leaves alone keep the
 * scenario's default; the user's -p, --duration and --warmup replace the
 * profile's value of that parameter in every group. Cells that come out
 * identical from two groups run once.
 *
 * quick: every scenario on every runtime in under 3 minutes on the 2-vCPU
 * development VM (3 repetitions): short phases, small counts. It checks
 * that everything runs; its numbers are rough.
 * full: the measurement (5 repetitions), under 45 minutes there with
 * `--runtime all --scenario all`.
 */
static const struct {
	const char *scenario;
	const char *quick;
	const char *full;
} rows[] = {
	{ "tcp_echo",
	  "connections=16;size=64;duration=300ms;warmup=100ms",
	  "connections=1,16,256,1024;size=64,1k,16k;duration=1s;warmup=300ms"
	  "|connections=64;rate=10000,30000,60000;arrivals=poisson;duration=1500ms;warmup=300ms" },
	{ "http_plaintext",
	  "connections=16;pipeline=16;duration=300ms;warmup=100ms",
	  "connections=16,256;pipeline=1,16;duration=1s;warmup=300ms" },
	/* faults: the network faults open loop, next to their baseline (the
	 * same impaired path with nothing impaired); the bad clients beside
	 * a closed loop, next to fault=none */
	{ "tcp_echo_faults",
	  "fault=baseline,delay,loss,reorder;connections=16;rate=2000;duration=300ms;warmup=100ms"
	  "|fault=none,reset,slow_reader,slowloris;connections=16;duration=300ms;warmup=100ms",
	  "fault=baseline,delay,loss,reorder;connections=16;rate=2000,5000;arrivals=poisson;duration=1500ms;warmup=300ms"
	  "|fault=none,reset,slow_reader;connections=16;duration=1s;warmup=300ms"
	  "|fault=slowloris;bad_clients=500;connections=16;duration=1s;warmup=300ms" },
	{ "http_plaintext_faults",
	  "fault=baseline,delay,loss,reorder;connections=16;rate=2000;duration=300ms;warmup=100ms"
	  "|fault=none,reset,slow_reader,slowloris;connections=16;duration=300ms;warmup=100ms",
	  "fault=baseline,delay,loss,reorder;connections=16;rate=2000,5000;arrivals=poisson;duration=1500ms;warmup=300ms"
	  "|fault=none,reset,slow_reader;connections=16;duration=1s;warmup=300ms"
	  "|fault=slowloris;bad_clients=500;connections=16;duration=1s;warmup=300ms" },
	{ "fairness",
	  "yield_every=100us;duration=300ms;warmup=100ms",
	  "yield_every=10us,100us,1ms;duration=1s;warmup=300ms" },
	{ "rpc_fanout",
	  "fanout=4;duration=300ms;warmup=100ms",
	  "fanout=1,4,16;duration=1s;warmup=300ms" },
	{ "idle_conns",
	  "connections=1000;duration=200ms",
	  "connections=10000;duration=1s" },
	{ "connect_storm",
	  "connections=16;duration=300ms;warmup=100ms",
	  "connections=16,64;duration=1s;warmup=300ms" },
	{ "spawn_join",
	  "count=50000;live=2000",
	  "count=200000;live=10000" },
	{ "ctx_switch",
	  "count=500000",
	  "count=2000000" },
	{ "chan_pingpong",
	  "count=200000;xcount=5000",
	  "count=1000000;xcount=20000" },
	{ "timers",
	  "count=100000;tasks=1000;samples=100",
	  "count=1000000;tasks=1000;samples=500" },
	{ "blocking_offload",
	  "calls=5000;tasks=8;work=10us",
	  "calls=20000;tasks=8;work=10us" },
	{ "file_read",
	  "file_size=32m;chunk=64k;depth=4",
	  "file_size=256m;chunk=64k,1m;depth=4" },
};

const char *axb_profile_entry(const char *profile, const char *scenario)
{
	bool quick = !strcmp(profile, "quick");
	if (!quick && strcmp(profile, "full"))
		return NULL; /* "default": the scenarios' own defaults */
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (!strcmp(rows[i].scenario, scenario))
			return quick ? rows[i].quick : rows[i].full;
	return NULL;
}
