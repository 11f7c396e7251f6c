/* relay.c - parser of anyon-entry's relay records (services/relay.h). */
#include "services/relay.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 2, 3)))
static int fail(struct relay_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof p->err, fmt, ap);
	va_end(ap);
	p->failed = 1;
	return -1;
}

void relay_parser_init(struct relay_parser *p, uint64_t start, const struct relay_callbacks *cb, void *ctx)
{
	memset(p, 0, sizeof *p);
	p->cb = *cb;
	p->ctx = ctx;
	p->next = start;
}

const char *relay_parser_error(const struct relay_parser *p)
{
	return p->err;
}

uint64_t relay_parser_offset(const struct relay_parser *p)
{
	return p->next;
}

int relay_parser_ended(const struct relay_parser *p)
{
	return p->ended;
}

int relay_parser_at_boundary(const struct relay_parser *p)
{
	return p->hlen == 0 && p->type == 0;
}

/* Checks a complete header; sets type and left. */
static int header(struct relay_parser *p)
{
	const unsigned char *h = p->hdr;
	uint32_t len = relay_get32(h + 4);
	uint64_t off = relay_get64(h + 8);
	int type = h[2];

	if (h[0] != RELAY_MAGIC)
		return fail(p, "relay: not a record (bad magic byte 0x%02x)", h[0]);
	if (h[1] != RELAY_VERSION)
		return fail(p, "relay: record version %u, this worker reads %d", h[1], RELAY_VERSION);
	if (h[3] != 0)
		return fail(p, "relay: reserved byte set");
	switch (type) {
	case RELAY_STDOUT:
	case RELAY_STDERR:
	case RELAY_SYSTEM:
		if (len == 0 || len > RELAY_DATA_MAX)
			return fail(p, "relay: data record of %lu bytes (1..%d)", (unsigned long)len, RELAY_DATA_MAX);
		break;
	case RELAY_LOST:
	case RELAY_EXIT:
		if (len != 8)
			return fail(p, "relay: %s record of %lu bytes (8)", type == RELAY_LOST ? "lost" : "exit",
				    (unsigned long)len);
		break;
	default:
		return fail(p, "relay: unknown record type %d", type);
	}
	if (off != p->next)
		return fail(p, "relay: record at offset %llu, expected %llu", (unsigned long long)off,
			    (unsigned long long)p->next);
	if (type <= RELAY_SYSTEM && (uint64_t)len > RELAY_OFFSET_MAX - off)
		return fail(p, "relay: offset out of range");
	p->type = type;
	p->left = len;
	p->slen = 0;
	return 0;
}

/* The payload of a lost or exit record is complete. */
static int small_record(struct relay_parser *p)
{
	if (p->type == RELAY_LOST) {
		uint64_t count = relay_get64(p->small);

		if (count == 0 || count > RELAY_OFFSET_MAX - p->next)
			return fail(p, "relay: lost count %llu out of range", (unsigned long long)count);
		if (p->cb.lost && p->cb.lost(p->ctx, p->next, count))
			return fail(p, "relay: stopped by the lost callback");
		p->next += count;
	} else {
		uint32_t code = relay_get32(p->small), sig = relay_get32(p->small + 4);

		if (code > 255 || sig > 128 || (code != 0 && sig != 0))
			return fail(p, "relay: exit code %lu signal %lu out of range", (unsigned long)code,
				    (unsigned long)sig);
		p->ended = 1;
		if (p->cb.exit && p->cb.exit(p->ctx, p->next, (int)code, (int)sig))
			return fail(p, "relay: stopped by the exit callback");
	}
	return 0;
}

int relay_parser_feed(struct relay_parser *p, const void *buf, size_t len)
{
	const unsigned char *b = buf;

	if (p->failed)
		return -1;
	while (len > 0) {
		if (p->ended)
			return fail(p, "relay: %zu bytes after the exit record", len);
		if (p->type == 0) {
			size_t k = RELAY_HEADER - p->hlen < len ? RELAY_HEADER - p->hlen : len;

			memcpy(p->hdr + p->hlen, b, k);
			p->hlen += k;
			b += k;
			len -= k;
			if (p->hlen < RELAY_HEADER)
				break;
			p->hlen = 0;
			if (header(p) < 0)
				return -1;
			continue;
		}
		if (p->type == RELAY_LOST || p->type == RELAY_EXIT) {
			size_t k = 8 - p->slen < len ? 8 - p->slen : len;

			memcpy(p->small + p->slen, b, k);
			p->slen += k;
			b += k;
			len -= k;
			if (p->slen < 8)
				break;
			if (small_record(p) < 0)
				return -1;
			p->type = 0;
			continue;
		}
		{
			size_t k = p->left < len ? (size_t)p->left : len;

			if (p->cb.data && p->cb.data(p->ctx, (enum relay_type)p->type, p->next, b, k))
				return fail(p, "relay: stopped by the data callback");
			p->next += k;
			p->left -= k;
			b += k;
			len -= k;
			if (p->left == 0)
				p->type = 0;
		}
	}
	return 0;
}
