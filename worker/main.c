/* anyon-worker - the job daemon. One per Docker host. A supervisor claims
 * queued jobs under a lease and runs each in a forked child of its own
 * (ANYON_WORKER_SLOTS at once, each child with its own database
 * connection), which renews the lease while the job runs and writes its
 * output as ordered chunks; a dead worker's jobs are taken over when the
 * lease runs out. The supervisor writes the heartbeat (what it sees of
 * Docker) and runs the retention pass. SIGTERM lets running jobs finish
 * within a grace period, else each is handed back to the queue. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "services/docker.h"
#include "services/audit.h"
#include "base/config.h"
#include "base/keyring.h"
#include "services/legacy.h"
#include "base/log.h"
#include "base/procs.h"
#include "base/util.h"
#include "db/db.h"
#include "services/jobkinds.h"
#include "services/attempts.h"
#include "services/jobs.h"
#include "services/access.h"
#include "services/retention.h"

/* Kept workspaces of purged jobs removed per retention pass. */
#define WORKSPACE_SWEEP_MAX 64
#include "worker/worker.h"

#define SLEEP_SLICE_MS 100
#define DOCKER_PROBE_TIMEOUT_MS 2000
/* After the grace, how long a stopping worker waits for its job children
 * to hand their jobs back before killing them. */
#define STOP_MARGIN_MS 5000
/* How long past its job's time limit a job's process may run before the
 * supervisor kills it (it stops itself at the limit when it can). */
#define HUNG_MARGIN_S 60
/* Adoption (see adopt()): how many runs to look at per pass, how many to
 * remember, how often one job is adopted by this worker at most. */
#define ADOPT_SCAN 8
#define ADOPT_REMEMBER 64
#define ADOPT_TRIES 3
#define CHECKPOINT_MS 250

static volatile sig_atomic_t got_stop;
static int64_t stop_deadline_ms;     /* when a running job must be handed back */
static int64_t grace_ms = 10000;     /* ANYON_WORKER_GRACE_MS */

static const struct {
	const char *kind;
	job_executor exec;
} executors[] = {
	{ "echo", job_exec_echo },
	{ "container", job_exec_container },
	{ "attempt", job_exec_attempt },
	{ "pull_request", job_exec_pull_request },
	{ "claude_login", job_exec_claude_login },
};

struct worker {
	struct db *db;               /* the supervisor's connection; never used by a job child */
	struct keyring keyring;      /* secrets for jobs; wiped at exit */
	char id[DB_JOB_OWNER_MAX];
	char host[64];
	int64_t started_at;
	int64_t last_beat_ms;
	int64_t last_purge;
	int64_t last_org_check;      /* the last pass of access_org_recheck() */
	int64_t last_reap;           /* the last pass of the orphan container reaper */
	bool once;                   /* exit when the queue is empty */
	bool cli_checked;            /* the image's `claude --version` was asked */
	struct procs slots;          /* a child per running job */
	int64_t *slot_job;           /* owned; the job id each slot runs */
	int64_t *slot_end_ms;        /* owned; when each slot's job is past its time limit
				      * (and a margin) for sure; 0: no limit */
	int64_t last_renew_ms;       /* the supervisor's last renewal of its children's leases */
	struct db_job *claimed;      /* the job being handed to a new child (borrowed) */
	bool adopting;               /* ... taken over from a worker that stopped */
	int64_t last_adopt_ms;       /* the last look for runs to adopt */
	int64_t last_checkpoint_ms;  /* the last checkpoint() */
	struct { int64_t job; int n; } adopted[ADOPT_REMEMBER]; /* how often this worker
				      * adopted a job: a run whose child keeps dying is not
				      * adopted for ever */
	pid_t pid;                   /* the supervisor's */
	bool docker_ok;              /* at the last heartbeat */
};

static void on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}

/* Only there to cut the supervisor's sleep short, so a free slot is
 * filled at once. */
static void on_child(int sig)
{
	(void)sig;
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);   /* a signal cuts it short, as wanted */
}

bool worker_stopping(void)
{
	return got_stop != 0;
}

