/* access.c - which GitHub account each allow/admin list entry is bound to,
 * and which org admitted a user (services/access.c decides what matches). */
#include "autoconfig.h"

#include <string.h>

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

#define ADMISSION_COLS "user_id, coalesce(allow_org, ''), coalesce(admin_org, ''), checked_at"

static struct query q_adm_get = QUERY("access.admission_get",
	"SELECT " ADMISSION_COLS " FROM user_admission WHERE user_id = ?1");
static struct query q_adm_put = QUERY("access.admission_put",
	"INSERT INTO user_admission (user_id, allow_org, admin_org, checked_at) VALUES (?1, ?2, ?3, ?4) "
	"ON CONFLICT (user_id) DO UPDATE SET allow_org = excluded.allow_org, "
	"admin_org = excluded.admin_org, checked_at = excluded.checked_at");
static struct query q_adm_due = QUERY("access.admission_due",
	"SELECT " ADMISSION_COLS " FROM user_admission a "
	"WHERE (a.allow_org IS NOT NULL OR a.admin_org IS NOT NULL) AND a.checked_at <= ?1 "
	"AND EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = a.user_id) "
	"ORDER BY a.checked_at, a.user_id LIMIT ?2");

static int admission_cols(struct stmt *s, struct db_admission *out)
{
	memset(out, 0, sizeof(*out));
	out->user_id = q_i64(s, 0);
	out->checked_at = q_i64(s, 3);
	if (q_copy(s, 1, out->allow_org, sizeof(out->allow_org)) ||
	    q_copy(s, 2, out->admin_org, sizeof(out->admin_org)))
		return DB_ERROR;
	return DB_OK;
}

int db_admission_get(struct db *db, int64_t user_id, struct db_admission *out)
{
	struct stmt *s = q_start(db, &q_adm_get);
	int rc;

	memset(out, 0, sizeof(*out));
	out->user_id = user_id;
	q_int(s, 1, user_id);
	rc = q_row(s);
	if (rc == DB_OK)
		rc = admission_cols(s, out);
	q_end(s);
	return rc;
}

int db_admission_put(struct db *db, const struct db_admission *a)
{
	struct stmt *s = q_start(db, &q_adm_put);

	q_int(s, 1, a->user_id);
	q_text_or_null(s, 2, a->allow_org);
	q_text_or_null(s, 3, a->admin_org);
	q_int(s, 4, a->checked_at);
	return q_exec(s, NULL);
}

int db_admission_due(struct db *db, int64_t before, struct db_admission *out, size_t max, size_t *n)
{
	struct stmt *s = q_start(db, &q_adm_due);
	int rc;

	*n = 0;
	q_int(s, 1, before);
	q_int(s, 2, (int64_t)max);
	while ((rc = q_step(s)) == BE_ROW && *n < max) {
		if (admission_cols(s, &out[*n])) {
			rc = DB_ERROR;
			break;
		}
		(*n)++;
	}
	q_end(s);
	return rc == BE_DONE || (rc == BE_ROW && *n == max) ? DB_OK : DB_ERROR;
}
