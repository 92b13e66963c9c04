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

struct echo_server {
	struct ax_sc_conns conns;
	size_t bufsize;
};

static intptr_t echo_conn_main(void *arg)
{
	struct ax_sc_start st = *(struct ax_sc_start *)arg;
	struct echo_server *srv = st.srv;
	struct ax_sc_conn c;
	free(arg);
	ax_sc_conn_add(&srv->conns, &c);

	char *buf = malloc(srv->bufsize);
	ssize_t n;
	while (buf && (n = ax_read(st.fd, buf, srv->bufsize)) > 0)
		if (ax_write(st.fd, buf, (size_t)n) != n)
			break;
	free(buf);
	ax_close(st.fd);
	ax_sc_conn_del(&srv->conns, &c);
	return 0;
}

intptr_t ax_sc_echo_serve(struct ax_sc_ctx *ctx)
{
	struct echo_server srv = {.conns = {NULL}};
	int64_t size = ax_sc_param(ctx, "size");
	srv.bufsize = size < 4096 ? 4096 : (size > 65536 ? 65536 : (size_t)size);
	int r = ax_sc_accept_loop(ctx, ctx->listen_fd, echo_conn_main, &srv,
				  "echo-conn");
	/* stop: cancel the connections still open and let them finish */
	ax_sc_conns_stop(&srv.conns);
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
