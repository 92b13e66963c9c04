/*
 * faults.c - the load generator's side of the fault scenarios: the
 * companion process that impairs packets or plays the bad clients, beside
 * the well-behaved clients of the engine (loadgen.c), whose figures are
 * the cell's. docs/harness.md ("Fault scenarios"), docs/decisions.md.
 *
 * Network faults (baseline, delay, loss, reorder): the server listens in a
 * private network namespace (serve.c); the load generator joins it through
 * /proc/<server pid>/ns/net and installs the impairment on lo there
 * (fault.c): netem when the kernel has it, otherwise iptables rules that
 * drop 1% of packets in the kernel (loss) and hand every TCP packet to
 * NFQUEUE 0, served here. The companion reads each packet's id (metadata
 * only, no payload copy) and gives its verdict (accept) when the packet is
 * due: at once (baseline, loss), after `delay` +/- `jitter` (delay; a
 * jitter larger than the gap between two packets reorders them, as netem
 * does), or 25% at once and the rest after `delay` (reorder). Packets are
 * held, not copied: the kernel keeps them, so TCP sees a slower or
 * reordering link, not a proxy.
 *
 * Client faults (reset, slow_reader, slowloris): `bad_clients`
 * connections to the same server, next to the well-behaved ones:
 *   reset        connect, send half a request (every other time a whole
 *                one and half the next, so a response is due), then close
 *                with SO_LINGER 0 (RST); again 10 ms later;
 *   slow_reader  a 4 KiB receive buffer; send requests until the socket
 *                blocks (at most 64 KiB), read one byte every 10 ms; the
 *                bytes read are checked (echo: the bytes sent; http: a
 *                status line);
 *   slowloris    an HTTP request trickled one byte per 100 ms that never
 *                ends (echo: one byte per 100 ms, echoes read).
 */
#include "faults.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NFQ_NUM 0
#define NFQ_MAXLEN 16384         /* packets the kernel queue may hold */
#define NFQ_RCVBUF (16 << 20)
#define HELD_MAX 65536
#define REORDER_PCT 25
#define BAD_TICK_NS 10000000LL   /* the bad clients' clock: 10 ms */
#define LORIS_EVERY 10           /* slowloris: one byte per 10 ticks */
#define SLOW_SEND_MAX (64 << 10) /* slow reader: bytes sent at most */
#define PATTERN_LEN 251

static const char HTTP_REQ[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			       "Accept: text/plain\r\n\r\n";
static const char LORIS_HEAD[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				 "X-Slowloris: ";

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The namespace's TCP retransmissions (/proc/net follows the caller's
 * namespace), -1 when unreadable. */
static long long tcp_retrans(void)
{
	FILE *fp = fopen("/proc/net/snmp", "re");
	char names[1024], vals[1024];
	long long v = -1;
	if (!fp)
		return -1;
	while (fgets(names, sizeof names, fp) && fgets(vals, sizeof vals, fp)) {
		if (strncmp(names, "Tcp:", 4))
			continue;
		char *sn, *sv;
		char *n = strtok_r(names, " \n", &sn), *x = strtok_r(vals, " \n", &sv);
		while (n && x) {
			if (!strcmp(n, "RetransSegs"))
				v = atoll(x);
			n = strtok_r(NULL, " \n", &sn);
			x = strtok_r(NULL, " \n", &sv);
		}
	}
	fclose(fp);
	return v;
}

/* ------------------------------------------------------------------ */
/* NFQUEUE over raw netlink                                             */
/* ------------------------------------------------------------------ */

struct nfq_msg {
	struct nlmsghdr nh;
	struct nfgenmsg nf;
	char attrs[64];
};

/* Append attribute (type, data) to m. */
static void nfq_attr(struct nfq_msg *m, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)m + NLMSG_ALIGN(m->nh.nlmsg_len));
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	m->nh.nlmsg_len = NLMSG_ALIGN(m->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void nfq_hdr(struct nfq_msg *m, uint16_t type, uint16_t flags, uint32_t seq)
{
	memset(m, 0, sizeof *m);
	m->nh.nlmsg_len = NLMSG_LENGTH(sizeof m->nf);
	m->nh.nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
	m->nh.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	m->nh.nlmsg_seq = seq;
	m->nf.nfgen_family = AF_UNSPEC;
	m->nf.version = NFNETLINK_V0;
	m->nf.res_id = htons(NFQ_NUM);
}

/* Send a configuration message and wait for its acknowledgement. */
static int nfq_config(int fd, struct nfq_msg *m)
{
	char buf[8192];
	if (send(fd, m, m->nh.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r)) {
			if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == m->nh.nlmsg_seq)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		}
	}
}

