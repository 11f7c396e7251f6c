#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "base/curlx.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/docker.h"

#define CONNECT_TIMEOUT_MS 5000L
#define ERROR_BODY_MAX (64 * 1024)   /* what is read of a refused hijack */
#define URL_MAX 4096

/* The version this process negotiated, and with which socket: asked once. */
static char g_api_socket[DOCKER_PATH_MAX];
static char g_api[16];

int docker_socket_path(char *out, size_t outlen, char *err, size_t errlen)
{
	const char *anyon = getenv("ANYON_DOCKER_SOCKET");
	const char *host = getenv("DOCKER_HOST");
	const char *path = anyon && *anyon ? anyon : "/var/run/docker.sock";

	if ((!anyon || !*anyon) && host && *host) {
		if (strncmp(host, "unix://", 7) != 0 || host[7] != '/') {
			snprintf(err, errlen, "DOCKER_HOST '%.64s' is not supported: only unix:///path "
				 "(or set ANYON_DOCKER_SOCKET)", host);
			return -1;
		}
		path = host + 7;
	}
	if (strlen(path) >= outlen || strlen(path) >= DOCKER_PATH_MAX) {
		snprintf(err, errlen, "the Docker socket path is too long (at most %d bytes)",
			 DOCKER_PATH_MAX - 1);
		return -1;
	}
	memcpy(out, path, strlen(path) + 1);
	return 0;
}

int docker_init(struct docker *d, const char *socket_path)
{
	memset(d, 0, sizeof(*d));
	d->timeout_ms = DOCKER_TIMEOUT_MS;
	if (!socket_path)
		return docker_socket_path(d->socket, sizeof(d->socket), d->error, sizeof(d->error));
	if (!str_copy(d->socket, sizeof(d->socket), socket_path)) {
		snprintf(d->error, sizeof(d->error), "the Docker socket path is too long");
		return -1;
	}
	return 0;
}

bool docker_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > DOCKER_ID_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.-", s[i])))
			return false;
	return true;
}

