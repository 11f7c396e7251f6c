/* docker.h - the Docker Engine API over its unix socket, through libcurl.
 *
 * The socket is ANYON_DOCKER_SOCKET when set, else DOCKER_HOST when it is
 * unix://PATH (any other scheme is refused), else /var/run/docker.sock.
 * The API version is read from GET /_ping's Api-Version header once per
 * process and put in front of every other path (/v1.41/containers/...):
 * never pinned, since engines refuse versions outside their own range.
 *
 * Every call has a time limit (timeout_ms, cut to the caller's deadline_ms
 * when it sets one, as the GitHub client does), reads a bounded answer, sends JSON bodies with
 * Content-Type: application/json (built with json-c), and turns a refusal
 * into the engine's own "message" in d->error. Everything the engine sends
 * is untrusted: ids are checked before they go into a path or back to the
 * caller, numbers are range-checked, stream frames are bounded.
 *
 * Streams (attach, exec start) use the hijacked connection: the request is
 * written raw over a curl connect-only connection, the engine answers
 * "101 UPGRADED" and the socket then carries stdin one way and the output
 * the other (8-byte frame headers without a TTY; raw bytes with one). */
#ifndef ANYON_DOCKER_H
#define ANYON_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define DOCKER_MAX_BODY (1024 * 1024)   /* the most bytes of a JSON answer */
#define DOCKER_ID_MAX 128                /* container/exec ids and names */
#define DOCKER_PATH_MAX 108              /* sun_path */
#define DOCKER_TIMEOUT_MS 30000L         /* a call's default time limit */
#define DOCKER_FRAME_MAX (1024 * 1024)   /* the longest stream frame accepted */
#define DOCKER_HEAD_MAX 8192             /* the longest 101 head accepted */

/* A connection to one engine. Plain data: docker_init() fills it, there is
 * nothing to release. Not shared between threads. */
struct docker {
	char socket[DOCKER_PATH_MAX]; /* the engine's unix socket */
	char api[16];                 /* negotiated version, "1.41"; "" until known */
	long timeout_ms;              /* a call's time limit (DOCKER_TIMEOUT_MS) */
	int64_t deadline_ms;          /* mono_ms() time by which every call must be
				       * over (each call's limit is cut to it); 0: none */
	long status;                  /* HTTP status of the last call; 0: no answer */
	char error[512];              /* why the last call failed */
	/* Called with every request's method and path (tests check that every
	 * path carries the negotiated version). May be NULL. */
	void (*trace)(void *arg, const char *method, const char *path);
	void *trace_arg;
};

/* Where the engine is: ANYON_DOCKER_SOCKET (g_config), DOCKER_HOST=unix://
 * or the default. Returns 0, or -1 with the reason in err (a DOCKER_HOST
 * that is not unix://, a path too long). */
int docker_socket_path(char *out, size_t outlen, char *err, size_t errlen);

/* Prepares d for the engine at socket_path (NULL: docker_socket_path()).
 * Talks to nobody. Returns 0, or -1 with the reason in d->error. */
int docker_init(struct docker *d, const char *socket_path);

/* GET /_ping, and the API version from its Api-Version header, unless this
 * process already knows it for this socket. Every call below does this
 * first. Returns 0, or -1 with d->error. */
int docker_negotiate(struct docker *d);

/* Negotiates, then GET /vX/version. On success returns 0 and writes
 * "ENGINE (API X.Y)" to version; otherwise -1 with the reason in version
 * and d->error. */
int docker_version(struct docker *d, char *version, size_t len);

/* The heartbeat's probe: docker_version() on a fresh connection: negotiates, then GET /vX/version. On success
 * returns 0 and writes "ENGINE (API X.Y)" to version; otherwise -1 with a
 * reason in version. socket_path NULL: docker_socket_path(). */
int docker_probe(const char *socket_path, long timeout_ms, char *version, size_t len);

/* One call. path starts with '/' and has no version prefix; it must be
 * built from checked parts (ids through docker_id_ok(), query values
 * through curl escaping). body (may be NULL) is sent as JSON. On a 2xx
 * answer returns 0, with *json (when json is not NULL) the parsed answer or
 * NULL when it had none (caller puts it). Otherwise -1 with d->status and
 * d->error ("no such container: abc" as the engine says it). */
