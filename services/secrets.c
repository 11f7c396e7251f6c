#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "services/audit.h"
#include "base/crypto.h"
#include "base/log.h"
#include "services/secrets.h"
#include "base/util.h"

#define ROTATE_BATCH_MAX 1000

static const char *const kinds[] = {
	"anthropic_api_key",
	"claude_credential",
	"github_pat",
	"github_refresh_token",
	"github_token",
};

/* Kinds a user may set by hand; the others come from sign-in flows. */
static const char *const settable_kinds[] = {
	"anthropic_api_key",
	"claude_credential",    /* an Anthropic API key or a Claude OAuth token (attempts) */
	"github_pat",
};

const char *secret_kind_at(size_t i)
{
	return i < ARRAY_SIZE(kinds) ? kinds[i] : NULL;
}

bool secret_kind_settable(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(settable_kinds); i++)
		if (strcmp(settable_kinds[i], kind) == 0)
			return true;
	return false;
}

bool secret_kind_ok(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i], kind) == 0)
			return true;
	return false;
}

static int aad(char *buf, size_t len, int64_t user_id, const char *kind, int64_t id)
{
	return snprintf(buf, len, "anyon:v1:%lld:%s:%lld", (long long)user_id, kind, (long long)id);
}

void secret_value_release(struct secret_value *v)
{
	if (v->data) {
		OPENSSL_cleanse(v->data, v->len);
		free(v->data);
	}
	v->data = NULL;
	v->len = 0;
}

/* Seals value into row id under the active key; caller holds a write tx. */
static int seal_into(struct secret_store *st, int64_t id, int64_t user_id, const char *kind,
		     const void *value, size_t len, int64_t expires_at)
{
	const struct key *k = keyring_active(st->kr);
	unsigned char nonce[AEAD_NONCE_LEN], tag[AEAD_TAG_LEN], *ct;
	char ad[128];
	int rc;

	if (!k || len > AEAD_MAX_PLAINTEXT)
		return SECRET_ERROR;
	ct = malloc(len ? len : 1);
	if (!ct)
		return SECRET_ERROR;
	aad(ad, sizeof(ad), user_id, kind, id);
	rc = aead_seal(k->bytes, ad, strlen(ad), value, len, nonce, ct, tag) ? SECRET_ERROR :
	     db_secret_store(st->db, id, k->id, nonce, ct, len, tag, expires_at, now_s()) ? SECRET_ERROR :
	     SECRET_OK;
	free(ct);
	return rc;
}

/* Opens a row into out. */
static int open_row(struct secret_store *st, const struct db_secret *row, struct secret_value *out)
{
	const struct key *k = keyring_find_fresh(st->kr, row->key_id);
	char ad[128];

	if (!k) {
		log_error("secret %lld is sealed by key '%s', which is not in the keyring",
			  (long long)row->id, row->key_id);
		return SECRET_UNREADABLE;
	}
	out->data = malloc(row->ct_len + 1);
	if (!out->data)
		return SECRET_ERROR;
	aad(ad, sizeof(ad), row->user_id, row->kind, row->id);
	if (aead_open(k->bytes, ad, strlen(ad), row->nonce, row->ciphertext, row->ct_len,
		      row->tag, out->data)) {
		free(out->data);
		out->data = NULL;
		log_error("secret %lld (%s) failed authentication: tampered, moved or wrong key",
			  (long long)row->id, row->kind);
		return SECRET_UNREADABLE;
	}
	out->data[row->ct_len] = '\0';
	out->len = row->ct_len;
	return SECRET_OK;
}

int secret_put(struct secret_store *st, int64_t user_id, const char *kind,
	       const void *value, size_t len, int64_t expires_at, int64_t session_id)
{
	return secret_put_meta(st, user_id, kind, value, len, expires_at, session_id, NULL);
}

int secret_put_meta(struct secret_store *st, int64_t user_id, const char *kind,
		    const void *value, size_t len, int64_t expires_at, int64_t session_id,
		    struct db_secret *meta)
{
	int64_t id;
	int rc;

	if (meta)
		memset(meta, 0, sizeof(*meta));
	if (!secret_kind_ok(kind) || len > AEAD_MAX_PLAINTEXT)
		return SECRET_ERROR;
	keyring_refresh(st->kr);   /* seal under the newest active key */
	/* Reserve is an upsert: on PostgreSQL it locks the row until commit,
	 * so a concurrent put or re-seal of it waits for this one. */
	if (db_begin_write(st->db))
		return SECRET_ERROR;
	rc = db_secret_reserve(st->db, user_id, kind, now_s(), &id) ? SECRET_ERROR :
	     seal_into(st, id, user_id, kind, value, len, expires_at);
	/* Read back inside the transaction: a concurrent delete cannot come
	 * between the store and what the caller is told was stored. */
	if (rc == SECRET_OK && meta && db_secret_get(st->db, user_id, kind, false, meta) != DB_OK)
		rc = SECRET_ERROR;
	if (rc == SECRET_OK) {
		audit_event(st->db, user_id, session_id, "secret.stored", "ok", "kind=%s key=%s",
			    kind, keyring_active(st->kr)->id);
		if (db_commit(st->db))
			rc = SECRET_ERROR;
	}
	if (rc != SECRET_OK) {
		db_rollback(st->db);
		audit_event(st->db, user_id, session_id, "secret.stored", "error", "kind=%s", kind);
	}
	return rc;
}