/* An id the engine hands out: 64 lowercase hex digits. */
static bool engine_id_ok(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Copies text from the engine into out as printable ASCII, at most 400
 * bytes: it ends up in logs and job errors. */
static void clean_copy(char *out, size_t outlen, const char *s, size_t n)
{
	size_t j = 0;

	if (outlen == 0)
		return;
	for (size_t i = 0; i < n && j + 1 < outlen && j < 400; i++)
		out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[j] = '\0';
}

/* The engine's "message" out of an error answer, else a word on the status. */
static void engine_error(struct docker *d, const char *body, size_t len, const char *what)
{
	json_object *doc = NULL;
	const char *msg = NULL;
	char jerr[64], clean[401] = "";

	if (body && len && json_parse(body, len, &doc, jerr, sizeof(jerr)) == 0 &&
	    json_get_str(doc, "message", &msg) == 0 && msg[0])
		clean_copy(clean, sizeof(clean), msg, strlen(msg));
	if (clean[0])
		snprintf(d->error, sizeof(d->error), "%s: %s (HTTP %ld)", what, clean, d->status);
	else
		snprintf(d->error, sizeof(d->error), "%s: the engine answered HTTP %ld", what, d->status);
	json_object_put(doc);
}

static bool api_version_ok(const char *v)
{
	int major = 0, minor = 0, used = 0;

	return strlen(v) < 8 && sscanf(v, "%2d.%3d%n", &major, &minor, &used) == 2 &&
	       (size_t)used == strlen(v) && major >= 1 && minor >= 0 && v[0] != '+' && v[0] != '-';
}

struct exchange {
	struct curlx_body body;
	char api[16];                 /* Api-Version header, "" if none or malformed */
};

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * n;

	if (len > 12 && len < 40 && strncasecmp(data, "Api-Version:", 12) == 0) {
		char v[32];
		size_t i = 12, j = 0;

		while (i < len && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (i < len && data[i] != '\r' && data[i] != '\n' && j + 1 < sizeof(v))
			v[j++] = data[i++];
		v[j] = '\0';
		if (api_version_ok(v))
			memcpy(x->api, v, strlen(v) + 1);
	}
	return len;
}

/* One request to url_path (already versioned, or /_ping). Fills x; returns
 * the curl code and sets d->status / d->error on transport failure. */
static CURLcode perform(struct docker *d, const char *method, const char *url_path,
			const char *json_body, long timeout_ms, struct exchange *x)
{
	char url[URL_MAX], curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURL *c;
	CURLcode rc;
	bool cut;

	d->status = 0;
	timeout_ms = curlx_timeout_ms(d->deadline_ms, timeout_ms, &cut);
	if (timeout_ms == 0) {
		snprintf(d->error, sizeof(d->error), "no time left before the deadline");
		return CURLE_OPERATION_TIMEDOUT;
	}
	if ((size_t)snprintf(url, sizeof(url), "http://docker%s", url_path) >= sizeof(url)) {
		snprintf(d->error, sizeof(d->error), "request path too long");
		return CURLE_URL_MALFORMAT;
	}
	if (d->trace)
		d->trace(d->trace_arg, method, url_path);
	c = curl_easy_init();
	if (!c) {
		snprintf(d->error, sizeof(d->error), "out of memory");
		return CURLE_OUT_OF_MEMORY;
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (json_body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	/* The host part is ignored on a unix socket. */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "anyon/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms :
			 CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curlx_on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body ? json_body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(json_body ? strlen(json_body) : 0));
	} else if (strcmp(method, "GET") != 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &d->status);
	} else if (rc == CURLE_OPERATION_TIMEDOUT && cut) {
		snprintf(d->error, sizeof(d->error), "the deadline ran out");
	} else if (x->body.too_large) {
		snprintf(d->error, sizeof(d->error), "the engine's answer is larger than %zu bytes",
			 x->body.max);
	} else {
		char e[CURL_ERROR_SIZE + 64];

		curlx_error(e, sizeof(e), rc, curl_err);
		snprintf(d->error, sizeof(d->error), "docker engine at %s: %s", d->socket, e);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}

int docker_negotiate(struct docker *d)
{
	struct exchange x = { .body = { .max = 4096 } };
	CURLcode rc;

	if (d->api[0])
		return 0;
	if (g_api[0] && strcmp(g_api_socket, d->socket) == 0) {
		memcpy(d->api, g_api, sizeof(d->api));
		return 0;
	}
	rc = perform(d, "GET", "/_ping", NULL, d->timeout_ms, &x);
	free(x.body.buf);
	if (rc != CURLE_OK)
		return -1;
	if (d->status != 200) {
		snprintf(d->error, sizeof(d->error), "docker engine: /_ping answered HTTP %ld", d->status);
		return -1;
	}
	if (!x.api[0]) {
		snprintf(d->error, sizeof(d->error),
			 "docker engine: /_ping gave no usable Api-Version header");
		return -1;
	}
	memcpy(d->api, x.api, sizeof(d->api));
	memcpy(g_api, x.api, sizeof(g_api));
	memcpy(g_api_socket, d->socket, sizeof(g_api_socket));
	return 0;
}

/* A call with its own time limit. */
static int call(struct docker *d, const char *method, const char *path, json_object *body,
		long timeout_ms, json_object **json, const char *what)
{
	struct exchange x = { .body = { .max = DOCKER_MAX_BODY } };
	char vpath[URL_MAX], jerr[64];
	const char *text = NULL;
	int ret = -1;

	if (json)
		*json = NULL;
	if (path[0] != '/') {
		snprintf(d->error, sizeof(d->error), "%s: bad path", what);
		return -1;
	}
	if (docker_negotiate(d))
		return -1;
	if ((size_t)snprintf(vpath, sizeof(vpath), "/v%s%s", d->api, path) >= sizeof(vpath)) {
		snprintf(d->error, sizeof(d->error), "%s: request path too long", what);
		return -1;
	}
	if (body)
		text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	if (perform(d, method, vpath, text, timeout_ms, &x) != CURLE_OK) {
		char e[sizeof(d->error)];

		memcpy(e, d->error, sizeof(e));
		snprintf(d->error, sizeof(d->error), "%.40s: %.400s", what, e);
		goto out;
	}
	if (d->status < 200 || d->status > 299) {
		engine_error(d, x.body.buf, x.body.len, what);
		goto out;
	}
	if (json && x.body.len && json_parse(x.body.buf, x.body.len, json, jerr, sizeof(jerr))) {
		*json = NULL;
		snprintf(d->error, sizeof(d->error), "%s: the engine's answer is not JSON (%s)", what, jerr);
		goto out;
	}
	ret = 0;
out:
	free(x.body.buf);
	return ret;
}

int docker_call(struct docker *d, const char *method, const char *path, json_object *body,
		json_object **json)
{
	return call(d, method, path, body, d->timeout_ms, json, method);
}

int docker_version(struct docker *d, char *version, size_t len)
{
	json_object *doc = NULL;
	const char *engine = NULL, *api = NULL;
	int ret = -1;

	if (call(d, "GET", "/version", NULL, d->timeout_ms, &doc, "docker version")) {
		snprintf(version, len, "%s", d->error);
		goto out;
	}
	if (!doc || json_get_str(doc, "Version", &engine) || json_get_str(doc, "ApiVersion", &api)) {
		snprintf(d->error, sizeof(d->error), "engine answered something that is not a version");
		snprintf(version, len, "%s", d->error);
		goto out;
	}
	snprintf(version, len, "%.32s (API %.16s)", engine, api);
	ret = 0;
out:
	json_object_put(doc);
	return ret;
}

int docker_probe(const char *socket_path, long timeout_ms, char *version, size_t len)
{
	struct docker d;

	if (docker_init(&d, socket_path)) {
		snprintf(version, len, "%s", d.error);
		return -1;
	}
	d.timeout_ms = timeout_ms;
	return docker_version(&d, version, len);
}

/* ---- request bodies ---- */

static json_object *string_array(const char *const *v)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; v && v[i]; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static json_object *string_map(const char *const *pairs)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; pairs && pairs[i] && pairs[i + 1]; i += 2)
		json_set(o, pairs[i], json_object_new_string(pairs[i + 1]));
	return o;
}

