/* blocking.c - the "blocking" native reference for the echo scenarios
 * (tcp_echo, idle_conns, connect_storm): one thread per connection echoing
 * with plain blocking sockets, the floor every async runtime is compared
 * with. */
#include "native/native.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_BUF (64 * 1024)
#define CONN_STACK (128 * 1024)

struct bconn {
	int fd;
	struct bconn *next, *prev;
	struct bstate *st;
};

struct bstate {
	pthread_mutex_t mu;
	pthread_cond_t idle;  /* signalled when live drops to 0 */
	struct bconn *conns;  /* live connections */
	size_t live;
};

static void conn_unlink(struct bconn *c)
{
	struct bstate *st = c->st;
	pthread_mutex_lock(&st->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		st->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (--st->live == 0)
		pthread_cond_broadcast(&st->idle);
	pthread_mutex_unlock(&st->mu);
}

/* Echo until EOF or an error: the only per-connection work. */
static void *conn_thread(void *arg)
{
	struct bconn *c = arg;
	char *buf = malloc(CONN_BUF);

	while (buf) {
		ssize_t n = read(c->fd, buf, CONN_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		ssize_t off = 0;
		while (off < n) {
			ssize_t w = send(c->fd, buf + off, (size_t)(n - off),
					 MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	free(buf);
	conn_unlink(c);
	close(c->fd);
	free(c);
	return NULL;
}

static int blocking_serve(struct axr_run *r)
{
	struct bstate st;
	pthread_attr_t attr;
	int err = 0;

	memset(&st, 0, sizeof st);
	pthread_mutex_init(&st.mu, NULL);
	pthread_cond_init(&st.idle, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, CONN_STACK);
	r->state = &st;

	while (!atomic_load(&r->stopping)) {
		int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (atomic_load(&r->stopping))
				break;
			err = -errno;
			break;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct bconn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->st = &st;
		pthread_mutex_lock(&st.mu);
		c->next = st.conns;
		if (st.conns)
			st.conns->prev = c;
		st.conns = c;
		st.live++;
		pthread_mutex_unlock(&st.mu);
		pthread_t th;
		int e = pthread_create(&th, &attr, conn_thread, c);
		if (e) {
			conn_unlink(c);
			close(fd);
			free(c);
		}
	}

	/* Wake every connection thread (a read then returns 0) and wait for
	 * them, so that nothing outlives serve. */
	pthread_mutex_lock(&st.mu);
	for (struct bconn *c = st.conns; c; c = c->next)
		shutdown(c->fd, SHUT_RDWR);
	while (st.live)
		pthread_cond_wait(&st.idle, &st.mu);
	pthread_mutex_unlock(&st.mu);

	pthread_attr_destroy(&attr);
	pthread_cond_destroy(&st.idle);
	pthread_mutex_destroy(&st.mu);
	r->state = NULL;
	return err;
}

static void blocking_stop(struct axr_run *r)
{
	atomic_store(&r->stopping, true);
	/* a blocked accept returns EINVAL once the listener is shut down */
	shutdown(r->listen_fd, SHUT_RDWR);
}

/* every echo scenario whose server is the plain echo server */
static const char *const blocking_scenarios[] = { "tcp_echo", "idle_conns",
						   "connect_storm", NULL };

const struct axr_ref axr_blocking = {
	.name = "blocking",
	.summary = "thread per connection, plain blocking sockets (echo scenarios)",
	.engine_info = "thread-per-connection, blocking read/send",
	.scenarios = blocking_scenarios,
	.serve = blocking_serve,
	.stop = blocking_stop,
};
