/* query.h - the statement helper the resource files of db/ are written
 * with. Internal to db/.
 *
 * A query is a static struct next to the function that runs it: its name
 * (for error lines), its SQL, and optionally a PostgreSQL spelling where
 * the dialects differ. It is prepared once per connection, on first use,
 * and kept until db_close().
 *
 *	static struct query q_get = QUERY("session.find",
 *		"SELECT ... FROM sessions WHERE token_hash = ?1 AND expires_at > ?2");
 *
 *	struct stmt *s = q_start(db, &q_get);
 *	q_blob(s, 1, hash, 32);
 *	q_int(s, 2, now);
 *	rc = q_row(s);              DB_OK (a row), DB_NOTFOUND or DB_ERROR
 *	if (rc == DB_OK) out->id = q_i64(s, 0);
 *	q_end(s);
 *
 * q_start() never returns NULL: a statement that failed to prepare, or a
 * bind that failed, makes the next step fail with DB_ERROR, so callers
 * check once, at the step. Errors are logged with the query's name.
 */
#ifndef ANYON_DB_QUERY_H
#define ANYON_DB_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/backend.h"
#include "db/db.h"

struct query {
	const char *name;     /* "resource.verb", in log lines */
	const char *sql;      /* both dialects, unless pg is set */
	const char *pg;       /* PostgreSQL's own spelling, or NULL */
	_Atomic int slot;     /* index in each connection's cache; -1 until first use */
};

#define QUERY(name, sql) { (name), (sql), NULL, -1 }
#define QUERY2(name, sql, pg) { (name), (sql), (pg), -1 }

/* One connection (db.h keeps it opaque). */
struct db {
	const struct db_backend *be;
	struct be_conn *conn;
	struct stmt **stmts;      /* by query slot; owned, finalized by db_close() */
	size_t nstmts;
	int depth;                /* open transactions: 0 none, 1 BEGIN, >1 savepoints */
	char *target;             /* what db_open() was given, for db_open_again(); owned */
	bool defer_checkpoints;   /* db_defer_checkpoints() was called */
	bool compress_fast;       /* db_compress_fast() was called */
	bool watching;            /* db_watch_changes() was called */
	bool tx_wrote;            /* the open transaction ran a write */
	int64_t reconnect_ms;     /* the last attempt to connect again (db_poll()) */
	void (*on_commit)(void *arg);   /* db_on_commit() */
	void *on_commit_arg;
};

struct stmt {
	struct db *db;
	const struct query *q;
	struct be_stmt *h;        /* NULL when preparing failed */
	bool bad;                 /* a bind failed: the next step fails */
	bool writes;              /* its SQL is not a SELECT: a write (db_on_commit()) */
	bool stepped;             /* a step ran since q_start() */
};

struct stmt *q_start(struct db *db, struct query *q);
void q_int(struct stmt *s, int i, int64_t v);
void q_bool(struct stmt *s, int i, bool v);
/* Binds v, or NULL when v is NULL. Borrowed until the first step. */
void q_text(struct stmt *s, int i, const char *v);
/* Binds v, or NULL when v is NULL or "". */
void q_text_or_null(struct stmt *s, int i, const char *v);
void q_blob(struct stmt *s, int i, const void *v, size_t len);

/* Queues a bound read to run in the same round trip as the next ones
 * queued (PostgreSQL's pipeline mode; see backend.h): the first step of any
 * statement of the connection sends them all and collects every result;
 * each is then read with q_row()/q_step() and ended with q_end() as usual.
 * On SQLite nothing happens until the step, so the reads run in turn.
 * Queue only reads whose parameters do not depend on each other's rows. */
void q_send(struct stmt *s);

/* BE_ROW, BE_DONE, DB_CONFLICT or DB_ERROR (logged with the query's name). */
int q_step(struct stmt *s);
/* Steps once: DB_OK with a row to read, DB_NOTFOUND, DB_CONFLICT or DB_ERROR. */
int q_row(struct stmt *s);
/* Runs a statement to its end and resets it; *changes (may be NULL) gets
 * the rows changed. */
int q_exec(struct stmt *s, int64_t *changes);
/* Runs a write that must change a row: DB_OK, DB_NOTFOUND when none did.
 * Resets the statement. */
int q_one(struct stmt *s);
/* Resets the statement (rows and bindings are gone). */
void q_end(struct stmt *s);
/* Steps s through its rows, calling row(s, arg) for each: it returns 0 to
 * go on, > 0 to stop early, < 0 for an error. Ends s. DB_OK (every row,
 * or stopped early) or DB_ERROR. The list readers' loop. */