/* Bind queue NFQ_NUM, metadata only. Returns the socket or -errno. */
static int nfq_open(char *why, size_t n)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		snprintf(why, n, "netlink socket: %s", strerror(errno));
		return -errno;
	}
	int sz = NFQ_RCVBUF;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	struct timeval tmo = {.tv_sec = 2}; /* for the acknowledgements */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct nfq_msg m;
	int err;
	struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND,
					   .pf = htons(AF_INET)};
	struct nfqnl_msg_config_params par = {.copy_range = htonl(0),
					      .copy_mode = NFQNL_COPY_META};
	uint32_t maxlen = htonl(NFQ_MAXLEN);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		err = -errno;
		snprintf(why, n, "netlink bind: %s", strerror(errno));
		goto fail;
	}
	nfq_hdr(&m, NFQNL_MSG_CONFIG, NLM_F_ACK, 1);
	nfq_attr(&m, NFQA_CFG_CMD, &cmd, sizeof cmd);
	if ((err = nfq_config(fd, &m))) {
		snprintf(why, n, "cannot bind NFQUEUE %d: %s", NFQ_NUM, strerror(-err));
		goto fail;
	}
	nfq_hdr(&m, NFQNL_MSG_CONFIG, NLM_F_ACK, 2);
	nfq_attr(&m, NFQA_CFG_PARAMS, &par, sizeof par);
	nfq_attr(&m, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
	if ((err = nfq_config(fd, &m))) {
		snprintf(why, n, "cannot configure NFQUEUE %d: %s", NFQ_NUM, strerror(-err));
		goto fail;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
fail:
	close(fd);
	return err;
}

/* A packet held: its verdict is due at `due`; `order` is its arrival
 * number, to count the packets that overtook others. */
struct held {
	int64_t due;
	uint32_t id;
	uint64_t order;
};

struct nfq_state {
	int fd;
	struct held *heap;
	size_t n;
	char out[65536];          /* verdicts batched into one send */
	size_t olen;
	uint64_t packets, held_max, reordered, enobufs, send_errors, overflow;
	uint64_t max_order;       /* highest arrival number released so far */
	bool released_any;
};

static void heap_push(struct nfq_state *q, struct held h)
{
	size_t i = q->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (q->heap[p].due <= h.due)
			break;
		q->heap[i] = q->heap[p];
		i = p;
	}
	q->heap[i] = h;
}

static struct held heap_pop(struct nfq_state *q)
{
	struct held top = q->heap[0], last = q->heap[--q->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->heap[c + 1].due < q->heap[c].due)
			c++;
		if (q->heap[c].due >= last.due)
			break;
		q->heap[i] = q->heap[c];
		i = c;
	}
	if (q->n)
		q->heap[i] = last;
	return top;
}

static void nfq_flush(struct nfq_state *q)
{
	if (q->olen && send(q->fd, q->out, q->olen, 0) < 0)
		q->send_errors++;
	q->olen = 0;
}

static void nfq_accept(struct nfq_state *q, uint32_t id, uint64_t order)
{
	struct nfq_msg m;
	struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(NF_ACCEPT), .id = htonl(id)};
	nfq_hdr(&m, NFQNL_MSG_VERDICT, 0, 0);
	nfq_attr(&m, NFQA_VERDICT_HDR, &v, sizeof v);
	if (q->olen + m.nh.nlmsg_len > sizeof q->out)
		nfq_flush(q);
	memcpy(q->out + q->olen, &m, m.nh.nlmsg_len);
	q->olen += NLMSG_ALIGN(m.nh.nlmsg_len);
	if (q->released_any && order < q->max_order)
		q->reordered++;
	if (!q->released_any || order > q->max_order)
		q->max_order = order;
	q->released_any = true;
}

