/*
 * serve_util.h - server pieces shared by network scenarios: the accept loop,
 * the list of open connections a stop cancels, the echo server (tcp_echo.c)
 * that fairness, idle_conns and connect_storm also serve, and the open-loop
 * parameters of the load generator.
 */
#ifndef AX_SERVE_UTIL_H
#define AX_SERVE_UTIL_H

#include "scenario.h"

/* The load generator's open-loop parameters, shared by the request/response
 * scenarios (docs/harness.md): `rate` > 0 sends that many requests per
 * second over all connections from a schedule and measures latency from
 * each request's intended send time; 0 is the closed loop. */
#define AX_SC_OPEN_LOOP_PARAMS \
	{"rate", AXS_P_INT, "0", "open loop: requests/s over all connections (0: closed loop)", 0, 10000000}, \
	{"arrivals", AXS_P_ENUM, "uniform", "uniform|poisson: open-loop gaps between requests", 0, 1}

/* Thread-per-core (docs/harness.md): the harness runs `workers`
 * independent runtimes of the engine under test, one per server CPU, each
 * with its own SO_REUSEPORT listener on the common port and its own call of
 * serve. A scenario declares this parameter when its server keeps all its
 * state in its serve call (no process-wide state), so that N of them can
 * run side by side. */
#define AX_SC_WORKERS_PARAM \
	{"workers", AXS_P_INT, "1", "thread-per-core: runtimes, one per server CPU, each with its own SO_REUSEPORT listener", 1, 1024}

/* One open connection, usually on its task's stack. */
struct axs_conn {
	ax_task *task;
	struct axs_conn *next, *prev;
};

/* The open connections of a server. Zero-initialise. */
struct axs_conns {
	struct axs_conn *head;
};

/* Link c (for the calling task) into l, and unlink it. */
void axs_conn_add(struct axs_conns *l, struct axs_conn *c);
void axs_conn_del(struct axs_conns *l, struct axs_conn *c);

/* Cancel every connection of l and wait until each has unlinked itself.
 * Suspends. */
void axs_conns_stop(struct axs_conns *l);

/* What a connection task receives: a malloc'ed start record it must free. */
struct axs_start {
	void *srv;
	int fd;
};

/* Accept on lfd until the harness stops the server or the task is
 * cancelled, spawning a detached conn_main(struct axs_start *) per
 * connection (TCP_NODELAY set). Backs off 1 ms on EMFILE/ENFILE. Returns 0,
 * or -errno when accept failed otherwise. Suspends. */
int axs_accept_loop(struct axs_ctx *ctx, int lfd, ax_task_fn conn_main,
		      void *srv, const char *name);

/* Accept connections on ctx->listen_fd and echo every byte back, until the
 * harness stops the server; then cancel the open connections and return 0
 * (or -errno when accept failed for another reason). Reads use a 512-byte
 * buffer on the connection task's stack until one fills it, then a heap
 * buffer of max(4 KiB, min(64 KiB, the "size" parameter)) while reads stay
 * large (tcp_echo.c), so an idle connection holds no heap buffer. */
intptr_t axs_echo_serve(struct axs_ctx *ctx);

/* The HTTP/1.1 plaintext server of http_plaintext.c (docs/protocols.md),
 * served by http_plaintext_faults too. */
intptr_t axs_http_serve(struct axs_ctx *ctx);

#endif
