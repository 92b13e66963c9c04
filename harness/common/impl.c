/* impl.c - the implementations axbench can measure: every compiled-in ax
 * driver, then the reference implementations (references/), then the
 * external targets (targets/, targets.c), looked up by name. A reference
 * whose name is also an ax driver's is shadowed by the driver; a target
 * whose name is taken by either is shadowed too. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t axb_impl_all(struct axb_impl *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < ax_driver_count() && n < max; i++) {
		memset(&out[n], 0, sizeof out[n]);
		out[n].name = out[n].driver = ax_driver_name(i);
		out[n].kind = AXB_IMPL_AX;
		n++;
	}
	for (size_t i = 0; axr_refs[i] && n < max; i++) {
		struct axb_impl tmp;
		if (axb_impl_find(axr_refs[i]->name, &tmp) == 0 &&
		    tmp.kind == AXB_IMPL_AX)
			continue; /* shadowed */
		memset(&out[n], 0, sizeof out[n]);
		out[n].name = axr_refs[i]->name;
		out[n].kind = AXB_IMPL_REF;
		out[n].ref = axr_refs[i];
		n++;
	}
	const struct axb_target *ts;
	size_t nt = axb_targets(&ts);
	for (size_t i = 0; i < nt && n < max; i++) {
		struct axb_impl tmp;
		if (axb_impl_find(ts[i].name, &tmp) == 0 && tmp.kind != AXB_IMPL_EXT)
			continue; /* shadowed */
		memset(&out[n], 0, sizeof out[n]);
		out[n].name = ts[i].name;
		out[n].kind = AXB_IMPL_EXT;
		out[n].target = &ts[i];
		n++;
	}
	return n;
}

/* Variants named so far: their labels and engine_flags live as long as
 * the process, like every other implementation's name. */
static struct {
	char *label, *flags;
} variants[AXB_MAX_IMPLS];

/* name as an ax driver's variant, DRIVER:KEY=VALUE[:KEY=VALUE...]: fills
 * out and returns 0, or -ENOENT (no such driver, or not that form). The
 * items are checked for form only; the driver judges them when the
 * runtime is created (axb_impl_available). */
static int find_variant(const char *name, struct axb_impl *out)
{
	const char *colon = strchr(name, ':');
	const char *drv = NULL;
	size_t len = colon ? (size_t)(colon - name) : 0;
	/* the core keeps 127 bytes of engine_flags (core.h): a longer list
	 * would be cut, and run as something else under this label */
	if (!colon || !colon[1] || strlen(colon + 1) > 127)
		return -ENOENT;
	for (size_t i = 0; i < ax_driver_count(); i++)
		if (strlen(ax_driver_name(i)) == len &&
		    !strncmp(ax_driver_name(i), name, len))
			drv = ax_driver_name(i);
	if (!drv)
		return -ENOENT;
	for (const char *item = colon + 1; item;) {
		const char *end = strchr(item, ':');
		const char *eq = strchr(item, '=');
		size_t il = end ? (size_t)(end - item) : strlen(item);
		if (!eq || eq == item || (size_t)(eq - item) >= il - 1 ||
		    memchr(item, ',', il))
			return -ENOENT;
		item = end ? end + 1 : NULL;
	}
	size_t v = 0;
	while (v < AXB_MAX_IMPLS && variants[v].label && strcmp(variants[v].label, name))
		v++;
	if (v == AXB_MAX_IMPLS)
		return -ENOENT; /* more variants than one run can list */
	if (!variants[v].label) {
		char *label = strdup(name), *flags = strdup(colon + 1);
		if (!label || !flags) {
			free(label);
			free(flags);
			return -ENOENT;
		}
		for (char *p = flags; *p; p++)
			if (*p == ':')
				*p = ',';
		variants[v].label = label;
		variants[v].flags = flags;
	}
	memset(out, 0, sizeof *out);
	out->name = variants[v].label;
	out->kind = AXB_IMPL_AX;
	out->driver = drv;
	out->engine_flags = variants[v].flags;
	return 0;
}

int axb_impl_find(const char *name, struct axb_impl *out)
{
	if (axb_plugin_is_path(name))
		name = axb_plugin_load(name); /* a refusal exits (plugin.c) */
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < ax_driver_count(); i++)
		if (!strcmp(ax_driver_name(i), name)) {
			out->name = out->driver = ax_driver_name(i);
			out->kind = AXB_IMPL_AX;
			return 0;
		}
	for (size_t i = 0; axr_refs[i]; i++)
		if (!strcmp(axr_refs[i]->name, name)) {
			out->name = axr_refs[i]->name;
			out->kind = AXB_IMPL_REF;
			out->ref = axr_refs[i];
			return 0;
		}
	const struct axb_target *t = axb_target_find(name);
	if (t) {
		out->name = t->name;
		out->kind = AXB_IMPL_EXT;
		out->target = t;
		return 0;
	}
	return find_variant(name, out);
}

