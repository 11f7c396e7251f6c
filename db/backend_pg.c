/* backend_pg.c - the PostgreSQL side of the seam, through libpq.
 *
 * Statements are prepared on the server once per connection, on their
 * first run (the parameter types come from that run's bindings: int8,
 * text or bytea). Parameters go as text except blobs (binary); results
 * come back in binary, decoded by column type, so blobs need no
 * unescaping. A statement's whole result is fetched by its first step;
 * every query of the data layer is bounded (LIMIT, or one row).
 *
 * send() queues statements in libpq's pipeline mode; the next step, reset
 * or exec on the connection ends the pipeline with one Sync, so a
 * request's independent reads cost one round trip (see pipeline_collect()).
 */
#include "autoconfig.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "base/log.h"
#include "db/backend.h"
#include "db/db.h"

#define PG_MAX_PARAMS 32
#define PASSWORD_MAX 1024
/* Statements one pipeline holds at most (a request sends two or three). */
#define PG_PIPELINE_MAX 8

/* Type oids (pg_type.h is a server header; these numbers are fixed). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

/* One statement sent in pipeline mode whose results are not read yet. */
struct queued {
	struct be_stmt *s;
	bool prepare;            /* a Parse went ahead of it: one result more */
	bool query;              /* its Execute went out (false: only the Parse did) */
};

struct be_conn {
	PGconn *pg;
	char err[512];           /* the last error, for errmsg() */
	struct queued queue[PG_PIPELINE_MAX];   /* in the order sent */
	int nqueued;
};

struct be_stmt {
	struct be_conn *c;
	char *sql;               /* owned: ?N rewritten to $N */
	char name[32];
	bool prepared;           /* known to the server */
	int nparams;             /* highest $N in sql */
	const char *values[PG_MAX_PARAMS];
	int lengths[PG_MAX_PARAMS];
	int formats[PG_MAX_PARAMS];
	Oid types[PG_MAX_PARAMS];
	char ints[PG_MAX_PARAMS][24];   /* text of bound integers */
	PGresult *res;           /* owned; NULL before the first step */
	bool queued;             /* sent in a pipeline, result not collected yet */
	bool collected;          /* res (maybe NULL) came from a pipeline, unchecked */
	int row;                 /* current row of res */
	int64_t changes;
};

