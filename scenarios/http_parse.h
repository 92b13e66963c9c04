/*
 * http_parse.h - framing of the HTTP/1.x requests http_plaintext serves: a
 * pure function of the bytes received, so that it is unit-tested and
 * fuzzed (tests/fuzz/fuzz_http.c) without sockets.
 */
#ifndef AXS_HTTP_PARSE_H
#define AXS_HTTP_PARSE_H

#include <stddef.h>
#include <sys/types.h>

/* The largest request (headers and body) http_plaintext accepts: its
 * per-connection receive buffer. */
#define AXS_HTTP_REQ_MAX 16384

/* The length of the request at the start of p[0..n): its header block
 * through the empty line, plus the body its Content-Length gives.
 *   > 0  the request is complete, that many bytes (at most n and max);
 *   0    incomplete: more bytes may complete it;
 *   -1   malformed, and no further byte can fix it: the method is not GET,
 *        POST or HEAD; no empty line within max bytes; a Content-Length
 *        that is not a plain decimal, differs from an earlier one or
 *        makes the request longer than max; a Transfer-Encoding (chunked
 *        bodies are not supported, and guessing their framing would
 *        answer the wrong requests).
 * Reads only p[0..n). The verdict is a function of the prefix: a complete
 * request of length L gives L for every n >= L and 0 for every n < L. */
ssize_t axs_http_request_len(const char *p, size_t n, size_t max);

#endif
