/* meter.c - the CPU time and memory of any process, read from outside
 * (external targets, `axbench load --server-pid`). CPU: the process's CPU
 * clock (clock_getcpuclockid: every thread, live or exited, in
 * nanoseconds, where /proc/PID/stat's utime and stime count 10 ms ticks),
 * split into user and system time in the ratio of those ticks; plus its
 * live descendants (found through /proc/PID/task/TID/children), and the
 * children it has reaped (cutime + cstime, in ticks). Memory: VmRSS and
 * VmHWM of the process, and the VmRSS of its descendants. */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define METER_MAX_PROCS 256

/* Fields of /proc/pid/stat after the command name: utime, stime, cutime,
 * cstime (ticks), minflt, majflt, num_threads. */
struct pstat {
	unsigned long long utime, stime, cutime, cstime, minflt, majflt;
	long threads;
};

static int read_stat(pid_t pid, struct pstat *ps)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* the name may hold spaces and parentheses: fields follow the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	long long f_[64];
	int k = 0;
	char *save = NULL;
	for (char *t = strtok_r(p + 2, " ", &save); t && k < 64;
	     t = strtok_r(NULL, " ", &save))
		f_[k++] = strtoll(t, NULL, 10);
	/* field 3 (state) is f_[0], so field N is f_[N - 3]; state is a
	 * letter and reads as 0 */
	if (k < 18)
		return -EIO;
	ps->minflt = (unsigned long long)f_[10 - 3];
	ps->majflt = (unsigned long long)f_[12 - 3];
	ps->utime = (unsigned long long)f_[14 - 3];
	ps->stime = (unsigned long long)f_[15 - 3];
	ps->cutime = (unsigned long long)f_[16 - 3];
	ps->cstime = (unsigned long long)f_[17 - 3];
	ps->threads = (long)f_[20 - 3];
	return 0;
}

/* The kB value of `key:` in /proc/pid/status, or -1. */
static long status_kb(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* The process and its live descendants, breadth first, into pids. */
static size_t tree(pid_t root, pid_t *pids, size_t max)
{
	size_t n = 0, i = 0;
	pids[n++] = root;
	while (i < n) {
		pid_t p = pids[i++];
		char dir[64];
		snprintf(dir, sizeof dir, "/proc/%d/task", (int)p);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[320];
			snprintf(path, sizeof path, "%s/%.32s/children", dir, e->d_name);
			FILE *f = fopen(path, "re");
			if (!f)
				continue;
			long c;
			while (n < max && fscanf(f, "%ld", &c) == 1)
				pids[n++] = (pid_t)c;
			fclose(f);
		}
		closedir(d);
	}
	return n;
}

/* Voluntary and involuntary switches summed over the live threads. */
static void switches(pid_t pid, long *vol, long *invol)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[320];
		snprintf(path, sizeof path, "%s/%.32s/status", dir, e->d_name);
		long v = status_kb(path, "voluntary_ctxt_switches");
		long iv = status_kb(path, "nonvoluntary_ctxt_switches");
		*vol += v > 0 ? v : 0;
		*invol += iv > 0 ? iv : 0;
	}
	closedir(d);
}

