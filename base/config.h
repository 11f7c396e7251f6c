/* config.h - settings read once from the environment at start-up.
 *
 * Every program calls config_load() before forking; the struct is then
 * read-only. Strings live in fixed arrays so the struct owns nothing. */
#ifndef ANYON_CONFIG_H
#define ANYON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/workspace.h"

#define CONFIG_PATH_MAX 512

struct config {
	char data_dir[CONFIG_PATH_MAX];      /* ANYON_DATA_DIR, default ./var */
	char db_path[CONFIG_PATH_MAX];       /* ANYON_DB, default DATA_DIR/anyon.db */
	char fcgi_socket[CONFIG_PATH_MAX];   /* ANYON_FCGI_SOCKET, default DATA_DIR/run/fcgi.sock */
	char fcgi_socket_group[64];          /* ANYON_FCGI_SOCKET_GROUP: the unix socket's group (nginx's
					      * workers'), default: left as created */
	char docker_socket[CONFIG_PATH_MAX]; /* ANYON_DOCKER_SOCKET, default /var/run/docker.sock */
	bool cloud;                 /* ANYON_CLOUD=1: multi-user sign-in */
	bool git_allow_local_http;  /* ANYON_GIT_ALLOW_LOCAL_HTTP=1 (tests only): a project's git URL may
				     * be http://127.0.0.1 or http://localhost */
	int fcgi_children;          /* ANYON_FCGI_CHILDREN, 1..256, default 4 */
	int64_t max_body;           /* ANYON_MAX_BODY bytes, default 1 MiB */
	int64_t session_ttl_s;      /* ANYON_SESSION_TTL idle lifetime, default 7 days */
	int64_t session_max_s;      /* ANYON_SESSION_MAX absolute lifetime, default 30 days */
	int64_t sessions_per_addr;  /* ANYON_SESSIONS_PER_ADDR new sessions per address per 10 min, default 300 */
	int64_t lease_s;            /* ANYON_JOB_LEASE_S, default 30 */
	int64_t heartbeat_s;        /* ANYON_HEARTBEAT_S, default 5 */
	int64_t worker_poll_ms;     /* ANYON_WORKER_POLL_MS idle poll, default 200 */
	int64_t job_max_attempts;   /* ANYON_JOB_MAX_ATTEMPTS, default 3 */
	int64_t job_time_limit_s;   /* ANYON_JOB_TIME_LIMIT_S: caps every kind's own limit; 0: none (default) */
	int64_t worker_slots;       /* ANYON_WORKER_SLOTS: jobs one worker runs at once, default 4 */
	int64_t user_max_running;   /* ANYON_USER_MAX_RUNNING: running jobs per user (cloud mode), default 2 */
	char github_url[CONFIG_PATH_MAX];      /* ANYON_GITHUB_URL, default https://github.com */
	char github_api_url[CONFIG_PATH_MAX];  /* ANYON_GITHUB_API_URL, default https://api.github.com */
	char github_client_id[128];            /* ANYON_GITHUB_CLIENT_ID, OAuth/GitHub App client id */
	char allowed_github[4096];  /* ANYON_ALLOWED_GITHUB: logins and org:NAME entries allowed to
				     * sign in (cloud mode), checked by config_load() */
	char admin_github[1024];    /* ANYON_ADMIN_GITHUB: logins and org:NAME entries that are admins */
	bool org_entries;           /* either list has an org:NAME entry: sign-in asks for read:org */
	int64_t org_recheck_s;      /* ANYON_ORG_RECHECK_S: the worker re-checks org members this
				     * often, default 3600, 0: never */
	int64_t github_timeout_ms;  /* ANYON_GITHUB_TIMEOUT_MS per call, default 15000 */
	int64_t user_max_queued;    /* ANYON_USER_MAX_QUEUED jobs one user may have queued, default 100 */
	int64_t retain_jobs_s;      /* ANYON_RETAIN_JOBS_S: finished jobs and their output, default 30 days */
	int64_t retain_events_s;    /* ANYON_RETAIN_EVENTS_S: change-feed events, default 7 days */
	int64_t retain_audit_s;     /* ANYON_RETAIN_AUDIT_S: audit rows, default 365 days */
	int64_t retain_flows_s;     /* ANYON_RETAIN_FLOWS_S: device flows (live 15 min), default 1 day */
	int64_t purge_interval_s;   /* ANYON_PURGE_INTERVAL_S: the worker's retention pass, default 600 */
	int64_t job_max_output_bytes;  /* ANYON_JOB_MAX_OUTPUT_BYTES one job stores, default 64 MiB */
	int64_t user_max_output_bytes; /* ANYON_USER_MAX_OUTPUT_BYTES one user's jobs store; 0 no limit;
					* default 1 GiB in cloud mode, none in local mode */
	int64_t github_deadline_ms; /* ANYON_GITHUB_DEADLINE_MS: all of one API request's calls, default
				     * 45000, below nginx's fastcgi_read_timeout (60 s) */
	int64_t github_concurrency; /* ANYON_GITHUB_CONCURRENCY: children of the pool that may wait on
				     * GitHub at once; 0 (default): one less than the children, at least 1 */
	int64_t read_cache_ms;      /* ANYON_READ_CACHE_MS: a child of the pool keeps its
				     * answers to hot reads at most this long (fcgi/cache.c); 0: never;
				     * default 1000 */
	int64_t github_repo_cache_s;/* ANYON_GITHUB_REPO_CACHE_S: a user's repository list, walked for a
				     * search, is reused this long; 0: never; default 60 */
	/* Container jobs (worker/job_container.c). */
	char agent_image[256];      /* ANYON_AGENT_IMAGE: the image container jobs run, default anyon-agent:latest */
	char instance[64];          /* ANYON_INSTANCE: the anyon.instance label of this installation's
				     * containers; "": derived from ANYON_DB (see container_instance()) */
	char container_network[64]; /* ANYON_CONTAINER_NETWORK: a container's NetworkMode, default none */
	int64_t container_memory_mb;   /* ANYON_CONTAINER_MEMORY_MB, default 2048 */
	int64_t container_pids;        /* ANYON_CONTAINER_PIDS: processes per container, default 512 */
	int64_t container_millicpus;   /* ANYON_CONTAINER_MILLICPUS: 1000 = one CPU, default 1000 */
	int64_t container_stop_grace_s;/* ANYON_CONTAINER_STOP_GRACE_S: TERM to KILL on a stop, default 10 */
	enum workspace_keep workspace_keep; /* ANYON_WORKSPACE_KEEP: never (default) | failed | always:
					     * a container job's workspace after its end */
	int64_t reap_interval_s;       /* ANYON_REAP_INTERVAL_S: the worker's orphan container pass, default 60 */
	int64_t adopt_window_s;        /* ANYON_ADOPT_WINDOW_S: how long a lost container job waits for a
					* worker to carry on with its container, default 600 */
	char test_fault[64];        /* ANYON_TEST_FAULT: tests only, see config_fault() */
	/* ANYON_PUBLIC_URL, parsed by libcurl and checked by config_load(); all
	 * empty when unset (then only the loopback names are served, see
	 * fcgi/origin.c). */
	char public_origin[CONFIG_PATH_MAX];  /* "https://anyon.example.com[:port]", as browsers
					       * send Origin: lower case, default port left out */
	char public_host[256];      /* "anyon.example.com" or "[2001:db8::1]": nginx's server_name */
	int public_port;            /* explicit or the scheme's default; 0 when unset */
	bool public_https;          /* the public URL's scheme is https */
};

