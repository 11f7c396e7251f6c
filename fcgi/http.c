#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "fcgi/cache.h"
#include "fcgi/conns.h"
#include "fcgi/http.h"
#include "services/github.h"

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" }, { 409, "Conflict" },
	{ 410, "Gone" }, { 413, "Payload Too Large" }, { 415, "Unsupported Media Type" },
	{ 421, "Misdirected Request" },
	{ 422, "Unprocessable Entity" }, { 429, "Too Many Requests" },
	{ 500, "Internal Server Error" }, { 502, "Bad Gateway" },
	{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
};

static const char *reason_phrase(int status)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

const char *http_param(struct req *r, const char *name)
{
	return FCGX_GetParam(name, r->fx->envp);
}

int http_read_request(struct req *r, FCGX_Request *fx, struct secret_store *st)
{
	const char *method, *uri, *qs, *addr, *https, *clen;
	size_t plen;

	memset(r, 0, sizeof(*r));
	r->fx = fx;
	r->db = st->db;
	r->secrets = st;
	r->content_length = -1;
	r->gh_deadline_ms = mono_ms() + g_config.github_deadline_ms;

	method = http_param(r, "REQUEST_METHOD");
	uri = http_param(r, "REQUEST_URI");
	qs = http_param(r, "QUERY_STRING");
	addr = http_param(r, "REMOTE_ADDR");
	https = http_param(r, "HTTPS");
	clen = http_param(r, "CONTENT_LENGTH");

	str_copy(r->remote_addr, sizeof(r->remote_addr), addr ? addr : "");
	r->https = https && *https && strcmp(https, "off") != 0;
	/* Local mode has one user, signed in by being on this machine: a peer
	 * that is not loopback is refused whatever nginx was told to let
	 * through (a site listening on every address, a proxy in front). */
	if (!g_config.cloud && !config_addr_is_loopback(r->remote_addr)) {
		/* Logged the 1st, 2nd, 4th, 8th... time in this process: a flood
		 * from afar cannot fill the journal. */
		static unsigned long refused;

		refused++;
		if ((refused & (refused - 1)) == 0)
			log_warn("refused a request from %s: local mode serves loopback clients only "
				 "(%lu refused by this process)", r->remote_addr[0] ? r->remote_addr :
				 "an unknown address", refused);
		reply_error(r, 403, "local_only", "this anyon runs in local mode and answers this machine "
			    "only (loopback clients); a shared server needs ANYON_CLOUD=1");
		return -1;
	}
	if (!method || !str_copy(r->method, sizeof(r->method), method)) {
		reply_error(r, 400, "bad_request", "unsupported request method");
		return -1;
	}
	if (!uri || uri[0] != '/') {
		reply_error(r, 400, "bad_request", "missing request path");
		return -1;
	}
	plen = strcspn(uri, "?#");
	if (plen >= sizeof(r->path)) {
		reply_error(r, 404, "not_found", "no such path");
		return -1;
	}
	memcpy(r->path, uri, plen);
	r->path[plen] = '\0';
	r->query = strdup(qs ? qs : "");
	if (!r->query) {
		reply_error(r, 500, "internal", "out of memory");
		return -1;
	}
	if (clen && *clen && parse_i64(clen, 0, INT64_MAX, &r->content_length)) {
		reply_error(r, 400, "bad_request", "bad Content-Length");
		return -1;
	}
	return 0;
}

int http_read_body(struct req *r, int64_t limit)
{
	size_t want, got = 0;

	if (r->content_length <= 0)
		return 0;
	if (r->content_length > limit) {
		reply_error(r, 413, "body_too_large",
			    "request body is larger than %lld bytes", (long long)limit);
		return -1;
	}
	want = (size_t)r->content_length;
	r->body = malloc(want + 1);
	if (!r->body) {
		reply_error(r, 500, "internal", "out of memory");
		return -1;
	}
	while (got < want) {
		int n = FCGX_GetStr(r->body + got, (int)(want - got), r->fx->in);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != want) {
		reply_error(r, 400, "bad_request", "request body ended early");
		return -1;
	}
	r->body[got] = '\0';
	r->body_len = got;
	return 0;
}

