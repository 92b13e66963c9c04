/*
 * common.h - what several folders of the harness use: error lines, clocks,
 * small JSON and I/O helpers (util.c), the implementations axbench can
 * measure (impl.c), the one parser of `--runtime a,b|all` (rtlist.c) and
 * the quick and full profiles (profile.c).
 * Included by harness.h; include that instead.
 */
#ifndef AXB_COMMON_H
#define AXB_COMMON_H

/* ------------------------------------------------------------------ */
/* util.c                                                              */
/* ------------------------------------------------------------------ */

/* Exit statuses, the same for every command, C and Python (the table is
 * in docs/harness.md, "Exit status"); 128 + N: ended by signal N, the
 * work done before kept. */
enum {
	AXB_EXIT_OK = 0,
	AXB_EXIT_FAILED = 1,       /* a cell, case or check failed; regression */
	AXB_EXIT_BAD_INPUT = 2,    /* refused before anything ran */
	AXB_EXIT_INCONCLUSIVE = 3, /* could not decide (compare, ab, conform) */
	AXB_EXIT_INTERNAL = 4,     /* a bug of axbench */
	AXB_EXIT_WRITE = 5,        /* the result file could not be written */
};

/* Print "axbench: <message>" on stderr and exit with status 2 (bad input). */
_Noreturn void axb_bad_input(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Print "axbench: <message>" on stderr. */
void axb_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* suggest.c: the name among names[0..n) closest to a misspelt word, when
 * it is close enough to be a typo (one edit in a short word, about one in
 * three in a long one), else NULL. */
const char *axb_suggest(const char *word, const char *const *names, size_t n);

/* "; did you mean 'x'?" into buf (or "" when nothing is close); returns
 * buf, for the end of an error line. */
const char *axb_did_you_mean(const char *word, const char *const *names,
			     size_t n, char *buf, size_t bn);

/* The same among the scenarios axbench knows (hidden ones left out), and
 * among its implementations. */
const char *axb_scenario_hint(const char *word, char *buf, size_t bn);
const char *axb_runtime_hint(const char *word, char *buf, size_t bn);

/* Monotonic and wall-clock time in nanoseconds. */
int64_t axb_mono_ns(void);
int64_t axb_wall_ns(void);

/* "2024-05-01T12:34:56Z" for wall-clock ns t. */
void axb_utc_iso(int64_t t, char *buf, size_t n);

/* Runtime options for instructions mode: count-only scheduler ticks and
 * no hog clock, so that no scheduling decision reads the clock and
 * callgrind's counts repeat. */
void axb_rt_opts_clock_free(struct ax_rt_opts *o);

/* The value of a --stack option (ax_rt_opts.stack_size: bytes with an
 * optional k/m/g suffix, 16 KiB..1 GiB). Exits with status 2 on bad
 * input. */
int64_t axb_stack_option(const char *arg);

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

/* Write obj as one compact JSON line to fd. Returns 0 or -errno. */
int axb_write_json_line(int fd, const json_t *obj);

/* Write all of buf to fd, retrying on EINTR and short writes. */
int axb_write_all(int fd, const void *buf, size_t n);

/* A signal's name ("SIGSEGV"), or "signal N" in buf. */
const char *axb_signal_name(int sig, char *buf, size_t n);

/* ------------------------------------------------------------------ */
/* profile.c                                                           */
/* ------------------------------------------------------------------ */

/* what profile "quick", "full" or "scaling" sets for a scenario: groups
 * separated by '|', each "param=v[,v...];param=v..." (a Cartesian
 * product); NULL when the table has no row for it. The workers sweep is
 * 1, 2, 4, ... up to server_cpus (at least 1,2). The text may live in a
 * static buffer, valid until the next call. */
const char *axb_profile_entry(const char *profile, const char *scenario,
			      int server_cpus);

/* ------------------------------------------------------------------ */
/* impl.c: implementations = ax runtimes + native references           */
/* ------------------------------------------------------------------ */

enum axb_impl_kind { AXB_IMPL_AX, AXB_IMPL_REF, AXB_IMPL_EXT };

struct axb_target;

struct axb_impl {
	const char *name;              /* the label: "io_uring:recv=multishot" */
	enum axb_impl_kind kind;
	const char *driver;            /* AXB_IMPL_AX: the driver's name */
	const char *engine_flags;      /* AXB_IMPL_AX: the variant's
	                                  ax_rt_opts.engine_flags, or NULL */
	const struct axr_ref *ref;     /* AXB_IMPL_REF only */
	const struct axb_target *target; /* AXB_IMPL_EXT only */
};

/* Every implementation: the compiled-in ax drivers in preference order,
 * then the references, then the external targets (targets.c). Returns the
 * count stored (at most max). */
size_t axb_impl_all(struct axb_impl *out, size_t max);

/* Look an implementation up by name. An ax driver's variant is named
 * DRIVER:KEY=VALUE[:KEY=VALUE...] (docs/harness.md, "Engine variants"):
 * its label is the whole name, its engine_flags the items joined with
 * commas. Returns 0 or -ENOENT. */
int axb_impl_find(const char *name, struct axb_impl *out);

/* ax_rt_create for an ax implementation: its driver, with its variant's
 * engine_flags put into *opts (which must not name flags of its own). */
int axb_impl_rt_create(ax_rt **out, const struct axb_impl *im,
		       struct ax_rt_opts *opts);

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
/* targets.c: external targets (targets/README.md)                     */
/* ------------------------------------------------------------------ */

#define AXB_MAX_TARGETS 32

/* One target.json. A spec that does not parse keeps its folder's name and
 * says why in error (the target is then unavailable). */
struct axb_target {
	char *name, *description;
	char *dir;                 /* absolute */
	char **requires;           /* NULL-terminated, or NULL */
	char **build;              /* argv, or NULL */
	char *built;               /* relative to dir, or NULL */
	char **command;            /* argv with placeholders */
	char **workers_env;        /* names set to the CPU count, or NULL */
	json_t *env;               /* object of strings, or NULL */
	double ready_timeout_s, stop_grace_s;
	char **scenarios;
	char **version;            /* argv, or NULL */
	char **probe;              /* argv that must exit 0 for it to be
	                              available (a Python module, ...), or NULL */
	bool probe_done;           /* its result, cached */
	int probe_status;
	bool signals;              /* understands SIGUSR1/SIGUSR2 marks */
	char error[256];
};

/* The targets found (the source tree's targets/ folder, or the
 * colon-separated folders of AXBENCH_TARGETS), in name order. */
size_t axb_targets(const struct axb_target **out);
const struct axb_target *axb_target_find(const char *name);

/* Its spec parses and every program it requires is there (else why). */
bool axb_target_toolchain_ok(const struct axb_target *t, char *why, size_t n);
/* Its `built` file exists (or it has no build step). */
bool axb_target_built(const struct axb_target *t);
/* Both, with the reason when not. */
bool axb_target_available(const struct axb_target *t, char *why, size_t n);
bool axb_target_serves(const struct axb_target *t, const char *scenario);

/* prog as given when it has a '/', else searched in PATH, into path;
 * whether it is an executable file. */
bool axb_find_program(const char *prog, char *path, size_t n);

/* The values of the placeholders of a target's command. */
struct axb_target_vars {
	const char *dir;
	int port;
	const struct axs_scenario *sc;
	const int64_t *values;     /* the scenario's parameter values */
	int ncpus;
	const char *cpu_list;      /* "0", "0-3" */
	const char *backend;       /* "127.0.0.1:P" or NULL */
};

/* s with its placeholders replaced (malloc'd; targets/README.md). */
char *axb_target_expand(const char *s, const struct axb_target_vars *v);

/* ------------------------------------------------------------------ */
/* plugin.c: drivers loaded from shared objects                        */
/* ------------------------------------------------------------------ */

/* Whether a runtime name is a driver's path: it has a '/' or ends ".so". */
bool axb_plugin_is_path(const char *s);

/* Load the driver at path (once per file; ax_driver_load) and add it to
 * AXBENCH_DRIVERS for the children. Returns the driver's name; a refusal
 * is bad input: one line naming the path and the reason, exit 2. */
const char *axb_plugin_load(const char *path);

/* Load every driver AXBENCH_DRIVERS lists (main, before any command). */
void axb_plugin_init(void);

/* The absolute path a loaded driver came from, or NULL (compiled in). */
const char *axb_plugin_path(const char *name);

/* ------------------------------------------------------------------ */
/* rtlist.c: the one parser of --runtime a,b|all                       */
/* ------------------------------------------------------------------ */

#define AXB_MAX_IMPLS 64

/* What a --runtime list may name, and where the result goes. */
enum {
	/* ax runtimes only, not the reference implementations */
	AXB_RT_AX_ONLY = 1 << 0,
	/* a runtime named must be available here; "all" leaves the
	 * unavailable ones out, in skipped (without the flag they are kept:
	 * the caller reports them) */
	AXB_RT_AVAILABLE = 1 << 1,
	/* in the registry's order (axb_impl_all), not the list's */
	AXB_RT_REGISTRY_ORDER = 1 << 2,
	/* no external targets ("all" leaves them out, naming one is an
	 * error): modes that run code inside axbench's own processes */
	AXB_RT_NO_EXTERNAL = 1 << 3,
};

/* The implementations selected by one or more --runtime lists. Start from
 * a zeroed one. */
struct axb_rt_sel {
	struct axb_impl impls[AXB_MAX_IMPLS];
	size_t n;
	struct {
		const char *name;
		char why[256];
	} skipped[AXB_MAX_IMPLS];   /* "all" with AXB_RT_AVAILABLE */
	size_t nskipped;
};

/* Add the implementations of `list` ("a,b", "all", or a mix) to sel, each
 * once. Bad input (an unknown name, which the message names beside the
 * known ones; an empty list; an unavailable name with AXB_RT_AVAILABLE)
 * prints one line, prefixed with "cmd: " when cmd is not NULL, and exits
 * with status 2. */
void axb_runtimes_parse(const char *cmd, const char *list, unsigned flags,
			struct axb_rt_sel *sel);


/* ------------------------------------------------------------------ */
/* fault.c: the faults of the *_faults scenarios (docs/decisions.md)   */
/* ------------------------------------------------------------------ */

/* The values of a scenario's `fault` parameter, in its order. */
enum axb_fault {
	AXB_FAULT_NONE,        /* plain loopback, well-behaved clients only */
	AXB_FAULT_BASELINE,    /* the network-fault path with nothing impaired */
	AXB_FAULT_DELAY,       /* every packet delayed `delay` +/- `jitter` */
	AXB_FAULT_LOSS,        /* 1% of packets dropped */
	AXB_FAULT_REORDER,     /* 25% of packets overtake the rest, held `delay` */
	AXB_FAULT_RESET,       /* bad clients: half a message, then RST */
	AXB_FAULT_SLOW_READER, /* bad clients: read one byte per 10 ms */
	AXB_FAULT_SLOWLORIS,   /* bad clients: trickle a request, never end it */
};

/* How packets are impaired: the kernel's netem qdisc, or iptables rules
 * (loss in the kernel) and NFQUEUE to the load generator's queue. */
enum axb_netfault_mech { AXB_MECH_NETEM, AXB_MECH_NFQUEUE };

/* lo's MTU in the private namespace (Ethernet's). */
#define AXB_FAULT_MTU 1500

/* The cell's fault (AXB_FAULT_NONE for a scenario without `fault`). */
enum axb_fault axb_fault_of(const struct axs_scenario *sc, const int64_t *values);
const char *axb_fault_name(enum axb_fault f);
const char *axb_netfault_mech_name(enum axb_netfault_mech m);

/* Whether f runs in a private network namespace (baseline, delay, loss,
 * reorder) rather than on the host's loopback (the bad-client faults). */
bool axb_fault_in_netns(enum axb_fault f);

/* Move the calling (single-threaded) process into a new network
 * namespace with lo up at AXB_FAULT_MTU. Returns 0 or -errno with the
 * reason in why. */
int axb_netns_private(char *why, size_t n);

/* Install fault f's impairment on lo of the caller's namespace: netem
 * when the kernel has it, else iptables (loss) and NFQUEUE 0; says which
 * in *mech and what exactly in spec. Returns 0, or -ENOTSUP with why. */
int axb_netfault_install(enum axb_fault f, int64_t delay_ns, int64_t jitter_ns,
			 enum axb_netfault_mech *mech, char *spec, size_t sn,
			 char *why, size_t n);

/* Run a system network tool (argv[0] looked up in /usr/sbin, /sbin, ...)
 * and wait for it. Returns 0 or -errno with its first stderr line in why. */
int axb_fault_tool(char *const argv[], char *why, size_t n);

/* Whether this machine can run the cell's fault (tried once per fault in
 * a throw-away namespace); false with the reason in why. */
bool axb_fault_supported(const struct axs_scenario *sc, const int64_t *values,
			 char *why, size_t n);

#endif
