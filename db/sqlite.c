/* sqlite.c - the SQLite backend of db.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "base/log.h"
#include "base/util.h"
#include "db/db.h"
#include "db/migrations.h"

#define BUSY_TIMEOUT_MS 5000

/* Every statement the layer runs, prepared once per connection. */
enum stmt_id {
	S_USER_GET,
	S_USER_LOCAL,
	S_SESSION_CREATE,
	S_SESSION_FIND,
	S_SESSION_COUNT_FROM,
	S_SESSION_TOUCH,
	S_SESSION_ROTATE,
	S_SESSION_DELETE,
	S_SESSION_PURGE,
	S_JOB_CREATE,
	S_JOB_GET,
	S_JOB_LIST,
	S_JOB_FAIL_EXHAUSTED,
	S_JOB_CLAIM,
	S_JOB_RENEW,
	S_JOB_NEXT_SEQ,
	S_JOB_APPEND,
	S_JOB_FINISH,
	S_JOB_RELEASE,
	S_JOB_CANCEL_QUEUED,
	S_JOB_CANCEL_RUNNING,
	S_JOB_OUTPUT,
	S_USER_BY_LOGIN,
	S_USER_CREATE,
	S_SECRET_FIND,
	S_SECRET_PLACEHOLDER,
	S_SECRET_STORE,
	S_SECRET_GET,
	S_SECRET_BY_ID,
	S_SECRET_LIST,
	S_SECRET_DELETE,
	S_SECRET_TOUCH,
	S_SECRET_INVALID,
	S_SECRET_NOT_UNDER,
	S_SECRET_COUNT_UNDER,
	S_AUDIT_ADD,
	S_AUDIT_LIST,
	S_USER_BY_GITHUB,
	S_USER_GITHUB_UPDATE,
	S_USER_GITHUB_INSERT,
	S_USER_SET_GITHUB,
	S_FLOW_CREATE,
	S_FLOW_GET,
	S_FLOW_NEXT_POLL,
	S_FLOW_UPDATE,
	S_FLOW_COUNT,
	S_FLOW_PURGE,
	S_PROJECT_CREATE,
	S_PROJECT_GET,
	S_PROJECT_LIST,
	S_WORKER_BEAT,
	S_WORKER_STOPPED,
	S_WORKER_LATEST,
	S__COUNT
};

#define USER_COLS "id, login, name, is_admin, is_local, coalesce(github_id, 0), " \
	"coalesce(github_login, ''), email, avatar_url"
#define PROJECT_COLS "id, user_id, name, coalesce(github_full_name, ''), clone_url, default_branch, " \
	"private, description, created_at"

#define SECRET_COLS "id, user_id, kind, key_id, nonce, ciphertext, tag, created_at, updated_at, " \
	"coalesce(last_used_at, 0), coalesce(expires_at, 0), invalid"

#define JOB_COLS "id, user_id, kind, args, state, attempts, max_attempts, cancel_requested, " \
	"exit_code, error, created_at, started_at, finished_at"

