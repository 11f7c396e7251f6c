/* api.h - the handlers behind the route table, one file per resource. */
#ifndef ANYON_API_H
#define ANYON_API_H

#include "fcgi/http.h"
#include "services/github.h"

/* Largest JSON a list answer holds in its items, in bytes: a page stops
 * early there and says where the next one starts (docs/API.md). */
#define API_LIST_BUDGET (1024 * 1024)
/* A job's output answer holds at most this many bytes of chunks (the
 * first chunk whatever its size); the route's prefetch asks the same. */
#define OUTPUT_MAX_BYTES (256 * 1024)

/* One page of a list answer being built: items up to API_LIST_BUDGET bytes
 * of JSON, the id of the last one for the next page's cursor. */
struct api_page {
	json_object *items;   /* owned until api_page_reply() hands it on */
	size_t bytes;         /* JSON of the items so far */
	int64_t last_id;      /* of the last item on the page */
	int n;
	bool cut;             /* stopped at API_LIST_BUDGET */
};

/* Adds item (ownership passes) of row id; a list callback returns what
 * this returns: 0 go on, > 0 the page is full (stop), < 0 error. */
int api_page_add(struct api_page *p, json_object *item, int64_t id);
/* Replies 200 {name: items, "next_before": cursor or null}; limit is the
 * row limit asked of the query (a full page may have more after it). */
void api_page_reply(struct req *r, struct api_page *p, const char *name, int64_t limit);

/* One file per resource, as docs/API.md's sections. Each line says the
 * services it calls, the data layer's file with its SQL, and its tests. */

/* api_meta.c: GET /api/meta, the server's vocabularies. t/t5000-tasks.py */
void api_meta(struct req *r);

/* api_health.c: GET /api/health. db/workers.c; t/t1000-health.py */
void api_health(struct req *r);

/* api_session.c: GET /api/session. fcgi/session.c, db/sessions.c;
 * t/t1200-csrf.py, t/t3000-github-signin.py */
void api_session_get(struct req *r);
/* The public view of a user (id, login, name, flags, avatar). New reference. */
json_object *user_json(const struct db_user *u);

/* api_auth.c: /api/auth/github/device/{start,poll}, /api/auth/logout.
 * services/devflow.c, services/signin.c (users.c, github_token.c);
 * db/flows.c, db/users.c, db/sessions.c, db/secrets.c;
 * t/t3000-github-signin.py, t/t3050-signin-atomic.py */
void api_auth_device_start(struct req *r);
void api_auth_device_poll(struct req *r);
void api_auth_logout(struct req *r);

/* api_github.c: /api/auth/github (status, disconnect), /api/github/repositories.
 * services/github_token.c, services/github_repos.c; db/secrets.c, db/users.c;
 * t/t3100-github-repos.py, t/t3110-github-deadline.py */
void api_github_status(struct req *r);
void api_github_disconnect(struct req *r);
void api_github_repositories(struct req *r);
/* {connected, login, token_invalid} of the session's user. New reference. */
json_object *github_status_json(struct req *r);

/* api_projects.c: /api/projects. services/github_repos.c, services/projects.c
 * (services/git.c); db/projects.c; t/t3100-github-repos.py,
 * t/t5100-local-projects.py */
void api_projects_from_github(struct req *r);
void api_projects_create(struct req *r);
void api_projects_list(struct req *r);
void api_projects_get(struct req *r);
void api_projects_update(struct req *r);
void api_projects_delete(struct req *r);
/* Reads the user's project named by the path's {id} into p (release it
 * with db_project_release()). 0, or -1 after replying 404 (not theirs, or
 * no such project) or 500. */
int api_project_load(struct req *r, struct db_project *p);

/* api_sessions.c: the signed-in user's own sessions */
void api_sessions_list(struct req *r);
void api_sessions_delete(struct req *r);
void api_sessions_revoke_others(struct req *r);

/* api_jobs.c: /api/jobs. services/jobs.c, services/jobkinds.c; db/jobs.c;
 * t/t1300-jobs.py */
void api_jobs_create(struct req *r);
void api_jobs_list(struct req *r);
void api_jobs_get(struct req *r);
void api_jobs_output(struct req *r);
/* ?after and ?limit of GET /api/jobs/{id}/output. With reply a bad value
 * is answered 400; without, only -1 (routes.c, planning r->pf). */
int api_jobs_output_args(struct req *r, bool reply, int64_t *after, int64_t *limit);
void api_jobs_cancel(struct req *r);

/* api_tasks.c: /api/projects/{id}/tasks, /api/tasks. services/tasks.c;
 * db/tasks.c, db/events.c; t/t5000-tasks.py */
void api_tasks_list(struct req *r);
void api_tasks_create(struct req *r);
void api_tasks_get(struct req *r);
void api_tasks_update(struct req *r);
void api_tasks_delete(struct req *r);
void api_tasks_move(struct req *r);

/* api_attempts.c: /api/tasks/{id}/attempts, /api/attempts. services/attempts.c
 * (services/jobs.c); db/attempts.c, db/events.c; t/t5200-attempts-api.py */
void api_attempts_create(struct req *r);
void api_attempts_list(struct req *r);
void api_attempts_get(struct req *r);
void api_attempts_follow_up(struct req *r);
void api_attempts_stop(struct req *r);
void api_attempts_diff(struct req *r);
void api_attempts_pull_request(struct req *r);
void api_attempts_conversation(struct req *r);
void api_attempts_pr_refresh(struct req *r);

/* api_events.c: GET /api/events, the change feed. db/events.c;
 * t/t5000-tasks.py */
void api_events_list(struct req *r);
/* ?after and ?limit of GET /api/events. With reply a bad value is answered
 * 400; without, only -1 (routes.c, planning r->pf). */
int api_events_args(struct req *r, bool reply, int64_t *after, int64_t *limit);

/* api_secrets.c: /api/secrets. services/secrets.c; db/secrets.c;
 * t/t2100-secrets-api.py */
void api_secrets_list(struct req *r);
void api_secrets_put(struct req *r);
void api_secrets_delete(struct req *r);

/* api_claude.c: /api/auth/claude (login, its screen, input, cancel;
 * status, disconnect). services/claude_login.c, services/jobs.c,
 * services/secrets.c; db/claude.c, db/jobs.c; t/t6000-claude-login.py */
void api_claude_login_start(struct req *r);
void api_claude_login_get(struct req *r);
void api_claude_login_input(struct req *r);
void api_claude_login_cancel(struct req *r);
void api_claude_status(struct req *r);
void api_claude_disconnect(struct req *r);
/* api_audit.c: GET /api/audit. db/audit.c; t/t2100-secrets-api.py */
void api_audit_list(struct req *r);

/* reply_github.c: answers a GitHub result other than GH_OK (the one
 * table from enum gh_rc to status, code and message). */
void reply_github(struct req *r, enum gh_rc rc);

/* Dispatches one accepted request: routing, size limit, session, CSRF,
 * JSON body, handler. Never exits. (routes.c) */
void http_dispatch(FCGX_Request *fx, struct secret_store *st);

#endif
