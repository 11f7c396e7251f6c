/* users.c - users: the local one, and GitHub identities. */
#include "autoconfig.h"

#include <string.h>

#include "db/query.h"


static struct query q_get = QUERY("user.get", "SELECT " USER_COLS " FROM users WHERE id = ?1");
static struct query q_local = QUERY("user.local",
	"SELECT " USER_COLS " FROM users WHERE is_local = 1 ORDER BY id LIMIT 1");
static struct query q_by_login = QUERY("user.by_login",
	"SELECT " USER_COLS " FROM users WHERE login = ?1");
static struct query q_create = QUERY("user.create",
	"INSERT INTO users (login, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) "
	"ON CONFLICT (login) DO NOTHING RETURNING " USER_COLS);
/* Read to be changed in the caller's transaction: locked on PostgreSQL;
 * on SQLite the transaction already holds the write lock. */
static struct query q_by_github = QUERY2("user.by_github",
	"SELECT " USER_COLS " FROM users WHERE github_id = ?1",
	"SELECT " USER_COLS " FROM users WHERE github_id = ?1 FOR UPDATE");
static struct query q_unbound = QUERY2("user.unbound_by_login",
	"SELECT " USER_COLS " FROM users WHERE login = ?1 AND github_id IS NULL AND is_local = 0",
	"SELECT " USER_COLS " FROM users WHERE login = ?1 AND github_id IS NULL AND is_local = 0 "
	"FOR UPDATE");
static struct query q_update_github = QUERY("user.update_github",
	"UPDATE users SET login = ?2, name = ?3, email = ?4, avatar_url = ?5, "
	"is_admin = CASE WHEN ?6 = 1 OR admin_grant = 1 THEN 1 ELSE 0 END, "
	"github_id = ?7, github_login = ?2, updated_at = ?8 WHERE id = ?1 RETURNING " USER_COLS);
static struct query q_insert_github = QUERY("user.insert_github",
	"INSERT INTO users (login, name, email, avatar_url, is_admin, github_id, github_login, "
	"created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1, ?7, ?7) RETURNING " USER_COLS);
static struct query q_lock = QUERY2("user.lock", "SELECT id FROM users WHERE id = ?1",
	"SELECT id FROM users WHERE id = ?1 FOR UPDATE");
static struct query q_list = QUERY("user.list", "SELECT " USER_COLS " FROM users ORDER BY id");
static struct query q_set_disabled = QUERY("user.set_disabled",
	"UPDATE users SET disabled = ?2 WHERE id = ?1");
static struct query q_set_admin = QUERY("user.set_admin",
	"UPDATE users SET is_admin = ?2, admin_grant = coalesce(?3, admin_grant) WHERE id = ?1");
static struct query q_set_github = QUERY("user.set_github",
	"UPDATE users SET github_id = ?2, github_login = ?3 WHERE id = ?1");

int db_user_cols(struct stmt *s, int col, struct db_user *out)
{
	memset(out, 0, sizeof(*out));
	out->id = q_i64(s, col);
	out->is_admin = q_i64(s, col + 3) != 0;
	out->is_local = q_i64(s, col + 4) != 0;
	out->github_id = q_i64(s, col + 5);
	out->disabled = q_i64(s, col + 9) != 0;
	out->admin_grant = q_i64(s, col + 10) != 0;
	if (q_copy(s, col + 1, out->login, sizeof(out->login)) ||
	    q_copy(s, col + 2, out->name, sizeof(out->name)) ||
	    q_copy(s, col + 6, out->github_login, sizeof(out->github_login)) ||
	    q_copy(s, col + 7, out->email, sizeof(out->email)) ||
	    q_copy(s, col + 8, out->avatar_url, sizeof(out->avatar_url)))
		return DB_ERROR;
	return DB_OK;
}

/* Steps s for at most one user row and resets it. */
static int user_row(struct stmt *s, struct db_user *out)
{
	int rc = q_row(s);

	if (rc == DB_OK)
		rc = db_user_cols(s, 0, out);
	q_end(s);
	return rc;
}