static const char *const stmt_sql[S__COUNT] = {
	[S_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
	[S_USER_LOCAL] = "SELECT " USER_COLS " FROM users WHERE is_local = 1 ORDER BY id LIMIT 1",
	[S_SESSION_CREATE] = "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, "
		"created_addr) VALUES (?1, ?2, ?3, ?3, ?4, ?5) RETURNING id",
	[S_SESSION_COUNT_FROM] = "SELECT count(*) FROM sessions WHERE created_addr = ?1 AND created_at >= ?2",
	[S_SESSION_FIND] = "SELECT id, coalesce(user_id, 0), created_at, last_seen_at, expires_at "
		"FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
	[S_SESSION_TOUCH] = "UPDATE sessions SET last_seen_at = ?2, expires_at = ?3 WHERE id = ?1",
	[S_SESSION_ROTATE] = "UPDATE sessions SET token_hash = ?2, user_id = nullif(?3, 0) WHERE id = ?1",
	[S_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
	[S_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_at <= ?1",
	[S_JOB_CREATE] = "INSERT INTO jobs (user_id, kind, args, max_attempts, created_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
	[S_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)",
	[S_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE user_id = ?1 AND (?2 <= 0 OR id < ?2) "
		"ORDER BY id DESC LIMIT ?3",
	[S_JOB_FAIL_EXHAUSTED] = "UPDATE jobs SET state = 'failed', finished_at = ?1, lease_owner = NULL, "
		"lease_expires_at = NULL, error = 'the worker running it stopped ' || attempts || ' times' "
		"WHERE state = 'running' AND lease_expires_at <= ?1 AND attempts >= max_attempts",
	[S_JOB_CLAIM] = "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?1, "
		"lease_expires_at = ?2 + ?3, started_at = coalesce(started_at, ?2) "
		"WHERE id = (SELECT id FROM jobs WHERE state = 'queued' "
		"  OR (state = 'running' AND lease_expires_at <= ?2) ORDER BY id LIMIT 1) "
		"RETURNING " JOB_COLS,
	[S_JOB_RENEW] = "UPDATE jobs SET lease_expires_at = ?3 + ?4 "
		"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 RETURNING cancel_requested",
	[S_JOB_NEXT_SEQ] = "SELECT coalesce(max(seq), 0) + 1 FROM job_output WHERE job_id = ?1",
	[S_JOB_APPEND] = "INSERT INTO job_output (job_id, seq, stream, data, created_at) "
		"SELECT ?1, ?3, ?4, ?5, ?6 FROM jobs WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
	[S_JOB_FINISH] = "UPDATE jobs SET state = ?3, exit_code = ?4, error = ?5, finished_at = ?6, "
		"lease_owner = NULL, lease_expires_at = NULL "
		"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
	[S_JOB_RELEASE] = "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0), "
		"lease_owner = NULL, lease_expires_at = NULL "
		"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2",
	[S_JOB_CANCEL_QUEUED] = "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?3 "
		"WHERE id = ?1 AND (?2 = 0 OR user_id = ?2) AND state = 'queued'",
	[S_JOB_CANCEL_RUNNING] = "UPDATE jobs SET cancel_requested = 1 "
		"WHERE id = ?1 AND (?2 = 0 OR user_id = ?2) AND state = 'running'",
	[S_JOB_OUTPUT] = "SELECT seq, stream, data, created_at FROM job_output "
		"WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
	[S_USER_BY_LOGIN] = "SELECT " USER_COLS " FROM users WHERE login = ?1",
	[S_USER_CREATE] = "INSERT INTO users (login, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3) "
		"ON CONFLICT (login) DO NOTHING RETURNING " USER_COLS,
	[S_USER_BY_GITHUB] = "SELECT " USER_COLS " FROM users WHERE github_id = ?1 "
		"OR (github_id IS NULL AND is_local = 0 AND login = ?2) ORDER BY github_id IS NULL LIMIT 1",
	[S_USER_GITHUB_UPDATE] = "UPDATE users SET login = ?2, name = ?3, email = ?4, avatar_url = ?5, "
		"is_admin = ?6, github_id = ?7, github_login = ?2, updated_at = ?8 WHERE id = ?1 RETURNING " USER_COLS,
	[S_USER_GITHUB_INSERT] = "INSERT INTO users (login, name, email, avatar_url, is_admin, github_id, "
		"github_login, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1, ?7, ?7) RETURNING " USER_COLS,
	[S_USER_SET_GITHUB] = "UPDATE users SET github_id = nullif(?2, 0), github_login = ?3 WHERE id = ?1",
	[S_FLOW_CREATE] = "INSERT INTO device_flows (id, session_id, remote_addr, key_id, code_nonce, "
		"code_ciphertext, code_tag, user_code, verification_uri, interval_s, expires_at, next_poll_at, "
		"created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[S_FLOW_GET] = "SELECT id, session_id, remote_addr, key_id, code_nonce, code_ciphertext, code_tag, "
		"user_code, verification_uri, interval_s, expires_at, next_poll_at, created_at, status, "
		"message, coalesce(user_id, 0) FROM device_flows WHERE id = ?1 AND session_id = ?2",
	[S_FLOW_NEXT_POLL] = "UPDATE device_flows SET next_poll_at = ?2 WHERE id = ?1",
	[S_FLOW_UPDATE] = "UPDATE device_flows SET status = ?2, interval_s = ?3, next_poll_at = ?4, "
		"message = ?5, user_id = nullif(?6, 0), "
		"code_ciphertext = CASE WHEN ?2 = 'pending' THEN code_ciphertext ELSE x'' END WHERE id = ?1",
	[S_FLOW_COUNT] = "SELECT (SELECT count(*) FROM device_flows WHERE session_id = ?1 AND created_at >= ?3), "
		"(SELECT count(*) FROM device_flows WHERE remote_addr = ?2 AND created_at >= ?3)",
	[S_FLOW_PURGE] = "DELETE FROM device_flows WHERE created_at < ?1",
	[S_PROJECT_CREATE] = "INSERT INTO projects (user_id, name, github_full_name, clone_url, default_branch, "
		"private, description, created_at) VALUES (?1, ?2, nullif(?3, ''), ?4, ?5, ?6, ?7, ?8) "
		"ON CONFLICT (user_id, github_full_name) DO NOTHING RETURNING id",
	[S_PROJECT_GET] = "SELECT " PROJECT_COLS " FROM projects WHERE id = ?1 AND user_id = ?2",
	[S_PROJECT_LIST] = "SELECT " PROJECT_COLS " FROM projects WHERE user_id = ?1 ORDER BY id DESC",
	[S_SECRET_FIND] = "SELECT id FROM secrets WHERE user_id = ?1 AND kind = ?2",
	[S_SECRET_PLACEHOLDER] = "INSERT INTO secrets (user_id, kind, key_id, nonce, ciphertext, tag, "
		"created_at, updated_at) VALUES (?1, ?2, '', zeroblob(12), x'', zeroblob(16), ?3, ?3) RETURNING id",
	[S_SECRET_STORE] = "UPDATE secrets SET key_id = ?2, nonce = ?3, ciphertext = ?4, tag = ?5, "
		"expires_at = nullif(?6, 0), updated_at = ?7, invalid = 0 WHERE id = ?1",
	[S_SECRET_GET] = "SELECT " SECRET_COLS " FROM secrets WHERE user_id = ?1 AND kind = ?2 AND key_id <> ''",
	[S_SECRET_BY_ID] = "SELECT " SECRET_COLS " FROM secrets WHERE id = ?1 AND key_id <> ''",
	[S_SECRET_LIST] = "SELECT " SECRET_COLS " FROM secrets WHERE user_id = ?1 AND key_id <> '' ORDER BY kind",
	[S_SECRET_DELETE] = "DELETE FROM secrets WHERE user_id = ?1 AND kind = ?2",
	[S_SECRET_TOUCH] = "UPDATE secrets SET last_used_at = ?2 WHERE id = ?1",
	[S_SECRET_INVALID] = "UPDATE secrets SET invalid = ?3 WHERE user_id = ?1 AND kind = ?2",
	[S_SECRET_NOT_UNDER] = "SELECT id FROM secrets WHERE key_id <> ?1 AND key_id <> '' AND id > ?2 "
		"ORDER BY id LIMIT ?3",
	[S_SECRET_COUNT_UNDER] = "SELECT count(*) FROM secrets WHERE key_id = ?1",
	[S_AUDIT_ADD] = "INSERT INTO audit (at, user_id, session_id, actor, action, outcome, detail) "
		"VALUES (?1, nullif(?2, 0), nullif(?3, 0), ?4, ?5, ?6, ?7)",
	[S_AUDIT_LIST] = "SELECT id, at, coalesce(user_id, 0), coalesce(session_id, 0), actor, action, "
		"outcome, detail FROM audit WHERE (?1 = 0 OR user_id = ?1) AND at >= ?2 "
		"AND (?3 <= 0 OR id < ?3) ORDER BY id DESC LIMIT ?4",
	[S_WORKER_BEAT] = "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, docker_ok, docker_version) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET "
		"heartbeat_at = excluded.heartbeat_at, docker_ok = excluded.docker_ok, "
		"docker_version = excluded.docker_version, stopped_at = NULL",
	[S_WORKER_STOPPED] = "UPDATE workers SET stopped_at = ?2 WHERE id = ?1",
	[S_WORKER_LATEST] = "SELECT heartbeat_at, docker_ok FROM workers "
		"ORDER BY heartbeat_at DESC LIMIT 1",
};

struct db {
	sqlite3 *h;
	sqlite3_stmt *stmt[S__COUNT];   /* prepared lazily, finalized by db_close() */
};

static const char *const job_state_names[] = {
	[JOB_QUEUED] = "queued",
	[JOB_RUNNING] = "running",
	[JOB_SUCCEEDED] = "succeeded",
	[JOB_FAILED] = "failed",
	[JOB_CANCELLED] = "cancelled",
};

const char *job_state_name(enum job_state s)
{
	return job_state_names[s];
}

bool job_state_final(enum job_state s)
{
	return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

static enum job_state job_state_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(job_state_names); i++)
		if (s && strcmp(s, job_state_names[i]) == 0)
			return (enum job_state)i;
	return JOB_FAILED;
}

static int db_fail(struct db *db, const char *what)
{
	log_error("database: %s: %s", what, sqlite3_errmsg(db->h));
	return DB_ERROR;
}

/* Returns the cached statement, reset and with bindings cleared. */
static sqlite3_stmt *stmt(struct db *db, enum stmt_id id)
{
	sqlite3_stmt *s = db->stmt[id];

	if (!s) {
		if (sqlite3_prepare_v3(db->h, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &s, NULL) != SQLITE_OK) {
			log_error("database: prepare %d: %s", (int)id, sqlite3_errmsg(db->h));
			return NULL;
		}
		db->stmt[id] = s;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Steps a statement that returns no rows (or ignores them); reports how
 * many rows changed. */
static int exec_stmt(struct db *db, sqlite3_stmt *s, const char *what, int *changes)
{
	int rc;

	if (!s)
		return DB_ERROR;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(db, what);
	if (changes)
		*changes = sqlite3_changes(db->h);
	return DB_OK;
}

static int exec_sql(struct db *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("database: %s", msg ? msg : sqlite3_errmsg(db->h));
		sqlite3_free(msg);
		return DB_ERROR;
	}
	return DB_OK;
}

/* Runs a write that must match a row: DB_NOTFOUND when none changed. */
static int exec_one(struct db *db, sqlite3_stmt *s, const char *what)
{
	int changes = 0;

	if (exec_stmt(db, s, what, &changes))
		return DB_ERROR;
	return changes ? DB_OK : DB_NOTFOUND;
}

struct db *db_open(const char *path, bool migrate, char *err, size_t errlen)
{
	struct db *db = calloc(1, sizeof(*db));
	int applied;

	if (!db) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database '%s': %s", path,
			 db->h ? sqlite3_errmsg(db->h) : "out of memory");
		db_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db->h, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db->h, 1);
	if (exec_sql(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
		     "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;")) {
		snprintf(err, errlen, "cannot set up database '%s': %s", path, sqlite3_errmsg(db->h));
		db_close(db);
		return NULL;
	}
	if (migrate && db_migrate(db, &applied)) {
		snprintf(err, errlen, "migrating database '%s' failed (see the log)", path);
		db_close(db);
		return NULL;
	}
	return db;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < S__COUNT; i++)
		sqlite3_finalize(db->stmt[i]);
	sqlite3_close(db->h);
	free(db);
}

int db_begin_write(struct db *db)
{
	return exec_sql(db, "BEGIN IMMEDIATE");
}

int db_commit(struct db *db)
{
	return exec_sql(db, "COMMIT");
}

void db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		exec_sql(db, "ROLLBACK");
}

