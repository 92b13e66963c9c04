/* param.c - the scenario layer's parsing, range checking and formatting of scenario parameters
 * (plain integers, byte sizes with k/m/g, durations with ns/us/ms/s, and
 * enumerations named in the parameter's help). */
#include "scenario_host.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Parse an unsigned decimal run at *s; advances *s. Returns 0, -EINVAL when
 * there is no digit, -ERANGE on overflow. */
static int parse_digits(const char **s, int64_t *out, int *ndigits)
{
	int64_t v = 0;
	int n = 0;
	while (isdigit((unsigned char)**s)) {
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, **s - '0', &v))
			return -ERANGE;
		(*s)++;
		n++;
	}
	if (ndigits)
		*ndigits = n;
	*out = v;
	return n ? 0 : -EINVAL;
}

static int parse_int(const char *s, int64_t *out)
{
	bool neg = false;
	int64_t v;
	int err;

	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if ((err = parse_digits(&s, &v, NULL)))
		return err;
	if (*s)
		return -EINVAL;
	*out = neg ? -v : v;
	return 0;
}

static int parse_bytes(const char *s, int64_t *out)
{
	int64_t v, mult = 1;
	int err;

	if ((err = parse_digits(&s, &v, NULL)))
		return err;
	if (*s) {
		switch (tolower((unsigned char)*s)) {
		case 'k': mult = INT64_C(1) << 10; break;
		case 'm': mult = INT64_C(1) << 20; break;
		case 'g': mult = INT64_C(1) << 30; break;
		default: return -EINVAL;
		}
		if (s[1])
			return -EINVAL;
	}
	if (__builtin_mul_overflow(v, mult, out))
		return -ERANGE;
	return 0;
}

/* "1.5s", "300ms", "20us", "100ns"; a bare number is seconds only when
 * bare_seconds is set. Fractions finer than a nanosecond are dropped. */
static int parse_duration(const char *s, bool bare_seconds, int64_t *out)
{
	int64_t ip, fp = 0, unit, v, f;
	int fd = 0, err;

	if ((err = parse_digits(&s, &ip, NULL)))
		return err;
	if (*s == '.') {
		s++;
		if ((err = parse_digits(&s, &fp, &fd)))
			return err == -ERANGE ? -EINVAL : err;
		if (fd > 9)
			return -EINVAL;
	}
	if (!strcmp(s, "ns"))
		unit = 1;
	else if (!strcmp(s, "us"))
		unit = 1000;
	else if (!strcmp(s, "ms"))
		unit = 1000000;
	else if (!strcmp(s, "s") || (!*s && bare_seconds))
		unit = 1000000000;
	else
		return -EINVAL;
	if (__builtin_mul_overflow(ip, unit, &v))
		return -ERANGE;
	f = fp * unit; /* fp < 10^9 and unit <= 10^9: fits */
	for (int i = 0; i < fd; i++)
		f /= 10;
	if (__builtin_add_overflow(v, f, out))
		return -ERANGE;
	return 0;
}

int axs_param_enum_name(const struct axs_param_def *p, int64_t idx, char *buf,
			size_t n)
{
	const char *h = p->help ? p->help : "";
	size_t end = strcspn(h, ":");
	int64_t i = 0;
	for (size_t at = 0; at < end; i++) {
		size_t len = strcspn(h + at, "|:");
		if (i == idx) {
			snprintf(buf, n, "%.*s", (int)len, h + at);
			return 0;
		}
		at += len + 1;
	}
	return -ERANGE;
}

/* The index of `text` among an AXS_P_ENUM parameter's choices; a plain
 * index is accepted too. Returns 0 or -EINVAL. */
static int parse_enum(const struct axs_param_def *p, const char *text, int64_t *out)
{
	char name[64];
	for (int64_t i = 0; axs_param_enum_name(p, i, name, sizeof name) == 0; i++)
		if (!strcmp(name, text)) {
			*out = i;
			return 0;
		}
	return parse_int(text, out);
}

int axs_param_parse(const struct axs_param_def *p, const char *text,
		    bool bare_seconds, int64_t *out)
{
	int64_t v = 0;
	int err;

	switch (p->type) {
	case AXS_P_INT: err = parse_int(text, &v); break;
	case AXS_P_BYTES: err = parse_bytes(text, &v); break;
	case AXS_P_DURATION: err = parse_duration(text, bare_seconds, &v); break;
	case AXS_P_ENUM: err = parse_enum(p, text, &v); break;
	default: err = -EINVAL; break;
	}
	if (err)
		return err;
	/* min == max == 0 means "no range given": any value >= 0 */
	if (p->min == 0 && p->max == 0) {
		if (v < 0)
			return -ERANGE;
	} else if (v < p->min || v > p->max) {
		return -ERANGE;
	}
	*out = v;
	return 0;
}

void axs_param_format(const struct axs_param_def *p, int64_t v, char *buf, size_t n)
{
	switch (p->type) {
	case AXS_P_BYTES: {
		static const struct { int64_t m; const char *s; } u[] = {
			{ INT64_C(1) << 30, "g" }, { INT64_C(1) << 20, "m" },
			{ INT64_C(1) << 10, "k" },
		};
		for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
			if (v && v % u[i].m == 0) {
				snprintf(buf, n, "%lld%s", (long long)(v / u[i].m), u[i].s);
				return;
			}
		snprintf(buf, n, "%lld", (long long)v);
		return;
	}
	case AXS_P_DURATION: {
		static const struct { int64_t m; const char *s; } u[] = {
			{ 1000000000, "s" }, { 1000000, "ms" }, { 1000, "us" },
		};
		for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
			if (v % u[i].m == 0) {
				snprintf(buf, n, "%lld%s", (long long)(v / u[i].m), u[i].s);
				return;
			}
		snprintf(buf, n, "%lldns", (long long)v);
		return;
	}
	case AXS_P_ENUM:
		if (axs_param_enum_name(p, v, buf, n) == 0)
			return;
		snprintf(buf, n, "%lld", (long long)v);
		return;
	default:
		snprintf(buf, n, "%lld", (long long)v);
		return;
	}
}

const char *axs_param_type_name(enum axs_param_type t)
{
	switch (t) {
	case AXS_P_INT: return "int";
	case AXS_P_BYTES: return "bytes";
	case AXS_P_DURATION: return "duration";
	case AXS_P_ENUM: return "enum";
	}
	return "?";
}

int axs_param_index(const struct axs_scenario *sc, const char *name)
{
	for (size_t i = 0; i < sc->nparams; i++)
		if (!strcmp(sc->params[i].name, name))
			return (int)i;
	return -1;
}

int axs_param_defaults(const struct axs_scenario *sc, int64_t *values,
		       const char **bad)
{
	for (size_t i = 0; i < sc->nparams && i < AXS_MAX_PARAMS; i++) {
		if (axs_param_parse(&sc->params[i], sc->params[i].def, false,
				    &values[i])) {
			*bad = sc->params[i].name;
			return -EINVAL;
		}
	}
	if (sc->nparams > AXS_MAX_PARAMS) {
		*bad = "(too many parameters)";
		return -EINVAL;
	}
	return 0;
}

void axs_params_label(const struct axs_scenario *sc, const int64_t *values,
		      char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sc->nparams && off < n; i++) {
		char v[64];
		axs_param_format(&sc->params[i], values[i], v, sizeof v);
		int w = snprintf(buf + off, n - off, "%s%s=%s", i ? "," : "",
				 sc->params[i].name, v);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}
