/*
 * proc.h - process control: the one launcher of child processes and their
 * watchdog (proc.c), the options the child commands share (child.c) and CPU
 * pinning (pin.c).
 *
 * Every child of axbench starts through axb_child_start: run's __server,
 * __load and __local, conform's __case, instructions mode's valgrind, and
 * ergo's allocation-counting children and its `axbench run`. A child of run
 * is /proc/self/exe with a hidden subcommand; it writes JSON lines on
 * descriptor 3 ({"event":"ready",...}, then {"event":"result",...} or
 * {"event":"error",...}); its stdout and stderr go to a memory file whose
 * tail is kept for the result file. Every child runs in its own process
 * group and dies with the parent (PDEATHSIG).
 */
#ifndef AXB_PROC_H
#define AXB_PROC_H

#include "harness.h"

/* ------------------------------------------------------------------ */
/* pin.c                                                               */
/* ------------------------------------------------------------------ */

/* A CPU set, ascending CPU numbers without repeats. */
#define AXB_MAX_CPUS 1024
struct axb_cpus {
	int n;
	int cpu[AXB_MAX_CPUS];
};

/* Where `run` pins its children: mode "split" (server and load generator
 * on CPU sets of their own, by default the first half of the allowed CPUs
 * and the rest), "same" (both on the first allowed CPU), "sets" (given by
 * --server-cpus / --load-cpus), "none". server_cpu and load_cpu are the
 * first CPU of each set. */
struct axb_pin {
	const char *mode;
	int server_cpu;
	int load_cpu;
	struct axb_cpus server, load;
};

/* Pin the calling thread (and threads it creates later) to one CPU, or to
 * a set of CPUs. Returns 0 or -errno. */
int axb_pin_cpu(int cpu);
int axb_pin_cpus(const struct axb_cpus *c);

/* Parse a CPU list "0-3,6" (ranges and single CPUs, any order, repeats
 * merged). Returns 0, -EINVAL when malformed or -ERANGE for a CPU number
 * beyond AXB_MAX_CPUS - 1. */
int axb_cpus_parse(const char *s, struct axb_cpus *out);

/* Write c as the shortest list ("0-3,6") into buf. */
void axb_cpus_format(const struct axb_cpus *c, char *buf, size_t n);

/* Whether cpu is in c. */
bool axb_cpus_has(const struct axb_cpus *c, int cpu);

/* c as a JSON array of CPU numbers. */
json_t *axb_cpus_json(const struct axb_cpus *c);

/* The CPUs the process may run on, as a set. Returns 0 or -errno. */
int axb_cpus_allowed(struct axb_cpus *c);

/* The CPUs the process may run on, ascending; returns how many were stored
 * (at most max) or -errno. */
int axb_allowed_cpus(int *cpus, int max);

/* ------------------------------------------------------------------ */
/* child.c: options shared by the child processes                      */
/* ------------------------------------------------------------------ */

