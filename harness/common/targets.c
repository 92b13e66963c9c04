/* targets.c - external targets (targets/README.md): servers written outside
 * axbench (Python asyncio, Node.js, Go, Tokio, ...) described by one
 * target.json each. Discovery (the source tree's targets/ folder, or the
 * folders of AXBENCH_TARGETS), the spec's validation, availability (the
 * programs it requires, whether it is built) and the expansion of the
 * command's placeholders. Loaded once per process. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AX_SOURCE_DIR
#define AX_SOURCE_DIR ""
#endif

static struct axb_target targets[AXB_MAX_TARGETS];
static size_t ntargets;
static bool loaded;

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

/* A JSON array of strings as a NULL-terminated vector; NULL with an error
 * in t->error when it is not one. */
static char **strv(struct axb_target *t, const json_t *a, const char *field,
		   bool nonempty)
{
	if (!json_is_array(a) || (nonempty && !json_array_size(a))) {
		snprintf(t->error, sizeof t->error, "\"%s\" must be a%s list of strings",
			 field, nonempty ? " non-empty" : "");
		return NULL;
	}
	char **v = calloc(json_array_size(a) + 1, sizeof *v);
	if (!v)
		abort();
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s) {
			snprintf(t->error, sizeof t->error,
				 "\"%s\" must be a list of strings (element %zu is not)",
				 field, i);
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			return NULL;
		}
		v[i] = xstrdup(s);
	}
	return v;
}

/* Whether every placeholder of s is one the spec knows. */
static bool placeholders_ok(struct axb_target *t, const char *s, const char *field)
{
	static const char *const known[] = { "dir", "port", "scenario", "cpus",
		"cpu_list", "backend", NULL };
	for (const char *p = s; *p; p++) {
		if (p[0] == '{' && p[1] == '{') {
			p++;
			continue;
		}
		if (p[0] == '}' && p[1] == '}') {
			p++;
			continue;
		}
		if (*p != '{')
			continue;
		const char *e = strchr(p, '}');
		if (!e) {
			snprintf(t->error, sizeof t->error, "%s: unclosed '{' in \"%s\"",
				 field, s);
			return false;
		}
		size_t len = (size_t)(e - p - 1);
		bool ok = len > 6 && !strncmp(p + 1, "param:", 6);
		for (size_t i = 0; known[i] && !ok; i++)
			ok = strlen(known[i]) == len && !strncmp(p + 1, known[i], len);
		if (!ok) {
			snprintf(t->error, sizeof t->error,
				 "%s: unknown placeholder {%.*s} (see targets/README.md)",
				 field, (int)len, p + 1);
			return false;
		}
		p = e;
	}
	return true;
}

static bool strv_placeholders_ok(struct axb_target *t, char **v, const char *field)
{
	for (size_t i = 0; v && v[i]; i++)
		if (!placeholders_ok(t, v[i], field))
			return false;
	return true;
}

/* Parse one target.json into t (t->dir set). On a problem t->error says
 * what; the target is then listed, unavailable. */
