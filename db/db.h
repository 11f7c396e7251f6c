/* db.h - the data layer's contract. Services, handlers, the worker and
 * anyonctl reach storage only through these functions; which engine is
 * underneath (SQLite or PostgreSQL, db/backend.h) is invisible to them.
 * Each resource's functions live in db/<resource>.c with their SQL.
 *
 * A struct db is one connection. Open it after fork() and never share it
 * across fork() or threads. Functions return DB_OK, DB_NOTFOUND,
 * DB_CONFLICT or DB_ERROR (already logged). Out-structs own no heap memory
 * unless their comment says so. A stored value longer than the field it is
 * read into is DB_ERROR, never cut short.
 *
 * Rules (which job to claim, when a flow may poll, how a sign-in finds its
 * user) live in services/, above this layer; functions here do one query
 * or one small unit of work.
 */
#ifndef ANYON_DB_H
#define ANYON_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum db_rc {
	DB_ERROR = -1,
	DB_OK = 0,
	DB_NOTFOUND = 1,
	DB_CONFLICT = 2,
};

struct db;

/* Opens target: a postgres:// or postgresql:// URI (PostgreSQL; the
 * password comes from libpq's own files or ANYON_DB_PASSWORD_FILE, never
 * from the URI), or else a SQLite file path (created if needed; WAL,
 * busy timeout, foreign keys). With migrate, applies pending migrations
 * first. Returns NULL on failure and writes the reason to err. */
struct db *db_open(const char *target, bool migrate, char *err, size_t errlen);
/* Opens another connection to db's database (no migration), with db's
 * settings (deferred checkpoints, db_on_commit()): for a thread of its own, as a
 * connection is used by one thread at a time. NULL with the reason in err. */
struct db *db_open_again(const struct db *db, char *err, size_t errlen);
void db_close(struct db *db);
bool db_target_is_pg(const char *target);
/* "sqlite" or "postgresql". */
const char *db_dialect(const struct db *db);

/* Applies every pending migration of the connection's dialect, each in its
 * own transaction (a failing one leaves the database as it was; concurrent
 * migrators wait for each other). *applied counts them. */
int db_migrate(struct db *db, int *applied);
/* The same over any list (ascending versions); for tests. */
struct migration;
int db_migrate_list(struct db *db, const struct migration *list, size_t n, int *applied);
/* Highest applied migration and highest known to this binary. */
int db_schema_version(struct db *db, int *current, int *latest);

/* Transactions nest: the outermost db_begin_write() opens a transaction
 * (SQLite: BEGIN IMMEDIATE, which takes the write lock at once), inner
 * ones a savepoint; each level ends with db_commit() or db_rollback().
 * A function that needs atomicity opens its own level, so it can run
 * alone or inside a caller's transaction. */
int db_begin_write(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);
/* Open levels: 0 outside any transaction. */
int db_tx_depth(const struct db *db);
/* Opens a level (db_begin_write()) holding user_id's row lock
 * (db_user_lock()), so one user's changes and their events go in turn.
 * DB_OK, or DB_ERROR with nothing left open. */
int db_begin_user(struct db *db, int64_t user_id);
/* Ends the level with rc: commits on DB_OK (a failing commit becomes
 * DB_ERROR), rolls back otherwise. Returns the outcome. */
int db_end(struct db *db, int rc);

/* SQLite: this connection's commits never copy the write-ahead log into
 * the database (a job child writing output leaves that work to its
 * supervisor, which runs on the other core meanwhile); db_checkpoint()
 * from another connection does it. PostgreSQL: nothing to do. */
void db_defer_checkpoints(struct db *db);
/* PostgreSQL 14 and later, built with lz4: large values this connection
 * stores (a job's output) are compressed with lz4 rather than pglz, at a
 * fraction of the server's time (pglz was half of it while a job streamed
 * output). Values already stored, and other connections', keep theirs;
 * reading is the same. Elsewhere (SQLite, an older server) nothing. */
void db_compress_fast(struct db *db);
/* SQLite: copies what it can of the write-ahead log into the database
 * without waiting for anyone (a passive checkpoint). PostgreSQL: DB_OK. */
int db_checkpoint(struct db *db);
/* A cheap liveness query. */
int db_ping(struct db *db);

/* ---- a connection that outlives its server's restarts (PostgreSQL),
 * and hears of others' changes (both) ---- */

/* What db_poll() reports, or-ed. */
#define DB_POLL_CHANGED 1     /* something may have changed since the last poll */
#define DB_POLL_DOWN 2        /* the server is gone and connecting again failed */

/* The channel every committed write of anyon's tables notifies (a
 * statement-level trigger per table, PostgreSQL migration 018). */
#define DB_CHANGES_CHANNEL "anyon_changes"
/* From now on the connection hears of committed changes: db_poll()
 * reports DB_POLL_CHANGED after one. PostgreSQL: every change to anyon's
 * tables, by anyone (another host, the worker, anyonctl, itself). SQLite:
 * every commit to the file by any other connection (any process: the
 * worker, anyonctl, the sqlite3 shell), not its own (PRAGMA
 * data_version; db_on_commit() sees those). DB_ERROR when the server
 * refuses. */
int db_watch_changes(struct db *db);
/* Between requests (no transaction open, nothing queued), without
 * blocking: reads what the server sent meanwhile. A connection the
 * server closed (a restart, an administrator) is opened again, with its
 * settings and its LISTEN, prepared statements forgotten, at most once a
 * second; that reports DB_POLL_CHANGED (what happened meanwhile is not
 * known), and DB_POLL_DOWN while connecting again fails (the statements
 * run then fail as before, and the next poll tries again). */
int db_poll(struct db *db);
/* fn(arg) runs after each write this connection committed: a write
 * statement run outside a transaction, once it ran; a transaction with
 * writes, once its outermost level committed. Never before the commit,
 * so whoever fn tells can read what was written. NULL: none. */
void db_on_commit(struct db *db, void (*fn)(void *arg), void *arg);
/* db_on_commit() bumping the host's shared count of commits in data_dir
 * (base/commitcount.h; create: make it if missing), which the pool's
 * answer cache watches: every process of an install that writes calls it
 * on its connections (db_open_again() passes it on). false when the count
 * cannot be mapped. */
