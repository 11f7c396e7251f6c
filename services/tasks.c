/* tasks.c - the rules of a project's board (see tasks.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "services/tasks.h"

const char *const task_statuses[] = { "todo", "inprogress", "inreview", "done", "cancelled", NULL };

bool task_status_ok(const char *s)
{
	for (size_t i = 0; task_statuses[i]; i++)
		if (strcmp(s, task_statuses[i]) == 0)
			return true;
	return false;
}

static int refuse(struct task_err *err, const char *field, const char *msg)
{
	err->field = field;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return -1;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int task_title_check(const char *s, size_t len, char out[DB_TASK_TITLE_MAX], struct task_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t chars = 0;

	while (len && is_space(p[0])) {
		p++;
		len--;
	}
	while (len && is_space(p[len - 1]))
		len--;
	if (len == 0)
		return refuse(err, "title", "'title' must not be empty");
	for (size_t i = 0; i < len; i++) {
		/* C0 controls (NUL included), DEL, and C1 (U+0080-U+009F, in
		 * UTF-8 0xC2 0x80-0x9F). */
		if (p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f))
			return refuse(err, "title", "'title' must not contain control characters");
		if ((p[i] & 0xc0) != 0x80)
			chars++;
	}
	if (chars > TASK_TITLE_MAX || len >= DB_TASK_TITLE_MAX) {
		snprintf(err->message, sizeof(err->message), "'title' must be at most %d characters", TASK_TITLE_MAX);
		err->field = "title";
		return -1;
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

int task_description_check(const char *s, size_t len, struct task_err *err)
{
	if (len > TASK_DESCRIPTION_MAX) {
		snprintf(err->message, sizeof(err->message), "'description' must be at most %d bytes",
			 TASK_DESCRIPTION_MAX);
		err->field = "description";
		return -1;
	}
	if (memchr(s, '\0', len))
		return refuse(err, "description", "'description' must not contain NUL characters");
	return 0;
}

enum spot { SPOT_END, SPOT_BEFORE, SPOT_AFTER };

/* A free position in column (project, status) for task id (left out of
 * the column's rows): at the end, or just before or after the position
 * `at`. DB_OK, DB_CONFLICT when no key is free there (the column needs
 * renumbering), or DB_ERROR. */
static int find_spot(struct db *db, int64_t project, const char *status, int64_t id, enum spot where,
		     int64_t at, int64_t *pos)
{
	int64_t n = 0;
	int rc;

	switch (where) {
	case SPOT_END:
		rc = db_task_neighbor(db, project, status, id, INT64_MAX, true, &n);
		if (rc == DB_NOTFOUND) {
			*pos = TASK_GAP;
			return DB_OK;
		}
		if (rc)
			return rc;
		if (n > INT64_MAX - TASK_GAP)
			return DB_CONFLICT;
		*pos = n + TASK_GAP;
		return DB_OK;
	case SPOT_BEFORE:
		rc = db_task_neighbor(db, project, status, id, at, true, &n);
		if (rc == DB_NOTFOUND)
			n = 0;       /* positions are >= 1 */
		else if (rc)
			return rc;
		if (at - n < 2)
			return DB_CONFLICT;
		*pos = n + (at - n) / 2;
		return DB_OK;
	case SPOT_AFTER:
		rc = db_task_neighbor(db, project, status, id, at, false, &n);
		if (rc == DB_NOTFOUND) {
			if (at > INT64_MAX - TASK_GAP)
				return DB_CONFLICT;
			*pos = at + TASK_GAP;
			return DB_OK;
		}
		if (rc)
			return rc;
		if (n - at < 2)
			return DB_CONFLICT;
		*pos = at + (n - at) / 2;
		return DB_OK;
	}
	return DB_ERROR;
}

/* find_spot() relative to task anchor (0: at the end); when the column
 * has no room there, renumbers it and looks again (the anchor's position
 * changed with it). */
static int spot_or_renumber(struct db *db, int64_t user_id, int64_t project, const char *status, int64_t id,
			    enum spot where, int64_t anchor, int64_t *pos)
{
	struct db_task a;
	int64_t at = 0;
	int rc;

	for (int round = 0; round < 2; round++) {
		if (anchor) {
			if (db_task_get(db, anchor, user_id, &a) != DB_OK)
				return DB_ERROR;
			at = a.position;
			db_task_release(&a);
		}
		rc = find_spot(db, project, status, id, where, at, pos);
		if (rc != DB_CONFLICT)
			return rc;
		if (round == 0 && db_task_renumber(db, project, status, TASK_GAP))
			return DB_ERROR;
	}
	return DB_ERROR;     /* a renumbered column always has room */
}

int tasks_create(struct db *db, int64_t user_id, int64_t project_id, const char *title, size_t title_len,
		 const char *description, size_t description_len, const char *status, int64_t now,
		 struct db_task *out, struct task_err *err)
{
	struct db_project p;
	struct db_task t = { 0 };
	int64_t n = 0;
	int rc;

	if (task_title_check(title, title_len, t.title, err))
		return TASKS_INVALID;
	if (description && task_description_check(description, description_len, err))
		return TASKS_INVALID;
	if (!status)
		status = "todo";
	if (!task_status_ok(status)) {
		refuse(err, "status", "'status' must be one of todo, inprogress, inreview, done, cancelled");
		return TASKS_INVALID;
	}
	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_project_get(db, project_id, user_id, &p);
	if (rc != DB_OK)
		return db_end(db, rc);
	db_project_release(&p);
	if (db_task_count(db, project_id, &n))
		return db_end(db, DB_ERROR);
	if (n >= TASKS_PER_PROJECT_MAX)
		return db_end(db, TASKS_FULL);
	t.user_id = user_id;
	t.project_id = project_id;
	t.description = (char *)(description ? description : "");
	snprintf(t.status, sizeof(t.status), "%s", status);
	t.created_at = t.updated_at = now;
	rc = spot_or_renumber(db, user_id, project_id, status, 0, SPOT_END, 0, &t.position);
	if (rc == DB_OK)
		rc = db_task_create(db, &t);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "task.created", t.id, project_id, now, NULL);
	if (rc == DB_OK)
		rc = db_task_get(db, t.id, user_id, out);
	if (rc != DB_OK)
		return db_end(db, DB_ERROR);
	rc = db_end(db, DB_OK);
	if (rc != DB_OK)
		db_task_release(out);
	return rc;
}

