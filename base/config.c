#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"

struct config g_config;

const char *const config_loopback_hosts[] = { "127.0.0.1", "localhost", "[::1]", NULL };

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
	{ "ANYON_JOB_TIME_LIMIT_S", offsetof(struct config, job_time_limit_s), 0, 0, 30L * 86400 },
	{ "ANYON_WORKER_SLOTS", offsetof(struct config, worker_slots), 4, 1, 64 },
	{ "ANYON_USER_MAX_RUNNING", offsetof(struct config, user_max_running), 2, 1, 1000 },
	{ "ANYON_GITHUB_TIMEOUT_MS", offsetof(struct config, github_timeout_ms), 15000, 100, 120000 },
	{ "ANYON_GITHUB_DEADLINE_MS", offsetof(struct config, github_deadline_ms), 45000, 100, 600000 },
	{ "ANYON_GITHUB_CONCURRENCY", offsetof(struct config, github_concurrency), 0, 0, 256 },
	{ "ANYON_READ_CACHE_MS", offsetof(struct config, read_cache_ms), 1000, 0, 60000 },
	{ "ANYON_GITHUB_REPO_CACHE_S", offsetof(struct config, github_repo_cache_s), 60, 0, 3600 },
	{ "ANYON_USER_MAX_QUEUED", offsetof(struct config, user_max_queued), 100, 1, 1000000 },
	{ "ANYON_RETAIN_JOBS_S", offsetof(struct config, retain_jobs_s), 30 * 86400, 1, 3650L * 86400 },
	{ "ANYON_RETAIN_EVENTS_S", offsetof(struct config, retain_events_s), 7 * 86400, 60, 3650L * 86400 },
	{ "ANYON_RETAIN_AUDIT_S", offsetof(struct config, retain_audit_s), 365 * 86400, 1, 3650L * 86400 },
	/* At least an hour: a flow lives 15 minutes and must not go while it runs. */
	{ "ANYON_RETAIN_FLOWS_S", offsetof(struct config, retain_flows_s), 86400, 3600, 3650L * 86400 },
	{ "ANYON_PURGE_INTERVAL_S", offsetof(struct config, purge_interval_s), 600, 1, 86400 },
	{ "ANYON_JOB_MAX_OUTPUT_BYTES", offsetof(struct config, job_max_output_bytes), 64L << 20, 1, 1LL << 40 },
	/* -1: the mode's default, set below (0 is no limit). */
	{ "ANYON_USER_MAX_OUTPUT_BYTES", offsetof(struct config, user_max_output_bytes), -1, 0, 1LL << 50 },
	{ "ANYON_ORG_RECHECK_S", offsetof(struct config, org_recheck_s), 3600, 0, 7 * 86400 },
	{ "ANYON_CONTAINER_MEMORY_MB", offsetof(struct config, container_memory_mb), 2048, 16, 1 << 20 },
	{ "ANYON_CONTAINER_PIDS", offsetof(struct config, container_pids), 512, 16, 1 << 20 },
	{ "ANYON_CONTAINER_MILLICPUS", offsetof(struct config, container_millicpus), 1000, 10, 256000 },
	{ "ANYON_CONTAINER_STOP_GRACE_S", offsetof(struct config, container_stop_grace_s), 10, 0, 30 },
	{ "ANYON_REAP_INTERVAL_S", offsetof(struct config, reap_interval_s), 60, 1, 86400 },
	{ "ANYON_ADOPT_WINDOW_S", offsetof(struct config, adopt_window_s), 600, 5, 86400 },
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

/* A host name as curl gave it, lower-cased in place: letters, digits, dots
 * and dashes, or an IPv6 literal in brackets. Nothing else may reach nginx's
 * server_name or a comparison with a Host header. */
