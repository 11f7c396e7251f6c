/* attempts.c - executors, attempts, their runs and stored diffs. The rules
 * (which state follows which, the task's status, the events) are in
 * services/attempts.c; these are its statements. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "db/query.h"

#define EXECUTOR_COLS "name, label, command, resume, parser, credential, position"
#define ATTEMPT_COLS "id, user_id, project_id, task_id, executor, base_branch, branch, state, " \
	"coalesce(error, ''), coalesce(error_code, ''), coalesce(session_id, ''), coalesce(base_commit, ''), " \
	"coalesce(head_commit, ''), coalesce(pr_url, ''), coalesce(pr_number, 0), coalesce(pr_state, ''), " \
	"pr_title, pr_body, created_at, updated_at, coalesce(pr_error, '')"
#define RUN_COLS "id, attempt_id, user_id, seq, prompt, coalesce(job_id, 0), state, exit_code, created_at, " \
	"coalesce(finished_at, 0)"

static struct query q_exec_get = QUERY("executor.get",
	"SELECT " EXECUTOR_COLS " FROM executors WHERE name = ?1");
static struct query q_exec_list = QUERY("executor.list",
	"SELECT " EXECUTOR_COLS " FROM executors ORDER BY position, name");

static struct query q_create = QUERY("attempt.create",
	"INSERT INTO attempts (user_id, project_id, task_id, executor, base_branch, branch, state, created_at, "
	"updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT DO NOTHING RETURNING id");
static struct query q_get = QUERY("attempt.get",
	"SELECT " ATTEMPT_COLS " FROM attempts WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)");
static struct query q_list = QUERY("attempt.list",
	"SELECT " ATTEMPT_COLS " FROM attempts WHERE task_id = ?1 AND user_id = ?2 ORDER BY id DESC LIMIT ?3");
static struct query q_counts = QUERY("attempt.task_counts",
	"SELECT coalesce(sum(CASE WHEN state IN ('queued', 'running') THEN 1 ELSE 0 END), 0), "
	"coalesce(sum(CASE WHEN state IN ('completed', 'failed') THEN 1 ELSE 0 END), 0), count(*) "
	"FROM attempts WHERE task_id = ?1");
static struct query q_set_state = QUERY("attempt.set_state",
	"UPDATE attempts SET state = ?2, error = ?3, error_code = ?4, updated_at = ?5 WHERE id = ?1");
static struct query q_set_found = QUERY("attempt.set_found",
	"UPDATE attempts SET session_id = coalesce(?2, session_id), base_commit = coalesce(base_commit, ?3), "
	"head_commit = coalesce(?4, head_commit), updated_at = ?5 WHERE id = ?1");
static struct query q_set_pr_request = QUERY("attempt.set_pr_request",
	"UPDATE attempts SET pr_title = ?2, pr_body = ?3, pr_state = 'pending', pr_error = NULL, updated_at = ?4 "
	"WHERE id = ?1");
static struct query q_set_pr = QUERY("attempt.set_pr",
	"UPDATE attempts SET pr_url = ?2, pr_number = ?3, pr_state = ?4, pr_error = NULL, updated_at = ?5 "
	"WHERE id = ?1");
static struct query q_set_pr_failed = QUERY("attempt.set_pr_failed",
	"UPDATE attempts SET pr_state = 'failed', pr_error = ?2, updated_at = ?3 WHERE id = ?1");

static struct query q_run_create = QUERY("attempt_run.create",
	"INSERT INTO attempt_runs (attempt_id, user_id, seq, prompt, state, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING RETURNING id");
static struct query q_run_get = QUERY("attempt_run.get",
	"SELECT " RUN_COLS " FROM attempt_runs WHERE id = ?1");
static struct query q_run_list = QUERY("attempt_run.list",
	"SELECT " RUN_COLS " FROM attempt_runs WHERE attempt_id = ?1 ORDER BY seq");
static struct query q_run_last = QUERY("attempt_run.last",
	"SELECT " RUN_COLS " FROM attempt_runs WHERE attempt_id = ?1 ORDER BY seq DESC LIMIT 1");
static struct query q_run_orphans = QUERY("attempt_run.orphans",
	"SELECT r.attempt_id, r.id, coalesce(j.state, ''), coalesce(j.error, '') FROM attempt_runs r "
	"LEFT JOIN jobs j ON j.id = r.job_id WHERE r.state IN ('queued', 'running') "
	"AND (j.id IS NULL OR j.state IN ('succeeded', 'failed', 'cancelled')) ORDER BY r.id LIMIT ?1");
static struct query q_run_set_job = QUERY("attempt_run.set_job",
	"UPDATE attempt_runs SET job_id = ?2 WHERE id = ?1");
static struct query q_run_set_state = QUERY("attempt_run.set_state",
	"UPDATE attempt_runs SET state = ?2, exit_code = ?3, finished_at = NULLIF(?4, 0) WHERE id = ?1");

static struct query q_diff_put = QUERY("attempt_diff.put",
	"INSERT INTO attempt_diffs (attempt_id, diff, files, additions, deletions, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (attempt_id) DO UPDATE SET diff = excluded.diff, "
	"files = excluded.files, additions = excluded.additions, deletions = excluded.deletions, "
	"created_at = excluded.created_at");
static struct query q_diff_get = QUERY("attempt_diff.get",
	"SELECT files, additions, deletions, created_at, CASE WHEN ?2 = 1 THEN diff END FROM attempt_diffs "
	"WHERE attempt_id = ?1");

/* ---- executors ---- */

