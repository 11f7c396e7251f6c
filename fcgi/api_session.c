/* api_session.c - GET /api/session: who the browser is, its CSRF token
 * and the server's features. */
#include "autoconfig.h"

#include "base/config.h"
#include "base/json.h"
#include "fcgi/api.h"
#include "fcgi/session.h"

json_object *user_json(const struct db_user *u)
{
	json_object *o = json_object_new_object();

	json_set(o, "id", json_object_new_int64(u->id));
	json_set(o, "login", json_str(u->login));
	json_set(o, "name", json_str(u->name));
	json_set(o, "is_admin", json_object_new_boolean(u->is_admin));
	json_set(o, "is_local", json_object_new_boolean(u->is_local));
	json_set(o, "avatar_url", json_str(u->avatar_url));
	return o;
}

void api_session_get(struct req *r)
{
	json_object *body, *features;
	char csrf[SESSION_TOKEN_HEX + 1];

	if (session_csrf_token(r, csrf)) {
		reply_error(r, 500, "internal", "no CSRF token for this session");
		return;
	}
	body = json_object_new_object();
	features = json_object_new_object();
	json_set(body, "user", r->has_user ? user_json(&r->user) : NULL);
	json_set(body, "github", github_status_json(r));
	json_set(body, "csrf_token", json_object_new_string(csrf));
	json_set(features, "cloud", json_object_new_boolean(g_config.cloud));
	json_set(body, "features", features);
	reply_json(r, 200, body);
}
