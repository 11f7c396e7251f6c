/* fuzz-cookie: http_cookie_values() (fcgi/http.c), which finds the session
 * cookie's values (tokens, or anonymous cookies) in a Cookie header.
 *
 * Input: the first byte picks the cookie name (bit 0: plain or __Host-),
 * the most values wanted (bits 1-2) and their shape (bit 3: a session token
 * or an anonymous cookie); the rest is the header. Invariants: at most max
 * values, each of the asked length and prefix without ';', ' ' or NUL, found
 * in the header right after "name=" at the start of a cookie, in header
 * order; asking for fewer gives a prefix of the same answer; and a token
 * put in front of the header as "name=TOKEN; " comes back first. */
#include "autoconfig.h"

#include "fcgi/http.h"
#include "fcgi/session.h"
#include "fuzz/fuzz.h"

#define MAXT 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tokens[MAXT][SESSION_COOKIE_MAX + 1], fewer[MAXT][SESSION_COOKIE_MAX + 1];
	char want[SESSION_COOKIE_MAX + 1], *header, *joined;
	const char *name, *from, *prefix;
	size_t nlen, len, plen;
	int max, n, m;

	if (size < 1)
		return 0;
	name = data[0] & 1 ? SESSION_COOKIE_HTTPS : SESSION_COOKIE;
	nlen = strlen(name);
	max = 1 + (data[0] >> 1) % MAXT;
	/* a session token, or the anonymous cookie's shape */
	if (data[0] & 8) {
		len = ANON_COOKIE_LEN;
		prefix = "a.";
	} else {
		len = SESSION_TOKEN_HEX;
		prefix = "";
	}
	plen = strlen(prefix);
	header = fuzz_strndup(data + 1, size - 1, 8192);

	memset(tokens, 'x', sizeof(tokens));
	n = http_cookie_values(header, name, len, prefix, tokens, max);
	CHECK(n >= 0 && n <= max);
	from = header;
	for (int i = 0; i < n; i++) {
		const char *at;

		CHECK(strlen(tokens[i]) == len);
		CHECK(strcspn(tokens[i], "; ") == len);
		CHECK(strncmp(tokens[i], prefix, plen) == 0);
		/* the next "name=VALUE" that starts a cookie */
		for (at = strstr(from, name); at; at = strstr(at + 1, name))
			if ((at == header || at[-1] == ' ' || at[-1] == ';') && at[nlen] == '=' &&
			    strncmp(at + nlen + 1, tokens[i], len) == 0)
				break;
		CHECK(at);
		from = at + 1;
	}
	CHECK(http_cookie_values(NULL, name, len, prefix, tokens, max) == 0);
	CHECK(http_cookie_values(header, name, SESSION_COOKIE_MAX + 1, "", tokens, max) == 0);

	m = http_cookie_values(header, name, len, prefix, fewer, 1);
	CHECK(m == (n > 0));
	if (m)
		CHECK(strcmp(fewer[0], tokens[0]) == 0);

	/* The round trip: a value made of the prefix and the input's bytes as hex. */
	memcpy(want, prefix, plen);
	for (size_t i = plen; i < len; i++)
		want[i] = "0123456789abcdef"[(i < size ? data[i] : i) & 15];
	want[len] = '\0';
	joined = malloc(strlen(header) + nlen + len + 4);
	CHECK(joined);
	sprintf(joined, "%s=%s; %s", name, want, header);
	CHECK(http_cookie_values(joined, name, len, prefix, fewer, MAXT) >= 1);
	CHECK(strcmp(fewer[0], want) == 0);
	free(joined);
	free(header);
	return 0;
}