int secret_get(struct secret_store *st, int64_t user_id, const char *kind,
	       int64_t session_id, struct secret_value *out)
{
	struct db_secret row;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = db_secret_get(st->db, user_id, kind, true, &row);
	if (rc == DB_NOTFOUND)
		return SECRET_NOTFOUND;
	if (rc != DB_OK)
		return SECRET_ERROR;
	rc = open_row(st, &row, out);
	if (rc == SECRET_OK)
		db_secret_touch(st->db, row.id, now_s());
	audit_event(st->db, user_id, session_id, "secret.used", rc == SECRET_OK ? "ok" : "error",
		    "kind=%s key=%s%s", kind, row.key_id, rc == SECRET_OK ? "" : " (does not decrypt)");
	db_secret_release(&row);
	return rc;
}

int secret_delete(struct secret_store *st, int64_t user_id, const char *kind, int64_t session_id)
{
	int rc = db_secret_delete(st->db, user_id, kind);

	if (rc == DB_NOTFOUND)
		return SECRET_NOTFOUND;
	audit_event(st->db, user_id, session_id, "secret.deleted", rc == DB_OK ? "ok" : "error",
		    "kind=%s", kind);
	return rc == DB_OK ? SECRET_OK : SECRET_ERROR;
}

int secret_meta(struct secret_store *st, int64_t user_id, const char *kind, struct db_secret *out)
{
	int rc = db_secret_get(st->db, user_id, kind, false, out);

	return rc == DB_OK ? SECRET_OK : rc == DB_NOTFOUND ? SECRET_NOTFOUND : SECRET_ERROR;
}

/* Re-seals one row under the active key; caller holds a write tx. The
 * read locks the row (SQLite: the transaction's write lock; PostgreSQL:
 * FOR UPDATE), so a secret_put() of the same row waits and is not
 * overwritten with the value read here. */
static int reseal(struct secret_store *st, int64_t id)
{
	struct secret_value v = { 0 };
	struct db_secret row;
	char from[DB_KEY_ID_MAX];
	int rc;

	rc = db_secret_by_id_locked(st->db, id, &row);
	if (rc == DB_NOTFOUND)
		return SECRET_OK;   /* deleted meanwhile */
	if (rc != DB_OK)
		return SECRET_ERROR;
	str_copy(from, sizeof(from), row.key_id);
	rc = open_row(st, &row, &v);
	if (rc == SECRET_OK)
		rc = seal_into(st, row.id, row.user_id, row.kind, v.data, v.len, row.expires_at);
	if (rc == SECRET_OK)
		audit_event(st->db, row.user_id, 0, "secret.rotated", "ok", "kind=%s key=%s->%s",
			    row.kind, from, keyring_active(st->kr)->id);
	secret_value_release(&v);
	db_secret_release(&row);
	return rc;
}

int secret_rotate(struct secret_store *st, int batch, int *rotated)
{
	int64_t ids[ROTATE_BATCH_MAX], after = 0;
	const struct key *active;
	int n, failed = 0;

	*rotated = 0;
	if (batch < 1 || batch > ROTATE_BATCH_MAX)
		batch = 100;
	active = keyring_active(st->kr);
	if (!active)
		return SECRET_ERROR;
	for (;;) {
		if (db_begin_write(st->db))
			return SECRET_ERROR;
		if (db_secret_ids_not_under(st->db, active->id, after, ids, batch, &n)) {
			db_rollback(st->db);
			return SECRET_ERROR;
		}
		if (n == 0) {
			db_rollback(st->db);
			break;
		}
		for (int i = 0; i < n; i++) {
			int rc = reseal(st, ids[i]);

			if (rc == SECRET_UNREADABLE) {
				/* Leave it as it is and say so; the rest still rotate. */
				failed++;
				continue;
			}
			if (rc != SECRET_OK) {
				db_rollback(st->db);
				return SECRET_ERROR;
			}
			(*rotated)++;
		}
		after = ids[n - 1];
		if (db_commit(st->db)) {
			db_rollback(st->db);
			return SECRET_ERROR;
		}
	}
	return failed ? SECRET_UNREADABLE : SECRET_OK;
}

int secret_verify_all(struct secret_store *st, int64_t *checked, int64_t *bad)
{
	int64_t ids[ROTATE_BATCH_MAX], after = 0;
	int n;

	*checked = *bad = 0;
	for (;;) {
		/* Rows under any key but "" (none has that id): every sealed row. */
		if (db_secret_ids_not_under(st->db, "", after, ids, ROTATE_BATCH_MAX, &n))
			return SECRET_ERROR;
		if (n == 0)
			return *bad ? SECRET_UNREADABLE : SECRET_OK;
		for (int i = 0; i < n; i++) {
			struct db_secret row;
			struct secret_value v;

			if (db_secret_by_id(st->db, ids[i], &row) != DB_OK)
				return SECRET_ERROR;
			if (open_row(st, &row, &v) == SECRET_OK)
				secret_value_release(&v);
			else
				(*bad)++;
			(*checked)++;
			db_secret_release(&row);
		}
		after = ids[n - 1];
	}
}
