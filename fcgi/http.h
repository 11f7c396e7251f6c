/* http.h - one request's context and the only code that writes responses.
 *
 * A struct req lives for one request. Everything read from FastCGI params
 * is copied into it (libfcgi frees params at the next accept); http_reset()
 * frees what the request owned. Handlers finish by calling exactly one of
 * reply_json() or reply_error(); the dispatcher answers 500 if none did.
 */
#ifndef ANYON_HTTP_H
#define ANYON_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "services/secrets.h"
#include "db/db.h"
#include "fcgi/router.h"

#define SESSION_TOKEN_BYTES 32
#define SESSION_TOKEN_HEX (2 * SESSION_TOKEN_BYTES)
/* The session cookie's name over plain HTTP, and over HTTPS, where the
 * __Host- prefix makes the browser insist on Secure, Path=/ and no Domain:
 * no sibling domain can set it. Each scheme reads only its own name. */
#define SESSION_COOKIE "anyon_session"
#define SESSION_COOKIE_HTTPS "__Host-anyon_session"
/* The longest value the session cookie carries: a session token
 * (SESSION_TOKEN_HEX) or a signed anonymous value (fcgi/session.h). */
#define SESSION_COOKIE_MAX 96

struct req {
	FCGX_Request *fx;               /* borrowed from the accept loop */
	struct db *db;                  /* this process's connection, borrowed */
	struct secret_store *secrets;   /* this process's store, borrowed */
	const struct route *route;
	struct route_params params;

	char method[8];
	char path[1024];
	char *query;                    /* owned copy of QUERY_STRING */
	char remote_addr[64];
	bool https;
	int64_t gh_deadline_ms;         /* monotonic time by which every GitHub call
					 * made for this request must be over */
	int64_t content_length;         /* -1 when absent */
	char *body;                     /* owned, NUL-terminated, body_len bytes */
	size_t body_len;
	json_object *json;              /* owned: the parsed body, if any */

	/* session state, filled by session_load() */
	bool has_session;
	struct db_session session;
	bool anon;                      /* no session: token holds a valid anonymous value */
	char token[SESSION_COOKIE_MAX + 1];  /* the raw cookie value; wiped by http_reset() */
	bool set_cookie;                /* send token in Set-Cookie */
	bool clear_cookie;              /* expire the cookie */
	bool has_user;
	struct db_user user;
	struct db_prefetch pf;          /* the route's reads done with the session's */

	/* response state */
	bool responded;
	int status;
	char allow[64];                 /* Allow header for 405 */
	int retry_after;                /* Retry-After header when > 0 */
	char etag[64];                  /* ETag header when set (quoted); the
					 * answer is then Cache-Control: no-cache
					 * instead of no-store */
	char *cache_key;                /* owned: the answer may be kept under it
					 * (fcgi/cache.c); NULL otherwise */
	size_t cache_key_len;
};

/* The session cookie's name for r's scheme. */
static inline const char *http_session_cookie(const struct req *r)
{
	return r->https ? SESSION_COOKIE_HTTPS : SESSION_COOKIE;
}

/* Fills r from the FastCGI params of fx. Returns 0, or -1 when the request
 * line itself is unusable (then an error reply was sent). */
int http_read_request(struct req *r, FCGX_Request *fx, struct secret_store *st);

/* Reads exactly content_length bytes of body into r->body. Returns 0, or -1
 * after replying 400/413. */
int http_read_body(struct req *r, int64_t limit);

/* Parses r->body as a JSON object into r->json. Returns 0, or -1 after
 * replying 400 invalid_json. */
int http_parse_json_object(struct req *r);

/* Reads away what the handler left unread of the request's body (up to
 * 8 MiB and a little: the kept connection then carries the next request),
 * frees what r owns and wipes the session token, the strings of the parsed
 * body, libfcgi's copies of the request (http_wipe_input()) and, when the
 * response set the session cookie, libfcgi's output buffer
 * (http_wipe_output()). */
void http_reset(struct req *r);

/* Value of a request header (CGI name, e.g. "HTTP_X_CSRF_TOKEN"), borrowed
 * until the next accept, or NULL. */
const char *http_param(struct req *r, const char *name);

/* Decoded value of query parameter name into out. Returns 1 when present,
 * 0 when absent, -1 when present but too long or badly encoded. */
int http_query(struct req *r, const char *name, char *out, size_t outlen);

/* http_query() over a raw query string (pure: for the fuzzers). */
int http_query_value(const char *query, const char *name, char *out, size_t outlen);

/* The values of cookie name in a Cookie header (may be NULL) that are len
 * bytes up to the next ';', ' ' or the end and start with prefix, in order,
 * at most max, copied into out. There can be several: a sibling domain may
 * toss in a cookie of the same name, which the browser sends too. The
 * copies are secrets: the caller wipes out. Returns how many (0 when len
 * exceeds SESSION_COOKIE_MAX). */
int http_cookie_values(const char *header, const char *name, size_t len, const char *prefix,
		       char out[][SESSION_COOKIE_MAX + 1], int max);

/* Wipes what libfcgi holds of the request and frees without wiping: its
 * input buffer (the begin record, the params, the body) and its copy of
 * the Cookie header. Call once the request is read, before FCGX_Finish_r().
 * Returns 0 when the whole input buffer was wiped, -1 when libfcgi's layout
 * was not the one known and only the last fragment read was. */
int http_wipe_input(FCGX_Request *fx);

/* Sends what the response holds so far and wipes libfcgi's output buffer:
 * for a response that carried the session token (Set-Cookie). */
void http_wipe_output(FCGX_Request *fx);

/* Integer query parameter in [min, max], def when absent. Returns 0, or -1
 * (nothing replied: for a route's prefetch plan, whose handler parses
 * again and answers). */
int http_query_i64_quiet(struct req *r, const char *name, int64_t min, int64_t max, int64_t def,
			 int64_t *out);

/* Integer query parameter in [min, max], def when absent. Returns 0, or -1
 * after replying 400 invalid_parameter. */
int http_query_i64(struct req *r, const char *name, int64_t min, int64_t max,
		   int64_t def, int64_t *out);

/* Integer path capture (e.g. {id}) >= 1. Returns 0, or -1 after replying 404. */
int http_path_id(struct req *r, const char *name, int64_t *out);

/* Sends status and body. Takes the reference to body (may be NULL for an
 * empty object). */
void reply_json(struct req *r, int status, json_object *body);

/* Sends 304 Not Modified with r->etag and no body. */
void reply_not_modified(struct req *r);

/* Whether an If-None-Match header value lists etag (weak comparison: a
 * W/ prefix is ignored; "*" matches). etag is quoted. Pure. */
bool http_etag_matches(const char *if_none_match, const char *etag);

/* Sends {"error":{"code":code,"message":...}}. */
void reply_error(struct req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with "field": the request field (body or query) at fault. */
void reply_error_field(struct req *r, int status, const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
