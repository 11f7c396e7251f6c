/* api_auth.c - signing in: the GitHub device flow per session (start,
 * poll) and logout. Every bit of flow state is a row (device_flows), so
 * any process of the pool can serve any poll. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/crypto.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/audit.h"
#include "services/devflow.h"
#include "services/github.h"
#include "services/github_token.h"
#include "services/users.h"
#include "fcgi/api.h"
#include "fcgi/session.h"

#define GH_SCOPES "repo read:user user:email"
#define FLOW_WINDOW_S 600
#define FLOWS_PER_SESSION 5       /* device flows a session may start per window */
#define FLOWS_PER_ADDRESS 30      /* ... and an address */
/* Times are whole seconds: one more second keeps every poll at least a
 * full interval after the previous one, as GitHub demands. */
#define POLL_MARGIN_S 1

static int flow_aad(char *buf, size_t len, const char *flow_id, int64_t session_id)
{
	return snprintf(buf, len, "anyon:v1:flow:%s:%lld", flow_id, (long long)session_id);
}

void api_auth_device_start(struct req *r)
{
	const char *device_code, *user_code, *uri, *err;
	int64_t expires_in, interval, by_session = 0, by_addr = 0, now = now_s();
	unsigned char rnd[DB_FLOW_ID_HEX / 2];
	const struct key *k;
	struct gh_response g;
	struct db_flow f;
	json_object *body;
	char ad[128];

	if (!g_config.github_client_id[0]) {
		reply_error(r, 503, "github_not_configured",
			    "GitHub sign-in is not configured on this server (ANYON_GITHUB_CLIENT_ID)");
		return;
	}
	if (db_flow_count_since(r->db, r->session.id, r->remote_addr, now - FLOW_WINDOW_S,
				&by_session, &by_addr)) {
		reply_error(r, 500, "internal", "reading sign-in state failed");
		return;
	}
	if (by_session >= FLOWS_PER_SESSION || by_addr >= FLOWS_PER_ADDRESS) {
		r->retry_after = 60;
		audit_event(r->db, r->user.id, r->session.id, "github.device_start", "denied", "rate limited");
		reply_error(r, 429, "rate_limited", "too many sign-in attempts; wait a minute and try again");
		return;
	}
	if (gh_device_code(GH_SCOPES, &g) || gh_unavailable(&g)) {
		reply_github(r, gh_classify(&g, "device code request"));
		gh_response_release(&g);
		return;
	}
	if (json_get_str(g.json, "error", &err) == 0) {
		const char *desc = NULL;

		json_get_str(g.json, "error_description", &desc);
		reply_error(r, 502, "github_error", "GitHub refused to start sign-in: %.64s%s%.200s", err,
			    desc ? ": " : "", desc ? desc : "");
		gh_response_release(&g);
		return;
	}
	if (g.status != 200 || json_get_str(g.json, "device_code", &device_code) ||
	    json_get_str(g.json, "user_code", &user_code) ||
	    json_get_str(g.json, "verification_uri", &uri) ||
	    json_get_i64(g.json, "expires_in", &expires_in) || json_get_i64(g.json, "interval", &interval) ||
	    strlen(device_code) == 0 || strlen(device_code) > DB_FLOW_CODE_MAX ||
	    !gh_word_ok(user_code, 31, "-") || !gh_url_ok(uri) || expires_in < 1 || expires_in > 7200 ||
	    interval < 0 || interval > 600) {
		reply_github(r, gh_classify(&g, "device code request"));
		gh_response_release(&g);
		return;
	}
	if (interval < 1)
		interval = 5;

	memset(&f, 0, sizeof(f));
	k = keyring_active(r->secrets->kr);
	if (rand_bytes(rnd, sizeof(rnd)) || !k) {
		gh_response_release(&g);
		reply_error(r, 500, "internal", "no randomness");
		return;
	}
	hex_encode(rnd, sizeof(rnd), f.id);
	f.session_id = r->session.id;
	str_copy(f.remote_addr, sizeof(f.remote_addr), r->remote_addr);
	str_copy(f.key_id, sizeof(f.key_id), k->id);
	f.code_len = strlen(device_code);
	flow_aad(ad, sizeof(ad), f.id, f.session_id);
	if (aead_seal(k->bytes, ad, strlen(ad), device_code, f.code_len, f.nonce, f.code_ct, f.tag)) {
		gh_response_release(&g);
		reply_error(r, 500, "internal", "sealing the device code failed");
		return;
	}
	str_copy(f.user_code, sizeof(f.user_code), user_code);
	str_copy(f.verification_uri, sizeof(f.verification_uri), uri);
	f.interval_s = interval;
	f.created_at = now;
	f.expires_at = now + expires_in;
	f.next_poll_at = now + interval + POLL_MARGIN_S;   /* one interval before the first poll too */
	if (db_flow_create(r->db, &f)) {
		gh_response_release(&g);
		reply_error(r, 500, "internal", "storing the sign-in flow failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "github.device_start", "ok", "flow=%.8s", f.id);
	body = json_object_new_object();
	json_set(body, "flow_id", json_object_new_string(f.id));
	json_set(body, "user_code", json_str(f.user_code));
	json_set(body, "verification_uri", json_str(f.verification_uri));
	json_set(body, "expires_in", json_object_new_int64(expires_in));
	json_set(body, "interval", json_object_new_int64(interval));
	gh_response_release(&g);
	reply_json(r, 200, body);
}
static void reply_flow(struct req *r, const struct db_flow *f, int64_t retry_after)
{
	json_object *body = json_object_new_object();

	json_set(body, "status", json_str(f->status));
	json_set(body, "interval", json_object_new_int64(f->interval_s));
	if (retry_after > 0)
		json_set(body, "retry_after", json_object_new_int64(retry_after));
	if (f->message[0])
		json_set(body, "message", json_str(f->message));
	if (strcmp(f->status, "complete") == 0 && r->has_user)
		json_set(body, "user", user_json(&r->user));
	reply_json(r, 200, body);
}

static void end_flow(struct req *r, struct db_flow *f, const char *status, const char *message)
{
	str_copy(f->status, sizeof(f->status), status);
	str_copy(f->message, sizeof(f->message), message);
	if (db_flow_update(r->db, f->id, status, f->interval_s, f->next_poll_at, message, f->user_id)) {
		reply_error(r, 500, "internal", "updating the sign-in flow failed");
		return;
	}
	reply_flow(r, f, 0);
}

/* The primary, verified address from /user/emails, for users whose /user
 * email is private. Empty when GitHub gives none. */
static void primary_email(const char *token, char *out, size_t outlen)
{
	struct gh_response e;

	out[0] = '\0';
	if (gh_api_get(token, "/user/emails", &e) == 0 && e.status == 200 &&
	    json_object_is_type(e.json, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(e.json); i++) {
			json_object *m = json_object_array_get_idx(e.json, i);
			const char *addr;
			bool primary = false, verified = false;

			json_get_bool(m, "primary", &primary);
			json_get_bool(m, "verified", &verified);
			if (primary && verified && json_get_str(m, "email", &addr) == 0 && strlen(addr) < outlen) {
				str_copy(out, outlen, addr);
				break;
			}
		}
	}
	gh_response_release(&e);
}

/* The token arrived: who is it, may they in, and keep the token. */
static void complete_signin(struct req *r, struct db_flow *f, json_object *ans)
{
	const char *access, *gh_login, *name = "", *email = "", *avatar = "";
	char login[DB_LOGIN_MAX], msg[256], email_buf[256];
	struct gh_response u;
	struct db_user user;
	int64_t gh_id;

	/* An answer with neither an error nor a token breaks the protocol:
	 * nothing may go to GitHub as a bearer token but a real one. */
	if (json_get_str(ans, "access_token", &access) || !*access || strlen(access) > 1024) {
		log_warn("github sign-in: the token answer has no access_token");
		end_flow(r, f, "error", "GitHub answered without a token; start again");
		return;
	}
	if (gh_api_get(access, "/user", &u) || u.status != 200 ||
	    json_get_i64(u.json, "id", &gh_id) || json_get_str(u.json, "login", &gh_login) ||
	    !gh_word_ok(gh_login, DB_LOGIN_MAX - 1, "-_") || gh_id <= 0) {
		log_warn("github sign-in: /user failed (HTTP %ld)", u.status);
		gh_response_release(&u);
		end_flow(r, f, "error", "GitHub did not say who you are; start again");
		return;
	}
	/* Copied: u (and everything borrowed from it) is freed before the end. */
	str_copy(login, sizeof(login), gh_login);
	json_get_str(u.json, "name", &name);
	json_get_str(u.json, "email", &email);
	json_get_str(u.json, "avatar_url", &avatar);
	if (strlen(name) >= DB_NAME_MAX)
		name = "";
	if (strlen(email) > 200)
		email = "";
	if (!*email) {
		primary_email(access, email_buf, sizeof(email_buf));
		email = email_buf;
	}
	if (!gh_url_ok(avatar))
		avatar = "";

	if (g_config.cloud) {
		if (!config_list_has(g_config.allowed_github, login)) {
			audit_event(r->db, 0, r->session.id, "github.signin", "denied",
				    "login=%s not on the allow list", login);
			snprintf(msg, sizeof(msg), "GitHub user '%s' is not allowed to use this anyon; "
				 "ask its administrator to add you", login);
			gh_response_release(&u);
			end_flow(r, f, "denied", msg);
			return;
		}
		if (users_signin_github(r->db, gh_id, login, name, email, avatar,
					  config_list_has(g_config.admin_github, login), now_s(), &user)) {
			gh_response_release(&u);
			end_flow(r, f, "error", "could not record your account; try again");
			return;
		}
	} else {
		user = r->user;
		if (db_user_set_github(r->db, user.id, gh_id, login)) {
			gh_response_release(&u);
			end_flow(r, f, "error", "could not record your account; try again");
			return;
		}
	}
	gh_response_release(&u);
	if (github_token_store(r->secrets, user.id, r->session.id, ans) || session_rotate(r, user.id)) {
		end_flow(r, f, "error", "could not store your token; try again");
		return;
	}
	f->user_id = user.id;
	audit_event(r->db, user.id, r->session.id, "github.signin", "ok", "login=%s", login);
	end_flow(r, f, "complete", "");
}

/* GitHub's pending and final answers, as a table. */
static const struct {
	const char *error;
	const char *status;       /* NULL: still pending */
	const char *message;
} poll_errors[] = {
	{ "authorization_pending", NULL, "" },
	{ "slow_down", NULL, "" },
	{ "expired_token", "expired", "The code expired before it was entered. Start again." },
	{ "access_denied", "denied", "The sign-in was cancelled on GitHub." },
	{ "incorrect_device_code", "error", "GitHub does not know this code any more. Start again." },
	{ "device_flow_disabled", "error", "This server's GitHub app does not have the device flow enabled." },
	{ "incorrect_client_credentials", "error", "This server's GitHub client id is wrong." },
	{ "unsupported_grant_type", "error", "GitHub refused the request (unsupported grant type)." },
};

void api_auth_device_poll(struct req *r)
{
	const char *flow_id, *err;
	unsigned char code[DB_FLOW_CODE_MAX + 1];
	struct gh_response g;
	const struct key *k;
	struct db_flow f;
	int64_t now = now_s(), iv;
	char ad[128];
	int rc;

	if (json_get_str(r->json, "flow_id", &flow_id) || strlen(flow_id) != DB_FLOW_ID_HEX ||
	    strspn(flow_id, "0123456789abcdef") != DB_FLOW_ID_HEX) {
		reply_error(r, 400, "invalid_field", "'flow_id' must be the id from device/start");
		return;
	}
	rc = devflow_claim_poll(r->db, flow_id, r->session.id, now, POLL_MARGIN_S, &f);
	if (rc == DB_NOTFOUND) {
		/* Another session's flow looks exactly like no flow. */
		reply_error(r, 404, "not_found", "no such sign-in flow in this session");
		return;
	}
	if (rc == DB_ERROR) {
		reply_error(r, 500, "internal", "reading the sign-in flow failed");
		return;
	}
	if (rc == DB_CONFLICT) {
		/* Over, or too early: answered from the row, GitHub not asked. */
		reply_flow(r, &f, strcmp(f.status, "pending") ? 0 : f.next_poll_at - now);
		return;
	}
	if (now >= f.expires_at) {
		end_flow(r, &f, "expired", "The code expired before it was entered. Start again.");
		return;
	}
	k = keyring_find(r->secrets->kr, f.key_id);
	if (!k && keyring_refresh(r->secrets->kr) == 0)
		k = keyring_find(r->secrets->kr, f.key_id);
	flow_aad(ad, sizeof(ad), f.id, f.session_id);
	if (!k || aead_open(k->bytes, ad, strlen(ad), f.nonce, f.code_ct, f.code_len, f.tag, code)) {
		end_flow(r, &f, "error", "The sign-in state cannot be read. Start again.");
		return;
	}
	code[f.code_len] = '\0';
	rc = gh_poll_token((const char *)code, &g);
	OPENSSL_cleanse(code, sizeof(code));
	if (rc || gh_unavailable(&g) || !g.json) {
		reply_github(r, gh_classify(&g, "token poll"));
		gh_response_release(&g);
		return;
	}
	if (json_get_str(g.json, "error", &err) == 0) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(poll_errors) && strcmp(poll_errors[i].error, err); i++)
			;
		if (i == ARRAY_SIZE(poll_errors)) {
			log_warn("github sign-in: unknown poll error '%.64s'", err);
			end_flow(r, &f, "error", "GitHub refused the sign-in. Start again.");
		} else if (poll_errors[i].status) {
			end_flow(r, &f, poll_errors[i].status, poll_errors[i].message);
		} else {
			if (strcmp(err, "slow_down") == 0) {
				/* GitHub says the new interval; else it is 5 s more. */
				if (json_get_i64(g.json, "interval", &iv) || iv <= f.interval_s || iv > 600)
					iv = f.interval_s + 5;
				f.interval_s = iv;
				f.next_poll_at = now + iv + POLL_MARGIN_S;
				if (db_flow_update(r->db, f.id, "pending", f.interval_s, f.next_poll_at, "", 0)) {
					gh_response_release(&g);
					reply_error(r, 500, "internal", "updating the sign-in flow failed");
					return;
				}
			}
			reply_flow(r, &f, f.next_poll_at - now);
		}
		gh_response_release(&g);
		return;
	}
	complete_signin(r, &f, g.json);
	gh_response_release(&g);
}
void api_auth_logout(struct req *r)
{
	int64_t user = r->has_user ? r->user.id : 0, session = r->session.id;

	if (session_end(r)) {
		reply_error(r, 500, "internal", "ending the session failed");
		return;
	}
	audit_event(r->db, user, session, "signout", "ok", "%s", "session ended");
	reply_json(r, 200, NULL);
}
