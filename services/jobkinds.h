/* jobkinds.h - the kinds of job the worker runs, and validation of their
 * arguments, shared by the API (which refuses bad args up front) and the
 * worker (which trusts nothing in the database either). */
#ifndef ANYON_JOBKINDS_H
#define ANYON_JOBKINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Limits of the echo job (no Docker; for tests and anyonctl). */
#define ECHO_MAX_LINES 1000
#define ECHO_MAX_LINE 4096
#define ECHO_MAX_DELAY_MS 10000
/* Longest an echo can take by its arguments (1000 lines, 10 s apart), and a margin. */
#define ECHO_TIME_LIMIT_S (3 * 3600)

/* Limits of the container job (worker/job_container.c). */
#define CONTAINER_MAX_ARGV 64
#define CONTAINER_MAX_ARG 4096
#define CONTAINER_MAX_SECRETS 8
/* An agent run may take hours; ANYON_JOB_TIME_LIMIT_S caps it lower. */
#define CONTAINER_TIME_LIMIT_S (6 * 3600)
/* A pull request: a push from the host mirror and a few API calls. */
#define PULL_REQUEST_TIME_LIMIT_S 600
/* A Claude sign-in (worker/job_claude_login.c): its own timeout,
 * ANYON_CLAUDE_LOGIN_TIMEOUT_S (default 600), is at most this. */
#define CLAUDE_LOGIN_TIME_LIMIT_S 3600

/* What running a kind needs from the worker. */
enum jobkind_need {
	NEED_DOCKER = 1 << 0,   /* a reachable Docker Engine */
	NEED_GITHUB = 1 << 1,   /* the user's GitHub token */
	NEED_CLAUDE = 1 << 2,   /* the user's Claude credential */
};

/* One kind of job: everything the API and the worker need to know of it,
 * in one table (services/jobkinds.c). The worker has one executor per
 * kind; it refuses to start if one is missing (anyon-worker --check). */
struct jobkind {
	const char *name;
	int (*validate)(json_object *args, char *err, size_t errlen);
	unsigned needs;          /* NEED_* */
	int max_attempts;        /* 0: ANYON_JOB_MAX_ATTEMPTS */
	int64_t time_limit_s;    /* a run longer than this fails; 0: no limit */
	/* May a run lost with its worker (lease expired) run again? Not for a
	 * kind whose run may have had effects outside (pushed a branch): then
	 * the lost run fails instead of running twice. */
	bool retry_lost;
	/* Queued only by anyon's own services (attempts), never through
	 * POST /api/jobs. */
	bool internal;
};

/* Room for every kind's name, comma-separated. */
#define JOBKIND_NAMES_MAX 512

/* The kind named name, or NULL. */
const struct jobkind *jobkind_find(const char *name);

/* How many attempts a job of kind k gets: its own, or ANYON_JOB_MAX_ATTEMPTS. */
int jobkind_max_attempts(const struct jobkind *k);

/* A run's time limit in seconds for kind k: the smaller of its own and
 * ANYON_JOB_TIME_LIMIT_S (0 in either: the other; both 0: none). */
int64_t jobkind_time_limit_s(const struct jobkind *k);

/* The table, for iteration: *n receives its length. */
const struct jobkind *jobkind_all(size_t *n);

/* Comma-separated names of the kinds whose needs all lie in have (what a
 * worker can run now), or with retry_lost false when lost_only. Returns 0,
 * or -1 when out does not hold them. */
int jobkind_names(unsigned have, bool lost_only, char *out, size_t len);

/* Returns 0 when kind is known and args (a JSON object) are valid for it;
 * otherwise -1 with a message in err naming the bad field. */
int jobkind_validate(const char *kind, json_object *args, char *err, size_t errlen);

#endif
