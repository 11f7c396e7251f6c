/* fuzz-router: route_match() (fcgi/router.c) over the API's own route table
 * (fcgi/routes.c), with the method and path of the input.
 *
 * Invariants: a found route has the request's method and is the first in
 * the table that matches; its captures are non-empty, bounded and made of
 * the allowed characters, route_param() returns each, and putting them
 * back into the pattern gives the path again. A 405's Allow header lists
 * only methods that the path answers, never the request's own. A 404's
 * path is answered by no method of the table. */
#include "autoconfig.h"

#include <stdbool.h>

#include "fcgi/router.h"
#include "fuzz/fuzz.h"

static const char *const methods[] = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "get" };

static bool seg_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= ROUTE_PARAM_MAX)
		return false;
	return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-") == n;
}

/* The pattern with each {name} replaced by its capture. */
static void fill(const char *pat, const struct route_params *p, char *out, size_t outlen)
{
	size_t o = 0;

	while (*pat) {
		if (*pat == '{') {
			const char *close = strchr(pat, '}');
			char name[64];
			const char *v;
			size_t nl;

			CHECK(close && (size_t)(close - pat - 1) < sizeof(name));
			nl = (size_t)(close - pat - 1);
			memcpy(name, pat + 1, nl);
			name[nl] = '\0';
			v = route_param(p, name);
			CHECK(v && seg_ok(v));
			CHECK(o + strlen(v) < outlen);
			memcpy(out + o, v, strlen(v));
			o += strlen(v);
			pat = close + 1;
		} else {
			CHECK(o + 1 < outlen);
			out[o++] = *pat++;
		}
	}
	out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct route *table, *found = NULL, *again = NULL;
	struct route_params params, params2;
	char allow[64], allow2[64], *path, method[16], rebuilt[2048];
	enum route_result rr;
	bool cloud = true;
	size_t n;

	if (size < 1)
		return 0;
	table = routes_table(&n);
	CHECK(table && n > 0);
	if (data[0] < 0xf0) {
		cloud = data[0] & 0x80;   /* the mode: local hides cloud-only routes */
		snprintf(method, sizeof(method), "%s", methods[data[0] % (sizeof(methods) / sizeof(methods[0]))]);
		data++;
		size--;
	} else {
		/* a method of the input's own, up to the first '/' */
		size_t m = 1;

		while (m < size && m < sizeof(method) && data[m] != '/')
			m++;
		memcpy(method, data + 1, m - 1);
		method[m - 1] = '\0';
		data += m;
		size -= m;
	}
	path = fuzz_strndup(data, size, 1500);

	memset(allow, 'x', sizeof(allow));
	rr = route_match(table, n, cloud, method, path, &found, &params, allow, sizeof(allow));
	CHECK(memchr(allow, '\0', sizeof(allow)));
	switch (rr) {
	case ROUTE_FOUND:
		CHECK(found >= table && found < table + n);
		CHECK(strcmp(found->method, method) == 0);
		CHECK(cloud || found->mode != MODE_CLOUD);
		CHECK(!cloud || found->mode != MODE_LOCAL);
		CHECK(params.n >= 0 && params.n <= ROUTE_MAX_PARAMS);
		fill(found->pattern, &params, rebuilt, sizeof(rebuilt));
		CHECK(strcmp(rebuilt, path) == 0);
		/* the first match: no earlier route takes the request */
		if (found > table)
			CHECK(route_match(table, (size_t)(found - table), cloud, method, path, &again, &params2,
					  allow2, sizeof(allow2)) != ROUTE_FOUND);
		break;
	case ROUTE_METHOD_NOT_ALLOWED: {
		char *save = NULL, *m;

		CHECK(allow[0] != '\0');
		for (m = strtok_r(allow, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
			CHECK(strcmp(m, method) != 0);
			CHECK(route_match(table, n, cloud, m, path, &again, &params2, allow2, sizeof(allow2)) ==
			      ROUTE_FOUND);
		}
		break;
	}
	case ROUTE_NOT_FOUND:
		CHECK(allow[0] == '\0');
		for (size_t i = 0; i < n; i++)
			CHECK(route_match(table, n, cloud, table[i].method, path, &again, &params2, allow2,
					  sizeof(allow2)) == ROUTE_NOT_FOUND);
		break;
	default:
		CHECK(!"unknown route_result");
	}
	free(path);
	return 0;
}
