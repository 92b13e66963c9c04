/* util.c - small helpers every folder of the harness uses: error lines,
 * clocks, descriptor limits, rusage and metrics as JSON, whole writes. */
#include "harness.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	exit(AXB_EXIT_BAD_INPUT);
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

const char *axb_signal_name(int sig, char *buf, size_t n)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else
		snprintf(buf, n, "signal %d", sig);
	return buf;
}

void axb_rt_opts_clock_free(struct ax_rt_opts *o)
{
	o->tick_ns = -1;
	o->hog_threshold_ns = 0;
}

int64_t axb_stack_option(const char *arg)
{
	/* the range of ax_rt_opts.stack_size ([AX-RT-4]) */
	static const struct axs_param_def stack_p = {
		"stack", AXS_P_BYTES, "", "", 16 * 1024, 1LL << 30,
	};
	int64_t v;
	int err = axs_param_parse(&stack_p, arg, false, &v);
	if (err == -ERANGE)
		axb_bad_input("--stack out of range: '%s' (16k..1g)", arg);
	if (err)
		axb_bad_input("malformed --stack '%s' (bytes, e.g. 16k, 64k)", arg);
	return v;
}
