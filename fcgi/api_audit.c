/* api_audit.c - GET /api/audit: the caller's events (an admin's: anyone's). */
#include "autoconfig.h"

#include <stdint.h>

#include "base/json.h"
#include "fcgi/api.h"

static int audit_one(const struct db_audit *ev, void *arg)
{
	json_object *o = json_object_new_object();

	json_set(o, "id", json_object_new_int64(ev->id));
	json_set(o, "at", json_object_new_int64(ev->at));
	json_set(o, "user_id", json_i64_or_null(ev->user_id, ev->user_id > 0));
	json_set(o, "session_id", json_i64_or_null(ev->session_id, ev->session_id > 0));
	json_set(o, "actor", json_str(ev->actor ? ev->actor : ""));
	json_set(o, "action", json_str(ev->action ? ev->action : ""));
	json_set(o, "outcome", json_str(ev->outcome ? ev->outcome : ""));
	json_set(o, "detail", json_str(ev->detail ? ev->detail : ""));
	return api_page_add(arg, o, ev->id);
}

void api_audit_list(struct req *r)
{
	struct api_page page = { 0 };
	int64_t before, limit, since, user;

	if (http_query_i64(r, "before", 0, INT64_MAX, 0, &before) ||
	    http_query_i64(r, "limit", 1, 200, 50, &limit) ||
	    http_query_i64(r, "since", 0, INT64_MAX, 0, &since) ||
	    http_query_i64(r, "user", 0, INT64_MAX, 0, &user))
		return;
	/* Users see their own events; an admin sees everyone's (or one user's). */
	if (!r->user.is_admin)
		user = r->user.id;
	page.items = json_object_new_array();
	if (db_audit_list(r->db, user, since, before, (int)limit, audit_one, &page)) {
		json_object_put(page.items);
		reply_error(r, 500, "internal", "reading the audit log failed");
		return;
	}
	api_page_reply(r, &page, "events", limit);
}