/* True once a stop was asked for and the grace period is over. */
static bool must_hand_back(void)
{
	if (!got_stop)
		return false;
	if (!stop_deadline_ms)
		stop_deadline_ms = mono_ms() + grace_ms;
	return mono_ms() >= stop_deadline_ms;
}

static int64_t renew_interval_ms(void)
{
	int64_t third = g_config.lease_s * 1000 / 3;

	return third < 1000 ? third : 1000;
}

enum checkpoint job_checkpoint(struct job_run *run)
{
	int64_t now = mono_ms();
	bool cancel = run->job->cancel_requested;

	if (must_hand_back())
		return CP_SHUTDOWN;
	if (run->deadline_ms && now >= run->deadline_ms)
		return CP_TIMEOUT;
	/* Renew at a third of the lease (two missed renewals still hold it) and
	 * at least every second, which is also how a cancel is noticed. */
	if (now - run->renewed_ms >= renew_interval_ms()) {
		int rc = db_job_renew(run->db, run->job->id, run->owner, now_s(),
				      g_config.lease_s, &cancel);

		if (rc == DB_NOTFOUND) {
			log_warn("job %lld: lease lost; abandoning it", (long long)run->job->id);
			return CP_LOST;
		}
		if (rc == DB_OK) {
			run->renewed_ms = now;
			run->job->cancel_requested = cancel;
		}
	}
	return cancel ? CP_CANCEL : CP_CONTINUE;
}

int job_keep_lease(struct job_run *run)
{
	int64_t now = mono_ms();
	bool cancel = run->job->cancel_requested;
	int rc;

	if (now - run->renewed_ms < renew_interval_ms())
		return 0;
	rc = db_job_renew(run->db, run->job->id, run->owner, now_s(), g_config.lease_s, &cancel);
	if (rc == DB_NOTFOUND) {
		log_warn("job %lld: lease lost; abandoning it", (long long)run->job->id);
		return -1;
	}
	if (rc == DB_OK) {
		run->renewed_ms = now;
		run->job->cancel_requested = cancel;
	}
	return 0;
}

enum checkpoint job_sleep(struct job_run *run, long ms)
{
	int64_t end = mono_ms() + ms;
	enum checkpoint cp = CP_CONTINUE;

	while (cp == CP_CONTINUE && mono_ms() < end) {
		int64_t left = end - mono_ms();

		msleep(left < SLEEP_SLICE_MS ? (long)left : SLEEP_SLICE_MS);
		cp = job_checkpoint(run);
	}
	return cp;
}

int job_write(struct job_run *run, const char *stream, const void *data, size_t len)
{
	return db_job_append(run->db, run->job->id, run->owner, stream, data, len, now_s(), NULL)
	       == DB_OK ? 0 : -1;
}

static void system_line(struct job_run *run, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void system_line(struct job_run *run, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	job_write(run, "system", line, (size_t)n);
}

static job_executor executor_of(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(executors); i++)
		if (strcmp(executors[i].kind, kind) == 0)
			return executors[i].exec;
	return NULL;
}

/* Every kind of the table (services/jobkinds.c) has an executor here, and
 * every executor a kind. Says so of each on out (NULL: silent); returns
 * how many are wrong. */
static int check_executors(FILE *out)
{
	const struct jobkind *all;
	size_t n;
	int bad = 0;

	all = jobkind_all(&n);
	for (size_t i = 0; i < n; i++) {
		bool has = executor_of(all[i].name) != NULL;

		if (out)
			fprintf(out, "%s: %s\n", all[i].name, has ? "executor ok" : "NO EXECUTOR");
		bad += !has;
	}
	for (size_t i = 0; i < ARRAY_SIZE(executors); i++)
		if (!jobkind_find(executors[i].kind)) {
			if (out)
				fprintf(out, "%s: an executor without a kind in the table\n", executors[i].kind);
			bad++;
		}
	return bad;
}

/* When a job's time limit ends, as a mono_ms() time: limit_s from now,
 * or for an adopted run from when the job started (wall clock). 0: none. */
static int64_t deadline_of(const struct db_job *job, int64_t limit_s, bool adopted)
{
	int64_t left = limit_s;

	if (!limit_s)
		return 0;
	if (adopted && job->started_at > 0)
		left = job->started_at + limit_s - now_s();
	return mono_ms() + (left > 0 ? left : 0) * 1000;
}

