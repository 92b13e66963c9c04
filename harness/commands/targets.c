/* targets.c - `axbench targets [--build] [NAME...]`: the external targets
 * (targets/README.md) with their availability, and the one place that
 * builds them (`run` never does: a run must not spend minutes compiling).
 * --build runs each named target's build command (every target that is not
 * built yet when none is named) in its folder, output to the terminal, and
 * says how long each took. */
#include "commands.h"
#include "proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void usage(void)
{
	printf("usage: axbench targets [--build] [--force] [NAME...]\n"
	       "The external targets (targets/*/target.json, or the folders of\n"
	       "AXBENCH_TARGETS) and whether each can run here.\n"
	       "  --build   build the named targets (default: every target not built\n"
	       "            yet whose toolchain is installed); --force rebuilds\n"
	       "exit status: 0, 1 when a build failed, 2 on bad input.\n"
	       "See docs/targets.md.\n");
}

/* Run t's build command in its folder; 0 or 1. */
static int build_one(const struct axb_target *t)
{
	struct axb_target_vars v = { .dir = t->dir, .port = 0,
				     .sc = axs_scenario_find("tcp_echo"),
				     .ncpus = 1, .cpu_list = "0" };
	char *argv[128] = { NULL };
	size_t n = 0;
	for (; t->build[n] && n + 1 < 128; n++)
		argv[n] = axb_target_expand(t->build[n], &v);
	fprintf(stderr, "axbench: building %s in %s:", t->name, t->dir);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", argv[i]);
	fprintf(stderr, "\n");
	struct axb_tproc p;
	int64_t t0 = axb_mono_ns();
	int err = axb_tproc_start(&p, argv, environ, t->dir, NULL, -1);
	int rc = 1;
	if (err) {
		axb_err("cannot start the build of %s (%s): %s", t->name, argv[0],
			strerror(-err));
	} else {
		int st;
		while (waitpid(p.pid, &st, 0) < 0 && errno == EINTR)
			;
		p.exited = true;
		axb_tproc_free(&p);
		double s = (double)(axb_mono_ns() - t0) / 1e9;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && axb_target_built(t)) {
			fprintf(stderr, "axbench: built %s in %.1f s\n", t->name, s);
			rc = 0;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			axb_err("the build of %s succeeded but %s/%s is not there "
				"(its \"built\" field)", t->name, t->dir, t->built);
		} else {
			axb_err("the build of %s failed after %.1f s (status 0x%x)",
				t->name, s, st);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

int axb_cmd_targets(int argc, char **argv)
{
	bool build = false, force = false;
	const char *names[AXB_MAX_TARGETS];
	size_t nn = 0;
	const struct axb_target *ts;
	size_t nt = axb_targets(&ts);

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage();
			return 0;
		} else if (!strcmp(argv[i], "--build")) {
			build = true;
		} else if (!strcmp(argv[i], "--force")) {
			force = true;
		} else if (argv[i][0] == '-') {
			axb_bad_input("unknown option '%s' (see axbench targets --help)", argv[i]);
		} else {
			if (!axb_target_find(argv[i])) {
				const char *all[AXB_MAX_TARGETS];
				char hint[128];
				for (size_t k = 0; k < nt; k++)
					all[k] = ts[k].name;
				axb_bad_input("unknown target '%s'%s", argv[i],
					      axb_did_you_mean(argv[i], all, nt, hint,
							       sizeof hint));
			}
			if (nn < AXB_MAX_TARGETS)
				names[nn++] = argv[i];
		}
	}
	if (!build) {
		if (nt == 0)
			printf("no external targets found (AXBENCH_TARGETS=%s)\n",
			       getenv("AXBENCH_TARGETS") ? getenv("AXBENCH_TARGETS") : "");
		for (size_t i = 0; i < nt; i++) {
			const struct axb_target *t = &ts[i];
			bool named = !nn;
			for (size_t k = 0; k < nn; k++)
				named |= !strcmp(names[k], t->name);
			if (!named)
				continue;
			char why[512];
			bool ok = axb_target_available(t, why, sizeof why);
			printf("%-14s %-12s %s\n", t->name, ok ? "available" : "unavailable",
			       t->description ? t->description : "");
			if (!ok)
				printf("%-14s %s\n", "", why);
			printf("%-14s folder %s\n", "", t->dir);
		}
		return 0;
	}
	int rc = 0;
	size_t built = 0;
	for (size_t i = 0; i < nt; i++) {
		const struct axb_target *t = &ts[i];
		bool named = false;
		for (size_t k = 0; k < nn; k++)
			named |= !strcmp(names[k], t->name);
		if (nn && !named)
			continue;
		char why[512];
		if (!axb_target_toolchain_ok(t, why, sizeof why)) {
			if (named) {
				axb_err("cannot build %s: %s", t->name, why);
				rc = 1;
			} else {
				fprintf(stderr, "axbench: skipping %s: %s\n", t->name, why);
			}
			continue;
		}
		if (!t->build) {
			if (named)
				fprintf(stderr, "axbench: %s has no build step\n", t->name);
			continue;
		}
		if (axb_target_built(t) && !force) {
			fprintf(stderr, "axbench: %s is built (%s/%s; --force rebuilds)\n",
				t->name, t->dir, t->built);
			continue;
		}
		rc |= build_one(t);
		built++;
	}
	if (!built && !rc)
		fprintf(stderr, "axbench: nothing to build\n");
	return rc;
}
