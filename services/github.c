#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "base/config.h"
#include "base/curlx.h"
#include "services/github.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"

#define USER_AGENT "anyon/" PACKAGE_VERSION
#define API_VERSION_HEADER "X-GitHub-Api-Version: 2022-11-28"
#define CONNECT_TIMEOUT_MS 5000L

/* json-c frees its strings without wiping them: wipe the secret members
 * of an object answer (the token endpoints'). */
static void wipe_secrets(json_object *obj)
{
	static const char *const keys[] = { "access_token", "refresh_token", "device_code" };
	json_object *v;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (json_object_is_type(obj, json_type_object) && json_object_object_get_ex(obj, keys[i], &v) &&
		    json_object_is_type(v, json_type_string))
			OPENSSL_cleanse((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

void gh_response_release(struct gh_response *r)
{
	wipe_secrets(r->json);
	if (r->body) {
		OPENSSL_cleanse(r->body, r->len);
		free(r->body);
	}
	json_object_put(r->json);
	memset(r, 0, sizeof(*r));
}

/* The pool's GitHub slots (gh_slots_init()): n lock files in dir. A
 * process holds at most one, from its request's first call until
 * gh_slot_release(); the kernel drops the lock when the process dies. */
static struct {
	char dir[CONFIG_PATH_MAX];   /* where the slot files are */
	int n;                       /* how many; 0: no gate (the worker, anyonctl) */
	int fd;                      /* the slot this process holds, -1 for none */
} slots = { "", 0, -1 };

static int slot_path(int i, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%d", slots.dir, i);

	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int gh_slots_init(const char *dir, int n, char *err, size_t errlen)
{
	char path[CONFIG_PATH_MAX + 16];
	struct stat st;

	if (n < 1 || !str_copy(slots.dir, sizeof(slots.dir), dir)) {
		snprintf(err, errlen, "bad GitHub slot settings");
		return -1;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create '%s': %s", dir, strerror(errno));
		return -1;
	}
	if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, errlen, "'%s' is not a folder of this user's", dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int fd;

		if (slot_path(i, path, sizeof(path)) ||
		    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
			snprintf(err, errlen, "cannot create the GitHub slot file '%s/%d': %s", dir, i, strerror(errno));
			return -1;
		}
		close(fd);
	}
	slots.n = n;
	slots.fd = -1;
	return 0;
}

void gh_slots_remove(void)
{
	char path[CONFIG_PATH_MAX + 16];

	gh_slot_release();
	for (int i = 0; i < slots.n; i++)
		if (slot_path(i, path, sizeof(path)) == 0)
			unlink(path);
	if (slots.n)
		rmdir(slots.dir);
	slots.n = 0;
}

/* Takes a free slot unless this process holds one already. False when
 * every slot is held by another process. */
static bool slot_take(void)
{
	char path[CONFIG_PATH_MAX + 16];
	int start;

	if (slots.n == 0 || slots.fd >= 0)
		return true;
	start = (int)(getpid() % slots.n);   /* spread the first tries */
	for (int k = 0; k < slots.n; k++) {
		int fd;

		if (slot_path((start + k) % slots.n, path, sizeof(path)) ||
		    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			slots.fd = fd;
			return true;
		}
		close(fd);
	}
	return false;
}

void gh_slot_release(void)
{
	if (slots.fd >= 0) {
		close(slots.fd);   /* drops the lock */
		slots.fd = -1;
	}
}

bool gh_unavailable(const struct gh_response *r)
{
	return r->status == 0 || r->status >= 500;
}

enum gh_rc gh_classify(const struct gh_response *r, const char *what)
{
	if (r->busy) {
		log_warn("github %s: every GitHub slot of the pool is in use", what);
		return GH_BUSY;
	}
	if (r->deadline) {
		log_warn("github %s: the request's deadline for GitHub ran out", what);
		return GH_DEADLINE;
	}
	if (r->status == 0)
		log_warn("github %s: %s", what, r->error[0] ? r->error : "no answer");
	else
		log_warn("github %s: HTTP %ld", what, r->status);
	if (gh_unavailable(r))
		return GH_UNAVAILABLE;
	if (r->status == 403 || r->status == 429)
		return GH_RATE_LIMITED;
	return GH_BAD_ANSWER;
}

bool gh_word_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(extra, c)))
			return false;
	}
	return true;
}

