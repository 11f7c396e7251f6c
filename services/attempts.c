/* attempts.c - the rules of attempts (see attempts.h). */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/attempts.h"
#include "services/jobkinds.h"
#include "services/jobs.h"
#include "services/projects.h"
#include "services/tasks.h"

/* Tries at a free branch name before giving up (8 hex digits: a clash is
 * one in four billion per attempt the user has). */
#define BRANCH_TRIES 5

void attempt_executor_release(struct attempt_executor *e)
{
	free(e->command);
	free(e->resume);
	e->command = e->resume = NULL;
}

void attempt_run_ctx_release(struct attempt_run_ctx *c)
{
	free(c->prompt);
	c->prompt = NULL;
	attempt_executor_release(&c->ex);
	db_project_release(&c->project);
}

__attribute__((format(printf, 3, 4)))
static int refuse(struct attempt_err *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	err->field = field;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return ATTEMPTS_INVALID;
}

/* Well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += n + 1;
	}
	return true;
}

/* A text field of len bytes: at most max, well-formed UTF-8, no NUL; with
 * need_text, not only white space. */
static int text_check(const char *field, const char *s, size_t len, size_t max, bool need_text,
		      struct attempt_err *err)
{
	bool seen = false;

	if (len > max) {
		err->field = field;
		snprintf(err->message, sizeof(err->message), "'%s' must be at most %zu bytes", field, max);
		return ATTEMPTS_INVALID;
	}
	if (memchr(s, '\0', len))
		return refuse(err, field, "'%s' must not contain NUL characters", field);
	if (!utf8_ok((const unsigned char *)s, len))
		return refuse(err, field, "'%s' must be UTF-8 text", field);
	for (size_t i = 0; i < len && !seen; i++)
		seen = !strchr(" \t\r\n\v\f", s[i]);
	if (need_text && !seen)
		return refuse(err, field, "'%s' must not be empty", field);
	return DB_OK;
}

static bool state_active(const char *state)
{
	return strcmp(state, "queued") == 0 || strcmp(state, "running") == 0;
}

int attempts_executor_get(struct db *db, const char *name, struct attempt_executor *out)
{
	struct db_executor e;
	int rc = db_executor_get(db, name, &e);

	memset(out, 0, sizeof(*out));
	if (rc != DB_OK)
		return rc;
	str_copy(out->name, sizeof(out->name), e.name);
	str_copy(out->label, sizeof(out->label), e.label);
	str_copy(out->parser, sizeof(out->parser), e.parser);
	str_copy(out->credential, sizeof(out->credential), e.credential);
	out->command = e.command;     /* taken */
	out->resume = e.resume;
	return DB_OK;
}

/* Moves the task with its attempts (attempts.h), inside the caller's
 * transaction: only from todo, inprogress or inreview; to the end of its
 * new column, with the event task.updated. */
static int task_follow(struct db *db, int64_t user_id, int64_t task_id, int64_t now)
{
	struct db_task t;
	int64_t active = 0, ended = 0, total = 0, pos = 0;
	const char *want;
	int rc;

	rc = db_task_get(db, task_id, user_id, &t);
	if (rc != DB_OK)
		return rc == DB_NOTFOUND ? DB_OK : DB_ERROR;     /* gone: nothing follows */
	db_task_release(&t);
	if (strcmp(t.status, "todo") && strcmp(t.status, "inprogress") && strcmp(t.status, "inreview"))
		return DB_OK;
	if (db_attempt_task_counts(db, task_id, &active, &ended, &total))
		return DB_ERROR;
	if (total == 0)
		return DB_OK;
	want = active ? "inprogress" : ended ? "inreview" : "todo";
	if (strcmp(want, t.status) == 0)
		return DB_OK;
	for (int round = 0; round < 2; round++) {
		rc = db_task_neighbor(db, t.project_id, want, task_id, INT64_MAX, true, &pos);
		if (rc == DB_NOTFOUND) {
			pos = TASK_GAP;
			break;
		}
		if (rc)
			return DB_ERROR;
		if (pos <= INT64_MAX - TASK_GAP) {
			pos += TASK_GAP;
			break;
		}
		if (round || db_task_renumber(db, t.project_id, want, TASK_GAP))
			return DB_ERROR;
	}
	if (db_task_place(db, task_id, want, pos, now) ||
	    db_event_add(db, user_id, "task.updated", task_id, t.project_id, now, NULL))
		return DB_ERROR;
	return DB_OK;
}

