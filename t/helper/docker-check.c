/* docker-check - test helper: drives services/docker.c against a real engine
 * (or a stand-in) for t/t4100-docker-client.py. One step per run; prints
 * one JSON object on stdout: what the step saw, "paths" (every request
 * path sent, to check the version prefix) and "error" when it failed
 * (exit status 1).
 *   docker-check ping
 *   docker-check create IMAGE LABEL_VALUE MOUNT_SRC stdin|nostdin -- CMD...
 *   docker-check run ID STDIN_TEXT        attach before start, send, half-close, read to EOF, wait
 *   docker-check exec ID STDIN_TEXT|- -- CMD...
 *   docker-check exec-tty ID - -- CMD...   with a TTY: raw bytes, no frames
 *   docker-check start|inspect|remove ID
 *   docker-check kill ID SIGNAL
 *   docker-check wait ID TIMEOUT_MS
 *   docker-check list LABEL
 * The socket comes from ANYON_DOCKER_SOCKET / DOCKER_HOST like the worker's.
 * DOCKER_CHECK_DEADLINE_MS sets a deadline that long after the start;
 * DOCKER_CHECK_TMPFS replaces create's tmpfs options. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/docker.h"

static json_object *g_out, *g_paths;

static void trace(void *arg, const char *method, const char *path)
{
	char line[4200];

	(void)arg;
	snprintf(line, sizeof(line), "%s %s", method, path);
	json_object_array_add(g_paths, json_str(line));
}

static int finish(int rc, const struct docker *d)
{
	if (rc) {
		json_set(g_out, "error", json_str(d->error));
		json_set(g_out, "status", json_object_new_int64(d->status));
	}
	json_set(g_out, "paths", g_paths);
	printf("%s\n", json_object_to_json_string_ext(g_out, JSON_C_TO_STRING_PLAIN));
	json_object_put(g_out);
	curl_global_cleanup();
	return rc ? 1 : 0;
}

/* Output events: consecutive pieces of one stream joined. */
struct events {
	json_object *list;
	int last;
	char *buf;
	size_t len, cap;
	size_t total;
};

static void events_flush(struct events *e)
{
	if (e->len) {
		json_object *ev = json_object_new_array();

		json_object_array_add(ev, json_object_new_string(e->last == DOCKER_STDOUT ? "stdout" :
								  e->last == DOCKER_STDERR ? "stderr" : "raw"));
		json_object_array_add(ev, json_string_from_bytes(e->buf, e->len));
		json_object_array_add(e->list, ev);
		e->len = 0;
	}
}

static int on_frame(void *arg, enum docker_stream_kind stream, const char *data, size_t len)
{
	struct events *e = arg;

	if ((int)stream != e->last)
		events_flush(e);
	e->last = (int)stream;
	e->total += len;
	if (e->len + len > e->cap) {
		size_t cap = (e->len + len) * 2;
		char *grown = realloc(e->buf, cap);

		if (!grown)
			return 1;
		e->buf = grown;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, data, len);
	e->len += len;
	return 0;
}

/* Reads s to EOF through the demultiplexer, counting the read timeouts (a
 * caller would renew its lease there). */
static int drain(struct docker *d, struct docker_stream *s, struct events *e, int *timeouts, bool tty)
{
	struct docker_demux dm = { 0 };
	char buf[16384], err[256];
	int64_t until = mono_ms() + 60000;

	for (;;) {
		long n = docker_stream_read(s, buf, sizeof(buf), 200, err, sizeof(err));

		if (n == DOCKER_STREAM_TIMEOUT) {
			(*timeouts)++;
			if (mono_ms() > until) {
				snprintf(d->error, sizeof(d->error), "no EOF within 60 s");
				return -1;
			}
			continue;
		}
		if (n == DOCKER_STREAM_EOF)
			break;
		if (n < 0) {
			snprintf(d->error, sizeof(d->error), "%s", err);
			return -1;
		}
		if (tty) {
			on_frame(e, DOCKER_STDIN, buf, (size_t)n);   /* "other": the one raw stream */
			continue;
		}
		if (docker_demux_feed(&dm, buf, (size_t)n, on_frame, e)) {
			snprintf(d->error, sizeof(d->error), "bad frame");
			return -1;
		}
	}
	events_flush(e);
	if (!docker_demux_at_boundary(&dm)) {
		snprintf(d->error, sizeof(d->error), "the stream ended inside a frame");
		return -1;
	}
	return 0;
}