static double cpu_clock_s(pid_t pid, bool *ok)
{
	clockid_t cid;
	struct timespec ts;
	*ok = false;
	if (clock_getcpuclockid(pid, &cid) || clock_gettime(cid, &ts))
		return 0;
	*ok = true;
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int axb_meter_read(pid_t pid, struct axb_meter *m)
{
	pid_t pids[METER_MAX_PROCS];
	double tick = (double)sysconf(_SC_CLK_TCK);
	if (tick <= 0)
		tick = 100;
	memset(m, 0, sizeof *m);
	m->t_ns = axb_mono_ns();
	struct pstat root;
	int err = read_stat(pid, &root);
	if (err)
		return err;
	size_t n = tree(pid, pids, METER_MAX_PROCS);
	for (size_t i = 0; i < n; i++) {
		struct pstat ps;
		if (i && read_stat(pids[i], &ps))
			continue; /* exited meanwhile */
		if (!i)
			ps = root;
		bool ok;
		double cpu = cpu_clock_s(pids[i], &ok);
		double ticks = (double)(ps.utime + ps.stime);
		if (!ok)
			cpu = ticks / tick;
		m->cpu_s += cpu;
		m->user_ticks_s += (double)ps.utime / tick;
		m->sys_ticks_s += (double)ps.stime / tick;
		m->minflt += (long)ps.minflt;
		m->majflt += (long)ps.majflt;
		m->threads += ps.threads;
		switches(pids[i], &m->nvcsw, &m->nivcsw);
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/status", (int)pids[i]);
		long rss = status_kb(path, "VmRSS");
		m->rss_kib += rss > 0 ? rss : 0;
		if (!i)
			m->hwm_kib = status_kb(path, "VmHWM");
	}
	/* children it reaped: their whole lives, in ticks */
	m->reaped_s = (double)(root.cutime + root.cstime) / tick;
	m->cpu_s += m->reaped_s;
	m->procs = (int)n;
	return 0;
}

void axb_meter_delta(const struct axb_meter *a, const struct axb_meter *b,
		     double *user_s, double *sys_s)
{
	double cpu = b->cpu_s - a->cpu_s;
	double u = b->user_ticks_s - a->user_ticks_s, s = b->sys_ticks_s - a->sys_ticks_s;
	if (cpu < 0)
		cpu = 0;
	/* split the precise total in the ratio of the ticks; without ticks
	 * (a phase shorter than one) all of it counts as user time */
	double us = u + s > 0 ? u / (u + s) : 1.0;
	*user_s = cpu * us;
	*sys_s = cpu - *user_s;
}

json_t *axb_meter_delta_json(const struct axb_meter *a, const struct axb_meter *b)
{
	double user, sys, wall = (double)(b->t_ns - a->t_ns) / 1e9;
	axb_meter_delta(a, b, &user, &sys);
	return json_pack("{s:f, s:f, s:f, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:i}",
			 "wall_s", wall, "user_s", user, "sys_s", sys,
			 "cpu_util", axb_real(wall > 0 ? (user + sys) / wall : 0),
			 "nvcsw", (json_int_t)(b->nvcsw - a->nvcsw),
			 "nivcsw", (json_int_t)(b->nivcsw - a->nivcsw),
			 "minflt", (json_int_t)(b->minflt - a->minflt),
			 "rss_start_kib", (json_int_t)a->rss_kib,
			 "rss_end_kib", (json_int_t)b->rss_kib,
			 "threads", (json_int_t)b->threads,
			 "processes", b->procs);
}

/* The inodes of the sockets listening on TCP port `port` (IPv4 and IPv6),
 * from /proc/net/tcp and tcp6. Returns the count stored. */
static size_t listen_inodes(int port, unsigned long *ino, size_t max)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	size_t n = 0;
	for (size_t f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "re");
		char line[512];
		if (!fp)
			continue;
		while (fgets(line, sizeof line, fp) && n < max) {
			char local[128];
			unsigned st;
			unsigned long inode;
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, " %*s %127s %*s %x %*s %*s %*s %*s %*s %lu",
				   local, &st, &inode) != 3)
				continue;
			char *colon = strrchr(local, ':');
			if (st == 0x0A && colon && strtol(colon + 1, NULL, 16) == port)
				ino[n++] = inode;
		}
		fclose(fp);
	}
	return n;
}

bool axb_port_listened(int port)
{
	unsigned long ino[1];
	return listen_inodes(port, ino, 1) > 0;
}

int axb_pid_listens(pid_t pid, int port)
{
	unsigned long ino[64];
	pid_t pids[METER_MAX_PROCS];
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d", (int)pid);
	if (access(dir, F_OK))
		return -ESRCH;
	size_t ni = listen_inodes(port, ino, 64);
	size_t np = tree(pid, pids, METER_MAX_PROCS);
	bool readable = false;
	for (size_t p = 0; p < np; p++) {
		snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pids[p]);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		readable = true;
		struct dirent *e;
		while ((e = readdir(d))) {
			char path[128], link[64];
			snprintf(path, sizeof path, "%s/%.32s", dir, e->d_name);
			ssize_t l = readlink(path, link, sizeof link - 1);
			if (l <= 0)
				continue;
			link[l] = 0;
			unsigned long x;
			if (sscanf(link, "socket:[%lu]", &x) != 1)
				continue;
			for (size_t i = 0; i < ni; i++)
				if (ino[i] == x) {
					closedir(d);
					return 1;
				}
		}
		closedir(d);
	}
	return readable ? 0 : -EACCES;
}
