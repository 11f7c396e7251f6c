/* tasks.c - the tasks on a user's project boards. The rules (validation,
 * where a move puts a task, the event of each change) are in
 * services/tasks.c; these are its statements. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "db/query.h"

/* Columns in board order: the status's rank, then the position. */
#define STATUS_RANK "CASE status WHEN 'todo' THEN 0 WHEN 'inprogress' THEN 1 WHEN 'inreview' THEN 2 " \
	"WHEN 'done' THEN 3 ELSE 4 END"
#define TASK_COLS "id, user_id, project_id, title, status, position, created_at, updated_at"

static struct query q_create = QUERY("task.create",
	"INSERT INTO tasks (user_id, project_id, title, description, status, position, created_at, updated_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id");
static struct query q_get = QUERY2("task.get",
	"SELECT " TASK_COLS ", description, length(CAST(description AS BLOB)) FROM tasks "
	"WHERE id = ?1 AND user_id = ?2",
	"SELECT " TASK_COLS ", description, octet_length(description) FROM tasks "
	"WHERE id = ?1 AND user_id = ?2");
static struct query q_update = QUERY("task.update",
	"UPDATE tasks SET title = coalesce(?3, title), description = coalesce(?4, description), "
	"updated_at = ?5 WHERE id = ?1 AND user_id = ?2");
static struct query q_delete = QUERY("task.delete",
	"DELETE FROM tasks WHERE id = ?1 AND user_id = ?2 RETURNING project_id");
static struct query q_list = QUERY2("task.list",
	"SELECT " TASK_COLS ", NULL, length(CAST(description AS BLOB)) FROM tasks "
	"WHERE project_id = ?1 AND user_id = ?2 ORDER BY " STATUS_RANK ", position LIMIT ?3",
	"SELECT " TASK_COLS ", NULL, octet_length(description) FROM tasks "
	"WHERE project_id = ?1 AND user_id = ?2 ORDER BY " STATUS_RANK ", position LIMIT ?3");
/* The board's version (db_task_version()), with the project's ownership
 * in the same statement (one round trip): the board's newest task or
 * project event, looked for down the user's events (events_user) no
 * further than the user's newest ?3; the user's newest event; how many of
 * the user's events the window holds. */
static struct query q_version = QUERY("task.version",
	"SELECT p.created_at, "
	"coalesce((SELECT e.id FROM events e WHERE e.user_id = ?2 AND e.project_id = ?1 "
	"AND (e.kind LIKE 'task.%' OR e.kind LIKE 'project.%') "
	"AND e.id >= (SELECT coalesce(min(w.id), 0) FROM "
	"(SELECT id FROM events WHERE user_id = ?2 ORDER BY id DESC LIMIT ?3) AS w) "
	"ORDER BY e.id DESC LIMIT 1), 0), "
	"coalesce((SELECT max(id) FROM events WHERE user_id = ?2), 0), "
	"(SELECT count(*) FROM (SELECT id FROM events WHERE user_id = ?2 ORDER BY id DESC LIMIT ?3) AS c) "
	"FROM projects p WHERE p.id = ?1 AND p.user_id = ?2");
/* The same as q_version, the user being the session's (?1..?3, as
 * SESSION_USER_WHERE says) and the project ?4, the window ?5: queued with
 * the session's own read (db_session_find_prefetch()). The inner reads
 * name the user through the session's row again (SESSION_ME: uncorrelated,
 * read once); the row exists only when the session is live and the
 * project its user's, and carries that user for the caller to check. */
#define SESSION_ME "(SELECT s2.user_id FROM sessions s2 WHERE s2.token_hash = ?1 AND s2.cloud = ?3)"
static struct query q_session_version = QUERY("task.version_with_session",
	"SELECT p.created_at, "
	"coalesce((SELECT e.id FROM events e WHERE e.user_id = " SESSION_ME " AND e.project_id = ?4 "
	"AND (e.kind LIKE 'task.%' OR e.kind LIKE 'project.%') "
	"AND e.id >= (SELECT coalesce(min(w.id), 0) FROM "
	"(SELECT id FROM events WHERE user_id = " SESSION_ME " ORDER BY id DESC LIMIT ?5) AS w) "
	"ORDER BY e.id DESC LIMIT 1), 0), "
	"coalesce((SELECT max(id) FROM events WHERE user_id = " SESSION_ME "), 0), "
	"(SELECT count(*) FROM (SELECT id FROM events WHERE user_id = " SESSION_ME " ORDER BY id DESC LIMIT ?5) AS c), "
	"p.user_id "
	"FROM " SESSION_USER_FROM " JOIN projects p ON p.user_id = s.user_id "
	"WHERE " SESSION_USER_WHERE " AND p.id = ?4");
