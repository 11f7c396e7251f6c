/* job_claude_login.c - the claude_login job (issue 11): the unmodified
 * Claude CLI's sign-in (`claude setup-token`, or `claude` and its login
 * menu) in a container of its own, under a TTY (container.h, plan.tty),
 * its config directory (CLAUDE_CONFIG_DIR) on the secrets tmpfs.
 *
 * Input: what the user types (POST /api/auth/claude/login/{id}/input)
 * waits sealed in claude_login_inputs; each turn the job opens the oldest,
 * registers it with the redactor (the TTY echoes it), writes it to the
 * exec's stdin followed by Enter, wipes it and deletes its row.
 * Output: the raw TTY stream goes through the redactor
 * (services/claude_login.h: every sk-ant- token, joined across wrapped
 * lines, and every typed text become [masked] before the writer sees
 * them), then the output writer (which masks token shapes again).
 * Success: setup-token's token (from the redactor) or the credentials
 * file (interactive: `cat` in an exec, into a memfd) is stored as the
 * user's claude_credential; claude_auth records the method; an audit
 * entry and the event claude.updated; the container goes. A failure
 * (bad code, the CLI's exit, cancel, ANYON_CLAUDE_LOGIN_TIMEOUT_S)
 * records last_error and removes the container too. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/audit.h"
#include "services/claude_login.h"
#include "services/jobkinds.h"
#include "services/secrets.h"
#include "worker/container.h"
#include "worker/worker.h"

#define CONFIG_DIR "/run/anyon/secrets"
#define CREDENTIALS CONFIG_DIR "/.credentials.json"
#define CREDENTIALS_MAX (64 * 1024)
#define TAIL_MAX 4096
#define SETUP_TOKEN_VALID_S (365 * 86400LL)

struct login {
	struct job_run *run;
	bool interactive;
	struct claude_redactor rd;
	struct container_io *io;
	char *token;                 /* owned, wiped: the first token printed */
	size_t token_len;
	char tail[TAIL_MAX + 1];     /* the end of the stored (redacted) output */
	size_t tail_len;
	bool stored;
	bool failed_out;             /* storing output failed */
	int cred_tries;              /* reads of the credentials file that failed */
	int64_t deadline_ms;
	long timeout_s;
};

static int out_fn(void *arg, const void *p, size_t len)
{
	struct login *lg = arg;

	if (len >= TAIL_MAX) {
		memcpy(lg->tail, (const char *)p + len - TAIL_MAX, TAIL_MAX);
		lg->tail_len = TAIL_MAX;
	} else {
		if (lg->tail_len + len > TAIL_MAX) {
			size_t drop = lg->tail_len + len - TAIL_MAX;

			memmove(lg->tail, lg->tail + drop, lg->tail_len - drop);
			lg->tail_len -= drop;
		}
		memcpy(lg->tail + lg->tail_len, p, len);
		lg->tail_len += len;
	}
	lg->tail[lg->tail_len] = '\0';
	if (container_output(lg->io, p, len)) {
		lg->failed_out = true;
		return -1;
	}
	return 0;
}

static void token_fn(void *arg, const char *token, size_t len)
{
	struct login *lg = arg;

	if (lg->token || len < 20)
		return;
	if ((lg->token = malloc(len + 1))) {
		memcpy(lg->token, token, len + 1);
		lg->token_len = len;
	}
}

static int login_output(struct container_io *io, void *arg, const unsigned char *p, size_t len)
{
	struct login *lg = arg;

	lg->io = io;
	return claude_redact_feed(&lg->rd, p, len, false, out_fn, token_fn, lg);
}

/* Stores the credential for the user, with its trail. 0 or -1 (err). */
static int store(struct login *lg, const void *value, size_t len, int64_t expires_at, char *err, size_t errlen)
{
	struct job_run *run = lg->run;
	struct secret_store st = { .db = run->db, .kr = run->kr };
	const char *method = lg->interactive ? "interactive" : "setup-token";
	int64_t now = now_s();

	if (secret_put(&st, run->job->user_id, "claude_credential", value, len, expires_at, 0) != SECRET_OK) {
		snprintf(err, errlen, "storing the credential failed");
		return -1;
	}
	lg->stored = true;
	if (db_claude_auth_put(run->db, run->job->user_id, method, NULL, now))
		log_warn("job %lld: recording the sign-in method failed", (long long)run->job->id);
	audit_event(run->db, run->job->user_id, 0, "claude.login", "ok", "method=%s login=%lld", method,
		    (long long)run->job->id);
	if (db_begin_write(run->db) == DB_OK) {
		if (db_event_add(run->db, run->job->user_id, "claude.updated", run->job->id, 0, now, NULL) == DB_OK)
			db_commit(run->db);
		else
			db_rollback(run->db);
	}
	container_note(lg->io, "the credential is stored; the sign-in container is removed");
	return 0;
}

