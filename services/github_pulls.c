/* github_pulls.c - pull requests on GitHub (see github_pulls.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/github_pulls.h"

/* GitHub's logins: 1 to 39 letters, digits and hyphens; repository names:
 * 1 to 100 of letters, digits, '.', '_', '-', never "." or "..". Both
 * then need no escaping in a URL path. */
#define LOGIN_MAX 39
#define REPO_NAME_MAX 100

/* The words of GitHub's answer kept for an error: printable ASCII only,
 * cut; GitHub echoes what it was sent (branch names), never a token. */
#define WORDS_MAX 200

struct repo_name {
	char owner[LOGIN_MAX + 1];
	char name[REPO_NAME_MAX + 1];
};

static bool split_repo(const char *full, struct repo_name *r)
{
	const char *slash = strchr(full, '/');
	size_t n;

	if (!slash || strchr(slash + 1, '/') || (n = (size_t)(slash - full)) == 0 || n > LOGIN_MAX ||
	    strlen(slash + 1) > REPO_NAME_MAX)
		return false;
	memcpy(r->owner, full, n);
	r->owner[n] = '\0';
	str_copy(r->name, sizeof(r->name), slash + 1);
	return gh_word_ok(r->owner, LOGIN_MAX, "-") && gh_word_ok(r->name, REPO_NAME_MAX, "._-") &&
	       strcmp(r->name, ".") != 0 && strcmp(r->name, "..") != 0;
}

/* A branch name git and GitHub both take (git check-ref-format's rules, in
 * ASCII). */
