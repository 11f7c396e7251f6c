/* git.c - the host's git, run with an argument vector, a clean
 * environment, a time limit and bounded output (git.h). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "services/git.h"

#define GIT_MAX_ARGS 64
#define GIT_MAX_ENV 32

const char *const git_safe_config[] = {
	"-c", "core.hooksPath=/dev/null",   /* no hook of any repository runs */
	"-c", "core.fsmonitor=",            /* no fsmonitor command either */
	"-c", "credential.helper=",         /* no helper asked or told anything */
	"-c", "core.askPass=",
	"-c", "protocol.file.allow=always", /* GIT_ALLOW_PROTOCOL decides */
	NULL,
};

/* The child: its own process group, /dev/null as stdin, the pipes as
 * stdout/stderr, nothing else open, default signals, then git. Never
 * returns. */
static void child_exec(char *const *argv, char *const *envp, const char *cwd, int out_fd, int err_fd)
{
	sigset_t none;
	int null_fd;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(126);
	/* No descriptor of the caller's (database, FastCGI socket) goes along. */
	if (close_range(3, ~0U, 0) != 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	if (chdir(cwd) != 0)
		_exit(126);
	execvpe("git", argv, envp);
	_exit(127);
}

/* Appends what fd has to b (up to max bytes kept), dropping the rest.
 * Returns 1 at end of file, 0 when more may come, -1 on error. */
static int drain(int fd, char *b, size_t *len, size_t max, bool *cut)
{
	char tmp[8192];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		return 1;
	if (*len < max) {
		size_t take = (size_t)n < max - *len ? (size_t)n : max - *len;

		memcpy(b + *len, tmp, take);
		*len += take;
		if (take < (size_t)n)
			*cut = true;
	} else {
		*cut = true;
	}
	return 0;
}

/* Whether the child has exited, leaving it unreaped (WNOWAIT). */
static bool child_exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Kills the child's process group while the child is still unreaped (its
 * pid, and so the group's id, cannot have been reused), then reaps it. */
static int kill_and_reap(pid_t pid)
{
	int status = 0;

	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

int git_run(const char *const *args, const struct git_opts *o, struct git_result *res)
{
	const char *argv[GIT_MAX_ARGS + 2];
	const char *envp[GIT_MAX_ENV + 1];
	char path_env[4096], proto_env[128];
	const char *path = getenv("PATH");
	int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
	size_t na = 0, ne = 0;
	int64_t deadline = mono_ms() + o->timeout_ms;
	bool out_open = true, err_open = true, exited = false;
	int status = 0;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	argv[na++] = "git";
	for (size_t i = 0; git_safe_config[i]; i++)
		argv[na++] = git_safe_config[i];
	for (size_t i = 0; args[i]; i++) {
		if (na >= GIT_MAX_ARGS) {
			log_error("BUG: git_run: more than %d arguments", GIT_MAX_ARGS);
			return -1;
		}
		argv[na++] = args[i];
	}
	argv[na] = NULL;

	snprintf(path_env, sizeof(path_env), "PATH=%s", path && *path && strlen(path) < 4000 ? path :
		 "/usr/local/bin:/usr/bin:/bin");
	snprintf(proto_env, sizeof(proto_env), "GIT_ALLOW_PROTOCOL=%s",
		 o->allow_protocol ? o->allow_protocol : "file");
	envp[ne++] = path_env;
	envp[ne++] = proto_env;
	envp[ne++] = "HOME=/nonexistent";
	envp[ne++] = "LC_ALL=C";
	envp[ne++] = "GIT_CONFIG_NOSYSTEM=1";
	envp[ne++] = "GIT_CONFIG_GLOBAL=/dev/null";
	envp[ne++] = "GIT_TERMINAL_PROMPT=0";
	envp[ne++] = "GIT_PROTOCOL_FROM_USER=0";
	envp[ne++] = "GIT_ASKPASS=/bin/false";
	envp[ne++] = "SSH_ASKPASS=/bin/false";
	for (size_t i = 0; o->env && o->env[i]; i++) {
		if (ne >= GIT_MAX_ENV) {
			log_error("BUG: git_run: more than %d environment entries", GIT_MAX_ENV);
			return -1;
		}
		envp[ne++] = o->env[i];
	}
	envp[ne] = NULL;

	res->out = malloc(o->out_max + 1);
	res->err = malloc(o->err_max + 1);
	if (!res->out || !res->err || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
		log_error("git: cannot set up a run: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		log_error("git: fork failed: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child_exec((char *const *)argv, (char *const *)envp, o->cwd ? o->cwd : "/", out_pipe[1],
			   err_pipe[1]);
	/* Also set here: a kill at the deadline must reach the group even if
	 * the child has not run setpgid() yet. */
	setpgid(pid, pid);
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;

	for (;;) {
		struct pollfd pf[2];
		int n = 0, left = (int)(deadline - mono_ms());

		if (!exited && child_exited(pid)) {
			exited = true;
			/* What it wrote is in the pipes; a straggler holding them
			 * open gets a moment, not the whole time limit. */
			if (deadline > mono_ms() + 200)
				deadline = mono_ms() + 200;
		}
		if (!out_open && !err_open && exited)
			break;
		if (left <= 0) {
			res->timed_out = !exited;
			break;
		}
		if (out_open)
			pf[n++] = (struct pollfd){ .fd = out_pipe[0], .events = POLLIN };
		if (err_open)
			pf[n++] = (struct pollfd){ .fd = err_pipe[0], .events = POLLIN };
		/* Short slices: git's own exit is noticed by child_exited(). */
		if (poll(pf, (nfds_t)n, left < 20 ? left : 20) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			bool is_out = pf[i].fd == out_pipe[0];
			int rc;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			rc = is_out ? drain(out_pipe[0], res->out, &res->out_len, o->out_max, &res->out_cut)
				    : drain(err_pipe[0], res->err, &res->err_len, o->err_max, &res->err_cut);
			if (rc != 0) {
				if (is_out)
					out_open = false;
				else
					err_open = false;
			}
		}
	}
	/* Whatever it left behind (a remote helper, upload-pack) goes too. */
	status = kill_and_reap(pid);
	close(out_pipe[0]);
	close(err_pipe[0]);
	res->out[res->out_len] = '\0';
	res->err[res->err_len] = '\0';
	res->exit_code = !res->timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	return 0;

fail:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	git_result_release(res);
	return -1;
}

void git_result_release(struct git_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
	res->out_len = res->err_len = 0;
}

void git_err_line(const struct git_result *res, char *dst, size_t size)
{
	const char *s = res->err ? res->err : "";
	size_t n = 0;

	if (size == 0)
		return;
	if (strncmp(s, "fatal: ", 7) == 0)
		s += 7;
	else if (strncmp(s, "error: ", 7) == 0)
		s += 7;
	while (*s && *s != '\n' && *s != '\r' && n + 1 < size) {
		unsigned char c = (unsigned char)*s++;

		dst[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[n] = '\0';
}