int db_ping(struct db *db)
{
	return exec_sql(db, "SELECT 1");
}

/* ---- migrations ---- */

static int applied_version(struct db *db, int *version)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(db->h, "SELECT coalesce(max(version), 0) FROM schema_migrations",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(db, "reading schema version");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "reading schema version");
}

int db_migrate(struct db *db, int *applied)
{
	return db_migrate_list(db, migrations, migrations_count, applied);
}

int db_migrate_list(struct db *db, const struct migration *list, size_t n, int *applied)
{
	*applied = 0;
	if (exec_sql(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
		     "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"))
		return DB_ERROR;
	for (size_t i = 0; i < n; i++) {
		const struct migration *m = &list[i];
		sqlite3_stmt *s;
		int current, rc;

		/* Re-read inside the write lock: another process may have
		 * applied it while we waited. */
		if (db_begin_write(db))
			return DB_ERROR;
		if (applied_version(db, &current))
			goto fail;
		if (current >= m->version) {
			db_rollback(db);
			continue;
		}
		if (exec_sql(db, m->sql)) {
			log_error("migration %s failed; the database is unchanged", m->name);
			goto fail;
		}
		if (sqlite3_prepare_v2(db->h, "INSERT INTO schema_migrations (version, name, applied_at) "
				       "VALUES (?1, ?2, ?3)", -1, &s, NULL) != SQLITE_OK)
			goto fail;
		sqlite3_bind_int(s, 1, m->version);
		sqlite3_bind_text(s, 2, m->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, now_s());
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		if (rc != SQLITE_DONE || db_commit(db))
			goto fail;
		log_info("applied migration %s", m->name);
		(*applied)++;
	}
	return DB_OK;
fail:
	db_rollback(db);
	return DB_ERROR;
}

