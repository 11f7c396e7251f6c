/* Wiping what carries a secret before it is freed: a PUT /api/secrets-like
 * request goes through a real libfcgi accept (over a unix socket), the
 * request's own body reader and JSON parser (http_read_body(),
 * http_parse_json_object()), an answer that sets the session cookie
 * (reply_json()) and http_reset(); every block freed meanwhile
 * (by libfcgi, json-c or us) is searched for the secret and the session
 * token just before it is freed. A control run of the same bytes through
 * libfcgi and plain json-c without the wipes must leave both in freed
 * memory, or the search would prove nothing.
 *
 * The search hooks free(): with ASan, its own malloc/free hooks; without,
 * free() and realloc() defined here, ahead of libc's (a realloc() then
 * always moves, the worst case, and the block it leaves is searched too;
 * valgrind must be told to leave them: --soname-synonyms=somalloc=
 * nouserintercepts, as make check-valgrind does). */
#include "autoconfig.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <openssl/crypto.h>
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#include "base/json.h"
#include "base/util.h"
#include "fcgi/http.h"
#include "t/unit/tap.h"

/* What is searched for: at least the first NEEDLE bytes of either. */
#define NEEDLE 16
static char secret[64];                 /* the value PUT */
static char token[SESSION_TOKEN_HEX + 1]; /* the session cookie */
static volatile bool armed;
static int secret_hits, token_hits;

static void search(const void *p, size_t n)
{
	if (!armed || !p || n < NEEDLE)
		return;
	armed = false;   /* memmem() must not recurse into us */
	/* a freed block's unwritten tail is searched too (valgrind: no
	 * error for reading it; run with somalloc=nouserintercepts) */
	VALGRIND_MAKE_MEM_DEFINED(p, n);
	if (memmem(p, n, secret, NEEDLE))
		secret_hits++;
	if (memmem(p, n, token, NEEDLE))
		token_hits++;
	armed = true;
}

#ifdef __SANITIZE_ADDRESS__
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					       void (*free_hook)(const volatile void *));
size_t __sanitizer_get_allocated_size(const volatile void *p);

static void on_free(const volatile void *p)
{
	if (p)
		search((const void *)p, __sanitizer_get_allocated_size(p));
}

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	(void)n;
}

static void hook_frees(void)
{
	/* both hooks, or neither is installed */
	if (!__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free))
		BAIL_OUT("ASan refused the free hook");
}
#else
void __libc_free(void *p);
void *__libc_realloc(void *p, size_t n);

void free(void *p)
{
	if (p)
		search(p, malloc_usable_size(p));
	__libc_free(p);
}

void *realloc(void *p, size_t n)
{
	void *q;
	size_t old;

	if (!armed || !p || n == 0)
		return __libc_realloc(p, n);
	q = malloc(n);
	if (!q)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	free(p);
	return q;
}

static void hook_frees(void)
{
}
#endif

/* One FastCGI record of type with content. */
static size_t record(unsigned char *out, int type, const void *content, size_t len)
{
	unsigned char h[8] = { 1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };

	memcpy(out, h, 8);
	memcpy(out + 8, content, len);
	return 8 + len;
}

static size_t param(unsigned char *out, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	out[0] = (unsigned char)nl;
	out[1] = (unsigned char)vl;
	memcpy(out + 2, name, nl);
	memcpy(out + 2 + nl, value, vl);
	return 2 + nl + vl;
}

/* Sends a PUT of body with the session cookie to the listening socket at
 * path, as nginx would, and accepts it into fx. */
static int put_request(const char *path, int listen_fd, FCGX_Request *fx, const char *body, size_t blen)
{
	static const unsigned char begin[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	unsigned char buf[4096], params[1024];
	char cookie[128], clen[16];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = 0, p = 0;
	int c;

	snprintf(cookie, sizeof(cookie), "anyon_session=%s", token);
	snprintf(clen, sizeof(clen), "%zu", blen);
	p += param(params + p, "REQUEST_METHOD", "PUT");
	p += param(params + p, "REQUEST_URI", "/api/secrets/anthropic_api_key");
	p += param(params + p, "CONTENT_LENGTH", clen);
	p += param(params + p, "HTTP_COOKIE", cookie);
	n += record(buf + n, 1, begin, sizeof(begin));
	n += record(buf + n, 4, params, p);
	n += record(buf + n, 4, "", 0);
	n += record(buf + n, 5, body, blen);
	n += record(buf + n, 5, "", 0);
	str_copy(sa.sun_path, sizeof(sa.sun_path), path);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) || write(c, buf, n) != (ssize_t)n)
		BAIL_OUT("cannot talk to the test socket");
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(params, sizeof(params));
	OPENSSL_cleanse(cookie, sizeof(cookie));
	FCGX_InitRequest(fx, listen_fd, 0);
	if (FCGX_Accept_r(fx) < 0)
		BAIL_OUT("FCGX_Accept_r failed");
	return c;
}

