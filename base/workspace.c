/* workspace.c - per-job workspaces and their safe removal (see workspace.h). */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/workspace.h"

#define WS_DIR "workspaces"

/* name is exactly prefix and 1 to 18 digits without a leading zero. */
static bool name_ok(const char *name, const char *prefix, int64_t *id)
{
	size_t pl = strlen(prefix);
	const char *p = name + pl;
	int64_t v = 0;
	size_t n = 0;

	if (strncmp(name, prefix, pl) != 0 || *p == '0')
		return false;
	for (; *p; p++, n++) {
		if (*p < '0' || *p > '9' || n >= 18)
			return false;
		v = v * 10 + (*p - '0');
	}
	if (!n)
		return false;
	if (id)
		*id = v;
	return true;
}

bool workspace_name_ok(const char *name, int64_t *id)
{
	return name_ok(name, "job-", id);
}

/* Opens (creating when create) data_dir/workspaces as a directory, not
 * through a final symlink. Returns an fd, or -1. */
static int open_root(const char *data_dir, bool create)
{
	char path[4200];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", data_dir, WS_DIR) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (create && mkdir(path, 0711) && errno != EEXIST)
		return -1;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && create && fchmod(fd, 0711)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A walk: the top directory's fd (to move too-deep subtrees up to) and
 * how many were moved. */
struct rm_walk {
	int top;
	unsigned moved;
};

/* Moves at/name (a directory WORKSPACE_MAX_DEPTH deep) up into the top
 * directory under a fresh name, so the next round removes it from
 * there: any depth goes in rounds, with bounded fds and stack. */
static int move_up(struct rm_walk *w, int at, const char *name)
{
	char fresh[40];

	for (int i = 0; i < 1000; i++) {
		snprintf(fresh, sizeof(fresh), ".anyon-deep-%u-%d", w->moved, i);
		if (renameat2(at, name, w->top, fresh, RENAME_NOREPLACE) == 0) {
			w->moved++;
			return 1;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

/* 0: removed; 1: a subtree was moved up (another round is needed); -1:
 * failed, errno set. */
static int rmtree_depth(struct rm_walk *w, int at, const char *name, int depth)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int fd, rc = 0;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(at, name, 0) && errno != ENOENT ? -1 : 0;
	if (depth >= WORKSPACE_MAX_DEPTH)
		return move_up(w, at, name);
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* A read-only directory the agent left: its owner (or root) may
	 * make it writable again to empty it. Failure shows at unlinkat. */
	(void)fchmod(fd, 0700);
	if (!(d = fdopendir(fd))) {
		close(fd);
		return -1;
	}
	if (depth == 0)
		w->top = dirfd(d);
	while ((e = readdir(d))) {
		int r;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		r = rmtree_depth(w, dirfd(d), e->d_name, depth + 1);
		if (r < 0 || (r > 0 && rc == 0))
			rc = r;
	}
	closedir(d);
	if (rc)
		return rc;
	return unlinkat(at, name, AT_REMOVEDIR) && errno != ENOENT ? -1 : 0;
}

int rmtree_at(int at, const char *name)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
		errno = EINVAL;
		return -1;
	}
	/* Each round removes what is within WORKSPACE_MAX_DEPTH and moves
	 * deeper subtrees up; rounds are bounded (a tree of 1000 * 128
	 * levels is more than any file system holds). */
	for (int round = 0; round < 1000; round++) {
		struct rm_walk w = { .top = -1 };
		int r = rmtree_depth(&w, at, name, 0);

		if (r <= 0)
			return r;
	}
	errno = ELOOP;
	return -1;
}

/* Makes workspaces/name afresh (a leftover of an earlier run is not
 * handed to this one), owned by the agent, of mode mode; its absolute
 * path in path. what names it in errors. */
static int agent_dir_fresh(const char *data_dir, const char *name, mode_t mode, const char *what, char *path,
			   size_t len, char *err, size_t errlen)
{
	char *root_abs = NULL, root[4200];
	int fd;

	if ((fd = open_root(data_dir, true)) < 0) {
		snprintf(err, errlen, "the workspaces directory could not be opened: %s", strerror(errno));
		return -1;
	}
	if (rmtree_at(fd, name) || mkdirat(fd, name, 0700) ||
	    fchownat(fd, name, WORKSPACE_UID, WORKSPACE_GID, AT_SYMLINK_NOFOLLOW) ||
	    fchmodat(fd, name, mode, 0)) {
		snprintf(err, errlen, "the job's %s could not be made: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	snprintf(root, sizeof(root), "%s/%s", data_dir, WS_DIR);
	if (!(root_abs = realpath(root, NULL)) || snprintf(path, len, "%s/%s", root_abs, name) >= (int)len) {
		snprintf(err, errlen, "the %s's path is unusable", what);
		free(root_abs);
		return -1;
	}
	free(root_abs);
	return 0;
}

/* Removes workspaces/name, following no symlink; 0 also when absent. */
static int remove_named(const char *data_dir, const char *name)
{
	int fd, rc;

	if ((fd = open_root(data_dir, false)) < 0)
		return errno == ENOENT ? 0 : -1;
	rc = rmtree_at(fd, name);
	close(fd);
	return rc;
}

int workspace_create(const char *data_dir, int64_t id, char *path, size_t len, char *err, size_t errlen)
{
	char name[32];

	snprintf(name, sizeof(name), "job-%lld", (long long)id);
	return agent_dir_fresh(data_dir, name, 0700, "workspace", path, len, err, errlen);
}

int workspace_remove(const char *data_dir, int64_t id)
{
	char name[32];

	snprintf(name, sizeof(name), "job-%lld", (long long)id);
	return remove_named(data_dir, name);
}

/* ---- the relay's socket directory ---- */

int relay_dir_create(const char *data_dir, int64_t id, char *path, size_t len, char *err, size_t errlen)
{
	char name[32];

	snprintf(name, sizeof(name), "relay-%lld", (long long)id);
	return agent_dir_fresh(data_dir, name, 0711, "relay directory", path, len, err, errlen);
}

int relay_dir_remove(const char *data_dir, int64_t id)
{
	char name[32];

	snprintf(name, sizeof(name), "relay-%lld", (long long)id);
	return remove_named(data_dir, name);
}

int relay_dir_connect(const char *data_dir, int64_t id)
{
	char name[32], proc[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int root, dir = -1, sock = -1, fd = -1, e;

	snprintf(name, sizeof(name), "relay-%lld", (long long)id);
	if ((root = open_root(data_dir, false)) < 0)
		return -1;
	/* The directory is the agent's (it may put anything in it): opened
	 * and its socket taken without following a link, checked to be a
	 * socket of the agent's, and reached through the descriptor. */
	dir = openat(root, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir >= 0)
		sock = openat(dir, RELAY_DIR_SOCKET, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (sock >= 0 && (fstat(sock, &st) || !S_ISSOCK(st.st_mode) || st.st_uid != WORKSPACE_UID)) {
		errno = EACCES;
		goto out;
	}
	if (sock < 0)
		goto out;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", sock);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", proc);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
out:
	e = errno;
	if (sock >= 0)
		close(sock);
	if (dir >= 0)
		close(dir);
	close(root);
	errno = e;
	return fd;
}

bool workspace_exists(const char *data_dir, int64_t id)
{
	char path[4200];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s/job-%lld", data_dir, WS_DIR, (long long)id) >= (int)sizeof(path))
		return false;
	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int sweep(const char *data_dir, const char *prefix, bool (*fn)(int64_t id, void *arg), void *arg,
		 int max)
{
	int fd = open_root(data_dir, false), removed = 0;
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return -1;
	}
	while (removed < max && (e = readdir(d))) {
		int64_t id;

		if (!name_ok(e->d_name, prefix, &id) || !fn(id, arg))
			continue;
		if (rmtree_at(dirfd(d), e->d_name) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int workspace_sweep(const char *data_dir, bool (*fn)(int64_t id, void *arg), void *arg, int max)
{
	return sweep(data_dir, "job-", fn, arg, max);
}

int relay_dir_sweep(const char *data_dir, bool (*fn)(int64_t id, void *arg), void *arg, int max)
{
	return sweep(data_dir, "relay-", fn, arg, max);
}

/* ---- attempts ---- */

/* Makes dirfd/name a fresh directory of mode 0700 owned by the agent. */
static int agent_dir(int dirfd, const char *name)
{
	return rmtree_at(dirfd, name) || mkdirat(dirfd, name, 0700) ||
	       fchownat(dirfd, name, WORKSPACE_UID, WORKSPACE_GID, AT_SYMLINK_NOFOLLOW) ||
	       fchmodat(dirfd, name, 0700, 0) ? -1 : 0;
}

int attempt_ws_prepare(const char *data_dir, int64_t attempt_id, bool fresh, char *root, size_t len,
		       char *err, size_t errlen)
{
	char name[40], base[4200], *base_abs = NULL;
	int fd, at = -1, rc = -1;
	struct stat st;

	snprintf(name, sizeof(name), "attempt-%lld", (long long)attempt_id);
	if ((fd = open_root(data_dir, true)) < 0) {
		snprintf(err, errlen, "the workspaces directory could not be opened: %s", strerror(errno));
		return -1;
	}
	if (fresh && (rmtree_at(fd, name) || mkdirat(fd, name, 0700))) {
		snprintf(err, errlen, "the attempt's workspace could not be made: %s", strerror(errno));
		goto out;
	}
	if ((at = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, errno == ENOENT ? "the attempt's workspace is gone" :
			 "the attempt's workspace could not be opened: %s", strerror(errno));
		goto out;
	}
	/* Ours (root's) and closed to others: the agent sees only what is
	 * mounted below it, never this directory, so it cannot swap a mount
	 * source for a link. */
	if (fstat(at, &st) || st.st_uid != geteuid() || fchmod(at, 0700)) {
		snprintf(err, errlen, "the attempt's workspace is not the worker's own directory");
		goto out;
	}
	if (fresh && (agent_dir(at, ATTEMPT_WS_REPO) || agent_dir(at, ATTEMPT_WS_HOME))) {
		snprintf(err, errlen, "the attempt's workspace could not be made: %s", strerror(errno));
		goto out;
	}
	if (!fresh && (fstatat(at, ATTEMPT_WS_REPO, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode))) {
		snprintf(err, errlen, "the attempt's workspace has no repository any more");
		goto out;
	}
	/* The exchange directory is made anew for every run, with the FIFO the
	 * runner waits on (container/README.md). */
	if (agent_dir(at, ATTEMPT_WS_XFER)) {
		snprintf(err, errlen, "the attempt's exchange directory could not be made: %s", strerror(errno));
		goto out;
	}
	{
		int x = openat(at, ATTEMPT_WS_XFER, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (x < 0 || mkfifoat(x, "go", 0600) || fchownat(x, "go", WORKSPACE_UID, WORKSPACE_GID,
								 AT_SYMLINK_NOFOLLOW)) {
			snprintf(err, errlen, "the attempt's FIFO could not be made: %s", strerror(errno));
			if (x >= 0)
				close(x);
			goto out;
		}
		close(x);
	}
	snprintf(base, sizeof(base), "%s/%s", data_dir, WS_DIR);
	if (!(base_abs = realpath(base, NULL)) || snprintf(root, len, "%s/%s", base_abs, name) >= (int)len) {
		snprintf(err, errlen, "the workspace's path is unusable");
		goto out;
	}
	rc = 0;
out:
	free(base_abs);
	if (at >= 0)
		close(at);
	close(fd);
	return rc;
}

int attempt_ws_remove(const char *data_dir, int64_t attempt_id)
{
	char name[40];

	snprintf(name, sizeof(name), "attempt-%lld", (long long)attempt_id);
	return remove_named(data_dir, name);
}

int attempt_ws_sweep(const char *data_dir, bool (*fn)(int64_t id, void *arg), void *arg, int max)
{
	return sweep(data_dir, "attempt-", fn, arg, max);
}