static int send_stdin(struct docker *d, struct docker_stream *s, const char *text)
{
	char err[256];

	if (strcmp(text, "-") != 0 &&
	    docker_stream_send(s, text, strlen(text), 5000, err, sizeof(err))) {
		snprintf(d->error, sizeof(d->error), "%s", err);
		return -1;
	}
	if (docker_stream_close_write(s)) {
		snprintf(d->error, sizeof(d->error), "half-close failed");
		return -1;
	}
	return 0;
}

static int cmd_create(struct docker *d, int argc, char **argv)
{
	const char *labels[] = { "anyon.test", argv[3], "anyon.kind", "docker-check", NULL };
	const char *opts = getenv("DOCKER_CHECK_TMPFS");
	const char *tmpfs[] = { "/run/secrets", opts ? opts : "rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=1000",
				NULL };
	const char *env[] = { "TINI_KILL_PROCESS_GROUP=1", NULL };
	struct docker_mount m = { .source = argv[4], .target = "/work", .read_only = false };
	struct docker_spec spec = {
		.image = argv[2],
		.cmd = (const char *const *)argv + 7,
		.env = env,
		.user = "1000:1000",
		.workdir = "/work",
		.labels = labels,
		.stdin_once = strcmp(argv[5], "stdin") == 0,
		.tmpfs = tmpfs,
		.mounts = &m,
		.n_mounts = 1,
		.memory = 256 * 1024 * 1024,
		.pids_limit = 64,
		.nano_cpus = 500000000,
		.init = true,
		.network = "none",
		.log_driver = "none",
	};
	char id[65];

	if (argc < 8 || strcmp(argv[6], "--"))
		die("usage: create IMAGE LABEL MOUNT_SRC stdin|nostdin -- CMD...");
	if (docker_create(d, &spec, id, sizeof(id)))
		return -1;
	json_set(g_out, "id", json_str(id));
	if (docker_verify(d, id, &spec))
		return -1;
	json_set(g_out, "verified", json_object_new_boolean(true));
	return 0;
}

static int cmd_run(struct docker *d, char **argv)
{
	struct events e = { .list = json_object_new_array(), .last = -1 };
	struct docker_stream *s;
	int timeouts = 0, code = -1, rc = -1;

	json_set(g_out, "events", e.list);
	s = docker_attach(d, argv[2]);
	if (!s)
		return -1;
	if (docker_start(d, argv[2]) || send_stdin(d, s, argv[3]) || drain(d, s, &e, &timeouts, false) ||
	    docker_wait(d, argv[2], 30000, &code))
		goto out;
	json_set(g_out, "exit", json_object_new_int(code));
	json_set(g_out, "timeouts", json_object_new_int(timeouts));
	rc = 0;
out:
	free(e.buf);
	docker_stream_free(s);
	return rc;
}

static int cmd_exec(struct docker *d, int argc, char **argv, bool tty)
{
	struct docker_exec_spec spec = {
		.cmd = (const char *const *)argv + 5,
		.attach_stdin = strcmp(argv[3], "-") != 0,
		.tty = tty,
	};
	struct events e = { .list = json_object_new_array(), .last = -1 };
	struct docker_exec_state st;
	struct docker_stream *s = NULL;
	char exec_id[65];
	int timeouts = 0, rc = -1;

	json_set(g_out, "events", e.list);
	if (argc < 6 || strcmp(argv[4], "--"))
		die("usage: exec ID STDIN -- CMD...");
	if (docker_exec_create(d, argv[2], &spec, exec_id, sizeof(exec_id)))
		return -1;
	json_set(g_out, "exec_id", json_str(exec_id));
	s = docker_exec_start(d, exec_id, tty);
	if (!s || send_stdin(d, s, argv[3]) || drain(d, s, &e, &timeouts, tty))
		goto out;
	/* The stream ends a moment before the engine records the exit code. */
	for (int i = 0; i < 50; i++) {
		if (docker_exec_inspect(d, exec_id, &st))
			goto out;
		if (!st.running)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	}
	json_set(g_out, "running", json_object_new_boolean(st.running));
	json_set(g_out, "exit", json_object_new_int(st.exit_code));
	json_set(g_out, "pid", json_object_new_int64(st.pid));
	rc = 0;
out:
	free(e.buf);
	docker_stream_free(s);
	return rc;
}