int db_schema_version(struct db *db, int *current, int *latest)
{
	*latest = migrations_count ? migrations[migrations_count - 1].version : 0;
	*current = 0;
	if (sqlite3_table_column_metadata(db->h, NULL, "schema_migrations", "version",
					  NULL, NULL, NULL, NULL, NULL) != SQLITE_OK)
		return DB_OK;
	return applied_version(db, current);
}

/* ---- users ---- */

static void text_col(sqlite3_stmt *s, int col, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	str_copy(dst, size, t ? (const char *)t : "");
}

static int user_row(struct db *db, sqlite3_stmt *s, struct db_user *out)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->id = sqlite3_column_int64(s, 0);
		text_col(s, 1, out->login, sizeof(out->login));
		text_col(s, 2, out->name, sizeof(out->name));
		out->is_admin = sqlite3_column_int(s, 3) != 0;
		out->is_local = sqlite3_column_int(s, 4) != 0;
		out->github_id = sqlite3_column_int64(s, 5);
		text_col(s, 6, out->github_login, sizeof(out->github_login));
		text_col(s, 7, out->email, sizeof(out->email));
		text_col(s, 8, out->avatar_url, sizeof(out->avatar_url));
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	return rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "reading user");
}

int db_user_get(struct db *db, int64_t id, struct db_user *out)
{
	sqlite3_stmt *s = stmt(db, S_USER_GET);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	return user_row(db, s, out);
}

int db_user_by_login(struct db *db, const char *login, struct db_user *out)
{
	sqlite3_stmt *s = stmt(db, S_USER_BY_LOGIN);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, login, -1, SQLITE_STATIC);
	return user_row(db, s, out);
}

int db_user_create(struct db *db, const char *login, const char *name, int64_t now,
		   struct db_user *out)
{
	sqlite3_stmt *s = stmt(db, S_USER_CREATE);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, login, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name ? name : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	rc = user_row(db, s, out);
	return rc == DB_NOTFOUND ? DB_CONFLICT : rc;
}

int db_user_local(struct db *db, struct db_user *out)
{
	sqlite3_stmt *s = stmt(db, S_USER_LOCAL);

	return s ? user_row(db, s, out) : DB_ERROR;
}

/* ---- sessions ---- */

static void session_cols(sqlite3_stmt *s, struct db_session *out)
{
	out->id = sqlite3_column_int64(s, 0);
	out->user_id = sqlite3_column_int64(s, 1);
	out->created_at = sqlite3_column_int64(s, 2);
	out->last_seen_at = sqlite3_column_int64(s, 3);
	out->expires_at = sqlite3_column_int64(s, 4);
}

int db_session_create(struct db *db, const unsigned char hash[32], int64_t user_id,
		      int64_t now, int64_t expires_at, const char *addr, struct db_session *out)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_CREATE);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	if (user_id > 0)
		sqlite3_bind_int64(s, 2, user_id);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, expires_at);
	sqlite3_bind_text(s, 5, addr ? addr : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(s, 0);
		out->user_id = user_id;
		out->created_at = out->last_seen_at = now;
		out->expires_at = expires_at;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "creating session");
}

int db_session_count_from(struct db *db, const char *addr, int64_t since, int64_t *n)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_COUNT_FROM);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, since);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "counting sessions");
}

int db_session_find(struct db *db, const unsigned char hash[32], int64_t now,
		    struct db_session *out)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_FIND);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_blob(s, 1, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		session_cols(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	return rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "finding session");
}

int db_session_touch(struct db *db, int64_t id, int64_t now, int64_t expires_at)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_TOUCH);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, expires_at);
	return exec_stmt(db, s, "touching session", NULL);
}

int db_session_rotate(struct db *db, int64_t id, const unsigned char hash[32], int64_t user_id)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_ROTATE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_blob(s, 2, hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, user_id);
	return exec_one(db, s, "rotating session");
}

int db_session_delete(struct db *db, int64_t id)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_DELETE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	return exec_stmt(db, s, "deleting session", NULL);
}

int db_session_purge(struct db *db, int64_t now, int *deleted)
{
	sqlite3_stmt *s = stmt(db, S_SESSION_PURGE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, now);
	return exec_stmt(db, s, "purging sessions", deleted);
}

/* ---- jobs ---- */

void db_job_clear(struct db_job *job)
{
	free(job->args);
	job->args = NULL;
}

static int job_cols(sqlite3_stmt *s, struct db_job *out)
{
	const unsigned char *args;

	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(s, 0);
	out->user_id = sqlite3_column_int64(s, 1);
	text_col(s, 2, out->kind, sizeof(out->kind));
	args = sqlite3_column_text(s, 3);
	out->args = strdup(args ? (const char *)args : "{}");
	if (!out->args)
		return DB_ERROR;
	out->state = job_state_parse((const char *)sqlite3_column_text(s, 4));
	out->attempts = sqlite3_column_int(s, 5);
	out->max_attempts = sqlite3_column_int(s, 6);
	out->cancel_requested = sqlite3_column_int(s, 7) != 0;
	out->has_exit_code = sqlite3_column_type(s, 8) != SQLITE_NULL;
	out->exit_code = sqlite3_column_int(s, 8);
	text_col(s, 9, out->error, sizeof(out->error));
	out->created_at = sqlite3_column_int64(s, 10);
	out->started_at = sqlite3_column_int64(s, 11);
	out->finished_at = sqlite3_column_int64(s, 12);
	return DB_OK;
}

