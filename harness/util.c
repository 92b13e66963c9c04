/* util.c - small helpers of the harness: error lines, clocks, CPU pinning,
 * descriptor limits, rusage as JSON and atomic file writes. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Noreturn void axb_bad_input(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "axbench: %s\n", msg);
	fflush(stderr);
	exit(2);
}

void axb_err(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "axbench: %s\n", msg);
}

int64_t axb_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t axb_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void axb_utc_iso(int64_t t, char *buf, size_t n)
{
	time_t s = (time_t)(t / 1000000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

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

int axb_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur == rl.rlim_max)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	return 0;
}

json_t *axb_real(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

void axb_metric_set(json_t *m, const char *name, double v, const char *unit,
		    int better)
{
	json_object_set_new(m, name, json_pack("{s:o, s:s, s:i}", "value",
					       axb_real(v), "unit", unit,
					       "better", better));
}

double axb_tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

long axb_peak_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

json_t *axb_rusage_json(const struct rusage *ru)
{
	/* ru_maxrss survives fork+exec (Linux keeps the larger of the old and
	 * new address space's peak), so a child started by a big parent would
	 * report the parent's size: VmHWM is this image's own peak. */
	long hwm = axb_peak_rss_kb();
	return json_pack("{s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "user_s", axb_tv_s(ru->ru_utime),
			 "sys_s", axb_tv_s(ru->ru_stime),
			 "maxrss_kb", (json_int_t)(hwm >= 0 ? hwm : ru->ru_maxrss),
			 "ru_maxrss_kb", (json_int_t)ru->ru_maxrss,
			 "nvcsw", (json_int_t)ru->ru_nvcsw,
			 "nivcsw", (json_int_t)ru->ru_nivcsw,
			 "minflt", (json_int_t)ru->ru_minflt,
			 "majflt", (json_int_t)ru->ru_majflt);
}

int axb_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int axb_write_json_line(int fd, const json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (!s)
		return -ENOMEM;
	size_t len = strlen(s);
	int err = axb_write_all(fd, s, len);
	if (!err)
		err = axb_write_all(fd, "\n", 1);
	free(s);
	return err;
}

/* The directory part of path, in buf. */
static void dir_of(const char *path, char *buf, size_t n)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	snprintf(buf, n, "%s", dirname(tmp));
}

int axb_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[4200], dir[4096];
	int fd, err = 0;

	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	err = axb_write_all(fd, data, len);
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (err)
		goto unlink_tmp;
	if (rename(tmp, path)) {
		err = -errno;
		goto unlink_tmp;
	}
	/* make the rename itself durable */
	dir_of(path, dir, sizeof dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;

unlink_tmp:
	unlink(tmp);
	return err;
}

int axb_check_writable(const char *path)
{
	char tmp[4200];
	struct stat st;

	if (!*path)
		return -ENOENT;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	unlink(tmp);
	return 0;
}

const char *axb_signal_name(int sig, char *buf, size_t n)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else
		snprintf(buf, n, "signal %d", sig);
	return buf;
}

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

void axb_cpuload_read(struct axb_cpuload *c, int cpu0, int cpu1)
{
	char line[512];
	double tick = (double)sysconf(_SC_CLK_TCK);
	double la[3];

	memset(c, 0, sizeof *c);
	c->cpu[0] = cpu0;
	c->cpu[1] = cpu1;
	FILE *f = fopen("/proc/stat", "re");
	while (f && fgets(line, sizeof line, f)) {
		int n;
		unsigned long long us, ni, sy, id, io, irq, sirq, st;
		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &n,
			   &us, &ni, &sy, &id, &io, &irq, &sirq, &st) != 9)
			continue;
		for (int k = 0; k < 2; k++) {
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
	bool same = a->cpu[0] == a->cpu[1];
	json_t *cpus = json_array(), *busy = json_array(), *steal = json_array();
	for (int k = 0; k < (same ? 1 : 2); k++) {
		json_array_append_new(cpus, json_integer(a->cpu[k]));
		json_array_append_new(busy, json_real(b->busy_s[k] - a->busy_s[k]));
		json_array_append_new(steal, json_real(b->steal_s[k] - a->steal_s[k]));
	}
	return json_pack("{s:o, s:o, s:o, s:f}", "cpus", cpus, "busy_s", busy,
			 "steal_s", steal, "loadavg_1m", b->loadavg1);
}