bool db_share_commits(struct db *db, const char *data_dir, bool create);

/* SQLite only: writes a consistent copy of the database to a new file at
 * path (VACUUM INTO: one read transaction, so writers go on meanwhile).
 * path must not exist nor hold a quote. DB_ERROR on PostgreSQL (use
 * pg_dump) or on failure, logged. */
int db_snapshot_to(struct db *db, const char *path);

/* ---- users ---- */
#define DB_LOGIN_MAX 64
#define DB_NAME_MAX 128

struct db_user {
	int64_t id;
	char login[DB_LOGIN_MAX];
	char name[DB_NAME_MAX];
	bool is_admin;
	bool is_local;
	int64_t github_id;                /* 0: no GitHub account connected */
	char github_login[DB_LOGIN_MAX];
	char email[256];
	char avatar_url[512];
	bool disabled;                    /* signed out everywhere, no sign-in */
	bool admin_grant;                 /* admin by anyonctl, besides the list */
};

int db_user_get(struct db *db, int64_t id, struct db_user *out);
int db_user_by_login(struct db *db, const char *login, struct db_user *out);
/* Creates a user; DB_CONFLICT when the login exists. */
int db_user_create(struct db *db, const char *login, const char *name, int64_t now,
		   struct db_user *out);
/* The implicit user of local mode. */
int db_user_local(struct db *db, struct db_user *out);
/* Locks the user's row until the transaction ends (PostgreSQL: FOR
 * UPDATE; SQLite: the write lock), to serialize a user's read-then-write
 * sequences such as the queued-jobs quota. */
int db_user_lock(struct db *db, int64_t id);

/* The user with this GitHub id. Inside a transaction the row is locked
 * until it ends (PostgreSQL: FOR UPDATE; SQLite: the write lock). */
int db_user_by_github(struct db *db, int64_t github_id, struct db_user *out);
/* A non-local user with this login and no GitHub id yet (locked the same way). */
int db_user_unbound_by_login(struct db *db, const char *login, struct db_user *out);
/* Writes a GitHub identity onto user id: login, name, email, avatar,
 * admin flag and GitHub id. DB_CONFLICT when another row has the login. */
int db_user_update_github(struct db *db, int64_t id, int64_t github_id, const char *login,
			  const char *name, const char *email, const char *avatar_url, bool is_admin,
			  int64_t now, struct db_user *out);
/* Creates a user for a GitHub identity. DB_CONFLICT when the login or the
 * GitHub id is taken. */
int db_user_insert_github(struct db *db, int64_t github_id, const char *login, const char *name,
			  const char *email, const char *avatar_url, bool is_admin, int64_t now,
			  struct db_user *out);
/* Every user, by id. The user passed to fn is valid during the call. */
typedef int (*db_user_fn)(const struct db_user *u, void *arg);
int db_user_list(struct db *db, db_user_fn fn, void *arg);
int db_user_set_disabled(struct db *db, int64_t id, bool disabled);
/* Sets is_admin, and admin_grant unless grant is NULL. */
int db_user_set_admin(struct db *db, int64_t id, bool is_admin, const bool *grant);
/* Local mode: which GitHub account the user connected (0/NULL: none). */
int db_user_set_github(struct db *db, int64_t user_id, int64_t github_id, const char *github_login);

/* ---- allow/admin list bindings ---- */
/* The GitHub id the entry (a lower-case login) of list ("allow" or
 * "admin") is bound to; DB_NOTFOUND when it is not bound yet. */
int db_binding_get(struct db *db, const char *list, const char *entry, int64_t *github_id);
/* Binds entry to github_id unless it is bound already (first wins). */
int db_binding_add(struct db *db, const char *list, const char *entry, int64_t github_id, int64_t now);

/* Why a user was let in, when an org:NAME entry did it (see
 * services/access.h). No row, or both orgs "": by plain entries only. */
#define DB_ORG_MAX 40
struct db_admission {
	int64_t user_id;
	char allow_org[DB_ORG_MAX];   /* admitted as a member of this org, "": not by an org */
	char admin_org[DB_ORG_MAX];   /* admin as a member of this org, "": not by an org */
	int64_t checked_at;           /* membership last confirmed (or set at sign-in) */
};
/* DB_NOTFOUND when the user has no row (admitted by plain entries); out
 * then holds user_id and "" orgs. */
int db_admission_get(struct db *db, int64_t user_id, struct db_admission *out);
/* Creates or replaces a's row ("" orgs are stored as NULL). */
int db_admission_put(struct db *db, const struct db_admission *a);
/* Up to max users admitted or made admin by an org, with at least one
 * session, not checked since before, oldest check first, into out; *n
 * counts them. */
int db_admission_due(struct db *db, int64_t before, struct db_admission *out, size_t max, size_t *n);

/* ---- sessions ---- */
struct db_session {
	int64_t id;
	int64_t user_id;      /* 0: no user signed in */
	int64_t created_at;
	int64_t last_seen_at;
	int64_t expires_at;
};

#define DB_SESSION_AGENT_MAX 200

/* A session to create. cloud: the mode it is made in; it is valid in that
 * mode only. agent: the browser's User-Agent, at most DB_SESSION_AGENT_MAX
 * bytes (longer is DB_ERROR). An expired session with the same hash is
 * deleted first. */
struct db_session_new {
	const unsigned char *hash;   /* 32 bytes */
	int64_t user_id;             /* 0: none yet */
	bool cloud;
	int64_t now, expires_at;
	const char *addr, *agent;
};
int db_session_create(struct db *db, const struct db_session_new *n, struct db_session *out);
/* Sessions created from addr since the given time. */
int db_session_count_from(struct db *db, const char *addr, int64_t since, int64_t *n);
/* Finds an unexpired session by token hash, in any mode (tests, tools). */
int db_session_find(struct db *db, const unsigned char hash[32], int64_t now,
		    struct db_session *out);
/* What a request uses: an unexpired session made in this mode (cloud),
 * and its user in the same query (one round trip per request); *has_user
 * tells whether it has one. A session of a disabled user is not found. */
int db_session_find_user(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
			 struct db_session *out, struct db_user *user, bool *has_user);