/* Steps s expecting at most one job row. */
static int job_row(struct db *db, sqlite3_stmt *s, struct db_job *out, const char *what)
{
	int rc = sqlite3_step(s), ret;

	if (rc == SQLITE_ROW)
		ret = job_cols(s, out);
	else if (rc == SQLITE_DONE)
		ret = DB_NOTFOUND;
	else
		ret = db_fail(db, what);
	sqlite3_reset(s);
	return ret;
}

int db_job_create(struct db *db, int64_t user_id, const char *kind, const char *args_json,
		  int max_attempts, int64_t now, int64_t *id_out)
{
	sqlite3_stmt *s = stmt(db, S_JOB_CREATE);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, args_json, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, max_attempts);
	sqlite3_bind_int64(s, 5, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id_out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "creating job");
}

int db_job_get(struct db *db, int64_t id, int64_t user_id, struct db_job *out)
{
	sqlite3_stmt *s = stmt(db, S_JOB_GET);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, user_id);
	return job_row(db, s, out, "reading job");
}

int db_job_list(struct db *db, int64_t user_id, int64_t before, int limit,
		db_job_fn fn, void *arg)
{
	sqlite3_stmt *s = stmt(db, S_JOB_LIST);
	struct db_job job;
	int rc, ret = DB_OK;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, before);
	sqlite3_bind_int(s, 3, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (job_cols(s, &job) || fn(&job, arg)) {
			db_job_clear(&job);
			ret = DB_ERROR;
			break;
		}
		db_job_clear(&job);
	}
	if (ret == DB_OK && rc != SQLITE_DONE)
		ret = db_fail(db, "listing jobs");
	sqlite3_reset(s);
	return ret;
}

int db_job_claim(struct db *db, const char *owner, int64_t now, int64_t lease_s,
		 struct db_job *out)
{
	sqlite3_stmt *s;
	int ret;

	if (db_begin_write(db))
		return DB_ERROR;
	s = stmt(db, S_JOB_FAIL_EXHAUSTED);
	if (!s)
		goto fail;
	sqlite3_bind_int64(s, 1, now);
	if (exec_stmt(db, s, "failing exhausted jobs", NULL))
		goto fail;
	s = stmt(db, S_JOB_CLAIM);
	if (!s)
		goto fail;
	sqlite3_bind_text(s, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	sqlite3_bind_int64(s, 3, lease_s);
	ret = job_row(db, s, out, "claiming job");
	if (ret == DB_ERROR || db_commit(db)) {
		if (ret == DB_OK)
			db_job_clear(out);
		goto fail;
	}
	return ret;
fail:
	db_rollback(db);
	return DB_ERROR;
}

int db_job_renew(struct db *db, int64_t id, const char *owner, int64_t now,
		 int64_t lease_s, bool *cancel_requested)
{
	sqlite3_stmt *s = stmt(db, S_JOB_RENEW);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, lease_s);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*cancel_requested = sqlite3_column_int(s, 0) != 0;
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	return rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "renewing lease");
}

int db_job_append(struct db *db, int64_t id, const char *owner, const char *stream,
		  const void *data, size_t len, int64_t now, int64_t *seq_out)
{
	sqlite3_stmt *s;
	int64_t seq = 0;
	int rc, changes = 0;

	if (len > 0x7fffffff)
		return DB_ERROR;
	if (db_begin_write(db))
		return DB_ERROR;
	s = stmt(db, S_JOB_NEXT_SEQ);
	if (!s)
		goto fail;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		seq = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW) {
		db_fail(db, "numbering output");
		goto fail;
	}
	s = stmt(db, S_JOB_APPEND);
	if (!s)
		goto fail;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, seq);
	sqlite3_bind_text(s, 4, stream, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, len ? data : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now);
	if (exec_stmt(db, s, "appending output", &changes))
		goto fail;
	if (changes == 0) {
		db_rollback(db);
		return DB_NOTFOUND;
	}
	if (db_commit(db))
		goto fail;
	if (seq_out)
		*seq_out = seq;
	return DB_OK;
fail:
	db_rollback(db);
	return DB_ERROR;
}

int db_job_finish(struct db *db, int64_t id, const char *owner, enum job_state state,
		  bool has_exit_code, int exit_code, const char *error, int64_t now)
{
	sqlite3_stmt *s = stmt(db, S_JOB_FINISH);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, job_state_name(state), -1, SQLITE_STATIC);
	if (has_exit_code)
		sqlite3_bind_int(s, 4, exit_code);
	if (error && *error)
		sqlite3_bind_text(s, 5, error, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, now);
	return exec_one(db, s, "finishing job");
}

int db_job_release(struct db *db, int64_t id, const char *owner)
{
	sqlite3_stmt *s = stmt(db, S_JOB_RELEASE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	return exec_one(db, s, "releasing job");
}

int db_job_cancel(struct db *db, int64_t id, int64_t user_id, int64_t now,
		  enum job_state *state_out)
{
	struct db_job job;
	sqlite3_stmt *s;
	int rc, changes = 0;

	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_job_get(db, id, user_id, &job);
	if (rc != DB_OK) {
		db_rollback(db);
		return rc;
	}
	db_job_clear(&job);
	if (job_state_final(job.state)) {
		db_rollback(db);
		*state_out = job.state;
		return DB_CONFLICT;
	}
	s = stmt(db, job.state == JOB_QUEUED ? S_JOB_CANCEL_QUEUED : S_JOB_CANCEL_RUNNING);
	if (!s)
		goto fail;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, user_id);
	if (job.state == JOB_QUEUED)
		sqlite3_bind_int64(s, 3, now);
	if (exec_stmt(db, s, "cancelling job", &changes) || db_commit(db))
		goto fail;
	*state_out = job.state == JOB_QUEUED ? JOB_CANCELLED : JOB_RUNNING;
	return DB_OK;
fail:
	db_rollback(db);
	return DB_ERROR;
}

