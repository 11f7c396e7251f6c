/* events.c - each user's change feed (see db.h). */
#include "autoconfig.h"

#include <string.h>

#include "base/log.h"
#include "db/query.h"

static struct query q_add = QUERY("event.add",
	"INSERT INTO events (user_id, kind, subject, project_id, created_at) VALUES (?1, ?2, ?3, NULLIF(?4, 0), ?5) "
	"RETURNING id");
static struct query q_list = QUERY("event.list",
	"SELECT id, user_id, kind, subject, coalesce(project_id, 0), created_at FROM events "
	"WHERE user_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
static struct query q_purge = QUERY("event.purge",
	"DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < ?1 ORDER BY id LIMIT ?2)");

int db_event_add(struct db *db, int64_t user_id, const char *kind, int64_t subject, int64_t project_id,
		 int64_t now, int64_t *id)
{
	struct stmt *s;
	int rc;

	if (db_tx_depth(db) == 0)
		return db_failed(db, "event.add outside a transaction");
	/* Held already by the services that write events; taking it again is
	 * free, and keeps ids committing in order for any later caller. */
	if (db_user_lock(db, user_id) != DB_OK)
		return DB_ERROR;
	s = q_start(db, &q_add);
	q_int(s, 1, user_id);
	q_text(s, 2, kind);
	q_int(s, 3, subject);
	q_int(s, 4, project_id > 0 ? project_id : 0);
	q_int(s, 5, now);
	rc = q_row(s);
	if (rc == DB_OK && id)
		*id = q_i64(s, 0);
	q_end(s);
	return rc == DB_NOTFOUND ? DB_ERROR : rc;
}

/* The same rows as q_list, the user being the session's (?1..?3, as
 * SESSION_USER_WHERE says): queued with the session's own read. */
static struct query q_session_list = QUERY("event.list_with_session",
	"SELECT e.id, e.user_id, e.kind, e.subject, coalesce(e.project_id, 0), e.created_at "
	"FROM " SESSION_USER_FROM " JOIN events e ON e.user_id = s.user_id "
	"WHERE " SESSION_USER_WHERE " AND e.id > ?4 ORDER BY e.id LIMIT ?5");

struct stmt *session_events_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
				  int64_t after, int limit)
{
	struct stmt *s = session_q_start(db, &q_session_list, hash, now, cloud);

	q_int(s, 4, after);
	q_int(s, 5, (int64_t)limit + 1);   /* one more: is there a next page? */
	return s;
}

int event_list_read(struct stmt *s, int64_t user_id, int limit, db_event_fn fn, void *arg, bool *more)
{
	struct db_event ev;
	int rc, n = 0;

	*more = false;
	while ((rc = q_step(s)) == BE_ROW) {
		if (n == limit) {
			*more = true;
			rc = BE_DONE;
			break;
		}
		memset(&ev, 0, sizeof(ev));
		ev.id = q_i64(s, 0);
		ev.user_id = q_i64(s, 1);
		ev.subject = q_i64(s, 3);
		ev.project_id = q_i64(s, 4);
		ev.created_at = q_i64(s, 5);
		if (ev.user_id != user_id) {
			log_error("event.list: event %lld is not user %lld's", (long long)ev.id,
				  (long long)user_id);
			rc = DB_ERROR;
			break;
		}
		if (q_copy(s, 2, ev.kind, sizeof(ev.kind)) || fn(&ev, arg) < 0) {
			rc = DB_ERROR;
			break;
		}
		n++;
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_event_list(struct db *db, int64_t user_id, int64_t after, int limit, db_event_fn fn, void *arg,
		  bool *more)
{
	struct stmt *s = q_start(db, &q_list);

	q_int(s, 1, user_id);
	q_int(s, 2, after);
	q_int(s, 3, (int64_t)limit + 1);   /* one more: is there a next page? */
	return event_list_read(s, user_id, limit, fn, arg, more);
}

int db_prefetch_events(struct db *db, struct db_prefetch *pf, int64_t user_id, db_event_fn fn, void *arg,
		       bool *more)
{
	struct stmt *s = pf->events_stmt;

	(void)db;
	*more = false;
	if (!pf->done || !s || user_id <= 0 || pf->rows_user != user_id)
		return DB_ERROR;
	pf->events_stmt = NULL;
	return event_list_read(s, user_id, pf->limit, fn, arg, more);
}

int db_event_purge(struct db *db, int64_t before, int limit, int64_t *deleted)
{
	struct stmt *s = q_start(db, &q_purge);

	q_int(s, 1, before);
	q_int(s, 2, limit);
	return q_exec(s, deleted);
}
