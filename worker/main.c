/* anyon-worker - the job daemon. One per Docker host. It claims queued jobs
 * under a lease renewed while they run (a dead worker's jobs are taken over
 * when the lease runs out), writes their output as ordered chunks, and
 * writes a heartbeat with what it sees of Docker. SIGTERM lets the current
 * job finish within a grace period, else hands it back to the queue. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
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
#include "base/util.h"
#include "db/db.h"
#include "services/jobs.h"
#include "services/retention.h"
#include "worker/worker.h"

#define SLEEP_SLICE_MS 100
#define DOCKER_PROBE_TIMEOUT_MS 2000

static volatile sig_atomic_t got_stop;
static int64_t stop_deadline_ms;     /* when a running job must be handed back */
static int64_t grace_ms = 10000;     /* ANYON_WORKER_GRACE_MS */

static const struct {
	const char *kind;
	job_executor exec;
} executors[] = {
	{ "echo", job_exec_echo },
};

struct worker {
	struct db *db;
	struct keyring keyring;      /* secrets for jobs; wiped at exit */
	char id[DB_JOB_OWNER_MAX];
	char host[64];
	int64_t started_at;
	int64_t last_beat_ms;
	int64_t last_purge;
	bool once;                   /* exit when the queue is empty */
};

static void on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);   /* a signal cuts it short, as wanted */
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

static struct worker *the_worker;   /* for heartbeats during long jobs */
static void heartbeat(struct worker *w);

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
	if (now - the_worker->last_beat_ms >= g_config.heartbeat_s * 1000)
		heartbeat(the_worker);
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

static void run_job(struct worker *w, struct db_job *job)
{
	struct job_run run = { w->db, w->id, job, mono_ms() };
	struct job_result res = { CP_CONTINUE, 0, "" };
	job_executor exec = NULL;
	enum job_state final;
	int64_t id = job->id;

	for (size_t i = 0; i < ARRAY_SIZE(executors); i++)
		if (strcmp(executors[i].kind, job->kind) == 0)
			exec = executors[i].exec;
	log_info("job %lld (%s): attempt %d", (long long)id, job->kind, job->attempts);
	if (job->attempts > 1)
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
		if (db_job_release_lease(w->db, id, w->id) == DB_OK)
			log_info("job %lld: handed back", (long long)id);
		return;
	case CP_CANCEL:
		system_line(&run, "cancelled");
		final = JOB_CANCELLED;
		break;
	default:
		final = res.exit_code == 0 && !res.error[0] ? JOB_SUCCEEDED : JOB_FAILED;
		break;
	}
	if (db_job_finish(w->db, id, w->id, final, res.stop == CP_CONTINUE, res.exit_code,
			  res.error, now_s()) == DB_OK)
		log_info("job %lld: %s", (long long)id, job_state_name(final));
}

static void heartbeat(struct worker *w)
{
	char version[128];
	bool docker_ok;

	docker_ok = docker_probe(NULL, DOCKER_PROBE_TIMEOUT_MS,
				 version, sizeof(version)) == 0;
	if (!docker_ok)
		log_debug("docker unreachable: %s", version);
	db_worker_heartbeat(w->db, w->id, w->host, (int)getpid(), w->started_at, now_s(),
			    docker_ok, docker_ok ? version : NULL);
	w->last_beat_ms = mono_ms();
	if (now_s() - w->last_purge >= g_config.purge_interval_s) {
		struct retention_report rr;

		w->last_purge = now_s();
		if (retention_purge(w->db, now_s(), &rr))
			log_warn("the retention pass failed in part (see above)");
		if (rr.sessions || rr.flows || rr.jobs || rr.audit)
			log_info("retention: purged %lld sessions, %lld sign-in flows, %lld finished jobs, "
				 "%lld audit rows", (long long)rr.sessions, (long long)rr.flows,
				 (long long)rr.jobs, (long long)rr.audit);
	}
}

static void usage(FILE *to)
{
	fprintf(to, "usage: anyon-worker [--pid-file PATH] [--once]\n"
		"Runs anyon's jobs. Settings come from ANYON_* variables; see docs/DEPLOYMENT.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pid-file", required_argument, NULL, 'p' },
		{ "once", no_argument, NULL, '1' },
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
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	g = getenv("ANYON_WORKER_GRACE_MS");
	if (g && *g && parse_i64(g, 0, 3600 * 1000, &grace_ms))
		die("ANYON_WORKER_GRACE_MS must be a number from 0 to 3600000");

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	keyring_load_or_die(&w.keyring);
	w.db = db_open(g_config.db_path, true, err, sizeof(err));
	if (!w.db)
		die("%s", err);
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
	the_worker = &w;
	log_info("worker %s started", w.id);
	heartbeat(&w);

	while (!got_stop) {
		struct db_job job;
		int rc;

		if (mono_ms() - w.last_beat_ms >= g_config.heartbeat_s * 1000)
			heartbeat(&w);
		rc = jobs_claim(w.db, w.id, now_s(), g_config.lease_s, &job);
		if (rc == DB_OK) {
			run_job(&w, &job);
			db_job_release(&job);
			continue;
		}
		if (w.once && rc == DB_NOTFOUND)
			break;
		msleep((long)g_config.worker_poll_ms);
	}
	db_worker_stopped(w.db, w.id, now_s());
	db_close(w.db);
	keyring_wipe(&w.keyring);
	if (pid_file)
		unlink(pid_file);
	curl_global_cleanup();
	log_info("worker stopped");
	return 0;
}