/* Read every packet notification waiting; decide when each is due. */
static void nfq_read(struct nfq_state *q, const struct lgf *f, uint64_t *rng)
{
	static char buf[1 << 17];
	for (;;) {
		ssize_t r = recv(q->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == ENOBUFS) {
				q->enobufs++;
				continue;
			}
			return; /* EAGAIN, EINTR */
		}
		int64_t now = now_ns();
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)r);
		     h = NLMSG_NEXT(h, r)) {
			if (h->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
				continue;
			struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(h) +
							     NLMSG_ALIGN(sizeof(struct nfgenmsg)));
			int left = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof(struct nfgenmsg));
			bool found = false;
			uint32_t id = 0;
			while (left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
			       a->nla_len <= left) {
				if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR) {
					struct nfqnl_msg_packet_hdr ph;
					memcpy(&ph, (char *)a + NLA_HDRLEN, sizeof ph);
					id = ntohl(ph.packet_id);
					found = true;
					break;
				}
				left -= NLA_ALIGN(a->nla_len);
				a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
			}
			if (!found)
				continue;
			uint64_t order = q->packets++;
			int64_t hold = 0;
			if (f->fault == AXB_FAULT_DELAY) {
				hold = f->delay_ns;
				if (f->jitter_ns > 0)
					hold += (int64_t)(rng_next(rng) %
							  (uint64_t)(2 * f->jitter_ns + 1)) - f->jitter_ns;
				if (hold < 0)
					hold = 0;
			} else if (f->fault == AXB_FAULT_REORDER) {
				hold = rng_next(rng) % 100 < REORDER_PCT ? 0 : f->delay_ns;
			}
			if (hold == 0 || q->n == HELD_MAX) {
				q->overflow += hold != 0;
				nfq_accept(q, id, order);
			} else {
				heap_push(q, (struct held){now + hold, id, order});
				if (q->n > q->held_max)
					q->held_max = q->n;
			}
		}
	}
}

/* The kernel's view of queue NFQ_NUM: packets it dropped because the
 * queue was full (queue_dropped) or the socket could not take them
 * (user_dropped). */
static void nfq_kernel_drops(long long *qd, long long *ud)
{
	FILE *fp = fopen("/proc/net/netfilter/nfnetlink_queue", "re");
	*qd = *ud = -1;
	if (!fp)
		return;
	int num;
	long long portid, total, mode, range, a, b;
	while (fscanf(fp, "%d %lld %lld %lld %lld %lld %lld %*[^\n]", &num, &portid,
		      &total, &mode, &range, &a, &b) == 7)
		if (num == NFQ_NUM) {
			*qd = a;
			*ud = b;
		}
	fclose(fp);
}

/* The companion's first byte on its report pipe: 'R' once ready, 'E'
 * when it failed before (its report then says why). */
static bool ready_sent;

static json_t *fail_report(int rfd, const char *why)
{
	if (!ready_sent)
		axb_write_all(rfd, "E", 1);
	ready_sent = true;
	return json_pack("{s:s}", "error", why);
}

static void ready(int rfd)
{
	axb_write_all(rfd, "R", 1);
	ready_sent = true;
}

static json_t *run_nfqueue(const struct lgf *f, int sfd, int rfd)
{
	struct nfq_state *q = calloc(1, sizeof *q);
	char why[256];
	uint64_t rng = 0x2545f4914f6cdd1dull ^ (uint64_t)now_ns();
	if (!q || !(q->heap = calloc(HELD_MAX, sizeof *q->heap)))
		return fail_report(rfd, "out of memory");
	q->fd = nfq_open(why, sizeof why);
	if (q->fd < 0)
		return fail_report(rfd, why);
	prctl(PR_SET_TIMERSLACK, 1UL);
	ready(rfd);
	for (;;) {
		int64_t now = now_ns();
		while (q->n && q->heap[0].due <= now) {
			struct held h = heap_pop(q);
			nfq_accept(q, h.id, h.order);
		}
		nfq_flush(q);
		struct pollfd pf[2] = {{.fd = q->fd, .events = POLLIN},
				       {.fd = sfd, .events = POLLIN}};
		struct timespec ts, *tp = NULL;
		if (q->n) {
			int64_t w = q->heap[0].due - now_ns();
			if (w < 0)
				w = 0;
			ts.tv_sec = w / 1000000000LL;
			ts.tv_nsec = w % 1000000000LL;
			tp = &ts;
		}
		if (ppoll(pf, 2, tp, NULL) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			break;
		if (pf[0].revents)
			nfq_read(q, f, &rng);
	}
	/* let the connections finish: everything held goes now */
	while (q->n) {
		struct held h = heap_pop(q);
		nfq_accept(q, h.id, h.order);
	}
	nfq_flush(q);
	long long qd, ud;
	nfq_kernel_drops(&qd, &ud);
	json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			      "packets", (json_int_t)q->packets,
			      "reordered", (json_int_t)q->reordered,
			      "held_max", (json_int_t)q->held_max,
			      "enobufs", (json_int_t)q->enobufs,
			      "verdict_send_errors", (json_int_t)q->send_errors,
			      "held_overflow", (json_int_t)q->overflow,
			      "kernel_queue_dropped", (json_int_t)qd,
			      "kernel_user_dropped", (json_int_t)ud);
	close(q->fd);
	free(q->heap);
	free(q);
	return j;
}