static void run_job(struct db *db, const char *owner, struct db_job *job, struct keyring *kr, bool adopted)
{
	const struct jobkind *kind = jobkind_find(job->kind);
	int64_t limit_s = jobkind_time_limit_s(kind);
	struct job_run run = { db, owner, job, mono_ms(), deadline_of(job, limit_s, adopted), kr, adopted };
	struct job_result res = { CP_CONTINUE, 0, "" };
	job_executor exec = executor_of(job->kind);
	enum job_state final;
	int64_t id = job->id;

	if (adopted)
		log_info("job %lld (%s): adopted from a worker that stopped", (long long)id, job->kind);
	else
		log_info("job %lld (%s): attempt %d", (long long)id, job->kind, job->attempts);
	if (job->attempts > 1 && !adopted)
		system_line(&run, "attempt %d (an earlier worker stopped before finishing)", job->attempts);
	if (!exec) {
		res.exit_code = 1;
		snprintf(res.error, sizeof(res.error), "no executor for job kind '%.32s'", job->kind);
	} else {
		exec(&run, &res);
	}

	switch (res.stop) {
	case CP_LOST:
		return;
	case CP_SHUTDOWN:
		system_line(&run, "worker stopping; the job goes back to the queue");
		if (jobs_requeue(db, id, owner, now_s()) == DB_OK)
			log_info("job %lld: handed back", (long long)id);
		return;
	case CP_DETACH:
		system_line(&run, "the worker is stopping; the run goes on, and the next worker carries on with it");
		if (db_job_expire_lease(db, id, owner, now_s()) == DB_OK)
			log_info("job %lld: left running for the next worker", (long long)id);
		return;
	case CP_CANCEL:
		system_line(&run, "cancelled");
		final = JOB_CANCELLED;
		break;
	case CP_TIMEOUT:
		system_line(&run, "stopped: the time limit of %lld s ran out", (long long)limit_s);
		snprintf(res.error, sizeof(res.error), "time limit of %lld s reached", (long long)limit_s);
		final = JOB_FAILED;
		break;
	default:
		final = res.exit_code == 0 && !res.error[0] ? JOB_SUCCEEDED : JOB_FAILED;
		break;
	}
	if (jobs_finish(db, id, owner, final, res.stop == CP_CONTINUE, res.exit_code,
			res.error, now_s()) == DB_OK)
		log_info("job %lld: %s", (long long)id, job_state_name(final));
}

static void heartbeat(struct worker *w)
{
	char version[128];
	bool docker_ok;

	docker_ok = docker_probe(NULL, DOCKER_PROBE_TIMEOUT_MS,
				 version, sizeof(version)) == 0;
	w->docker_ok = docker_ok;
	if (!docker_ok)
		log_debug("docker unreachable: %s", version);
	db_worker_heartbeat(w->db, w->id, w->host, (int)getpid(), w->started_at, now_s(),
			    docker_ok, docker_ok ? version : NULL);
	w->last_beat_ms = mono_ms();
	if (docker_ok && !w->cli_checked) {
		/* Once a start, when the engine is there: the image's CLI, for
		 * /api/health's banner. */
		char cli[32], why[256];

		w->cli_checked = true;
		if (container_claude_version(cli, sizeof(cli), why, sizeof(why))) {
			log_warn("the agent image's Claude CLI: %s", why);
			db_worker_set_claude(w->db, w->id, NULL, why);
			/* An event an administrator finds in the audit trail, beside
			 * the banner /api/health raises on every page. */
			audit_event(w->db, 0, 0, "claude.cli_broken", "error", "worker=%s image=%.120s", w->id,
				    g_config.agent_image);
		} else {
			log_info("the agent image's Claude CLI is %s", cli);
			db_worker_set_claude(w->db, w->id, cli, NULL);
		}
	}
	{
		int64_t failed = 0;

		if (jobs_fail_lost(w->db, now_s(), &failed) == DB_OK && failed)
			log_info("%lld lost job(s) failed (not run again, or not adopted in time)", (long long)failed);
	}
	{
		int settled = 0;

		if (attempts_settle_orphans(w->db, 32, now_s(), &settled) == DB_OK && settled)
			log_info("%d attempt run(s) whose job ended unreported settled", settled);
	}
	if (now_s() - w->last_purge >= g_config.purge_interval_s) {
		struct retention_report rr;

		w->last_purge = now_s();
		if (retention_purge(w->db, now_s(), &rr))
			log_warn("the retention pass failed in part (see above)");
		if (rr.sessions || rr.flows || rr.jobs || rr.audit)
			log_info("retention: purged %lld sessions, %lld sign-in flows, %lld finished jobs, "
				 "%lld audit rows", (long long)rr.sessions, (long long)rr.flows,
				 (long long)rr.jobs, (long long)rr.audit);
		/* Kept workspaces go with their job's row. */
		{
			int ws = container_workspace_sweep(w->db, WORKSPACE_SWEEP_MAX);

			if (ws > 0)
				log_info("retention: removed %d workspace(s) of purged jobs", ws);
			else if (ws < 0)
				log_warn("retention: the workspaces directory could not be read");
			ws = attempt_sweep(w->db, WORKSPACE_SWEEP_MAX);
			if (ws > 0)
				log_info("retention: removed %d attempt workspace(s) and mirror(s) of deleted tasks and "
					 "projects", ws);
			else if (ws < 0)
				log_warn("retention: the attempt workspaces or mirrors could not be swept");
		}
	}
}

