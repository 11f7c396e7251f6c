/* serve.h - anyon-entry's relay mode (the program's output numbered and
 * framed on stdout, a window kept in memory, replays served over a unix
 * socket) and the replay client. See container/README.md. */
#ifndef ANYON_SERVE_H
#define ANYON_SERVE_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_SOCKET_DEFAULT "/run/anyon/relay/sock"
#define RELAY_WINDOW_DEFAULT ((size_t)8 << 20)
#define RELAY_WINDOW_MAX ((size_t)256 << 20)
#define RELAY_LINGER_MAX 86400
#define RELAY_STALL_DEFAULT 10000
#define RELAY_STALL_MAX 600000

struct relay_opts {
	const char *socket_path;
	size_t window;         /* ring bytes, RELAY_RING_MIN..RELAY_WINDOW_MAX */
	unsigned linger_s;     /* after the exit, wait this long for a replay */
	unsigned stall_ms;     /* a full window waits this long for a live reader; 0: never */
	long peer_uid;         /* -1, or a uid besides ours that may ask (the worker's, on the
	                        * host, through a bind-mounted socket directory) */
	int no_stdout;         /* records only to the socket's readers, none to stdout */
};

/* Runs argv (argv[0] the program) under the relay; returns the exit
 * status for anyon-entry: the program's (128 + signal when killed), 125
 * when the relay could not start. */
int relay_serve(const struct relay_opts *o, char **argv);
/* Asks the relay at socket_path for everything from offset after and
 * copies it to stdout until the relay closes (after the exit record).
 * 0, 1 when stdout or the relay failed, 125 when refused. */
int relay_replay(const char *socket_path, uint64_t after);

#endif
