/* repo_cache.c - a session's GitHub repository list, cached for a short
 * while (services/github_repos.c decides when it is fresh). */
#include "autoconfig.h"

#include "db/query.h"

static struct query q_get = QUERY("repo_cache.get",
	"SELECT repos, truncated FROM github_repo_cache "
	"WHERE session_id = ?1 AND user_id = ?2 AND fetched_at >= ?3");
static struct query q_put = QUERY("repo_cache.put",
	"INSERT INTO github_repo_cache (session_id, user_id, fetched_at, truncated, repos) "
	"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id, "
	"fetched_at = excluded.fetched_at, truncated = excluded.truncated, repos = excluded.repos");
static struct query q_drop_user = QUERY("repo_cache.drop_user",
	"DELETE FROM github_repo_cache WHERE user_id = ?1");
static struct query q_purge = QUERY("repo_cache.purge",
	"DELETE FROM github_repo_cache WHERE fetched_at < ?1");

int db_repo_cache_get(struct db *db, int64_t session_id, int64_t user_id, int64_t since,
		      char **repos, bool *truncated)
{
	struct stmt *s = q_start(db, &q_get);
	int rc;

	*repos = NULL;
	*truncated = false;
	q_int(s, 1, session_id);
	q_int(s, 2, user_id);
	q_int(s, 3, since);
	rc = q_row(s);
	if (rc == DB_OK) {
		*truncated = q_i64(s, 1) != 0;
		if (q_strdup(s, 0, repos))
			rc = DB_ERROR;
	}
	q_end(s);
	return rc;
}

int db_repo_cache_put(struct db *db, int64_t session_id, int64_t user_id, int64_t fetched_at,
		      bool truncated, const char *repos)
{
	struct stmt *s = q_start(db, &q_put);

	q_int(s, 1, session_id);
	q_int(s, 2, user_id);
	q_int(s, 3, fetched_at);
	q_bool(s, 4, truncated);
	q_text(s, 5, repos);
	return q_exec(s, NULL);
}

int db_repo_cache_drop_user(struct db *db, int64_t user_id)
{
	struct stmt *s = q_start(db, &q_drop_user);

	q_int(s, 1, user_id);
	return q_exec(s, NULL);
}

int db_repo_cache_purge(struct db *db, int64_t before, int64_t *deleted)
{
	struct stmt *s = q_start(db, &q_purge);

	q_int(s, 1, before);
	return q_exec(s, deleted);
}
