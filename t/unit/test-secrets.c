/* The secret store: AES-256-GCM round trip, tampering, rows moved between
 * owners, keys missing or wrong, keyring file checks, rotation. On SQLite,
 * or on PostgreSQL when ANYON_TEST_PG_URI names a database it may wipe. */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/keyring.h"
#include "services/secrets.h"
#include "base/util.h"
#include "db/db.h"
#include "db/query.h"
#include "t/unit/tap.h"

static char dir[] = "/tmp/anyon-test-secrets-XXXXXX";
static char dbpath[256], keypath[256];

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	chmod(path, mode);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Runs SQL on a side connection (the attacker with the database). */
static int side_sql(const char *sql)
{
	char err[256];
	struct db *h = db_open(dbpath, false, err, sizeof(err));
	int rc;

	if (!h)
		return -1;
	rc = db_exec(h, sql);
	db_close(h);
	return rc == DB_OK ? 0 : -1;
}

/* Flips one bit in the middle of column col of user's github_token row
 * (twice restores it), on a side connection. */
static int flip_bit(int c, int64_t user)
{
	static const char *const cols[] = { "ciphertext", "nonce", "tag" };
	static char sel_sql[3][160], upd_sql[3][160];
	static struct query sel[3], upd[3];
	unsigned char buf[256];
	const void *b;
	size_t len = 0;
	char err[256];
	struct db *h = db_open(dbpath, false, err, sizeof(err));
	struct stmt *st;
	int rc;

	if (!h)
		return -1;
	if (!sel[c].name) {
		snprintf(sel_sql[c], sizeof(sel_sql[c]),
			 "SELECT %s FROM secrets WHERE user_id = ?1 AND kind = 'github_token'", cols[c]);
		snprintf(upd_sql[c], sizeof(upd_sql[c]),
			 "UPDATE secrets SET %s = ?2 WHERE user_id = ?1 AND kind = 'github_token'", cols[c]);
		sel[c] = (struct query)QUERY(cols[c], sel_sql[c]);
		upd[c] = (struct query)QUERY(cols[c], upd_sql[c]);
	}
	st = q_start(h, &sel[c]);
	q_int(st, 1, user);
	rc = q_row(st);
	if (rc == DB_OK) {
		b = q_blob_col(st, 0, &len);
		if (len == 0 || len > sizeof(buf))
			rc = DB_ERROR;
		else
			memcpy(buf, b, len);
	}
	q_end(st);
	if (rc == DB_OK) {
		buf[len / 2] ^= 0x04;
		st = q_start(h, &upd[c]);
		q_int(st, 1, user);
		q_blob(st, 2, buf, len);
		rc = q_one(st);
	}
	db_close(h);
	return rc == DB_OK ? 0 : -1;
}

static int get_is(struct secret_store *st, int64_t user, const char *kind, const char *want)
{
	struct secret_value v;
	int rc = secret_get(st, user, kind, 0, &v), same;

	if (rc != SECRET_OK)
		return rc;
	same = v.len == strlen(want) && memcmp(v.data, want, v.len) == 0;
	secret_value_release(&v);
	return same ? SECRET_OK : 99;
}

static void crypto_tests(void)
{
	unsigned char key[32], key2[32], nonce[12], nonce2[12], tag[16], ct[64], pt[64];
	const char *msg = "gho_0123456789abcdefghijklmnopqrstuvwxyz";
	size_t len = strlen(msg);
	unsigned char ct2[64], tag2[16];

	rand_bytes(key, 32);
	rand_bytes(key2, 32);
	ok(aead_seal(key, "ad", 2, msg, len, nonce, ct, tag) == 0, "seal");
	ok(memcmp(ct, msg, len) != 0, "ciphertext differs from plaintext");
	ok(aead_open(key, "ad", 2, nonce, ct, len, tag, pt) == 0 && memcmp(pt, msg, len) == 0, "open");
	ok(aead_seal(key, "ad", 2, msg, len, nonce2, ct2, tag2) == 0 && memcmp(nonce, nonce2, 12) != 0 &&
	   memcmp(ct, ct2, len) != 0, "a fresh nonce each time: same input, other ciphertext");
	ct[3] ^= 1;
	memset(pt, 'X', sizeof(pt));
	ok(aead_open(key, "ad", 2, nonce, ct, len, tag, pt) != 0, "flipped ciphertext bit refused");
	ok(pt[0] == 0 && pt[len - 1] == 0, "nothing returned on failure (buffer wiped)");
	ct[3] ^= 1;
	nonce[0] ^= 0x80;
	ok(aead_open(key, "ad", 2, nonce, ct, len, tag, pt) != 0, "flipped nonce bit refused");
	nonce[0] ^= 0x80;
	tag[15] ^= 1;
	ok(aead_open(key, "ad", 2, nonce, ct, len, tag, pt) != 0, "flipped tag bit refused");
	tag[15] ^= 1;
	ok(aead_open(key, "aD", 2, nonce, ct, len, tag, pt) != 0, "other AAD refused");
	ok(aead_open(key2, "ad", 2, nonce, ct, len, tag, pt) != 0, "wrong key refused");
	ok(aead_open(key, "ad", 2, nonce, ct, len, tag, pt) == 0, "intact still opens");
}

