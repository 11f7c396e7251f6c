#include "autoconfig.h"

#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/crypto.h"
#include "base/keyring.h"
#include "base/log.h"
#include "base/util.h"
#include "fcgi/session.h"

/* A session's last_seen is written at most this often, so reads stay reads;
 * more often when the idle timeout is short (see touch_interval()). */
#define TOUCH_INTERVAL_S 300
#define NEW_SESSION_WINDOW_S 600
/* Local mode keeps at most this many sessions (see local_signin()). */
#define LOCAL_SESSIONS_MAX 100
/* How many same-named session cookies one request may have looked up. */
#define SESSION_COOKIE_TRIES 4

/* The anonymous cookie: ANON_PREFIX, then in hex a random id, its issue
 * time (64-bit big-endian seconds) and an HMAC-SHA256 of both (and of the
 * mode) cut to ANON_MAC_LEN bytes. */
#define ANON_PREFIX "a."
#define ANON_ID_LEN 16
#define ANON_TIME_LEN 8
#define ANON_MAC_LEN 16
#define ANON_RAW_LEN (ANON_ID_LEN + ANON_TIME_LEN + ANON_MAC_LEN)
/* How far in the future an issue time may be (clocks of a pool's hosts). */
#define ANON_SKEW_S 60
/* HKDF labels: one key per purpose, from the keyring's active key. */
#define ANON_KEY_INFO "anyon anonymous cookie v1"
#define ANON_MAC_LABEL "anyon-anon-v1:"
#define ANON_SESSION_LABEL "anyon-anon-session-v1:"

_Static_assert(sizeof(ANON_PREFIX) - 1 + 2 * ANON_RAW_LEN == ANON_COOKIE_LEN, "anonymous cookie length");
_Static_assert(ANON_COOKIE_LEN <= SESSION_COOKIE_MAX, "anonymous cookie fits r->token");

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

/* The values of this scheme's session cookie that have length len and
 * start with prefix, in order, at most max (see http_cookie_values()). The
 * copies are secrets: the caller wipes out. Returns how many. */
static int cookie_values(struct req *r, size_t len, const char *prefix, char out[][SESSION_COOKIE_MAX + 1],
			 int max)
{
	return http_cookie_values(http_param(r, "HTTP_COOKIE"), http_session_cookie(r), len, prefix, out, max);
}

/* Finds the first of the cookie's tokens that names a live session and
 * loads it, with its user, into r (r->token holds it then). Returns DB_OK,
 * DB_NOTFOUND or DB_ERROR. */
static int find_session(struct req *r, int64_t now)
{
	char tokens[SESSION_COOKIE_TRIES][SESSION_COOKIE_MAX + 1];
	int n = cookie_values(r, SESSION_TOKEN_HEX, "", tokens, SESSION_COOKIE_TRIES), rc = DB_NOTFOUND;
	unsigned char hash[32];

	for (int i = 0; i < n && rc == DB_NOTFOUND; i++) {
		if (session_token_hash(tokens[i], hash))
			continue;
		/* The session and its user in one query (one round trip); a
		 * session made in the other mode (local vs cloud) is not found. */
		if (i == 0 && (r->pf.job_id > 0 || r->pf.secret_kind || r->pf.events || r->pf.board_project > 0))
			/* With the route's next reads in the same round
			 * trip (r->pf, planned by routes.c). */
			rc = db_session_find_prefetch(r->db, hash, now, g_config.cloud, &r->session,
						      &r->user, &r->has_user, &r->pf);
		else
			rc = db_session_find_user(r->db, hash, now, g_config.cloud, &r->session,
						  &r->user, &r->has_user);
		if (rc == DB_OK)
			str_copy(r->token, sizeof(r->token), tokens[i]);
	}
	OPENSSL_cleanse(tokens, sizeof(tokens));
	if (rc != DB_OK)
		r->has_user = false;
	return rc;
}

/* The key that signs anonymous cookies and derives their session tokens,
 * from the keyring's active key (re-read when another process rotated it,
 * so every process of the pool agrees). A rotation thus invalidates the
 * anonymous cookies signed before it: each is replaced at its next GET.
 * Returns 0, or -1 when there is no usable key. The caller wipes out. */
