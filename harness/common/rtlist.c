/* rtlist.c - the one parser of `--runtime a,b|all` (run, instructions mode
 * and conform): names checked against the implementations compiled in, an
 * unknown one named in the error with the known ones listed. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether im is one the flags let a list name. */
static bool in_scope(const struct axb_impl *im, unsigned flags)
{
	if ((flags & AXB_RT_NO_EXTERNAL) && im->kind == AXB_IMPL_EXT)
		return false;
	return !(flags & AXB_RT_AX_ONLY) || im->kind == AXB_IMPL_AX;
}

/* Exit with status 2: name is unknown; list the known names. */
static _Noreturn void unknown(const char *cmd, const char *name,
			      const struct axb_impl *all, size_t n,
			      unsigned flags)
{
	char known[1024] = "", hint[128];
	const char *names[AXB_MAX_IMPLS];
	size_t off = 0, nn = 0;
	for (size_t i = 0; i < n && off < sizeof known; i++)
		if (in_scope(&all[i], flags)) {
			off += (size_t)snprintf(known + off, sizeof known - off, "%s%s",
						off ? ", " : "", all[i].name);
			if (nn < AXB_MAX_IMPLS)
				names[nn++] = all[i].name;
		}
	axb_bad_input("%s%sunknown runtime '%s' (known: %s)%s", cmd ? cmd : "",
		      cmd ? ": " : "", name, known,
		      axb_did_you_mean(name, names, nn, hint, sizeof hint));
}

/* Add all[i] to sel unless it is there already. */
static void add(struct axb_rt_sel *sel, const struct axb_impl *im)
{
	for (size_t k = 0; k < sel->n; k++)
		if (!strcmp(sel->impls[k].name, im->name))
			return;
	if (sel->n < AXB_MAX_IMPLS)
		sel->impls[sel->n++] = *im;
}

/* Where im stands in the registry's order. */
static size_t rank(const struct axb_impl *im, const struct axb_impl *all, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(all[i].name, im->name))
			return i;
	return n;
}

void axb_runtimes_parse(const char *cmd, const char *list, unsigned flags,
			struct axb_rt_sel *sel)
{
	struct axb_impl all[AXB_MAX_IMPLS];
	size_t n = axb_impl_all(all, AXB_MAX_IMPLS);
	char *copy = strdup(list), *save = NULL;

	if (!copy)
		axb_bad_input("out of memory");
	if (!*copy)
		axb_bad_input("%s%s--runtime needs at least one name", cmd ? cmd : "",
			      cmd ? ": " : "");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "all")) {
			for (size_t i = 0; i < n; i++) {
				if (!in_scope(&all[i], flags))
					continue;
				char why[256];
				if ((flags & AXB_RT_AVAILABLE) &&
				    !axb_impl_available(&all[i], why, sizeof why)) {
					bool dup = false;
					for (size_t k = 0; k < sel->nskipped; k++)
						dup |= !strcmp(sel->skipped[k].name, all[i].name);
					if (!dup && sel->nskipped < AXB_MAX_IMPLS) {
						sel->skipped[sel->nskipped].name = all[i].name;
						snprintf(sel->skipped[sel->nskipped].why,
							 sizeof sel->skipped[0].why, "%s", why);
						sel->nskipped++;
					}
					continue;
				}
				add(sel, &all[i]);
			}
			continue;
		}
		struct axb_impl im;
		if (!axb_impl_find(t, &im) && im.kind == AXB_IMPL_EXT &&
		    !in_scope(&im, flags))
			axb_bad_input("%s%s%s is an external target, which this command "
				      "cannot run (only `axbench run` and `serve` do)",
				      cmd ? cmd : "", cmd ? ": " : "", t);
		if (axb_impl_find(t, &im) || !in_scope(&im, flags))
			unknown(cmd, t, all, n, flags);
		char why[256];
		if ((flags & AXB_RT_AVAILABLE) && !axb_impl_available(&im, why, sizeof why))
			axb_bad_input("%s%sruntime %s is unavailable here: %s",
				      cmd ? cmd : "", cmd ? ": " : "", t, why);
		add(sel, &im);
	}
	free(copy);
	if (flags & AXB_RT_REGISTRY_ORDER) {
		/* insertion sort: a handful of names */
		for (size_t i = 1; i < sel->n; i++) {
			struct axb_impl x = sel->impls[i];
			size_t r = rank(&x, all, n), k = i;
			for (; k > 0 && rank(&sel->impls[k - 1], all, n) > r; k--)
				sel->impls[k] = sel->impls[k - 1];
			sel->impls[k] = x;
		}
	}
}