static bool branch_ok(const char *b)
{
	size_t n = strlen(b);

	if (n == 0 || n > GITHUB_BRANCH_MAX || b[0] == '-' || b[0] == '/' || b[n - 1] == '/' ||
	    b[n - 1] == '.' || strstr(b, "..") || strstr(b, "//") || strstr(b, "@{") || strstr(b, "/.") ||
	    b[0] == '.' || (n >= 5 && strcmp(b + n - 5, ".lock") == 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if (b[i] <= 0x20 || b[i] >= 0x7f || strchr("~^:?*[\\", b[i]))
			return false;
	return true;
}

/* Printable ASCII of s into out, the rest as '?', cut to WORDS_MAX bytes. */
static void words(const char *s, char *out, size_t outlen)
{
	size_t i, max = outlen - 1 < WORDS_MAX ? outlen - 1 : WORDS_MAX;

	for (i = 0; s[i] && i < max; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/* What GitHub said of a refused request: its first error's message, or
 * field and code, or its message. */
static void refusal(json_object *j, char *out, size_t outlen)
{
	json_object *errors, *e;
	const char *msg = NULL, *field = NULL, *code = NULL;
	char buf[WORDS_MAX + 1];

	if (json_object_object_get_ex(j, "errors", &errors) && json_object_is_type(errors, json_type_array) &&
	    json_object_array_length(errors) > 0) {
		e = json_object_array_get_idx(errors, 0);
		if (json_get_str(e, "message", &msg) != 0 &&
		    json_get_str(e, "field", &field) == 0 && json_get_str(e, "code", &code) == 0) {
			snprintf(buf, sizeof(buf), "%.60s %.60s", field, code);
			msg = buf;
		}
	}
	if (!msg && json_get_str(j, "message", &msg) != 0)
		msg = "no reason given";
	words(msg, out, outlen);
}

/* Whether a 422 says an open pull request has this head and base already. */
static bool already_exists(json_object *j)
{
	json_object *errors;
	const char *msg;

	if (!json_object_object_get_ex(j, "errors", &errors) || !json_object_is_type(errors, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(errors); i++)
		if (json_get_str(json_object_array_get_idx(errors, i), "message", &msg) == 0 &&
		    strncmp(msg, "A pull request already exists", 29) == 0)
			return true;
	return false;
}

/* One of GitHub's pull request objects (the single one's or the list's
 * shape) into out; GH_BAD_ANSWER when it lacks what anyon keeps. */
static enum gh_rc parse_pull(json_object *o, struct github_pull *out, char *err, size_t errlen)
{
	const char *url, *state, *merged_at;
	bool merged = false;
	int64_t number;

	if (!json_object_is_type(o, json_type_object) || json_get_i64(o, "number", &number) != 0 || number <= 0 ||
	    json_get_str(o, "html_url", &url) != 0 || !gh_url_ok(url) || strlen(url) >= sizeof(out->html_url) ||
	    json_get_str(o, "state", &state) != 0 || (strcmp(state, "open") != 0 && strcmp(state, "closed") != 0) ||
	    json_get_bool(o, "merged", &merged) < 0) {
		log_warn("github pull request: an answer without a usable number, html_url or state");
		snprintf(err, errlen, "GitHub's answer about the pull request is not usable");
		return GH_BAD_ANSWER;
	}
	/* The list's shape has no "merged"; merged_at says it there. */
	if (!merged && json_get_str(o, "merged_at", &merged_at) == 0 && merged_at[0])
		merged = true;
	out->number = number;
	str_copy(out->html_url, sizeof(out->html_url), url);
	str_copy(out->state, sizeof(out->state), merged ? "merged" : state);
	return GH_OK;
}

/* What a call that did not get its answer comes to, with err. */
static enum gh_rc failed(const struct gh_response *g, int rc, const char *what, char *err, size_t errlen)
{
	enum gh_rc grc;

	if (rc == 0 && g->status == 401) {
		log_warn("github %s: HTTP 401, the token is refused", what);
		snprintf(err, errlen, "GitHub refused the token (expired or revoked)");
		return GH_TOKEN_INVALID;
	}
	if (rc == 0 && g->status == 404) {
		snprintf(err, errlen, "GitHub has no such repository or pull request, or the token cannot see it");
		return GH_NOT_FOUND;
	}
	grc = gh_classify(g, what);
	switch (grc) {
	case GH_BUSY:
		snprintf(err, errlen, "every GitHub slot is in use");
		break;
	case GH_DEADLINE:
		snprintf(err, errlen, "GitHub did not answer in time");
		break;
	case GH_UNAVAILABLE:
		if (g->status)
			snprintf(err, errlen, "GitHub did not answer (HTTP %ld)", g->status);
		else
			snprintf(err, errlen, "GitHub did not answer (%.200s)", g->error[0] ? g->error : "no answer");
		break;
	case GH_RATE_LIMITED:
		snprintf(err, errlen, "GitHub refused the request (HTTP %ld: rate limit or permissions)", g->status);
		break;
	default:
		snprintf(err, errlen, "GitHub answered HTTP %ld, which anyon does not understand", g->status);
		break;
	}
	return grc;
}

/* The pull request GitHub said exists for head (owner:branch) into base. */
static enum gh_rc find_existing(const char *token, const struct repo_name *r, const char *head_label,
				const char *base, int64_t deadline_ms, struct github_pull *out, char *err,
				size_t errlen)
{
	char eh[3 * (LOGIN_MAX + 1 + GITHUB_BRANCH_MAX) + 1], eb[3 * GITHUB_BRANCH_MAX + 1], path[1536];
	struct gh_response g;
	json_object *pick = NULL;
	enum gh_rc rc;
	int crc;

	if (gh_escape(head_label, eh, sizeof(eh)) || gh_escape(base, eb, sizeof(eb)) ||
	    (size_t)snprintf(path, sizeof(path), "/repos/%s/%s/pulls?head=%s&base=%s&state=all&per_page=100",
			     r->owner, r->name, eh, eb) >= sizeof(path)) {
		snprintf(err, errlen, "the branch names do not fit a URL");
		return GH_INVALID;
	}
	crc = gh_api_get(token, path, deadline_ms, &g);
	if (crc != 0 || g.status != 200 || !json_object_is_type(g.json, json_type_array)) {
		rc = failed(&g, crc, "the pull request list", err, errlen);
		gh_response_release(&g);
		return rc;
	}
	/* Newest first; the open one is the one that stood in the way. */
	for (size_t i = 0; i < json_object_array_length(g.json) && !pick; i++) {
		json_object *p = json_object_array_get_idx(g.json, i);
		const char *state;

		if (json_get_str(p, "state", &state) == 0 && strcmp(state, "open") == 0)
			pick = p;
	}
	if (!pick && json_object_array_length(g.json) > 0)
		pick = json_object_array_get_idx(g.json, 0);
	if (!pick) {
		log_warn("github pull request: GitHub said one exists for %s, then listed none", head_label);
		snprintf(err, errlen, "GitHub said a pull request exists for %.300s but lists none", head_label);
		rc = GH_BAD_ANSWER;
	} else {
		rc = parse_pull(pick, out, err, errlen);
		out->existed = true;
	}
	gh_response_release(&g);
	return rc;
}

enum gh_rc github_pull_create(const char *token, const char *full_name, const char *head, const char *base,
			      const char *title, const char *body, int64_t deadline_ms,
			      struct github_pull *out, char *err, size_t errlen)
{
	char head_owner[LOGIN_MAX + 1], label[LOGIN_MAX + 1 + GITHUB_BRANCH_MAX + 1], why[WORDS_MAX + 1];
	char path[256];
	const char *colon = strchr(head, ':'), *branch = colon ? colon + 1 : head;
	struct repo_name r;
	struct gh_response g;
	json_object *req;
	enum gh_rc rc;
	int crc;

	memset(out, 0, sizeof(*out));
	if (!split_repo(full_name, &r)) {
		snprintf(err, errlen, "not a repository name: owner/name");
		return GH_INVALID;
	}
	if (colon) {
		if ((size_t)(colon - head) > LOGIN_MAX) {
			snprintf(err, errlen, "not a head branch: owner:branch");
			return GH_INVALID;
		}
		memcpy(head_owner, head, (size_t)(colon - head));
		head_owner[colon - head] = '\0';
	} else {
		str_copy(head_owner, sizeof(head_owner), r.owner);
	}
	if (!gh_word_ok(head_owner, LOGIN_MAX, "-") || !branch_ok(branch) || !branch_ok(base)) {
		snprintf(err, errlen, "not a branch name git takes");
		return GH_INVALID;
	}
	if (!title || !title[0] || strlen(title) > GITHUB_PULL_TITLE_MAX ||
	    (body && strlen(body) > GITHUB_PULL_BODY_MAX)) {
		snprintf(err, errlen, "a pull request needs a title of 1 to %d bytes and a body of at most %d",
			 GITHUB_PULL_TITLE_MAX, GITHUB_PULL_BODY_MAX);
		return GH_INVALID;
	}
	snprintf(label, sizeof(label), "%s:%s", head_owner, branch);
	snprintf(path, sizeof(path), "/repos/%s/%s/pulls", r.owner, r.name);
	req = json_object_new_object();
	if (!req) {
		snprintf(err, errlen, "out of memory");
		return GH_ERROR;
	}
	json_set(req, "title", json_str(title));
	json_set(req, "head", json_str(colon ? label : branch));
	json_set(req, "base", json_str(base));
	if (body && body[0])
		json_set(req, "body", json_str(body));
	crc = gh_api_post_json(token, path, req, deadline_ms, &g);
	json_object_put(req);
	if (crc == 0 && g.status == 201) {
		rc = parse_pull(g.json, out, err, errlen);
	} else if (crc == 0 && g.status == 422 && already_exists(g.json)) {
		gh_response_release(&g);
		return find_existing(token, &r, label, base, deadline_ms, out, err, errlen);
	} else if (crc == 0 && g.status == 422) {
		refusal(g.json, why, sizeof(why));
		log_warn("github pull request for %s: refused (422): %s", label, why);
		snprintf(err, errlen, "GitHub refused the pull request: %s", why);
		rc = GH_INVALID;
	} else {
		rc = failed(&g, crc, "pull request creation", err, errlen);
	}
	gh_response_release(&g);
	return rc;
}

enum gh_rc github_pull_get(const char *token, const char *full_name, int64_t number, int64_t deadline_ms,
			   struct github_pull *out, char *err, size_t errlen)
{
	struct repo_name r;
	struct gh_response g;
	char path[256];
	enum gh_rc rc;
	int crc;

	memset(out, 0, sizeof(*out));
	if (!split_repo(full_name, &r) || number <= 0) {
		snprintf(err, errlen, "not a repository name and pull request number");
		return GH_INVALID;
	}
	snprintf(path, sizeof(path), "/repos/%s/%s/pulls/%lld", r.owner, r.name, (long long)number);
	crc = gh_api_get(token, path, deadline_ms, &g);
	if (crc == 0 && g.status == 200) {
		rc = parse_pull(g.json, out, err, errlen);
		if (rc == GH_OK && out->number != number) {
			log_warn("github pull request %lld: the answer is about %lld", (long long)number,
				 (long long)out->number);
			snprintf(err, errlen, "GitHub answered about another pull request");
			memset(out, 0, sizeof(*out));
			rc = GH_BAD_ANSWER;
		}
	} else {
		rc = failed(&g, crc, "pull request", err, errlen);
	}
	gh_response_release(&g);
	return rc;
}