static json_object *create_body(const struct docker_spec *s)
{
	json_object *b = json_object_new_object(), *hc = json_object_new_object();
	json_object *mounts = json_object_new_array(), *log = json_object_new_object();

	json_set(b, "Image", json_object_new_string(s->image));
	if (s->cmd)
		json_set(b, "Cmd", string_array(s->cmd));
	json_set(b, "Env", string_array(s->env));
	if (s->user)
		json_set(b, "User", json_object_new_string(s->user));
	if (s->workdir)
		json_set(b, "WorkingDir", json_object_new_string(s->workdir));
	json_set(b, "Labels", string_map(s->labels));
	json_set(b, "Tty", json_object_new_boolean(s->tty));
	json_set(b, "OpenStdin", json_object_new_boolean(s->stdin_once));
	json_set(b, "StdinOnce", json_object_new_boolean(s->stdin_once));
	json_set(b, "AttachStdin", json_object_new_boolean(s->stdin_once));
	json_set(b, "AttachStdout", json_object_new_boolean(true));
	json_set(b, "AttachStderr", json_object_new_boolean(true));

	/* The string form: the Mounts tmpfs form ignores uid/gid on 20.10. */
	json_set(hc, "Tmpfs", string_map(s->tmpfs));
	for (size_t i = 0; i < s->n_mounts; i++) {
		json_object *m = json_object_new_object();

		/* Mounts, not Binds: a missing host path is an error, not a
		 * directory created as root. */
		json_set(m, "Type", json_object_new_string("bind"));
		json_set(m, "Source", json_object_new_string(s->mounts[i].source));
		json_set(m, "Target", json_object_new_string(s->mounts[i].target));
		json_set(m, "ReadOnly", json_object_new_boolean(s->mounts[i].read_only));
		json_object_array_add(mounts, m);
	}
	json_set(hc, "Mounts", mounts);
	json_set(hc, "CapDrop", string_array((const char *const[]){ "ALL", NULL }));
	json_set(hc, "SecurityOpt", string_array((const char *const[]){ "no-new-privileges", NULL }));
	json_set(hc, "Memory", json_object_new_int64(s->memory));
	json_set(hc, "PidsLimit", json_object_new_int64(s->pids_limit));
	json_set(hc, "NanoCpus", json_object_new_int64(s->nano_cpus));
	json_set(hc, "Init", json_object_new_boolean(s->init));
	json_set(hc, "NetworkMode", json_object_new_string(s->network ? s->network : "none"));
	json_set(log, "Type", json_object_new_string(s->log_driver ? s->log_driver : "none"));
	json_set(log, "Config", json_object_new_object());
	json_set(hc, "LogConfig", log);
	json_set(b, "HostConfig", hc);
	return b;
}

int docker_create(struct docker *d, const struct docker_spec *spec, char *id, size_t idlen)
{
	char path[64 + DOCKER_ID_MAX];
	json_object *body, *ans = NULL;
	const char *got = NULL;
	int ret = -1;

	if (!spec->image || !spec->image[0] || strlen(spec->image) > 256 || idlen < 65) {
		snprintf(d->error, sizeof(d->error), "create: no image, or an image name too long");
		return -1;
	}
	if (spec->name && !docker_id_ok(spec->name)) {
		snprintf(d->error, sizeof(d->error), "create: bad container name");
		return -1;
	}
	if (spec->name)
		snprintf(path, sizeof(path), "/containers/create?name=%s", spec->name);
	else
		snprintf(path, sizeof(path), "/containers/create");
	body = create_body(spec);
	if (call(d, "POST", path, body, d->timeout_ms, &ans, "create"))
		goto out;
	if (!ans || json_get_str(ans, "Id", &got) || !engine_id_ok(got)) {
		snprintf(d->error, sizeof(d->error), "create: the engine's answer has no valid Id");
		goto out;
	}
	memcpy(id, got, 65);
	ret = 0;
out:
	json_object_put(ans);
	json_object_put(body);
	return ret;
}

/* ---- reading answers ---- */

static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

static bool str_is(json_object *o, const char *key, const char *want)
{
	json_object *v = field(o, key);

	return v && json_object_is_type(v, json_type_string) &&
	       strcmp(json_object_get_string(v), want) == 0;
}

static bool i64_is(json_object *o, const char *key, int64_t want)
{
	json_object *v = field(o, key);

	if (!v)
		return want == 0;
	return json_object_is_type(v, json_type_int) && json_object_get_int64(v) == want;
}

static bool bool_is(json_object *o, const char *key, bool want)
{
	json_object *v = field(o, key);

	if (!v || json_object_is_type(v, json_type_null))
		return !want;
	return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v) == want;
}