int q_each(struct stmt *s, int (*row)(struct stmt *s, void *arg), void *arg);

/* Columns of the current row (0 without one on PostgreSQL). */
int q_ncols(struct stmt *s);
bool q_null(struct stmt *s, int col);
int64_t q_i64(struct stmt *s, int col);
/* Borrowed until the next step; "" for NULL. */
const char *q_str(struct stmt *s, int col);
const void *q_blob_col(struct stmt *s, int col, size_t *len);
/* Copies a text column into dst. A value that does not fit is an error
 * (logged, -1), never a silent cut. */
int q_copy(struct stmt *s, int col, char *dst, size_t size);
/* Copies a blob column of exactly len bytes; -1 for any other length. */
int q_blob_exact(struct stmt *s, int col, void *dst, size_t len);
/* A heap copy of a text column (never NULL on success); caller frees. */
int q_strdup(struct stmt *s, int col, char **out);

/* The columns of a user, as USER_COLS lists them (users.c, sessions.c). */
#define USER_COLS_OF(t) t "id, " t "login, " t "name, " t "is_admin, " t "is_local, " \
	"coalesce(" t "github_id, 0), coalesce(" t "github_login, ''), " t "email, " t "avatar_url, " \
	t "disabled, " t "admin_grant"
#define USER_COLS USER_COLS_OF("")
/* Reads the USER_COLS that start at col into out. */
int db_user_cols(struct stmt *s, int col, struct db_user *out);

/* A session with its user, as a request looks it up: SESSION_USER_NCOLS
 * columns to select, the tables and the condition on ?1 (token hash), ?2
 * (now) and ?3 (cloud). A query may join more to it (sessions.c, jobs.c). */
#define SESSION_USER_COLS "s.id, coalesce(s.user_id, 0), s.created_at, s.last_seen_at, s.expires_at, " \
	USER_COLS_OF("u.")
#define SESSION_USER_NCOLS (5 + 11)
#define SESSION_USER_FROM "sessions s LEFT JOIN users u ON u.id = s.user_id"
#define SESSION_USER_WHERE "s.token_hash = ?1 AND s.expires_at > ?2 AND s.cloud = ?3 " \
	"AND (u.id IS NULL OR u.disabled = 0)"
/* Starts q, a statement on the session ?1..?3 (as SESSION_USER_WHERE
 * says), with those three bound; the caller binds the rest. */
struct stmt *session_q_start(struct db *db, struct query *q, const unsigned char hash[32], int64_t now,
			     bool cloud);
/* Reads the SESSION_USER_COLS that start at col. DB_OK or DB_ERROR. */
int session_user_cols(struct stmt *s, int col, struct db_session *out, struct db_user *user, bool *has_user);

/* The pieces db_session_find_prefetch() (sessions.c) takes from jobs.c:
 * the session, its user and the job ?4 when it is the user's, in one
 * statement (the job's columns first, then SESSION_USER_COLS); the job's
 * output. Each *_start() binds a statement, each *_read() steps and ends it. */
struct stmt *session_job_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
			       int64_t job_id);
/* Reads the job's columns of the current row of session_job_start()'s
 * statement: DB_OK, DB_NOTFOUND (no job) or DB_ERROR. */
int session_job_cols(struct stmt *s, struct db_job *out);
struct stmt *job_output_start(struct db *db, int64_t id, int64_t after, int limit, size_t max_bytes);
int job_output_read(struct stmt *s, int limit, size_t max_bytes, db_chunk_fn fn, void *arg, bool *more);
/* From events.c: the events after ?4 (at most ?5 rows) of the user of the
 * session ?1..?3, joined on the session's user; and the reading of rows of
 * user_id only (another user's row is DB_ERROR, never passed to fn). */
struct stmt *session_events_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
				  int64_t after, int limit);
int event_list_read(struct stmt *s, int64_t user_id, int limit, db_event_fn fn, void *arg, bool *more);
/* From tasks.c: the board version of project ?4 when it is the user's of
 * the session ?1..?3 (read by db_prefetch_board()). */
struct stmt *session_board_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
				 int64_t project_id);

/* Whether the connection is PostgreSQL's (for the few places where the
 * data layer does a thing differently there, not just spells it). */
static inline bool db_is_pg(const struct db *db)
{
	return db->be->pg_spelling;
}

/* Runs SQL without parameters (migrations, pragmas). */
int db_exec(struct db *db, const char *sql);
/* Logs a failure of what on db and returns DB_ERROR. */
int db_failed(struct db *db, const char *what);

#endif