/* A job's child: its own connection (none crosses fork(); the
 * supervisor's is left alone, not closed, since closing a PostgreSQL
 * connection would end it for the parent too), the job, then exit. */
static void job_child(void *arg)
{
	struct worker *w = arg;
	char err[256];
	struct db *db;

	/* The job dies with its supervisor: a worker killed outright is gone
	 * as a whole, and its jobs are taken over when their leases run out. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != w->pid)
		_exit(1);
	signal(SIGCHLD, SIG_DFL);
	db = db_open(g_config.db_path, false, err, sizeof(err));
	if (!db) {
		log_error("job %lld: %s", (long long)w->claimed->id, err);
		keyring_wipe(&w->keyring);
		_exit(1);
	}
	/* Copying the log into the database is the supervisor's work
	 * (checkpoint()), done beside the job's writes, not in their way;
	 * and the output it stores costs PostgreSQL lz4, not pglz. */
	db_defer_checkpoints(db);
	db_compress_fast(db);
	db_share_commits(db, g_config.data_dir, true);
	run_job(db, w->id, w->claimed, &w->keyring, w->adopting);
	db_job_release(w->claimed);
	db_close(db);
	keyring_wipe(&w->keyring);
	curl_global_cleanup();
	exit(0);
}

/* A job's child ended. One that did not exit 0 (a crash, a kill) may have
 * left its job running under our lease: the lease is ended at once, with a
 * line saying why, so the job is taken over as from a dead worker (the
 * attempt counts: a job that keeps killing its child ends failed). */
static void on_job_exit(int slot, pid_t pid, int status, int64_t ran_ms, void *ctx)
{
	struct worker *w = ctx;
	int64_t id = w->slot_job[slot];
	char line[128];
	int n;

	(void)ran_ms;
	w->slot_job[slot] = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFSIGNALED(status))
		n = snprintf(line, sizeof(line), "the job's process %ld was killed by signal %d\n",
			     (long)pid, WTERMSIG(status));
	else
		n = snprintf(line, sizeof(line), "the job's process %ld exited with status %d\n",
			     (long)pid, WEXITSTATUS(status));
	log_warn("job %lld: %.*s", (long long)id, n - 1, line);
	if (id > 0) {
		db_job_append(w->db, id, w->id, "system", line, (size_t)n, now_s(), NULL);
		db_job_expire_lease(w->db, id, w->id, now_s());
	}
}

/* What this worker can run now: container kinds only while the last
 * heartbeat reached Docker. A user's GitHub token or Claude credential is
 * looked up when the job runs. */
static unsigned capabilities(const struct worker *w)
{
	return (w->docker_ok ? NEED_DOCKER : 0) | NEED_GITHUB | NEED_CLAUDE;
}

