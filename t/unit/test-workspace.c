/* Workspaces: the job-<digits> name rule, creation (mode, owner when
 * root), and removal that follows no symlink (to a file, to a directory
 * outside, a dangling one), empties read-only directories, removes a tree
 * deeper than the bound of open directories, and a sweep that only touches job-<digits> entries. */
#include "autoconfig.h"

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
#include "t/unit/tap.h"

static char root[256], outside[300];

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		BAIL_OUT("writing %s", path);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* A listening unix socket at dir/name, owned by uid (when root). */
static int listen_at(const char *dir, const char *name, uid_t uid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, name);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4) ||
	    (geteuid() == 0 && chown(sa.sun_path, uid, uid)) || chmod(sa.sun_path, 0666))
		BAIL_OUT("listening at %s", sa.sun_path);
	return fd;
}

/* Whether a connection is waiting on the listening fd. */
static bool pending(int lfd)
{
	int c;

	fcntl(lfd, F_SETFL, O_NONBLOCK);
	c = accept(lfd, NULL, NULL);
	if (c >= 0)
		close(c);
	return c >= 0;
}

static bool sweep_all(int64_t id, void *arg)
{
	(void)arg;
	return id != 7;   /* job 7 is "still in the database" */
}

int main(void)
{
	char ws[512], p[600], q[600];
	struct stat st;
	int64_t id = 0;

	snprintf(root, sizeof(root), "/tmp/anyon-ws-unit-%d", (int)getpid());
	snprintf(outside, sizeof(outside), "%s/outside", root);
	if (mkdir(root, 0700) || mkdir(outside, 0700))
		BAIL_OUT("mkdir %s", root);

	ok(workspace_name_ok("job-1", &id) && id == 1, "job-1 matches");
	ok(workspace_name_ok("job-123456789012345678", &id) && id == 123456789012345678LL, "18 digits match");
	ok(!workspace_name_ok("job-1234567890123456789", NULL), "19 digits do not");
	ok(!workspace_name_ok("job-", NULL) && !workspace_name_ok("job-01", NULL) &&
	   !workspace_name_ok("job-1x", NULL) && !workspace_name_ok("job-1/..", NULL) &&
	   !workspace_name_ok("jobs-1", NULL) && !workspace_name_ok("..", NULL),
	   "empty, leading zero, trailing junk, other names do not");

	snprintf(p, sizeof(p), "%s/secret", outside);
	put(p, "keep me");
	snprintf(q, sizeof(q), "%s/dir", outside);
	if (mkdir(q, 0700))
		BAIL_OUT("mkdir");
	snprintf(q, sizeof(q), "%s/dir/inner", outside);
	put(q, "keep me too");

	ok(workspace_create(root, 42, ws, sizeof(ws), p, sizeof(p)) == 0, "created job-42");
	ok(ws[0] == '/' && strstr(ws, "/workspaces/job-42"), "its path is absolute: %s", ws);
	snprintf(p, sizeof(p), "%s/workspaces", root);
	ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0711, "workspaces/ is 0711");
	ok(stat(ws, &st) == 0 && (st.st_mode & 07777) == 0700, "job-42 is 0700");
	if (geteuid() == 0)
		ok(st.st_uid == WORKSPACE_UID && st.st_gid == WORKSPACE_GID, "owned by 1000:1000");
	ok(workspace_exists(root, 42) && !workspace_exists(root, 43), "exists: 42 yes, 43 no");

	/* What an agent may leave behind. */
	snprintf(p, sizeof(p), "%s/outside/secret", root);
	snprintf(q, sizeof(q), "%s/passwd", ws);
	ok(symlink(p, q) == 0, "a symlink to a file outside");
	snprintf(p, sizeof(p), "%s/outside/dir", root);
	snprintf(q, sizeof(q), "%s/etc", ws);
	ok(symlink(p, q) == 0, "a symlink to a directory outside");
	snprintf(q, sizeof(q), "%s/dangling", ws);
	ok(symlink("/nonexistent/x", q) == 0, "a dangling symlink");
	snprintf(q, sizeof(q), "%s/ro", ws);
	mkdir(q, 0700);
	snprintf(p, sizeof(p), "%s/ro/f", ws);
	put(p, "x");
	chmod(q, 0500);
	{
		char deep[600];
		int d = open(ws, O_RDONLY | O_DIRECTORY);

		for (int i = 0; i < 50 && d >= 0; i++) {
			int nd;

			mkdirat(d, "d", 0700);
			nd = openat(d, "d", O_RDONLY | O_DIRECTORY);
			close(d);
			d = nd;
		}
		ok(d >= 0, "a 50-deep tree");
		if (d >= 0)
			close(d);
		snprintf(deep, sizeof(deep), "%s/file", ws);
		put(deep, "x");
	}
	ok(workspace_remove(root, 42) == 0, "job-42 removed");
	ok(!exists(ws), "and gone");
	snprintf(p, sizeof(p), "%s/outside/secret", root);
	ok(exists(p), "the file a symlink pointed at is untouched");
	snprintf(p, sizeof(p), "%s/outside/dir/inner", root);
	ok(exists(p), "the directory a symlink pointed at is untouched");
	ok(workspace_remove(root, 42) == 0, "removing it again is fine");

	/* The workspaces directory itself a symlink: not followed. */
	{
		char r2[300], l[320];

		snprintf(r2, sizeof(r2), "%s/r2", root);
		mkdir(r2, 0700);
		snprintf(l, sizeof(l), "%s/workspaces", r2);
		snprintf(p, sizeof(p), "%s/outside", root);
		symlink(p, l);
		snprintf(p, sizeof(p), "%s/outside/job-5", root);
		mkdir(p, 0700);
		ok(workspace_remove(r2, 5) == -1 && exists(p), "a symlinked workspaces/ is not followed");
		rmdir(p);
	}

	/* Depth bound. */
	ok(workspace_create(root, 9, ws, sizeof(ws), p, sizeof(p)) == 0, "job-9 created");
	{
		int d = open(ws, O_RDONLY | O_DIRECTORY);

		for (int i = 0; i < 3 * WORKSPACE_MAX_DEPTH + 5 && d >= 0; i++) {
			int nd;

			mkdirat(d, "d", 0700);
			nd = openat(d, "d", O_RDONLY | O_DIRECTORY);
			close(d);
			d = nd;
		}
		if (d >= 0)
			close(d);
	}
	ok(workspace_remove(root, 9) == 0 && !workspace_exists(root, 9),
	   "a tree three times past the depth bound is removed (moved up in rounds)");

	/* The sweep: job-7 is "in the database", job-8 goes, other names
	 * stay. */
	ok(workspace_create(root, 7, ws, sizeof(ws), p, sizeof(p)) == 0 &&
	   workspace_create(root, 8, ws, sizeof(ws), p, sizeof(p)) == 0, "job-7 and job-8 created");
	snprintf(p, sizeof(p), "%s/workspaces/job-08", root);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/workspaces/notes", root);
	put(p, "x");
	is_int(workspace_sweep(root, sweep_all, NULL, 10), 1, "the sweep removed one");
	ok(workspace_exists(root, 7) && !workspace_exists(root, 8), "job-7 kept, job-8 gone");
	snprintf(p, sizeof(p), "%s/workspaces/job-08", root);
	snprintf(q, sizeof(q), "%s/workspaces/notes", root);
	ok(exists(p) && exists(q), "job-08 and notes untouched");

	/* The relay's directory: the agent's, 0711; the worker connects to
	 * its socket without following a link the agent put there. */
	ok(relay_dir_create(root, 11, ws, sizeof(ws), p, sizeof(p)) == 0, "relay-11 created");
	ok(stat(ws, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0711 &&
	   (geteuid() != 0 || st.st_uid == WORKSPACE_UID), "mode 0711, the agent's (when root)");
	errno = 0;
	ok(relay_dir_connect(root, 11) == -1 && errno == ENOENT, "no socket yet: ENOENT");
	{
		int relay = listen_at(ws, RELAY_DIR_SOCKET, WORKSPACE_UID), fd;

		fd = relay_dir_connect(root, 11);
		ok(geteuid() != 0 || (fd >= 0 && pending(relay)), "the agent's socket: connected");
		if (fd >= 0)
			close(fd);
		close(relay);
	}
	if (geteuid() == 0) {
		/* A host socket the agent points a link at is never reached. */
		int host = listen_at(outside, "host.sock", 0), fd;

		snprintf(p, sizeof(p), "%s/%s", ws, RELAY_DIR_SOCKET);
		unlink(p);
		snprintf(q, sizeof(q), "%s/host.sock", outside);
		if (symlink(q, p))
			BAIL_OUT("symlink %s", p);
		errno = 0;
		fd = relay_dir_connect(root, 11);
		ok(fd == -1 && !pending(host), "a link to a host socket: refused, nothing connected (errno %d)",
		   errno);
		unlink(p);
		/* A socket that is not the agent's (root's, as the host's would be). */
		close(listen_at(ws, RELAY_DIR_SOCKET, 0));
		errno = 0;
		ok(relay_dir_connect(root, 11) == -1 && errno == EACCES, "a socket of someone else's: EACCES");
		close(host);
	}
	/* The directory itself is not reached through a link either. */
	{
		char r3[300], l[320];

		snprintf(r3, sizeof(r3), "%s/r3", root);
		snprintf(l, sizeof(l), "%s/workspaces", r3);
		mkdir(r3, 0700);
		mkdir(l, 0711);
		snprintf(l, sizeof(l), "%s/workspaces/relay-12", r3);
		snprintf(p, sizeof(p), "%s", ws);
		if (symlink(p, l))
			BAIL_OUT("symlink %s", l);
		errno = 0;
		ok(relay_dir_connect(r3, 12) == -1, "a relay directory that is a link: refused (errno %d)", errno);
	}
	ok(relay_dir_remove(root, 11) == 0 && !exists(ws), "relay-11 removed");
	ok(relay_dir_create(root, 13, ws, sizeof(ws), p, sizeof(p)) == 0 &&
	   relay_dir_sweep(root, sweep_all, NULL, 10) == 1 && !exists(ws), "the sweep removes relay-13");

	snprintf(p, sizeof(p), "rm -rf %s", root);
	if (system(p))
		diag("cleanup of %s failed", root);
	return done_testing();
}