int db_session_touch(struct db *db, int64_t id, int64_t now, int64_t expires_at);
/* Gives a session a new token hash (and user), e.g. at sign-in. */
int db_session_rotate(struct db *db, int64_t id, const unsigned char hash[32], int64_t user_id);
int db_session_delete(struct db *db, int64_t id);
/* Keeps the keep most recently seen sessions made in local mode and
 * deletes the others; *deleted (may be NULL) counts them. */
int db_session_trim_local(struct db *db, int keep, int64_t *deleted);
/* One of a user's sessions, as Settings -> Sessions lists them. */
struct db_session_info {
	int64_t id, created_at, last_seen_at, expires_at;
	const char *addr, *agent;    /* borrowed, valid during the callback */
};
typedef int (*db_session_info_fn)(const struct db_session_info *s, void *arg);
/* The user's unexpired sessions in this mode, most recently seen first, at
 * most limit. */
int db_session_list_user(struct db *db, int64_t user_id, bool cloud, int64_t now, int limit,
			 db_session_info_fn fn, void *arg);
/* Deletes session id if it is user_id's; DB_NOTFOUND otherwise. */
int db_session_delete_own(struct db *db, int64_t id, int64_t user_id);
/* Deletes every session of user_id but keep_id; *deleted counts them. */
int db_session_delete_others(struct db *db, int64_t user_id, int64_t keep_id, int64_t *deleted);
/* Deletes every session of user_id; *deleted (may be NULL) counts them. */
int db_session_delete_user(struct db *db, int64_t user_id, int64_t *deleted);
int db_session_purge(struct db *db, int64_t now, int *deleted);

/* ---- jobs ---- */
#define DB_JOB_KIND_MAX 32
#define DB_JOB_ERROR_MAX 512
#define DB_JOB_OWNER_MAX 96

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED };
const char *job_state_name(enum job_state s);
bool job_state_final(enum job_state s);

struct db_job {
	int64_t id;
	int64_t user_id;
	char kind[DB_JOB_KIND_MAX];
	char *args;                 /* JSON text, owned: free with db_job_release() */
	enum job_state state;
	int attempts, max_attempts;
	bool cancel_requested;
	bool has_exit_code;
	int exit_code;
	char error[DB_JOB_ERROR_MAX];
	int64_t created_at, started_at, finished_at; /* 0: not yet */
	bool has_output_offset;     /* a batch of output committed an offset */
	int64_t output_offset;      /* the producer's opaque position after the last batch */
	int64_t output_bytes;       /* bytes of output stored */
	int64_t lease_expires_at;   /* while running; 0: none */
	/* A container job's container (migration 013). */
	char container_id[72];      /* "" until created */
	int64_t container_started_at, container_ended_at; /* 0: not yet */
	bool has_container_exit;
	int container_exit;         /* the container's exit status */
	bool container_oom;         /* the OOM killer ended it */
};

void db_job_release(struct db_job *job);

int db_job_create(struct db *db, int64_t user_id, const char *kind, const char *args_json,
		  int max_attempts, int64_t now, int64_t *id_out);
/* user_id 0 reads any user's job (worker, anyonctl); otherwise a job of
 * another user is DB_NOTFOUND. */
int db_job_get(struct db *db, int64_t id, int64_t user_id, struct db_job *out);

/* Calls fn for the user's newest jobs (at most limit, ids below before when
 * before > 0). The job passed to fn is cleared after fn returns. fn returns
 * 0 to go on, > 0 to stop early (DB_OK), < 0 for an error (DB_ERROR). */
typedef int (*db_job_fn)(const struct db_job *job, void *arg);
int db_job_list(struct db *db, int64_t user_id, int64_t before, int limit,
		db_job_fn fn, void *arg);

/* The user's queued jobs. */
int db_job_count_queued(struct db *db, int64_t user_id, int64_t *n);
/* Deletes up to limit finished jobs (and their output) that ended before
 * `before`, and takes their output bytes off their users' counters in the
 * same transaction; *deleted counts them. */
int db_job_purge(struct db *db, int64_t before, int limit, int64_t *deleted);
/* Read-only: is any job of kinds (comma-separated names) queued, or
 * running with an expired lease? With max_running > 0, only jobs of users
 * with fewer running jobs count. */
int db_job_claimable(struct db *db, int64_t now, int64_t max_running, const char *kinds, bool *yes);
/* Fails running jobs whose lease expired and which used every attempt,
 * whose kind is one of once_kinds (comma-separated: kinds whose lost run
 * must not run again), or which made a container; except those a worker
 * may still adopt: their container started and has not ended, and their
 * lease ran out after adopt_since. */
struct db_job_ref {
	int64_t id, user_id;
};
/* ... at most max of them (the oldest), written to out, *n how many. */
int db_job_fail_lost(struct db *db, int64_t now, const char *once_kinds, int64_t adopt_since,
		     struct db_job_ref *out, size_t max, size_t *n);
/* Running jobs a worker may adopt (see db_job_fail_lost): up to max ids,
 * oldest first, into ids; *n says how many. */
int db_job_adoptable(struct db *db, int64_t now, int64_t since, int64_t *ids, size_t max, size_t *n);
/* Claims the oldest queued job, or a running one whose lease expired and
 * which made no container (such a run is adopted or failed, never run
 * again), for
 * owner until now + lease_s (one more attempt). DB_NOTFOUND when there is
 * none. Two workers never claim one job: SQLite holds the write lock for
 * the statement, PostgreSQL picks the row FOR UPDATE SKIP LOCKED. The
 * caller (services/jobs.c) fails exhausted jobs first. With
 * max_running > 0, skips users who already have that many jobs running
 * under a live lease. Only jobs of kinds (comma-separated names). */
int db_job_claim_next(struct db *db, const char *owner, int64_t now, int64_t lease_s,
		      int64_t max_running, const char *kinds, struct db_job *out);
/* The user's jobs running under a live lease. */
int db_job_count_running(struct db *db, int64_t user_id, int64_t now, int64_t *n);
/* Extends the lease. DB_NOTFOUND when owner no longer holds it. Reports
 * whether a cancel was requested. */
int db_job_renew(struct db *db, int64_t id, const char *owner, int64_t now,
		 int64_t lease_s, bool *cancel_requested);
