/* attempt-rules - test helper: the rules of services/attempts.c on the
 * database the programs use (ANYON_DB: SQLite or PostgreSQL), through the
 * calls the worker makes (attempts_run_started/_finished), as TAP lines:
 * an attempt's state follows its runs, the task's status its attempts
 * (completed -> inreview, all stopped -> todo, two attempts: inprogress
 * until both end, a done task stays), the diff stored with its totals,
 * an auth failure marking the credential invalid, follow-ups.
 *   attempt-rules LOGIN     (a new user of that login is made) */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"
#include "services/attempts.h"
#include "services/jobkinds.h"
#include "services/projects.h"
#include "services/tasks.h"
#include "t/unit/tap.h"

static struct db *db;
static int64_t uid, pid;
static int64_t now = 1700000000;

static int64_t new_task(const char *title)
{
	struct task_err err;
	struct db_task t;
	int64_t id;

	if (tasks_create(db, uid, pid, title, strlen(title), "the description", 15, NULL, now, &t, &err) != DB_OK)
		BAIL_OUT("cannot create task %s", title);
	id = t.id;
	db_task_release(&t);
	return id;
}

static const char *task_status(int64_t id)
{
	static char st[DB_TASK_STATUS_MAX];
	struct db_task t;

	if (db_task_get(db, id, uid, &t) != DB_OK)
		return "(none)";
	str_copy(st, sizeof(st), t.status);
	db_task_release(&t);
	return st;
}

static const char *attempt_state(int64_t id)
{
	static char st[DB_ATTEMPT_STATE_MAX];
	struct db_attempt a;

	if (db_attempt_get(db, id, uid, &a) != DB_OK)
		return "(none)";
	str_copy(st, sizeof(st), a.state);
	db_attempt_release(&a);
	return st;
}

/* Starts an attempt of task with executor; *run gets its first run. */
static int64_t start(int64_t task, const char *executor, int64_t *run)
{
	struct attempt_err err = { 0 };
	struct db_attempt a;
	struct db_attempt_run r;
	int rc = attempts_create(db, uid, task, executor, "echo hi", 7, NULL, ++now, &a, &err);
	int64_t id;

	if (rc != DB_OK)
		BAIL_OUT("attempts_create: %d %s", rc, err.message);
	id = a.id;
	db_attempt_release(&a);
	if (db_attempt_run_last(db, id, &r) != DB_OK)
		BAIL_OUT("no run");
	*run = r.id;
	db_attempt_run_release(&r);
	return id;
}

static int finish_run(int64_t a, int64_t r, const char *state)
{
	struct attempt_outcome o = { .state = state, .has_exit_code = true, .exit_code = 0 };

	return attempts_run_finished(db, a, r, &o, ++now);
}

/* Events of kind about subject since event id after. */
static int64_t events_after;
static int count_fn(const struct db_event *ev, void *arg)
{
	struct { const char *kind; int64_t subject; int n; } *c = arg;

	if (strcmp(ev->kind, c->kind) == 0 && ev->subject == c->subject)
		c->n++;
	return 0;
}

static int events(const char *kind, int64_t subject)
{
	struct { const char *kind; int64_t subject; int n; } c = { kind, subject, 0 };
	bool more = false;

	if (db_event_list(db, uid, events_after, 500, count_fn, &c, &more) || more)
		return -1;
	return c.n;
}

static int64_t last_event(void)
{
	int64_t id = 0;

	if (db_begin_write(db) || db_event_add(db, uid, "test.mark", 0, 0, now, &id) || db_commit(db))
		BAIL_OUT("cannot mark the feed");
	return id;
}