int docker_call(struct docker *d, const char *method, const char *path, json_object *body,
		json_object **json);

/* True when s may stand in a path as an id or a name: 1 to DOCKER_ID_MAX
 * characters of [A-Za-z0-9_.-], not starting with '.' or '-'. */
bool docker_id_ok(const char *s);

/* ---- containers ---- */

struct docker_mount {
	const char *source;           /* host path; must exist (Mounts, not Binds) */
	const char *target;           /* path in the container */
	bool read_only;
};

/* What a container is made of. Every container anyon creates is locked
 * down whatever the spec says: CapDrop ALL, no-new-privileges. */
struct docker_spec {
	const char *name;             /* NULL: the engine picks one */
	const char *image;
	const char *const *cmd;       /* NULL-terminated; NULL: the image's */
	const char *const *env;       /* NULL-terminated "K=V"; NULL: none. Never secrets. */
	const char *user;             /* "uid:gid"; NULL: the image's */
	const char *workdir;          /* NULL: the image's */
	const char *const *labels;    /* NULL-terminated key, value pairs */
	bool tty;                     /* one raw stream instead of frames */
	bool stdin_once;              /* OpenStdin+StdinOnce+AttachStdin: stdin by attach before start */
	const char *const *tmpfs;     /* NULL-terminated path, options pairs (HostConfig.Tmpfs) */
	const struct docker_mount *mounts;
	size_t n_mounts;
	int64_t memory;               /* bytes; 0: no limit */
	int64_t pids_limit;           /* 0: no limit */
	int64_t nano_cpus;            /* 1e9 = one CPU; 0: no limit */
	bool init;                    /* tini as PID 1 */
	const char *network;          /* NetworkMode; NULL: "none" */
	const char *log_driver;       /* LogConfig.Type; NULL: "none" */
};

/* POST /containers/create. Writes the new id (64 hex digits) to id (at
 * least 65 bytes). Returns 0, or -1 with d->error. */
int docker_create(struct docker *d, const struct docker_spec *spec, char *id, size_t idlen);

/* Reads the container back and checks that the engine kept what the spec
 * asked for (it ignores unknown fields silently): user, labels, tmpfs,
 * mounts, limits, init, network, log driver, CapDrop, SecurityOpt. Returns
 * 0, or -1 with the first difference in d->error. */
int docker_verify(struct docker *d, const char *id, const struct docker_spec *spec);

/* POST /containers/{id}/start (an already started one is fine). */
int docker_start(struct docker *d, const char *id);

struct docker_state {
	char status[16];              /* created, running, exited, ... */
	bool running;
	bool oom_killed;
	int exit_code;
	int64_t pid;                  /* host pid while running, else 0 */
};

/* GET /containers/{id}/json: the State part. */
int docker_inspect(struct docker *d, const char *id, struct docker_state *st);

/* POST /containers/{id}/wait?condition=not-running, waiting at most
 * timeout_ms. Writes the exit status. */
int docker_wait(struct docker *d, const char *id, long timeout_ms, int *exit_code);

/* POST /containers/{id}/kill?signal=SIG: sig like "TERM", "SIGKILL" or "9". */
int docker_kill(struct docker *d, const char *id, const char *sig);

/* DELETE /containers/{id}?force=1&v=1. A container already gone is fine
 * (returns 0, d->status 404). */
int docker_remove(struct docker *d, const char *id);

struct docker_listed {
	char id[65];
	char state[16];
};

/* GET /containers/json?all=1&filters={"label":[label]}: label is "k=v" or
 * "k". Writes up to max containers to out and their count to *n (more than
 * max are counted but not written). */
int docker_list(struct docker *d, const char *label, struct docker_listed *out, size_t max,
		size_t *n);

/* ---- exec ---- */

struct docker_exec_spec {
	const char *const *cmd;       /* NULL-terminated, required */
	const char *const *env;       /* NULL-terminated; NULL: none */
	const char *user;             /* NULL: the container's */
	const char *workdir;
	bool tty;
	bool attach_stdin;
};