/* Appends one output chunk while owner holds the lease. Its seq comes
 * from a counter on the job row, bumped in the same transaction, so
 * concurrent appenders never pick one number twice (the row update
 * serializes them on both backends). Its bytes count towards the job's
 * and its user's stored output, as with db_job_append_batch(). */
int db_job_append(struct db *db, int64_t id, const char *owner, const char *stream,
		  const void *data, size_t len, int64_t now, int64_t *seq_out);

/* One chunk of a batch (borrowed). */
struct db_chunk_in {
	const char *stream;         /* "stdout", "stderr" or "system" */
	const void *data;
	size_t len;
};
/* Appends n chunks (n may be 0) with consecutive seqs, in one transaction,
 * while owner holds the lease; in the same transaction sets the job's
 * output_offset to *offset (unless offset is NULL) and adds the chunks'
 * bytes to the job's and its user's stored-output counters. *first_seq
 * gets the first chunk's seq and *user_bytes the user's stored bytes
 * after the batch (either may be NULL). DB_NOTFOUND when the lease is
 * gone (nothing is written). */
int db_job_append_batch(struct db *db, int64_t id, const char *owner,
			const struct db_chunk_in *chunks, size_t n, const int64_t *offset,
			int64_t now, int64_t *first_seq, int64_t *user_bytes);
/* The bytes of output the user's jobs have stored (kept by the appends
 * and by db_job_purge()). */
int db_user_output_bytes(struct db *db, int64_t user_id, int64_t *bytes);
/* Ends the job in a final state while owner holds the lease. */
int db_job_finish(struct db *db, int64_t id, const char *owner, enum job_state state,
		  bool has_exit_code, int exit_code, const char *error, int64_t now);
/* Ends owner's lease on a running job now, as if its worker had died:
 * the next claim takes it over (the attempt counts) or, out of attempts,
 * fails it. */
int db_job_expire_lease(struct db *db, int64_t id, const char *owner, int64_t now);
/* Hands a running job back to the queue (worker shutdown); the attempt
 * does not count. */
int db_job_release_lease(struct db *db, int64_t id, const char *owner);
/* Reads a job to change it: inside a transaction the row stays locked
 * until it ends (PostgreSQL: FOR UPDATE). user_id 0: any user's. */
int db_job_get_locked(struct db *db, int64_t id, int64_t user_id, struct db_job *out);
/* Records the job's container while owner holds the lease: its id (at
 * creation, started_at 0) and then when it started. */
int db_job_set_container(struct db *db, int64_t id, const char *owner, const char *container_id,
			 int64_t started_at);
/* Records how the job's container ended while owner holds the lease. */
int db_job_container_ended(struct db *db, int64_t id, const char *owner, bool has_exit,
			   int exit_code, bool oom, int64_t ended_at);
/* Takes over a running job whose lease ran out (its worker died) for
 * owner until now + lease_s, without counting an attempt: the orphan
 * reaper settles it. DB_NOTFOUND when it is not such a job. */
int db_job_take_lost(struct db *db, int64_t id, const char *owner, int64_t now, int64_t lease_s);
/* Queued jobs of kinds (comma-separated names). */
int db_job_count_queued_kinds(struct db *db, const char *kinds, int64_t *n);
/* Queued -> cancelled. DB_NOTFOUND when the job is not queued. */
int db_job_cancel_queued(struct db *db, int64_t id, int64_t now);
/* Flags a running job for its worker to stop. DB_NOTFOUND when not running. */
int db_job_flag_cancel(struct db *db, int64_t id);

struct db_chunk {
	int64_t seq;
	const char *stream;   /* borrowed, valid during the callback */
	const void *data;     /* borrowed, valid during the callback */
	size_t len;
	int64_t created_at;
};
typedef int (*db_chunk_fn)(const struct db_chunk *chunk, void *arg);
/* Calls fn for chunks with seq > after, in order, at most limit of them
 * and at most max_bytes of data (always at least one chunk). *more is set
 * when chunks may remain beyond what was passed. */
int db_job_output(struct db *db, int64_t id, int64_t after, int limit, size_t max_bytes,
		  db_chunk_fn fn, void *arg, bool *more);

/* ---- a request's reads in one round trip (sessions.c, jobs.c) ----
 * The session lookup of db_session_find_user() together with the reads a
 * route needs next, all queued before the first result is read: one round
 * trip on PostgreSQL (pipeline mode), the same reads in turn on SQLite.
 * The caller fills the request part; the rest is output. */
struct stmt;
struct db_prefetch {
	int64_t job_id;             /* > 0: read this job too */
	bool output;                /* with job_id: and its chunks after `after`, at most `limit`
				    * and `max_bytes` (db_job_output()'s budget; 0: none) */
	int64_t after;
	int limit;
	size_t max_bytes;
	const char *secret_kind;    /* non-NULL: the metadata of the user's secret of this kind */
	bool events;                /* without job_id: the user's events after `after`, at most `limit` */
	int64_t board_project;      /* > 0, without job_id or events: the version of this project's board */

	bool done;                  /* the session was found and the reads below are valid */
	int job_rc;                 /* DB_OK, DB_NOTFOUND (none, or not the session user's), DB_ERROR */
	bool job_held;              /* job is owned here: db_prefetch_release() or take it */
	struct db_job job;
	int secret_rc;              /* DB_OK, DB_NOTFOUND (none, or no user), DB_ERROR */
	bool secret_invalid;
	struct stmt *output_stmt;   /* internal: the output read, pending */
	struct stmt *events_stmt;   /* internal: the events read, pending */
	struct stmt *board_stmt;    /* internal: the board's version read, pending */
	int64_t rows_user;          /* internal: the session's user, whose rows the pending events
				    * or board read must be */
	unsigned char bound_hash[32]; /* internal: the token hash bound to events_stmt or board_stmt
				    * (SQLite reads its bindings at the step, after the caller's copy is gone) */
};
/* Like db_session_find_user(); with DB_OK also fills pf (pf->done). On any
 * other result pf holds nothing. */
int db_session_find_prefetch(struct db *db, const unsigned char hash[32], int64_t now, bool cloud,
			     struct db_session *out, struct db_user *user, bool *has_user,
			     struct db_prefetch *pf);
/* db_job_output() of the prefetched job (with pf->limit), once; DB_ERROR
 * when pf holds no output read of a job of the session's user. */
