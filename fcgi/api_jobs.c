/* api_jobs.c - jobs: create, list, read, output by polling, cancel. */
#include "autoconfig.h"

#include <string.h>

#include "base/config.h"
#include "services/jobkinds.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "base/workspace.h"
#include "fcgi/api.h"
#include "services/jobs.h"

#define OUTPUT_MAX_CHUNKS 500

/* JSON view of a job. New reference. */
static json_object *job_json(const struct db_job *job)
{
	json_object *o = json_object_new_object();
	json_object *args = NULL;
	char err[64];

	json_set(o, "id", json_object_new_int64(job->id));
	json_set(o, "kind", json_str(job->kind));
	json_set(o, "state", json_object_new_string(job_state_name(job->state)));
	if (json_parse(job->args, strlen(job->args), &args, err, sizeof(err)))
		args = json_object_new_object();
	json_set(o, "args", args);
	{
		/* Container jobs: whether it asked for a workspace, and whether
		 * the directory is still on the host (kept: the job ended and
		 * ANYON_WORKSPACE_KEEP kept it). */
		json_object *wsv, *w;
		bool on = json_object_object_get_ex(args, "workspace", &wsv) && json_object_get_boolean(wsv);

		if (on) {
			bool there = workspace_exists(g_config.data_dir, job->id);

			w = json_object_new_object();
			json_set(w, "exists", json_object_new_boolean(there));
			json_set(w, "kept", json_object_new_boolean(there && job_state_final(job->state)));
			json_set(o, "workspace", w);
		} else {
			json_set(o, "workspace", NULL);
		}
	}
	json_set(o, "attempts", json_object_new_int(job->attempts));
	json_set(o, "cancel_requested", json_object_new_boolean(job->cancel_requested));
	json_set(o, "exit_code", json_i64_or_null(job->exit_code, job->has_exit_code));
	json_set(o, "error", job->error[0] ? json_str(job->error) : NULL);
	json_set(o, "created_at", json_object_new_int64(job->created_at));
	json_set(o, "started_at", json_i64_or_null(job->started_at, job->started_at > 0));
	json_set(o, "finished_at", json_i64_or_null(job->finished_at, job->finished_at > 0));
	if (job->container_id[0]) {
		json_object *c = json_object_new_object();

		json_set(c, "id", json_str(job->container_id));
		json_set(c, "started_at", json_i64_or_null(job->container_started_at, job->container_started_at > 0));
		json_set(c, "ended_at", json_i64_or_null(job->container_ended_at, job->container_ended_at > 0));
		json_set(c, "exit_code", json_i64_or_null(job->container_exit, job->has_container_exit));
		json_set(c, "oom_killed", json_object_new_boolean(job->container_oom));
		json_set(o, "container", c);
	}
	return o;
}

static void reply_job(struct req *r, int status, const struct db_job *job)
{
	json_object *body = json_object_new_object();

	json_set(body, "job", job_json(job));
	reply_json(r, status, body);
}

/* Loads the caller's job {id}; replies 404 (never 403) for anyone else's.
 * The job may have come with the session (r->pf, the route's prefetch):
 * then it was read in the session's round trip and its owner checked
 * against the session's user (db_session_find_prefetch()). */
static int load_job(struct req *r, struct db_job *job)
{
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return -1;
	if (r->pf.done && r->pf.job_id == id) {
		rc = r->pf.job_rc;
		if (rc == DB_OK) {
			*job = r->pf.job;       /* taken: the caller releases it */
			r->pf.job_held = false;
		}
	} else {
		rc = db_job_get(r->db, id, r->user.id, job);
	}
	if (rc == DB_OK)
		return 0;
	if (rc == DB_NOTFOUND)
		reply_error(r, 404, "not_found", "no such job");
	else
		reply_error(r, 500, "internal", "reading the job failed");
	return -1;
}

void api_jobs_create(struct req *r)
{
	const char *kind;
	json_object *args;
	struct db_job job;
	char err[256];
	int rc;

	if (json_get_str(r->json, "kind", &kind) != 0) {
		reply_error(r, 400, "invalid_field", "'kind' must be a string");
		return;
	}
	if (!json_object_object_get_ex(r->json, "args", &args))
		args = NULL;
	if (!args) {
		args = json_object_new_object();
		json_set(r->json, "args", args);
	}
	if (jobkind_find(kind) && jobkind_find(kind)->internal) {
		reply_error_field(r, 400, "invalid_field", "kind", "jobs of kind '%s' are made by anyon itself "
				  "(an attempt's run or pull request: /api/tasks/{id}/attempts)", kind);
		return;
	}
	if (jobkind_validate(kind, args, err, sizeof(err))) {
		reply_error(r, 400, "invalid_field", "%s", err);
		return;
	}
	/* A container job runs any command on the Docker host's engine: the
	 * local user's (local mode) or an admin's (cloud mode) only. */
	if ((jobkind_find(kind)->needs & NEED_DOCKER) &&
	    !(g_config.cloud ? r->user.is_admin : (r->user.is_local || r->user.is_admin))) {
		reply_error(r, 403, "forbidden", "only %s may run '%s' jobs",
			    g_config.cloud ? "admins" : "the local user", kind);
		return;
	}
	rc = jobs_submit(r->db, r->user.id, kind, json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
			 jobkind_max_attempts(jobkind_find(kind)), g_config.user_max_queued, now_s(), &job);
	if (rc == DB_CONFLICT) {
		r->retry_after = 10;
		reply_error(r, 429, "quota_exceeded", "you have %lld jobs queued already; wait for some to start",
			    (long long)g_config.user_max_queued);
		return;
	}
	if (rc == JOBS_OVER_OUTPUT) {
		r->retry_after = 3600;
		reply_error(r, 429, "quota_exceeded", "your jobs' stored output is at its limit of %lld bytes; "
			    "it frees up as finished jobs pass their retention period", (long long)g_config.user_max_output_bytes);
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "storing the job failed");
		return;
	}
	reply_job(r, 201, &job);
	db_job_release(&job);
}

