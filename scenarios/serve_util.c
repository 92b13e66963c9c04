/*
 * serve_util.c - server pieces shared by the network scenarios: the
 * accept loop (with the out-of-descriptors back-off) and the list of open
 * connections that a stop cancels and waits for.
 */
#include <errno.h>
#include <stdlib.h>

#include "serve_util.h"

void axs_conn_add(struct axs_conns *l, struct axs_conn *c)
{
	c->task = ax_current();
	c->prev = NULL;
	c->next = l->head;
	if (l->head)
		l->head->prev = c;
	l->head = c;
}

void axs_conn_del(struct axs_conns *l, struct axs_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
}

void axs_conns_stop(struct axs_conns *l)
{
	/* a connection task may be between two calls when cancelled (and
	 * consume the request there), so cancel again until all are gone */
	while (l->head) {
		for (struct axs_conn *c = l->head; c; c = c->next)
			ax_cancel(c->task);
		ax_sleep(1000000);
	}
}

int axs_accept_loop(struct axs_ctx *ctx, int lfd, ax_task_fn conn_main,
		      void *srv, const char *name)
{
	while (!ctx->stopping) {
		int fd = ax_accept(lfd);
		if (fd == -EMFILE || fd == -ENFILE) {
			/* out of descriptors: back off instead of spinning */
			ax_sleep(1000000);
			continue;
		}
		if (fd < 0)
			return fd == -ECANCELED ? 0 : fd;
		ax_tcp_nodelay(fd, true);
		struct axs_start *st = malloc(sizeof *st);
		if (st) {
			st->srv = srv;
			st->fd = fd;
		}
		/* the child runs at once (eager spawn) and owns st */
		if (!st || ax_spawn(NULL, conn_main, st, name) < 0) {
			free(st);
			ax_close(fd);
		}
	}
	return 0;
}