int db_prefetch_output(struct db *db, struct db_prefetch *pf, size_t max_bytes, db_chunk_fn fn, void *arg,
		       bool *more);
/* Frees what pf still holds (a job not taken, a pending read). Idempotent;
 * a zeroed pf holds nothing. */
void db_prefetch_release(struct db *db, struct db_prefetch *pf);

/* ---- secrets (ciphertext only; see services/secrets.h) ---- */
#define DB_SECRET_KIND_MAX 32
#define DB_KEY_ID_MAX 16
#define DB_NONCE_LEN 12
#define DB_TAG_LEN 16

struct db_secret {
	int64_t id;
	int64_t user_id;
	char kind[DB_SECRET_KIND_MAX];
	char key_id[DB_KEY_ID_MAX];
	unsigned char nonce[DB_NONCE_LEN];
	unsigned char tag[DB_TAG_LEN];
	unsigned char *ciphertext;   /* owned, NULL when only metadata was read;
				      * free with db_secret_release() */
	size_t ct_len;
	int64_t created_at, updated_at;
	int64_t last_used_at, expires_at;   /* 0: never / no expiry */
	bool invalid;
};

void db_secret_release(struct db_secret *s);

/* Inside a write transaction: the id of the (user, kind) row, inserting an
 * empty placeholder when there is none, so the id can go into the AAD
 * before the ciphertext is written with db_secret_store(). One statement
 * (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), so two writers of one
 * kind meet on the unique index and get the same row. */
int db_secret_reserve(struct db *db, int64_t user_id, const char *kind, int64_t now, int64_t *id);
int db_secret_store(struct db *db, int64_t id, const char *key_id,
		    const unsigned char nonce[DB_NONCE_LEN], const unsigned char *ct, size_t len,
		    const unsigned char tag[DB_TAG_LEN], int64_t expires_at, int64_t now);
int db_secret_get(struct db *db, int64_t user_id, const char *kind, bool with_ciphertext,
		  struct db_secret *out);
int db_secret_by_id(struct db *db, int64_t id, struct db_secret *out);
/* The same, the row locked until the transaction ends (PostgreSQL: FOR
 * UPDATE; SQLite: the write lock), to re-seal it without losing a
 * concurrent secret_put(). */
int db_secret_by_id_locked(struct db *db, int64_t id, struct db_secret *out);
typedef int (*db_secret_fn)(const struct db_secret *s, void *arg);
int db_secret_list(struct db *db, int64_t user_id, db_secret_fn fn, void *arg);
int db_secret_delete(struct db *db, int64_t user_id, const char *kind);
int db_secret_touch(struct db *db, int64_t id, int64_t now);
int db_secret_set_invalid(struct db *db, int64_t user_id, const char *kind, bool invalid);
/* Up to max ids (> after) of rows not sealed by key_id, ascending. */
int db_secret_ids_not_under(struct db *db, const char *key_id, int64_t after,
			    int64_t *ids, int max, int *n);
int db_secret_count_under(struct db *db, const char *key_id, int64_t *n);

/* ---- audit ---- */
struct db_audit {
	int64_t id, at;
	int64_t user_id;       /* 0: none */
	int64_t session_id;    /* 0: none */
	const char *actor;     /* program: anyon-fcgi, anyon-worker, anyonctl */
	const char *action;    /* e.g. secret.stored */
	const char *outcome;   /* ok | denied | error */
	const char *detail;    /* short, never a secret value */
};

int db_audit_add(struct db *db, const struct db_audit *ev);
/* Deletes up to limit audit rows older than `before`. */
int db_audit_purge(struct db *db, int64_t before, int limit, int64_t *deleted);
/* Whether an event of action and outcome exists for session (or, session
 * 0, for detail) since `since`: one audit row per rate-limit window. */
int db_audit_seen(struct db *db, int64_t session_id, const char *action, const char *outcome,
		  const char *detail, int64_t since, bool *seen);
typedef int (*db_audit_fn)(const struct db_audit *ev, void *arg);
/* Newest first; user_id 0 lists everyone's; since and before_id 0 mean no
 * bound. fn returns 0 to go on, > 0 to stop early (DB_OK), < 0 for an error. */
int db_audit_list(struct db *db, int64_t user_id, int64_t since, int64_t before_id, int limit,
		  db_audit_fn fn, void *arg);

/* ---- GitHub device flows ---- */
#define DB_FLOW_ID_HEX 32
#define DB_FLOW_CODE_MAX 256

struct db_flow {
	char id[DB_FLOW_ID_HEX + 1];
	int64_t session_id;
	char remote_addr[64];
	char key_id[DB_KEY_ID_MAX];
	unsigned char nonce[DB_NONCE_LEN];
	unsigned char tag[DB_TAG_LEN];
	unsigned char code_ct[DB_FLOW_CODE_MAX];   /* the sealed device code */
	size_t code_len;
	char user_code[32];
	char verification_uri[512];
	int64_t interval_s, expires_at, next_poll_at, created_at;
	char status[16];                           /* pending complete expired denied error */
	char message[256];
	int64_t user_id;                           /* set when complete */
};

int db_flow_create(struct db *db, const struct db_flow *f);
/* The flow with id started by session_id; DB_NOTFOUND for any other session. */
int db_flow_get(struct db *db, const char *id, int64_t session_id, struct db_flow *out);
/* The same, locking the row until the transaction ends (PostgreSQL: FOR
 * UPDATE; SQLite: the write lock), to decide and write in one step. */
int db_flow_get_locked(struct db *db, const char *id, int64_t session_id, struct db_flow *out);
int db_flow_set_next_poll(struct db *db, const char *id, int64_t next_poll_at);
/* Records a poll's outcome; the sealed device code is erased once the
 * flow is over. */
int db_flow_update(struct db *db, const char *id, const char *status, int64_t interval_s,
		   int64_t next_poll_at, const char *message, int64_t user_id);
int db_flow_count_since(struct db *db, int64_t session_id, const char *remote_addr, int64_t since,
			int64_t *by_session, int64_t *by_addr);
int db_flow_purge(struct db *db, int64_t before, int *deleted);

