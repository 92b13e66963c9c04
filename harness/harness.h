/*
 * harness.h - declarations shared by the axbench harness files: the CLI
 * commands, parameter parsing, statistics, implementations (ax runtimes and
 * native references), the child processes and the result file.
 */
#ifndef AXB_HARNESS_H
#define AXB_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <jansson.h>

#include "ax.h"
#include "hist.h"
#include "reference.h"
#include "scenario_host.h"
#include "stats.h"

#define AXB_VERSION "0.1.0"
#define AXB_SCHEMA_VERSION 1

/* ------------------------------------------------------------------ */
/* util.c                                                              */
/* ------------------------------------------------------------------ */

/* Print "axbench: <message>" on stderr and exit with status 2 (bad input). */
_Noreturn void axb_bad_input(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Print "axbench: <message>" on stderr. */
void axb_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic and wall-clock time in nanoseconds. */
int64_t axb_mono_ns(void);
int64_t axb_wall_ns(void);

/* "2024-05-01T12:34:56Z" for wall-clock ns t. */
void axb_utc_iso(int64_t t, char *buf, size_t n);

/* Pin the calling thread (and threads it creates later) to one CPU.
 * Returns 0 or -errno. */
int axb_pin_cpu(int cpu);

/* The CPUs the process may run on, ascending; returns how many were stored
 * (at most max) or -errno. */
int axb_allowed_cpus(int *cpus, int max);

/* Raise RLIMIT_NOFILE's soft limit to its hard limit. Returns 0 or -errno. */
int axb_raise_nofile(void);

/* A JSON real, or JSON null when v is not finite (JSON has no NaN). */
json_t *axb_real(double v);

/* Set m[name] to a metric {"value", "unit", "better"} (results schema). */
void axb_metric_set(json_t *m, const char *name, double v, const char *unit,
		    int better);

/* getrusage fields as JSON: user_s, sys_s, maxrss_kb (the peak RSS of
 * this process image, VmHWM), ru_maxrss_kb (as getrusage says), nvcsw,
 * nivcsw, minflt, majflt. */
long axb_peak_rss_kb(void);
json_t *axb_rusage_json(const struct rusage *ru);
double axb_tv_s(struct timeval tv);

/* Write `len` bytes to path atomically: path.tmp.<pid>, fsync, rename,
 * fsync of the directory. Returns 0 or -errno. */
int axb_write_atomic(const char *path, const char *data, size_t len);

/* Check that a result file can be created at path (its directory exists
 * and is writable, and path is not a directory). Returns 0 or -errno. */
int axb_check_writable(const char *path);

/* Write obj as one compact JSON line to fd. Returns 0 or -errno. */
int axb_write_json_line(int fd, const json_t *obj);

/* Write all of buf to fd, retrying on EINTR and short writes. */
int axb_write_all(int fd, const void *buf, size_t n);

/* A signal's name ("SIGSEGV"), or "signal N" in buf. */
const char *axb_signal_name(int sig, char *buf, size_t n);

/* System-wide network counters that explain latency tails on loopback
 * (drops, retransmissions); read before and after a repetition. */
struct axb_netc {
	int64_t retrans_segs, tcp_timeouts, loss_probes, listen_drops,
		listen_overflows, backlog_drops, softnet_dropped;
};
/* Read them; counters that cannot be read are 0. */
void axb_netc_read(struct axb_netc *c);
/* b - a as a JSON object. */
json_t *axb_netc_delta_json(const struct axb_netc *a, const struct axb_netc *b);

/* Busy (non-idle) and steal time of two CPUs from /proc/stat, seconds;
 * and the 1-minute load average. To tell whether other work shared the
 * CPUs of a repetition. */
struct axb_cpuload {
	int cpu[2];
	double busy_s[2], steal_s[2];
	double loadavg1;
};
void axb_cpuload_read(struct axb_cpuload *c, int cpu0, int cpu1);
json_t *axb_cpuload_delta_json(const struct axb_cpuload *a,
			       const struct axb_cpuload *b);
/* The load averages (1, 5, 15 minutes); -1 when unreadable. */
void axb_loadavg(double la[3]);

/* ------------------------------------------------------------------ */
/* profile.c                                                           */
/* ------------------------------------------------------------------ */

/* what profile "quick" or "full" sets for a scenario: groups
 * separated by '|', each "param=v[,v...];param=v..." (a Cartesian
 * product); NULL when the table has no row for it. */
const char *axb_profile_entry(const char *profile, const char *scenario);

/* ------------------------------------------------------------------ */
/* sc_json.c: a scenario run as result-schema JSON                     */
/* ------------------------------------------------------------------ */

/* {"name": value, ...} in base units (an enum by its name). */
json_t *axb_params_json(const struct axs_scenario *sc, const int64_t *values);
/* {"name": {"value", "unit", "better"}, ...} */
json_t *axb_out_metrics_json(const struct axs_out *o);
/* {"name": <histogram JSON>, ...} */
json_t *axb_out_hists_json(const struct axs_out *o);

/* ------------------------------------------------------------------ */
/* impl.c: implementations = ax runtimes + native references           */
/* ------------------------------------------------------------------ */

enum axb_impl_kind { AXB_IMPL_AX, AXB_IMPL_REF };

struct axb_impl {
	const char *name;
	enum axb_impl_kind kind;
	const struct axr_ref *ref;     /* AXB_IMPL_REF only */
};

/* Every implementation: the compiled-in ax drivers in preference order,
 * then the references. Returns the count stored (at most max). */
size_t axb_impl_all(struct axb_impl *out, size_t max);

/* Look an implementation up by name. Returns 0 or -ENOENT. */
int axb_impl_find(const char *name, struct axb_impl *out);

const char *axb_impl_kind_name(const struct axb_impl *im);
const char *axb_impl_summary(const struct axb_impl *im);

/* Whether the implementation can run here (why: one-line reason). */
bool axb_impl_available(const struct axb_impl *im, char *why, size_t n);

/* Whether it can run scenario sc (why: one-line reason when not). */
bool axb_impl_supports(const struct axb_impl *im, const struct axs_scenario *sc,
		       char *why, size_t n);

/* Comma-separated feature names of an ax driver into buf. */
void axb_features_str(uint32_t feats, char *buf, size_t n);

/* ------------------------------------------------------------------ */
/* child.c: options shared by the child processes                      */
/* ------------------------------------------------------------------ */

struct axb_child_opts {
	const char *impl;        /* --impl / --runtime */
	const char *scenario;    /* --scenario */
	int cpu;                 /* --cpu, -1: not pinned */
	int port;                /* --port, 0: any */
	int result_fd;           /* --result-fd, default 1 (stdout) */
	pid_t server_pid;        /* --server-pid (load generator), 0: none */
	const char *target;      /* --target HOST:PORT (load generator) */
	const char *json_path;   /* --json (standalone load) */
	bool quick;              /* --quick */
	const char *duration;    /* --duration shortcut */
	const char *warmup;      /* --warmup shortcut */
	const char *pv[AXS_MAX_PARAMS]; /* -p name=value, one value each */
	size_t npv;
};

/* Parse child/standalone options. On bad input prints one line and exits
 * with status 2. */
void axb_child_opts_parse(int argc, char **argv, const char *cmd,
			  struct axb_child_opts *o);

/* Resolve the scenario and its parameter values from o (defaults, then the
 * shortcuts, then -p). Exits with status 2 on bad input. */
const struct axs_scenario *axb_child_values(const struct axb_child_opts *o,
					   int64_t *values);

/* Test-only fault injection (AXBENCH_TEST_FAULT, see docs/harness.md):
 * when the variable names this role ("server-setup", "server", "load",
 * "local") and implementation, crashes (SIGSEGV), hangs (ignoring
 * SIGTERM), or exits at once after writing garbage, a truncated line, an
 * error event or nothing on result_fd. Returns true when it asks the role
 * to fail its check instead. */
bool axb_test_fault(const char *role, const char *impl, int result_fd);

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

int axb_cmd_list(int argc, char **argv);
int axb_cmd_run(int argc, char **argv);
int axb_cmd_serve(int argc, char **argv);    /* serve and __server */
int axb_cmd_local(int argc, char **argv);    /* __local */
int axb_cmd_load(int argc, char **argv);     /* load and __load */
int axb_cmd_instr(int argc, char **argv);    /* run --measure instructions */
int axb_cmd_instr_child(int argc, char **argv); /* __instr */

/* Server side of a network scenario as a child of `run` (hidden) or in the
 * foreground (`axbench serve`). */
int axb_server_main(const struct axb_child_opts *o, bool foreground);

/* ------------------------------------------------------------------ */
/* env.c                                                               */
/* ------------------------------------------------------------------ */

struct axb_pin {
	const char *mode;  /* "split" or "same" */
	int server_cpu;
	int load_cpu;
};

/* The environment block of a result file. */
json_t *axb_environment(const struct axb_pin *pin);

/* Build-time facts (compiler, flags, library versions) as JSON. */
json_t *axb_build_info(void);

#endif