static bool public_host_ok(char *host)
{
	size_t n = strlen(host);

	for (char *c = host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (n == 0 || n >= sizeof(g_config.public_host))
		return false;
	if (host[0] == '[')
		return n > 2 && host[n - 1] == ']' && strspn(host + 1, "0123456789abcdef:.") == n - 2;
	return strspn(host, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n && host[0] != '.' && host[0] != '-';
}

/* True when curl finds the part in the URL. */
static bool url_has(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	bool has = curl_url_get(u, part, &v, 0) == CURLUE_OK;

	curl_free(v);
	return has;
}

/* ANYON_PUBLIC_URL: the one origin browsers reach anyon at (besides the
 * loopback names). Parsed by libcurl's URL API; only http(s)://host[:port]
 * with an optional "/" is accepted: no user, path, query or fragment. */
static int public_url_setting(struct config *cfg, char *err, size_t errlen)
{
	const char *v = getenv("ANYON_PUBLIC_URL");
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int64_t portnum = 0;
	const char *why = NULL;
	CURLU *u;
	int n;

	if (!v || !*v)
		return 0;
	if (strlen(v) >= CONFIG_PATH_MAX) {
		snprintf(err, errlen, "ANYON_PUBLIC_URL is too long (at most %d bytes)", CONFIG_PATH_MAX - 1);
		return -1;
	}
	u = curl_url();
	if (!u)
		why = "out of memory";
	else if (curl_url_set(u, CURLUPART_URL, v, 0) != CURLUE_OK)
		why = "it is not a URL";
	else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		 (strcmp(scheme, "http") && strcmp(scheme, "https")))
		why = "the scheme must be http or https";
	else if (url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_PASSWORD) || url_has(u, CURLUPART_OPTIONS))
		why = "it may not carry a user or password";
	else if (url_has(u, CURLUPART_QUERY) || url_has(u, CURLUPART_FRAGMENT) ||
		 curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || strcmp(path, "/"))
		why = "it may not have a path, query or fragment: anyon is served at /";
	else if (url_has(u, CURLUPART_ZONEID) || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		 !public_host_ok(host))
		why = "the host must be a DNS name (letters, digits, dots, dashes) or an IP address";
	else if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
		 parse_i64(port, 1, 65535, &portnum))
		why = "the port must be from 1 to 65535";
	if (!why) {
		cfg->public_https = strcmp(scheme, "https") == 0;
		cfg->public_port = (int)portnum;
		str_copy(cfg->public_host, sizeof(cfg->public_host), host);
		if (portnum == (cfg->public_https ? 443 : 80))
			n = snprintf(cfg->public_origin, sizeof(cfg->public_origin), "%s://%s", scheme, host);
		else
			n = snprintf(cfg->public_origin, sizeof(cfg->public_origin), "%s://%s:%d", scheme, host,
				     cfg->public_port);
		if (n < 0 || (size_t)n >= sizeof(cfg->public_origin))
			why = "it is too long";
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	if (why) {
		snprintf(err, errlen, "ANYON_PUBLIC_URL must look like https://anyon.example.com: %s", why);
		return -1;
	}
	return 0;
}

bool config_addr_is_loopback(const char *addr)
{
	unsigned char a[sizeof(struct in6_addr)];
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!addr)
		return false;
	if (inet_pton(AF_INET, addr, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, addr, a) != 1)
		return false;
	if (memcmp(a, mapped, sizeof(mapped)) == 0)
		return a[12] == 127;
	return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
}

int config_check_listener(const struct config *cfg, char *err, size_t errlen)
{
	const char *s = cfg->fcgi_socket, *colon = strrchr(s, ':');
	char host[CONFIG_PATH_MAX];
	size_t n;

	/* libfcgi's reading: a slash makes a unix socket path, else HOST:PORT. */
	if (cfg->cloud || strchr(s, '/') || !colon)
		return 0;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0 || config_addr_is_loopback(host))
		return 0;
	snprintf(err, errlen, "ANYON_FCGI_SOCKET '%s' listens on %s, but this is local mode (ANYON_CLOUD "
		 "is not 1), which serves this machine only: use a unix socket or a loopback address "
		 "(127.0.0.1:PORT), or set ANYON_CLOUD=1 for a shared server", cfg->fcgi_socket,
		 n ? "a non-loopback address" : "every address");
	return -1;
}

