/*
 * loadgen.h - the load generator's engine state and its protocol modules.
 *
 * The engine (loadgen.c) runs over raw edge-triggered epoll in one of four
 * modes (all but the idle one on one thread per CPU of the load
 * generator's CPU set, each with its share of the connections and of the
 * rate): a closed loop of N connections each keeping `depth` requests in
 * flight; an open loop sending requests at a fixed rate from a schedule
 * (latency from each request's intended send time); idle connections (the
 * server's memory per connection); and a storm of short-lived connections.
 * A protocol module builds request number `seq` of a connection and
 * consumes the bytes of the response being received, verifying them.
 * Nothing is allocated per message.
 */
#ifndef AXB_LOADGEN_H
#define AXB_LOADGEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

enum lg_mode {
	LG_CLOSED,   /* N connections, `depth` requests in flight each */
	LG_OPEN,     /* requests at `rate` per second from a schedule */
	LG_IDLE,     /* N idle connections, server memory sampled */
	LG_CONNECT,  /* K connectors: connect, one echo, close, again */
};

enum lg_arrivals { LG_UNIFORM, LG_POISSON };

/* One request in flight: when the schedule wanted it sent (open loop;
 * equal to `sent` otherwise) and when it was handed to the socket. */
struct lg_slot {
	int64_t intended, sent;
};

struct lg_conn {
	int fd;
	uint32_t id;
	uint64_t next_send;  /* sequence number of the next request to build */
	uint64_t next_recv;  /* sequence number of the response being read */
	size_t rx_off;       /* bytes of that response consumed so far */
	uint8_t *tx;         /* requests built but not yet written: [head, tail) */
	size_t tx_head, tx_tail, tx_cap;
	struct lg_slot *slots; /* each in-flight request, by seq % depth */
	uint64_t measured;   /* round trips completed in the measured phase */
	/* open loop */
	int64_t next_due;    /* intended send time of the next request */
	uint64_t scheduled;  /* schedule points used so far (uniform arrivals) */
	uint64_t rng;        /* xorshift state (Poisson arrivals) */
	size_t heap_at;      /* index in g->heap, LG_NOT_QUEUED when not in it */
	bool dirty;          /* requests built this round, to be flushed */
	/* connect mode */
	bool connecting;     /* non-blocking connect in progress */
	uint32_t gen;        /* connection generation: drops stale events */
	int64_t conn_start;  /* when the current connection was started */
};

#define LG_NOT_QUEUED SIZE_MAX

struct lg {
	const struct lg_proto *proto;
	/* the protocol module's own, shared by the load threads: what is per
	 * connection is indexed by lg_conn.id and touched only by the thread
	 * that owns the connection; the rest is read-only after init */
	void *pstate;
	enum lg_mode mode;
	/* configuration, from the scenario's parameters */
	size_t size;         /* "size": message size in bytes */
	unsigned depth;      /* "pipeline": requests in flight per connection */
	size_t nconns;       /* "connections" (of this thread: its share) */
	size_t nconns_all;   /* all threads' connections (open-loop schedule) */
	int64_t warmup_ns, duration_ns;
	int64_t rate;        /* "rate": requests/s over all connections (open) */
	enum lg_arrivals arrivals;
	size_t req_max;      /* largest request, set by proto->init */
	struct lg_conn *conns;
	int ep;
	uint8_t *rx;         /* one receive buffer shared by all connections */
	size_t rx_cap;
	struct axm_hist *hist;      /* latency (open loop: from intended time) */
	struct axm_hist *hist_unc;  /* open loop: from the actual send time */
	struct axm_hist *hist_lag;  /* open loop: actual send - intended */
	bool measuring;
	int64_t t_start, t_measure, t_mstart, t_end;
	uint64_t measured, warm;
	/* count mode (--messages, instructions mode): the closed loop sends
	 * exactly max_msgs requests, from the start, and ends when all are
	 * answered; 0: phases by time. budget: requests still to send
	 * (UINT64_MAX by time), one decrement per request on the hot path */
	uint64_t max_msgs, budget;
	bool failed;         /* verification failed: no numbers */
	char fail[512];
	pid_t server_pid;    /* told about the measured phase, 0: nobody */
	/* several load threads: the phases' times are set by the
	 * coordinating thread, which also takes the marks; stop is raised
	 * when a thread failed, and every thread then ends its loop */
	bool coordinated;
	atomic_bool *stop;
	/* open loop */
	double mean_gap_ns;  /* mean time between two requests of a connection */
	struct lg_conn **heap;     /* connections that may send, by next_due */
	size_t heap_n;
	struct lg_conn **dirty;    /* connections with requests to flush */
	size_t ndirty;
	uint64_t inflight;         /* requests sent and not yet answered */
	size_t sched_open;         /* connections whose schedule is not over */
	uint64_t sched_measured;   /* requests intended in the measured phase, sent */
	uint64_t done_measured;    /* ... and answered */
	uint64_t censored;         /* unanswered ones recorded as lower bounds */
};

struct lg_proto {
	const char *name;
	/* Prepare for g's configuration; set g->req_max. Returns 0 or -errno. */
	int (*init)(struct lg *g);
	void (*fini)(struct lg *g);
	/* Build request `seq` of c into dst (room for g->req_max bytes);
	 * returns its length. */
	size_t (*request)(struct lg *g, struct lg_conn *c, uint64_t seq,
			  uint8_t *dst);
	/* Consume the first bytes of p[0..n) that belong to response
	 * c->next_recv, verifying them; c->rx_off says how much of it came
	 * before. Returns the count consumed (> 0) and sets *done when the
	 * response is complete, or -EPROTO after describing the mismatch in
	 * g->fail. */
	ssize_t (*consume)(struct lg *g, struct lg_conn *c, const uint8_t *p,
			   size_t n, bool *done);
};

extern const struct lg_proto lg_proto_echo;
extern const struct lg_proto lg_proto_http;

/* Record a verification failure (the first one wins). */
void lg_fail(struct lg *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