static struct query q_shape = QUERY("task.shape",
	"SELECT count(*), coalesce(max(updated_at), 0) FROM tasks WHERE project_id = ?1 AND user_id = ?2");
static struct query q_count = QUERY("task.count",
	"SELECT count(*) FROM tasks WHERE project_id = ?1");
static struct query q_below = QUERY("task.below",
	"SELECT max(position) FROM tasks WHERE project_id = ?1 AND status = ?2 AND id <> ?3 AND position < ?4");
static struct query q_above = QUERY("task.above",
	"SELECT min(position) FROM tasks WHERE project_id = ?1 AND status = ?2 AND id <> ?3 AND position > ?4");
static struct query q_place = QUERY("task.place",
	"UPDATE tasks SET status = ?2, position = ?3, updated_at = ?4 WHERE id = ?1");
/* Two steps, so that no statement ever makes two rows of the column share
 * a position (the unique index checks each row as it is written): first
 * every position turns negative (distinct, below every new one), then
 * each row takes its rank in the old order times the gap. */
static struct query q_negate = QUERY("task.renumber_negate",
	"UPDATE tasks SET position = -position WHERE project_id = ?1 AND status = ?2");
static struct query q_renumber = QUERY("task.renumber",
	"UPDATE tasks SET position = r.rn * ?3 FROM "
	"(SELECT id, row_number() OVER (ORDER BY position DESC) AS rn FROM tasks "
	"WHERE project_id = ?1 AND status = ?2) AS r WHERE tasks.id = r.id");

void db_task_release(struct db_task *t)
{
	free(t->description);
	t->description = NULL;
}

/* Reads TASK_COLS, then the description (col 8, unless NULL) and its length. */
static int task_cols(struct stmt *s, struct db_task *t)
{
	memset(t, 0, sizeof(*t));
	t->id = q_i64(s, 0);
	t->user_id = q_i64(s, 1);
	t->project_id = q_i64(s, 2);
	t->position = q_i64(s, 5);
	t->created_at = q_i64(s, 6);
	t->updated_at = q_i64(s, 7);
	t->description_bytes = q_i64(s, 9);
	if (q_copy(s, 3, t->title, sizeof(t->title)) || q_copy(s, 4, t->status, sizeof(t->status)) ||
	    (!q_null(s, 8) && q_strdup(s, 8, &t->description))) {
		db_task_release(t);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_task_create(struct db *db, struct db_task *t)
{
	struct stmt *s = q_start(db, &q_create);
	int rc;

	q_int(s, 1, t->user_id);
	q_int(s, 2, t->project_id);
	q_text(s, 3, t->title);
	q_text(s, 4, t->description ? t->description : "");
	q_text(s, 5, t->status);
	q_int(s, 6, t->position);
	q_int(s, 7, t->created_at);
	rc = q_row(s);
	if (rc == DB_OK)
		t->id = q_i64(s, 0);
	q_end(s);
	return rc == DB_NOTFOUND ? DB_ERROR : rc;
}

int db_task_get(struct db *db, int64_t id, int64_t user_id, struct db_task *out)
{
	struct stmt *s = q_start(db, &q_get);
	int rc;

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = task_cols(s, out);
	q_end(s);
	return rc;
}

int db_task_update(struct db *db, int64_t id, int64_t user_id, const char *title, const char *description,
		   int64_t now)
{
	struct stmt *s = q_start(db, &q_update);

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	q_text(s, 3, title);
	q_text(s, 4, description);
	q_int(s, 5, now);
	return q_one(s);
}

int db_task_delete(struct db *db, int64_t id, int64_t user_id, int64_t *project_id)
{
	struct stmt *s = q_start(db, &q_delete);
	int rc;

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	rc = q_row(s);
	if (rc == DB_OK) {
		*project_id = q_i64(s, 0);
		/* Run the statement to its end (PostgreSQL's RETURNING). */
		if (q_step(s) != BE_DONE)
			rc = DB_ERROR;
	}
	q_end(s);
	return rc;
}

struct task_each {
	db_task_fn fn;
	void *arg;
};

static int task_row(struct stmt *s, void *arg)
{
	struct task_each *each = arg;
	struct db_task t;
	int rc;

	if (task_cols(s, &t))
		return -1;
	rc = each->fn(&t, each->arg);
	db_task_release(&t);
	return rc;
}

int db_task_list(struct db *db, int64_t project_id, int64_t user_id, int limit, db_task_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);

	q_int(s, 1, project_id);
	q_int(s, 2, user_id);
	q_int(s, 3, limit);
	return q_each(s, task_row, &(struct task_each){ fn, arg });
}

/* Reads q_version's (or q_session_version's) row into v; *walked: how
 * many of the user's events the window held. */
static void version_cols(struct stmt *s, struct db_task_version *v, int64_t *walked)
{
	v->project_created = q_i64(s, 0);
	v->event_id = q_i64(s, 1);
	v->user_newest = q_i64(s, 2);
	*walked = q_i64(s, 3);
}

/* The rest of db_task_version() once its first row is read. */
static int version_finish(struct db *db, int64_t project_id, int64_t user_id, struct db_task_version *v,
			  int64_t walked)
{
	struct stmt *s;
	int rc;

	if (v->event_id)
		v->user_newest = 0;
	if (v->event_id || walked == DB_TASK_VERSION_WINDOW)
		return DB_OK;
	/* Every event of the user walked, none of the board's: retention
	 * took them. Its shape. */
	v->user_newest = 0;
	s = q_start(db, &q_shape);
	q_int(s, 1, project_id);
	q_int(s, 2, user_id);
	rc = q_row(s);
	if (rc == DB_OK) {
		v->count = q_i64(s, 0);
		v->max_updated = q_i64(s, 1);
	}
	q_end(s);
	return rc == DB_NOTFOUND ? DB_ERROR : rc;
}

int db_task_version(struct db *db, int64_t project_id, int64_t user_id, struct db_task_version *v)
{
	struct stmt *s = q_start(db, &q_version);
	int64_t walked = 0;
	int rc;

	memset(v, 0, sizeof(*v));
	q_int(s, 1, project_id);
	q_int(s, 2, user_id);
	q_int(s, 3, DB_TASK_VERSION_WINDOW);
	rc = q_row(s);
	if (rc == DB_OK)
		version_cols(s, v, &walked);
	q_end(s);
	return rc == DB_OK ? version_finish(db, project_id, user_id, v, walked) : rc;
}

struct stmt *session_board_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
				 int64_t project_id)
{
	struct stmt *s = session_q_start(db, &q_session_version, hash, now, cloud);

	q_int(s, 4, project_id);
	q_int(s, 5, DB_TASK_VERSION_WINDOW);
	return s;
}

