/*
 * tcp_echo.c - the TCP echo scenario: the server echoes every byte it reads
 * back on the same connection; the load generator sends fixed-size messages
 * (closed loop, N connections, optional pipelining) and checks every echoed
 * byte. Wire protocol: docs/protocols.md.
 */
#include <errno.h>
#include <stdlib.h>

#include "scenario.h"
#include "serve_util.h"

/* One connection, linked into the server's list so that a stop can cancel
 * every connection still open. Lives on the connection task's stack. */
struct echo_conn {
	ax_task *task;
	int fd;
	struct echo_conn *next, *prev;
	struct echo_server *srv;
};

struct echo_server {
	struct echo_conn *conns;
	size_t bufsize;
};

struct echo_start {
	struct echo_server *srv;
	int fd;
};

static intptr_t echo_conn_main(void *arg)
{
	struct echo_start *st = arg;
	struct echo_conn c = {.task = ax_current(), .fd = st->fd, .srv = st->srv};
	struct echo_server *srv = c.srv;
	free(st);
	c.next = srv->conns;
	if (srv->conns)
		srv->conns->prev = &c;
	srv->conns = &c;

	char *buf = malloc(srv->bufsize);
	ssize_t n = buf ? 1 : -ENOMEM;
	while (buf && (n = ax_read(c.fd, buf, srv->bufsize)) > 0)
		if (ax_write(c.fd, buf, (size_t)n) != n)
			break;
	free(buf);
	ax_close(c.fd);

	if (c.prev)
		c.prev->next = c.next;
	else
		srv->conns = c.next;
	if (c.next)
		c.next->prev = c.prev;
	return 0;
}

intptr_t ax_sc_echo_serve(struct ax_sc_ctx *ctx)
{
	struct echo_server srv = {.conns = NULL};
	int64_t size = ax_sc_param(ctx, "size");
	srv.bufsize = size < 4096 ? 4096 : (size > 65536 ? 65536 : (size_t)size);
	int r = 0;

	while (!ctx->stopping) {
		int fd = ax_accept(ctx->listen_fd);
		if (fd == -EMFILE || fd == -ENFILE) {
			/* out of descriptors: back off instead of spinning */
			ax_sleep(1000000);
			continue;
		}
		if (fd < 0) {
			if (fd != -ECANCELED)
				r = fd;
			break;
		}
		ax_tcp_nodelay(fd, true);
		struct echo_start *st = malloc(sizeof *st);
		if (!st) {
			ax_close(fd);
			continue;
		}
		st->srv = &srv;
		st->fd = fd;
		if (ax_spawn(NULL, echo_conn_main, st, "echo-conn") < 0) {
			free(st);
			ax_close(fd);
		}
	}
	/* stop: cancel the connections still open and let them finish */
	for (struct echo_conn *c = srv.conns; c; c = c->next)
		ax_cancel(c->task);
	while (srv.conns)
		ax_sleep(1000000);
	return r;
}

static const struct ax_param echo_params[] = {
	{"connections", AX_P_INT, "16", "concurrent client connections", 1, 100000},
	{"size", AX_P_BYTES, "64", "message size in bytes", 1, 1 << 20},
	{"pipeline", AX_P_INT, "1", "messages in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	{"duration", AX_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AX_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct ax_scenario ax_sc_tcp_echo = {
	.name = "tcp_echo",
	.summary = "echo server; clients send fixed-size messages (closed loop, or open loop at -p rate), every byte checked",
	.kind = AX_SC_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = echo_params,
	.nparams = sizeof echo_params / sizeof echo_params[0],
	.serve = ax_sc_echo_serve,
};
