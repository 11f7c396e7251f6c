/* github_token.c - a user's GitHub token (see github_token.h). */
#include "autoconfig.h"

#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "services/audit.h"
#include "services/github_token.h"

#define KIND_TOKEN GITHUB_TOKEN_KIND
#define KIND_REFRESH "github_refresh_token"

/* A token field of an answer: present, a string, 1 to GITHUB_TOKEN_MAX bytes. */
static const char *token_field(json_object *answer, const char *key)
{
	const char *v;

	if (json_get_str(answer, key, &v) || !*v || strlen(v) > GITHUB_TOKEN_MAX)
		return NULL;
	return v;
}

/* now + the answer's key (seconds), or 0 (no expiry) when absent. */
static int64_t expiry(json_object *answer, const char *key, int64_t now)
{
	int64_t in;

	return json_get_i64(answer, key, &in) == 0 && in > 0 ? now + in : 0;
}

enum gh_rc github_token_store(struct secret_store *st, int64_t user_id, int64_t session_id,
			      json_object *answer)
{
	const char *tok = token_field(answer, "access_token");
	const char *refresh = token_field(answer, "refresh_token");
	int64_t now = now_s();

	if (!tok)
		return GH_BAD_ANSWER;
	if (db_begin_write(st->db))
		return GH_ERROR;
	if (secret_put(st, user_id, KIND_TOKEN, tok, strlen(tok), expiry(answer, "expires_in", now),
		       session_id) != SECRET_OK ||
	    (refresh && secret_put(st, user_id, KIND_REFRESH, refresh, strlen(refresh),
				   expiry(answer, "refresh_token_expires_in", now), session_id) != SECRET_OK) ||
	    db_commit(st->db)) {
		db_rollback(st->db);
		return GH_ERROR;
	}
	return GH_OK;
}

/* The refresh failed for good: the token is marked invalid, so the user
 * is asked to sign in to GitHub again. */
static void refresh_failed(struct secret_store *st, int64_t user_id, int64_t session_id, const char *why)
{
	db_secret_set_invalid(st->db, user_id, KIND_TOKEN, true);
	audit_event(st->db, user_id, session_id, "github.token_refreshed", "error", "%s", why);
}

/* Another process (a second browser tab, the worker) may have refreshed the
 * same expiring token a moment before us: GitHub then refuses our refresh
 * token, which it has already spent, and the new pair is stored, or about
 * to be, by the other process. Waits up to SPENT_REFRESH_WAIT_MS (within the
 * deadline) for a token sealed after `seen` was read (a new seal has a new
 * nonce) and reads it into tok. Returns GH_OK, or GH_TOKEN_INVALID when none
 * came (the refresh token was refused for another reason). */
#define SPENT_REFRESH_WAIT_MS 2000
#define SPENT_REFRESH_POLL_US (50 * 1000)

static enum gh_rc refreshed_elsewhere(struct secret_store *st, int64_t user_id, int64_t session_id,
				      const struct db_secret *seen, int64_t deadline_ms,
				      struct secret_value *tok)
{
	int64_t until = mono_ms() + SPENT_REFRESH_WAIT_MS;
	struct db_secret now;
	int rc;

	if (deadline_ms > 0 && deadline_ms < until)
		until = deadline_ms;
	for (;;) {
		rc = secret_meta(st, user_id, KIND_TOKEN, &now);
		if (rc == SECRET_ERROR)
			return GH_ERROR;
		if (rc == SECRET_OK && !now.invalid && memcmp(now.nonce, seen->nonce, sizeof(now.nonce))) {
			rc = secret_get(st, user_id, KIND_TOKEN, session_id, tok);
			return rc == SECRET_OK ? GH_OK : rc == SECRET_UNREADABLE ? GH_UNREADABLE : GH_ERROR;
		}
		if (rc != SECRET_OK || now.invalid || mono_ms() + SPENT_REFRESH_POLL_US / 1000 > until)
			return GH_TOKEN_INVALID;
		usleep(SPENT_REFRESH_POLL_US);
	}
}

/* Trades the refresh token for a new pair and reads the new token into
 * tok (empty on entry). seen: the token's metadata as read before. */
