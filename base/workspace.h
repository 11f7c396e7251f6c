/* workspace.h - per-job host directories for container jobs:
 * $ANYON_DATA_DIR/workspaces/job-<id>, bind-mounted at /workspace.
 *
 * The agent controls what is inside (symlinks to /etc, files owned by uid
 * 1000, read-only directories, deep trees): removal never follows a
 * symlink (openat O_NOFOLLOW|O_DIRECTORY, unlinkat), only touches names
 * matching job-<digits> directly under the workspaces directory, and
 * holds at most WORKSPACE_MAX_DEPTH directories open: a deeper subtree is
 * moved up into the job's directory (renameat2 RENAME_NOREPLACE) and
 * removed in the next round. */
#ifndef ANYON_BASE_WORKSPACE_H
#define ANYON_BASE_WORKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORKSPACE_UID 1000
#define WORKSPACE_GID 1000
/* Directories open at once while removing (deeper ones are moved up). */
#define WORKSPACE_MAX_DEPTH 128

enum workspace_keep { WORKSPACE_KEEP_NEVER, WORKSPACE_KEEP_FAILED, WORKSPACE_KEEP_ALWAYS };

/* True when name is exactly "job-<digits>" (1 to 18 digits, no leading
 * zero); the id in *id. */
bool workspace_name_ok(const char *name, int64_t *id);

/* Creates (or empties and recreates) the job's directory, mode 0700,
 * owned by WORKSPACE_UID:WORKSPACE_GID, under workspaces/ (mode 0711:
 * only its owner lists it; anyone may stat a name they know, nobody
 * else enters a job's directory). Writes its absolute path to path.
 * Returns 0, or -1 with a reason in err. */
int workspace_create(const char *data_dir, int64_t id, char *path, size_t len, char *err, size_t errlen);

/* Removes the job's directory and everything in it, following no
 * symlink. Returns 0 (also when it was not there), or -1. */
int workspace_remove(const char *data_dir, int64_t id);

/* True when the job's directory exists (lstat: a directory, not a link). */
bool workspace_exists(const char *data_dir, int64_t id);

/* Removes dirfd/name recursively without following symlinks; name is one
 * path component. Returns 0 (also when absent), or -1 with errno. */
int rmtree_at(int dirfd, const char *name);

/* Calls fn(id, arg) for up to max job-<digits> entries of workspaces/;
 * fn returns true to remove that entry. Returns how many were removed,
 * or -1 when the directory could not be read (absent: 0). */
int workspace_sweep(const char *data_dir, bool (*fn)(int64_t id, void *arg), void *arg, int max);

/* ---- the relay's socket directory (worker/job_container.c) ----
 * workspaces/relay-<id>: the agent's (uid 1000), mode 0711, bind-mounted
 * at the relay's socket directory in the job's container, where
 * anyon-entry's relay listens (container/README.md): the worker reads the
 * program's output from it directly, not through the engine. The agent
 * writes there, so nothing in it is trusted: relay_dir_connect() follows
 * no link. */
#define RELAY_DIR_SOCKET "sock"
/* Makes it afresh; its absolute path in path. 0, or -1 with err. */
int relay_dir_create(const char *data_dir, int64_t id, char *path, size_t len, char *err, size_t errlen);
/* Removes it, following no symlink. 0 also when absent. */
int relay_dir_remove(const char *data_dir, int64_t id);
/* workspace_sweep() for relay-<digits> directories. */
int relay_dir_sweep(const char *data_dir, bool (*fn)(int64_t id, void *arg), void *arg, int max);
/* A connection to the socket in the job's relay directory: neither the
 * directory nor the socket is reached through a symlink (O_PATH and
 * O_NOFOLLOW, then connect() through /proc/self/fd), and the socket must
 * be a socket of the agent's. The connected fd, or -1 with errno (ENOENT:
 * not there yet; EACCES: not a socket of the agent's). */
int relay_dir_connect(const char *data_dir, int64_t id);

/* ---- attempts (worker/job_attempt.c) ----
 * workspaces/attempt-<id>/ (the worker's, mode 0700, never mounted) holds
 * the agent's directories, each mounted into the attempt's containers:
 * repo (/workspace) and home (/home/agent) live as long as the attempt;
 * xfer (/run/anyon/xfer) is made anew for each run with a FIFO "go". The
 * worker's own files (bundles) sit beside them, out of the agent's reach. */
#define ATTEMPT_WS_REPO "repo"
#define ATTEMPT_WS_HOME "home"
#define ATTEMPT_WS_XFER "xfer"

/* Makes the attempt's directory (fresh: emptied first, with new repo and
 * home; else they must be there) and a new xfer; its absolute path in
 * root. 0, or -1 with err. */
int attempt_ws_prepare(const char *data_dir, int64_t attempt_id, bool fresh, char *root, size_t len,
		       char *err, size_t errlen);
/* Removes it, following no symlink. 0 also when absent. */
int attempt_ws_remove(const char *data_dir, int64_t attempt_id);
/* workspace_sweep() for attempt-<digits> directories. */
int attempt_ws_sweep(const char *data_dir, bool (*fn)(int64_t id, void *arg), void *arg, int max);

#endif
