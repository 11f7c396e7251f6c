/* api_tasks.c - tasks on a project's board: list, create, read, edit,
 * delete, move. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "services/tasks.h"

/* Adds a member whose name is a literal not yet in o: json-c neither
 * copies the name nor looks for an older member (1,000 tasks a board). */
static void put(json_object *o, const char *key, json_object *v)
{
	json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

/* A card of the board: what the board shows of a task. The project is the
 * answer's (once, not per card), the description and the creation time
 * are GET /api/tasks/{id}'s: a 1,000-task board is a quarter smaller, and
 * that is bytes every reload moves through the pool, nginx and the
 * browser. New reference. */
static json_object *card_json(const struct db_task *t)
{
	json_object *o = json_object_new_object();

	put(o, "id", json_object_new_int64(t->id));
	put(o, "title", json_str(t->title));
	put(o, "status", json_str(t->status));
	put(o, "position", json_object_new_int64(t->position));
	put(o, "description_bytes", json_object_new_int64(t->description_bytes));
	put(o, "updated_at", json_object_new_int64(t->updated_at));
	return o;
}

/* JSON view of a task: its card, and the project, the description (only
 * when it was read) and the creation time. New reference. */
static json_object *task_json(const struct db_task *t)
{
	json_object *o = card_json(t);

	put(o, "project_id", json_object_new_int64(t->project_id));
	if (t->description)
		put(o, "description", json_string_from_bytes(t->description, strlen(t->description)));
	put(o, "created_at", json_object_new_int64(t->created_at));
	return o;
}

static void reply_task(struct req *r, int status, struct db_task *t)
{
	json_object *body = json_object_new_object();

	json_set(body, "task", task_json(t));
	db_task_release(t);
	reply_json(r, status, body);
}

/* An optional string field: 0 absent (or null), 1 present (*s, *len), -1
 * after replying 400. */
static int opt_str(struct req *r, const char *name, const char **s, size_t *len)
{
	json_object *v;

	*s = NULL;
	*len = 0;
	if (!json_object_object_get_ex(r->json, name, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string)) {
		reply_error_field(r, 400, "invalid_field", name, "'%s' must be a string", name);
		return -1;
	}
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return 1;
}

/* An optional task id field: 0 when absent (or null), -1 after replying 400. */
static int opt_id(struct req *r, const char *name, int64_t *out)
{
	int rc = json_get_i64(r->json, name, out);

	if (rc > 0) {
		*out = 0;
		return 0;
	}
	if (rc < 0 || *out < 1) {
		reply_error_field(r, 400, "invalid_field", name, "'%s' must be a task id", name);
		return -1;
	}
	return 0;
}

/* Answers what a service returned other than DB_OK. */
static void reply_failed(struct req *r, int rc, const struct task_err *err, const char *what)
{
	switch (rc) {
	case TASKS_INVALID:
		reply_error_field(r, 400, "invalid_field", err->field, "%s", err->message);
		return;
	case TASKS_FULL:
		reply_error(r, 409, "too_many_tasks", "a project holds at most %d tasks", TASKS_PER_PROJECT_MAX);
		return;
	case DB_NOTFOUND:
		reply_error(r, 404, "not_found", "no such %s", what);
		return;
	default:
		reply_error(r, 500, "internal", "storing the task failed");
	}
}

struct list_ctx {
	json_object *tasks;
	int n;
};

static int list_one(const struct db_task *t, void *arg)
{
	struct list_ctx *ctx = arg;

	ctx->n++;
	return json_object_array_add(ctx->tasks, card_json(t)) ? -1 : 0;
}

/* The board's ETag (strong; quoted) from its version and the project's
 * creation time (a project that took a removed one's id): "b2" is this
 * answer's format (b1 had whole tasks, not cards), so a change of it never
 * matches an older tag. */
static void board_etag(char *out, size_t len, int64_t created, const struct db_task_version *v)
{
	if (v->event_id)
		snprintf(out, len, "\"b2-p%lld-e%lld\"", (long long)created, (long long)v->event_id);
	else if (v->user_newest)
		snprintf(out, len, "\"b2-p%lld-w%lld\"", (long long)created, (long long)v->user_newest);
	else
		snprintf(out, len, "\"b2-p%lld-n%lld-u%lld\"", (long long)created, (long long)v->count,
			 (long long)v->max_updated);
}

void api_tasks_list(struct req *r)
{
	struct list_ctx ctx = { 0 };
	struct db_task_version v;
	json_object *body;
	int64_t project;
	int rc;

	if (http_path_id(r, "id", &project))
		return;
	/* The version (and that the project is the user's) is read before
	 * the list: a change committed between the two sends the newer tasks
	 * under the older tag, which only costs the next request a full
	 * answer (never the other way round: an older list under a newer
	 * tag). A request whose If-None-Match holds the tag gets a 304
	 * without the list being read. */
	/* Read with the session when the route's prefetch did (one round
	 * trip on PostgreSQL), else now. */
	if (r->pf.done && r->pf.board_stmt && r->pf.board_project == project)
		rc = db_prefetch_board(r->db, &r->pf, project, r->user.id, &v);
	else
		rc = db_task_version(r->db, project, r->user.id, &v);
	if (rc == DB_NOTFOUND) {
		reply_error(r, 404, "not_found", "no such project");
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "listing tasks failed");
		return;
	}
	board_etag(r->etag, sizeof(r->etag), v.project_created, &v);
	if (http_etag_matches(http_param(r, "HTTP_IF_NONE_MATCH"), r->etag)) {
		reply_not_modified(r);
		return;
	}
	ctx.tasks = json_object_new_array();
	/* One more than a project may hold: a board that somehow grew past it
	 * is refused whole rather than shown in part. */
	if (db_task_list(r->db, project, r->user.id, TASKS_PER_PROJECT_MAX + 1, list_one, &ctx)) {
		json_object_put(ctx.tasks);
		reply_error(r, 500, "internal", "listing tasks failed");
		return;
	}
	if (ctx.n > TASKS_PER_PROJECT_MAX) {
		json_object_put(ctx.tasks);
		reply_error(r, 409, "too_many_tasks", "the project has more than %d tasks", TASKS_PER_PROJECT_MAX);
		return;
	}
	body = json_object_new_object();
	json_set(body, "project_id", json_object_new_int64(project));
	json_set(body, "tasks", ctx.tasks);
	reply_json(r, 200, body);
}