#define ENV_FILE_MAX (64 * 1024)
#define ENV_FILE_LINES 512

/* One line of an env file, trimmed, cut in place into *key and *value;
 * false when it is not KEY=VALUE. */
static bool env_line(char *line, char **key, char **value)
{
	char *eq = strchr(line, '='), *v;
	size_t n;

	if (!eq || eq == line)
		return false;
	*eq = '\0';
	for (char *c = line; *c; c++)
		if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (c != line && *c >= '0' && *c <= '9')))
			return false;
	v = eq + 1;
	n = strlen(v);
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = '\0';
		v++;
	}
	*key = line;
	*value = v;
	return true;
}

int config_read_env_file(const char *path, char *err, size_t errlen)
{
	char *buf = NULL, *save = NULL, *keys[ENV_FILE_LINES], *values[ENV_FILE_LINES];
	int n = 0, lineno = 0, ret = -1;
	struct stat st;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read the settings '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > ENV_FILE_MAX) {
		snprintf(err, errlen, "the settings '%s' are not a regular file of at most %d bytes", path,
			 ENV_FILE_MAX);
		goto out;
	}
	if (st.st_mode & 022) {
		snprintf(err, errlen, "the settings '%s' are writable by group or others (mode %03o): "
			 "chmod go-w it", path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	buf = calloc(1, (size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	got = read(fd, buf, (size_t)st.st_size);
	if (got != st.st_size) {
		snprintf(err, errlen, "cannot read the settings '%s'", path);
		goto out;
	}
	/* Every line checked before the environment is touched. */
	for (char *p = buf, *line; (line = strtok_r(p, "\n", &save)); p = NULL) {
		size_t len;

		lineno++;
		while (*line == ' ' || *line == '\t')
			line++;
		len = strlen(line);
		while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (n == ENV_FILE_LINES || !env_line(line, &keys[n], &values[n])) {
			snprintf(err, errlen, "the settings '%s', line %d: not KEY=VALUE", path, lineno);
			goto out;
		}
		n++;
	}
	for (int i = 0; i < n; i++)
		if (setenv(keys[i], values[i], 1)) {
			snprintf(err, errlen, "cannot set %s: %s", keys[i], strerror(errno));
			goto out;
		}
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
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

static bool login_ok(const char *s, size_t n, const char *extra)
{
	if (n == 0 || n > CONFIG_LOGIN_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

/* ANYON_ALLOWED_GITHUB and ANYON_ADMIN_GITHUB: entries separated by commas
 * or white space, each a GitHub login or org:NAME. Anything else is
 * refused at start, so a typo never silently admits or shuts out anyone. */
static int list_setting(const char *list, const char *env, bool *has_org, char *err, size_t errlen)
{
	const char *p = list;
	int orgs = 0;

	while (*p) {
		size_t n;

		p += strspn(p, ", \t\n");
		n = strcspn(p, ", \t\n");
		if (n == 0)
			break;
		if (n > 4 && strncasecmp(p, "org:", 4) == 0) {
			if (!login_ok(p + 4, n - 4, "-")) {
				snprintf(err, errlen, "%s: '%.*s' is not an organization entry: org: must be "
					 "followed by a GitHub organization name (1 to %d letters, digits or "
					 "dashes, not starting with a dash)", env, (int)(n > 60 ? 60 : n), p,
					 CONFIG_LOGIN_MAX);
				return -1;
			}
			if (++orgs > CONFIG_ORG_ENTRIES_MAX) {
				snprintf(err, errlen, "%s has more than %d org: entries", env, CONFIG_ORG_ENTRIES_MAX);
				return -1;
			}
			*has_org = true;
		} else if (!login_ok(p, n, "-_")) {
			snprintf(err, errlen, "%s: '%.*s' is neither a GitHub login (1 to %d letters, digits, "
				 "dashes or underscores) nor org:NAME", env, (int)(n > 60 ? 60 : n), p,
				 CONFIG_LOGIN_MAX);
			return -1;
		}
		p += n;
	}
	return 0;
}

/* A name that goes into a Docker path, label or NetworkMode: 1 to size-1
 * bytes of letters, digits and extra, not starting with a punctuation mark. */
static int name_setting(char *dst, size_t size, const char *env, const char *def, const char *extra,
			char *err, size_t errlen)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n;

	if (string_setting(dst, size, env, def, err, errlen))
		return -1;
	n = strlen(dst);
	if (!n && !def[0])
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!strchr(alnum, dst[i]) && !strchr(extra, dst[i])) {
			snprintf(err, errlen, "%s may hold only letters, digits and '%s'", env, extra);
			return -1;
		}
	if (!strchr(alnum, dst[0])) {
		snprintf(err, errlen, "%s must start with a letter or digit", env);
		return -1;
	}
	return 0;
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
	    string_setting(cfg->fcgi_socket_group, sizeof(cfg->fcgi_socket_group), "ANYON_FCGI_SOCKET_GROUP",
			   "", err, errlen) ||
	    path_setting(cfg->docker_socket, "ANYON_DOCKER_SOCKET", NULL, "/var/run/docker.sock", err, errlen) ||
	    bool_setting(&cfg->cloud, "ANYON_CLOUD", err, errlen) ||
	    bool_setting(&cfg->git_allow_local_http, "ANYON_GIT_ALLOW_LOCAL_HTTP", err, errlen) ||
	    url_setting(cfg->github_url, "ANYON_GITHUB_URL", "https://github.com", err, errlen) ||
	    url_setting(cfg->github_api_url, "ANYON_GITHUB_API_URL", "https://api.github.com", err, errlen) ||
	    string_setting(cfg->github_client_id, sizeof(cfg->github_client_id), "ANYON_GITHUB_CLIENT_ID",
			   "", err, errlen) ||
	    string_setting(cfg->allowed_github, sizeof(cfg->allowed_github), "ANYON_ALLOWED_GITHUB",
			   "", err, errlen) ||
	    string_setting(cfg->admin_github, sizeof(cfg->admin_github), "ANYON_ADMIN_GITHUB",
			   "", err, errlen) ||
	    name_setting(cfg->agent_image, sizeof(cfg->agent_image), "ANYON_AGENT_IMAGE",
			 "anyon-agent:latest", "._-:/@", err, errlen) ||
	    name_setting(cfg->instance, sizeof(cfg->instance), "ANYON_INSTANCE", "", "._-", err, errlen) ||
	    name_setting(cfg->container_network, sizeof(cfg->container_network), "ANYON_CONTAINER_NETWORK",
			 "none", "._-", err, errlen) ||
	    string_setting(cfg->test_fault, sizeof(cfg->test_fault), "ANYON_TEST_FAULT", "", err, errlen) ||
	    public_url_setting(cfg, err, errlen) ||
	    list_setting(cfg->allowed_github, "ANYON_ALLOWED_GITHUB", &cfg->org_entries, err, errlen) ||
	    list_setting(cfg->admin_github, "ANYON_ADMIN_GITHUB", &cfg->org_entries, err, errlen))
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
	v = getenv("ANYON_WORKSPACE_KEEP");
	if (!v || !*v || strcmp(v, "never") == 0) {
		cfg->workspace_keep = WORKSPACE_KEEP_NEVER;
	} else if (strcmp(v, "failed") == 0) {
		cfg->workspace_keep = WORKSPACE_KEEP_FAILED;
	} else if (strcmp(v, "always") == 0) {
		cfg->workspace_keep = WORKSPACE_KEEP_ALWAYS;
	} else {
		snprintf(err, errlen, "ANYON_WORKSPACE_KEEP must be never, failed or always, not '%.64s'", v);
		return -1;
	}

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
	if (cfg->user_max_output_bytes < 0)
		cfg->user_max_output_bytes = cfg->cloud ? 1LL << 30 : 0;
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
