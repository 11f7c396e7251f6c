/* bundle.c - the secret bundle parser of anyon-entry (see bundle.h). */
#include "container/bundle.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char MAGIC[] = "anyon-secrets 1\n";

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int bundle_name_ok(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > BUNDLE_NAME_MAX)
		return 0;
	if (len == 1 && name[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
		if (c == '.' && i + 1 < len && name[i + 1] == '.')
			return 0;
	}
	return 1;
}

/* The line at buf[*pos..], without its '\n', at most max bytes: returns its
 * length and moves *pos past the '\n', or -1 when there is none in reach. */
static long take_line(const unsigned char *buf, size_t len, size_t *pos, size_t max)
{
	size_t i;

	for (i = *pos; i < len && i - *pos <= max; i++) {
		if (buf[i] == '\n') {
			long n = (long)(i - *pos);
			*pos = i + 1;
			return n;
		}
	}
	return -1;
}

/* Parses a decimal length: digits only, no leading zero, 1..BUNDLE_VALUE_MAX. */
static int parse_len(const unsigned char *s, size_t n, size_t *out)
{
	size_t i, v = 0;

	if (n == 0 || n > 6 || s[0] == '0')
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	if (v > BUNDLE_VALUE_MAX)
		return -1;
	*out = v;
	return 0;
}

static int parse(const unsigned char *buf, size_t len, struct bundle *b, char *err, size_t errlen)
{
	size_t pos = sizeof MAGIC - 1;

	memset(b, 0, sizeof *b);
	if (len == 0)
		return 0;
	if (len > BUNDLE_MAX_BYTES)
		return fail(err, errlen, "the bundle is larger than %d bytes", BUNDLE_MAX_BYTES);
	if (len < pos || memcmp(buf, MAGIC, pos) != 0)
		return fail(err, errlen, "the bundle does not start with \"anyon-secrets 1\"");
	for (;;) {
		const unsigned char *line = buf + pos, *sp;
		size_t vlen, i, nlen;
		long n = take_line(buf, len, &pos, 7 + BUNDLE_NAME_MAX + 1 + 6);
		struct bundle_secret *s;

		if (n < 0)
			return fail(err, errlen, "secret %zu: the bundle ends without \"end\", or a header line is too long",
				    b->n + 1);
		if (n == 3 && memcmp(line, "end", 3) == 0)
			break;
		if (n < 7 || memcmp(line, "secret ", 7) != 0)
			return fail(err, errlen, "secret %zu: expected \"secret NAME LENGTH\" or \"end\"", b->n + 1);
		sp = memchr(line + 7, ' ', (size_t)n - 7);
		if (!sp)
			return fail(err, errlen, "secret %zu: expected \"secret NAME LENGTH\"", b->n + 1);
		nlen = (size_t)(sp - (line + 7));
		if (!bundle_name_ok((const char *)line + 7, nlen))
			return fail(err, errlen, "secret %zu: the name must be 1-%d of A-Z a-z 0-9 . _ - without \"..\"",
				    b->n + 1, BUNDLE_NAME_MAX);
		if (parse_len(sp + 1, (size_t)(line + n - (sp + 1)), &vlen) < 0)
			return fail(err, errlen, "secret %zu: the length must be a number from 1 to %d",
				    b->n + 1, BUNDLE_VALUE_MAX);
		if (b->n == BUNDLE_MAX_SECRETS)
			return fail(err, errlen, "more than %d secrets", BUNDLE_MAX_SECRETS);
		if (len - pos < vlen + 1 || buf[pos + vlen] != '\n')
			return fail(err, errlen, "secret %zu: the value is shorter than its length, or lacks its newline",
				    b->n + 1);
		s = &b->secrets[b->n];
		memcpy(s->name, line + 7, nlen);
		s->name[nlen] = '\0';
		for (i = 0; i < b->n; i++)
			if (strcmp(b->secrets[i].name, s->name) == 0)
				return fail(err, errlen, "secret %zu: the name %s comes twice", b->n + 1, s->name);
		s->value = buf + pos;
		s->len = vlen;
		b->n++;
		pos += vlen + 1;
	}
	if (pos != len)
		return fail(err, errlen, "bytes after \"end\"");
	return 0;
}

int bundle_parse(const unsigned char *buf, size_t len, struct bundle *b, char *err, size_t errlen)
{
	if (parse(buf, len, b, err, errlen) == 0)
		return 0;
	b->n = 0;	/* a bundle that failed has no secrets to write */
	return -1;
}
