/* migrate.c - the numbered migrations of the connection's dialect. */
#include "autoconfig.h"

#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "db/migrations.h"
#include "db/query.h"

/* Concurrent migrators (a pool starting, a worker, anyonctl) take turns:
 * SQLite's BEGIN IMMEDIATE already serializes them; PostgreSQL takes a
 * transaction-scoped advisory lock (a fixed number: "anyon" in ASCII). */
static struct query q_lock = QUERY2("migrate.lock", "SELECT 1",
	"SELECT pg_advisory_xact_lock(418363256942)");
static struct query q_version = QUERY("migrate.version",
	"SELECT coalesce(max(version), 0) FROM schema_migrations");
static struct query q_record = QUERY("migrate.record",
	"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)");

static const struct migration *dialect_list(struct db *db, size_t *n)
{
	if (db_is_pg(db)) {
		*n = migrations_postgresql_count;
		return migrations_postgresql;
	}
	*n = migrations_sqlite_count;
	return migrations_sqlite;
}

static int applied_version(struct db *db, int *version)
{
	struct stmt *s = q_start(db, &q_version);
	int rc = q_row(s);

	if (rc == DB_OK)
		*version = (int)q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_migrate(struct db *db, int *applied)
{
	size_t n;
	const struct migration *list = dialect_list(db, &n);

	return db_migrate_list(db, list, n, applied);
}

int db_migrate_list(struct db *db, const struct migration *list, size_t n, int *applied)
{
	*applied = 0;
	for (size_t i = 0; i < n; i++) {
		const struct migration *m = &list[i];
		struct stmt *s;
		int current;

		if (db_begin_write(db))
			return DB_ERROR;
		/* Re-read inside the lock: another process may have applied
		 * it while we waited. */
		if (q_exec(q_start(db, &q_lock), NULL) ||
		    db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)") ||
		    applied_version(db, &current))
			goto fail;
		if (current >= m->version) {
			db_rollback(db);
			continue;
		}
		if (db_exec(db, m->sql)) {
			log_error("migration %s failed; the database is unchanged", m->name);
			goto fail;
		}
		s = q_start(db, &q_record);
		q_int(s, 1, m->version);
		q_text(s, 2, m->name);
		q_int(s, 3, now_s());
		if (q_exec(s, NULL) || db_commit(db))
			goto fail;
		log_info("applied migration %s", m->name);
		(*applied)++;
	}
	return DB_OK;
fail:
	db_rollback(db);
	return DB_ERROR;
}

static struct query q_has_table = QUERY2("migrate.has_table",
	"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
	"SELECT count(*) FROM information_schema.tables "
	"WHERE table_schema = current_schema() AND table_name = 'schema_migrations'");

int db_schema_version(struct db *db, int *current, int *latest)
{
	size_t n;
	const struct migration *list = dialect_list(db, &n);
	struct stmt *s = q_start(db, &q_has_table);
	int rc = q_row(s);
	bool exists = rc == DB_OK && q_i64(s, 0) > 0;

	q_end(s);
	*latest = n ? list[n - 1].version : 0;
	*current = 0;
	if (rc != DB_OK)
		return DB_ERROR;
	return exists ? applied_version(db, current) : DB_OK;
}