static int cmd_inspect(struct docker *d, const char *id)
{
	struct docker_state st;

	if (docker_inspect(d, id, &st))
		return -1;
	json_set(g_out, "state", json_str(st.status));
	json_set(g_out, "running", json_object_new_boolean(st.running));
	json_set(g_out, "oom_killed", json_object_new_boolean(st.oom_killed));
	json_set(g_out, "exit", json_object_new_int(st.exit_code));
	json_set(g_out, "pid", json_object_new_int64(st.pid));
	return 0;
}

static int cmd_list(struct docker *d, const char *label)
{
	struct docker_listed got[16];
	json_object *ids = json_object_new_array();
	size_t n;

	json_set(g_out, "ids", ids);
	if (docker_list(d, label, got, ARRAY_SIZE(got), &n))
		return -1;
	for (size_t i = 0; i < n && i < ARRAY_SIZE(got); i++)
		json_object_array_add(ids, json_str(got[i].id));
	json_set(g_out, "count", json_object_new_int64((int64_t)n));
	return 0;
}

int main(int argc, char **argv)
{
	struct docker d;
	const char *cmd = argc > 1 ? argv[1] : "";
	int rc = -1;

	log_init("docker-check");
	config_load_global();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	g_out = json_object_new_object();
	g_paths = json_object_new_array();
	if (docker_init(&d, NULL))
		return finish(-1, &d);
	d.trace = trace;
	if (getenv("DOCKER_CHECK_DEADLINE_MS")) {
		int64_t ms;

		if (parse_i64(getenv("DOCKER_CHECK_DEADLINE_MS"), 1, 600000, &ms))
			die("bad DOCKER_CHECK_DEADLINE_MS");
		d.deadline_ms = mono_ms() + ms;
	}
	if (strcmp(cmd, "ping") == 0 && argc == 2) {
		char version[128];

		rc = docker_negotiate(&d);
		json_set(g_out, "api", json_str(d.api));
		if (rc == 0) {
			rc = docker_version(&d, version, sizeof(version));
			json_set(g_out, "probe", json_str(version));
		}
	} else if (strcmp(cmd, "create") == 0 && argc >= 8) {
		rc = cmd_create(&d, argc, argv);
	} else if (strcmp(cmd, "run") == 0 && argc == 4) {
		rc = cmd_run(&d, argv);
	} else if (strcmp(cmd, "exec") == 0 && argc >= 6) {
		rc = cmd_exec(&d, argc, argv, false);
	} else if (strcmp(cmd, "exec-tty") == 0 && argc >= 6) {
		rc = cmd_exec(&d, argc, argv, true);
	} else if (strcmp(cmd, "start") == 0 && argc == 3) {
		rc = docker_start(&d, argv[2]);
	} else if (strcmp(cmd, "inspect") == 0 && argc == 3) {
		rc = cmd_inspect(&d, argv[2]);
	} else if (strcmp(cmd, "remove") == 0 && argc == 3) {
		rc = docker_remove(&d, argv[2]);
	} else if (strcmp(cmd, "kill") == 0 && argc == 4) {
		rc = docker_kill(&d, argv[2], argv[3]);
	} else if (strcmp(cmd, "wait") == 0 && argc == 4) {
		int64_t ms;
		int code = -1;

		if (parse_i64(argv[3], 1, 600000, &ms))
			die("bad timeout");
		rc = docker_wait(&d, argv[2], (long)ms, &code);
		json_set(g_out, "exit", json_object_new_int(code));
	} else if (strcmp(cmd, "list") == 0 && argc == 3) {
		rc = cmd_list(&d, argv[2]);
	} else {
		die("usage: docker-check ping|create|run|exec|start|inspect|remove|kill|wait|list ...");
	}
	return finish(rc, &d);
}
