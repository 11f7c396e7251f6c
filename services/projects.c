/* projects.c - a project's source and settings (projects.h). */
#include "autoconfig.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "base/util.h"
#include "services/git.h"
#include "services/projects.h"

struct names_ctx {
	char *out;
	size_t size;
	bool first_only;
};

static int add_name(const struct db_executor *e, void *arg)
{
	struct names_ctx *c = arg;
	size_t used = strlen(c->out);

	if (c->first_only) {
		str_copy(c->out, c->size, e->name);
		return 1;
	}
	if (used + 2 + strlen(e->name) < c->size)
		snprintf(c->out + used, c->size - used, "%s%s", used ? ", " : "", e->name);
	return 0;
}

int project_executor_check(struct db *db, const char *name, char *names, size_t size)
{
	struct db_executor e;
	struct names_ctx c = { names, size, false };
	int rc;

	if (strlen(name) > PROJECT_EXECUTOR_MAX)
		rc = DB_NOTFOUND;
	else
		rc = db_executor_get(db, name, &e);
	if (rc == DB_OK)
		db_executor_release(&e);
	if (rc == DB_NOTFOUND && names && size) {
		names[0] = '\0';
		if (db_executor_list(db, add_name, &c))
			return DB_ERROR;
	}
	return rc;
}

int project_executor_default(struct db *db, char *out, size_t size)
{
	struct names_ctx c = { out, size, true };

	out[0] = '\0';
	if (db_executor_list(db, add_name, &c))
		return DB_ERROR;
	return out[0] ? DB_OK : DB_NOTFOUND;
}

bool project_branch_ok(const char *name)
{
	size_t len = strlen(name);
	const char *seg = name;

	if (len == 0 || len > PROJECT_BRANCH_MAX || name[0] == '-' || name[0] == '/' || strcmp(name, "@") == 0 ||
	    name[len - 1] == '/' || name[len - 1] == '.' ||
	    (len >= 5 && strcmp(name + len - 5, ".lock") == 0) ||
	    strstr(name, "..") || strstr(name, "//") || strstr(name, "@{"))
		return false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f || strchr(" ~^:?*[\\", c))
			return false;
		if (c == '/')
			seg = p + 1;
		/* a component may not start with '.' nor end with ".lock" */
		if (p == seg && c == '.')
			return false;
		if (c == '/' && p - name >= 5 && strncmp(p - 5, ".lock", 5) == 0)
			return false;
	}
	return true;
}

bool project_name_ok(const char *name, size_t len)
{
	bool seen = false;

	if (len == 0 || len > PROJECT_NAME_MAX || strlen(name) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c != ' ')
			seen = true;
	}
	return seen;
}

int project_name_from(const char *location, char *out, size_t size)
{
	size_t end = strlen(location), start;

	while (end > 0 && location[end - 1] == '/')
		end--;
	/* a work tree's .git: the name is its parent's */
	if (end >= 5 && strncmp(location + end - 5, "/.git", 5) == 0)
		end -= 5;
	while (end > 0 && location[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && location[start - 1] != '/')
		start--;
	if (end - start > 4 && strncasecmp(location + end - 4, ".git", 4) == 0)
		end -= 4;
	if (end == start || end - start >= size || end - start > PROJECT_NAME_MAX)
		return -1;
	memcpy(out, location + start, end - start);
	out[end - start] = '\0';
	return project_name_ok(out, end - start) ? 0 : -1;
}

/* No byte below 0x20 or 0x7f (newlines, NUL, escapes). */
static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int project_path_check(const char *path, char *canon, size_t size, char *why, size_t whylen)
{
	char real[PATH_MAX];
	struct stat st;

	if (path[0] != '/') {
		snprintf(why, whylen, "'path' must be an absolute path");
		return -1;
	}
	if (strlen(path) > PROJECT_LOCATION_MAX || !printable(path)) {
		snprintf(why, whylen, "'path' must be at most %d bytes without control characters",
			 PROJECT_LOCATION_MAX);
		return -1;
	}
	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "'path' does not exist on the server (or cannot be reached)");
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "'path' is not a directory");
		return -1;
	}
	if (!realpath(path, real) || strlen(real) > PROJECT_LOCATION_MAX || !printable(real) ||
	    strlen(real) >= size) {
		snprintf(why, whylen, "'path' cannot be resolved to a canonical path");
		return -1;
	}
	strcpy(canon, real);
	return 0;
}

int project_url_check(const char *url, bool allow_local_http, char *why, size_t whylen)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL, *frag = NULL;
	int rc = -1;

	if (strlen(url) > PROJECT_LOCATION_MAX || !printable(url) || strchr(url, ' ')) {
		snprintf(why, whylen, "'url' must be at most %d bytes without spaces or control characters",
			 PROJECT_LOCATION_MAX);
		return -1;
	}
	u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(why, whylen, "'url' is not a URL");
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	if (user || pass || strchr(url, '@')) {
		snprintf(why, whylen, "'url' must not carry a user name or password");
		goto out;
	}
	if (frag) {
		snprintf(why, whylen, "'url' must not have a fragment");
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0) {
		rc = 0;
	} else if (strcasecmp(scheme, "http") == 0 && allow_local_http &&
		   (strcmp(host, "127.0.0.1") == 0 || strcasecmp(host, "localhost") == 0)) {
		rc = 0;
	} else {
		snprintf(why, whylen, "'url' must be an https:// URL");
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(pass);
	curl_free(frag);
	curl_url_cleanup(u);
	return rc;
}

