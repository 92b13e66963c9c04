/* loadgen.c - the load generator (`__load` child or `axbench load`): raw
 * edge-triggered epoll, independent of every runtime under test, driving a
 * server in closed loop, open loop at a fixed rate (latency from each
 * request's intended send time), idle connections or a connection storm;
 * verifies every response through its protocol module and times round
 * trips into histograms. The closed and open loops and the connection
 * storm run on one thread per CPU of its CPU set (--cpus), each with its own epoll set, its share of
 * the connections (and so of the open-loop rate) and its own histograms,
 * merged exactly (same layout, counts added) at the end. */
#include "commands.h"
#include "proc.h"
#include "results.h"
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define RX_CAP (256 * 1024)
/* The load generator is the bottleneck when its own CPU time reaches this
 * share of the measured wall time of its load threads. */
#define SATURATION 0.90
/* Open loop: the rate counts as sustained when the responses completed in
 * the measured phase reach this share of the requests scheduled in it. */
#define SUSTAIN 0.95
/* Open loop: after the measured phase, wait at most this long (and at most
 * the phase's length) for the requests scheduled in it. */
#define DRAIN_MAX_NS (1000 * INT64_C(1000000))
/* Count mode (--messages): a bound on the whole run, for a server that
 * stops answering (the watchdog of the caller usually fires first). */
#define COUNT_MODE_MAX_NS (600 * INT64_C(1000000000))

/* Idle and connect modes: limits of the phases that have no duration. */
#define CONNECT_ALL_MAX_NS (20 * INT64_C(1000000000))
#define WAVE_MAX_NS (10 * INT64_C(1000000000))
/* Descriptors kept free beside the connections (epoll, pipes, files). */
#define FD_SPARE 64

/* Protocol modules by name (a scenario's `protocol`). */
static const struct lg_proto *const protos[] = {
	&lg_proto_echo,
	&lg_proto_http,
	NULL,
};

void lg_fail(struct lg *g, const char *fmt, ...)
{
	va_list ap;
	if (g->failed)
		return;
	g->failed = true;
	va_start(ap, fmt);
	vsnprintf(g->fail, sizeof g->fail, fmt, ap);
	va_end(ap);
}

static const struct lg_proto *proto_find(const char *name)
{
	for (size_t i = 0; protos[i]; i++)
		if (!strcmp(protos[i]->name, name))
			return protos[i];
	return NULL;
}

/* A scenario parameter by name, or def when the scenario lacks it. */
static int64_t param_or(const struct axs_scenario *sc, const int64_t *values,
			const char *name, int64_t def)
{
	int i = axs_param_index(sc, name);
	return i < 0 ? def : values[i];
}

/* Parse "HOST:PORT" or "[V6]:PORT" (numeric only). Returns 0 or -EINVAL. */
static int parse_target(const char *t, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon, *hs = t;
	size_t hl;

	if (*t == '[') {
		const char *rb = strchr(t, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		hs = t + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(t, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - t);
	}
	if (hl == 0 || hl >= sizeof host)
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end || port < 1 || port > 65535)
		return -EINVAL;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) || !ai)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* epoll_wait with a nanosecond timeout (epoll_pwait2), so that an open
 * loop can wake for a send due in 100 us; milliseconds, rounded up, where
 * the kernel lacks it. */
static int wait_events(int ep, struct epoll_event *evs, int max, int64_t ns)
{
	static bool no_pwait2;
	if (ns < 0)
		ns = 0;
	if (!no_pwait2) {
		struct timespec ts = { .tv_sec = ns / 1000000000,
				       .tv_nsec = ns % 1000000000 };
		int n = epoll_pwait2(ep, evs, max, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		no_pwait2 = true;
	}
	int64_t ms = (ns + 999999) / 1000000;
	return epoll_wait(ep, evs, max, ms > 1000000 ? 1000000 : (int)ms);
}

/* A "Key:   123 kB" line of /proc/<pid>/status in KiB, or -1. */
static long proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	size_t kl = strlen(key);
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* The soft RLIMIT_NOFILE of another process (/proc/<pid>/limits), or -1. */
static long proc_nofile(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Max open files", 14)) {
			char *end;
			v = strtol(line + 14, &end, 10);
			if (end == line + 14)
				v = -1; /* "unlimited" */
			break;
		}
	fclose(f);
	return v;
}

/* --- the engine ------------------------------------------------------ */

/* Build request c->next_send into the unsent buffer: intended for time
 * `intended` (open loop), handed over at `now`. */
static void enqueue(struct lg *g, struct lg_conn *c, int64_t intended, int64_t now)
{
	if (c->tx_tail + g->req_max > c->tx_cap) {
		size_t pending = c->tx_tail - c->tx_head;
		memmove(c->tx, c->tx + c->tx_head, pending);
		c->tx_head = 0;
		c->tx_tail = pending;
	}
	uint64_t seq = c->next_send++;
	struct lg_slot *s = &c->slots[seq % g->depth];
	s->intended = intended;
	s->sent = now;
	c->tx_tail += g->proto->request(g, c, seq, c->tx + c->tx_tail);
}

/* Write what is pending; on EAGAIN wait for the next EPOLLOUT edge. */
static void flush(struct lg *g, struct lg_conn *c)
{
	while (c->tx_head < c->tx_tail) {
		ssize_t w = send(c->fd, c->tx + c->tx_head, c->tx_tail - c->tx_head,
				 MSG_NOSIGNAL);
		if (w > 0) {
			c->tx_head += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		lg_fail(g, "connection %u: send failed: %s", c->id,
			w < 0 ? strerror(errno) : "wrote nothing");
		return;
	}
	c->tx_head = c->tx_tail = 0;
}

/* --- open loop: the schedule ----------------------------------------- */

/* A uniform number in (0, 1] from the connection's xorshift64*. */
static double unit_rand(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	uint64_t r = *x * 0x2545f4914f6cdd1dull;
	return (double)((r >> 11) + 1) * 0x1.0p-53;
}

/* Move c's schedule to its next request. Uniform: request k of connection
 * i is due at t_start + (k + i/N) * gap, so the N connections interleave
 * evenly; Poisson: exponential gaps of mean `gap` per connection, whose
 * sum over N connections is a Poisson process of the whole rate. */
static void advance(struct lg *g, struct lg_conn *c)
{
	bool open = c->next_due < g->t_end;
	c->scheduled++;
	if (g->arrivals == LG_UNIFORM)
		c->next_due = g->t_start + (int64_t)(((double)c->scheduled +
			(double)c->id / (double)g->nconns_all) * g->mean_gap_ns);
	else
		c->next_due += (int64_t)(-log(unit_rand(&c->rng)) * g->mean_gap_ns);
	if (open && c->next_due >= g->t_end)
		g->sched_open--;
}

static void heap_swap(struct lg *g, size_t a, size_t b)
{
	struct lg_conn *t = g->heap[a];
	g->heap[a] = g->heap[b];
	g->heap[b] = t;
	g->heap[a]->heap_at = a;
	g->heap[b]->heap_at = b;
}

static void heap_up(struct lg *g, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (g->heap[p]->next_due <= g->heap[i]->next_due)
			break;
		heap_swap(g, i, p);
		i = p;
	}
}

