/* pin.c - CPU pinning of the harness's processes: which CPUs the process
 * may use, and pinning a thread (and what it starts later) to one of them. */
#include "proc.h"

#include <errno.h>
#include <sched.h>

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
