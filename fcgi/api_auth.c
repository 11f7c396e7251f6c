/* api_auth.c - signing in: the GitHub device flow of this session (start,
 * poll; services/devflow.c, services/signin.c) and logout. */
#include "autoconfig.h"

#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/json.h"
#include "services/audit.h"
#include "services/devflow.h"
#include "fcgi/api.h"
#include "fcgi/session.h"

/* Answers a start or poll that did not come to DEVFLOW_OK. */
static void reply_devflow_error(struct req *r, enum devflow_rc rc, const struct devflow_result *res)
{
	switch (rc) {
	case DEVFLOW_NOT_FOUND:
		reply_error(r, 404, "not_found", "no such sign-in flow in this session");
		break;
	case DEVFLOW_RATE_LIMITED:
		r->retry_after = 60;
		reply_error(r, 429, "rate_limited", "too many sign-in attempts; wait a minute and try again");
		break;
	case DEVFLOW_REFUSED:
		reply_error(r, 502, "github_error", "%s", res->message);
		break;
	case DEVFLOW_GITHUB:
		reply_github(r, res->gh);
		break;
	default:
		reply_error(r, 500, "internal", "storing the sign-in flow failed");
		break;
	}
}

void api_auth_device_start(struct req *r)
{
	struct devflow_result res;
	enum devflow_rc rc;
	json_object *body;

	if (!g_config.github_client_id[0]) {
		reply_error(r, 503, "github_not_configured",
			    "GitHub sign-in is not configured on this server (ANYON_GITHUB_CLIENT_ID)");
		return;
	}
	/* An anonymous browser gets its session row now, not before. */
	if (session_begin(r))
		return;
	rc = devflow_start(r->secrets, r->session.id, r->has_user ? r->user.id : 0, r->remote_addr,
			   r->gh_deadline_ms, &res);
	if (rc != DEVFLOW_OK) {
		reply_devflow_error(r, rc, &res);
		return;
	}
	body = json_object_new_object();
	json_set(body, "flow_id", json_object_new_string(res.flow.id));
	json_set(body, "user_code", json_str(res.flow.user_code));
	json_set(body, "verification_uri", json_str(res.flow.verification_uri));
	json_set(body, "expires_in", json_object_new_int64(res.expires_in));
	json_set(body, "interval", json_object_new_int64(res.flow.interval_s));
	reply_json(r, 200, body);
}

void api_auth_device_poll(struct req *r)
{
	struct signin_session s = { .id = r->session.id, .user_id = r->has_user ? r->user.id : 0 };
	char token[SESSION_TOKEN_HEX + 1];
	struct devflow_result res;
	const char *flow_id;
	enum devflow_rc rc;
	json_object *body;
	bool complete;

	if (!r->has_session) {
		reply_error(r, 404, "not_found", "no such sign-in flow in this session");
		return;
	}
	if (json_get_str(r->json, "flow_id", &flow_id) || strlen(flow_id) != DB_FLOW_ID_HEX ||
	    strspn(flow_id, "0123456789abcdef") != DB_FLOW_ID_HEX) {
		reply_error(r, 400, "invalid_field", "'flow_id' must be the id from device/start");
		return;
	}
	/* The session's next token, in case this poll signs in: the sign-in
	 * writes its hash; the cookie carries it only after that committed. */
	if (session_token_new(token, s.new_hash)) {
		reply_error(r, 500, "internal", "no randomness");
		return;
	}
	rc = devflow_poll(r->secrets, flow_id, &s, r->gh_deadline_ms, &res);
	complete = rc == DEVFLOW_OK && strcmp(res.flow.status, "complete") == 0;
	if (complete && session_adopt(r, token, res.user.id))
		rc = DEVFLOW_ERROR;
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(s.new_hash, sizeof(s.new_hash));
	if (rc != DEVFLOW_OK) {
		reply_devflow_error(r, rc, &res);
		return;
	}
	body = json_object_new_object();
	json_set(body, "status", json_str(res.flow.status));
	json_set(body, "interval", json_object_new_int64(res.flow.interval_s));
	if (res.retry_after > 0)
		json_set(body, "retry_after", json_object_new_int64(res.retry_after));
	if (res.flow.message[0])
		json_set(body, "message", json_str(res.flow.message));
	if (complete && r->has_user)
		json_set(body, "user", user_json(&r->user));
	reply_json(r, 200, body);
}

void api_auth_logout(struct req *r)
{
	int64_t user = r->has_user ? r->user.id : 0, session = r->session.id;
	bool had_session = r->has_session;

	if (session_end(r)) {
		reply_error(r, 500, "internal", "ending the session failed");
		return;
	}
	/* An anonymous browser only loses its cookie: no row for it. */
	if (had_session)
		audit_event(r->db, user, session, "signout", "ok", "%s", "session ended");
	reply_json(r, 200, NULL);
}
