/* job_container.c - the container job: runs args.command in the agent
 * image (ANYON_AGENT_IMAGE), one locked-down container per job, and the
 * orphan reaper that removes this instance's containers no live job owns.
 *
 * A run: create (labels anyon.instance, anyon.job, anyon.user; User
 * 1000:1000, CapDrop ALL, no-new-privileges, limits from ANYON_CONTAINER_*,
 * tini with TINI_KILL_PROCESS_GROUP=1, no log driver, the secrets tmpfs),
 * verify what the engine kept, attach before start, send the secret
 * bundle on stdin and half-close (container/README.md), start. The
 * command runs under anyon-entry's relay: its output comes as numbered
 * records on the relay's socket, which the worker reads from the host
 * through the job's relay directory (workspaces/relay-N, mounted where
 * the relay listens; base/workspace.h), not through the engine; parsed
 * (services/relay.h) into the output writer, which masks
 * every secret value the job handed in and commits the relay offset with
 * each batch, while job_checkpoint() renews the lease between reads.
 * Cancel and the time limit send TERM (tini and the wrapper pass it to
 * the whole process group), then KILL after ANYON_CONTAINER_STOP_GRACE_S.
 * Every ending removes the container (DELETE ?force=1&v=1, which takes
 * the secrets tmpfs with it).
 *
 * Worker shutdown: the run goes on. The writer stores up to its last
 * clean point and the lease ends; the next worker adopts the job
 * (run->adopted) and asks the relay on its socket (a container made
 * without a relay directory: with `anyon-entry replay --after` in an
 * exec) for everything after the committed offset. A worker killed
 * outright leaves the same state once its lease runs out. A container
 * run is never started twice. */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/crypto.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "base/workspace.h"
#include "services/docker.h"
#include "services/jobkinds.h"
#include "services/jobs.h"
#include "services/mask.h"
#include "services/output.h"
#include "services/relay.h"
#include "services/secrets.h"
#include "worker/container.h"
#include "worker/worker.h"

#define SECRETS_DIR "/run/anyon/secrets"
#define ENTRY_PATH "/usr/local/bin/anyon-entry"
/* Where the relay listens in the container (container/serve.h's default),
 * the job's relay directory mounted there (base/workspace.h). */
#define RELAY_MOUNT "/run/anyon/relay"
#define SECRETS_TMPFS "rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=1000"
#define READ_SLICE_MS 250
#define READ_BUF (256 * 1024)
/* How long a stop waits for the stream to end after KILL, and for the
 * exit status. */
#define AFTER_KILL_MS 10000
/* On worker shutdown the supervisor kills its children a few seconds
 * after the grace: the container's own grace is cut to this. */
#define SHUTDOWN_GRACE_MS 2000
#define REAP_MAX 256

int container_instance(char *out, size_t len)
{
	unsigned char mac[32];
	char hex[65];
	static const char key[] = "anyon.instance";

	if (g_config.instance[0])
		return str_copy(out, len, g_config.instance) ? 0 : -1;
	if (hmac_sha256(key, sizeof(key) - 1, g_config.db_path, strlen(g_config.db_path), mac))
		return -1;
	hex_encode(mac, 8, hex);
	return snprintf(out, len, "db-%s", hex) < (int)len ? 0 : -1;
}

void handover_release(struct handover *h)
{
	if (h->bundle) {
		OPENSSL_cleanse(h->bundle, h->cap);
		free(h->bundle);
	}
	mask_set_free(h->masks);
	memset(h, 0, sizeof(*h));
}

static int bundle_add(struct handover *h, const void *data, size_t len)
{
	if (h->len + len > h->cap) {
		size_t cap = (h->len + len) * 2 + 256;
		char *nb = malloc(cap);

		if (!nb)
			return -1;
		if (h->bundle) {
			memcpy(nb, h->bundle, h->len);
			OPENSSL_cleanse(h->bundle, h->cap);
			free(h->bundle);
		}
		h->bundle = nb;
		h->cap = cap;
	}
	memcpy(h->bundle + h->len, data, len);
	h->len += len;
	return 0;
}

int handover_init(struct handover *h)
{
	memset(h, 0, sizeof(*h));
	return (h->masks = mask_set_new()) ? 0 : -1;
}

/* Opens the bundle on the first item. */
static int bundle_open(struct handover *h)
{
	return h->len ? 0 : bundle_add(h, "anyon-secrets 1\n", 16);
}

static int bundle_item(struct handover *h, const char *name, const void *data, size_t len)
{
	char line[128];
	int m = snprintf(line, sizeof(line), "secret %s %zu\n", name, len);

	if (m < 0 || (size_t)m >= sizeof(line))
		return -1;
	return bundle_open(h) || bundle_add(h, line, (size_t)m) || bundle_add(h, data, len) ||
	       bundle_add(h, "\n", 1) ? -1 : 0;
}