void db_executor_release(struct db_executor *e)
{
	free(e->command);
	free(e->resume);
	e->command = e->resume = NULL;
}

static int executor_cols(struct stmt *s, struct db_executor *e)
{
	memset(e, 0, sizeof(*e));
	e->position = q_i64(s, 6);
	if (q_copy(s, 0, e->name, sizeof(e->name)) || q_copy(s, 1, e->label, sizeof(e->label)) ||
	    q_strdup(s, 2, &e->command) || (!q_null(s, 3) && q_strdup(s, 3, &e->resume)) ||
	    q_copy(s, 4, e->parser, sizeof(e->parser)) || q_copy(s, 5, e->credential, sizeof(e->credential))) {
		db_executor_release(e);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_executor_get(struct db *db, const char *name, struct db_executor *out)
{
	struct stmt *s = q_start(db, &q_exec_get);
	int rc;

	q_text(s, 1, name);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = executor_cols(s, out);
	q_end(s);
	return rc;
}

struct executor_each {
	db_executor_fn fn;
	void *arg;
};

static int executor_row(struct stmt *s, void *arg)
{
	struct executor_each *each = arg;
	struct db_executor e;
	int rc;

	if (executor_cols(s, &e))
		return -1;
	rc = each->fn(&e, each->arg);
	db_executor_release(&e);
	return rc;
}

int db_executor_list(struct db *db, db_executor_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_exec_list);

	return q_each(s, executor_row, &(struct executor_each){ fn, arg });
}

/* ---- attempts ---- */

void db_attempt_release(struct db_attempt *a)
{
	free(a->pr_title);
	free(a->pr_body);
	a->pr_title = a->pr_body = NULL;
}

static int attempt_cols(struct stmt *s, struct db_attempt *a)
{
	memset(a, 0, sizeof(*a));
	a->id = q_i64(s, 0);
	a->user_id = q_i64(s, 1);
	a->project_id = q_i64(s, 2);
	a->task_id = q_i64(s, 3);
	a->pr_number = q_i64(s, 14);
	a->created_at = q_i64(s, 18);
	a->updated_at = q_i64(s, 19);
	if (q_copy(s, 4, a->executor, sizeof(a->executor)) || q_copy(s, 5, a->base_branch, sizeof(a->base_branch)) ||
	    q_copy(s, 6, a->branch, sizeof(a->branch)) || q_copy(s, 7, a->state, sizeof(a->state)) ||
	    q_copy(s, 8, a->error, sizeof(a->error)) || q_copy(s, 9, a->error_code, sizeof(a->error_code)) ||
	    q_copy(s, 10, a->session_id, sizeof(a->session_id)) ||
	    q_copy(s, 11, a->base_commit, sizeof(a->base_commit)) ||
	    q_copy(s, 12, a->head_commit, sizeof(a->head_commit)) || q_copy(s, 13, a->pr_url, sizeof(a->pr_url)) ||
	    q_copy(s, 15, a->pr_state, sizeof(a->pr_state)) || q_copy(s, 20, a->pr_error, sizeof(a->pr_error)) ||
	    (!q_null(s, 16) && q_strdup(s, 16, &a->pr_title)) || (!q_null(s, 17) && q_strdup(s, 17, &a->pr_body))) {
		db_attempt_release(a);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_attempt_create(struct db *db, struct db_attempt *a)
{
	struct stmt *s = q_start(db, &q_create);
	int rc;

	q_int(s, 1, a->user_id);
	q_int(s, 2, a->project_id);
	q_int(s, 3, a->task_id);
	q_text(s, 4, a->executor);
	q_text(s, 5, a->base_branch);
	q_text(s, 6, a->branch);
	q_text(s, 7, a->state[0] ? a->state : "queued");
	q_int(s, 8, a->created_at);
	rc = q_row(s);
	if (rc == DB_OK)
		a->id = q_i64(s, 0);
	q_end(s);
	/* ON CONFLICT DO NOTHING: no row back is the branch taken (without
	 * the error that would end a PostgreSQL transaction). */
	return rc == DB_NOTFOUND ? DB_CONFLICT : rc;
}

int db_attempt_get(struct db *db, int64_t id, int64_t user_id, struct db_attempt *out)
{
	struct stmt *s = q_start(db, &q_get);
	int rc;

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = attempt_cols(s, out);
	q_end(s);
	return rc;
}

struct attempt_each {
	db_attempt_fn fn;
	void *arg;
};

static int attempt_row(struct stmt *s, void *arg)
{
	struct attempt_each *each = arg;
	struct db_attempt a;
	int rc;

	if (attempt_cols(s, &a))
		return -1;
	rc = each->fn(&a, each->arg);
	db_attempt_release(&a);
	return rc;
}

int db_attempt_list(struct db *db, int64_t task_id, int64_t user_id, int limit, db_attempt_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);

	q_int(s, 1, task_id);
	q_int(s, 2, user_id);
	q_int(s, 3, limit);
	return q_each(s, attempt_row, &(struct attempt_each){ fn, arg });
}

int db_attempt_task_counts(struct db *db, int64_t task_id, int64_t *active, int64_t *ended, int64_t *total)
{
	struct stmt *s = q_start(db, &q_counts);
	int rc;

	q_int(s, 1, task_id);
	rc = q_row(s);
	if (rc == DB_OK) {
		*active = q_i64(s, 0);
		*ended = q_i64(s, 1);
		*total = q_i64(s, 2);
	}
	q_end(s);
	return rc == DB_NOTFOUND ? DB_ERROR : rc;
}

int db_attempt_set_state(struct db *db, int64_t id, const char *state, const char *error, const char *error_code,
			 int64_t now)
{
	struct stmt *s = q_start(db, &q_set_state);

	q_int(s, 1, id);
	q_text(s, 2, state);
	q_text_or_null(s, 3, error);
	q_text_or_null(s, 4, error_code);
	q_int(s, 5, now);
	return q_one(s);
}

int db_attempt_set_found(struct db *db, int64_t id, const char *session_id, const char *base_commit,
			 const char *head_commit, int64_t now)
{
	struct stmt *s = q_start(db, &q_set_found);

	q_int(s, 1, id);
	q_text_or_null(s, 2, session_id);
	q_text_or_null(s, 3, base_commit);
	q_text_or_null(s, 4, head_commit);
	q_int(s, 5, now);
	return q_one(s);
}

int db_attempt_set_pr_request(struct db *db, int64_t id, const char *title, const char *body, int64_t now)
{
	struct stmt *s = q_start(db, &q_set_pr_request);

	q_int(s, 1, id);
	q_text(s, 2, title);
	q_text(s, 3, body);
	q_int(s, 4, now);
	return q_one(s);
}

int db_attempt_set_pr(struct db *db, int64_t id, const char *url, int64_t number, const char *state, int64_t now)
{
	struct stmt *s = q_start(db, &q_set_pr);

	q_int(s, 1, id);
	q_text_or_null(s, 2, url);
	q_int(s, 3, number);
	q_text_or_null(s, 4, state);
	q_int(s, 5, now);
	return q_one(s);
}

int db_attempt_set_pr_failed(struct db *db, int64_t id, const char *error, int64_t now)
{
	struct stmt *s = q_start(db, &q_set_pr_failed);

	q_int(s, 1, id);
	q_text(s, 2, error);
	q_int(s, 3, now);
	return q_one(s);
}

/* ---- runs ---- */

void db_attempt_run_release(struct db_attempt_run *r)
{
	free(r->prompt);
	r->prompt = NULL;
}

static int run_cols(struct stmt *s, struct db_attempt_run *r)
{
	memset(r, 0, sizeof(*r));
	r->id = q_i64(s, 0);
	r->attempt_id = q_i64(s, 1);
	r->user_id = q_i64(s, 2);
	r->seq = (int)q_i64(s, 3);
	r->job_id = q_i64(s, 5);
	r->has_exit_code = !q_null(s, 7);
	r->exit_code = (int)q_i64(s, 7);
	r->created_at = q_i64(s, 8);
	r->finished_at = q_i64(s, 9);
	if (q_strdup(s, 4, &r->prompt) || q_copy(s, 6, r->state, sizeof(r->state))) {
		db_attempt_run_release(r);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_attempt_run_create(struct db *db, struct db_attempt_run *r)
{
	struct stmt *s = q_start(db, &q_run_create);
	int rc;

	q_int(s, 1, r->attempt_id);
	q_int(s, 2, r->user_id);
	q_int(s, 3, r->seq);
	q_text(s, 4, r->prompt ? r->prompt : "");
	q_text(s, 5, r->state[0] ? r->state : "queued");
	q_int(s, 6, r->created_at);
	rc = q_row(s);
	if (rc == DB_OK)
		r->id = q_i64(s, 0);
	q_end(s);
	return rc == DB_NOTFOUND ? DB_CONFLICT : rc;
}

static int run_one(struct db *db, struct query *q, int64_t id, struct db_attempt_run *out)
{
	struct stmt *s = q_start(db, q);
	int rc;

	q_int(s, 1, id);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = run_cols(s, out);
	q_end(s);
	return rc;
}

int db_attempt_run_get(struct db *db, int64_t id, struct db_attempt_run *out)
{
	return run_one(db, &q_run_get, id, out);
}

int db_attempt_run_last(struct db *db, int64_t attempt_id, struct db_attempt_run *out)
{
	return run_one(db, &q_run_last, attempt_id, out);
}

struct run_each {
	db_attempt_run_fn fn;
	void *arg;
};

static int run_row(struct stmt *s, void *arg)
{
	struct run_each *each = arg;
	struct db_attempt_run r;
	int rc;

	if (run_cols(s, &r))
		return -1;
	rc = each->fn(&r, each->arg);
	db_attempt_run_release(&r);
	return rc;
}

int db_attempt_run_list(struct db *db, int64_t attempt_id, db_attempt_run_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_run_list);

	q_int(s, 1, attempt_id);
	return q_each(s, run_row, &(struct run_each){ fn, arg });
}

int db_attempt_run_orphans(struct db *db, int max, struct db_attempt_orphan *out, size_t *n)
{
	struct stmt *s = q_start(db, &q_run_orphans);
	int rc;

	*n = 0;
	q_int(s, 1, max);
	while ((rc = q_step(s)) == BE_ROW && *n < (size_t)max) {
		struct db_attempt_orphan *o = &out[*n];

		o->attempt_id = q_i64(s, 0);
		o->run_id = q_i64(s, 1);
		if (q_copy(s, 2, o->job_state, sizeof(o->job_state))) {
			rc = DB_ERROR;
			break;
		}
		q_copy(s, 3, o->job_error, sizeof(o->job_error));   /* cut if long: a message */
		(*n)++;
	}
	q_end(s);
	return rc == BE_DONE || rc == BE_ROW ? DB_OK : DB_ERROR;
}

int db_attempt_run_set_job(struct db *db, int64_t id, int64_t job_id)
{
	struct stmt *s = q_start(db, &q_run_set_job);

	q_int(s, 1, id);
	q_int(s, 2, job_id);
	return q_one(s);
}

int db_attempt_run_set_state(struct db *db, int64_t id, const char *state, bool has_exit_code, int exit_code,
			     int64_t finished_at)
{
	struct stmt *s = q_start(db, &q_run_set_state);

	q_int(s, 1, id);
	q_text(s, 2, state);
	if (has_exit_code)
		q_int(s, 3, exit_code);
	else
		q_text(s, 3, NULL);
	q_int(s, 4, finished_at);
	return q_one(s);
}

/* ---- diffs ---- */

int db_attempt_diff_put(struct db *db, int64_t attempt_id, const char *diff, int64_t files, int64_t additions,
			int64_t deletions, int64_t now)
{
	struct stmt *s = q_start(db, &q_diff_put);

	q_int(s, 1, attempt_id);
	q_text(s, 2, diff);
	q_int(s, 3, files);
	q_int(s, 4, additions);
	q_int(s, 5, deletions);
	q_int(s, 6, now);
	return q_exec(s, NULL);
}

int db_attempt_diff_get(struct db *db, int64_t attempt_id, bool with_diff, struct db_attempt_diff *out)
{
	struct stmt *s = q_start(db, &q_diff_get);
	int rc;

	memset(out, 0, sizeof(*out));
	q_int(s, 1, attempt_id);
	q_int(s, 2, with_diff ? 1 : 0);
	rc = q_row(s);
	if (rc == DB_OK) {
		out->files = q_i64(s, 0);
		out->additions = q_i64(s, 1);
		out->deletions = q_i64(s, 2);
		out->created_at = q_i64(s, 3);
		if (with_diff && q_strdup(s, 4, &out->diff))
			rc = DB_ERROR;
	}
	q_end(s);
	return rc;
}