/* Starts the child that runs job (leased to this worker) in slot. 0, or
 * -1 when it could not fork. */
static int start_child(struct worker *w, int slot, struct db_job *job, bool adopted)
{
	int64_t limit_s = jobkind_time_limit_s(jobkind_find(job->kind)), end;
	int rc;

	end = deadline_of(job, limit_s, adopted);
	w->claimed = job;
	w->adopting = adopted;
	w->slot_job[slot] = job->id;
	w->slot_end_ms[slot] = end ? end + HUNG_MARGIN_S * 1000 : 0;
	rc = procs_spawn(&w->slots, slot, job_child, w) < 0 ? -1 : 0;
	if (rc)
		w->slot_job[slot] = 0;
	w->claimed = NULL;
	w->adopting = false;
	return rc;
}

/* Claims a job into a free slot and starts its child. Returns true when a
 * job was started (the caller tries the next slot at once). */
static bool fill_slot(struct worker *w)
{
	int slot = procs_free_slot(&w->slots);
	struct db_job job;
	int64_t max_running = g_config.cloud ? g_config.user_max_running : 0;
	int rc;

	if (slot < 0)
		return false;
	rc = jobs_claim(w->db, w->id, now_s(), g_config.lease_s, max_running, capabilities(w), &job);
	if (rc != DB_OK)
		return false;
	if (start_child(w, slot, &job, false) < 0)
		jobs_requeue(w->db, job.id, w->id, now_s());
	db_job_release(&job);
	return true;
}

/* How often this worker adopted job (0 when it does not remember it);
 * with bump, one more time. */
static int adopted_count(struct worker *w, int64_t job, bool bump)
{
	int free_i = -1;

	for (int i = 0; i < ADOPT_REMEMBER; i++) {
		if (w->adopted[i].job == job) {
			if (bump)
				w->adopted[i].n++;
			return w->adopted[i].n - (bump ? 1 : 0);
		}
		if (!w->adopted[i].job && free_i < 0)
			free_i = i;
	}
	if (bump) {
		/* Full: one remembered job is forgotten. */
		int i = free_i >= 0 ? free_i : (int)(job % ADOPT_REMEMBER);

		w->adopted[i].job = job;
		w->adopted[i].n = 1;
	}
	return 0;
}

/* Carries on with a run a worker that stopped left running: a lost job
 * whose container started and has not ended (db_job_adoptable()), when
 * that container is on this worker's engine. The lease is taken without
 * counting an attempt and a child resumes the run where its output was
 * committed (worker/job_container.c). Looked for once a second while
 * Docker answers; true when a child was started. */
static bool adopt(struct worker *w)
{
	int64_t ids[ADOPT_SCAN];
	size_t n = 0;
	int slot;

	if (!w->docker_ok || got_stop || mono_ms() - w->last_adopt_ms < 1000)
		return false;
	if ((slot = procs_free_slot(&w->slots)) < 0)
		return false;
	w->last_adopt_ms = mono_ms();
	if (db_job_adoptable(w->db, now_s(), now_s() - g_config.adopt_window_s, ids, ADOPT_SCAN, &n) != DB_OK)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct db_job job;
		bool started = false;

		if (adopted_count(w, ids[i], false) >= ADOPT_TRIES)
			continue;   /* left to fail when the window ends */
		if (db_job_get(w->db, ids[i], 0, &job) != DB_OK)
			continue;
		if (job.container_id[0] && container_exists(job.container_id) == 1 &&
		    db_job_take_lost(w->db, job.id, w->id, now_s(), g_config.lease_s) == DB_OK) {
			adopted_count(w, job.id, true);
			if (start_child(w, slot, &job, true) < 0)
				db_job_expire_lease(w->db, job.id, w->id, now_s());
			else
				started = true;
		}
		db_job_release(&job);
		if (started)
			return true;
	}
	return false;
}

/* The supervisor renews the lease of every job a live child runs, as the
 * child does itself: a child slow to get going (fork, its own connection,
 * a loaded machine) must not lose its job to another worker before its
 * first renewal. A child that dies ends its lease (on_job_exit()); one
 * that hangs past its job's time limit and a margin is killed, since its
 * lease would otherwise be renewed for ever. */