static enum gh_rc refresh(struct secret_store *st, int64_t user_id, int64_t session_id,
			  const struct db_secret *seen, int64_t deadline_ms, struct secret_value *tok)
{
	struct secret_value rt;
	struct gh_response g;
	const char *err;
	enum gh_rc rc;
	int src;

	src = secret_get(st, user_id, KIND_REFRESH, session_id, &rt);
	if (src == SECRET_ERROR)
		return GH_ERROR;
	if (src != SECRET_OK) {
		refresh_failed(st, user_id, session_id, "no usable refresh token");
		return GH_TOKEN_INVALID;
	}
	src = gh_refresh_token((const char *)rt.data, deadline_ms, &g);
	secret_value_release(&rt);
	if (src || gh_unavailable(&g)) {
		rc = gh_classify(&g, "token refresh");
		gh_response_release(&g);
		return rc;
	}
	/* A refused refresh token does not come back: the user signs in again.
	 * So does one whose new tokens could not be kept (GitHub has already
	 * retired the old ones). */
	if (json_get_str(g.json, "error", &err) == 0) {
		gh_response_release(&g);
		rc = refreshed_elsewhere(st, user_id, session_id, seen, deadline_ms, tok);
		if (rc == GH_OK)
			audit_event(st->db, user_id, session_id, "github.token_refreshed", "ok", "%s",
				    "refreshed by another process at the same time");
		if (rc != GH_TOKEN_INVALID)
			return rc;
		refresh_failed(st, user_id, session_id, "refresh refused");
		return GH_TOKEN_INVALID;
	}
	rc = github_token_store(st, user_id, session_id, g.json);
	gh_response_release(&g);
	if (rc != GH_OK) {
		refresh_failed(st, user_id, session_id, rc == GH_ERROR ? "new tokens not stored" : "refresh answer without a token");
		return rc == GH_ERROR ? GH_ERROR : GH_TOKEN_INVALID;
	}
	audit_event(st->db, user_id, session_id, "github.token_refreshed", "ok", "%s", "refreshed");
	src = secret_get(st, user_id, KIND_TOKEN, session_id, tok);
	return src == SECRET_OK ? GH_OK : src == SECRET_UNREADABLE ? GH_UNREADABLE : GH_ERROR;
}

enum gh_rc github_token_get(struct secret_store *st, int64_t user_id, int64_t session_id,
			    int64_t deadline_ms, struct secret_value *out)
{
	struct db_secret meta;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = secret_meta(st, user_id, KIND_TOKEN, &meta);
	if (rc == SECRET_NOTFOUND)
		return GH_NOT_CONNECTED;
	if (rc != SECRET_OK)
		return GH_ERROR;
	if (meta.invalid)
		return GH_TOKEN_INVALID;
	if (meta.expires_at > 0 && now_s() >= meta.expires_at - GITHUB_TOKEN_REFRESH_MARGIN_S)
		return refresh(st, user_id, session_id, &meta, deadline_ms, out);
	rc = secret_get(st, user_id, KIND_TOKEN, session_id, out);
	return rc == SECRET_OK ? GH_OK : rc == SECRET_UNREADABLE ? GH_UNREADABLE :
	       rc == SECRET_NOTFOUND ? GH_NOT_CONNECTED : GH_ERROR;
}

enum gh_rc github_token_failed(struct secret_store *st, int64_t user_id, int64_t session_id,
			       const struct gh_response *g, const char *what)
{
	if (g->status == 401) {
		db_secret_set_invalid(st->db, user_id, KIND_TOKEN, true);
		audit_event(st->db, user_id, session_id, "github.token_invalid", "error",
			    "GitHub answered 401 to %s", what);
		return GH_TOKEN_INVALID;
	}
	return gh_classify(g, what);
}

int github_token_status(struct secret_store *st, int64_t user_id, bool *connected, bool *invalid)
{
	struct db_secret meta;
	int rc = secret_meta(st, user_id, KIND_TOKEN, &meta);

	*connected = rc == SECRET_OK;
	*invalid = rc == SECRET_OK && meta.invalid;
	return rc == SECRET_ERROR ? -1 : 0;
}

int github_token_forget(struct secret_store *st, int64_t user_id, int64_t session_id)
{
	if (db_begin_write(st->db))
		return -1;
	if (secret_delete(st, user_id, KIND_TOKEN, session_id) == SECRET_ERROR ||
	    secret_delete(st, user_id, KIND_REFRESH, session_id) == SECRET_ERROR ||
	    (!g_config.cloud && db_user_set_github(st->db, user_id, 0, NULL) != DB_OK)) {
		db_rollback(st->db);
		return -1;
	}
	audit_event(st->db, user_id, session_id, "github.disconnected", "ok", "%s", "token forgotten");
	if (db_commit(st->db)) {
		db_rollback(st->db);
		return -1;
	}
	return 0;
}
