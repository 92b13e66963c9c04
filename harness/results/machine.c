/* machine.c - machine-wide counters read around each repetition, to tell
 * whether something other than the measured processes moved the numbers:
 * loopback network drops and retransmissions, busy and steal time of the
 * pinned CPUs, and the load average. */
#include "results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Look `key` up in a /proc/net/{snmp,netstat} file: pairs of lines, a
 * header line of names and a line of values, both led by "Prefix:". */
static void proc_net_pairs(const char *path, const char *prefix,
			   const char *const *keys, int64_t *const *out, size_t n)
{
	char names[4096], vals[4096];
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(names, sizeof names, f) && fgets(vals, sizeof vals, f)) {
		if (strncmp(names, prefix, strlen(prefix)))
			continue;
		char *sn = NULL, *sv = NULL;
		char *a = strtok_r(names, " \n", &sn), *b = strtok_r(vals, " \n", &sv);
		while ((a = strtok_r(NULL, " \n", &sn)) && (b = strtok_r(NULL, " \n", &sv)))
			for (size_t i = 0; i < n; i++)
				if (!strcmp(a, keys[i]))
					*out[i] = strtoll(b, NULL, 10);
	}
	fclose(f);
}

void axb_netc_read(struct axb_netc *c)
{
	static const char *const tcp[] = { "RetransSegs" };
	static const char *const ext[] = { "TCPTimeouts", "TCPLossProbes",
		"ListenDrops", "ListenOverflows", "TCPBacklogDrop" };
	int64_t *const tcp_out[] = { &c->retrans_segs };
	int64_t *const ext_out[] = { &c->tcp_timeouts, &c->loss_probes,
		&c->listen_drops, &c->listen_overflows, &c->backlog_drops };
	char line[512];

	memset(c, 0, sizeof *c);
	proc_net_pairs("/proc/net/snmp", "Tcp:", tcp, tcp_out, 1);
	proc_net_pairs("/proc/net/netstat", "TcpExt:", ext, ext_out, 5);
	/* softnet_stat: one line per CPU, hex columns; the second is drops */
	FILE *f = fopen("/proc/net/softnet_stat", "re");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long processed, dropped;
		if (sscanf(line, "%lx %lx", &processed, &dropped) == 2)
			c->softnet_dropped += (int64_t)dropped;
	}
	if (f)
		fclose(f);
}

json_t *axb_netc_delta_json(const struct axb_netc *a, const struct axb_netc *b)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"tcp_retrans_segs", (json_int_t)(b->retrans_segs - a->retrans_segs),
		"tcp_timeouts", (json_int_t)(b->tcp_timeouts - a->tcp_timeouts),
		"tcp_loss_probes", (json_int_t)(b->loss_probes - a->loss_probes),
		"listen_drops", (json_int_t)(b->listen_drops - a->listen_drops),
		"listen_overflows", (json_int_t)(b->listen_overflows - a->listen_overflows),
		"tcp_backlog_drops", (json_int_t)(b->backlog_drops - a->backlog_drops),
		"softnet_dropped", (json_int_t)(b->softnet_dropped - a->softnet_dropped));
}

void axb_loadavg(double la[3])
{
	la[0] = la[1] = la[2] = -1;
	FILE *f = fopen("/proc/loadavg", "re");
	if (!f)
		return;
	if (fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3)
		la[0] = la[1] = la[2] = -1;
	fclose(f);
}

void axb_cpuload_read(struct axb_cpuload *c, const struct axb_cpus *cpus)
{
	char line[512];
	double tick = (double)sysconf(_SC_CLK_TCK);
	double la[3];

	memset(c, 0, sizeof *c);
	c->n = cpus->n;
	memcpy(c->cpu, cpus->cpu, (size_t)cpus->n * sizeof c->cpu[0]);
	FILE *f = fopen("/proc/stat", "re");
	while (f && fgets(line, sizeof line, f)) {
		int n;
		unsigned long long us, ni, sy, id, io, irq, sirq, st;
		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &n,
			   &us, &ni, &sy, &id, &io, &irq, &sirq, &st) != 9)
			continue;
		for (int k = 0; k < c->n; k++) {
			if (n != c->cpu[k])
				continue;
			c->busy_s[k] = (double)(us + ni + sy + irq + sirq) / tick;
			c->steal_s[k] = (double)st / tick;
		}
	}
	if (f)
		fclose(f);
	axb_loadavg(la);
	c->loadavg1 = la[0];
}

json_t *axb_cpuload_delta_json(const struct axb_cpuload *a,
			       const struct axb_cpuload *b)
{
	json_t *cpus = json_array(), *busy = json_array(), *steal = json_array();
	for (int k = 0; k < a->n; k++) {
		json_array_append_new(cpus, json_integer(a->cpu[k]));
		json_array_append_new(busy, json_real(b->busy_s[k] - a->busy_s[k]));
		json_array_append_new(steal, json_real(b->steal_s[k] - a->steal_s[k]));
	}
	return json_pack("{s:o, s:o, s:o, s:f}", "cpus", cpus, "busy_s", busy,
			 "steal_s", steal, "loadavg_1m", b->loadavg1);
}
