/* jobs.c - the job queue: rows, leases and ordered output. Which job to
 * claim and how a cancel moves are decided in services/jobs.c. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "db/query.h"

#define JOB_COLS "id, user_id, kind, args, state, attempts, max_attempts, cancel_requested, " \
	"exit_code, error, created_at, started_at, finished_at, output_offset, output_bytes, " \
	"lease_expires_at, container_id, container_started_at, container_ended_at, container_exit, " \
	"container_oom"

static struct query q_create = QUERY("job.create",
	"INSERT INTO jobs (user_id, kind, args, max_attempts, created_at) "
	"VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id");
static struct query q_get = QUERY("job.get",
	"SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)");
/* Read to be changed in the caller's transaction (see db_job_get_locked). */
static struct query q_get_locked = QUERY2("job.get_locked",
	"SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (?2 = 0 OR user_id = ?2)",
	"SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND (?2 = 0 OR user_id = ?2) FOR UPDATE");
static struct query q_list = QUERY("job.list",
	"SELECT " JOB_COLS " FROM jobs WHERE user_id = ?1 AND (?2 <= 0 OR id < ?2) "
	"ORDER BY id DESC LIMIT ?3");
static struct query q_count_queued = QUERY("job.count_queued",
	"SELECT count(*) FROM jobs WHERE user_id = ?1 AND state = 'queued'");
/* Which finished jobs a purge takes; the same words in both dialects. */
#define PURGE_VICTIMS "SELECT id FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') " \
	"AND finished_at < ?1 ORDER BY id LIMIT ?2"
/* SQLite: two statements under the write lock (BEGIN IMMEDIATE), which
 * keeps the victims the same for both. PostgreSQL: one statement, so two
 * purging workers cannot take the same bytes off twice. */
static struct query q_purge_bytes = QUERY("job.purge_bytes",
	"UPDATE users SET output_bytes = output_bytes - coalesce((SELECT sum(output_bytes) FROM jobs "
	"  WHERE user_id = users.id AND id IN (" PURGE_VICTIMS ")), 0) "
	"WHERE id IN (SELECT user_id FROM jobs WHERE id IN (" PURGE_VICTIMS "))");
static struct query q_purge = QUERY("job.purge", "DELETE FROM jobs WHERE id IN (" PURGE_VICTIMS ")");
static struct query q_purge_pg = QUERY("job.purge_pg",
	"WITH d AS (DELETE FROM jobs WHERE id IN (" PURGE_VICTIMS " FOR UPDATE SKIP LOCKED) "
	"  RETURNING user_id, output_bytes), "
	"s AS (SELECT user_id, sum(output_bytes) AS b, count(*) AS n FROM d GROUP BY user_id), "
	"u AS (UPDATE users SET output_bytes = users.output_bytes - s.b::bigint FROM s WHERE users.id = s.user_id) "
	"SELECT coalesce(sum(n), 0)::bigint FROM s");
/* What a worker may claim: queued, or running under a lease that ran out
 * (its worker died); only of the kinds it can run now (kinds: a
 * comma-separated list; FIND is instr() on SQLite, strpos() on
 * PostgreSQL); with max_running > 0, only of users who have fewer than
 * that many jobs running under a live lease (per-user fairness). */
#define CLAIMABLE(FIND, now, max_running, kinds) \
	"(c.state = 'queued' OR (c.state = 'running' AND c.lease_expires_at <= " now " " \
	"  AND c.container_id IS NULL)) " \
	"AND " FIND "(',' || " kinds " || ',', ',' || c.kind || ',') > 0 " \
	"AND (" max_running " <= 0 OR (SELECT count(*) FROM jobs r WHERE r.user_id = c.user_id " \
	"  AND r.state = 'running' AND r.lease_expires_at > " now ") < " max_running ")"
static struct query q_claimable = QUERY2("job.claimable",
	"SELECT EXISTS (SELECT 1 FROM jobs c WHERE " CLAIMABLE("instr", "?1", "?2", "?3") ")",
	"SELECT EXISTS (SELECT 1 FROM jobs c WHERE " CLAIMABLE("strpos", "?1", "?2", "?3") ")");
