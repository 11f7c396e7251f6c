/* api_sessions.c - GET /api/sessions, DELETE /api/sessions/{id},
 * POST /api/sessions/revoke-others: the signed-in user's own sessions
 * (Settings -> Sessions). Service: the data layer's session rows
 * (db/sessions.c); tests: t/t3300-offboarding.py, t/t9000-browser.py. */
#include "autoconfig.h"

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "fcgi/session.h"
#include "services/audit.h"

#define SESSIONS_LIST_MAX 100

struct list_ctx {
	json_object *list;
	int64_t current;
};

static int session_one(const struct db_session_info *s, void *arg)
{
	struct list_ctx *ctx = arg;
	json_object *o = json_object_new_object();

	json_set(o, "id", json_object_new_int64(s->id));
	json_set(o, "created_at", json_object_new_int64(s->created_at));
	json_set(o, "last_seen_at", json_object_new_int64(s->last_seen_at));
	json_set(o, "expires_at", json_object_new_int64(s->expires_at));
	json_set(o, "address", json_str(s->addr));
	json_set(o, "browser", json_str(s->agent));
	json_set(o, "current", json_object_new_boolean(s->id == ctx->current));
	return json_object_array_add(ctx->list, o);
}

void api_sessions_list(struct req *r)
{
	struct list_ctx ctx = { json_object_new_array(), r->session.id };
	json_object *body;

	if (db_session_list_user(r->db, r->user.id, g_config.cloud, now_s(), SESSIONS_LIST_MAX,
				 session_one, &ctx)) {
		json_object_put(ctx.list);
		reply_error(r, 500, "internal", "listing sessions failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "sessions", ctx.list);
	reply_json(r, 200, body);
}

void api_sessions_delete(struct req *r)
{
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	if (id == r->session.id) {
		/* Revoking this very session is signing out here. */
		if (session_end(r)) {
			reply_error(r, 500, "internal", "ending the session failed");
			return;
		}
		audit_event(r->db, r->user.id, id, "session.revoked", "ok", "session=%lld (this one)", (long long)id);
		reply_json(r, 200, NULL);
		return;
	}
	rc = db_session_delete_own(r->db, id, r->user.id);
	if (rc == DB_NOTFOUND) {
		/* Another user's session looks exactly like none. */
		reply_error(r, 404, "not_found", "no such session");
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "revoking the session failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "session.revoked", "ok", "session=%lld", (long long)id);
	reply_json(r, 200, NULL);
}

void api_sessions_revoke_others(struct req *r)
{
	json_object *body;
	int64_t n = 0;

	if (db_session_delete_others(r->db, r->user.id, r->session.id, &n)) {
		reply_error(r, 500, "internal", "revoking sessions failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "session.revoked", "ok", "others=%lld", (long long)n);
	body = json_object_new_object();
	json_set(body, "revoked", json_object_new_int64(n));
	reply_json(r, 200, body);
}
