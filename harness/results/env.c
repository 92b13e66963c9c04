/* env.c - the one environment block of every result file (run, instructions
 * mode, conform, ergo): CPU, kernel, libraries, io_uring features, build,
 * commit, time and pinning. */
#include "results.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/* Build facts CMake may pass with -D (see docs/harness.md); "unknown"
 * otherwise. */
#ifndef AX_BUILD_TYPE
#define AX_BUILD_TYPE "unknown"
#endif
#ifndef AX_BUILD_C_FLAGS
#define AX_BUILD_C_FLAGS "unknown"
#endif
#ifndef AX_BUILD_C_COMPILER
#define AX_BUILD_C_COMPILER "unknown"
#endif
#ifndef AX_BUILD_LIBUV_VERSION
#define AX_BUILD_LIBUV_VERSION ""
#endif
#ifndef AX_BUILD_LIBEVENT_VERSION
#define AX_BUILD_LIBEVENT_VERSION ""
#endif
#ifndef AX_BUILD_LIBURING_VERSION
#define AX_BUILD_LIBURING_VERSION ""
#endif
#ifndef AX_SOURCE_DIR
#define AX_SOURCE_DIR ""
#endif
#ifdef AX_ASAN
static const bool sanitized = true;
#else
static const bool sanitized = false;
#endif

/* First line of `cmd`'s output without the newline, or "" . */
static void run_line(const char *cmd, char *buf, size_t n)
{
	buf[0] = 0;
	FILE *f = popen(cmd, "r");
	if (!f)
		return;
	if (fgets(buf, (int)n, f))
		buf[strcspn(buf, "\n")] = 0;
	else
		buf[0] = 0;
	pclose(f);
}

/* The value of `key` in /proc/cpuinfo ("model name"), or "". */
static void cpuinfo(const char *key, char *buf, size_t n)
{
	char line[512];
	size_t kl = strlen(key);
	buf[0] = 0;
	FILE *f = fopen("/proc/cpuinfo", "re");
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, key, kl) || (line[kl] != ' ' && line[kl] != '\t' &&
					       line[kl] != ':'))
			continue;
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		colon++;
		while (*colon == ' ')
			colon++;
		snprintf(buf, n, "%s", colon);
		buf[strcspn(buf, "\n")] = 0;
		break;
	}
	if (f)
		fclose(f);
}

/* First line of a small file, or NULL (JSON null) when unreadable. */
static json_t *file_line(const char *path)
{
	char buf[256];
	FILE *f = fopen(path, "re");
	if (!f)
		return json_null();
	if (!fgets(buf, sizeof buf, f)) {
		fclose(f);
		return json_null();
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return json_string(buf);
}

static json_t *cpu_json(void)
{
	char model[256];
	int cpus[1024];
	cpuinfo("model name", model, sizeof model);
	if (!model[0])
		cpuinfo("Model", model, sizeof model);
	if (!model[0])
		cpuinfo("CPU part", model, sizeof model);
	json_t *allowed = json_array();
	int n = axb_allowed_cpus(cpus, 1024);
	for (int i = 0; i < n; i++)
		json_array_append_new(allowed, json_integer(cpus[i]));
	return json_pack("{s:s, s:i, s:i, s:o, s:o}",
		"model", model[0] ? model : "unknown",
		"count", (int)sysconf(_SC_NPROCESSORS_ONLN),
		"configured", (int)sysconf(_SC_NPROCESSORS_CONF),
		"allowed", allowed,
		"governor", file_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"));
}

static json_t *kernel_json(void)
{
	struct utsname u;
	if (uname(&u))
		return json_null();
	return json_pack("{s:s, s:s, s:s, s:s}", "sysname", u.sysname,
			 "release", u.release, "version", u.version,
			 "machine", u.machine);
}

/* A library's version as compiled against (pkg-config, via CMake) and as
 * loaded now (its own version function, when the process links it). */
static json_t *lib_json(const char *build, const char *sym)
{
	const char *(*fn)(void) = NULL;
	void *p = sym ? dlsym(RTLD_DEFAULT, sym) : NULL;
	memcpy(&fn, &p, sizeof fn);
	const char *loaded = fn ? fn() : NULL;
	return json_pack("{s:s?, s:s?}", "build", build[0] ? build : NULL,
			 "loaded", loaded);
}

static json_t *liburing_json(void)
{
	int (*maj)(void) = NULL, (*min)(void) = NULL;
	void *p = dlsym(RTLD_DEFAULT, "io_uring_major_version");
	void *q = dlsym(RTLD_DEFAULT, "io_uring_minor_version");
	char loaded[32] = "";
	memcpy(&maj, &p, sizeof maj);
	memcpy(&min, &q, sizeof min);
	if (maj && min)
		snprintf(loaded, sizeof loaded, "%d.%d", maj(), min());
	return json_pack("{s:s?, s:s?}",
			 "build", AX_BUILD_LIBURING_VERSION[0] ? AX_BUILD_LIBURING_VERSION : NULL,
			 "loaded", loaded[0] ? loaded : NULL);
}

/* Try io_uring_setup with `flags`; returns the features word or -errno. */
static int64_t uring_try(unsigned flags)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	p.flags = flags;
	long fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0)
		return -errno;
	close((int)fd);
	return p.features;
}