struct axb_child_opts {
	const char *impl;        /* --impl / --runtime */
	const char *scenario;    /* --scenario */
	int cpu;                 /* --cpu, or the first of --cpus; -1: not pinned */
	struct axb_cpus cpus;    /* --cpus LIST (or --cpu N: that one CPU); n 0:
	                            not pinned. The server pins worker i of
	                            `workers` to cpus.cpu[i % n], the load
	                            generator runs one thread per CPU */
	bool thread_hists;       /* --thread-histograms (load): each load
	                            thread's histogram in the result too */
	int port;                /* --port, 0: any */
	int result_fd;           /* --result-fd, default 1 (stdout) */
	pid_t server_pid;        /* --server-pid (load generator), 0: none */
	bool server_signals;     /* --server-signals: mark the phase to it with
	                            SIGUSR1/SIGUSR2 (run's own servers) */
	const char *wait;        /* --wait D: for the target to accept (load) */
	const char *name;        /* --name: the implementation in --json's file */
	long messages;           /* --messages N (load generator, count mode), 0: none */
	const char *target;      /* --target HOST:PORT (load generator) */
	const char *json_path;   /* --json (standalone load) */
	bool quick;              /* --quick */
	bool clock_free;         /* --clock-free (server): no time-based scheduling
	                            decision, for instructions mode */
	int64_t stack_size;      /* --stack (server, local): ax_rt_opts.stack_size,
	                            0: the runtime's default */
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
/* proc.c: child processes                                             */
/* ------------------------------------------------------------------ */

#define AXB_PUMP_MAX 4

struct axb_child {
	const char *role;       /* "server", "loadgen", "local" */
	pid_t pid;
	int pidfd;              /* -1 when pidfd_open is unavailable */
	int res_fd;             /* read end of the result pipe; -1 at EOF */
	int err_fd;             /* memfd with its stdout+stderr, or -1 */
	char *buf;              /* everything read from res_fd */
	size_t len, cap;
	bool exited;
	int wstatus;            /* valid when exited */
	bool killed;            /* the watchdog sent SIGKILL */
	const char *kill_reason;
};

/* Install the SIGINT/SIGTERM/SIGHUP handlers of the parent. Returns 0 or -errno. */
int axb_proc_init(void);

/* The signal that interrupted the run (SIGINT, SIGTERM, SIGHUP), or 0. */
int axb_proc_interrupted(void);

/* Where a child's stdout or stderr goes. */
enum axb_sink {
	AXB_SINK_INHERIT,    /* the parent's */
	AXB_SINK_CAPTURE,    /* one memory file for both (axb_child_stderr) */
	AXB_SINK_NULL,       /* /dev/null */
	AXB_SINK_STDERR,     /* stdout only: the parent's stderr */
	AXB_SINK_FD,         /* stdout only: axb_spawn.out_fd */
};

/* How to start a child. Every child runs in its own process group, dies
 * with the parent (PDEATHSIG), starts with no signal blocked and SIGPIPE at
 * its default, and reads /dev/null on stdin. */
struct axb_spawn {
	const char *role;      /* "server", "loadgen", "local", "case", ... */
	const char *prog;      /* NULL: /proc/self/exe; else searched in PATH */
	char *const *argv;     /* argv[0] is only a name for /proc/self/exe */
	bool result_pipe;      /* the child's descriptor 3 is a pipe to res_fd */
	enum axb_sink out, err;
	int out_fd;            /* AXB_SINK_FD */
};

/* Start a child as sp says. When the program cannot be executed the child
 * exits with status 127. Returns 0 or -errno. */
int axb_child_start(struct axb_child *c, const struct axb_spawn *sp);

/* Start /proc/self/exe with a result pipe on descriptor 3 (the protocol
 * of run's children). capture: collect its stdout+stderr instead of
 * sharing the parent's. Returns 0 or -errno. */
int axb_child_spawn(struct axb_child *c, const char *role, char *const argv[],
		    bool capture);

/* A child that was never started (so that axb_child_kill, _finish and
 * _free may be called on it). */
void axb_child_none(struct axb_child *c);

/* Wait, reading result lines and reaping exits, until until(arg) is true
 * (until NULL: until any of the n children exited) (0), the monotonic
 * deadline passes (-ETIMEDOUT) or the run is interrupted (-EINTR). */
int axb_child_pump(struct axb_child *const *cs, size_t n, int64_t deadline,
		   bool (*until)(void *arg), void *arg);

/* Predicates for axb_child_pump, arg a struct axb_child *: it exited; it
 * reported {"event":"ready"} or exited. */
bool axb_child_exited(void *arg);
bool axb_child_ready_or_exited(void *arg);

/* Whether the child's result says its check passed; if not, why (its
 * error event, the watchdog's reason, or the check's message) in why. A
 * figure is only used when this holds for every child of the run. */
bool axb_child_passed(const struct axb_child *c, char *why, size_t n);

/* SIGKILL the child (if running), remembering why. */
void axb_child_kill(struct axb_child *c, const char *why);

/* Wait for the child's exit and read its result pipe to the end. */
void axb_child_finish(struct axb_child *c);

void axb_child_free(struct axb_child *c);

/* The last complete JSON line whose "event" is `event` (any event when
 * NULL), as a new reference, or NULL. */
json_t *axb_child_event(const struct axb_child *c, const char *event);

/* When the child wrote something on its result pipe that is not a JSON
 * object with an "event" per line (or, once it exited, an unfinished last
 * line), a malloc'd description quoting the first such line; else NULL. */
char *axb_child_bad_output(const struct axb_child *c);

/* The last `max` bytes of its captured output (malloc'd), or NULL. */
char *axb_child_stderr(const struct axb_child *c, size_t max);

/* ------------------------------------------------------------------ */
/* meter.c: CPU and memory of any process, read from /proc             */
/* ------------------------------------------------------------------ */

/* A reading of a process and its live descendants. */
struct axb_meter {
	int64_t t_ns;           /* monotonic time of the reading */
	double cpu_s;           /* CPU clocks of the tree + reaped children */
	double user_ticks_s, sys_ticks_s; /* /proc/PID/stat, for the split */
	double reaped_s;        /* cutime + cstime of the process */
	long rss_kib;           /* VmRSS summed over the tree */
	long hwm_kib;           /* VmHWM of the process itself */
	long minflt, majflt, nvcsw, nivcsw, threads;
	int procs;              /* processes in the tree */
};

/* Read pid's figures. Returns 0 or -errno (-ENOENT: no such process). */
int axb_meter_read(pid_t pid, struct axb_meter *m);

/* User and system CPU between two readings. */
void axb_meter_delta(const struct axb_meter *a, const struct axb_meter *b,
		     double *user_s, double *sys_s);

/* Whether pid (or one of its descendants) holds a socket listening on TCP
 * port `port`: 1, 0, -ESRCH (no such process), -EACCES (its descriptors
 * cannot be read). */
int axb_pid_listens(pid_t pid, int port);

/* Whether any socket of this host listens on TCP port `port`. */
bool axb_port_listened(int port);

/* The `measured` block of a server result from two readings. */
json_t *axb_meter_delta_json(const struct axb_meter *a, const struct axb_meter *b);

/* ------------------------------------------------------------------ */
/* target.c: an external target's server process                       */
/* ------------------------------------------------------------------ */

#include <sched.h>
#include <sys/socket.h>

struct axb_tproc {
	pid_t pid;              /* also its process group */
	int pidfd;
	bool exited;
	int wstatus;
	struct rusage ru;       /* wait4's, once exited */
};

/* Start argv[0] (searched in PATH when it has no '/') with envp, in cwd,
 * pinned to cpus, stdout+stderr to out_fd (-1: inherited), in a process
 * group of its own, killed when this process dies. Returns 0 or -errno
 * (-ENOENT: no such program). */
int axb_tproc_start(struct axb_tproc *p, char *const argv[], char *const envp[],
		    const char *cwd, const cpu_set_t *cpus, int out_fd);

/* Whether it exited (reaping it). */
bool axb_tproc_exited(struct axb_tproc *p);

/* Wait until a TCP connect to 127.0.0.1:port succeeds and the listening
 * socket is the target's (or one of its children's): 0, -ECHILD when it
 * exited first, -ETIMEDOUT, -EADDRINUSE when another process answers on
 * the port, -EINTR when the run is interrupted. */
int axb_tproc_wait_ready(struct axb_tproc *p, int port, int64_t timeout_ns);

/* Wait until the server at ss accepts: on loopback until a socket listens
 * on its port (/proc/net/tcp, no connection made), elsewhere until a TCP
 * connect succeeds. 0 or -ETIMEDOUT. */
struct sockaddr_storage;
int axb_wait_connect(const struct sockaddr_storage *ss, socklen_t sl, int64_t timeout_ns);

/* SIGTERM to its group, at most grace_ns for it to exit, then SIGKILL to
 * the group; reaps it. Returns how it ended, for the result. */
const char *axb_tproc_stop(struct axb_tproc *p, int64_t grace_ns);

void axb_tproc_free(struct axb_tproc *p);

/* The first line argv prints (stdout or stderr), run in cwd, at most
 * timeout_ns; "" when nothing came. Returns 0 or -errno. */
int axb_first_line(char *const argv[], const char *cwd, int64_t timeout_ns,
		   char *buf, size_t n);

/* "0-3,6" for set into buf; returns the count of CPUs. */
int axb_cpu_list(const cpu_set_t *set, char *buf, size_t n);

#endif