static int anon_key(struct req *r, unsigned char out[MAC_LEN])
{
	const struct key *k;

	if (!r->secrets || !r->secrets->kr)
		return -1;
	keyring_refresh(r->secrets->kr);
	k = keyring_active(r->secrets->kr);
	if (!k)
		return -1;
	return hkdf_sha256(k->bytes, sizeof(k->bytes), ANON_KEY_INFO, out, MAC_LEN);
}

/* HMAC of label, the mode, and len bytes of data. Returns 0 or -1. */
static int anon_hmac(const unsigned char key[MAC_LEN], const char *label, const unsigned char *data,
		     size_t len, unsigned char out[MAC_LEN])
{
	unsigned char msg[32 + 1 + ANON_ID_LEN + ANON_TIME_LEN];
	size_t llen = strlen(label);
	int rc;

	if (llen + 1 + len > sizeof(msg))
		return -1;
	memcpy(msg, label, llen);
	msg[llen] = g_config.cloud ? 'c' : 'l';
	memcpy(msg + llen + 1, data, len);
	rc = hmac_sha256(key, MAC_LEN, msg, llen + 1 + len, out);
	OPENSSL_cleanse(msg, sizeof(msg));
	return rc;
}

/* Checks value, an anonymous cookie of the right shape, at time now:
 * signed under key in this mode, issued at most ANON_TTL_S ago and not in
 * the future. Returns 0 when valid. */
static int anon_check(const unsigned char key[MAC_LEN], const char *value, int64_t now)
{
	unsigned char raw[ANON_RAW_LEN], mac[MAC_LEN];
	int64_t issued = 0;
	int bad;

	if (hex_decode(value + strlen(ANON_PREFIX), raw, sizeof(raw)))
		return -1;
	for (int i = 0; i < ANON_TIME_LEN; i++)
		issued = (int64_t)((uint64_t)issued << 8 | raw[ANON_ID_LEN + i]);
	bad = anon_hmac(key, ANON_MAC_LABEL, raw, ANON_ID_LEN + ANON_TIME_LEN, mac) ||
	      CRYPTO_memcmp(mac, raw + ANON_ID_LEN + ANON_TIME_LEN, ANON_MAC_LEN) != 0 ||
	      issued > now + ANON_SKEW_S || issued <= now - ANON_TTL_S;
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(mac, sizeof(mac));
	return bad ? -1 : 0;
}

/* Makes a fresh anonymous cookie r's: r->token holds it, sent in
 * Set-Cookie. Returns 0 or -1. */