static void keep_leases(struct worker *w)
{
	int64_t now = mono_ms();

	if (now - w->last_renew_ms < renew_interval_ms())
		return;
	w->last_renew_ms = now;
	for (int i = 0; i < w->slots.n; i++) {
		bool cancel;

		if (w->slots.pid[i] <= 0 || w->slot_job[i] <= 0)
			continue;
		if (w->slot_end_ms[i] && now >= w->slot_end_ms[i]) {
			log_warn("job %lld: its process %ld is past the time limit and does not stop; killing it",
				 (long long)w->slot_job[i], (long)w->slots.pid[i]);
			kill(w->slots.pid[i], SIGKILL);
			w->slot_end_ms[i] = 0;
			continue;
		}
		db_job_renew(w->db, w->slot_job[i], w->id, now_s(), g_config.lease_s, &cancel);
	}
}

/* While jobs run (their connections leave checkpoints to it, see
 * job_child()), copies the write-ahead log into the database every
 * CHECKPOINT_MS, so the log stays small however fast they write. */
static void checkpoint(struct worker *w)
{
	if (procs_live(&w->slots) == 0 || mono_ms() - w->last_checkpoint_ms < CHECKPOINT_MS)
		return;
	w->last_checkpoint_ms = mono_ms();
	if (db_checkpoint(w->db) != DB_OK)
		log_debug("checkpoint failed (a reader holds the log; the next one catches up)");
}

/* For --once: is anything left that this worker could claim? */
static bool jobs_waiting(struct worker *w)
{
	int64_t max_running = g_config.cloud ? g_config.user_max_running : 0;
	bool any = false;

	char kinds[JOBKIND_NAMES_MAX];

	if (jobkind_names(capabilities(w), false, kinds, sizeof(kinds)))
		return true;
	return db_job_claimable(w->db, now_s(), max_running, kinds, &any) != DB_OK || any;
}

/* The orphan reaper (worker/job_container.c), at start and every
 * ANYON_REAP_INTERVAL_S while Docker answers. */
static void reap(struct worker *w, bool now)
{
	int removed = 0;

	if (!now && (!w->docker_ok || now_s() - w->last_reap < g_config.reap_interval_s))
		return;
	w->last_reap = now_s();
	if (container_reap(w->db, w->id, &removed) == 0 && removed)
		log_info("reaper: removed %d orphan container(s)", removed);
}

/* Re-checks org members (services/access.h) every minute, or every
 * ANYON_ORG_RECHECK_S when that is shorter: each user is asked about once
 * per ANYON_ORG_RECHECK_S, and a pass cut short by a GitHub outage goes
 * on at the next one. Runs in the supervisor between slot fills (running
 * jobs go on in their children), for at most ACCESS_RECHECK_PASS_MS. */
static void org_recheck(struct worker *w)
{
	struct secret_store st = { .db = w->db, .kr = &w->keyring };
	int64_t every = g_config.org_recheck_s < 60 ? g_config.org_recheck_s : 60;
	struct access_recheck r;

	if (!g_config.cloud || every <= 0 || now_s() - w->last_org_check < every)
		return;
	w->last_org_check = now_s();
	if (access_org_recheck(&st, now_s(), &r))
		log_warn("the org membership re-check failed in part (see above)");
	if (r.offboarded || r.demoted || r.unknown)
		log_info("org re-check: %lld confirmed, %lld signed out, %lld no longer admin%s",
			 (long long)r.checked, (long long)r.offboarded, (long long)r.demoted,
			 r.unknown ? "; GitHub did not answer, the rest waits for the next pass" : "");
}

