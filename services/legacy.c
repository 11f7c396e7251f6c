#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "services/audit.h"
#include "base/json.h"
#include "services/legacy.h"
#include "base/log.h"
#include "base/util.h"

/* config.json field -> secret kind */
static const struct {
	const char *field;
	const char *kind;
} token_fields[] = {
	{ "oauth_token", "github_token" },
	{ "pat", "github_pat" },
};

/* Opens and locks path, making sure the lock is on the file that is at
 * path now (another process may have replaced it while we waited). */
static int open_locked(const char *path, char *msg, size_t msglen)
{
	for (int tries = 0; tries < 5; tries++) {
		struct stat a, b;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

		if (fd < 0) {
			snprintf(msg, msglen, "cannot open '%s': %s", path, strerror(errno));
			return -1;
		}
		if (flock(fd, LOCK_EX) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			if (!S_ISREG(a.st_mode)) {
				snprintf(msg, msglen, "'%s' is not a regular file", path);
				close(fd);
				return -1;
			}
			return fd;
		}
		close(fd);
	}
	snprintf(msg, msglen, "'%s' keeps changing; try again", path);
	return -1;
}

static int read_all(int fd, char **out, size_t *len, char *msg, size_t msglen)
{
	struct stat st;
	char *buf;
	ssize_t n;

	if (fstat(fd, &st) || st.st_size > LEGACY_MAX_BYTES) {
		snprintf(msg, msglen, "file is larger than %d bytes", LEGACY_MAX_BYTES);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		free(buf);
		snprintf(msg, msglen, "cannot read the file");
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = (size_t)n;
	return 0;
}

/* Writes len bytes to path (which must not exist) with mode 0600, synced. */
static int write_new(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok)
		unlink(path);
	return ok ? 0 : -1;
}

static void sync_dir_of(const char *path)
{
	char dir[1024];
	int fd;

	str_copy(dir, sizeof(dir), path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

static int backup(const char *path, const char *data, size_t len, char *out, size_t outlen)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(out, outlen, "%s.bak-%s", path, stamp);
		else
			snprintf(out, outlen, "%s.bak-%s-%d", path, stamp, i);
		if (write_new(out, data, len) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* json-c frees strings without wiping them: wipe the token values first.
 * The buffers belong to the objects, which are dropped right after. */
static void wipe_token_fields(json_object *gh)
{
	for (size_t i = 0; gh && i < ARRAY_SIZE(token_fields); i++) {
		json_object *v;

		if (json_object_object_get_ex(gh, token_fields[i].field, &v) &&
		    json_object_is_type(v, json_type_string))
			OPENSSL_cleanse((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
	}
}

static int resolve_user(struct db *db, const char *login, struct db_user *u)
{
	int rc;

	if (!login)
		return db_user_local(db, u) == DB_OK ? 0 : -1;
	rc = db_user_by_login(db, login, u);
	if (rc == DB_NOTFOUND)
		rc = db_user_create(db, login, "", now_s(), u);
	if (rc == DB_CONFLICT)
		rc = db_user_by_login(db, login, u);
	return rc == DB_OK ? 0 : -1;
}

int legacy_import(struct secret_store *st, const char *path, const char *login,
		  char *msg, size_t msglen)
{
	char *buf = NULL, bak[1200], tmp[1100], err[128];
	json_object *doc = NULL, *gh = NULL;
	struct db_user user;
	const char *text;
	size_t len = 0, tlen;
	int fd, moved = 0, ret = -1;

	fd = open_locked(path, msg, msglen);
	if (fd < 0)
		return -1;
	if (read_all(fd, &buf, &len, msg, msglen))
		goto out;
	if (json_parse(buf, len, &doc, err, sizeof(err)) || !json_object_is_type(doc, json_type_object)) {
		snprintf(msg, msglen, "'%s' is not a JSON object (%s); left untouched", path,
			 doc ? "top level is not an object" : err);
		goto out;
	}
	if (!json_object_object_get_ex(doc, "github", &gh) || !json_object_is_type(gh, json_type_object)) {
		gh = NULL;
		snprintf(msg, msglen, "no github section; nothing to import");
		ret = 0;
		goto out;
	}
	if (resolve_user(st->db, login, &user)) {
		snprintf(msg, msglen, "cannot find or create user '%s'", login ? login : "local");
		goto out;
	}
	/* 1. secrets into the store: a crash after this re-imports harmlessly */
	for (size_t i = 0; i < ARRAY_SIZE(token_fields); i++) {
		const char *tok;

		if (json_get_str(gh, token_fields[i].field, &tok) != 0 || !*tok)
			continue;
		if (secret_put(st, user.id, token_fields[i].kind, tok, strlen(tok), 0, 0) != SECRET_OK) {
			snprintf(msg, msglen, "storing %s failed; '%s' left untouched", token_fields[i].kind, path);
			goto out;
		}
		moved++;
	}
	if (moved == 0) {
		snprintf(msg, msglen, "no tokens in '%s'; nothing to import", path);
		ret = 0;
		goto out;
	}
	/* 2. the original, kept privately */
	if (backup(path, buf, len, bak, sizeof(bak))) {
		snprintf(msg, msglen, "cannot write a backup of '%s': %s; left untouched", path, strerror(errno));
		goto out;
	}
	/* 3. the file without tokens, atomically */
	wipe_token_fields(gh);
	for (size_t i = 0; i < ARRAY_SIZE(token_fields); i++)
		json_object_object_del(gh, token_fields[i].field);
	text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						 JSON_C_TO_STRING_NOSLASHESCAPE, &tlen);
	snprintf(tmp, sizeof(tmp), "%s.anyon-tmp", path);
	unlink(tmp);
	if (write_new(tmp, text, tlen) || rename(tmp, path)) {
		unlink(tmp);
		snprintf(msg, msglen, "cannot rewrite '%s': %s (the tokens are stored; the backup is %s)",
			 path, strerror(errno), bak);
		goto out;
	}
	sync_dir_of(path);
	audit_event(st->db, user.id, 0, "config.imported", "ok", "tokens=%d backup=%s", moved, bak);
	snprintf(msg, msglen, "moved %d token(s) into the secret store for '%s'; backup: %s",
		 moved, user.login, bak);
	ret = moved;
out:
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	if (gh && json_object_is_type(gh, json_type_object))
		wipe_token_fields(gh);
	json_object_put(doc);
	close(fd);
	return ret;
}

void legacy_import_from_env(struct db *db, struct keyring *kr)
{
	const char *path = getenv("ANYON_LEGACY_CONFIG");
	struct secret_store st = { db, kr };
	char msg[1600];
	int rc;

	if (!path || !*path)
		return;
	rc = legacy_import(&st, path, NULL, msg, sizeof(msg));
	if (rc < 0)
		log_error("ANYON_LEGACY_CONFIG: %s", msg);
	else
		log_info("ANYON_LEGACY_CONFIG: %s", msg);
}