void project_parse_symref(const char *out, char *branch, size_t size)
{
	const char *p = out;

	branch[0] = '\0';
	while (p && *p) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
		static const char pre[] = "ref: refs/heads/", post[] = "\tHEAD";
		size_t len = (size_t)(end - p), n;

		if (len > sizeof(pre) - 1 + sizeof(post) - 1 && strncmp(p, pre, sizeof(pre) - 1) == 0 &&
		    strncmp(end - (sizeof(post) - 1), post, sizeof(post) - 1) == 0) {
			n = len - (sizeof(pre) - 1) - (sizeof(post) - 1);
			if (n < size) {
				memcpy(branch, p + sizeof(pre) - 1, n);
				branch[n] = '\0';
				if (!project_branch_ok(branch))
					branch[0] = '\0';
			}
			return;
		}
		p = nl ? nl + 1 : NULL;
	}
}

enum project_probe_rc project_probe(const char *location, bool is_url, bool allow_local_http,
				    char *branch, size_t size, char *why, size_t whylen)
{
	const char *args[] = { "ls-remote", "--symref", "--", location, "HEAD", NULL };
	struct git_opts o = {
		.timeout_ms = PROJECT_GIT_TIMEOUT_MS,
		.out_max = 64 * 1024,
		.err_max = 4096,
		.allow_protocol = is_url ? (allow_local_http ? "http:https" : "https") : "file",
	};
	struct git_result res;
	enum project_probe_rc rc;
	char line[200];

	branch[0] = '\0';
	if (git_run(args, &o, &res)) {
		snprintf(why, whylen, "git could not be run on the server");
		return PROBE_ERROR;
	}
	git_err_line(&res, line, sizeof(line));
	if (res.timed_out) {
		snprintf(why, whylen, "git did not answer within %d s", PROJECT_GIT_TIMEOUT_MS / 1000);
		rc = PROBE_TIMEOUT;
	} else if (res.exit_code == 127) {
		snprintf(why, whylen, "git is not installed on the server");
		rc = PROBE_ERROR;
	} else if (res.exit_code != 0) {
		snprintf(why, whylen, "%s", line[0] ? line : "git ls-remote failed");
		rc = PROBE_FAILED;
	} else {
		project_parse_symref(res.out, branch, size);
		rc = PROBE_OK;
	}
	git_result_release(&res);
	return rc;
}

/* Runs one change of the user's projects under the user's row lock with
 * its event, in one transaction; change() returns a DB_* code and sets
 * *id to the project's id. */
static int with_event(struct db *db, int64_t user_id, const char *event, int64_t now,
		      int (*change)(struct db *db, void *arg, int64_t *id), void *arg)
{
	int64_t id = 0;
	int rc;

	if (db_begin_user(db, user_id))
		return DB_ERROR;
	rc = change(db, arg, &id);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, event, id, id, now, NULL);
	rc = db_end(db, rc);
	return rc == DB_OK || rc == DB_NOTFOUND || rc == DB_CONFLICT ? rc : DB_ERROR;
}

static int do_add(struct db *db, void *arg, int64_t *id)
{
	struct db_project *p = arg;
	int rc = db_project_create(db, p);

	*id = p->id;
	return rc;
}

int projects_add(struct db *db, struct db_project *p, int64_t now)
{
	return with_event(db, p->user_id, "project.added", now, do_add, p);
}

struct update_args {
	int64_t id, user_id;
	const char *name, *base_branch, *setup_script, *default_executor;
	struct db_project *out;
};

static int do_update(struct db *db, void *arg, int64_t *id)
{
	struct update_args *u = arg;

	*id = u->id;
	return db_project_update(db, u->id, u->user_id, u->name, u->base_branch, u->setup_script,
				 u->default_executor, u->out);
}

int projects_update(struct db *db, int64_t user_id, int64_t id, const char *name, const char *base_branch,
		    const char *setup_script, const char *default_executor, int64_t now, struct db_project *out)
{
	struct update_args u = { id, user_id, name, base_branch, setup_script, default_executor, out };

	return with_event(db, user_id, "project.updated", now, do_update, &u);
}

static int do_delete(struct db *db, void *arg, int64_t *id)
{
	const struct update_args *u = arg;

	*id = u->id;
	return db_project_delete(db, u->id, u->user_id);
}

int projects_delete(struct db *db, int64_t user_id, int64_t id, int64_t now)
{
	struct update_args u = { .id = id, .user_id = user_id };

	return with_event(db, user_id, "project.deleted", now, do_delete, &u);
}
