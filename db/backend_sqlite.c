/* backend_sqlite.c - the SQLite side of the seam: one file in WAL mode,
 * a busy timeout so concurrent writers wait instead of failing. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/log.h"
#include "db/backend.h"
#include "db/db.h"

#define BUSY_TIMEOUT_MS 5000
/* How often a busy first open tries again (see sq_setup()). */
#define SETUP_RETRY_MS 20

struct be_conn {
	sqlite3 *h;
	/* Once sq_listen() was called: PRAGMA data_version, and what it said
	 * last (it changes when another connection commits). */
	sqlite3_stmt *data_version;
	int64_t seen_version;
};

struct be_stmt {
	struct be_conn *c;
	sqlite3_stmt *s;
};

static int sq_exec(struct be_conn *c, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(c->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("database: %s", msg ? msg : sqlite3_errmsg(c->h));
		sqlite3_free(msg);
		return DB_ERROR;
	}
	return DB_OK;
}

static void sq_close(struct be_conn *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->data_version);
	sqlite3_close(c->h);
	free(c);
}

/* The connection's settings. Switching a new file to WAL needs a lock
 * that SQLite does not wait for (the busy handler is not called): when two
 * programs open a fresh database at once, one gets SQLITE_BUSY at once.
 * Retry then, for as long as the busy timeout would have waited. */
static int sq_setup(struct be_conn *c)
{
	/* journal_size_limit: a log a long job's output grew to hundreds of
	 * MB (checkpoints cannot reset it while the job writes) is cut back
	 * to 64 MiB when it is next reset, not kept that size on disk. */
	static const char setup[] = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
		"PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA journal_size_limit = 67108864;";
	int rc = SQLITE_OK;

	for (int waited = 0; waited <= BUSY_TIMEOUT_MS; waited += SETUP_RETRY_MS) {
		rc = sqlite3_exec(c->h, setup, NULL, NULL, NULL);
		if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
			break;
		sqlite3_sleep(SETUP_RETRY_MS);
	}
	if (rc != SQLITE_OK) {
		log_error("database: %s", sqlite3_errmsg(c->h));
		return DB_ERROR;
	}
	return DB_OK;
}

static struct be_conn *sq_open(const char *path, char *err, size_t errlen)
{
	struct be_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &c->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database '%s': %s", path,
			 c->h ? sqlite3_errmsg(c->h) : "out of memory");
		sq_close(c);
		return NULL;
	}
	sqlite3_busy_timeout(c->h, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(c->h, 1);
	if (sq_setup(c)) {
		snprintf(err, errlen, "cannot set up database '%s': %s", path, sqlite3_errmsg(c->h));
		sq_close(c);
		return NULL;
	}
	return c;
}

static struct be_stmt *sq_prepare(struct be_conn *c, const char *sql, const char *name)
{
	struct be_stmt *s = calloc(1, sizeof(*s));

	(void)name;
	if (!s)
		return NULL;
	s->c = c;
	if (sqlite3_prepare_v3(c->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->s, NULL) != SQLITE_OK) {
		log_error("database: %s", sqlite3_errmsg(c->h));
		free(s);
		return NULL;
	}
	return s;
}

static void sq_finalize(struct be_stmt *s)
{
	sqlite3_finalize(s->s);
	free(s);
}

static void sq_reset(struct be_stmt *s)
{
	sqlite3_reset(s->s);
	sqlite3_clear_bindings(s->s);
}

static int sq_bind_int64(struct be_stmt *s, int i, int64_t v)
{
	return sqlite3_bind_int64(s->s, i, v) == SQLITE_OK ? DB_OK : DB_ERROR;
}

static int sq_bind_text(struct be_stmt *s, int i, const char *v, size_t len)
{
	if (len > 0x7fffffff)
		return DB_ERROR;
	return sqlite3_bind_text(s->s, i, v, (int)len, SQLITE_STATIC) == SQLITE_OK ? DB_OK : DB_ERROR;
}

