/* bundle.h - the secret bundle anyon-entry reads from its stdin.
 *
 * The format (bytes, no encoding; docs in container/README.md):
 *
 *     anyon-secrets 1\n
 *     secret NAME LENGTH\n
 *     <LENGTH bytes of value>\n
 *     ... (more secrets)
 *     end\n
 *
 * and nothing after `end`. An empty input is a bundle with no secrets.
 * NAME: 1..BUNDLE_NAME_MAX bytes of [A-Za-z0-9._-], not containing "..",
 * not "." (so never a path). LENGTH: decimal, no sign, no leading zero,
 * 1..BUNDLE_VALUE_MAX. At most BUNDLE_MAX_SECRETS secrets, names unique,
 * BUNDLE_MAX_BYTES in all.
 *
 * The parser keeps no copy: each value points into the caller's buffer. It
 * validates everything before the caller writes anything.
 */
#ifndef ANYON_BUNDLE_H
#define ANYON_BUNDLE_H

#include <stddef.h>

#define BUNDLE_MAX_BYTES (1024 * 1024)
#define BUNDLE_MAX_SECRETS 32
#define BUNDLE_NAME_MAX 64
#define BUNDLE_VALUE_MAX 65536

struct bundle_secret {
	char name[BUNDLE_NAME_MAX + 1];	/* validated, NUL-terminated */
	const unsigned char *value;	/* into the parsed buffer, not NUL-terminated */
	size_t len;			/* bytes of value */
};

struct bundle {
	struct bundle_secret secrets[BUNDLE_MAX_SECRETS];	/* in input order */
	size_t n;						/* how many */
};

/* Whether name[0..len) is an acceptable secret file name. */
int bundle_name_ok(const char *name, size_t len);

/* Parses buf[0..len) into *b. Returns 0, or -1 with a message in err (which
 * names no value; an invalid name is not echoed either). */
int bundle_parse(const unsigned char *buf, size_t len, struct bundle *b, char *err, size_t errlen);

#endif
