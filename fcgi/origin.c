#include "autoconfig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/util.h"
#include "fcgi/origin.h"

/* One site: scheme, host and port, as they appear in a URL. */
struct site {
	bool https;
	const char *host;       /* "localhost", "[::1]", ... */
	int port;
};

static int default_port(bool https)
{
	return https ? 443 : 80;
}

/* host is the Host header for s: "name:port", or "name" at the scheme's
 * default port. */
static bool site_has_host(const struct site *s, const char *host)
{
	char want[300];

	if (s->port == default_port(s->https) && strcasecmp(host, s->host) == 0)
		return true;
	snprintf(want, sizeof(want), "%s:%d", s->host, s->port);
	return strcasecmp(host, want) == 0;
}

/* origin is s's serialized origin, as browsers send it: the port only when
 * it is not the scheme's default. */
static bool site_has_origin(const struct site *s, const char *origin)
{
	char want[300];

	if (s->port == default_port(s->https))
		snprintf(want, sizeof(want), "%s://%s", s->https ? "https" : "http", s->host);
	else
		snprintf(want, sizeof(want), "%s://%s:%d", s->https ? "https" : "http", s->host, s->port);
	return strcasecmp(origin, want) == 0;
}

/* True when match() holds for one accepted site: the public URL's, or a
 * loopback name at the scheme and listening port (server_port, the
 * SERVER_PORT param) the request came in by. */
static bool any_site(const char *server_port, bool https,
		     bool (*match)(const struct site *, const char *), const char *value)
{
	int64_t p;

	if (!value)
		return false;
	if (g_config.public_host[0]) {
		struct site pub = { g_config.public_https, g_config.public_host, g_config.public_port };

		if (match(&pub, value))
			return true;
	}
	if (!server_port || parse_i64(server_port, 1, 65535, &p))
		return false;
	for (size_t i = 0; config_loopback_hosts[i]; i++) {
		struct site lo = { https, config_loopback_hosts[i], (int)p };

		if (match(&lo, value))
			return true;
	}
	return false;
}

bool origin_host_ok(const char *host, const char *server_port, bool https)
{
	return any_site(server_port, https, site_has_host, host);
}

bool origin_origin_ok(const char *origin, const char *server_port, bool https)
{
	return any_site(server_port, https, site_has_origin, origin);
}

int origin_check_host(struct req *r)
{
	const char *host = http_param(r, "HTTP_HOST");

	if (origin_host_ok(host, http_param(r, "SERVER_PORT"), r->https))
		return 0;
	reply_error(r, 421, "misdirected_request",
		    "this server does not answer for that host name; see ANYON_PUBLIC_URL");
	return -1;
}

int origin_check_write(struct req *r)
{
	const char *origin = http_param(r, "HTTP_ORIGIN");
	const char *fetch_site = http_param(r, "HTTP_SEC_FETCH_SITE");

	if (origin) {
		if (origin_origin_ok(origin, http_param(r, "SERVER_PORT"), r->https))
			return 0;
	} else if (!fetch_site || strcmp(fetch_site, "same-origin") == 0 || strcmp(fetch_site, "none") == 0) {
		return 0;
	}
	reply_error(r, 403, "bad_origin", "writes are accepted only from this site's own pages");
	return -1;
}
