/* hello.c - the benchmark's baseline: a FastCGI responder that does nothing
 * but answer a small JSON body, with the same process model as anyon-fcgi
 * (a prefork pool of N children on one unix socket, each serving the
 * connections it accepted, kept alive when nginx asks: fcgi/conns.c, the
 * same loop). bench/run builds it and puts it behind the same nginx as
 * anyon, so the ratio of the two measures what anyon's own work costs, not
 * nginx or FastCGI.
 *
 *   hello SOCKET CHILDREN
 *
 * SIGTERM or SIGINT stops the pool. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "fcgi/conns.h"

static volatile sig_atomic_t got_stop;

static void on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);   /* no SA_RESTART: accept() sees EINTR */
}

static void answer(FCGX_Request *fx, void *arg)
{
	static const char body[] = "{\"hello\":\"world\"}\n";

	(void)arg;
	FCGX_PutS("Status: 200 OK\r\n"
		  "Content-Type: application/json\r\n"
		  "Cache-Control: no-store\r\n\r\n", fx->out);
	FCGX_PutStr(body, (int)sizeof(body) - 1, fx->out);
}

static void child_main(int listen_fd)
{
	const struct conns_limits lim = { .idle_ms = 75000, .max = 64, .read_ms = 15000, .handoff = { -1, -1 } };
	sigset_t stop, wait;

	set_handler(SIGTERM, on_stop);
	set_handler(SIGINT, on_stop);
	signal(SIGPIPE, SIG_IGN);
	/* As anyon-fcgi: the stop signals only while waiting. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_SETMASK, &stop, NULL);
	sigemptyset(&wait);
	_exit(conns_run(listen_fd, &lim, &got_stop, &wait, answer, NULL) ? 1 : 0);
}

int main(int argc, char **argv)
{
	sigset_t block, old;
	pid_t *pids;
	char *end;
	long n;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: hello SOCKET CHILDREN\n");
		return 2;
	}
	n = strtol(argv[2], &end, 10);
	if (*end || n < 1 || n > 256) {
		fprintf(stderr, "hello: CHILDREN must be a number from 1 to 256\n");
		return 2;
	}
	if (FCGX_Init()) {
		fprintf(stderr, "hello: cannot initialise libfcgi\n");
		return 1;
	}
	unlink(argv[1]);
	fd = FCGX_OpenSocket(argv[1], 256);
	if (fd < 0) {
		fprintf(stderr, "hello: cannot listen on %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	chmod(argv[1], 0660);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	pids = calloc((size_t)n, sizeof(*pids));
	if (!pids)
		return 1;
	/* Signals reach the parent only inside sigsuspend(): none is lost. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	set_handler(SIGTERM, on_stop);
	set_handler(SIGINT, on_stop);
	for (long i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			fprintf(stderr, "hello: fork: %s\n", strerror(errno));
			got_stop = 1;
			break;
		}
		if (pids[i] == 0)
			child_main(fd);
	}
	while (!got_stop)
		sigsuspend(&old);
	for (long i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (long i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	unlink(argv[1]);
	free(pids);
	return 0;
}
