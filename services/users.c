/* users.c - GitHub identities to users (see users.h). */
#include "autoconfig.h"

#include "services/users.h"

int users_signin_github(struct db *db, int64_t github_id, const char *login, const char *name,
			const char *email, const char *avatar_url, bool is_admin, int64_t now,
			struct db_user *out)
{
	struct db_user found;
	int rc;

	/* The lookups lock what they find (PostgreSQL: FOR UPDATE; SQLite:
	 * the write lock), so the update below writes what was read. Two
	 * first sign-ins of one new account racing on PostgreSQL meet on the
	 * unique github_id index: one inserts, the other gets DB_CONFLICT. */
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_user_by_github(db, github_id, &found);
	if (rc == DB_NOTFOUND)
		rc = db_user_unbound_by_login(db, login, &found);
	if (rc == DB_OK)
		rc = db_user_update_github(db, found.id, github_id, login, name, email, avatar_url,
					   is_admin, now, out);
	else if (rc == DB_NOTFOUND)
		rc = db_user_insert_github(db, github_id, login, name, email, avatar_url, is_admin,
					   now, out);
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return rc == DB_CONFLICT ? DB_CONFLICT : DB_ERROR;
	}
	return DB_OK;
}
