/* secrets.h - the secret store: AES-256-GCM at rest, bound to its row.
 *
 * Each secret is one row per (user, kind), sealed under the keyring's
 * active key with a fresh nonce. The AAD is "anyon:v1:<user>:<kind>:<row>",
 * so a ciphertext copied to another row, kind or user does not open.
 * Every put, use, delete and rotation writes an audit event. Plaintext is
 * handed out in a struct secret_value the caller must release with
 * secret_value_release(), which wipes it (the struct itself is the
 * caller's). */
#ifndef ANYON_SECRETS_H
#define ANYON_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/keyring.h"
#include "db/db.h"

enum secret_rc {
	SECRET_UNREADABLE = -2,   /* row exists but does not open (key, tampering) */
	SECRET_ERROR = -1,        /* database or crypto failure */
	SECRET_OK = 0,
	SECRET_NOTFOUND = 1,
};

struct secret_store {
	struct db *db;            /* borrowed */
	struct keyring *kr;       /* borrowed */
};

struct secret_value {
	unsigned char *data;      /* owned; NUL-terminated for convenience */
	size_t len;
};

/* The kinds anyon keeps; any other kind is refused. */
bool secret_kind_ok(const char *kind);
/* The i-th secret kind, NULL past the last (for GET /api/meta). */
const char *secret_kind_at(size_t i);
/* Whether a user may store the kind by hand (PUT /api/secrets/{kind});
 * the others come from sign-in flows. */
bool secret_kind_settable(const char *kind);

/* Stores (or replaces) the secret of kind for user. expires_at 0: none. */
int secret_put(struct secret_store *st, int64_t user_id, const char *kind,
	       const void *value, size_t len, int64_t expires_at, int64_t session_id);

/* secret_put(), also filling meta (when not NULL) with the stored row's
 * metadata, read in the same transaction as the store. */
int secret_put_meta(struct secret_store *st, int64_t user_id, const char *kind,
		    const void *value, size_t len, int64_t expires_at, int64_t session_id,
		    struct db_secret *meta);

/* Decrypts the secret into out. Marks it used. */
int secret_get(struct secret_store *st, int64_t user_id, const char *kind,
	       int64_t session_id, struct secret_value *out);

int secret_delete(struct secret_store *st, int64_t user_id, const char *kind, int64_t session_id);

/* Metadata only (no decryption, no ciphertext). */
int secret_meta(struct secret_store *st, int64_t user_id, const char *kind, struct db_secret *out);

/* Re-seals every row not under the active key, batch rows per transaction.
 * Safe to interrupt at any point and to run again. *rotated counts rows. */
int secret_rotate(struct secret_store *st, int batch, int *rotated);

/* Opens every sealed row once (nothing is marked used or audited) and
 * counts those that do not open: after copying a database, proof that
 * ids, users and kinds came across intact. */
int secret_verify_all(struct secret_store *st, int64_t *checked, int64_t *bad);

void secret_value_release(struct secret_value *v);

#endif