static void set_err(struct be_conn *c, const char *msg)
{
	size_t n;

	snprintf(c->err, sizeof(c->err), "%s", msg ? msg : "unknown error");
	n = strlen(c->err);
	while (n > 0 && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
		c->err[--n] = '\0';
}

/* Server notices (e.g. "relation already exists, skipping") are not errors. */
static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Reads ANYON_DB_PASSWORD_FILE into buf: mode 0600 or stricter, at most
 * PASSWORD_MAX bytes, one trailing newline dropped. */
static int read_password_file(const char *path, char *buf, size_t size, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open ANYON_DB_PASSWORD_FILE '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		snprintf(err, errlen, "ANYON_DB_PASSWORD_FILE '%s' must be a regular file of mode 0600", path);
		return -1;
	}
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0 || (size_t)n >= size - 1) {
		OPENSSL_cleanse(buf, size);
		snprintf(err, errlen, "ANYON_DB_PASSWORD_FILE '%s' is unreadable or longer than %zu bytes",
			 path, size - 2);
		return -1;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/* True when the URI carries a password (which would then sit in the
 * environment and in every error message that echoes the target). */
static int uri_check(const char *uri, bool *has_timeout, char *err, size_t errlen)
{
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(uri, &msg), *o;
	int rc = 0;

	*has_timeout = false;
	if (!opts) {
		snprintf(err, errlen, "ANYON_DB is not a valid PostgreSQL URI: %s", msg ? msg : "out of memory");
		PQfreemem(msg);
		return -1;
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (strcmp(o->keyword, "password") == 0) {
			snprintf(err, errlen, "ANYON_DB must not contain a password: use ~/.pgpass "
				 "(PGPASSFILE), a service file, or ANYON_DB_PASSWORD_FILE");
			rc = -1;
		}
		if (strcmp(o->keyword, "connect_timeout") == 0)
			*has_timeout = true;
	}
	/* The parsed copy may hold a password: wipe before freeing. */
	for (o = opts; o->keyword; o++)
		if (o->val)
			OPENSSL_cleanse(o->val, strlen(o->val));
	PQconninfoFree(opts);
	return rc;
}

static void pg_close(struct be_conn *c)
{
	if (!c)
		return;
	PQfinish(c->pg);
	free(c);
}

static struct be_conn *pg_open(const char *uri, char *err, size_t errlen)
{
	const char *keys[6], *vals[6];
	const char *pwfile = getenv("ANYON_DB_PASSWORD_FILE");
	char password[PASSWORD_MAX + 2];
	struct be_conn *c;
	bool has_timeout;
	PGresult *res;
	int n = 0;

	if (uri_check(uri, &has_timeout, err, errlen))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	keys[n] = "dbname";
	vals[n++] = uri;
	keys[n] = "application_name";
	vals[n++] = "anyon";
	if (!has_timeout) {
		keys[n] = "connect_timeout";
		vals[n++] = "10";
	}
	if (pwfile && *pwfile) {
		if (read_password_file(pwfile, password, sizeof(password), err, errlen)) {
			free(c);
			return NULL;
		}
		keys[n] = "password";
		vals[n++] = password;
	}
	keys[n] = vals[n] = NULL;
	c->pg = PQconnectdbParams(keys, vals, 1);
	OPENSSL_cleanse(password, sizeof(password));
	if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
		set_err(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s", c->err);
		pg_close(c);
		return NULL;
	}
	PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
	/* One-line errors without DETAIL (which can quote row values). */
	PQsetErrorVerbosity(c->pg, PQERRORS_TERSE);
	PQsetErrorContextVisibility(c->pg, PQSHOW_CONTEXT_NEVER);
	/* Times are integers and text is UTF-8 on every connection. */
	/* Every statement is prepared once and run many times with values
	 * that do not change its best plan (key lookups, bounded lists), so
	 * plan it once: by default PostgreSQL re-plans each of the first five
	 * runs and keeps re-planning where the generic plan looks costlier. */
	res = PQexec(c->pg, "SET client_encoding = 'UTF8'; SET plan_cache_mode = force_generic_plan");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		set_err(c, PQresultErrorMessage(res));
		snprintf(err, errlen, "cannot set up the PostgreSQL session: %s", c->err);
		PQclear(res);
		pg_close(c);
		return NULL;
	}
	PQclear(res);
	return c;
}

static int pipeline_collect(struct be_conn *c);

static int pg_exec(struct be_conn *c, const char *sql)
{
	PGresult *res;
	ExecStatusType st;
	int rc = DB_OK;

	if (pipeline_collect(c))
		return DB_ERROR;
	res = PQexec(c->pg, sql);
	st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		set_err(c, res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
		log_error("database: %s", c->err);
		rc = DB_ERROR;
	}
	PQclear(res);
	return rc;
}