int handover_secret(struct handover *h, struct job_run *run, const char *kind, const char *name,
		    char *err, size_t errlen)
{
	struct secret_store st = { .db = run->db, .kr = run->kr };
	struct secret_value v;
	char merr[128];
	int rc = run->kr ? secret_get(&st, run->job->user_id, kind, 0, &v) : SECRET_ERROR;

	if (rc == SECRET_NOTFOUND) {
		snprintf(err, errlen, "no stored secret of kind '%s' to hand to the container", kind);
		return 1;
	}
	if (rc != SECRET_OK) {
		snprintf(err, errlen, "the stored secret '%s' could not be read", kind);
		return -1;
	}
	if (mask_set_add(h->masks, v.data, v.len, merr, sizeof(merr))) {
		secret_value_release(&v);
		snprintf(err, errlen, "the secret '%s' cannot be masked in output (%s); not handed over",
			 kind, merr);
		return -1;
	}
	if (bundle_item(h, name ? name : kind, v.data, v.len)) {
		secret_value_release(&v);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	secret_value_release(&v);
	return 0;
}

int handover_file(struct handover *h, const char *name, const void *data, size_t len)
{
	return bundle_item(h, name, data, len);
}

int handover_finish(struct handover *h)
{
	return h->len ? bundle_add(h, "end\n", 4) : 0;
}

/* Fills h for the job's args.secrets. Returns 0, or -1 with a reason
 * for the job's error in err (never a value). */
static int handover_build(struct job_run *run, json_object *secrets, struct handover *h,
			  char *err, size_t errlen)
{
	size_t n = secrets ? json_object_array_length(secrets) : 0;

	if (handover_init(h)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (handover_secret(h, run, json_object_get_string(json_object_array_get_idx(secrets, i)), NULL,
				    err, errlen))
			return -1;
	if (handover_finish(h)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Where the container's output goes. The program's output comes as
 * anyon-entry's relay records (container/README.md) on the stream's
 * stdout: parsed, passed to the writer with the relay offset as its mark,
 * so what is committed says where a worker that carries on asks the relay
 * to resume. The stream's stderr is anyon-entry's own words before the
 * relay starts (a refused bundle), or on a replay the replay client's. */
struct feed {
	struct output_writer *out;
	struct relay_parser rp;
	bool replay;                 /* the stream is a replay exec's */
	bool failed;                 /* the writer failed */
	bool bad;                    /* the relay stream broke its format */
	bool ended;                  /* the exit record came */
	int code, sig;               /* ... and what it said */
	uint64_t lost;               /* bytes the relay's window lost */
	size_t replay_err;           /* bytes the replay client wrote on stderr (not stored) */
	void (*tap)(void *arg, const unsigned char *p, size_t len);  /* the plan's on_stdout */
	void *tap_arg;
};

static int relay_data(void *ctx, enum relay_type stream, uint64_t offset, const unsigned char *p, size_t len)
{
	struct feed *f = ctx;

	if (f->tap && stream == RELAY_STDOUT)
		f->tap(f->tap_arg, p, len);
	/* The wrapper's system stream is the program's side too (it runs as
	 * the same uid): stored as stderr, never as anyon's own line. */
	if (output_write(f->out, stream == RELAY_STDOUT ? OUTPUT_STDOUT : OUTPUT_STDERR, p, len) ||
	    output_mark(f->out, (int64_t)(offset + len))) {
		f->failed = true;
		return -1;
	}
	return 0;
}

static int relay_lost(void *ctx, uint64_t offset, uint64_t count)
{
	struct feed *f = ctx;
	char line[200];

	snprintf(line, sizeof(line), "%llu bytes of output (from byte %llu) were lost: they left the "
		 "container's window before a worker read them", (unsigned long long)count,
		 (unsigned long long)offset);
	f->lost += count;
	if (output_system(f->out, line) || output_mark(f->out, (int64_t)(offset + count))) {
		f->failed = true;
		return -1;
	}
	return 0;
}

static int relay_exit(void *ctx, uint64_t end, int code, int sig)
{
	struct feed *f = ctx;

	f->ended = true;
	f->code = code;
	f->sig = sig;
	if (output_mark(f->out, (int64_t)end)) {
		f->failed = true;
		return -1;
	}
	return 0;
}

static const struct relay_callbacks relay_cb = { relay_data, relay_lost, relay_exit };

static int on_frame(void *arg, enum docker_stream_kind stream, const char *data, size_t len)
{
	struct feed *f = arg;

	if (stream == DOCKER_STDIN)
		return 0;
	if (stream == DOCKER_STDOUT) {
		if (f->ended)
			return 0;   /* nothing follows an exit record: the parser would refuse it */
		if (relay_parser_feed(&f->rp, data, len)) {
			if (!f->failed)
				f->bad = true;
			return 1;
		}
		return 0;
	}
	if (f->replay) {
		f->replay_err += len;
		return 0;
	}
	if (output_write(f->out, OUTPUT_STDERR, data, len)) {
		f->failed = true;
		return 1;
	}
	return 0;
}

/* One container run, in steps that each may fail. */
struct container_io {
	struct job_run *run;
	struct docker d;
	char id[72];                 /* "" until created */
	bool started;                /* the program runs (or ran): a worker may adopt it */
	struct docker_stream *s;
	struct output_writer *out;
	struct demux_state {
		struct docker_demux dm;
		struct feed f;
	} demux;
	char *buf;                   /* READ_BUF bytes */
	bool direct;                 /* the output comes from the relay's socket, not the engine */
	int sock;                    /* connected to the relay's socket; -1 before */
	bool eof;                    /* the output stream (or the relay's socket) ended */
	bool lost;                   /* the lease went while stopping */
	struct docker_stream *tty;   /* a TTY plan's exec stream (raw), or NULL */
};

/* The run's output is over: the relay's exit record came, or the stream
 * ended. */
static bool over(const struct container_io *c)
{
	return c->eof || c->demux.f.ended;
}

static int open_replay(struct container_io *c, uint64_t after);

/* Connects to the relay's socket in the job's relay directory and asks
 * it for everything after offset after: from now on the output is read
 * from it (the engine's stream, which carries none of it, is let go).
 * 0, or -1 with errno: ENOENT or ECONNREFUSED (not listening yet), EACCES
 * (not the relay's socket: relay_dir_connect()), EIO (the request could
 * not be sent). */
static int direct_start(struct container_io *c, uint64_t after)
{
	char req[48];
	int n = snprintf(req, sizeof(req), "after %llu\n", (unsigned long long)after);
	int fd = relay_dir_connect(g_config.data_dir, c->run->job->id);

	if (fd < 0)
		return -1;
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		errno = EIO;
		return -1;
	}
	docker_stream_free(c->s);
	c->s = NULL;
	c->sock = fd;
	c->eof = false;
	relay_parser_init(&c->demux.f.rp, after, &relay_cb, &c->demux.f);
	return 0;
}

/* Feeds the relay's records read from its socket. */
static int feed_records(struct container_io *c, const char *data, size_t len)
{
	struct feed *f = &c->demux.f;

	if (f->ended)
		return 0;   /* nothing follows an exit record */
	if (relay_parser_feed(&f->rp, data, len)) {
		if (!f->failed)
			f->bad = true;
		return -1;
	}
	return 0;
}

/* The relay's socket within ms. */
static long read_socket(struct container_io *c, long ms, char *err, size_t errlen)
{
	struct pollfd p = { .fd = c->sock, .events = POLLIN };
	int w = poll(&p, 1, (int)ms);
	ssize_t n;

	if (w == 0)
		return DOCKER_STREAM_TIMEOUT;
	if (w < 0 && errno == EINTR)
		return DOCKER_STREAM_TIMEOUT;
	n = w < 0 ? -1 : read(c->sock, c->buf, READ_BUF);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return DOCKER_STREAM_TIMEOUT;
	if (n < 0) {
		snprintf(err, errlen, "reading the relay's socket: %s", strerror(errno));
		return -1;
	}
	return n ? (long)n : DOCKER_STREAM_EOF;
}

/* Reads what the output has within ms, feeding the writer. Returns 0, or
 * -1 when the stream failed (reason in err) or the writer failed. A run
 * whose relay answers on its socket (c->direct) is read from there once
 * the relay listens; until then the engine's stream says whether it
 * started (anyon-entry's own errors come on its stderr). */
static int pump(struct container_io *c, long ms, char *err, size_t errlen)
{
	long n;

	if (c->direct && c->sock < 0) {
		if (direct_start(c, relay_parser_offset(&c->demux.f.rp)) == 0) {
			/* reading from the socket now */
		} else if (errno == EIO) {
			snprintf(err, errlen, "asking the relay's socket failed");
			return -1;
		} else if (errno != ENOENT && errno != ECONNREFUSED) {
			/* Not the relay's socket (the agent can write there): the
			 * relay is asked from inside the container instead. */
			log_warn("job %lld: the relay's socket cannot be used (%s): reading through an exec",
				 (long long)c->run->job->id, strerror(errno));
			c->direct = false;
			if (open_replay(c, relay_parser_offset(&c->demux.f.rp))) {
				snprintf(err, errlen, "reading the relay through an exec failed: %.150s", c->d.error);
				return -1;
			}
		} else if (ms > 20) {
			ms = 20;   /* not listening yet: look again soon */
		}
	}
	if (c->sock >= 0)
		n = read_socket(c, ms, err, errlen);
	else if (c->s)
		n = docker_stream_read(c->s, c->buf, READ_BUF, ms, err, errlen);
	else
		n = DOCKER_STREAM_EOF;
	if (n == DOCKER_STREAM_TIMEOUT)
		return output_tick(c->out) ? -1 : 0;
	if (n == DOCKER_STREAM_EOF) {
		c->eof = true;
		return 0;
	}
	if (n < 0)
		return -1;
	if (c->sock >= 0)
		feed_records(c, c->buf, (size_t)n);
	else if (docker_demux_feed(&c->demux.dm, c->buf, (size_t)n, on_frame, &c->demux.f) < 0) {
		snprintf(err, errlen, "the engine sent a malformed output frame");
		return -1;
	}
	if (c->demux.f.bad) {
		snprintf(err, errlen, "the container's relay stream is malformed: %.120s",
			 relay_parser_error(&c->demux.f.rp));
		return -1;
	}
	return c->demux.f.failed ? -1 : 0;
}

/* Reads until the output is over or ms pass, keeping the lease (a grace
 * may be longer than a lease). */
static void drain(struct container_io *c, long ms)
{
	int64_t end = mono_ms() + ms;
	char err[128];

	while ((c->s || c->sock >= 0) && !over(c) && mono_ms() < end && !c->demux.f.failed && !c->demux.f.bad) {
		if (job_keep_lease(c->run)) {
			c->lost = true;
			break;
		}
		if (pump(c, READ_SLICE_MS, err, sizeof(err)))
			break;
	}
}

/* Waits up to ms for the program to end (its exit record) or the
 * container to exit, reading what it still prints and keeping the lease.
 * True when it has. */
static bool wait_exit(struct container_io *c, long ms)
{
	int64_t end = mono_ms() + ms;
	int code;

	drain(c, ms);
	if (c->demux.f.ended)
		return true;
	while (!c->lost) {
		int64_t left = end - mono_ms();

		if (docker_wait(&c->d, c->id, left > 1000 ? 1000 : left > 0 ? (long)left : 1, &code) == 0)
			return true;
		if (left <= 0)
			return false;
		if (job_keep_lease(c->run))
			c->lost = true;
	}
	return false;
}

/* TERM (tini passes it to the wrapper, which passes it to the program's
 * process group), grace, then KILL. */
static void stop_container(struct container_io *c, long grace_ms, const char *why)
{
	char line[160];

	snprintf(line, sizeof(line), "stopping the container (%s): TERM, KILL after %ld s", why,
		 (grace_ms + 999) / 1000);
	output_system(c->out, line);
	if (docker_kill(&c->d, c->id, "TERM") && c->d.status != 409)
		log_warn("job %lld: TERM: %s", (long long)c->run->job->id, c->d.error);
	if (!wait_exit(c, grace_ms) && !c->lost) {
		output_system(c->out, "the container did not stop within the grace period: KILL");
		if (docker_kill(&c->d, c->id, "KILL") && c->d.status != 409)
			log_warn("job %lld: KILL: %s", (long long)c->run->job->id, c->d.error);
		wait_exit(c, AFTER_KILL_MS);
	}
	if (c->lost)
		docker_kill(&c->d, c->id, "KILL");
}

static const char *stop_reason(enum checkpoint cp)
{
	switch (cp) {
	case CP_CANCEL: return "cancelled";
	case CP_TIMEOUT: return "time limit";
	case CP_SHUTDOWN: return "the worker is stopping";
	default: return "lease lost";
	}
}

/* How long the relay keeps a finished run's end for a worker that comes
 * back: longer than a lost lease waits for adoption. */
static unsigned linger_s(void)
{
	int64_t l = g_config.adopt_window_s + g_config.lease_s + 60;

	return l > 86400 ? 86400 : (unsigned)l;
}

/* The secret bundle without a secret (container/bundle.h). */
#define EMPTY_BUNDLE "anyon-secrets 1\nend\n"

/* A new run: create, verify, attach, hand the secrets over, start. 0, or
 * -1 with res->error set (or *cp CP_LOST). */
static int launch(struct container_io *c, struct docker_spec *spec, struct handover *h, struct job_result *res,
		  enum checkpoint *cp)
{
	struct job_run *run = c->run;
	char err[256];

	if (docker_create(&c->d, spec, c->id, sizeof(c->id))) {
		c->id[0] = '\0';
		snprintf(res->error, sizeof(res->error), "creating the container failed: %.200s", c->d.error);
		return -1;
	}
	if (db_job_set_container(run->db, run->job->id, run->owner, c->id, 0) == DB_NOTFOUND) {
		*cp = CP_LOST;
		return -1;
	}
	if (docker_verify(&c->d, c->id, spec)) {
		snprintf(res->error, sizeof(res->error), "the engine did not keep the container's settings: %.180s",
			 c->d.error);
		return -1;
	}
	if (!(c->s = docker_attach(&c->d, c->id))) {
		snprintf(res->error, sizeof(res->error), "attaching to the container failed: %.200s", c->d.error);
		return -1;
	}
	/* Always a bundle, an empty one without secrets: the wrapper stops
	 * reading at its `end`, so the half-close below reaching it (through
	 * the engine, before the process even started) is not what it waits
	 * for. */
	if (docker_stream_send(c->s, h->bundle ? (const void *)h->bundle : EMPTY_BUNDLE,
			       h->bundle ? h->len : sizeof(EMPTY_BUNDLE) - 1, 10000, err, sizeof(err))) {
		snprintf(res->error, sizeof(res->error), "handing the secrets over failed: %.200s", err);
		return -1;
	}
	/* The bundle is in the container's stdin: nothing here keeps it. */
	if (h->bundle) {
		OPENSSL_cleanse(h->bundle, h->cap);
		h->len = 0;
	}
	if (docker_stream_close_write(c->s)) {
		snprintf(res->error, sizeof(res->error), "closing the container's stdin failed");
		return -1;
	}
	if (config_fault("container_start")) {
		snprintf(res->error, sizeof(res->error), "starting the container failed: test fault");
		return -1;
	}
	if (docker_start(&c->d, c->id)) {
		snprintf(res->error, sizeof(res->error), "starting the container failed: %.200s", c->d.error);
		return -1;
	}
	c->started = true;
	log_info("job %lld: container %.12s started", (long long)run->job->id, c->id);
	if (db_job_set_container(run->db, run->job->id, run->owner, c->id, now_s()) == DB_NOTFOUND) {
		*cp = CP_LOST;
		return -1;
	}
	relay_parser_init(&c->demux.f.rp, 0, &relay_cb, &c->demux.f);
	return 0;
}

/* Opens a replay of the relay's output from offset after: `anyon-entry
 * replay --after N` in an exec as uid 1000, read like the attach stream
 * with a parser started at after. 0, or -1 (the exec could not start:
 * the container is gone or no longer runs). */
static int open_replay(struct container_io *c, uint64_t after)
{
	char after_s[24], exec_id[80];
	const char *cmd[] = { ENTRY_PATH, "replay", "--after", after_s, NULL };
	struct docker_exec_spec spec = { .cmd = cmd, .user = "1000:1000" };

	snprintf(after_s, sizeof(after_s), "%llu", (unsigned long long)after);
	docker_stream_free(c->s);
	c->s = NULL;
	if (c->sock >= 0)
		close(c->sock);
	c->sock = -1;
	c->direct = false;
	c->eof = false;
	memset(&c->demux.dm, 0, sizeof(c->demux.dm));
	c->demux.f.replay = true;
	if (docker_exec_create(&c->d, c->id, &spec, exec_id, sizeof(exec_id)) ||
	    !(c->s = docker_exec_start(&c->d, exec_id, false)))
		return -1;
	relay_parser_init(&c->demux.f.rp, after, &relay_cb, &c->demux.f);
	return 0;
}

/* The output stream ended before the exit record while the container
 * still runs (the engine dropped the connection, or a replay was cut
 * off): reads on from where the parser is, through a replay. True when
 * it could. */
static bool reconnect(struct container_io *c)
{
	struct docker_state st;
	uint64_t at = relay_parser_offset(&c->demux.f.rp);

	if (!c->started || c->demux.f.ended || !c->eof || docker_inspect(&c->d, c->id, &st) || !st.running)
		return false;
	if (c->sock >= 0) {
		close(c->sock);
		c->sock = -1;
		if (direct_start(c, at) == 0) {
			log_warn("job %lld: the container's output stream ended early; reading on from byte %llu "
				 "(the relay's socket)", (long long)c->run->job->id, (unsigned long long)at);
			return true;
		}
	}
	if (open_replay(c, at)) {
		log_warn("job %lld: reading the container's output again failed: %s", (long long)c->run->job->id,
			 c->d.error);
		return false;
	}
	log_warn("job %lld: the container's output stream ended early; reading on from byte %llu",
		 (long long)c->run->job->id, (unsigned long long)at);
	return true;
}

/* Carries on with a run a stopped worker left (run->adopted): asks the
 * container's relay for everything after the committed offset. 0, or -1
 * with res->error set: the container is gone, or no longer relays (then
 * the run is settled from its state). */
static int resume(struct container_io *c, struct job_result *res)
{
	struct job_run *run = c->run;
	int64_t after = run->job->has_output_offset ? run->job->output_offset : 0;
	char line[200];

	if (!str_copy(c->id, sizeof(c->id), run->job->container_id) || !docker_id_ok(c->id)) {
		c->id[0] = '\0';
		snprintf(res->error, sizeof(res->error), "the job's container id is not valid");
		return -1;
	}
	c->started = true;
	/* A container started with a relay directory is read from its
	 * socket; one started before (or whose socket is not the relay's)
	 * through an exec of the replay client. */
	if (direct_start(c, (uint64_t)after) == 0)
		c->direct = true;
	if (!c->direct && open_replay(c, (uint64_t)after)) {
		struct docker_state st;

		if (docker_inspect(&c->d, c->id, &st)) {
			snprintf(res->error, sizeof(res->error), "the worker running it stopped, and its container "
				 "is gone: %.150s", c->d.error);
			return -1;
		}
		snprintf(line, sizeof(line), "the worker running this job stopped, and its container (%s) no "
			 "longer relays: the output after byte %lld is lost", st.status, (long long)after);
		output_system(c->out, line);
		snprintf(res->error, sizeof(res->error), "the worker running it stopped; its output after "
			 "byte %lld could not be recovered", (long long)after);
		return -1;
	}
	log_info("job %lld: carrying on with container %.12s from byte %lld of its output",
		 (long long)run->job->id, c->id, (long long)after);
	snprintf(line, sizeof(line), "the worker running this job stopped; another carries on from byte %lld "
		 "of its output", (long long)after);
	output_system(c->out, line);
	return 0;
}

int container_note(struct container_io *io, const char *line)
{
	return output_system(io->out, line);
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Where an exec's output goes; its stderr is kept for a message. */
struct exec_sink {
	int out_fd;
	int64_t out_max, out_len;
	bool over;                   /* stdout passed out_max */
	bool failed;                 /* writing out_fd failed */
	char err[256];
	size_t err_len;
};

static int exec_frame(void *arg, enum docker_stream_kind stream, const char *data, size_t len)
{
	struct exec_sink *k = arg;

	if (stream == DOCKER_STDOUT) {
		if (k->out_len + (int64_t)len > k->out_max) {
			k->over = true;
			return 1;
		}
		k->out_len += (int64_t)len;
		if (k->out_fd >= 0 && write_all(k->out_fd, data, len)) {
			k->failed = true;
			return 1;
		}
	} else if (stream == DOCKER_STDERR || stream == DOCKER_SYSERR) {
		size_t room = sizeof(k->err) - 1 - k->err_len;

		if (len > room)
			len = room;
		memcpy(k->err + k->err_len, data, len);
		k->err_len += len;
		k->err[k->err_len] = '\0';
	}
	return 0;
}

/* The first line of what an exec said on stderr, printable ASCII only. */
static void exec_err_line(const struct exec_sink *k, char *dst, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < k->err_len && k->err[i] != '\n' && n + 1 < size; i++)
		dst[n++] = k->err[i] >= 0x20 && k->err[i] < 0x7f ? k->err[i] : '?';
	dst[n] = '\0';
}

int container_exec(struct container_io *io, const char *const *argv, int in_fd, int out_fd, int64_t out_max,
		   long timeout_ms, int64_t *out_len, int *exit_code, char *err, size_t errlen)
{
	struct docker_exec_spec spec = { .cmd = argv, .user = "1000:1000", .attach_stdin = in_fd >= 0 };
	struct exec_sink k = { .out_fd = out_fd, .out_max = out_max };
	struct docker_stream *s = NULL;
	struct docker_demux dm = { 0 };
	struct docker_exec_state st;
	int64_t end = mono_ms() + timeout_ms;
	char exec_id[80], line[160], *buf = io->buf;
	int rc = -1;

	*exit_code = -1;
	if (out_len)
		*out_len = 0;
	if (docker_exec_create(&io->d, io->id, &spec, exec_id, sizeof(exec_id)) ||
	    !(s = docker_exec_start(&io->d, exec_id, false))) {
		snprintf(err, errlen, "starting an exec in the container failed: %.180s", io->d.error);
		return -1;
	}
	if (in_fd >= 0) {
		for (;;) {
			ssize_t n = read(in_fd, buf, READ_BUF);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				snprintf(err, errlen, "reading what goes to the container failed: %s", strerror(errno));
				goto out;
			}
			if (n == 0)
				break;
			if (job_keep_lease(io->run)) {
				snprintf(err, errlen, "the job's lease was lost");
				goto out;
			}
			if (docker_stream_send(s, buf, (size_t)n, end - mono_ms() > 0 ? (long)(end - mono_ms()) : 1,
					       line, sizeof(line))) {
				snprintf(err, errlen, "sending to the container failed: %.150s", line);
				goto out;
			}
		}
		if (docker_stream_close_write(s)) {
			snprintf(err, errlen, "closing the exec's stdin failed");
			goto out;
		}
	}
	for (;;) {
		long n;

		if (mono_ms() >= end) {
			snprintf(err, errlen, "the exec did not finish in %ld s", timeout_ms / 1000);
			goto out;
		}
		if (job_keep_lease(io->run)) {
			snprintf(err, errlen, "the job's lease was lost");
			goto out;
		}
		n = docker_stream_read(s, buf, READ_BUF, READ_SLICE_MS, line, sizeof(line));
		if (n == DOCKER_STREAM_TIMEOUT)
			continue;
		if (n == DOCKER_STREAM_EOF)
			break;
		if (n < 0) {
			snprintf(err, errlen, "reading the exec's output failed: %.150s", line);
			goto out;
		}
		if (docker_demux_feed(&dm, buf, (size_t)n, exec_frame, &k) < 0) {
			snprintf(err, errlen, "the engine sent a malformed output frame");
			goto out;
		}
		if (k.over) {
			snprintf(err, errlen, "the exec printed more than %lld bytes", (long long)out_max);
			goto out;
		}
		if (k.failed) {
			snprintf(err, errlen, "storing the exec's output failed: %s", strerror(errno));
			goto out;
		}
	}
	/* The stream ended: the process did; its status may lag a moment. */
	for (int i = 0; i < 50; i++) {
		if (docker_exec_inspect(&io->d, exec_id, &st)) {
			snprintf(err, errlen, "reading the exec's status failed: %.150s", io->d.error);
			goto out;
		}
		if (!st.running)
			break;
		usleep(100 * 1000);
	}
	if (st.running) {
		snprintf(err, errlen, "the exec still runs after its output ended");
		goto out;
	}
	*exit_code = st.exit_code;
	if (out_len)
		*out_len = k.out_len;
	if (st.exit_code) {
		exec_err_line(&k, line, sizeof(line));
		snprintf(err, errlen, "%s", line[0] ? line : "it failed");
	}
	rc = 0;
out:
	docker_stream_free(s);
	return rc;
}

int container_output(struct container_io *io, const void *p, size_t len)
{
	return output_write(io->out, OUTPUT_STDOUT, p, len);
}

int container_send(struct container_io *io, const void *p, size_t len, char *err, size_t errlen)
{
	if (!io->tty) {
		snprintf(err, errlen, "the program has no TTY to write to");
		return -1;
	}
	return docker_stream_send(io->tty, p, len, 10000, err, errlen);
}

/* The labels and limits every job container gets. */
static void base_spec(struct docker_spec *spec, const char **labels, char *inst, size_t instlen, char *job_s,
		      char *user_s, struct job_run *run)
{
	static const char *const env[] = { "TINI_KILL_PROCESS_GROUP=1", NULL };
	static const char *const tmpfs[] = { SECRETS_DIR, SECRETS_TMPFS, NULL };

	(void)instlen;
	snprintf(job_s, 24, "%lld", (long long)run->job->id);
	snprintf(user_s, 24, "%lld", (long long)run->job->user_id);
	labels[0] = "anyon.instance"; labels[1] = inst;
	labels[2] = "anyon.job"; labels[3] = job_s;
	labels[4] = "anyon.user"; labels[5] = user_s;
	labels[6] = NULL;
	memset(spec, 0, sizeof(*spec));
	spec->image = g_config.agent_image;
	spec->env = env;
	spec->user = "1000:1000";
	spec->labels = labels;
	spec->stdin_once = true;
	spec->tmpfs = tmpfs;
	spec->memory = g_config.container_memory_mb << 20;
	spec->pids_limit = g_config.container_pids;
	spec->nano_cpus = g_config.container_millicpus * 1000000;
	spec->init = true;
	spec->network = g_config.container_network;
	spec->log_driver = "none";
}

/* A TTY plan (container.h): the container holds the program, which runs
 * in an exec with a TTY. Never adopted, never left running. */
static void container_run_tty(struct job_run *run, const struct container_plan *plan, struct job_result *res)
{
	struct container_io c = { .run = run, .sock = -1 };
	struct output_limits lim;
	struct docker_spec spec;
	struct docker_exec_spec xs = { .cmd = plan->program, .env = plan->env, .user = "1000:1000",
				       .workdir = plan->workdir, .tty = true, .attach_stdin = true };
	struct docker_exec_state xst = { .running = true, .exit_code = -1 };
	char err[256], inst[64], job_s[24], user_s[24], hold_s[24], exec_id[80];
	const char *labels[7], *argv[4];
	enum checkpoint cp = CP_CONTINUE;
	bool ended = false;
	int t = 0;
	int64_t limit = run->deadline_ms ? (run->deadline_ms - mono_ms()) / 1000 + 60 : 3600;

	res->exit_code = 1;
	output_limits_default(&lim);
	c.out = output_open(run->db, run->job->id, run->job->user_id, run->owner, plan->h->masks, &lim, err,
			    sizeof(err));
	c.buf = malloc(READ_BUF);
	if (!c.out || !c.buf) {
		snprintf(res->error, sizeof(res->error), "%.250s", c.out ? "out of memory" : err);
		goto out;
	}
	if (docker_init(&c.d, NULL)) {
		snprintf(res->error, sizeof(res->error), "no Docker engine: %.200s", c.d.error);
		goto out;
	}
	if (run->adopted) {
		/* Nothing relays a TTY: the run cannot be carried on. */
		if (str_copy(c.id, sizeof(c.id), run->job->container_id) && docker_id_ok(c.id))
			c.started = true;
		else
			c.id[0] = '\0';
		snprintf(res->error, sizeof(res->error), "the worker running it stopped; a TTY program cannot be "
			 "carried on");
		output_system(c.out, "the worker running this job stopped: its container is removed");
		goto settle;
	}
	if (plan->h->bundle || container_instance(inst, sizeof(inst))) {
		snprintf(res->error, sizeof(res->error), "%s", plan->h->bundle ? "a TTY program takes no secret "
			 "bundle" : "no instance id for the container's label");
		goto out;
	}
	base_spec(&spec, labels, inst, sizeof(inst), job_s, user_s, run);
	snprintf(hold_s, sizeof(hold_s), "%lld", (long long)(limit > 60 ? limit : 60));
	argv[0] = "--";
	argv[1] = "sleep";
	argv[2] = hold_s;
	argv[3] = NULL;
	spec.cmd = argv;
	spec.workdir = plan->workdir;
	if (launch(&c, &spec, plan->h, res, &cp))
		goto out;
	if (docker_exec_create(&c.d, c.id, &xs, exec_id, sizeof(exec_id)) ||
	    !(c.tty = docker_exec_start(&c.d, exec_id, true))) {
		snprintf(res->error, sizeof(res->error), "starting the program failed: %.200s", c.d.error);
		goto settle;
	}
	/* A terminal of a known size (the engine's default is 0 x 0): lines
	 * wrap at 80 columns, as in a plain terminal. Best effort. */
	if (docker_id_ok(exec_id)) {
		char path[160];

		snprintf(path, sizeof(path), "/exec/%s/resize?h=24&w=80", exec_id);
		if (docker_call(&c.d, "POST", path, NULL, NULL))
			log_debug("job %lld: resizing the TTY failed: %s", (long long)run->job->id, c.d.error);
	}
	for (;;) {
		long n;
		int rc;

		cp = worker_stopping() ? CP_SHUTDOWN : job_checkpoint(run);
		if (cp != CP_CONTINUE)
			break;
		n = docker_stream_read(c.tty, c.buf, READ_BUF, READ_SLICE_MS, err, sizeof(err));
		if (n == DOCKER_STREAM_EOF) {
			ended = true;
		} else if (n == DOCKER_STREAM_TIMEOUT) {
			if (output_tick(c.out)) {
				cp = CP_LOST;
				break;
			}
		} else if (n < 0) {
			snprintf(res->error, sizeof(res->error), "reading the program's output failed: %.180s", err);
			break;
		} else if (plan->tty_output ? plan->tty_output(&c, plan->arg, (unsigned char *)c.buf, (size_t)n)
					    : container_output(&c, c.buf, (size_t)n)) {
			if (output_lost(c.out))
				cp = CP_LOST;
			else if (!res->error[0])
				snprintf(res->error, sizeof(res->error), "storing the program's output failed");
			break;
		}
		if (ended) {
			for (int i = 0; i < 50 && xst.running; i++) {
				if (docker_exec_inspect(&c.d, exec_id, &xst))
					break;
				if (xst.running)
					usleep(100 * 1000);
			}
		}
		if (!plan->tick || (!ended && ++t % 2))
			rc = ended ? 1 : 0;
		else
			rc = plan->tick(&c, plan->arg, ended, err, sizeof(err));
		if (ended && rc == 0)
			rc = 1;   /* nothing more can come */
		if (rc < 0) {
			snprintf(res->error, sizeof(res->error), "%.250s", err);
			break;
		}
		if (rc > 0) {
			res->exit_code = ended && !xst.running ? xst.exit_code : 0;
			if (ended && xst.running)
				res->exit_code = 0;
			break;
		}
	}
	if (cp == CP_SHUTDOWN || cp == CP_DETACH) {
		cp = CP_SHUTDOWN;
		output_system(c.out, "the worker is stopping: the sign-in ends and its container is removed");
		snprintf(res->error, sizeof(res->error), "the worker stopped during the sign-in");
	} else if (cp == CP_CANCEL || cp == CP_TIMEOUT) {
		char line[96];

		snprintf(line, sizeof(line), "stopping the container (%s)", stop_reason(cp));
		output_system(c.out, line);
	}
settle:
	if (c.id[0]) {
		docker_kill(&c.d, c.id, "KILL");
		db_job_container_ended(run->db, run->job->id, run->owner, ended && !xst.running,
				       ended && !xst.running ? xst.exit_code : -1, false, now_s());
	}
out:
	docker_stream_free(c.tty);
	docker_stream_free(c.s);
	if (c.id[0]) {
		c.d.deadline_ms = 0;
		if (docker_remove(&c.d, c.id))
			log_warn("job %lld: removing container %.12s failed: %s (the reaper will retry)",
				 (long long)run->job->id, c.id, c.d.error);
		else
			log_info("job %lld: container %.12s removed", (long long)run->job->id, c.id);
	}
	/* A worker that stops hands nothing on: the job ends here. */
	res->stop = cp == CP_SHUTDOWN ? CP_CONTINUE : cp;
	if (cp == CP_SHUTDOWN)
		res->exit_code = 1;
	if (c.out && cp != CP_LOST && output_close(c.out))
		res->stop = CP_LOST;
	output_free(c.out);
	free(c.buf);
}

void container_run(struct job_run *run, const struct container_plan *plan, struct job_result *res)
{
	struct container_io c = { .run = run, .sock = -1 };
	struct output_limits lim;
	struct docker_spec spec;
	struct docker_state st;
	struct docker_mount *mounts = NULL;
	const char **argv = NULL;
	size_t nprog = 0;
	char err[256], inst[64], job_s[24], user_s[24], linger[16], peer[24], relay_dir[CONFIG_PATH_MAX + 64];
	const char *labels[7];
	enum checkpoint cp = CP_CONTINUE;
	bool leave = false, has_relay_dir = false;

	if (plan->tty) {
		container_run_tty(run, plan, res);
		return;
	}
	res->exit_code = 1;
	output_limits_default(&lim);
	c.out = output_open(run->db, run->job->id, run->job->user_id, run->owner, plan->h->masks, &lim, err,
			    sizeof(err));
	c.buf = malloc(READ_BUF);
	snprintf(linger, sizeof(linger), "%u", linger_s());
	snprintf(peer, sizeof(peer), "%u", (unsigned)geteuid());
	while (plan->program[nprog])
		nprog++;
	/* The relay writes its records to its socket only, which the worker
	 * reads from the host (the job's relay directory, mounted where the
	 * relay listens): the engine's stream carries none of the output. */
	if ((argv = calloc(nprog + 8, sizeof(*argv)))) {
		argv[0] = "--relay";
		argv[1] = "--linger";
		argv[2] = linger;
		argv[3] = "--relay-peer-uid";
		argv[4] = peer;
		argv[5] = "--relay-no-stdout";
		argv[6] = "--";
		memcpy(argv + 7, plan->program, nprog * sizeof(*argv));
	}
	mounts = calloc(plan->n_mounts + 1, sizeof(*mounts));
	if (!c.out || !c.buf || !argv || !mounts) {
		snprintf(res->error, sizeof(res->error), "%.250s", c.out ? "out of memory" : err);
		goto out;
	}
	c.demux.f.out = c.out;
	c.demux.f.tap = plan->on_stdout;
	c.demux.f.tap_arg = plan->arg;
	if (docker_init(&c.d, NULL)) {
		snprintf(res->error, sizeof(res->error), "no Docker engine: %.200s", c.d.error);
		goto out;
	}
	if (run->adopted) {
		if (resume(&c, res))
			goto settle;
	} else {
		if (container_instance(inst, sizeof(inst))) {
			snprintf(res->error, sizeof(res->error), "no instance id for the container's label");
			goto out;
		}
		if (plan->n_mounts)
			memcpy(mounts, plan->mounts, plan->n_mounts * sizeof(*mounts));
		base_spec(&spec, labels, inst, sizeof(inst), job_s, user_s, run);
		spec.cmd = argv;
		spec.mounts = mounts;
		spec.n_mounts = plan->n_mounts;
		spec.workdir = plan->workdir;
		if (config_fault("relay_dir"))
			snprintf(err, sizeof(err), "test fault");
		else if (relay_dir_create(g_config.data_dir, run->job->id, relay_dir, sizeof(relay_dir), err,
					  sizeof(err)) == 0) {
			has_relay_dir = true;
			mounts[spec.n_mounts++] = (struct docker_mount){ relay_dir, RELAY_MOUNT, false };
		}
		if (!has_relay_dir) {
			/* A worker that cannot hand a directory to uid 1000 (not
			 * root, no CAP_CHOWN) reads the records on the engine's
			 * stream, as before the relay's directory. */
			log_warn("job %lld: the relay's directory cannot be made (%s): its output goes through the "
				 "engine, slower (the worker needs root or CAP_CHOWN)", (long long)run->job->id, err);
			argv[3] = "--";
			memmove(argv + 4, argv + 7, (nprog + 1) * sizeof(*argv));
		}
		if (launch(&c, &spec, plan->h, res, &cp))
			goto out;
		c.direct = has_relay_dir;
		if (plan->started && plan->started(&c, plan->arg, err, sizeof(err))) {
			snprintf(res->error, sizeof(res->error), "%.250s", err);
			stop_container(&c, (long)g_config.container_stop_grace_s * 1000, "it could not be prepared");
			if (c.lost) {
				cp = CP_LOST;
				leave = true;
			}
			goto out;
		}
	}
	for (int reconnects = 0;;) {
		if (over(&c)) {
			if (reconnects < 3 && reconnect(&c)) {
				reconnects++;
				continue;
			}
			break;
		}
		/* A worker asked to stop leaves a running program to the next
		 * one at once (no grace to wait out: nothing is lost). */
		if (worker_stopping()) {
			cp = CP_DETACH;
			break;
		}
		cp = job_checkpoint(run);
		if (cp != CP_CONTINUE)
			break;
		if (pump(&c, READ_SLICE_MS, err, sizeof(err))) {
			if (c.demux.f.failed || output_lost(c.out))
				cp = CP_LOST;
			else
				snprintf(res->error, sizeof(res->error), "reading the container's output failed: %.180s",
					 err);
			break;
		}
	}
	if (cp == CP_DETACH || cp == CP_SHUTDOWN) {
		/* What is stored ends at a clean point, committed with it: the
		 * next worker asks the relay from there. */
		cp = CP_DETACH;
		leave = true;
		if (output_detach(c.out))
			cp = CP_LOST;
		goto out;
	}
	/* The output can end before the program does (it closed stdout and
	 * stderr, or the relay never started): wait for its exit, still
	 * noticing cancel and the limit. */
	while (cp == CP_CONTINUE && c.eof && !c.demux.f.ended && docker_inspect(&c.d, c.id, &st) == 0 &&
	       st.running)
		cp = job_sleep(run, READ_SLICE_MS);
	if (cp == CP_LOST) {
		/* Another worker owns the job (it adopted the run, or the
		 * database is gone): write nothing more, and leave a started
		 * container to it (or to the reaper once the job has ended). */
		leave = c.started;
		if (!leave)
			docker_kill(&c.d, c.id, "KILL");
		goto out;
	}
	if (cp != CP_CONTINUE || !over(&c))
		stop_container(&c, (long)g_config.container_stop_grace_s * 1000,
			       cp != CP_CONTINUE ? stop_reason(cp) : "its output failed");
	if (c.lost) {
		cp = CP_LOST;
		leave = c.started;
		goto out;
	}
settle:
	if (c.id[0]) {
		int code = -1;
		bool has = false, oom = false;

		if (c.demux.f.ended) {
			/* The program's own status, from the relay; then the
			 * wrapper's linger ends (TERM) so the container's state
			 * (the OOM flag) is final. */
			code = c.demux.f.sig ? 128 + c.demux.f.sig : c.demux.f.code;
			has = true;
			if (plan->ended && !c.lost)
				plan->ended(&c, plan->arg, code);
			docker_kill(&c.d, c.id, "TERM");
			docker_wait(&c.d, c.id, 2000, &(int){ 0 });
		} else {
			has = docker_wait(&c.d, c.id, AFTER_KILL_MS, &code) == 0;
		}
		if (docker_inspect(&c.d, c.id, &st) == 0) {
			oom = st.oom_killed;
			if (!has && !st.running) {
				code = st.exit_code;
				has = true;
			}
		}
		db_job_container_ended(run->db, run->job->id, run->owner, has, code, oom, now_s());
		if (oom)
			output_system(c.out, "the container ran out of memory (ANYON_CONTAINER_MEMORY_MB) and was killed");
		if (cp == CP_CONTINUE && !res->error[0]) {
			res->exit_code = has ? code : 1;
			if (!has)
				snprintf(res->error, sizeof(res->error), "the container's exit status is unknown: %.180s",
					 c.d.error);
			else if (oom)
				snprintf(res->error, sizeof(res->error), "out of memory (exit status %d)", code);
			else if (code)
				snprintf(res->error, sizeof(res->error), "exited with status %d", code);
		} else if (has) {
			res->exit_code = code;
		}
	}
out:
	if (c.id[0] && !leave) {
		/* Every ending removes the container, on a fresh time limit. */
		c.d.deadline_ms = 0;
		if (docker_remove(&c.d, c.id))
			log_warn("job %lld: removing container %.12s failed: %s (the reaper will retry)",
				 (long long)run->job->id, c.id, c.d.error);
		else
			log_info("job %lld: container %.12s removed", (long long)run->job->id, c.id);
	}
	/* The relay's directory goes with the container (an adopted run's
	 * too); one left to another worker stays. */
	if ((c.id[0] || has_relay_dir) && !leave && relay_dir_remove(g_config.data_dir, run->job->id))
		log_warn("job %lld: removing its relay directory failed (the sweep will retry once the job is "
			 "purged)", (long long)run->job->id);
	if (c.demux.f.replay_err)
		log_warn("job %lld: the replay client wrote %zu bytes on stderr", (long long)run->job->id,
			 c.demux.f.replay_err);
	if (c.sock >= 0)
		close(c.sock);
	docker_stream_free(c.s);
	res->stop = cp;
	if (c.out && cp != CP_LOST && cp != CP_DETACH && output_close(c.out))
		res->stop = CP_LOST;
	output_free(c.out);
	free(c.buf);
	free(argv);
	free(mounts);
}


void job_exec_container(struct job_run *run, struct job_result *res)
{
	struct handover h = { 0 };
	json_object *args = NULL, *cmd, *secrets = NULL, *wsv = NULL;
	struct container_plan plan = { 0 };
	struct docker_mount mount;
	const char **prog = NULL;
	char wspath[CONFIG_PATH_MAX + 64], err[256];
	bool ws = false;

	res->exit_code = 1;
	if (json_parse(run->job->args, strlen(run->job->args), &args, err, sizeof(err)) ||
	    jobkind_validate("container", args, err, sizeof(err))) {
		res->exit_code = 2;
		snprintf(res->error, sizeof(res->error), "bad arguments: %.200s", err);
		json_object_put(args);
		return;
	}
	json_object_object_get_ex(args, "command", &cmd);
	json_object_object_get_ex(args, "secrets", &secrets);
	ws = json_object_object_get_ex(args, "workspace", &wsv) && json_object_get_boolean(wsv);
	if (handover_build(run, secrets, &h, err, sizeof(err))) {
		snprintf(res->error, sizeof(res->error), "%.250s", err);
		goto out;
	}
	if (!(prog = calloc(json_object_array_length(cmd) + 1, sizeof(*prog)))) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(cmd); i++)
		prog[i] = json_object_get_string(json_object_array_get_idx(cmd, i));
	/* An adopted run's workspace is the one its container has. */
	if (ws && !run->adopted) {
		if (workspace_create(g_config.data_dir, run->job->id, wspath, sizeof(wspath), err, sizeof(err))) {
			ws = false;   /* nothing of ours to remove */
			snprintf(res->error, sizeof(res->error), "%.250s", err);
			goto out;
		}
		mount.source = wspath;
		mount.target = "/workspace";
		mount.read_only = false;
		plan.mounts = &mount;
		plan.n_mounts = 1;
		plan.workdir = "/workspace";
	}
	plan.program = prog;
	plan.h = &h;
	container_run(run, &plan, res);
	if (ws && res->stop != CP_DETACH && res->stop != CP_LOST) {
		/* ANYON_WORKSPACE_KEEP: never, failed (failed or cancelled: kept
		 * for inspection), always. A kept one goes with its job's row
		 * (container_workspace_sweep). */
		bool ok = res->stop == CP_CONTINUE && !res->error[0] && res->exit_code == 0;
		bool keep = g_config.workspace_keep == WORKSPACE_KEEP_ALWAYS ||
			    (g_config.workspace_keep == WORKSPACE_KEEP_FAILED && !ok);

		if (keep)
			log_info("job %lld: workspace kept (ANYON_WORKSPACE_KEEP)", (long long)run->job->id);
		else if (workspace_remove(g_config.data_dir, run->job->id))
			log_warn("job %lld: removing its workspace failed (the sweep will retry once the job is "
				 "purged)", (long long)run->job->id);
	}
out:
	free(prog);
	handover_release(&h);
	json_object_put(args);
}

/* ---- kept workspaces ---- */

struct sweep {
	struct db *db;
	bool failed;
};

static bool job_gone(int64_t id, void *arg)
{
	struct sweep *sw = arg;
	struct db_job job;
	int rc;

	if (sw->failed)
		return false;
	rc = db_job_get(sw->db, id, 0, &job);
	if (rc == DB_OK)
		db_job_release(&job);
	if (rc == DB_ERROR)
		sw->failed = true;   /* no answer: remove nothing this pass */
	return rc == DB_NOTFOUND;
}

int container_workspace_sweep(struct db *db, int max)
{
	struct sweep sw = { .db = db };
	int ws = workspace_sweep(g_config.data_dir, job_gone, &sw, max), relays;

	/* Relay directories a worker that died left behind, likewise. */
	relays = relay_dir_sweep(g_config.data_dir, job_gone, &sw, max);
	return ws < 0 || relays < 0 ? -1 : ws + relays;
}

/* ---- the image's CLI ---- */

struct probe_out {
	char buf[512];
	size_t len;
};

static int probe_frame(void *arg, enum docker_stream_kind stream, const char *data, size_t len)
{
	struct probe_out *o = arg;

	if (stream != DOCKER_STDOUT && stream != DOCKER_STDERR)
		return 0;
	if (len > sizeof(o->buf) - 1 - o->len)
		len = sizeof(o->buf) - 1 - o->len;
	memcpy(o->buf + o->len, data, len);
	o->len += len;
	o->buf[o->len] = '\0';
	return 0;
}

int container_claude_version(char *version, size_t vlen, char *err, size_t errlen)
{
	static const char *const cmd[] = { "--", "claude", "--version", NULL };
	static const char *const env[] = { "TINI_KILL_PROCESS_GROUP=1", NULL };
	struct probe_out o = { .len = 0 };
	struct docker_demux dm = { 0 };
	struct docker_stream *s = NULL;
	struct docker_spec spec;
	struct docker d;
	char inst[64], id[72] = "", rerr[128], *buf = NULL;
	const char *labels[3];
	int64_t end = mono_ms() + 30000;
	int code = -1, rc = -1;
	unsigned a, b, c;
	int n = 0;

	version[0] = '\0';
	if (container_instance(inst, sizeof(inst)) || docker_init(&d, NULL) || !(buf = malloc(4096))) {
		snprintf(err, errlen, "no engine to ask");
		free(buf);
		return -1;
	}
	/* Not anyon.instance: no job owns it, and the reaper and the tests
	 * count those. It removes itself; one a killed worker left has exited
	 * and goes with the next probe of this instance. */
	labels[0] = "anyon.probe"; labels[1] = inst;
	labels[2] = NULL;
	{
		struct docker_listed left[8];
		char label[96];
		size_t nl = 0;

		snprintf(label, sizeof(label), "anyon.probe=%s", inst);
		if (docker_list(&d, label, left, 8, &nl) == 0)
			for (size_t i = 0; i < nl && i < 8; i++)
				if (strcmp(left[i].state, "running"))
					docker_remove(&d, left[i].id);
	}
	memset(&spec, 0, sizeof(spec));
	spec.image = g_config.agent_image;
	spec.cmd = cmd;
	spec.env = env;
	spec.user = "1000:1000";
	spec.labels = labels;
	/* No stdin at all (the wrapper reads /dev/null: no secrets): nothing
	 * waits on a half-close reaching the engine. Once in CI the probe
	 * with an attached stdin never ended (35 s, machine loaded). */
	spec.stdin_once = false;
	spec.memory = g_config.container_memory_mb << 20;
	spec.pids_limit = g_config.container_pids;
	spec.init = true;
	spec.network = "none";
	spec.log_driver = "none";
	if (docker_create(&d, &spec, id, sizeof(id))) {
		id[0] = '\0';
		snprintf(err, errlen, "creating a container of %.100s failed: %.150s", g_config.agent_image, d.error);
		goto out;
	}
	if (!(s = docker_attach(&d, id)) || docker_stream_close_write(s) || docker_start(&d, id)) {
		snprintf(err, errlen, "starting it failed: %.200s", d.error);
		goto out;
	}
	while (mono_ms() < end) {
		long got = docker_stream_read(s, buf, 4096, 250, rerr, sizeof(rerr));

		if (got == DOCKER_STREAM_EOF)
			break;
		if (got == DOCKER_STREAM_TIMEOUT)
			continue;
		if (got < 0 || docker_demux_feed(&dm, buf, (size_t)got, probe_frame, &o) < 0) {
			snprintf(err, errlen, "reading its output failed");
			goto out;
		}
	}
	if (docker_wait(&d, id, 5000, &code)) {
		snprintf(err, errlen, "`claude --version` did not end");
		goto out;
	}
	if (code || sscanf(o.buf, "%u.%u.%u (Claude Code)%n", &a, &b, &c, &n) != 3 || !n ||
	    (o.buf[n] && strcmp(o.buf + n, "\n"))) {
		for (size_t i = 0; i < o.len; i++)
			if ((unsigned char)o.buf[i] < 0x20 || (unsigned char)o.buf[i] > 0x7e)
				o.buf[i] = ' ';
		snprintf(err, errlen, "`claude --version` %s (exit %d): %.120s", code == 127 ? "is missing" :
			 "is broken", code, o.buf);
		goto out;
	}
	snprintf(version, vlen, "%u.%u.%u", a, b, c);
	rc = 0;
out:
	docker_stream_free(s);
	if (id[0]) {
		d.deadline_ms = 0;
		docker_remove(&d, id);
	}
	free(buf);
	return rc;
}

/* ---- the orphan reaper ---- */

int container_exists(const char *id)
{
	struct docker d;
	struct docker_state st;

	if (docker_init(&d, NULL))
		return -1;
	d.timeout_ms = 5000;
	if (docker_inspect(&d, id, &st) == 0)
		return 1;
	return d.status == 404 ? 0 : -1;
}

/* The job id in a container's anyon.job label: 0 when it has none (or
 * not a number), -1 when the container could not be read (gone meanwhile,
 * say, or the engine did not answer: then it is left for the next pass). */
static int64_t label_job(struct docker *d, const char *id)
{
	json_object *doc = NULL, *cfg, *labels, *v;
	char path[128];
	int64_t job = 0;

	snprintf(path, sizeof(path), "/containers/%s/json", id);
	if (docker_call(d, "GET", path, NULL, &doc) || !doc) {
		json_object_put(doc);
		return -1;
	}
	if (!json_object_object_get_ex(doc, "Config", &cfg) ||
	    !json_object_object_get_ex(cfg, "Labels", &labels) ||
	    !json_object_object_get_ex(labels, "anyon.job", &v) || !json_object_is_type(v, json_type_string) ||
	    parse_i64(json_object_get_string(v), 1, INT64_MAX, &job))
		job = 0;
	json_object_put(doc);
	return job;
}

int container_reap(struct db *db, const char *owner, int *removed)
{
	struct docker_listed *list;
	struct docker d;
	char inst[64], label[96];
	size_t n = 0;

	*removed = 0;
	if (container_instance(inst, sizeof(inst)) || docker_init(&d, NULL))
		return -1;
	d.timeout_ms = 5000;
	snprintf(label, sizeof(label), "anyon.instance=%s", inst);
	if (!(list = calloc(REAP_MAX, sizeof(*list))))
		return -1;
	if (docker_list(&d, label, list, REAP_MAX, &n)) {
		log_debug("reaper: listing containers failed: %s", d.error);
		free(list);
		return -1;
	}
	for (size_t i = 0; i < n && i < REAP_MAX; i++) {
		int64_t jid = label_job(&d, list[i].id), now = now_s();
		struct db_job job;
		bool live = false, lost = false, adoptable = false;
		int rc = jid > 0 ? db_job_get(db, jid, 0, &job) : DB_NOTFOUND;

		if (jid < 0 || rc == DB_ERROR)
			continue;
		if (rc == DB_OK) {
			live = job.state == JOB_RUNNING && job.lease_expires_at > now;
			lost = job.state == JOB_RUNNING && !live;
			adoptable = job.container_started_at > 0 && !job.container_ended_at &&
				    job.lease_expires_at > now - g_config.adopt_window_s;
			db_job_release(&job);
		}
		if (live)
			continue;
		/* A worker may still carry on with it (worker/main.c adopts
		 * it): not an orphan until ANYON_ADOPT_WINDOW_S has passed. */
		if (lost && adoptable)
			continue;
		/* Settle the job first: while its lease is ours nobody else
		 * writes it, and the container goes whatever happens. */
		if (lost && db_job_take_lost(db, jid, owner, now, g_config.lease_s) == DB_OK) {
			static const char line[] = "the worker running this job stopped; its container was "
						   "found and removed, and the job fails (a container run is "
						   "never repeated)\n";

			db_job_append(db, jid, owner, "system", line, sizeof(line) - 1, now, NULL);
			jobs_finish(db, jid, owner, JOB_FAILED, false, 0,
				      "the worker running it stopped; its container was removed", now);
		}
		if (docker_remove(&d, list[i].id) == 0) {
			if (d.status == 404)
				continue;   /* its job's worker removed it meanwhile */
			(*removed)++;
			log_info("reaper: removed container %.12s of %s job %lld", list[i].id,
				 rc == DB_OK ? "finished or lost" : "unknown", (long long)jid);
		} else {
			log_warn("reaper: removing container %.12s failed: %s", list[i].id, d.error);
		}
	}
	free(list);
	return 0;
}
