/* access.c - which GitHub account each allow/admin list entry is bound to
 * (services/access.c decides what matches). */
#include "autoconfig.h"

#include "db/query.h"

static struct query q_get = QUERY("access.binding_get",
	"SELECT github_id FROM access_bindings WHERE list = ?1 AND entry = ?2");
/* First sign-in wins: a binding is never moved by a later one. */
static struct query q_add = QUERY("access.binding_add",
	"INSERT INTO access_bindings (list, entry, github_id, bound_at) VALUES (?1, ?2, ?3, ?4) "
	"ON CONFLICT (list, entry) DO NOTHING");

int db_binding_get(struct db *db, const char *list, const char *entry, int64_t *github_id)
{
	struct stmt *s = q_start(db, &q_get);
	int rc;

	q_text(s, 1, list);
	q_text(s, 2, entry);
	rc = q_row(s);
	if (rc == DB_OK)
		*github_id = q_i64(s, 0);
	q_end(s);
	return rc;
}

int db_binding_add(struct db *db, const char *list, const char *entry, int64_t github_id, int64_t now)
{
	struct stmt *s = q_start(db, &q_add);

	q_text(s, 1, list);
	q_text(s, 2, entry);
	q_int(s, 3, github_id);
	q_int(s, 4, now);
	return q_exec(s, NULL);
}