/* Rewrites ?N to $N (outside quoted strings) and finds the highest N. */
static char *rewrite_params(const char *sql, int *nparams)
{
	size_t len = strlen(sql);
	char *out = malloc(len + 1), *o = out;
	bool quoted = false;

	*nparams = 0;
	if (!out)
		return NULL;
	for (const char *p = sql; *p; p++) {
		if (*p == '\'')
			quoted = !quoted;
		if (!quoted && *p == '?' && p[1] >= '1' && p[1] <= '9') {
			int v = 0;

			*o++ = '$';
			while (p[1] >= '0' && p[1] <= '9') {
				v = v * 10 + (p[1] - '0');
				*o++ = *++p;
			}
			if (v > *nparams)
				*nparams = v;
			continue;
		}
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static struct be_stmt *pg_prepare(struct be_conn *c, const char *sql, const char *name)
{
	struct be_stmt *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->c = c;
	s->sql = rewrite_params(sql, &s->nparams);
	if (!s->sql || s->nparams > PG_MAX_PARAMS) {
		log_error("database: statement %s has more than %d parameters", name, PG_MAX_PARAMS);
		free(s->sql);
		free(s);
		return NULL;
	}
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

static void pg_reset(struct be_stmt *s)
{
	if (s->queued)
		pipeline_collect(s->c);
	s->collected = false;
	PQclear(s->res);
	s->res = NULL;
	s->row = -1;
	s->changes = 0;
	for (int i = 0; i < PG_MAX_PARAMS; i++) {
		s->values[i] = NULL;
		s->lengths[i] = 0;
		s->formats[i] = 0;
		s->types[i] = 0;
	}
}

static void pg_finalize(struct be_stmt *s)
{
	if (s->queued)
		pipeline_collect(s->c);
	PQclear(s->res);
	free(s->sql);
	free(s);
}

static int param_ok(struct be_stmt *s, int i)
{
	return i >= 1 && i <= s->nparams ? DB_OK : DB_ERROR;
}

static int pg_bind_int64(struct be_stmt *s, int i, int64_t v)
{
	if (param_ok(s, i))
		return DB_ERROR;
	snprintf(s->ints[i - 1], sizeof(s->ints[i - 1]), "%" PRId64, v);
	s->values[i - 1] = s->ints[i - 1];
	s->formats[i - 1] = 0;
	s->types[i - 1] = OID_INT8;
	return DB_OK;
}

static int pg_bind_text(struct be_stmt *s, int i, const char *v, size_t len)
{
	if (param_ok(s, i) || len > 0x7fffffff || memchr(v, '\0', len))
		return DB_ERROR;
	s->values[i - 1] = v;   /* NUL-terminated: text params are C strings */
	s->formats[i - 1] = 0;
	s->types[i - 1] = OID_TEXT;
	return DB_OK;
}

static int pg_bind_blob(struct be_stmt *s, int i, const void *v, size_t len)
{
	if (param_ok(s, i) || len > 0x7fffffff)
		return DB_ERROR;
	s->values[i - 1] = v;
	s->lengths[i - 1] = (int)len;
	s->formats[i - 1] = 1;
	s->types[i - 1] = OID_BYTEA;
	return DB_OK;
}

/* DB_CONFLICT for a unique violation, else DB_ERROR; the message is kept. */
static int result_error(struct be_stmt *s, PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	set_err(s->c, res ? PQresultErrorMessage(res) : PQerrorMessage(s->c->pg));
	return state && strcmp(state, "23505") == 0 ? DB_CONFLICT : DB_ERROR;
}

/* The result of the next query of the pipeline, and the NULL that ends it. */
static PGresult *next_result(struct be_conn *c)
{
	PGresult *res = PQgetResult(c->pg), *extra;

	if (!res)
		return NULL;
	/* A query of the data layer has one result; anything more is dropped. */
	for (int i = 0; i < 4 && (extra = PQgetResult(c->pg)) != NULL; i++)
		PQclear(extra);
	return res;
}

/* Ends the pipeline, if one is open: sends the Sync (which flushes every
 * queued statement: one round trip), gives each queued statement its
 * result and leaves pipeline mode. A statement whose result went missing
 * gets none, so its step fails. Returns DB_OK, or DB_ERROR when the
 * connection could not leave pipeline mode. */
static int pipeline_collect(struct be_conn *c)
{
	bool synced;
	int rc = DB_OK;

	if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF)
		return DB_OK;
	synced = PQpipelineSync(c->pg) == 1;
	if (!synced)
		set_err(c, PQerrorMessage(c->pg));
	for (int i = 0; i < c->nqueued; i++) {
		struct queued *q = &c->queue[i];

		if (synced && q->prepare) {
			PGresult *p = next_result(c);

			if (PQresultStatus(p) != PGRES_COMMAND_OK)
				q->s->prepared = false;   /* prepared again on its next run */
			PQclear(p);
		}
		q->s->res = synced && q->query ? next_result(c) : NULL;
		q->s->queued = false;
		q->s->collected = true;
	}
	c->nqueued = 0;
	if (synced) {
		PGresult *sync = PQgetResult(c->pg);

		if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC)
			rc = DB_ERROR;
		PQclear(sync);
	}
	if (!PQexitPipelineMode(c->pg)) {
		set_err(c, PQerrorMessage(c->pg));
		log_error("database: leaving pipeline mode failed: %s", c->err);
		rc = DB_ERROR;
	}
	return rc;
}

static int pg_send(struct be_stmt *s)
{
	struct be_conn *c = s->c;
	struct queued *q;

	if (s->queued || s->res || c->nqueued >= PG_PIPELINE_MAX) {
		set_err(c, "statement cannot be queued (already queued, not reset, or the pipeline is full)");
		return DB_ERROR;
	}
	if (PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF && !PQenterPipelineMode(c->pg)) {
		set_err(c, PQerrorMessage(c->pg));
		return DB_ERROR;
	}
	q = &c->queue[c->nqueued];
	q->s = s;
	q->prepare = !s->prepared;
	q->query = false;
	if (q->prepare && !PQsendPrepare(c->pg, s->name, s->sql, s->nparams, s->types)) {
		set_err(c, PQerrorMessage(c->pg));
		return DB_ERROR;
	}
	/* From here the pipeline holds s's results: it is collected later
	 * even when the Execute cannot be sent. */
	c->nqueued++;
	s->queued = true;
	s->prepared = true;
	if (!PQsendQueryPrepared(c->pg, s->name, s->nparams, s->values, s->lengths, s->formats, 1)) {
		set_err(c, PQerrorMessage(c->pg));
		return DB_ERROR;
	}
	q->query = true;
	return DB_OK;
}

static int pg_step(struct be_stmt *s)
{
	ExecStatusType st;

	/* Any step ends an open pipeline (libpq runs nothing else meanwhile). */
	if (PQpipelineStatus(s->c->pg) != PQ_PIPELINE_OFF && pipeline_collect(s->c) && !s->collected)
		return DB_ERROR;
	if (s->collected) {
		s->collected = false;
		if (!s->res) {
			set_err(s->c, "the statement's result was lost with its pipeline");
			return DB_ERROR;
		}
		st = PQresultStatus(s->res);
		if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			int rc = st == PGRES_PIPELINE_ABORTED ? DB_ERROR : result_error(s, s->res);

			if (st == PGRES_PIPELINE_ABORTED)
				set_err(s->c, "not run: an earlier statement of its pipeline failed");
			PQclear(s->res);
			s->res = NULL;
			return rc;
		}
		s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		s->row = -1;
	}
	if (!s->res) {
		if (!s->prepared) {
			PGresult *p = PQprepare(s->c->pg, s->name, s->sql, s->nparams, s->types);

			if (PQresultStatus(p) != PGRES_COMMAND_OK) {
				int rc = result_error(s, p);

				PQclear(p);
				return rc;
			}
			PQclear(p);
			s->prepared = true;
		}
		s->res = PQexecPrepared(s->c->pg, s->name, s->nparams, s->values, s->lengths,
					s->formats, 1);
		st = PQresultStatus(s->res);
		if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			int rc = result_error(s, s->res);

			PQclear(s->res);
			s->res = NULL;
			return rc;
		}
		s->changes = strtoll(PQcmdTuples(s->res), NULL, 10);
		s->row = -1;
	}
	if (++s->row < PQntuples(s->res))
		return BE_ROW;
	s->row = PQntuples(s->res);
	return BE_DONE;
}

