/* jobs.h - the job queue's rules, above the data layer: which job a
 * worker takes next, what running out of attempts means, how a cancel
 * moves a job. The API, the worker and anyonctl all go through here. */
#ifndef ANYON_SERVICES_JOBS_H
#define ANYON_SERVICES_JOBS_H

#include <stdint.h>

#include "db/db.h"

/* Fails the lost jobs no worker may run again or adopt any more (see
 * db_job_fail_lost(); the adoption window is ANYON_ADOPT_WINDOW_S). The
 * claim does it too, but only when something is claimable: the worker
 * calls this at each heartbeat. *failed (may be NULL) counts them. */
int jobs_fail_lost(struct db *db, int64_t now, int64_t *failed);

/* Claims work for owner until now + lease_s: the oldest queued job, or a
 * running one whose worker stopped renewing its lease. A lost job that
 * used every attempt is failed instead of run again. A cheap read-only
 * probe comes first, so an idle worker does not take the write lock to
 * find nothing. DB_OK (out filled; release it with db_job_release()),
 * DB_NOTFOUND when there is nothing to do, or DB_ERROR. Only jobs of
 * kinds whose needs lie in have (NEED_*, services/jobkinds.h: a worker
 * without Docker claims no container job); with max_running > 0, only of
 * users with fewer jobs running. A lost run of a kind that may not run
 * twice is failed instead. */
int jobs_claim(struct db *db, const char *owner, int64_t now, int64_t lease_s,
	       int64_t max_running, unsigned have, struct db_job *out);

/* Returned by jobs_submit() when the user's jobs have stored
 * ANYON_USER_MAX_OUTPUT_BYTES of output or more. */
#define JOBS_OVER_OUTPUT 3

/* Queues a job of kind with args_json (validated by the caller) for
 * user_id and reads it back into out (release with db_job_release()), in
 * one transaction, so the answer is the job as created. DB_CONFLICT when
 * the user already has max_queued jobs queued, JOBS_OVER_OUTPUT when the
 * user's stored output is at g_config.user_max_output_bytes (nothing is
 * written either way). */
int jobs_submit(struct db *db, int64_t user_id, const char *kind, const char *args_json,
		int max_attempts, int64_t max_queued, int64_t now, struct db_job *out);

/* Cancels the job of user_id (0: any user's): a queued job ends at once
 * (cancelled), a running one is flagged for its worker to stop (still
 * running). *state_out gets the resulting state; DB_CONFLICT when the job
 * had already ended (*state_out is its final state), DB_NOTFOUND when the
 * user has no such job. */
int jobs_cancel(struct db *db, int64_t id, int64_t user_id, int64_t now, enum job_state *state_out);

/* Ends a running job that owner holds, in a final state, and writes the
 * event job.finished, in one transaction. DB_OK, DB_NOTFOUND (owner no
 * longer holds it) or DB_ERROR. */
int jobs_finish(struct db *db, int64_t id, const char *owner, enum job_state state, bool has_exit_code,
		int exit_code, const char *error, int64_t now);
/* Hands a running job owner holds back to the queue (worker shutdown; the
 * attempt does not count) with the event job.requeued. */
int jobs_requeue(struct db *db, int64_t id, const char *owner, int64_t now);

/* Every change of a job writes one event in its transaction (GET
 * /api/events): job.created, job.started (claimed), job.cancel_requested,
 * job.requeued, job.finished (any final state), and job.output for each
 * batch of output stored (services/output.c). */

#endif
