/* api_github.c - the caller's GitHub connection: status, disconnect, and
 * the repositories the token sees. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "services/github.h"
#include "services/github_token.h"
#include "fcgi/api.h"

#define SEARCH_MAX_PAGES 10       /* pages of 100 scanned to answer ?q= */

/* {connected, login, token_invalid} for the session's user. */
json_object *github_status_json(struct req *r)
{
	json_object *o = json_object_new_object();
	bool connected = false, invalid = false;

	if (r->has_user)
		github_token_status(r->secrets, r->user.id, &connected, &invalid);
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
	if (!g_config.cloud)
		db_user_set_github(r->db, r->user.id, 0, NULL);
	reply_json(r, 200, github_status_json(r));
}
static json_object *repo_json(json_object *repo)
{
	static const char *const strs[] = {
		"name", "full_name", "default_branch", "description", "updated_at", "clone_url", "html_url",
	};
	json_object *o = json_object_new_object();
	const char *v;
	bool priv = false;

	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		json_set(o, strs[i], json_get_str(repo, strs[i], &v) == 0 ? json_str(v) : NULL);
	json_get_bool(repo, "private", &priv);
	json_set(o, "private", json_object_new_boolean(priv));
	return o;
}

static bool repo_matches(json_object *repo, const char *q)
{
	const char *name = "", *desc = "";

	json_get_str(repo, "full_name", &name);
	json_get_str(repo, "description", &desc);
	return strcasestr(name, q) || strcasestr(desc, q);
}

void api_github_repositories(struct req *r)
{
	int64_t page, per_page;
	struct secret_value tok;
	struct gh_response g;
	json_object *list, *body;
	char q[128] = "", path[256];
	bool has_next = false;
	int rc;

	if (http_query_i64(r, "page", 1, 1000, 1, &page) ||
	    http_query_i64(r, "per_page", 1, 100, 30, &per_page))
		return;
	if (http_query(r, "q", q, sizeof(q)) < 0) {
		reply_error(r, 400, "invalid_parameter", "query parameter 'q' is too long or badly encoded");
		return;
	}
	rc = github_token_get(r->secrets, r->user.id, r->session.id, &tok);
	if (rc != GH_OK) {
		reply_github(r, rc);
		return;
	}
	list = json_object_new_array();
	if (!q[0]) {
		snprintf(path, sizeof(path), "/user/repos?sort=updated&per_page=%lld&page=%lld",
			 (long long)per_page, (long long)page);
		rc = gh_api_get((const char *)tok.data, path, &g);
		if (rc || g.status != 200 || !json_object_is_type(g.json, json_type_array)) {
			reply_github(r, github_token_failed(r->secrets, r->user.id, r->session.id, &g,
							    "the repository list"));
			goto fail;
		}
		for (size_t i = 0; i < json_object_array_length(g.json); i++)
			json_object_array_add(list, repo_json(json_object_array_get_idx(g.json, i)));
		has_next = g.next_url[0] != '\0';
		gh_response_release(&g);
	} else {
		/* GitHub has no filter on /user/repos: walk its pages (Link: next)
		 * and keep the matches, then cut our page out of them. */
		int64_t skip = (page - 1) * per_page, matched = 0;
		char next[GH_URL_MAX] = "";

		for (int pages = 0; pages < SEARCH_MAX_PAGES; pages++) {
			if (pages == 0)
				rc = gh_api_get((const char *)tok.data, "/user/repos?sort=updated&per_page=100", &g);
			else
				rc = gh_api_get_url((const char *)tok.data, next, &g);
			if (rc || g.status != 200 || !json_object_is_type(g.json, json_type_array)) {
				reply_github(r, github_token_failed(r->secrets, r->user.id, r->session.id, &g,
								    "the repository list"));
				goto fail;
			}
			for (size_t i = 0; i < json_object_array_length(g.json); i++) {
				json_object *repo = json_object_array_get_idx(g.json, i);

				if (!repo_matches(repo, q))
					continue;
				if (matched >= skip && matched < skip + per_page)
					json_object_array_add(list, repo_json(repo));
				else if (matched >= skip + per_page)
					has_next = true;
				matched++;
			}
			str_copy(next, sizeof(next), g.next_url);
			gh_response_release(&g);
			if (!next[0] || has_next)
				break;
		}
	}
	secret_value_release(&tok);
	body = json_object_new_object();
	json_set(body, "repositories", list);
	json_set(body, "page", json_object_new_int64(page));
	json_set(body, "per_page", json_object_new_int64(per_page));
	json_set(body, "has_next", json_object_new_boolean(has_next));
	reply_json(r, 200, body);
	return;
fail:
	gh_response_release(&g);
	secret_value_release(&tok);
	json_object_put(list);
}