static void usage(FILE *to)
{
	fprintf(to, "usage: anyon-worker [--pid-file PATH] [--once] [--check]\n"
		"Runs anyon's jobs. Settings come from ANYON_* variables; see docs/DEPLOYMENT.md.\n"
		"--check says whether every job kind has an executor (exit 1 if not).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid-file", required_argument, NULL, 'p' },
		{ "once", no_argument, NULL, '1' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct worker w = { 0 };
	const char *pid_file = NULL, *g;
	struct sigaction sa;
	unsigned char rnd[4];
	char rhex[9], err[256];
	int c;

	log_init("anyon-worker");
	audit_set_actor("anyon-worker");
	config_load_global();
	while ((c = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pid_file = optarg;
			break;
		case '1':
			w.once = true;
			break;
		case 'c':
			return check_executors(stdout) ? 1 : 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (check_executors(NULL)) {
		check_executors(stderr);
		die("a job kind has no executor in this worker (see above)");
	}
	g = getenv("ANYON_WORKER_GRACE_MS");
	if (g && *g && parse_i64(g, 0, 3600 * 1000, &grace_ms))
		die("ANYON_WORKER_GRACE_MS must be a number from 0 to 3600000");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	keyring_load_or_die(&w.keyring);
	w.db = db_open(g_config.db_path, true, err, sizeof(err));
	if (!w.db)
		die("%s", err);
	/* The pool's answer cache forgets what this worker's commits change. */
	if (!db_share_commits(w.db, g_config.data_dir, true))
		log_warn("cannot map %s/commit-count: the pool learns of this worker's changes "
			 "only from PostgreSQL's notifications", g_config.data_dir);
	legacy_import_from_env(w.db, &w.keyring);
	if (gethostname(w.host, sizeof(w.host)))
		str_copy(w.host, sizeof(w.host), "unknown");
	w.host[sizeof(w.host) - 1] = '\0';
	if (rand_bytes(rnd, sizeof(rnd)))
		die("no randomness");
	hex_encode(rnd, sizeof(rnd), rhex);
	snprintf(w.id, sizeof(w.id), "%.40s:%ld:%s", w.host, (long)getpid(), rhex);
	w.started_at = now_s();
	if (pid_file)
		write_pid_file(pid_file);
	if (procs_init(&w.slots, (int)g_config.worker_slots) ||
	    !(w.slot_job = calloc((size_t)g_config.worker_slots, sizeof(*w.slot_job))) ||
	    !(w.slot_end_ms = calloc((size_t)g_config.worker_slots, sizeof(*w.slot_end_ms))))
		die("out of memory");
	w.pid = getpid();
	{
		char inst[64];

		if (container_instance(inst, sizeof(inst)))
			die("ANYON_INSTANCE: no instance id");
		log_info("worker %s started with %d slot(s), container instance %s", w.id, w.slots.n, inst);
	}
	heartbeat(&w);
	if (w.docker_ok)
		reap(&w, true);
	w.last_adopt_ms = mono_ms() - 1000;

	while (!got_stop) {
		/* A connection the server closed (a restart) is opened again
		 * here, at most once a second, rather than failing forever. */
		db_poll(w.db);
		procs_reap(&w.slots, on_job_exit, &w);
		keep_leases(&w);
		checkpoint(&w);
		if (mono_ms() - w.last_beat_ms >= g_config.heartbeat_s * 1000)
			heartbeat(&w);
		org_recheck(&w);
		reap(&w, false);
		if (adopt(&w) || fill_slot(&w))
			continue;
		if (w.once && procs_live(&w.slots) == 0 && !jobs_waiting(&w))
			break;
		/* SIGCHLD or SIGTERM cut the sleep short; running jobs need
		 * their checkpoints. */
		msleep(procs_live(&w.slots) && g_config.worker_poll_ms > CHECKPOINT_MS ? CHECKPOINT_MS
			: (long)g_config.worker_poll_ms);
	}
	if (procs_live(&w.slots) > 0) {
		log_info("stopping: %d job(s) running get %lld ms to finish", procs_live(&w.slots),
			 (long long)grace_ms);
		/* Each child hands its job back when the grace runs out; the
		 * margin lets it write that down before anything is killed. */
		procs_stop(&w.slots, SIGTERM, grace_ms + STOP_MARGIN_MS, on_job_exit, &w);
	}
	db_worker_stopped(w.db, w.id, now_s());
	db_close(w.db);
	procs_free(&w.slots);
	free(w.slot_job);
	free(w.slot_end_ms);
	keyring_wipe(&w.keyring);
	if (pid_file)
		unlink(pid_file);
	curl_global_cleanup();
	log_info("worker stopped");
	return 0;
}
