/* mirror.c - the worker's bare mirrors, bundles in and out of them, the
 * stored diff of an attempt and its push (mirror.h). Every git run goes
 * through git_run() (services/git.c). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "base/workspace.h"
#include "services/git.h"
#include "services/mirror.h"
#include "services/projects.h"

/* A local git command on the mirror (rev-parse, bundle, diff). */
#define LOCAL_TIMEOUT_MS (5 * 60 * 1000)
/* Longest token given to git (GitHub's are about 40 to 100 bytes). */
#define TOKEN_MAX 4096
/* Longest remote location accepted (as projects.h's). */
#define LOCATION_MAX PROJECT_LOCATION_MAX
/* Bytes of stderr kept from one run: enough for git's reasons. */
#define ERR_MAX (16 * 1024)

/* Options every fetch or push gets besides git_safe_config: no automatic
 * gc or maintenance (it may detach and outlive the run), no redirect
 * followed to another host with the credential, objects checked. */
#define REMOTE_CONFIG \
	"-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "http.followRedirects=false", \
	"-c", "transfer.fsckObjects=true", "-c", "fetch.fsckObjects=true", \
	"-c", "receive.fsckObjects=true"

/* ---- small helpers ---- */

/* The time limit of one fetch or push: MIRROR_FETCH_TIMEOUT_MS, lowered
 * by ANYON_GIT_TIMEOUT_S (seconds) when that is set. */
static int64_t remote_timeout_ms(void)
{
	const char *s = getenv("ANYON_GIT_TIMEOUT_S");
	int64_t v;

	if (s && parse_i64(s, 1, MIRROR_FETCH_TIMEOUT_MS / 1000, &v) == 0)
		return v * 1000;
	return MIRROR_FETCH_TIMEOUT_MS;
}

static bool is_sha(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == MIRROR_SHA_LEN;
}

/* No byte below 0x20 nor 0x7f. */
static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* Replaces every occurrence of the token in s (NUL-terminated) by '*'s:
 * whatever git or a server echoed, the token does not reach a message. */
static void scrub(char *s, const char *token, size_t token_len)
{
	char *p;

	if (!token || token_len == 0)
		return;
	while ((p = memmem(s, strlen(s), token, token_len)))
		memset(p, '*', token_len);
}

/* A message for the person from a failed run: the first "fatal: " line of
 * stderr (else "error: ", else the first line), printable ASCII only, the
 * token scrubbed (from all of stderr, before a line is cut); prefixed by
 * what. */