/* The host names anyon always answers to at the port nginx listens on,
 * besides ANYON_PUBLIC_URL's: no other site can be reached under them, so
 * DNS rebinding cannot use them. NULL-terminated. */
extern const char *const config_loopback_hosts[];

/* GitHub logins: 1 to CONFIG_LOGIN_MAX letters, digits, '-' or '_'. An
 * org:NAME entry's NAME: 1 to CONFIG_LOGIN_MAX letters, digits or '-',
 * not starting with '-'. A list holds at most CONFIG_ORG_ENTRIES_MAX
 * org:NAME entries (each is one call to GitHub at sign-in). */
#define CONFIG_LOGIN_MAX 39
#define CONFIG_ORG_ENTRIES_MAX 8

/* True when item is in list (comma- or space-separated, case-insensitive,
 * as GitHub logins are). */
bool config_list_has(const char *list, const char *item);

/* Fault injection, for tests only: true when ANYON_TEST_FAULT names point,
 * and the caller then fails as if its last step had failed. When it is
 * "exit:" followed by point, the process exits on the spot instead, as if
 * killed there. Unset (always, outside tests), it is false everywhere. */
bool config_fault(const char *point);

/* True when addr (a numeric IPv4 or IPv6 address, as nginx's $remote_addr)
 * is a loopback address: 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. False
 * for anything else, names and the empty string included. */
bool config_addr_is_loopback(const char *addr);

/* Local mode (no ANYON_CLOUD=1) serves the machine's own user only: the
 * pool may listen on a unix socket, or over TCP on a loopback address
 * ("127.0.0.1:9000", "[::1]:9000", "localhost:9000"), never on every
 * address (":9000") nor another host's. Returns -1 with the reason in err
 * for a listener cfg must not use; 0 otherwise (cloud mode: any). */
int config_check_listener(const struct config *cfg, char *err, size_t errlen);

/* The env file of an installation (the units' EnvironmentFile=), which
 * anyonctl reads by itself when no --config is given and neither
 * ANYON_DATA_DIR nor ANYON_DB is set. */
#define CONFIG_ENV_FILE "/etc/anyon/env"

/* Sets the environment from an env file as systemd's EnvironmentFile=
 * reads it: KEY=VALUE lines (KEY: letters, digits, '_', not starting with
 * a digit), a value optionally in matching single or double quotes, blank
 * lines and lines starting with '#' or ';' skipped. Every KEY of the file
 * replaces the variable already set. Refuses (-1, reason in err) a file
 * that is missing, not a regular file, writable by group or others, larger
 * than 64 KiB, or with a line of another shape (named by its number); the
 * environment is then unchanged. */
int config_read_env_file(const char *path, char *err, size_t errlen);

/* Fills cfg from the environment. On a bad value writes a message to err
 * and returns -1. */
int config_load(struct config *cfg, char *err, size_t errlen);

/* The process-wide configuration, loaded by config_load_global(), which
 * dies with a clear message on a bad value. */
extern struct config g_config;
void config_load_global(void);

#endif
