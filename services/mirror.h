/* mirror.h - the worker's host-side git for attempts: one bare mirror per
 * project under $ANYON_DATA_DIR/mirrors/, fetched with the user's token;
 * bundles out of it (the base branch, into a container) and into it (an
 * attempt's branch, out of a container); the stored diff of an attempt;
 * the push of an attempt's branch.
 *
 * Every git run goes through services/git.c (clean environment, hooks,
 * fsmonitor and credential helpers off). A token is given to git by a
 * credential helper reading a file of mode 0600 in a directory of mode
 * 0700 that only this process's run uses, removed (and its bytes
 * overwritten) as soon as git returns: never in a URL, argv, environment
 * or the mirror's config. What comes back from a container is untrusted:
 * a bundle is size-bounded, verified against the mirror, fetched with
 * transfer.fsckObjects, and only its one branch lands, under
 * refs/anyon/attempts/<id>. */
#ifndef ANYON_MIRROR_H
#define ANYON_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define MIRROR_SHA_LEN 40
/* Default time limit of one fetch or push (ANYON_GIT_TIMEOUT_S may lower it). */
#define MIRROR_FETCH_TIMEOUT_MS (10 * 60 * 1000)
/* Largest bundle accepted back from a container. */
#define MIRROR_BUNDLE_MAX (512LL << 20)

/* Where a project's repository comes from. */
struct mirror_source {
	const char *url;          /* https URL, or a path on the server ("path" projects) */
	const char *token;        /* GitHub token for https, or NULL; never copied */
	size_t token_len;
	bool allow_local_http;    /* http://127.0.0.1 allowed (tests: ANYON_GIT_ALLOW_LOCAL_HTTP) */
};

/* The path of project_id's mirror: <data_dir>/mirrors/project-<id>.git. */
int mirror_path(const char *data_dir, int64_t project_id, char *out, size_t len);

/* Creates the mirror when absent (git init --bare, mode 0700 directories)
 * and fetches every branch of src into refs/heads/ (every one, pruned; tags not
 * fetched). Returns 0, or -1 with a message in err for the person (no
 * token, no URL credentials in it). */
int mirror_sync(const char *data_dir, int64_t project_id, const struct mirror_source *src,
		char *err, size_t errlen);

/* The commit of branch in the mirror into sha (41 bytes). Returns 0, 1
 * when the mirror has no such branch, or -1 (err). */
int mirror_branch_commit(const char *mirror, const char *branch, char sha[MIRROR_SHA_LEN + 1],
			 char *err, size_t errlen);

/* Writes a bundle of refs/heads/<branch> (its whole history) to path
 * (created 0600, replaced if there). Returns 0 or -1 (err). */
int mirror_bundle_create(const char *mirror, const char *branch, const char *path, char *err,
			 size_t errlen);

/* Takes a bundle that came out of a container (untrusted): at most
 * MIRROR_BUNDLE_MAX bytes, it must carry exactly refs/heads/<branch> and
 * its prerequisites must be in the mirror; its objects are checked
 * (fsck) and the branch is stored as refs/anyon/attempts/<attempt_id>
 * (forced: a follow-up replaces it). head receives its commit. Returns 0,
 * or -1 (err says why, for the attempt's error). Nothing else in the
 * mirror changes, even when the bundle names other refs. */
int mirror_import(const char *mirror, const char *bundle_path, const char *branch, int64_t attempt_id,
		  char head[MIRROR_SHA_LEN + 1], char *err, size_t errlen);

/* Limits of a stored diff. */
struct mirror_diff_limits {
	size_t max_files;         /* files listed; the rest counted only */
	size_t max_file_bytes;    /* of one file's patch text; larger: summarized, no hunks */
	size_t max_total_bytes;   /* of all patch text kept */
};
void mirror_diff_limits_default(struct mirror_diff_limits *l);   /* 1000, 256 KiB, 4 MiB */

/* The diff of head against base (commits in the mirror), as JSON:
 *   {"base": sha, "head": sha, "files": [ {"path", "old_path" (renames),
 *    "status": "added|modified|deleted|renamed|copied|type_changed",
 *    "binary": bool, "additions", "deletions", "truncated": bool,
 *    "hunks": [ {"header": "@@ -a,b +c,d @@ ...", "old_start", "old_lines",
 *                "new_start", "new_lines",
 *                "lines": [ {"t": " |+|-|\\", "s": text} ] } ] } ],
 *    "files_total", "additions", "deletions", "truncated": bool}
 * Text that is not valid UTF-8 is replaced per byte (U+FFFD). *out is
 * owned by the caller (json_object_put). Returns 0 or -1 (err). */
int mirror_diff(const char *mirror, const char *base, const char *head, const struct mirror_diff_limits *l,
		json_object **out, char *err, size_t errlen);

/* Pushes refs/anyon/attempts/<attempt_id> to branch on src (which must
 * start with "anyon/"): forced only if force. Returns 0, 1 when the
 * remote rejected it (err has git's reason), or -1 (err). */
int mirror_push(const char *mirror, int64_t attempt_id, const char *branch, const struct mirror_source *src,
		bool force, char *err, size_t errlen);

/* Removes a project's mirror (project deleted). 0 also when absent. */
int mirror_remove(const char *data_dir, int64_t project_id);

#endif
