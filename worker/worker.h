/* worker.h - what a job executor sees of the worker: output, checkpoints. */
#ifndef ANYON_WORKER_H
#define ANYON_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/keyring.h"
#include "db/db.h"

/* One claimed job being run. */
struct job_run {
	struct db *db;              /* borrowed */
	const char *owner;          /* lease owner id, borrowed */
	struct db_job *job;         /* borrowed */
	int64_t renewed_ms;         /* monotonic time of the last lease renewal */
	int64_t deadline_ms;        /* monotonic end of the kind's time limit; 0: none */
	struct keyring *kr;         /* borrowed: opens the user's secrets */
	bool adopted;               /* carrying on with a run a worker that stopped left
				     * running (its container goes on); see worker/main.c */
};

enum checkpoint {
	CP_CONTINUE,    /* keep going */
	CP_CANCEL,      /* the user asked to stop: end as cancelled */
	CP_SHUTDOWN,    /* the worker is stopping: hand the job back */
	CP_LOST,        /* the lease is gone (another worker owns it): write nothing */
	CP_TIMEOUT,     /* the kind's time limit ran out: end as failed */
	CP_DETACH,      /* the worker is stopping and the run goes on without it (a
			 * container job): the lease ends now, so the next worker
			 * adopts the run; only an executor's result, never a checkpoint */
};

/* Renews the lease when due and reports whether to go on. Executors call
 * it between steps and at least every second while waiting. */
enum checkpoint job_checkpoint(struct job_run *run);

/* Renews the lease when due, whatever else is going on (an executor
 * stopping its job after a cancel or the time limit still holds it).
 * Returns 0, or -1 when the lease is gone. */
int job_keep_lease(struct job_run *run);

/* True once the worker was asked to stop (SIGTERM), before any grace:
 * an executor whose run can go on without it leaves at once. */
bool worker_stopping(void);

/* Sleeps up to ms in short slices, returning early with what
 * job_checkpoint() says when it is not CP_CONTINUE. */
enum checkpoint job_sleep(struct job_run *run, long ms);

/* Appends an output chunk. Returns 0, or -1 when the lease is lost or the
 * database failed. */
int job_write(struct job_run *run, const char *stream, const void *data, size_t len);

/* What an executor reports when it ends. */
struct job_result {
	enum checkpoint stop;   /* CP_CONTINUE when it ran to the end */
	int exit_code;
	char error[256];      /* fits db_job's error field (static assert below) */
};

typedef void (*job_executor)(struct job_run *run, struct job_result *res);

/* Executors (one file each). */
void job_exec_echo(struct job_run *run, struct job_result *res);
void job_exec_container(struct job_run *run, struct job_result *res);
void job_exec_attempt(struct job_run *run, struct job_result *res);
void job_exec_pull_request(struct job_run *run, struct job_result *res);
void job_exec_claude_login(struct job_run *run, struct job_result *res);

/* The anyon.instance label of this installation's containers:
 * ANYON_INSTANCE, else "db-" and 16 hex digits of an HMAC of ANYON_DB (so
 * every worker on one database agrees, and two installations on one
 * Docker host never touch each other's containers). Returns 0 or -1. */
int container_instance(char *out, size_t len);

/* The orphan reaper: removes every container labelled with this instance
 * whose job is not running under a live lease, and fails such a job that
 * is still marked running (its worker died), with a system line; owner
 * takes its lease for that. A job a worker may still adopt (its container
 * started, its lease ran out less than ANYON_ADOPT_WINDOW_S ago) and its
 * container are left alone. *removed counts the containers removed.
 * Returns 0, or -1 when Docker could not be asked. */
int container_reap(struct db *db, const char *owner, int *removed);

/* Whether the container id exists on this worker's engine (a job another
 * worker left may run on another Docker host). 1 yes, 0 no, -1 the
 * engine did not answer. */
int container_exists(const char *id);
/* Runs `claude --version` in the agent image (a container of its own,
 * removed after): 0 with the version ("2.1.229") when it prints
 * "X.Y.Z (Claude Code)", else -1 with why in err (missing, broken). */
int container_claude_version(char *version, size_t vlen, char *err, size_t errlen);

/* Removes the workspaces (base/workspace.h) of jobs no longer in the
 * database (purged by ANYON_RETAIN_JOBS_S), at most max per pass; none
 * when the database does not answer. Returns how many, or -1. */
int container_workspace_sweep(struct db *db, int max);

/* Removes attempt workspaces whose attempt is gone (its task or project
 * deleted) and mirrors whose project is gone, at most max of each; none
 * when the database does not answer. Returns how many, or -1. */
int attempt_sweep(struct db *db, int max);

_Static_assert(sizeof(((struct job_result *)0)->error) <= DB_JOB_ERROR_MAX,
	       "a job's error message must fit the jobs table's field");

#endif
