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
	struct axs_conns conns;
	size_t bufsize;
};

/* Reads go to a small buffer on the task's stack until one fills it: an
 * idle connection then holds no heap buffer, and its stack stays within the
 * page its entry frames touch anyway (docs/decisions.md, "Memory per idle
 * connection"). A read that fills the small buffer takes the large one,
 * which is kept while reads stay large and given back after a read that
 * used less than half the small one (the hysteresis keeps a stream of
 * medium messages from taking and dropping it every time). */
#define ECHO_SMALL 512

static intptr_t echo_conn_main(void *arg)
{
	struct axs_start st = *(struct axs_start *)arg;
	struct echo_server *srv = st.srv;
	struct axs_conn c;
	char small[ECHO_SMALL];
	char *big = NULL;
	free(arg);
	axs_conn_add(&srv->conns, &c);

	for (;;) {
		char *buf = big ? big : small;
		size_t cap = big ? srv->bufsize : sizeof small;
		ssize_t n = ax_read(st.fd, buf, cap);
		if (n <= 0 || ax_write(st.fd, buf, (size_t)n) != n)
			break;
		if (!big && (size_t)n == cap) {
			big = malloc(srv->bufsize); /* NULL: stay with small reads */
		} else if (big && (size_t)n < ECHO_SMALL / 2) {
			free(big);
			big = NULL;
		}
	}
	free(big);
	ax_close(st.fd);
	axs_conn_del(&srv->conns, &c);
	return 0;
}

intptr_t axs_echo_serve(struct axs_ctx *ctx)
{
	struct echo_server srv = {.conns = {NULL}};
	int64_t size = axs_param(ctx, "size");
	srv.bufsize = size < 4096 ? 4096 : (size > 65536 ? 65536 : (size_t)size);
	int r = axs_accept_loop(ctx, ctx->listen_fd, echo_conn_main, &srv,
				  "echo-conn");
	/* stop: cancel the connections still open and let them finish */
	axs_conns_stop(&srv.conns);
	return r;
}

static const struct axs_param_def echo_params[] = {
	{"connections", AXS_P_INT, "16", "concurrent client connections", 1, 100000},
	{"size", AXS_P_BYTES, "64", "message size in bytes", 1, 1 << 20},
	{"pipeline", AXS_P_INT, "1", "messages in flight per connection", 1, 1024},
	AX_SC_OPEN_LOOP_PARAMS,
	AX_SC_WORKERS_PARAM,
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_tcp_echo = {
	.name = "tcp_echo",
	.summary = "echo server; clients send fixed-size messages (closed loop, or open loop at -p rate), every byte checked",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = echo_params,
	.nparams = sizeof echo_params / sizeof echo_params[0],
	.serve = axs_echo_serve,
};