static bool array_has(json_object *o, const char *key, const char *want)
{
	json_object *a = field(o, key);

	if (!a || !json_object_is_type(a, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *v = json_object_array_get_idx(a, i);

		if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), want) == 0)
			return true;
	}
	return false;
}

static int inspect_json(struct docker *d, const char *id, json_object **doc, const char *what)
{
	char path[64 + DOCKER_ID_MAX];

	if (!docker_id_ok(id)) {
		snprintf(d->error, sizeof(d->error), "%s: bad container id", what);
		return -1;
	}
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	if (call(d, "GET", path, NULL, d->timeout_ms, doc, what))
		return -1;
	if (!*doc || !json_object_is_type(*doc, json_type_object)) {
		json_object_put(*doc);
		*doc = NULL;
		snprintf(d->error, sizeof(d->error), "%s: the engine's answer is not an object", what);
		return -1;
	}
	return 0;
}

#define MISMATCH(what) do { \
	snprintf(d->error, sizeof(d->error), "the engine did not keep %s", what); \
	goto out; \
} while (0)

int docker_verify(struct docker *d, const char *id, const struct docker_spec *s)
{
	json_object *doc = NULL, *cfg, *hc, *labels, *tmpfs, *mounts;
	int ret = -1;

	if (inspect_json(d, id, &doc, "verify"))
		return -1;
	cfg = field(doc, "Config");
	hc = field(doc, "HostConfig");
	if (!cfg || !hc)
		MISMATCH("Config and HostConfig");
	if (s->user && !str_is(cfg, "User", s->user))
		MISMATCH("User");
	if (s->workdir && !str_is(cfg, "WorkingDir", s->workdir))
		MISMATCH("WorkingDir");
	if (!bool_is(cfg, "Tty", s->tty))
		MISMATCH("Tty");
	if (!bool_is(cfg, "OpenStdin", s->stdin_once) || !bool_is(cfg, "StdinOnce", s->stdin_once))
		MISMATCH("OpenStdin/StdinOnce");
	labels = field(cfg, "Labels");
	for (size_t i = 0; s->labels && s->labels[i] && s->labels[i + 1]; i += 2)
		if (!str_is(labels, s->labels[i], s->labels[i + 1]))
			MISMATCH("a label");
	tmpfs = field(hc, "Tmpfs");
	for (size_t i = 0; s->tmpfs && s->tmpfs[i] && s->tmpfs[i + 1]; i += 2)
		if (!str_is(tmpfs, s->tmpfs[i], s->tmpfs[i + 1]))
			MISMATCH("a tmpfs mount");
	mounts = field(hc, "Mounts");
	for (size_t i = 0; i < s->n_mounts; i++) {
		bool found = false;

		for (size_t j = 0; mounts && json_object_is_type(mounts, json_type_array) &&
		     j < json_object_array_length(mounts); j++) {
			json_object *m = json_object_array_get_idx(mounts, j);

			found = found || (str_is(m, "Type", "bind") && str_is(m, "Source", s->mounts[i].source) &&
					  str_is(m, "Target", s->mounts[i].target) &&
					  bool_is(m, "ReadOnly", s->mounts[i].read_only));
		}
		if (!found)
			MISMATCH("a bind mount");
	}
	if (!array_has(hc, "CapDrop", "ALL"))
		MISMATCH("CapDrop ALL");
	if (!array_has(hc, "SecurityOpt", "no-new-privileges"))
		MISMATCH("no-new-privileges");
	if (!i64_is(hc, "Memory", s->memory))
		MISMATCH("the memory limit");
	if (!i64_is(hc, "PidsLimit", s->pids_limit))
		MISMATCH("the pids limit");
	if (!i64_is(hc, "NanoCpus", s->nano_cpus))
		MISMATCH("the CPU limit");
	if (!bool_is(hc, "Init", s->init))
		MISMATCH("Init");
	if (!str_is(hc, "NetworkMode", s->network ? s->network : "none"))
		MISMATCH("NetworkMode");
	if (!str_is(field(hc, "LogConfig"), "Type", s->log_driver ? s->log_driver : "none"))
		MISMATCH("the log driver");
	ret = 0;
out:
	json_object_put(doc);
	return ret;
}

static int container_post(struct docker *d, const char *id, const char *verb, const char *query,
			  long timeout_ms, json_object **ans, const char *what)
{
	char path[128 + DOCKER_ID_MAX];

	if (!docker_id_ok(id)) {
		snprintf(d->error, sizeof(d->error), "%s: bad container id", what);
		return -1;
	}
	snprintf(path, sizeof(path), "/containers/%s/%s%s", id, verb, query ? query : "");
	return call(d, "POST", path, NULL, timeout_ms, ans, what);
}

int docker_start(struct docker *d, const char *id)
{
	return container_post(d, id, "start", NULL, d->timeout_ms, NULL, "start");
}

