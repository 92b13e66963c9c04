/* proto_echo.c - the load generator's "echo" protocol: fixed-size messages
 * that carry their connection id, sequence number and a position-dependent
 * pattern, so that the echo is checked byte for byte and any corruption,
 * loss, duplication or reordering is detected. */
#include "loadgen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Message `seq` of connection `id`, S bytes: the first S bytes of
 *   header (16 bytes): seq (u64 LE), id (u32 LE), check (u32 LE)
 *   body: pattern[seq % PATTERN_SHIFTS ...], a fixed pseudo-random run
 * so that each message differs from its neighbours everywhere.
 */
#define HDR 16
#define PATTERN_SHIFTS 251

struct echo_state {
	uint8_t *pattern; /* S + PATTERN_SHIFTS bytes */
};

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void make_hdr(uint32_t id, uint64_t seq, uint8_t hdr[HDR])
{
	put_le(hdr, seq, 8);
	put_le(hdr + 8, id, 4);
	put_le(hdr + 12, (uint32_t)(seq * 2654435761u) ^ (id * 40503u) ^ 0xa5c3e1f7u, 4);
}

static int echo_init(struct lg *g)
{
	struct echo_state *st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	st->pattern = malloc(g->size + PATTERN_SHIFTS);
	if (!st->pattern) {
		free(st);
		return -ENOMEM;
	}
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < g->size + PATTERN_SHIFTS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		st->pattern[i] = (uint8_t)(x >> 24);
	}
	g->pstate = st;
	g->req_max = g->size;
	return 0;
}

static void echo_fini(struct lg *g)
{
	struct echo_state *st = g->pstate;
	if (st) {
		free(st->pattern);
		free(st);
	}
	g->pstate = NULL;
}

static size_t echo_request(struct lg *g, struct lg_conn *c, uint64_t seq,
			   uint8_t *dst)
{
	struct echo_state *st = g->pstate;
	uint8_t hdr[HDR];
	size_t s = g->size, h = s < HDR ? s : HDR;

	make_hdr(c->id, seq, hdr);
	memcpy(dst, hdr, h);
	if (s > HDR)
		memcpy(dst + HDR, st->pattern + seq % PATTERN_SHIFTS, s - HDR);
	return s;
}

/* The expected byte at offset `off` of message seq (slow path, for the
 * failure message only). */
static uint8_t expected_at(struct lg *g, struct lg_conn *c, uint64_t seq,
			   size_t off)
{
	struct echo_state *st = g->pstate;
	uint8_t hdr[HDR];
	if (off < HDR) {
		make_hdr(c->id, seq, hdr);
		return hdr[off];
	}
	return st->pattern[seq % PATTERN_SHIFTS + off - HDR];
}

static ssize_t mismatch(struct lg *g, struct lg_conn *c, const uint8_t *p,
			size_t k)
{
	uint64_t seq = c->next_recv;
	for (size_t i = 0; i < k; i++) {
		uint8_t want = expected_at(g, c, seq, c->rx_off + i);
		if (p[i] != want) {
			lg_fail(g, "connection %u, message %llu: byte %zu is 0x%02x, "
				"expected 0x%02x (echo corrupted, lost or reordered)",
				c->id, (unsigned long long)seq, c->rx_off + i,
				p[i], want);
			break;
		}
	}
	return -EPROTO;
}

static ssize_t echo_consume(struct lg *g, struct lg_conn *c, const uint8_t *p,
			    size_t n, bool *done)
{
	struct echo_state *st = g->pstate;
	size_t s = g->size, off = c->rx_off;
	size_t k = s - off < n ? s - off : n;
	size_t h = s < HDR ? s : HDR;

	if (off < h) {
		uint8_t hdr[HDR];
		size_t hk = h - off < k ? h - off : k;
		make_hdr(c->id, c->next_recv, hdr);
		if (memcmp(p, hdr + off, hk))
			return mismatch(g, c, p, k);
	}
	if (off + k > h) {
		size_t from = off > h ? off : h;      /* first body offset here */
		const uint8_t *want = st->pattern + c->next_recv % PATTERN_SHIFTS +
				      (from - HDR);
		if (memcmp(p + (from - off), want, off + k - from))
			return mismatch(g, c, p, k);
	}
	c->rx_off = off + k;
	*done = c->rx_off == s;
	return (ssize_t)k;
}