static int pg_col_count(struct be_stmt *s)
{
	return s->res ? PQnfields(s->res) : 0;
}

static bool pg_col_null(struct be_stmt *s, int col)
{
	return !s->res || s->row >= PQntuples(s->res) || PQgetisnull(s->res, s->row, col);
}

static int64_t pg_col_int64(struct be_stmt *s, int col)
{
	const char *v;
	int len;

	if (pg_col_null(s, col))
		return 0;
	v = PQgetvalue(s->res, s->row, col);
	len = PQgetlength(s->res, s->row, col);
	switch (PQftype(s->res, col)) {
	case OID_INT8:
		if (len == 8) {
			uint64_t u;

			memcpy(&u, v, 8);
			return (int64_t)be64toh(u);
		}
		break;
	case OID_INT4:
		if (len == 4) {
			uint32_t u;

			memcpy(&u, v, 4);
			return (int32_t)be32toh(u);
		}
		break;
	case OID_INT2:
		if (len == 2) {
			uint16_t u;

			memcpy(&u, v, 2);
			return (int16_t)be16toh(u);
		}
		break;
	case OID_BOOL:
		if (len == 1)
			return v[0] != 0;
		break;
	}
	log_error("database: %s: column %d is not an integer (type %u, %d bytes)", s->name, col,
		  (unsigned)PQftype(s->res, col), len);
	return 0;
}

