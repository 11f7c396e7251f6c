/* github_repos.h - the repositories a user's GitHub token sees: a page of
 * the list, optionally filtered, and one repository by name (for the
 * API's listing and import). The token comes from github_token_get();
 * a 401 marks it invalid (github_token_failed()). Calls keep to
 * deadline_ms (see github.h): a filtered listing that runs out of time
 * ends with GH_DEADLINE, not with part of an answer. */
#ifndef ANYON_SERVICES_GITHUB_REPOS_H
#define ANYON_SERVICES_GITHUB_REPOS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "services/github.h"
#include "services/secrets.h"

/* GitHub pages of 100 walked, at most, to answer a filtered listing
 * (1000 repositories; past them the answer says truncated). */
#define GITHUB_REPOS_SEARCH_PAGES 10
/* Longest string member of a repository kept (longer ones are null). */
#define GITHUB_REPO_FIELD_MAX 1024

/* Page page (from 1) of per_page (1 to 100) of the user's repositories,
 * most recently updated first, each with name, full_name, default_branch,
 * description, updated_at, clone_url, html_url and private. With a
 * non-empty q, only those whose full name or description contains q
 * (case-insensitive): GitHub has no such filter, so its pages are walked
 * (Link: next, at most GITHUB_REPOS_SEARCH_PAGES; *truncated when more
 * were left) and the page is cut from the matches. The walked list is
 * kept for the session (db_repo_cache_*) and reused by its searches for
 * ANYON_GITHUB_REPO_CACHE_S without asking GitHub. GH_OK with *repos a
 * new JSON array (the caller puts it) and *has_next; else the gh_rc of
 * the failure and *repos NULL. */
enum gh_rc github_repos_list(struct secret_store *st, int64_t user_id, int64_t session_id,
			     int64_t page, int64_t per_page, const char *q, int64_t deadline_ms,
			     json_object **repos, bool *has_next, bool *truncated);

/* Drops the user's cached repository lists (every session's): when the
 * token is forgotten or GitHub refuses it. Failures are logged. */
void github_repos_forget(struct secret_store *st, int64_t user_id);

/* The repository owner/name as the user's token sees it. GH_OK with *repo
 * GitHub's object (a new reference), GH_NOT_FOUND when it does not exist
 * or the token cannot see it, else the gh_rc of the failure. */
enum gh_rc github_repo_get(struct secret_store *st, int64_t user_id, int64_t session_id,
			   const char *owner, const char *name, int64_t deadline_ms, json_object **repo);

#endif
