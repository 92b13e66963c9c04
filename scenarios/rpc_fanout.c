/*
 * rpc_fanout.c - each request fans out to K calls to a backend service and
 * joins them before answering. The backend listens on a second loopback
 * port in the same runtime; every front connection holds K backend
 * connections and runs each call as its own task (spawn, then join all).
 * The client side is the echo protocol: the front answers a request with
 * its own bytes once all K calls came back right, so the load generator's
 * byte-for-byte check covers the whole path. Compare latency against K with
 * -p fanout=1,4,16.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "serve_util.h"
#include "serve_util.h"

#define RPC_MAX_FANOUT 64

/* A backend call: {id, value} -> {id, 2 * value + 1}. */
struct rpc_msg {
	uint64_t id;
	uint64_t value;
};

struct rpc_server {
	struct axs_ctx *ctx;
	int backend_lfd;
	int backend_port;
	int64_t fanout, size;
	struct axs_conns nodes; /* every connection task, front and backend */
	uint64_t bad_replies;
};

static int rpc_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = ax_read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return r == 0 ? -ECONNRESET : (int)r;
		got += (size_t)r;
	}
	return 0;
}

/* The backend service: answer calls on one connection. */
static intptr_t rpc_backend_conn(void *arg)
{
	struct axs_start st = *(struct axs_start *)arg;
	struct rpc_server *s = st.srv;
	struct axs_conn n;
	free(arg);
	axs_conn_add(&s->nodes, &n);
	struct rpc_msg m;
	while (rpc_read_full(st.fd, &m, sizeof m) == 0) {
		m.value = 2 * m.value + 1;
		if (ax_write(st.fd, &m, sizeof m) != sizeof m)
			break;
	}
	ax_close(st.fd);
	axs_conn_del(&s->nodes, &n);
	return 0;
}

static intptr_t rpc_backend_accept(void *arg)
{
	struct rpc_server *s = arg;
	return axs_accept_loop(s->ctx, s->backend_lfd, rpc_backend_conn, s,
				 "backend-conn");
}

struct rpc_call {
	int fd;
	uint64_t id, value;
	int err;
};

static intptr_t rpc_call_main(void *arg)
{
	struct rpc_call *c = arg;
	struct rpc_msg m = {c->id, c->value};
	if (ax_write(c->fd, &m, sizeof m) != sizeof m)
		return c->err = -EIO;
	int r = rpc_read_full(c->fd, &m, sizeof m);
	if (r < 0)
		return c->err = r;
	if (m.id != c->id || m.value != 2 * c->value + 1)
		return c->err = -EBADMSG;
	return 0;
}

/* A front connection: read a request, fan out, join, answer. */
static intptr_t rpc_front_conn(void *arg)
{
	struct axs_start st = *(struct axs_start *)arg;
	struct rpc_server *s = st.srv;
	struct axs_conn n;
	int back[RPC_MAX_FANOUT];
	int64_t k = s->fanout, nb = 0;
	char *req = malloc((size_t)s->size);
	uint64_t id = 0;
	free(arg);
	axs_conn_add(&s->nodes, &n);
	for (; req && nb < k; nb++) {
		back[nb] = ax_connect("127.0.0.1", (uint16_t)s->backend_port);
		if (back[nb] < 0)
			break;
		ax_tcp_nodelay(back[nb], true);
	}
	while (req && nb == k && rpc_read_full(st.fd, req, (size_t)s->size) == 0) {
		struct rpc_call calls[RPC_MAX_FANOUT];
		ax_task *t[RPC_MAX_FANOUT];
		int64_t spawned = 0;
		bool ok = true;
		for (int64_t i = 0; i < k; i++) {
			calls[i] = (struct rpc_call){back[i], ++id, (uint64_t)i * 7 + id, 0};
			if (ax_spawn(&t[i], rpc_call_main, &calls[i], "call") < 0)
				break;
			spawned++;
		}
		for (int64_t i = 0; i < spawned; i++) {
			if (ax_join(t[i], NULL) < 0) {
				/* cancelled while joining: stop the call, then join */
				ax_cancel(t[i]);
				while (ax_join(t[i], NULL) < 0)
					;
				ok = false;
			}
			if (calls[i].err) {
				if (calls[i].err == -EBADMSG)
					s->bad_replies++;
				ok = false;
			}
		}
		if (!ok || spawned != k ||
		    ax_write(st.fd, req, (size_t)s->size) != s->size)
			break;
	}
	for (int64_t i = 0; i < nb; i++)
		ax_close(back[i]);
	free(req);
	ax_close(st.fd);
	axs_conn_del(&s->nodes, &n);
	return 0;
}

static intptr_t rpc_serve(struct axs_ctx *ctx)
{
	struct rpc_server s = {.ctx = ctx, .fanout = axs_param(ctx, "fanout"),
			       .size = axs_param(ctx, "size")};
	ax_task *acceptor;
	int r = 0;
	s.backend_lfd = ax_tcp_listen("127.0.0.1", 0, 4096, 0);
	if (s.backend_lfd < 0)
		return s.backend_lfd;
	s.backend_port = ax_tcp_port(s.backend_lfd);
	if ((r = ax_spawn(&acceptor, rpc_backend_accept, &s, "backend")) < 0) {
		ax_close(s.backend_lfd);
		return r;
	}
	r = axs_accept_loop(ctx, ctx->listen_fd, rpc_front_conn, &s, "front-conn");
	/* stop: the backend acceptor, then every connection */
	ax_cancel(acceptor);
	while (ax_join(acceptor, NULL) < 0)
		ax_cancel(acceptor);
	axs_conns_stop(&s.nodes);
	ax_close(s.backend_lfd);
	if (s.bad_replies)
		axs_fail(ctx, "%llu backend replies were wrong",
			   (unsigned long long)s.bad_replies);
	return r;
}

static const struct axs_param_def rpc_params[] = {
	{"connections", AXS_P_INT, "16", "concurrent client connections", 1, 10000},
	{"fanout", AXS_P_INT, "4", "backend calls per request", 1, RPC_MAX_FANOUT},
	{"size", AXS_P_BYTES, "64", "request size in bytes", 16, 65536},
	{"pipeline", AXS_P_INT, "1", "requests in flight per connection", 1, 1},
	AX_SC_OPEN_LOOP_PARAMS,
	AX_SC_WORKERS_PARAM,
	{"duration", AXS_P_DURATION, "2s", "measured phase", 1000000, 3600000000000},
	{"warmup", AXS_P_DURATION, "500ms", "warm-up before measuring", 0, 600000000000},
};

const struct axs_scenario axs_rpc_fanout = {
	.name = "rpc_fanout",
	.summary = "each request fans out to K backend calls (tasks) and joins them",
	.kind = AXS_NET,
	.features = AX_FEAT_TCP,
	.protocol = "echo",
	.params = rpc_params,
	.nparams = sizeof rpc_params / sizeof rpc_params[0],
	.serve = rpc_serve,
};
