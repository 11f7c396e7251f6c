#include "autoconfig.h"

#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "fcgi/session.h"

/* A session's last_seen is written at most this often, so reads stay reads;
 * more often when the idle timeout is short (see touch_interval()). */
#define TOUCH_INTERVAL_S 300
#define NEW_SESSION_WINDOW_S 600
/* How many same-named session cookies one request may have looked up. */
#define SESSION_COOKIE_TRIES 4

int session_token_hash(const char *token_hex, unsigned char out[32])
{
	unsigned char raw[SESSION_TOKEN_BYTES];
	int rc;

	if (hex_decode(token_hex, raw, sizeof(raw)))
		return -1;
	rc = sha256(raw, sizeof(raw), out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

/* The token-shaped values of this scheme's session cookie, in order, at
 * most max (see http_cookie_tokens()). The caller wipes out. */
static int cookie_tokens(struct req *r, char out[][SESSION_TOKEN_HEX + 1], int max)
{
	return http_cookie_tokens(http_param(r, "HTTP_COOKIE"), http_session_cookie(r), out, max);
}

/* Finds the first of the cookie's tokens that names a live session and
 * loads it, with its user, into r (r->token holds it then). Returns DB_OK,
 * DB_NOTFOUND or DB_ERROR. */
static int find_session(struct req *r, int64_t now)
{
	char tokens[SESSION_COOKIE_TRIES][SESSION_TOKEN_HEX + 1];
	int n = cookie_tokens(r, tokens, SESSION_COOKIE_TRIES), rc = DB_NOTFOUND;
	unsigned char hash[32];

	for (int i = 0; i < n && rc == DB_NOTFOUND; i++) {
		if (session_token_hash(tokens[i], hash))
			continue;
		/* The session and its user in one query (one round trip); a
		 * session made in the other mode (local vs cloud) is not found. */
		rc = db_session_find_user(r->db, hash, now, g_config.cloud, &r->session, &r->user,
					  &r->has_user);
		if (rc == DB_OK)
			memcpy(r->token, tokens[i], sizeof(r->token));
	}
	OPENSSL_cleanse(tokens, sizeof(tokens));
	if (rc != DB_OK)
		r->has_user = false;
	return rc;
}

static int64_t session_expiry(const struct db_session *s, int64_t now)
{
	int64_t idle = now + g_config.session_ttl_s;
	int64_t cap = s->created_at + g_config.session_max_s;

	return idle < cap ? idle : cap;
}

/* Seconds between writes of last_seen: at most a quarter of the idle
 * timeout, or an active session would expire between two writes. */
static int64_t touch_interval(void)
{
	int64_t quarter = g_config.session_ttl_s / 4;

	return quarter < TOUCH_INTERVAL_S ? quarter : TOUCH_INTERVAL_S;
}

static int load_user(struct req *r)
{
	int rc;

	r->has_user = false;
	if (r->session.user_id <= 0)
		return 0;
	rc = db_user_get(r->db, r->session.user_id, &r->user);
	if (rc == DB_ERROR)
		return -1;
	r->has_user = rc == DB_OK;
	return 0;
}

int session_token_new(char token[SESSION_TOKEN_HEX + 1], unsigned char hash[32])
{
	unsigned char raw[SESSION_TOKEN_BYTES];
	int rc;

	if (rand_bytes(raw, sizeof(raw)))
		return -1;
	hex_encode(raw, sizeof(raw), token);
	rc = sha256(raw, sizeof(raw), hash);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

/* The browser's User-Agent for the Sessions screen: printable ASCII only
 * (anything else becomes '?'), cut at DB_SESSION_AGENT_MAX bytes. It is
 * shown to its own user only, as text. */
static void session_agent(struct req *r, char *out, size_t size)
{
	const char *ua = http_param(r, "HTTP_USER_AGENT");
	size_t n = 0;

	for (; ua && *ua && n + 1 < size && n < DB_SESSION_AGENT_MAX; ua++)
		out[n++] = (*ua >= 0x20 && *ua < 0x7f) ? *ua : '?';
	out[n] = '\0';
}

int session_load(struct req *r, bool create)
{
	char agent[DB_SESSION_AGENT_MAX + 1];
	unsigned char hash[32];
	int64_t now = now_s(), user_id = 0, recent = 0;
	struct db_user local;
	int rc;

	rc = find_session(r, now);
	if (rc == DB_ERROR)
		goto fail;
	if (rc == DB_OK) {
		r->has_session = true;
		if (now - r->session.last_seen_at >= touch_interval()) {
			int64_t exp = session_expiry(&r->session, now);

			if (db_session_touch(r->db, r->session.id, now, exp))
				goto fail;
			r->session.last_seen_at = now;
			r->session.expires_at = exp;
		}
		return 0;
	}
	OPENSSL_cleanse(r->token, sizeof(r->token));
	if (!create)
		return 0;

	/* Every browser without a cookie gets a row: cap how many one address
	 * can make, so a loop of cookie-less requests cannot grow the table.
	 * Count, then insert, without a lock on either engine: concurrent
	 * requests may pass the cap by at most the pool's size, which bounds
	 * the table just the same, so no write lock is taken here. */
	if (db_session_count_from(r->db, r->remote_addr, now - NEW_SESSION_WINDOW_S, &recent))
		goto fail;
	if (recent >= g_config.sessions_per_addr) {
		r->retry_after = 60;
		reply_error(r, 429, "rate_limited", "too many new sessions from this address; try again later");
		return -1;
	}

	/* Local mode: every browser is the implicit local user. */
	if (!g_config.cloud) {
		rc = db_user_local(r->db, &local);
		if (rc != DB_OK)
			goto fail;
		user_id = local.id;
	}
	if (session_token_new(r->token, hash))
		goto fail;
	{
		struct db_session_new n = {
			.hash = hash, .user_id = user_id, .cloud = g_config.cloud, .now = now,
			.expires_at = now + g_config.session_ttl_s, .addr = r->remote_addr, .agent = agent,
		};

		session_agent(r, agent, sizeof(agent));
		if (db_session_create(r->db, &n, &r->session))
			goto fail;
	}
	r->has_session = true;
	r->set_cookie = true;
	if (load_user(r))
		goto fail;
	return 0;
fail:
	reply_error(r, 500, "internal", "session storage failed");
	return -1;
}

void session_csrf_token(const struct req *r, char out[SESSION_TOKEN_HEX + 1])
{
	static const char label[] = "anyon-csrf-v1:";
	unsigned char buf[sizeof(label) - 1 + SESSION_TOKEN_HEX], digest[32];

	memcpy(buf, label, sizeof(label) - 1);
	memcpy(buf + sizeof(label) - 1, r->token, SESSION_TOKEN_HEX);
	if (sha256(buf, sizeof(buf), digest))
		memset(digest, 0, sizeof(digest));
	hex_encode(digest, sizeof(digest), out);
	OPENSSL_cleanse(buf, sizeof(buf));
}

bool session_csrf_ok(struct req *r)
{
	const char *got = http_param(r, "HTTP_X_CSRF_TOKEN");
	char want[SESSION_TOKEN_HEX + 1];
	bool ok;

	if (!r->has_session || !got || strlen(got) != SESSION_TOKEN_HEX)
		return false;
	session_csrf_token(r, want);
	ok = CRYPTO_memcmp(want, got, SESSION_TOKEN_HEX) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int session_adopt(struct req *r, const char token[SESSION_TOKEN_HEX + 1], int64_t user_id)
{
	str_copy(r->token, sizeof(r->token), token);
	r->set_cookie = true;
	r->session.user_id = user_id;
	return load_user(r);
}

int session_end(struct req *r)
{
	if (r->has_session && db_session_delete(r->db, r->session.id))
		return -1;
	r->has_session = false;
	r->has_user = false;
	r->set_cookie = false;
	r->clear_cookie = true;
	OPENSSL_cleanse(r->token, sizeof(r->token));
	return 0;
}
