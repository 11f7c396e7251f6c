/* fuzz-cookie: http_cookie_tokens() (fcgi/http.c), which finds the session
 * cookie's tokens in a Cookie header for session_load().
 *
 * Input: the first byte picks the cookie name (plain or __Host-) and the
 * most tokens wanted; the rest is the header. Invariants: at most max
 * tokens, each SESSION_TOKEN_HEX bytes without ';', ' ' or NUL, each found
 * in the header right after "name=" at the start of a cookie, in header
 * order; asking for fewer gives a prefix of the same answer; and a token
 * put in front of the header as "name=TOKEN; " comes back first. */
#include "autoconfig.h"

#include "fcgi/http.h"
#include "fuzz/fuzz.h"

#define MAXT 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tokens[MAXT][SESSION_TOKEN_HEX + 1], fewer[MAXT][SESSION_TOKEN_HEX + 1];
	char want[SESSION_TOKEN_HEX + 1], *header, *joined;
	const char *name, *from;
	size_t nlen;
	int max, n, m;

	if (size < 1)
		return 0;
	name = data[0] & 1 ? SESSION_COOKIE_HTTPS : SESSION_COOKIE;
	nlen = strlen(name);
	max = 1 + (data[0] >> 1) % MAXT;
	header = fuzz_strndup(data + 1, size - 1, 8192);

	memset(tokens, 'x', sizeof(tokens));
	n = http_cookie_tokens(header, name, tokens, max);
	CHECK(n >= 0 && n <= max);
	from = header;
	for (int i = 0; i < n; i++) {
		const char *at;

		CHECK(strlen(tokens[i]) == SESSION_TOKEN_HEX);
		CHECK(strcspn(tokens[i], "; ") == SESSION_TOKEN_HEX);
		/* the next "name=TOKEN" that starts a cookie */
		for (at = strstr(from, name); at; at = strstr(at + 1, name))
			if ((at == header || at[-1] == ' ' || at[-1] == ';') && at[nlen] == '=' &&
			    strncmp(at + nlen + 1, tokens[i], SESSION_TOKEN_HEX) == 0)
				break;
		CHECK(at);
		from = at + 1;
	}
	CHECK(http_cookie_tokens(NULL, name, tokens, max) == 0);

	m = http_cookie_tokens(header, name, fewer, 1);
	CHECK(m == (n > 0));
	if (m)
		CHECK(strcmp(fewer[0], tokens[0]) == 0);

	/* The round trip: a token made of the input's bytes as hex. */
	for (size_t i = 0; i < SESSION_TOKEN_HEX; i++)
		want[i] = "0123456789abcdef"[(i < size ? data[i] : i) & 15];
	want[SESSION_TOKEN_HEX] = '\0';
	joined = malloc(strlen(header) + nlen + SESSION_TOKEN_HEX + 4);
	CHECK(joined);
	sprintf(joined, "%s=%s; %s", name, want, header);
	CHECK(http_cookie_tokens(joined, name, fewer, MAXT) >= 1);
	CHECK(strcmp(fewer[0], want) == 0);
	free(joined);
	free(header);
	return 0;
}
