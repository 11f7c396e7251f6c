/* sessions.c - browser sessions, found by the SHA-256 of their token. */
#include "autoconfig.h"

#include <string.h>

#include "db/query.h"

static struct query q_create = QUERY("session.create",
	"INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, created_addr, cloud, "
	"user_agent) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7) RETURNING id");
/* A token derived from an anonymous cookie (fcgi/session.c) can come back
 * after its session expired: that row makes way for the new one. */
static struct query q_drop_expired = QUERY("session.drop_expired",
	"DELETE FROM sessions WHERE token_hash = ?1 AND expires_at <= ?2");
static struct query q_trim_local = QUERY("session.trim_local",
	"DELETE FROM sessions WHERE cloud = ?2 AND id NOT IN "
	"(SELECT id FROM sessions WHERE cloud = ?2 ORDER BY last_seen_at DESC, id DESC LIMIT ?1)");
static struct query q_list_user = QUERY("session.list_user",
	"SELECT id, created_at, last_seen_at, expires_at, created_addr, user_agent FROM sessions "
	"WHERE user_id = ?1 AND cloud = ?2 AND expires_at > ?3 ORDER BY last_seen_at DESC, id DESC LIMIT ?4");
static struct query q_delete_own = QUERY("session.delete_own",
	"DELETE FROM sessions WHERE id = ?1 AND user_id = ?2");
static struct query q_delete_others = QUERY("session.delete_others",
	"DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2");
static struct query q_count_from = QUERY("session.count_from",
	"SELECT count(*) FROM sessions WHERE created_addr = ?1 AND created_at >= ?2");
static struct query q_find = QUERY("session.find",
	"SELECT id, coalesce(user_id, 0), created_at, last_seen_at, expires_at "
	"FROM sessions WHERE token_hash = ?1 AND expires_at > ?2");
static struct query q_find_user = QUERY("session.find_user",
	"SELECT " SESSION_USER_COLS " FROM " SESSION_USER_FROM " WHERE " SESSION_USER_WHERE);
/* The same with the metadata of the user's secret of kind ?4 (for
 * db_session_find_prefetch(); unique per user and kind, so one row). */
static struct query q_find_user_secret = QUERY("session.find_user_secret",
	"SELECT " SESSION_USER_COLS ", CASE WHEN x.id IS NULL THEN 0 ELSE 1 END, coalesce(x.invalid, 0), "
	"coalesce(x.user_id, 0) FROM " SESSION_USER_FROM " "
	"LEFT JOIN secrets x ON x.user_id = s.user_id AND x.kind = ?4 AND x.key_id <> '' "
	"WHERE " SESSION_USER_WHERE);
static struct query q_touch = QUERY("session.touch",
	"UPDATE sessions SET last_seen_at = ?2, expires_at = ?3 WHERE id = ?1");
static struct query q_rotate = QUERY("session.rotate",
	"UPDATE sessions SET token_hash = ?2, user_id = ?3 WHERE id = ?1");
static struct query q_delete = QUERY("session.delete", "DELETE FROM sessions WHERE id = ?1");
static struct query q_delete_user = QUERY("session.delete_user", "DELETE FROM sessions WHERE user_id = ?1");
static struct query q_purge = QUERY("session.purge", "DELETE FROM sessions WHERE expires_at <= ?1");

/* The five session columns of db_session_find(). */
static void session_cols(struct stmt *s, struct db_session *out)
{
	out->id = q_i64(s, 0);
	out->user_id = q_i64(s, 1);
	out->created_at = q_i64(s, 2);
	out->last_seen_at = q_i64(s, 3);
	out->expires_at = q_i64(s, 4);
}

