#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/keyring.h"
#include "base/log.h"
#include "base/util.h"

#define KEYRING_MAX_BYTES (16 * 1024)
#define KEYRING_HEADER "# anyon keyring v1: AES-256 keys. Keep this file secret (mode 0600);\n" \
	"# losing it makes every stored secret unreadable. See docs/SECURITY.md.\n"

void keyring_path(char *out, size_t len)
{
	const char *env = getenv("ANYON_KEY_FILE"), *cred = getenv("CREDENTIALS_DIRECTORY");
	char path[CONFIG_PATH_MAX + 32];
	struct stat st;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	if (cred && *cred) {
		snprintf(path, sizeof(path), "%s/anyon-keyring", cred);
		if (stat(path, &st) == 0) {
			snprintf(out, len, "%s", path);
			return;
		}
	}
	snprintf(out, len, "%s/keyring", g_config.data_dir);
}

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* A POSIX ACL as Linux keeps it in the system.posix_acl_access extended
 * attribute (<linux/posix_acl_xattr.h>): a 4-byte version, 2, then 8-byte
 * entries: tag (2 bytes), permissions (2), id (4), little-endian. With an
 * ACL the mode's group bits are the ACL's mask. */
#define ACL_XATTR "system.posix_acl_access"
#define ACL_XATTR_VERSION 2
#define ACL_ENTRY_LEN 8
#define ACL_MAX_BYTES (4 + 64 * ACL_ENTRY_LEN)
enum { ACL_TAG_USER_OBJ = 0x01, ACL_TAG_USER = 0x02, ACL_TAG_GROUP_OBJ = 0x04, ACL_TAG_GROUP = 0x08,
       ACL_TAG_MASK = 0x10, ACL_TAG_OTHER = 0x20 };

static unsigned le16(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Whether the keyring file is private: nothing for others, and nothing
 * for its group unless an ACL explains the group bits with entries that
 * grant only this process's user. That is how systemd 254 and later hand
 * a credential to a service (root's file, mode 0400, plus "user:SERVICE:r",
 * so the mode shows 0440). fd is the open file, or -1 to read path.
 * Returns 0, or -1 with the reason in why. */
static int file_private(const struct stat *st, int fd, const char *path, char *why, size_t len)
{
	unsigned char acl[ACL_MAX_BYTES];
	unsigned mask = 07;
	ssize_t n;

	if (st->st_mode & 007) {
		snprintf(why, len, "mode %03o", (unsigned)(st->st_mode & 0777));
		return -1;
	}
	if (!(st->st_mode & 070))
		return 0;
	n = fd >= 0 ? fgetxattr(fd, ACL_XATTR, acl, sizeof(acl)) : lgetxattr(path, ACL_XATTR, acl, sizeof(acl));
	if (n < 0 || n < 4 || (n - 4) % ACL_ENTRY_LEN || le32(acl) != ACL_XATTR_VERSION) {
		snprintf(why, len, "mode %03o", (unsigned)(st->st_mode & 0777));
		return -1;
	}
	for (ssize_t i = 4; i < n; i += ACL_ENTRY_LEN)
		if (le16(acl + i) == ACL_TAG_MASK)
			mask = le16(acl + i + 2) & 07;
	for (ssize_t i = 4; i < n; i += ACL_ENTRY_LEN) {
		unsigned tag = le16(acl + i), perm = le16(acl + i + 2) & mask;
		uint32_t id = le32(acl + i + 4);

		if (!perm)
			continue;
		if (tag == ACL_TAG_GROUP_OBJ || tag == ACL_TAG_GROUP ||
		    (tag == ACL_TAG_USER && id != (uint32_t)geteuid())) {
			snprintf(why, len, "mode %03o: its ACL lets %s %u in", (unsigned)(st->st_mode & 0777),
				 tag == ACL_TAG_USER ? "user" : "group",
				 tag == ACL_TAG_GROUP_OBJ ? (unsigned)st->st_gid : (unsigned)id);
			return -1;
		}
	}
	return 0;
}

/* Parses the file's text into kr->keys. buf is NUL-terminated and modified. */
static int parse(struct keyring *kr, char *buf, char *err, size_t errlen)
{
	int lineno = 0, active = 0;
	char *save = NULL;

	kr->n = 0;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok_save = NULL, *word, *id, *hex, *flag;
		struct key *k;

		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		word = strtok_r(line, " \t\r", &tok_save);
		id = strtok_r(NULL, " \t\r", &tok_save);
		hex = strtok_r(NULL, " \t\r", &tok_save);
		flag = strtok_r(NULL, " \t\r", &tok_save);
		if (!word || strcmp(word, "key") || !id || !hex ||
		    (flag && strcmp(flag, "active")) || strtok_r(NULL, " \t\r", &tok_save)) {
			snprintf(err, errlen, "line %d is not 'key ID HEX [active]'", lineno);
			return -1;
		}
		if (!id_ok(id)) {
			snprintf(err, errlen, "line %d: bad key id", lineno);
			return -1;
		}
		if (keyring_find(kr, id)) {
			snprintf(err, errlen, "line %d: key id '%s' appears twice", lineno, id);
			return -1;
		}
		if (kr->n == KEYRING_MAX) {
			snprintf(err, errlen, "more than %d keys", KEYRING_MAX);
			return -1;
		}
		k = &kr->keys[kr->n];
		if (hex_decode(hex, k->bytes, AEAD_KEY_LEN)) {
			OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
			snprintf(err, errlen, "line %d: a key must be 64 hex digits", lineno);
			return -1;
		}
		str_copy(k->id, sizeof(k->id), id);
		k->active = flag != NULL;
		active += k->active;
		kr->n++;
	}
	if (kr->n == 0 || active != 1) {
		snprintf(err, errlen, kr->n ? "exactly one key must be marked active" : "no keys");
		return -1;
	}
	return 0;
}

