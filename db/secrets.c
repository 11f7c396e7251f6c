/* secrets.c - sealed secret rows (ciphertext only; services/secrets.c
 * seals and opens them). */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "db/query.h"

#define SECRET_COLS "id, user_id, kind, key_id, nonce, ciphertext, tag, created_at, updated_at, " \
	"coalesce(last_used_at, 0), coalesce(expires_at, 0), invalid"

/* The DO UPDATE is a no-op that makes RETURNING give the existing row's
 * id: the unique (user_id, kind) index decides between concurrent
 * writers on both engines, with no read-then-insert gap. */
static struct query q_reserve = QUERY("secret.reserve",
	"INSERT INTO secrets (user_id, kind, key_id, nonce, ciphertext, tag, created_at, updated_at) "
	"VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?6) "
	"ON CONFLICT (user_id, kind) DO UPDATE SET kind = excluded.kind RETURNING id");
static struct query q_store = QUERY("secret.store",
	"UPDATE secrets SET key_id = ?2, nonce = ?3, ciphertext = ?4, tag = ?5, "
	"expires_at = ?6, updated_at = ?7, invalid = 0 WHERE id = ?1");
static struct query q_get = QUERY("secret.get",
	"SELECT " SECRET_COLS " FROM secrets WHERE user_id = ?1 AND kind = ?2 AND key_id <> ''");
static struct query q_by_id = QUERY("secret.by_id",
	"SELECT " SECRET_COLS " FROM secrets WHERE id = ?1 AND key_id <> ''");
static struct query q_by_id_locked = QUERY2("secret.by_id_locked",
	"SELECT " SECRET_COLS " FROM secrets WHERE id = ?1 AND key_id <> ''",
	"SELECT " SECRET_COLS " FROM secrets WHERE id = ?1 AND key_id <> '' FOR UPDATE");
static struct query q_list = QUERY("secret.list",
	"SELECT " SECRET_COLS " FROM secrets WHERE user_id = ?1 AND key_id <> '' ORDER BY kind");
static struct query q_delete = QUERY("secret.delete",
	"DELETE FROM secrets WHERE user_id = ?1 AND kind = ?2");
static struct query q_touch = QUERY("secret.touch",
	"UPDATE secrets SET last_used_at = ?2 WHERE id = ?1");
static struct query q_invalid = QUERY("secret.set_invalid",
	"UPDATE secrets SET invalid = ?3 WHERE user_id = ?1 AND kind = ?2");
static struct query q_not_under = QUERY("secret.ids_not_under",
	"SELECT id FROM secrets WHERE key_id <> ?1 AND key_id <> '' AND id > ?2 ORDER BY id LIMIT ?3");
static struct query q_count_under = QUERY("secret.count_under",
	"SELECT count(*) FROM secrets WHERE key_id = ?1");

void db_secret_release(struct db_secret *s)
{
	if (s->ciphertext) {
		OPENSSL_cleanse(s->ciphertext, s->ct_len);
		free(s->ciphertext);
	}
	s->ciphertext = NULL;
	s->ct_len = 0;
}

static int secret_cols(struct stmt *s, bool with_ct, struct db_secret *out)
{
	memset(out, 0, sizeof(*out));
	out->id = q_i64(s, 0);
	out->user_id = q_i64(s, 1);
	out->created_at = q_i64(s, 7);
	out->updated_at = q_i64(s, 8);
	out->last_used_at = q_i64(s, 9);
	out->expires_at = q_i64(s, 10);
	out->invalid = q_i64(s, 11) != 0;
	if (q_copy(s, 2, out->kind, sizeof(out->kind)) || q_copy(s, 3, out->key_id, sizeof(out->key_id)) ||
	    q_blob_exact(s, 4, out->nonce, sizeof(out->nonce)) ||
	    q_blob_exact(s, 6, out->tag, sizeof(out->tag)))
		return DB_ERROR;
	if (with_ct) {
		const void *ct = q_blob_col(s, 5, &out->ct_len);

		out->ciphertext = malloc(out->ct_len ? out->ct_len : 1);
		if (!out->ciphertext)
			return DB_ERROR;
		if (out->ct_len)
			memcpy(out->ciphertext, ct, out->ct_len);
	}
	return DB_OK;
}