static void heap_down(struct lg *g, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < g->heap_n && g->heap[l]->next_due < g->heap[m]->next_due)
			m = l;
		if (r < g->heap_n && g->heap[r]->next_due < g->heap[m]->next_due)
			m = r;
		if (m == i)
			return;
		heap_swap(g, i, m);
		i = m;
	}
}

static void heap_push(struct lg *g, struct lg_conn *c)
{
	c->heap_at = g->heap_n;
	g->heap[g->heap_n++] = c;
	heap_up(g, c->heap_at);
}

/* Remove the earliest connection. */
static void heap_pop(struct lg *g)
{
	g->heap[0]->heap_at = LG_NOT_QUEUED;
	if (--g->heap_n) {
		g->heap[0] = g->heap[g->heap_n];
		g->heap[0]->heap_at = 0;
		heap_down(g, 0);
	}
}

/* Send every request whose time has come on a connection with room in
 * its window (`depth` in flight); the others wait, and their latency keeps
 * counting from the time they were due. */
static void dispatch(struct lg *g, int64_t now)
{
	while (g->heap_n && !g->failed) {
		struct lg_conn *c = g->heap[0];
		if (c->next_due > now)
			break;
		int64_t intended = c->next_due;
		advance(g, c);
		enqueue(g, c, intended, now);
		g->inflight++;
		if (intended >= g->t_measure) {
			g->sched_measured++;
			axm_hist_record(g->hist_lag, now - intended);
		}
		if (!c->dirty) {
			c->dirty = true;
			g->dirty[g->ndirty++] = c;
		}
		if (c->next_due >= g->t_end || c->next_send - c->next_recv >= g->depth)
			heap_pop(g);
		else
			heap_down(g, 0);
	}
	for (size_t i = 0; i < g->ndirty; i++) {
		g->dirty[i]->dirty = false;
		if (!g->failed)
			flush(g, g->dirty[i]);
	}
	g->ndirty = 0;
}

/* --- responses ------------------------------------------------------- */

/* Response `seq` of c is complete at `now`. */
/* Count a completed round trip into the phase it belongs to. */
static inline void count_rt(struct lg *g, struct lg_conn *c, int64_t now)
{
	if (g->measuring && now < g->t_end) {
		g->measured++;
		c->measured++;
	} else if (!g->measuring) {
		g->warm++;
	}
}

static void complete(struct lg *g, struct lg_conn *c, uint64_t seq, int64_t now)
{
	const struct lg_slot *s = &c->slots[seq % g->depth];

	switch (g->mode) {
	case LG_CLOSED:
		if (g->measuring && now < g->t_end)
			axm_hist_record(g->hist, now - s->sent);
		count_rt(g, c, now);
		if (now < g->t_end && g->budget) {
			g->budget--;
			enqueue(g, c, now, now);
		}
		break;
	case LG_OPEN:
		g->inflight--;
		/* throughput: responses completed inside the phase (from the
		 * moment the loop started it, as the closed loop counts) */
		count_rt(g, c, now);
		/* latency: requests scheduled inside the phase, whenever
		 * their response comes */
		if (s->intended >= g->t_measure && s->intended < g->t_end) {
			axm_hist_record(g->hist, now - s->intended);
			axm_hist_record(g->hist_unc, now - s->sent);
			g->done_measured++;
		}
		if (c->heap_at == LG_NOT_QUEUED && c->next_due < g->t_end)
			heap_push(g, c);
		break;
	case LG_IDLE:
		if (g->measuring) {
			axm_hist_record(g->hist, now - s->sent);
			g->measured++;
		} else {
			g->warm++;
		}
		break;
	case LG_CONNECT:
		/* the connection's whole life: connect, send, echo */
		if (g->measuring && now < g->t_end)
			axm_hist_record(g->hist, now - c->conn_start);
		count_rt(g, c, now);
		break;
	}
}

/* Verify and account the bytes just read from c. */
static void process(struct lg *g, struct lg_conn *c, const uint8_t *p, size_t n,
		    int64_t now)
{
	while (n && !g->failed) {
		if (c->next_recv == c->next_send) {
			lg_fail(g, "connection %u: %zu unexpected bytes after "
				"message %llu", c->id, n,
				(unsigned long long)c->next_recv);
			return;
		}
		bool done = false;
		ssize_t k = g->proto->consume(g, c, p, n, &done);
		if (k <= 0) {
			lg_fail(g, "connection %u: protocol error", c->id);
			return;
		}
		p += k;
		n -= (size_t)k;
		if (!done)
			continue;
		uint64_t seq = c->next_recv++;
		c->rx_off = 0;
		complete(g, c, seq, now);
	}
}

/* Read everything available (edge-triggered). A short read means the
 * socket was drained: data arriving later raises a new edge. Closed loop:
 * then send the requests that replace the completed ones. */
static void on_readable(struct lg *g, struct lg_conn *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, g->rx, g->rx_cap, 0);
		if (r > 0) {
			process(g, c, g->rx, (size_t)r, axb_mono_ns());
			if (g->failed || (size_t)r < g->rx_cap)
				break;
			continue;
		}
		if (r == 0) {
			lg_fail(g, "connection %u: closed by the server after %llu "
				"responses", c->id, (unsigned long long)c->next_recv);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		lg_fail(g, "connection %u: receive failed: %s", c->id, strerror(errno));
		return;
	}
	if (!g->failed && g->mode == LG_CLOSED)
		flush(g, c);
}

/* Blocking connects of every connection, then non-blocking and in the
 * epoll set. Bounded: a connect waits at most 2 s, all of them at most
 * CONNECT_ALL_MAX_NS (plus that last 2 s). */
