/* fuzz-query: http_query_value() (fcgi/http.c), which decodes one
 * parameter of a request's query string.
 *
 * Input: the output size in the first byte, then a parameter name, NUL, a
 * value (where byte 0x01 stands for NUL), NUL, a query string. Invariants: the answer is -1, 0 or 1; a
 * found value fits its buffer with room for the NUL and has no NUL inside;
 * "absent" means no '&'-separated field starts with "name="; and the round
 * trip: a value percent-encoded by curl into "name=VALUE&query" is found
 * again byte for byte when it fits and has no NUL, and refused when it has
 * a NUL or does not fit. */
#include "autoconfig.h"

#include <stdbool.h>

#include <curl/curl.h>

#include "fcgi/http.h"
#include "fuzz/fuzz.h"

/* Split data at NUL bytes into up to three NUL-terminated parts. */
static size_t part(const uint8_t **data, size_t *size, char **out)
{
	const uint8_t *nul = memchr(*data, '\0', *size);
	size_t n = nul ? (size_t)(nul - *data) : *size;

	*out = fuzz_strndup(*data, n, n);
	*data += nul ? n + 1 : n;
	*size -= nul ? n + 1 : n;
	return n;
}

static bool has_field(const char *query, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *p = query; p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		size_t len = strcspn(p, "&");

		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name, *value, *query, *out, *enc, *q;
	size_t outlen, vlen;
	int rc;

	if (size < 1)
		return 0;
	outlen = (size_t)data[0] + 1;
	data++;
	size--;
	part(&data, &size, &name);
	vlen = part(&data, &size, &value);
	for (size_t i = 0; i < vlen; i++)
		if (value[i] == '\x01')
			value[i] = '\0';
	part(&data, &size, &query);
	out = malloc(outlen);
	CHECK(out);

	if (name[0] != '\0') {
		memset(out, 'x', outlen);
		rc = http_query_value(query, name, out, outlen);
		CHECK(rc >= -1 && rc <= 1);
		if (rc == 1)
			CHECK(memchr(out, '\0', outlen));
		CHECK((rc != 0) == has_field(query, name));
	}

	/* The round trip: only names a form would produce. */
	if (name[0] && !strpbrk(name, "&=")) {
		enc = curl_easy_escape(NULL, value, (int)vlen);
		CHECK(enc);
		q = malloc(strlen(name) + strlen(enc) + strlen(query) + 3);
		CHECK(q);
		sprintf(q, "%s=%s&%s", name, enc, query);
		rc = http_query_value(q, name, out, outlen);
		if (strlen(value) == vlen && vlen < outlen)
			CHECK(rc == 1 && strcmp(out, value) == 0);
		else
			CHECK(rc == -1);
		free(q);
		curl_free(enc);
	}
	free(out);
	free(name);
	free(value);
	free(query);
	return 0;
}
