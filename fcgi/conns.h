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
 * A child about to wait long inside a request (on GitHub) hands every other
 * connection it holds to the rest of the pool (conns_hand_off()): through a
 * datagram socket pair all children share, each connection's descriptor
 * goes, unread, to whichever waiting child takes it, so a request nginx
 * sends on it meanwhile is served there instead of waiting behind GitHub.
 * Nothing is closed, so nginx never meets a connection closed under it.
 *
 * Uses three fields libfcgi 2.4 marks private in FCGX_Request: ipcFd (the
 * connection), keepConnection (what FCGX_Finish_r looks at before closing)
 * and listen_sock (set to -1, so libfcgi never accepts on its own). */
#ifndef ANYON_CONNS_H
#define ANYON_CONNS_H

#include <signal.h>
#include <stddef.h>
#include <sys/uio.h>

#include <fcgiapp.h>

/* Serves one request: reads fx's params and body, writes the answer.
 * The loop finishes the request (FCGX_Finish_r) afterwards. */
typedef void (*conns_serve_fn)(FCGX_Request *fx, void *arg);

struct conns_limits {
	int idle_ms;      /* a connection idle this long is closed */
	int max;          /* connections per child; the oldest idle one makes room */
	int read_ms;      /* a read inside a request waits at most this long */
	/* The pool's hand-off pair (conns_handoff_open()), or -1 and -1:
	 * connections are never handed over. */
	int handoff[2];
};

/* Makes the pool's hand-off pair, in the parent before any child starts:
 * every child inherits both ends. 0, or -1 with errno set. */
int conns_handoff_open(int handoff[2]);

/* Inside a request: hands every other open connection of this child (idle
 * ones, and ones whose next request already waits) to the rest of the
 * pool. Does nothing outside conns_run() or without a hand-off pair. A
 * connection that cannot be handed over (the pair's queue is full) stays. */
void conns_hand_off(void);

/* Writes the n parts as the request's output (its FCGI_STDOUT), in order
 * after anything already put on fx->out. Small answers go through libfcgi's
 * buffer; from CONNS_PUT_DIRECT bytes on, that buffer is flushed and the
 * parts go straight to the connection in records of up to 64 KiB, with as
 * few writev() calls as the socket takes (libfcgi would write one 8 KiB
 * record per call: a 150 KB answer was 20 writes, and as many wake-ups of
 * nginx). 0, or -1 when the connection failed: then fx->out carries the
 * error, as after a failed write of libfcgi's own, so later puts fail and
 * FCGX_Finish_r() closes the connection. */
#define CONNS_PUT_DIRECT 16384
int conns_put(FCGX_Request *fx, const struct iovec *parts, int n);

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
