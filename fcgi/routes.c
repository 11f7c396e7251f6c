/* routes.c - the route table and the checks every request passes before
 * its handler: Host (421), route (404/405; a cloud-only route does not
 * exist in local mode, nor a local-only one in cloud mode), body size (413), Origin of a write (403), session,
 * CSRF (403), signed-in user (401), JSON body (400). */
#include "autoconfig.h"

#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "fcgi/cache.h"
#include "fcgi/origin.h"
#include "fcgi/session.h"
#include "services/github_token.h"

#define JSON true
#define NOBODY false

static const struct route routes[] = {
	/* method  pattern                          handler                   auth          mode        body    prefetch */
	{ "GET",  "/api/health",                    api_health,               AUTH_NONE,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/session",                   api_session_get,          AUTH_SESSION, MODE_ANY,   NOBODY, PF_GITHUB },
	{ "GET",  "/api/meta",                      api_meta,                 AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/auth/github/device/start",  api_auth_device_start,    AUTH_SESSION, MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/auth/github/device/poll",   api_auth_device_poll,     AUTH_SESSION, MODE_ANY,   JSON,   PF_NONE },
	{ "POST", "/api/auth/logout",               api_auth_logout,          AUTH_SESSION, MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/sessions",                  api_sessions_list,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/sessions/revoke-others",    api_sessions_revoke_others, AUTH_USER,  MODE_ANY,   NOBODY, PF_NONE },
	{ "DELETE", "/api/sessions/{id}",           api_sessions_delete,      AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/auth/github/status",        api_github_status,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "DELETE", "/api/auth/github",             api_github_disconnect,    AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/auth/claude/login",         api_claude_login_start,   AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "GET",  "/api/auth/claude/login/{id}",    api_claude_login_get,     AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/auth/claude/login/{id}/input", api_claude_login_input, AUTH_USER,   MODE_ANY,   JSON,   PF_NONE },
	{ "POST", "/api/auth/claude/login/{id}/cancel", api_claude_login_cancel, AUTH_USER, MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/auth/claude/status",        api_claude_status,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "DELETE", "/api/auth/claude",             api_claude_disconnect,    AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/github/repositories",       api_github_repositories,  AUTH_USER,    MODE_CLOUD, NOBODY, PF_NONE },
	{ "POST", "/api/projects/from-github",      api_projects_from_github, AUTH_USER,    MODE_CLOUD, JSON,   PF_NONE },
	{ "GET",  "/api/projects",                  api_projects_list,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/projects",                  api_projects_create,      AUTH_USER,    MODE_LOCAL, JSON,   PF_NONE },
	{ "GET",  "/api/projects/{id}",             api_projects_get,         AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "PATCH", "/api/projects/{id}",            api_projects_update,      AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "DELETE", "/api/projects/{id}",           api_projects_delete,      AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/projects/{id}/tasks",       api_tasks_list,           AUTH_USER,    MODE_ANY,   NOBODY, PF_BOARD },
	{ "POST", "/api/projects/{id}/tasks",       api_tasks_create,         AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "GET",  "/api/tasks/{id}",                api_tasks_get,            AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "PATCH", "/api/tasks/{id}",               api_tasks_update,         AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "DELETE", "/api/tasks/{id}",              api_tasks_delete,         AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/tasks/{id}/move",           api_tasks_move,           AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "GET",  "/api/tasks/{id}/attempts",       api_attempts_list,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/tasks/{id}/attempts",       api_attempts_create,      AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "GET",  "/api/attempts/{id}",             api_attempts_get,         AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/attempts/{id}/follow-up",   api_attempts_follow_up,   AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "POST", "/api/attempts/{id}/stop",        api_attempts_stop,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/attempts/{id}/diff",        api_attempts_diff,        AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/attempts/{id}/conversation", api_attempts_conversation, AUTH_USER,  MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/attempts/{id}/pull-request", api_attempts_pull_request, AUTH_USER,  MODE_ANY,   JSON,   PF_NONE },
	{ "POST", "/api/attempts/{id}/pull-request/refresh", api_attempts_pr_refresh, AUTH_USER, MODE_ANY, NOBODY, PF_NONE },
	{ "GET",  "/api/events",                    api_events_list,          AUTH_USER,    MODE_ANY,   NOBODY, PF_EVENTS },
	{ "GET",  "/api/jobs",                      api_jobs_list,            AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "POST", "/api/jobs",                      api_jobs_create,          AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "GET",  "/api/jobs/{id}",                 api_jobs_get,             AUTH_USER,    MODE_ANY,   NOBODY, PF_JOB },
	{ "GET",  "/api/jobs/{id}/output",          api_jobs_output,          AUTH_USER,    MODE_ANY,   NOBODY, PF_JOB_OUTPUT },
	{ "POST", "/api/jobs/{id}/cancel",          api_jobs_cancel,          AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/secrets",                   api_secrets_list,         AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "PUT",  "/api/secrets/{kind}",            api_secrets_put,          AUTH_USER,    MODE_ANY,   JSON,   PF_NONE },
	{ "DELETE", "/api/secrets/{kind}",          api_secrets_delete,       AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
	{ "GET",  "/api/audit",                     api_audit_list,           AUTH_USER,    MODE_ANY,   NOBODY, PF_NONE },
};

const struct route *routes_table(size_t *n)
{
	*n = ARRAY_SIZE(routes);
	return routes;
}

static bool is_write(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

/* Fills r->pf with what a GET route reads besides the session, so both go
 * to the database in one round trip (enum route_prefetch). Parameters are
 * parsed as the handler parses them; one that does not parse asks for
 * nothing, and the handler answers it as usual. */
static void plan_prefetch(struct req *r)
{
	const char *id = route_param(&r->params, "id");
	int64_t v;

	switch (r->route->prefetch) {
	case PF_NONE:
		return;
	case PF_GITHUB:
		r->pf.secret_kind = GITHUB_TOKEN_KIND;
		return;
	case PF_EVENTS:
		if (api_events_args(r, false, &r->pf.after, &v))
			return;
		r->pf.limit = (int)v;
		r->pf.events = true;
		return;
	case PF_BOARD:
		if (id && parse_i64(id, 1, INT64_MAX, &v) == 0)
			r->pf.board_project = v;
		return;
	case PF_JOB_OUTPUT:
		if (api_jobs_output_args(r, false, &r->pf.after, &v))
			return;
		r->pf.limit = (int)v;
		r->pf.max_bytes = OUTPUT_MAX_BYTES;
		r->pf.output = true;
		/* fall through */
	case PF_JOB:
		if (id && parse_i64(id, 1, INT64_MAX, &v) == 0)
			r->pf.job_id = v;
		return;
	}
}

static void dispatch(struct req *r)
{
	enum route_result rr;
	bool write;

	/* Before anything else: a foreign Host (DNS rebinding) gets nothing. */
	if (origin_check_host(r))
		return;
	rr = route_match(routes, ARRAY_SIZE(routes), g_config.cloud, r->method, r->path, &r->route,
			 &r->params, r->allow, sizeof(r->allow));
	if (rr == ROUTE_NOT_FOUND) {
		reply_error(r, 404, "not_found", "no such endpoint");
		return;
	}
	if (rr == ROUTE_METHOD_NOT_ALLOWED) {
		reply_error(r, 405, "method_not_allowed", "method %s is not allowed here", r->method);
		return;
	}
	r->allow[0] = '\0';
	if (r->content_length > g_config.max_body) {
		reply_error(r, 413, "body_too_large", "request body is larger than %lld bytes",
			    (long long)g_config.max_body);
		return;
	}
	write = is_write(r->method);
	if (write && origin_check_write(r))
		return;
	if (!write) {
		/* A hot read asked again while nothing changed (fcgi/cache.h). */
		if (cache_serve(r))
			return;
		plan_prefetch(r);
	}
	if (r->route->auth != AUTH_NONE || write) {
		/* A write never creates a session: it could not carry its token.
		 * In cloud mode only the routes that need one (AUTH_SESSION:
		 * /api/session, the sign-in) give a browser whose cookie names
		 * no session a fresh anonymous cookie: a GET of anything else
		 * sent with the token a sign-in was rotating away would
		 * otherwise answer after that sign-in and replace its new
		 * cookie, signing the browser out (t9100 met it). */
		bool create = !write && (!g_config.cloud || r->route->auth == AUTH_SESSION);

		if (session_load(r, create))
			return;
	}
	if (write && !session_csrf_ok(r)) {
		reply_error(r, 403, "csrf_failed", "missing or wrong X-CSRF-Token header");
		return;
	}
	if (r->route->auth == AUTH_USER && !r->has_user) {
		reply_error(r, 401, "unauthenticated", "sign in first");
		return;
	}
	if (http_read_body(r, g_config.max_body))
		return;
	if (r->route->json_body && http_parse_json_object(r))
		return;
	r->route->handler(r);
}

void http_dispatch(FCGX_Request *fx, struct secret_store *st)
{
	struct req r;

	if (http_read_request(&r, fx, st) == 0)
		dispatch(&r);
	db_prefetch_release(r.db, &r.pf);
	if (!r.responded) {
		log_error("BUG: %s %s: handler sent no reply", r.method, r.path);
		reply_error(&r, 500, "internal", "the handler sent no reply");
	}
	http_reset(&r);
}
