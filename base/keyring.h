/* keyring.h - the keys that seal secrets. They never enter the database.
 *
 * The keyring is a text file, mode 0600, one key a line:
 *     key k2 <64 hex digits> active
 *     key k1 <64 hex digits>
 * Exactly one key is active: it seals new secrets; the others still open
 * the rows they sealed until a rotation moves those rows to the active key.
 * Saving keeps the replaced file's owner (see keyring_add_active()).
 * Where the file is: $ANYON_KEY_FILE, else
 * $CREDENTIALS_DIRECTORY/anyon-keyring (systemd LoadCredential=), else
 * $ANYON_DATA_DIR/keyring. */
#ifndef ANYON_KEYRING_H
#define ANYON_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "base/config.h"
#include "base/crypto.h"

#define KEYRING_MAX 16
#define KEY_ID_MAX 16

struct key {
	char id[KEY_ID_MAX];                /* "k1", "k2", ... */
	unsigned char bytes[AEAD_KEY_LEN];  /* wiped by keyring_wipe() */
	bool active;
};

struct keyring {
	char path[CONFIG_PATH_MAX];
	int n;
	struct key keys[KEYRING_MAX];
	/* identity of the file as last read, to notice another process's rotation */
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
};

/* Resolves the keyring's path from the environment and g_config. */
void keyring_path(char *out, size_t len);

/* Reads the keyring at path into kr. Refuses (-1, reason in err) a missing
 * file, one that is not a regular file, one readable or writable by group
 * or others, and a malformed one. Group bits are accepted only with a
 * POSIX ACL whose entries grant nobody but this process's user (systemd's
 * credentials: root's 0400 file plus "user:SERVICE:r" shows as 0440). */
int keyring_load(struct keyring *kr, const char *path, char *err, size_t errlen);

/* keyring_load() of keyring_path(), dying with a clear message on failure.
 * For start-up of the programs. */
void keyring_load_or_die(struct keyring *kr);

/* Re-reads the file when it changed since the last read (a rotation by
 * anyonctl). Returns 0, or -1 when the new file is unusable (kr is then
 * left as it was) or missing. A file that is no longer a regular file of
 * mode 0600 (e.g. chmod 644) empties kr: every key is wiped and an error
 * logged, so nothing is sealed or opened with keys others may have read;
 * the keys come back at the first refresh after the mode is fixed. */
int keyring_refresh(struct keyring *kr);

const struct key *keyring_active(const struct keyring *kr);
const struct key *keyring_find(const struct keyring *kr, const char *id);
/* keyring_find() after keyring_refresh() (one lstat() when nothing
 * changed): another process may have rotated since, or the file's mode
 * may have become unsafe. */
const struct key *keyring_find_fresh(struct keyring *kr, const char *id);

/* Creates a new keyring file with one active key. Refuses when the file
 * exists. */
int keyring_create(const char *path, char *err, size_t errlen);

/* Adds a fresh random key, makes it the active one and saves the file
 * atomically (temp file, fsync, rename). The new id goes to kr. */
int keyring_add_active(struct keyring *kr, char *err, size_t errlen);

/* Drops key id (never the active one) and saves atomically. */
int keyring_remove(struct keyring *kr, const char *id, char *err, size_t errlen);

/* Wipes every key from memory. */
void keyring_wipe(struct keyring *kr);

#endif
