/*
 * fuzz_http.c - libFuzzer target for http_plaintext's request framing,
 * axs_http_request_len (scenarios/http_parse.h).
 *
 * Input: byte 0 picks the size limit (the server's AXS_HTTP_REQ_MAX, or a
 * small one so the too-large paths are reached with short inputs), bytes
 * 1-2 a prefix length; the rest is what a connection received. The bytes
 * are copied to a buffer of exactly their size, so AddressSanitizer sees
 * any read past them. Checked, besides memory safety:
 *   - the result is -1, 0, or a length in [1, min(n, max)];
 *   - the verdict is a function of the prefix (http_parse.h): a complete
 *     request of length L gives L on any longer input and 0 on any shorter
 *     one; an incomplete one is incomplete on every prefix; a malformed
 *     one is never complete on a prefix;
 *   - walking the buffer the way the server does (request after request,
 *     pipelined) ends, and the requests tile the bytes they consume.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_http: %s: ", #cond);           \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

static ssize_t len_exact(const char *src, size_t n, size_t max)
{
	/* a copy of exactly n bytes: nothing after it is readable */
	char *buf = malloc(n ? n : 1);
	if (!buf)
		abort();
	memcpy(buf, src, n);
	ssize_t r = axs_http_request_len(buf, n, max);
	free(buf);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	static const size_t maxes[] = {AXS_HTTP_REQ_MAX, 64, 256, 1024};
	size_t max = maxes[data[0] % 4];
	size_t cut = (size_t)data[1] | (size_t)data[2] << 8;
	const char *p = (const char *)data + 3;
	size_t n = size - 3;

	ssize_t r = len_exact(p, n, max);
	CHECK(r >= -1 && r <= (ssize_t)n && r <= (ssize_t)max,
	      "r=%zd n=%zu max=%zu", r, n, max);

	/* the verdict on a prefix */
	size_t m = n ? cut % (n + 1) : 0;
	ssize_t rm = len_exact(p, m, max);
	if (r > 0)
		CHECK(m >= (size_t)r ? rm == r : rm == 0,
		      "complete request of %zd bytes, prefix of %zu gives %zd", r, m, rm);
	else if (r == 0)
		CHECK(rm == 0, "incomplete at %zu bytes, prefix of %zu gives %zd", n, m, rm);
	else
		CHECK(rm <= 0, "malformed at %zu bytes, prefix of %zu gives %zd", n, m, rm);
	if (r > 0)
		CHECK(len_exact(p, (size_t)r, max) == r,
		      "a complete request of %zd bytes is not complete alone", r);

	/* the server's walk over pipelined requests */
	size_t used = 0, count = 0;
	ssize_t len;
	while ((len = axs_http_request_len(p + used, n - used, max)) > 0) {
		used += (size_t)len;
		CHECK(used <= n && ++count <= n, "walk overran: used %zu of %zu", used, n);
	}
	return 0;
}
