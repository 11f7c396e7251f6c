/* relay.h - the worker's parser of anyon-entry's relay stream (the record
 * format: container/relayfmt.h and container/README.md).
 *
 * Pure and incremental: feed it the bytes of an attach or replay stream in
 * slices of any size, records split anywhere; it calls back with each
 * piece of data as it arrives (a record's payload may come in several
 * calls, each with its own offset), each lost-bytes record, and the exit
 * record. It holds no payload: its memory is the struct.
 *
 * It checks what it is fed: magic, version, type, reserved byte, lengths
 * (data 1..RELAY_DATA_MAX, lost and exit exactly 8), offsets (each record
 * starts where the previous one ended, the first at the offset the parser
 * was started with: the committed one a replay was asked for), a lost
 * count > 0 and bounded, nothing after the exit record. The first
 * violation makes it fail, then and on every later call.
 *
 * Use in an executor (services/output.h): start the parser at the job's
 * committed offset (0 on the first attach); data callbacks go to
 * output_write() (RELAY_SYSTEM is the program's side too: write it as
 * stderr, never as anyon's system line); after each feed,
 * output_mark(w, relay_parser_offset(&p)) (a mark may fall inside a
 * record: a replay resumes there); a lost callback becomes one
 * output_system() line with the count; the exit callback gives the
 * status. After a restart: `anyon-entry replay --after <committed>` in an
 * exec, and a fresh parser started there.
 */
#ifndef ANYON_SERVICES_RELAY_H
#define ANYON_SERVICES_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "container/relayfmt.h"

struct relay_callbacks {
	/* len bytes of stream (RELAY_STDOUT, RELAY_STDERR or RELAY_SYSTEM)
	 * whose first byte is at offset. Nonzero stops the parser. */
	int (*data)(void *ctx, enum relay_type stream, uint64_t offset, const unsigned char *p, size_t len);
	/* The bytes [offset, offset + count) are lost. */
	int (*lost)(void *ctx, uint64_t offset, uint64_t count);
	/* The program ended after end bytes: exited with code (sig 0), or
	 * was killed by signal sig. */
	int (*exit)(void *ctx, uint64_t end, int code, int sig);
};

struct relay_parser {
	struct relay_callbacks cb;
	void *ctx;
	unsigned char hdr[RELAY_HEADER];
	size_t hlen;          /* header bytes held */
	unsigned char small[8];
	size_t slen;          /* lost/exit payload bytes held */
	int type;             /* the current record's type, 0 between records */
	uint64_t left;        /* payload bytes of the current record still to come */
	uint64_t next;        /* the offset the next data byte must have */
	int ended;            /* the exit record was read */
	int failed;
	char err[160];
};

/* A parser expecting the stream to start at offset start. */
void relay_parser_init(struct relay_parser *p, uint64_t start, const struct relay_callbacks *cb, void *ctx);
/* Parses len bytes. 0, or -1 with relay_parser_error() (a protocol error
 * or a callback's refusal); then every later call fails too. */
int relay_parser_feed(struct relay_parser *p, const void *buf, size_t len);
/* Why it failed ("" when it has not). */
const char *relay_parser_error(const struct relay_parser *p);
/* The offset of the next byte expected: everything before it was passed
 * on (to commit as the output's mark). */
uint64_t relay_parser_offset(const struct relay_parser *p);
/* Whether the exit record was read. */
int relay_parser_ended(const struct relay_parser *p);
/* Whether the stream stopped between records (a connection that ended
 * there lost nothing halfway). */
int relay_parser_at_boundary(const struct relay_parser *p);

#endif