bool gh_url_ok(const char *s)
{
	return strlen(s) < 500 && (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0) &&
	       !strpbrk(s, " \"<>\\\r\n\t");
}

/* Picks rel="next" out of a Link header: <url>; rel="next", <url>; rel="last" */
static void parse_link(const char *v, size_t len, char *next, size_t nextlen)
{
	const char *end = v + len;

	while (v < end) {
		const char *lt = memchr(v, '<', (size_t)(end - v)), *gt, *comma, *rel;

		if (!lt || !(gt = memchr(lt, '>', (size_t)(end - lt))))
			return;
		comma = memchr(gt, ',', (size_t)(end - gt));
		if (!comma)
			comma = end;
		for (rel = gt; rel + 10 <= comma; rel++) {
			if (strncmp(rel, "rel=\"next\"", 10) == 0) {
				size_t ulen = (size_t)(gt - lt - 1);

				if (ulen < nextlen) {
					memcpy(next, lt + 1, ulen);
					next[ulen] = '\0';
				}
				return;
			}
		}
		v = comma + 1;
	}
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct gh_response *r = arg;
	size_t len = size * n;

	if (len > 5 && strncasecmp(data, "link:", 5) == 0)
		parse_link(data + 5, len - 5, r->next_url, sizeof(r->next_url));
	return len;
}

/* One request. form (may be NULL) makes it a POST of that body: form-encoded,
 * or JSON with json_body. The token, when given, goes in the Authorization
 * header through curl's bearer auth. */
static int perform(const char *url, const char *form, bool json_body, const char *token, bool api,
		   int64_t deadline_ms, struct gh_response *out)
{
	char curl_err[CURL_ERROR_SIZE] = "", jerr[64];
	struct curlx_body body = { .max = GH_MAX_BODY };
	struct curl_slist *hdrs = NULL;
	CURL *c;
	CURLcode rc;
	bool cut;
	long timeout_ms = curlx_timeout_ms(deadline_ms, (long)g_config.github_timeout_ms, &cut);

	memset(out, 0, sizeof(*out));
	if (timeout_ms == 0) {
		out->timed_out = out->deadline = true;
		snprintf(out->error, sizeof(out->error), "no time left before the request's deadline");
		return -1;
	}
	if (!slot_take()) {
		out->busy = true;
		snprintf(out->error, sizeof(out->error), "every GitHub slot of the pool is in use");
		return -1;
	}
	/* GitHub may take up to the deadline to answer: nothing else waits
	 * behind this request meanwhile. */
	curlx_long_wait();
	c = curl_easy_init();
	if (!c) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		return -1;
	}
	hdrs = curl_slist_append(hdrs, api ? "Accept: application/vnd.github+json" : "Accept: application/json");
	hdrs = curl_slist_append(hdrs, API_VERSION_HEADER);
	if (json_body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curlx_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	if (token) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
		curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, token);
	}
	if (form)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	rc = curl_easy_perform(c);
	out->body = body.buf;   /* out owns it now: gh_response_release() wipes it */
	out->len = body.len;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	} else {
		out->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		out->deadline = out->timed_out && cut;
		/* curl's message names the host, never credentials */
		curlx_error(out->error, sizeof(out->error), rc, curl_err);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK)
		return -1;
	if (out->body && json_parse(out->body, out->len, &out->json, jerr, sizeof(jerr)))
		out->json = NULL;
	return 0;
}

int gh_escape(const char *s, char *out, size_t outlen)
{
	char *e = curl_easy_escape(NULL, s, 0);
	int rc = -1;

	if (e && strlen(e) < outlen) {
		memcpy(out, e, strlen(e) + 1);
		rc = 0;
	}
	if (e) {
		OPENSSL_cleanse(e, strlen(e));
		curl_free(e);
	}
	return rc;
}

/* Builds "k1=v1&k2=v2..." with escaped values into a heap string (caller
 * wipes and frees). NULL-terminated pairs. */