int db_job_output(struct db *db, int64_t id, int64_t after, int limit, size_t max_bytes,
		  db_chunk_fn fn, void *arg, bool *more)
{
	sqlite3_stmt *s = stmt(db, S_JOB_OUTPUT);
	size_t total = 0;
	int rc, ret = DB_OK, n = 0;

	*more = false;
	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int(s, 3, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_chunk c = {
			.seq = sqlite3_column_int64(s, 0),
			.stream = (const char *)sqlite3_column_text(s, 1),
			.data = sqlite3_column_blob(s, 2),
			.len = (size_t)sqlite3_column_bytes(s, 2),
			.created_at = sqlite3_column_int64(s, 3),
		};

		if (n > 0 && total + c.len > max_bytes) {
			*more = true;
			break;
		}
		total += c.len;
		n++;
		if (fn(&c, arg)) {
			ret = DB_ERROR;
			break;
		}
	}
	if (ret == DB_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(db, "reading output");
	if (n == limit)
		*more = true;
	sqlite3_reset(s);
	return ret;
}

/* ---- workers ---- */

int db_worker_heartbeat(struct db *db, const char *id, const char *host, int pid,
			int64_t started_at, int64_t now, bool docker_ok,
			const char *docker_version)
{
	sqlite3_stmt *s = stmt(db, S_WORKER_BEAT);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, host, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, pid);
	sqlite3_bind_int64(s, 4, started_at);
	sqlite3_bind_int64(s, 5, now);
	sqlite3_bind_int(s, 6, docker_ok);
	if (docker_version && *docker_version)
		sqlite3_bind_text(s, 7, docker_version, -1, SQLITE_STATIC);
	return exec_stmt(db, s, "writing heartbeat", NULL);
}

int db_worker_stopped(struct db *db, const char *id, int64_t now)
{
	sqlite3_stmt *s = stmt(db, S_WORKER_STOPPED);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	return exec_stmt(db, s, "marking worker stopped", NULL);
}

int db_worker_latest(struct db *db, int64_t *heartbeat_at, bool *docker_ok)
{
	sqlite3_stmt *s = stmt(db, S_WORKER_LATEST);
	int rc;

	if (!s)
		return DB_ERROR;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*heartbeat_at = sqlite3_column_int64(s, 0);
		*docker_ok = sqlite3_column_int(s, 1) != 0;
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	return rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "reading heartbeat");
}

/* ---- secrets ---- */

void db_secret_clear(struct db_secret *s)
{
	if (s->ciphertext) {
		OPENSSL_cleanse(s->ciphertext, s->ct_len);
		free(s->ciphertext);
	}
	s->ciphertext = NULL;
	s->ct_len = 0;
}

static int blob_exact(sqlite3_stmt *s, int col, unsigned char *dst, size_t len)
{
	const void *b = sqlite3_column_blob(s, col);

	if ((size_t)sqlite3_column_bytes(s, col) != len || !b)
		return -1;
	memcpy(dst, b, len);
	return 0;
}

static int secret_cols(sqlite3_stmt *s, bool with_ct, struct db_secret *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(s, 0);
	out->user_id = sqlite3_column_int64(s, 1);
	text_col(s, 2, out->kind, sizeof(out->kind));
	text_col(s, 3, out->key_id, sizeof(out->key_id));
	if (blob_exact(s, 4, out->nonce, sizeof(out->nonce)) ||
	    blob_exact(s, 6, out->tag, sizeof(out->tag)))
		return DB_ERROR;
	if (with_ct) {
		const void *ct = sqlite3_column_blob(s, 5);

		out->ct_len = (size_t)sqlite3_column_bytes(s, 5);
		out->ciphertext = malloc(out->ct_len ? out->ct_len : 1);
		if (!out->ciphertext)
			return DB_ERROR;
		if (out->ct_len)
			memcpy(out->ciphertext, ct, out->ct_len);
	}
	out->created_at = sqlite3_column_int64(s, 7);
	out->updated_at = sqlite3_column_int64(s, 8);
	out->last_used_at = sqlite3_column_int64(s, 9);
	out->expires_at = sqlite3_column_int64(s, 10);
	out->invalid = sqlite3_column_int(s, 11) != 0;
	return DB_OK;
}

static int secret_row(struct db *db, sqlite3_stmt *s, bool with_ct, struct db_secret *out)
{
	int rc = sqlite3_step(s), ret;

	if (rc == SQLITE_ROW) {
		ret = secret_cols(s, with_ct, out);
		if (ret != DB_OK)
			db_secret_clear(out);
	} else {
		ret = rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "reading secret");
	}
	sqlite3_reset(s);
	return ret;
}

int db_secret_reserve(struct db *db, int64_t user_id, const char *kind, int64_t now, int64_t *id)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_FIND);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	if (rc != SQLITE_DONE)
		return db_fail(db, "finding secret");
	s = stmt(db, S_SECRET_PLACEHOLDER);
	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "reserving secret");
}

int db_secret_store(struct db *db, int64_t id, const char *key_id,
		    const unsigned char nonce[DB_NONCE_LEN], const unsigned char *ct, size_t len,
		    const unsigned char tag[DB_TAG_LEN], int64_t expires_at, int64_t now)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_STORE);

	if (!s || len > 0x7fffffff)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, key_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 3, nonce, DB_NONCE_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 4, len ? (const void *)ct : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, tag, DB_TAG_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, expires_at);
	sqlite3_bind_int64(s, 7, now);
	return exec_one(db, s, "storing secret");
}

int db_secret_get(struct db *db, int64_t user_id, const char *kind, bool with_ciphertext,
		  struct db_secret *out)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_GET);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	return secret_row(db, s, with_ciphertext, out);
}

int db_secret_by_id(struct db *db, int64_t id, struct db_secret *out)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_BY_ID);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	return secret_row(db, s, true, out);
}

