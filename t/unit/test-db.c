/* The data-access layer on a real SQLite file: migrations, sessions, the
 * job lifecycle with leases, ordered output, cancel and hand-back. */
#include "autoconfig.h"

#include <stdlib.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/util.h"
#include "db/db.h"
#include "db/migrations.h"
#include "services/jobs.h"
#include "t/unit/tap.h"

/* Runs a one-number query on its own connection: the count, or -1. */
static int system_sql(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	int n = -1;

	if (sqlite3_open(path, &h) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			n = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return n;
}

static int count_chunks(const struct db_chunk *c, void *arg)
{
	int64_t *last = arg;

	if (c->seq != *last + 1)
		return -1;   /* out of order: fail the read */
	*last = c->seq;
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/anyon-test-db-XXXXXX", path[256], err[256];
	unsigned char h[32], h2[32];
	struct db_session s, s2;
	struct db_user u;
	struct db_job job, other;
	struct db *db, *db2;
	enum job_state st;
	int64_t id, id2, seq = 0, last, now = 1000000, beat;
	bool cancel, more, dok;
	int applied = -1, cur, latest, purged;

	ok(mkdtemp(dir) != NULL, "scratch dir");
	snprintf(path, sizeof(path), "%s/t.db", dir);
	db = db_open(path, true, err, sizeof(err));
	ok(db != NULL, "open and migrate a new database");
	ok(db_schema_version(db, &cur, &latest) == DB_OK && cur == latest && cur >= 1,
	   "schema at latest version");
	ok(db_migrate(db, &applied) == DB_OK && applied == 0, "migrating again applies nothing");
	db2 = db_open(path, true, err, sizeof(err));
	ok(db2 != NULL, "a second connection opens the same file");

	ok(db_user_local(db, &u) == DB_OK && u.is_local && strcmp(u.login, "local") == 0,
	   "the local user exists");

	memset(h, 7, sizeof(h));
	ok(db_session_create(db, h, u.id, now, now + 60, "127.0.0.9", &s) == DB_OK, "session created");
	ok(db_session_count_from(db, "127.0.0.9", now - 10, &id) == DB_OK && id == 1 &&
	   db_session_count_from(db, "127.0.0.8", now - 10, &id) == DB_OK && id == 0, "sessions counted per address");
	ok(db_session_find(db2, h, now + 1, &s2) == DB_OK && s2.id == s.id && s2.user_id == u.id,
	   "session found by hash from another connection");
	ok(db_session_find(db, h, now + 60, &s2) == DB_NOTFOUND, "expired session not found");
	ok(db_session_touch(db, s.id, now + 30, now + 120) == DB_OK &&
	   db_session_find(db, h, now + 100, &s2) == DB_OK, "touch extends it");
	memset(h2, 9, sizeof(h2));
	ok(db_session_rotate(db, s.id, h2, u.id) == DB_OK, "rotate the token");
	ok(db_session_find(db, h, now + 31, &s2) == DB_NOTFOUND, "old hash no longer works");
	ok(db_session_find(db, h2, now + 31, &s2) == DB_OK && s2.id == s.id, "new hash works");
	ok(db_session_purge(db, now + 1000, &purged) == DB_OK && purged == 1, "purge removes expired");

	/* jobs */
	ok(db_job_create(db, u.id, "echo", "{\"lines\":[]}", 2, now, &id) == DB_OK, "job created");
	ok(db_job_get(db, id, u.id, &job) == DB_OK && job.state == JOB_QUEUED, "job is queued");
	db_job_release(&job);
	ok(db_job_get(db, id, u.id + 1, &job) == DB_NOTFOUND, "another user cannot see it");
	ok(jobs_claim(db, "w1", now, 10, &job) == DB_OK && job.id == id && job.state == JOB_RUNNING &&
	   job.attempts == 1, "w1 claims it");
	db_job_release(&job);
	ok(jobs_claim(db2, "w2", now + 1, 10, &other) == DB_NOTFOUND, "w2 finds nothing while leased");
	ok(db_job_append(db, id, "w1", "stdout", "a\n", 2, now, &seq) == DB_OK && seq == 1, "chunk 1");
	ok(db_job_append(db, id, "w1", "stderr", "b\n", 2, now, &seq) == DB_OK && seq == 2, "chunk 2");
	ok(db_job_append(db2, id, "w2", "stdout", "x", 1, now, &seq) == DB_NOTFOUND,
	   "a non-owner cannot append");
	ok(db_job_renew(db, id, "w1", now + 5, 10, &cancel) == DB_OK && !cancel, "w1 renews");

	/* w1 dies: after the lease w2 takes over */
	ok(jobs_claim(db2, "w2", now + 14, 10, &other) == DB_NOTFOUND, "lease still held at +14");
	ok(jobs_claim(db2, "w2", now + 16, 10, &other) == DB_OK && other.id == id &&
	   other.attempts == 2, "w2 takes the expired lease (attempt 2)");
	db_job_release(&other);
	ok(db_job_renew(db, id, "w1", now + 16, 10, &cancel) == DB_NOTFOUND, "w1 has lost it");
	ok(db_job_finish(db, id, "w1", JOB_SUCCEEDED, true, 0, NULL, now) == DB_NOTFOUND,
	   "w1 cannot finish it");
	ok(db_job_append(db2, id, "w2", "stdout", "c\n", 2, now, &seq) == DB_OK && seq == 3,
	   "w2 continues the sequence");

	/* w2 dies too: attempts exhausted -> failed, not stuck */
	ok(jobs_claim(db, "w3", now + 100, 10, &other) == DB_NOTFOUND, "nothing left to claim");
	ok(db_job_get(db, id, 0, &job) == DB_OK && job.state == JOB_FAILED && job.error[0],
	   "out of attempts: failed with a reason");
	db_job_release(&job);

	last = 0;
	ok(db_job_output(db, id, 0, 100, 1 << 20, count_chunks, &last, &more) == DB_OK && last == 3 && !more,
	   "output read in order");
	last = 1;
	ok(db_job_output(db, id, 1, 100, 1 << 20, count_chunks, &last, &more) == DB_OK && last == 3,
	   "output after seq 1");
	last = 0;
	ok(db_job_output(db, id, 0, 2, 1 << 20, count_chunks, &last, &more) == DB_OK && last == 2 && more,
	   "limit respected and more reported");

	/* finish, cancel, release */
	ok(db_job_create(db, u.id, "echo", "{}", 3, now, &id2) == DB_OK, "second job");
	ok(jobs_cancel(db, id2, u.id, now, &st) == DB_OK && st == JOB_CANCELLED, "queued job cancels at once");
	ok(jobs_cancel(db, id2, u.id, now, &st) == DB_CONFLICT, "cancelling again conflicts");
	ok(db_job_create(db, u.id, "echo", "{}", 3, now, &id2) == DB_OK &&
	   jobs_claim(db, "w1", now, 10, &job) == DB_OK && job.id == id2, "third job claimed");
	db_job_release(&job);
	ok(jobs_cancel(db2, id2, u.id, now, &st) == DB_OK && st == JOB_RUNNING, "running job flagged");
	ok(db_job_renew(db, id2, "w1", now, 10, &cancel) == DB_OK && cancel, "renew reports the cancel");
	ok(db_job_release_lease(db, id2, "w1") == DB_OK, "hand back");
	ok(db_job_get(db, id2, 0, &job) == DB_OK && job.state == JOB_QUEUED && job.attempts == 0,
	   "handed-back job is queued and the attempt did not count");
	db_job_release(&job);
	ok(jobs_claim(db, "w1", now, 10, &job) == DB_OK, "claim again");
	db_job_release(&job);
	ok(db_job_finish(db, id2, "w1", JOB_FAILED, true, 3, "exited with status 3", now) == DB_OK,
	   "finish");
	ok(db_job_get(db, id2, 0, &job) == DB_OK && job.state == JOB_FAILED && job.has_exit_code &&
	   job.exit_code == 3, "final state and exit code stored");
	db_job_release(&job);

	ok(db_worker_latest(db, &beat, &dok) == DB_NOTFOUND, "no heartbeat yet");
	ok(db_worker_heartbeat(db, "w1", "host", 1, now, now + 5, true, "v") == DB_OK &&
	   db_worker_heartbeat(db, "w1", "host", 1, now, now + 9, false, NULL) == DB_OK, "heartbeats");
	ok(db_worker_latest(db2, &beat, &dok) == DB_OK && beat == now + 9 && !dok, "latest heartbeat read");

	/* A migration that fails half-way leaves the database as it was. */
	{
		const struct migration extra[] = {
			{ 900, "900_good.sql", "CREATE TABLE t900 (x INTEGER); INSERT INTO t900 VALUES (1);" },
			{ 901, "901_bad.sql", "CREATE TABLE t901 (x INTEGER); INSERT INTO t901 VALUES (1); "
					      "INSERT INTO no_such_table VALUES (2);" },
			{ 902, "902_after.sql", "CREATE TABLE t902 (x INTEGER);" },
		};
		int applied2 = -1, v = 0, l = 0;

		ok(db_migrate_list(db, extra, 3, &applied2) == DB_ERROR && applied2 == 1,
		   "a failing migration stops the run after the good one before it");
		ok(db_schema_version(db, &v, &l) == DB_OK && v == 900, "version recorded up to the good one");
		ok(db_ping(db) == DB_OK && system_sql(path, "SELECT count(*) FROM t900") == 1,
		   "the good migration's table exists");
		ok(system_sql(path, "SELECT count(*) FROM t901") == -1,
		   "nothing of the failed migration remains (its first table was rolled back)");
		ok(system_sql(path, "SELECT count(*) FROM t902") == -1, "later migrations were not applied");
	}

	db_close(db2);
	db_close(db);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	ok(system(err) == 0, "cleanup");
	return done_testing();
}
