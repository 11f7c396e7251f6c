/* projects.c - a user's projects: imported GitHub repositories, and (local
 * mode) git repositories by path or URL, with their settings. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "db/query.h"

#define PROJECT_COLS "id, user_id, name, coalesce(github_full_name, ''), clone_url, default_branch, " \
	"private, description, created_at, source, coalesce(location, ''), base_branch, setup_script, " \
	"default_executor"

static struct query q_create = QUERY("project.create",
	"INSERT INTO projects (user_id, name, github_full_name, clone_url, default_branch, private, "
	"description, created_at, source, location, base_branch, setup_script, default_executor) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
	"ON CONFLICT DO NOTHING RETURNING id");
static struct query q_get = QUERY("project.get",
	"SELECT " PROJECT_COLS " FROM projects WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)");
static struct query q_list = QUERY("project.list",
	"SELECT " PROJECT_COLS " FROM projects WHERE user_id = ?1 AND (?2 <= 0 OR id < ?2) "
	"ORDER BY id DESC LIMIT ?3");
static struct query q_update = QUERY("project.update",
	"UPDATE projects SET name = coalesce(?3, name), base_branch = coalesce(?4, base_branch), "
	"setup_script = coalesce(?5, setup_script), default_executor = coalesce(?6, default_executor) "
	"WHERE id = ?1 AND user_id = ?2 RETURNING " PROJECT_COLS);
static struct query q_delete = QUERY("project.delete",
	"DELETE FROM projects WHERE id = ?1 AND user_id = ?2");

void db_project_release(struct db_project *p)
{
	free(p->description);
	free(p->setup_script);
	p->description = NULL;
	p->setup_script = NULL;
}

static int project_cols(struct stmt *s, struct db_project *p)
{
	memset(p, 0, sizeof(*p));
	p->id = q_i64(s, 0);
	p->user_id = q_i64(s, 1);
	p->private = q_i64(s, 6) != 0;
	p->created_at = q_i64(s, 8);
	if (q_copy(s, 2, p->name, sizeof(p->name)) ||
	    q_copy(s, 3, p->github_full_name, sizeof(p->github_full_name)) ||
	    q_copy(s, 4, p->clone_url, sizeof(p->clone_url)) ||
	    q_copy(s, 5, p->default_branch, sizeof(p->default_branch)) ||
	    q_strdup(s, 7, &p->description) ||
	    q_copy(s, 9, p->source, sizeof(p->source)) ||
	    q_copy(s, 10, p->location, sizeof(p->location)) ||
	    q_copy(s, 11, p->base_branch, sizeof(p->base_branch)) ||
	    q_strdup(s, 12, &p->setup_script) ||
	    q_copy(s, 13, p->default_executor, sizeof(p->default_executor))) {
		db_project_release(p);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_project_create(struct db *db, struct db_project *p)
{
	struct stmt *s = q_start(db, &q_create);
	int rc;

	q_int(s, 1, p->user_id);
	q_text(s, 2, p->name);
	q_text_or_null(s, 3, p->github_full_name);
	q_text(s, 4, p->clone_url);
	q_text(s, 5, p->default_branch);
	q_bool(s, 6, p->private);
	q_text(s, 7, p->description ? p->description : "");
	q_int(s, 8, p->created_at);
	q_text(s, 9, p->source[0] ? p->source : "github");
	q_text_or_null(s, 10, p->location);
	q_text(s, 11, p->base_branch[0] ? p->base_branch : p->default_branch);
	q_text(s, 12, p->setup_script ? p->setup_script : "");
	q_text(s, 13, p->default_executor[0] ? p->default_executor : "claude");
	rc = q_row(s);
	if (rc == DB_OK)
		p->id = q_i64(s, 0);
	q_end(s);
	return rc == DB_NOTFOUND ? DB_CONFLICT : rc;
}

int db_project_get(struct db *db, int64_t id, int64_t user_id, struct db_project *out)
{
	struct stmt *s = q_start(db, &q_get);
	int rc;

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = project_cols(s, out);
	q_end(s);
	return rc;
}

struct project_each {
	db_project_fn fn;
	void *arg;
};

static int project_row(struct stmt *s, void *arg)
{
	struct project_each *each = arg;
	struct db_project p;
	int rc;

	if (project_cols(s, &p))
		return -1;
	rc = each->fn(&p, each->arg);
	db_project_release(&p);
	return rc;
}

int db_project_list(struct db *db, int64_t user_id, int64_t before, int limit,
		    db_project_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);

	q_int(s, 1, user_id);
	q_int(s, 2, before);
	q_int(s, 3, limit);
	return q_each(s, project_row, &(struct project_each){ fn, arg });
}

int db_project_update(struct db *db, int64_t id, int64_t user_id, const char *name,
		      const char *base_branch, const char *setup_script, const char *default_executor,
		      struct db_project *out)
{
	struct stmt *s = q_start(db, &q_update);
	int rc;

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	q_text(s, 3, name);
	q_text(s, 4, base_branch);
	q_text(s, 5, setup_script);
	q_text(s, 6, default_executor);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = project_cols(s, out);
	q_end(s);
	return rc;
}

int db_project_delete(struct db *db, int64_t id, int64_t user_id)
{
	struct stmt *s = q_start(db, &q_delete);

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	return q_one(s);
}
