/* proto_http.c - the load generator's "http" protocol: pipelined HTTP/1.1
 * keep-alive GET requests, each response parsed incrementally and checked
 * (status 200, a Content-Length body equal to "Hello, World!", as in the
 * TechEmpower plaintext test). */
#include "loadgen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HDR_MAX 2048

static const char REQUEST[] = "GET /plaintext HTTP/1.1\r\n"
			      "Host: 127.0.0.1\r\n"
			      "Accept: text/plain\r\n"
			      "\r\n";
static const char BODY[] = "Hello, World!";

/* Parser state of one connection's current response. */
struct http_rx {
	char hdr[HDR_MAX];
	size_t hlen;        /* header bytes gathered */
	bool in_body;
	size_t body_len, body_off;
};

static int http_init(struct lg *g)
{
	struct http_rx *rx = calloc(g->nconns, sizeof *rx);
	if (!rx)
		return -ENOMEM;
	g->pstate = rx;
	g->req_max = sizeof REQUEST - 1;
	return 0;
}

static void http_fini(struct lg *g)
{
	free(g->pstate);
	g->pstate = NULL;
}

static size_t http_request(struct lg *g, struct lg_conn *c, uint64_t seq,
			   uint8_t *dst)
{
	(void)g;
	(void)c;
	(void)seq;
	memcpy(dst, REQUEST, sizeof REQUEST - 1);
	return sizeof REQUEST - 1;
}

/* Check the status line and headers of a complete header block. */
static int parse_headers(struct lg *g, struct lg_conn *c, struct http_rx *rx)
{
	const char *h = rx->hdr;
	if (rx->hlen < 12 || memcmp(h, "HTTP/1.1 200", 12)) {
		size_t l = strcspn(h, "\r\n");
		lg_fail(g, "connection %u, response %llu: status line '%.*s', "
			"expected HTTP/1.1 200", c->id,
			(unsigned long long)c->next_recv, (int)(l > 80 ? 80 : l), h);
		return -EPROTO;
	}
	bool have_len = false;
	for (const char *l = strstr(h, "\r\n"); l && l + 2 < h + rx->hlen;
	     l = strstr(l + 2, "\r\n")) {
		if (!strncasecmp(l + 2, "Content-Length:", 15)) {
			rx->body_len = strtoul(l + 17, NULL, 10);
			have_len = true;
		} else if (!strncasecmp(l + 2, "Transfer-Encoding:", 18)) {
			lg_fail(g, "connection %u: Transfer-Encoding is not supported",
				c->id);
			return -EPROTO;
		}
	}
	if (!have_len) {
		lg_fail(g, "connection %u, response %llu: no Content-Length", c->id,
			(unsigned long long)c->next_recv);
		return -EPROTO;
	}
	if (rx->body_len != sizeof BODY - 1) {
		lg_fail(g, "connection %u, response %llu: body of %zu bytes, "
			"expected %zu", c->id, (unsigned long long)c->next_recv,
			rx->body_len, sizeof BODY - 1);
		return -EPROTO;
	}
	return 0;
}

static ssize_t http_consume(struct lg *g, struct lg_conn *c, const uint8_t *p,
			    size_t n, bool *done)
{
	struct http_rx *rx = &((struct http_rx *)g->pstate)[c->id];

	*done = false;
	if (!rx->in_body) {
		/* gather the header block up to its blank line */
		size_t old = rx->hlen, room = HDR_MAX - 1 - old;
		size_t k = n < room ? n : room;
		memcpy(rx->hdr + old, p, k);
		rx->hlen = old + k;
		rx->hdr[rx->hlen] = 0;
		size_t from = old > 3 ? old - 3 : 0;
		const char *end = memmem(rx->hdr + from, rx->hlen - from, "\r\n\r\n", 4);
		if (!end) {
			if (rx->hlen == HDR_MAX - 1) {
				lg_fail(g, "connection %u: response header longer than %d "
					"bytes", c->id, HDR_MAX);
				return -EPROTO;
			}
			return (ssize_t)k;
		}
		size_t hdr_len = (size_t)(end - rx->hdr) + 4;
		rx->hlen = hdr_len;
		rx->hdr[hdr_len] = 0;
		if (parse_headers(g, c, rx))
			return -EPROTO;
		rx->in_body = true;
		rx->body_off = 0;
		return (ssize_t)(hdr_len - old);
	}
	size_t k = rx->body_len - rx->body_off;
	if (k > n)
		k = n;
	if (memcmp(p, BODY + rx->body_off, k)) {
		lg_fail(g, "connection %u, response %llu: body differs from '%s'",
			c->id, (unsigned long long)c->next_recv, BODY);
		return -EPROTO;
	}
	rx->body_off += k;
	if (rx->body_off == rx->body_len) {
		rx->in_body = false;
		rx->hlen = 0;
		*done = true;
	}
	return (ssize_t)k;
}

const struct lg_proto lg_proto_http = {
	.name = "http",
	.init = http_init,
	.fini = http_fini,
	.request = http_request,
	.consume = http_consume,
	.check_end = lg_check_connections,
};
