/* job_attempt.c - the attempt job: one run of an executor on a task, in
 * its own container, with the repository brought in and the work brought
 * back as git bundles (services/attempts.h, container/README.md).
 *
 * The first run of an attempt:
 *   1. syncs the project's mirror on this host (services/mirror.h; the
 *      GitHub token goes to git through a credential file, never into the
 *      container) and finds the base branch's commit;
 *   2. makes the attempt's workspace (base/workspace.h: repo, home, xfer)
 *      and a bundle of the base branch beside it;
 *   3. starts `attempt-run --first` under anyon-entry's relay with the
 *      prompt, the setup script and the executor's credential in the
 *      secret bundle (the credential masked in the output);
 *   4. streams the bundle into the container with an exec
 *      (`cat > /run/anyon/xfer/in.bundle`) and opens the runner's FIFO;
 *   5. reads the output like any container job, Claude's stream-json
 *      watched for the session id and an authentication failure;
 *   6. when the program ended, reads the runner's outcome and its bundle of
 *      the attempt branch with `cat` in execs, imports that bundle into
 *      the mirror (verified, fsck'd, under refs/anyon/attempts/<id> only)
 *      and stores the diff against the base commit.
 * A follow-up run does the same in the kept workspace without 1, 2 and 4,
 * resuming Claude's session. The host never runs git in the workspace. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "base/workspace.h"
#include "services/attempts.h"
#include "services/conversation.h"
#include "services/github_pulls.h"
#include "services/github_token.h"
#include "services/jobkinds.h"
#include "services/mirror.h"
#include "services/secrets.h"
#include "worker/container.h"
#include "worker/worker.h"

#define RUNNER_PATH "/usr/local/lib/anyon/attempt-run"
#define XFER "/run/anyon/xfer"
#define OUTCOME_MAX 512
#define EXEC_SHORT_MS 30000
#define EXEC_BUNDLE_MS (10 * 60 * 1000)
/* argv of an executor, from its row: at most this many words. */
#define EXECUTOR_ARGV_MAX 48

/* One run of an attempt. */
struct att {
	struct job_run *run;
	struct attempt_run_ctx ctx;       /* owned */
	char root[CONFIG_PATH_MAX + 64];  /* workspaces/attempt-<id> */
	char in_bundle[CONFIG_PATH_MAX + 96], out_bundle[CONFIG_PATH_MAX + 96];
	char mirror[CONFIG_PATH_MAX + 64];
	bool first;                       /* the attempt's first run: clone */
	bool adopted;
	struct conv_parser *conv;         /* claude-stream-json: session and auth failure */
	/* What the runner said at the end (its outcome file). */
	bool have_outcome;
	char phase[16];
	int code;
	bool bundle;
	bool have_bundle;                 /* out_bundle holds what it sent */
	char back_err[200];               /* bringing the work back failed */
};

/* The executor's argv from its row: command, then (on a follow-up with a
 * session) its resume words with {session} replaced. Words are borrowed
 * from the parsed JSON (*doc, *rdoc: owned by the caller) or from the
 * context. NULL with err. */
static const char **executor_argv(struct att *a, json_object **doc, json_object **rdoc, char *err,
				  size_t errlen)
{
	const char **v;
	size_t n = 0, cap = EXECUTOR_ARGV_MAX + 16;
	json_object *arrs[2];
	bool resume = a->ctx.seq > 1 && a->ctx.ex.resume && a->ctx.session_id[0];

	if (json_parse(a->ctx.ex.command, strlen(a->ctx.ex.command), doc, err, errlen) ||
	    !json_object_is_type(*doc, json_type_array)) {
		snprintf(err, errlen, "the executor '%s' has no usable command", a->ctx.ex.name);
		return NULL;
	}
	if (resume && (json_parse(a->ctx.ex.resume, strlen(a->ctx.ex.resume), rdoc, err, errlen) ||
		       !json_object_is_type(*rdoc, json_type_array))) {
		snprintf(err, errlen, "the executor '%s' has no usable resume words", a->ctx.ex.name);
		return NULL;
	}
	if (!(v = calloc(cap, sizeof(*v)))) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	arrs[0] = *doc;
	arrs[1] = resume ? *rdoc : NULL;
	for (int k = 0; k < 2 && arrs[k]; k++) {
		for (size_t i = 0; i < json_object_array_length(arrs[k]); i++) {
			json_object *w = json_object_array_get_idx(arrs[k], i);

			if (!json_object_is_type(w, json_type_string) || n >= EXECUTOR_ARGV_MAX) {
				snprintf(err, errlen, "the executor '%s' has an unusable command", a->ctx.ex.name);
				free(v);
				return NULL;
			}
			v[n++] = strcmp(json_object_get_string(w), "{session}") == 0 ? a->ctx.session_id :
				 json_object_get_string(w);
		}
	}
	if (!n) {
		snprintf(err, errlen, "the executor '%s' has an empty command", a->ctx.ex.name);
		free(v);
		return NULL;
	}
	return v;
}

