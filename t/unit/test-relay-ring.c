/* anyon-entry's window (container/relay.h): records in and out of the
 * ring, wrapping, eviction, readers from any offset, lost counts exact,
 * and a long random run checked byte for byte against a model. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>

#include "container/relay.h"
#include "t/unit/tap.h"

#define TOTAL (4u << 20)

static unsigned char *model;      /* every byte appended, by offset */
static unsigned char *mtype;      /* its stream */
static uint64_t mlen;

static void append(struct relay_ring *r, enum relay_type type, const unsigned char *p, size_t n)
{
	relay_ring_append(r, type, p, n);
	memcpy(model + mlen, p, n);
	memset(mtype + mlen, type, n);
	mlen += n;
}

/* Reads everything c can get now; checks each record against the model.
 * Returns the number of problems; *lost adds up the lost counts. */
static int drain(struct relay_ring *r, struct relay_cursor *c, unsigned char *out, uint64_t *lost)
{
	int bad = 0;
	size_t n;

	while ((n = relay_ring_next(r, c, out)) > 0) {
		uint32_t len = relay_get32(out + 4);
		uint64_t off = relay_get64(out + 8);

		if (out[0] != RELAY_MAGIC || out[1] != RELAY_VERSION || out[3] != 0)
			bad++;
		if (out[2] == RELAY_LOST) {
			if (len != 8 || n != RELAY_HEADER + 8)
				bad++;
			*lost += relay_get64(out + RELAY_HEADER);
			if (off + relay_get64(out + RELAY_HEADER) != c->off || c->off != r->head_off)
				bad++;
			continue;
		}
		if (n != RELAY_HEADER + len || len == 0 || len > RELAY_DATA_MAX || off + len != c->off ||
		    off + len > mlen || memcmp(out + RELAY_HEADER, model + off, len) != 0)
			bad++;
		else
			for (uint32_t i = 0; i < len; i++)
				if (mtype[off + i] != out[2])
					bad++;
	}
	return bad;
}