int docker_inspect(struct docker *d, const char *id, struct docker_state *st)
{
	json_object *doc = NULL, *state;
	const char *status = NULL;
	int64_t code = 0, pid = 0;
	bool running = false, oom = false;
	int ret = -1;

	memset(st, 0, sizeof(*st));
	if (inspect_json(d, id, &doc, "inspect"))
		return -1;
	state = field(doc, "State");
	if (!state || json_get_str(state, "Status", &status) || json_get_bool(state, "Running", &running) ||
	    json_get_bool(state, "OOMKilled", &oom) || json_get_i64(state, "ExitCode", &code) ||
	    json_get_i64(state, "Pid", &pid) || code < -1 || code > 255 || pid < 0 || pid > INT32_MAX ||
	    strlen(status) >= sizeof(st->status)) {
		snprintf(d->error, sizeof(d->error), "inspect: the engine's State is not what the API says");
		goto out;
	}
	memcpy(st->status, status, strlen(status) + 1);
	st->running = running;
	st->oom_killed = oom;
	st->exit_code = (int)code;
	st->pid = pid;
	ret = 0;
out:
	json_object_put(doc);
	return ret;
}

int docker_wait(struct docker *d, const char *id, long timeout_ms, int *exit_code)
{
	json_object *ans = NULL, *err;
	int64_t code;
	const char *msg = NULL;
	int ret = -1;

	if (container_post(d, id, "wait", "?condition=not-running", timeout_ms, &ans, "wait"))
		return -1;
	err = field(ans, "Error");
	if (err && json_get_str(err, "Message", &msg) == 0 && msg[0]) {
		char clean[256];

		clean_copy(clean, sizeof(clean), msg, strlen(msg));
		snprintf(d->error, sizeof(d->error), "wait: %s", clean);
		goto out;
	}
	if (!ans || json_get_i64(ans, "StatusCode", &code) || code < 0 || code > 255) {
		snprintf(d->error, sizeof(d->error), "wait: the engine's answer has no valid StatusCode");
		goto out;
	}
	*exit_code = (int)code;
	ret = 0;
out:
	json_object_put(ans);
	return ret;
}

