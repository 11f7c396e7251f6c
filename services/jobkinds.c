#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "base/json.h"
#include "services/jobkinds.h"
#include "services/secrets.h"
#include "base/util.h"

/* Refuses a key of args that names no argument of the kind: args are
 * stored, so nothing unknown is kept verbatim. */
static int only_known(json_object *args, const char *const *known, size_t n, char *err, size_t errlen)
{
	json_object_object_foreach(args, key, val) {
		size_t i;

		(void)val;
		for (i = 0; i < n && strcmp(known[i], key); i++)
			;
		if (i == n) {
			snprintf(err, errlen, "args.%.64s is not an argument of this job kind", key);
			return -1;
		}
	}
	return 0;
}

static int echo_validate(json_object *args, char *err, size_t errlen)
{
	static const char *const known[] = { "lines", "delay_ms", "exit_code", "stream" };
	json_object *lines;
	const char *stream;
	int64_t n;
	int rc;

	if (only_known(args, known, ARRAY_SIZE(known), err, errlen))
		return -1;
	if (!json_object_object_get_ex(args, "lines", &lines) ||
	    !json_object_is_type(lines, json_type_array)) {
		snprintf(err, errlen, "args.lines must be an array of strings");
		return -1;
	}
	if (json_object_array_length(lines) > ECHO_MAX_LINES) {
		snprintf(err, errlen, "args.lines has more than %d entries", ECHO_MAX_LINES);
		return -1;
	}
	for (size_t i = 0; i < json_object_array_length(lines); i++) {
		json_object *l = json_object_array_get_idx(lines, i);

		if (!json_object_is_type(l, json_type_string) ||
		    json_object_get_string_len(l) > ECHO_MAX_LINE) {
			snprintf(err, errlen, "args.lines[%zu] must be a string of at most %d bytes",
				 i, ECHO_MAX_LINE);
			return -1;
		}
	}
	rc = json_get_i64(args, "delay_ms", &n);
	if (rc < 0 || (rc == 0 && (n < 0 || n > ECHO_MAX_DELAY_MS))) {
		snprintf(err, errlen, "args.delay_ms must be a number from 0 to %d", ECHO_MAX_DELAY_MS);
		return -1;
	}
	rc = json_get_i64(args, "exit_code", &n);
	if (rc < 0 || (rc == 0 && (n < 0 || n > 255))) {
		snprintf(err, errlen, "args.exit_code must be a number from 0 to 255");
		return -1;
	}
	rc = json_get_str(args, "stream", &stream);
	if (rc < 0 || (rc == 0 && strcmp(stream, "stdout") && strcmp(stream, "stderr"))) {
		snprintf(err, errlen, "args.stream must be \"stdout\" or \"stderr\"");
		return -1;
	}
	return 0;
}

/* container: {"command": [1..64 strings of at most 4096 bytes, no NUL],
 * "secrets": [distinct stored secret kinds, at most 8], "workspace": true|false
 * (a per-job host directory at /workspace, default false)}. */
static int container_validate(json_object *args, char *err, size_t errlen)
{
	static const char *const known[] = { "command", "secrets", "workspace" };
	json_object *cmd, *secrets, *ws;
	size_t n;

	if (only_known(args, known, ARRAY_SIZE(known), err, errlen))
		return -1;
	if (!json_object_object_get_ex(args, "command", &cmd) || !json_object_is_type(cmd, json_type_array) ||
	    (n = json_object_array_length(cmd)) < 1 || n > CONTAINER_MAX_ARGV) {
		snprintf(err, errlen, "args.command must be an array of 1 to %d strings", CONTAINER_MAX_ARGV);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(cmd, i);

		if (!json_object_is_type(a, json_type_string) ||
		    json_object_get_string_len(a) > CONTAINER_MAX_ARG ||
		    strlen(json_object_get_string(a)) != (size_t)json_object_get_string_len(a) ||
		    (i == 0 && json_object_get_string_len(a) == 0)) {
			snprintf(err, errlen, "args.command[%zu] must be a string of at most %d bytes without "
				 "NUL (the first not empty)", i, CONTAINER_MAX_ARG);
			return -1;
		}
	}
	if (json_object_object_get_ex(args, "workspace", &ws) && !json_object_is_type(ws, json_type_boolean)) {
		snprintf(err, errlen, "args.workspace must be true or false");
		return -1;
	}
	if (!json_object_object_get_ex(args, "secrets", &secrets))
		return 0;
	if (!json_object_is_type(secrets, json_type_array) ||
	    (n = json_object_array_length(secrets)) > CONTAINER_MAX_SECRETS) {
		snprintf(err, errlen, "args.secrets must be an array of at most %d secret kinds",
			 CONTAINER_MAX_SECRETS);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *a = json_object_array_get_idx(secrets, i);

		if (!json_object_is_type(a, json_type_string) || !secret_kind_ok(json_object_get_string(a))) {
			snprintf(err, errlen, "args.secrets[%zu] is not a kind of secret anyon keeps", i);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(json_object_get_string(a),
				    json_object_get_string(json_object_array_get_idx(secrets, j)))) {
				snprintf(err, errlen, "args.secrets[%zu] repeats an earlier entry", i);
				return -1;
			}
	}
	return 0;
}

