/* github_repos.c - a user's repositories on GitHub (see github_repos.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
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

/* What anyon keeps of one of GitHub's repository objects, and shows: a new
 * object with these members, a string over GITHUB_REPO_FIELD_MAX bytes as null. */
static json_object *trim(json_object *repo)
{
	static const char *const strs[] = {
		"name", "full_name", "default_branch", "description", "updated_at", "clone_url", "html_url",
	};
	json_object *o = json_object_new_object();
	const char *v;
	bool priv = false;

	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		json_set(o, strs[i], json_get_str(repo, strs[i], &v) == 0 && strlen(v) <= GITHUB_REPO_FIELD_MAX ?
				     json_str(v) : NULL);
	json_get_bool(repo, "private", &priv);
	json_set(o, "private", json_object_new_boolean(priv));
	return o;
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
		json_object_array_add(out, trim(json_object_array_get_idx(g.json, i)));
	*has_next = g.next_url[0] != '\0';
	gh_response_release(&g);
	return GH_OK;
}

/* Every repository the token sees, walking GitHub's pages of 100 (Link:
 * next) up to GITHUB_REPOS_SEARCH_PAGES; *truncated when more pages were
 * left. *all: a new array of trim()med objects (the caller puts it). */
static enum gh_rc walk(const struct asker *a, int64_t deadline_ms, json_object **all, bool *truncated)
{
	char next[GH_URL_MAX] = "";
	struct gh_response g;
	enum gh_rc rc;

	*all = json_object_new_array();
	*truncated = false;
	for (int pages = 0; pages < GITHUB_REPOS_SEARCH_PAGES; pages++) {
		rc = get(a, pages == 0 ? "/user/repos?sort=updated&per_page=100" : NULL, next, json_type_array,
			 deadline_ms, &g, "the repository list");
		if (rc != GH_OK) {
			json_object_put(*all);
			*all = NULL;
			return rc;
		}
		for (size_t i = 0; i < json_object_array_length(g.json); i++)
			json_object_array_add(*all, trim(json_object_array_get_idx(g.json, i)));
		str_copy(next, sizeof(next), g.next_url);
		gh_response_release(&g);
		if (!next[0])
			return GH_OK;
	}
	*truncated = true;
	return GH_OK;
}

/* The session's cached list if it is fresh (ANYON_GITHUB_REPO_CACHE_S),
 * else NULL. A cached list that does not parse is ignored. */
static json_object *cached(struct secret_store *st, int64_t user_id, int64_t session_id, bool *truncated)
{
	json_object *all = NULL;
	char *text = NULL, err[64];

	if (g_config.github_repo_cache_s <= 0 || session_id <= 0 ||
	    db_repo_cache_get(st->db, session_id, user_id, now_s() - g_config.github_repo_cache_s,
			      &text, truncated) != DB_OK)
		return NULL;
	if (json_parse(text, strlen(text), &all, err, sizeof(err)) || !json_object_is_type(all, json_type_array)) {
		json_object_put(all);
		all = NULL;
	}
	free(text);
	return all;
}

/* Keeps the walked list for the session; a failure only costs the next
 * search a walk. */
static void keep(struct secret_store *st, int64_t user_id, int64_t session_id, json_object *all, bool truncated)
{
	if (g_config.github_repo_cache_s <= 0 || session_id <= 0)
		return;
	if (db_repo_cache_put(st->db, session_id, user_id, now_s(), truncated,
			      json_object_to_json_string_ext(all, JSON_C_TO_STRING_PLAIN)))
		log_warn("could not cache the repository list of user %lld", (long long)user_id);
}

/* Cuts page page of per_page from the matches of q in all. */
static void search_page(json_object *all, int64_t page, int64_t per_page, const char *q, json_object *out,
			bool *has_next)
{
	int64_t skip = (page - 1) * per_page, matched = 0;

	for (size_t i = 0; i < json_object_array_length(all); i++) {
		json_object *repo = json_object_array_get_idx(all, i);

		if (!matches(repo, q))
			continue;
		if (matched >= skip && matched < skip + per_page)
			json_object_array_add(out, json_object_get(repo));
		else if (matched >= skip + per_page) {
			*has_next = true;
			return;
		}
		matched++;
	}
}

enum gh_rc github_repos_list(struct secret_store *st, int64_t user_id, int64_t session_id,
			     int64_t page, int64_t per_page, const char *q, int64_t deadline_ms,
			     json_object **repos, bool *has_next, bool *truncated)
{
	struct asker a = { st, user_id, session_id, NULL };
	json_object *all = NULL;
	struct secret_value tok;
	bool connected = false, invalid = false;
	enum gh_rc rc;

	*repos = NULL;
	*has_next = *truncated = false;
	if (q && *q && (all = cached(st, user_id, session_id, truncated))) {
		/* The token may have gone since the list was kept. */
		if (github_token_status(st, user_id, &connected, &invalid))
			rc = GH_ERROR;
		else
			rc = !connected ? GH_NOT_CONNECTED : invalid ? GH_TOKEN_INVALID : GH_OK;
	} else {
		rc = github_token_get(st, user_id, session_id, deadline_ms, &tok);
		if (rc == GH_OK) {
			a.token = (const char *)tok.data;
			if (q && *q) {
				rc = walk(&a, deadline_ms, &all, truncated);
				if (rc == GH_OK)
					keep(st, user_id, session_id, all, *truncated);
			} else {
				*repos = json_object_new_array();
				rc = list_page(&a, page, per_page, deadline_ms, *repos, has_next);
			}
			secret_value_release(&tok);
		}
	}
	if (rc == GH_OK && all) {
		*repos = json_object_new_array();
		search_page(all, page, per_page, q, *repos, has_next);
	}
	json_object_put(all);
	if (rc != GH_OK) {
		/* A list the token can no longer fetch is not shown from the cache. */
		if (rc == GH_NOT_CONNECTED || rc == GH_TOKEN_INVALID)
			github_repos_forget(st, user_id);
		json_object_put(*repos);
		*repos = NULL;
		*has_next = *truncated = false;
	}
	return rc;
}

void github_repos_forget(struct secret_store *st, int64_t user_id)
{
	if (db_repo_cache_drop_user(st->db, user_id))
		log_warn("could not drop the cached repository lists of user %lld", (long long)user_id);
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
