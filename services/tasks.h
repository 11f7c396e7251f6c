/* tasks.h - the rules of a project's board: what a task may hold, where
 * a move puts it, the event each change writes. Every call is one
 * transaction, with the user's row locked first (PostgreSQL: FOR UPDATE;
 * SQLite: BEGIN IMMEDIATE), so one user's changes apply one at a time and
 * their events commit in id order. */
#ifndef ANYON_SERVICES_TASKS_H
#define ANYON_SERVICES_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define TASK_TITLE_MAX 200                 /* characters, after trimming */
#define TASK_DESCRIPTION_MAX (64 * 1024)   /* bytes */
#define TASKS_PER_PROJECT_MAX 5000
/* Room left between neighbours in a column: 2^20, so about twenty moves
 * into one spot before that column is renumbered. */
#define TASK_GAP ((int64_t)1 << 20)

/* A request's field that was refused (services answer TASKS_INVALID). */
struct task_err {
	const char *field;    /* "title", "description", "status", "before", "after" */
	char message[200];
};

/* Returned when a field is invalid (err says which and why). */
#define TASKS_INVALID 3
/* Returned by tasks_create() when the project holds TASKS_PER_PROJECT_MAX. */
#define TASKS_FULL 4

/* Whether s names a status (todo inprogress inreview done cancelled). */
bool task_status_ok(const char *s);
/* The statuses in board order, NULL-terminated. */
extern const char *const task_statuses[];

/* Checks a title of len bytes (valid UTF-8, as JSON strings are here):
 * 1 to TASK_TITLE_MAX characters once leading and trailing white space is
 * cut, no control characters (C0, DEL, C1). Writes the trimmed title to
 * out (DB_TASK_TITLE_MAX bytes). 0, or -1 with err filled. */
int task_title_check(const char *s, size_t len, char out[DB_TASK_TITLE_MAX], struct task_err *err);
/* Checks a description of len bytes: at most TASK_DESCRIPTION_MAX, no NUL. */
int task_description_check(const char *s, size_t len, struct task_err *err);

/* Each returns DB_OK, DB_NOTFOUND (no such task or project of user_id),
 * TASKS_INVALID (err says which field), TASKS_FULL or DB_ERROR. On DB_OK
 * out holds the task as it now is (release it with db_task_release()).
 * Lengths are the strings' bytes (JSON strings may hold a NUL). */

/* Adds a task at the end of its column (status NULL: todo); event
 * task.created. */
int tasks_create(struct db *db, int64_t user_id, int64_t project_id, const char *title, size_t title_len,
		 const char *description, size_t description_len, const char *status, int64_t now,
		 struct db_task *out, struct task_err *err);
/* Changes the title and/or the description (NULL: unchanged; at least one
 * is given); event task.updated. */
int tasks_update(struct db *db, int64_t user_id, int64_t id, const char *title, size_t title_len,
		 const char *description, size_t description_len, int64_t now, struct db_task *out,
		 struct task_err *err);
/* Deletes a task; event task.deleted. *project_id gets its project. */
int tasks_delete(struct db *db, int64_t user_id, int64_t id, int64_t now, int64_t *project_id);
/* Moves a task into column status: just before task `before` or just
 * after task `after` (ids of the user's tasks in that column of the same
 * project; 0: not given, and with neither, at the end). Event task.moved. */
int tasks_move(struct db *db, int64_t user_id, int64_t id, const char *status, int64_t before, int64_t after,
	       int64_t now, struct db_task *out, struct task_err *err);

#endif