int main(void)
{
	struct relay_ring r;
	struct relay_cursor c, c2;
	unsigned char *out = malloc(RELAY_RECORD_MAX), *data = malloc(RELAY_DATA_MAX);
	uint64_t lost = 0;
	size_t n;
	int bad, i;

	model = malloc(TOTAL + RELAY_DATA_MAX);
	mtype = malloc(TOTAL + RELAY_DATA_MAX);
	for (i = 0; i < RELAY_DATA_MAX; i++)
		data[i] = (unsigned char)(i * 7 + 3);

	/* ---- basics ---- */
	ok(relay_ring_init(&r, 100) == 0 && r.cap == RELAY_RING_MIN, "a tiny window is raised to the minimum");
	relay_cursor_init(&c, 0);
	is_int(relay_ring_next(&r, &c, out), 0, "an empty ring has nothing to read");
	append(&r, RELAY_STDOUT, (const unsigned char *)"hello\n", 6);
	append(&r, RELAY_STDERR, (const unsigned char *)"oops\n", 5);
	n = relay_ring_next(&r, &c, out);
	ok(n == RELAY_HEADER + 6 && out[2] == RELAY_STDOUT && relay_get64(out + 8) == 0 &&
	   memcmp(out + RELAY_HEADER, "hello\n", 6) == 0, "the first record: stdout at 0");
	n = relay_ring_next(&r, &c, out);
	ok(n == RELAY_HEADER + 5 && out[2] == RELAY_STDERR && relay_get64(out + 8) == 6 &&
	   memcmp(out + RELAY_HEADER, "oops\n", 5) == 0, "the second: stderr at 6 (one counter)");
	is_int(relay_ring_next(&r, &c, out), 0, "then nothing: the reader is at the end");
	relay_cursor_init(&c2, 3);
	n = relay_ring_next(&r, &c2, out);
	ok(n == RELAY_HEADER + 3 && relay_get64(out + 8) == 3 && memcmp(out + RELAY_HEADER, "lo\n", 3) == 0,
	   "a reader from the middle of a record gets its rest, at its own offset");
	relay_cursor_init(&c2, 11);
	is_int(relay_ring_next(&r, &c2, out), 0, "a reader at the end gets nothing");
	is_int(relay_ring_unsent(&r, &c2), 0, "nothing unsent for a reader at the end");
	relay_cursor_init(&c2, 0);
	is_int(relay_ring_unsent(&r, &c2), r.used, "all of the ring unsent for a reader at the start");
	relay_cursor_init(&c2, 3);
	is_int(relay_ring_unsent(&r, &c2), r.used, "a reader inside the first record: its whole record counts");
	relay_cursor_init(&c2, 6);
	is_int(relay_ring_unsent(&r, &c2), RELAY_HEADER + 5, "a reader at the second record: just it");
	n = relay_exit_record(out, 11, 3, 0);
	ok(n == 24 && out[2] == RELAY_EXIT && relay_get64(out + 8) == 11 && relay_get32(out + 16) == 3 &&
	   relay_get32(out + 20) == 0, "the exit record: the end offset, the code, the signal");
	relay_ring_append(&r, RELAY_STDOUT, data, 0);
	relay_ring_append(&r, RELAY_STDOUT, data, RELAY_DATA_MAX + 1);
	is_int(r.end_off, 11, "empty and oversized appends are ignored");
	relay_ring_release(&r);

	/* ---- eviction: exact lost counts ---- */
	mlen = 0;
	relay_ring_init(&r, RELAY_RING_MIN);
	relay_cursor_init(&c, 0);
	for (i = 0; i < 5; i++)
		append(&r, RELAY_STDOUT, data, RELAY_DATA_MAX);
	ok(r.head_off > 0 && r.used <= r.cap, "a full ring evicted its oldest records (%llu bytes)",
	   (unsigned long long)r.head_off);
	n = relay_ring_next(&r, &c, out);
	ok(n == RELAY_HEADER + 8 && out[2] == RELAY_LOST && relay_get64(out + 8) == 0 &&
	   relay_get64(out + RELAY_HEADER) == r.head_off, "a reader behind the window: a lost record with the exact count");
	lost = 0;
	bad = drain(&r, &c, out, &lost);
	ok(bad == 0 && c.off == mlen && lost == 0, "then the rest of the window, byte for byte");
	relay_cursor_init(&c2, r.head_off - 1);
	n = relay_ring_next(&r, &c2, out);
	ok(n == RELAY_HEADER + 8 && relay_get64(out + RELAY_HEADER) == 1, "one byte older than the window: 1 lost");
	relay_ring_release(&r);

	/* ---- a long random run: records of every size wrapping around, a
	 * fast reader, a slow one, late readers from random offsets ---- */
	{
		uint64_t lost_fast = 0, lost_slow = 0;
		int bad_total = 0, late = 0;

		mlen = 0;
		srand(7);
		relay_ring_init(&r, RELAY_RING_MIN + 12345);
		relay_cursor_init(&c, 0);
		relay_cursor_init(&c2, 0);
		while (mlen < TOTAL) {
			size_t len = (size_t)(rand() % 4 == 0 ? rand() % RELAY_DATA_MAX + 1 : rand() % 200 + 1);
			enum relay_type type = (enum relay_type)(rand() % 3 + 1);

			for (size_t k = 0; k < len; k++)
				data[k] = (unsigned char)rand();
			append(&r, type, data, len);
			if (r.used > r.cap || r.end_off != mlen)
				bad_total++;
			bad_total += drain(&r, &c, out, &lost_fast);
			if (rand() % 50 == 0)
				bad_total += drain(&r, &c2, out, &lost_slow);
			if (relay_ring_unsent(&r, &c2) > r.used ||
			    (c2.off < r.end_off && relay_ring_unsent(&r, &c2) < r.end_off - (c2.off > r.head_off ? c2.off : r.head_off)))
				bad_total++;
			if (rand() % 100 == 0) {
				struct relay_cursor c3;
				uint64_t l3 = 0, from = (uint64_t)rand() % (mlen + 1);

				relay_cursor_init(&c3, from);
				bad_total += drain(&r, &c3, out, &l3);
				if (c3.off != mlen || l3 != (from < r.head_off ? r.head_off - from : 0))
					bad_total++;
				late++;
			}
		}
		bad_total += drain(&r, &c2, out, &lost_slow);
		ok(bad_total == 0, "%llu bytes in random records: every record read matches what was appended",
		   (unsigned long long)mlen);
		ok(lost_fast == 0 && c.off == mlen, "a reader that keeps up loses nothing");
		ok(lost_slow > 0 && c2.off == mlen && lost_slow < mlen,
		   "a slow reader is told exactly what it lost (%llu) and ends at the end", (unsigned long long)lost_slow);
		ok(late > 3, "%d late readers from random offsets got the window and exact lost counts", late);
		relay_ring_release(&r);
	}
	free(out);
	free(data);
	free(model);
	free(mtype);
	return done_testing();
}