/* A lost job another worker may still carry on with (worker/main.c
 * adopts it): its container started and has not ended, and its lease ran
 * out after since (ANYON_ADOPT_WINDOW_S ago). It is neither claimed nor
 * failed meanwhile. */
#define ADOPTABLE(since) "(coalesce(container_started_at, 0) > 0 AND container_ended_at IS NULL " \
	"AND lease_expires_at > " since ")"
/* A lost run (lease expired; a lost run that made a container is never
 * claimed again, see CLAIMABLE) is failed instead of run again when it
 * used every attempt, when its kind (in ?2, comma-separated) may not run
 * twice, or when it made a container nobody adopted in time. */
#define LOST_TO_FAIL(FIND) \
	"state = 'running' AND lease_expires_at <= ?1 AND (attempts >= max_attempts " \
	"  OR " FIND "(',' || ?2 || ',', ',' || kind || ',') > 0 OR container_id IS NOT NULL) " \
	"  AND NOT " ADOPTABLE("?3")
/* At most ?4 at a time, their ids and users returned (for their events).
 * The condition is checked again on the row itself: on PostgreSQL a
 * concurrent pass that failed the row first makes this one skip it. */
#define FAIL_LOST(FIND) \
	"UPDATE jobs SET state = 'failed', finished_at = ?1, lease_owner = NULL, " \
	"lease_expires_at = NULL, error = CASE " \
	"  WHEN coalesce(container_started_at, 0) > 0 AND container_ended_at IS NULL " \
	"  THEN 'the worker running it stopped and no worker carried on with its container' " \
	"  WHEN attempts >= max_attempts THEN 'the worker running it stopped ' || attempts || ' times' " \
	"  ELSE 'the worker running it stopped; a run of this kind is not repeated' END " \
	"WHERE id IN (SELECT id FROM jobs WHERE " LOST_TO_FAIL(FIND) " ORDER BY id LIMIT ?4) " \
	"  AND " LOST_TO_FAIL(FIND) " RETURNING id, user_id"
static struct query q_adoptable = QUERY("job.adoptable",
	"SELECT id FROM jobs WHERE state = 'running' AND lease_expires_at <= ?1 AND " ADOPTABLE("?2")
	" ORDER BY id LIMIT ?3");
static struct query q_fail_exhausted = QUERY2("job.fail_exhausted", FAIL_LOST("instr"), FAIL_LOST("strpos"));
/* SQLite runs the whole UPDATE under its write lock. PostgreSQL picks the
 * row FOR UPDATE SKIP LOCKED, so concurrent claimers take different rows
 * instead of queueing behind (and then re-checking) the same one; the
 * per-user count is then re-checked under the user's row lock (see
 * services/jobs.c). */
static struct query q_claim = QUERY2("job.claim",
	"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?1, "
	"lease_expires_at = ?2 + ?3, started_at = coalesce(started_at, ?2) "
	"WHERE id = (SELECT c.id FROM jobs c WHERE " CLAIMABLE("instr", "?2", "?4", "?5")
	" ORDER BY c.id LIMIT 1) "
	"RETURNING " JOB_COLS,
	"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?1, "
	"lease_expires_at = ?2 + ?3, started_at = coalesce(started_at, ?2) "
	"WHERE id = (SELECT c.id FROM jobs c WHERE " CLAIMABLE("strpos", "?2", "?4", "?5") " "
	"  ORDER BY c.id LIMIT 1 FOR UPDATE OF c SKIP LOCKED) "
	"RETURNING " JOB_COLS);
static struct query q_count_running = QUERY("job.count_running",
	"SELECT count(*) FROM jobs WHERE user_id = ?1 AND state = 'running' AND lease_expires_at > ?2");
static struct query q_renew = QUERY("job.renew",
	"UPDATE jobs SET lease_expires_at = ?3 + ?4 "
	"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 RETURNING cancel_requested");
/* The counter bump locks the job row until the batch's transaction ends. */
static struct query q_batch_bump = QUERY("job.batch_bump",
	"UPDATE jobs SET output_seq = output_seq + ?3, output_bytes = output_bytes + ?4, "
	"output_offset = CASE WHEN ?5 = 1 THEN ?6 ELSE output_offset END "
	"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2 RETURNING output_seq, user_id");
static struct query q_append = QUERY("job.append",
	"INSERT INTO job_output (job_id, seq, stream, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)");
