/* github_pulls.h - pull requests on GitHub: open one from a branch that was
 * pushed to the repository, and read one's state (for an attempt's "pr").
 *
 * The caller brings the token (github_token_get(); the worker's
 * pull_request job), so nothing here reads or marks the secret store: on
 * GH_TOKEN_INVALID (GitHub answered 401) the caller marks the stored
 * token. Calls keep to deadline_ms (see github.h). Every answer is checked
 * before anything of it is kept: a number > 0, an http(s) html_url
 * (gh_url_ok()), a state GitHub has. err gets a short message for the
 * job's error, never the token. */
#ifndef ANYON_SERVICES_GITHUB_PULLS_H
#define ANYON_SERVICES_GITHUB_PULLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/github.h"

/* GitHub's own limits on a pull request's title and body (characters;
 * anyon counts bytes, which is stricter). */
#define GITHUB_PULL_TITLE_MAX 256
#define GITHUB_PULL_BODY_MAX 65536
/* Longest branch name taken (git's refs can be longer; GitHub's are 255). */
#define GITHUB_BRANCH_MAX 255

struct github_pull {
	int64_t number;          /* > 0 */
	char html_url[512];      /* the page on GitHub (gh_url_ok()) */
	char state[8];           /* "open", "closed" or "merged" */
	bool existed;            /* github_pull_create(): it was there already */
};

/* Opens a pull request in full_name ("owner/repo") from branch head (of
 * the same repository, or "owner:branch" of a fork) into base, with title
 * (1 to GITHUB_PULL_TITLE_MAX bytes) and body (NULL or "" for none; at most
 * GITHUB_PULL_BODY_MAX bytes). POST /repos/{owner}/{repo}/pulls. When
 * GitHub says one is open already for that head and base, it is looked up
 * (GET .../pulls?head=owner:branch&base=...&state=all) and given back with
 * existed set. GH_OK with *out; GH_INVALID when GitHub refused it (no
 * commits between base and head, a missing branch; err has its words) or
 * the arguments are not acceptable; GH_NOT_FOUND when the repository does
 * not exist or the token cannot see it; GH_TOKEN_INVALID on a 401; else
 * gh_classify()'s answer (GH_UNAVAILABLE, GH_DEADLINE, GH_BUSY,
 * GH_RATE_LIMITED, GH_BAD_ANSWER). */
enum gh_rc github_pull_create(const char *token, const char *full_name, const char *head, const char *base,
			      const char *title, const char *body, int64_t deadline_ms,
			      struct github_pull *out, char *err, size_t errlen);

/* Pull request number of full_name: GET /repos/{owner}/{repo}/pulls/{number}.
 * state "merged" when GitHub says merged. Codes as github_pull_create()
 * (GH_NOT_FOUND: no such repository or pull request). */
enum gh_rc github_pull_get(const char *token, const char *full_name, int64_t number, int64_t deadline_ms,
			   struct github_pull *out, char *err, size_t errlen);

#endif