int main(int argc, char **argv)
{
	char err[256], names[128];
	struct db_user u;
	struct db_project p = { 0 };
	struct attempt_err aerr = { 0 };
	struct db_attempt a;
	int64_t t1, t2, t3, t4, a1, r1, a2, r2, a3, r3, run;
	int rc;

	log_init("attempt-rules");
	config_load_global();
	if (argc != 2)
		die("usage: attempt-rules LOGIN");
	db = db_open(g_config.db_path, true, err, sizeof(err));
	if (!db)
		die("%s", err);
	if (db_user_create(db, argv[1], "", now, &u) != DB_OK)
		BAIL_OUT("cannot create user %s", argv[1]);
	uid = u.id;
	p.user_id = uid;
	str_copy(p.name, sizeof(p.name), "rules");
	str_copy(p.source, sizeof(p.source), "path");
	str_copy(p.location, sizeof(p.location), "/nonexistent/rules");
	str_copy(p.default_branch, sizeof(p.default_branch), "main");
	str_copy(p.default_executor, sizeof(p.default_executor), "script");
	p.created_at = now;
	if (db_project_create(db, &p) != DB_OK)
		BAIL_OUT("cannot create a project");
	pid = p.id;

	/* the executors table */
	ok(project_executor_check(db, "claude", NULL, 0) == DB_OK && project_executor_check(db, "script", NULL, 0) == DB_OK,
	   "executors claude and script are rows");
	ok(project_executor_check(db, "Claude", names, sizeof(names)) == DB_NOTFOUND && strcmp(names, "claude, script") == 0,
	   "anything else is not an executor; the known ones are named (%s)", names);
	{
		struct attempt_executor ex;

		ok(attempts_executor_get(db, "claude", &ex) == DB_OK && strcmp(ex.credential, "claude_credential") == 0 &&
		   strcmp(ex.parser, "claude-stream-json") == 0 && ex.resume && strstr(ex.command, "stream-json"),
		   "claude: its command, resume, parser and credential");
		attempt_executor_release(&ex);
		ok(attempts_executor_get(db, "script", &ex) == DB_OK && !ex.resume && !ex.credential[0] &&
		   strcmp(ex.parser, "text") == 0, "script: no resume, no credential, text");
		attempt_executor_release(&ex);
	}

	/* one attempt: queued -> running -> completed; task todo -> inprogress -> inreview */
	t1 = new_task("one attempt");
	events_after = last_event();
	a1 = start(t1, NULL, &r1);
	is_str(attempt_state(a1), "queued", "a new attempt is queued");
	is_str(task_status(t1), "inprogress", "its task moved to inprogress");
	ok(events("attempt.created", a1) == 1 && events("task.updated", t1) == 1,
	   "events attempt.created and task.updated");
	{
		struct attempt_run_ctx c;
		struct db_job job;
		json_object *args = NULL;
		int64_t v1 = 0, v2 = 0;

		ok(attempts_load_run(db, r1, &c) == DB_OK && c.attempt_id == a1 && c.run_id == r1 && c.seq == 1 &&
		   c.task_id == t1 && c.project_id == pid && c.user_id == uid && strncmp(c.branch, "anyon/", 6) == 0 &&
		   strlen(c.branch) == 14 && strcmp(c.base_branch, "main") == 0 && strcmp(c.prompt, "echo hi") == 0 &&
		   strcmp(c.ex.name, "script") == 0 && c.project.id == pid && !c.base_commit[0] && c.job_id > 0,
		   "attempts_load_run: the run's context (the project's default executor and base branch)");
		ok(db_job_get(db, c.job_id, uid, &job) == DB_OK && strcmp(job.kind, "attempt") == 0 &&
		   json_parse(job.args, strlen(job.args), &args, err, sizeof(err)) == 0 &&
		   json_get_i64(args, "attempt", &v1) == 0 && json_get_i64(args, "run", &v2) == 0 && v1 == a1 && v2 == r1 &&
		   job.state == JOB_QUEUED, "its job: kind attempt, args {attempt, run}, queued");
		json_object_put(args);
		db_job_release(&job);
		attempt_run_ctx_release(&c);
	}
	ok(attempts_run_started(db, a1, r1, "0123456789abcdef0123456789abcdef01234567", ++now) == DB_OK,
	   "run started");
	is_str(attempt_state(a1), "running", "the attempt is running");
	is_str(task_status(t1), "inprogress", "the task stays inprogress");
	ok(attempts_run_started(db, a1, r2 = r1 + 100000, NULL, now) == DB_NOTFOUND,
	   "a run of another attempt (or none): DB_NOTFOUND");
	{
		static const char diff[] = "{\"base\":\"0123456789abcdef0123456789abcdef01234567\",\"head\":\"fedcba9876543210fedcba9876543210fedcba98\","
			"\"files\":[],\"files_total\":3,\"additions\":10,\"deletions\":4,\"truncated\":false}";
		struct attempt_outcome o = {
			.state = "completed", .session_id = "sess-1", .has_exit_code = true, .exit_code = 0,
			.head_commit = "fedcba9876543210fedcba9876543210fedcba98", .diff_json = diff,
		};
		struct db_attempt_diff d;
		struct db_attempt_run r;

		events_after = last_event();
		ok(attempts_run_finished(db, a1, r1, &o, ++now) == DB_OK, "run finished: completed");
		ok(db_attempt_get(db, a1, uid, &a) == DB_OK && strcmp(a.state, "completed") == 0 &&
		   strcmp(a.session_id, "sess-1") == 0 && strcmp(a.head_commit, o.head_commit) == 0 &&
		   strcmp(a.base_commit, "0123456789abcdef0123456789abcdef01234567") == 0 && !a.error[0],
		   "the attempt: completed, session, base and head commits stored");
		db_attempt_release(&a);
		ok(db_attempt_run_get(db, r1, &r) == DB_OK && strcmp(r.state, "completed") == 0 && r.has_exit_code &&
		   r.exit_code == 0 && r.finished_at == now, "the run: completed, exit 0, finished_at");
		db_attempt_run_release(&r);
		ok(db_attempt_diff_get(db, a1, true, &d) == DB_OK && d.files == 3 && d.additions == 10 && d.deletions == 4 &&
		   strcmp(d.diff, diff) == 0, "the diff stored as given, with its totals");
		free(d.diff);
		is_str(task_status(t1), "inreview", "completed -> the task is inreview");
		ok(events("attempt.updated", a1) == 1 && events("attempt.diff", a1) == 1 && events("task.updated", t1) == 1,
		   "events attempt.updated, attempt.diff, task.updated");
	}
	{
		struct attempt_outcome bad = { .state = "done" };

		ok(attempts_run_finished(db, a1, r1, &bad, now) == DB_ERROR, "an unknown outcome state is refused");
	}

	/* the pull request the worker made */
	events_after = last_event();
	ok(attempts_pr_stored(db, a1, "https://github.com/o/r/pull/7", 7, "open", ++now) == DB_OK &&
	   db_attempt_get(db, a1, uid, &a) == DB_OK && strcmp(a.pr_url, "https://github.com/o/r/pull/7") == 0 &&
	   a.pr_number == 7 && strcmp(a.pr_state, "open") == 0, "attempts_pr_stored: url, number, state");
	db_attempt_release(&a);
	is_int(events("attempt.pr", a1), 1, "event attempt.pr");

	/* a follow-up: queued again, run 2, the task back to inprogress */
	rc = attempts_follow_up(db, uid, a1, "again", 5, ++now, &a, &aerr);
	ok(rc == DB_OK && strcmp(a.state, "queued") == 0, "follow-up: the attempt is queued again");
	if (rc == DB_OK)
		db_attempt_release(&a);
	{
		struct db_attempt_run r;

		ok(db_attempt_run_last(db, a1, &r) == DB_OK && r.seq == 2 && strcmp(r.prompt, "again") == 0 &&
		   strcmp(r.state, "queued") == 0 && r.job_id > 0, "run 2 with its prompt and job");
		run = r.id;
		db_attempt_run_release(&r);
	}
	is_str(task_status(t1), "inprogress", "the task moved back to inprogress");
	is_int(attempts_follow_up(db, uid, a1, "more", 4, ++now, &a, &aerr), ATTEMPTS_BUSY,
	       "another follow-up while one is queued: busy");
	ok(attempts_run_started(db, a1, run, NULL, ++now) == DB_OK && finish_run(a1, run, "failed") == DB_OK,
	   "run 2 started and failed");
	is_str(task_status(t1), "inreview", "failed -> inreview");

	/* two attempts: inprogress until both end */
	t2 = new_task("two attempts");
	a2 = start(t2, "script", &r2);
	a3 = start(t2, "script", &r3);
	is_str(task_status(t2), "inprogress", "two attempts queued: inprogress");
	ok(attempts_run_started(db, a2, r2, NULL, ++now) == DB_OK && finish_run(a2, r2, "completed") == DB_OK,
	   "the first completes");
	is_str(task_status(t2), "inprogress", "the other still queued: still inprogress");
	ok(finish_run(a3, r3, "stopped") == DB_OK, "the second is stopped");
	is_str(task_status(t2), "inreview", "both ended, one completed: inreview");

	/* every attempt stopped: back to todo */
	t3 = new_task("stopped");
	a2 = start(t3, "script", &r2);
	a3 = start(t3, "script", &r3);
	ok(attempts_stop(db, uid, a2, ++now, &a) == DB_OK && strcmp(a.state, "stopped") == 0,
	   "attempts_stop of a queued attempt: stopped at once");
	db_attempt_release(&a);
	is_str(task_status(t3), "inprogress", "the other still queued: inprogress");
	is_int(attempts_stop(db, uid, a2, ++now, &a), ATTEMPTS_IDLE, "stopping it again: nothing to stop");
	ok(attempts_run_started(db, a3, r3, NULL, ++now) == DB_OK && finish_run(a3, r3, "stopped") == DB_OK,
	   "the other ran and was stopped");
	is_str(task_status(t3), "todo", "all stopped: the task is back in todo");
	is_int(attempts_run_started(db, a2, r2, NULL, ++now), DB_CONFLICT, "a stopped run does not start");

	/* a task moved to done by hand stays there */
	t4 = new_task("done by hand");
	a2 = start(t4, "script", &r2);
	{
		struct db_task t;
		struct task_err terr;

		ok(tasks_move(db, uid, t4, "done", 0, 0, ++now, &t, &terr) == DB_OK, "the task moved to done");
		db_task_release(&t);
	}
	ok(attempts_run_started(db, a2, r2, NULL, ++now) == DB_OK && finish_run(a2, r2, "completed") == DB_OK,
	   "its attempt runs and completes");
	is_str(task_status(t4), "done", "a done task is not moved by its attempts");

	/* the credential: missing, stored, refused by the agent (invalid) */
	{
		unsigned char nonce[DB_NONCE_LEN] = { 0 }, tag[DB_TAG_LEN] = { 0 };
		struct attempt_outcome o = { .state = "failed", .error = "Invalid API key",
					     .error_code = ATTEMPT_ERR_CREDENTIAL_INVALID, .credential_invalid = true };
		struct db_secret meta;
		int64_t sid = 0;

		t2 = new_task("claude");
		is_int(attempts_create(db, uid, t2, "claude", NULL, 0, NULL, ++now, &a, &aerr), ATTEMPTS_NO_CREDENTIAL,
		       "claude without a stored claude_credential: ATTEMPTS_NO_CREDENTIAL");
		ok(aerr.field && strcmp(aerr.field, "executor") == 0, "naming the field executor");
		is_str(task_status(t2), "todo", "nothing moved");
		/* the row as secret_put() leaves it (metadata is all that is checked) */
		ok(db_begin_write(db) == DB_OK && db_secret_reserve(db, uid, "claude_credential", now, &sid) == DB_OK &&
		   db_secret_store(db, sid, "k1", nonce, (const unsigned char *)"xx", 2, tag, 0, now) == DB_OK &&
		   db_commit(db) == DB_OK, "a claude_credential stored");
		rc = attempts_create(db, uid, t2, "claude", NULL, 0, NULL, ++now, &a, &aerr);
		ok(rc == DB_OK && strcmp(a.executor, "claude") == 0, "now claude starts");
		a2 = a.id;
		if (rc == DB_OK)
			db_attempt_release(&a);
		{
			struct db_attempt_run r;

			db_attempt_run_last(db, a2, &r);
			r2 = r.id;
			ok(strcmp(r.prompt, "claude\n\nthe description") == 0,
			   "the default prompt: the task's title, a blank line, its description");
			db_attempt_run_release(&r);
		}
		is_int(attempts_follow_up(db, uid, a2, "x", 1, ++now, &a, &aerr), ATTEMPTS_BUSY, "busy while queued");
		events_after = last_event();
		ok(attempts_run_started(db, a2, r2, NULL, ++now) == DB_OK &&
		   attempts_run_finished(db, a2, r2, &o, ++now) == DB_OK, "it runs and fails: the key was refused");
		ok(db_attempt_get(db, a2, uid, &a) == DB_OK && strcmp(a.state, "failed") == 0 &&
		   strcmp(a.error, "Invalid API key") == 0 && strcmp(a.error_code, "credential_invalid") == 0,
		   "the attempt: failed, with its error and code");
		db_attempt_release(&a);
		ok(db_secret_get(db, uid, "claude_credential", false, &meta) == DB_OK && meta.invalid,
		   "the credential is marked invalid");
		db_secret_release(&meta);
		is_int(events("credential.invalid", sid), 1, "event credential.invalid (subject: the secret)");
		is_int(attempts_follow_up(db, uid, a2, "x", 1, ++now, &a, &aerr), ATTEMPTS_NO_SESSION,
		       "a claude follow-up without a session: no_session");
		t3 = new_task("claude again");
		is_int(attempts_create(db, uid, t3, "claude", NULL, 0, NULL, ++now, &a, &aerr), ATTEMPTS_BAD_CREDENTIAL,
		       "a new claude attempt with the invalid credential: ATTEMPTS_BAD_CREDENTIAL");
		ok(db_begin_write(db) == DB_OK && db_secret_reserve(db, uid, "claude_credential", now, &sid) == DB_OK &&
		   db_secret_store(db, sid, "k1", nonce, (const unsigned char *)"yy", 2, tag, 0, now) == DB_OK &&
		   db_commit(db) == DB_OK, "the credential stored again");
		rc = attempts_create(db, uid, t3, "claude", NULL, 0, NULL, ++now, &a, &aerr);
		ok(rc == DB_OK, "a credential stored again is no longer invalid: claude starts");
		if (rc == DB_OK)
			db_attempt_release(&a);
	}

	/* validation */
	{
		char *big = malloc(ATTEMPT_PROMPT_MAX + 2);

		memset(big, 'x', ATTEMPT_PROMPT_MAX + 1);
		big[ATTEMPT_PROMPT_MAX + 1] = '\0';
		t4 = new_task("validation");
		rc = attempts_create(db, uid, t4, NULL, big, ATTEMPT_PROMPT_MAX + 1, NULL, ++now, &a, &aerr);
		ok(rc == ATTEMPTS_INVALID && strcmp(aerr.field, "prompt") == 0, "a prompt over 64 KiB: field prompt");
		rc = attempts_create(db, uid, t4, NULL, "a\xff", 2, NULL, ++now, &a, &aerr);
		ok(rc == ATTEMPTS_INVALID && strcmp(aerr.field, "prompt") == 0, "a prompt not UTF-8: field prompt");
		rc = attempts_create(db, uid, t4, NULL, "a\0b", 3, NULL, ++now, &a, &aerr);
		ok(rc == ATTEMPTS_INVALID && strcmp(aerr.field, "prompt") == 0, "a prompt with a NUL: field prompt");
		rc = attempts_create(db, uid, t4, NULL, NULL, 0, "bad..branch", ++now, &a, &aerr);
		ok(rc == ATTEMPTS_INVALID && strcmp(aerr.field, "base_branch") == 0, "a bad base branch: field base_branch");
		rc = attempts_create(db, uid, t4, "nope", NULL, 0, NULL, ++now, &a, &aerr);
		ok(rc == ATTEMPTS_INVALID && strcmp(aerr.field, "executor") == 0, "an unknown executor: field executor");
		is_int(attempts_create(db, uid, 999999999, NULL, NULL, 0, NULL, ++now, &a, &aerr), DB_NOTFOUND,
		       "an unknown task: DB_NOTFOUND");
		is_str(task_status(t4), "todo", "refused creations moved nothing");
		free(big);
		for (int i = 0; i < ATTEMPT_ACTIVE_MAX; i++)
			start(t4, "script", &run);
		is_int(attempts_create(db, uid, t4, NULL, NULL, 0, NULL, ++now, &a, &aerr), ATTEMPTS_BUSY,
		       "%d active attempts: the next is busy", ATTEMPT_ACTIVE_MAX);
	}

	db_close(db);
	return done_testing();
}
