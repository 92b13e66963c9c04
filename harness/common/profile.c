/* profile.c - the `quick`, `full` and `scaling` profiles of `axbench run`
 * in one table: per scenario, the parameter values each profile sets, where
 * a list of values sweeps the parameter (docs/harness.md, "Profiles"). */
#include "harness.h"

#include <stdio.h>
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
 * `--runtime all --scenario all`; it includes the scaling sweep.
 * scaling: only the thread-per-core sweep, workers = 1, 2, 4, ... up to
 * the server's CPUs (at least 1,2), written WORKERS in the table.
 */
static const struct {
	const char *scenario;
	const char *quick;
	const char *full;
	const char *scaling;
} rows[] = {
	{ "tcp_echo",
	  "connections=16;size=64;duration=300ms;warmup=100ms",
	  "connections=1,16,256,1024;size=64,1k,16k;duration=1s;warmup=300ms"
	  "|connections=64;rate=10000,30000,60000;arrivals=poisson;duration=1500ms;warmup=300ms"
	  "|connections=256;size=64;workers=WORKERS;duration=1s;warmup=300ms",
	  "connections=256;size=64;workers=WORKERS;duration=1s;warmup=300ms" },
	{ "http_plaintext",
	  "connections=16;pipeline=16;duration=300ms;warmup=100ms",
	  "connections=16,256;pipeline=1,16;duration=1s;warmup=300ms"
	  "|connections=256;pipeline=16;workers=WORKERS;duration=1s;warmup=300ms",
	  "connections=256;pipeline=16;workers=WORKERS;duration=1s;warmup=300ms" },
	{ "fairness",
	  "yield_every=100us;duration=300ms;warmup=100ms",
	  "yield_every=10us,100us,1ms;duration=1s;warmup=300ms",
	  NULL },
	{ "rpc_fanout",
	  "fanout=4;duration=300ms;warmup=100ms",
	  "fanout=1,4,16;duration=1s;warmup=300ms",
	  "connections=64;fanout=4;workers=WORKERS;duration=1s;warmup=300ms" },
	{ "idle_conns",
	  "connections=1000;duration=200ms",
	  "connections=10000;duration=1s",
	  NULL },
	{ "connect_storm",
	  "connections=16;duration=300ms;warmup=100ms",
	  "connections=16,64;duration=1s;warmup=300ms",
	  "connections=64;workers=WORKERS;duration=1s;warmup=300ms" },
	{ "spawn_join",
	  "count=50000;live=2000",
	  "count=200000;live=10000",
	  NULL },
	{ "ctx_switch",
	  "count=500000",
	  "count=2000000",
	  NULL },
	{ "chan_pingpong",
	  "count=200000;xcount=5000",
	  "count=1000000;xcount=20000",
	  NULL },
	{ "timers",
	  "count=100000;tasks=1000;samples=100",
	  "count=1000000;tasks=1000;samples=500",
	  NULL },
	{ "blocking_offload",
	  "calls=5000;tasks=8;work=10us",
	  "calls=20000;tasks=8;work=10us",
	  NULL },
	{ "file_read",
	  "file_size=32m;chunk=64k;depth=4",
	  "file_size=256m;chunk=64k,1m;depth=4",
	  NULL },
};

/* The workers sweep for a server of `cpus` CPUs: 1, 2, 4, ... below
 * cpus, then cpus itself; at least "1,2". */
static void workers_list(int cpus, char *buf, size_t n)
{
	size_t off = 0;
	int top = cpus < 2 ? 2 : cpus;
	for (int w = 1; w < top && off < n; w *= 2)
		off += (size_t)snprintf(buf + off, n - off, "%d,", w);
	if (off < n)
		snprintf(buf + off, n - off, "%d", top);
}

const char *axb_profile_entry(const char *profile, const char *scenario,
			      int server_cpus)
{
	static char expanded[1024];
	int k = !strcmp(profile, "quick") ? 0 : !strcmp(profile, "full") ? 1
		: !strcmp(profile, "scaling") ? 2 : -1;
	if (k < 0)
		return NULL; /* "default": the scenarios' own defaults */
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (strcmp(rows[i].scenario, scenario))
			continue;
		const char *e = k == 0 ? rows[i].quick : k == 1 ? rows[i].full
			      : rows[i].scaling;
		const char *w = e ? strstr(e, "WORKERS") : NULL;
		if (!w)
			return e;
		char list[256];
		workers_list(server_cpus, list, sizeof list);
		snprintf(expanded, sizeof expanded, "%.*s%s%s", (int)(w - e), e,
			 list, w + strlen("WORKERS"));
		return expanded;
	}
	return NULL;
}