static void run_error(const struct git_result *res, const char *what, const struct mirror_source *src,
		      char *err, size_t errlen)
{
	char *copy = strndup(res->err ? res->err : "", res->err_len), *line = NULL, buf[512];
	size_t n = 0;

	if (!copy) {
		snprintf(err, errlen, "%s failed", what);
		return;
	}
	if (src)
		scrub(copy, src->token, src->token_len);
	for (char *p = copy; *p && !line; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		if (strncmp(p, "fatal: ", 7) == 0)
			line = p + 7;
	for (char *p = copy; *p && !line; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
		if (strncmp(p, "error: ", 7) == 0)
			line = p + 7;
	if (!line)
		line = copy;
	while (*line && *line != '\n' && *line != '\r' && n + 1 < sizeof(buf)) {
		unsigned char c = (unsigned char)*line++;

		buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[n] = '\0';
	free(copy);
	if (res->timed_out)
		snprintf(err, errlen, "%s did not finish in time", what);
	else if (res->exit_code == 127)
		snprintf(err, errlen, "git is not installed on the server");
	else
		snprintf(err, errlen, "%s failed%s%s", what, n ? ": " : "", buf);
	if (src)
		scrub(err, src->token, src->token_len);
}

/* Runs args with a local time limit and bounded output. Returns 0 when git
 * ran (see res), -1 (err) when it could not be started. */
static int run_local(const char *const *args, size_t out_max, struct git_result *res, char *err, size_t errlen)
{
	struct git_opts o = { .timeout_ms = LOCAL_TIMEOUT_MS, .out_max = out_max, .err_max = ERR_MAX };

	if (git_run(args, &o, res)) {
		snprintf(err, errlen, "git could not be run on the server");
		return -1;
	}
	return 0;
}

/* Whether mirror is a directory (not a link) holding a HEAD. */
static bool mirror_exists(const char *mirror)
{
	char head[PATH_MAX];
	struct stat st;

	if (lstat(mirror, &st) != 0 || !S_ISDIR(st.st_mode))
		return false;
	if (snprintf(head, sizeof(head), "%s/HEAD", mirror) >= (int)sizeof(head))
		return false;
	return lstat(head, &st) == 0 && S_ISREG(st.st_mode);
}

static int check_mirror(const char *mirror, char *err, size_t errlen)
{
	if (!mirror || mirror[0] != '/' || !mirror_exists(mirror)) {
		snprintf(err, errlen, "the project's mirror does not exist on the server");
		return -1;
	}
	return 0;
}

/* Takes the mirror's lock (flock on anyon.lock inside it; git ignores
 * the file) for a change of its refs: two syncs or imports of one project
 * never run at once. Waits up to timeout_ms. Returns the descriptor
 * (close() releases it), or -1 (err). */
static int mirror_lock(const char *mirror, int64_t timeout_ms, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int64_t deadline = mono_ms() + timeout_ms;
	int fd;

	if (snprintf(path, sizeof(path), "%s/anyon.lock", mirror) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		log_error("mirror: cannot open the lock of %s: %s", mirror, strerror(errno));
		snprintf(err, errlen, "the project's mirror cannot be locked");
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			log_error("mirror: cannot lock %s: %s", mirror, strerror(errno));
			snprintf(err, errlen, "the project's mirror cannot be locked");
			close(fd);
			return -1;
		}
		if (mono_ms() >= deadline) {
			snprintf(err, errlen, "the project's mirror is busy (another fetch or import)");
			close(fd);
			return -1;
		}
		usleep(100 * 1000);
	}
	return fd;
}

/* ---- the credential ---- */

/* A token handed to git: a file of mode 0600 in a fresh directory of mode
 * 0700, read by a credential helper given on git's command line. */
struct cred {
	char dir[128];          /* the directory, "" when none */
	char file[160];         /* dir/credential */
	char helper[512];       /* "credential.helper=!..." for argv */
	size_t len;             /* bytes written to file */
};

/* Removes c's file (its bytes overwritten first) and directory. */
static void cred_close(struct cred *c)
{
	static const char zeros[512];
	int fd;

	if (!c->dir[0])
		return;
	fd = open(c->file, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		for (size_t done = 0; done < c->len;) {
			size_t n = c->len - done < sizeof(zeros) ? c->len - done : sizeof(zeros);
			ssize_t w = write(fd, zeros, n);

			if (w <= 0)
				break;
			done += (size_t)w;
		}
		fdatasync(fd);
		close(fd);
	}
	if (unlink(c->file) != 0 && errno != ENOENT)
		log_error("mirror: cannot remove a credential file: %s", strerror(errno));
	if (rmdir(c->dir) != 0)
		log_error("mirror: cannot remove a credential directory: %s", strerror(errno));
	c->dir[0] = '\0';
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes src's token for git (username x-access-token). With no token,
 * c stays empty (c->dir[0] == 0). Returns 0, or -1 (err, never the token). */
static int cred_open(struct cred *c, const struct mirror_source *src, char *err, size_t errlen)
{
	static const char head[] = "username=x-access-token\npassword=";
	struct stat st;
	const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
				   ? "/dev/shm" : "/tmp";
	int fd;

	memset(c, 0, sizeof(*c));
	/* a path on the server asks for none */
	if (!src->token || src->token_len == 0 || src->url[0] == '/')
		return 0;
	if (src->token_len > TOKEN_MAX || memchr(src->token, '\0', src->token_len)) {
		snprintf(err, errlen, "the GitHub token is not usable");
		return -1;
	}
	for (size_t i = 0; i < src->token_len; i++) {
		unsigned char ch = (unsigned char)src->token[i];

		if (ch <= 0x20 || ch >= 0x7f) {
			snprintf(err, errlen, "the GitHub token is not usable");
			return -1;
		}
	}
	snprintf(c->dir, sizeof(c->dir), "%s/anyon-cred-XXXXXX", base);
	if (!mkdtemp(c->dir)) {
		log_error("mirror: cannot create a credential directory under %s: %s", base, strerror(errno));
		c->dir[0] = '\0';
		snprintf(err, errlen, "the server cannot hand the token to git");
		return -1;
	}
	snprintf(c->file, sizeof(c->file), "%s/credential", c->dir);
	fd = open(c->file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 || write_all(fd, head, sizeof(head) - 1) ||
	    write_all(fd, src->token, src->token_len) || write_all(fd, "\n", 1)) {
		log_error("mirror: cannot write a credential file: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		c->len = sizeof(head) + src->token_len;
		cred_close(c);
		snprintf(err, errlen, "the server cannot hand the token to git");
		return -1;
	}
	close(fd);
	c->len = sizeof(head) + src->token_len;
	/* Shell builtins only: the helper answers "get" with the file's lines
	 * and ignores "store" and "erase". The path is [A-Za-z0-9/_-]. */
	snprintf(c->helper, sizeof(c->helper),
		 "credential.helper=!f() { test \"$1\" = get || exit 0; "
		 "while IFS= read -r l; do printf '%%s\\n' \"$l\"; done < '%s'; }; f", c->file);
	return 0;
}

/* Checks src's location; sets the protocol git may use for it. */
static int source_check(const struct mirror_source *src, const char **proto, char *err, size_t errlen)
{
	char why[256];

	if (!src || !src->url || !src->url[0]) {
		snprintf(err, errlen, "the project has no repository location");
		return -1;
	}
	if (src->url[0] == '/') {
		if (strlen(src->url) > LOCATION_MAX || !printable(src->url)) {
			snprintf(err, errlen, "the project's path is not usable");
			return -1;
		}
		*proto = "file";
		return 0;
	}
	if (project_url_check(src->url, src->allow_local_http, why, sizeof(why))) {
		snprintf(err, errlen, "the project's URL is not usable: %s", why);
		return -1;
	}
	*proto = strncasecmp(src->url, "http:", 5) == 0 ? "http" : "https";
	return 0;
}

/* ---- paths ---- */

int mirror_path(const char *data_dir, int64_t project_id, char *out, size_t len)
{
	int n;

	if (!data_dir || data_dir[0] != '/' || project_id <= 0)
		return -1;
	n = snprintf(out, len, "%s/mirrors/project-%lld.git", data_dir, (long long)project_id);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Makes dir (mode 0700) unless it is there as a directory (not a link). */
static int make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (lstat(dir, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* ---- sync ---- */

static int sync_locked(const char *path, const struct mirror_source *src, const char *proto, char *err,
		       size_t errlen);

int mirror_sync(const char *data_dir, int64_t project_id, const struct mirror_source *src, char *err,
		size_t errlen)
{
	char path[PATH_MAX], parent[PATH_MAX];
	const char *proto;
	int lock, rc;

	if (source_check(src, &proto, err, errlen))
		return -1;
	if (mirror_path(data_dir, project_id, path, sizeof(path))) {
		snprintf(err, errlen, "the data directory's path is not usable");
		return -1;
	}
	snprintf(parent, sizeof(parent), "%s/mirrors", data_dir);
	if (make_dir(parent) || make_dir(path)) {
		log_error("mirror: cannot create %s: %s", path, strerror(errno));
		snprintf(err, errlen, "the server cannot create the project's mirror");
		return -1;
	}
	lock = mirror_lock(path, remote_timeout_ms(), err, errlen);
	if (lock < 0)
		return -1;
	rc = sync_locked(path, src, proto, err, errlen);
	close(lock);
	return rc;
}

/* mirror_sync() under the mirror's lock. */
static int sync_locked(const char *path, const struct mirror_source *src, const char *proto, char *err,
		       size_t errlen)
{
	char gitdir[PATH_MAX + 16];
	struct git_result res;
	struct cred c;
	int rc;

	if (!mirror_exists(path)) {
		/* no templates (hooks' samples); files 0600, directories 0700 */
		const char *args[] = { "init", "--quiet", "--bare", "--template=", "--shared=0600", "--", path, NULL };

		if (run_local(args, 4096, &res, err, errlen))
			return -1;
		if (res.exit_code != 0) {
			run_error(&res, "git init", NULL, err, errlen);
			git_result_release(&res);
			return -1;
		}
		git_result_release(&res);
	}

	if (cred_open(&c, src, err, errlen))
		return -1;
	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", path);
	{
		const char *args[] = { "-c", "credential.helper=", "-c", c.dir[0] ? c.helper : "credential.helper=",
				       REMOTE_CONFIG, gitdir, "fetch", "--quiet", "--prune", "--no-tags",
				       "--no-write-fetch-head", "--no-recurse-submodules", "--", src->url,
				       "+refs/heads/*:refs/heads/*", NULL };
		struct git_opts o = { .timeout_ms = remote_timeout_ms(), .out_max = 4096, .err_max = ERR_MAX,
				      .allow_protocol = proto };

		rc = git_run(args, &o, &res);
	}
	cred_close(&c);
	if (rc) {
		snprintf(err, errlen, "git could not be run on the server");
		return -1;
	}
	scrub(res.out, src->token, src->token_len);
	scrub(res.err, src->token, src->token_len);
	rc = res.exit_code == 0 ? 0 : -1;
	if (rc)
		run_error(&res, "git fetch", src, err, errlen);
	git_result_release(&res);
	return rc;
}

/* ---- refs and bundles ---- */

/* The commit ref names in mirror: 0, 1 when there is none, or -1 (err). */
static int ref_commit(const char *mirror, const char *ref, char sha[MIRROR_SHA_LEN + 1], char *err, size_t errlen)
{
	char gitdir[PATH_MAX + 16], spec[512];
	const char *args[] = { gitdir, "rev-parse", "--verify", "--quiet", "--end-of-options", spec, NULL };
	struct git_result res;
	int rc;

	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", mirror);
	if (snprintf(spec, sizeof(spec), "%s^{commit}", ref) >= (int)sizeof(spec)) {
		snprintf(err, errlen, "the branch name is too long");
		return -1;
	}
	if (run_local(args, 4096, &res, err, errlen))
		return -1;
	if (res.exit_code == 0 && res.out_len == MIRROR_SHA_LEN + 1 && res.out[MIRROR_SHA_LEN] == '\n') {
		memcpy(sha, res.out, MIRROR_SHA_LEN);
		sha[MIRROR_SHA_LEN] = '\0';
		rc = is_sha(sha) ? 0 : -1;
		if (rc)
			snprintf(err, errlen, "git rev-parse gave no commit");
	} else if (res.exit_code == 1) {
		rc = 1;
	} else {
		run_error(&res, "git rev-parse", NULL, err, errlen);
		rc = -1;
	}
	git_result_release(&res);
	return rc;
}

int mirror_branch_commit(const char *mirror, const char *branch, char sha[MIRROR_SHA_LEN + 1], char *err,
			 size_t errlen)
{
	char ref[PROJECT_BRANCH_MAX + 16];

	sha[0] = '\0';
	if (!branch || !project_branch_ok(branch)) {
		snprintf(err, errlen, "the branch name is not valid");
		return -1;
	}
	if (check_mirror(mirror, err, errlen))
		return -1;
	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	return ref_commit(mirror, ref, sha, err, errlen);
}

int mirror_bundle_create(const char *mirror, const char *branch, const char *path, char *err, size_t errlen)
{
	char sha[MIRROR_SHA_LEN + 1], dir[PATH_MAX], tmp[PATH_MAX + 16], gitdir[PATH_MAX + 16];
	char ref[PROJECT_BRANCH_MAX + 16];
	const char *slash;
	struct git_result res;
	int rc;

	if (!path || path[0] != '/' || strlen(path) >= sizeof(dir) - 16) {
		snprintf(err, errlen, "the bundle's path is not usable");
		return -1;
	}
	rc = mirror_branch_commit(mirror, branch, sha, err, errlen);
	if (rc == 1)
		snprintf(err, errlen, "the branch '%s' is not in the repository", branch);
	if (rc)
		return -1;
	/* Written in a fresh directory of mode 0700 next to path, made 0600,
	 * then renamed over path: never readable by others, never half there. */
	slash = strrchr(path, '/');
	snprintf(dir, sizeof(dir), "%.*s/.bundle-XXXXXX", (int)(slash - path), path);
	if (!mkdtemp(dir)) {
		log_error("mirror: cannot create a directory next to %s: %s", path, strerror(errno));
		snprintf(err, errlen, "the server cannot write the bundle");
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s/b.bundle", dir);
	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", mirror);
	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	{
		const char *args[] = { gitdir, "bundle", "create", "--quiet", tmp, ref, NULL };

		if (run_local(args, 4096, &res, err, errlen)) {
			rmdir(dir);
			return -1;
		}
	}
	rc = 0;
	if (res.exit_code != 0) {
		run_error(&res, "git bundle create", NULL, err, errlen);
		rc = -1;
	} else if (chmod(tmp, 0600) != 0 || rename(tmp, path) != 0) {
		log_error("mirror: cannot put the bundle at %s: %s", path, strerror(errno));
		snprintf(err, errlen, "the server cannot write the bundle");
		rc = -1;
	}
	git_result_release(&res);
	unlink(tmp);
	rmdir(dir);
	return rc;
}

/* Deletes ref from mirror (best effort). */
static void ref_delete(const char *gitdir, const char *ref)
{
	const char *args[] = { gitdir, "update-ref", "-d", "--", ref, NULL };
	struct git_result res;
	char err[256];

	if (run_local(args, 4096, &res, err, sizeof(err)) == 0) {
		if (res.exit_code != 0)
			log_error("mirror: cannot delete %s", ref);
		git_result_release(&res);
	}
}

static int import_locked(const char *mirror, const char *bundle_path, const char *branch, int64_t attempt_id,
			 char head[MIRROR_SHA_LEN + 1], char *err, size_t errlen);

int mirror_import(const char *mirror, const char *bundle_path, const char *branch, int64_t attempt_id,
		  char head[MIRROR_SHA_LEN + 1], char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	head[0] = '\0';
	if (!branch || !project_branch_ok(branch) || attempt_id <= 0) {
		snprintf(err, errlen, "the attempt's branch is not valid");
		return -1;
	}
	if (check_mirror(mirror, err, errlen))
		return -1;
	if (!bundle_path || bundle_path[0] != '/' || !printable(bundle_path)) {
		snprintf(err, errlen, "the bundle's path is not usable");
		return -1;
	}
	fd = open(bundle_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "the bundle cannot be read");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
		snprintf(err, errlen, "the bundle is not a file with content");
		return -1;
	}
	if (st.st_size > MIRROR_BUNDLE_MAX) {
		snprintf(err, errlen, "the bundle is larger than %lld MiB", (long long)(MIRROR_BUNDLE_MAX >> 20));
		return -1;
	}
	fd = mirror_lock(mirror, LOCAL_TIMEOUT_MS, err, errlen);
	if (fd < 0)
		return -1;
	rc = import_locked(mirror, bundle_path, branch, attempt_id, head, err, errlen);
	close(fd);
	return rc;
}

/* mirror_import() under the mirror's lock, its arguments checked. */
static int import_locked(const char *mirror, const char *bundle_path, const char *branch, int64_t attempt_id,
			 char head[MIRROR_SHA_LEN + 1], char *err, size_t errlen)
{
	char gitdir[PATH_MAX + 16], want[PROJECT_BRANCH_MAX + 64], incoming[64], target[64];
	char spec[PROJECT_BRANCH_MAX + 96];
	char sha[MIRROR_SHA_LEN + 1];
	struct git_result res;
	int rc = -1;

	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", mirror);

	/* exactly one ref, refs/heads/<branch>, pointing at a full-length id */
	{
		const char *args[] = { gitdir, "bundle", "list-heads", bundle_path, NULL };

		if (run_local(args, 64 * 1024, &res, err, errlen))
			return -1;
	}
	snprintf(want, sizeof(want), " refs/heads/%s\n", branch);
	if (res.exit_code != 0) {
		run_error(&res, "the bundle is not valid: git bundle list-heads", NULL, err, errlen);
		git_result_release(&res);
		return -1;
	}
	if (res.out_cut || res.out_len != MIRROR_SHA_LEN + strlen(want) ||
	    strcmp(res.out + MIRROR_SHA_LEN, want) != 0) {
		snprintf(err, errlen, "the bundle must carry exactly the branch '%s' and no other ref", branch);
		git_result_release(&res);
		return -1;
	}
	memcpy(sha, res.out, MIRROR_SHA_LEN);
	sha[MIRROR_SHA_LEN] = '\0';
	git_result_release(&res);
	if (!is_sha(sha)) {
		snprintf(err, errlen, "the bundle's branch is not a commit id");
		return -1;
	}

	/* its prerequisites are in the mirror */
	{
		const char *args[] = { gitdir, "bundle", "verify", bundle_path, NULL };

		if (run_local(args, 64 * 1024, &res, err, errlen))
			return -1;
	}
	if (res.exit_code != 0) {
		run_error(&res, "the bundle does not apply to the repository: git bundle verify", NULL, err, errlen);
		git_result_release(&res);
		return -1;
	}
	git_result_release(&res);

	/* its objects, checked, under a ref of their own; then, if the
	 * branch is a commit, under the attempt's ref */
	snprintf(incoming, sizeof(incoming), "refs/anyon/incoming/%lld", (long long)attempt_id);
	snprintf(target, sizeof(target), "refs/anyon/attempts/%lld", (long long)attempt_id);
	snprintf(spec, sizeof(spec), "+refs/heads/%s:%s", branch, incoming);
	{
		const char *args[] = { REMOTE_CONFIG, gitdir, "fetch", "--quiet", "--no-tags",
				       "--no-write-fetch-head", "--no-recurse-submodules", "--", bundle_path, spec,
				       NULL };
		struct git_opts o = { .timeout_ms = LOCAL_TIMEOUT_MS, .out_max = 4096, .err_max = ERR_MAX,
				      .allow_protocol = "file" };

		if (git_run(args, &o, &res)) {
			snprintf(err, errlen, "git could not be run on the server");
			return -1;
		}
	}
	if (res.exit_code != 0) {
		run_error(&res, "the bundle was refused: git fetch", NULL, err, errlen);
		git_result_release(&res);
		ref_delete(gitdir, incoming);
		return -1;
	}
	git_result_release(&res);
	{
		const char *args[] = { gitdir, "cat-file", "-t", sha, NULL };

		if (run_local(args, 4096, &res, err, errlen)) {
			ref_delete(gitdir, incoming);
			return -1;
		}
	}
	if (res.exit_code != 0 || strcmp(res.out, "commit\n") != 0) {
		snprintf(err, errlen, "the bundle's branch is not a commit");
		git_result_release(&res);
		ref_delete(gitdir, incoming);
		return -1;
	}
	git_result_release(&res);
	{
		const char *args[] = { gitdir, "update-ref", "-m", "anyon: import", "--", target, sha, NULL };

		if (run_local(args, 4096, &res, err, errlen)) {
			ref_delete(gitdir, incoming);
			return -1;
		}
	}
	if (res.exit_code != 0) {
		run_error(&res, "git update-ref", NULL, err, errlen);
	} else {
		memcpy(head, sha, sizeof(sha));
		rc = 0;
	}
	git_result_release(&res);
	ref_delete(gitdir, incoming);
	return rc;
}

/* ---- diff ---- */

void mirror_diff_limits_default(struct mirror_diff_limits *l)
{
	l->max_files = 1000;
	l->max_file_bytes = 256 * 1024;
	l->max_total_bytes = 4 * 1024 * 1024;
}

/* One file of the diff, from --raw and --numstat. */
struct dfile {
	char status;                     /* A M D R C T (others: M) */
	const char *path, *old_path;     /* into the raw output; old_path NULL unless R or C */
	size_t path_len, old_len;
	bool binary;
	int64_t additions, deletions;
};

static const char *status_name(char s)
{
	switch (s) {
	case 'A': return "added";
	case 'D': return "deleted";
	case 'R': return "renamed";
	case 'C': return "copied";
	case 'T': return "type_changed";
	default: return "modified";
	}
}

/* Parses up to max entries of `diff --raw -z` output into files. Returns
 * how many, or -1 when the output is malformed. */
static long parse_raw(const char *out, size_t len, struct dfile *files, size_t max)
{
	const char *p = out, *end = out + len;
	size_t n = 0;

	while (p < end && n < max) {
		const char *nul = memchr(p, '\0', (size_t)(end - p)), *sp;
		struct dfile *f = &files[n];

		if (!nul || *p != ':')
			return n > 0 && !nul ? (long)n : -1;
		sp = nul;
		while (sp > p && sp[-1] != ' ')
			sp--;
		if (sp == p)
			return -1;
		memset(f, 0, sizeof(*f));
		f->status = *sp;
		p = nul + 1;
		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul)
			break;  /* cut: this entry is incomplete */
		if (f->status == 'R' || f->status == 'C') {
			const char *nul2 = memchr(nul + 1, '\0', (size_t)(end - nul - 1));

			if (!nul2)
				break;
			f->old_path = p;
			f->old_len = (size_t)(nul - p);
			f->path = nul + 1;
			f->path_len = (size_t)(nul2 - nul - 1);
			p = nul2 + 1;
		} else {
			f->path = p;
			f->path_len = (size_t)(nul - p);
			p = nul + 1;
		}
		n++;
	}
	return (long)n;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Reads `diff --numstat -z` output into the first n files (same order,
 * checked by their paths: it stops at an entry that is not its file's). */
static void parse_numstat(const char *out, size_t len, struct dfile *files, size_t n)
{
	const char *p = out, *end = out + len;

	for (size_t i = 0; i < n && p < end; i++) {
		const char *nul = memchr(p, '\0', (size_t)(end - p)), *t1, *t2, *next;
		struct dfile *f = &files[i];

		if (!nul)
			return;
		t1 = memchr(p, '\t', (size_t)(nul - p));
		t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(nul - t1 - 1)) : NULL;
		if (!t2)
			return;
		if (t2 + 1 == nul) {
			/* a rename's or copy's: "a\td\t\0old\0new\0" */
			const char *n1 = memchr(nul + 1, '\0', (size_t)(end - nul - 1));
			const char *n2 = n1 ? memchr(n1 + 1, '\0', (size_t)(end - n1 - 1)) : NULL;

			if (!n2 || !f->old_path || !same(nul + 1, (size_t)(n1 - nul - 1), f->old_path, f->old_len) ||
			    !same(n1 + 1, (size_t)(n2 - n1 - 1), f->path, f->path_len))
				return;
			next = n2 + 1;
		} else {
			if (f->old_path || !same(t2 + 1, (size_t)(nul - t2 - 1), f->path, f->path_len))
				return;
			next = nul + 1;
		}
		if (*p == '-') {
			f->binary = true;
		} else {
			f->additions = strtoll(p, NULL, 10);
			f->deletions = strtoll(t1 + 1, NULL, 10);
		}
		p = next;
	}
}

/* Parses "@@ -a[,b] +c[,d] @@": 0, or -1. */
static int parse_hunk_header(const char *s, size_t len, int64_t v[4])
{
	char buf[128], *p, *q;

	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (strncmp(buf, "@@ -", 4) != 0)
		return -1;
	p = buf + 4;
	for (int side = 0; side < 2; side++) {
		v[side * 2] = strtoll(p, &q, 10);
		if (q == p)
			return -1;
		v[side * 2 + 1] = 1;
		if (*q == ',') {
			p = q + 1;
			v[side * 2 + 1] = strtoll(p, &q, 10);
			if (q == p)
				return -1;
		}
		if (side == 0) {
			if (strncmp(q, " +", 2) != 0)
				return -1;
			p = q + 2;
		} else if (strncmp(q, " @@", 3) != 0) {
			return -1;
		}
	}
	return 0;
}

/* The hunks of one file's patch text (chunk, from its "diff --git" line),
 * or NULL when it has none or is malformed. New reference. */
static json_object *parse_hunks(const char *chunk, size_t len)
{
	const char *p = chunk, *end = chunk + len;
	json_object *hunks = json_object_new_array(), *lines = NULL;
	bool in_hunk = false;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		size_t ll = (size_t)(le - p);

		if (ll >= 3 && strncmp(p, "@@ ", 3) == 0) {
			int64_t v[4];
			json_object *h;

			if (parse_hunk_header(p, ll, v) == 0) {
				h = json_object_new_object();
				json_set(h, "header", json_string_from_bytes(p, ll));
				json_set(h, "old_start", json_object_new_int64(v[0]));
				json_set(h, "old_lines", json_object_new_int64(v[1]));
				json_set(h, "new_start", json_object_new_int64(v[2]));
				json_set(h, "new_lines", json_object_new_int64(v[3]));
				lines = json_object_new_array();
				json_set(h, "lines", lines);
				json_object_array_add(hunks, h);
				in_hunk = true;
			}
		} else if (in_hunk && ll >= 1 && (*p == ' ' || *p == '+' || *p == '-' || *p == '\\')) {
			json_object *l = json_object_new_object();
			char t[2] = { *p, '\0' };

			json_set(l, "t", json_object_new_string(t));
			json_set(l, "s", json_string_from_bytes(p + 1, ll - 1));
			json_object_array_add(lines, l);
		} else if (in_hunk && ll == 0 && nl) {
			/* an empty context line some tools write without its blank */
			json_object *l = json_object_new_object();

			json_set(l, "t", json_object_new_string(" "));
			json_set(l, "s", json_object_new_string(""));
			json_object_array_add(lines, l);
		} else {
			in_hunk = false;
		}
		p = nl ? nl + 1 : end;
	}
	return hunks;
}

/* Whether chunk (one file's patch) says "Binary files ... differ". */
static bool chunk_says_binary(const char *chunk, size_t len)
{
	const char *p = chunk, *end = chunk + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;

		if (strncmp(p, "@@ ", (size_t)(le - p) < 3 ? (size_t)(le - p) : 3) == 0 && le - p >= 3)
			return false;
		if ((size_t)(le - p) >= 13 && strncmp(p, "Binary files ", 13) == 0)
			return true;
		p = nl ? nl + 1 : end;
	}
	return false;
}

/* The next "diff --git " line at or after p (a line start), or end. */
static const char *next_header(const char *p, const char *end)
{
	while (p < end) {
		const char *nl;

		if ((size_t)(end - p) >= 11 && strncmp(p, "diff --git ", 11) == 0)
			return p;
		nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	return end;
}

/* Appends prefix and name to b as git writes a name in a "diff --git"
 * line with core.quotePath off: as is, or in double quotes with C-style
 * escapes when it has a control character, '"' or '\'. b has room for
 * 4 bytes per byte of name plus prefix and quotes. */
static void quote_name(char *b, size_t *n, const char *prefix, const char *name, size_t len)
{
	static const char esc[] = "abtnvfr";
	bool quote = false;

	for (size_t i = 0; i < len && !quote; i++) {
		unsigned char c = (unsigned char)name[i];

		quote = c < 0x20 || c == '"' || c == '\\' || c == 0x7f;
	}
	if (quote)
		b[(*n)++] = '"';
	for (const char *p = prefix; *p; p++)
		b[(*n)++] = *p;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!quote || (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)) {
			b[(*n)++] = (char)c;
		} else if (c == '"' || c == '\\') {
			b[(*n)++] = '\\';
			b[(*n)++] = (char)c;
		} else if (c >= 7 && c <= 13) {
			b[(*n)++] = '\\';
			b[(*n)++] = esc[c - 7];
		} else {
			*n += (size_t)sprintf(b + *n, "\\%03o", c);
		}
	}
	if (quote)
		b[(*n)++] = '"';
}

/* The "diff --git a/OLD b/NEW" line git writes for f (without its
 * newline), in a new buffer (free()), its length in *len; NULL when out of
 * memory. */
static char *header_for(const struct dfile *f, size_t *len)
{
	const char *old = f->old_path ? f->old_path : f->path;
	size_t old_len = f->old_path ? f->old_len : f->path_len;
	char *b = malloc(11 + 4 * (old_len + f->path_len) + 16);
	size_t n = 0;

	if (!b)
		return NULL;
	memcpy(b, "diff --git ", 11);
	n = 11;
	quote_name(b, &n, "a/", old, old_len);
	b[n++] = ' ';
	quote_name(b, &n, "b/", f->path, f->path_len);
	*len = n;
	return b;
}

/* The first "diff --git" line at or after p (a header) that is f's, or
 * NULL: files come in the same order as --raw gave them, so the search
 * skips only chunks of files that were not matched. */
static const char *find_chunk(const char *p, const char *end, const struct dfile *f)
{
	size_t hlen;
	char *h = header_for(f, &hlen);

	for (; h && p < end; p = next_header(p + 11, end)) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if ((size_t)((nl ? nl : end) - p) == hlen && memcmp(p, h, hlen) == 0)
			break;
	}
	if (!h || p >= end)
		p = NULL;
	free(h);
	return p;
}

/* Totals of `diff --shortstat`: " N files changed, X insertions(+), Y deletions(-)". */
static void parse_shortstat(const char *s, int64_t *files, int64_t *adds, int64_t *dels)
{
	const char *p;

	*files = *adds = *dels = 0;
	*files = strtoll(s, NULL, 10);
	if ((p = strstr(s, "insertion")))
		for (const char *q = p; q > s; q--)
			if (q[-1] == ',') {
				*adds = strtoll(q, NULL, 10);
				break;
			}
	if ((p = strstr(s, "deletion")))
		for (const char *q = p; q > s; q--)
			if (q[-1] == ',') {
				*dels = strtoll(q, NULL, 10);
				break;
			}
}

int mirror_diff(const char *mirror, const char *base, const char *head, const struct mirror_diff_limits *l,
		json_object **out, char *err, size_t errlen)
{
	/* In the patch, files larger than this are not diffed line by line
	 * (git treats them as binary): their patch could hardly be kept. */
	size_t big = l->max_file_bytes * 16;
	char gitdir[PATH_MAX + 16], bigopt[64];
	struct git_result raw = { 0 }, num = { 0 }, shortstat = { 0 }, patch = { 0 };
	struct dfile *files = NULL;
	json_object *root = NULL, *arr;
	int64_t files_total, adds, dels;
	long nfiles;
	bool truncated = false;
	size_t kept = 0;
	const char *pp, *pend;
	int rc = -1;

	*out = NULL;
	if (!base || !head || !is_sha(base) || !is_sha(head)) {
		snprintf(err, errlen, "the diff needs two commit ids");
		return -1;
	}
	if (check_mirror(mirror, err, errlen))
		return -1;
	if (big < (1u << 20))
		big = 1u << 20;
	if (big > (64u << 20))
		big = 64u << 20;
	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", mirror);
	snprintf(bigopt, sizeof(bigopt), "core.bigFileThreshold=%zu", big);

	/* Four runs with the same rename detection, so the same files in the
	 * same order: the totals (--shortstat), the files' status and names
	 * (--raw), their counts (--numstat) and the patch. The counts diff
	 * files up to 64 MiB; larger ones count as binary. */
#define COUNT_LIMIT "-c", "core.bigFileThreshold=64m"
#define DIFF_COMMON "-c", "core.quotePath=false", "-c", "diff.renameLimit=1000", gitdir, "diff", \
	"--no-color", "--no-ext-diff", "--no-textconv", "--no-relative", "--ignore-submodules=none", \
	"-M", "--src-prefix=a/", "--dst-prefix=b/"
	{
		const char *args[] = { COUNT_LIMIT, DIFF_COMMON, "--shortstat", base, head, "--", NULL };

		if (run_local(args, 4096, &shortstat, err, errlen))
			goto out;
		if (shortstat.exit_code != 0) {
			run_error(&shortstat, "git diff", NULL, err, errlen);
			goto out;
		}
	}
	{
		/* an entry is ~100 bytes and one or two paths: room for 1 KiB
		 * each; when cut, fewer files are listed (and "truncated") */
		size_t max = l->max_files * 1024 + 64 * 1024;
		const char *args[] = { DIFF_COMMON, "--raw", "-z", "--no-abbrev", base, head, "--", NULL };
		const char *nargs[] = { COUNT_LIMIT, DIFF_COMMON, "--numstat", "-z", base, head, "--", NULL };

		if (run_local(args, max, &raw, err, errlen) || run_local(nargs, max, &num, err, errlen))
			goto out;
		if (raw.exit_code != 0 || num.exit_code != 0) {
			run_error(raw.exit_code ? &raw : &num, "git diff", NULL, err, errlen);
			goto out;
		}
	}
	{
		size_t max = l->max_total_bytes + 2 * big + (1u << 20);
		const char *args[] = { "-c", bigopt, DIFF_COMMON, "-p", "-U3", base, head, "--", NULL };

		if (run_local(args, max, &patch, err, errlen))
			goto out;
		if (patch.exit_code != 0) {
			run_error(&patch, "git diff", NULL, err, errlen);
			goto out;
		}
	}
#undef DIFF_COMMON
#undef COUNT_LIMIT

	files = calloc(l->max_files ? l->max_files : 1, sizeof(*files));
	if (!files) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	nfiles = parse_raw(raw.out, raw.out_len, files, l->max_files);
	if (nfiles < 0) {
		snprintf(err, errlen, "git diff gave output that cannot be read");
		goto out;
	}
	parse_numstat(num.out, num.out_len, files, (size_t)nfiles);
	parse_shortstat(shortstat.out, &files_total, &adds, &dels);
	if (files_total < nfiles)
		files_total = nfiles;
	if ((size_t)files_total > (size_t)nfiles || raw.out_cut)
		truncated = true;

	root = json_object_new_object();
	json_set(root, "base", json_object_new_string(base));
	json_set(root, "head", json_object_new_string(head));
	arr = json_object_new_array();
	json_set(root, "files", arr);
	pp = next_header(patch.out, patch.out + patch.out_len);
	pend = patch.out + patch.out_len;
	for (long i = 0; i < nfiles; i++) {
		struct dfile *f = &files[i];
		json_object *o = json_object_new_object(), *hunks = NULL;
		const char *chunk;
		bool ftrunc = false;

		json_set(o, "path", json_string_from_bytes(f->path, f->path_len));
		if (f->old_path)
			json_set(o, "old_path", json_string_from_bytes(f->old_path, f->old_len));
		json_set(o, "status", json_object_new_string(status_name(f->status)));
		json_set(o, "binary", json_object_new_boolean(f->binary));
		json_set(o, "additions", json_object_new_int64(f->additions));
		json_set(o, "deletions", json_object_new_int64(f->deletions));
		if ((chunk = find_chunk(pp, pend, f))) {
			const char *next = next_header(chunk + 11, pend);
			size_t clen = (size_t)(next - chunk);
			/* the last chunk of a cut output is incomplete */
			bool whole = next < pend || !patch.out_cut;

			if (f->binary) {
				/* no hunks; nothing to keep */
			} else if (!whole || chunk_says_binary(chunk, clen) || clen > l->max_file_bytes ||
				   kept + clen > l->max_total_bytes) {
				ftrunc = true;
			} else {
				hunks = parse_hunks(chunk, clen);
				kept += clen;
			}
			pp = next;
		} else if (!f->binary) {
			/* its patch is missing (the output was cut) */
			ftrunc = true;
		}
		if (ftrunc)
			truncated = true;
		json_set(o, "truncated", json_object_new_boolean(ftrunc));
		json_set(o, "hunks", hunks ? hunks : json_object_new_array());
		json_object_array_add(arr, o);
	}
	json_set(root, "files_total", json_object_new_int64(files_total));
	json_set(root, "additions", json_object_new_int64(adds));
	json_set(root, "deletions", json_object_new_int64(dels));
	json_set(root, "truncated", json_object_new_boolean(truncated));
	*out = root;
	root = NULL;
	rc = 0;
out:
	free(files);
	json_object_put(root);
	git_result_release(&raw);
	git_result_release(&num);
	git_result_release(&shortstat);
	git_result_release(&patch);
	return rc;
}

/* ---- push ---- */

int mirror_push(const char *mirror, int64_t attempt_id, const char *branch, const struct mirror_source *src,
		bool force, char *err, size_t errlen)
{
	char gitdir[PATH_MAX + 16], source_ref[64], spec[PROJECT_BRANCH_MAX + 96], sha[MIRROR_SHA_LEN + 1];
	const char *proto;
	struct git_result res;
	struct cred c;
	int rc;

	if (!branch || strncmp(branch, "anyon/", 6) != 0 || !branch[6] || !project_branch_ok(branch)) {
		snprintf(err, errlen, "the branch to push must be a valid name under anyon/");
		return -1;
	}
	if (attempt_id <= 0 || check_mirror(mirror, err, errlen))
		return -1;
	if (source_check(src, &proto, err, errlen))
		return -1;
	snprintf(source_ref, sizeof(source_ref), "refs/anyon/attempts/%lld", (long long)attempt_id);
	rc = ref_commit(mirror, source_ref, sha, err, errlen);
	if (rc == 1)
		snprintf(err, errlen, "the attempt has no commits to push");
	if (rc)
		return -1;
	snprintf(gitdir, sizeof(gitdir), "--git-dir=%s", mirror);
	snprintf(spec, sizeof(spec), "%s%s:refs/heads/%s", force ? "+" : "", source_ref, branch);

	if (cred_open(&c, src, err, errlen))
		return -1;
	{
		const char *args[] = { "-c", "credential.helper=", "-c", c.dir[0] ? c.helper : "credential.helper=",
				       REMOTE_CONFIG, "-c", "push.recurseSubmodules=no", gitdir, "push", "--porcelain",
				       "--no-verify", "--no-follow-tags", "--", src->url, spec, NULL };
		struct git_opts o = { .timeout_ms = remote_timeout_ms(), .out_max = 64 * 1024, .err_max = ERR_MAX,
				      .allow_protocol = proto };

		rc = git_run(args, &o, &res);
	}
	cred_close(&c);
	if (rc) {
		snprintf(err, errlen, "git could not be run on the server");
		return -1;
	}
	scrub(res.out, src->token, src->token_len);
	scrub(res.err, src->token, src->token_len);
	rc = 0;
	if (res.exit_code != 0) {
		/* porcelain: "!\t<src>:<dst>\t[rejected] (reason)" for a refusal */
		const char *line = NULL;

		for (const char *p = res.out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (p[0] == '!' && p[1] == '\t') {
				line = p;
				break;
			}
		if (line && !res.timed_out) {
			const char *why = strchr(line + 2, '\t');
			char buf[300];
			size_t n = 0;

			why = why ? why + 1 : "rejected";
			while (*why && *why != '\n' && n + 1 < sizeof(buf)) {
				unsigned char ch = (unsigned char)*why++;

				buf[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
			}
			buf[n] = '\0';
			snprintf(err, errlen, "the repository refused the push: %s", buf);
			scrub(err, src->token, src->token_len);
			rc = 1;
		} else {
			run_error(&res, "git push", src, err, errlen);
			rc = -1;
		}
	}
	git_result_release(&res);
	return rc;
}

/* ---- removal ---- */

int mirror_remove(const char *data_dir, int64_t project_id)
{
	char dir[PATH_MAX], name[64];
	int fd, rc;

	if (!data_dir || data_dir[0] != '/' || project_id <= 0 ||
	    snprintf(dir, sizeof(dir), "%s/mirrors", data_dir) >= (int)sizeof(dir))
		return -1;
	snprintf(name, sizeof(name), "project-%lld.git", (long long)project_id);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	rc = rmtree_at(fd, name);
	if (rc)
		log_error("mirror: cannot remove %s/%s: %s", dir, name, strerror(errno));
	close(fd);
	return rc;
}
