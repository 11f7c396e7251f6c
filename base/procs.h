/* procs.h - a fixed table of forked children, one per slot: the prefork
 * pool of anyon-fcgi (a child per slot, replaced when it dies) and the job
 * slots of anyon-worker (a child per running job). The table only forks,
 * reaps, signals and stops; what a child does and what an exit means stay
 * with the caller (a callback per reaped child). Signals are the caller's:
 * call procs_reap() after SIGCHLD, or on every turn of its loop. */
#ifndef ANYON_PROCS_H
#define ANYON_PROCS_H

#include <stdint.h>
#include <sys/types.h>

struct procs {
	int n;                  /* slots */
	pid_t *pid;             /* owned; n entries, 0 for a free slot */
	int64_t *started_ms;    /* owned; mono_ms() when each slot's child started */
};

/* Called for each reaped child of the table, its slot already free again.
 * status as from waitpid(). */
typedef void (*procs_exit_fn)(int slot, pid_t pid, int status, int64_t ran_ms, void *ctx);

/* n slots, all free. 0, or -1 when out of memory. */
int procs_init(struct procs *p, int n);

/* Frees the table's memory (not its children). */
void procs_free(struct procs *p);

/* Forks a child into the free slot: the child frees its copy of the table
 * and runs child_main(arg), then exit(0) if that returns. Returns the
 * child's pid in the parent, or -1 (fork failed; logged). */
pid_t procs_spawn(struct procs *p, int slot, void (*child_main)(void *arg), void *arg);

/* The first free slot, or -1 when every slot runs a child. */
int procs_free_slot(const struct procs *p);

/* How many slots run a child. */
int procs_live(const struct procs *p);

/* Reaps every child that has exited, without waiting, calling on_exit
 * (may be NULL) for those of the table. Returns how many were reaped. */
int procs_reap(struct procs *p, procs_exit_fn on_exit, void *ctx);

/* Sends sig to every live child. */
void procs_signal(const struct procs *p, int sig);

/* Stops every child: sig (SIGTERM) now, then waits up to grace_ms reaping
 * (on_exit as above); whatever still runs then gets SIGKILL, named in the
 * log, and is reaped. Returns how many had to be killed. */
int procs_stop(struct procs *p, int sig, int64_t grace_ms, procs_exit_fn on_exit, void *ctx);

#endif
