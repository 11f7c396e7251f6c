/* api_claude.c - connecting Claude Code from the browser (issue 11):
 * /api/auth/claude/login (a claude_login job: worker/job_claude_login.c),
 * its screen (services/claude_login.h), the typed input (sealed until the
 * worker hands it to the CLI), cancel, and the credential's status. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "services/audit.h"
#include "services/claude_login.h"
#include "services/jobkinds.h"
#include "services/jobs.h"
#include "services/secrets.h"

#define LOGIN_OUTPUT_CHUNKS 5000

/* Loads the caller's login {id} (a claude_login job). 0, or -1 after
 * replying 404 (anyone else's, another kind) or 500. */
static int load_login(struct req *r, struct db_job *job)
{
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return -1;
	rc = db_job_get(r->db, id, r->user.id, job);
	if (rc == DB_OK && strcmp(job->kind, "claude_login") == 0)
		return 0;
	if (rc == DB_OK)
		db_job_release(job);
	if (rc == DB_OK || rc == DB_NOTFOUND)
		reply_error(r, 404, "not_found", "no such login");
	else
		reply_error(r, 500, "internal", "reading the login failed");
	return -1;
}

void api_claude_login_start(struct req *r)
{
	const char *method;
	json_object *args, *body;
	struct db_job job;
	int rc;

	if (json_get_str(r->json, "method", &method) != 0 ||
	    (strcmp(method, "setup-token") && strcmp(method, "interactive"))) {
		reply_error_field(r, 400, "invalid_field", "method", "'method' must be \"setup-token\" or "
				  "\"interactive\"");
		return;
	}
	args = json_object_new_object();
	json_set(args, "method", json_object_new_string(method));
	rc = jobs_submit(r->db, r->user.id, "claude_login", json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN),
			 1, g_config.user_max_queued, now_s(), &job);
	json_object_put(args);
	if (rc == DB_CONFLICT || rc == JOBS_OVER_OUTPUT) {
		r->retry_after = 10;
		reply_error(r, 429, "quota_exceeded", "too many jobs waiting, or your stored output is at its limit");
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "starting the login failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "claude.login_start", "ok", "method=%s login=%lld", method,
		    (long long)job.id);
	body = json_object_new_object();
	json_set(body, "login_id", json_object_new_int64(job.id));
	json_set(body, "state", json_object_new_string(job_state_name(job.state)));
	reply_json(r, 201, body);
	db_job_release(&job);
}

struct screen_ctx {
	char *text;                  /* the program's output so far (stdout chunks) */
	size_t len, cap;
	int64_t after, last;
	json_object *chunks;
	size_t chunk_bytes;
	bool cut;
};

static int screen_one(const struct db_chunk *c, void *arg)
{
	struct screen_ctx *x = arg;

	if (c->stream && strcmp(c->stream, "stdout") == 0 && x->len + c->len <= CLAUDE_LOGIN_OUTPUT_MAX) {
		if (x->len + c->len > x->cap) {
			size_t cap = (x->len + c->len) * 2 + 1024;
			char *nt = realloc(x->text, cap);

			if (!nt)
				return -1;
			x->text = nt;
			x->cap = cap;
		}
		memcpy(x->text + x->len, c->data, c->len);
		x->len += c->len;
	}
	if (c->seq > x->after && !x->cut) {
		json_object *o;

		if (x->chunk_bytes + c->len > 256 * 1024 && x->chunk_bytes) {
			x->cut = true;
			return 0;
		}
		o = json_object_new_object();
		json_set(o, "seq", json_object_new_int64(c->seq));
		json_set(o, "stream", json_str(c->stream ? c->stream : ""));
		json_set(o, "data", json_string_from_bytes(c->data, c->len));
		json_set(o, "at", json_object_new_int64(c->created_at));
		json_object_array_add(x->chunks, o);
		x->chunk_bytes += c->len;
		x->last = c->seq;
	}
	return 0;
}

void api_claude_login_get(struct req *r)
{
	struct screen_ctx x = { 0 };
	struct claude_screen sc;
	struct db_job job;
	json_object *body, *choices;
	bool more;
	int64_t after;

	if (http_query_i64(r, "after", 0, INT64_MAX, 0, &after) || load_login(r, &job))
		return;
	x.after = x.last = after;
	x.chunks = json_object_new_array();
	if (db_job_output(r->db, job.id, 0, LOGIN_OUTPUT_CHUNKS, 2 * CLAUDE_LOGIN_OUTPUT_MAX, screen_one, &x, &more)) {
		json_object_put(x.chunks);
		free(x.text);
		db_job_release(&job);
		reply_error(r, 500, "internal", "reading the login's output failed");
		return;
	}
	claude_screen_parse(x.text ? x.text : "", x.len, &sc);
	body = json_object_new_object();
	json_set(body, "login_id", json_object_new_int64(job.id));
	json_set(body, "state", json_object_new_string(job_state_name(job.state)));
	json_set(body, "chunks", x.chunks);
	json_set(body, "next_after", json_object_new_int64(x.last));
	json_set(body, "done", json_object_new_boolean(job_state_final(job.state) && !x.cut));
	json_set(body, "error", job.error[0] ? json_str(job.error) : NULL);
	if (!job_state_final(job.state)) {
		json_set(body, "authorize_url", sc.url[0] ? json_str(sc.url) : NULL);
		choices = json_object_new_array();
		for (int i = 0; i < sc.n_choices; i++) {
			json_object *c = json_object_new_object();

			json_set(c, "number", json_object_new_int(sc.choices[i].number));
			json_set(c, "label", json_str(sc.choices[i].label));
			json_object_array_add(choices, c);
		}
		json_set(body, "choices", choices);
		json_set(body, "needs_code", json_object_new_boolean(sc.needs_code));
	} else {
		json_set(body, "authorize_url", NULL);
		json_set(body, "choices", json_object_new_array());
		json_set(body, "needs_code", json_object_new_boolean(false));
	}
	reply_json(r, 200, body);
	free(x.text);
	db_job_release(&job);
}