const char *const *attempt_credential_kinds(const char *credential)
{
	static const char *const claude[] = { "claude_credential", "anthropic_api_key", NULL };
	static const char *const api_key[] = { "anthropic_api_key", NULL };

	if (strcmp(credential, "claude_credential") == 0)
		return claude;
	if (strcmp(credential, "anthropic_api_key") == 0)
		return api_key;
	return NULL;
}

/* The first of the executor's credential kinds the user has stored, its
 * metadata in *meta (released by the caller). DB_OK, DB_NOTFOUND or
 * DB_ERROR. */
static int credential_find(struct db *db, int64_t user_id, const char *credential, struct db_secret *meta)
{
	const char *const *kinds = attempt_credential_kinds(credential);
	int rc = DB_NOTFOUND;

	for (size_t i = 0; kinds && kinds[i] && rc == DB_NOTFOUND; i++)
		rc = db_secret_get(db, user_id, kinds[i], false, meta);
	return rc;
}

/* Whether the user has the executor's credential: DB_OK (none needed, or
 * stored and not found invalid), ATTEMPTS_NO_CREDENTIAL,
 * ATTEMPTS_BAD_CREDENTIAL or DB_ERROR. Metadata only: nothing is
 * decrypted here. */
static int credential_check(struct db *db, int64_t user_id, const struct db_executor *ex, struct attempt_err *err)
{
	struct db_secret meta = { 0 };
	bool invalid;
	int rc;

	if (!ex->credential[0])
		return DB_OK;
	rc = credential_find(db, user_id, ex->credential, &meta);
	if (rc == DB_ERROR)
		return DB_ERROR;
	invalid = rc == DB_OK && meta.invalid;
	if (rc == DB_OK)
		db_secret_release(&meta);
	err->field = "executor";
	if (rc == DB_NOTFOUND) {
		snprintf(err->message, sizeof(err->message), "%s needs a credential (%s); connect it first", ex->label,
			 ex->credential);
		return ATTEMPTS_NO_CREDENTIAL;
	}
	if (invalid) {
		snprintf(err->message, sizeof(err->message), "your credential was refused by %s; store it again",
			 ex->label);
		return ATTEMPTS_BAD_CREDENTIAL;
	}
	err->field = NULL;
	return DB_OK;
}

/* Queues the job of kind with args in the caller's transaction (a
 * savepoint: jobs_submit() opens its own level), within the user's
 * limits. *job_id gets its id. */
static int queue_job(struct db *db, int64_t user_id, const char *kind, json_object *args, int64_t now,
		     int64_t *job_id)
{
	const struct jobkind *k = jobkind_find(kind);
	struct db_job job;
	char why[128];
	int rc;

	if (!k || jobkind_validate(kind, args, why, sizeof(why))) {
		log_error("attempts: job args of kind %s refused: %s", kind, k ? why : "no such kind");
		return DB_ERROR;
	}
	rc = jobs_submit(db, user_id, kind, json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
			 jobkind_max_attempts(k), g_config.user_max_queued, now, &job);
	if (rc == DB_CONFLICT)
		return ATTEMPTS_QUEUE_FULL;
	if (rc == JOBS_OVER_OUTPUT)
		return ATTEMPTS_OVER_OUTPUT;
	if (rc != DB_OK)
		return DB_ERROR;
	*job_id = job.id;
	db_job_release(&job);
	return DB_OK;
}