/* ------------------------------------------------------------------ */
/* bad clients                                                          */
/* ------------------------------------------------------------------ */

struct bad {
	int fd;
	bool connected;
	uint64_t cycle;          /* reset: connections made so far */
	int64_t next;            /* tick of its next action */
	size_t sent, got;        /* bytes sent / read on this connection */
	bool dead;               /* closed by the server: not reopened */
};

struct bad_stats {
	uint64_t connects, established, connect_errors, resets, closed_by_server;
	uint64_t mismatches;
	uint64_t bytes_sent, bytes_read;
	char first_error[160];
};

static bool is_http;
static uint8_t pattern[PATTERN_LEN];

static void bad_error(struct bad_stats *st, const char *what, int e)
{
	if (!st->first_error[0])
		snprintf(st->first_error, sizeof st->first_error, "%s: %s", what, strerror(e));
}

static int bad_open(struct bad *b, int ep, const struct sockaddr_storage *ss,
		    socklen_t sl, enum axb_fault fault, struct bad_stats *st)
{
	b->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->fd < 0) {
		st->connect_errors++;
		bad_error(st, "socket", errno);
		return -errno;
	}
	int one = 1;
	setsockopt(b->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fault == AXB_FAULT_SLOW_READER) {
		int small = 4096;
		setsockopt(b->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	}
	b->connected = false;
	b->sent = b->got = 0;
	if (connect(b->fd, (const struct sockaddr *)ss, sl) < 0 && errno != EINPROGRESS) {
		st->connect_errors++;
		bad_error(st, "connect", errno);
		close(b->fd);
		b->fd = -1;
		return -errno;
	}
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.ptr = b};
	epoll_ctl(ep, EPOLL_CTL_ADD, b->fd, &ev);
	return 0;
}

/* The request stream a bad client sends, byte i. */
static uint8_t stream_byte(size_t i)
{
	if (is_http)
		return (uint8_t)HTTP_REQ[i % (sizeof HTTP_REQ - 1)];
	return pattern[i % PATTERN_LEN];
}

static void bad_send(struct bad *b, size_t upto, struct bad_stats *st)
{
	uint8_t buf[4096];
	while (b->sent < upto) {
		size_t k = upto - b->sent < sizeof buf ? upto - b->sent : sizeof buf;
		for (size_t i = 0; i < k; i++)
			buf[i] = stream_byte(b->sent + i);
		ssize_t w = send(b->fd, buf, k, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		b->sent += (size_t)w;
		st->bytes_sent += (uint64_t)w;
	}
}

/* Close with RST: SO_LINGER on, zero seconds. */
static void bad_reset(struct bad *b, struct bad_stats *st)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(b->fd);
	b->fd = -1;
	st->resets++;
}

static void bad_closed(struct bad *b, struct bad_stats *st)
{
	close(b->fd);
	b->fd = -1;
	b->dead = true;
	st->closed_by_server++;
}

/* Read at most max bytes; slow readers check what they read. */
static void bad_read(struct bad *b, size_t max, struct bad_stats *st)
{
	uint8_t buf[4096];
	while (max > 0 && b->fd >= 0) {
		ssize_t r = recv(b->fd, buf, max < sizeof buf ? max : sizeof buf, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			bad_closed(b, st);
			return;
		}
		if (r < 0)
			return;
		for (ssize_t i = 0; i < r; i++) {
			size_t at = b->got + (size_t)i;
			bool ok = is_http ? at >= 12 || buf[i] == (uint8_t)"HTTP/1.1 200"[at]
					  : buf[i] == stream_byte(at);
			st->mismatches += !ok;
		}
		b->got += (size_t)r;
		st->bytes_read += (uint64_t)r;
		max -= (size_t)r;
	}
}

