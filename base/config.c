#include "autoconfig.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"

struct config g_config;

/* One row per integer setting: the table is the documentation. */
struct int_setting {
	const char *env;
	size_t offset;   /* of the int64_t field in struct config */
	int64_t def, min, max;
};

static const struct int_setting int_settings[] = {
	{ "ANYON_MAX_BODY", offsetof(struct config, max_body), 1 << 20, 1024, 64 << 20 },
	{ "ANYON_SESSION_TTL", offsetof(struct config, session_ttl_s), 7 * 86400, 60, 365 * 86400 },
	{ "ANYON_SESSION_MAX", offsetof(struct config, session_max_s), 30 * 86400, 60, 365 * 86400 },
	{ "ANYON_SESSIONS_PER_ADDR", offsetof(struct config, sessions_per_addr), 300, 1, 1000000 },
	{ "ANYON_JOB_LEASE_S", offsetof(struct config, lease_s), 30, 1, 3600 },
	{ "ANYON_HEARTBEAT_S", offsetof(struct config, heartbeat_s), 5, 1, 600 },
	{ "ANYON_WORKER_POLL_MS", offsetof(struct config, worker_poll_ms), 200, 10, 60000 },
	{ "ANYON_JOB_MAX_ATTEMPTS", offsetof(struct config, job_max_attempts), 3, 1, 100 },
	{ "ANYON_GITHUB_TIMEOUT_MS", offsetof(struct config, github_timeout_ms), 15000, 100, 120000 },
	{ "ANYON_GITHUB_DEADLINE_MS", offsetof(struct config, github_deadline_ms), 45000, 100, 600000 },
	{ "ANYON_USER_MAX_QUEUED", offsetof(struct config, user_max_queued), 100, 1, 1000000 },
	{ "ANYON_RETAIN_JOBS_S", offsetof(struct config, retain_jobs_s), 30 * 86400, 1, 3650L * 86400 },
	{ "ANYON_RETAIN_AUDIT_S", offsetof(struct config, retain_audit_s), 365 * 86400, 1, 3650L * 86400 },
	{ "ANYON_PURGE_INTERVAL_S", offsetof(struct config, purge_interval_s), 600, 1, 86400 },
};

static int string_setting(char *dst, size_t size, const char *env, const char *def,
			  char *err, size_t errlen)
{
	const char *v = getenv(env);

	if (!str_copy(dst, size, v && *v ? v : def)) {
		snprintf(err, errlen, "%s is too long (at most %zu bytes)", env, size - 1);
		return -1;
	}
	return 0;
}

/* Base URLs: http(s) only, no trailing slash kept. */
static int url_setting(char *dst, const char *env, const char *def, char *err, size_t errlen)
{
	size_t n;

	if (string_setting(dst, CONFIG_PATH_MAX, env, def, err, errlen))
		return -1;
	if (strncmp(dst, "https://", 8) && strncmp(dst, "http://", 7)) {
		snprintf(err, errlen, "%s must start with https:// or http://", env);
		return -1;
	}
	n = strlen(dst);
	while (n > 0 && dst[n - 1] == '/')
		dst[--n] = '\0';
	return 0;
}

bool config_list_has(const char *list, const char *item)
{
	size_t len = strlen(item);
	const char *p = list;

	if (len == 0)
		return false;
	while (*p) {
		size_t n;

		p += strspn(p, ", \t\n");
		n = strcspn(p, ", \t\n");
		if (n == len && strncasecmp(p, item, len) == 0)
			return true;
		p += n;
	}
	return false;
}

static int path_setting(char *dst, const char *env, const char *def_dir,
			const char *def_name, char *err, size_t errlen)
{
	const char *v = getenv(env);
	int n;

	if (v && *v)
		n = snprintf(dst, CONFIG_PATH_MAX, "%s", v);
	else if (def_dir)
		n = snprintf(dst, CONFIG_PATH_MAX, "%s/%s", def_dir, def_name);
	else
		n = snprintf(dst, CONFIG_PATH_MAX, "%s", def_name);
	if (n < 0 || n >= CONFIG_PATH_MAX) {
		snprintf(err, errlen, "%s is too long (at most %d bytes)", env, CONFIG_PATH_MAX - 1);
		return -1;
	}
	return 0;
}

