/* core.c - connections, nested transactions and the statement helper,
 * written once over the backend seam. */
#include "autoconfig.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "base/commitcount.h"
#include "base/log.h"
#include "base/util.h"
#include "db/query.h"

/* Query slots are handed out once per process, on a query's first use;
 * atomically, as a job's output writer (services/output.c) runs queries
 * on a thread of its own while the job's thread runs others. */
static atomic_int next_slot;

bool db_target_is_pg(const char *target)
{
	return strncmp(target, "postgres://", 11) == 0 || strncmp(target, "postgresql://", 13) == 0;
}

struct db *db_open(const char *target, bool migrate, char *err, size_t errlen)
{
	const struct db_backend *be = &db_backend_sqlite;
	struct db *db;
	int applied;

	if (db_target_is_pg(target)) {
#ifdef HAVE_LIBPQ
		be = &db_backend_pg;
#else
		snprintf(err, errlen, "this build has no PostgreSQL support (configure found no libpq)");
		return NULL;
#endif
	}
	db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	db->be = be;
	db->target = strdup(target);
	db->conn = db->target ? be->open(target, err, errlen) : NULL;
	if (!db->conn) {
		if (!db->target)
			snprintf(err, errlen, "out of memory");
		db_close(db);
		return NULL;
	}
	if (migrate && db_migrate(db, &applied)) {
		snprintf(err, errlen, "migrating the %s database failed (see the log)", be->name);
		db_close(db);
		return NULL;
	}
	return db;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (size_t i = 0; i < db->nstmts; i++) {
		if (db->stmts[i]) {
			if (db->stmts[i]->h)
				db->be->finalize(db->stmts[i]->h);
			free(db->stmts[i]);
		}
	}
	free(db->stmts);
	if (db->conn)
		db->be->close(db->conn);
	if (db->target) {
		/* A PostgreSQL URI may hold a user name worth keeping private. */
		OPENSSL_cleanse(db->target, strlen(db->target));
		free(db->target);
	}
	free(db);
}

struct db *db_open_again(const struct db *db, char *err, size_t errlen)
{
	struct db *again = db_open(db->target, false, err, errlen);

	if (again && db->defer_checkpoints)
		db_defer_checkpoints(again);
	if (again && db->compress_fast)
		db_compress_fast(again);
	if (again)
		db_on_commit(again, db->on_commit, db->on_commit_arg);
	return again;
}

const char *db_dialect(const struct db *db)
{
	return db->be->name;
}

int db_exec(struct db *db, const char *sql)
{
	return db->be->exec(db->conn, sql);
}

int db_failed(struct db *db, const char *what)
{
	log_error("database: %s: %s", what, db->be->errmsg(db->conn));
	return DB_ERROR;
}

int db_ping(struct db *db)
{
	return db_exec(db, "SELECT 1");
}

int db_watch_changes(struct db *db)
{
	if (!db->be->listen)
		return DB_ERROR;
	if (db->be->listen(db->conn, DB_CHANGES_CHANNEL))
		return db_failed(db, "listening for changes");
	db->watching = true;
	return DB_OK;
}

void db_on_commit(struct db *db, void (*fn)(void *arg), void *arg)
{
	db->on_commit = fn;
	db->on_commit_arg = arg;
}

bool db_share_commits(struct db *db, const char *data_dir, bool create)
{
	_Atomic uint64_t *n = commit_count_map(data_dir, create);

	if (n)
		db_on_commit(db, commit_count_bump, (void *)n);
	return n != NULL;
}

static void committed(struct db *db)
{
	if (db->on_commit)
		db->on_commit(db->on_commit_arg);
}

/* Forgets every prepared statement (they belonged to the old
 * connection; each is prepared again on its next q_start()). */
static void forget_statements(struct db *db)
{
	for (size_t i = 0; i < db->nstmts; i++) {
		if (db->stmts[i]) {
			if (db->stmts[i]->h)
				db->be->finalize(db->stmts[i]->h);
			free(db->stmts[i]);
			db->stmts[i] = NULL;
		}
	}
}

