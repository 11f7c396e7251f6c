/* relay.h - anyon-entry's window of recent output: a ring of records in
 * process memory (never a file), and readers that each follow it from
 * their own offset (record format: container/relayfmt.h).
 *
 * The ring holds whole records (header + payload) in cap bytes; appending
 * evicts the oldest records to make room, so it keeps roughly the last
 * cap bytes relayed. A reader asks for the next record after its offset:
 * the rest of the record that holds it (a record read from the middle
 * starts at the reader's offset), or a lost record when its offset fell
 * out of the window. Finding the next record is O(1) while the reader
 * keeps up (a hint of where its record is), a walk from the oldest record
 * otherwise.
 */
#ifndef ANYON_RELAY_H
#define ANYON_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "container/relayfmt.h"

#define RELAY_RING_MIN (2 * RELAY_RECORD_MAX)

struct relay_ring {
	unsigned char *buf;
	size_t cap;        /* bytes of buf */
	size_t head;       /* position of the oldest record */
	size_t used;       /* bytes held */
	uint64_t head_off; /* offset of the oldest byte held */
	uint64_t end_off;  /* offset after the newest byte */
};

struct relay_cursor {
	uint64_t off;      /* the next byte this reader wants */
	size_t pos;        /* hint: ring position of the record holding off ... */
	uint64_t rec_off;  /* ... and that record's offset */
	int hint;          /* whether pos/rec_off are set */
};

/* A ring of cap bytes (RELAY_RING_MIN or more). 0, or -1 out of memory. */
int relay_ring_init(struct relay_ring *r, size_t cap);
/* Frees the buffer it holds, wiped first (it held the program's output), not r itself. */
void relay_ring_release(struct relay_ring *r);
/* Appends one data record (type RELAY_STDOUT/STDERR/SYSTEM) of 1..
 * RELAY_DATA_MAX bytes, evicting the oldest records as needed. */
void relay_ring_append(struct relay_ring *r, enum relay_type type, const void *data, size_t len);
/* A reader wanting everything from off (at most r->end_off). */
void relay_cursor_init(struct relay_cursor *c, uint64_t off);
/* Writes into out (RELAY_RECORD_MAX bytes) the next record for c and
 * advances it: the data after c->off, or a lost record when c->off is
 * older than the window. Returns its length, 0 when c is at the end. */
size_t relay_ring_next(const struct relay_ring *r, struct relay_cursor *c, unsigned char *out);
/* Bytes of the ring (headers included) holding data c has not read yet:
 * appending more than r->cap minus this evicts some of it. */
size_t relay_ring_unsent(const struct relay_ring *r, struct relay_cursor *c);
/* The exit record at offset end into out (RELAY_HEADER + 8 bytes);
 * returns its length. */
size_t relay_exit_record(unsigned char *out, uint64_t end, uint32_t code, uint32_t sig);

#endif