static int connect_all(struct lg *g, const struct sockaddr_storage *ss,
		       socklen_t sl, char *err, size_t errn)
{
	int one = 1;
	int64_t t0 = axb_mono_ns();
	struct timeval tmo = { .tv_sec = 2 };
	for (size_t i = 0; i < g->nconns; i++) {
		struct lg_conn *c = &g->conns[i];
		c->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			int e = errno;
			snprintf(err, errn, "connection %u: socket: %s", c->id, strerror(e));
			return -e;
		}
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
		int r;
		do
			r = connect(c->fd, (const struct sockaddr *)ss, sl);
		while (r && errno == EINTR);
		if (r) {
			int e = errno;
			snprintf(err, errn, "connection %u: connect failed: %s", c->id,
				 strerror(e));
			return -e;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
					  .data.ptr = c };
		if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
			int e = errno;
			snprintf(err, errn, "epoll_ctl: %s", strerror(e));
			return -e;
		}
		if (i + 1 < g->nconns && axb_mono_ns() - t0 > CONNECT_ALL_MAX_NS) {
			snprintf(err, errn, "only %zu of %zu connections were made in "
				 "%lld s", i + 1, g->nconns,
				 (long long)(CONNECT_ALL_MAX_NS / 1000000000));
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* Handle one batch of events of the request modes. */
static void handle_events(struct lg *g, struct epoll_event *evs, int n)
{
	for (int i = 0; i < n && !g->failed; i++) {
		struct lg_conn *c = evs[i].data.ptr;
		if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			on_readable(g, c);
		if (!g->failed && (evs[i].events & EPOLLOUT) &&
		    c->tx_head < c->tx_tail)
			flush(g, c);
	}
}

/* What a run measured besides the histograms. */
struct lg_run {
	struct rusage ru0, ru1;
	int64_t t_stop;          /* end of the measured phase, as observed */
	int64_t drain_ns;        /* open loop: time spent waiting after it */
	int64_t mstart_last;     /* several threads: when the last one saw the
	                            measured phase start (0: one thread) */
	/* idle mode */
	size_t requested;        /* connections asked for */
	long nofile_self, nofile_server;
	double connect_s;
	long rss0_kib, rss1_kib;
};

/* Start (SIGUSR1) and end (SIGUSR2) of the measured phase: rusage marks
 * here, the server takes its own. */
static void mark_start(struct lg *g, struct lg_run *run)
{
	getrusage(RUSAGE_SELF, &run->ru0);
	g->t_mstart = axb_mono_ns();
	g->measuring = true;
	if (g->server_pid)
		kill(g->server_pid, SIGUSR1);
}

static void mark_end(struct lg *g, struct lg_run *run)
{
	run->t_stop = axb_mono_ns();
	getrusage(RUSAGE_SELF, &run->ru1);
	if (g->server_pid)
		kill(g->server_pid, SIGUSR2);
}

/* A loop saw the measured phase start (at `now`) or end. On one thread
 * it takes the marks itself; a coordinated load thread only notes the
 * time (the coordinator takes the marks). Returns the phase's start. */
static int64_t phase_start(struct lg *g, struct lg_run *run, int64_t now)
{
	if (!g->coordinated) {
		mark_start(g, run);
		return g->t_mstart;
	}
	g->t_mstart = now;
	g->measuring = true;
	return now;
}

static void phase_end(struct lg *g, struct lg_run *run)
{
	if (g->coordinated)
		run->t_stop = axb_mono_ns();
	else
		mark_end(g, run);
}

/* Another load thread failed: this one stops too. */
static inline bool lg_stopped(const struct lg *g)
{
	return g->stop && atomic_load_explicit(g->stop, memory_order_relaxed);
}

/* Open loop, when the run gives up at `now`: a request of the measured
 * phase that got no answer has a latency of at least now - intended.
 * Record it so, rather than leave it out (which would flatter the server
 * that fell behind): the requests in flight, and the schedule points never
 * sent, in up to CENSOR_CHUNKS groups per connection. Counted in
 * g->censored. */
#define CENSOR_CHUNKS 32
static void censor(struct lg *g, int64_t now)
{
	for (size_t i = 0; i < g->nconns; i++) {
		struct lg_conn *c = &g->conns[i];
		for (uint64_t q = c->next_recv; q < c->next_send; q++) {
			const struct lg_slot *s = &c->slots[q % g->depth];
			if (s->intended < g->t_measure || s->intended >= g->t_end)
				continue;
			axm_hist_record(g->hist, now - s->intended);
			axm_hist_record(g->hist_unc, now - s->sent);
			g->censored++;
		}
		int64_t from = c->next_due > g->t_measure ? c->next_due : g->t_measure;
		if (from >= g->t_end)
			continue;
		uint64_t k = (uint64_t)ceil((double)(g->t_end - from) / g->mean_gap_ns);
		uint64_t per = (k + CENSOR_CHUNKS - 1) / CENSOR_CHUNKS;
		for (uint64_t done = 0; done < k; done += per) {
			uint64_t n = k - done < per ? k - done : per;
			/* the middle point of the group */
			int64_t t = from + (int64_t)(((double)done + (double)(n - 1) / 2) *
						     g->mean_gap_ns);
			axm_hist_record_n(g->hist, now - t, n);
		}
		g->censored += k;
	}
}

/* Closed or open loop over connected connections. */
static void run_requests(struct lg *g, struct lg_run *run)
{
	struct epoll_event evs[MAX_EVENTS];
	bool open = g->mode == LG_OPEN, ended = false;

	if (!g->coordinated) {
		g->t_start = axb_mono_ns();
		g->t_measure = g->t_start + g->warmup_ns;
		g->t_end = g->t_measure + g->duration_ns;
	}
	int64_t drain = g->duration_ns < DRAIN_MAX_NS ? g->duration_ns : DRAIN_MAX_NS;
	int64_t drain_end = g->t_end + drain;
	if (open) {
		/* precise wake-ups for the schedule (default slack: 50 us) */
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
		/* every connection of every thread sends rate / nconns_all */
		g->mean_gap_ns = 1e9 * (double)g->nconns_all / (double)g->rate;
		for (size_t i = 0; i < g->nconns; i++) {
			struct lg_conn *c = &g->conns[i];
			c->rng = 0x9e3779b97f4a7c15ull * (c->id + 1) ^ 0xd1b54a32d192ed03ull;
			if (g->arrivals == LG_UNIFORM)
				c->next_due = g->t_start + (int64_t)((double)c->id /
					(double)g->nconns_all * g->mean_gap_ns);
			else
				c->next_due = g->t_start + (int64_t)(-log(unit_rand(&c->rng)) *
								  g->mean_gap_ns);
			if (c->next_due < g->t_end) {
				g->sched_open++;
				heap_push(g, c);
			}
		}
	} else {
		for (size_t i = 0; i < g->nconns && !g->failed; i++) {
			for (unsigned d = 0; d < g->depth && g->budget; d++) {
				g->budget--;
				enqueue(g, &g->conns[i], g->t_start, g->t_start);
			}
			flush(g, &g->conns[i]);
		}
	}
	while (!g->failed) {
		int64_t now = axb_mono_ns();
		if (lg_stopped(g))
			break;
		if (g->max_msgs && g->measured == g->max_msgs) {
			/* count mode: every request answered */
			mark_end(g, run);
			ended = true;
			break;
		}
		if (!g->measuring && now >= g->t_measure)
			now = phase_start(g, run, now);
		if (!ended && now >= g->t_end) {
			phase_end(g, run);
			ended = true;
			if (!open)
				break;
		}
		/* open loop: wait for the requests of the phase, bounded */
		if (ended && ((!g->inflight && !g->sched_open) || now >= drain_end))
			break;
		int64_t next = !g->measuring ? g->t_measure : !ended ? g->t_end : drain_end;
		if (open) {
			dispatch(g, now);
			if (g->heap_n && g->heap[0]->next_due < next)
				next = g->heap[0]->next_due;
		}
		int n = wait_events(g->ep, evs, MAX_EVENTS, next - now);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			lg_fail(g, "epoll_wait: %s", strerror(errno));
			break;
		}
		handle_events(g, evs, n);
	}
	if (!ended)
		phase_end(g, run);
	/* count mode promises the count: fewer answers is a failed check,
	 * never a figure over fewer messages */
	if (g->max_msgs && g->measured < g->max_msgs && !g->failed)
		lg_fail(g, "only %llu of the %llu requests were answered",
			(unsigned long long)g->measured, (unsigned long long)g->max_msgs);
	if (open) {
		int64_t now = axb_mono_ns();
		run->drain_ns = now - run->t_stop;
		censor(g, now);
	}
}

/* --- idle connections ------------------------------------------------- */