/* One tick of bad client b. */
static void bad_tick(struct bad *b, enum axb_fault fault, int64_t tick,
		     int ep, const struct sockaddr_storage *ss, socklen_t sl,
		     struct bad_stats *st)
{
	size_t req = is_http ? sizeof HTTP_REQ - 1 : 64;
	if (b->dead || b->next > tick)
		return;
	if (b->fd < 0) {
		if (bad_open(b, ep, ss, sl, fault, st) == 0)
			st->connects++;
		b->next = tick + 1;
		return;
	}
	if (!b->connected)
		return;
	switch (fault) {
	case AXB_FAULT_RESET:
		/* half a request, or a whole one and half the next */
		bad_send(b, (b->cycle++ % 2 ? req : 0) + req / 2, st);
		bad_reset(b, st);
		b->next = tick + 1;
		break;
	case AXB_FAULT_SLOW_READER:
		bad_send(b, SLOW_SEND_MAX, st);
		bad_read(b, 1, st);
		b->next = tick + 1;
		break;
	default: /* slowloris */
		if (is_http && b->sent < sizeof LORIS_HEAD - 1) {
			ssize_t w = send(b->fd, LORIS_HEAD + b->sent, 1, MSG_NOSIGNAL);
			if (w == 1) {
				b->sent++;
				st->bytes_sent++;
			}
		} else if (send(b->fd, is_http ? "a" : (const char *)&pattern[b->sent % PATTERN_LEN],
				1, MSG_NOSIGNAL) == 1) {
			b->sent++;
			st->bytes_sent++;
		}
		if (!is_http)
			bad_read(b, 4096, st);
		b->next = tick + LORIS_EVERY;
		break;
	}
}

static json_t *run_bad(const struct lgf *f, const struct sockaddr_storage *ss,
		       socklen_t sl, int sfd, int rfd)
{
	struct bad_stats st;
	memset(&st, 0, sizeof st);
	struct bad *bs = calloc((size_t)f->bad_clients, sizeof *bs);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!bs || ep < 0)
		return fail_report(rfd, "out of memory");
	/* the well-behaved clients are the measurement: on the CPU they
	 * share, the bad ones get what is left (nice 10, not idle: they
	 * must still act when the measured clients keep the CPU busy) */
	errno = 0;
	if (nice(10) == -1 && errno)
		bad_error(&st, "nice", errno);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = (uint8_t)(rng_next(&x) >> 24);
	struct epoll_event sev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);
	for (int i = 0; i < f->bad_clients; i++) {
		bs[i].fd = -1;
		/* slowloris: staggered over its period, like a real flood */
		bs[i].next = f->fault == AXB_FAULT_SLOWLORIS ? i % LORIS_EVERY : 0;
	}
	ready(rfd);
	int64_t t0 = now_ns(), tick = 0;
	struct epoll_event evs[256];
	bool stop = false;
	while (!stop) {
		for (int i = 0; i < f->bad_clients; i++)
			bad_tick(&bs[i], f->fault, tick, ep, ss, sl, &st);
		int64_t next = t0 + (tick + 1) * BAD_TICK_NS;
		for (;;) {
			int64_t w = next - now_ns();
			if (w <= 0)
				break;
			int n = epoll_wait(ep, evs, 256, (int)((w + 999999) / 1000000));
			for (int k = 0; k < n; k++) {
				struct bad *b = evs[k].data.ptr;
				if (!b) {
					stop = true;
					continue;
				}
				if (b->fd < 0)
					continue;
				if (!b->connected && (evs[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
					int e = 0;
					socklen_t el = sizeof e;
					getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &e, &el);
					if (e) {
						st.connect_errors++;
						bad_error(&st, "connect", e);
						close(b->fd);
						b->fd = -1;
						continue;
					}
					b->connected = true;
					st.established++;
					/* edge-triggered; a slow reader is told
					 * only of a close, it reads on its tick */
					struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET |
						(f->fault == AXB_FAULT_SLOW_READER ? 0u : EPOLLIN),
						.data.ptr = b};
					epoll_ctl(ep, EPOLL_CTL_MOD, b->fd, &ev);
				}
				/* slow readers read only on their tick; the
				 * others drain echoes and notice a close */
				if (f->fault != AXB_FAULT_SLOW_READER &&
				    (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
					bad_read(b, 65536, &st);
				else if (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
					char c;
					if (recv(b->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0 &&
					    errno != EAGAIN)
						bad_closed(b, &st);
				}
			}
			if (stop)
				break;
		}
		tick = (now_ns() - t0) / BAD_TICK_NS;
	}
	uint64_t open = 0;
	for (int i = 0; i < f->bad_clients; i++)
		if (bs[i].fd >= 0) {
			open += bs[i].connected;
			close(bs[i].fd);
		}
	free(bs);
	close(ep);
	return json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}",
			 "bad_clients", f->bad_clients,
			 "connects", (json_int_t)st.connects,
			 "established", (json_int_t)st.established,
			 "connect_errors", (json_int_t)st.connect_errors,
			 "resets", (json_int_t)st.resets,
			 "closed_by_server", (json_int_t)st.closed_by_server,
			 "open_at_end", (json_int_t)open,
			 "bytes_sent", (json_int_t)st.bytes_sent,
			 "bytes_read", (json_int_t)st.bytes_read,
			 "mismatches", (json_int_t)st.mismatches,
			 "first_error", st.first_error[0] ? st.first_error : NULL);
}

