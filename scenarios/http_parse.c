/*
 * http_parse.c - framing of HTTP/1.x requests for http_plaintext
 * (http_parse.h). Only what framing needs is parsed: the method, the end of
 * the header block and the body length; every read is bounded by n.
 */
#include "http_parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Does the header line [l, e) (no CRLF) name `name` (case-insensitive)?
 * Then *val is its value, after the colon. */
static bool header_is(const char *l, const char *e, const char *name,
		      const char **val)
{
	size_t k = strlen(name);
	if ((size_t)(e - l) <= k || l[k] != ':' || strncasecmp(l, name, k) != 0)
		return false;
	*val = l + k + 1;
	return true;
}

/* A Content-Length value [v, e): optional blanks, decimal digits, optional
 * blanks. Returns false when it is anything else or above `max`. */
static bool parse_length(const char *v, const char *e, size_t max, size_t *out)
{
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (v == e)
		return false;
	size_t x = 0;
	for (; v < e; v++) {
		if (*v < '0' || *v > '9' || x > (SIZE_MAX - 9) / 10)
			return false;
		x = x * 10 + (size_t)(*v - '0');
		if (x > max)
			return false;
	}
	*out = x;
	return true;
}

static bool method_ok(const char *p, size_t n)
{
	static const char *const methods[] = {"GET ", "POST ", "HEAD "};
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
		size_t k = strlen(methods[i]);
		if (n >= k && memcmp(p, methods[i], k) == 0)
			return true;
	}
	return false;
}

ssize_t axs_http_request_len(const char *p, size_t n, size_t max)
{
	const char *end = n >= 4 ? memmem(p, n, "\r\n\r\n", 4) : NULL;
	if (!end || (size_t)(end - p) + 4 > max)
		return n >= max || end ? -1 : 0;
	size_t hdr = (size_t)(end - p) + 4;
	if (!method_ok(p, hdr))
		return -1;

	/* the header lines: each starts after a '\n' before the empty line */
	size_t body = 0;
	bool have_length = false;
	for (const char *l = memchr(p, '\n', hdr); l && l < end;) {
		l++;
		const char *e = memchr(l, '\n', (size_t)(end + 2 - l));
		const char *val;
		size_t len;
		if (header_is(l, e, "Content-Length", &val)) {
			if (!parse_length(val, e, max, &len) ||
			    (have_length && len != body))
				return -1;
			body = len;
			have_length = true;
		} else if (header_is(l, e, "Transfer-Encoding", &val)) {
			return -1;
		}
		l = e;
	}
	if (body > max - hdr)
		return -1;
	return hdr + body <= n ? (ssize_t)(hdr + body) : 0;
}
