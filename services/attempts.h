/* attempts.h - the rules of attempts: a task's runs of an executor in a
 * container, each run one job of kind "attempt" ({"attempt": A, "run": R}).
 *
 * An attempt has one branch (anyon/<short-id>, made from its base branch
 * in its own workspace) and one or more runs: the first, then follow-ups
 * (the same workspace; Claude resumes its session). Its state follows its
 * runs: queued -> running -> completed | failed | stopped, and again
 * queued/running on a follow-up. Each change writes its events in the
 * same transaction (attempt.created, attempt.updated, attempt.diff,
 * attempt.pr, and task.updated when the task's status moves with it).
 *
 * The task's status moves with its attempts, only while it is todo,
 * inprogress or inreview: inprogress while any attempt is queued or
 * running; when the last one ends, inreview if any attempt of the task
 * completed or failed, else (every one stopped) todo. */
#ifndef ANYON_ATTEMPTS_H
#define ANYON_ATTEMPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define ATTEMPT_PROMPT_MAX (64 * 1024)     /* bytes */
#define ATTEMPT_SESSION_MAX 128
#define ATTEMPT_ERROR_MAX 512
#define ATTEMPT_RUNS_MAX 200               /* runs of one attempt */
#define ATTEMPT_ACTIVE_MAX 8               /* queued or running attempts of one task */

/* Returned by the services below besides DB_*: a field was refused (err
 * says which), or the attempt is not in a state that allows it. */
#define ATTEMPTS_INVALID 10
#define ATTEMPTS_BUSY 11          /* a run is queued or running */
#define ATTEMPTS_NO_CREDENTIAL 12 /* the executor needs a credential the user has not stored */

/* Error codes stored with a failed attempt, for the UI ("connect Claude"). */
#define ATTEMPT_ERR_CREDENTIAL_MISSING "credential_missing"
#define ATTEMPT_ERR_CREDENTIAL_INVALID "credential_invalid"
#define ATTEMPT_ERR_CLONE "clone_failed"
#define ATTEMPT_ERR_BASE_BRANCH "unknown_base_branch"
#define ATTEMPT_ERR_SETUP "setup_failed"
#define ATTEMPT_ERR_EXECUTOR "executor_failed"
#define ATTEMPT_ERR_BUNDLE "bundle_rejected"
#define ATTEMPT_ERR_INTERNAL "internal"

/* An executor: a row of the executors table. Adding one is a row. */
struct attempt_executor {
	char name[32];
	char label[64];
	/* argv as a JSON array of strings; "{prompt}" stands for the run's
	 * prompt (the runner substitutes it in the container). */
	char *command;              /* owned */
	/* Appended on a follow-up, "{session}" for the session id; NULL: a
	 * follow-up runs the command again in the same workspace. */
	char *resume;               /* owned, or NULL */
	char parser[32];            /* "claude-stream-json" or "text" */
	char credential[32];        /* secret kind it needs ("claude_credential"), or "" */
};
void attempt_executor_release(struct attempt_executor *e);

/* Everything a worker needs to run one run of an attempt, read in one go. */
struct attempt_run_ctx {
	int64_t attempt_id, run_id, task_id, project_id, user_id, job_id;
	int seq;                    /* 1 for the first run */
	char branch[64];            /* anyon/<short-id> */
	char base_branch[256];
	char base_commit[41];       /* "" until the first run found it */
	char head_commit[41];       /* "" until a run brought work back */
	char session_id[ATTEMPT_SESSION_MAX + 1];  /* "" until an init line gave one */
	char *prompt;               /* owned */
	struct attempt_executor ex;
	struct db_project project;  /* owned (db_project_release) */
};
void attempt_run_ctx_release(struct attempt_run_ctx *c);

/* Reads run_id's context (any user's: the worker). DB_OK / DB_NOTFOUND / DB_ERROR. */
int attempts_load_run(struct db *db, int64_t run_id, struct attempt_run_ctx *out);

/* The run began (the worker holds its job): attempt running, base_commit
 * stored when given and not yet known; event attempt.updated. */
int attempts_run_started(struct db *db, int64_t attempt_id, int64_t run_id, const char *base_commit,
			 int64_t now);

/* How a run ended, from the worker. */
struct attempt_outcome {
	const char *state;          /* "completed", "failed" or "stopped" */
	const char *error;          /* for the person, or NULL */
	const char *error_code;     /* ATTEMPT_ERR_*, or NULL */
	const char *session_id;     /* from the init line, or NULL: unchanged */
	const char *head_commit;    /* the branch's commit brought back, or NULL: unchanged */
	const char *diff_json;      /* the stored diff (services/mirror.h), or NULL: unchanged */
	bool credential_invalid;    /* the executor reported an auth failure */
};

/* Stores o for the run and moves the attempt (and its task) on, with
 * events attempt.updated (and attempt.diff when diff_json, task.updated
 * when the task moved); when o->credential_invalid, also marks the
 * user's executor credential invalid (secret meta) with the event
 * credential.invalid. One transaction. */
int attempts_run_finished(struct db *db, int64_t attempt_id, int64_t run_id, const struct attempt_outcome *o,
			  int64_t now);

#endif