/* ------------------------------------------------------------------ */
/* the companion process and the engine's hooks                         */
/* ------------------------------------------------------------------ */

int lgf_start(struct lgf *f, const struct axs_scenario *sc, const int64_t *values,
	      pid_t server_pid, const struct sockaddr_storage *target,
	      socklen_t tlen, char *err, size_t n)
{
	memset(f, 0, sizeof *f);
	f->rfd = -1;
	f->retrans0 = f->retrans1 = -1;
	f->fault = axb_fault_of(sc, values);
	if (f->fault == AXB_FAULT_NONE)
		return 0;
	int i;
	if ((i = axs_param_index(sc, "delay")) >= 0)
		f->delay_ns = values[i];
	if ((i = axs_param_index(sc, "jitter")) >= 0)
		f->jitter_ns = values[i];
	if ((i = axs_param_index(sc, "duration")) >= 0)
		f->duration_ns = values[i];
	if ((i = axs_param_index(sc, "bad_clients")) >= 0)
		f->bad_clients = (int)values[i];
	is_http = sc->protocol && !strcmp(sc->protocol, "http");

	if (axb_fault_in_netns(f->fault)) {
		if (server_pid <= 0) {
			snprintf(err, n, "fault=%s impairs the server's network "
				 "namespace: it needs --server-pid", axb_fault_name(f->fault));
			return -EINVAL;
		}
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/ns/net", (int)server_pid);
		/* never impair a namespace others use: the server's must be
		 * neither ours nor the machine's first one */
		struct stat srv, self, init;
		if (stat(path, &srv) == 0 && ((stat("/proc/self/ns/net", &self) == 0 &&
					       srv.st_ino == self.st_ino && srv.st_dev == self.st_dev) ||
					      (stat("/proc/1/ns/net", &init) == 0 &&
					       srv.st_ino == init.st_ino && srv.st_dev == init.st_dev))) {
			snprintf(err, n, "fault=%s: the server (pid %d) is not in a "
				 "private network namespace; refusing to impair a shared "
				 "loopback (serve it with the same -p fault=%s)",
				 axb_fault_name(f->fault), (int)server_pid,
				 axb_fault_name(f->fault));
			return -EPERM;
		}
		int nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
			int e = errno;
			snprintf(err, n, "cannot join the server's network namespace "
				 "(%s): %s", path, strerror(e));
			if (nsfd >= 0)
				close(nsfd);
			return -e;
		}
		close(nsfd);
		int e = axb_netfault_install(f->fault, f->delay_ns, f->jitter_ns,
					     &f->mech, f->spec, sizeof f->spec, err, n);
		if (e)
			return e;
		f->retrans0 = tcp_retrans();
		if (f->mech == AXB_MECH_NETEM)
			return 0; /* the kernel does it all */
	} else {
		snprintf(f->spec, sizeof f->spec, "%d bad clients (%s) beside the "
			 "measured ones, on the same loopback", f->bad_clients,
			 axb_fault_name(f->fault));
	}

	/* the companion: its own process, so its CPU is not ours */
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, n, "pipe: %s", strerror(errno));
		return -errno;
	}
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int sfd = signalfd(-1, &term, SFD_CLOEXEC);
		json_t *j = axb_fault_in_netns(f->fault) ? run_nfqueue(f, sfd, p[1])
							 : run_bad(f, target, tlen, sfd, p[1]);
		char *txt = json_dumps(j, JSON_COMPACT);
		if (txt) {
			axb_write_all(p[1], txt, strlen(txt));
			axb_write_all(p[1], "\n", 1);
		}
		_exit(0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(err, n, "cannot start the fault companion: %s", strerror(errno));
		return -EAGAIN;
	}
	f->pid = pid;
	f->rfd = p[0];
	/* wait for "R" (ready: queue bound, clients set up) or its error */
	char c = 0;
	ssize_t r = -1;
	struct pollfd pf = {.fd = f->rfd, .events = POLLIN};
	if (poll(&pf, 1, 10000) > 0)
		while ((r = read(f->rfd, &c, 1)) < 0 && errno == EINTR)
			;
	if (r == 1 && c == 'R')
		return 0;
	/* 'E' and its report, or nothing: it died */
	lgf_stop(f);
	const char *e = f->report ? json_string_value(json_object_get(f->report, "error")) : NULL;
	snprintf(err, n, "the fault companion failed: %s", e ? e : f->died[0] ? f->died : "no reason given");
	return -EIO;
}

