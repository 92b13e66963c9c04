/* plugin.c - drivers loaded from shared objects. A runtime named by a path
 * (a '/' in it, or a name ending in ".so") is loaded with ax_driver_load and
 * known from then on by its driver's own name. Every axbench process also
 * loads the drivers listed in AXBENCH_DRIVERS (absolute paths separated by
 * ':') when it starts; loading one adds its path there, so the children of
 * run, conform and instructions mode (fresh processes of the same binary)
 * load what their parent loaded and find the runtime by the same name. */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ax_driver.h"

#define ENV_NAME "AXBENCH_DRIVERS"
#define MAX_LOADED 8

/* The drivers this process loaded: the file's absolute path, the name. */
static struct {
	char *path;
	const char *name;
} loaded[MAX_LOADED];
static size_t nloaded;
static bool from_env; /* loading what AXBENCH_DRIVERS lists */

bool axb_plugin_is_path(const char *s)
{
	size_t n = strlen(s);
	return strchr(s, '/') || (n > 3 && !strcmp(s + n - 3, ".so"));
}

/* Add path to AXBENCH_DRIVERS unless it is there. Returns 0 or -ENOMEM. */
static int env_add(const char *path)
{
	const char *cur = getenv(ENV_NAME);
	size_t len = strlen(path);
	for (const char *p = cur; p && *p;) {
		const char *colon = strchr(p, ':');
		size_t l = colon ? (size_t)(colon - p) : strlen(p);
		if (l == len && !strncmp(p, path, len))
			return 0;
		p = colon ? colon + 1 : NULL;
	}
	size_t n = (cur ? strlen(cur) + 1 : 0) + len + 1;
	char *v = malloc(n);
	if (!v)
		return -ENOMEM;
	snprintf(v, n, "%s%s%s", cur && *cur ? cur : "", cur && *cur ? ":" : "", path);
	int r = setenv(ENV_NAME, v, 1) ? -errno : 0;
	free(v);
	return r;
}

const char *axb_plugin_load(const char *path)
{
	char abs[PATH_MAX], why[512];
	/* realpath: one name per file (loading it twice is a no-op), and
	 * never a bare name dlopen would look up on the library path */
	if (!realpath(path, abs))
		axb_bad_input("cannot load driver %s%s: %s", path,
			      from_env ? " (listed in " ENV_NAME ")" : "", strerror(errno));
	for (size_t i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i].path, abs))
			return loaded[i].name;
	if (strchr(abs, ':'))
		axb_bad_input("cannot load driver %s: a driver's path cannot contain "
			      "':' (it separates the paths of %s)", abs, ENV_NAME);
	if (nloaded == MAX_LOADED)
		axb_bad_input("cannot load driver %s: at most %d drivers can be loaded",
			      path, MAX_LOADED);
	const struct ax_driver *d;
	int r = ax_driver_load(abs, &d, why, sizeof why);
	if (r)
		axb_bad_input("cannot load driver %s%s: %s", path,
			      from_env ? " (listed in " ENV_NAME ")" : "", why);
	loaded[nloaded].path = strdup(abs);
	loaded[nloaded].name = d->name;
	if (!loaded[nloaded].path || env_add(abs))
		axb_bad_input("out of memory");
	nloaded++;
	return d->name;
}

void axb_plugin_init(void)
{
	const char *env = getenv(ENV_NAME);
	if (!env || !*env)
		return;
	char *copy = strdup(env), *save = NULL;
	if (!copy)
		axb_bad_input("out of memory");
	from_env = true;
	for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
		axb_plugin_load(t);
	from_env = false;
	free(copy);
}

const char *axb_plugin_path(const char *name)
{
	for (size_t i = 0; i < nloaded; i++)
		if (!strcmp(loaded[i].name, name))
			return loaded[i].path;
	return NULL;
}