/* The variable a Claude credential is read from: OAuth tokens and API
 * keys differ by their prefix. */
static const char *credential_var(const struct secret_value *v)
{
	static const char oauth[] = "sk-ant-oat";

	return v->len > sizeof(oauth) - 1 && memcmp(v->data, oauth, sizeof(oauth) - 1) == 0 ?
	       "CLAUDE_CODE_OAUTH_TOKEN" : "ANTHROPIC_API_KEY";
}

/* ---- the hooks ---- */

/* Streams the base branch's bundle in and lets the runner go on. */
static int att_started(struct container_io *io, void *arg, char *err, size_t errlen)
{
	static const char *const put[] = {
		"sh", "-c", "umask 077 && cat > " XFER "/in.bundle && "
		"timeout 60 sh -c 'printf \"go\\n\" > " XFER "/go'", NULL };
	struct att *a = arg;
	struct stat st;
	char msg[160];
	int fd, code;

	if (!a->first)
		return 0;
	fd = open(a->in_bundle, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(err, errlen, "the base branch's bundle is gone: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(msg, sizeof(msg), "anyon: handing the repository in (%lld bytes)", (long long)st.st_size);
	container_note(io, msg);
	if (container_exec(io, put, fd, -1, 0, EXEC_BUNDLE_MS, NULL, &code, msg, sizeof(msg)) || code) {
		snprintf(err, errlen, "handing the repository to the container failed: %.150s", msg);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(a->in_bundle);
	return 0;
}

/* Parses the runner's outcome line: phase=P code=N bundle=yes|no. */
static bool parse_outcome(struct att *a, char *s)
{
	char *save = NULL, *w;
	bool ph = false, co = false, bu = false;

	s[strcspn(s, "\n")] = '\0';
	for (w = strtok_r(s, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		int64_t v;

		if (strncmp(w, "phase=", 6) == 0 && strlen(w + 6) < sizeof(a->phase) &&
		    strspn(w + 6, "abcdefghijklmnopqrstuvwxyz") == strlen(w + 6)) {
			strcpy(a->phase, w + 6);
			ph = true;
		} else if (strncmp(w, "code=", 5) == 0 && parse_i64(w + 5, -1, 255, &v) == 0) {
			a->code = (int)v;
			co = true;
		} else if (strcmp(w, "bundle=yes") == 0 || strcmp(w, "bundle=no") == 0) {
			a->bundle = w[7] == 'y';
			bu = true;
		}
	}
	return ph && co && bu;
}

/* The program ended: its outcome and its bundle come out with `cat`. */
static void att_ended(struct container_io *io, void *arg, int code)
{
	static const char *const get_outcome[] = { "cat", XFER "/outcome", NULL };
	static const char *const get_bundle[] = { "cat", XFER "/out.bundle", NULL };
	struct att *a = arg;
	char buf[OUTCOME_MAX + 1], msg[160];
	int64_t len = 0;
	int fd, rc;

	(void)code;
	fd = open(a->out_bundle, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(a->back_err, sizeof(a->back_err), "no room for the work coming back: %s", strerror(errno));
		return;
	}
	/* The outcome first, into the same file (small), then read back. */
	if (container_exec(io, get_outcome, -1, fd, OUTCOME_MAX, EXEC_SHORT_MS, &len, &rc, msg, sizeof(msg)) ||
	    rc || pread(fd, buf, (size_t)len, 0) != (ssize_t)len) {
		snprintf(a->back_err, sizeof(a->back_err), "the runner left no outcome: %.150s", msg);
		close(fd);
		return;
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', (size_t)len) || !parse_outcome(a, buf)) {
		snprintf(a->back_err, sizeof(a->back_err), "the runner's outcome is not readable");
		close(fd);
		return;
	}
	a->have_outcome = true;
	if (!a->bundle) {
		close(fd);
		return;
	}
	if (ftruncate(fd, 0) || lseek(fd, 0, SEEK_SET)) {
		snprintf(a->back_err, sizeof(a->back_err), "no room for the work coming back: %s", strerror(errno));
		close(fd);
		return;
	}
	container_note(io, "anyon: bringing the work back");
	if (container_exec(io, get_bundle, -1, fd, MIRROR_BUNDLE_MAX, EXEC_BUNDLE_MS, &len, &rc, msg,
			   sizeof(msg)) || rc) {
		snprintf(a->back_err, sizeof(a->back_err), "the attempt's bundle could not be read: %.150s", msg);
		close(fd);
		return;
	}
	if (fsync(fd) == 0)
		a->have_bundle = true;
	close(fd);
}

static void att_stdout(void *arg, const unsigned char *p, size_t len)
{
	struct att *a = arg;

	if (!a->conv)
		return;
	if (conv_feed(a->conv, p, len)) {
		conv_free(a->conv);   /* out of memory: give up watching, not the run */
		a->conv = NULL;
		return;
	}
	conv_drop_entries(a->conv);
}

/* ---- before and after ---- */

/* The project's mirror, synced, and the base commit: first runs only.
 * Returns 0, or -1 with the attempt's error code in *code and err. */
static int bring_base(struct att *a, char base[MIRROR_SHA_LEN + 1], const char **code, char *err,
		      size_t errlen)
{
	struct db_project *p = &a->ctx.project;
	struct secret_store st = { .db = a->run->db, .kr = a->run->kr };
	struct secret_value tok = { 0 };
	struct mirror_source src = { .allow_local_http = g_config.git_allow_local_http };
	int rc;

	*code = ATTEMPT_ERR_CLONE;
	if (strcmp(p->source, "github") == 0) {
		enum gh_rc g = github_token_get(&st, a->ctx.user_id, 0, mono_ms() + 30000, &tok);

		if (g != GH_OK && g != GH_NOT_CONNECTED) {
			snprintf(err, errlen, g == GH_TOKEN_INVALID ? "GitHub refused the token: sign in with GitHub again" :
				 "the GitHub token could not be read or refreshed (GitHub did not answer)");
			return -1;
		}
		src.url = p->clone_url;
		if (g == GH_OK) {
			src.token = (const char *)tok.data;
			src.token_len = tok.len;
		}
	} else {
		src.url = p->location;
	}
	rc = mirror_sync(g_config.data_dir, p->id, &src, err, errlen);
	if (tok.data)
		secret_value_release(&tok);
	if (rc)
		return -1;
	rc = mirror_branch_commit(a->mirror, a->ctx.base_branch, base, err, errlen);
	if (rc == 1) {
		*code = ATTEMPT_ERR_BASE_BRANCH;
		snprintf(err, errlen, "the repository has no branch '%.200s'", a->ctx.base_branch);
	}
	if (rc)
		return -1;
	if (mirror_bundle_create(a->mirror, a->ctx.base_branch, a->in_bundle, err, errlen))
		return -1;
	return 0;
}

static void finish(struct att *a, const struct attempt_outcome *o)
{
	if (attempts_run_finished(a->run->db, a->ctx.attempt_id, a->ctx.run_id, o, now_s()) != DB_OK)
		log_warn("job %lld: storing attempt %lld's end failed", (long long)a->run->job->id,
			 (long long)a->ctx.attempt_id);
}

/* A run that could not start: the attempt fails with code and err, and
 * so does the job. */
static void fail_early(struct att *a, struct job_result *res, const char *code, const char *err)
{
	struct attempt_outcome o = { .state = "failed", .error = err, .error_code = code };

	snprintf(res->error, sizeof(res->error), "%s", err);
	res->exit_code = 1;
	finish(a, &o);
}

void job_exec_attempt(struct job_run *run, struct job_result *res)
{
	struct att a = { .run = run, .adopted = run->adopted };
	struct attempt_outcome o = { 0 };
	struct handover h = { 0 };
	struct container_plan plan = { 0 };
	struct docker_mount mounts[3];
	char paths[3][CONFIG_PATH_MAX + 80];
	json_object *args = NULL, *cmd_doc = NULL, *res_doc = NULL, *diff = NULL;
	const char **exargv = NULL, **prog = NULL;
	char err[256], base[MIRROR_SHA_LEN + 1] = "", head[MIRROR_SHA_LEN + 1] = "";
	const char *code = NULL;
	int64_t attempt_id, run_id;
	bool auth_failed = false, api_failed = false;
	size_t np = 0;

	res->exit_code = 1;
	if (json_parse(run->job->args, strlen(run->job->args), &args, err, sizeof(err)) ||
	    jobkind_validate("attempt", args, err, sizeof(err)) || json_get_i64(args, "attempt", &attempt_id) ||
	    json_get_i64(args, "run", &run_id)) {
		res->exit_code = 2;
		snprintf(res->error, sizeof(res->error), "bad arguments: %.200s", err);
		json_object_put(args);
		return;
	}
	json_object_put(args);
	if (attempts_load_run(run->db, run_id, &a.ctx) != DB_OK || a.ctx.attempt_id != attempt_id ||
	    a.ctx.user_id != run->job->user_id) {
		snprintf(res->error, sizeof(res->error), "the attempt's run %lld is gone", (long long)run_id);
		attempt_run_ctx_release(&a.ctx);
		return;
	}
	a.first = a.ctx.seq == 1;
	if (mirror_path(g_config.data_dir, a.ctx.project_id, a.mirror, sizeof(a.mirror))) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "the mirror's path is too long");
		goto out;
	}
	/* A fresh first run makes the workspace; a follow-up or an adopted run
	 * finds it (an adopted one keeps its xfer: its container uses it). */
	if (!a.adopted && attempt_ws_prepare(g_config.data_dir, a.ctx.attempt_id, a.first, a.root, sizeof(a.root),
					     err, sizeof(err))) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, err);
		goto out;
	}
	if (a.adopted)
		snprintf(a.root, sizeof(a.root), "%s/workspaces/attempt-%lld", g_config.data_dir,
			 (long long)a.ctx.attempt_id);
	snprintf(a.in_bundle, sizeof(a.in_bundle), "%s/in-%lld.bundle", a.root, (long long)a.ctx.run_id);
	snprintf(a.out_bundle, sizeof(a.out_bundle), "%s/out-%lld.bundle", a.root, (long long)a.ctx.run_id);
	if (strcmp(a.ctx.ex.parser, "claude-stream-json") == 0 && !(a.conv = conv_new(0))) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "out of memory");
		goto out;
	}

	if (handover_init(&h)) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "out of memory");
		goto out;
	}
	/* The credential before anything slow: missing, the attempt fails at
	 * once. The first stored of the executor's kinds is handed over. */
	if (a.ctx.ex.credential[0]) {
		struct secret_store st = { .db = run->db, .kr = run->kr };
		const char *const *kinds = attempt_credential_kinds(a.ctx.ex.credential);
		int rc = SECRET_NOTFOUND;

		for (size_t i = 0; kinds && kinds[i] && rc == SECRET_NOTFOUND; i++) {
			struct secret_value v;

			rc = run->kr ? secret_get(&st, run->job->user_id, kinds[i], 0, &v) : SECRET_ERROR;
			if (rc != SECRET_OK)
				continue;
			rc = handover_secret(&h, run, kinds[i], credential_var(&v), err, sizeof(err));
			secret_value_release(&v);
			if (rc) {
				fail_early(&a, res, ATTEMPT_ERR_INTERNAL, err);
				goto out;
			}
		}
		if (rc == SECRET_NOTFOUND) {
			fail_early(&a, res, ATTEMPT_ERR_CREDENTIAL_MISSING,
				   "no Claude credential is stored: connect Claude first");
			goto out;
		}
		if (rc != SECRET_OK) {
			fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "the Claude credential could not be read");
			goto out;
		}
	}
	if (handover_file(&h, "prompt", a.ctx.prompt, strlen(a.ctx.prompt)) ||
	    (a.first && a.ctx.project.setup_script && a.ctx.project.setup_script[0] &&
	     handover_file(&h, "setup", a.ctx.project.setup_script, strlen(a.ctx.project.setup_script))) ||
	    handover_finish(&h)) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "out of memory");
		goto out;
	}

	if (a.first && !a.adopted) {
		if (bring_base(&a, base, &code, err, sizeof(err))) {
			fail_early(&a, res, code, err);
			goto out;
		}
	} else {
		str_copy(base, sizeof(base), a.ctx.base_commit);
	}
	if (strlen(base) != MIRROR_SHA_LEN) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "the attempt's base commit is unknown");
		goto out;
	}
	if (attempts_run_started(run->db, a.ctx.attempt_id, a.ctx.run_id, base, now_s()) != DB_OK) {
		snprintf(res->error, sizeof(res->error), "storing the attempt's start failed");
		goto out;
	}

	if (!(exargv = executor_argv(&a, &cmd_doc, &res_doc, err, sizeof(err)))) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, err);
		goto out;
	}
	if (!(prog = calloc(EXECUTOR_ARGV_MAX + 32, sizeof(*prog)))) {
		fail_early(&a, res, ATTEMPT_ERR_INTERNAL, "out of memory");
		goto out;
	}
	prog[np++] = RUNNER_PATH;
	prog[np++] = "--branch";
	prog[np++] = a.ctx.branch;
	prog[np++] = "--base";
	prog[np++] = a.ctx.base_branch;
	prog[np++] = "--base-commit";
	prog[np++] = base;
	if (a.first)
		prog[np++] = "--first";
	if (a.first && a.ctx.project.setup_script && a.ctx.project.setup_script[0])
		prog[np++] = "--setup";
	prog[np++] = "--";
	for (size_t i = 0; exargv[i]; i++)
		prog[np++] = exargv[i];

	snprintf(paths[0], sizeof(paths[0]), "%s/" ATTEMPT_WS_REPO, a.root);
	snprintf(paths[1], sizeof(paths[1]), "%s/" ATTEMPT_WS_HOME, a.root);
	snprintf(paths[2], sizeof(paths[2]), "%s/" ATTEMPT_WS_XFER, a.root);
	mounts[0] = (struct docker_mount){ paths[0], "/workspace", false };
	mounts[1] = (struct docker_mount){ paths[1], "/home/agent", false };
	mounts[2] = (struct docker_mount){ paths[2], XFER, false };
	plan.program = prog;
	plan.h = &h;
	plan.mounts = mounts;
	plan.n_mounts = 3;
	plan.workdir = "/workspace";
	plan.started = att_started;
	plan.ended = att_ended;
	plan.on_stdout = att_stdout;
	plan.arg = &a;
	container_run(run, &plan, res);
	unlink(a.in_bundle);
	if (res->stop == CP_DETACH || res->stop == CP_LOST)
		goto out;   /* another worker carries on, or owns it */

	/* What came back. */
	if (a.have_bundle) {
		if (mirror_import(a.mirror, a.out_bundle, a.ctx.branch, a.ctx.attempt_id, head, err, sizeof(err))) {
			snprintf(a.back_err, sizeof(a.back_err), "the work that came back was refused: %.160s", err);
			code = ATTEMPT_ERR_BUNDLE;
			head[0] = '\0';
		}
	}
	unlink(a.out_bundle);
	if (head[0] || a.ctx.head_commit[0]) {
		struct mirror_diff_limits lim;

		mirror_diff_limits_default(&lim);
		if (mirror_diff(a.mirror, base, head[0] ? head : a.ctx.head_commit, &lim, &diff, err, sizeof(err)))
			log_warn("job %lld: the attempt's diff failed: %s", (long long)run->job->id, err);
	}
	if (a.conv) {
		conv_finish(a.conv, true);
		auth_failed = conv_auth_failed(a.conv);
		api_failed = conv_api_failed(a.conv);
		if (conv_session_id(a.conv)[0])
			o.session_id = conv_session_id(a.conv);
	}

	if (res->stop == CP_CANCEL) {
		o.state = "stopped";
	} else if (res->stop == CP_TIMEOUT) {
		o.state = "failed";
		o.error_code = ATTEMPT_ERR_EXECUTOR;
		o.error = "the run passed its time limit";
	} else if (a.have_outcome && strcmp(a.phase, "clone") == 0) {
		o.state = "failed";
		o.error_code = ATTEMPT_ERR_CLONE;
		o.error = "the repository could not be checked out in the container";
	} else if (a.have_outcome && strcmp(a.phase, "setup") == 0) {
		o.state = "failed";
		o.error_code = ATTEMPT_ERR_SETUP;
		o.error = "the project's setup script failed";
	} else if (auth_failed) {
		o.state = "failed";
		o.error_code = ATTEMPT_ERR_CREDENTIAL_INVALID;
		o.error = "Claude refused the credential: connect Claude again";
		o.credential_invalid = true;
	} else if (api_failed) {
		o.state = "failed";
		o.error_code = ATTEMPT_ERR_API;
		o.error = "Anthropic's API failed or could not be reached during the run: try again later";
	} else if (res->error[0]) {
		o.state = "failed";
		o.error_code = a.have_outcome && strcmp(a.phase, "done") == 0 ? ATTEMPT_ERR_EXECUTOR :
			       ATTEMPT_ERR_INTERNAL;
		o.error = res->error;
	} else if (a.back_err[0]) {
		o.state = "failed";
		o.error_code = code ? code : ATTEMPT_ERR_INTERNAL;
		o.error = a.back_err;
	} else if (!a.have_outcome || strcmp(a.phase, "done") != 0) {
		o.state = "failed";
		o.error_code = ATTEMPT_ERR_INTERNAL;
		o.error = "the run ended before it brought its work back";
	} else {
		o.state = "completed";
	}
	if (a.back_err[0] && !res->error[0] && res->stop == CP_CONTINUE)
		snprintf(res->error, sizeof(res->error), "%s", a.back_err);
	if (head[0])
		o.head_commit = head;
	if (a.have_outcome && a.code >= 0) {
		o.has_exit_code = true;
		o.exit_code = a.code;
	}
	if (diff)
		o.diff_json = json_object_to_json_string_ext(diff, JSON_C_TO_STRING_PLAIN);
	finish(&a, &o);