/* ---- the GitHub repository list cache (one row per session) ---- */
/* The session's cached list (JSON text, *repos owned by the caller) if it
 * was fetched at or after since and belongs to user_id; DB_NOTFOUND else. */
int db_repo_cache_get(struct db *db, int64_t session_id, int64_t user_id, int64_t since,
		      char **repos, bool *truncated);
/* Stores (replaces) the session's list. */
int db_repo_cache_put(struct db *db, int64_t session_id, int64_t user_id, int64_t fetched_at,
		      bool truncated, const char *repos);
/* Drops every cached list of the user (token forgotten or refused). */
int db_repo_cache_drop_user(struct db *db, int64_t user_id);
/* Deletes lists fetched before before; *deleted (may be NULL) counts them. */
int db_repo_cache_purge(struct db *db, int64_t before, int64_t *deleted);

/* ---- the Claude sign-in (db/claude.c) ---- */

/* A sealed input of a login (services/claude_login.h), queued for its job. */
struct db_login_input {
	int64_t id;
	char key_id[DB_KEY_ID_MAX];
	unsigned char nonce[DB_NONCE_LEN];
	unsigned char tag[DB_TAG_LEN];
	unsigned char *ciphertext;   /* owned; free with db_login_input_release() */
	size_t ct_len;
};
void db_login_input_release(struct db_login_input *in);
/* Queues one for job of user_id; DB_CONFLICT when max wait already. */
int db_login_input_add(struct db *db, int64_t job_id, int64_t user_id, const char *key_id,
		       const unsigned char nonce[DB_NONCE_LEN], const unsigned char *ct, size_t len,
		       const unsigned char tag[DB_TAG_LEN], int max, int64_t now);
/* The oldest queued input of job: DB_OK, DB_NOTFOUND or DB_ERROR. */
int db_login_input_next(struct db *db, int64_t job_id, struct db_login_input *out);
int db_login_input_delete(struct db *db, int64_t id);
/* Every input of job (its login ended). */
int db_login_input_drop(struct db *db, int64_t job_id);
/* How the user's Claude credential came ("" none recorded) and the last
 * sign-in's failure (NULL none; owned, free()). */
int db_claude_auth_get(struct db *db, int64_t user_id, char *method, size_t mlen, char **last_error,
		       int64_t *updated_at);
int db_claude_auth_put(struct db *db, int64_t user_id, const char *method, const char *last_error, int64_t now);
int db_claude_auth_delete(struct db *db, int64_t user_id);
/* What worker id found of the image's Claude CLI: its version, or error. */
int db_worker_set_claude(struct db *db, const char *id, const char *version, const char *error);
/* The newest check among workers that beat since since: DB_OK with
 * version or error filled ("" the other), DB_NOTFOUND when none checked. */
int db_claude_cli_latest(struct db *db, int64_t since, char *version, size_t vlen, char *error, size_t elen);

/* ---- projects ---- */
#define PROJECT_DESCRIPTION_MAX 4096   /* bytes; GitHub allows 350 characters */
struct db_project {
	int64_t id, user_id;
	char name[128];
	char github_full_name[256];   /* "" for a project not from GitHub */
	char clone_url[512];          /* GitHub's clone URL ("" for the other sources) */
	char default_branch[256];     /* the repository's, when it was added */
	bool private;
	char *description;            /* any length; owned when read (db_project_release()),
				       * borrowed by db_project_create() */
	int64_t created_at;
	char source[16];              /* "github", "path" or "url" */
	char location[1025];          /* the path or URL; "" for GitHub */
	char base_branch[256];        /* where work starts */
	char *setup_script;           /* owned when read; borrowed when written; NULL: "" */
	char default_executor[32];
};

/* Frees what a read project holds (not p itself). */
void db_project_release(struct db_project *p);
/* Inserts p (p->id set): a GitHub import (source "github") or a path or
 * URL project. DB_CONFLICT when the user has that repository, path or URL
 * already. */
int db_project_create(struct db *db, struct db_project *p);
/* The project id of user_id (0: any user's, for the worker). */
int db_project_get(struct db *db, int64_t id, int64_t user_id, struct db_project *out);
/* The project passed to fn is released after fn returns; fn returns 0 to
 * go on, > 0 to stop (DB_OK), < 0 for an error. Newest first, at most
 * limit, ids below before when before > 0. */
typedef int (*db_project_fn)(const struct db_project *p, void *arg);
int db_project_list(struct db *db, int64_t user_id, int64_t before, int limit,
		    db_project_fn fn, void *arg);
/* Changes the settings given (NULL: left as they are) of the user's project
 * id and reads it back into out. DB_NOTFOUND when it is not theirs. */
int db_project_update(struct db *db, int64_t id, int64_t user_id, const char *name,
		      const char *base_branch, const char *setup_script, const char *default_executor,
		      struct db_project *out);
/* Deletes the user's project id (what hangs off it by foreign key goes
 * with it). DB_NOTFOUND when it is not theirs. */
int db_project_delete(struct db *db, int64_t id, int64_t user_id);

/* ---- tasks (a project's board) ---- */
#define DB_TASK_TITLE_MAX (200 * 4 + 1)   /* 200 characters of UTF-8, and the NUL */
#define DB_TASK_STATUS_MAX 16

struct db_task {
	int64_t id, user_id, project_id;
	char title[DB_TASK_TITLE_MAX];
	char *description;            /* owned when read by db_task_get() (db_task_release());
				       * NULL from db_task_list(); borrowed by db_task_create() */
	int64_t description_bytes;    /* its length in bytes */
	char status[DB_TASK_STATUS_MAX];
	int64_t position;             /* order within (project, status), unique there */
	int64_t created_at, updated_at;
};

/* Frees what a read task holds (not t itself). */
void db_task_release(struct db_task *t);
/* Inserts t (user, project, title, description, status, position, times);
 * sets t->id. */
int db_task_create(struct db *db, struct db_task *t);
/* The user's task id, with its description. DB_NOTFOUND for another's. */
int db_task_get(struct db *db, int64_t id, int64_t user_id, struct db_task *out);
/* Sets the title and/or the description (NULL: unchanged) and updated_at. */
int db_task_update(struct db *db, int64_t id, int64_t user_id, const char *title, const char *description,
		   int64_t now);
