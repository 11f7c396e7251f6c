/* signin.c - completing a GitHub sign-in (see signin.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/access.h"
#include "services/audit.h"
#include "services/github.h"
#include "services/github_token.h"
#include "services/signin.h"
#include "services/users.h"

/* Who GitHub says holds the token. */
struct identity {
	int64_t github_id;
	char login[DB_LOGIN_MAX];
	char name[DB_NAME_MAX];
	char email[256];
	char avatar_url[512];
};

/* The primary, verified address from /user/emails, for users whose /user
 * email is private. Left empty when GitHub gives none. */
static void primary_email(const char *token, int64_t deadline_ms, char *out, size_t outlen)
{
	struct gh_response e;

	out[0] = '\0';
	if (gh_api_get(token, "/user/emails", deadline_ms, &e) == 0 && e.status == 200 &&
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

/* GET /user with the token. Fields GitHub sends too long or malformed are
 * left empty, except id and login, without which there is no identity. */
static int identify(const char *token, int64_t deadline_ms, struct identity *who)
{
	const char *login, *v;
	struct gh_response u;

	memset(who, 0, sizeof(*who));
	if (gh_api_get(token, "/user", deadline_ms, &u) || u.status != 200 ||
	    json_get_i64(u.json, "id", &who->github_id) || who->github_id <= 0 ||
	    json_get_str(u.json, "login", &login) || !gh_word_ok(login, DB_LOGIN_MAX - 1, "-_")) {
		gh_classify(&u, "sign-in: /user");
		gh_response_release(&u);
		return -1;
	}
	str_copy(who->login, sizeof(who->login), login);
	if (json_get_str(u.json, "name", &v) == 0)
		str_copy(who->name, sizeof(who->name), strlen(v) < sizeof(who->name) ? v : "");
	if (json_get_str(u.json, "email", &v) == 0 && strlen(v) <= 200)
		str_copy(who->email, sizeof(who->email), v);
	if (json_get_str(u.json, "avatar_url", &v) == 0 && gh_url_ok(v))
		str_copy(who->avatar_url, sizeof(who->avatar_url), v);
	gh_response_release(&u);
	if (!who->email[0])
		primary_email(token, deadline_ms, who->email, sizeof(who->email));
	return 0;
}

/* Everything a sign-in writes, in one transaction: the user, the tokens,
 * the session rotated to its new token, the flow complete, the audit.
 * Returns 0, -1 on failure, or 1 when the account is disabled (nothing
 * written). */
static int record(struct secret_store *st, struct db_flow *f, const struct signin_session *s,
		  const struct identity *who, json_object *answer, struct db_admission *adm, bool admin,
		  struct db_user *out)
{
	struct db *db = st->db;
	int rc;

	if (db_begin_write(db))
		return -1;
	if (g_config.cloud) {
		rc = users_signin_github(db, who->github_id, who->login, who->name, who->email,
					 who->avatar_url, admin, now_s(), out);
		/* Checked inside the transaction that would sign in: a disable
		 * committed before it wins, one after it deletes this session. */
		if (rc == DB_OK && out->disabled) {
			db_rollback(db);
			return 1;
		}
		/* Why they are in, for the worker's re-check: replaced at every
		 * sign-in, so one now listed by name is never org-checked. */
		if (rc == DB_OK) {
			adm->user_id = out->id;
			adm->checked_at = now_s();
			rc = db_admission_put(db, adm);
		}
	} else {
		rc = db_user_set_github(db, s->user_id, who->github_id, who->login);
		if (rc == DB_OK)
			rc = db_user_get(db, s->user_id, out);
	}
	if (rc == DB_OK && github_token_store(st, out->id, s->id, answer) != GH_OK)
		rc = DB_ERROR;
	if (rc == DB_OK && config_fault("signin_after_tokens"))
		rc = DB_ERROR;
	if (rc == DB_OK)
		rc = db_session_rotate(db, s->id, s->new_hash, out->id);
	if (rc == DB_OK)
		rc = db_flow_update(db, f->id, "complete", f->interval_s, f->next_poll_at, "", out->id);
	if (rc == DB_OK)
		audit_event(db, out->id, s->id, "github.signin", "ok", "login=%s", who->login);
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return -1;
	}
	return 0;
}

enum signin_rc signin_github(struct secret_store *st, struct db_flow *f, const struct signin_session *s,
			     json_object *answer, int64_t deadline_ms, struct db_user *out, char *msg,
			     size_t msglen)
{
	struct db_admission adm = { 0 };
	const char *access;
	struct identity who;
	bool admin = false;
	char org[DB_ORG_MAX];
	int rc;

	/* An answer with neither an error nor a token breaks the protocol:
	 * nothing but a real token may go to GitHub as a bearer token. */
	if (json_get_str(answer, "access_token", &access) || !*access || strlen(access) > GITHUB_TOKEN_MAX) {
		log_warn("github sign-in: the token answer has no usable access_token");
		snprintf(msg, msglen, "GitHub answered without a token; start again");
		return SIGNIN_FAILED;
	}
	if (identify(access, deadline_ms, &who)) {
		snprintf(msg, msglen, "GitHub did not say who you are; start again");
		return SIGNIN_FAILED;
	}
	/* Matched by GitHub id once an entry is bound (the first sign-in with
	 * a listed login binds it), so a renamed account keeps its access and
	 * a newcomer with the old login does not get it; else by an active
	 * membership of an org:NAME entry's org, asked with this fresh token. */
	switch (g_config.cloud ? access_admit(st->db, access, who.github_id, who.login, deadline_ms, &adm, &admin,
					      org, sizeof(org)) : ACCESS_ADMITTED) {
	case ACCESS_ADMITTED:
		break;
	case ACCESS_REFUSED:
		audit_event(st->db, 0, s->id, "github.signin", "denied", "login=%s not on the allow list", who.login);
		snprintf(msg, msglen, "GitHub user '%s' is not allowed to use this anyon; ask its administrator "
			 "to add you", who.login);
		return SIGNIN_DENIED;
	case ACCESS_UNKNOWN:
		audit_event(st->db, 0, s->id, "github.signin", "error",
			    "login=%s: GitHub did not say whether they are a member of org %s", who.login, org);
		snprintf(msg, msglen, "GitHub did not say whether you are a member of the organization '%s'; "
			 "try again in a moment", org);
		return SIGNIN_FAILED;
	}
	rc = record(st, f, s, &who, answer, &adm, admin, out);
	if (rc == 1) {
		audit_event(st->db, out->id, s->id, "github.signin", "denied", "login=%s is disabled", who.login);
		snprintf(msg, msglen, "the anyon account of GitHub user '%s' is disabled; ask its administrator",
			 who.login);
		return SIGNIN_DENIED;
	}
	if (rc) {
		audit_event(st->db, s->user_id, s->id, "github.signin", "error", "login=%s: not recorded",
			    who.login);
		snprintf(msg, msglen, "could not record your sign-in; start again");
		return SIGNIN_FAILED;
	}
	str_copy(f->status, sizeof(f->status), "complete");
	f->message[0] = '\0';
	f->user_id = out->id;
	return SIGNIN_OK;
}
