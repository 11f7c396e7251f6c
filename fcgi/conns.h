/* conns.h - one pool child's FastCGI connections: the listen socket and
 * every connection the child accepted, waited on together, so a kept-alive
 * connection with nothing to say never pins the child.
 *
 * nginx (fastcgi_keep_conn on, upstream keepalive N) keeps connections open
 * between requests. libfcgi's own loop (FCGX_Accept_r on one FCGX_Request)
 * reads the next request from the connection it holds and blocks there
 * while it is idle; here each connection has its own FCGX_Request and the
 * child serves whichever connection has a request, accepting new ones
 * itself when the listen socket is readable. A connection is closed when
 * nginx closes it, when nginx did not ask to keep it, when a request left
 * part of its body unread, when it was idle longer than the limit, or to
 * make room when the child holds its maximum.
 *
 * Uses three fields libfcgi 2.4 marks private in FCGX_Request: ipcFd (the
 * connection), keepConnection (what FCGX_Finish_r looks at before closing)
 * and listen_sock (set to -1, so libfcgi never accepts on its own). */
#ifndef ANYON_CONNS_H
#define ANYON_CONNS_H

#include <signal.h>

#include <fcgiapp.h>

/* Serves one request: reads fx's params and body, writes the answer.
 * The loop finishes the request (FCGX_Finish_r) afterwards. */
typedef void (*conns_serve_fn)(FCGX_Request *fx, void *arg);

struct conns_limits {
	int idle_ms;      /* a connection idle this long is closed */
	int max;          /* connections per child; the oldest idle one makes room */
	int read_ms;      /* a read inside a request waits at most this long */
};

/* Serves requests on listen_fd (non-blocking, shared with the other
 * children) and on the connections accepted from it until *stop is set.
 * Signals are expected blocked; they are let in only while waiting, with
 * waitmask (as epoll_pwait), so one that sets *stop is never missed. Then
 * the requests already sent on open connections are served and every
 * connection is closed. Returns 0, or -1 when waiting itself failed
 * (logged). */
int conns_run(int listen_fd, const struct conns_limits *lim, volatile sig_atomic_t *stop,
	      const sigset_t *waitmask, conns_serve_fn serve, void *arg);

#endif