int docker_kill(struct docker *d, const char *id, const char *sig)
{
	char query[32];
	size_t n = sig ? strlen(sig) : 0;

	if (n == 0 || n > 12) {
		snprintf(d->error, sizeof(d->error), "kill: bad signal");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (!((sig[i] >= 'A' && sig[i] <= 'Z') || (sig[i] >= '0' && sig[i] <= '9'))) {
			snprintf(d->error, sizeof(d->error), "kill: bad signal");
			return -1;
		}
	snprintf(query, sizeof(query), "?signal=%s", sig);
	return container_post(d, id, "kill", query, d->timeout_ms, NULL, "kill");
}

int docker_remove(struct docker *d, const char *id)
{
	char path[64 + DOCKER_ID_MAX];

	if (!docker_id_ok(id)) {
		snprintf(d->error, sizeof(d->error), "remove: bad container id");
		return -1;
	}
	snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", id);
	if (call(d, "DELETE", path, NULL, d->timeout_ms, NULL, "remove") == 0)
		return 0;
	return d->status == 404 ? 0 : -1;
}

int docker_list(struct docker *d, const char *label, struct docker_listed *out, size_t max,
		size_t *n)
{
	json_object *filters = json_object_new_object(), *labels = json_object_new_array(), *ans = NULL;
	char *esc = NULL, path[URL_MAX];
	int ret = -1;

	*n = 0;
	if (!label || !label[0] || strlen(label) > 512) {
		snprintf(d->error, sizeof(d->error), "list: bad label");
		goto out;
	}
	json_object_array_add(labels, json_object_new_string(label));
	json_set(filters, "label", labels);
	esc = curl_easy_escape(NULL, json_object_to_json_string_ext(filters, JSON_C_TO_STRING_PLAIN), 0);
	if (!esc || (size_t)snprintf(path, sizeof(path), "/containers/json?all=1&filters=%s", esc) >=
	    sizeof(path)) {
		snprintf(d->error, sizeof(d->error), "list: label too long");
		goto out;
	}
	if (call(d, "GET", path, NULL, d->timeout_ms, &ans, "list"))
		goto out;
	if (!ans || !json_object_is_type(ans, json_type_array)) {
		snprintf(d->error, sizeof(d->error), "list: the engine's answer is not a list");
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(ans); i++) {
		json_object *c = json_object_array_get_idx(ans, i);
		const char *id = NULL, *state = NULL;

		if (json_get_str(c, "Id", &id) || !engine_id_ok(id)) {
			snprintf(d->error, sizeof(d->error), "list: a container without a valid Id");
			goto out;
		}
		if (*n < max) {
			memcpy(out[*n].id, id, 65);
			out[*n].state[0] = '\0';
			if (json_get_str(c, "State", &state) == 0)
				clean_copy(out[*n].state, sizeof(out[*n].state), state, strlen(state));
		}
		(*n)++;
	}
	ret = 0;
out:
	curl_free(esc);
	json_object_put(ans);
	json_object_put(filters);
	return ret;
}

/* ---- exec ---- */

int docker_exec_create(struct docker *d, const char *id, const struct docker_exec_spec *s,
		       char *exec_id, size_t idlen)
{
	char path[64 + DOCKER_ID_MAX];
	json_object *body, *ans = NULL;
	const char *got = NULL;
	int ret = -1;

	if (!docker_id_ok(id) || !s->cmd || !s->cmd[0] || idlen < 65) {
		snprintf(d->error, sizeof(d->error), "exec: bad container id or no command");
		return -1;
	}
	snprintf(path, sizeof(path), "/containers/%s/exec", id);
	body = json_object_new_object();
	json_set(body, "AttachStdin", json_object_new_boolean(s->attach_stdin));
	json_set(body, "AttachStdout", json_object_new_boolean(true));
	json_set(body, "AttachStderr", json_object_new_boolean(true));
	json_set(body, "Tty", json_object_new_boolean(s->tty));
	json_set(body, "Cmd", string_array(s->cmd));
	json_set(body, "Env", string_array(s->env));
	if (s->user)
		json_set(body, "User", json_object_new_string(s->user));
	if (s->workdir)
		json_set(body, "WorkingDir", json_object_new_string(s->workdir));
	if (call(d, "POST", path, body, d->timeout_ms, &ans, "exec"))
		goto out;
	if (!ans || json_get_str(ans, "Id", &got) || !engine_id_ok(got)) {
		snprintf(d->error, sizeof(d->error), "exec: the engine's answer has no valid Id");
		goto out;
	}
	memcpy(exec_id, got, 65);
	ret = 0;
out:
	json_object_put(ans);
	json_object_put(body);
	return ret;
}

int docker_exec_inspect(struct docker *d, const char *exec_id, struct docker_exec_state *st)
{
	char path[64 + DOCKER_ID_MAX];
	json_object *ans = NULL;
	bool running = false;
	int64_t code = -1, pid = 0;
	int rc_code, ret = -1;

	memset(st, 0, sizeof(*st));
	if (!docker_id_ok(exec_id)) {
		snprintf(d->error, sizeof(d->error), "exec inspect: bad exec id");
		return -1;
	}
	snprintf(path, sizeof(path), "/exec/%s/json", exec_id);
	if (call(d, "GET", path, NULL, d->timeout_ms, &ans, "exec inspect"))
		return -1;
	rc_code = ans ? json_get_i64(ans, "ExitCode", &code) : -1;
	if (!ans || json_get_bool(ans, "Running", &running) || rc_code < 0 ||
	    json_get_i64(ans, "Pid", &pid) || pid < 0 || pid > INT32_MAX ||
	    (rc_code == 0 && (code < -1 || code > 255)) || (rc_code == 1 && !running)) {
		snprintf(d->error, sizeof(d->error), "exec inspect: the engine's answer is not what the API says");
		goto out;
	}
	st->running = running;
	st->exit_code = running || rc_code ? -1 : (int)code;
	st->pid = pid;
	ret = 0;
out:
	json_object_put(ans);
	return ret;
}

/* ---- hijacked streams ---- */

struct docker_stream {
	CURL *curl;                   /* owns the connection */
	curl_socket_t fd;             /* the connection's socket, for poll and shutdown */
	char pending[DOCKER_HEAD_MAX];/* stream bytes that came with the head */
	size_t pend_off, pend_len;
};

int docker_parse_head(const char *buf, size_t len, long *status, size_t *head_len,
		      long *content_length)
{
	const char *end = NULL, *eol, *p;
	long code = 0;

	*content_length = -1;
	for (size_t i = 0; i + 3 < len; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			end = buf + i;
			break;
		}
	if (len >= 8 && strncmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	if (len < 8 && strncmp(buf, "HTTP/1.", len < 7 ? len : 7) != 0)
		return -1;
	if (!end)
		return len < DOCKER_HEAD_MAX ? 0 : -1;
	if ((size_t)(end - buf) + 4 > DOCKER_HEAD_MAX)
		return -1;
	/* "HTTP/1.x NNN reason" */
	if (end - buf < 12 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return -1;
		code = code * 10 + (buf[i] - '0');
	}
	if (code < 100 || (buf + 12 < end && buf[12] != ' ' && buf[12] != '\r'))
		return -1;
	/* Header lines: only Content-Length matters. */
	eol = memchr(buf, '\n', (size_t)(end - buf));
	for (p = eol ? eol + 1 : end; p < end; p = eol + 1) {
		eol = memchr(p, '\n', (size_t)(end + 2 - p));
		if (!eol)
			return -1;
		if ((size_t)(eol - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
			const char *q = p + 15;
			long v = 0;
			int digits = 0;

			while (*q == ' ' || *q == '\t')
				q++;
			while (*q >= '0' && *q <= '9' && digits < 12) {
				v = v * 10 + (*q++ - '0');
				digits++;
			}
			while (*q == ' ' || *q == '\t')
				q++;
			if (digits == 0 || digits >= 12 || (*q != '\r' && *q != '\n'))
				return -1;
			*content_length = v;
		}
	}
	*status = code;
	*head_len = (size_t)(end - buf) + 4;
	return 1;
}

static int wait_fd(curl_socket_t fd, short events, long timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do
		rc = poll(&p, 1, timeout_ms < 0 ? 0 : (int)(timeout_ms > INT32_MAX ? INT32_MAX : timeout_ms));
	while (rc < 0 && errno == EINTR);
	return rc;   /* >0 ready, 0 timeout, <0 error */
}

int docker_stream_send(struct docker_stream *s, const void *buf, size_t len, long timeout_ms,
		       char *err, size_t errlen)
{
	int64_t until = mono_ms() + timeout_ms;
	const char *p = buf;

	while (len > 0) {
		size_t sent = 0;
		CURLcode rc = curl_easy_send(s->curl, p, len, &sent);

		if (rc == CURLE_AGAIN) {
			int64_t left = until - mono_ms();

			if (left <= 0 || wait_fd(s->fd, POLLOUT, (long)left) <= 0) {
				snprintf(err, errlen, "sending to the engine timed out or failed");
				return -1;
			}
			continue;
		}
		if (rc != CURLE_OK) {
			snprintf(err, errlen, "sending to the engine: %s", curl_easy_strerror(rc));
			return -1;
		}
		p += sent;
		len -= sent;
	}
	return 0;
}

int docker_stream_close_write(struct docker_stream *s)
{
	return shutdown(s->fd, SHUT_WR);
}

long docker_stream_read(struct docker_stream *s, void *buf, size_t cap, long timeout_ms,
			char *err, size_t errlen)
{
	int64_t until = mono_ms() + timeout_ms;

	if (cap == 0) {
		snprintf(err, errlen, "no room to read into");
		return -1;
	}
	if (s->pend_off < s->pend_len) {
		size_t n = s->pend_len - s->pend_off;

		if (n > cap)
			n = cap;
		memcpy(buf, s->pending + s->pend_off, n);
		s->pend_off += n;
		return (long)n;
	}
	for (;;) {
		size_t got = 0;
		CURLcode rc = curl_easy_recv(s->curl, buf, cap, &got);
		int64_t left;
		int w;

		if (rc == CURLE_OK)
			return got ? (long)got : DOCKER_STREAM_EOF;
		if (rc != CURLE_AGAIN) {
			snprintf(err, errlen, "reading from the engine: %s", curl_easy_strerror(rc));
			return -1;
		}
		left = until - mono_ms();
		if (left <= 0)
			return DOCKER_STREAM_TIMEOUT;
		w = wait_fd(s->fd, POLLIN, (long)left);
		if (w == 0)
			return DOCKER_STREAM_TIMEOUT;
		if (w < 0) {
			snprintf(err, errlen, "waiting for the engine: %s", strerror(errno));
			return -1;
		}
	}
}

void docker_stream_free(struct docker_stream *s)
{
	if (!s)
		return;
	curl_easy_cleanup(s->curl);
	free(s);
}

/* Opens the connection, writes the request, reads the answer's head. On
 * 101 returns the stream with what followed the head pending; otherwise
 * NULL with the engine's message from the error body. */
static struct docker_stream *hijack(struct docker *d, const char *path, const char *json_body,
				    const char *what)
{
	char req[URL_MAX + 512], curl_err[CURL_ERROR_SIZE] = "", e[256];
	struct docker_stream *s;
	int64_t until;
	size_t have = 0, head_len = 0;
	long status = 0, clen = -1;
	int n, parsed = 0;
	CURLcode rc;
	bool cut;
	long limit;

	if (docker_negotiate(d))
		return NULL;
	limit = curlx_timeout_ms(d->deadline_ms, d->timeout_ms, &cut);
	if (limit == 0) {
		snprintf(d->error, sizeof(d->error), "%s: no time left before the deadline", what);
		return NULL;
	}
	n = snprintf(req, sizeof(req),
		     "POST /v%s%s HTTP/1.1\r\nHost: docker\r\nUser-Agent: anyon/" PACKAGE_VERSION "\r\n"
		     "Connection: Upgrade\r\nUpgrade: tcp\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     d->api, path, json_body ? strlen(json_body) : 0, json_body ? json_body : "");
	if (n < 0 || (size_t)n >= sizeof(req)) {
		snprintf(d->error, sizeof(d->error), "%s: request too long", what);
		return NULL;
	}
	if (d->trace) {
		char vpath[URL_MAX];

		snprintf(vpath, sizeof(vpath), "/v%s%s", d->api, path);
		d->trace(d->trace_arg, "POST", vpath);
	}
	s = calloc(1, sizeof(*s));
	if (!s || !(s->curl = curl_easy_init())) {
		free(s);
		snprintf(d->error, sizeof(d->error), "out of memory");
		return NULL;
	}
	d->status = 0;
	curl_easy_setopt(s->curl, CURLOPT_UNIX_SOCKET_PATH, d->socket);
	curl_easy_setopt(s->curl, CURLOPT_URL, "http://docker/");
	curl_easy_setopt(s->curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, limit < CONNECT_TIMEOUT_MS ? limit : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, curl_err);
	rc = curl_easy_perform(s->curl);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &s->fd);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, NULL);   /* curl_err dies with this call */
	if (rc != CURLE_OK || s->fd == CURL_SOCKET_BAD) {
		curlx_error(e, sizeof(e), rc, curl_err);
		snprintf(d->error, sizeof(d->error), "%s: docker engine at %s: %s", what, d->socket, e);
		goto fail;
	}
	until = mono_ms() + limit;
	if (docker_stream_send(s, req, (size_t)n, limit, e, sizeof(e))) {
		snprintf(d->error, sizeof(d->error), "%s: %s", what, e);
		goto fail;
	}
	while (parsed == 0) {
		long got = docker_stream_read(s, s->pending + have, sizeof(s->pending) - have,
					      (long)(until - mono_ms()), e, sizeof(e));

		if (got == DOCKER_STREAM_TIMEOUT || got == DOCKER_STREAM_EOF || got < 0) {
			snprintf(d->error, sizeof(d->error), "%s: %s", what,
				 got == DOCKER_STREAM_TIMEOUT ? (cut ? "the deadline ran out" :
								  "the engine did not answer in time") :
				 got == DOCKER_STREAM_EOF ? "the engine closed the connection" : e);
			goto fail;
		}
		have += (size_t)got;
		parsed = docker_parse_head(s->pending, have, &status, &head_len, &clen);
	}
	if (parsed < 0) {
		snprintf(d->error, sizeof(d->error), "%s: the engine's answer is not HTTP", what);
		goto fail;
	}
	d->status = status;
	if (status != 101) {
		/* An error: its JSON body says why. Read what Content-Length
		 * says, bounded. */
		char *body = NULL;
		size_t blen = have - head_len, want = clen < 0 || clen > ERROR_BODY_MAX ? ERROR_BODY_MAX :
								(size_t)clen;

		body = malloc(want + 1);
		if (body) {
			memcpy(body, s->pending + head_len, blen < want ? blen : want);
			blen = blen < want ? blen : want;
			while (blen < want) {
				long got = docker_stream_read(s, body + blen, want - blen,
							      (long)(until - mono_ms()), e, sizeof(e));
				if (got <= 0)
					break;
				blen += (size_t)got;
			}
		}
		engine_error(d, body, body ? blen : 0, what);
		free(body);
		goto fail;
	}
	s->pend_off = head_len;
	s->pend_len = have;
	return s;
fail:
	docker_stream_free(s);
	return NULL;
}

struct docker_stream *docker_attach(struct docker *d, const char *id)
{
	char path[128 + DOCKER_ID_MAX];

	if (!docker_id_ok(id)) {
		snprintf(d->error, sizeof(d->error), "attach: bad container id");
		return NULL;
	}
	snprintf(path, sizeof(path), "/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1", id);
	return hijack(d, path, NULL, "attach");
}

struct docker_stream *docker_exec_start(struct docker *d, const char *exec_id, bool tty)
{
	char path[64 + DOCKER_ID_MAX];
	json_object *body;
	struct docker_stream *s;

	if (!docker_id_ok(exec_id)) {
		snprintf(d->error, sizeof(d->error), "exec start: bad exec id");
		return NULL;
	}
	snprintf(path, sizeof(path), "/exec/%s/start", exec_id);
	body = json_object_new_object();
	json_set(body, "Detach", json_object_new_boolean(false));
	json_set(body, "Tty", json_object_new_boolean(tty));
	s = hijack(d, path, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), "exec start");
	json_object_put(body);
	return s;
}

/* ---- frames ---- */

int docker_demux_feed(struct docker_demux *dm, const char *data, size_t len, docker_frame_fn fn,
		      void *arg)
{
	while (len > 0) {
		if (dm->failed)
			return -1;
		if (dm->left == 0) {
			size_t take = sizeof(dm->head) - dm->head_len;
			uint32_t flen;

			if (take > len)
				take = len;
			memcpy(dm->head + dm->head_len, data, take);
			dm->head_len += take;
			data += take;
			len -= take;
			if (dm->head_len < sizeof(dm->head))
				return 0;
			dm->head_len = 0;
			flen = (uint32_t)dm->head[4] << 24 | (uint32_t)dm->head[5] << 16 |
			       (uint32_t)dm->head[6] << 8 | dm->head[7];
			if (dm->head[0] > DOCKER_SYSERR || dm->head[1] || dm->head[2] || dm->head[3] ||
			    flen > DOCKER_FRAME_MAX) {
				dm->failed = true;
				return -1;
			}
			dm->stream = dm->head[0];
			dm->left = flen;
			continue;
		}
		{
			size_t take = len < dm->left ? len : dm->left;

			dm->left -= (uint32_t)take;
			if (fn(arg, (enum docker_stream_kind)dm->stream, data, take))
				return 1;
			data += take;
			len -= take;
		}
	}
	return dm->failed ? -1 : 0;
}

bool docker_demux_at_boundary(const struct docker_demux *dm)
{
	return !dm->failed && dm->left == 0 && dm->head_len == 0;
}
