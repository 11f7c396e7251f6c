/* The worker's parser of relay records (services/relay.h): a stream made
 * by the wrapper's own writer (container/relay.h) fed at every split
 * point and byte by byte gives back the same bytes per stream, the lost
 * counts and the exit; hostile headers, lengths, offsets and trailing
 * bytes are refused, and a refusal sticks. Buffers are malloc'd to size. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>

#include "container/relay.h"
#include "services/relay.h"
#include "t/unit/tap.h"

struct got {
	unsigned char out[4096], err[4096], sys[4096];
	size_t nout, nerr, nsys;
	uint64_t next;        /* continuity of offsets as seen by the callbacks */
	int gaps;
	uint64_t lost, lost_at;
	int exits, code, sig;
	uint64_t end;
	size_t nsys_big;      /* system bytes past sys */
	int stop_data;        /* refuse data: a callback's veto */
};

static int on_data(void *ctx, enum relay_type s, uint64_t off, const unsigned char *p, size_t n)
{
	struct got *g = ctx;

	if (g->stop_data)
		return 1;
	if (off != g->next || n == 0)
		g->gaps++;
	g->next = off + n;
	if (s == RELAY_STDOUT && g->nout + n <= sizeof g->out)
		memcpy(g->out + g->nout, p, n), g->nout += n;
	else if (s == RELAY_STDERR && g->nerr + n <= sizeof g->err)
		memcpy(g->err + g->nerr, p, n), g->nerr += n;
	else if (s == RELAY_SYSTEM && g->nsys + n <= sizeof g->sys)
		memcpy(g->sys + g->nsys, p, n), g->nsys += n;
	else if (s == RELAY_SYSTEM)
		g->nsys_big += n;
	else
		g->gaps++;
	return 0;
}

static int on_lost(void *ctx, uint64_t off, uint64_t count)
{
	struct got *g = ctx;

	if (off != g->next)
		g->gaps++;
	g->lost += count;
	g->lost_at = off;
	g->next = off + count;
	return 0;
}

static int on_exit_(void *ctx, uint64_t end, int code, int sig)
{
	struct got *g = ctx;

	g->exits++;
	g->end = end;
	g->code = code;
	g->sig = sig;
	return 0;
}

static const struct relay_callbacks CB = { on_data, on_lost, on_exit_ };

/* Feeds buf[0..len) cut at the given points (sorted, ascending), each
 * piece in its own exactly-sized allocation. */
static int feed_cut(struct relay_parser *p, const unsigned char *buf, size_t len, const size_t *cuts, int ncuts)
{
	size_t from = 0;
	int i, rc = 0;

	for (i = 0; i <= ncuts && rc == 0; i++) {
		size_t to = i < ncuts ? cuts[i] : len;
		unsigned char *piece = malloc(to - from ? to - from : 1);

		memcpy(piece, buf + from, to - from);
		rc = relay_parser_feed(p, piece, to - from);
		free(piece);
		from = to;
	}
	return rc;
}

static unsigned char stream[8192];
static size_t slen;

static void add(const unsigned char *rec, size_t n)
{
	memcpy(stream + slen, rec, n);
	slen += n;
}

/* A hostile variant: the good stream's first record with header byte i
 * set to v, or a handmade record. Returns whether it is refused. */
static int refused(const unsigned char *buf, size_t len, uint64_t start)
{
	struct relay_parser p;
	struct got g;
	int rc;

	memset(&g, 0, sizeof g);
	g.next = start;
	relay_parser_init(&p, start, &CB, &g);
	rc = relay_parser_feed(&p, buf, len);
	return rc < 0 && relay_parser_error(&p)[0] != '\0' && relay_parser_feed(&p, "", 0) < 0;
}

