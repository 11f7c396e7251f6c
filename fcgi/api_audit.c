/* api_audit.c - GET /api/audit: the caller's events (an admin's: anyone's). */
#include "autoconfig.h"

#include <stdint.h>

#include "base/json.h"
#include "fcgi/api.h"

struct audit_page {
	json_object *events;
	size_t bytes;         /* JSON of the events so far */
	int64_t last_id;      /* of the last event on the page */
	int n;
	bool cut;             /* stopped at API_LIST_BUDGET */
};

static int audit_one(const struct db_audit *ev, void *arg)
{
	struct audit_page *p = arg;
	json_object *o = json_object_new_object();
	int rc;

	json_set(o, "id", json_object_new_int64(ev->id));
	json_set(o, "at", json_object_new_int64(ev->at));
	json_set(o, "user_id", json_i64_or_null(ev->user_id, ev->user_id > 0));
	json_set(o, "session_id", json_i64_or_null(ev->session_id, ev->session_id > 0));
	json_set(o, "actor", json_str(ev->actor ? ev->actor : ""));
	json_set(o, "action", json_str(ev->action ? ev->action : ""));
	json_set(o, "outcome", json_str(ev->outcome ? ev->outcome : ""));
	json_set(o, "detail", json_str(ev->detail ? ev->detail : ""));
	rc = json_array_add_within(p->events, o, &p->bytes, API_LIST_BUDGET);
	if (rc == 0) {
		p->last_id = ev->id;
		p->n++;
	}
	p->cut = rc > 0;
	return rc;
}

void api_audit_list(struct req *r)
{
	struct audit_page page = { 0 };
	int64_t before, limit, since, user;
	json_object *body;

	if (http_query_i64(r, "before", 0, INT64_MAX, 0, &before) ||
	    http_query_i64(r, "limit", 1, 200, 50, &limit) ||
	    http_query_i64(r, "since", 0, INT64_MAX, 0, &since) ||
	    http_query_i64(r, "user", 0, INT64_MAX, 0, &user))
		return;
	/* Users see their own events; an admin sees everyone's (or one user's). */
	if (!r->user.is_admin)
		user = r->user.id;
	page.events = json_object_new_array();
	if (db_audit_list(r->db, user, since, before, (int)limit, audit_one, &page)) {
		json_object_put(page.events);
		reply_error(r, 500, "internal", "reading the audit log failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "events", page.events);
	json_set(body, "next_before", json_i64_or_null(page.last_id, page.cut || page.n == limit));
	reply_json(r, 200, body);
}