static void parse_spec(struct axb_target *t, const char *path)
{
	static const char *const fields[] = { "name", "description", "requires",
		"build", "built", "command", "placeholders", "workers_env", "env",
		"ready", "ready_timeout_s", "scenarios", "version", "signals",
		"stop_grace_s", "probe", NULL };
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	const char *key;
	json_t *v;

	t->ready_timeout_s = 20;
	t->stop_grace_s = 3;
	if (!json_is_object(j)) {
		if (j)
			snprintf(t->error, sizeof t->error, "target.json is not a JSON object");
		else
			snprintf(t->error, sizeof t->error, "target.json line %d: %.200s", je.line, je.text);
		goto out;
	}
	json_object_foreach(j, key, v) {
		bool known = key[0] == '_' || !strncmp(key, "x-", 2);
		for (size_t i = 0; fields[i] && !known; i++)
			known = !strcmp(fields[i], key);
		if (!known) {
			snprintf(t->error, sizeof t->error, "unknown field \"%.64s\"", key);
			goto out;
		}
	}
	const char *name = json_string_value(json_object_get(j, "name"));
	if (!name || !*name || strlen(name) > 40 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		   "0123456789-_.") != strlen(name)) {
		snprintf(t->error, sizeof t->error, "\"name\" must be 1-40 letters, "
			 "digits, '-', '_' or '.'");
		goto out;
	}
	free(t->name);
	t->name = xstrdup(name);
	const char *desc = json_string_value(json_object_get(j, "description"));
	if (!desc) {
		snprintf(t->error, sizeof t->error, "\"description\" (a string) is missing");
		goto out;
	}
	t->description = xstrdup(desc);
	if (!(t->command = strv(t, json_object_get(j, "command"), "command", true)) ||
	    !(t->scenarios = strv(t, json_object_get(j, "scenarios"), "scenarios", true)))
		goto out;
	if (json_object_get(j, "requires") &&
	    !(t->requires = strv(t, json_object_get(j, "requires"), "requires", false)))
		goto out;
	if (json_object_get(j, "build") &&
	    !(t->build = strv(t, json_object_get(j, "build"), "build", true)))
		goto out;
	if (json_object_get(j, "probe") &&
	    !(t->probe = strv(t, json_object_get(j, "probe"), "probe", true)))
		goto out;
	if (json_object_get(j, "version") &&
	    !(t->version = strv(t, json_object_get(j, "version"), "version", true)))
		goto out;
	const json_t *built = json_object_get(j, "built");
	if (built && (!json_is_string(built) || json_string_value(built)[0] == '/')) {
		snprintf(t->error, sizeof t->error, "\"built\" must be a path relative "
			 "to the target's folder");
		goto out;
	}
	if (t->build && !built) {
		snprintf(t->error, sizeof t->error, "\"build\" needs \"built\" (the file "
			 "that proves it is built)");
		goto out;
	}
	if (built)
		t->built = xstrdup(json_string_value(built));
	const json_t *we = json_object_get(j, "workers_env");
	if (json_is_string(we)) {
		t->workers_env = calloc(2, sizeof *t->workers_env);
		if (!t->workers_env)
			abort();
		t->workers_env[0] = xstrdup(json_string_value(we));
	} else if (we && !(t->workers_env = strv(t, we, "workers_env", false))) {
		goto out;
	}
	const json_t *env = json_object_get(j, "env");
	if (env) {
		if (!json_is_object(env)) {
			snprintf(t->error, sizeof t->error, "\"env\" must be an object of strings");
			goto out;
		}
		json_object_foreach((json_t *)env, key, v)
			if (!json_is_string(v) || !*key || strchr(key, '=')) {
				snprintf(t->error, sizeof t->error,
					 "\"env\": %s must be a string", key);
				goto out;
			} else if (!placeholders_ok(t, json_string_value(v), "env")) {
				goto out;
			}
		t->env = json_incref((json_t *)env);
	}
	const char *ready = json_string_value(json_object_get(j, "ready"));
	if (json_object_get(j, "ready") && (!ready || strcmp(ready, "connect"))) {
		snprintf(t->error, sizeof t->error, "\"ready\" must be \"connect\"");
		goto out;
	}
	const json_t *rt = json_object_get(j, "ready_timeout_s");
	if (rt && (!json_is_number(rt) || json_number_value(rt) <= 0 ||
		   json_number_value(rt) > 600)) {
		snprintf(t->error, sizeof t->error, "\"ready_timeout_s\" must be a "
			 "number of seconds in (0, 600]");
		goto out;
	}
	if (rt)
		t->ready_timeout_s = json_number_value(rt);
	const json_t *sg = json_object_get(j, "stop_grace_s");
	if (sg && (!json_is_number(sg) || json_number_value(sg) < 0 ||
		   json_number_value(sg) > 60)) {
		snprintf(t->error, sizeof t->error, "\"stop_grace_s\" must be a "
			 "number of seconds in [0, 60]");
		goto out;
	}
	if (sg)
		t->stop_grace_s = json_number_value(sg);
	const json_t *sig = json_object_get(j, "signals");
	if (sig && !json_is_boolean(sig)) {
		snprintf(t->error, sizeof t->error, "\"signals\" must be true or false");
		goto out;
	}
	t->signals = json_is_true(sig);
	if (!strv_placeholders_ok(t, t->command, "command") ||
	    !strv_placeholders_ok(t, t->build, "build"))
		goto out;
	for (size_t i = 0; t->scenarios[i]; i++) {
		const struct axs_scenario *sc = axs_scenario_find(t->scenarios[i]);
		if (!sc || sc->kind != AXS_NET) {
			snprintf(t->error, sizeof t->error, "\"scenarios\": %s is not a "
				 "network scenario of axbench", t->scenarios[i]);
			goto out;
		}
	}