/* Interactive: the CLI wrote its credentials file; read it out. */
static int read_credentials(struct login *lg, char *err, size_t errlen)
{
	static const char *const cat[] = { "cat", CREDENTIALS, NULL };
	json_object *doc = NULL, *oauth, *at;
	char msg[200], *buf = NULL;
	int64_t len = 0;
	int code, fd = memfd_create("anyon-credential", MFD_CLOEXEC), rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "no memory file for the credential: %s", strerror(errno));
		return -1;
	}
	if (container_exec(lg->io, cat, -1, fd, CREDENTIALS_MAX, 10000, &len, &code, msg, sizeof(msg)) || code ||
	    len <= 0) {
		snprintf(err, errlen, "reading the CLI's credentials file failed: %.150s", code ? msg : "empty");
		goto out;
	}
	if (!(buf = malloc((size_t)len + 1)) || pread(fd, buf, (size_t)len, 0) != len) {
		snprintf(err, errlen, "reading the credential back failed");
		goto out;
	}
	buf[len] = '\0';
	if (json_parse(buf, (size_t)len, &doc, msg, sizeof(msg)) ||
	    !json_object_object_get_ex(doc, "claudeAiOauth", &oauth) ||
	    !json_object_object_get_ex(oauth, "accessToken", &at) || !json_object_is_type(at, json_type_string) ||
	    json_object_get_string_len(at) < 20) {
		snprintf(err, errlen, "the CLI's credentials file is not what it should be");
		goto out;
	}
	rc = store(lg, buf, (size_t)len, 0, err, errlen);
out:
	json_object_put(doc);
	if (buf) {
		OPENSSL_cleanse(buf, (size_t)len);
		free(buf);
	}
	close(fd);
	return rc;
}