static int bool_setting(bool *dst, const char *env, char *err, size_t errlen)
{
	const char *v = getenv(env);

	*dst = false;
	if (!v || !*v || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		return 0;
	if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
		*dst = true;
		return 0;
	}
	snprintf(err, errlen, "%s must be 0 or 1, not '%s'", env, v);
	return -1;
}

int config_load(struct config *cfg, char *err, size_t errlen)
{
	int64_t children = 4;
	const char *v;

	memset(cfg, 0, sizeof(*cfg));
	if (path_setting(cfg->data_dir, "ANYON_DATA_DIR", NULL, "./var", err, errlen) ||
	    path_setting(cfg->db_path, "ANYON_DB", cfg->data_dir, "anyon.db", err, errlen) ||
	    path_setting(cfg->fcgi_socket, "ANYON_FCGI_SOCKET", cfg->data_dir, "run/fcgi.sock", err, errlen) ||
	    path_setting(cfg->docker_socket, "ANYON_DOCKER_SOCKET", NULL, "/var/run/docker.sock", err, errlen) ||
	    bool_setting(&cfg->cloud, "ANYON_CLOUD", err, errlen) ||
	    url_setting(cfg->github_url, "ANYON_GITHUB_URL", "https://github.com", err, errlen) ||
	    url_setting(cfg->github_api_url, "ANYON_GITHUB_API_URL", "https://api.github.com", err, errlen) ||
	    string_setting(cfg->github_client_id, sizeof(cfg->github_client_id), "ANYON_GITHUB_CLIENT_ID",
			   "", err, errlen) ||
	    string_setting(cfg->allowed_github, sizeof(cfg->allowed_github), "ANYON_ALLOWED_GITHUB",
			   "", err, errlen) ||
	    string_setting(cfg->admin_github, sizeof(cfg->admin_github), "ANYON_ADMIN_GITHUB",
			   "", err, errlen) ||
	    string_setting(cfg->test_fault, sizeof(cfg->test_fault), "ANYON_TEST_FAULT", "", err, errlen))
		return -1;

	if (cfg->cloud && !cfg->github_client_id[0]) {
		snprintf(err, errlen, "cloud mode (ANYON_CLOUD=1) needs ANYON_GITHUB_CLIENT_ID for sign-in");
		return -1;
	}
	v = getenv("ANYON_FCGI_CHILDREN");
	if (v && *v && parse_i64(v, 1, 256, &children)) {
		snprintf(err, errlen, "ANYON_FCGI_CHILDREN must be a number from 1 to 256, not '%s'", v);
		return -1;
	}
	cfg->fcgi_children = (int)children;

	for (size_t i = 0; i < ARRAY_SIZE(int_settings); i++) {
		const struct int_setting *s = &int_settings[i];
		int64_t *field = (int64_t *)((char *)cfg + s->offset);

		*field = s->def;
		v = getenv(s->env);
		if (v && *v && parse_i64(v, s->min, s->max, field)) {
			snprintf(err, errlen, "%s must be a number from %lld to %lld, not '%s'",
				 s->env, (long long)s->min, (long long)s->max, v);
			return -1;
		}
	}
	return 0;
}

void config_load_global(void)
{
	char err[256];

	if (config_load(&g_config, err, sizeof(err)))
		die("configuration: %s", err);
	if (g_config.test_fault[0])
		log_warn("ANYON_TEST_FAULT=%s: fault injection for tests is on", g_config.test_fault);
}

bool config_fault(const char *point)
{
	const char *f = g_config.test_fault;

	if (!f[0])
		return false;
	if (strncmp(f, "exit:", 5) == 0 && strcmp(f + 5, point) == 0) {
		log_warn("test fault: exiting at %s", point);
		_exit(70);
	}
	if (strcmp(f, point))
		return false;
	log_warn("test fault: failing at %s", point);
	return true;
}