static void keyring_tests(void)
{
	struct keyring kr = { 0 };
	char err[600], path[300];

	ok(keyring_create(keypath, err, sizeof(err)) == 0, "create keyring");
	ok(keyring_create(keypath, err, sizeof(err)) != 0, "create refuses to overwrite");
	ok(keyring_load(&kr, keypath, err, sizeof(err)) == 0 && kr.n == 1 && keyring_active(&kr),
	   "load: one active key");
	chmod(keypath, 0644);
	ok(keyring_load(&kr, keypath, err, sizeof(err)) != 0 && strstr(err, "group or others"),
	   "mode 0644 refused with a clear message: %s", err);
	chmod(keypath, 0640);
	ok(keyring_load(&kr, keypath, err, sizeof(err)) != 0, "mode 0640 refused");
	chmod(keypath, 0600);

	/* A FIFO at the path: refused at once, not a hang (the alarm fails
	 * the test if the open blocks). */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ok(mkfifo(path, 0600) == 0, "a FIFO where the keyring should be");
	alarm(10);
	ok(keyring_load(&kr, path, err, sizeof(err)) != 0 && strstr(err, "not a regular file"),
	   "FIFO refused without waiting for a writer: %s", err);
	alarm(0);

	/* chmod 644 on a keyring in use: the next refresh drops every key;
	 * chmod 600 brings them back. */
	ok(keyring_load(&kr, keypath, err, sizeof(err)) == 0 && keyring_find(&kr, "k1"), "loaded");
	ok(keyring_refresh(&kr) == 0 && kr.n == 1, "refresh of an unchanged safe file keeps the keys");
	chmod(keypath, 0644);
	ok(keyring_refresh(&kr) != 0 && kr.n == 0 && !keyring_active(&kr),
	   "after chmod 644 a refresh drops every key");
	ok(keyring_find_fresh(&kr, "k1") == NULL, "... and no key is found");
	chmod(keypath, 0600);
	ok(keyring_find_fresh(&kr, "k1") != NULL && keyring_active(&kr),
	   "after chmod 600 the keys are read again");
	snprintf(path, sizeof(path), "%s/missing", dir);
	ok(keyring_load(&kr, path, err, sizeof(err)) != 0 && strstr(err, "init-keys"),
	   "missing file: error says how to create one");
	snprintf(path, sizeof(path), "%s/bad", dir);
	write_file(path, "key k1 abcd active\n", 0600);
	ok(keyring_load(&kr, path, err, sizeof(err)) != 0, "short key refused");
	write_file(path, "key k1 0000000000000000000000000000000000000000000000000000000000000000\n", 0600);
	ok(keyring_load(&kr, path, err, sizeof(err)) != 0 && strstr(err, "active"), "no active key refused");
	write_file(path, "key k1 0000000000000000000000000000000000000000000000000000000000000000 active\n"
		   "key k2 1100000000000000000000000000000000000000000000000000000000000000 active\n", 0600);
	ok(keyring_load(&kr, path, err, sizeof(err)) != 0, "two active keys refused");
	write_file(path, "key k1 0000000000000000000000000000000000000000000000000000000000000000 active\n"
		   "key k1 1100000000000000000000000000000000000000000000000000000000000000\n", 0600);
	ok(keyring_load(&kr, path, err, sizeof(err)) != 0, "duplicate id refused");
	keyring_wipe(&kr);
}

