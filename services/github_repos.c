/* github_repos.c - a user's repositories on GitHub (see github_repos.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "services/github_repos.h"
#include "services/github_token.h"

/* Who is asking: the token's owner, and the session for the audits. */
struct asker {
	struct secret_store *st;
	int64_t user_id, session_id;
	const char *token;
};

/* GET path (relative) or url (absolute, from a Link header) for a JSON
 * answer of type want. GH_OK, or the failure (g released). */
static enum gh_rc get(const struct asker *a, const char *path, const char *url, json_type want,
		      int64_t deadline_ms, struct gh_response *g, const char *what)
{
	int rc = path ? gh_api_get(a->token, path, deadline_ms, g) : gh_api_get_url(a->token, url, deadline_ms, g);
	enum gh_rc grc;

	if (rc == 0 && g->status == 200 && json_object_is_type(g->json, want))
		return GH_OK;
	grc = rc == 0 && g->status == 404 ? GH_NOT_FOUND :
	      github_token_failed(a->st, a->user_id, a->session_id, g, what);
	gh_response_release(g);
	return grc;
}

static bool matches(json_object *repo, const char *q)
{
	const char *name = "", *desc = "";

	json_get_str(repo, "full_name", &name);
	json_get_str(repo, "description", &desc);
	return strcasestr(name, q) || strcasestr(desc, q);
}

/* One of GitHub's pages, as it is. */
static enum gh_rc list_page(const struct asker *a, int64_t page, int64_t per_page, int64_t deadline_ms,
			    json_object *out, bool *has_next)
{
	struct gh_response g;
	char path[128];
	enum gh_rc rc;

	snprintf(path, sizeof(path), "/user/repos?sort=updated&per_page=%lld&page=%lld",
		 (long long)per_page, (long long)page);
	rc = get(a, path, NULL, json_type_array, deadline_ms, &g, "the repository list");
	if (rc != GH_OK)
		return rc;
	for (size_t i = 0; i < json_object_array_length(g.json); i++)
		json_object_array_add(out, json_object_get(json_object_array_get_idx(g.json, i)));
	*has_next = g.next_url[0] != '\0';
	gh_response_release(&g);
	return GH_OK;
}

/* The matches of q, walking GitHub's pages until ours is full and one more
 * match shows there is a next, or GitHub's pages end. */
static enum gh_rc search(const struct asker *a, int64_t page, int64_t per_page, const char *q,
			 int64_t deadline_ms, json_object *out, bool *has_next)
{
	int64_t skip = (page - 1) * per_page, matched = 0;
	char next[GH_URL_MAX] = "";
	struct gh_response g;
	enum gh_rc rc;

	for (int pages = 0; pages < GITHUB_REPOS_SEARCH_PAGES; pages++) {
		rc = get(a, pages == 0 ? "/user/repos?sort=updated&per_page=100" : NULL, next, json_type_array,
			 deadline_ms, &g, "the repository list");
		if (rc != GH_OK)
			return rc;
		for (size_t i = 0; i < json_object_array_length(g.json); i++) {
			json_object *repo = json_object_array_get_idx(g.json, i);

			if (!matches(repo, q))
				continue;
			if (matched >= skip && matched < skip + per_page)
				json_object_array_add(out, json_object_get(repo));
			else if (matched >= skip + per_page)
				*has_next = true;
			matched++;
		}
		str_copy(next, sizeof(next), g.next_url);
		gh_response_release(&g);
		if (!next[0] || *has_next)
			break;
	}
	return GH_OK;
}

enum gh_rc github_repos_list(struct secret_store *st, int64_t user_id, int64_t session_id,
			     int64_t page, int64_t per_page, const char *q, int64_t deadline_ms,
			     json_object **repos, bool *has_next)
{
	struct asker a = { st, user_id, session_id, NULL };
	struct secret_value tok;
	enum gh_rc rc;

	*repos = NULL;
	*has_next = false;
	rc = github_token_get(st, user_id, session_id, deadline_ms, &tok);
	if (rc != GH_OK)
		return rc;
	a.token = (const char *)tok.data;
	*repos = json_object_new_array();
	if (q && *q)
		rc = search(&a, page, per_page, q, deadline_ms, *repos, has_next);
	else
		rc = list_page(&a, page, per_page, deadline_ms, *repos, has_next);
	secret_value_release(&tok);
	if (rc != GH_OK) {
		json_object_put(*repos);
		*repos = NULL;
		*has_next = false;
	}
	return rc;
}

enum gh_rc github_repo_get(struct secret_store *st, int64_t user_id, int64_t session_id,
			   const char *owner, const char *name, int64_t deadline_ms, json_object **repo)
{
	struct asker a = { st, user_id, session_id, NULL };
	char path[800], eo[384], en[384];
	struct secret_value tok;
	struct gh_response g;
	enum gh_rc rc;

	*repo = NULL;
	if (gh_escape(owner, eo, sizeof(eo)) || gh_escape(name, en, sizeof(en)))
		return GH_NOT_FOUND;
	snprintf(path, sizeof(path), "/repos/%s/%s", eo, en);
	rc = github_token_get(st, user_id, session_id, deadline_ms, &tok);
	if (rc != GH_OK)
		return rc;
	a.token = (const char *)tok.data;
	rc = get(&a, path, NULL, json_type_object, deadline_ms, &g, "the repository");
	secret_value_release(&tok);
	if (rc != GH_OK)
		return rc;
	*repo = json_object_get(g.json);
	gh_response_release(&g);
	return GH_OK;
}
