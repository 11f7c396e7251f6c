/* api.h - the handlers behind the route table, one file per resource. */
#ifndef ANYON_API_H
#define ANYON_API_H

#include "fcgi/http.h"
#include "services/github.h"

/* api_health.c */
void api_health(struct req *r);
void api_session_get(struct req *r);

/* api_jobs.c */
void api_jobs_create(struct req *r);
void api_jobs_list(struct req *r);
void api_jobs_get(struct req *r);
void api_jobs_output(struct req *r);
void api_jobs_cancel(struct req *r);

/* api_secrets.c */
void api_secrets_list(struct req *r);
void api_secrets_put(struct req *r);
void api_secrets_delete(struct req *r);
void api_audit_list(struct req *r);

/* api_github.c */
void api_github_device_start(struct req *r);
void api_github_device_poll(struct req *r);
void api_github_status(struct req *r);
void api_github_disconnect(struct req *r);
void api_auth_logout(struct req *r);
void api_github_repositories(struct req *r);
void api_projects_from_github(struct req *r);
void api_projects_list(struct req *r);
void api_projects_get(struct req *r);
/* The public view of a user (id, login, name, flags, avatar). New reference. */
json_object *user_json(const struct db_user *u);
/* {connected, login, token_invalid} of the session's user. New reference. */
json_object *github_status_json(struct req *r);

/* reply_github.c: answers a GitHub result other than GH_OK (the one
 * table from enum gh_rc to status, code and message). */
void reply_github(struct req *r, enum gh_rc rc);

/* Dispatches one accepted request: routing, size limit, session, CSRF,
 * JSON body, handler. Never exits. (routes.c) */
void http_dispatch(FCGX_Request *fx, struct secret_store *st);

#endif
