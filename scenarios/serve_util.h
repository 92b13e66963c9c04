/*
 * serve_util.h - server pieces shared by network scenarios: the echo server
 * (tcp_echo.c) that fairness, idle_conns and connect_storm also serve.
 */
#ifndef AX_SERVE_UTIL_H
#define AX_SERVE_UTIL_H

#include "scenario.h"

/* Accept connections on ctx->listen_fd and echo every byte back, until the
 * harness stops the server; then cancel the open connections and return 0
 * (or -errno when accept failed for another reason). Reads use a buffer of
 * max(4 KiB, min(64 KiB, the "size" parameter)). */
intptr_t ax_sc_echo_serve(struct ax_sc_ctx *ctx);

#endif