out:
	json_decref(j);
}

/* Read the target.json of every folder under root. */
static void scan(const char *root)
{
	DIR *d = opendir(root);
	if (!d)
		return;
	struct dirent *e;
	char *names[AXB_MAX_TARGETS];
	size_t nn = 0;
	while ((e = readdir(d)) && nn < AXB_MAX_TARGETS)
		if (e->d_name[0] != '.')
			names[nn++] = xstrdup(e->d_name);
	closedir(d);
	/* in name order, so that the list is stable */
	for (size_t i = 1; i < nn; i++)
		for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
			char *x = names[k];
			names[k] = names[k - 1];
			names[k - 1] = x;
		}
	for (size_t i = 0; i < nn; i++) {
		char dir[PATH_MAX], spec[PATH_MAX + 16], real[PATH_MAX];
		struct stat st;
		snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
		snprintf(spec, sizeof spec, "%s/target.json", dir);
		if (stat(spec, &st) || !S_ISREG(st.st_mode) || ntargets == AXB_MAX_TARGETS) {
			free(names[i]);
			continue;
		}
		struct axb_target *t = &targets[ntargets++];
		memset(t, 0, sizeof *t);
		t->dir = xstrdup(realpath(dir, real) ? real : dir);
		t->name = xstrdup(names[i]); /* until the spec names it */
		parse_spec(t, spec);
		free(names[i]);
	}
}

static void load(void)
{
	if (loaded)
		return;
	loaded = true;
	const char *envdirs = getenv("AXBENCH_TARGETS");
	if (envdirs) {
		char *copy = xstrdup(envdirs), *save = NULL;
		for (char *p = strtok_r(copy, ":", &save); p; p = strtok_r(NULL, ":", &save))
			scan(p);
		free(copy);
	} else if (AX_SOURCE_DIR[0]) {
		scan(AX_SOURCE_DIR "/targets");
	}
	/* a name used twice: the later ones are unusable */
	for (size_t i = 0; i < ntargets; i++)
		for (size_t k = 0; k < i; k++)
			if (!targets[i].error[0] && !strcmp(targets[i].name, targets[k].name))
				snprintf(targets[i].error, sizeof targets[i].error,
					 "name %s is taken by %s", targets[i].name,
					 targets[k].dir);
}

size_t axb_targets(const struct axb_target **out)
{
	load();
	*out = targets;
	return ntargets;
}

const struct axb_target *axb_target_find(const char *name)
{
	load();
	for (size_t i = 0; i < ntargets; i++)
		if (!strcmp(targets[i].name, name))
			return &targets[i];
	return NULL;
}

bool axb_find_program(const char *prog, char *path, size_t n)
{
	if (strchr(prog, '/')) {
		snprintf(path, n, "%s", prog);
		return access(prog, X_OK) == 0;
	}
	const char *p = getenv("PATH");
	char *copy = xstrdup(p && *p ? p : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
	bool found = false;
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, n, "%s/%s", d, prog);
		found = access(path, X_OK) == 0;
	}
	free(copy);
	if (!found)
		snprintf(path, n, "%s", prog);
	return found;
}

/* Run t's probe (at most PROBE_MAX_NS, output discarded) once per
 * process: 0 when it exits with status 0, else its wait status, or -1
 * when it could not run or ran too long. */