void lgf_stop(struct lgf *f)
{
	if (f->fault == AXB_FAULT_NONE)
		return;
	if (axb_fault_in_netns(f->fault) && f->retrans1 < 0)
		f->retrans1 = tcp_retrans();
	if (f->pid <= 0)
		return;
	kill(f->pid, SIGTERM);
	/* its report: one JSON line, then end of file */
	char buf[4096];
	size_t got = 0;
	ssize_t r = -1;
	bool eof = false;
	struct pollfd pf = {.fd = f->rfd, .events = POLLIN};
	while (got < sizeof buf - 1 && poll(&pf, 1, 5000) > 0) {
		r = read(f->rfd, buf + got, sizeof buf - 1 - got);
		if (r > 0)
			got += (size_t)r;
		else if (r == 0 || errno != EINTR)
			break;
	}
	eof = r == 0;
	buf[got] = 0;
	int st = 0;
	if (!eof)
		kill(f->pid, SIGKILL); /* no end of its report within 5 s */
	while (wait4(f->pid, &st, 0, &f->ru) < 0 && errno == EINTR)
		;
	f->pid = 0;
	close(f->rfd);
	f->rfd = -1;
	json_error_t je;
	f->report = buf[0] ? json_loads(buf, 0, &je) : NULL;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char sig[32];
		snprintf(f->died, sizeof f->died, "the fault companion %s %s",
			 WIFSIGNALED(st) ? "was killed by" : "exited with status",
			 WIFSIGNALED(st) ? axb_signal_name(WTERMSIG(st), sig, sizeof sig)
					 : (snprintf(sig, sizeof sig, "%d", WEXITSTATUS(st)), sig));
	} else if (!f->report) {
		snprintf(f->died, sizeof f->died, "the fault companion wrote no report");
	}
}