int http_parse_json_object(struct req *r)
{
	char err[128];

	if (json_parse(r->body ? r->body : "", r->body_len, &r->json, err, sizeof(err))) {
		reply_error(r, 400, "invalid_json", "request body is not valid JSON: %s", err);
		return -1;
	}
	if (!json_object_is_type(r->json, json_type_object)) {
		reply_error(r, 400, "invalid_json", "request body must be a JSON object");
		return -1;
	}
	return 0;
}

void http_wipe_output(FCGX_Request *fx)
{
	FCGX_Stream *out = fx->out;

	/* After a flush, everything from the write position to the end of
	 * the buffer is what was sent: wipe it (public pointers only). */
	if (out && !out->isReader && FCGX_FFlush(out) == 0 && out->wrNext && out->wrNext <= out->stop)
		OPENSSL_cleanse(out->wrNext, (size_t)(out->stop - out->wrNext));
}

/* The most of a request's unread body read away after its answer: nginx's
 * client_max_body_size in the shipped config (8m), and a little for the
 * records around it. */
#define DRAIN_MAX (8 * 1024 * 1024 + 64 * 1024)

/* Reads what the handler left of the request's body, up to its end record,
 * so the kept connection holds nothing of this request when the next one
 * comes (fcgi/conns.c closes one that still does, and with keep-alive nginx
 * may have put a POST on it before it sees the close: a 503). A handler
 * that refused the request before its body (401, 403, 413) leaves all of
 * it. nginx has the whole body before it sends any (request buffering), so
 * this waits on nothing but the copy. The bytes may be a secret's: wiped,
 * here and (after) in libfcgi's buffer by http_wipe_input(). */
static void drain_input(FCGX_Request *fx)
{
	char b[8192];
	size_t total = 0;
	int k;

	if (!fx->in || fx->in->isClosed)
		return;
	while (total <= DRAIN_MAX && (k = FCGX_GetStr(b, (int)sizeof(b), fx->in)) > 0)
		total += (size_t)k;
	OPENSSL_cleanse(b, sizeof(b));
}

void http_reset(struct req *r)
{
	gh_slot_release();   /* the request's GitHub slot, if it took one */
	free(r->query);
	if (r->body) {
		/* Bodies may carry secrets (pasted codes, tokens). */
		OPENSSL_cleanse(r->body, r->body_len);
		free(r->body);
	}
	/* json-c frees its strings without wiping them. */
	json_wipe_strings(r->json);
	json_object_put(r->json);
	if (r->fx) {
		drain_input(r->fx);
		http_wipe_input(r->fx);
		/* a Set-Cookie with the session token */
		if (r->set_cookie && r->responded)
			http_wipe_output(r->fx);
	}
	OPENSSL_cleanse(r->token, sizeof(r->token));
	cache_req_done(r);
	memset(r, 0, sizeof(*r));
}

int http_query_value(const char *query, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);

		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *val = p + nlen + 1;
			size_t vlen = len - nlen - 1;
			char *raw, *dec;
			int declen = 0, ok;

			if (vlen > 3 * outlen)
				return -1;
			raw = strndup(val, vlen);
			if (!raw)
				return -1;
			for (char *c = raw; *c; c++)
				if (*c == '+')
					*c = ' ';
			dec = curl_easy_unescape(NULL, raw, (int)vlen, &declen);
			free(raw);
			if (!dec)
				return -1;
			ok = declen >= 0 && (size_t)declen < outlen && !memchr(dec, '\0', (size_t)declen);
			if (ok)
				memcpy(out, dec, (size_t)declen + 1);
			curl_free(dec);
			return ok ? 1 : -1;
		}
		p = amp ? amp + 1 : NULL;
	}
	return 0;
}

int http_query(struct req *r, const char *name, char *out, size_t outlen)
{
	return http_query_value(r->query, name, out, outlen);
}