void api_tasks_create(struct req *r)
{
	const char *title, *desc, *status;
	size_t title_len, desc_len, status_len;
	struct task_err err = { 0 };
	struct db_task t;
	int64_t project;
	int rc;

	if (http_path_id(r, "id", &project))
		return;
	rc = opt_str(r, "title", &title, &title_len);
	if (rc == 0)
		reply_error_field(r, 400, "invalid_field", "title", "'title' is required");
	if (rc <= 0 || opt_str(r, "description", &desc, &desc_len) < 0 ||
	    opt_str(r, "status", &status, &status_len) < 0)
		return;
	if (status && strlen(status) != status_len)
		status = "";     /* a NUL inside: no status's name */
	rc = tasks_create(r->db, r->user.id, project, title, title_len, desc, desc_len, status, now_s(), &t, &err);
	if (rc) {
		reply_failed(r, rc, &err, "project");
		return;
	}
	reply_task(r, 201, &t);
}

void api_tasks_get(struct req *r)
{
	struct db_task t;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = db_task_get(r->db, id, r->user.id, &t);
	if (rc) {
		reply_failed(r, rc, NULL, "task");
		return;
	}
	reply_task(r, 200, &t);
}

void api_tasks_update(struct req *r)
{
	const char *title, *desc;
	size_t title_len, desc_len;
	struct task_err err = { 0 };
	struct db_task t;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id) || opt_str(r, "title", &title, &title_len) < 0 ||
	    opt_str(r, "description", &desc, &desc_len) < 0)
		return;
	rc = tasks_update(r->db, r->user.id, id, title, title_len, desc, desc_len, now_s(), &t, &err);
	if (rc) {
		reply_failed(r, rc, &err, "task");
		return;
	}
	reply_task(r, 200, &t);
}

void api_tasks_delete(struct req *r)
{
	json_object *body;
	int64_t id, project = 0;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = tasks_delete(r->db, r->user.id, id, now_s(), &project);
	if (rc) {
		reply_failed(r, rc, NULL, "task");
		return;
	}
	body = json_object_new_object();
	json_set(body, "deleted", json_object_new_int64(id));
	reply_json(r, 200, body);
}

void api_tasks_move(struct req *r)
{
	struct task_err err = { 0 };
	struct db_task t;
	const char *status;
	size_t status_len;
	int64_t id, before, after;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = opt_str(r, "status", &status, &status_len);
	if (rc == 0)
		reply_error_field(r, 400, "invalid_field", "status", "'status' is required");
	if (rc <= 0 || opt_id(r, "before", &before) || opt_id(r, "after", &after))
		return;
	if (strlen(status) != status_len)
		status = "";     /* a NUL inside: no status's name */
	rc = tasks_move(r->db, r->user.id, id, status, before, after, now_s(), &t, &err);
	if (rc) {
		reply_failed(r, rc, &err, "task");
		return;
	}
	reply_task(r, 200, &t);
}