static int anon_issue(struct req *r, const unsigned char key[MAC_LEN], int64_t now)
{
	unsigned char raw[ANON_RAW_LEN], mac[MAC_LEN];
	int rc;

	rc = rand_bytes(raw, ANON_ID_LEN);
	for (int i = 0; i < ANON_TIME_LEN; i++)
		raw[ANON_ID_LEN + i] = (unsigned char)((uint64_t)now >> (8 * (ANON_TIME_LEN - 1 - i)));
	if (rc == 0)
		rc = anon_hmac(key, ANON_MAC_LABEL, raw, ANON_ID_LEN + ANON_TIME_LEN, mac);
	if (rc == 0) {
		memcpy(raw + ANON_ID_LEN + ANON_TIME_LEN, mac, ANON_MAC_LEN);
		memcpy(r->token, ANON_PREFIX, strlen(ANON_PREFIX));
		hex_encode(raw, sizeof(raw), r->token + strlen(ANON_PREFIX));
		r->anon = true;
		r->set_cookie = true;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* The random id of r's anonymous cookie. Returns 0 or -1. */
static int anon_id(const struct req *r, unsigned char id[ANON_ID_LEN])
{
	unsigned char raw[ANON_RAW_LEN];
	int rc = -1;

	if (strlen(r->token) == ANON_COOKIE_LEN &&
	    hex_decode(r->token + strlen(ANON_PREFIX), raw, sizeof(raw)) == 0) {
		memcpy(id, raw, ANON_ID_LEN);
		rc = 0;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

/* The session token an anonymous cookie becomes when its browser starts
 * signing in: HMAC(key, label, mode, id), as hex. Only the server can
 * compute it, and it is the same for every request with that cookie, so
 * the CSRF token (derived from it) stays the same across the change. r
 * must hold a checked anonymous cookie. Returns 0 or -1. */
static int anon_session_token(struct req *r, char out[SESSION_TOKEN_HEX + 1])
{
	unsigned char key[MAC_LEN], id[ANON_ID_LEN], t[MAC_LEN];
	int rc = -1;

	if (r->anon && anon_id(r, id) == 0 && anon_key(r, key) == 0 &&
	    anon_hmac(key, ANON_SESSION_LABEL, id, sizeof(id), t) == 0) {
		hex_encode(t, sizeof(t), out);
		rc = 0;
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(id, sizeof(id));
	OPENSSL_cleanse(t, sizeof(t));
	return rc;
}

/* Finds the first anonymous cookie that is valid now and makes it r's
 * (r->anon, r->token); with create, issues a fresh one when none is.
 * Nothing is written to the database. Returns 0, or -1 when there is no
 * key to check or sign with. */
static int anon_load(struct req *r, int64_t now, bool create)
{
	char values[SESSION_COOKIE_TRIES][SESSION_COOKIE_MAX + 1];
	int n = cookie_values(r, ANON_COOKIE_LEN, ANON_PREFIX, values, SESSION_COOKIE_TRIES), rc = 0;
	unsigned char key[MAC_LEN];

	if (n == 0 && !create)
		return 0;
	if (anon_key(r, key)) {
		OPENSSL_cleanse(values, sizeof(values));
		return -1;
	}
	for (int i = 0; i < n && !r->anon; i++) {
		if (anon_check(key, values[i], now) == 0) {
			str_copy(r->token, sizeof(r->token), values[i]);
			r->anon = true;
		}
	}
	if (!r->anon && create)
		rc = anon_issue(r, key, now);
	OPENSSL_cleanse(values, sizeof(values));
	OPENSSL_cleanse(key, sizeof(key));
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

/* Local mode: the first visit is the sign-in. Every browser without a
 * session is the implicit local user and gets a session row at once; the
 * table keeps only the LOCAL_SESSIONS_MAX most recently seen of them, so a
 * loop of cookie-less requests neither grows it nor locks anyone out (a
 * browser whose session was dropped simply gets a new one). */
static int local_signin(struct req *r, int64_t now)
{
	char agent[DB_SESSION_AGENT_MAX + 1];
	unsigned char hash[32];
	struct db_user local;
	int rc;

	rc = db_user_local(r->db, &local);
	if (rc != DB_OK || session_token_new(r->token, hash))
		return -1;
	session_agent(r, agent, sizeof(agent));
	{
		struct db_session_new n = {
			.hash = hash, .user_id = local.id, .cloud = false, .now = now,
			.expires_at = now + g_config.session_ttl_s, .addr = r->remote_addr, .agent = agent,
		};

		if (db_session_create(r->db, &n, &r->session))
			return -1;
	}
	r->has_session = true;
	r->set_cookie = true;
	if (db_session_trim_local(r->db, LOCAL_SESSIONS_MAX, NULL))
		return -1;
	return load_user(r);
}

int session_load(struct req *r, bool create)
{
	int64_t now = now_s();
	int rc;

	r->anon = false;
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
	/* Cloud mode: no session row until sign-in starts (session_begin());
	 * until then the browser's state is its signed anonymous cookie. */
	if (g_config.cloud) {
		if (anon_load(r, now, create)) {
			OPENSSL_cleanse(r->token, sizeof(r->token));
			r->anon = r->set_cookie = false;
			reply_error(r, 500, "internal", "no usable key for the session cookie");
			return -1;
		}
		return 0;
	}
	if (!create)
		return 0;
	if (local_signin(r, now)) {
		OPENSSL_cleanse(r->token, sizeof(r->token));
		r->has_session = r->set_cookie = false;
		goto fail;
	}
	return 0;
fail:
	reply_error(r, 500, "internal", "session storage failed");
	return -1;
}

int session_begin(struct req *r)
{
	char token[SESSION_TOKEN_HEX + 1];
	unsigned char hash[32];
	int64_t now = now_s(), recent = 0;
	int rc;

	if (r->has_session)
		return 0;
	if (!r->anon) {
		reply_error(r, 403, "csrf_failed", "missing or wrong X-CSRF-Token header");
		return -1;
	}
	if (anon_session_token(r, token) || session_token_hash(token, hash))
		goto fail;
	/* The same browser may have started before (two tabs at once, or a
	 * reply whose cookie got lost): then its session exists already. */
	rc = db_session_find_user(r->db, hash, now, g_config.cloud, &r->session, &r->user, &r->has_user);
	if (rc == DB_ERROR)
		goto fail;
	if (rc == DB_NOTFOUND) {
		char agent[DB_SESSION_AGENT_MAX + 1];
		struct db_session_new n = {
			.hash = hash, .user_id = 0, .cloud = g_config.cloud, .now = now,
			.expires_at = now + g_config.session_ttl_s, .addr = r->remote_addr, .agent = agent,
		};

		/* Cap how many sessions one address makes, so a loop of
		 * sign-in starts cannot grow the table. Count, then insert,
		 * without a lock on either engine: concurrent requests may
		 * pass the cap by at most the pool's size, which bounds the
		 * table just the same. */
		if (db_session_count_from(r->db, r->remote_addr, now - NEW_SESSION_WINDOW_S, &recent))
			goto fail;
		if (recent >= g_config.sessions_per_addr) {
			OPENSSL_cleanse(token, sizeof(token));
			r->retry_after = 60;
			reply_error(r, 429, "rate_limited", "too many new sessions from this address; try again later");
			return -1;
		}
		session_agent(r, agent, sizeof(agent));
		if (db_session_create(r->db, &n, &r->session)) {
			/* A concurrent start of the same browser made it first. */
			if (db_session_find_user(r->db, hash, now, g_config.cloud, &r->session, &r->user,
						 &r->has_user) != DB_OK)
				goto fail;
		}
	}
	str_copy(r->token, sizeof(r->token), token);
	OPENSSL_cleanse(token, sizeof(token));
	r->anon = false;
	r->has_session = true;
	r->set_cookie = true;
	return 0;
fail:
	OPENSSL_cleanse(token, sizeof(token));
	reply_error(r, 500, "internal", "session storage failed");
	return -1;
}

/* The CSRF token of a session token (hex): SHA-256 of a label and the
 * token, as hex. Returns 0 or -1. */
static int csrf_of(const char token[SESSION_TOKEN_HEX + 1], char out[SESSION_TOKEN_HEX + 1])
{
	static const char label[] = "anyon-csrf-v1:";
	unsigned char buf[sizeof(label) - 1 + SESSION_TOKEN_HEX], digest[32];
	int rc;

	memcpy(buf, label, sizeof(label) - 1);
	memcpy(buf + sizeof(label) - 1, token, SESSION_TOKEN_HEX);
	rc = sha256(buf, sizeof(buf), digest);
	if (rc == 0)
		hex_encode(digest, sizeof(digest), out);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(digest, sizeof(digest));
	return rc;
}

int session_csrf_token(struct req *r, char out[SESSION_TOKEN_HEX + 1])
{
	char token[SESSION_TOKEN_HEX + 1];
	int rc;

	out[0] = '\0';
	if (!r->anon) {
		if (strlen(r->token) != SESSION_TOKEN_HEX)
			return -1;
		return csrf_of(r->token, out);
	}
	/* An anonymous browser's is that of the session it will become. */
	rc = anon_session_token(r, token);
	if (rc == 0)
		rc = csrf_of(token, out);
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

bool session_csrf_ok(struct req *r)
{
	const char *got = http_param(r, "HTTP_X_CSRF_TOKEN");
	char want[SESSION_TOKEN_HEX + 1];
	bool ok;

	if ((!r->has_session && !r->anon) || !got || strlen(got) != SESSION_TOKEN_HEX)
		return false;
	ok = session_csrf_token(r, want) == 0 && CRYPTO_memcmp(want, got, SESSION_TOKEN_HEX) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int session_adopt(struct req *r, const char token[SESSION_TOKEN_HEX + 1], int64_t user_id)
{
	str_copy(r->token, sizeof(r->token), token);
	r->anon = false;
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
	r->anon = false;
	r->set_cookie = false;
	r->clear_cookie = true;
	OPENSSL_cleanse(r->token, sizeof(r->token));
	return 0;
}