/* Adds run seq of attempt a with prompt and its job of kind attempt. */
static int add_run(struct db *db, const struct db_attempt *a, int seq, const char *prompt, int64_t now)
{
	struct db_attempt_run run = { 0 };
	json_object *args;
	int64_t job_id = 0;
	int rc;

	run.attempt_id = a->id;
	run.user_id = a->user_id;
	run.seq = seq;
	run.prompt = (char *)prompt;
	str_copy(run.state, sizeof(run.state), "queued");
	run.created_at = now;
	rc = db_attempt_run_create(db, &run);
	if (rc != DB_OK)
		return DB_ERROR;     /* the seq was read under the user's lock */
	args = json_object_new_object();
	json_set(args, "attempt", json_object_new_int64(a->id));
	json_set(args, "run", json_object_new_int64(run.id));
	rc = queue_job(db, a->user_id, "attempt", args, now, &job_id);
	json_object_put(args);
	if (rc == DB_OK)
		rc = db_attempt_run_set_job(db, run.id, job_id);
	return rc;
}

/* Reads the attempt back into out and commits. */
static int done(struct db *db, int64_t id, int64_t user_id, struct db_attempt *out)
{
	int rc = db_attempt_get(db, id, user_id, out);

	if (rc != DB_OK)
		return db_end(db, DB_ERROR);
	rc = db_end(db, DB_OK);
	if (rc != DB_OK)
		db_attempt_release(out);
	return rc;
}

int attempts_create(struct db *db, int64_t user_id, int64_t task_id, const char *executor, const char *prompt,
		    size_t prompt_len, const char *base_branch, int64_t now, struct db_attempt *out,
		    struct attempt_err *err)
{
	struct db_executor ex = { 0 };
	struct db_project p = { 0 };
	struct db_task t = { 0 };
	struct db_attempt a = { 0 };
	int64_t active = 0, ended = 0, total = 0;
	char *joined = NULL;
	int rc;

	err->field = NULL;
	if (prompt && (rc = text_check("prompt", prompt, prompt_len, ATTEMPT_PROMPT_MAX, true, err)))
		return rc;
	if (base_branch && !project_branch_ok(base_branch))
		return refuse(err, "base_branch", "'base_branch' must be a valid branch name");
	if (executor && (!executor[0] || strlen(executor) >= DB_EXECUTOR_NAME_MAX))
		return refuse(err, "executor", "'executor' must name an executor (GET /api/meta lists them)");
	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_task_get(db, task_id, user_id, &t);
	if (rc != DB_OK)
		return db_end(db, rc);
	rc = db_project_get(db, t.project_id, user_id, &p);
	if (rc != DB_OK)
		goto out;
	if (!executor)
		executor = p.default_executor;
	rc = db_executor_get(db, executor, &ex);
	if (rc == DB_NOTFOUND) {
		rc = refuse(err, "executor", "no executor is named '%.31s' (GET /api/meta lists them)", executor);
		goto out;
	}
	if (rc != DB_OK)
		goto out;
	rc = credential_check(db, user_id, &ex, err);
	if (rc != DB_OK)
		goto out;
	if (!base_branch)
		base_branch = p.base_branch[0] ? p.base_branch : p.default_branch;
	if (!project_branch_ok(base_branch)) {
		rc = refuse(err, "base_branch", "the project has no base branch; give 'base_branch'");
		goto out;
	}
	if (!prompt) {
		size_t tl = strlen(t.title), dl = strlen(t.description ? t.description : "");

		joined = malloc(tl + 2 + dl + 1);
		if (!joined) {
			rc = DB_ERROR;
			goto out;
		}
		memcpy(joined, t.title, tl);
		if (dl) {
			memcpy(joined + tl, "\n\n", 2);
			memcpy(joined + tl + 2, t.description, dl);
			tl += 2 + dl;
		}
		joined[tl] = '\0';
		prompt = joined;
		if (tl > ATTEMPT_PROMPT_MAX) {
			err->field = "prompt";
			snprintf(err->message, sizeof(err->message), "the task's title and description are longer "
				 "than a prompt may be (%d bytes); give 'prompt'", ATTEMPT_PROMPT_MAX);
			rc = ATTEMPTS_INVALID;
			goto out;
		}
	}
	if ((rc = db_attempt_task_counts(db, task_id, &active, &ended, &total)) != DB_OK)
		goto out;
	if (active >= ATTEMPT_ACTIVE_MAX) {
		rc = ATTEMPTS_BUSY;
		goto out;
	}
	a.user_id = user_id;
	a.project_id = t.project_id;
	a.task_id = task_id;
	str_copy(a.executor, sizeof(a.executor), ex.name);
	str_copy(a.base_branch, sizeof(a.base_branch), base_branch);
	str_copy(a.state, sizeof(a.state), "queued");
	a.created_at = a.updated_at = now;
	rc = DB_CONFLICT;
	for (int i = 0; i < BRANCH_TRIES && rc == DB_CONFLICT; i++) {
		unsigned char rnd[4];
		char hex[9];

		if (rand_bytes(rnd, sizeof(rnd))) {
			rc = DB_ERROR;
			break;
		}
		hex_encode(rnd, sizeof(rnd), hex);
		snprintf(a.branch, sizeof(a.branch), "anyon/%s", hex);
		rc = db_attempt_create(db, &a);
	}
	if (rc == DB_OK)
		rc = add_run(db, &a, 1, prompt, now);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "attempt.created", a.id, a.project_id, now, NULL);
	if (rc == DB_OK)
		rc = task_follow(db, user_id, task_id, now);
	if (rc == DB_CONFLICT)
		rc = DB_ERROR;