/* Hands the oldest waiting input to the CLI. 0 (nothing or done), -1 (err). */
static int deliver(struct login *lg, char *err, size_t errlen)
{
	struct job_run *run = lg->run;
	struct db_login_input in;
	unsigned char *pt;
	size_t n;
	int rc = db_login_input_next(run->db, run->job->id, &in);

	if (rc == DB_NOTFOUND)
		return 0;
	if (rc != DB_OK) {
		snprintf(err, errlen, "reading the typed input failed");
		return -1;
	}
	rc = -1;
	if (!(pt = malloc(in.ct_len + 1))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (claude_input_open(run->kr, run->job->user_id, run->job->id, in.key_id, in.nonce, in.ciphertext,
			      in.ct_len, in.tag, pt)) {
		snprintf(err, errlen, "a typed input does not open (keyring changed?)");
		goto out;
	}
	n = in.ct_len;
	while (n && (pt[n - 1] == '\n' || pt[n - 1] == '\r'))
		n--;
	/* The TTY echoes it: masked from here on. */
	if (claude_redact_add(&lg->rd, pt, n)) {
		snprintf(err, errlen, "too many inputs to mask");
		goto out;
	}
	pt[n] = '\r';   /* Enter */
	if (container_send(lg->io, pt, n + 1, err, errlen))
		goto out;
	rc = db_login_input_delete(run->db, in.id) ? -1 : 0;
	if (rc)
		snprintf(err, errlen, "removing a delivered input failed");
out:
	if (pt) {
		OPENSSL_cleanse(pt, in.ct_len + 1);
		free(pt);
	}
	db_login_input_release(&in);
	return rc;
}

static int login_tick(struct container_io *io, void *arg, bool ended, char *err, size_t errlen)
{
	struct login *lg = arg;

	lg->io = io;
	if (ended && claude_redact_feed(&lg->rd, NULL, 0, true, out_fn, token_fn, lg))
		return -1;
	if (lg->failed_out) {
		snprintf(err, errlen, "storing the output failed");
		return -1;
	}
	if (!lg->interactive && lg->token && strstr(lg->tail, "created successfully"))
		return store(lg, lg->token, lg->token_len, now_s() + SETUP_TOKEN_VALID_S, err, errlen) ? -1 : 1;
	if (lg->interactive && strstr(lg->tail, "Login successful")) {
		/* The CLI may say so a moment before its file is there: a few
		 * turns (about 2 s) before giving up. */
		if (read_credentials(lg, err, errlen) == 0)
			return 1;
		return lg->stored || ++lg->cred_tries >= 4 || ended ? -1 : 0;
	}
	if (ended) {
		snprintf(err, errlen, "the CLI ended without a credential");
		return -1;
	}
	if (mono_ms() > lg->deadline_ms) {
		snprintf(err, errlen, "the sign-in timed out after %ld s", lg->timeout_s);
		container_note(io, "the sign-in timed out (ANYON_CLAUDE_LOGIN_TIMEOUT_S): its container is removed");
		return -1;
	}
	return deliver(lg, err, errlen);
}

/* ANYON_CLAUDE_LOGIN_TIMEOUT_S: 10 to 3600, default 600. */
static long login_timeout_s(void)
{
	const char *v = getenv("ANYON_CLAUDE_LOGIN_TIMEOUT_S");
	int64_t n;

	if (v && !parse_i64(v, 5, CLAUDE_LOGIN_TIME_LIMIT_S, &n))
		return (long)n;
	return 600;
}

void job_exec_claude_login(struct job_run *run, struct job_result *res)
{
	static const char *const setup_token[] = { "claude", "setup-token", NULL };
	static const char *const interactive[] = { "claude", NULL };
	static const char *const env[] = { "CLAUDE_CONFIG_DIR=" CONFIG_DIR, "TERM=xterm-256color",
					   "DISABLE_AUTOUPDATER=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
					   NULL };
	struct container_plan plan = { 0 };
	struct handover h;
	struct login lg = { .run = run };
	json_object *args = NULL;
	const char *method;
	char err[256];

	res->exit_code = 1;
	if (json_parse(run->job->args, strlen(run->job->args), &args, err, sizeof(err)) ||
	    jobkind_validate("claude_login", args, err, sizeof(err)) || json_get_str(args, "method", &method)) {
		res->exit_code = 2;
		snprintf(res->error, sizeof(res->error), "bad arguments: %.200s", err);
		json_object_put(args);
		return;
	}
	lg.interactive = strcmp(method, "interactive") == 0;
	lg.timeout_s = login_timeout_s();
	lg.deadline_ms = mono_ms() + lg.timeout_s * 1000;
	claude_redact_init(&lg.rd);
	if (handover_init(&h)) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	plan.tty = true;
	plan.program = lg.interactive ? interactive : setup_token;
	plan.env = env;
	plan.h = &h;
	plan.tty_output = login_output;
	plan.tick = login_tick;
	plan.arg = &lg;
	container_run(run, &plan, res);
	if (lg.stored && res->stop == CP_CONTINUE) {
		res->exit_code = 0;
		res->error[0] = '\0';
	} else if (!lg.stored) {
		if (!res->error[0])
			snprintf(res->error, sizeof(res->error), "%s", res->stop == CP_CANCEL ? "cancelled" :
				 res->stop == CP_TIMEOUT ? "the sign-in timed out" : "the sign-in failed");
		if (res->exit_code == 0)
			res->exit_code = 1;
		if (res->stop != CP_LOST) {
			db_claude_auth_put(run->db, run->job->user_id, "", res->error, now_s());
			audit_event(run->db, run->job->user_id, 0, "claude.login", "error", "login=%lld",
				    (long long)run->job->id);
			if (db_begin_write(run->db) == DB_OK) {
				if (db_event_add(run->db, run->job->user_id, "claude.updated", run->job->id, 0, now_s(),
						 NULL) == DB_OK)
					db_commit(run->db);
				else
					db_rollback(run->db);
			}
		}
	}
	db_login_input_drop(run->db, run->job->id);
out:
	if (lg.token) {
		OPENSSL_cleanse(lg.token, lg.token_len);
		free(lg.token);
	}
	OPENSSL_cleanse(lg.tail, sizeof(lg.tail));
	claude_redact_release(&lg.rd);
	handover_release(&h);
	json_object_put(args);
}