int main(void)
{
	char dir[] = "/tmp/anyon-wipe-XXXXXX", path[128], body[512], got[512];
	unsigned char raw[24];
	FCGX_Request fx;
	struct req r;
	json_object *plain;
	const char *v;
	int lfd, c;
	size_t blen;

	hook_frees();
	if (!mkdtemp(dir) || FCGX_Init())
		BAIL_OUT("no scratch directory or libfcgi");
	snprintf(path, sizeof(path), "%s/fcgi.sock", dir);
	lfd = FCGX_OpenSocket(path, 4);
	if (lfd < 0)
		BAIL_OUT("cannot listen on %s", path);
	rand_bytes(raw, sizeof(raw));
	memcpy(secret, "sk-ant-", 7);
	hex_encode(raw, sizeof(raw), secret + 7);
	rand_bytes(raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), token);                 /* 48 random digits */
	str_copy(token + 48, sizeof(token) - 48, "0123456789abcdef");
	/* Escapes make json-c copy a string in parts: its buffer would grow
	 * (realloc) with part of the secret in it. */
	blen = (size_t)snprintf(body, sizeof(body), "{\"value\":\"%s\",\"note\":[\"%s\\t%s\\t%s\"]}",
				secret, secret, secret, secret);

	/* Control: libfcgi and json-c as they are, no wipe. */
	c = put_request(path, lfd, &fx, body, blen);
	armed = true;
	ok(FCGX_GetStr(got, (int)blen, fx.in) == (int)blen && memcmp(got, body, blen) == 0,
	   "control: the body arrives through libfcgi");
	got[blen] = '\0';
	plain = json_tokener_parse(got);
	ok(plain != NULL, "control: json-c parses it");
	json_object_put(plain);
	FCGX_FPrintF(fx.out, "Status: 200 OK\r\nSet-Cookie: anyon_session=%s\r\n\r\n{}\n", token);
	FCGX_Finish_r(&fx);
	armed = false;
	OPENSSL_cleanse(got, sizeof(got));
	close(c);
	ok(secret_hits >= 2, "control: unwiped, the secret is left in %d freed blocks (libfcgi, json-c)",
	   secret_hits);
	ok(token_hits >= 1, "control: unwiped, the session token is left in %d freed blocks", token_hits);

	/* The request path of anyon-fcgi: read, parse, use, reset. */
	secret_hits = token_hits = 0;
	c = put_request(path, lfd, &fx, body, blen);
	memset(&r, 0, sizeof(r));
	r.fx = &fx;
	r.content_length = (int64_t)blen;
	armed = true;
	ok(http_read_body(&r, 4096) == 0 && r.body_len == blen, "the body is read");
	ok(http_parse_json_object(&r) == 0, "and parsed as a JSON object");
	ok(json_get_str(r.json, "value", &v) == 0 && strcmp(v, secret) == 0, "the secret is in the parsed body");
	ok(http_param(&r, "HTTP_COOKIE") && strstr(http_param(&r, "HTTP_COOKIE"), token),
	   "the cookie is in libfcgi's params");
	/* the answer sets the cookie (as for a new or rotated session) */
	str_copy(r.token, sizeof(r.token), token);
	r.set_cookie = true;
	reply_json(&r, 200, NULL);
	http_reset(&r);
	FCGX_Finish_r(&fx);
	armed = false;
	close(c);
	ok(secret_hits == 0, "wiped: no freed block holds the secret (%d)", secret_hits);
	ok(token_hits == 0, "wiped: no freed block holds the session token (%d)", token_hits);

	/* http_wipe_input() knew libfcgi's buffer, not just the last fragment. */
	c = put_request(path, lfd, &fx, body, blen);
	ok(FCGX_GetStr(got, (int)blen, fx.in) == (int)blen, "a third request's body is read");
	ok(http_wipe_input(&fx) == 0, "libfcgi's whole input buffer was found and wiped");
	FCGX_Finish_r(&fx);
	close(c);
	OPENSSL_cleanse(got, sizeof(got));

	close(lfd);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
