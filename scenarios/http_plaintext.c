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

#include "scenario.h"
#include "serve_util.h"

#define HTTP_BUF 16384

struct http_conn {
	ax_task *task;
	int fd;
	struct http_conn *next, *prev;
	struct http_server *srv;
};

struct http_server {
	struct http_conn *conns;
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
	struct http_conn c = *(struct http_conn *)arg;
	struct http_server *s = c.srv;
	free(arg);
	c.task = ax_current();
	c.prev = NULL;
	c.next = s->conns;
	if (s->conns)
		s->conns->prev = &c;
	s->conns = &c;

	char *in = malloc(HTTP_BUF), *out = malloc(HTTP_BUF * 2);
	size_t have = 0;
	while (in && out) {
		ssize_t n = ax_read(c.fd, in + have, HTTP_BUF - have);
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
				if (ax_write(c.fd, out, olen) < 0)
					goto done;
				olen = 0;
			}
		}
		if (len < 0) {
			static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
			s->bad_requests++;
			ax_write(c.fd, bad, sizeof bad - 1);
			break;
		}
		if (olen && ax_write(c.fd, out, olen) < 0)
			break;
		memmove(in, in + used, have - used);
		have -= used;
	}
done:
	free(in);
	free(out);
	ax_close(c.fd);
	if (c.prev)
		c.prev->next = c.next;
	else
		s->conns = c.next;
	if (c.next)
		c.next->prev = c.prev;
	return 0;
}

static intptr_t http_serve(struct ax_sc_ctx *ctx)
{
	struct http_server s = {0};
	int r = 0;
	while (!ctx->stopping) {
		int fd = ax_accept(ctx->listen_fd);
		if (fd == -EMFILE || fd == -ENFILE) {
			ax_sleep(1000000);
			continue;
		}
		if (fd < 0) {
			if (fd != -ECANCELED)
				r = fd;
			break;
		}
		ax_tcp_nodelay(fd, true);
		struct http_conn *c = calloc(1, sizeof *c);
		if (!c) {
			ax_close(fd);
			continue;
		}
		c->fd = fd;
		c->srv = &s;
		if (ax_spawn(NULL, http_conn_main, c, "http-conn") < 0) {
			free(c);
			ax_close(fd);
		}
	}
	for (struct http_conn *c = s.conns; c; c = c->next)
		ax_cancel(c->task);
	while (s.conns)
		ax_sleep(1000000);
	ax_sc_metric(ctx, "bad_requests", (double)s.bad_requests, "count", -1);
	return r;
}

static const struct ax_param http_params[] = {
	{"connections", AX_P_INT, "64", "concurrent client connections", 1, 100000},
	{"pipeline", AX_P_INT, "16", "requests in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	{"duration", AX_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AX_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct ax_scenario ax_sc_http_plaintext = {
	.name = "http_plaintext",
	.summary = "HTTP/1.1 keep-alive, pipelined, \"Hello, World!\" (TechEmpower plaintext)",
	.kind = AX_SC_NET,
	.features = AX_FEAT_TCP,
	.protocol = "http",
	.params = http_params,
	.nparams = sizeof http_params / sizeof http_params[0],
	.serve = http_serve,
};