int db_user_get(struct db *db, int64_t id, struct db_user *out)
{
	struct stmt *s = q_start(db, &q_get);

	q_int(s, 1, id);
	return user_row(s, out);
}

int db_user_by_login(struct db *db, const char *login, struct db_user *out)
{
	struct stmt *s = q_start(db, &q_by_login);

	q_text(s, 1, login);
	return user_row(s, out);
}

int db_user_create(struct db *db, const char *login, const char *name, int64_t now,
		   struct db_user *out)
{
	struct stmt *s = q_start(db, &q_create);
	int rc;

	q_text(s, 1, login);
	q_text(s, 2, name ? name : "");
	q_int(s, 3, now);
	rc = user_row(s, out);
	return rc == DB_NOTFOUND ? DB_CONFLICT : rc;
}

int db_user_local(struct db *db, struct db_user *out)
{
	return user_row(q_start(db, &q_local), out);
}

int db_user_by_github(struct db *db, int64_t github_id, struct db_user *out)
{
	struct stmt *s = q_start(db, &q_by_github);

	q_int(s, 1, github_id);
	return user_row(s, out);
}

int db_user_unbound_by_login(struct db *db, const char *login, struct db_user *out)
{
	struct stmt *s = q_start(db, &q_unbound);

	q_text(s, 1, login);
	return user_row(s, out);
}

int db_user_update_github(struct db *db, int64_t id, int64_t github_id, const char *login,
			  const char *name, const char *email, const char *avatar_url, bool is_admin,
			  int64_t now, struct db_user *out)
{
	struct stmt *s = q_start(db, &q_update_github);

	q_int(s, 1, id);
	q_text(s, 2, login);
	q_text(s, 3, name);
	q_text(s, 4, email);
	q_text(s, 5, avatar_url);
	q_bool(s, 6, is_admin);
	q_int(s, 7, github_id);
	q_int(s, 8, now);
	return user_row(s, out);
}

int db_user_insert_github(struct db *db, int64_t github_id, const char *login, const char *name,
			  const char *email, const char *avatar_url, bool is_admin, int64_t now,
			  struct db_user *out)
{
	struct stmt *s = q_start(db, &q_insert_github);

	q_text(s, 1, login);
	q_text(s, 2, name);
	q_text(s, 3, email);
	q_text(s, 4, avatar_url);
	q_bool(s, 5, is_admin);
	q_int(s, 6, github_id);
	q_int(s, 7, now);
	return user_row(s, out);
}

int db_user_lock(struct db *db, int64_t id)
{
	struct stmt *s = q_start(db, &q_lock);
	int rc;

	q_int(s, 1, id);
	rc = q_row(s);
	q_end(s);
	return rc;
}

int db_user_list(struct db *db, db_user_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);
	struct db_user u;
	int rc;

	while ((rc = q_step(s)) == BE_ROW) {
		if (db_user_cols(s, 0, &u) || fn(&u, arg)) {
			rc = DB_ERROR;
			break;
		}
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_user_set_disabled(struct db *db, int64_t id, bool disabled)
{
	struct stmt *s = q_start(db, &q_set_disabled);

	q_int(s, 1, id);
	q_bool(s, 2, disabled);
	return q_one(s);
}

int db_user_set_admin(struct db *db, int64_t id, bool is_admin, const bool *grant)
{
	struct stmt *s = q_start(db, &q_set_admin);

	q_int(s, 1, id);
	q_bool(s, 2, is_admin);
	if (grant)
		q_bool(s, 3, *grant);
	return q_one(s);
}

int db_user_set_github(struct db *db, int64_t user_id, int64_t github_id, const char *github_login)
{
	struct stmt *s = q_start(db, &q_set_github);

	q_int(s, 1, user_id);
	if (github_id > 0)
		q_int(s, 2, github_id);
	q_text_or_null(s, 3, github_login);
	return q_exec(s, NULL);
}
