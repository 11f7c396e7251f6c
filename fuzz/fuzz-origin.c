/* fuzz-origin: origin_host_ok() and origin_origin_ok() (fcgi/origin.c), the
 * Host and Origin checks that keep DNS-rebinding pages out.
 *
 * Input: a flags byte (request over https, which public URL is configured),
 * two bytes of listening port, then the header value. Invariants: an
 * accepted value is made only of the characters a host name, a bracketed
 * address and a port use (plus the scheme's "://" for an Origin); anything
 * appended to an accepted value (".evil.example") is refused; the checks
 * ignore case; an accepted Origin's host part is an accepted Host; each
 * loopback name at the listening port is accepted, in both forms. */
#include "autoconfig.h"

#include <ctype.h>
#include <stdbool.h>

#include "base/config.h"
#include "base/util.h"
#include "fcgi/origin.h"
#include "fuzz/fuzz.h"

static const struct {
	const char *host;
	int port;
	bool https;
} publics[] = {
	{ "", 0, false },
	{ "anyon.example.com", 443, true },
	{ "anyon.example.com", 8443, true },
	{ "[2001:db8::1]", 80, false },
};

static bool host_chars(const char *v)
{
	return strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == strlen(v);
}

static char *with(const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 1);

	CHECK(s);
	strcpy(s, a);
	strcat(s, b);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char port[8], *value, *upper, *longer, buf[600];
	bool https, host_ok, origin_ok;
	unsigned int p;

	if (size < 3)
		return 0;
	https = data[0] & 1;
	g_config.public_host[0] = '\0';
	{
		size_t i = (data[0] >> 1) % (sizeof(publics) / sizeof(publics[0]));

		str_copy(g_config.public_host, sizeof(g_config.public_host), publics[i].host);
		g_config.public_port = publics[i].port;
		g_config.public_https = publics[i].https;
	}
	p = (unsigned int)data[1] << 8 | data[2];
	snprintf(port, sizeof(port), "%u", p);
	value = fuzz_strndup(data + 3, size - 3, 512);

	host_ok = origin_host_ok(value, port, https);
	origin_ok = origin_origin_ok(value, port, https);
	CHECK(!host_ok || host_chars(value));
	if (origin_ok) {
		const char *rest = strstr(value, "://");

		CHECK(rest && (strncasecmp(value, "http://", 7) == 0 || strncasecmp(value, "https://", 8) == 0));
		CHECK(host_chars(rest + 3));
		/* the Host a browser sends with that Origin */
		CHECK(origin_host_ok(rest + 3, port, https));
	}
	longer = with(value, ".evil.example");
	CHECK(!origin_host_ok(longer, port, https) && !origin_origin_ok(longer, port, https));
	free(longer);
	upper = with(value, "");
	for (char *c = upper; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	CHECK(origin_host_ok(upper, port, https) == host_ok);
	CHECK(origin_origin_ok(upper, port, https) == origin_ok);
	free(upper);

	CHECK(!origin_host_ok(NULL, port, https) && !origin_origin_ok(NULL, port, https));
	CHECK(!origin_host_ok("localhost", NULL, https));
	if (p >= 1) {
		for (size_t i = 0; config_loopback_hosts[i]; i++) {
			const char *h = config_loopback_hosts[i];
			bool dflt = p == (https ? 443u : 80u);

			snprintf(buf, sizeof(buf), "%s:%u", h, p);
			CHECK(origin_host_ok(buf, port, https));
			if (dflt)
				CHECK(origin_host_ok(h, port, https));
			snprintf(buf, sizeof(buf), dflt ? "%s://%s" : "%s://%s:%u", https ? "https" : "http", h, p);
			CHECK(origin_origin_ok(buf, port, https));
		}
	} else {
		CHECK(!origin_host_ok("localhost:0", port, https));
	}
	free(value);
	return 0;
}