int tasks_update(struct db *db, int64_t user_id, int64_t id, const char *title, size_t title_len,
		 const char *description, size_t description_len, int64_t now, struct db_task *out,
		 struct task_err *err)
{
	char clean[DB_TASK_TITLE_MAX];
	struct db_task t = { 0 };
	int rc;

	if (!title && !description) {
		refuse(err, "title", "give 'title', 'description' or both");
		return TASKS_INVALID;
	}
	if (title && task_title_check(title, title_len, clean, err))
		return TASKS_INVALID;
	if (description && task_description_check(description, description_len, err))
		return TASKS_INVALID;
	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_task_update(db, id, user_id, title ? clean : NULL, description, now);
	if (rc != DB_OK)
		return db_end(db, rc);
	rc = db_task_get(db, id, user_id, &t);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "task.updated", id, t.project_id, now, NULL);
	if (rc != DB_OK) {
		db_task_release(&t);
		return db_end(db, DB_ERROR);
	}
	rc = db_end(db, DB_OK);
	if (rc == DB_OK)
		*out = t;
	else
		db_task_release(&t);
	return rc;
}

int tasks_delete(struct db *db, int64_t user_id, int64_t id, int64_t now, int64_t *project_id)
{
	int rc;

	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_task_delete(db, id, user_id, project_id);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "task.deleted", id, *project_id, now, NULL) ? DB_ERROR : DB_OK;
	return db_end(db, rc);
}

/* Checks that anchor (the value of field) is a task of the user in column
 * status of project. */
static int check_anchor(struct db *db, int64_t user_id, int64_t id, int64_t anchor, int64_t project,
			const char *status, const char *field, struct task_err *err)
{
	struct db_task a;
	int rc;
	bool same;

	if (anchor == id) {
		snprintf(err->message, sizeof(err->message), "'%s' must be another task than the one moved", field);
		err->field = field;
		return TASKS_INVALID;
	}
	rc = db_task_get(db, anchor, user_id, &a);
	if (rc == DB_ERROR)
		return DB_ERROR;
	same = rc == DB_OK && a.project_id == project && strcmp(a.status, status) == 0;
	if (rc == DB_OK)
		db_task_release(&a);
	if (!same) {
		/* Unknown, another user's, another project's or another
		 * column's: one answer, so no one learns of others' ids. */
		snprintf(err->message, sizeof(err->message),
			 "'%s' must be the id of a task in column '%s' of the same project", field, status);
		err->field = field;
		return TASKS_INVALID;
	}
	return DB_OK;
}

int tasks_move(struct db *db, int64_t user_id, int64_t id, const char *status, int64_t before, int64_t after,
	       int64_t now, struct db_task *out, struct task_err *err)
{
	struct db_task t;
	enum spot where = SPOT_END;
	int64_t anchor = 0, pos = 0;
	int rc;

	if (!task_status_ok(status)) {
		refuse(err, "status", "'status' must be one of todo, inprogress, inreview, done, cancelled");
		return TASKS_INVALID;
	}
	if (before && after) {
		refuse(err, "after", "give 'before' or 'after', not both");
		return TASKS_INVALID;
	}
	if (before) {
		where = SPOT_BEFORE;
		anchor = before;
	} else if (after) {
		where = SPOT_AFTER;
		anchor = after;
	}
	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_task_get(db, id, user_id, &t);
	if (rc != DB_OK)
		return db_end(db, rc);
	db_task_release(&t);
	if (anchor) {
		rc = check_anchor(db, user_id, id, anchor, t.project_id, status, before ? "before" : "after", err);
		if (rc != DB_OK)
			return db_end(db, rc);
	}
	rc = spot_or_renumber(db, user_id, t.project_id, status, id, where, anchor, &pos);
	if (rc == DB_OK)
		rc = db_task_place(db, id, status, pos, now);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "task.moved", id, t.project_id, now, NULL);
	if (rc == DB_OK)
		rc = db_task_get(db, id, user_id, out);
	if (rc != DB_OK)
		return db_end(db, DB_ERROR);
	rc = db_end(db, DB_OK);
	if (rc != DB_OK)
		db_task_release(out);
	return rc;
}
