/* The data-layer contract on a real database: migrations, nested
 * transactions, sessions, the job lifecycle with leases, ordered output,
 * cancel and hand-back, concurrency across processes, and values that do
 * not fit. It runs on SQLite (a scratch file) or, when ANYON_TEST_PG_URI
 * names a database it may wipe, on PostgreSQL; `./dev test --pg` sets it,
 * and ANYON_TEST_BACKEND=pg without it is a failure, never a skip. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "db/db.h"
#include "db/migrations.h"
#include "db/query.h"
#include "services/jobs.h"
#include "t/unit/tap.h"

static char target[512];

/* Runs a one-number query on its own connection: the number, or -1 when
 * the query fails (e.g. no such table). Each call site passes its own
 * static struct query. */
static int64_t scalar(struct query *q)
{
	char err[256];
	struct db *db = db_open(target, false, err, sizeof(err));
	struct stmt *s;
	int64_t n = -1;

	if (!db)
		return -1;
	s = q_start(db, q);
	if (q_row(s) == DB_OK)
		n = q_i64(s, 0);
	q_end(s);
	db_close(db);
	return n;
}


static int run_sql(const char *sql)
{
	char err[256];
	struct db *db = db_open(target, false, err, sizeof(err));
	int rc;

	if (!db) {
		diag("%s", err);
		return -1;
	}
	rc = db_exec(db, sql);
	db_close(db);
	return rc;
}

/* Forks n children that each run fn(i) on their own connection; true
 * when all exited 0. */
static bool in_children(int n, int (*fn)(struct db *db, int i))
{
	bool all = true;

	fflush(stdout);
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			char err[256];
			struct db *db = db_open(target, false, err, sizeof(err));
			int rc = db ? fn(db, i) : 1;

			db_close(db);
			_exit(rc ? 1 : 0);
		}
		if (pid < 0)
			all = false;
	}
	for (int i = 0; i < n; i++) {
		int st;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			all = false;
	}
	return all;
}

#define APPENDERS 4
#define APPENDS 50
static int64_t race_job;

static int append_many(struct db *db, int i)
{
	char line[32];

	for (int k = 0; k < APPENDS; k++) {
		snprintf(line, sizeof(line), "%d:%d\n", i, k);
		if (db_job_append(db, race_job, "racer", "stdout", line, strlen(line), 1, NULL))
			return 1;
	}
	return 0;
}

#define CLAIMERS 4
#define CLAIM_JOBS 40

static int claim_all(struct db *db, int i)
{
	char owner[16];
	struct db_job job;
	int rc;

	snprintf(owner, sizeof(owner), "claimer%d", i);
	while ((rc = jobs_claim(db, owner, 2000000, 600, 0, ~0u, &job)) == DB_OK) {
		rc = db_job_finish(db, job.id, owner, JOB_SUCCEEDED, true, 0, NULL, 2000001);
		db_job_release(&job);
		if (rc)
			return 1;
	}
	return rc == DB_NOTFOUND ? 0 : 1;
}

static int count_chunks(const struct db_chunk *c, void *arg)
{
	int64_t *last = arg;

	if (c->seq != *last + 1)
		return -1;   /* out of order: fail the read */
	*last = c->seq;
	return 0;
}

/* Appends each event's fields to the string of *(char (*)[1024])arg: two
 * reads of the feed compare equal when they gave the same rows in order. */
static int events_text(const struct db_event *ev, void *arg)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 1024 - n, "%lld/%lld/%s/%lld/%lld/%lld;", (long long)ev->id, (long long)ev->user_id,
		 ev->kind, (long long)ev->subject, (long long)ev->project_id, (long long)ev->created_at);
	return 0;
}

/* Counts events into *(int *)arg; a moved event must have no project. */
static int ev_count(const struct db_event *ev, void *arg)
{
	if (strcmp(ev->kind, "task.moved") == 0 && ev->project_id != 0)
		return -1;
	(*(int *)arg)++;
	return 0;
}

