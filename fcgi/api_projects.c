/* api_projects.c - projects: import from GitHub, list, read. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/json.h"
#include "base/util.h"
#include "services/audit.h"
#include "services/github.h"
#include "services/github_repos.h"
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
	return o;
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
	if (!fits) {
		free(p.description);
		reply_error(r, 502, "github_error", "GitHub answered a repository field longer than anyon keeps");
		return;
	}
	rc = db_project_create(r->db, &p);
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

void api_projects_get(struct req *r)
{
	struct db_project p;
	json_object *body;
	int64_t id;
	int rc;

	if (http_path_id(r, "id", &id))
		return;
	rc = db_project_get(r->db, id, r->user.id, &p);
	if (rc == DB_NOTFOUND) {
		reply_error(r, 404, "not_found", "no such project");
		return;
	}
	if (rc) {
		reply_error(r, 500, "internal", "reading the project failed");
		return;
	}
	body = json_object_new_object();
	json_set(body, "project", project_json(&p));
	db_project_release(&p);
	reply_json(r, 200, body);
}
