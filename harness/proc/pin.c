/* pin.c - CPU pinning of the harness's processes: which CPUs the process
 * may use, CPU sets written as lists ("0-3,6"), and pinning a thread (and
 * what it starts later) to one CPU or to a set. */
#include "proc.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int axb_pin_cpu(int cpu)
{
	cpu_set_t set;
	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set))
		return -errno;
	return 0;
}

int axb_pin_cpus(const struct axb_cpus *c)
{
	cpu_set_t set;
	if (c->n < 1)
		return -EINVAL;
	CPU_ZERO(&set);
	for (int i = 0; i < c->n; i++) {
		if (c->cpu[i] < 0 || c->cpu[i] >= CPU_SETSIZE)
			return -EINVAL;
		CPU_SET(c->cpu[i], &set);
	}
	if (sched_setaffinity(0, sizeof set, &set))
		return -errno;
	return 0;
}

int axb_allowed_cpus(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof set, &set))
		return -errno;
	for (int i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n;
}

int axb_cpus_allowed(struct axb_cpus *c)
{
	int n = axb_allowed_cpus(c->cpu, AXB_MAX_CPUS);
	c->n = n > 0 ? n : 0;
	return n < 0 ? n : 0;
}

int axb_cpus_parse(const char *s, struct axb_cpus *out)
{
	bool in[AXB_MAX_CPUS] = { false };
	const char *p = s;

	out->n = 0;
	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		char *end;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		long lo = strtol(p, &end, 10), hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				return -EINVAL;
			hi = strtol(p, &end, 10);
			p = end;
		}
		if (hi < lo)
			return -EINVAL;
		if (hi >= AXB_MAX_CPUS)
			return -ERANGE;
		for (long i = lo; i <= hi; i++)
			in[i] = true;
		if (!*p)
			break;
		if (*p++ != ',')
			return -EINVAL;
	}
	for (int i = 0; i < AXB_MAX_CPUS; i++)
		if (in[i])
			out->cpu[out->n++] = i;
	return 0;
}

void axb_cpus_format(const struct axb_cpus *c, char *buf, size_t n)
{
	size_t off = 0;
	if (n)
		buf[0] = 0;
	for (int i = 0; i < c->n && off < n; ) {
		int j = i;
		while (j + 1 < c->n && c->cpu[j + 1] == c->cpu[j] + 1)
			j++;
		int w = j > i ? snprintf(buf + off, n - off, "%s%d-%d", off ? "," : "",
					 c->cpu[i], c->cpu[j])
			      : snprintf(buf + off, n - off, "%s%d", off ? "," : "",
					 c->cpu[i]);
		if (w < 0)
			break;
		off += (size_t)w;
		i = j + 1;
	}
}

bool axb_cpus_has(const struct axb_cpus *c, int cpu)
{
	for (int i = 0; i < c->n; i++)
		if (c->cpu[i] == cpu)
			return true;
	return false;
}

json_t *axb_cpus_json(const struct axb_cpus *c)
{
	json_t *a = json_array();
	for (int i = 0; a && i < c->n; i++)
		json_array_append_new(a, json_integer(c->cpu[i]));
	return a;
}
