/* relay.c - the ring of recent output and its readers (container/relay.h). */
#define _DEFAULT_SOURCE
#include "container/relay.h"

#include <stdlib.h>
#include <string.h>

int relay_ring_init(struct relay_ring *r, size_t cap)
{
	memset(r, 0, sizeof *r);
	if (cap < RELAY_RING_MIN)
		cap = RELAY_RING_MIN;
	r->buf = malloc(cap);
	if (!r->buf)
		return -1;
	r->cap = cap;
	return 0;
}

void relay_ring_release(struct relay_ring *r)
{
	if (r->buf) {
		explicit_bzero(r->buf, r->cap);
		free(r->buf);
	}
	memset(r, 0, sizeof *r);
}

/* Copies len bytes from/to the ring at pos, wrapping around its end. */
static void ring_put(struct relay_ring *r, size_t pos, const unsigned char *p, size_t len)
{
	size_t first = r->cap - pos < len ? r->cap - pos : len;

	memcpy(r->buf + pos, p, first);
	memcpy(r->buf, p + first, len - first);
}

static void ring_get(const struct relay_ring *r, size_t pos, unsigned char *p, size_t len)
{
	size_t first = r->cap - pos < len ? r->cap - pos : len;

	memcpy(p, r->buf + pos, first);
	memcpy(p + first, r->buf, len - first);
}

/* The payload length of the record at pos. */
static size_t rec_len(const struct relay_ring *r, size_t pos)
{
	unsigned char h[RELAY_HEADER];

	ring_get(r, pos, h, sizeof h);
	return relay_get32(h + 4);
}

void relay_ring_append(struct relay_ring *r, enum relay_type type, const void *data, size_t len)
{
	unsigned char h[RELAY_HEADER];
	size_t need = RELAY_HEADER + len;

	if (len == 0 || len > RELAY_DATA_MAX)
		return;
	while (r->cap - r->used < need) {
		size_t l = rec_len(r, r->head);

		r->head = (r->head + RELAY_HEADER + l) % r->cap;
		r->used -= RELAY_HEADER + l;
		r->head_off += l;
	}
	relay_put_header(h, type, (uint32_t)len, r->end_off);
	ring_put(r, (r->head + r->used) % r->cap, h, sizeof h);
	ring_put(r, (r->head + r->used + RELAY_HEADER) % r->cap, data, len);
	r->used += need;
	r->end_off += len;
}

/* The record holding byte c->off (which the ring still holds: head_off <=
 * off < end_off): its position into *pos, its first byte's offset into
 * *rec; returns its payload length. Starts from the cursor's hint while
 * that record is still held (records leave in order), else from the head. */
static size_t cursor_find(const struct relay_ring *r, const struct relay_cursor *c, size_t *pos, uint64_t *rec)
{
	size_t len;

	if (c->hint && c->rec_off >= r->head_off && c->rec_off <= c->off) {
		*pos = c->pos;
		*rec = c->rec_off;
	} else {
		*pos = r->head;
		*rec = r->head_off;
	}
	for (;;) {
		len = rec_len(r, *pos);
		if (c->off < *rec + len)
			return len;
		*pos = (*pos + RELAY_HEADER + len) % r->cap;
		*rec += len;
	}
}

void relay_cursor_init(struct relay_cursor *c, uint64_t off)
{
	memset(c, 0, sizeof *c);
	c->off = off;
}

size_t relay_ring_next(const struct relay_ring *r, struct relay_cursor *c, unsigned char *out)
{
	unsigned char h[RELAY_HEADER];
	size_t pos, len, skip, n;
	uint64_t rec;

	if (c->off < r->head_off) {
		relay_put_header(out, RELAY_LOST, 8, c->off);
		relay_put64(out + RELAY_HEADER, r->head_off - c->off);
		c->off = r->head_off;
		c->hint = 0;
		return RELAY_HEADER + 8;
	}
	if (c->off >= r->end_off)
		return 0;
	len = cursor_find(r, c, &pos, &rec);
	ring_get(r, pos, h, sizeof h);
	skip = (size_t)(c->off - rec);
	n = len - skip;
	relay_put_header(out, (enum relay_type)h[2], (uint32_t)n, c->off);
	ring_get(r, (pos + RELAY_HEADER + skip) % r->cap, out + RELAY_HEADER, n);
	c->off += n;
	c->pos = pos;
	c->rec_off = rec;
	c->hint = 1;
	return RELAY_HEADER + n;
}

size_t relay_ring_unsent(const struct relay_ring *r, struct relay_cursor *c)
{
	size_t pos;
	uint64_t rec;

	if (c->off >= r->end_off)
		return 0;
	if (c->off < r->head_off)
		return r->used;
	cursor_find(r, c, &pos, &rec);
	/* Remember where it is: the next call (and the next read) start there. */
	c->pos = pos;
	c->rec_off = rec;
	c->hint = 1;
	return r->used - (pos + r->cap - r->head) % r->cap;
}

size_t relay_exit_record(unsigned char *out, uint64_t end, uint32_t code, uint32_t sig)
{
	relay_put_header(out, RELAY_EXIT, 8, end);
	relay_put32(out + RELAY_HEADER, code);
	relay_put32(out + RELAY_HEADER + 4, sig);
	return RELAY_HEADER + 8;
}