out:
	free(joined);
	db_executor_release(&ex);
	db_project_release(&p);
	db_task_release(&t);
	if (rc != DB_OK)
		return db_end(db, rc);
	return done(db, a.id, user_id, out);
}

int attempts_follow_up(struct db *db, int64_t user_id, int64_t attempt_id, const char *prompt, size_t prompt_len,
		       int64_t now, struct db_attempt *out, struct attempt_err *err)
{
	struct db_executor ex = { 0 };
	struct db_attempt a = { 0 };
	struct db_attempt_run last = { 0 };
	int64_t active = 0, ended = 0, total = 0;
	int rc;

	err->field = NULL;
	if (!prompt)
		return refuse(err, "prompt", "'prompt' is required");
	if ((rc = text_check("prompt", prompt, prompt_len, ATTEMPT_PROMPT_MAX, true, err)))
		return rc;
	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_attempt_get(db, attempt_id, user_id, &a);
	if (rc != DB_OK)
		return db_end(db, rc);
	rc = db_attempt_run_last(db, attempt_id, &last);
	if (rc != DB_OK) {
		rc = DB_ERROR;
		goto out;
	}
	if (state_active(a.state) || state_active(last.state)) {
		rc = ATTEMPTS_BUSY;
		goto out;
	}
	if (last.seq >= ATTEMPT_RUNS_MAX) {
		rc = ATTEMPTS_RUNS_FULL;
		goto out;
	}
	rc = db_executor_get(db, a.executor, &ex);
	if (rc == DB_NOTFOUND) {
		rc = refuse(err, "executor", "the executor '%.31s' is no longer there", a.executor);
		goto out;
	}
	if (rc != DB_OK)
		goto out;
	if (ex.resume && !a.session_id[0]) {
		rc = ATTEMPTS_NO_SESSION;
		goto out;
	}
	if ((rc = credential_check(db, user_id, &ex, err)) != DB_OK)
		goto out;
	if ((rc = db_attempt_task_counts(db, a.task_id, &active, &ended, &total)) != DB_OK)
		goto out;
	if (active >= ATTEMPT_ACTIVE_MAX) {
		rc = ATTEMPTS_BUSY;
		goto out;
	}
	rc = add_run(db, &a, last.seq + 1, prompt, now);
	if (rc == DB_OK)
		rc = db_attempt_set_state(db, a.id, "queued", NULL, NULL, now);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "attempt.updated", a.id, a.project_id, now, NULL);
	if (rc == DB_OK)
		rc = task_follow(db, user_id, a.task_id, now);
out:
	db_executor_release(&ex);
	db_attempt_run_release(&last);
	db_attempt_release(&a);
	if (rc != DB_OK)
		return db_end(db, rc);
	return done(db, attempt_id, user_id, out);
}

