/* hello.c - the benchmark's baseline: a FastCGI responder that does nothing
 * but answer a small JSON body, with the same process model as anyon-fcgi
 * (a prefork pool of N children accepting on one unix socket). bench/run
 * builds it and puts it behind the same nginx as anyon, so the ratio of the
 * two measures what anyon's own work costs, not nginx or FastCGI.
 *
 *   hello SOCKET CHILDREN
 *
 * SIGTERM or SIGINT stops the pool. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

static volatile sig_atomic_t got_stop;

static void on_stop(int sig)
{
	(void)sig;
	got_stop = 1;
	FCGX_ShutdownPending();
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);   /* no SA_RESTART: accept() sees EINTR */
}

static void child_main(int listen_fd)
{
	static const char body[] = "{\"hello\":\"world\"}\n";
	FCGX_Request fx;
	sigset_t none;

	set_handler(SIGTERM, on_stop);
	set_handler(SIGINT, on_stop);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (FCGX_InitRequest(&fx, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR))
		_exit(1);
	while (!got_stop && FCGX_Accept_r(&fx) >= 0) {
		FCGX_PutS("Status: 200 OK\r\n"
			  "Content-Type: application/json\r\n"
			  "Cache-Control: no-store\r\n\r\n", fx.out);
		FCGX_PutStr(body, (int)sizeof(body) - 1, fx.out);
		FCGX_Finish_r(&fx);
	}
	FCGX_Free(&fx, 1);
	_exit(0);
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
