/* audit.c - the audit log's rows (services/audit.c writes events). */
#include "autoconfig.h"

#include "db/query.h"

static struct query q_add = QUERY("audit.add",
	"INSERT INTO audit (at, user_id, session_id, actor, action, outcome, detail) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
static struct query q_purge = QUERY("audit.purge",
	"DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 ORDER BY id LIMIT ?2)");
static struct query q_seen = QUERY("audit.seen",
	"SELECT EXISTS (SELECT 1 FROM audit WHERE action = ?2 AND outcome = ?3 AND at >= ?5 "
	"AND ((?1 > 0 AND session_id = ?1) OR (?1 = 0 AND detail = ?4)))");
static struct query q_list = QUERY("audit.list",
	"SELECT id, at, coalesce(user_id, 0), coalesce(session_id, 0), actor, action, outcome, detail "
	"FROM audit WHERE (?1 = 0 OR user_id = ?1) AND at >= ?2 AND (?3 <= 0 OR id < ?3) "
	"ORDER BY id DESC LIMIT ?4");

int db_audit_add(struct db *db, const struct db_audit *ev)
{
	struct stmt *s = q_start(db, &q_add);

	q_int(s, 1, ev->at);
	if (ev->user_id > 0)
		q_int(s, 2, ev->user_id);
	if (ev->session_id > 0)
		q_int(s, 3, ev->session_id);
	q_text(s, 4, ev->actor);
	q_text(s, 5, ev->action);
	q_text(s, 6, ev->outcome);
	q_text(s, 7, ev->detail ? ev->detail : "");
	return q_exec(s, NULL);
}

int db_audit_purge(struct db *db, int64_t before, int limit, int64_t *deleted)
{
	struct stmt *s = q_start(db, &q_purge);

	q_int(s, 1, before);
	q_int(s, 2, limit);
	return q_exec(s, deleted);
}

int db_audit_seen(struct db *db, int64_t session_id, const char *action, const char *outcome,
		  const char *detail, int64_t since, bool *seen)
{
	struct stmt *s = q_start(db, &q_seen);
	int rc;

	q_int(s, 1, session_id);
	q_text(s, 2, action);
	q_text(s, 3, outcome);
	q_text(s, 4, detail ? detail : "");
	q_int(s, 5, since);
	rc = q_row(s);
	*seen = rc == DB_OK && q_i64(s, 0) != 0;
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_audit_list(struct db *db, int64_t user_id, int64_t since, int64_t before_id, int limit,
		  db_audit_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);
	int rc;

	q_int(s, 1, user_id);
	q_int(s, 2, since);
	q_int(s, 3, before_id);
	q_int(s, 4, limit);
	while ((rc = q_step(s)) == BE_ROW) {
		struct db_audit ev = {
			.id = q_i64(s, 0),
			.at = q_i64(s, 1),
			.user_id = q_i64(s, 2),
			.session_id = q_i64(s, 3),
			.actor = q_str(s, 4),
			.action = q_str(s, 5),
			.outcome = q_str(s, 6),
			.detail = q_str(s, 7),
		};

		rc = fn(&ev, arg);
		if (rc) {
			rc = rc > 0 ? BE_DONE : DB_ERROR;
			break;
		}
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}