/* Ends run and its attempt as stopped now, with the events. */
static int settle_stopped(struct db *db, const struct db_attempt *a, int64_t run_id, int64_t now)
{
	if (db_attempt_run_set_state(db, run_id, "stopped", false, 0, now) ||
	    db_attempt_set_state(db, a->id, "stopped", NULL, NULL, now) ||
	    db_event_add(db, a->user_id, "attempt.updated", a->id, a->project_id, now, NULL))
		return DB_ERROR;
	return task_follow(db, a->user_id, a->task_id, now);
}

int attempts_stop(struct db *db, int64_t user_id, int64_t attempt_id, int64_t now, struct db_attempt *out)
{
	struct db_attempt a = { 0 };
	struct db_attempt_run last = { 0 };
	enum job_state st = JOB_QUEUED;
	int rc;

	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_attempt_get(db, attempt_id, user_id, &a);
	if (rc != DB_OK)
		return db_end(db, rc);
	rc = db_attempt_run_last(db, attempt_id, &last);
	if (rc != DB_OK) {
		rc = DB_ERROR;
		goto out;
	}
	if (!state_active(last.state)) {
		rc = ATTEMPTS_IDLE;
		goto out;
	}
	rc = last.job_id ? jobs_cancel(db, last.job_id, user_id, now, &st) : DB_NOTFOUND;
	if (rc == DB_OK && st == JOB_RUNNING) {
		/* Flagged: the worker stops it and reports the run stopped. */
		rc = DB_OK;
	} else if (rc == DB_OK || rc == DB_CONFLICT || rc == DB_NOTFOUND) {
		/* Cancelled while queued, or its job ended (or is gone) without
		 * the worker reporting the run: it ends here. */
		rc = settle_stopped(db, &a, last.id, now);
	} else {
		rc = DB_ERROR;
	}
out:
	db_attempt_run_release(&last);
	db_attempt_release(&a);
	if (rc != DB_OK)
		return db_end(db, rc);
	return done(db, attempt_id, user_id, out);
}

int attempts_request_pr(struct db *db, int64_t user_id, int64_t attempt_id, const char *title, size_t title_len,
			const char *body, size_t body_len, int64_t now, struct db_attempt *out,
			struct attempt_err *err)
{
	struct db_attempt a = { 0 };
	json_object *args;
	int64_t job_id = 0;
	int rc;

	err->field = NULL;
	if (title && (rc = text_check("title", title, title_len, ATTEMPT_PR_TITLE_MAX, true, err)))
		return rc;
	if (body && (rc = text_check("body", body, body_len, ATTEMPT_PR_BODY_MAX, false, err)))
		return rc;
	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = db_attempt_get(db, attempt_id, user_id, &a);
	if (rc != DB_OK)
		return db_end(db, rc);
	if (state_active(a.state))
		rc = ATTEMPTS_BUSY;
	else if (!a.head_commit[0])
		rc = ATTEMPTS_NO_WORK;
	else if (a.pr_url[0])
		rc = ATTEMPTS_PR_EXISTS;
	if (rc == DB_OK) {
		struct db_project p;

		/* Pushes go to GitHub only. */
		rc = db_project_get(db, a.project_id, user_id, &p);
		if (rc == DB_OK) {
			if (strcmp(p.source, "github") != 0)
				rc = ATTEMPTS_NOT_GITHUB;
			db_project_release(&p);
		} else if (rc == DB_NOTFOUND) {
			rc = DB_ERROR;
		}
	}
	if (rc == DB_OK)
		rc = db_attempt_set_pr_request(db, a.id, title, body, now);
	if (rc == DB_OK) {
		args = json_object_new_object();
		json_set(args, "attempt", json_object_new_int64(a.id));
		rc = queue_job(db, user_id, "pull_request", args, now, &job_id);
		json_object_put(args);
	}
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "attempt.updated", a.id, a.project_id, now, NULL);
	db_attempt_release(&a);
	if (rc != DB_OK)
		return db_end(db, rc);
	return done(db, attempt_id, user_id, out);
}

/* ---- the worker's side ---- */