int db_secret_list(struct db *db, int64_t user_id, db_secret_fn fn, void *arg)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_LIST);
	struct db_secret sec;
	int rc, ret = DB_OK;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (secret_cols(s, false, &sec) || fn(&sec, arg)) {
			ret = DB_ERROR;
			break;
		}
	}
	if (ret == DB_OK && rc != SQLITE_DONE)
		ret = db_fail(db, "listing secrets");
	sqlite3_reset(s);
	return ret;
}

int db_secret_delete(struct db *db, int64_t user_id, const char *kind)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_DELETE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	return exec_one(db, s, "deleting secret");
}

int db_secret_touch(struct db *db, int64_t id, int64_t now)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_TOUCH);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now);
	return exec_stmt(db, s, "touching secret", NULL);
}

int db_secret_set_invalid(struct db *db, int64_t user_id, const char *kind, bool invalid)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_INVALID);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, invalid);
	return exec_one(db, s, "flagging secret");
}

int db_secret_ids_not_under(struct db *db, const char *key_id, int64_t after,
			    int64_t *ids, int max, int *n)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_NOT_UNDER);
	int rc;

	*n = 0;
	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int(s, 3, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max)
		ids[(*n)++] = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? DB_OK : db_fail(db, "listing secrets to rotate");
}

int db_secret_count_under(struct db *db, const char *key_id, int64_t *n)
{
	sqlite3_stmt *s = stmt(db, S_SECRET_COUNT_UNDER);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "counting secrets");
}

/* ---- audit ---- */

int db_audit_add(struct db *db, const struct db_audit *ev)
{
	sqlite3_stmt *s = stmt(db, S_AUDIT_ADD);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, ev->at);
	sqlite3_bind_int64(s, 2, ev->user_id);
	sqlite3_bind_int64(s, 3, ev->session_id);
	sqlite3_bind_text(s, 4, ev->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, ev->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, ev->outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, ev->detail ? ev->detail : "", -1, SQLITE_STATIC);
	return exec_stmt(db, s, "writing audit event", NULL);
}

int db_audit_list(struct db *db, int64_t user_id, int64_t since, int64_t before_id, int limit,
		  db_audit_fn fn, void *arg)
{
	sqlite3_stmt *s = stmt(db, S_AUDIT_LIST);
	int rc, ret = DB_OK;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, since);
	sqlite3_bind_int64(s, 3, before_id);
	sqlite3_bind_int(s, 4, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_audit ev = {
			.id = sqlite3_column_int64(s, 0),
			.at = sqlite3_column_int64(s, 1),
			.user_id = sqlite3_column_int64(s, 2),
			.session_id = sqlite3_column_int64(s, 3),
			.actor = (const char *)sqlite3_column_text(s, 4),
			.action = (const char *)sqlite3_column_text(s, 5),
			.outcome = (const char *)sqlite3_column_text(s, 6),
			.detail = (const char *)sqlite3_column_text(s, 7),
		};

		if (fn(&ev, arg)) {
			ret = DB_ERROR;
			break;
		}
	}
	if (ret == DB_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = db_fail(db, "listing audit events");
	sqlite3_reset(s);
	return ret;
}

/* ---- users, GitHub side ---- */

int db_user_upsert_github(struct db *db, int64_t github_id, const char *login, const char *name,
			  const char *email, const char *avatar_url, bool is_admin, int64_t now,
			  struct db_user *out)
{
	struct db_user found;
	sqlite3_stmt *s;
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	s = stmt(db, S_USER_BY_GITHUB);
	if (!s)
		goto fail;
	sqlite3_bind_int64(s, 1, github_id);
	sqlite3_bind_text(s, 2, login, -1, SQLITE_STATIC);
	rc = user_row(db, s, &found);
	if (rc == DB_ERROR)
		goto fail;
	s = stmt(db, rc == DB_OK ? S_USER_GITHUB_UPDATE : S_USER_GITHUB_INSERT);
	if (!s)
		goto fail;
	if (rc == DB_OK) {
		sqlite3_bind_int64(s, 1, found.id);
		sqlite3_bind_text(s, 2, login, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, email, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, avatar_url, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 6, is_admin);
		sqlite3_bind_int64(s, 7, github_id);
		sqlite3_bind_int64(s, 8, now);
	} else {
		sqlite3_bind_text(s, 1, login, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, email, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, avatar_url, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 5, is_admin);
		sqlite3_bind_int64(s, 6, github_id);
		sqlite3_bind_int64(s, 7, now);
	}
	/* A login taken by another row (a renamed account) fails the UNIQUE
	 * constraint here: reported as an error, nothing half-written. */
	if (user_row(db, s, out) != DB_OK || db_commit(db))
		goto fail;
	return DB_OK;
fail:
	db_rollback(db);
	return DB_ERROR;
}

int db_user_set_github(struct db *db, int64_t user_id, int64_t github_id, const char *github_login)
{
	sqlite3_stmt *s = stmt(db, S_USER_SET_GITHUB);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	sqlite3_bind_int64(s, 2, github_id);
	if (github_login && *github_login)
		sqlite3_bind_text(s, 3, github_login, -1, SQLITE_STATIC);
	return exec_stmt(db, s, "recording GitHub account", NULL);
}

/* ---- device flows ---- */