int http_cookie_values(const char *header, const char *name, size_t len, const char *prefix,
		       char out[][SESSION_COOKIE_MAX + 1], int max)
{
	const size_t nlen = strlen(name), plen = strlen(prefix);
	const char *p = header;
	int n = 0;

	if (len > SESSION_COOKIE_MAX || plen > len)
		return 0;
	while (p && *p && n < max) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;

			if (strcspn(v, "; ") == len && strncmp(v, prefix, plen) == 0) {
				memcpy(out[n], v, len);
				out[n++][len] = '\0';
			}
		}
		p = strchr(p, ';');
	}
	return n;
}

/* The first members of libfcgi's private FCGX_Stream_Data (fcgiapp.c, the
 * same since libfcgi 2.2): where the stream reads the connection into. Used
 * only after the public pointers of the stream were found inside it. */
struct fcgx_stream_buffer {
	unsigned char *buff;
	int bufflen;
};

int http_wipe_input(FCGX_Request *fx)
{
	FCGX_Stream *in = fx->in;
	int rc = -1;

	if (in && in->isReader) {
		const struct fcgx_stream_buffer *b = in->data;
		const unsigned char *lo = b ? b->buff : NULL;

		if (lo && b->bufflen > 0 && b->bufflen <= 65536 &&
		    in->stopUnget >= lo && in->stopUnget <= in->rdNext &&
		    in->rdNext <= in->stop && in->stop <= lo + b->bufflen) {
			/* All the connection's bytes went through this buffer:
			 * the begin record, every param, the body. */
			OPENSSL_cleanse(b->buff, (size_t)b->bufflen);
			rc = 0;
		} else if (in->stopUnget && in->stopUnget <= in->stop) {
			/* Unknown layout: at least the last fragment read. */
			OPENSSL_cleanse(in->stopUnget, (size_t)(in->stop - in->stopUnget));
		}
	}
	/* libfcgi's copies of the params: the session cookie is a secret. */
	for (char **e = fx->envp; e && *e; e++)
		if (strncmp(*e, "HTTP_COOKIE=", 12) == 0)
			OPENSSL_cleanse(*e + 12, strlen(*e + 12));
	return rc;
}

int http_query_i64_quiet(struct req *r, const char *name, int64_t min, int64_t max, int64_t def,
			 int64_t *out)
{
	char buf[32];
	int rc = http_query(r, name, buf, sizeof(buf));

	*out = def;
	if (rc == 0)
		return 0;
	return rc < 0 || parse_i64(buf, min, max, out) ? -1 : 0;
}

int http_query_i64(struct req *r, const char *name, int64_t min, int64_t max,
		   int64_t def, int64_t *out)
{
	if (http_query_i64_quiet(r, name, min, max, def, out)) {
		reply_error_field(r, 400, "invalid_parameter", name,
				  "query parameter '%s' must be a number from %lld to %lld",
				  name, (long long)min, (long long)max);
		return -1;
	}
	return 0;
}

int http_path_id(struct req *r, const char *name, int64_t *out)
{
	const char *v = route_param(&r->params, name);

	if (!v || parse_i64(v, 1, INT64_MAX, out)) {
		reply_error(r, 404, "not_found", "no such %s", name);
		return -1;
	}
	return 0;
}

/* The one place response headers are made. Returns their length (at
 * most size - 1: every header has a bounded value). */