/* json-c frees without wiping: the typed text is wiped on every path. */
static void wipe_text(json_object *json)
{
	json_object *v;

	if (json && json_object_object_get_ex(json, "text", &v) && json_object_is_type(v, json_type_string))
		OPENSSL_cleanse((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

void api_claude_login_input(struct req *r)
{
	unsigned char nonce[DB_NONCE_LEN], tag[DB_TAG_LEN], *ct = NULL;
	char key_id[16];
	json_object *v, *body;
	struct db_job job;
	size_t len;
	int rc;

	if (load_login(r, &job)) {
		wipe_text(r->json);
		return;
	}
	if (!json_object_object_get_ex(r->json, "text", &v) || !json_object_is_type(v, json_type_string) ||
	    (len = (size_t)json_object_get_string_len(v)) == 0 || len > CLAUDE_INPUT_MAX ||
	    strlen(json_object_get_string(v)) != len) {
		reply_error_field(r, 400, "invalid_field", "text", "'text' must be a string of 1 to %d bytes "
				  "without NUL", CLAUDE_INPUT_MAX);
		goto out;
	}
	if (job_state_final(job.state)) {
		reply_error(r, 409, "login_ended", "the login already ended (%s)", job_state_name(job.state));
		goto out;
	}
	if (!(ct = malloc(len)) ||
	    claude_input_seal(r->secrets->kr, r->user.id, job.id, json_object_get_string(v), len, key_id, nonce,
			      ct, tag)) {
		reply_error(r, 500, "internal", "sealing the input failed");
		goto out;
	}
	rc = db_login_input_add(r->db, job.id, r->user.id, key_id, nonce, ct, len, tag, CLAUDE_INPUTS_QUEUED_MAX,
				now_s());
	if (rc == DB_CONFLICT) {
		r->retry_after = 1;
		reply_error(r, 429, "quota_exceeded", "%d inputs already wait for the CLI", CLAUDE_INPUTS_QUEUED_MAX);
		goto out;
	}
	if (rc) {
		reply_error(r, 500, "internal", "queueing the input failed");
		goto out;
	}
	body = json_object_new_object();
	json_set(body, "queued", json_object_new_boolean(true));
	reply_json(r, 202, body);
out:
	free(ct);
	wipe_text(r->json);
	db_job_release(&job);
}

void api_claude_login_cancel(struct req *r)
{
	enum job_state state;
	struct db_job job;
	json_object *body;
	int rc;

	if (load_login(r, &job))
		return;
	rc = jobs_cancel(r->db, job.id, r->user.id, now_s(), &state);
	db_job_release(&job);
	if (rc == DB_CONFLICT) {
		reply_error(r, 409, "login_ended", "the login already ended (%s)", job_state_name(state));
		return;
	}
	if (rc != DB_OK) {
		reply_error(r, 500, "internal", "cancelling the login failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "state", json_object_new_string(job_state_name(state)));
	reply_json(r, 202, body);
}

/* {connected, method, created_at, expires_at, invalid, last_error}. */
static int status_json(struct req *r, json_object **out)
{
	struct db_secret meta;
	char method[32];
	char *last_error = NULL;
	int64_t at;
	json_object *o;
	int rc = secret_meta(r->secrets, r->user.id, "claude_credential", &meta), rc2;
	bool api_key = false;

	if (rc == SECRET_NOTFOUND) {
		rc = secret_meta(r->secrets, r->user.id, "anthropic_api_key", &meta);
		api_key = rc == SECRET_OK;
	}
	if (rc != SECRET_OK && rc != SECRET_NOTFOUND)
		return -1;
	rc2 = db_claude_auth_get(r->db, r->user.id, method, sizeof(method), &last_error, &at);
	if (rc2 == DB_ERROR)
		return -1;
	o = json_object_new_object();
	json_set(o, "connected", json_object_new_boolean(rc == SECRET_OK));
	json_set(o, "method", rc != SECRET_OK ? NULL : api_key ? json_str("api_key") : method[0] ? json_str(method)
	       : json_str("token"));
	json_set(o, "created_at", rc == SECRET_OK ? json_object_new_int64(meta.updated_at ? meta.updated_at :
									   meta.created_at) : NULL);
	json_set(o, "expires_at", json_i64_or_null(meta.expires_at, rc == SECRET_OK && meta.expires_at > 0));
	json_set(o, "invalid", json_object_new_boolean(rc == SECRET_OK && meta.invalid));
	json_set(o, "last_error", last_error && last_error[0] ? json_str(last_error) : NULL);
	free(last_error);
	*out = o;
	return 0;
}

void api_claude_status(struct req *r)
{
	json_object *o;

	if (status_json(r, &o)) {
		reply_error(r, 500, "internal", "reading the Claude credential failed");
		return;
	}
	reply_json(r, 200, o);
}

void api_claude_disconnect(struct req *r)
{
	json_object *o;
	int rc = secret_delete(r->secrets, r->user.id, "claude_credential", r->session.id);

	if ((rc != SECRET_OK && rc != SECRET_NOTFOUND) || db_claude_auth_delete(r->db, r->user.id) ||
	    status_json(r, &o)) {
		reply_error(r, 500, "internal", "removing the Claude credential failed");
		return;
	}
	reply_json(r, 200, o);
}