/* One echo on every connection; wait for all, at most WAVE_MAX_NS. */
static void wave(struct lg *g, const char *what)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t *count = g->measuring ? &g->measured : &g->warm;
	uint64_t want = *count + g->nconns;
	int64_t now = axb_mono_ns(), deadline = now + WAVE_MAX_NS;

	for (size_t i = 0; i < g->nconns && !g->failed; i++) {
		enqueue(g, &g->conns[i], now, now);
		flush(g, &g->conns[i]);
	}
	while (!g->failed && *count < want) {
		now = axb_mono_ns();
		if (now >= deadline) {
			lg_fail(g, "%s: only %llu of %zu connections answered within "
				"%lld s", what, (unsigned long long)(*count + g->nconns - want),
				g->nconns, (long long)(WAVE_MAX_NS / 1000000000));
			return;
		}
		int n = wait_events(g->ep, evs, MAX_EVENTS, deadline - now);
		if (n < 0 && errno != EINTR) {
			lg_fail(g, "epoll_wait: %s", strerror(errno));
			return;
		}
		handle_events(g, evs, n < 0 ? 0 : n);
	}
}

/* Connect N connections, one echo on each, leave them idle for `duration`
 * (the server's measured phase), sample the server's RSS, then one more
 * echo on each to check that every connection survived. */
static int run_idle(struct lg *g, struct lg_run *run,
		    const struct sockaddr_storage *ss, socklen_t sl,
		    char *err, size_t errn)
{
	struct epoll_event evs[MAX_EVENTS];
	if (g->server_pid)
		run->rss0_kib = proc_status_kb(g->server_pid, "VmRSS");
	int64_t t0 = axb_mono_ns();
	int r = connect_all(g, ss, sl, err, errn);
	if (r)
		return r;
	run->connect_s = (double)(axb_mono_ns() - t0) / 1e9;
	g->t_start = axb_mono_ns();
	wave(g, "first echo");
	if (g->failed)
		return 0;
	mark_start(g, run);
	g->t_measure = g->t_mstart;
	g->t_end = g->t_mstart + g->duration_ns;
	/* idle: nothing may arrive (process() fails on unexpected bytes) */
	for (int64_t now = g->t_mstart; !g->failed && now < g->t_end; now = axb_mono_ns()) {
		int n = wait_events(g->ep, evs, MAX_EVENTS, g->t_end - now);
		if (n < 0 && errno != EINTR) {
			lg_fail(g, "epoll_wait: %s", strerror(errno));
			break;
		}
		handle_events(g, evs, n < 0 ? 0 : n);
	}
	mark_end(g, run);
	if (g->server_pid)
		run->rss1_kib = proc_status_kb(g->server_pid, "VmRSS");
	if (!g->failed)
		wave(g, "echo after idling");
	return 0;
}

/* --- connection storm ------------------------------------------------ */

/* Open a new connection on slot c (non-blocking connect). */
static void storm_open(struct lg *g, struct lg_conn *c,
		       const struct sockaddr_storage *ss, socklen_t sl, int64_t now)
{
	int one = 1;
	c->gen++;
	c->conn_start = now;
	c->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		lg_fail(g, "connector %u: socket: %s", c->id, strerror(errno));
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET,
				  .data.u64 = (uint64_t)c->gen << 32 | c->id };
	if (epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev)) {
		lg_fail(g, "epoll_ctl: %s", strerror(errno));
		return;
	}
	int r = connect(c->fd, (const struct sockaddr *)ss, sl);
	if (r && errno != EINPROGRESS) {
		int e = errno;
		lg_fail(g, "connector %u: connect failed: %s%s", c->id, strerror(e),
			e == EADDRNOTAVAIL ? " (out of ephemeral ports: connections "
			"in TIME_WAIT; see net.ipv4.tcp_tw_reuse)" : "");
		return;
	}
	c->connecting = r != 0;
	if (!c->connecting) {
		enqueue(g, c, now, now);
		flush(g, c);
	}
}

static void storm_close(struct lg_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->connecting = false;
	c->tx_head = c->tx_tail = 0;
}

/* K connectors in closed loop: connect, send one message, read its echo,
 * close, and again. */
static void run_connect(struct lg *g, struct lg_run *run,
			const struct sockaddr_storage *ss, socklen_t sl)
{
	struct epoll_event evs[MAX_EVENTS];
	bool ended = false;

	if (!g->coordinated) {
		g->t_start = axb_mono_ns();
		g->t_measure = g->t_start + g->warmup_ns;
		g->t_end = g->t_measure + g->duration_ns;
	}
	for (size_t i = 0; i < g->nconns && !g->failed; i++)
		storm_open(g, &g->conns[i], ss, sl, g->t_start);
	while (!g->failed && !lg_stopped(g)) {
		int64_t now = axb_mono_ns();
		if (!g->measuring && now >= g->t_measure)
			now = phase_start(g, run, now);
		if (now >= g->t_end) {
			phase_end(g, run);
			ended = true;
			break;
		}
		int64_t next = g->measuring ? g->t_end : g->t_measure;
		int n = wait_events(g->ep, evs, MAX_EVENTS, next - now);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			lg_fail(g, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n && !g->failed; i++) {
			/* by id, from this thread's first connector */
			struct lg_conn *c = &g->conns[(uint32_t)evs[i].data.u64 - g->conns[0].id];
			if ((uint32_t)(evs[i].data.u64 >> 32) != c->gen || c->fd < 0)
				continue; /* an event of a connection already closed */
			if (c->connecting) {
				int e = 0;
				socklen_t el = sizeof e;
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &el);
				if (e) {
					lg_fail(g, "connector %u: connect failed: %s",
						c->id, strerror(e));
					break;
				}
				if (!(evs[i].events & EPOLLOUT))
					continue;
				c->connecting = false;
				enqueue(g, c, c->conn_start, axb_mono_ns());
				flush(g, c);
				continue;
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(g, c);
			if (g->failed)
				break;
			if (c->next_recv == c->next_send) {
				/* echoed: this connection is done */
				storm_close(c);
				now = axb_mono_ns();
				if (now < g->t_end)
					storm_open(g, c, ss, sl, now);
			} else if ((evs[i].events & EPOLLOUT) && c->tx_head < c->tx_tail) {
				flush(g, c);
			}
		}
	}
	if (!ended)
		phase_end(g, run);
}

/* --- several load threads -------------------------------------------- */

/* One load thread: its own engine state over a slice of the connections
 * (conns points into the coordinator's array), its own histograms, pinned
 * to one CPU of the set. */
struct lg_thread {
	struct lg g;
	struct lg_run run;
	int cpu;
	pthread_t th;
	bool started;
	int err;              /* setup (pinning, connecting): 0 or -errno */
	char msg[512];
	struct lg_pool *pool;
};

struct lg_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t connected;     /* threads done connecting */
	bool go;              /* the coordinator set the phases' times */
	atomic_bool stop;
	const struct sockaddr_storage *ss;
	socklen_t sl;
};

static void *lg_thread_main(void *arg)
{
	struct lg_thread *t = arg;
	if (axb_pin_cpu(t->cpu)) {
		t->err = -EPERM;
		snprintf(t->msg, sizeof t->msg, "cannot pin a load thread to CPU %d",
			 t->cpu);
	} else if (t->g.mode != LG_CONNECT) {
		t->err = connect_all(&t->g, t->pool->ss, t->pool->sl, t->msg, sizeof t->msg);
	}
	/* the coordinator sets the phases' times, then lets everyone go */
	pthread_mutex_lock(&t->pool->mu);
	t->pool->connected++;
	pthread_cond_broadcast(&t->pool->cv);
	while (!t->pool->go)
		pthread_cond_wait(&t->pool->cv, &t->pool->mu);
	pthread_mutex_unlock(&t->pool->mu);
	if (!atomic_load(&t->pool->stop)) {
		if (t->g.mode == LG_CONNECT)
			run_connect(&t->g, &t->run, t->pool->ss, t->pool->sl);
		else
			run_requests(&t->g, &t->run);
	}
	if (t->g.failed)
		atomic_store(&t->pool->stop, true);
	return NULL;
}