static json_t *io_uring_json(void)
{
	/* IORING_FEAT_* bit names, by bit number (stable kernel ABI) */
	static const char *const feat[] = {
		"single_mmap", "nodrop", "submit_stable", "rw_cur_pos",
		"cur_personality", "fast_poll", "poll_32bits", "sqpoll_nonfixed",
		"ext_arg", "native_workers", "rsrc_tags", "cqe_skip",
		"linked_file", "reg_reg_ring", "recvsend_bundle", "min_timeout",
		"rw_attr", "no_iowait",
	};
	json_t *j = json_object();
	json_object_set_new(j, "io_uring_disabled",
			    file_line("/proc/sys/kernel/io_uring_disabled"));
	int64_t f = uring_try(0);
	if (f < 0) {
		json_object_set_new(j, "available", json_false());
		json_object_set_new(j, "error", json_string(strerror((int)-f)));
		return j;
	}
	json_object_set_new(j, "available", json_true());
	json_object_set_new(j, "features_mask", json_integer(f));
	json_t *names = json_array();
	for (unsigned b = 0; b < 32; b++) {
		if (!(f & (INT64_C(1) << b)))
			continue;
		char tmp[16];
		snprintf(tmp, sizeof tmp, "bit%u", b);
		json_array_append_new(names, json_string(
			b < sizeof feat / sizeof feat[0] ? feat[b] : tmp));
	}
	json_object_set_new(j, "features", names);
	json_object_set_new(j, "setup_coop_taskrun",
			    json_boolean(uring_try(IORING_SETUP_COOP_TASKRUN) >= 0));
	json_object_set_new(j, "setup_defer_taskrun",
			    json_boolean(uring_try(IORING_SETUP_SINGLE_ISSUER |
						   IORING_SETUP_DEFER_TASKRUN) >= 0));
	return j;
}

static json_t *git_json(void)
{
	char dir[1024], cmd[1400], commit[128], dirty[256];
	snprintf(dir, sizeof dir, "%s", AX_SOURCE_DIR[0] ? AX_SOURCE_DIR : ".");
	if (strchr(dir, '\''))
		return json_pack("{s:s, s:n}", "commit", "unknown", "dirty");
	snprintf(cmd, sizeof cmd, "git -C '%s' rev-parse HEAD 2>/dev/null", dir);
	run_line(cmd, commit, sizeof commit);
	if (strlen(commit) != 40)
		return json_pack("{s:s, s:n}", "commit", "unknown", "dirty");
	snprintf(cmd, sizeof cmd,
		 "git -C '%s' status --porcelain --untracked-files=no 2>/dev/null",
		 dir);
	run_line(cmd, dirty, sizeof dirty);
	return json_pack("{s:s, s:b}", "commit", commit, "dirty", dirty[0] != 0);
}

json_t *axb_build_info(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b}",
			 "compiler", AX_BUILD_C_COMPILER,
			 "compiler_version", __VERSION__,
			 "build_type", AX_BUILD_TYPE,
			 "c_flags", AX_BUILD_C_FLAGS,
			 "sanitizers", sanitized);
}

static json_t *runtimes_json(void)
{
	struct axb_impl all[64];
	size_t n = axb_impl_all(all, 64);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		char why[256], feats[256] = "";
		bool ok = axb_impl_available(&all[i], why, sizeof why);
		if (all[i].kind == AXB_IMPL_AX)
			axb_features_str(ax_driver_features(all[i].name), feats, sizeof feats);
		json_array_append_new(a, json_pack("{s:s, s:s, s:b, s:s?, s:s}",
			"name", all[i].name, "kind", axb_impl_kind_name(&all[i]),
			"available", ok, "unavailable_reason", ok ? NULL : why,
			"features", feats));
	}
	return a;
}

/* Where the children ran: the mode, the first CPU of each side and, when
 * run set them, the whole CPU sets of the server and the load generator. */
static json_t *pinning_json(const struct axb_pin *pin)
{
	json_t *j = json_pack("{s:s, s:i, s:i}", "mode", pin->mode,
			      "server_cpu", pin->server_cpu, "load_cpu", pin->load_cpu);
	if (pin->server.n && pin->load.n) {
		bool overlap = false;
		for (int i = 0; i < pin->server.n; i++)
			overlap |= axb_cpus_has(&pin->load, pin->server.cpu[i]);
		json_object_set_new(j, "server_cpus", axb_cpus_json(&pin->server));
		json_object_set_new(j, "load_cpus", axb_cpus_json(&pin->load));
		json_object_set_new(j, "overlap", json_boolean(overlap));
	}
	return j;
}

json_t *axb_environment(const struct axb_pin *pin)
{
	char host[256] = "", when[64];
	gethostname(host, sizeof host - 1);
	axb_utc_iso(axb_wall_ns(), when, sizeof when);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	json_t *libs = json_object();
	json_object_set_new(libs, "libuv", lib_json(AX_BUILD_LIBUV_VERSION, "uv_version_string"));
	json_object_set_new(libs, "libevent", lib_json(AX_BUILD_LIBEVENT_VERSION, "event_get_version"));
	json_object_set_new(libs, "liburing", liburing_json());
	json_object_set_new(libs, "jansson", json_pack("{s:s}", "build", JANSSON_VERSION));

	json_t *sysctl = json_object();
	json_object_set_new(sysctl, "vm.max_map_count", file_line("/proc/sys/vm/max_map_count"));
	json_object_set_new(sysctl, "net.core.somaxconn", file_line("/proc/sys/net/core/somaxconn"));

	double la[3];
	axb_loadavg(la);
	return json_pack("{s:o, s:o, s:s, s:I, s:[fff], s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o}",
		"cpu", cpu_json(),
		"kernel", kernel_json(),
		"hostname", host,
		"memory_bytes", (json_int_t)pages * psz,
		"loadavg", la[0], la[1], la[2],
		"libraries", libs,
		"io_uring", io_uring_json(),
		"build", axb_build_info(),
		"git", git_json(),
		"time_utc", when,
		"pinning", pinning_json(pin),
		"sysctl", sysctl,
		"runtimes", runtimes_json());
}
