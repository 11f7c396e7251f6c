/* git.h - runs the host's git safely: an argument vector through
 * fork/execvp (never a shell), a clean environment (no GIT_* or other
 * variable inherited, no system or global config, no terminal prompt, no
 * credential helper, hooks and fsmonitor off), its own process group
 * killed at a time limit, stdout and stderr captured up to a bound.
 *
 * Used by the API to look at a repository before it becomes a project
 * (services/projects.c), and meant for the worker's mirrors and bundles. */
#ifndef ANYON_GIT_H
#define ANYON_GIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How to run one git command. */
struct git_opts {
	int64_t timeout_ms;           /* the whole run; then SIGKILL to its process group */
	size_t out_max, err_max;      /* bytes of stdout/stderr kept; the rest is read and dropped */
	const char *allow_protocol;   /* GIT_ALLOW_PROTOCOL, e.g. "file" or "https"; NULL: "file" */
	const char *const *env;       /* extra "NAME=value" entries (NULL-terminated), or NULL */
	const char *cwd;              /* working directory; NULL: "/" (never a repository) */
};

/* What a run gave. out and err are NUL-terminated heap buffers (never NULL
 * after git_run() returned 0), released by git_result_release(). */
struct git_result {
	char *out;        /* stdout, at most out_max bytes */
	size_t out_len;
	bool out_cut;     /* stdout was longer: bytes were dropped */
	char *err;        /* stderr, at most err_max bytes */
	size_t err_len;
	bool err_cut;
	int exit_code;    /* git's exit status; -1 when killed by a signal */
	bool timed_out;   /* killed at the time limit */
};

/* The options that every run gets before the caller's arguments: hooks,
 * fsmonitor and credential helpers off. NULL-terminated; for tests. */
extern const char *const git_safe_config[];

/* Runs `git <safe config> args...` (args NULL-terminated; the caller puts
 * "--" before paths and URLs). It waits for its own child by pid: call it
 * from a process that does not reap with waitpid(-1) meanwhile (a request's
 * FastCGI child or a job's slot process, not the pool's or the worker's
 * parent, whose procs_reap() would take the child away). Returns 0 when git ran, whatever its exit
 * (see res), or -1 when it could not be started (pipe or fork failed;
 * logged). git missing on PATH is exit code 127. */
int git_run(const char *const *args, const struct git_opts *o, struct git_result *res);

/* Frees res's buffers (not res itself). */
void git_result_release(struct git_result *res);

/* The first line of res's stderr without "fatal: " / "error: ", at most
 * size-1 bytes, only printable ASCII kept (others become '?'): for an
 * error message. "" when stderr was empty. */
void git_err_line(const struct git_result *res, char *dst, size_t size);

#endif
