/* api_attempts.c - attempts of a task: start, list, read, follow up,
 * stop, the stored diff, a pull request (services/attempts.h). */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "services/attempts.h"
#include "services/conversation.h"
#include "services/github_pulls.h"
#include "services/github_token.h"

/* Attempts a task's list answers with, newest first. */
#define ATTEMPT_LIST_MAX 100

struct runs_ctx {
	json_object *runs;
	bool prompts;
};

static int run_one(const struct db_attempt_run *run, void *arg)
{
	struct runs_ctx *c = arg;
	json_object *o = json_object_new_object();

	json_set(o, "id", json_object_new_int64(run->id));
	json_set(o, "seq", json_object_new_int(run->seq));
	json_set(o, "job_id", json_i64_or_null(run->job_id, run->job_id > 0));
	json_set(o, "state", json_str(run->state));
	json_set(o, "exit_code", json_i64_or_null(run->exit_code, run->has_exit_code));
	if (c->prompts)
		json_set(o, "prompt", json_str(run->prompt));
	json_set(o, "prompt_bytes", json_object_new_int64((int64_t)strlen(run->prompt)));
	json_set(o, "created_at", json_object_new_int64(run->created_at));
	json_set(o, "finished_at", json_i64_or_null(run->finished_at, run->finished_at > 0));
	return json_object_array_add(c->runs, o) ? -1 : 0;
}

/* JSON view of an attempt with its runs (their prompts when prompts) and
 * the totals of its diff. New reference, or NULL when a read failed. */
static json_object *attempt_json(struct db *db, const struct db_attempt *a, bool prompts)
{
	json_object *o = json_object_new_object(), *pr = NULL, *diff = NULL;
	struct runs_ctx rc = { json_object_new_array(), prompts };
	struct db_attempt_diff d;
	int drc;

	if (db_attempt_run_list(db, a->id, run_one, &rc) ||
	    (drc = db_attempt_diff_get(db, a->id, false, &d)) == DB_ERROR) {
		json_object_put(rc.runs);
		json_object_put(o);
		return NULL;
	}
	if (drc == DB_OK) {
		diff = json_object_new_object();
		json_set(diff, "files", json_object_new_int64(d.files));
		json_set(diff, "additions", json_object_new_int64(d.additions));
		json_set(diff, "deletions", json_object_new_int64(d.deletions));
	}
	if (a->pr_url[0] || a->pr_state[0]) {
		pr = json_object_new_object();
		json_set(pr, "url", a->pr_url[0] ? json_str(a->pr_url) : NULL);
		json_set(pr, "number", a->pr_number ? json_object_new_int64(a->pr_number) : NULL);
		json_set(pr, "state", json_str(a->pr_state[0] ? a->pr_state : "open"));
		json_set(pr, "error", a->pr_error[0] ? json_str(a->pr_error) : NULL);
	}
	json_set(o, "id", json_object_new_int64(a->id));
	json_set(o, "task_id", json_object_new_int64(a->task_id));
	json_set(o, "project_id", json_object_new_int64(a->project_id));
	json_set(o, "executor", json_str(a->executor));
	json_set(o, "branch", json_str(a->branch));
	json_set(o, "base_branch", json_str(a->base_branch));
	json_set(o, "state", json_str(a->state));
	json_set(o, "error", a->error[0] ? json_str(a->error) : NULL);
	json_set(o, "error_code", a->error_code[0] ? json_str(a->error_code) : NULL);
	json_set(o, "session_id", a->session_id[0] ? json_str(a->session_id) : NULL);
	json_set(o, "base_commit", a->base_commit[0] ? json_str(a->base_commit) : NULL);
	json_set(o, "head_commit", a->head_commit[0] ? json_str(a->head_commit) : NULL);
	json_set(o, "pr", pr);
	json_set(o, "runs", rc.runs);
	json_set(o, "diff", diff);
	json_set(o, "created_at", json_object_new_int64(a->created_at));
	json_set(o, "updated_at", json_object_new_int64(a->updated_at));
	return o;
}

