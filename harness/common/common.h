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

#endif
