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
#define ATTEMPTS_BAD_CREDENTIAL 13 /* ... one it has, but it was found invalid: store it again */
#define ATTEMPTS_NO_SESSION 14    /* a follow-up of an executor that resumes, without a session yet */
#define ATTEMPTS_IDLE 15          /* stop: no run is queued or running */
#define ATTEMPTS_QUEUE_FULL 16    /* the user has ANYON_USER_MAX_QUEUED jobs queued */
#define ATTEMPTS_OVER_OUTPUT 17   /* the user's jobs' stored output is at its limit */
#define ATTEMPTS_RUNS_FULL 18     /* the attempt has ATTEMPT_RUNS_MAX runs */
#define ATTEMPTS_NO_WORK 19       /* a pull request of an attempt that brought nothing back */
#define ATTEMPTS_PR_EXISTS 20     /* the attempt has its pull request already */
#define ATTEMPTS_NOT_GITHUB 21    /* a pull request of a project not imported from GitHub */

#define ATTEMPT_PR_TITLE_MAX 256          /* bytes */
#define ATTEMPT_PR_BODY_MAX (64 * 1024)   /* bytes */

/* Error codes stored with a failed attempt, for the UI ("connect Claude"). */
#define ATTEMPT_ERR_CREDENTIAL_MISSING "credential_missing"
#define ATTEMPT_ERR_CREDENTIAL_INVALID "credential_invalid"
#define ATTEMPT_ERR_CLONE "clone_failed"
#define ATTEMPT_ERR_BASE_BRANCH "unknown_base_branch"
#define ATTEMPT_ERR_SETUP "setup_failed"
#define ATTEMPT_ERR_EXECUTOR "executor_failed"
#define ATTEMPT_ERR_BUNDLE "bundle_rejected"
#define ATTEMPT_ERR_INTERNAL "internal"
#define ATTEMPT_ERR_API "api_unavailable"           /* Anthropic's API failed: try again later */

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

/* The secret kinds that satisfy an executor's credential, in the order
 * they are tried (NULL-terminated): "claude_credential" (the login's
 * credential) is also met by an Anthropic API key the user stored. NULL
 * for "". */
const char *const *attempt_credential_kinds(const char *credential);

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
	bool has_exit_code;         /* the executor's exit status, stored with the run */
	int exit_code;
};

/* Stores o for the run and moves the attempt (and its task) on, with
 * events attempt.updated (and attempt.diff when diff_json, task.updated
 * when the task moved); when o->credential_invalid, also marks the
 * user's executor credential invalid (secret meta) with the event
 * credential.invalid. One transaction. */
int attempts_run_finished(struct db *db, int64_t attempt_id, int64_t run_id, const struct attempt_outcome *o,
			  int64_t now);

/* The pull request the worker made (or found changed) for the attempt:
 * stored with the event attempt.pr, in one transaction. DB_OK,
 * DB_NOTFOUND or DB_ERROR. */
int attempts_pr_stored(struct db *db, int64_t attempt_id, const char *url, int64_t number, const char *state,
		       int64_t now);
/* Opening the pull request failed: the reason stored with pr_state
 * "failed" (no URL), event attempt.pr; asking again is allowed. */
int attempts_pr_failed(struct db *db, int64_t attempt_id, const char *error, int64_t now);

/* What the worker's pull_request job needs (any user's attempt). */
struct attempt_pr_ctx {
	int64_t attempt_id, user_id, task_id;
	char branch[64];
	char base_branch[256];
	char head_commit[41];       /* "" when no work came back */
	char *title, *body;         /* owned: what was asked, else made from the task */
	struct db_project project;  /* owned */
};
void attempt_pr_ctx_release(struct attempt_pr_ctx *c);
int attempts_load_pr(struct db *db, int64_t attempt_id, struct attempt_pr_ctx *out);

/* Settles at most max runs whose job ended without its worker reporting
 * (killed, lost, cancelled through /api/jobs): stopped when the job was
 * cancelled, else failed; *settled counts them. */
int attempts_settle_orphans(struct db *db, int max, int64_t now, int *settled);

/* ---- what the API does (fcgi/api_attempts.c) ----
 * Each is one transaction under the user's row lock, its events in it.
 * DB_NOTFOUND for a task or attempt that is not user_id's. On DB_OK out
 * holds the attempt as it now is (db_attempt_release()). */

/* A field refused (ATTEMPTS_INVALID): which, and why for the person. */
struct attempt_err {
	const char *field;
	char message[200];
};

/* The executor named name, as struct attempt_executor. DB_OK / DB_NOTFOUND / DB_ERROR. */
int attempts_executor_get(struct db *db, const char *name, struct attempt_executor *out);

/* Starts an attempt of task_id: its row, its first run (seq 1) and that
 * run's job (kind "attempt", within the user's queued-jobs and output
 * limits), with the events job.created, attempt.created and task.updated
 * (the task moves to inprogress). NULL arguments take the defaults: the
 * project's default executor, the task's title and description (joined
 * by a blank line), the project's base branch. ATTEMPTS_INVALID (err),
 * ATTEMPTS_NO_CREDENTIAL / ATTEMPTS_BAD_CREDENTIAL (field "executor"),
 * ATTEMPTS_BUSY (ATTEMPT_ACTIVE_MAX attempts of the task are active),
 * ATTEMPTS_QUEUE_FULL, ATTEMPTS_OVER_OUTPUT. */
int attempts_create(struct db *db, int64_t user_id, int64_t task_id, const char *executor, const char *prompt,
		    size_t prompt_len, const char *base_branch, int64_t now, struct db_attempt *out,
		    struct attempt_err *err);
/* Queues another run in the same workspace with prompt. ATTEMPTS_BUSY
 * while a run is queued or running, ATTEMPTS_NO_SESSION when the executor
 * resumes a session and none is known yet, ATTEMPTS_RUNS_FULL, and the
 * credential and queue answers of attempts_create(). */
int attempts_follow_up(struct db *db, int64_t user_id, int64_t attempt_id, const char *prompt, size_t prompt_len,
		       int64_t now, struct db_attempt *out, struct attempt_err *err);
/* Cancels the active run's job (jobs_cancel()): a queued run ends stopped
 * at once (and the attempt, and maybe the task, with it); a running one
 * is flagged and its worker reports it stopped. A run whose job ended
 * without the worker reporting it is settled as stopped here.
 * ATTEMPTS_IDLE when no run is queued or running. */
int attempts_stop(struct db *db, int64_t user_id, int64_t attempt_id, int64_t now, struct db_attempt *out);
/* Queues a job of kind "pull_request" for the attempt, title and body
 * (NULL: defaults; at most ATTEMPT_PR_TITLE_MAX / ATTEMPT_PR_BODY_MAX
 * bytes) stored on it; event attempt.updated (attempt.pr follows from
 * the worker). ATTEMPTS_BUSY while a run is active, ATTEMPTS_NO_WORK
 * when no run brought a commit back, ATTEMPTS_PR_EXISTS. */
int attempts_request_pr(struct db *db, int64_t user_id, int64_t attempt_id, const char *title, size_t title_len,
			const char *body, size_t body_len, int64_t now, struct db_attempt *out,
			struct attempt_err *err);

#endif