bool lg_all_answered(const struct lg *g)
{
	for (size_t i = 0; i < g->nconns; i++)
		if (g->conns[i].fd >= 0 && g->conns[i].next_recv != g->conns[i].next_send)
			return false;
	return true;
}

/* A connection must not fall behind the others: one that completed no
 * round trip in the whole measured phase while the others averaged at
 * least STALL_PEERS_MIN each, and whose requests were still unanswered
 * after the wait that follows the phase, stalled (a lost byte leaves a
 * ping-pong connection waiting forever while the rest go on). The floor
 * keeps a short phase over many connections, where a fair server may
 * leave one connection without a turn, from failing. In a phase of at
 * most LATE_PHASE_MAX, a connection served only after it (a server with a
 * long tail: Node's and Go's HTTP servers under pipelining in the quick
 * profile's 300 ms) was slow, not stalled, and shows as
 * conn_round_trips_min = 0 in the result; a longer phase without a turn
 * is a stall even when the answers come after it. */
#define STALL_PEERS_MIN 10
#define LATE_PHASE_MAX (1000 * INT64_C(1000000))

void lg_check_connections(struct lg *g, double waited_s)
{
	/* no response stopped short: part of one came back and the rest did
	 * not within the wait. A response none of which came back is not
	 * judged here: a server kept off its CPU by other work looks the
	 * same (a connection that got nothing while the others went on is
	 * the stall check's below) */
	for (size_t i = 0; i < g->nconns; i++) {
		const struct lg_conn *c = &g->conns[i];
		if (c->fd < 0 || c->next_recv == c->next_send || c->rx_off == 0)
			continue;
		uint64_t missing = c->next_send - c->next_recv;
		if (g->proto == &lg_proto_echo)
			lg_fail(g, "connection %u: message %llu came back incomplete "
				"(%zu of %zu bytes, %zu missing) and %llu more unanswered, "
				"%.0f ms after the measured phase: the server lost bytes "
				"or stalled this connection", c->id,
				(unsigned long long)c->next_recv, c->rx_off, g->size,
				g->size - c->rx_off, (unsigned long long)(missing - 1),
				waited_s * 1e3);
		else
			lg_fail(g, "connection %u: %llu responses missing (the first "
				"%zu bytes in) %.0f ms after the measured phase: the "
				"server lost them or stalled this connection", c->id,
				(unsigned long long)missing, c->rx_off, waited_s * 1e3);
		return;
	}
	if (g->max_msgs || g->measured < STALL_PEERS_MIN * (uint64_t)g->nconns)
		return;
	for (size_t i = 0; i < g->nconns; i++) {
		const struct lg_conn *c = &g->conns[i];
		if (c->fd < 0 || c->measured != 0)
			continue;
		if (c->next_recv != c->next_send) {
			lg_fail(g, "connection %u completed no round trip in the "
				"measured phase while the %zu others completed %llu, "
				"and %llu of its requests were still unanswered %.0f "
				"ms after it: the server stalled it", c->id,
				g->nconns - 1, (unsigned long long)g->measured,
				(unsigned long long)(c->next_send - c->next_recv),
				waited_s * 1e3);
			return;
		}
		if (g->duration_ns > LATE_PHASE_MAX) {
			lg_fail(g, "connection %u completed no round trip in the "
				"%.1f s measured phase while the %zu others "
				"completed %llu: the server stalled it", c->id,
				(double)g->duration_ns / 1e9, g->nconns - 1,
				(unsigned long long)g->measured);
			return;
		}
	}
}

const struct lg_proto lg_proto_echo = {
	.name = "echo",
	.init = echo_init,
	.fini = echo_fini,
	.request = echo_request,
	.consume = echo_consume,
	.check_end = lg_check_connections,
};