int db_session_create(struct db *db, const struct db_session_new *n, struct db_session *out)
{
	struct stmt *s;
	int rc;

	if (n->agent && strlen(n->agent) > DB_SESSION_AGENT_MAX)
		return DB_ERROR;
	s = q_start(db, &q_drop_expired);
	q_blob(s, 1, n->hash, 32);
	q_int(s, 2, n->now);
	if (q_exec(s, NULL))
		return DB_ERROR;
	s = q_start(db, &q_create);
	q_blob(s, 1, n->hash, 32);
	if (n->user_id > 0)
		q_int(s, 2, n->user_id);
	q_int(s, 3, n->now);
	q_int(s, 4, n->expires_at);
	q_text(s, 5, n->addr ? n->addr : "");
	q_bool(s, 6, n->cloud);
	q_text(s, 7, n->agent ? n->agent : "");
	rc = q_row(s);
	if (rc == DB_OK) {
		out->id = q_i64(s, 0);
		out->user_id = n->user_id;
		out->created_at = out->last_seen_at = n->now;
		out->expires_at = n->expires_at;
	}
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_session_count_from(struct db *db, const char *addr, int64_t since, int64_t *n)
{
	struct stmt *s = q_start(db, &q_count_from);
	int rc;

	q_text(s, 1, addr);
	q_int(s, 2, since);
	rc = q_row(s);
	if (rc == DB_OK)
		*n = q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_session_find(struct db *db, const unsigned char hash[32], int64_t now,
		    struct db_session *out)
{
	struct stmt *s = q_start(db, &q_find);
	int rc;

	q_blob(s, 1, hash, 32);
	q_int(s, 2, now);
	rc = q_row(s);
	if (rc == DB_OK)
		session_cols(s, out);
	q_end(s);
	return rc;
}

struct stmt *session_q_start(struct db *db, struct query *q, const unsigned char hash[32], int64_t now,
			     bool cloud)
{
	struct stmt *s = q_start(db, q);

	q_blob(s, 1, hash, 32);
	q_int(s, 2, now);
	q_bool(s, 3, cloud);
	return s;
}

static struct stmt *find_user_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud)
{
	return session_q_start(db, &q_find_user, hash, now, cloud);
}

int session_user_cols(struct stmt *s, int col, struct db_session *out, struct db_user *user, bool *has_user)
{
	out->id = q_i64(s, col);
	out->user_id = q_i64(s, col + 1);
	out->created_at = q_i64(s, col + 2);
	out->last_seen_at = q_i64(s, col + 3);
	out->expires_at = q_i64(s, col + 4);
	*has_user = !q_null(s, col + 5);
	if (*has_user && db_user_cols(s, col + 5, user))
		return DB_ERROR;
	return DB_OK;
}

static int find_user_read(struct stmt *s, struct db_session *out, struct db_user *user, bool *has_user)
{
	int rc = q_row(s);

	*has_user = false;
	if (rc == DB_OK)
		rc = session_user_cols(s, 0, out, user, has_user);
	q_end(s);
	return rc;
}

int db_session_find_user(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
			 struct db_session *out, struct db_user *user, bool *has_user)
{
	return find_user_read(find_user_start(db, hash, now, cloud), out, user, has_user);
}

/* One statement reads the session, its user and the route's row (the job,
 * or the GitHub token's metadata) by joining them on the session's user;
 * the job's output, which can be many rows, is a second statement queued
 * with it (q_send()): on PostgreSQL one round trip in all, on SQLite the
 * reads in turn. The output is read later (db_prefetch_output()) and only
 * when the job came back as the user's. The events (pf->events) are such a
 * second statement too, keyed by the session's user in SQL; they are read
 * later (db_prefetch_events()) only when the session has a user, and each
 * row is checked there against that user before it is used. The owner is checked again here
 * in C, so a job or secret of anyone else is DB_NOTFOUND exactly as
 * db_job_get() with a user_id says. Nothing is cached beyond the request:
 * each request reads its session anew, so a revoked session fails at once. */
int db_session_find_prefetch(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
			     struct db_session *out, struct db_user *user, bool *has_user,
			     struct db_prefetch *pf)
{
	struct stmt *ss;
	struct db_job job;
	int rc, jrc = DB_NOTFOUND, xrc = DB_NOTFOUND, base = 0;
	bool invalid = false;

	pf->done = pf->job_held = false;
	pf->job_rc = pf->secret_rc = DB_NOTFOUND;
	pf->secret_invalid = false;
	pf->output_stmt = pf->events_stmt = pf->board_stmt = NULL;
	pf->rows_user = 0;
	*has_user = false;
	if (pf->job_id > 0) {
		ss = session_job_start(db, hash, now, cloud, pf->job_id);
	} else if (pf->secret_kind) {
		ss = session_q_start(db, &q_find_user_secret, hash, now, cloud);
		q_text(ss, 4, pf->secret_kind);
	} else {
		ss = find_user_start(db, hash, now, cloud);
	}
	q_send(ss);
	if (pf->job_id > 0 && pf->output) {
		pf->output_stmt = job_output_start(db, pf->job_id, pf->after, pf->limit, pf->max_bytes);
		q_send(pf->output_stmt);
	} else if (pf->job_id <= 0 && pf->events && pf->limit > 0) {
		memcpy(pf->bound_hash, hash, sizeof(pf->bound_hash));
		pf->events_stmt = session_events_start(db, pf->bound_hash, now, cloud, pf->after, pf->limit);
		q_send(pf->events_stmt);
	} else if (pf->job_id <= 0 && pf->board_project > 0) {
		memcpy(pf->bound_hash, hash, sizeof(pf->bound_hash));
		pf->board_stmt = session_board_start(db, pf->bound_hash, now, cloud, pf->board_project);
		q_send(pf->board_stmt);
	}
	rc = q_row(ss);
	if (rc == DB_OK) {
		if (pf->job_id > 0)
			base = q_ncols(ss) - SESSION_USER_NCOLS;
		rc = base < 0 ? DB_ERROR : session_user_cols(ss, base, out, user, has_user);
	}
	if (rc == DB_OK && pf->job_id > 0)
		jrc = session_job_cols(ss, &job);
	if (rc == DB_OK && pf->job_id <= 0 && pf->secret_kind && q_i64(ss, SESSION_USER_NCOLS) == 1) {
		xrc = *has_user && q_i64(ss, SESSION_USER_NCOLS + 2) == user->id ? DB_OK : DB_NOTFOUND;
		invalid = q_i64(ss, SESSION_USER_NCOLS + 1) != 0;
	}
	q_end(ss);
	if (rc != DB_OK) {
		if (jrc == DB_OK)
			db_job_release(&job);
		db_prefetch_release(db, pf);
		*has_user = false;
		return rc;
	}
	if (jrc == DB_OK && (!*has_user || job.user_id != user->id)) {
		db_job_release(&job);
		jrc = DB_NOTFOUND;
	}
	if (jrc == DB_OK) {
		pf->job = job;
		pf->job_held = true;
	} else if (pf->output_stmt) {
		q_end(pf->output_stmt);
		pf->output_stmt = NULL;
	}
	/* The events or the board (at most one is pending) are rows of the
	 * session's user: kept only when it has one, and bound to that user. */
	if (*has_user && user->id > 0) {
		pf->rows_user = user->id;
	} else {
		if (pf->events_stmt)
			q_end(pf->events_stmt);
		if (pf->board_stmt)
			q_end(pf->board_stmt);
		pf->events_stmt = pf->board_stmt = NULL;
	}
	pf->job_rc = jrc;
	pf->secret_rc = xrc;
	pf->secret_invalid = xrc == DB_OK && invalid;
	pf->done = true;
	return DB_OK;
}

int db_session_touch(struct db *db, int64_t id, int64_t now, int64_t expires_at)
{
	struct stmt *s = q_start(db, &q_touch);

	q_int(s, 1, id);
	q_int(s, 2, now);
	q_int(s, 3, expires_at);
	return q_exec(s, NULL);
}

int db_session_rotate(struct db *db, int64_t id, const unsigned char hash[32], int64_t user_id)
{
	struct stmt *s = q_start(db, &q_rotate);

	q_int(s, 1, id);
	q_blob(s, 2, hash, 32);
	if (user_id > 0)
		q_int(s, 3, user_id);
	return q_one(s);
}

int db_session_delete(struct db *db, int64_t id)
{
	struct stmt *s = q_start(db, &q_delete);

	q_int(s, 1, id);
	return q_exec(s, NULL);
}

int db_session_trim_local(struct db *db, int keep, int64_t *deleted)
{
	struct stmt *s = q_start(db, &q_trim_local);

	q_int(s, 1, keep);
	q_bool(s, 2, false);
	return q_exec(s, deleted);
}

int db_session_list_user(struct db *db, int64_t user_id, bool cloud, int64_t now, int limit,
			 db_session_info_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list_user);
	int rc;

	q_int(s, 1, user_id);
	q_bool(s, 2, cloud);
	q_int(s, 3, now);
	q_int(s, 4, limit);
	while ((rc = q_step(s)) == BE_ROW) {
		struct db_session_info i = {
			.id = q_i64(s, 0),
			.created_at = q_i64(s, 1),
			.last_seen_at = q_i64(s, 2),
			.expires_at = q_i64(s, 3),
			.addr = q_str(s, 4),
			.agent = q_str(s, 5),
		};

		if (fn(&i, arg)) {
			rc = DB_ERROR;
			break;
		}
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_session_delete_own(struct db *db, int64_t id, int64_t user_id)
{
	struct stmt *s = q_start(db, &q_delete_own);

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	return q_one(s);
}

int db_session_delete_others(struct db *db, int64_t user_id, int64_t keep_id, int64_t *deleted)
{
	struct stmt *s = q_start(db, &q_delete_others);

	q_int(s, 1, user_id);
	q_int(s, 2, keep_id);
	return q_exec(s, deleted);
}

int db_session_delete_user(struct db *db, int64_t user_id, int64_t *deleted)
{
	struct stmt *s = q_start(db, &q_delete_user);

	q_int(s, 1, user_id);
	return q_exec(s, deleted);
}

int db_session_purge(struct db *db, int64_t now, int *deleted)
{
	struct stmt *s = q_start(db, &q_purge);
	int64_t n = 0;
	int rc;

	q_int(s, 1, now);
	rc = q_exec(s, &n);
	if (deleted)
		*deleted = (int)n;
	return rc;
}
