/* api_projects.c - projects: import from GitHub (cloud mode), add by path
 * or git URL (local mode), list, read, change settings, delete. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "services/audit.h"
#include "services/github.h"
#include "services/github_repos.h"
#include "services/projects.h"
#include "fcgi/api.h"

static json_object *project_json(const struct db_project *p)
{
	json_object *o = json_object_new_object();

	json_set(o, "id", json_object_new_int64(p->id));
	json_set(o, "name", json_str(p->name));
	json_set(o, "github_full_name", p->github_full_name[0] ? json_str(p->github_full_name) : NULL);
	json_set(o, "clone_url", json_str(p->clone_url));
	json_set(o, "default_branch", json_str(p->default_branch));
	json_set(o, "private", json_object_new_boolean(p->private));
	json_set(o, "description", json_str(p->description ? p->description : ""));
	json_set(o, "created_at", json_object_new_int64(p->created_at));
	json_set(o, "source", json_str(p->source));
	/* GitHub rows keep their place in clone_url */
	json_set(o, "location", json_str(strcmp(p->source, "github") == 0 ? p->clone_url : p->location));
	json_set(o, "base_branch", json_str(p->base_branch));
	json_set(o, "setup_script", json_str(p->setup_script ? p->setup_script : ""));
	json_set(o, "default_executor", json_str(p->default_executor));
	return o;
}

static void reply_project(struct req *r, int status, const struct db_project *p)
{
	json_object *body = json_object_new_object();

	json_set(body, "project", project_json(p));
	reply_json(r, status, body);
}

/* The settings a request may set (POST and PATCH); NULL where absent. */
struct project_settings {
	const char *name, *base_branch, *setup_script, *default_executor;
};

/* An optional string field of the body: 0 absent or a string without NUL
 * (*out set), -1 after a 400 naming it. */
static int opt_str(struct req *r, const char *key, const char **out)
{
	json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(r->json, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
		reply_error_field(r, 400, "invalid_field", key, "'%s' must be a string without NUL", key);
		return -1;
	}
	*out = json_object_get_string(v);
	return 0;
}

/* Reads and checks the settings in the body; -1 after replying 400. */
static int read_settings(struct req *r, struct project_settings *ps)
{
	if (opt_str(r, "name", &ps->name) || opt_str(r, "base_branch", &ps->base_branch) ||
	    opt_str(r, "setup_script", &ps->setup_script) ||
	    opt_str(r, "default_executor", &ps->default_executor))
		return -1;
	if (ps->name && !project_name_ok(ps->name, strlen(ps->name))) {
		reply_error_field(r, 400, "invalid_field", "name",
				  "'name' must be 1 to %d bytes without control characters", PROJECT_NAME_MAX);
		return -1;
	}
	if (ps->base_branch && !project_branch_ok(ps->base_branch)) {
		reply_error_field(r, 400, "invalid_field", "base_branch",
				  "'base_branch' is not a valid branch name");
		return -1;
	}
	if (ps->setup_script && strlen(ps->setup_script) > PROJECT_SETUP_SCRIPT_MAX) {
		reply_error_field(r, 400, "invalid_field", "setup_script",
				  "'setup_script' is longer than %d bytes", PROJECT_SETUP_SCRIPT_MAX);
		return -1;
	}
	if (ps->default_executor) {
		char names[256] = "";
		int rc = project_executor_check(r->db, ps->default_executor, names, sizeof(names));

		if (rc == DB_NOTFOUND) {
			reply_error_field(r, 400, "invalid_field", "default_executor",
					  "'default_executor' must be one of: %s", names);
			return -1;
		}
		if (rc) {
			reply_error(r, 500, "internal", "reading the executors failed");
			return -1;
		}
	}
	return 0;
}

/* Refuses a key of the body that is not in known: nothing unknown is
 * taken silently. */
static int only_keys(struct req *r, const char *const *known)
{
	json_object_object_foreach(r->json, key, val) {
		size_t i;

		(void)val;
		for (i = 0; known[i] && strcmp(known[i], key); i++)
			;
		if (!known[i]) {
			reply_error_field(r, 400, "invalid_field", key, "'%.64s' is not a field here", key);
			return -1;
		}
	}
	return 0;
}