int db_flow_create(struct db *db, const struct db_flow *f)
{
	sqlite3_stmt *s = stmt(db, S_FLOW_CREATE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, f->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, f->session_id);
	sqlite3_bind_text(s, 3, f->remote_addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, f->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 5, f->nonce, DB_NONCE_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(s, 6, f->code_ct, (int)f->code_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 7, f->tag, DB_TAG_LEN, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, f->user_code, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, f->verification_uri, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 10, f->interval_s);
	sqlite3_bind_int64(s, 11, f->expires_at);
	sqlite3_bind_int64(s, 12, f->next_poll_at);
	sqlite3_bind_int64(s, 13, f->created_at);
	return exec_stmt(db, s, "creating device flow", NULL);
}

int db_flow_get(struct db *db, const char *id, int64_t session_id, struct db_flow *out)
{
	sqlite3_stmt *s = stmt(db, S_FLOW_GET);
	int rc, ret = DB_OK;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, session_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		text_col(s, 0, out->id, sizeof(out->id));
		out->session_id = sqlite3_column_int64(s, 1);
		text_col(s, 2, out->remote_addr, sizeof(out->remote_addr));
		text_col(s, 3, out->key_id, sizeof(out->key_id));
		out->code_len = (size_t)sqlite3_column_bytes(s, 5);
		if (blob_exact(s, 4, out->nonce, DB_NONCE_LEN) || blob_exact(s, 6, out->tag, DB_TAG_LEN) ||
		    out->code_len > DB_FLOW_CODE_MAX)
			ret = DB_ERROR;
		else if (out->code_len)
			memcpy(out->code_ct, sqlite3_column_blob(s, 5), out->code_len);
		text_col(s, 7, out->user_code, sizeof(out->user_code));
		text_col(s, 8, out->verification_uri, sizeof(out->verification_uri));
		out->interval_s = sqlite3_column_int64(s, 9);
		out->expires_at = sqlite3_column_int64(s, 10);
		out->next_poll_at = sqlite3_column_int64(s, 11);
		out->created_at = sqlite3_column_int64(s, 12);
		text_col(s, 13, out->status, sizeof(out->status));
		text_col(s, 14, out->message, sizeof(out->message));
		out->user_id = sqlite3_column_int64(s, 15);
	} else {
		ret = rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "reading device flow");
	}
	sqlite3_reset(s);
	return ret;
}

int db_flow_claim_poll(struct db *db, const char *id, int64_t session_id, int64_t now,
		       int64_t margin_s, struct db_flow *out)
{
	sqlite3_stmt *s;
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_flow_get(db, id, session_id, out);
	if (rc != DB_OK)
		goto done;
	if (strcmp(out->status, "pending") || now < out->next_poll_at) {
		rc = DB_CONFLICT;
		goto done;
	}
	s = stmt(db, S_FLOW_NEXT_POLL);
	if (!s)
		goto fail;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now + out->interval_s + margin_s);
	if (exec_stmt(db, s, "claiming poll", NULL) || db_commit(db))
		goto fail;
	out->next_poll_at = now + out->interval_s + margin_s;
	return DB_OK;
done:
	db_rollback(db);
	return rc;
fail:
	db_rollback(db);
	return DB_ERROR;
}

int db_flow_update(struct db *db, const char *id, const char *status, int64_t interval_s,
		   int64_t next_poll_at, const char *message, int64_t user_id)
{
	sqlite3_stmt *s = stmt(db, S_FLOW_UPDATE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, interval_s);
	sqlite3_bind_int64(s, 4, next_poll_at);
	sqlite3_bind_text(s, 5, message ? message : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, user_id);
	return exec_stmt(db, s, "updating device flow", NULL);
}

int db_flow_count_since(struct db *db, int64_t session_id, const char *remote_addr, int64_t since,
			int64_t *by_session, int64_t *by_addr)
{
	sqlite3_stmt *s = stmt(db, S_FLOW_COUNT);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, session_id);
	sqlite3_bind_text(s, 2, remote_addr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, since);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*by_session = sqlite3_column_int64(s, 0);
		*by_addr = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? DB_OK : db_fail(db, "counting device flows");
}

int db_flow_purge(struct db *db, int64_t before, int *deleted)
{
	sqlite3_stmt *s = stmt(db, S_FLOW_PURGE);

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, before);
	return exec_stmt(db, s, "purging device flows", deleted);
}

/* ---- projects ---- */

static void project_cols(sqlite3_stmt *s, struct db_project *p)
{
	memset(p, 0, sizeof(*p));
	p->id = sqlite3_column_int64(s, 0);
	p->user_id = sqlite3_column_int64(s, 1);
	text_col(s, 2, p->name, sizeof(p->name));
	text_col(s, 3, p->github_full_name, sizeof(p->github_full_name));
	text_col(s, 4, p->clone_url, sizeof(p->clone_url));
	text_col(s, 5, p->default_branch, sizeof(p->default_branch));
	p->private = sqlite3_column_int(s, 6) != 0;
	text_col(s, 7, p->description, sizeof(p->description));
	p->created_at = sqlite3_column_int64(s, 8);
}

int db_project_create(struct db *db, struct db_project *p)
{
	sqlite3_stmt *s = stmt(db, S_PROJECT_CREATE);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, p->user_id);
	sqlite3_bind_text(s, 2, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, p->github_full_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, p->clone_url, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, p->default_branch, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 6, p->private);
	sqlite3_bind_text(s, 7, p->description, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, p->created_at);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		p->id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	return rc == SQLITE_DONE ? DB_CONFLICT : db_fail(db, "creating project");
}

int db_project_get(struct db *db, int64_t id, int64_t user_id, struct db_project *out)
{
	sqlite3_stmt *s = stmt(db, S_PROJECT_GET);
	int rc;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, user_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		project_cols(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return DB_OK;
	return rc == SQLITE_DONE ? DB_NOTFOUND : db_fail(db, "reading project");
}

int db_project_list(struct db *db, int64_t user_id, db_project_fn fn, void *arg)
{
	sqlite3_stmt *s = stmt(db, S_PROJECT_LIST);
	struct db_project p;
	int rc, ret = DB_OK;

	if (!s)
		return DB_ERROR;
	sqlite3_bind_int64(s, 1, user_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		project_cols(s, &p);
		if (fn(&p, arg)) {
			ret = DB_ERROR;
			break;
		}
	}
	if (ret == DB_OK && rc != SQLITE_DONE)
		ret = db_fail(db, "listing projects");
	sqlite3_reset(s);
	return ret;
}