static char *form_encode(const char *const *pairs)
{
	size_t cap = 1, len = 0;
	char *out;

	for (int i = 0; pairs[i]; i += 2)
		cap += strlen(pairs[i]) + 3 * strlen(pairs[i + 1]) + 2;
	out = calloc(1, cap);
	if (!out)
		return NULL;
	for (int i = 0; pairs[i]; i += 2) {
		char *e = curl_easy_escape(NULL, pairs[i + 1], 0);

		if (!e) {
			OPENSSL_cleanse(out, cap);
			free(out);
			return NULL;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", i ? "&" : "", pairs[i], e);
		OPENSSL_cleanse(e, strlen(e));
		curl_free(e);
	}
	return out;
}

static int post_form(const char *path, const char *const *pairs, int64_t deadline_ms,
		     struct gh_response *out)
{
	char url[GH_URL_MAX];
	char *form = form_encode(pairs);
	int rc;

	if (!form) {
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "out of memory");
		return -1;
	}
	snprintf(url, sizeof(url), "%s%s", g_config.github_url, path);
	rc = perform(url, form, false, NULL, false, deadline_ms, out);
	OPENSSL_cleanse(form, strlen(form));
	free(form);
	return rc;
}

int gh_device_code(const char *scope, int64_t deadline_ms, struct gh_response *out)
{
	const char *pairs[] = { "client_id", g_config.github_client_id, "scope", scope, NULL };

	return post_form("/login/device/code", pairs, deadline_ms, out);
}

int gh_poll_token(const char *device_code, int64_t deadline_ms, struct gh_response *out)
{
	const char *pairs[] = {
		"client_id", g_config.github_client_id,
		"device_code", device_code,
		"grant_type", "urn:ietf:params:oauth:grant-type:device_code",
		NULL,
	};

	return post_form("/login/oauth/access_token", pairs, deadline_ms, out);
}

int gh_refresh_token(const char *refresh_token, int64_t deadline_ms, struct gh_response *out)
{
	const char *pairs[] = {
		"client_id", g_config.github_client_id,
		"grant_type", "refresh_token",
		"refresh_token", refresh_token,
		NULL,
	};

	return post_form("/login/oauth/access_token", pairs, deadline_ms, out);
}

int gh_api_get(const char *token, const char *path, int64_t deadline_ms, struct gh_response *out)
{
	char url[GH_URL_MAX];

	if (path[0] != '/' ||
	    (size_t)snprintf(url, sizeof(url), "%s%s", g_config.github_api_url, path) >= sizeof(url)) {
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "path too long");
		return -1;
	}
	return perform(url, NULL, false, token, true, deadline_ms, out);
}

int gh_api_post_json(const char *token, const char *path, json_object *body, int64_t deadline_ms,
		     struct gh_response *out)
{
	char url[GH_URL_MAX];
	const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);

	if (path[0] != '/' || !text ||
	    (size_t)snprintf(url, sizeof(url), "%s%s", g_config.github_api_url, path) >= sizeof(url)) {
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "path too long");
		return -1;
	}
	return perform(url, text, true, token, true, deadline_ms, out);
}

int gh_api_get_url(const char *token, const char *url, int64_t deadline_ms, struct gh_response *out)
{
	size_t base = strlen(g_config.github_api_url);

	if (strncmp(url, g_config.github_api_url, base) || url[base] != '/') {
		memset(out, 0, sizeof(*out));
		snprintf(out->error, sizeof(out->error), "refusing to follow a link off the API host");
		log_warn("github: refused a Link URL outside %s", g_config.github_api_url);
		return -1;
	}
	return perform(url, NULL, false, token, true, deadline_ms, out);
}

enum gh_membership gh_org_membership(const char *token, const char *org, int64_t deadline_ms,
				     struct gh_response *r)
{
	char esc[256], path[320];
	const char *state, *msg;

	if (gh_escape(org, esc, sizeof(esc)) ||
	    (size_t)snprintf(path, sizeof(path), "/user/memberships/orgs/%s", esc) >= sizeof(path)) {
		memset(r, 0, sizeof(*r));
		log_warn("github org membership: the org name does not fit a URL");
		return GH_MEMBER_UNKNOWN;
	}
	if (gh_api_get(token, path, deadline_ms, r) == 0) {
		if (r->status == 200 && json_get_str(r->json, "state", &state) == 0)
			return strcmp(state, "active") == 0 ? GH_MEMBER_ACTIVE : GH_MEMBER_NOT;
		if (r->status == 401)
			return GH_MEMBER_BAD_TOKEN;
		if (r->status == 404)
			return GH_MEMBER_NOT;
		/* A 403 is a refusal unless it is GitHub's rate limit speaking. */
		if (r->status == 403 && !(json_get_str(r->json, "message", &msg) == 0 && strstr(msg, "rate limit")))
			return GH_MEMBER_NOT;
	}
	gh_classify(r, "org membership");
	return GH_MEMBER_UNKNOWN;
}
