/* jobs.c - the job queue's rules (see jobs.h). */
#include "autoconfig.h"

#include "base/config.h"
#include "services/jobkinds.h"
#include "services/jobs.h"

/* Lost jobs failed per statement (each gets its event). */
#define FAIL_BATCH 64

/* The kinds whose lost run may not run again, comma-separated. */
static int once_kinds(char *out, size_t len)
{
	return jobkind_names(~0u, true, out, len);
}

/* Fails the lost jobs that may not run again, with the event job.finished
 * for each, inside the caller's transaction. */
static int fail_lost(struct db *db, int64_t now, const char *once, int64_t *failed)
{
	struct db_job_ref refs[FAIL_BATCH];
	size_t n;

	do {
		if (db_job_fail_lost(db, now, once, now - g_config.adopt_window_s, refs, FAIL_BATCH, &n))
			return DB_ERROR;
		for (size_t i = 0; i < n; i++)
			if (db_event_add(db, refs[i].user_id, "job.finished", refs[i].id, 0, now, NULL))
				return DB_ERROR;
		if (failed)
			*failed += (int64_t)n;
	} while (n == FAIL_BATCH);
	return DB_OK;
}

int jobs_fail_lost(struct db *db, int64_t now, int64_t *failed)
{
	char once[JOBKIND_NAMES_MAX];

	if (failed)
		*failed = 0;
	if (once_kinds(once, sizeof(once)) || db_begin_write(db))
		return DB_ERROR;
	if (fail_lost(db, now, once, failed) || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	return DB_OK;
}

int jobs_claim(struct db *db, const char *owner, int64_t now, int64_t lease_s,
	       int64_t max_running, unsigned have, struct db_job *out)
{
	char kinds[JOBKIND_NAMES_MAX], once[JOBKIND_NAMES_MAX];
	int64_t running = 0;
	bool any = false;
	int rc;

	if (jobkind_names(have, false, kinds, sizeof(kinds)) || once_kinds(once, sizeof(once)))
		return DB_ERROR;
	if (db_job_claimable(db, now, max_running, kinds, &any))
		return DB_ERROR;
	if (!any)
		return DB_NOTFOUND;
	/* One transaction: failing the exhausted first means the claim below
	 * never picks a job that has no attempt left. */
	if (db_begin_write(db))
		return DB_ERROR;
	if (fail_lost(db, now, once, NULL)) {
		db_rollback(db);
		return DB_ERROR;
	}
	rc = db_job_claim_next(db, owner, now, lease_s, max_running, kinds, out);
	/* The claim counted the user's running jobs without a lock: two
	 * workers on PostgreSQL may each have picked one of the same user's
	 * jobs. Counting again under the user's row lock (SQLite: the write
	 * lock already held) serialises them; the one that went over gives
	 * its claim back by rolling back, and the job stays queued. */
	if (rc == DB_OK && max_running > 0 &&
	    (db_user_lock(db, out->user_id) != DB_OK ||
	     db_job_count_running(db, out->user_id, now, &running) != DB_OK))
		rc = DB_ERROR;
	if (rc == DB_OK && max_running > 0 && running > max_running) {
		db_job_release(out);
		db_rollback(db);
		return DB_NOTFOUND;
	}
	if (rc == DB_OK && db_event_add(db, out->user_id, "job.started", out->id, 0, now, NULL))
		rc = DB_ERROR;
	if (rc == DB_ERROR || db_commit(db)) {
		if (rc == DB_OK)
			db_job_release(out);
		db_rollback(db);
		return DB_ERROR;
	}
	return rc;
}

int jobs_submit(struct db *db, int64_t user_id, const char *kind, const char *args_json,
		int max_attempts, int64_t max_queued, int64_t now, struct db_job *out)
{
	int64_t queued = 0, id = 0;
	int rc;

	/* The user's row is locked first (SQLite: the write lock taken at
	 * BEGIN; PostgreSQL: FOR UPDATE), so two submissions of one user count
	 * and insert in turn and the quota holds exactly on both engines. */
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_user_lock(db, user_id);
	if (rc == DB_OK)
		rc = db_job_count_queued(db, user_id, &queued);
	if (rc == DB_OK && queued >= max_queued)
		rc = DB_CONFLICT;
	if (rc == DB_OK && g_config.user_max_output_bytes > 0) {
		int64_t stored = 0;

		rc = db_user_output_bytes(db, user_id, &stored);
		if (rc == DB_OK && stored >= g_config.user_max_output_bytes)
			rc = JOBS_OVER_OUTPUT;
	}
	if (rc == DB_OK)
		rc = db_job_create(db, user_id, kind, args_json, max_attempts, now, &id);
	if (rc == DB_OK)
		rc = db_event_add(db, user_id, "job.created", id, 0, now, NULL) == DB_OK ? DB_OK : DB_ERROR;
	if (rc == DB_OK)
		rc = db_job_get(db, id, user_id, out) == DB_OK ? DB_OK : DB_ERROR;
	if (rc != DB_OK) {
		db_rollback(db);
		return rc == DB_CONFLICT || rc == JOBS_OVER_OUTPUT ? rc : DB_ERROR;
	}
	if (db_commit(db)) {
		db_job_release(out);
		db_rollback(db);
		return DB_ERROR;
	}
	return DB_OK;
}

int jobs_cancel(struct db *db, int64_t id, int64_t user_id, int64_t now, enum job_state *state_out)
{
	struct db_job job;
	int rc;

	/* Read and write in one transaction, the row locked by the read
	 * (SQLite: the write lock taken at BEGIN; PostgreSQL: FOR UPDATE),
	 * so a worker finishing the job in between cannot be overwritten. */
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_job_get_locked(db, id, user_id, &job);
	if (rc != DB_OK) {
		db_rollback(db);
		return rc;
	}
	db_job_release(&job);
	if (job_state_final(job.state)) {
		db_rollback(db);
		*state_out = job.state;
		return DB_CONFLICT;
	}
	if (job.state == JOB_QUEUED) {
		rc = db_job_cancel_queued(db, id, now);
		*state_out = JOB_CANCELLED;
	} else {
		rc = db_job_flag_cancel(db, id);
		*state_out = JOB_RUNNING;
	}
	if (rc == DB_OK)
		rc = db_event_add(db, job.user_id, job.state == JOB_QUEUED ? "job.finished" : "job.cancel_requested",
				  id, 0, now, NULL);
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	return DB_OK;
}

/* A running job's change by its worker, with its event, in one
 * transaction: the row read locked first for its user. */
static int worker_change(struct db *db, int64_t id, const char *owner, const char *event, int64_t now,
			 int (*change)(struct db *db, int64_t id, const char *owner, const void *arg),
			 const void *arg)
{
	struct db_job job;
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_job_get_locked(db, id, 0, &job);
	if (rc == DB_OK) {
		db_job_release(&job);
		rc = change(db, id, owner, arg);
	}
	if (rc == DB_OK)
		rc = db_event_add(db, job.user_id, event, id, 0, now, NULL);
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return rc == DB_NOTFOUND ? DB_NOTFOUND : DB_ERROR;
	}
	return DB_OK;
}

struct finish_args {
	enum job_state state;
	bool has_exit_code;
	int exit_code;
	const char *error;
	int64_t now;
};

static int do_finish(struct db *db, int64_t id, const char *owner, const void *arg)
{
	const struct finish_args *f = arg;

	return db_job_finish(db, id, owner, f->state, f->has_exit_code, f->exit_code, f->error, f->now);
}

int jobs_finish(struct db *db, int64_t id, const char *owner, enum job_state state, bool has_exit_code,
		int exit_code, const char *error, int64_t now)
{
	struct finish_args f = { state, has_exit_code, exit_code, error, now };

	return worker_change(db, id, owner, "job.finished", now, do_finish, &f);
}

static int do_requeue(struct db *db, int64_t id, const char *owner, const void *arg)
{
	(void)arg;
	return db_job_release_lease(db, id, owner);
}

int jobs_requeue(struct db *db, int64_t id, const char *owner, int64_t now)
{
	return worker_change(db, id, owner, "job.requeued", now, do_requeue, NULL);
}