static struct query q_user_bytes_add = QUERY("job.user_bytes_add",
	"UPDATE users SET output_bytes = output_bytes + ?2 WHERE id = ?1 RETURNING output_bytes");
static struct query q_user_bytes = QUERY("job.user_bytes",
	"SELECT output_bytes FROM users WHERE id = ?1");
static struct query q_finish = QUERY("job.finish",
	"UPDATE jobs SET state = ?3, exit_code = ?4, error = ?5, finished_at = ?6, "
	"lease_owner = NULL, lease_expires_at = NULL "
	"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
static struct query q_expire = QUERY("job.expire_lease",
	"UPDATE jobs SET lease_expires_at = ?3 WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
static struct query q_release = QUERY("job.release",
	"UPDATE jobs SET state = 'queued', "
	"attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
	"lease_owner = NULL, lease_expires_at = NULL "
	"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
static struct query q_cancel_queued = QUERY("job.cancel_queued",
	"UPDATE jobs SET state = 'cancelled', cancel_requested = 1, finished_at = ?2 "
	"WHERE id = ?1 AND state = 'queued'");
static struct query q_flag_cancel = QUERY("job.flag_cancel",
	"UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND state = 'running'");
static struct query q_set_container = QUERY("job.set_container",
	"UPDATE jobs SET container_id = ?3, container_started_at = ?4 "
	"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
static struct query q_container_ended = QUERY("job.container_ended",
	"UPDATE jobs SET container_exit = ?3, container_oom = ?4, container_ended_at = ?5 "
	"WHERE id = ?1 AND state = 'running' AND lease_owner = ?2");
static struct query q_take_lost = QUERY("job.take_lost",
	"UPDATE jobs SET lease_owner = ?2, lease_expires_at = ?3 + ?4 "
	"WHERE id = ?1 AND state = 'running' AND lease_expires_at <= ?3");
#define QUEUED_KINDS(FIND) "SELECT count(*) FROM jobs WHERE state = 'queued' " \
	"AND " FIND "(',' || ?1 || ',', ',' || kind || ',') > 0"
static struct query q_count_queued_kinds = QUERY2("job.count_queued_kinds",
	QUEUED_KINDS("instr"), QUEUED_KINDS("strpos"));
/* At most ?3 chunks after ?2, and no more bytes than the answer can take
 * (?4, the first chunk whatever its size). SQLite hands rows over one at
 * a time, so job_output_read() stops at the byte budget itself; libpq
 * receives a statement's whole result at once, so PostgreSQL cuts it in
 * SQL (length() of a stored value reads its header, not the value: the
 * chunks left out are never sent) and says in a fifth column how many
 * chunks the window held. */
static struct query q_output = QUERY2("job.output",
	"SELECT seq, stream, data, created_at FROM job_output "
	"WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
	"SELECT seq, stream, data, created_at, n FROM ("
	"SELECT seq, stream, data, created_at, count(*) OVER () AS n, "
	"row_number() OVER (ORDER BY seq) AS k, sum(length(data)) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS upto "
	"FROM (SELECT seq, stream, data, created_at FROM job_output "
	"WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3) w) x "
	"WHERE k = 1 OR upto <= ?4 ORDER BY seq");

static const char *const job_state_names[] = {
	[JOB_QUEUED] = "queued",
	[JOB_RUNNING] = "running",
	[JOB_SUCCEEDED] = "succeeded",
	[JOB_FAILED] = "failed",
	[JOB_CANCELLED] = "cancelled",
};

const char *job_state_name(enum job_state s)
{
	return job_state_names[s];
}

bool job_state_final(enum job_state s)
{
	return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED;
}

static enum job_state job_state_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(job_state_names); i++)
		if (s && strcmp(s, job_state_names[i]) == 0)
			return (enum job_state)i;
	return JOB_FAILED;
}

void db_job_release(struct db_job *job)
{
	free(job->args);
	job->args = NULL;
}

static int job_cols(struct stmt *s, struct db_job *out)
{
	memset(out, 0, sizeof(*out));
	out->id = q_i64(s, 0);
	out->user_id = q_i64(s, 1);
	out->state = job_state_parse(q_str(s, 4));
	out->attempts = (int)q_i64(s, 5);
	out->max_attempts = (int)q_i64(s, 6);
	out->cancel_requested = q_i64(s, 7) != 0;
	out->has_exit_code = !q_null(s, 8);
	out->exit_code = (int)q_i64(s, 8);
	out->created_at = q_i64(s, 10);
	out->started_at = q_i64(s, 11);
	out->finished_at = q_i64(s, 12);
	out->has_output_offset = !q_null(s, 13);
	out->output_offset = q_i64(s, 13);
	out->output_bytes = q_i64(s, 14);
	out->lease_expires_at = q_i64(s, 15);
	out->container_started_at = q_i64(s, 17);
	out->container_ended_at = q_i64(s, 18);
	out->has_container_exit = !q_null(s, 19);
	out->container_exit = (int)q_i64(s, 19);
	out->container_oom = q_i64(s, 20) != 0;
	if ((!q_null(s, 16) && q_copy(s, 16, out->container_id, sizeof(out->container_id))) ||
	    q_copy(s, 2, out->kind, sizeof(out->kind)) ||
	    q_copy(s, 9, out->error, sizeof(out->error)) || q_strdup(s, 3, &out->args)) {
		db_job_release(out);
		return DB_ERROR;
	}
	return DB_OK;
}

/* Steps s for at most one job row and resets it. */
static int job_row(struct stmt *s, struct db_job *out)
{
	int rc = q_row(s);

	if (rc == DB_OK)
		rc = job_cols(s, out);
	q_end(s);
	return rc;
}

int db_job_create(struct db *db, int64_t user_id, const char *kind, const char *args_json,
		  int max_attempts, int64_t now, int64_t *id_out)
{
	struct stmt *s = q_start(db, &q_create);
	int rc;

	q_int(s, 1, user_id);
	q_text(s, 2, kind);
	q_text(s, 3, args_json);
	q_int(s, 4, max_attempts);
	q_int(s, 5, now);
	rc = q_row(s);
	if (rc == DB_OK)
		*id_out = q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_job_get(struct db *db, int64_t id, int64_t user_id, struct db_job *out)
{
	struct stmt *s = q_start(db, &q_get);

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	return job_row(s, out);
}

/* The job comes first so job_cols() reads it where it always does; the
 * session and user follow (at q_ncols() - SESSION_USER_NCOLS). The job
 * must be the session user's (the join says so, and the caller checks). */
static struct query q_session_job = QUERY("job.get_with_session",
	"SELECT j.*, " SESSION_USER_COLS " FROM " SESSION_USER_FROM " "
	"LEFT JOIN (SELECT " JOB_COLS " FROM jobs WHERE id = ?4) j ON j.user_id = s.user_id "
	"WHERE " SESSION_USER_WHERE);

struct stmt *session_job_start(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
			       int64_t job_id)
{
	struct stmt *s = session_q_start(db, &q_session_job, hash, now, cloud);

	q_int(s, 4, job_id);
	return s;
}

int session_job_cols(struct stmt *s, struct db_job *out)
{
	if (q_null(s, 0))
		return DB_NOTFOUND;
	return job_cols(s, out);
}

int db_job_get_locked(struct db *db, int64_t id, int64_t user_id, struct db_job *out)
{
	struct stmt *s = q_start(db, &q_get_locked);

	q_int(s, 1, id);
	q_int(s, 2, user_id);
	return job_row(s, out);
}

int db_job_list(struct db *db, int64_t user_id, int64_t before, int limit,
		db_job_fn fn, void *arg)
{
	struct stmt *s = q_start(db, &q_list);
	struct db_job job;
	int rc;

	q_int(s, 1, user_id);
	q_int(s, 2, before);
	q_int(s, 3, limit);
	while ((rc = q_step(s)) == BE_ROW) {
		if (job_cols(s, &job)) {
			rc = DB_ERROR;
			break;
		}
		rc = fn(&job, arg);
		db_job_release(&job);
		if (rc) {
			rc = rc > 0 ? BE_DONE : DB_ERROR;
			break;
		}
	}
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_job_count_queued(struct db *db, int64_t user_id, int64_t *n)
{
	struct stmt *s = q_start(db, &q_count_queued);
	int rc;

	q_int(s, 1, user_id);
	rc = q_row(s);
	if (rc == DB_OK)
		*n = q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_job_purge(struct db *db, int64_t before, int limit, int64_t *deleted)
{
	struct stmt *s;
	int rc;

	if (db_is_pg(db)) {
		s = q_start(db, &q_purge_pg);
		q_int(s, 1, before);
		q_int(s, 2, limit);
		rc = q_row(s);
		if (rc == DB_OK && deleted)
			*deleted = q_i64(s, 0);
		q_end(s);
		return rc == DB_OK ? DB_OK : DB_ERROR;
	}
	if (db_begin_write(db))
		return DB_ERROR;
	s = q_start(db, &q_purge_bytes);
	q_int(s, 1, before);
	q_int(s, 2, limit);
	rc = q_exec(s, NULL);
	if (rc == DB_OK) {
		s = q_start(db, &q_purge);
		q_int(s, 1, before);
		q_int(s, 2, limit);
		rc = q_exec(s, deleted);
	}
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	return DB_OK;
}

int db_job_claimable(struct db *db, int64_t now, int64_t max_running, const char *kinds, bool *yes)
{
	struct stmt *s = q_start(db, &q_claimable);
	int rc;

	q_int(s, 1, now);
	q_int(s, 2, max_running);
	q_text(s, 3, kinds);
	rc = q_row(s);
	*yes = rc == DB_OK && q_i64(s, 0) != 0;
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_job_fail_lost(struct db *db, int64_t now, const char *once_kinds, int64_t adopt_since,
		     struct db_job_ref *out, size_t max, size_t *n)
{
	struct stmt *s = q_start(db, &q_fail_exhausted);
	int rc;

	*n = 0;
	q_int(s, 1, now);
	q_text(s, 2, once_kinds);
	q_int(s, 3, adopt_since);
	q_int(s, 4, (int64_t)max);
	while ((rc = q_row(s)) == DB_OK && *n < max) {
		out[*n].id = q_i64(s, 0);
		out[*n].user_id = q_i64(s, 1);
		(*n)++;
	}
	q_end(s);
	return rc == DB_ERROR ? DB_ERROR : DB_OK;
}

int db_job_adoptable(struct db *db, int64_t now, int64_t since, int64_t *ids, size_t max, size_t *n)
{
	struct stmt *s = q_start(db, &q_adoptable);
	int rc;

	*n = 0;
	q_int(s, 1, now);
	q_int(s, 2, since);
	q_int(s, 3, (int64_t)max);
	while ((rc = q_row(s)) == DB_OK && *n < max)
		ids[(*n)++] = q_i64(s, 0);
	q_end(s);
	return rc == DB_ERROR ? DB_ERROR : DB_OK;
}

int db_job_claim_next(struct db *db, const char *owner, int64_t now, int64_t lease_s,
		      int64_t max_running, const char *kinds, struct db_job *out)
{
	struct stmt *s = q_start(db, &q_claim);

	q_text(s, 1, owner);
	q_int(s, 2, now);
	q_int(s, 3, lease_s);
	q_int(s, 4, max_running);
	q_text(s, 5, kinds);
	return job_row(s, out);
}

int db_job_count_running(struct db *db, int64_t user_id, int64_t now, int64_t *n)
{
	struct stmt *s = q_start(db, &q_count_running);
	int rc;

	q_int(s, 1, user_id);
	q_int(s, 2, now);
	rc = q_row(s);
	*n = rc == DB_OK ? q_i64(s, 0) : 0;
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_job_renew(struct db *db, int64_t id, const char *owner, int64_t now,
		 int64_t lease_s, bool *cancel_requested)
{
	struct stmt *s = q_start(db, &q_renew);
	int rc;

	q_int(s, 1, id);
	q_text(s, 2, owner);
	q_int(s, 3, now);
	q_int(s, 4, lease_s);
	rc = q_row(s);
	if (rc == DB_OK)
		*cancel_requested = q_i64(s, 0) != 0;
	q_end(s);
	return rc;
}

int db_job_append(struct db *db, int64_t id, const char *owner, const char *stream,
		  const void *data, size_t len, int64_t now, int64_t *seq_out)
{
	struct db_chunk_in c = { stream, data, len };

	return db_job_append_batch(db, id, owner, &c, 1, NULL, now, seq_out, NULL);
}

int db_job_append_batch(struct db *db, int64_t id, const char *owner,
			const struct db_chunk_in *chunks, size_t n, const int64_t *offset,
			int64_t now, int64_t *first_seq, int64_t *user_bytes)
{
	struct stmt *s;
	int64_t seq = 0, user_id = 0, bytes = 0, ubytes = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		bytes += (int64_t)chunks[i].len;
	if (db_begin_write(db))
		return DB_ERROR;
	s = q_start(db, &q_batch_bump);
	q_int(s, 1, id);
	q_text(s, 2, owner);
	q_int(s, 3, (int64_t)n);
	q_int(s, 4, bytes);
	q_int(s, 5, offset ? 1 : 0);
	q_int(s, 6, offset ? *offset : 0);
	rc = q_row(s);
	if (rc == DB_OK) {
		seq = q_i64(s, 0) - (int64_t)n + 1;
		user_id = q_i64(s, 1);
	}
	q_end(s);
	for (size_t i = 0; i < n && rc == DB_OK; i++) {
		s = q_start(db, &q_append);
		q_int(s, 1, id);
		q_int(s, 2, seq + (int64_t)i);
		q_text(s, 3, chunks[i].stream);
		q_blob(s, 4, chunks[i].data, chunks[i].len);
		q_int(s, 5, now);
		rc = q_exec(s, NULL);
	}
	if (rc == DB_OK) {
		s = q_start(db, &q_user_bytes_add);
		q_int(s, 1, user_id);
		q_int(s, 2, bytes);
		rc = q_row(s);
		if (rc == DB_OK)
			ubytes = q_i64(s, 0);
		q_end(s);
		if (rc == DB_NOTFOUND)
			rc = DB_ERROR;   /* the job's user is gone: the job row would be too */
	}
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return rc == DB_NOTFOUND ? DB_NOTFOUND : DB_ERROR;
	}
	if (first_seq)
		*first_seq = seq;
	if (user_bytes)
		*user_bytes = ubytes;
	return DB_OK;
}

int db_user_output_bytes(struct db *db, int64_t user_id, int64_t *bytes)
{
	struct stmt *s = q_start(db, &q_user_bytes);
	int rc;

	q_int(s, 1, user_id);
	rc = q_row(s);
	if (rc == DB_OK)
		*bytes = q_i64(s, 0);
	q_end(s);
	return rc;
}

int db_job_finish(struct db *db, int64_t id, const char *owner, enum job_state state,
		  bool has_exit_code, int exit_code, const char *error, int64_t now)
{
	struct stmt *s;

	/* Refused, not cut: the row could not be read back whole. */
	if (error && strlen(error) >= DB_JOB_ERROR_MAX) {
		log_error("database: job %lld: an error message of %zu bytes is over the %d allowed",
			  (long long)id, strlen(error), DB_JOB_ERROR_MAX - 1);
		return DB_ERROR;
	}
	s = q_start(db, &q_finish);
	q_int(s, 1, id);
	q_text(s, 2, owner);
	q_text(s, 3, job_state_name(state));
	if (has_exit_code)
		q_int(s, 4, exit_code);
	q_text_or_null(s, 5, error);
	q_int(s, 6, now);
	return q_one(s);
}

int db_job_expire_lease(struct db *db, int64_t id, const char *owner, int64_t now)
{
	struct stmt *s = q_start(db, &q_expire);

	q_int(s, 1, id);
	q_text(s, 2, owner);
	q_int(s, 3, now);
	return q_one(s);
}

int db_job_release_lease(struct db *db, int64_t id, const char *owner)
{
	struct stmt *s = q_start(db, &q_release);

	q_int(s, 1, id);
	q_text(s, 2, owner);
	return q_one(s);
}

int db_job_set_container(struct db *db, int64_t id, const char *owner, const char *container_id,
			 int64_t started_at)
{
	struct stmt *s = q_start(db, &q_set_container);

	q_int(s, 1, id);
	q_text(s, 2, owner);
	q_text(s, 3, container_id);
	if (started_at > 0)
		q_int(s, 4, started_at);
	return q_one(s);
}

int db_job_container_ended(struct db *db, int64_t id, const char *owner, bool has_exit,
			   int exit_code, bool oom, int64_t ended_at)
{
	struct stmt *s = q_start(db, &q_container_ended);

	q_int(s, 1, id);
	q_text(s, 2, owner);
	if (has_exit)
		q_int(s, 3, exit_code);
	q_bool(s, 4, oom);
	q_int(s, 5, ended_at);
	return q_one(s);
}

int db_job_take_lost(struct db *db, int64_t id, const char *owner, int64_t now, int64_t lease_s)
{
	struct stmt *s = q_start(db, &q_take_lost);

	q_int(s, 1, id);
	q_text(s, 2, owner);
	q_int(s, 3, now);
	q_int(s, 4, lease_s);
	return q_one(s);
}

int db_job_count_queued_kinds(struct db *db, const char *kinds, int64_t *n)
{
	struct stmt *s = q_start(db, &q_count_queued_kinds);
	int rc;

	q_text(s, 1, kinds);
	rc = q_row(s);
	if (rc == DB_OK)
		*n = q_i64(s, 0);
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_job_cancel_queued(struct db *db, int64_t id, int64_t now)
{
	struct stmt *s = q_start(db, &q_cancel_queued);

	q_int(s, 1, id);
	q_int(s, 2, now);
	return q_one(s);
}

int db_job_flag_cancel(struct db *db, int64_t id)
{
	struct stmt *s = q_start(db, &q_flag_cancel);

	q_int(s, 1, id);
	return q_one(s);
}

struct stmt *job_output_start(struct db *db, int64_t id, int64_t after, int limit, size_t max_bytes)
{
	struct stmt *s = q_start(db, &q_output);

	q_int(s, 1, id);
	q_int(s, 2, after);
	q_int(s, 3, limit);
	if (db_is_pg(db))
		q_int(s, 4, max_bytes && max_bytes < (size_t)INT64_MAX ? (int64_t)max_bytes : INT64_MAX);
	return s;
}

int job_output_read(struct stmt *s, int limit, size_t max_bytes, db_chunk_fn fn, void *arg, bool *more)
{
	size_t total = 0;
	int rc, n = 0;
	int64_t window = -1;   /* PostgreSQL: chunks the window held, returned or not */

	*more = false;
	while ((rc = q_step(s)) == BE_ROW) {
		struct db_chunk c = {
			.seq = q_i64(s, 0),
			.stream = q_str(s, 1),
			.created_at = q_i64(s, 3),
		};

		c.data = q_blob_col(s, 2, &c.len);
		if (q_ncols(s) > 4)
			window = q_i64(s, 4);
		if (n > 0 && total + c.len > max_bytes) {
			*more = true;
			rc = BE_DONE;
			break;
		}
		total += c.len;
		n++;
		if (fn(&c, arg)) {
			rc = DB_ERROR;
			break;
		}
	}
	if (n == limit || (rc == BE_DONE && window > n))
		*more = true;
	q_end(s);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

int db_job_output(struct db *db, int64_t id, int64_t after, int limit, size_t max_bytes,
		  db_chunk_fn fn, void *arg, bool *more)
{
	return job_output_read(job_output_start(db, id, after, limit, max_bytes), limit, max_bytes, fn, arg, more);
}

int db_prefetch_output(struct db *db, struct db_prefetch *pf, size_t max_bytes, db_chunk_fn fn, void *arg,
		       bool *more)
{
	struct stmt *s = pf->output_stmt;

	(void)db;
	*more = false;
	if (!pf->done || pf->job_rc != DB_OK || !s)
		return DB_ERROR;
	pf->output_stmt = NULL;
	return job_output_read(s, pf->limit, max_bytes, fn, arg, more);
}

void db_prefetch_release(struct db *db, struct db_prefetch *pf)
{
	(void)db;
	if (pf->job_held)
		db_job_release(&pf->job);
	if (pf->output_stmt)
		q_end(pf->output_stmt);
	if (pf->events_stmt)
		q_end(pf->events_stmt);
	if (pf->board_stmt)
		q_end(pf->board_stmt);
	pf->output_stmt = pf->events_stmt = pf->board_stmt = NULL;
	memset(pf->bound_hash, 0, sizeof(pf->bound_hash));
	pf->job_held = false;
	pf->done = false;
}