int attempts_load_run(struct db *db, int64_t run_id, struct attempt_run_ctx *out)
{
	struct db_attempt_run run = { 0 };
	struct db_attempt a = { 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_attempt_run_get(db, run_id, &run);
	if (rc != DB_OK)
		return rc;
	rc = db_attempt_get(db, run.attempt_id, 0, &a);
	if (rc == DB_OK)
		rc = attempts_executor_get(db, a.executor, &out->ex);
	if (rc == DB_OK)
		rc = db_project_get(db, a.project_id, a.user_id, &out->project);
	if (rc == DB_OK) {
		out->attempt_id = a.id;
		out->run_id = run.id;
		out->task_id = a.task_id;
		out->project_id = a.project_id;
		out->user_id = a.user_id;
		out->job_id = run.job_id;
		out->seq = run.seq;
		if (!str_copy(out->branch, sizeof(out->branch), a.branch) ||
		    !str_copy(out->base_branch, sizeof(out->base_branch), a.base_branch) ||
		    !str_copy(out->base_commit, sizeof(out->base_commit), a.base_commit) ||
		    !str_copy(out->head_commit, sizeof(out->head_commit), a.head_commit) ||
		    !str_copy(out->session_id, sizeof(out->session_id), a.session_id))
			rc = DB_ERROR;
		out->prompt = run.prompt;      /* taken */
		run.prompt = NULL;
	}
	db_attempt_release(&a);
	db_attempt_run_release(&run);
	if (rc != DB_OK) {
		attempt_run_ctx_release(out);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

/* Opens the worker's transaction on attempt_id's run run_id: the attempt
 * read, its user's row locked, the run read and checked to belong to it. */
static int worker_begin(struct db *db, int64_t attempt_id, int64_t run_id, struct db_attempt *a,
			struct db_attempt_run *run)
{
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_attempt_get(db, attempt_id, 0, a);
	if (rc == DB_OK && db_user_lock(db, a->user_id) != DB_OK)
		rc = DB_ERROR;
	if (rc == DB_OK)
		rc = db_attempt_run_get(db, run_id, run);
	if (rc == DB_OK && run->attempt_id != attempt_id)
		rc = DB_NOTFOUND;
	if (rc != DB_OK) {
		db_attempt_release(a);
		db_attempt_run_release(run);
		db_rollback(db);
	}
	return rc;
}

int attempts_run_started(struct db *db, int64_t attempt_id, int64_t run_id, const char *base_commit,
			 int64_t now)
{
	struct db_attempt a = { 0 };
	struct db_attempt_run run = { 0 };
	int rc;

	rc = worker_begin(db, attempt_id, run_id, &a, &run);
	if (rc != DB_OK)
		return rc;
	if (!state_active(run.state))
		rc = DB_CONFLICT;      /* stopped while queued: it does not run */
	if (rc == DB_OK)
		rc = db_attempt_run_set_state(db, run_id, "running", false, 0, 0);
	if (rc == DB_OK)
		rc = db_attempt_set_state(db, attempt_id, "running", NULL, NULL, now);
	if (rc == DB_OK && base_commit && base_commit[0])
		rc = db_attempt_set_found(db, attempt_id, NULL, base_commit, NULL, now);
	if (rc == DB_OK)
		rc = db_event_add(db, a.user_id, "attempt.updated", attempt_id, a.project_id, now, NULL);
	if (rc == DB_OK)
		rc = task_follow(db, a.user_id, a.task_id, now);
	db_attempt_release(&a);
	db_attempt_run_release(&run);
	return db_end(db, rc);
}

/* The diff's totals, from its JSON (services/mirror.h). -1 when it is not
 * such a document. */
static int diff_totals(const char *diff, int64_t *files, int64_t *additions, int64_t *deletions)
{
	json_object *o = NULL;
	char why[64];
	int rc = -1;

	if (json_parse(diff, strlen(diff), &o, why, sizeof(why)))
		return -1;
	if (json_object_is_type(o, json_type_object) && json_get_i64(o, "files_total", files) == 0 &&
	    json_get_i64(o, "additions", additions) == 0 && json_get_i64(o, "deletions", deletions) == 0)
		rc = 0;
	json_object_put(o);
	return rc;
}

/* Copies at most ATTEMPT_ERROR_MAX bytes of s, not cutting a UTF-8 character. */
static void error_copy(char *dst, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (n > ATTEMPT_ERROR_MAX)
		n = ATTEMPT_ERROR_MAX;
	if (n >= size)
		n = size - 1;
	while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int attempts_run_finished(struct db *db, int64_t attempt_id, int64_t run_id, const struct attempt_outcome *o,
			  int64_t now)
{
	struct db_attempt a = { 0 };
	struct db_attempt_run run = { 0 };
	char error[ATTEMPT_ERROR_MAX + 1] = "";
	int64_t files = 0, additions = 0, deletions = 0;
	int rc;

	if (!o->state || (strcmp(o->state, "completed") && strcmp(o->state, "failed") && strcmp(o->state, "stopped")))
		return DB_ERROR;
	if (o->session_id && strlen(o->session_id) > ATTEMPT_SESSION_MAX)
		return DB_ERROR;
	if (o->diff_json && diff_totals(o->diff_json, &files, &additions, &deletions)) {
		log_error("attempt %lld: the diff to store is not a diff document", (long long)attempt_id);
		return DB_ERROR;
	}
	if (o->error)
		error_copy(error, sizeof(error), o->error);
	rc = worker_begin(db, attempt_id, run_id, &a, &run);
	if (rc != DB_OK)
		return rc;
	rc = db_attempt_run_set_state(db, run_id, o->state, o->has_exit_code, o->exit_code, now);
	if (rc == DB_OK)
		rc = db_attempt_set_state(db, attempt_id, o->state, error, o->error_code, now);
	if (rc == DB_OK && (o->session_id || o->head_commit))
		rc = db_attempt_set_found(db, attempt_id, o->session_id, NULL, o->head_commit, now);
	if (rc == DB_OK && o->diff_json) {
		rc = db_attempt_diff_put(db, attempt_id, o->diff_json, files, additions, deletions, now);
		if (rc == DB_OK)
			rc = db_event_add(db, a.user_id, "attempt.diff", attempt_id, a.project_id, now, NULL);
	}
	if (rc == DB_OK && o->credential_invalid) {
		struct db_executor ex;
		struct db_secret meta;

		rc = db_executor_get(db, a.executor, &ex);
		if (rc == DB_OK) {
			/* The one handed over: the first stored of its kinds. */
			rc = ex.credential[0] ? credential_find(db, a.user_id, ex.credential, &meta) : DB_NOTFOUND;
			if (rc == DB_OK) {
				db_secret_release(&meta);
				rc = db_secret_set_invalid(db, a.user_id, meta.kind, true);
				if (rc == DB_OK)
					rc = db_event_add(db, a.user_id, "credential.invalid", meta.id, 0, now, NULL);
			}
			db_executor_release(&ex);
		}
		if (rc == DB_NOTFOUND)
			rc = DB_OK;    /* no executor row or no secret (deleted meanwhile): nothing to mark */
	}
	if (rc == DB_OK)
		rc = db_event_add(db, a.user_id, "attempt.updated", attempt_id, a.project_id, now, NULL);
	if (rc == DB_OK)
		rc = task_follow(db, a.user_id, a.task_id, now);
	db_attempt_release(&a);
	db_attempt_run_release(&run);
	return db_end(db, rc);
}

int attempts_pr_stored(struct db *db, int64_t attempt_id, const char *url, int64_t number, const char *state,
		       int64_t now)
{
	struct db_attempt a = { 0 };
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_attempt_get(db, attempt_id, 0, &a);
	if (rc == DB_OK && db_user_lock(db, a.user_id) != DB_OK)
		rc = DB_ERROR;
	if (rc == DB_OK)
		rc = db_attempt_set_pr(db, attempt_id, url, number, state, now);
	if (rc == DB_OK)
		rc = db_event_add(db, a.user_id, "attempt.pr", attempt_id, a.project_id, now, NULL);
	db_attempt_release(&a);
	return db_end(db, rc);
}

int attempts_pr_failed(struct db *db, int64_t attempt_id, const char *error, int64_t now)
{
	struct db_attempt a = { 0 };
	char why[256];
	int rc;

	error_copy(why, sizeof(why), error ? error : "opening the pull request failed");
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_attempt_get(db, attempt_id, 0, &a);
	if (rc == DB_OK && db_user_lock(db, a.user_id) != DB_OK)
		rc = DB_ERROR;
	if (rc == DB_OK)
		rc = db_attempt_set_pr_failed(db, attempt_id, why, now);
	if (rc == DB_OK)
		rc = db_event_add(db, a.user_id, "attempt.pr", attempt_id, a.project_id, now, NULL);
	db_attempt_release(&a);
	return db_end(db, rc);
}

void attempt_pr_ctx_release(struct attempt_pr_ctx *c)
{
	free(c->title);
	free(c->body);
	db_project_release(&c->project);
	c->title = c->body = NULL;
}

int attempts_load_pr(struct db *db, int64_t attempt_id, struct attempt_pr_ctx *out)
{
	struct db_attempt a = { 0 };
	struct db_task t = { 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_attempt_get(db, attempt_id, 0, &a);
	if (rc != DB_OK)
		return rc;
	rc = db_project_get(db, a.project_id, a.user_id, &out->project);
	if (rc == DB_OK)
		rc = db_task_get(db, a.task_id, a.user_id, &t);
	if (rc == DB_OK) {
		out->attempt_id = a.id;
		out->user_id = a.user_id;
		out->task_id = a.task_id;
		if (!str_copy(out->branch, sizeof(out->branch), a.branch) ||
		    !str_copy(out->base_branch, sizeof(out->base_branch), a.base_branch) ||
		    !str_copy(out->head_commit, sizeof(out->head_commit), a.head_commit))
			rc = DB_ERROR;
		/* What was asked, else the task's title and, for the body, its
		 * description and where the work came from. */
		out->title = strdup(a.pr_title && a.pr_title[0] ? a.pr_title : t.title);
		if (a.pr_body && a.pr_body[0]) {
			out->body = strdup(a.pr_body);
		} else {
			size_t n = strlen(t.description ? t.description : "") + 200;

			if ((out->body = malloc(n)))
				snprintf(out->body, n, "%s%sMade by an anyon attempt (%s, executor %s).",
					 t.description ? t.description : "", t.description && t.description[0] ? "\n\n" : "",
					 a.branch, a.executor);
		}
		if (!out->title || !out->body)
			rc = DB_ERROR;
		db_task_release(&t);
	}
	db_attempt_release(&a);
	if (rc != DB_OK)
		attempt_pr_ctx_release(out);
	return rc;
}

int attempts_settle_orphans(struct db *db, int max, int64_t now, int *settled)
{
	struct db_attempt_orphan *o;
	size_t n = 0;
	int rc;

	*settled = 0;
	if (max <= 0 || !(o = calloc((size_t)max, sizeof(*o))))
		return DB_ERROR;
	rc = db_attempt_run_orphans(db, max, o, &n);
	for (size_t i = 0; rc == DB_OK && i < n; i++) {
		bool cancelled = strcmp(o[i].job_state, "cancelled") == 0;
		char why[300];
		struct attempt_outcome out = {
			.state = cancelled ? "stopped" : "failed",
			.error_code = cancelled ? NULL : ATTEMPT_ERR_INTERNAL,
			.error = why,
		};
		int r;

		if (cancelled)
			snprintf(why, sizeof(why), "stopped before it ran");
		else
			snprintf(why, sizeof(why), "the worker running it stopped before it reported: %.200s",
				 o[i].job_error[0] ? o[i].job_error : "its job is gone");
		r = attempts_run_finished(db, o[i].attempt_id, o[i].run_id, &out, now);
		if (r == DB_OK)
			(*settled)++;
		else if (r == DB_ERROR)
			rc = DB_ERROR;
	}
	free(o);
	return rc;
}