/* Replies {"attempt": A} and releases a. */
static void reply_attempt(struct req *r, int status, struct db_attempt *a)
{
	json_object *body, *o = attempt_json(r->db, a, true);

	db_attempt_release(a);
	if (!o) {
		reply_error(r, 500, "internal", "reading the attempt failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "attempt", o);
	reply_json(r, status, body);
}

/* An optional string field: 0 absent (or null), 1 present (*s, *len), -1
 * after replying 400. With name_like, a NUL inside is refused too. */
static int opt_str(struct req *r, const char *name, bool name_like, const char **s, size_t *len)
{
	json_object *v;

	*s = NULL;
	*len = 0;
	if (!json_object_object_get_ex(r->json, name, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    (name_like && strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))) {
		reply_error_field(r, 400, "invalid_field", name, "'%s' must be a string%s", name,
				  name_like ? " without NUL" : "");
		return -1;
	}
	*s = json_object_get_string(v);
	*len = (size_t)json_object_get_string_len(v);
	return 1;
}

/* Answers what a service returned other than DB_OK. */
static void reply_failed(struct req *r, int rc, const struct attempt_err *err, const char *what)
{
	switch (rc) {
	case ATTEMPTS_INVALID:
		reply_error_field(r, 400, "invalid_field", err->field, "%s", err->message);
		return;
	case ATTEMPTS_NO_CREDENTIAL:
		reply_error_field(r, 409, "credential_missing", "executor", "%s", err->message);
		return;
	case ATTEMPTS_BAD_CREDENTIAL:
		reply_error_field(r, 409, "credential_invalid", "executor", "%s", err->message);
		return;
	case ATTEMPTS_BUSY:
		reply_error(r, 409, "busy", "a run is queued or running (a task runs at most %d attempts at once)",
			    ATTEMPT_ACTIVE_MAX);
		return;
	case ATTEMPTS_NO_SESSION:
		reply_error(r, 409, "no_session", "the executor has not given a session to resume yet");
		return;
	case ATTEMPTS_IDLE:
		reply_error(r, 409, "not_running", "no run of the attempt is queued or running");
		return;
	case ATTEMPTS_QUEUE_FULL:
		r->retry_after = 10;
		reply_error(r, 429, "quota_exceeded", "you have %lld jobs queued already; wait for some to start",
			    (long long)g_config.user_max_queued);
		return;
	case ATTEMPTS_OVER_OUTPUT:
		r->retry_after = 3600;
		reply_error(r, 429, "quota_exceeded", "your jobs' stored output is at its limit of %lld bytes",
			    (long long)g_config.user_max_output_bytes);
		return;
	case ATTEMPTS_RUNS_FULL:
		reply_error(r, 409, "too_many_runs", "an attempt has at most %d runs; start another attempt",
			    ATTEMPT_RUNS_MAX);
		return;
	case ATTEMPTS_NO_WORK:
		reply_error(r, 409, "no_commits", "the attempt brought no work back to make a pull request of");
		return;
	case ATTEMPTS_NOT_GITHUB:
		reply_error(r, 409, "not_github", "pull requests are for projects imported from GitHub");
		return;
	case ATTEMPTS_PR_EXISTS:
		reply_error(r, 409, "pr_exists", "the attempt has its pull request already");
		return;
	case DB_NOTFOUND:
		reply_error(r, 404, "not_found", "no such %s", what);
		return;
	default:
		reply_error(r, 500, "internal", "storing the attempt failed");
	}
}

void api_attempts_create(struct req *r)
{
	const char *executor, *prompt, *base;
	size_t executor_len, prompt_len, base_len;
	struct attempt_err err = { 0 };
	struct db_attempt a;
	int64_t task;
	int rc;

	if (http_path_id(r, "id", &task) || opt_str(r, "executor", true, &executor, &executor_len) < 0 ||
	    opt_str(r, "prompt", false, &prompt, &prompt_len) < 0 ||
	    opt_str(r, "base_branch", true, &base, &base_len) < 0)
		return;
	rc = attempts_create(r->db, r->user.id, task, executor, prompt, prompt_len, base, now_s(), &a, &err);
	if (rc) {
		reply_failed(r, rc, &err, "task");
		return;
	}
	reply_attempt(r, 201, &a);
}

struct list_ctx {
	struct db *db;
	json_object *attempts;
};

static int list_one(const struct db_attempt *a, void *arg)
{
	struct list_ctx *c = arg;
	json_object *o = attempt_json(c->db, a, false);

	return o && json_object_array_add(c->attempts, o) == 0 ? 0 : -1;
}

void api_attempts_list(struct req *r)
{
	struct list_ctx c = { r->db, NULL };
	struct db_task t;
	json_object *body;
	int64_t task;
	int rc;

	if (http_path_id(r, "id", &task))
		return;
	rc = db_task_get(r->db, task, r->user.id, &t);
	if (rc) {
		reply_failed(r, rc, NULL, "task");
		return;
	}
	db_task_release(&t);
	c.attempts = json_object_new_array();
	if (db_attempt_list(r->db, task, r->user.id, ATTEMPT_LIST_MAX, list_one, &c)) {
		json_object_put(c.attempts);
		reply_error(r, 500, "internal", "listing attempts failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "attempts", c.attempts);
	reply_json(r, 200, body);
}

/* Loads the caller's attempt {id}; -1 after replying 404 (never 403) or 500. */
static int load_attempt(struct req *r, struct db_attempt *a)
{
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return -1;
	rc = db_attempt_get(r->db, id, r->user.id, a);
	if (rc == DB_OK)
		return 0;
	reply_failed(r, rc, NULL, "attempt");
	return -1;
}

void api_attempts_get(struct req *r)
{
	struct db_attempt a;

	if (load_attempt(r, &a))
		return;
	reply_attempt(r, 200, &a);
}

void api_attempts_follow_up(struct req *r)
{
	struct attempt_err err = { 0 };
	struct db_attempt a;
	const char *prompt;
	size_t prompt_len;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = opt_str(r, "prompt", false, &prompt, &prompt_len);
	if (rc == 0)
		reply_error_field(r, 400, "invalid_field", "prompt", "'prompt' is required");
	if (rc <= 0)
		return;
	rc = attempts_follow_up(r->db, r->user.id, id, prompt, prompt_len, now_s(), &a, &err);
	if (rc) {
		reply_failed(r, rc, &err, "attempt");
		return;
	}
	reply_attempt(r, 201, &a);
}

void api_attempts_stop(struct req *r)
{
	struct db_attempt a;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = attempts_stop(r->db, r->user.id, id, now_s(), &a);
	if (rc) {
		reply_failed(r, rc, NULL, "attempt");
		return;
	}
	reply_attempt(r, 200, &a);
}

void api_attempts_diff(struct req *r)
{
	struct db_attempt_diff d;
	struct db_attempt a;
	json_object *body = NULL;
	char why[64];
	int rc;

	if (load_attempt(r, &a))
		return;
	db_attempt_release(&a);
	rc = db_attempt_diff_get(r->db, a.id, true, &d);
	if (rc == DB_NOTFOUND) {
		reply_error(r, 404, "no_diff", "the attempt has no diff yet");
		return;
	}
	if (rc == DB_OK && json_parse(d.diff, strlen(d.diff), &body, why, sizeof(why)))
		rc = DB_ERROR;
	free(d.diff);
	if (rc) {
		reply_error(r, 500, "internal", "reading the diff failed");
		return;
	}
	reply_json(r, 200, body);
}

void api_attempts_pull_request(struct req *r)
{
	struct attempt_err err = { 0 };
	struct db_attempt a;
	const char *title, *body;
	size_t title_len, body_len;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id) || opt_str(r, "title", false, &title, &title_len) < 0 ||
	    opt_str(r, "body", false, &body, &body_len) < 0)
		return;
	rc = attempts_request_pr(r->db, r->user.id, id, title, title_len, body, body_len, now_s(), &a, &err);
	if (rc) {
		reply_failed(r, rc, &err, "attempt");
		return;
	}
	reply_attempt(r, 202, &a);
}

/* ---- the conversation ----
 * A run's stdout, parsed (services/conversation.h) page by page. The
 * cursor `after` is opaque to the client: the output chunk seq that was
 * read whole (high bits) and how many bytes of the next stdout chunk were
 * already turned into entries (low CURSOR_SKIP_BITS bits), since a line
 * may straddle chunks. */
#define CURSOR_SKIP_BITS 24
#define CONV_PAGE_BYTES (1024 * 1024)
#define CONV_PAGE_CHUNKS 256

struct run_pick {
	int64_t seq;                 /* wanted; 0: the last */
	struct db_attempt_run run;   /* the one found (owned: prompt) */
	bool found;
};

static int run_pick_one(const struct db_attempt_run *run, void *arg)
{
	struct run_pick *p = arg;

	if (p->seq && run->seq != p->seq)
		return 0;
	db_attempt_run_release(&p->run);
	p->run = *run;
	p->run.prompt = NULL;        /* not needed, and borrowed */
	p->found = true;
	return p->seq ? 1 : 0;
}

/* The stdout chunks of one page, into the parser. */
struct conv_page {
	struct conv_parser *p;
	int64_t skip;                /* bytes of the first stdout chunk already parsed */
	bool first_seen;
	int64_t fed;                 /* bytes fed so far */
	int64_t last_seq;            /* the last chunk read */
	/* Where each stdout chunk began in what was fed, to place the cursor. */
	struct { int64_t seq, start, len; } *marks;
	size_t n_marks;
	bool bad_skip;
};

static int conv_chunk(const struct db_chunk *ch, void *arg)
{
	struct conv_page *pg = arg;
	const char *data = ch->data;
	size_t len = ch->len;
	int64_t skipped = 0;

	pg->last_seq = ch->seq;
	if (strcmp(ch->stream, "stdout") != 0)
		return 0;
	if (!pg->first_seen) {
		pg->first_seen = true;
		if (pg->skip > (int64_t)len) {
			pg->bad_skip = true;
			return 1;
		}
		skipped = pg->skip;
		data += pg->skip;
		len -= (size_t)pg->skip;
	}
	pg->marks[pg->n_marks].seq = ch->seq;
	pg->marks[pg->n_marks].start = pg->fed - skipped;
	pg->marks[pg->n_marks].len = (int64_t)ch->len;
	pg->n_marks++;
	pg->fed += (int64_t)len;
	return conv_feed(pg->p, data, len) ? -1 : 0;
}

void api_attempts_conversation(struct req *r)
{
	struct run_pick pick = { 0 };
	struct conv_page pg = { 0 };
	struct db_attempt a;
	struct db_job job;
	json_object *body;
	int64_t seq = 0, after = 0, after_seq, next, consumed;
	bool more = false, finished, has_job;
	int rc;

	if (http_query_i64(r, "run", 0, ATTEMPT_RUNS_MAX, 0, &seq) ||
	    http_query_i64(r, "after", 0, INT64_MAX, 0, &after) || load_attempt(r, &a))
		return;
	db_attempt_release(&a);
	pick.seq = seq;
	rc = db_attempt_run_list(r->db, a.id, run_pick_one, &pick);
	if (rc != DB_OK || !pick.found) {
		db_attempt_run_release(&pick.run);
		if (rc == DB_OK)
			reply_error_field(r, 404, "not_found", "run", "the attempt has no such run");
		else
			reply_error(r, 500, "internal", "reading the attempt's runs failed");
		return;
	}
	has_job = pick.run.job_id > 0;
	rc = has_job ? db_job_get(r->db, pick.run.job_id, r->user.id, &job) : DB_NOTFOUND;
	if (rc == DB_ERROR) {
		reply_error(r, 500, "internal", "reading the run's job failed");
		return;
	}
	if (rc == DB_NOTFOUND) {
		/* Not queued yet, or purged: nothing to show. */
		body = json_object_new_object();
		json_set(body, "run", json_object_new_int(pick.run.seq));
		json_set(body, "job_id", NULL);
		json_set(body, "entries", json_object_new_array());
		json_set(body, "next", json_object_new_int64(after));
		json_set(body, "more", json_object_new_boolean(false));
		json_set(body, "done", json_object_new_boolean(strcmp(pick.run.state, "queued") != 0 &&
							       strcmp(pick.run.state, "running") != 0));
		reply_json(r, 200, body);
		return;
	}
	finished = job_state_final(job.state);
	db_job_release(&job);
	after_seq = after >> CURSOR_SKIP_BITS;
	/* A page that holds no whole line is read again, large enough for the
	 * longest line the parser keeps. */
	for (int round = 0; round < 2; round++) {
		size_t page = round ? CONV_LINE_MAX + CONV_PAGE_BYTES : CONV_PAGE_BYTES;

		conv_free(pg.p);
		free(pg.marks);
		memset(&pg, 0, sizeof(pg));
		pg.skip = after & ((INT64_C(1) << CURSOR_SKIP_BITS) - 1);
		pg.last_seq = after_seq;
		pg.p = conv_new(0);
		pg.marks = calloc(CONV_PAGE_CHUNKS + 1, sizeof(*pg.marks));
		if (!pg.p || !pg.marks) {
			reply_error(r, 500, "internal", "out of memory");
			goto out;
		}
		more = false;
		rc = db_job_output(r->db, pick.run.job_id, after_seq, CONV_PAGE_CHUNKS, page, conv_chunk, &pg, &more);
		if (pg.bad_skip) {
			reply_error_field(r, 400, "invalid_field", "after", "'after' is not a cursor this run gave");
			goto out;
		}
		if (rc != DB_OK) {
			reply_error(r, 500, "internal", "reading the run's output failed");
			goto out;
		}
		/* The job may have ended after the chunks were read: only a page
		 * read after it ended, with nothing more, ends a last unended line. */
		conv_finish(pg.p, finished && !more);
		if (conv_consumed(pg.p) > 0 || !more)
			break;
	}
	/* The cursor: after the chunk before the one the first unparsed byte
	 * is in, and the bytes of that chunk already parsed; else after the
	 * last chunk read. */
	consumed = conv_consumed(pg.p);
	next = pg.last_seq << CURSOR_SKIP_BITS;
	for (size_t i = 0; i < pg.n_marks; i++) {
		if (consumed >= pg.marks[i].start && consumed < pg.marks[i].start + pg.marks[i].len) {
			int64_t prev = i == 0 ? after_seq : pg.marks[i - 1].seq;

			next = (prev << CURSOR_SKIP_BITS) | (consumed - pg.marks[i].start);
			break;
		}
	}
	body = json_object_new_object();
	json_set(body, "run", json_object_new_int(pick.run.seq));
	json_set(body, "job_id", json_object_new_int64(pick.run.job_id));
	json_set(body, "entries", json_object_get(conv_entries(pg.p)));
	json_set(body, "next", json_object_new_int64(next));
	json_set(body, "more", json_object_new_boolean(more));
	json_set(body, "done", json_object_new_boolean(finished && !more));
	reply_json(r, 200, body);
out:
	conv_free(pg.p);
	free(pg.marks);
}

/* Reads the pull request's state from GitHub now (open, closed, merged)
 * and stores it: one bounded REST call within the request's GitHub
 * deadline, like the repository list. */
void api_attempts_pr_refresh(struct req *r)
{
	struct db_attempt a;
	struct db_project p;
	struct secret_value tok = { 0 };
	struct github_pull pr = { 0 };
	char err[256];
	enum gh_rc g;
	int rc;

	if (load_attempt(r, &a))
		return;
	if (!a.pr_url[0] || a.pr_number <= 0) {
		db_attempt_release(&a);
		reply_error(r, 409, "no_pull_request", "the attempt has no pull request");
		return;
	}
	rc = db_project_get(r->db, a.project_id, r->user.id, &p);
	if (rc != DB_OK) {
		db_attempt_release(&a);
		reply_failed(r, rc, NULL, "attempt");
		return;
	}
	g = github_token_get(r->secrets, r->user.id, r->session.id, r->gh_deadline_ms, &tok);
	if (g == GH_OK) {
		g = github_pull_get((const char *)tok.data, p.github_full_name, a.pr_number, r->gh_deadline_ms, &pr, err,
				    sizeof(err));
		if (g == GH_TOKEN_INVALID) {
			struct gh_response gr = { .status = 401 };

			github_token_failed(r->secrets, r->user.id, r->session.id, &gr, "reading a pull request");
		}
		secret_value_release(&tok);
	}
	db_project_release(&p);
	if (g != GH_OK) {
		db_attempt_release(&a);
		if (g == GH_INVALID)
			reply_error(r, 502, "github_error", "GitHub refused to show the pull request");
		else
			reply_github(r, g);
		return;
	}
	rc = attempts_pr_stored(r->db, a.id, a.pr_url, a.pr_number, pr.state, now_s());
	db_attempt_release(&a);
	if (rc != DB_OK || load_attempt(r, &a) != 0) {
		if (rc != DB_OK)
			reply_error(r, 500, "internal", "storing the pull request's state failed");
		return;
	}
	reply_attempt(r, 200, &a);
}
