/* suggest.c - "did you mean ...?" for a misspelt command, runtime,
 * scenario, parameter or case: the known name closest to what was typed, by
 * edit distance, when it is close enough to be a typo. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#define SUGGEST_MAX_LEN 64

/* Levenshtein distance of a and b (each at most SUGGEST_MAX_LEN bytes),
 * with a transposition of two neighbours counted as one edit. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];

	if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *axb_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	size_t len = strlen(word);
	/* a typo: one edit in a short name, about one in three in a long one */
	size_t limit = len < 6 ? 1 : len / 3;

	for (size_t i = 0; i < n; i++) {
		if (!names[i])
			continue;
		size_t d = edit_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	return best_d > 0 && best_d <= limit ? best : NULL;
}

const char *axb_did_you_mean(const char *word, const char *const *names,
			     size_t n, char *buf, size_t bn)
{
	const char *s = axb_suggest(word, names, n);
	if (s)
		snprintf(buf, bn, "; did you mean '%s'?", s);
	else if (bn)
		buf[0] = 0;
	return buf;
}

const char *axb_scenario_hint(const char *word, char *buf, size_t bn)
{
	const char *names[128];
	size_t n = 0;
	for (size_t i = 0; axs_scenarios[i] && n < 128; i++)
		names[n++] = axs_scenarios[i]->name;
	return axb_did_you_mean(word, names, n, buf, bn);
}

const char *axb_runtime_hint(const char *word, char *buf, size_t bn)
{
	struct axb_impl all[AXB_MAX_IMPLS];
	const char *names[AXB_MAX_IMPLS];
	size_t n = axb_impl_all(all, AXB_MAX_IMPLS);
	for (size_t i = 0; i < n; i++)
		names[i] = all[i].name;
	return axb_did_you_mean(word, names, n, buf, bn);
}
