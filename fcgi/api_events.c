/* api_events.c - the signed-in user's change feed. */
#include "autoconfig.h"

#include "base/json.h"
#include "base/util.h"
#include "fcgi/api.h"

#define EVENTS_LIMIT_MAX 500
#define EVENTS_LIMIT_DEFAULT 100

struct events_ctx {
	json_object *events;
	int64_t last;        /* id of the last event added */
};

static int event_one(const struct db_event *ev, void *arg)
{
	struct events_ctx *ctx = arg;
	json_object *o = json_object_new_object();

	json_set(o, "id", json_object_new_int64(ev->id));
	json_set(o, "kind", json_str(ev->kind));
	json_set(o, "subject", json_object_new_int64(ev->subject));
	json_set(o, "project_id", json_i64_or_null(ev->project_id, ev->project_id > 0));
	json_set(o, "created_at", json_object_new_int64(ev->created_at));
	ctx->last = ev->id;
	return json_object_array_add(ctx->events, o) ? -1 : 0;
}

int api_events_args(struct req *r, bool reply, int64_t *after, int64_t *limit)
{
	if (reply)
		return http_query_i64(r, "after", 0, INT64_MAX, 0, after) ||
		       http_query_i64(r, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, limit) ? -1 : 0;
	return http_query_i64_quiet(r, "after", 0, INT64_MAX, 0, after) ||
	       http_query_i64_quiet(r, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, limit) ? -1 : 0;
}

/* Answers at once, never waits for an event: the browser polls. The events
 * may have come with the session (r->pf, the route's prefetch): read in the
 * session's round trip, keyed by its user in SQL, and each row checked in C
 * to be this user's before it is used (db_prefetch_events()). */
void api_events_list(struct req *r)
{
	struct events_ctx ctx;
	json_object *body;
	int64_t after, limit;
	bool more = false, prefetched;
	int rc;

	if (api_events_args(r, true, &after, &limit))
		return;
	ctx.events = json_object_new_array();
	ctx.last = after;
	prefetched = r->pf.done && r->pf.events_stmt && r->pf.events && r->pf.after == after &&
		     r->pf.limit == limit && r->pf.rows_user == r->user.id;
	if (prefetched)
		rc = db_prefetch_events(r->db, &r->pf, r->user.id, event_one, &ctx, &more);
	else
		rc = db_event_list(r->db, r->user.id, after, (int)limit, event_one, &ctx, &more);
	if (rc) {
		json_object_put(ctx.events);
		reply_error(r, 500, "internal", "reading events failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "events", ctx.events);
	json_set(body, "next_after", json_object_new_int64(ctx.last));
	json_set(body, "more", json_object_new_boolean(more));
	reply_json(r, 200, body);
}
