/* procs.c - a fixed table of forked children (see procs.h). */
#include "autoconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "base/procs.h"
#include "base/util.h"

#define STOP_POLL_US (20 * 1000)

int procs_init(struct procs *p, int n)
{
	memset(p, 0, sizeof(*p));
	if (n < 1)
		return -1;
	p->pid = calloc((size_t)n, sizeof(*p->pid));
	p->started_ms = calloc((size_t)n, sizeof(*p->started_ms));
	if (!p->pid || !p->started_ms) {
		procs_free(p);
		return -1;
	}
	p->n = n;
	return 0;
}

void procs_free(struct procs *p)
{
	free(p->pid);
	free(p->started_ms);
	p->pid = NULL;
	p->started_ms = NULL;
	p->n = 0;
}

pid_t procs_spawn(struct procs *p, int slot, void (*child_main)(void *arg), void *arg)
{
	pid_t pid;

	if (slot < 0 || slot >= p->n || p->pid[slot] > 0)
		return -1;
	fflush(NULL);   /* nothing buffered is written twice */
	pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		procs_free(p);
		child_main(arg);
		exit(0);
	}
	p->pid[slot] = pid;
	p->started_ms[slot] = mono_ms();
	return pid;
}

int procs_free_slot(const struct procs *p)
{
	for (int i = 0; i < p->n; i++)
		if (p->pid[i] <= 0)
			return i;
	return -1;
}

int procs_live(const struct procs *p)
{
	int live = 0;

	for (int i = 0; i < p->n; i++)
		live += p->pid[i] > 0;
	return live;
}

static int slot_of(const struct procs *p, pid_t pid)
{
	for (int i = 0; i < p->n; i++)
		if (p->pid[i] == pid)
			return i;
	return -1;
}

int procs_reap(struct procs *p, procs_exit_fn on_exit, void *ctx)
{
	int status, reaped = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int slot = slot_of(p, pid);
		int64_t ran;

		reaped++;
		if (slot < 0)
			continue;
		ran = mono_ms() - p->started_ms[slot];
		p->pid[slot] = 0;
		if (on_exit)
			on_exit(slot, pid, status, ran, ctx);
	}
	return reaped;
}

void procs_signal(const struct procs *p, int sig)
{
	for (int i = 0; i < p->n; i++)
		if (p->pid[i] > 0)
			kill(p->pid[i], sig);
}

int procs_stop(struct procs *p, int sig, int64_t grace_ms, procs_exit_fn on_exit, void *ctx)
{
	int64_t deadline = mono_ms() + grace_ms;
	int killed = 0;

	procs_signal(p, sig);
	while (procs_live(p) > 0 && mono_ms() < deadline) {
		procs_reap(p, on_exit, ctx);
		if (procs_live(p) > 0)
			usleep(STOP_POLL_US);
	}
	for (int i = 0; i < p->n; i++) {
		pid_t pid = p->pid[i];
		int status;

		if (pid <= 0)
			continue;
		log_warn("child %ld did not stop in time; killing it", (long)pid);
		kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) == pid) {
			int64_t ran = mono_ms() - p->started_ms[i];

			p->pid[i] = 0;
			if (on_exit)
				on_exit(i, pid, status, ran, ctx);
		}
		p->pid[i] = 0;
		killed++;
	}
	return killed;
}