int main(void)
{
	char dir[] = "/tmp/anyon-test-db-XXXXXX", err[256];
	const char *pg = getenv("ANYON_TEST_PG_URI"), *backend = getenv("ANYON_TEST_BACKEND");
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
	if (backend && strcmp(backend, "pg") == 0 && !(pg && *pg))
		BAIL_OUT("ANYON_TEST_BACKEND=pg but ANYON_TEST_PG_URI is not set");
	if (pg && *pg) {
		snprintf(target, sizeof(target), "%s", pg);
		ok(run_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;") == DB_OK,
		   "PostgreSQL test database wiped");
	} else {
		snprintf(target, sizeof(target), "%s/t.db", dir);
	}
	diag("backend: %s", pg && *pg ? "postgresql" : "sqlite");
	db = db_open(target, true, err, sizeof(err));
	ok(db != NULL, "open and migrate a new database");
	if (!db)
		BAIL_OUT("%s", err);
	ok(db_schema_version(db, &cur, &latest) == DB_OK && cur == latest && cur >= 1,
	   "schema at latest version");
	ok(db_migrate(db, &applied) == DB_OK && applied == 0, "migrating again applies nothing");
	db2 = db_open(target, true, err, sizeof(err));
	ok(db2 != NULL, "a second connection opens the same file");

	ok(db_user_local(db, &u) == DB_OK && u.is_local && strcmp(u.login, "local") == 0,
	   "the local user exists");

	memset(h, 7, sizeof(h));
	{
		struct db_session_new sn = { .hash = h, .user_id = u.id, .now = now, .expires_at = now + 60,
					     .addr = "127.0.0.9", .agent = "test-db/1.0" };

		ok(db_session_create(db, &sn, &s) == DB_OK, "session created");
	}
	ok(db_session_count_from(db, "127.0.0.9", now - 10, &id) == DB_OK && id == 1 &&
	   db_session_count_from(db, "127.0.0.8", now - 10, &id) == DB_OK && id == 0, "sessions counted per address");
	ok(db_session_find(db2, h, now + 1, &s2) == DB_OK && s2.id == s.id && s2.user_id == u.id,
	   "session found by hash from another connection");
	ok(db_session_find(db, h, now + 60, &s2) == DB_NOTFOUND, "expired session not found");
	{
		struct db_user su;
		bool has = false;

		ok(db_session_find_user(db2, h, now + 1, false, &s2, &su, &has) == DB_OK && s2.id == s.id && has &&
		   su.id == u.id && strcmp(su.login, "local") == 0, "session and its user in one query");
		memset(h2, 3, sizeof(h2));
		struct db_session_new sn = { .hash = h2, .now = now, .expires_at = now + 60 };

		ok(db_session_create(db, &sn, &s2) == DB_OK &&
		   db_session_find_user(db, h2, now + 1, false, &s2, &su, &has) == DB_OK && !has,
		   "a session without a user says so");
	}
	ok(db_session_touch(db, s.id, now + 30, now + 120) == DB_OK &&
	   db_session_find(db, h, now + 100, &s2) == DB_OK, "touch extends it");
	memset(h2, 9, sizeof(h2));
	ok(db_session_rotate(db, s.id, h2, u.id) == DB_OK, "rotate the token");
	ok(db_session_find(db, h, now + 31, &s2) == DB_NOTFOUND, "old hash no longer works");
	ok(db_session_find(db, h2, now + 31, &s2) == DB_OK && s2.id == s.id, "new hash works");
	ok(db_session_purge(db, now + 1000, &purged) == DB_OK && purged == 2, "purge removes expired");

	/* jobs */
	ok(db_job_create(db, u.id, "echo", "{\"lines\":[]}", 2, now, &id) == DB_OK, "job created");
	ok(db_job_get(db, id, u.id, &job) == DB_OK && job.state == JOB_QUEUED, "job is queued");
	db_job_release(&job);
	ok(db_job_get(db, id, u.id + 1, &job) == DB_NOTFOUND, "another user cannot see it");
	ok(jobs_claim(db, "w1", now, 10, 0, ~0u, &job) == DB_OK && job.id == id && job.state == JOB_RUNNING &&
	   job.attempts == 1, "w1 claims it");
	db_job_release(&job);
	ok(jobs_claim(db2, "w2", now + 1, 10, 0, ~0u, &other) == DB_NOTFOUND, "w2 finds nothing while leased");
	ok(db_job_append(db, id, "w1", "stdout", "a\n", 2, now, &seq) == DB_OK && seq == 1, "chunk 1");
	ok(db_job_append(db, id, "w1", "stderr", "b\n", 2, now, &seq) == DB_OK && seq == 2, "chunk 2");
	ok(db_job_append(db2, id, "w2", "stdout", "x", 1, now, &seq) == DB_NOTFOUND,
	   "a non-owner cannot append");
	ok(db_job_renew(db, id, "w1", now + 5, 10, &cancel) == DB_OK && !cancel, "w1 renews");

	/* w1 dies: after the lease w2 takes over */
	ok(jobs_claim(db2, "w2", now + 14, 10, 0, ~0u, &other) == DB_NOTFOUND, "lease still held at +14");
	ok(jobs_claim(db2, "w2", now + 16, 10, 0, ~0u, &other) == DB_OK && other.id == id &&
	   other.attempts == 2, "w2 takes the expired lease (attempt 2)");
	db_job_release(&other);
	ok(db_job_renew(db, id, "w1", now + 16, 10, &cancel) == DB_NOTFOUND, "w1 has lost it");
	ok(db_job_finish(db, id, "w1", JOB_SUCCEEDED, true, 0, NULL, now) == DB_NOTFOUND,
	   "w1 cannot finish it");
	ok(db_job_append(db2, id, "w2", "stdout", "c\n", 2, now, &seq) == DB_OK && seq == 3,
	   "w2 continues the sequence");

	/* w2 dies too: attempts exhausted -> failed, not stuck */
	ok(jobs_claim(db, "w3", now + 100, 10, 0, ~0u, &other) == DB_NOTFOUND, "nothing left to claim");
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

	/* A request's reads with its session (one round trip on PostgreSQL):
	 * the owner gets the job and its output, anyone else a NOTFOUND; a
	 * deleted session finds nothing at once; the connection runs plain
	 * statements afterwards. */
	{
		unsigned char h3[32], h4[32], nonce[DB_NONCE_LEN] = { 0 }, tag[DB_TAG_LEN] = { 0 };
		struct db_session ps;
		struct db_user pu, stranger;
		struct db_prefetch pf;
		int64_t sid = 0, xid = 0;
		bool has = false;

		memset(h3, 0x31, sizeof(h3));
		memset(h4, 0x41, sizeof(h4));
		struct db_session_new n3 = { .hash = h3, .user_id = u.id, .now = now, .expires_at = now + 9999 };
		ok(db_user_create(db, "stranger", "", now, &stranger) == DB_OK, "prefetch: a second user");
		struct db_session_new n4 = { .hash = h4, .user_id = stranger.id, .now = now,
					     .expires_at = now + 9999 };
		ok(db_session_create(db, &n3, &s2) == DB_OK && db_session_create(db, &n4, &ps) == DB_OK,
		   "prefetch: a session for each");
		sid = s2.id;

		memset(&pf, 0, sizeof(pf));
		pf.job_id = id;
		pf.output = true;
		pf.after = 0;
		pf.limit = 100;
		pf.max_bytes = 1 << 20;
		pf.secret_kind = "github_token";
		ok(db_session_find_prefetch(db2, h3, now + 1, false, &ps, &pu, &has, &pf) == DB_OK && pf.done &&
		   has && pu.id == u.id && ps.id == sid, "prefetch: the session and its user");
		ok(pf.job_rc == DB_OK && pf.job_held && pf.job.id == id && pf.job.user_id == u.id &&
		   pf.job.state == JOB_FAILED, "prefetch: the owner's job came with it");
		ok(pf.secret_rc == DB_NOTFOUND, "prefetch: no GitHub token yet");
		last = 0;
		ok(db_prefetch_output(db2, &pf, 1 << 20, count_chunks, &last, &more) == DB_OK && last == 3 && !more,
		   "prefetch: its output in order");
		ok(db_prefetch_output(db2, &pf, 1 << 20, count_chunks, &last, &more) == DB_ERROR,
		   "prefetch: the output is read once");
		db_prefetch_release(db2, &pf);
		ok(!pf.job_held && !pf.done, "prefetch: released");
		ok(db_job_get(db2, id, u.id, &job) == DB_OK && job.id == id, "a plain read after the pipeline");
		db_job_release(&job);

		memset(&pf, 0, sizeof(pf));
		pf.job_id = id;
		pf.output = true;
		pf.limit = 100;
		pf.secret_kind = "github_token";
		ok(db_session_find_prefetch(db2, h4, now + 1, false, &ps, &pu, &has, &pf) == DB_OK && pf.done &&
		   has && pu.id == stranger.id, "prefetch: another user's session");
		ok(pf.job_rc == DB_NOTFOUND && !pf.job_held && !pf.output_stmt,
		   "prefetch: another user's job is not found, nor its output");
		ok(db_prefetch_output(db2, &pf, 1 << 20, count_chunks, &last, &more) == DB_ERROR,
		   "prefetch: no output of another user's job");
		db_prefetch_release(db2, &pf);

		ok(db_secret_reserve(db, u.id, "github_token", now, &xid) == DB_OK &&
		   db_secret_store(db, xid, "k1", nonce, (const unsigned char *)"x", 1, tag, 0, now) == DB_OK &&
		   db_secret_set_invalid(db, u.id, "github_token", true) == DB_OK, "prefetch: a token row");
		memset(&pf, 0, sizeof(pf));
		pf.secret_kind = "github_token";
		ok(db_session_find_prefetch(db2, h3, now + 1, false, &ps, &pu, &has, &pf) == DB_OK &&
		   pf.secret_rc == DB_OK && pf.secret_invalid, "prefetch: the user's token metadata");
		db_prefetch_release(db2, &pf);
		memset(&pf, 0, sizeof(pf));
		pf.secret_kind = "github_token";
		ok(db_session_find_prefetch(db2, h4, now + 1, false, &ps, &pu, &has, &pf) == DB_OK &&
		   pf.secret_rc == DB_NOTFOUND, "prefetch: not another user's token");
		db_prefetch_release(db2, &pf);
		ok(db_secret_delete(db, u.id, "github_token") == DB_OK, "prefetch: token row removed");

		memset(&pf, 0, sizeof(pf));
		pf.job_id = 999999;
		ok(db_session_find_prefetch(db2, h3, now + 1, false, &ps, &pu, &has, &pf) == DB_OK &&
		   pf.job_rc == DB_NOTFOUND, "prefetch: no such job");
		db_prefetch_release(db2, &pf);

		/* The events with the session: keyed by its user in SQL,
		 * each row checked in C; the same rows as db_event_list(). */
		{
			char got[1024] = "", want[1024] = "";
			unsigned char hcopy[32];
			int64_t e1 = 0;

			ok(db_begin_write(db) == DB_OK &&
			   db_event_add(db, u.id, "task.created", 7, 0, now, &e1) == DB_OK &&
			   db_event_add(db, stranger.id, "task.created", 8, 0, now, NULL) == DB_OK &&
			   db_event_add(db, u.id, "task.updated", 7, 0, now + 1, NULL) == DB_OK &&
			   db_event_add(db, u.id, "task.moved", 7, 0, now + 2, NULL) == DB_OK &&
			   db_commit(db) == DB_OK, "prefetch: events of both users");
			memset(&pf, 0, sizeof(pf));
			pf.events = true;
			pf.after = e1 - 1;
			pf.limit = 2;
			memcpy(hcopy, h3, sizeof(hcopy));
			ok(db_session_find_prefetch(db2, hcopy, now + 1, false, &ps, &pu, &has, &pf) == DB_OK && pf.done &&
			   has && pu.id == u.id && pf.events_stmt && pf.rows_user == u.id,
			   "prefetch: the events came with the session");
			/* The caller's hash is gone by the time the handler reads
			 * (a local of fcgi/session.c's find_session()): SQLite
			 * steps the read then, so it must not point there. */
			memset(hcopy, 0, sizeof(hcopy));
			more = false;
			ok(db_prefetch_events(db2, &pf, u.id, events_text, got, &more) == DB_OK && more &&
			   db_event_list(db2, u.id, e1 - 1, 2, events_text, want, &more) == DB_OK && more &&
			   got[0] && strcmp(got, want) == 0 && !strstr(got, "/8/"),
			   "prefetch: the user's events, as db_event_list() reads them");
			ok(db_prefetch_events(db2, &pf, u.id, events_text, got, &more) == DB_ERROR,
			   "prefetch: the events are read once");
			db_prefetch_release(db2, &pf);

			memset(&pf, 0, sizeof(pf));
			pf.events = true;
			pf.after = e1 - 1;
			pf.limit = 100;
			got[0] = want[0] = '\0';
			ok(db_session_find_prefetch(db2, h4, now + 1, false, &ps, &pu, &has, &pf) == DB_OK &&
			   pu.id == stranger.id && pf.rows_user == stranger.id &&
			   db_prefetch_events(db2, &pf, u.id, events_text, got, &more) == DB_ERROR && !got[0],
			   "prefetch: another user's read is never given to the first");
			ok(db_prefetch_events(db2, &pf, stranger.id, events_text, got, &more) == DB_OK &&
			   db_event_list(db2, stranger.id, e1 - 1, 100, events_text, want, &more) == DB_OK &&
			   strcmp(got, want) == 0 && strstr(got, "/8/") && !strstr(got, "task.updated"),
			   "prefetch: the second user gets only his own events");
			db_prefetch_release(db2, &pf);

			memset(&pf, 0, sizeof(pf));
			pf.events = true;
			pf.limit = 100;
			got[0] = '\0';
			ok(db_session_find_prefetch(db2, h3, now + 1, false, &ps, &pu, &has, &pf) == DB_OK &&
			   pf.events_stmt, "prefetch: events pending");
			pf.rows_user = stranger.id;   /* as if the read were another user's */
			ok(db_prefetch_events(db2, &pf, stranger.id, events_text, got, &more) == DB_ERROR && !got[0],
			   "prefetch: rows of a user other than the one asked for are refused, none passed on");
			db_prefetch_release(db2, &pf);
			ok(!pf.events_stmt && !pf.done, "prefetch: events released");
		}

		ok(db_session_delete(db, sid) == DB_OK, "prefetch: the session is revoked");
		memset(&pf, 0, sizeof(pf));
		pf.job_id = id;
		pf.output = true;
		pf.limit = 100;
		ok(db_session_find_prefetch(db2, h3, now + 1, false, &ps, &pu, &has, &pf) == DB_NOTFOUND &&
		   !pf.done && !pf.job_held && !pf.output_stmt, "prefetch: a revoked session finds nothing at once");
		db_prefetch_release(db2, &pf);
		memset(&pf, 0, sizeof(pf));
		pf.events = true;
		pf.limit = 100;
		ok(db_session_find_prefetch(db2, h3, now + 1, false, &ps, &pu, &has, &pf) == DB_NOTFOUND &&
		   !pf.done && !pf.events_stmt &&
		   db_prefetch_events(db2, &pf, u.id, events_text, NULL, &more) == DB_ERROR,
		   "prefetch: ... nor its events");
		db_prefetch_release(db2, &pf);
		ok(db_user_set_disabled(db, stranger.id, true) == DB_OK, "prefetch: the second user is disabled");
		memset(&pf, 0, sizeof(pf));
		pf.job_id = id;
		ok(db_session_find_prefetch(db2, h4, now + 1, false, &ps, &pu, &has, &pf) == DB_NOTFOUND &&
		   !pf.done, "prefetch: a disabled user's session finds nothing");
		db_prefetch_release(db2, &pf);
		ok(db_session_find_user(db2, h4, now + 1, false, &ps, &pu, &has) == DB_NOTFOUND &&
		   db_session_delete(db, ps.id) == DB_OK, "plain statements after the pipelines");
	}

	/* finish, cancel, release */
	ok(db_job_create(db, u.id, "echo", "{}", 3, now, &id2) == DB_OK, "second job");
	ok(jobs_cancel(db, id2, u.id, now, &st) == DB_OK && st == JOB_CANCELLED, "queued job cancels at once");
	ok(jobs_cancel(db, id2, u.id, now, &st) == DB_CONFLICT, "cancelling again conflicts");
	ok(db_job_create(db, u.id, "echo", "{}", 3, now, &id2) == DB_OK &&
	   jobs_claim(db, "w1", now, 10, 0, ~0u, &job) == DB_OK && job.id == id2, "third job claimed");
	db_job_release(&job);
	ok(jobs_cancel(db2, id2, u.id, now, &st) == DB_OK && st == JOB_RUNNING, "running job flagged");
	ok(db_job_renew(db, id2, "w1", now, 10, &cancel) == DB_OK && cancel, "renew reports the cancel");
	ok(db_job_release_lease(db, id2, "w1") == DB_OK, "hand back");
	ok(db_job_get(db, id2, 0, &job) == DB_OK && job.state == JOB_QUEUED && job.attempts == 0,
	   "handed-back job is queued and the attempt did not count");
	db_job_release(&job);
	ok(jobs_claim(db, "w1", now, 10, 0, ~0u, &job) == DB_OK, "claim again");
	db_job_release(&job);
	ok(db_job_finish(db, id2, "w1", JOB_FAILED, true, 3, "exited with status 3", now) == DB_OK,
	   "finish");
	ok(db_job_get(db, id2, 0, &job) == DB_OK && job.state == JOB_FAILED && job.has_exit_code &&
	   job.exit_code == 3, "final state and exit code stored");
	db_job_release(&job);

	/* Per-user fairness: with at most 2 running per user, a third job of
	 * a busy user waits while another user's job is claimed. */
	{
		struct db_user busy, other_user;
		struct db_job j1, j2, j3;
		int64_t b1, b2, b3, o1, n = -1;

		ok(db_user_create(db, "busy", "", now, &busy) == DB_OK &&
		   db_user_create(db, "calm", "", now, &other_user) == DB_OK &&
		   db_job_create(db, busy.id, "echo", "{}", 3, now, &b1) == DB_OK &&
		   db_job_create(db, busy.id, "echo", "{}", 3, now, &b2) == DB_OK &&
		   db_job_create(db, busy.id, "echo", "{}", 3, now, &b3) == DB_OK &&
		   db_job_create(db, other_user.id, "echo", "{}", 3, now, &o1) == DB_OK, "fairness: jobs queued");
		ok(jobs_claim(db, "wf", now, 60, 2, ~0u, &j1) == DB_OK && j1.id == b1 &&
		   jobs_claim(db2, "wg", now, 60, 2, ~0u, &j2) == DB_OK && j2.id == b2, "fairness: two of busy's jobs run");
		ok(db_job_count_running(db, busy.id, now, &n) == DB_OK && n == 2, "fairness: counted 2 running");
		ok(jobs_claim(db, "wf", now, 60, 2, ~0u, &j3) == DB_OK && j3.id == o1,
		   "fairness: the next claim skips busy's third job and takes calm's");
		db_job_release(&j3);
		ok(jobs_claim(db, "wf", now, 60, 2, ~0u, &j3) == DB_NOTFOUND, "fairness: busy's third job waits");
		ok(jobs_claim(db, "wf", now, 60, 0, ~0u, &j3) == DB_OK && j3.id == b3,
		   "fairness: without a limit it is claimed");
		db_job_release(&j3);
		ok(db_job_count_running(db, busy.id, now + 61, &n) == DB_OK && n == 0,
		   "fairness: expired leases do not count as running");
		db_job_release(&j1);
		db_job_release(&j2);
		ok(db_job_finish(db, b1, "wf", JOB_SUCCEEDED, true, 0, NULL, now) == DB_OK &&
		   db_job_finish(db, b2, "wg", JOB_SUCCEEDED, true, 0, NULL, now) == DB_OK &&
		   db_job_finish(db, b3, "wf", JOB_SUCCEEDED, true, 0, NULL, now) == DB_OK &&
		   db_job_finish(db, o1, "wf", JOB_SUCCEEDED, true, 0, NULL, now) == DB_OK,
		   "fairness: all four finish");
	}

	/* Claim by capability, and the rule for a lost run of a kind that
	 * must not run twice. */
	{
		struct db_job kj;
		int64_t k1;
		struct db_job_ref refs[8];
		size_t lost = 0;
		bool any = true;

		ok(db_job_create(db, u.id, "needsdocker", "{}", 3, now, &k1) == DB_OK, "kinds: a job of another kind");
		ok(db_job_claimable(db, now, 0, "echo,needsdock", &any) == DB_OK && !any,
		   "kinds: not claimable by a worker without that kind (names match whole)");
		ok(db_job_claim_next(db, "wk", now, 60, 0, "echo,needsdock", &kj) == DB_NOTFOUND,
		   "kinds: nor claimed");
		ok(db_job_claim_next(db, "wk", now, 60, 0, "echo,needsdocker", &kj) == DB_OK && kj.id == k1,
		   "kinds: claimed by a worker that can run it");
		db_job_release(&kj);
		ok(db_job_fail_lost(db, now + 61, "", now + 61 - 600, refs, 8, &lost) == DB_OK && lost == 0,
		   "kinds: a lost run of a kind that may run again is left for the next claim");
		ok(db_job_fail_lost(db, now + 61, "needsdocker", now + 61 - 600, refs, 8, &lost) == DB_OK && lost == 1 &&
		   refs[0].id == k1,
		   "kinds: a lost run of a kind that must not run twice is failed");
		ok(db_job_get(db, k1, 0, &kj) == DB_OK && kj.state == JOB_FAILED && strstr(kj.error, "not repeated"),
		   "kinds: with an error saying why");
		db_job_release(&kj);
	}

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
		static struct query q900 = QUERY("test.t900", "SELECT count(*) FROM t900");
		static struct query q901 = QUERY("test.t901", "SELECT count(*) FROM t901");
		static struct query q902 = QUERY("test.t902", "SELECT count(*) FROM t902");

		ok(db_ping(db) == DB_OK && scalar(&q900) == 1, "the good migration's table exists");
		ok(scalar(&q901) == -1,
		   "nothing of the failed migration remains (its first table was rolled back)");
		ok(scalar(&q902) == -1, "later migrations were not applied");
	}

	/* copy-db moves every table of the schema (a new table must join it). */
	{
		static struct query q_tables = QUERY2("test.tables",
			"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
			"AND name NOT IN ('schema_migrations') AND name NOT LIKE 't90%' ORDER BY name",
			"SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
			"AND table_name NOT IN ('schema_migrations') AND table_name NOT LIKE 't90%' ORDER BY 1");
		struct stmt *qs = q_start(db, &q_tables);
		char missing[256] = "";
		int n = 0;

		while (q_step(qs) == BE_ROW) {
			n++;
			if (!db_copy_covers(q_str(qs, 0)) && strlen(missing) + strlen(q_str(qs, 0)) + 2 < sizeof(missing)) {
				strcat(missing, " ");
				strcat(missing, q_str(qs, 0));
			}
		}
		q_end(qs);
		ok(n >= 10 && !missing[0], "copy-db covers all %d tables (missing:%s)", n, missing[0] ? missing : " none");
	}

	/* Both dialects carry the same migrations, number for number. */
	{
		bool same = migrations_sqlite_count == migrations_postgresql_count;

		for (size_t i = 0; same && i < migrations_sqlite_count; i++)
			same = migrations_sqlite[i].version == migrations_postgresql[i].version &&
			       strcmp(migrations_sqlite[i].name, migrations_postgresql[i].name) == 0;
		ok(same, "SQLite and PostgreSQL migration lists match (%zu each)", migrations_sqlite_count);
	}

	/* Transactions nest: an inner rollback undoes only the inner level. */
	{
		struct db_user a, b, c;

		ok(db_begin_write(db) == DB_OK && db_tx_depth(db) == 1 &&
		   db_user_create(db, "outer", "", now, &a) == DB_OK, "outer transaction writes");
		ok(db_begin_write(db) == DB_OK && db_tx_depth(db) == 2 &&
		   db_user_create(db, "inner", "", now, &b) == DB_OK, "inner level (savepoint) writes");
		db_rollback(db);
		ok(db_tx_depth(db) == 1 && db_user_by_login(db, "inner", &b) == DB_NOTFOUND &&
		   db_user_by_login(db, "outer", &a) == DB_OK, "inner rollback keeps the outer write");
		ok(db_begin_write(db) == DB_OK && db_user_create(db, "inner2", "", now, &b) == DB_OK &&
		   db_commit(db) == DB_OK && db_tx_depth(db) == 1, "inner commit releases the savepoint");
		ok(db_user_by_login(db2, "outer", &c) == DB_NOTFOUND, "nothing visible outside before commit");
		ok(db_commit(db) == DB_OK && db_tx_depth(db) == 0 &&
		   db_user_by_login(db2, "inner2", &c) == DB_OK && db_user_by_login(db2, "outer", &c) == DB_OK,
		   "outer commit publishes both levels");
		ok(db_begin_write(db) == DB_OK && db_user_create(db, "gone", "", now, &a) == DB_OK, "write");
		db_rollback(db);
		ok(db_tx_depth(db) == 0 && db_user_by_login(db, "gone", &a) == DB_NOTFOUND,
		   "outer rollback undoes it");
		ok(db_user_create(db, "outer", "", now, &a) == DB_CONFLICT, "a taken login conflicts");
	}

	/* A stored value longer than its field is an error, never cut. */
	{
		char sql[600], login[DB_LOGIN_MAX + 8];
		struct db_user big;

		memset(login, 'x', sizeof(login) - 1);
		login[sizeof(login) - 1] = '\0';
		snprintf(sql, sizeof(sql), "INSERT INTO users (login, name, created_at, updated_at) "
			 "VALUES ('%s', '', 1, 1)", login);
		ok(run_sql(sql) == DB_OK, "a login longer than DB_LOGIN_MAX stored by hand");
		ok(db_user_by_login(db, login, &big) == DB_ERROR, "reading it is an error, not a cut");
	}

	/* Concurrent appenders on their own connections: every chunk gets its
	 * own number, 1..N with no gap (the per-job counter). */
	{
		struct db_job rj;
		int64_t n;

		ok(db_job_create(db, u.id, "echo", "{}", 1, now, &race_job) == DB_OK &&
		   db_job_claim_next(db, "racer", now, 3600, 0, "echo", &rj) == DB_OK && rj.id == race_job,
		   "a job to race on");
		db_job_release(&rj);
		ok(in_children(APPENDERS, append_many), "%d processes append %d chunks each", APPENDERS, APPENDS);
		{
			static struct query q_count = QUERY("test.count",
				"SELECT count(*) FROM job_output WHERE job_id = ?1");
			static struct query q_span = QUERY("test.span",
				"SELECT max(seq) - min(seq) + 1 FROM job_output WHERE job_id = ?1");
			struct stmt *qs = q_start(db, &q_count);

			q_int(qs, 1, race_job);
			n = q_row(qs) == DB_OK ? q_i64(qs, 0) : -1;
			q_end(qs);
			ok(n == APPENDERS * APPENDS, "all %d chunks stored (%lld)", APPENDERS * APPENDS, (long long)n);
			qs = q_start(db, &q_span);
			q_int(qs, 1, race_job);
			n = q_row(qs) == DB_OK ? q_i64(qs, 0) : -1;
			q_end(qs);
			ok(n == APPENDERS * APPENDS, "numbered without gaps or repeats");
		}
		ok(db_job_finish(db, race_job, "racer", JOB_SUCCEEDED, true, 0, NULL, now) == DB_OK, "race job ends");
	}

	/* Concurrent claimers: each job is claimed exactly once. */
	{
		static struct query q_once = QUERY("test.once",
			"SELECT count(*) FROM jobs WHERE kind = 'echo' AND args LIKE '%claimrace%' AND state = 'succeeded' AND attempts = 1");
		int64_t jid;
		bool made = true;

		for (int i = 0; i < CLAIM_JOBS; i++)
			made = made && db_job_create(db, u.id, "echo", "{\"lines\":[\"claimrace\"]}", 3, now, &jid) == DB_OK;
		ok(made, "%d jobs queued", CLAIM_JOBS);
		ok(in_children(CLAIMERS, claim_all), "%d processes claim and finish until none is left", CLAIMERS);
		ok(scalar(&q_once) == CLAIM_JOBS, "every job ran once, in one attempt");
	}

	/* An idle queue is probed read-only. */
	{
		bool any = true;

		ok(db_job_claimable(db, now + 10000000, 0, "echo", &any) == DB_OK && !any, "nothing claimable");
	}

	/* q_send(): queued reads come back each with its own rows, in one
	 * round trip on PostgreSQL. There they are one Sync, hence one
	 * (implicit) transaction: the same transaction_timestamp() although
	 * the first sleeps; read one by one they would differ. A failure
	 * fails what was queued after it, and the connection goes on. */
	{
		static struct query q_ts = QUERY2("test.ts",
			"SELECT ?1, 0", "SELECT ?1, (extract(epoch FROM transaction_timestamp()) * 1000000)::int8 "
			"FROM pg_sleep(0.02)");
		static struct query q_ts2 = QUERY2("test.ts2",
			"SELECT ?1, 0", "SELECT ?1, (extract(epoch FROM transaction_timestamp()) * 1000000)::int8");
		static struct query q_div = QUERY("test.div", "SELECT 1 / ?1");
		struct stmt *a = q_start(db, &q_ts), *b;
		int64_t ta = -1, tb = -2;
		int ra, rb;

		q_int(a, 1, 11);
		q_send(a);
		b = q_start(db, &q_ts2);
		q_int(b, 1, 22);
		q_send(b);
		ra = q_row(b);          /* read out of order: each keeps its own */
		if (ra == DB_OK && q_i64(b, 0) == 22)
			tb = q_i64(b, 1);
		q_end(b);
		rb = q_row(a);
		if (rb == DB_OK && q_i64(a, 0) == 11)
			ta = q_i64(a, 1);
		q_end(a);
		ok(ra == DB_OK && rb == DB_OK && ta == tb, "two queued reads, each its own row, %s",
		   db_is_pg(db) ? "in one transaction (one round trip)" : "in turn");
		a = q_start(db, &q_ts);
		q_int(a, 1, 1);
		ta = q_row(a) == DB_OK ? q_i64(a, 1) : -1;
		q_end(a);
		b = q_start(db, &q_ts2);
		q_int(b, 1, 2);
		tb = q_row(b) == DB_OK ? q_i64(b, 1) : -1;
		q_end(b);
		ok(ta >= 0 && tb >= 0 && (db_is_pg(db) ? ta != tb : ta == tb),
		   "(the same two read one by one are %s)", db_is_pg(db) ? "two transactions" : "alike on SQLite");

		a = q_start(db, &q_div);
		q_int(a, 1, 0);
		q_send(a);
		b = q_start(db, &q_ts2);
		q_int(b, 1, 3);
		q_send(b);
		ra = q_row(a);
		q_end(a);
		rb = q_row(b);
		q_end(b);
		if (db_is_pg(db))
			ok(ra == DB_ERROR && rb == DB_ERROR, "a failed queued read fails the one after it");
		else
			ok(rb == DB_OK, "(SQLite: each queued read stands alone)");
		b = q_start(db, &q_ts2);
		q_int(b, 1, 4);
		ok(q_row(b) == DB_OK && q_i64(b, 0) == 4, "the connection works after a failed pipeline");
		q_end(b);
		a = q_start(db, &q_ts2);
		q_int(a, 1, 5);
		q_send(a);
		ok(db_begin_write(db) == DB_OK && db_commit(db) == DB_OK, "a transaction ends a pending pipeline");
		ok(q_row(a) == DB_OK && q_i64(a, 0) == 5, "and the queued read still has its row");
		q_end(a);
		a = q_start(db, &q_ts2);
		q_int(a, 1, 6);
		q_send(a);
		q_end(a);               /* dropped unread */
		b = q_start(db, &q_ts2);
		q_int(b, 1, 7);
		ok(q_row(b) == DB_OK && q_i64(b, 0) == 7, "a queued read ended unread leaves nothing behind");
		q_end(b);
	}

	/* Tasks: a column without gaps renumbers in order; the neighbours of
	 * a position; events page with `more` and purge by age. */
	{
		struct db_project p = { .user_id = u.id, .name = "board", .clone_url = "", .default_branch = "main",
					.created_at = now };
		struct db_task tk[3];
		int64_t n = 0, del = 0, pos = 0, evs[2] = { 0 };
		int k = 0;

		ok(db_project_create(db, &p) == DB_OK, "a project for tasks");
		for (int i = 0; i < 3; i++) {
			memset(&tk[i], 0, sizeof(tk[i]));
			tk[i].user_id = u.id;
			tk[i].project_id = p.id;
			snprintf(tk[i].title, sizeof(tk[i].title), "t%d", i);
			snprintf(tk[i].status, sizeof(tk[i].status), "todo");
			tk[i].position = 3 - i;          /* 3, 2, 1: no room anywhere */
			tk[i].created_at = now;
			ok(db_task_create(db, &tk[i]) == DB_OK && tk[i].id > 0, "task %d created", i);
		}
		ok(db_task_count(db, p.id, &n) == DB_OK && n == 3, "three tasks in the project");
		ok(db_task_neighbor(db, p.id, "todo", 0, 2, true, &pos) == DB_OK && pos == 1, "below 2: 1");
		ok(db_task_neighbor(db, p.id, "todo", tk[2].id, 2, true, &pos) == DB_NOTFOUND,
		   "below 2 leaving out the task at 1: none");
		ok(db_task_neighbor(db, p.id, "todo", 0, 2, false, &pos) == DB_OK && pos == 3, "above 2: 3");
		ok(db_task_neighbor(db, p.id, "done", 0, 2, false, &pos) == DB_NOTFOUND, "another column: none");
		ok(db_task_renumber(db, p.id, "todo", 1000) == DB_ERROR, "renumbering needs a transaction");
		ok(db_begin_write(db) == DB_OK && db_task_renumber(db, p.id, "todo", 1000) == DB_OK && db_commit(db) == DB_OK,
		   "the column renumbered in a transaction");
		for (int i = 0; i < 3; i++) {
			struct db_task got;

			ok(db_task_get(db, tk[i].id, u.id, &got) == DB_OK && got.position == (3 - i) * 1000 &&
			   got.description && got.description[0] == '\0', "task %d keeps its place, now %d", i,
			   (3 - i) * 1000);
			db_task_release(&got);
		}
		ok(db_task_get(db, tk[0].id, u.id + 1000, &tk[1]) == DB_NOTFOUND, "another user's task: not found");

		ok(db_event_add(db, u.id, "task.created", tk[0].id, p.id, now, &evs[0]) == DB_ERROR,
		   "an event outside a transaction is refused");
		ok(db_begin_write(db) == DB_OK &&
		   db_event_add(db, u.id, "task.created", tk[0].id, p.id, now - 100, &evs[0]) == DB_OK &&
		   db_event_add(db, u.id, "task.moved", tk[1].id, 0, now, &evs[1]) == DB_OK && db_commit(db) == DB_OK &&
		   evs[1] > evs[0], "two events, ids increasing");
		ok(db_event_list(db, u.id, 0, 1, ev_count, &k, &more) == DB_OK && k == 1 && more,
		   "a page of one: more follow");
		k = 0;
		ok(db_event_list(db, u.id, evs[0], 10, ev_count, &k, &more) == DB_OK && k == 1 && !more,
		   "after the first: the last one, no more");
		k = 0;
		ok(db_event_list(db, u.id + 1000, 0, 10, ev_count, &k, &more) == DB_OK && k == 0, "another user's: none");
		ok(db_event_purge(db, now - 50, 10, &del) == DB_OK && del == 1, "purge takes the old event only");
	}

	db_close(db2);
	db_close(db);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	ok(system(err) == 0, "cleanup");
	return done_testing();
}