/* Deletes the user's task id; *project_id gets its project. */
int db_task_delete(struct db *db, int64_t id, int64_t user_id, int64_t *project_id);
/* The user's tasks of project_id, column by column (todo, inprogress,
 * inreview, done, cancelled), each by position; without descriptions
 * (description is NULL, description_bytes set). At most limit; fn as
 * db_project_list()'s. */
typedef int (*db_task_fn)(const struct db_task *t, void *arg);
int db_task_list(struct db *db, int64_t project_id, int64_t user_id, int limit, db_task_fn fn, void *arg);
/* The version of the user's board of project_id, for its ETag. Every
 * change to a task writes a task.* event with the project in the same
 * transaction (services/tasks.c, services/attempts.c), and event ids only
 * grow, so the newest one names the board's state (event_id). Project
 * events count too: events outlive their project and SQLite may give a
 * removed project's id to the next one, whose project.added is newer than
 * any of the old board's events. Only the user's newest
 * DB_TASK_VERSION_WINDOW events are walked (the cost stays bounded while a
 * job streams output events): when the board's newest is older, the
 * version is the user's newest event of any kind (user_newest), which any
 * change of the board also moves, only more often. When the walk saw every
 * one of the user's events and none of the board's, retention took them
 * and the board has not changed since: count and max_updated (its tasks'
 * count and newest updated_at) tell it from any later state, as any
 * create, edit or move leaves a task updated after every older one, and a
 * delete lowers the count. Exactly one of the three forms is set.
 * DB_NOTFOUND when project_id is not the user's (checked in the same
 * statement: one round trip for a 304). This
 * holds as long as retention takes events oldest first (by created_at,
 * which grows with the id while the clock does not step back). */
#define DB_TASK_VERSION_WINDOW 256
struct db_task_version {
	int64_t project_created;       /* the project's created_at */
	int64_t event_id;
	int64_t user_newest;
	int64_t count, max_updated;
};
int db_task_version(struct db *db, int64_t project_id, int64_t user_id, struct db_task_version *v);
/* db_task_version() of the board db_session_find_prefetch() read with the
 * session (pf->board_project), once: DB_ERROR when pf holds no such read
 * of project_id for user_id. */
int db_prefetch_board(struct db *db, struct db_prefetch *pf, int64_t project_id, int64_t user_id,
		      struct db_task_version *v);
/* Tasks in project_id. */
int db_task_count(struct db *db, int64_t project_id, int64_t *n);
/* The nearest position to pos in the column (project_id, status), leaving
 * out task exclude: with below, the largest one under pos, else the
 * smallest one over pos. DB_NOTFOUND when there is none. */
int db_task_neighbor(struct db *db, int64_t project_id, const char *status, int64_t exclude, int64_t pos,
		     bool below, int64_t *out);
/* Puts task id in column status at position (the caller checked it is free). */
int db_task_place(struct db *db, int64_t id, const char *status, int64_t position, int64_t now);
/* Renumbers the column (project_id, status) gap, 2 * gap, ... in its
 * present order. Call it inside a transaction. */
int db_task_renumber(struct db *db, int64_t project_id, const char *status, int64_t gap);

/* ---- executors and attempts (services/attempts.h holds the rules) ---- */
#define DB_EXECUTOR_NAME_MAX 32
#define DB_ATTEMPT_STATE_MAX 16
#define DB_ATTEMPT_ERROR_MAX 513       /* 512 bytes and the NUL */
#define DB_ATTEMPT_SESSION_MAX 129     /* 128 bytes and the NUL */

/* A row of executors. */
struct db_executor {
	char name[DB_EXECUTOR_NAME_MAX];
	char label[64];
	char *command;                /* JSON array; owned (db_executor_release()) */
	char *resume;                 /* JSON array or NULL; owned */
	char parser[32];
	char credential[32];          /* secret kind, or "" */
	int64_t position;
};
void db_executor_release(struct db_executor *e);
int db_executor_get(struct db *db, const char *name, struct db_executor *out);
/* Every executor by position; the executor passed to fn is released after
 * it returns; fn as db_project_list()'s. */
typedef int (*db_executor_fn)(const struct db_executor *e, void *arg);
int db_executor_list(struct db *db, db_executor_fn fn, void *arg);

struct db_attempt {
	int64_t id, user_id, project_id, task_id;
	char executor[DB_EXECUTOR_NAME_MAX];
	char base_branch[256];
	char branch[64];
	char state[DB_ATTEMPT_STATE_MAX];  /* queued running completed failed stopped */
	char error[DB_ATTEMPT_ERROR_MAX];  /* "": none */
	char error_code[32];               /* "": none */
	char session_id[DB_ATTEMPT_SESSION_MAX];
	char base_commit[41], head_commit[41];   /* "": not yet */
	char pr_url[512];                  /* "": no pull request */
	int64_t pr_number;
	char pr_state[16];
	char *pr_title, *pr_body;          /* asked for; owned when read, NULL: none */
	char pr_error[256];                /* why opening it failed (pr_state "failed") */
	int64_t created_at, updated_at;
};
void db_attempt_release(struct db_attempt *a);
/* Inserts a (user, project, task, executor, base_branch, branch, state,
 * times); sets a->id. DB_CONFLICT when the user has the branch already. */
int db_attempt_create(struct db *db, struct db_attempt *a);
/* The attempt id of user_id (0: any user's). DB_NOTFOUND for another's. */
int db_attempt_get(struct db *db, int64_t id, int64_t user_id, struct db_attempt *out);
/* The user's attempts of task_id, newest first, at most limit; the attempt
 * passed to fn is released after it returns; fn as db_project_list()'s. */
typedef int (*db_attempt_fn)(const struct db_attempt *a, void *arg);
int db_attempt_list(struct db *db, int64_t task_id, int64_t user_id, int limit, db_attempt_fn fn, void *arg);
/* Counts task_id's attempts: queued or running, completed or failed, all. */
int db_attempt_task_counts(struct db *db, int64_t task_id, int64_t *active, int64_t *ended, int64_t *total);
/* Sets the state and the error and its code (NULL or "": none). */
int db_attempt_set_state(struct db *db, int64_t id, const char *state, const char *error, const char *error_code,
			 int64_t now);