/* POST /containers/{id}/exec. Writes the exec id to exec_id (65 bytes). */
int docker_exec_create(struct docker *d, const char *id, const struct docker_exec_spec *spec,
		       char *exec_id, size_t idlen);

struct docker_exec_state {
	bool running;
	int exit_code;                /* -1 while running */
	int64_t pid;
};

/* GET /exec/{id}/json. */
int docker_exec_inspect(struct docker *d, const char *exec_id, struct docker_exec_state *st);

/* ---- hijacked streams ---- */

struct docker_stream;

/* POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1 over a
 * hijacked connection (call it before docker_start() so nothing is lost
 * and stdin reaches a StdinOnce container). Returns the stream (free with
 * docker_stream_free()), or NULL with d->error. */
struct docker_stream *docker_attach(struct docker *d, const char *id);

/* POST /exec/{id}/start over a hijacked connection. */
struct docker_stream *docker_exec_start(struct docker *d, const char *exec_id, bool tty);

/* Writes all len bytes to the process's stdin, waiting at most timeout_ms
 * in all. Returns 0, or -1 with the reason in errbuf. */
int docker_stream_send(struct docker_stream *s, const void *buf, size_t len, long timeout_ms,
		       char *err, size_t errlen);

/* Half-closes the connection: stdin sees EOF, output keeps coming. */
int docker_stream_close_write(struct docker_stream *s);

#define DOCKER_STREAM_EOF 0
#define DOCKER_STREAM_TIMEOUT (-2)
/* Waits at most timeout_ms for output and copies up to cap bytes to buf.
 * Returns the byte count (> 0), DOCKER_STREAM_TIMEOUT when nothing came in
 * time (call again: this is where a caller renews its lease or checks for
 * cancel), DOCKER_STREAM_EOF when the engine closed the stream, or -1 with
 * the reason in err. Bytes are raw: feed them to docker_demux_feed()
 * unless the stream has a TTY. */
long docker_stream_read(struct docker_stream *s, void *buf, size_t cap, long timeout_ms,
			char *err, size_t errlen);

/* Closes the connection and frees s (NULL is fine). Closing does not stop
 * the process. */
void docker_stream_free(struct docker_stream *s);

/* Parses the head of the engine's answer to a hijack request in buf[0..len).
 * Returns 1 when the head is complete: *status is its code and *head_len
 * its length with the blank line (bytes after it are already stream data),
 * *content_length the Content-Length when there is one, else -1. Returns 0
 * when more bytes are needed (and len < DOCKER_HEAD_MAX), -1 when it is not
 * an HTTP/1.x head or is too long. Pure: exposed for the unit tests. */
int docker_parse_head(const char *buf, size_t len, long *status, size_t *head_len,
		      long *content_length);

/* ---- frames ---- */

enum docker_stream_kind {
	DOCKER_STDIN = 0,
	DOCKER_STDOUT = 1,
	DOCKER_STDERR = 2,
	DOCKER_SYSERR = 3,            /* the engine's own error, newer engines */
};

/* Called with each piece of a frame's payload, in order; a frame may come
 * in several pieces. Returns 0 to go on, non-zero to stop the feed. */
typedef int (*docker_frame_fn)(void *arg, enum docker_stream_kind stream, const char *data,
			       size_t len);

/* The state of an incremental demultiplexer; zero it to start. */
struct docker_demux {
	unsigned char head[8];        /* the header being read */
	size_t head_len;              /* its bytes so far */
	uint32_t left;                /* payload bytes left in the current frame */
	int stream;                   /* the current frame's stream */
	bool failed;                  /* a bad header was seen: every feed fails */
};

/* Feeds len bytes (any slice of the stream: frames split anywhere, several
 * per slice) and calls fn for each payload piece. Returns 0, 1 when fn
 * asked to stop, or -1 on a bad header (unknown stream, non-zero padding,
 * length above DOCKER_FRAME_MAX), after which the stream is unusable. */
int docker_demux_feed(struct docker_demux *dm, const char *data, size_t len, docker_frame_fn fn,
		      void *arg);

/* True when the stream may end here: not inside a header or a frame. */
bool docker_demux_at_boundary(const struct docker_demux *dm);

#endif
