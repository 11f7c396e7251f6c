/* origin.h - which sites may talk to the API: the Host a request names and
 * the Origin (or Sec-Fetch-Site) of a write.
 *
 * The accepted sites are ANYON_PUBLIC_URL's origin and the loopback names
 * (config_loopback_hosts) at the port nginx took the request on
 * (SERVER_PORT). A page on any other host name, a DNS-rebinding name that
 * resolves to this machine included, gets neither a session nor a write. */
#ifndef ANYON_ORIGIN_H
#define ANYON_ORIGIN_H

#include "fcgi/http.h"

/* The pure checks under the two below: host (a Host header) or origin (an
 * Origin header) names an accepted site, for a request that came in on
 * server_port (SERVER_PORT) over https or not. NULL values are refused. */
bool origin_host_ok(const char *host, const char *server_port, bool https);
bool origin_origin_ok(const char *origin, const char *server_port, bool https);

/* The Host header names an accepted site. Returns 0, or -1 after replying
 * 421 misdirected_request. */
int origin_check_host(struct req *r);

/* A write comes from an accepted site: Origin, when sent, must be one of
 * them; without Origin, Sec-Fetch-Site, when sent, must be same-origin or
 * none; with neither (curl, scripts) the CSRF token alone decides. Returns
 * 0, or -1 after replying 403 bad_origin. */
int origin_check_write(struct req *r);

#endif