void api_projects_create(struct req *r)
{
	static const char *const known[] = { "source", "path", "url", "name", "base_branch", "setup_script",
					     "default_executor", NULL };
	struct project_settings ps;
	struct db_project p;
	const char *source, *where, *field;
	char canon[PROJECT_LOCATION_MAX + 1], branch[PROJECT_BRANCH_MAX + 1], why[300];
	bool is_url;
	enum project_probe_rc prc;
	int rc;

	if (only_keys(r, known))
		return;
	if (json_get_str(r->json, "source", &source) != 0 ||
	    (strcmp(source, "path") != 0 && strcmp(source, "url") != 0)) {
		reply_error_field(r, 400, "invalid_field", "source", "'source' must be \"path\" or \"url\"");
		return;
	}
	is_url = strcmp(source, "url") == 0;
	field = is_url ? "url" : "path";
	if (opt_str(r, field, &where))
		return;
	if (!where) {
		reply_error_field(r, 400, "invalid_field", field, "'%s' is required", field);
		return;
	}
	if (read_settings(r, &ps))
		return;
	if (is_url ? project_url_check(where, g_config.git_allow_local_http, why, sizeof(why))
		   : project_path_check(where, canon, sizeof(canon), why, sizeof(why))) {
		reply_error_field(r, 400, "invalid_field", field, "%s", why);
		return;
	}
	if (is_url)
		str_copy(canon, sizeof(canon), where);   /* checked: fits */
	prc = project_probe(canon, is_url, g_config.git_allow_local_http, branch, sizeof(branch), why, sizeof(why));
	switch (prc) {
	case PROBE_OK:
		break;
	case PROBE_FAILED:
		if (is_url)
			reply_error_field(r, 502, "repository_unreachable", field,
					  "git could not list the repository at 'url': %s", why);
		else
			reply_error_field(r, 400, "not_a_repository", field,
					  "'path' is not a git repository anyon can read: %s", why);
		return;
	case PROBE_TIMEOUT:
		reply_error_field(r, 504, "git_timeout", field, "%s", why);
		return;
	case PROBE_ERROR:
		reply_error(r, 500, "internal", "%s", why);
		return;
	}
	if (!branch[0] && !ps.base_branch) {
		reply_error_field(r, 400, "invalid_field", "base_branch",
				  "the repository's HEAD is not a branch (or it has none): give 'base_branch'");
		return;
	}

	memset(&p, 0, sizeof(p));
	p.user_id = r->user.id;
	p.created_at = now_s();
	str_copy(p.source, sizeof(p.source), source);
	str_copy(p.location, sizeof(p.location), canon);
	str_copy(p.default_branch, sizeof(p.default_branch), branch);
	str_copy(p.base_branch, sizeof(p.base_branch), ps.base_branch ? ps.base_branch : branch);
	if (ps.default_executor)
		str_copy(p.default_executor, sizeof(p.default_executor), ps.default_executor);
	else if (project_executor_default(r->db, p.default_executor, sizeof(p.default_executor)) == DB_ERROR) {
		reply_error(r, 500, "internal", "reading the executors failed");
		return;
	}
	p.setup_script = (char *)(ps.setup_script ? ps.setup_script : "");
	if (ps.name)
		str_copy(p.name, sizeof(p.name), ps.name);
	else if (project_name_from(canon, p.name, sizeof(p.name)))
		str_copy(p.name, sizeof(p.name), "project");
	rc = projects_add(r->db, &p, now_s());
	if (rc == DB_CONFLICT) {
		reply_error_field(r, 409, "already_added", field, "%s is already a project", canon);
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "storing the project failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "project.added", "ok", "project=%lld source=%s",
		    (long long)p.id, p.source);
	reply_project(r, 201, &p);
}

void api_projects_update(struct req *r)
{
	static const char *const known[] = { "name", "base_branch", "setup_script", "default_executor", NULL };
	struct project_settings ps;
	struct db_project p;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id) || only_keys(r, known) || read_settings(r, &ps))
		return;
	rc = projects_update(r->db, r->user.id, id, ps.name, ps.base_branch, ps.setup_script,
			     ps.default_executor, now_s(), &p);
	if (rc == DB_NOTFOUND) {
		reply_error(r, 404, "not_found", "no such project");
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "changing the project failed");
		return;
	}
	reply_project(r, 200, &p);
	db_project_release(&p);
}