static int secret_row(struct stmt *s, bool with_ct, struct db_secret *out)
{
	int rc = q_row(s);

	if (rc == DB_OK && secret_cols(s, with_ct, out)) {
		db_secret_release(out);
		rc = DB_ERROR;
	}
	q_end(s);
	return rc;
}

int db_secret_reserve(struct db *db, int64_t user_id, const char *kind, int64_t now, int64_t *id)
{
	static const unsigned char zero[DB_TAG_LEN];
	struct stmt *s = q_start(db, &q_reserve);
	int rc;

	q_int(s, 1, user_id);
	q_text(s, 2, kind);
	q_blob(s, 3, zero, DB_NONCE_LEN);
	q_blob(s, 4, "", 0);
	q_blob(s, 5, zero, DB_TAG_LEN);
	q_int(s, 6, now);
	rc = q_row(s);
	if (rc == DB_OK)
		*id = q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_secret_store(struct db *db, int64_t id, const char *key_id,
		    const unsigned char nonce[DB_NONCE_LEN], const unsigned char *ct, size_t len,
		    const unsigned char tag[DB_TAG_LEN], int64_t expires_at, int64_t now)
{
	struct stmt *s = q_start(db, &q_store);

	q_int(s, 1, id);
	q_text(s, 2, key_id);
	q_blob(s, 3, nonce, DB_NONCE_LEN);
	q_blob(s, 4, ct, len);
	q_blob(s, 5, tag, DB_TAG_LEN);
	if (expires_at > 0)
		q_int(s, 6, expires_at);
	q_int(s, 7, now);
	return q_one(s);
}

int db_secret_get(struct db *db, int64_t user_id, const char *kind, bool with_ciphertext,
		  struct db_secret *out)
{
	struct stmt *s = q_start(db, &q_get);

	q_int(s, 1, user_id);
	q_text(s, 2, kind);
	return secret_row(s, with_ciphertext, out);
}

int db_secret_by_id(struct db *db, int64_t id, struct db_secret *out)
{
	struct stmt *s = q_start(db, &q_by_id);

	q_int(s, 1, id);
	return secret_row(s, true, out);
}

int db_secret_by_id_locked(struct db *db, int64_t id, struct db_secret *out)
{
	struct stmt *s = q_start(db, &q_by_id_locked);

	q_int(s, 1, id);
	return secret_row(s, true, out);
}

int db_secret_list(struct db *db, int64_t user_id, db_secret_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);
	struct db_secret sec;
	int rc;

	q_int(s, 1, user_id);
	while ((rc = q_step(s)) == BE_ROW) {
		if (secret_cols(s, false, &sec) || fn(&sec, arg)) {
			rc = DB_ERROR;
			break;
		}
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_secret_delete(struct db *db, int64_t user_id, const char *kind)
{
	struct stmt *s = q_start(db, &q_delete);

	q_int(s, 1, user_id);
	q_text(s, 2, kind);
	return q_one(s);
}

int db_secret_touch(struct db *db, int64_t id, int64_t now)
{
	struct stmt *s = q_start(db, &q_touch);

	q_int(s, 1, id);
	q_int(s, 2, now);
	return q_exec(s, NULL);
}

int db_secret_set_invalid(struct db *db, int64_t user_id, const char *kind, bool invalid)
{
	struct stmt *s = q_start(db, &q_invalid);

	q_int(s, 1, user_id);
	q_text(s, 2, kind);
	q_bool(s, 3, invalid);
	return q_one(s);
}

int db_secret_ids_not_under(struct db *db, const char *key_id, int64_t after,
			    int64_t *ids, int max, int *n)
{
	struct stmt *s = q_start(db, &q_not_under);
	int rc = BE_DONE;

	*n = 0;
	q_text(s, 1, key_id);
	q_int(s, 2, after);
	q_int(s, 3, max);
	while (*n < max && (rc = q_step(s)) == BE_ROW)
		ids[(*n)++] = q_i64(s, 0);
	if (*n == max)
		rc = BE_DONE;
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_secret_count_under(struct db *db, const char *key_id, int64_t *n)
{
	struct stmt *s = q_start(db, &q_count_under);
	int rc;

	q_text(s, 1, key_id);
	rc = q_row(s);
	if (rc == DB_OK)
		*n = q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}