int main(void)
{
	struct secret_store st;
	struct keyring kr = { 0 }, kr_other = { 0 };
	struct db_user u1, u2;
	struct db_secret meta;
	struct secret_value v;
	char err[600], other[300], sql[512];
	int64_t id_a, id_b, n;
	struct db *db;
	int rotated;

	const char *pg = getenv("ANYON_TEST_PG_URI"), *backend = getenv("ANYON_TEST_BACKEND");

	ok(mkdtemp(dir) != NULL, "scratch dir");
	if (backend && strcmp(backend, "pg") == 0 && !(pg && *pg))
		BAIL_OUT("ANYON_TEST_BACKEND=pg but ANYON_TEST_PG_URI is not set");
	if (pg && *pg) {
		snprintf(dbpath, sizeof(dbpath), "%s", pg);
		ok(side_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;") == 0,
		   "PostgreSQL test database wiped");
	} else {
		snprintf(dbpath, sizeof(dbpath), "%s/t.db", dir);
	}
	diag("backend: %s", pg && *pg ? "postgresql" : "sqlite");
	snprintf(keypath, sizeof(keypath), "%s/keyring", dir);
	crypto_tests();
	keyring_tests();

	db = db_open(dbpath, true, err, sizeof(err));
	ok(db && keyring_load(&kr, keypath, err, sizeof(err)) == 0, "database and keyring");
	st.db = db;
	st.kr = &kr;
	ok(db_user_local(db, &u1) == DB_OK && db_user_create(db, "octocat", "", now_s(), &u2) == DB_OK,
	   "two users");

	ok(secret_put(&st, u1.id, "github_token", "gho_AAAA", 8, 0, 0) == SECRET_OK, "put");
	is_int(get_is(&st, u1.id, "github_token", "gho_AAAA"), SECRET_OK, "get returns the value");
	ok(secret_put(&st, u1.id, "github_token", "gho_BBBB", 8, 12345, 0) == SECRET_OK, "replace");
	is_int(get_is(&st, u1.id, "github_token", "gho_BBBB"), SECRET_OK, "get returns the new value");
	ok(secret_meta(&st, u1.id, "github_token", &meta) == SECRET_OK && meta.expires_at == 12345 &&
	   meta.last_used_at > 0 && meta.ciphertext == NULL && strcmp(meta.key_id, "k1") == 0,
	   "metadata without decrypting: expiry, last use, key id");
	ok(secret_put(&st, u2.id, "github_token", "gho_CCCC", 8, 0, 0) == SECRET_OK &&
	   secret_put(&st, u1.id, "anthropic_api_key", "sk-ant-DDDD", 11, 0, 0) == SECRET_OK, "more rows");
	ok(secret_put(&st, u1.id, "nonsense", "x", 1, 0, 0) == SECRET_ERROR, "unknown kind refused");
	is_int(secret_get(&st, u2.id, "anthropic_api_key", 0, &v), SECRET_NOTFOUND, "absent is not found");

	/* Tampering through the database file: flip one bit of each stored part. */
	{
		const char *cols[] = { "ciphertext", "nonce", "tag" };

		for (int c = 0; c < 3; c++) {
			ok(flip_bit(c, u1.id) == 0, "flip a bit of the %s on a side connection", cols[c]);
			memset(&v, 0, sizeof(v));
			is_int(secret_get(&st, u1.id, "github_token", 0, &v), SECRET_UNREADABLE,
			       "a flipped bit in the %s: refused", cols[c]);
			ok(v.data == NULL, "... and nothing returned");
			ok(flip_bit(c, u1.id) == 0, "flip it back");
			is_int(get_is(&st, u1.id, "github_token", "gho_BBBB"), SECRET_OK, "restored %s opens again", cols[c]);
		}
	}

	/* Move user 2's ciphertext onto user 1's row, and onto another kind. */
	db_secret_get(db, u1.id, "github_token", false, &meta);
	id_a = meta.id;
	db_secret_get(db, u2.id, "github_token", false, &meta);
	id_b = meta.id;
	snprintf(sql, sizeof(sql), "UPDATE secrets SET (nonce, ciphertext, tag, key_id) = "
		 "(SELECT nonce, ciphertext, tag, key_id FROM secrets WHERE id = %lld) WHERE id = %lld",
		 (long long)id_b, (long long)id_a);
	ok(side_sql(sql) == 0, "copy user 2's ciphertext into user 1's row");
	is_int(secret_get(&st, u1.id, "github_token", 0, &v), SECRET_UNREADABLE,
	       "a ciphertext moved to another user's row does not open");
	snprintf(sql, sizeof(sql), "UPDATE secrets SET (nonce, ciphertext, tag, key_id) = "
		 "(SELECT nonce, ciphertext, tag, key_id FROM secrets WHERE id = %lld) "
		 "WHERE user_id = %lld AND kind = 'anthropic_api_key'", (long long)id_a, (long long)u1.id);
	side_sql(sql);
	is_int(secret_get(&st, u1.id, "anthropic_api_key", 0, &v), SECRET_UNREADABLE,
	       "a ciphertext moved to another kind does not open");
	ok(side_sql("INSERT INTO users (id, login, created_at, updated_at) VALUES (101, 'mallory', 0, 0)") == 0 &&
	   side_sql("UPDATE secrets SET user_id = 101 WHERE kind = 'github_token' AND user_id = 2") == 0,
	   "reassign user 2's row to another user");
	is_int(secret_get(&st, 101, "github_token", 0, &v), SECRET_UNREADABLE,
	       "a row handed to another user does not open");

	/* Reset to known values. */
	ok(secret_put(&st, u1.id, "github_token", "gho_EEEE", 8, 0, 0) == SECRET_OK &&
	   secret_put(&st, u1.id, "anthropic_api_key", "sk-ant-FFFF", 11, 0, 0) == SECRET_OK &&
	   secret_put(&st, u2.id, "github_token", "gho_GGGG", 8, 0, 0) == SECRET_OK, "fresh values");

	/* A keyring that lacks the key, or has another key under the same id. */
	snprintf(other, sizeof(other), "%s/other-keyring", dir);
	ok(keyring_create(other, err, sizeof(err)) == 0 && keyring_load(&kr_other, other, err, sizeof(err)) == 0,
	   "another keyring with its own k1");
	st.kr = &kr_other;
	is_int(secret_get(&st, u1.id, "github_token", 0, &v), SECRET_UNREADABLE, "wrong key (same id): refused");
	{
		struct keyring lacking = { 0 };
		char lpath[300];

		snprintf(lpath, sizeof(lpath), "%s/lacking", dir);
		write_file(lpath, "key k7 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff active\n", 0600);
		ok(keyring_load(&lacking, lpath, err, sizeof(err)) == 0, "a keyring without k1");
		st.kr = &lacking;
		memset(&v, 0, sizeof(v));
		is_int(secret_get(&st, u1.id, "github_token", 0, &v), SECRET_UNREADABLE,
		       "missing key: refused, nothing returned");
		ok(v.data == NULL, "... no plaintext handed out");
		keyring_wipe(&lacking);
	}
	st.kr = &kr;

	/* Rotation. */
	ok(keyring_add_active(&kr, err, sizeof(err)) == 0 && strcmp(keyring_active(&kr)->id, "k2") == 0,
	   "new active key k2");
	is_int(get_is(&st, u1.id, "github_token", "gho_EEEE"), SECRET_OK, "rows under k1 still open before rotation");
	ok(secret_rotate(&st, 1, &rotated) == SECRET_UNREADABLE && rotated == 3,
	   "rotation re-seals the 3 good rows and reports the tampered one");
	ok(db_secret_count_under(db, "k1", &n) == DB_OK && n == 1, "only the tampered row is left under k1");
	ok(secret_delete(&st, 101, "github_token", 0) == SECRET_OK, "drop the tampered row");
	ok(db_secret_count_under(db, "k1", &n) == DB_OK && n == 0, "no row left under k1");
	is_int(get_is(&st, u1.id, "github_token", "gho_EEEE"), SECRET_OK, "value 1 intact");
	is_int(get_is(&st, u1.id, "anthropic_api_key", "sk-ant-FFFF"), SECRET_OK, "value 2 intact");
	is_int(get_is(&st, u2.id, "github_token", "gho_GGGG"), SECRET_OK, "value 3 intact");
	ok(secret_rotate(&st, 1, &rotated) == SECRET_OK && rotated == 0, "rotating again does nothing");
	ok(keyring_remove(&kr, "k2", err, sizeof(err)) != 0, "the active key cannot be removed");
	ok(keyring_remove(&kr, "k1", err, sizeof(err)) == 0 && kr.n == 1, "k1 removed");
	{
		struct keyring again = { 0 };

		ok(keyring_load(&again, keypath, err, sizeof(err)) == 0 && again.n == 1 &&
		   strcmp(keyring_active(&again)->id, "k2") == 0, "the saved file has only k2, active");
		keyring_wipe(&again);
	}
	ok(keyring_remove(&kr, "k1", err, sizeof(err)) != 0, "removing an unknown key fails");

	ok(secret_delete(&st, u1.id, "github_token", 0) == SECRET_OK, "delete");
	is_int(secret_get(&st, u1.id, "github_token", 0, &v), SECRET_NOTFOUND, "deleted is gone");
	is_int(secret_delete(&st, u1.id, "github_token", 0), SECRET_NOTFOUND, "deleting again: not found");

	keyring_wipe(&kr);
	keyring_wipe(&kr_other);
	db_close(db);
	snprintf(sql, sizeof(sql), "rm -rf %s", dir);
	ok(system(sql) == 0, "cleanup");
	return done_testing();
}