static int sq_bind_blob(struct be_stmt *s, int i, const void *v, size_t len)
{
	if (len > 0x7fffffff)
		return DB_ERROR;
	return sqlite3_bind_blob(s->s, i, v, (int)len, SQLITE_STATIC) == SQLITE_OK ? DB_OK : DB_ERROR;
}

static int sq_step(struct be_stmt *s)
{
	int rc = sqlite3_step(s->s);

	if (rc == SQLITE_ROW)
		return BE_ROW;
	if (rc == SQLITE_DONE)
		return BE_DONE;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return DB_CONFLICT;
	return DB_ERROR;
}

static int sq_col_count(struct be_stmt *s)
{
	return sqlite3_column_count(s->s);
}

static bool sq_col_null(struct be_stmt *s, int col)
{
	return sqlite3_column_type(s->s, col) == SQLITE_NULL;
}

static int64_t sq_col_int64(struct be_stmt *s, int col)
{
	return sqlite3_column_int64(s->s, col);
}

static const char *sq_col_text(struct be_stmt *s, int col, size_t *len)
{
	const unsigned char *t = sqlite3_column_text(s->s, col);

	*len = t ? (size_t)sqlite3_column_bytes(s->s, col) : 0;
	return t ? (const char *)t : "";
}

static const void *sq_col_blob(struct be_stmt *s, int col, size_t *len)
{
	const void *b = sqlite3_column_blob(s->s, col);

	*len = (size_t)sqlite3_column_bytes(s->s, col);
	return b;
}

static int64_t sq_changes(struct be_stmt *s)
{
	return sqlite3_changes64(s->c->h);
}

static const char *sq_errmsg(struct be_conn *c)
{
	return sqlite3_errmsg(c->h);
}

/* The file's data version: -1 when it cannot be read. */
static int64_t data_version(struct be_conn *c)
{
	int64_t v = -1;

	if (sqlite3_step(c->data_version) == SQLITE_ROW)
		v = sqlite3_column_int64(c->data_version, 0);
	sqlite3_reset(c->data_version);
	return v;
}

/* There is no server to notify anyone: a connection that listens is told
 * instead of every commit other connections made to the file (any process,
 * any program: PRAGMA data_version). Its own commits are not reported;
 * whoever listens counts those itself (db_on_commit()). channel is
 * ignored: every commit counts. */
static int sq_listen(struct be_conn *c, const char *channel)
{
	(void)channel;
	if (!c->data_version &&
	    sqlite3_prepare_v3(c->h, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT, &c->data_version, NULL)) {
		log_error("database: %s", sqlite3_errmsg(c->h));
		return DB_ERROR;
	}
	c->seen_version = data_version(c);
	return c->seen_version < 0 ? DB_ERROR : DB_OK;
}

/* BE_POLL_CHANGED when another connection committed since the last poll
 * (or the version could not be read: as good as a change). */
static int sq_poll(struct be_conn *c)
{
	int64_t v;

	if (!c->data_version)
		return 0;
	v = data_version(c);
	if (v >= 0 && v == c->seen_version)
		return 0;
	c->seen_version = v;
	return BE_POLL_CHANGED;
}

const struct db_backend db_backend_sqlite = {
	.name = "sqlite",
	.pg_spelling = false,
	/* Takes the write lock at once: a read-then-write cannot race. */
	.begin = "BEGIN IMMEDIATE",
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.reset = sq_reset,
	.bind_int64 = sq_bind_int64,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.step = sq_step,
	.col_count = sq_col_count,
	.col_null = sq_col_null,
	.col_int64 = sq_col_int64,
	.col_text = sq_col_text,
	.col_blob = sq_col_blob,
	.changes = sq_changes,
	.errmsg = sq_errmsg,
	.listen = sq_listen,
	.poll = sq_poll,
};