int keyring_load(struct keyring *kr, const char *path, char *err, size_t errlen)
{
	struct keyring tmp;
	struct stat st;
	char *buf = NULL, why[96];
	ssize_t got;
	int fd, ret = -1;

	memset(&tmp, 0, sizeof(tmp));
	if (!str_copy(tmp.path, sizeof(tmp.path), path)) {
		snprintf(err, errlen, "keyring path too long");
		return -1;
	}
	/* O_NONBLOCK: a FIFO (or a device) at the path must not hang the
	 * open; fstat() below then refuses anything but a regular file. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open keyring '%s': %s%s", path, strerror(errno),
			 errno == ENOENT ? " (a new installation creates one with: anyonctl init-keys; an "
			 "existing one's keyring is ANYON_KEY_FILE of its settings, " CONFIG_ENV_FILE ")" : "");
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "keyring '%s' is not a regular file", path);
		goto out;
	}
	if (file_private(&st, fd, path, why, sizeof(why))) {
		snprintf(err, errlen, "keyring '%s' is accessible by group or others (%s); refusing to "
			 "use it: chmod 600 it (setfacl -b drops an ACL)", path, why);
		goto out;
	}
	if (st.st_size > KEYRING_MAX_BYTES) {
		snprintf(err, errlen, "keyring '%s' is too large", path);
		goto out;
	}
	buf = calloc(1, (size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	got = read(fd, buf, (size_t)st.st_size);
	if (got != st.st_size) {
		snprintf(err, errlen, "cannot read keyring '%s'", path);
		goto out;
	}
	if (parse(&tmp, buf, err, errlen))
		goto out;
	tmp.dev = st.st_dev;
	tmp.ino = st.st_ino;
	tmp.mtime = st.st_mtim;
	tmp.size = st.st_size;
	keyring_wipe(kr);
	*kr = tmp;
	ret = 0;
out:
	if (buf) {
		OPENSSL_cleanse(buf, (size_t)st.st_size);
		free(buf);
	}
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	close(fd);
	return ret;
}

void keyring_load_or_die(struct keyring *kr)
{
	char path[CONFIG_PATH_MAX], err[CONFIG_PATH_MAX + 320];

	keyring_path(path, sizeof(path));
	if (keyring_load(kr, path, err, sizeof(err)))
		die("%s", err);
}

int keyring_refresh(struct keyring *kr)
{
	struct stat st;
	char err[CONFIG_PATH_MAX + 160], why[96] = "";

	if (lstat(kr->path, &st))
		return -1;
	/* A file that became readable by others (or was replaced by something
	 * other than a file) is not used: drop its keys until it is fixed. */
	if (!S_ISREG(st.st_mode) || file_private(&st, -1, kr->path, why, sizeof(why))) {
		if (kr->n)
			log_error("keyring '%s' is %s%s%s: keys dropped, no secret is sealed or opened "
				  "until it is a regular file of mode 0600", kr->path,
				  S_ISREG(st.st_mode) ? "accessible by group or others (" : "not a regular file",
				  why, S_ISREG(st.st_mode) ? ")" : "");
		keyring_wipe(kr);
		return -1;
	}
	if (kr->n && st.st_dev == kr->dev && st.st_ino == kr->ino && st.st_size == kr->size &&
	    st.st_mtim.tv_sec == kr->mtime.tv_sec && st.st_mtim.tv_nsec == kr->mtime.tv_nsec)
		return 0;
	if (keyring_load(kr, kr->path, err, sizeof(err))) {
		log_error("keyring changed but cannot be re-read: %s", err);
		return -1;
	}
	log_info("keyring re-read (active key %s)", keyring_active(kr)->id);
	return 0;
}

const struct key *keyring_active(const struct keyring *kr)
{
	for (int i = 0; i < kr->n; i++)
		if (kr->keys[i].active)
			return &kr->keys[i];
	return NULL;
}

const struct key *keyring_find(const struct keyring *kr, const char *id)
{
	for (int i = 0; i < kr->n; i++)
		if (strcmp(kr->keys[i].id, id) == 0)
			return &kr->keys[i];
	return NULL;
}

const struct key *keyring_find_fresh(struct keyring *kr, const char *id)
{
	keyring_refresh(kr);
	return keyring_find(kr, id);
}

/* Writes kr to its path through a temp file, fsync and rename, so a crash
 * leaves either the old or the new file, never a torn one. */