static size_t format_head(struct req *r, int status, char *buf, size_t size)
{
	size_t n = 0;

#define HEAD(...) do { \
		int w_ = snprintf(buf + n, size - n, __VA_ARGS__); \
		n = w_ < 0 ? n : (size_t)w_ >= size - n ? size - 1 : n + (size_t)w_; \
	} while (0)
	HEAD("Status: %d %s\r\n", status, reason_phrase(status));
	if (status != 304)
		HEAD("Content-Type: application/json\r\n");
	if (r->etag[0] && (status == 200 || status == 304))
		/* A validator: the browser may keep the answer but asks each
		 * time (If-None-Match), and gets a 304 while it holds. */
		HEAD("Cache-Control: no-cache\r\nETag: %s\r\n", r->etag);
	else
		HEAD("Cache-Control: no-store\r\n");
	if (r->allow[0])
		HEAD("Allow: %s\r\n", r->allow);
	if (r->retry_after > 0)
		HEAD("Retry-After: %d\r\n", r->retry_after);
	if (r->set_cookie)
		HEAD("Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld%s\r\n",
		     http_session_cookie(r), r->token, (long long)g_config.session_max_s,
		     r->https ? "; Secure" : "");
	else if (r->clear_cookie)
		HEAD("Set-Cookie: %s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s\r\n",
		     http_session_cookie(r), r->https ? "; Secure" : "");
	HEAD("\r\n");
#undef HEAD
	return n;
}

/* Writes the head and body of r's answer (and a newline after the body
 * when nl), and offers them to the cache. */
static void write_answer(struct req *r, int status, const char *body, size_t len, bool nl)
{
	char head[1024];
	size_t hlen;

	r->responded = true;
	r->status = status;
	hlen = format_head(r, status, head, sizeof(head));
	conns_put(r->fx, (struct iovec[]){ { head, hlen }, { (char *)body, len }, { "\n", nl ? 1 : 0 } }, 3);
	if (r->cache_key)
		cache_store(r, head, hlen, body, len, nl);
	OPENSSL_cleanse(head, hlen);   /* it may hold a new session's token */
}

void reply_json(struct req *r, int status, json_object *body)
{
	const char *text;
	size_t len = 0;

	if (r->responded) {
		log_error("BUG: second reply to %s %s", r->method, r->path);
		json_object_put(body);
		return;
	}
	if (!body)
		body = json_object_new_object();
	text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	write_answer(r, status, text ? text : "{}", text ? len : 2, true);
	json_object_put(body);
}

void reply_not_modified(struct req *r)
{
	if (r->responded) {
		log_error("BUG: second reply to %s %s", r->method, r->path);
		return;
	}
	write_answer(r, 304, "", 0, false);
}

bool http_etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);

	if (!inm)
		return false;
	for (const char *p = inm; *p;) {
		const char *e;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		/* One entity tag: a quoted string (no quotes inside). */
		if (*p != '"')
			return false;
		e = strchr(p + 1, '"');
		if (!e)
			return false;
		if ((size_t)(e + 1 - p) == n && memcmp(p, etag, n) == 0)
			return true;
		p = e + 1;
	}
	return false;
}

__attribute__((format(printf, 5, 0)))
static void reply_error_v(struct req *r, int status, const char *code, const char *field, const char *fmt,
			  va_list ap)
{
	json_object *body = json_object_new_object(), *err = json_object_new_object();
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (status >= 500)
		log_warn("%s %s -> %d %s: %s", r->method, r->path, status, code, msg);
	json_set(err, "code", json_object_new_string(code));
	json_set(err, "message", json_string_from_bytes(msg, strlen(msg)));
	if (field)
		json_set(err, "field", json_object_new_string(field));
	json_set(body, "error", err);
	reply_json(r, status, body);
}

void reply_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(r, status, code, NULL, fmt, ap);
	va_end(ap);
}

void reply_error_field(struct req *r, int status, const char *code, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_error_v(r, status, code, field, fmt, ap);
	va_end(ap);
}

int api_page_add(struct api_page *p, json_object *item, int64_t id)
{
	int rc = json_array_add_within(p->items, item, &p->bytes, API_LIST_BUDGET);

	if (rc == 0) {
		p->last_id = id;
		p->n++;
	}
	p->cut = rc > 0;
	return rc;
}

void api_page_reply(struct req *r, struct api_page *p, const char *name, int64_t limit)
{
	json_object *body = json_object_new_object();

	json_set(body, name, p->items);
	p->items = NULL;
	json_set(body, "next_before", json_i64_or_null(p->last_id, p->cut || p->n == limit));
	reply_json(r, 200, body);
}