static int list_one(const struct db_job *job, void *arg)
{
	return api_page_add(arg, job_json(job), job->id);
}

void api_jobs_list(struct req *r)
{
	struct api_page page = { 0 };
	int64_t before, limit;

	if (http_query_i64(r, "before", 0, INT64_MAX, 0, &before) ||
	    http_query_i64(r, "limit", 1, 200, 50, &limit))
		return;
	page.items = json_object_new_array();
	if (db_job_list(r->db, r->user.id, before, (int)limit, list_one, &page)) {
		json_object_put(page.items);
		reply_error(r, 500, "internal", "listing jobs failed");
		return;
	}
	api_page_reply(r, &page, "jobs", limit);
}

void api_jobs_get(struct req *r)
{
	struct db_job job;

	if (load_job(r, &job))
		return;
	reply_job(r, 200, &job);
	db_job_release(&job);
}

struct output_ctx {
	json_object *chunks;
	int64_t last;
};

static int output_one(const struct db_chunk *c, void *arg)
{
	struct output_ctx *ctx = arg;
	json_object *o = json_object_new_object();

	json_set(o, "seq", json_object_new_int64(c->seq));
	json_set(o, "stream", json_str(c->stream ? c->stream : ""));
	json_set(o, "data", json_string_from_bytes(c->data, c->len));
	json_set(o, "at", json_object_new_int64(c->created_at));
	ctx->last = c->seq;
	return json_object_array_add(ctx->chunks, o);
}

int api_jobs_output_args(struct req *r, bool reply, int64_t *after, int64_t *limit)
{
	if (reply)
		return http_query_i64(r, "after", 0, INT64_MAX, 0, after) ||
		       http_query_i64(r, "limit", 1, OUTPUT_MAX_CHUNKS, OUTPUT_MAX_CHUNKS, limit) ? -1 : 0;
	return http_query_i64_quiet(r, "after", 0, INT64_MAX, 0, after) ||
	       http_query_i64_quiet(r, "limit", 1, OUTPUT_MAX_CHUNKS, OUTPUT_MAX_CHUNKS, limit) ? -1 : 0;
}

void api_jobs_output(struct req *r)
{
	struct output_ctx ctx;
	struct db_job job;
	json_object *body;
	int64_t after, limit;
	bool done, more, prefetched;
	int rc;

	if (api_jobs_output_args(r, true, &after, &limit))
		return;
	/* Read the state before the chunks: a job seen final here has written
	 * all its output, so "done" never hides a last chunk. */
	if (load_job(r, &job))
		return;
	ctx.chunks = json_object_new_array();
	ctx.last = after;
	/* The chunks came with the session too when the job did (pipelined
	 * after the job's read, so still read after its state). */
	prefetched = r->pf.done && r->pf.output_stmt && r->pf.job_id == job.id && r->pf.after == after &&
		     r->pf.limit == limit && r->pf.max_bytes == OUTPUT_MAX_BYTES;
	if (prefetched)
		rc = db_prefetch_output(r->db, &r->pf, OUTPUT_MAX_BYTES, output_one, &ctx, &more);
	else
		rc = db_job_output(r->db, job.id, after, (int)limit, OUTPUT_MAX_BYTES, output_one, &ctx, &more);
	if (rc) {
		json_object_put(ctx.chunks);
		db_job_release(&job);
		reply_error(r, 500, "internal", "reading output failed");
		return;
	}
	done = job_state_final(job.state) && !more;
	body = json_object_new_object();
	json_set(body, "chunks", ctx.chunks);
	json_set(body, "next_after", json_object_new_int64(ctx.last));
	json_set(body, "state", json_object_new_string(job_state_name(job.state)));
	json_set(body, "exit_code", json_i64_or_null(job.exit_code, job.has_exit_code));
	json_set(body, "done", json_object_new_boolean(done));
	json_set(body, "more", json_object_new_boolean(more));
	reply_json(r, 200, body);
	db_job_release(&job);
}

void api_jobs_cancel(struct req *r)
{
	enum job_state state;
	struct db_job job;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = jobs_cancel(r->db, id, r->user.id, now_s(), &state);
	if (rc == DB_NOTFOUND) {
		reply_error(r, 404, "not_found", "no such job");
		return;
	}
	if (rc == DB_CONFLICT) {
		reply_error(r, 409, "job_finished", "the job already ended (%s)", job_state_name(state));
		return;
	}
	if (rc != DB_OK || db_job_get(r->db, id, r->user.id, &job) != DB_OK) {
		reply_error(r, 500, "internal", "cancelling the job failed");
		return;
	}
	reply_job(r, 202, &job);
	db_job_release(&job);
}
