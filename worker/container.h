/* container.h - one run of a program in the agent image, for the
 * executors that need more than the container job's plain command (the
 * attempt job, worker/job_attempt.c): what goes in (a secret bundle with
 * masked secrets and plain files, mounts), what runs (the program under
 * anyon-entry's relay), and hooks at the two moments the run may use the
 * container with execs (just started; program ended while the wrapper
 * lingers). Everything else (limits, labels, output, cancel, time limit,
 * restart survival, removal) is the container job's (job_container.c). */
#ifndef ANYON_WORKER_CONTAINER_H
#define ANYON_WORKER_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/docker.h"
#include "services/mask.h"
#include "worker/worker.h"

/* What goes to anyon-entry's stdin (container/README.md): secrets read
 * from the store (their values masked in the output) and plain files. */
struct handover {
	struct mask_set *masks;      /* owned */
	char *bundle;                /* owned, wiped on release; NULL: nothing to hand over */
	size_t len, cap;
};

/* 0, or -1 out of memory. */
int handover_init(struct handover *h);
/* Adds the user's secret of kind as the file name (NULL: kind), its value
 * added to the masks. 0, 1 when the user has none, -1 (err, never a value). */
int handover_secret(struct handover *h, struct job_run *run, const char *kind, const char *name,
		    char *err, size_t errlen);
/* Adds a file that is not a secret (not masked). 0 or -1. */
int handover_file(struct handover *h, const char *name, const void *data, size_t len);
/* Closes the bundle after the last item. 0 or -1. */
int handover_finish(struct handover *h);
/* Wipes and frees. */
void handover_release(struct handover *h);

/* A running container of a job, as the hooks see it. */
struct container_io;

struct container_plan {
	const char *const *program;         /* argv after anyon-entry's "--", NULL-terminated */
	struct handover *h;                 /* borrowed; its bundle is wiped once sent */
	const struct docker_mount *mounts;  /* borrowed */
	size_t n_mounts;
	const char *workdir;                /* NULL: the image's */
	/* After a new run started (never for an adopted one): 0 to go on, or
	 * -1 to stop it with err as the job's error. */
	int (*started)(struct container_io *io, void *arg, char *err, size_t errlen);
	/* The program's exit record came (code: its status, 128+N for a
	 * signal) and the wrapper still lingers: the last execs. */
	void (*ended)(struct container_io *io, void *arg, int code);
	/* Each piece of the program's stdout as the relay gave it (before
	 * masking: keep nothing of it but what is not secret). */
	void (*on_stdout)(void *arg, const unsigned char *p, size_t len);
	void *arg;

	/* A program under a TTY (the Claude sign-in): the container only
	 * holds it (anyon-entry runs `sleep`, no relay), the program runs in
	 * an exec with a TTY whose one raw stream is its output and whose
	 * stdin stays open for container_send(). h must be empty (a TTY would
	 * echo a bundle). Not relayed, so not adoptable: a worker that stops
	 * ends the run and removes the container. started/on_stdout are not
	 * used; ended is called once the exec ended, the container still up. */
	bool tty;
	const char *const *env;             /* the program's environment (tty) */
	/* Raw output of the TTY; the plan stores it with container_output().
	 * NULL: stored as it comes. Nonzero stops the run (a failure). */
	int (*tty_output)(struct container_io *io, void *arg, const unsigned char *p, size_t len);
	/* Each turn of the TTY loop (about 4 a second) and once the exec ended
	 * (ended true): 0 go on, 1 the run is done (the container goes, the
	 * job succeeds unless err was set), -1 fail with err. */
	int (*tick)(struct container_io *io, void *arg, bool ended, char *err, size_t errlen);
};

/* Runs plan's program for run (adopted runs carry on), settling res like
 * the container job. */
void container_run(struct job_run *run, const struct container_plan *plan, struct job_result *res);

/* Runs argv in the container as uid 1000 and waits for it (keeping the
 * lease), at most timeout_ms. stdin: the bytes of in_fd to its end (-1:
 * none). stdout: into out_fd (-1: dropped), at most out_max bytes (more
 * fails the call). *exit_code gets its status. Returns 0 when it ran to
 * its end, else -1 with err (the first line of its stderr when it said
 * something). */
int container_exec(struct container_io *io, const char *const *argv, int in_fd, int out_fd, int64_t out_max,
		   long timeout_ms, int64_t *out_len, int *exit_code, char *err, size_t errlen);

/* Stores bytes of a TTY program's output (masked by the writer). 0 or -1. */
int container_output(struct container_io *io, const void *p, size_t len);
/* Writes to a TTY program's stdin. 0, or -1 with err. */
int container_send(struct container_io *io, const void *p, size_t len, char *err, size_t errlen);

/* A line of anyon's own in the run's output. */
int container_note(struct container_io *io, const char *line);

#endif