static const char *pg_col_text(struct be_stmt *s, int col, size_t *len)
{
	if (pg_col_null(s, col)) {
		*len = 0;
		return "";
	}
	/* Binary text is the bytes themselves; libpq NUL-terminates every value. */
	*len = (size_t)PQgetlength(s->res, s->row, col);
	return PQgetvalue(s->res, s->row, col);
}

static const void *pg_col_blob(struct be_stmt *s, int col, size_t *len)
{
	if (pg_col_null(s, col)) {
		*len = 0;
		return NULL;
	}
	*len = (size_t)PQgetlength(s->res, s->row, col);
	return PQgetvalue(s->res, s->row, col);
}

/* LISTEN on a channel: the server then sends a notification for every
 * NOTIFY on it (a committed transaction of anyone, this connection
 * included); pg_poll() reads them. */
static int pg_listen(struct be_conn *c, const char *channel)
{
	char sql[96];
	char *quoted = PQescapeIdentifier(c->pg, channel, strlen(channel));

	if (!quoted) {
		set_err(c, PQerrorMessage(c->pg));
		return DB_ERROR;
	}
	snprintf(sql, sizeof(sql), "LISTEN %s", quoted);
	PQfreemem(quoted);
	return pg_exec(c, sql);
}

/* Without blocking: reads what the server sent while the connection was
 * idle. Notifications are counted (and dropped: the channel's name is all
 * they mean here); a server that closed the connection (a restart, a
 * terminated backend) leaves it CONNECTION_BAD. */
static int pg_poll(struct be_conn *c)
{
	struct pollfd p = { .fd = PQsocket(c->pg), .events = POLLIN };
	PGnotify *n;
	int out = 0;

	if (PQstatus(c->pg) != CONNECTION_OK || p.fd < 0)
		return BE_POLL_LOST;
	if (poll(&p, 1, 0) > 0 && !PQconsumeInput(c->pg))
		set_err(c, PQerrorMessage(c->pg));
	while ((n = PQnotifies(c->pg)) != NULL) {
		out |= BE_POLL_CHANGED;
		PQfreemem(n);
	}
	if (PQstatus(c->pg) != CONNECTION_OK)
		out |= BE_POLL_LOST;
	return out;
}

static int64_t pg_changes(struct be_stmt *s)
{
	return s->changes;
}

static const char *pg_errmsg(struct be_conn *c)
{
	return c->err[0] ? c->err : PQerrorMessage(c->pg);
}

const struct db_backend db_backend_pg = {
	.name = "postgresql",
	.pg_spelling = true,
	.begin = "BEGIN",
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.bind_int64 = pg_bind_int64,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.step = pg_step,
	.send = pg_send,
	.col_count = pg_col_count,
	.col_null = pg_col_null,
	.col_int64 = pg_col_int64,
	.col_text = pg_col_text,
	.col_blob = pg_col_blob,
	.changes = pg_changes,
	.errmsg = pg_errmsg,
	.listen = pg_listen,
	.poll = pg_poll,
};