/* The server closed the connection: a new one in its place, with the
 * old one's settings. The old one stays (failing every statement) when
 * the new one cannot be had. */
static int reconnect(struct db *db)
{
	char err[256];
	struct be_conn *c;
	int64_t now = mono_ms();

	if (db->reconnect_ms && now - db->reconnect_ms < 1000)
		return DB_ERROR;
	db->reconnect_ms = now;
	c = db->be->open(db->target, err, sizeof(err));
	if (!c) {
		log_error("database: the connection was lost and connecting again failed: %s", err);
		return DB_ERROR;
	}
	forget_statements(db);
	db->be->close(db->conn);
	db->conn = c;
	db->reconnect_ms = 0;
	if (db->compress_fast)
		db_compress_fast(db);
	if (db->watching && db_watch_changes(db)) {
		/* Not hearing of changes would make a cache trust stale rows:
		 * this connection counts as down until it listens again. */
		db->reconnect_ms = now;
		return DB_ERROR;
	}
	log_info("database: the connection was lost; connected again");
	return DB_OK;
}

int db_poll(struct db *db)
{
	int got;

	if (!db->be->poll || db->depth > 0)
		return 0;
	got = db->be->poll(db->conn);
	if (!(got & BE_POLL_LOST))
		return got & BE_POLL_CHANGED ? DB_POLL_CHANGED : 0;
	return reconnect(db) ? DB_POLL_CHANGED | DB_POLL_DOWN : DB_POLL_CHANGED;
}

void db_defer_checkpoints(struct db *db)
{
	db->defer_checkpoints = true;
	if (!db_is_pg(db) && db_exec(db, "PRAGMA wal_autocheckpoint = 0"))
		log_warn("database: keeping checkpoints out of this connection failed; it makes its own");
}

void db_compress_fast(struct db *db)
{
	/* A server without the setting (before 14) or without lz4 refuses
	 * it: caught in the block, so it stays pglz and nothing is logged. */
	static const char sql[] = "DO $$ BEGIN SET default_toast_compression = 'lz4'; "
		"EXCEPTION WHEN OTHERS THEN NULL; END $$";

	db->compress_fast = true;
	if (db_is_pg(db) && db_exec(db, sql))
		log_warn("database: choosing lz4 for stored values failed; they stay pglz");
}

int db_checkpoint(struct db *db)
{
	return db_is_pg(db) ? DB_OK : db_exec(db, "PRAGMA wal_checkpoint(PASSIVE)");
}

int db_snapshot_to(struct db *db, const char *path)
{
	char sql[1100];

	if (db_is_pg(db) || strchr(path, '\'') || strlen(path) > 1024) {
		log_error("database: a snapshot is for SQLite, to a path without quotes");
		return DB_ERROR;
	}
	snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", path);
	return db_exec(db, sql);
}

/* ---- transactions ----
 * The outermost level is a real transaction; inner levels are savepoints,
 * so a function that needs atomicity opens its own level and still
 * composes inside a caller's transaction. SQLite takes the write lock at
 * BEGIN (IMMEDIATE), so a read-then-write inside it cannot race. On
 * PostgreSQL (READ COMMITTED) the read must lock what it will write:
 * the resource files say how, next to each such query. */

int db_begin_write(struct db *db)
{
	char sql[48];

	if (db->depth == 0) {
		if (db_exec(db, db->be->begin))
			return DB_ERROR;
	} else {
		snprintf(sql, sizeof(sql), "SAVEPOINT anyon_%d", db->depth);
		if (db_exec(db, sql))
			return DB_ERROR;
	}
	db->depth++;
	return DB_OK;
}

int db_commit(struct db *db)
{
	char sql[48];

	if (db->depth <= 0) {
		log_error("BUG: db_commit without a transaction");
		return DB_ERROR;
	}
	if (db->depth == 1) {
		if (db_exec(db, "COMMIT"))
			return DB_ERROR;   /* still open: the caller rolls back */
		db->depth = 0;
		if (db->tx_wrote) {
			db->tx_wrote = false;
			committed(db);
		}
		return DB_OK;
	} else {
		snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT anyon_%d", db->depth - 1);
		if (db_exec(db, sql))
			return DB_ERROR;
	}
	db->depth--;
	return DB_OK;
}