out:
	json_object_put(diff);
	json_object_put(cmd_doc);
	json_object_put(res_doc);
	free(exargv);
	free(prog);
	handover_release(&h);
	conv_free(a.conv);
	attempt_run_ctx_release(&a.ctx);
}

/* ---- the pull request ----
 * Pushes refs/anyon/attempts/<id> from this host's mirror to the
 * attempt's anyon/ branch on GitHub with the user's token, then opens the
 * pull request (or finds the open one) through the REST API. The push
 * never forces: an attempt's branch only grows. */
void job_exec_pull_request(struct job_run *run, struct job_result *res)
{
	struct attempt_pr_ctx ctx = { 0 };
	struct secret_store st = { .db = run->db, .kr = run->kr };
	struct secret_value tok = { 0 };
	struct mirror_source src = { .allow_local_http = g_config.git_allow_local_http };
	struct github_pull pr = { 0 };
	json_object *args = NULL;
	char mirror[CONFIG_PATH_MAX + 64], err[256], msg[320];
	int64_t attempt_id;
	enum gh_rc g;
	int rc;

	res->exit_code = 1;
	if (json_parse(run->job->args, strlen(run->job->args), &args, err, sizeof(err)) ||
	    jobkind_validate("pull_request", args, err, sizeof(err)) || json_get_i64(args, "attempt", &attempt_id)) {
		res->exit_code = 2;
		snprintf(res->error, sizeof(res->error), "bad arguments: %.200s", err);
		json_object_put(args);
		return;
	}
	json_object_put(args);
	if (attempts_load_pr(run->db, attempt_id, &ctx) != DB_OK || ctx.user_id != run->job->user_id) {
		snprintf(res->error, sizeof(res->error), "attempt %lld is gone", (long long)attempt_id);
		goto out;
	}
	if (strcmp(ctx.project.source, "github") != 0 || !ctx.project.github_full_name[0]) {
		snprintf(res->error, sizeof(res->error), "pull requests are for projects imported from GitHub");
		goto fail;
	}
	if (!ctx.head_commit[0]) {
		snprintf(res->error, sizeof(res->error), "the attempt brought no work back: nothing to push");
		goto fail;
	}
	g = github_token_get(&st, ctx.user_id, 0, mono_ms() + 30000, &tok);
	if (g != GH_OK) {
		snprintf(res->error, sizeof(res->error), g == GH_NOT_CONNECTED ? "GitHub is not connected" :
			 g == GH_TOKEN_INVALID ? "GitHub refused the token: sign in with GitHub again" :
			 "the GitHub token could not be used now (GitHub did not answer)");
		goto fail;
	}
	if (mirror_path(g_config.data_dir, ctx.project.id, mirror, sizeof(mirror))) {
		snprintf(res->error, sizeof(res->error), "the mirror's path is too long");
		goto fail;
	}
	src.url = ctx.project.clone_url;
	src.token = (const char *)tok.data;
	src.token_len = tok.len;
	snprintf(msg, sizeof(msg), "pushing %.60s to %.200s", ctx.branch, ctx.project.github_full_name);
	job_write(run, "system", msg, strlen(msg));
	rc = mirror_push(mirror, ctx.attempt_id, ctx.branch, &src, false, err, sizeof(err));
	if (rc) {
		snprintf(res->error, sizeof(res->error), rc == 1 ? "GitHub rejected the push: %.200s" :
			 "the push failed: %.200s", err);
		goto fail;
	}
	g = github_pull_create((const char *)tok.data, ctx.project.github_full_name, ctx.branch, ctx.base_branch,
			       ctx.title, ctx.body, mono_ms() + 30000, &pr, err, sizeof(err));
	if (g == GH_TOKEN_INVALID) {
		struct gh_response gr = { .status = 401 };

		github_token_failed(&st, ctx.user_id, 0, &gr, "opening a pull request");
	}
	if (g != GH_OK) {
		snprintf(res->error, sizeof(res->error), "GitHub did not open the pull request: %.200s",
			 err[0] ? err : "no answer");
		goto fail;
	}
	snprintf(msg, sizeof(msg), "pull request #%lld %s: %.240s", (long long)pr.number,
		 pr.existed ? "was open already" : "opened", pr.html_url);
	job_write(run, "system", msg, strlen(msg));
	if (attempts_pr_stored(run->db, ctx.attempt_id, pr.html_url, pr.number, pr.state, now_s()) != DB_OK)
		snprintf(res->error, sizeof(res->error), "storing the pull request failed");
	else
		res->exit_code = 0;
	goto out;
fail:
	attempts_pr_failed(run->db, ctx.attempt_id, res->error, now_s());
out:
	if (tok.data)
		secret_value_release(&tok);
	attempt_pr_ctx_release(&ctx);
}

