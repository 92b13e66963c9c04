/*
 * http_plaintext.c - HTTP/1.1 keep-alive with pipelining, answering every
 * request with "Hello, World!" (TechEmpower's plaintext test). Requests in
 * one read are answered with one write. Any HTTP/1.1 client works against
 * it (`wrk`, curl, a browser); the load generator checks every response.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "serve_util.h"
#include "serve_util.h"

#define HTTP_BUF 16384

struct http_server {
	struct axs_conns conns;
	time_t date_sec;
	char date[64];
	uint64_t bad_requests;
};

static const char HTTP_BODY[] = "Hello, World!";

/* The Date header changes once a second; format it then. */
static const char *http_date(struct http_server *s)
{
	time_t now = time(NULL);
	if (now != s->date_sec) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
		s->date_sec = now;
	}
	return s->date;
}

/* Length of the request at p (headers plus body), 0 when incomplete, -1
 * when malformed. */
static ssize_t http_request_len(const char *p, size_t n)
{
	const char *end = memmem(p, n, "\r\n\r\n", 4);
	if (!end)
		return n >= HTTP_BUF ? -1 : 0;
	size_t hdr = (size_t)(end - p) + 4;
	size_t body = 0;
	for (const char *l = memchr(p, '\n', hdr); l && l < end; l = memchr(l + 1, '\n', (size_t)(end - l))) {
		if (strncasecmp(l + 1, "Content-Length:", 15) == 0)
			body = strtoul(l + 16, NULL, 10);
	}
	if (memcmp(p, "GET ", 4) != 0 && memcmp(p, "POST ", 5) != 0 &&
	    memcmp(p, "HEAD ", 5) != 0)
		return -1;
	return hdr + body <= n ? (ssize_t)(hdr + body) : 0;
}

static intptr_t http_conn_main(void *arg)
{
	struct axs_start st = *(struct axs_start *)arg;
	struct http_server *s = st.srv;
	struct axs_conn c;
	int fd = st.fd;
	free(arg);
	axs_conn_add(&s->conns, &c);

	char *in = malloc(HTTP_BUF), *out = malloc(HTTP_BUF * 2);
	size_t have = 0;
	while (in && out) {
		ssize_t n = ax_read(fd, in + have, HTTP_BUF - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		size_t used = 0, olen = 0;
		ssize_t len;
		while ((len = http_request_len(in + used, have - used)) > 0) {
			int w = snprintf(out + olen, HTTP_BUF * 2 - olen,
					 "HTTP/1.1 200 OK\r\nServer: ax\r\nDate: %s\r\n"
					 "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
					 http_date(s), sizeof HTTP_BODY - 1, HTTP_BODY);
			olen += (size_t)w;
			used += (size_t)len;
			if (olen > HTTP_BUF * 2 - 256) {
				if (ax_write(fd, out, olen) < 0)
					goto done;
				olen = 0;
			}
		}
		if (len < 0) {
			static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
			s->bad_requests++;
			ax_write(fd, bad, sizeof bad - 1);
			break;
		}
		if (olen && ax_write(fd, out, olen) < 0)
			break;
		memmove(in, in + used, have - used);
		have -= used;
	}
done:
	free(in);
	free(out);
	ax_close(fd);
	axs_conn_del(&s->conns, &c);
	return 0;
}

static intptr_t http_serve(struct axs_ctx *ctx)
{
	struct http_server s = {.conns = {NULL}};
	int r = axs_accept_loop(ctx, ctx->listen_fd, http_conn_main, &s,
				  "http-conn");
	axs_conns_stop(&s.conns);
	axs_metric(ctx, "bad_requests", (double)s.bad_requests, "count", -1);
	return r;
}

static const struct axs_param_def http_params[] = {
	{"connections", AXS_P_INT, "64", "concurrent client connections", 1, 100000},
	{"pipeline", AXS_P_INT, "16", "requests in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	AX_SC_WORKERS_PARAM,
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_http_plaintext = {
	.name = "http_plaintext",
	.summary = "HTTP/1.1 keep-alive, pipelined, \"Hello, World!\" (TechEmpower plaintext)",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "http",
	.params = http_params,
	.nparams = sizeof http_params / sizeof http_params[0],
	.serve = http_serve,
};