void db_rollback(struct db *db)
{
	char sql[96];

	if (db->depth <= 0)
		return;
	if (db->depth == 1) {
		db_exec(db, "ROLLBACK");
		db->tx_wrote = false;
	} else {
		snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT anyon_%d; RELEASE SAVEPOINT anyon_%d",
			 db->depth - 1, db->depth - 1);
		db_exec(db, sql);
	}
	db->depth--;
}

int db_tx_depth(const struct db *db)
{
	return db->depth;
}

int db_begin_user(struct db *db, int64_t user_id)
{
	if (db_begin_write(db))
		return DB_ERROR;
	if (db_user_lock(db, user_id) != DB_OK) {
		db_rollback(db);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_end(struct db *db, int rc)
{
	if (rc == DB_OK && db_commit(db) == DB_OK)
		return DB_OK;
	db_rollback(db);
	return rc == DB_OK ? DB_ERROR : rc;
}

/* ---- the statement helper ---- */

/* Whether sql reads only: a SELECT (anything else, a WITH included, is
 * taken for a write, which costs no more than a spurious db_on_commit()). */
static bool is_select(const char *sql)
{
	while (isspace((unsigned char)*sql))
		sql++;
	return strncasecmp(sql, "SELECT", 6) == 0 && !isalnum((unsigned char)sql[6]) && sql[6] != '_';
}

struct stmt *q_start(struct db *db, struct query *q)
{
	struct stmt *s;
	char name[32];
	int slot = atomic_load(&q->slot);

	if (slot < 0) {
		/* Two threads meeting here both take a number; the first to
		 * store its own wins and the other's is never used. */
		int mine = atomic_fetch_add(&next_slot, 1), none = -1;

		slot = atomic_compare_exchange_strong(&q->slot, &none, mine) ? mine : none;
	}
	if ((size_t)slot >= db->nstmts) {
		size_t n = (size_t)slot + 16;
		struct stmt **grown = realloc(db->stmts, n * sizeof(*grown));

		if (!grown)
			goto oom;
		memset(grown + db->nstmts, 0, (n - db->nstmts) * sizeof(*grown));
		db->stmts = grown;
		db->nstmts = n;
	}
	s = db->stmts[slot];
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			goto oom;
		s->db = db;
		s->q = q;
		snprintf(name, sizeof(name), "anyon_q%d", slot);
		s->h = db->be->prepare(db->conn, db->be->pg_spelling && q->pg ? q->pg : q->sql,
				       name);
		if (!s->h)
			log_error("database: preparing %s failed", q->name);
		s->writes = !is_select(q->sql);
		db->stmts[slot] = s;
	}
	if (s->h)
		db->be->reset(s->h);
	s->bad = !s->h;
	s->stepped = false;
	return s;
oom:
	/* A statement that always fails, owned by nobody: callers only step
	 * it, see DB_ERROR and call q_end(). */
	log_error("database: out of memory preparing %s", q->name);
	{
		static _Thread_local struct stmt failed;

		failed.db = db;
		failed.q = q;
		failed.h = NULL;
		failed.bad = true;
		return &failed;
	}
}

static void bind_rc(struct stmt *s, int rc, int i)
{
	if (rc != DB_OK && !s->bad) {
		log_error("database: %s: binding parameter %d failed", s->q->name, i);
		s->bad = true;
	}
}

void q_int(struct stmt *s, int i, int64_t v)
{
	if (s->h)
		bind_rc(s, s->db->be->bind_int64(s->h, i, v), i);
}

void q_bool(struct stmt *s, int i, bool v)
{
	q_int(s, i, v ? 1 : 0);
}

void q_text(struct stmt *s, int i, const char *v)
{
	if (s->h && v)
		bind_rc(s, s->db->be->bind_text(s->h, i, v, strlen(v)), i);
}

void q_text_or_null(struct stmt *s, int i, const char *v)
{
	if (v && *v)
		q_text(s, i, v);
}

void q_blob(struct stmt *s, int i, const void *v, size_t len)
{
	if (s->h)
		bind_rc(s, s->db->be->bind_blob(s->h, i, len ? v : "", len), i);
}

void q_send(struct stmt *s)
{
	if (s->bad || !s->h || !s->db->be->send)
		return;
	if (s->db->be->send(s->h)) {
		log_error("database: %s: queueing failed: %s", s->q->name, s->db->be->errmsg(s->db->conn));
		s->bad = true;
	}
}

int q_step(struct stmt *s)
{
	int rc;

	if (s->bad || !s->h)
		return DB_ERROR;
	rc = s->db->be->step(s->h);
	if (rc == DB_ERROR)
		log_error("database: %s: %s", s->q->name, s->db->be->errmsg(s->db->conn));
	if (s->writes && s->db->depth > 0)
		s->db->tx_wrote = true;
	s->stepped = true;
	return rc;
}

int q_row(struct stmt *s)
{
	int rc = q_step(s);

	if (rc == BE_ROW)
		return DB_OK;
	return rc == BE_DONE ? DB_NOTFOUND : rc;
}

int q_exec(struct stmt *s, int64_t *changes)
{
	int rc;

	while ((rc = q_step(s)) == BE_ROW)
		;
	if (rc == BE_DONE && changes)
		*changes = s->db->be->changes(s->h);
	q_end(s);
	return rc == BE_DONE ? DB_OK : rc;
}

int q_one(struct stmt *s)
{
	int64_t changes = 0;
	int rc = q_exec(s, &changes);

	if (rc != DB_OK)
		return rc;
	return changes ? DB_OK : DB_NOTFOUND;
}

void q_end(struct stmt *s)
{
	if (s->h)
		s->db->be->reset(s->h);
	/* A write outside a transaction has committed once reset (SQLite
	 * commits there; PostgreSQL already had, at its step). A failed one
	 * is reported too: a spurious report costs a reader one more read. */
	if (s->writes && s->stepped && s->db->depth == 0) {
		s->stepped = false;
		committed(s->db);
	}
}

int q_each(struct stmt *s, int (*row)(struct stmt *s, void *arg), void *arg)
{
	int rc;

	while ((rc = q_step(s)) == BE_ROW) {
		rc = row(s, arg);
		if (rc) {
			rc = rc > 0 ? BE_DONE : DB_ERROR;
			break;
		}
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int q_ncols(struct stmt *s)
{
	return s->h ? s->db->be->col_count(s->h) : 0;
}

bool q_null(struct stmt *s, int col)
{
	return s->db->be->col_null(s->h, col);
}

int64_t q_i64(struct stmt *s, int col)
{
	return s->db->be->col_int64(s->h, col);
}

const char *q_str(struct stmt *s, int col)
{
	size_t len;

	return s->db->be->col_text(s->h, col, &len);
}

const void *q_blob_col(struct stmt *s, int col, size_t *len)
{
	return s->db->be->col_blob(s->h, col, len);
}

int q_copy(struct stmt *s, int col, char *dst, size_t size)
{
	size_t len;
	const char *t = s->db->be->col_text(s->h, col, &len);

	if (len >= size) {
		log_error("database: %s: column %d holds %zu bytes, more than the %zu allowed",
			  s->q->name, col, len, size - 1);
		dst[0] = '\0';
		return -1;
	}
	memcpy(dst, t, len);
	dst[len] = '\0';
	return 0;
}

int q_blob_exact(struct stmt *s, int col, void *dst, size_t len)
{
	size_t got;
	const void *b = s->db->be->col_blob(s->h, col, &got);

	if (got != len || (len && !b)) {
		log_error("database: %s: column %d holds %zu bytes, not %zu", s->q->name, col, got, len);
		return -1;
	}
	memcpy(dst, b, len);
	return 0;
}

int q_strdup(struct stmt *s, int col, char **out)
{
	size_t len;
	const char *t = s->db->be->col_text(s->h, col, &len);

	*out = malloc(len + 1);
	if (!*out)
		return -1;
	memcpy(*out, t, len);
	(*out)[len] = '\0';
	return 0;
}