/* ---- what outlives its rows ---- */

struct gone_ctx {
	struct db *db;
	bool failed;                 /* the database did not answer: remove nothing more */
	bool project;                /* asking for projects, not attempts */
};

static bool row_gone(int64_t id, void *arg)
{
	struct gone_ctx *g = arg;
	int rc;

	if (g->failed)
		return false;
	if (g->project) {
		struct db_project p;

		rc = db_project_get(g->db, id, 0, &p);
		if (rc == DB_OK)
			db_project_release(&p);
	} else {
		struct db_attempt a;

		rc = db_attempt_get(g->db, id, 0, &a);
		if (rc == DB_OK)
			db_attempt_release(&a);
	}
	if (rc == DB_ERROR)
		g->failed = true;
	return rc == DB_NOTFOUND;
}

/* mirrors/project-<digits>.git entries whose project is gone. */
static int mirror_sweep(struct gone_ctx *g, int max)
{
	char dir[CONFIG_PATH_MAX + 16];
	struct dirent *e;
	int removed = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/mirrors", g_config.data_dir);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : -1;
	while (removed < max && (e = readdir(d))) {
		const char *n = e->d_name;
		size_t len = strlen(n);
		char digits[24];
		int64_t id;

		if (len < 13 || len > 30 || strncmp(n, "project-", 8) || strcmp(n + len - 4, ".git"))
			continue;
		memcpy(digits, n + 8, len - 12);
		digits[len - 12] = '\0';
		if (digits[0] == '0' || strspn(digits, "0123456789") != strlen(digits) ||
		    parse_i64(digits, 1, INT64_MAX, &id) || !row_gone(id, g))
			continue;
		if (mirror_remove(g_config.data_dir, id) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int attempt_sweep(struct db *db, int max)
{
	struct gone_ctx g = { .db = db };
	int ws, mirrors;

	ws = attempt_ws_sweep(g_config.data_dir, row_gone, &g, max);
	g.project = true;
	mirrors = g.failed ? 0 : mirror_sweep(&g, max);
	if (ws < 0 || mirrors < 0)
		return -1;
	return ws + mirrors;
}