/* Sleep until the monotonic time `until`, or until a thread failed. */
static void sleep_until(int64_t until, atomic_bool *stop)
{
	for (;;) {
		int64_t now = axb_mono_ns();
		if (now >= until || atomic_load(stop))
			return;
		int64_t d = until - now < 10000000 ? until - now : 10000000;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)d };
		nanosleep(&ts, NULL);
	}
}

/* Give thread t its share [lo, lo + n) of g's connections and its own
 * epoll set, receive buffer, open-loop queues and histograms. */
static int lg_thread_init(struct lg_thread *t, const struct lg *g, size_t lo,
			  size_t n, struct lg_pool *pool)
{
	t->g = *g; /* configuration, protocol state, a failure already recorded */
	t->pool = pool;
	t->g.conns = g->conns + lo;
	t->g.nconns = n;
	t->g.coordinated = true;
	t->g.stop = &pool->stop;
	t->g.ep = epoll_create1(EPOLL_CLOEXEC);
	t->g.rx = malloc(g->rx_cap);
	t->g.heap = calloc(n, sizeof *t->g.heap);
	t->g.dirty = calloc(n, sizeof *t->g.dirty);
	t->g.hist = axm_hist_new();
	t->g.hist_unc = axm_hist_new();
	t->g.hist_lag = axm_hist_new();
	t->run.rss0_kib = t->run.rss1_kib = -1;
	return t->g.ep >= 0 && t->g.rx && t->g.heap && t->g.dirty && t->g.hist &&
	       t->g.hist_unc && t->g.hist_lag ? 0 : -ENOMEM;
}

static void lg_thread_free(struct lg_thread *t)
{
	if (t->g.ep >= 0)
		close(t->g.ep);
	free(t->g.rx);
	free(t->g.heap);
	free(t->g.dirty);
	axm_hist_free(t->g.hist);
	axm_hist_free(t->g.hist_unc);
	axm_hist_free(t->g.hist_lag);
}

/* Add thread t's counts and histograms into the coordinator's g. */
static void lg_merge(struct lg *g, struct lg_run *run, const struct lg_thread *t)
{
	g->measured += t->g.measured;
	g->warm += t->g.warm;
	g->sched_measured += t->g.sched_measured;
	g->done_measured += t->g.done_measured;
	g->censored += t->g.censored;
	g->inflight += t->g.inflight;
	axm_hist_merge(g->hist, t->g.hist);
	axm_hist_merge(g->hist_unc, t->g.hist_unc);
	axm_hist_merge(g->hist_lag, t->g.hist_lag);
	if (t->run.drain_ns > run->drain_ns)
		run->drain_ns = t->run.drain_ns;
	if (t->g.failed && !g->failed) {
		g->failed = true;
		memcpy(g->fail, t->g.fail, sizeof g->fail);
	}
}

/* The closed or open loop (or the connection storm) on nt threads, thread
 * i on cpus->cpu[i] with connections [i * N / nt, (i + 1) * N / nt). The
 * calling thread coordinates: once every thread has connected (the storm:
 * is ready) it sets the phases' times,
 * takes the measurement marks (rusage of the whole process, the server's
 * signals) at their times, joins the threads and merges their counts and
 * histograms into g. Returns 0, or -errno with err set when a thread could
 * not be set up or connect; threads_out: one object per thread (its CPU,
 * connections, round trips, latency; with thread_hists its histogram). */
