/* api_github.c - the caller's GitHub connection: status, disconnect, and
 * the repositories the token sees. */
#include "autoconfig.h"

#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "services/github_repos.h"
#include "services/github_token.h"
#include "fcgi/api.h"

/* {connected, login, token_invalid} for the session's user. */
json_object *github_status_json(struct req *r)
{
	json_object *o = json_object_new_object();
	bool connected = false, invalid = false;

	if (r->has_user && r->pf.done && r->pf.secret_kind) {
		/* Read with the session (GET /api/session's prefetch). */
		connected = r->pf.secret_rc == DB_OK;
		invalid = connected && r->pf.secret_invalid;
	} else if (r->has_user) {
		github_token_status(r->secrets, r->user.id, &connected, &invalid);
	}
	json_set(o, "connected", json_object_new_boolean(connected));
	json_set(o, "login", connected && r->user.github_login[0] ? json_str(r->user.github_login) : NULL);
	json_set(o, "token_invalid", json_object_new_boolean(invalid));
	return o;
}

void api_github_status(struct req *r)
{
	reply_json(r, 200, github_status_json(r));
}

void api_github_disconnect(struct req *r)
{
	if (github_token_forget(r->secrets, r->user.id, r->session.id)) {
		reply_error(r, 500, "internal", "forgetting the token failed");
		return;
	}
	github_repos_forget(r->secrets, r->user.id);
	reply_json(r, 200, github_status_json(r));
}

void api_github_repositories(struct req *r)
{
	json_object *repos, *body;
	int64_t page, per_page;
	bool has_next, truncated;
	enum gh_rc rc;
	char q[128] = "";

	if (http_query_i64(r, "page", 1, 1000, 1, &page) ||
	    http_query_i64(r, "per_page", 1, 100, 30, &per_page))
		return;
	if (http_query(r, "q", q, sizeof(q)) < 0) {
		reply_error(r, 400, "invalid_parameter", "query parameter 'q' is too long or badly encoded");
		return;
	}
	rc = github_repos_list(r->secrets, r->user.id, r->session.id, page, per_page, q, r->gh_deadline_ms,
			       &repos, &has_next, &truncated);
	if (rc != GH_OK) {
		reply_github(r, rc);
		return;
	}
	body = json_object_new_object();
	json_set(body, "repositories", repos);
	json_set(body, "page", json_object_new_int64(page));
	json_set(body, "per_page", json_object_new_int64(per_page));
	json_set(body, "has_next", json_object_new_boolean(has_next));
	json_set(body, "truncated", json_object_new_boolean(truncated));
	reply_json(r, 200, body);
}
