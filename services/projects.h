/* projects.h - the rules of a project's source and settings: where a
 * local-mode project may come from (a path on the server or a git URL),
 * how its name and default branch are found, and which settings are valid.
 * The API (fcgi/api_projects.c) answers with these; the data layer
 * (db/projects.c) stores what passed. */
#ifndef ANYON_PROJECTS_H
#define ANYON_PROJECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define PROJECT_NAME_MAX 127             /* bytes */
#define PROJECT_LOCATION_MAX 1024        /* bytes of a path or URL */
#define PROJECT_BRANCH_MAX 255           /* bytes of a branch name */
#define PROJECT_SETUP_SCRIPT_MAX (16 * 1024)
#define PROJECT_EXECUTOR_MAX 31
#define PROJECT_GIT_TIMEOUT_MS 10000     /* one ls-remote */

/* Whether name is a row of the executors table (db_executor_get()):
 * DB_OK, DB_NOTFOUND (names, when not NULL, gets the known ones,
 * comma-separated, for the person) or DB_ERROR. */
int project_executor_check(struct db *db, const char *name, char *names, size_t size);
/* The executor a new project runs by default: the table's first (by
 * position). DB_OK, DB_NOTFOUND (an empty table) or DB_ERROR. */
int project_executor_default(struct db *db, char *out, size_t size);

/* Whether name is usable as a branch (git check-ref-format --branch's
 * rules, and 1 to PROJECT_BRANCH_MAX bytes). */
bool project_branch_ok(const char *name);

/* Whether a project name of len bytes is usable: 1 to PROJECT_NAME_MAX
 * bytes, no control characters, not only spaces. */
bool project_name_ok(const char *name, size_t len);

/* The name a location suggests: its last path segment without a trailing
 * "/" or ".git". Returns 0, or -1 when that is empty or does not fit. */
int project_name_from(const char *location, char *out, size_t size);

/* Checks a path given for a project: absolute, no control characters, at
 * most PROJECT_LOCATION_MAX bytes, an existing directory. Writes its
 * canonical form (symbolic links resolved) to canon. Returns 0, or -1 with
 * why (for the person) filled. */
int project_path_check(const char *path, char *canon, size_t size, char *why, size_t whylen);

/* Checks a URL given for a project: https (http only to 127.0.0.1 or
 * localhost, and only when allow_local_http), no user name or password,
 * no fragment, no control characters or spaces, at most
 * PROJECT_LOCATION_MAX bytes. Returns 0, or -1 with why filled. */
int project_url_check(const char *url, bool allow_local_http, char *why, size_t whylen);

enum project_probe_rc {
	PROBE_OK,
	PROBE_FAILED,   /* git answered with an error: no repository there, or unreachable */
	PROBE_TIMEOUT,  /* no answer within PROJECT_GIT_TIMEOUT_MS */
	PROBE_ERROR,    /* git could not be run */
};

/* Asks git what HEAD of the repository at location (a checked path or
 * URL) is: `git ls-remote --symref -- LOCATION HEAD` (no hook of the
 * repository runs). On PROBE_OK writes the default branch to branch (""
 * when HEAD is not a branch); otherwise why says what git said. */
enum project_probe_rc project_probe(const char *location, bool is_url, bool allow_local_http,
				    char *branch, size_t size, char *why, size_t whylen);

/* The default branch in ls-remote --symref output ("ref: refs/heads/X\tHEAD"),
 * or "" when there is none or it is not a valid branch name. For tests. */
void project_parse_symref(const char *out, char *branch, size_t size);

/* Adds p (p->user_id's; p->id set) with the event project.added, in one
 * transaction. DB_OK, DB_CONFLICT (the user has it already) or DB_ERROR. */
int projects_add(struct db *db, struct db_project *p, int64_t now);
/* Changes the settings given (NULL: unchanged) with the event
 * project.updated, in one transaction; out gets the project as it now is
 * (release it with db_project_release()). DB_OK, DB_NOTFOUND or DB_ERROR. */
int projects_update(struct db *db, int64_t user_id, int64_t id, const char *name, const char *base_branch,
		    const char *setup_script, const char *default_executor, int64_t now, struct db_project *out);
/* Deletes the user's project (its tasks go with it, by the foreign key)
 * and writes the event project.deleted, in one transaction. DB_OK,
 * DB_NOTFOUND (no such project of user_id) or DB_ERROR. */
int projects_delete(struct db *db, int64_t user_id, int64_t id, int64_t now);

#endif