/* An id argument: a positive integer. */
static int id_arg(json_object *args, const char *key, char *err, size_t errlen)
{
	int64_t n;

	if (json_get_i64(args, key, &n) != 0 || n < 1) {
		snprintf(err, errlen, "args.%s must be a positive integer", key);
		return -1;
	}
	return 0;
}

/* attempt: {"attempt": id, "run": id} (services/attempts.c queues it with
 * its run's row). */
static int attempt_validate(json_object *args, char *err, size_t errlen)
{
	static const char *const known[] = { "attempt", "run" };

	if (only_known(args, known, ARRAY_SIZE(known), err, errlen) || id_arg(args, "attempt", err, errlen) ||
	    id_arg(args, "run", err, errlen))
		return -1;
	return 0;
}

/* pull_request: {"attempt": id} (the title and body are on the attempt). */
static int pull_request_validate(json_object *args, char *err, size_t errlen)
{
	static const char *const known[] = { "attempt" };

	if (only_known(args, known, ARRAY_SIZE(known), err, errlen) || id_arg(args, "attempt", err, errlen))
		return -1;
	return 0;
}

/* claude_login: {"method": "setup-token" | "interactive"}
 * (fcgi/api_claude.c queues it). */
static int claude_login_validate(json_object *args, char *err, size_t errlen)
{
	static const char *const known[] = { "method" };
	const char *m;

	if (only_known(args, known, ARRAY_SIZE(known), err, errlen))
		return -1;
	if (json_get_str(args, "method", &m) != 0 || (strcmp(m, "setup-token") && strcmp(m, "interactive"))) {
		snprintf(err, errlen, "args.method must be \"setup-token\" or \"interactive\"");
		return -1;
	}
	return 0;
}

static const struct jobkind kinds[] = {
	/* name, validate, needs, max_attempts, time_limit_s, retry_lost, internal */
	{ "echo", echo_validate, 0, 0, ECHO_TIME_LIMIT_S, true, false },
	/* A container's command may have had effects outside (pushed): a run
	 * lost with its worker fails instead of running twice. */
	{ "container", container_validate, NEED_DOCKER, 1, CONTAINER_TIME_LIMIT_S, false, false },
	/* One run of an attempt (services/attempts.h), in a container. */
	{ "attempt", attempt_validate, NEED_DOCKER, 1, CONTAINER_TIME_LIMIT_S, false, true },
	/* Pushes an attempt's branch from the worker's mirror and opens its
	 * pull request: the mirror lives with the Docker worker. */
	{ "pull_request", pull_request_validate, NEED_DOCKER, 1, PULL_REQUEST_TIME_LIMIT_S, false, true },
	/* The Claude CLI's sign-in under a TTY: never run twice (a lost one
	 * fails; the user starts another). */
	{ "claude_login", claude_login_validate, NEED_DOCKER, 1, CLAUDE_LOGIN_TIME_LIMIT_S, false, true },
};

const struct jobkind *jobkind_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

int jobkind_max_attempts(const struct jobkind *k)
{
	return k && k->max_attempts > 0 ? k->max_attempts : (int)g_config.job_max_attempts;
}

int64_t jobkind_time_limit_s(const struct jobkind *k)
{
	int64_t own = k ? k->time_limit_s : 0, global = g_config.job_time_limit_s;

	if (!own || (global && global < own))
		return global;
	return own;
}

const struct jobkind *jobkind_all(size_t *n)
{
	*n = ARRAY_SIZE(kinds);
	return kinds;
}

int jobkind_names(unsigned have, bool lost_only, char *out, size_t len)
{
	size_t used = 0;

	if (!len)
		return -1;
	out[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		int n;

		if ((kinds[i].needs & ~have) || (lost_only && kinds[i].retry_lost))
			continue;
		n = snprintf(out + used, len - used, "%s%s", used ? "," : "", kinds[i].name);
		if (n < 0 || (size_t)n >= len - used)
			return -1;
		used += (size_t)n;
	}
	return 0;
}

int jobkind_validate(const char *kind, json_object *args, char *err, size_t errlen)
{
	const struct jobkind *k;

	if (!args || !json_object_is_type(args, json_type_object)) {
		snprintf(err, errlen, "args must be a JSON object");
		return -1;
	}
	k = jobkind_find(kind);
	if (k)
		return k->validate(args, err, errlen);
	snprintf(err, errlen, "unknown job kind");
	return -1;
}