int db_prefetch_board(struct db *db, struct db_prefetch *pf, int64_t project_id, int64_t user_id,
		      struct db_task_version *v)
{
	struct stmt *s = pf->board_stmt;
	int64_t walked = 0;
	int rc;

	memset(v, 0, sizeof(*v));
	if (!pf->done || !s || user_id <= 0 || pf->rows_user != user_id || pf->board_project != project_id)
		return DB_ERROR;
	pf->board_stmt = NULL;
	rc = q_row(s);
	/* The row's project is the session user's by the join; checked
	 * again here, as the events' rows are. */
	if (rc == DB_OK && q_i64(s, 4) != user_id)
		rc = DB_ERROR;
	if (rc == DB_OK)
		version_cols(s, v, &walked);
	q_end(s);
	return rc == DB_OK ? version_finish(db, project_id, user_id, v, walked) : rc;
}

int db_task_count(struct db *db, int64_t project_id, int64_t *n)
{
	struct stmt *s = q_start(db, &q_count);
	int rc;

	q_int(s, 1, project_id);
	rc = q_row(s);
	if (rc == DB_OK)
		*n = q_i64(s, 0);
	q_end(s);
	return rc == DB_NOTFOUND ? DB_ERROR : rc;
}

int db_task_neighbor(struct db *db, int64_t project_id, const char *status, int64_t exclude, int64_t pos,
		     bool below, int64_t *out)
{
	struct stmt *s = q_start(db, below ? &q_below : &q_above);
	int rc;

	q_int(s, 1, project_id);
	q_text(s, 2, status);
	q_int(s, 3, exclude);
	q_int(s, 4, pos);
	rc = q_row(s);
	if (rc == DB_OK) {
		if (q_null(s, 0))
			rc = DB_NOTFOUND;
		else
			*out = q_i64(s, 0);
	} else if (rc == DB_NOTFOUND) {
		rc = DB_ERROR;     /* an aggregate always has a row */
	}
	q_end(s);
	return rc;
}

int db_task_place(struct db *db, int64_t id, const char *status, int64_t position, int64_t now)
{
	struct stmt *s = q_start(db, &q_place);

	q_int(s, 1, id);
	q_text(s, 2, status);
	q_int(s, 3, position);
	q_int(s, 4, now);
	return q_one(s);
}

int db_task_renumber(struct db *db, int64_t project_id, const char *status, int64_t gap)
{
	struct stmt *s;

	if (db_tx_depth(db) == 0)
		return db_failed(db, "task.renumber outside a transaction");
	s = q_start(db, &q_negate);
	q_int(s, 1, project_id);
	q_text(s, 2, status);
	if (q_exec(s, NULL))
		return DB_ERROR;
	s = q_start(db, &q_renumber);
	q_int(s, 1, project_id);
	q_text(s, 2, status);
	q_int(s, 3, gap);
	return q_exec(s, NULL);
}