static long long rep_int(const struct lgf *f, const char *k)
{
	json_t *v = f->report ? json_object_get(f->report, k) : NULL;
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

bool lgf_check(const struct lgf *f, const struct axm_hist *rtt, char *why, size_t n)
{
	if (f->fault == AXB_FAULT_NONE)
		return true;
	if (f->died[0]) {
		snprintf(why, n, "%s", f->died);
		return false;
	}
	bool queue = axb_fault_in_netns(f->fault) && f->mech == AXB_MECH_NFQUEUE;
	if (queue) {
		long long pk = rep_int(f, "packets"), qd = rep_int(f, "kernel_queue_dropped"),
			  ud = rep_int(f, "kernel_user_dropped"), nb = rep_int(f, "enobufs"),
			  se = rep_int(f, "verdict_send_errors"), ov = rep_int(f, "held_overflow");
		if (pk <= 0) {
			snprintf(why, n, "the packet queue saw no packet: nothing was impaired");
			return false;
		}
		if (qd > 0 || ud > 0 || nb > 0 || se > 0 || ov > 0) {
			snprintf(why, n, "the packet queue lost packets the fault did not ask "
				 "for (kernel queue full %lld, socket full %lld, lost "
				 "notifications %lld, verdict errors %lld, held overflow %lld)",
				 qd, ud, nb, se, ov);
			return false;
		}
	}
	switch (f->fault) {
	case AXB_FAULT_DELAY: {
		/* both packets of a round trip were held at least delay - jitter;
		 * open loop records a request unanswered after the drain at its
		 * latency so far, at least min(duration, 1 s) (loadgen.c) */
		int64_t floor = 2 * (f->delay_ns - f->jitter_ns);
		int64_t drain = f->duration_ns < 1000000000LL ? f->duration_ns : 1000000000LL;
		if (floor > drain)
			floor = drain;
		int64_t min = axm_hist_percentile(rtt, 0);
		if (floor > 0 && min < floor * 95 / 100) {
			snprintf(why, n, "a round trip took %.3f ms, less than the %.3f ms "
				 "the delay adds: the delay was not applied",
				 (double)min / 1e6, (double)floor / 1e6);
			return false;
		}
		break;
	}
	case AXB_FAULT_LOSS:
		if (f->retrans1 >= 0 && f->retrans0 >= 0 && f->retrans1 <= f->retrans0) {
			snprintf(why, n, "no TCP retransmission in the namespace: the "
				 "loss was not applied");
			return false;
		}
		break;
	case AXB_FAULT_REORDER:
		if (queue && rep_int(f, "reordered") <= 0) {
			snprintf(why, n, "no packet overtook another: nothing was reordered");
			return false;
		}
		break;
	case AXB_FAULT_RESET:
		if (rep_int(f, "resets") <= 0) {
			snprintf(why, n, "no bad client reset a connection (%s)",
				 json_string_value(json_object_get(f->report, "first_error"))
				 ?: "no error seen");
			return false;
		}
		break;
	case AXB_FAULT_SLOW_READER:
	case AXB_FAULT_SLOWLORIS:
		if (rep_int(f, "established") < f->bad_clients) {
			snprintf(why, n, "only %lld of %d bad clients connected (%s)",
				 rep_int(f, "established"), f->bad_clients,
				 json_string_value(json_object_get(f->report, "first_error"))
				 ?: "no error seen");
			return false;
		}
		if (rep_int(f, "mismatches") > 0) {
			snprintf(why, n, "%s: the server sent %lld wrong bytes to the "
				 "bad clients", axb_fault_name(f->fault), rep_int(f, "mismatches"));
			return false;
		}
		break;
	default:
		break;
	}
	return true;
}

json_t *lgf_json(const struct lgf *f, json_t *metrics)
{
	if (f->fault == AXB_FAULT_NONE)
		return NULL;
	bool net = axb_fault_in_netns(f->fault);
	double cpu = axb_tv_s(f->ru.ru_utime) + axb_tv_s(f->ru.ru_stime);
	json_t *j = json_pack("{s:s, s:s, s:s, s:b}",
			      "fault", axb_fault_name(f->fault),
			      "mechanism", net ? axb_netfault_mech_name(f->mech) : "bad_clients",
			      "spec", f->spec, "netns", net);
	if (net) {
		json_object_set_new(j, "mtu", json_integer(AXB_FAULT_MTU));
		json_object_set_new(j, "delay_ns", json_integer(f->delay_ns));
		json_object_set_new(j, "jitter_ns", json_integer(f->jitter_ns));
		long long rt = f->retrans0 >= 0 && f->retrans1 >= 0 ? f->retrans1 - f->retrans0 : -1;
		json_object_set_new(j, "tcp_retransmits", rt >= 0 ? json_integer(rt) : json_null());
		if (metrics && rt >= 0)
			axb_metric_set(metrics, "fault_tcp_retransmits", (double)rt, "count", -1);
	}
	json_object_set_new(j, "companion_cpu_s", f->pid == 0 && f->report ? axb_real(cpu) : json_null());
	json_object_set_new(j, "companion", f->report ? json_incref(f->report) : json_null());
	if (metrics && f->report) {
		if (!net) {
			long long v = rep_int(f, "resets");
			if (f->fault == AXB_FAULT_RESET && v >= 0)
				axb_metric_set(metrics, "fault_resets", (double)v, "count", 0);
			v = rep_int(f, "open_at_end");
			if (f->fault != AXB_FAULT_RESET && v >= 0)
				axb_metric_set(metrics, "fault_bad_open_at_end", (double)v, "count", 0);
		} else if (f->mech == AXB_MECH_NFQUEUE) {
			long long v = rep_int(f, "reordered");
			if (v >= 0)
				axb_metric_set(metrics, "fault_packets_reordered", (double)v, "count", 0);
		}
	}
	return j;
}

void lgf_free(struct lgf *f)
{
	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
		f->pid = 0;
	}
	if (f->rfd >= 0)
		close(f->rfd);
	f->rfd = -1;
	json_decref(f->report);
	f->report = NULL;
}