void api_projects_delete(struct req *r)
{
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = projects_delete(r->db, r->user.id, id, now_s());
	if (rc == DB_NOTFOUND) {
		reply_error(r, 404, "not_found", "no such project");
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "deleting the project failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "project.deleted", "ok", "project=%lld", (long long)id);
	reply_json(r, 200, NULL);
}

void api_projects_from_github(struct req *r)
{
	const char *full, *v;
	char owner[128], repo[128];
	struct db_project p;
	json_object *body, *gh;
	bool priv = false, fits;
	int rc;

	if (json_get_str(r->json, "full_name", &full) || strlen(full) > 200 ||
	    sscanf(full, "%127[A-Za-z0-9-]/%127[A-Za-z0-9_.-]", owner, repo) != 2 ||
	    strlen(owner) + strlen(repo) + 1 != strlen(full) ||
	    strcmp(repo, ".") == 0 || strcmp(repo, "..") == 0) {
		reply_error(r, 400, "invalid_field", "'full_name' must look like owner/repository");
		return;
	}
	rc = github_repo_get(r->secrets, r->user.id, r->session.id, owner, repo, r->gh_deadline_ms, &gh);
	if (rc != GH_OK) {
		reply_github(r, rc);
		return;
	}
	memset(&p, 0, sizeof(p));
	p.user_id = r->user.id;
	p.created_at = now_s();
	/* A field longer than anyon keeps is refused, not cut. */
	fits = str_copy(p.name, sizeof(p.name), json_get_str(gh, "name", &v) == 0 ? v : repo) &&
	       str_copy(p.github_full_name, sizeof(p.github_full_name),
			json_get_str(gh, "full_name", &v) == 0 && strcasecmp(v, full) == 0 ? v : full);
	if (json_get_str(gh, "clone_url", &v) == 0 && gh_url_ok(v))
		fits = fits && str_copy(p.clone_url, sizeof(p.clone_url), v);
	if (json_get_str(gh, "default_branch", &v) == 0)
		fits = fits && str_copy(p.default_branch, sizeof(p.default_branch), v);
	if (json_get_str(gh, "description", &v) == 0 && strlen(v) <= PROJECT_DESCRIPTION_MAX)
		p.description = strdup(v);
	json_get_bool(gh, "private", &priv);
	p.private = priv;
	json_object_put(gh);
	str_copy(p.source, sizeof(p.source), "github");
	str_copy(p.base_branch, sizeof(p.base_branch), p.default_branch);
	if (project_executor_default(r->db, p.default_executor, sizeof(p.default_executor)) == DB_ERROR)
		fits = false;
	if (!fits) {
		free(p.description);
		reply_error(r, 502, "github_error", "GitHub answered a repository field longer than anyon keeps");
		return;
	}
	rc = projects_add(r->db, &p, now_s());
	if (rc == DB_CONFLICT) {
		free(p.description);
		reply_error(r, 409, "already_imported", "%s is already a project", p.github_full_name);
		return;
	}
	if (rc) {
		free(p.description);
		reply_error(r, 500, "internal", "storing the project failed");
		return;
	}
	audit_event(r->db, r->user.id, r->session.id, "project.imported", "ok", "repo=%s", p.github_full_name);
	body = json_object_new_object();
	json_set(body, "project", project_json(&p));
	free(p.description);
	reply_json(r, 201, body);
}

static int project_one(const struct db_project *p, void *arg)
{
	return api_page_add(arg, project_json(p), p->id);
}

void api_projects_list(struct req *r)
{
	struct api_page page = { 0 };
	int64_t before, limit;

	if (http_query_i64(r, "before", 0, INT64_MAX, 0, &before) ||
	    http_query_i64(r, "limit", 1, 200, 100, &limit))
		return;
	page.items = json_object_new_array();
	if (db_project_list(r->db, r->user.id, before, (int)limit, project_one, &page)) {
		json_object_put(page.items);
		reply_error(r, 500, "internal", "listing projects failed");
		return;
	}
	api_page_reply(r, &page, "projects", limit);
}

int api_project_load(struct req *r, struct db_project *p)
{
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return -1;
	rc = db_project_get(r->db, id, r->user.id, p);
	if (rc == DB_NOTFOUND)
		reply_error(r, 404, "not_found", "no such project");
	else if (rc)
		reply_error(r, 500, "internal", "reading the project failed");
	return rc ? -1 : 0;
}

void api_projects_get(struct req *r)
{
	struct db_project p;

	if (api_project_load(r, &p))
		return;
	reply_project(r, 200, &p);
	db_project_release(&p);
}
