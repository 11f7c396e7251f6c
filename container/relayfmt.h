/* relayfmt.h - the record format anyon-entry's relay mode writes on its
 * stdout and on each replay connection (documented in container/README.md;
 * the wrapper's writer is container/relay.h, the worker's parser
 * services/relay.h). Header only: both sides include it.
 *
 * A record is a 16-byte header then payload:
 *
 *     byte 0      'A' (RELAY_MAGIC)
 *     byte 1      1   (RELAY_VERSION)
 *     byte 2      type: 1 stdout, 2 stderr, 3 system, 4 lost, 5 exit
 *     byte 3      0   (reserved)
 *     bytes 4-7   payload length, unsigned big-endian
 *     bytes 8-15  offset, unsigned big-endian
 *
 * Offsets count the data bytes (stdout, stderr and system together, one
 * counter) the wrapper has relayed since the program started; a data
 * record's offset is that of its first payload byte, and the records of
 * a connection are contiguous: each starts where the previous one ended.
 * Data records carry 1..RELAY_DATA_MAX bytes. A lost record (payload: a
 * uint64 count, big-endian, > 0) says the bytes [offset, offset + count)
 * fell out of the window before this reader could get them. An exit
 * record (offset: the end; payload: uint32 exit code, uint32 signal, both
 * big-endian; the signal 0 when the program exited, else the code 0) is
 * the last record of a connection.
 */
#ifndef ANYON_RELAYFMT_H
#define ANYON_RELAYFMT_H

#include <stdint.h>

#define RELAY_MAGIC 'A'
#define RELAY_VERSION 1
#define RELAY_HEADER 16
#define RELAY_DATA_MAX 65536
#define RELAY_RECORD_MAX (RELAY_HEADER + RELAY_DATA_MAX)
/* Offsets stay below 2^62: far beyond any run, and safe in an int64_t. */
#define RELAY_OFFSET_MAX ((uint64_t)1 << 62)

enum relay_type {
	RELAY_STDOUT = 1,
	RELAY_STDERR = 2,
	RELAY_SYSTEM = 3,
	RELAY_LOST = 4,
	RELAY_EXIT = 5,
};

static inline void relay_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static inline uint32_t relay_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void relay_put64(unsigned char *p, uint64_t v)
{
	relay_put32(p, (uint32_t)(v >> 32));
	relay_put32(p + 4, (uint32_t)v);
}

static inline uint64_t relay_get64(const unsigned char *p)
{
	return (uint64_t)relay_get32(p) << 32 | relay_get32(p + 4);
}

/* Writes a record header into p[0..RELAY_HEADER). */
static inline void relay_put_header(unsigned char *p, enum relay_type type, uint32_t len, uint64_t offset)
{
	p[0] = RELAY_MAGIC;
	p[1] = RELAY_VERSION;
	p[2] = (unsigned char)type;
	p[3] = 0;
	relay_put32(p + 4, len);
	relay_put64(p + 8, offset);
}

#endif