#define PROBE_MAX_NS (10 * INT64_C(1000000000))
static int probe(struct axb_target *t)
{
	if (t->probe_done)
		return t->probe_status;
	t->probe_done = true;
	t->probe_status = -1;
	char path[PATH_MAX];
	if (!axb_find_program(t->probe[0], path, sizeof path))
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		if (chdir(t->dir))
			_exit(126);
		execv(path, t->probe);
		_exit(127);
	}
	int64_t deadline = axb_mono_ns() + PROBE_MAX_NS;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (axb_mono_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(2000);
	}
	t->probe_status = st;
	return st;
}

bool axb_target_toolchain_ok(const struct axb_target *ct, char *why, size_t n)
{
	struct axb_target *t = (struct axb_target *)ct; /* the probe's cache */
	if (n)
		why[0] = 0;
	if (t->error[0]) {
		snprintf(why, n, "bad target.json: %s", t->error);
		return false;
	}
	for (size_t i = 0; t->requires && t->requires[i]; i++) {
		char path[PATH_MAX];
		if (!axb_find_program(t->requires[i], path, sizeof path)) {
			snprintf(why, n, "needs %s (not found): install the toolchains "
				 "with scripts/setup --targets", t->requires[i]);
			return false;
		}
	}
	if (t->probe && probe(t) != 0) {
		char cmd[200] = "";
		size_t off = 0;
		for (size_t i = 0; t->probe[i] && off < sizeof cmd; i++) {
			int w = snprintf(cmd + off, sizeof cmd - off, "%s%s", i ? " " : "",
					 t->probe[i]);
			off += w > 0 ? (size_t)w : 0;
		}
		snprintf(why, n, "its probe failed (`%.200s`): install the toolchains "
			 "with scripts/setup --targets", cmd);
		return false;
	}
	return true;
}

bool axb_target_built(const struct axb_target *t)
{
	if (!t->built)
		return true;
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", t->dir, t->built);
	return access(path, F_OK) == 0;
}

bool axb_target_available(const struct axb_target *t, char *why, size_t n)
{
	if (!axb_target_toolchain_ok(t, why, n))
		return false;
	if (!axb_target_built(t)) {
		snprintf(why, n, "not built: run build/axbench targets --build %s", t->name);
		return false;
	}
	return true;
}

bool axb_target_serves(const struct axb_target *t, const char *scenario)
{
	for (size_t i = 0; t->scenarios && t->scenarios[i]; i++)
		if (!strcmp(t->scenarios[i], scenario))
			return true;
	return false;
}

/* Append s[0..len) to the growing string *out. */
static void put(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		char *b = realloc(*out, *cap);
		if (!b)
			abort();
		*out = b;
	}
	memcpy(*out + *len, s, n);
	*len += n;
	(*out)[*len] = 0;
}

char *axb_target_expand(const char *s, const struct axb_target_vars *v)
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	put(&out, &len, &cap, "", 0);
	for (const char *p = s; *p; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			put(&out, &len, &cap, p, 1);
			p++;
			continue;
		}
		const char *e = p[0] == '{' ? strchr(p, '}') : NULL;
		if (!e) {
			put(&out, &len, &cap, p, 1);
			continue;
		}
		char name[64], val[64] = "";
		const char *rep = val;
		size_t nl = (size_t)(e - p - 1);
		snprintf(name, sizeof name, "%.*s", (int)(nl < 63 ? nl : 63), p + 1);
		if (!strcmp(name, "dir"))
			rep = v->dir;
		else if (!strcmp(name, "port"))
			snprintf(val, sizeof val, "%d", v->port);
		else if (!strcmp(name, "scenario"))
			rep = v->sc->name;
		else if (!strcmp(name, "cpus"))
			snprintf(val, sizeof val, "%d", v->ncpus);
		else if (!strcmp(name, "cpu_list"))
			rep = v->cpu_list;
		else if (!strcmp(name, "backend"))
			rep = v->backend ? v->backend : "";
		else if (!strncmp(name, "param:", 6)) {
			int i = axs_param_index(v->sc, name + 6);
			if (i >= 0)
				snprintf(val, sizeof val, "%lld", (long long)v->values[i]);
		}
		put(&out, &len, &cap, rep, strlen(rep));
		p = e;
	}
	return out;
}