int axb_impl_rt_create(ax_rt **out, const struct axb_impl *im,
		       struct ax_rt_opts *opts)
{
	if (im->engine_flags)
		opts->engine_flags = im->engine_flags;
	return ax_rt_create(out, im->driver ? im->driver : im->name, opts);
}

const char *axb_impl_kind_name(const struct axb_impl *im)
{
	return im->kind == AXB_IMPL_AX ? "ax" : im->kind == AXB_IMPL_REF ? "reference"
	       : "external";
}

const char *axb_impl_summary(const struct axb_impl *im)
{
	if (im->kind == AXB_IMPL_REF)
		return im->ref->summary;
	if (im->kind == AXB_IMPL_EXT)
		return im->target->description ? im->target->description : "";
	const char *s = ax_driver_summary(im->driver);
	return s ? s : "";
}

/* Test-only: AXBENCH_TEST_UNAVAILABLE=name[,name...] makes those
 * implementations report themselves unavailable (docs/harness.md). */
static bool test_unavailable(const char *name)
{
	const char *list = getenv("AXBENCH_TEST_UNAVAILABLE");
	size_t len = strlen(name);
	while (list && *list) {
		const char *comma = strchr(list, ',');
		size_t l = comma ? (size_t)(comma - list) : strlen(list);
		if (l == len && !strncmp(list, name, len))
			return true;
		list = comma ? comma + 1 : NULL;
	}
	return false;
}

bool axb_impl_available(const struct axb_impl *im, char *why, size_t n)
{
	if (n)
		why[0] = 0;
	if (test_unavailable(im->name)) {
		snprintf(why, n, "disabled by AXBENCH_TEST_UNAVAILABLE");
		return false;
	}
	if (im->kind == AXB_IMPL_REF)
		return true;
	if (im->kind == AXB_IMPL_EXT)
		return axb_target_available(im->target, why, n);
	if (!ax_driver_available(im->driver, why, n))
		return false;
	if (!im->engine_flags)
		return true;
	/* a variant is available when its driver accepts its flags here
	 * (the driver says why not on stderr) */
	struct ax_rt_opts o;
	ax_rt *rt;
	ax_rt_opts_init(&o);
	int r = axb_impl_rt_create(&rt, im, &o);
	if (r < 0) {
		snprintf(why, n, "%s refused engine flags '%s': %s", im->driver,
			 im->engine_flags, r == -EINVAL ? "unknown flag or value"
							: strerror(-r));
		return false;
	}
	ax_rt_destroy(rt);
	return true;
}

void axb_features_str(uint32_t feats, char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = 0;
	for (unsigned b = 0; b < 32 && off < n; b++) {
		uint32_t bit = 1u << b;
		if (!(feats & bit))
			continue;
		const char *name = ax_feature_name(bit);
		char tmp[16];
		if (!name) {
			snprintf(tmp, sizeof tmp, "bit%u", b);
			name = tmp;
		}
		int w = snprintf(buf + off, n - off, "%s%s", off ? "," : "", name);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

bool axb_impl_supports(const struct axb_impl *im, const struct axs_scenario *sc,
		       char *why, size_t n)
{
	if (n)
		why[0] = 0;
	if (im->kind == AXB_IMPL_EXT) {
		if (axb_target_serves(im->target, sc->name))
			return true;
		snprintf(why, n, "target %s does not serve %s (its target.json)",
			 im->name, sc->name);
		return false;
	}
	if (im->kind == AXB_IMPL_REF) {
		bool can = sc->kind == AXS_NET ? im->ref->serve != NULL
						 : im->ref->run_local != NULL;
		for (size_t i = 0; can && im->ref->scenarios[i]; i++)
			if (!strcmp(im->ref->scenarios[i], sc->name))
				return true;
		snprintf(why, n, "reference %s implements only its own scenarios",
			 im->name);
		return false;
	}
	uint32_t missing = sc->features & ~ax_driver_features(im->driver);
	if (!missing)
		return true;
	char f[256];
	axb_features_str(missing, f, sizeof f);
	snprintf(why, n, "runtime lacks feature %s", f);
	return false;
}
