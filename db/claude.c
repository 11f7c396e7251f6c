/* claude.c - the Claude sign-in's rows: the sealed inputs a login's job
 * hands to the CLI, and how the user's credential came (see db.h). */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db/query.h"

static struct query q_count = QUERY("login_input.count",
	"SELECT count(*) FROM claude_login_inputs WHERE job_id = ?1");
static struct query q_add = QUERY("login_input.add",
	"INSERT INTO claude_login_inputs (job_id, user_id, key_id, nonce, ciphertext, tag, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
static struct query q_next = QUERY("login_input.next",
	"SELECT id, key_id, nonce, ciphertext, tag FROM claude_login_inputs WHERE job_id = ?1 ORDER BY id LIMIT 1");
static struct query q_delete = QUERY("login_input.delete",
	"DELETE FROM claude_login_inputs WHERE id = ?1");
static struct query q_drop = QUERY("login_input.drop",
	"DELETE FROM claude_login_inputs WHERE job_id = ?1");
static struct query q_auth_get = QUERY("claude_auth.get",
	"SELECT method, last_error, updated_at FROM claude_auth WHERE user_id = ?1");
static struct query q_auth_put = QUERY("claude_auth.put",
	"INSERT INTO claude_auth (user_id, method, last_error, updated_at) VALUES (?1, ?2, ?3, ?4) "
	"ON CONFLICT (user_id) DO UPDATE SET method = CASE WHEN excluded.method = '' THEN claude_auth.method "
	"ELSE excluded.method END, last_error = excluded.last_error, updated_at = excluded.updated_at");
static struct query q_auth_delete = QUERY("claude_auth.delete",
	"DELETE FROM claude_auth WHERE user_id = ?1");

void db_login_input_release(struct db_login_input *in)
{
	if (in->ciphertext) {
		OPENSSL_cleanse(in->ciphertext, in->ct_len);
		free(in->ciphertext);
	}
	memset(in, 0, sizeof(*in));
}

int db_login_input_add(struct db *db, int64_t job_id, int64_t user_id, const char *key_id,
		       const unsigned char nonce[DB_NONCE_LEN], const unsigned char *ct, size_t len,
		       const unsigned char tag[DB_TAG_LEN], int max, int64_t now)
{
	struct stmt *s;
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	s = q_start(db, &q_count);
	q_int(s, 1, job_id);
	rc = q_row(s);
	if (rc == DB_OK && q_i64(s, 0) >= max)
		rc = DB_CONFLICT;
	q_end(s);
	if (rc == DB_OK) {
		s = q_start(db, &q_add);
		q_int(s, 1, job_id);
		q_int(s, 2, user_id);
		q_text(s, 3, key_id);
		q_blob(s, 4, nonce, DB_NONCE_LEN);
		q_blob(s, 5, ct, len);
		q_blob(s, 6, tag, DB_TAG_LEN);
		q_int(s, 7, now);
		rc = q_exec(s, NULL);
	}
	if (rc != DB_OK) {
		db_rollback(db);
		return rc == DB_CONFLICT ? DB_CONFLICT : DB_ERROR;
	}
	return db_commit(db) ? DB_ERROR : DB_OK;
}

int db_login_input_next(struct db *db, int64_t job_id, struct db_login_input *out)
{
	struct stmt *s = q_start(db, &q_next);
	const void *ct;
	int rc;

	memset(out, 0, sizeof(*out));
	q_int(s, 1, job_id);
	rc = q_row(s);
	if (rc == DB_OK) {
		out->id = q_i64(s, 0);
		ct = q_blob_col(s, 3, &out->ct_len);
		if (q_copy(s, 1, out->key_id, sizeof(out->key_id)) || q_blob_exact(s, 2, out->nonce, DB_NONCE_LEN) ||
		    q_blob_exact(s, 4, out->tag, DB_TAG_LEN) || !ct || !out->ct_len ||
		    !(out->ciphertext = malloc(out->ct_len)))
			rc = DB_ERROR;
		else
			memcpy(out->ciphertext, ct, out->ct_len);
	}
	q_end(s);
	if (rc == DB_ERROR)
		db_login_input_release(out);
	return rc;
}

int db_login_input_delete(struct db *db, int64_t id)
{
	struct stmt *s = q_start(db, &q_delete);

	q_int(s, 1, id);
	return q_exec(s, NULL);
}

int db_login_input_drop(struct db *db, int64_t job_id)
{
	struct stmt *s = q_start(db, &q_drop);

	q_int(s, 1, job_id);
	return q_exec(s, NULL);
}

int db_claude_auth_get(struct db *db, int64_t user_id, char *method, size_t mlen, char **last_error,
		       int64_t *updated_at)
{
	struct stmt *s = q_start(db, &q_auth_get);
	int rc;

	method[0] = '\0';
	*last_error = NULL;
	*updated_at = 0;
	q_int(s, 1, user_id);
	rc = q_row(s);
	if (rc == DB_OK) {
		*updated_at = q_i64(s, 2);
		if (q_copy(s, 0, method, mlen) || q_strdup(s, 1, last_error))
			rc = DB_ERROR;
	}
	q_end(s);
	return rc;
}

int db_claude_auth_put(struct db *db, int64_t user_id, const char *method, const char *last_error, int64_t now)
{
	struct stmt *s = q_start(db, &q_auth_put);

	q_int(s, 1, user_id);
	q_text(s, 2, method ? method : "");
	q_text_or_null(s, 3, last_error);
	q_int(s, 4, now);
	return q_exec(s, NULL);
}

int db_claude_auth_delete(struct db *db, int64_t user_id)
{
	struct stmt *s = q_start(db, &q_auth_delete);

	q_int(s, 1, user_id);
	return q_exec(s, NULL);
}

static struct query q_worker_set = QUERY("worker.set_claude",
	"UPDATE workers SET claude_version = ?2, claude_error = ?3 WHERE id = ?1");
static struct query q_cli_latest = QUERY("worker.claude_latest",
	"SELECT coalesce(claude_version, ''), coalesce(claude_error, '') FROM workers "
	"WHERE heartbeat_at >= ?1 AND stopped_at IS NULL AND (claude_version IS NOT NULL OR claude_error IS NOT NULL) "
	"ORDER BY heartbeat_at DESC LIMIT 1");

int db_worker_set_claude(struct db *db, const char *id, const char *version, const char *error)
{
	struct stmt *s = q_start(db, &q_worker_set);

	q_text(s, 1, id);
	q_text_or_null(s, 2, version);
	q_text_or_null(s, 3, error);
	return q_exec(s, NULL);
}

int db_claude_cli_latest(struct db *db, int64_t since, char *version, size_t vlen, char *error, size_t elen)
{
	struct stmt *s = q_start(db, &q_cli_latest);
	int rc;

	version[0] = error[0] = '\0';
	q_int(s, 1, since);
	rc = q_row(s);
	if (rc == DB_OK && (q_copy(s, 0, version, vlen) || q_copy(s, 1, error, elen)))
		rc = DB_ERROR;
	q_end(s);
	return rc;
}
