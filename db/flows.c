/* flows.c - GitHub device flows, one row each (services/devflow.c decides
 * when one may poll). */
#include "autoconfig.h"

#include <string.h>

#include "db/query.h"

#define FLOW_COLS "id, session_id, remote_addr, key_id, code_nonce, code_ciphertext, code_tag, " \
	"user_code, verification_uri, interval_s, expires_at, next_poll_at, created_at, status, " \
	"message, coalesce(user_id, 0)"

static struct query q_create = QUERY("flow.create",
	"INSERT INTO device_flows (id, session_id, remote_addr, key_id, code_nonce, code_ciphertext, "
	"code_tag, user_code, verification_uri, interval_s, expires_at, next_poll_at, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
static struct query q_get = QUERY("flow.get",
	"SELECT " FLOW_COLS " FROM device_flows WHERE id = ?1 AND session_id = ?2");
static struct query q_get_locked = QUERY2("flow.get_locked",
	"SELECT " FLOW_COLS " FROM device_flows WHERE id = ?1 AND session_id = ?2",
	"SELECT " FLOW_COLS " FROM device_flows WHERE id = ?1 AND session_id = ?2 FOR UPDATE");
static struct query q_next_poll = QUERY("flow.set_next_poll",
	"UPDATE device_flows SET next_poll_at = ?2 WHERE id = ?1");
/* The sealed device code is erased once the flow is over (?7 is empty). */
static struct query q_update = QUERY("flow.update",
	"UPDATE device_flows SET status = ?2, interval_s = ?3, next_poll_at = ?4, message = ?5, "
	"user_id = ?6, code_ciphertext = CASE WHEN ?2 = 'pending' THEN code_ciphertext ELSE ?7 END "
	"WHERE id = ?1");
static struct query q_count = QUERY("flow.count_since",
	"SELECT (SELECT count(*) FROM device_flows WHERE session_id = ?1 AND created_at >= ?3), "
	"(SELECT count(*) FROM device_flows WHERE remote_addr = ?2 AND created_at >= ?3)");
static struct query q_purge = QUERY("flow.purge", "DELETE FROM device_flows WHERE created_at < ?1");

int db_flow_create(struct db *db, const struct db_flow *f)
{
	struct stmt *s = q_start(db, &q_create);

	q_text(s, 1, f->id);
	q_int(s, 2, f->session_id);
	q_text(s, 3, f->remote_addr);
	q_text(s, 4, f->key_id);
	q_blob(s, 5, f->nonce, DB_NONCE_LEN);
	q_blob(s, 6, f->code_ct, f->code_len);
	q_blob(s, 7, f->tag, DB_TAG_LEN);
	q_text(s, 8, f->user_code);
	q_text(s, 9, f->verification_uri);
	q_int(s, 10, f->interval_s);
	q_int(s, 11, f->expires_at);
	q_int(s, 12, f->next_poll_at);
	q_int(s, 13, f->created_at);
	return q_exec(s, NULL);
}

static int flow_row(struct stmt *s, struct db_flow *out)
{
	int rc = q_row(s);
	const void *ct;

	if (rc == DB_OK) {
		memset(out, 0, sizeof(*out));
		out->session_id = q_i64(s, 1);
		ct = q_blob_col(s, 5, &out->code_len);
		out->interval_s = q_i64(s, 9);
		out->expires_at = q_i64(s, 10);
		out->next_poll_at = q_i64(s, 11);
		out->created_at = q_i64(s, 12);
		out->user_id = q_i64(s, 15);
		if (out->code_len > DB_FLOW_CODE_MAX ||
		    q_copy(s, 0, out->id, sizeof(out->id)) ||
		    q_copy(s, 2, out->remote_addr, sizeof(out->remote_addr)) ||
		    q_copy(s, 3, out->key_id, sizeof(out->key_id)) ||
		    q_blob_exact(s, 4, out->nonce, DB_NONCE_LEN) ||
		    q_blob_exact(s, 6, out->tag, DB_TAG_LEN) ||
		    q_copy(s, 7, out->user_code, sizeof(out->user_code)) ||
		    q_copy(s, 8, out->verification_uri, sizeof(out->verification_uri)) ||
		    q_copy(s, 13, out->status, sizeof(out->status)) ||
		    q_copy(s, 14, out->message, sizeof(out->message)))
			rc = DB_ERROR;
		else if (out->code_len)
			memcpy(out->code_ct, ct, out->code_len);
	}
	q_end(s);
	return rc;
}

int db_flow_get(struct db *db, const char *id, int64_t session_id, struct db_flow *out)
{
	struct stmt *s = q_start(db, &q_get);

	q_text(s, 1, id);
	q_int(s, 2, session_id);
	return flow_row(s, out);
}

int db_flow_get_locked(struct db *db, const char *id, int64_t session_id, struct db_flow *out)
{
	struct stmt *s = q_start(db, &q_get_locked);

	q_text(s, 1, id);
	q_int(s, 2, session_id);
	return flow_row(s, out);
}

int db_flow_set_next_poll(struct db *db, const char *id, int64_t next_poll_at)
{
	struct stmt *s = q_start(db, &q_next_poll);

	q_text(s, 1, id);
	q_int(s, 2, next_poll_at);
	return q_one(s);
}

int db_flow_update(struct db *db, const char *id, const char *status, int64_t interval_s,
		   int64_t next_poll_at, const char *message, int64_t user_id)
{
	struct stmt *s = q_start(db, &q_update);

	q_text(s, 1, id);
	q_text(s, 2, status);
	q_int(s, 3, interval_s);
	q_int(s, 4, next_poll_at);
	q_text(s, 5, message ? message : "");
	if (user_id > 0)
		q_int(s, 6, user_id);
	q_blob(s, 7, "", 0);
	return q_exec(s, NULL);
}

int db_flow_count_since(struct db *db, int64_t session_id, const char *remote_addr, int64_t since,
			int64_t *by_session, int64_t *by_addr)
{
	struct stmt *s = q_start(db, &q_count);
	int rc;

	q_int(s, 1, session_id);
	q_text(s, 2, remote_addr);
	q_int(s, 3, since);
	rc = q_row(s);
	if (rc == DB_OK) {
		*by_session = q_i64(s, 0);
		*by_addr = q_i64(s, 1);
	}
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_flow_purge(struct db *db, int64_t before, int *deleted)
{
	struct stmt *s = q_start(db, &q_purge);
	int64_t n = 0;
	int rc;

	q_int(s, 1, before);
	rc = q_exec(s, &n);
	if (deleted)
		*deleted = (int)n;
	return rc;
}
