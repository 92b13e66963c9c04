/*
 * fuzz_echo.c - libFuzzer target for the load generator's echo check
 * (harness/load/proto_echo.c), through its protocol interface alone
 * (struct lg_proto: init, request, consume, fini).
 *
 * The input describes an echo server's misbehaviour rather than raw bytes:
 * a configuration (message size, connection id, first sequence number,
 * messages in flight), then edits applied to the correct echo of those
 * messages (flip, drop, duplicate or insert bytes), then how the result is
 * cut into reads. The bytes are fed through consume the way the load
 * generator's process() does. The oracle is exact:
 *   - a delivered stream that is a prefix of the correct echo is accepted
 *     whole, with the right number of completed messages and partial
 *     offset;
 *   - any other stream is rejected (-EPROTO, the failure described in
 *     g->fail) by the consume call whose bytes hold the first one that
 *     differs, never earlier and never later;
 *   - consume returns > 0 (at most what it was given) or -EPROTO, and says
 *     done exactly when a message is complete.
 * The reads are copied to buffers of exactly their size, so
 * AddressSanitizer sees any read past them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_echo: %s: ", #cond);           \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

#define MAX_SIZE 2048u
#define MAX_MSGS 8u
#define MAX_STREAM (MAX_SIZE * MAX_MSGS * 2)

/* The load generator's failure sink (loadgen.c), with the same contract:
 * the first failure wins. The target links proto_echo.c alone. */
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

/* Reads the input front to back; past its end every value is 0. */
struct reader {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct reader *r, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++) {
		v |= (uint64_t)(r->n ? *r->p : 0) << (8 * i);
		if (r->n) {
			r->p++;
			r->n--;
		}
	}
	return v;
}

static uint8_t stream[MAX_STREAM], want[MAX_STREAM];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader in = {data, size};
	struct lg g = {.proto = &lg_proto_echo};
	g.size = 1 + take(&in, 2) % MAX_SIZE;
	struct lg_conn c = {.id = (uint32_t)take(&in, 4)};
	uint64_t first = take(&in, 8);
	size_t nmsg = 1 + take(&in, 1) % MAX_MSGS;
	size_t nedits = take(&in, 1) % 8;

	CHECK(g.proto->init(&g) == 0, "init failed");
	CHECK(g.req_max >= g.size, "req_max %zu < size %zu", g.req_max, g.size);

	/* the correct echo of messages first .. first + nmsg - 1 */
	uint8_t *req = malloc(g.req_max);
	CHECK(req, "out of memory");
	size_t wlen = 0;
	for (size_t i = 0; i < nmsg; i++) {
		size_t k = g.proto->request(&g, &c, first + i, req);
		CHECK(k == g.size, "request %zu bytes, size %zu", k, g.size);
		memcpy(want + wlen, req, k);
		wlen += k;
	}
	free(req);

	/* what the server sent back: the echo, edited */
	memcpy(stream, want, wlen);
	size_t slen = wlen;
	for (size_t e = 0; e < nedits; e++) {
		unsigned op = (unsigned)take(&in, 1) % 4;
		size_t at = slen ? take(&in, 2) % slen : 0;
		size_t len = 1 + take(&in, 1) % 64;
		uint8_t val = (uint8_t)take(&in, 1);
		switch (op) {
		case 0: /* corrupt one byte */
			if (slen)
				stream[at] ^= val ? val : 1;
			break;
		case 1: /* lose len bytes */
			len = len < slen - at ? len : slen - at;
			memmove(stream + at, stream + at + len, slen - at - len);
			slen -= len;
			break;
		case 2: /* duplicate len bytes */
			len = len < slen - at ? len : slen - at;
			if (slen + len <= MAX_STREAM) {
				memmove(stream + at + len, stream + at, slen - at);
				slen += len;
			}
			break;
		case 3: /* one byte that was never sent */
			if (slen < MAX_STREAM) {
				memmove(stream + at + 1, stream + at, slen - at);
				stream[at] = val;
				slen++;
			}
			break;
		}
	}

	/* the first offset where the echo differs from what was sent; bytes
	 * after the last expected message are the engine's business (it
	 * reports "unexpected bytes"), not the protocol's */
	size_t common = 0, lim = slen < wlen ? slen : wlen;
	while (common < lim && stream[common] == want[common])
		common++;
	bool bad = common < lim;
	size_t fed_max = slen < wlen ? slen : wlen;

	/* feed it in reads, as process() in loadgen.c does */
	c.next_recv = first;
	c.next_send = first + nmsg;
	size_t off = 0, completed = 0;
	bool failed = false;
	while (off < fed_max && !failed) {
		/* once the input is used up, the rest arrives in one read */
		size_t rlen = in.n ? 1 + take(&in, 2) % 4096 : fed_max - off;
		rlen = rlen < fed_max - off ? rlen : fed_max - off;
		uint8_t *buf = malloc(rlen); /* exactly the read, for ASan */
		CHECK(buf, "out of memory");
		memcpy(buf, stream + off, rlen);
		const uint8_t *p = buf;
		size_t n = rlen;
		while (n) {
			bool done = false;
			size_t before = c.rx_off;
			ssize_t k = g.proto->consume(&g, &c, p, n, &done);
			size_t at = off + (size_t)(p - buf);
			if (k < 0) {
				CHECK(k == -EPROTO, "consume returned %zd", k);
				CHECK(g.failed && g.fail[0], "rejected without a reason");
				/* consume looks at the current message's bytes only */
				size_t span = g.size - before < n ? g.size - before : n;
				CHECK(bad && common >= at && common < at + span,
				      "rejected bytes %zu..%zu, first difference at %zu%s",
				      at, at + span, common, bad ? "" : " (none)");
				failed = true;
				break;
			}
			CHECK(k > 0 && (size_t)k <= n, "consume returned %zd of %zu", k, n);
			CHECK(!bad || common >= at + (size_t)k,
			      "accepted bytes %zu..%zu, but byte %zu differs", at,
			      at + (size_t)k, common);
			CHECK(!g.failed, "accepted bytes yet failed: %s", g.fail);
			CHECK(done == (before + (size_t)k == g.size) && c.rx_off == before + (size_t)k,
			      "done=%d rx_off %zu -> %zu, size %zu", done, before,
			      c.rx_off, g.size);
			p += k;
			n -= (size_t)k;
			if (done) {
				c.next_recv++;
				c.rx_off = 0;
				completed++;
			}
		}
		free(buf);
		off += rlen;
	}
	if (!failed) {
		CHECK(!bad || common >= fed_max, "difference at %zu never rejected", common);
		CHECK(completed == fed_max / g.size && c.rx_off == fed_max % g.size,
		      "%zu of %zu bytes: %zu messages completed, rx_off %zu, size %zu",
		      fed_max, fed_max, completed, c.rx_off, g.size);
	} else {
		CHECK(bad, "failed on a correct echo: %s", g.fail);
	}
	g.proto->fini(&g);
	return 0;
}
