/* backend.h - the seam between the data layer and a database engine.
 *
 * Everything in db/ above this file (the statement helper, transactions,
 * migrations and one file per resource) is written once; a backend only
 * connects, prepares, binds, steps and reads columns. Two exist: SQLite
 * (backend_sqlite.c) and PostgreSQL (backend_pg.c). Internal to db/.
 *
 * SQL is written with numbered parameters (?1, ?2, ...); a backend that
 * spells them otherwise rewrites them when preparing. Bound text and blobs
 * are borrowed until the statement's first step (SQLITE_STATIC semantics).
 */
#ifndef ANYON_DB_BACKEND_H
#define ANYON_DB_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What step() reports, besides the DB_* codes of db.h. */
#define BE_ROW 10
#define BE_DONE 11

/* What poll() reports, or-ed. */
#define BE_POLL_CHANGED 1   /* notifications came on a channel listened to */
#define BE_POLL_LOST 2      /* the server closed the connection, or it broke */

struct be_conn;   /* one connection of a backend */
struct be_stmt;   /* one prepared statement of a connection */

struct db_backend {
	const char *name;                 /* "sqlite" or "postgresql" */
	bool pg_spelling;                 /* runs a query's PostgreSQL spelling (QUERY2) */
	const char *begin;                /* the statement that opens a write transaction */
	/* Connects to target (a path, or a URI). NULL with err filled on failure. */
	struct be_conn *(*open)(const char *target, char *err, size_t errlen);
	void (*close)(struct be_conn *c);
	/* Runs SQL without parameters or rows (may hold several statements). */
	int (*exec)(struct be_conn *c, const char *sql);
	/* Prepares sql; name is unique per connection (PostgreSQL names its
	 * server-side statements with it). NULL on failure, already logged. */
	struct be_stmt *(*prepare)(struct be_conn *c, const char *sql, const char *name);
	void (*finalize)(struct be_stmt *s);
	/* Forgets rows and bindings: every parameter is NULL again. */
	void (*reset)(struct be_stmt *s);
	int (*bind_int64)(struct be_stmt *s, int i, int64_t v);
	int (*bind_text)(struct be_stmt *s, int i, const char *v, size_t len);
	int (*bind_blob)(struct be_stmt *s, int i, const void *v, size_t len);
	/* BE_ROW, BE_DONE, DB_CONFLICT (a unique constraint refused the
	 * write) or DB_ERROR. */
	int (*step)(struct be_stmt *s);
	/* Queues a bound statement to run without waiting for its result
	 * (its bindings are copied, so counts as its first step for them).
	 * The next step, reset or exec of any statement of the connection
	 * sends every queued one in a single round trip and collects all
	 * their results, in order; stepping a queued statement then reads
	 * its own. A query that fails makes the ones queued after it fail
	 * too. DB_OK or DB_ERROR. NULL where statements run in-process
	 * (SQLite): there a queued statement simply runs at its step. */
	int (*send)(struct be_stmt *s);
	/* Columns of the statement's rows. */
	int (*col_count)(struct be_stmt *s);
	bool (*col_null)(struct be_stmt *s, int col);
	int64_t (*col_int64)(struct be_stmt *s, int col);
	/* Borrowed until the next step or reset; never NULL ("" for NULL). */
	const char *(*col_text)(struct be_stmt *s, int col, size_t *len);
	const void *(*col_blob)(struct be_stmt *s, int col, size_t *len);
	/* Rows changed by the last write statement that ran to the end. */
	int64_t (*changes)(struct be_stmt *s);
	/* The last error of the connection, for log lines. */
	const char *(*errmsg)(struct be_conn *c);
	/* Asks to hear of other connections' changes: PostgreSQL notifies
	 * this connection of every NOTIFY on channel; SQLite, which has no
	 * server, reports every commit another connection made to the file.
	 * DB_OK or DB_ERROR. */
	int (*listen)(struct be_conn *c, const char *channel);
	/* Reads, without blocking, what came while the connection was idle:
	 * BE_POLL_* or-ed, 0 for nothing. Only between statements (nothing
	 * queued). */
	int (*poll)(struct be_conn *c);
};

extern const struct db_backend db_backend_sqlite;
#ifdef HAVE_LIBPQ
extern const struct db_backend db_backend_pg;
#endif

#endif