static int save(struct keyring *kr, char *err, size_t errlen)
{
	char tmp[CONFIG_PATH_MAX + 16], dir[CONFIG_PATH_MAX], line[160], hex[2 * AEAD_KEY_LEN + 1];
	struct stat st;
	int fd, dfd, ok = 1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", kr->path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot write '%s': %s", tmp, strerror(errno));
		return -1;
	}
	/* The new file keeps the old one's owner (root rotating the keyring of
	 * services that run as their own user): otherwise they could no longer
	 * read it, and would go on sealing under the old key. */
	if (lstat(kr->path, &st) == 0 && (st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    fchown(fd, st.st_uid, st.st_gid)) {
		snprintf(err, errlen, "keyring '%s' belongs to uid %u gid %u, and the new file cannot be "
			 "given to them: %s (run anyonctl as that user, or as root)", kr->path,
			 (unsigned)st.st_uid, (unsigned)st.st_gid, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	ok = write(fd, KEYRING_HEADER, strlen(KEYRING_HEADER)) == (ssize_t)strlen(KEYRING_HEADER);
	for (int i = 0; ok && i < kr->n; i++) {
		const struct key *k = &kr->keys[i];
		int n;

		hex_encode(k->bytes, AEAD_KEY_LEN, hex);
		n = snprintf(line, sizeof(line), "key %s %s%s\n", k->id, hex, k->active ? " active" : "");
		ok = n > 0 && write(fd, line, (size_t)n) == n;
	}
	OPENSSL_cleanse(hex, sizeof(hex));
	OPENSSL_cleanse(line, sizeof(line));
	ok = ok && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, kr->path)) {
		snprintf(err, errlen, "cannot save keyring '%s': %s", kr->path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	str_copy(dir, sizeof(dir), kr->path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (stat(kr->path, &st) == 0) {
		kr->dev = st.st_dev;
		kr->ino = st.st_ino;
		kr->mtime = st.st_mtim;
		kr->size = st.st_size;
	}
	return 0;
}

/* Appends a random key "k<N>" with N one more than any existing number. */
static int add_key(struct keyring *kr, char *err, size_t errlen)
{
	struct key *k;
	long next = 1;

	if (kr->n == KEYRING_MAX) {
		snprintf(err, errlen, "the keyring holds %d keys already; retire old ones first", KEYRING_MAX);
		return -1;
	}
	for (int i = 0; i < kr->n; i++) {
		long v = kr->keys[i].id[0] == 'k' ? strtol(kr->keys[i].id + 1, NULL, 10) : 0;

		if (v >= next && v < 999999)
			next = v + 1;
	}
	k = &kr->keys[kr->n];
	memset(k, 0, sizeof(*k));
	if (rand_bytes(k->bytes, AEAD_KEY_LEN)) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	snprintf(k->id, sizeof(k->id), "k%d", (int)(next % 1000000));
	for (int i = 0; i < kr->n; i++)
		kr->keys[i].active = false;
	k->active = true;
	kr->n++;
	return 0;
}

int keyring_create(const char *path, char *err, size_t errlen)
{
	struct keyring kr;
	struct stat st;
	int rc;

	if (lstat(path, &st) == 0) {
		snprintf(err, errlen, "keyring '%s' exists already; not touching it", path);
		return -1;
	}
	memset(&kr, 0, sizeof(kr));
	if (!str_copy(kr.path, sizeof(kr.path), path)) {
		snprintf(err, errlen, "keyring path too long");
		return -1;
	}
	rc = add_key(&kr, err, errlen) || save(&kr, err, errlen) ? -1 : 0;
	keyring_wipe(&kr);
	return rc;
}

int keyring_add_active(struct keyring *kr, char *err, size_t errlen)
{
	struct keyring next = *kr;
	int rc = -1;

	if (add_key(&next, err, errlen) == 0 && save(&next, err, errlen) == 0) {
		*kr = next;
		rc = 0;
	}
	OPENSSL_cleanse(&next, sizeof(next));
	return rc;
}

int keyring_remove(struct keyring *kr, const char *id, char *err, size_t errlen)
{
	struct keyring next = *kr;
	int i, rc = -1;

	for (i = 0; i < next.n && strcmp(next.keys[i].id, id); i++)
		;
	if (i == next.n) {
		snprintf(err, errlen, "no key '%s' in the keyring", id);
		goto out;
	}
	if (next.keys[i].active) {
		snprintf(err, errlen, "key '%s' is the active key; rotate first", id);
		goto out;
	}
	OPENSSL_cleanse(&next.keys[i], sizeof(next.keys[i]));
	memmove(&next.keys[i], &next.keys[i + 1], (size_t)(next.n - i - 1) * sizeof(next.keys[0]));
	next.n--;
	if (save(&next, err, errlen) == 0) {
		keyring_wipe(kr);
		*kr = next;
		rc = 0;
	}
out:
	OPENSSL_cleanse(&next, sizeof(next));
	return rc;
}

void keyring_wipe(struct keyring *kr)
{
	OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
	kr->n = 0;
}