static int run_threads(struct lg *g, struct lg_run *run, const struct axb_cpus *cpus,
		       size_t nt, const struct sockaddr_storage *ss, socklen_t sl,
		       bool thread_hists, json_t **threads_out, char *err, size_t errn)
{
	struct lg_pool pool = { .ss = ss, .sl = sl };
	struct lg_thread *ts = calloc(nt, sizeof *ts);
	size_t started = 0;
	int rc = 0;

	*threads_out = NULL;
	if (!ts) {
		snprintf(err, errn, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&pool.stop, false);
	for (size_t i = 0; i < nt; i++) {
		ts[i].g.ep = -1;
		ts[i].cpu = cpus->cpu[i];
		size_t lo = i * g->nconns / nt, hi = (i + 1) * g->nconns / nt;
		if (lg_thread_init(&ts[i], g, lo, hi - lo, &pool)) {
			snprintf(err, errn, "load generator setup failed (out of memory?)");
			rc = -ENOMEM;
		}
	}
	if (rc) {
		for (size_t i = 0; i < nt; i++)
			lg_thread_free(&ts[i]);
		free(ts);
		return rc;
	}
	pthread_mutex_init(&pool.mu, NULL);
	pthread_cond_init(&pool.cv, NULL);
	for (; started < nt; started++)
		if (pthread_create(&ts[started].th, NULL, lg_thread_main, &ts[started]))
			break;
	pthread_mutex_lock(&pool.mu);
	while (pool.connected < started)
		pthread_cond_wait(&pool.cv, &pool.mu);
	if (started < nt) {
		snprintf(err, errn, "cannot start load thread %zu", started);
		rc = -EAGAIN;
	}
	for (size_t i = 0; i < started && !rc; i++)
		if (ts[i].err) {
			snprintf(err, errn, "%s", ts[i].msg);
			rc = ts[i].err;
		}
	if (rc)
		atomic_store(&pool.stop, true);
	/* everyone connected: one warm-up, one measured phase for all */
	g->t_start = axb_mono_ns();
	g->t_measure = g->t_start + g->warmup_ns;
	g->t_end = g->t_measure + g->duration_ns;
	if (g->mode == LG_OPEN)
		g->mean_gap_ns = 1e9 * (double)g->nconns_all / (double)g->rate;
	for (size_t i = 0; i < nt; i++) {
		ts[i].g.t_start = g->t_start;
		ts[i].g.t_measure = g->t_measure;
		ts[i].g.t_end = g->t_end;
	}
	pool.go = true;
	pthread_cond_broadcast(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
	if (!rc) {
		sleep_until(g->t_measure, &pool.stop);
		if (!atomic_load(&pool.stop))
			mark_start(g, run);
		sleep_until(g->t_end, &pool.stop);
		mark_end(g, run);
	}
	json_t *arr = json_array();
	int64_t first = 0;
	for (size_t i = 0; i < nt; i++) {
		if (i < started)
			pthread_join(ts[i].th, NULL);
		lg_merge(g, run, &ts[i]);
		if (ts[i].g.t_mstart && (!first || ts[i].g.t_mstart < first))
			first = ts[i].g.t_mstart;
		if (ts[i].g.t_mstart > run->mstart_last)
			run->mstart_last = ts[i].g.t_mstart;
		json_t *o = json_pack("{s:i, s:I, s:I, s:I}", "cpu", ts[i].cpu,
			"connections", (json_int_t)ts[i].g.nconns,
			"round_trips", (json_int_t)ts[i].g.measured,
			"warmup_round_trips", (json_int_t)ts[i].g.warm);
		json_object_set_new(o, "latency", axm_hist_percentiles_json(ts[i].g.hist));
		if (thread_hists) {
			json_object_set_new(o, "histogram", axm_hist_to_json(ts[i].g.hist));
			if (g->mode == LG_OPEN)
				json_object_set_new(o, "histogram_uncorrected",
						    axm_hist_to_json(ts[i].g.hist_unc));
		}
		json_array_append_new(arr, o);
		lg_thread_free(&ts[i]);
	}
	/* the phase as the threads counted it: from the first thread that
	 * saw it start (the coordinator's wake-up may come a little later) */
	if (first && (!g->t_mstart || first < g->t_mstart))
		g->t_mstart = first;
	pthread_mutex_destroy(&pool.mu);
	pthread_cond_destroy(&pool.cv);
	free(ts);
	*threads_out = arr;
	return rc;
}

/* --- setup and result ------------------------------------------------- */

static void lg_free(struct lg *g)
{
	for (size_t i = 0; g->conns && i < g->nconns; i++) {
		if (g->conns[i].fd >= 0)
			close(g->conns[i].fd);
		free(g->conns[i].tx);
		free(g->conns[i].slots);
	}
	free(g->conns);
	free(g->heap);
	free(g->dirty);
	if (g->proto && g->proto->fini)
		g->proto->fini(g);
	if (g->ep >= 0)
		close(g->ep);
	free(g->rx);
	axm_hist_free(g->hist);
	axm_hist_free(g->hist_unc);
	axm_hist_free(g->hist_lag);
}

/* Emit a setup failure the same way as the result. */
static int report_error(const struct axb_child_opts *o, bool hidden, const char *msg)
{
	if (!hidden) {
		axb_err("%s", msg);
		return 1;
	}
	json_t *j = json_pack("{s:s, s:s, s:s}", "event", "error", "role", "loadgen",
			      "error", msg);
	axb_write_json_line(o->result_fd, j);
	json_decref(j);
	return 1;
}

static const char *mode_name(enum lg_mode m)
{
	switch (m) {
	case LG_CLOSED: return "closed";
	case LG_OPEN: return "open";
	case LG_IDLE: return "idle";
	case LG_CONNECT: return "connect";
	}
	return "?";
}


/* The open-loop verdict and its figures. */
static json_t *open_loop_json(struct lg *g, const struct lg_run *run, double win)
{
	/* requests of the phase never sent: the schedule points left
	 * between each connection's next due time and the phase's end
	 * (exact for uniform arrivals, the expected count for Poisson) */
	uint64_t unsent = 0;
	for (size_t i = 0; i < g->nconns; i++) {
		const struct lg_conn *c = &g->conns[i];
		int64_t from = c->next_due > g->t_measure ? c->next_due : g->t_measure;
		if (from < g->t_end)
			unsent += (uint64_t)ceil((double)(g->t_end - from) / g->mean_gap_ns);
	}
	uint64_t scheduled = g->sched_measured + unsent;
	uint64_t unfinished = scheduled - g->done_measured;
	double offered = win > 0 ? (double)scheduled / win : 0;
	double achieved = win > 0 ? (double)g->measured / win : 0;
	bool sustained = achieved >= SUSTAIN * offered && unfinished == 0;
	json_t *j = json_object();
	json_object_set_new(j, "rate", json_integer((json_int_t)g->rate));
	json_object_set_new(j, "arrivals", json_string(g->arrivals == LG_UNIFORM
						      ? "uniform" : "poisson"));
	json_object_set_new(j, "scheduled", json_integer((json_int_t)scheduled));
	json_object_set_new(j, "sent", json_integer((json_int_t)g->sched_measured));
	json_object_set_new(j, "answered", json_integer((json_int_t)g->done_measured));
	json_object_set_new(j, "unsent", json_integer((json_int_t)unsent));
	json_object_set_new(j, "unfinished", json_integer((json_int_t)unfinished));
	json_object_set_new(j, "censored", json_integer((json_int_t)g->censored));
	json_object_set_new(j, "offered_rate", axb_real(offered));
	json_object_set_new(j, "achieved_rate", axb_real(achieved));
	json_object_set_new(j, "drain_s", json_real((double)run->drain_ns / 1e9));
	json_object_set_new(j, "send_lag", axm_hist_percentiles_json(g->hist_lag));
	json_object_set_new(j, "sustain_threshold", json_real(SUSTAIN));
	json_object_set_new(j, "rate_sustained", json_boolean(sustained));
	return j;
}

int axb_cmd_load(int argc, char **argv)
{
	struct axb_child_opts o;
	bool hidden = !strcmp(argv[0], "__load");
	int64_t values[AXS_MAX_PARAMS];
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	struct lg g;
	struct lg_run run;
	char err[512];
	int rc = 1;

	axb_child_opts_parse(argc, argv, argv[0], &o);
	const struct axs_scenario *sc = axb_child_values(&o, values);
	if (sc->kind != AXS_NET)
		axb_bad_input("scenario %s is not a network scenario", sc->name);
	if (!o.target)
		axb_bad_input("--target HOST:PORT is required");
	if (parse_target(o.target, &ss, &sl))
		axb_bad_input("malformed --target '%s' (want HOST:PORT, numeric)",
			      o.target);
	int we = o.json_path ? axb_check_writable(o.json_path) : 0;
	if (we)
		axb_bad_input("cannot write %s: %s", o.json_path, strerror(-we));

	memset(&g, 0, sizeof g);
	memset(&run, 0, sizeof run);
	run.rss0_kib = run.rss1_kib = -1;
	g.ep = -1;
	g.proto = proto_find(sc->protocol ? sc->protocol : "");
	if (!g.proto)
		axb_bad_input("scenario %s speaks protocol '%s', which the load "
			      "generator does not know", sc->name,
			      sc->protocol ? sc->protocol : "");
	g.nconns = (size_t)param_or(sc, values, "connections", 1);
	g.size = (size_t)param_or(sc, values, "size", 64);
	g.depth = (unsigned)param_or(sc, values, "pipeline", 1);
	g.duration_ns = param_or(sc, values, "duration", 5000000000LL);
	g.warmup_ns = param_or(sc, values, "warmup", 1000000000LL);
	g.rate = param_or(sc, values, "rate", 0);
	g.arrivals = param_or(sc, values, "arrivals", 0) ? LG_POISSON : LG_UNIFORM;
	g.server_pid = o.server_pid;
	g.max_msgs = (uint64_t)o.messages;
	g.budget = g.max_msgs ? g.max_msgs : UINT64_MAX;
	if (g.max_msgs) {
		/* a fixed count from the first request: no warm-up, and the
		 * duration only bounds a server that stopped answering */
		g.warmup_ns = 0;
		g.duration_ns = COUNT_MODE_MAX_NS;
	}
	const char *lm = sc->loadgen_mode ? sc->loadgen_mode : "requests";
	if (!strcmp(lm, "idle"))
		g.mode = LG_IDLE;
	else if (!strcmp(lm, "connect"))
		g.mode = LG_CONNECT;
	else if (!strcmp(lm, "requests"))
		g.mode = g.rate > 0 ? LG_OPEN : LG_CLOSED;
	else
		axb_bad_input("scenario %s asks for load generator mode '%s', "
			      "which does not exist", sc->name, lm);
	if (g.nconns < 1 || g.size < 1 || g.depth < 1 || g.duration_ns <= 0 ||
	    g.rate < 0)
		axb_bad_input("connections, size, pipeline and duration must be positive");
	if (g.mode == LG_IDLE || g.mode == LG_CONNECT)
		g.depth = 1; /* one message at a time */
	if (g.max_msgs && g.mode != LG_CLOSED)
		axb_bad_input("--messages needs a closed-loop request scenario "
			      "(%s is not one)", sc->name);

	/* One thread per CPU of the set for the closed and open loops by time
	 * and the connection storm (never more threads than connections or
	 * connectors); idle connections and count mode run on one thread,
	 * the set's first CPU. Several threads: the coordinating thread (which mostly
	 * sleeps) may run anywhere in the set, each load thread on its CPU. */
	size_t nthreads = 1;
	if (g.mode != LG_IDLE && !g.max_msgs && o.cpus.n > 1)
		nthreads = (size_t)o.cpus.n < g.nconns ? (size_t)o.cpus.n : g.nconns;
	if (o.cpus.n && (nthreads > 1 ? axb_pin_cpus(&o.cpus) : axb_pin_cpu(o.cpu))) {
		char cl[256];
		if (nthreads > 1)
			axb_cpus_format(&o.cpus, cl, sizeof cl);
		else
			snprintf(cl, sizeof cl, "%d", o.cpu);
		snprintf(err, sizeof err, "cannot pin to CPU%s %s",
			 nthreads > 1 ? "s" : "", cl);
		return report_error(&o, hidden, err);
	}
	signal(SIGPIPE, SIG_IGN);
	axb_raise_nofile();
	if (axb_test_fault("load", o.impl, o.result_fd))
		lg_fail(&g, "AXBENCH_TEST_FAULT asked the load generator to fail");

	/* idle connections: as many as both processes' descriptor limits
	 * allow; the result says when that is fewer than asked */
	run.requested = g.nconns;
	if (g.mode == LG_IDLE) {
		struct rlimit rl;
		run.nofile_self = getrlimit(RLIMIT_NOFILE, &rl) ? -1 : (long)rl.rlim_cur;
		run.nofile_server = g.server_pid ? proc_nofile(g.server_pid) : -1;
		if (run.nofile_self > 0 && g.nconns + FD_SPARE > (size_t)run.nofile_self)
			g.nconns = run.nofile_self > 2 * FD_SPARE
				   ? (size_t)run.nofile_self - FD_SPARE : 1;
		if (run.nofile_server > 0 && g.nconns + FD_SPARE > (size_t)run.nofile_server)
			g.nconns = run.nofile_server > 2 * FD_SPARE
				   ? (size_t)run.nofile_server - FD_SPARE : 1;
	}

	g.nconns_all = g.nconns;
	/* everything is allocated here, before the first message */
	int e = g.proto->init(&g);
	g.hist = axm_hist_new();
	g.hist_unc = axm_hist_new();
	g.hist_lag = axm_hist_new();
	g.rx_cap = RX_CAP;
	g.rx = malloc(g.rx_cap);
	g.conns = calloc(g.nconns, sizeof *g.conns);
	g.heap = calloc(g.nconns, sizeof *g.heap);
	g.dirty = calloc(g.nconns, sizeof *g.dirty);
	g.ep = epoll_create1(EPOLL_CLOEXEC);
	if (e || !g.hist || !g.hist_unc || !g.hist_lag || !g.rx || !g.conns ||
	    !g.heap || !g.dirty || g.ep < 0) {
		rc = report_error(&o, hidden, "load generator setup failed (out of memory?)");
		goto free_lg;
	}
	for (size_t i = 0; i < g.nconns; i++)
		g.conns[i].fd = -1;
	for (size_t i = 0; i < g.nconns; i++) {
		struct lg_conn *c = &g.conns[i];
		c->id = (uint32_t)i;
		c->heap_at = LG_NOT_QUEUED;
		c->tx_cap = ((size_t)g.depth + 1) * g.req_max;
		c->tx = malloc(c->tx_cap);
		c->slots = calloc(g.depth, sizeof *c->slots);
		if (!c->tx || !c->slots) {
			rc = report_error(&o, hidden, "load generator setup failed: out of memory");
			goto free_lg;
		}
	}

	/* --- the measurement ---------------------------------------- */
	json_t *threads = NULL;
	if (nthreads > 1) {
		if (run_threads(&g, &run, &o.cpus, nthreads, &ss, sl, o.thread_hists,
				&threads, err, sizeof err)) {
			char msg[700];
			snprintf(msg, sizeof msg, "cannot connect to %s: %s", o.target, err);
			json_decref(threads);
			rc = report_error(&o, hidden, msg);
			goto free_lg;
		}
	} else if (g.mode == LG_CONNECT) {
		run_connect(&g, &run, &ss, sl);
	} else if ((g.mode == LG_IDLE ? run_idle(&g, &run, &ss, sl, err, sizeof err)
		    : connect_all(&g, &ss, sl, err, sizeof err))) {
		char msg[700];
		snprintf(msg, sizeof msg, "cannot connect to %s: %s", o.target, err);
		rc = report_error(&o, hidden, msg);
		goto free_lg;
	} else if (g.mode != LG_IDLE) {
		run_requests(&g, &run);
	}
	for (size_t i = 0; i < g.nconns; i++) {
		if (g.conns[i].fd >= 0)
			close(g.conns[i].fd);
		g.conns[i].fd = -1;
	}
	struct rusage ru_all;
	getrusage(RUSAGE_SELF, &ru_all);
	/* Nothing measured is no verdict on the echo, but no number either:
	 * the server stalled or is far too slow for this duration. */
	bool stalled = !g.failed && g.measured == 0;

	/* --- the result ---------------------------------------------- */
	json_t *j = json_object();
	json_object_set_new(j, "event", json_string("result"));
	json_object_set_new(j, "role", json_string("loadgen"));
	json_object_set_new(j, "protocol", json_string(g.proto->name));
	json_object_set_new(j, "target", json_string(o.target));
	json_object_set_new(j, "mode", json_string(mode_name(g.mode)));
	json_object_set_new(j, "connections", json_integer((json_int_t)g.nconns));
	json_object_set_new(j, "cpus", o.cpus.n ? axb_cpus_json(&o.cpus) : json_null());
	json_object_set_new(j, "threads", json_integer((json_int_t)nthreads));
	json_object_set_new(j, "pipeline", json_integer(g.depth));
	json_object_set_new(j, "size", axs_param_index(sc, "size") >= 0
			    ? json_integer((json_int_t)g.size) : json_null());
	json_object_set_new(j, "warmup_s", json_real((double)g.warmup_ns / 1e9));
	json_object_set_new(j, "duration_s", json_real((double)g.duration_ns / 1e9));
	json_object_set_new(j, "check", json_pack("{s:b, s:s?}", "passed", !g.failed,
		"message", g.failed ? g.fail : NULL));
	json_object_set_new(j, "rusage", axb_rusage_json(&ru_all));
	json_object_set_new(j, "stalled", json_boolean(stalled));
	/* several load threads: each one's share (the merged figures are
	 * the sums of theirs, the histograms their bucket-wise sums) */
	if (threads)
		json_object_set_new(j, "per_thread", threads);
	/* how late the load generator noticed the start of the measured
	 * phase: far beyond the warm-up, it was itself kept off its CPU */
	/* (several threads: the last of them, the one kept off its CPU) */
	int64_t late = run.mstart_last ? run.mstart_last : g.t_mstart;
	json_object_set_new(j, "measure_start_late_s", late
			    ? json_real((double)(late - g.t_measure) / 1e9) : json_null());
	if (!g.failed && !stalled) {
		const struct rusage *ru0 = &run.ru0, *ru1 = &run.ru1;
		double wall = (double)(run.t_stop - g.t_mstart) / 1e9;
		double win = (double)(g.t_end - g.t_mstart) / 1e9;
		double cpu = axb_tv_s(ru1->ru_utime) - axb_tv_s(ru0->ru_utime) +
			     axb_tv_s(ru1->ru_stime) - axb_tv_s(ru0->ru_stime);
		double util = wall > 0 ? cpu / wall : 0;
		uint64_t cmin = UINT64_MAX, cmax = 0;
		for (size_t i = 0; i < g.nconns; i++) {
			if (g.conns[i].measured < cmin)
				cmin = g.conns[i].measured;
			if (g.conns[i].measured > cmax)
				cmax = g.conns[i].measured;
		}
		double tput = win > 0 ? (double)g.measured / win : 0;
		json_t *m = json_object();
		json_t *metrics = json_object();
		json_object_set_new(m, "wall_s", json_real(win));
		json_object_set_new(m, "round_trips", json_integer((json_int_t)g.measured));
		if (g.mode != LG_IDLE) {
			json_object_set_new(m, "throughput_msgs_s", axb_real(tput));
			if (g.mode == LG_CONNECT)
				json_object_set_new(m, "throughput_unit", json_string("conn/s"));
			else if (sc->protocol && !strcmp(sc->protocol, "http"))
				json_object_set_new(m, "throughput_unit", json_string("req/s"));
			else if (axs_param_index(sc, "size") >= 0)
				json_object_set_new(m, "throughput_mib_s",
						    axb_real(tput * (double)g.size / (1024.0 * 1024.0)));
			json_object_set_new(m, "conn_round_trips_min", json_integer((json_int_t)cmin));
			json_object_set_new(m, "conn_round_trips_max", json_integer((json_int_t)cmax));
		}
		json_object_set_new(m, "user_s", json_real(axb_tv_s(ru1->ru_utime) - axb_tv_s(ru0->ru_utime)));
		json_object_set_new(m, "sys_s", json_real(axb_tv_s(ru1->ru_stime) - axb_tv_s(ru0->ru_stime)));
		json_object_set_new(m, "cpu_util", axb_real(util));
		json_object_set_new(m, "cpu_us_per_msg",
				    axb_real(g.measured ? cpu * 1e6 / (double)g.measured : 0));
		json_object_set_new(m, "nvcsw", json_integer(ru1->ru_nvcsw - ru0->ru_nvcsw));
		json_object_set_new(m, "nivcsw", json_integer(ru1->ru_nivcsw - ru0->ru_nivcsw));
		json_object_set_new(j, "measured", m);
		json_object_set_new(j, "warmup_round_trips", json_integer((json_int_t)g.warm));
		json_object_set_new(j, "latency", axm_hist_percentiles_json(g.hist));
		json_object_set_new(j, "histogram", axm_hist_to_json(g.hist));
		if (g.mode == LG_OPEN) {
			json_t *ol = open_loop_json(&g, &run, win);
			json_object_set_new(j, "latency_uncorrected",
					    axm_hist_percentiles_json(g.hist_unc));
			json_object_set_new(j, "histogram_uncorrected",
					    axm_hist_to_json(g.hist_unc));
			axb_metric_set(metrics, "offered_rate",
				   json_number_value(json_object_get(ol, "offered_rate")),
				   "req/s", 0);
			axb_metric_set(metrics, "rate_sustained",
				   json_is_true(json_object_get(ol, "rate_sustained")),
				   "bool", +1);
			axb_metric_set(metrics, "send_lag_max",
				   (double)axm_hist_percentile(g.hist_lag, 100), "ns", -1);
			json_object_set_new(j, "rate_sustained",
					    json_incref(json_object_get(ol, "rate_sustained")));
			json_object_set_new(j, "open_loop", ol);
		}
		if (g.mode == LG_IDLE) {
			bool limited = g.nconns < run.requested;
			char why[200] = "";
			if (limited)
				snprintf(why, sizeof why, "RLIMIT_NOFILE: load generator "
					 "%ld, server %ld descriptors", run.nofile_self,
					 run.nofile_server);
			double per_conn = run.rss0_kib >= 0 && run.rss1_kib >= 0
				? (double)(run.rss1_kib - run.rss0_kib) * 1024.0 / (double)g.nconns
				: NAN;
			json_object_set_new(j, "idle", json_pack(
				"{s:I, s:I, s:b, s:s?, s:{s:I, s:I}, s:f, s:o, s:o, s:o}",
				"connections_requested", (json_int_t)run.requested,
				"connections", (json_int_t)g.nconns,
				"limited", limited, "limited_by", limited ? why : NULL,
				"nofile", "loadgen", (json_int_t)run.nofile_self,
				"server", (json_int_t)run.nofile_server,
				"connect_s", run.connect_s,
				"server_rss_before_kib", run.rss0_kib >= 0
					? json_integer(run.rss0_kib) : json_null(),
				"server_rss_idle_kib", run.rss1_kib >= 0
					? json_integer(run.rss1_kib) : json_null(),
				"server_rss_per_conn_bytes", axb_real(per_conn)));
			axb_metric_set(metrics, "server_rss_per_conn", per_conn, "bytes", -1);
			axb_metric_set(metrics, "idle_connections", (double)g.nconns, "count", +1);
			axb_metric_set(metrics, "server_rss_idle_kib", run.rss1_kib >= 0
				   ? (double)run.rss1_kib : NAN, "KiB", -1);
			axb_metric_set(metrics, "connect_all_s", run.connect_s, "s", -1);
		}
		json_object_set_new(j, "metrics", metrics);
		/* idle mode: the load generator waits, it cannot be the bottleneck */
		json_object_set_new(j, "saturated", json_boolean(g.mode != LG_IDLE &&
								 util >= SATURATION * (double)nthreads));
		json_object_set_new(j, "saturation_threshold", json_real(SATURATION));
	}
	if (hidden) {
		axb_write_json_line(o.result_fd, j);
	} else {
		char *txt = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
		int werr = 0;
		if (txt && o.json_path)
			werr = axb_write_atomic(o.json_path, txt, strlen(txt));
		else if (txt)
			printf("%s\n", txt);
		if (werr)
			axb_err("cannot write %s: %s", o.json_path, strerror(-werr));
		free(txt);
	}
	json_decref(j);
	if (stalled && !hidden)
		axb_err("no round trip completed in the measured phase");
	rc = g.failed || stalled ? 1 : 0;
	if (hidden)
		rc = 0; /* the verdict travels in the JSON */

free_lg:
	lg_free(&g);
	return rc;
}