int main(void)
{
	struct relay_ring r;
	struct relay_cursor c;
	struct relay_parser p;
	struct got g, want;
	unsigned char *rec = malloc(RELAY_RECORD_MAX);
	unsigned char h[64];
	size_t n, i, j, cuts[2];
	int bad;

	/* The wrapper's writer makes the stream: stdout, stderr and system
	 * records, a reader joining late (a lost record), the exit. */
	relay_ring_init(&r, RELAY_RING_MIN);
	relay_ring_append(&r, RELAY_STDOUT, "0123456789", 10);
	relay_cursor_init(&c, 4);	/* a replay after 4 */
	relay_ring_append(&r, RELAY_STDERR, "err line\n", 9);
	relay_ring_append(&r, RELAY_STDOUT, "out line\n", 9);
	relay_ring_append(&r, RELAY_SYSTEM, "anyon-entry: note\n", 18);
	while ((n = relay_ring_next(&r, &c, rec)) > 0)
		add(rec, n);
	n = relay_exit_record(rec, r.end_off, 0, 15);
	add(rec, n);

	memset(&want, 0, sizeof want);
	memcpy(want.out, "456789out line\n", 15);
	want.nout = 15;
	memcpy(want.err, "err line\n", 9);
	want.nerr = 9;

	/* ---- whole, at every split point, at every pair of split points,
	 * byte by byte ---- */
	bad = 0;
	for (i = 0; i <= slen; i++)
		for (j = i; j <= slen; j++) {
			memset(&g, 0, sizeof g);
			g.next = 4;
			relay_parser_init(&p, 4, &CB, &g);
			cuts[0] = i;
			cuts[1] = j;
			if (feed_cut(&p, stream, slen, cuts, 2) != 0 || g.gaps || g.nout != want.nout ||
			    memcmp(g.out, want.out, want.nout) != 0 || g.nerr != want.nerr ||
			    memcmp(g.err, want.err, want.nerr) != 0 || g.nsys != 18 ||
			    memcmp(g.sys, "anyon-entry: note\n", 18) != 0 || g.exits != 1 || g.sig != 15 ||
			    g.code != 0 || g.end != 46 || relay_parser_offset(&p) != 46 || !relay_parser_ended(&p) ||
			    !relay_parser_at_boundary(&p))
				bad++;
		}
	ok(bad == 0, "the stream cut at every pair of points (%zu bytes): same bytes per stream, offsets contiguous, the exit", slen);
	memset(&g, 0, sizeof g);
	g.next = 4;
	relay_parser_init(&p, 4, &CB, &g);
	for (i = 0, bad = 0; i < slen; i++) {
		bad |= relay_parser_feed(&p, stream + i, 1);
		if (i + 1 < slen && relay_parser_ended(&p))
			bad = 1;
	}
	ok(bad == 0 && g.nout == 15 && g.nerr == 9 && g.exits == 1, "byte by byte: the same");

	/* offsets as marks: a connection cut mid-record stops at the last byte passed on */
	memset(&g, 0, sizeof g);
	g.next = 4;
	relay_parser_init(&p, 4, &CB, &g);
	relay_parser_feed(&p, stream, RELAY_HEADER + 3);
	ok(relay_parser_offset(&p) == 7 && !relay_parser_at_boundary(&p),
	   "cut inside a payload: the offset counts the bytes passed on (7), not at a boundary");

	/* ---- a lost record ---- */
	relay_ring_release(&r);
	relay_ring_init(&r, RELAY_RING_MIN);
	{
		unsigned char *big = calloc(1, 1000);
		int k;

		for (k = 0; k < 300; k++)
			relay_ring_append(&r, RELAY_SYSTEM, big, 1000);
		relay_ring_append(&r, RELAY_STDERR, "tail\n", 5);
		free(big);
	}
	relay_cursor_init(&c, 100);
	memset(&g, 0, sizeof g);
	g.next = 100;
	relay_parser_init(&p, 100, &CB, &g);
	slen = 0;
	n = relay_ring_next(&r, &c, rec);
	ok(relay_parser_feed(&p, rec, n) == 0 && g.lost == r.head_off - 100 && g.lost_at == 100 &&
	   relay_parser_offset(&p) == r.head_off, "a lost record: its exact count, the offset moves past it");
	bad = 0;
	while ((n = relay_ring_next(&r, &c, rec)) > 0)
		bad |= relay_parser_feed(&p, rec, n);
	ok(bad == 0 && g.gaps == 0 && relay_parser_offset(&p) == r.end_off && g.nerr == 5 && g.nsys + g.nsys_big == r.end_off - r.head_off - 5,
	   "then the window to its end, contiguous");
	relay_ring_release(&r);

	/* ---- hostile input ---- */
	relay_put_header(h, RELAY_STDOUT, 3, 0);
	memcpy(h + RELAY_HEADER, "abc", 3);
	ok(!refused(h, RELAY_HEADER + 3, 0), "(the good record parses)");
	h[0] = 'B';
	ok(refused(h, RELAY_HEADER + 3, 0), "a bad magic byte is refused, and the refusal sticks");
	h[0] = RELAY_MAGIC, h[1] = 2;
	ok(refused(h, RELAY_HEADER + 3, 0), "another version is refused");
	h[1] = RELAY_VERSION, h[3] = 1;
	ok(refused(h, RELAY_HEADER + 3, 0), "a reserved byte set is refused");
	for (i = 0, bad = 0; i < 256; i++) {
		h[3] = 0;
		h[2] = (unsigned char)i;
		if ((i >= 1 && i <= 3) == refused(h, RELAY_HEADER + 3, 0))
			bad++;
	}
	ok(bad == 0, "types other than stdout/stderr/system/lost/exit are refused (lost/exit here by their length)");
	relay_put_header(h, RELAY_STDOUT, 0, 0);
	ok(refused(h, RELAY_HEADER, 0), "an empty data record is refused");
	relay_put_header(h, RELAY_STDOUT, RELAY_DATA_MAX + 1, 0);
	ok(refused(h, RELAY_HEADER, 0), "a data record over %d bytes is refused at its header", RELAY_DATA_MAX);
	relay_put_header(h, RELAY_STDERR, 0xffffffffu, 0);
	ok(refused(h, RELAY_HEADER, 0), "a length of 2^32-1 is refused at its header");
	relay_put_header(h, RELAY_LOST, 9, 0);
	ok(refused(h, RELAY_HEADER, 0), "a lost record of other than 8 bytes is refused");
	relay_put_header(h, RELAY_EXIT, 4, 0);
	ok(refused(h, RELAY_HEADER, 0), "an exit record of other than 8 bytes is refused");
	relay_put_header(h, RELAY_STDOUT, 3, 5);
	ok(refused(h, RELAY_HEADER + 3, 4), "a record after a gap (offset 5, expected 4) is refused");
	ok(refused(h, RELAY_HEADER + 3, 6), "a record repeating bytes (offset 5, expected 6) is refused");
	relay_put_header(h, RELAY_STDOUT, 3, RELAY_OFFSET_MAX - 1);
	ok(refused(h, RELAY_HEADER + 3, RELAY_OFFSET_MAX - 1), "an offset running past 2^62 is refused");
	relay_put_header(h, RELAY_LOST, 8, 0);
	relay_put64(h + RELAY_HEADER, 0);
	ok(refused(h, RELAY_HEADER + 8, 0), "a lost count of 0 is refused");
	relay_put64(h + RELAY_HEADER, UINT64_MAX);
	ok(refused(h, RELAY_HEADER + 8, 0), "a lost count of 2^64-1 is refused");
	relay_put_header(h, RELAY_EXIT, 8, 0);
	relay_put32(h + RELAY_HEADER, 256);
	relay_put32(h + RELAY_HEADER + 4, 0);
	ok(refused(h, RELAY_HEADER + 8, 0), "an exit code of 256 is refused");
	relay_put32(h + RELAY_HEADER, 1);
	relay_put32(h + RELAY_HEADER + 4, 9);
	ok(refused(h, RELAY_HEADER + 8, 0), "an exit with both a code and a signal is refused");
	relay_put32(h + RELAY_HEADER, 0);
	memcpy(h + RELAY_HEADER + 8, "x", 1);
	ok(refused(h, RELAY_HEADER + 9, 0), "a byte after the exit record is refused");
	ok(!refused(h, RELAY_HEADER + 8, 0), "(the exit record alone parses)");
	memset(&g, 0, sizeof g);
	g.stop_data = 1;
	relay_parser_init(&p, 0, &CB, &g);
	relay_put_header(h, RELAY_STDOUT, 3, 0);
	ok(relay_parser_feed(&p, h, RELAY_HEADER + 3) < 0 && relay_parser_feed(&p, h, 1) < 0,
	   "a callback's refusal stops the parser for good");

	/* random garbage: never a crash, never data past a refusal */
	srand(11);
	for (i = 0, bad = 0; i < 20000; i++) {
		size_t len = (size_t)(rand() % 64) + 1, k;
		unsigned char *junk = malloc(len);

		for (k = 0; k < len; k++)
			junk[k] = (unsigned char)(rand() % 4 == 0 ? RELAY_MAGIC : rand() % 8 == 0 ? 1 : rand());
		memset(&g, 0, sizeof g);
		relay_parser_init(&p, 0, &CB, &g);
		if (relay_parser_feed(&p, junk, len) == 0 && relay_parser_offset(&p) > len)
			bad++;
		if (g.gaps)
			bad++;
		free(junk);
	}
	ok(bad == 0, "20000 random inputs: no crash, offsets never run ahead of the bytes fed");
	free(rec);
	return done_testing();
}