/* Stores what a run found (NULL: unchanged); base_commit only when none
 * is stored yet. */
int db_attempt_set_found(struct db *db, int64_t id, const char *session_id, const char *base_commit,
			 const char *head_commit, int64_t now);
/* What a pull request is to say (NULL: the defaults). */
int db_attempt_set_pr_request(struct db *db, int64_t id, const char *title, const char *body, int64_t now);
/* Opening the pull request failed: pr_state "failed" with why. */
int db_attempt_set_pr_failed(struct db *db, int64_t id, const char *error, int64_t now);
/* The pull request made for the attempt. */
int db_attempt_set_pr(struct db *db, int64_t id, const char *url, int64_t number, const char *state, int64_t now);

struct db_attempt_run {
	int64_t id, attempt_id, user_id;
	int seq;
	char *prompt;                 /* owned when read (db_attempt_run_release()); borrowed by create */
	int64_t job_id;               /* 0: none (not yet, or the job was purged) */
	char state[DB_ATTEMPT_STATE_MAX];
	bool has_exit_code;
	int exit_code;
	int64_t created_at, finished_at;   /* 0: not yet */
};
void db_attempt_run_release(struct db_attempt_run *r);
/* Inserts r (attempt, user, seq, prompt, state, created_at); sets r->id.
 * DB_CONFLICT when the attempt has that seq already. */
int db_attempt_run_create(struct db *db, struct db_attempt_run *r);
int db_attempt_run_get(struct db *db, int64_t id, struct db_attempt_run *out);
/* The attempt's runs by seq; fn as db_project_list()'s (the run is
 * released after it returns). */
typedef int (*db_attempt_run_fn)(const struct db_attempt_run *r, void *arg);
int db_attempt_run_list(struct db *db, int64_t attempt_id, db_attempt_run_fn fn, void *arg);
/* The attempt's last run (highest seq). DB_NOTFOUND when it has none. */
int db_attempt_run_last(struct db *db, int64_t attempt_id, struct db_attempt_run *out);
int db_attempt_run_set_job(struct db *db, int64_t id, int64_t job_id);
/* Runs still queued or running whose job ended (or is gone): the worker
 * that ran it stopped before reporting (services/attempts.c settles them). */
struct db_attempt_orphan {
	int64_t attempt_id, run_id;
	char job_state[16];           /* "" when the job is gone */
	char job_error[256];
};
int db_attempt_run_orphans(struct db *db, int max, struct db_attempt_orphan *out, size_t *n);
/* Sets the run's state; finished_at 0 leaves it unset. */
int db_attempt_run_set_state(struct db *db, int64_t id, const char *state, bool has_exit_code, int exit_code,
			     int64_t finished_at);

/* An attempt's stored diff. */
struct db_attempt_diff {
	char *diff;                   /* JSON; owned when read with it (free()), else NULL */
	int64_t files, additions, deletions, created_at;
};
/* Stores (replaces) the attempt's diff. */
int db_attempt_diff_put(struct db *db, int64_t attempt_id, const char *diff, int64_t files, int64_t additions,
			int64_t deletions, int64_t now);
/* DB_NOTFOUND when the attempt has none. */
int db_attempt_diff_get(struct db *db, int64_t attempt_id, bool with_diff, struct db_attempt_diff *out);

/* ---- events: each user's change feed ----
 * Written in the same transaction as the change they report. Ids only
 * grow; a writer holds the user's row lock (db_user_lock(); db_event_add()
 * takes it too) so that one user's events commit in id order and a reader
 * that saw id N never later finds a smaller one. */
#define DB_EVENT_KIND_MAX 32
struct db_event {
	int64_t id, user_id;
	char kind[DB_EVENT_KIND_MAX];  /* e.g. task.created */
	int64_t subject;               /* the row it is about (a task id) */
	int64_t project_id;            /* 0: none */
	int64_t created_at;
};
/* Appends an event (project_id 0: none); *id (may be NULL) gets its id. */
int db_event_add(struct db *db, int64_t user_id, const char *kind, int64_t subject, int64_t project_id,
		 int64_t now, int64_t *id);
/* The user's events with ids over after, oldest first, at most limit;
 * *more says whether more follow. fn returns 0 to go on, < 0 for an error. */
typedef int (*db_event_fn)(const struct db_event *ev, void *arg);
int db_event_list(struct db *db, int64_t user_id, int64_t after, int limit, db_event_fn fn, void *arg,
		  bool *more);
/* db_event_list() read with the session (db_session_find_prefetch() with
 * pf->events, pf->after, pf->limit), once. Every row is checked in C to be
 * user_id's, who must be the session's user, before fn sees it: another
 * user's row is DB_ERROR, never passed on. DB_ERROR too when pf holds no
 * such read. */
int db_prefetch_events(struct db *db, struct db_prefetch *pf, int64_t user_id, db_event_fn fn, void *arg,
		       bool *more);
/* Deletes up to limit events older than before; *deleted counts them. */
int db_event_purge(struct db *db, int64_t before, int limit, int64_t *deleted);

/* ---- moving an install ---- */
typedef void (*db_copy_progress_fn)(const char *table, int64_t rows, void *arg);
/* Copies every row of src into dst, ids kept, in one transaction on dst;
 * on PostgreSQL the id sequences then continue after the copied ids. Both
 * must be migrated to the latest version. DB_CONFLICT when dst holds rows
 * beyond what migrations seed (it is left untouched). err says why. */
int db_copy(struct db *src, struct db *dst, db_copy_progress_fn progress, void *arg,
	    char *err, size_t errlen);
/* Whether db_copy() copies table (a test checks every table of the schema). */
bool db_copy_covers(const char *table);

/* ---- workers ---- */
int db_worker_heartbeat(struct db *db, const char *id, const char *host, int pid,
			int64_t started_at, int64_t now, bool docker_ok,
			const char *docker_version);
int db_worker_stopped(struct db *db, const char *id, int64_t now);
/* Whether a worker that beat at or after since (and has not stopped)
 * reached Docker. */
int db_worker_docker_any(struct db *db, int64_t since, bool *yes);
/* The freshest heartbeat of any worker; DB_NOTFOUND when none ever ran. */
int db_worker_latest(struct db *db, int64_t *heartbeat_at, bool *docker_ok);

#endif
