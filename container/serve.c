/* serve.c - anyon-entry's relay mode and its replay client
 * (container/serve.h; the format: container/relayfmt.h, the protocol:
 * container/README.md). */
#define _GNU_SOURCE
#include "container/serve.h"
#include "container/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 4
#define REQUEST_MAX 40          /* "after " + 20 digits + "\n", with room */
#define REQUEST_MS 5000         /* a client must ask within this */
#define DRAIN_MS 1000           /* after the program exits, its group's pipes */
#define FLUSH_MS 5000           /* after that, the exit record to stdout at most */
#define PUMP_BYTES (1 << 20)    /* per reader per round, so the program is drained */

struct reader {
	int fd;                 /* -1: unused */
	int is_client;
	int asked;              /* a client: its request was read */
	char req[REQUEST_MAX + 1];
	size_t reqlen;
	int64_t deadline;       /* a client: ms by which it must have asked */
	struct relay_cursor cur;
	unsigned char *pend;    /* RELAY_RECORD_MAX bytes */
	size_t plen, psent;
	int sent_exit;          /* the exit record is in pend or sent */
	int dead;
	uint64_t seq;           /* a client: accept order */
	int64_t progress_at;    /* ms: it last wrote, or had nothing to write */
};

static int sigpipe_w = -1;

static void on_signal(int sig)
{
	int e = errno;
	unsigned char b = (unsigned char)sig;

	if (write(sigpipe_w, &b, 1) < 0) {
		/* full: a signal is pending already */
	}
	errno = e;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A message of the wrapper's own on the system stream. */
__attribute__((format(printf, 2, 3)))
static void sysmsg(struct relay_ring *ring, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	memcpy(buf, "anyon-entry: ", 13);
	va_start(ap, fmt);
	n = vsnprintf(buf + 13, sizeof buf - 14, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = 13 + (n < (int)sizeof buf - 14 ? n : (int)sizeof buf - 15);
	buf[n++] = '\n';
	relay_ring_append(ring, RELAY_SYSTEM, buf, (size_t)n);
}

static void reader_close(struct reader *rd)
{
	if (rd->fd >= 0 && rd->is_client)
		close(rd->fd);
	rd->fd = -1;
	rd->dead = 1;
	if (rd->pend) {
		explicit_bzero(rd->pend, RELAY_RECORD_MAX);
		free(rd->pend);
	}
	rd->pend = NULL;
}

/* Whether rd has something to write now. */
static int reader_wants(const struct reader *rd, const struct relay_ring *ring, int exited)
{
	if (rd->dead || rd->fd < 0 || (rd->is_client && !rd->asked))
		return 0;
	return rd->psent < rd->plen || rd->cur.off != ring->end_off || (exited && !rd->sent_exit);
}

/* Writes what rd can take without blocking; a write error ends it. A
 * client is closed once its exit record is out. */
static void reader_pump(struct reader *rd, const struct relay_ring *ring, int exited, int32_t code, int32_t sig)
{
	size_t budget = PUMP_BYTES;

	while (!rd->dead && budget > 0) {
		ssize_t w;

		if (rd->psent == rd->plen) {
			rd->plen = relay_ring_next(ring, &rd->cur, rd->pend);
			rd->psent = 0;
			if (rd->plen == 0 && exited && !rd->sent_exit) {
				rd->plen = relay_exit_record(rd->pend, ring->end_off, (uint32_t)code, (uint32_t)sig);
				rd->sent_exit = 1;
			}
			if (rd->plen == 0) {
				if (rd->sent_exit && rd->is_client)
					reader_close(rd);
				return;
			}
		}
		w = write(rd->fd, rd->pend + rd->psent, rd->plen - rd->psent);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w <= 0) {
			reader_close(rd);
			return;
		}
		rd->psent += (size_t)w;
		rd->progress_at = now_ms();
		budget -= (size_t)w < budget ? (size_t)w : budget;
	}
}

/* Parses "after N\n"; 0 with *off, or -1. */
static int parse_request(const char *req, uint64_t *off)
{
	uint64_t v = 0;
	const char *p;

	if (strncmp(req, "after ", 6) != 0)
		return -1;
	p = req + 6;
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\n'))
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > RELAY_OFFSET_MAX)
			return -1;
	}
	if (p[0] != '\n' || p[1] != '\0')
		return -1;
	*off = v;
	return 0;
}

/* Reads a client's request; closes it on a bad one. */
static void client_read(struct reader *rd, const struct relay_ring *ring)
{
	ssize_t n;
	uint64_t off;

	if (rd->asked) {
		/* Nothing is expected: EOF or anything is the end. */
		char b[64];

		n = read(rd->fd, b, sizeof b);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		reader_close(rd);
		return;
	}
	n = read(rd->fd, rd->req + rd->reqlen, REQUEST_MAX - rd->reqlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		reader_close(rd);
		return;
	}
	rd->reqlen += (size_t)n;
	rd->req[rd->reqlen] = '\0';
	if (!memchr(rd->req, '\n', rd->reqlen)) {
		if (rd->reqlen >= REQUEST_MAX)
			reader_close(rd);
		return;
	}
	if (parse_request(rd->req, &off) < 0 || off > ring->end_off) {
		reader_close(rd);	/* refused: the client sees EOF before any record */
		return;
	}
	relay_cursor_init(&rd->cur, off);
	rd->asked = 1;
	rd->progress_at = now_ms();
}

static void client_accept(int lfd, struct reader *readers, int64_t now, long peer_uid)
{
	struct ucred cred;
	socklen_t cl = sizeof cred;
	static uint64_t accepted;
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int i, oldest = 1;

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    (cred.uid != getuid() && (peer_uid < 0 || cred.uid != (uid_t)peer_uid))) {
		close(fd);
		return;
	}
	/* All taken: the oldest goes (a replay of a worker that died while
	 * its exec lingers); the newest is the live worker's. */
	for (i = 1; i <= MAX_CLIENTS && readers[i].fd >= 0; i++)
		if (readers[i].seq < readers[oldest].seq)
			oldest = i;
	if (i > MAX_CLIENTS)
		reader_close(&readers[oldest]);
	for (i = 1; i <= MAX_CLIENTS; i++) {
		struct reader *rd = &readers[i];

		if (rd->fd >= 0)
			continue;
		memset(rd, 0, sizeof *rd);
		rd->seq = ++accepted;
		rd->pend = malloc(RELAY_RECORD_MAX);
		if (!rd->pend)
			break;
		rd->fd = fd;
		rd->is_client = 1;
		rd->deadline = now + REQUEST_MS;
		return;
	}
	close(fd);	/* out of memory */
}

/* The listening socket at path, mode 0600, in a directory of ours of mode
 * 0700. With a peer (peer_uid >= 0: the worker, which reaches the
 * directory from the host through a bind mount): the directory may be
 * entered by others but written by us only, and the socket is 0666; who
 * may ask is still only us and the peer (client_accept()). -1 with err
 * set. */
static int listen_at(const char *path, long peer_uid, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	char dir[sizeof sa.sun_path];
	struct stat st;
	char *slash;
	mode_t old;
	int fd, rc;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path || path[0] != '/') {
		snprintf(err, errlen, "the relay socket path must be absolute and shorter than %zu bytes",
			 sizeof sa.sun_path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	strcpy(dir, path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & (peer_uid >= 0 ? 022 : 077)) != 0) {
		snprintf(err, errlen, "the relay directory %s must be a directory of uid %u, mode %s",
			 dir, (unsigned)getuid(), peer_uid >= 0 ? "0700 or 0711" : "0700");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(077);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	if (rc < 0 && errno == EADDRINUSE) {
		/* A stale socket (nobody answers) is replaced; a live relay is not. */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) < 0 &&
		    errno == ECONNREFUSED && unlink(path) == 0)
			rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
		else
			errno = EADDRINUSE;
		if (probe >= 0)
			close(probe);
	}
	umask(old);
	if (rc < 0 || chmod(path, peer_uid >= 0 ? 0666 : 0600) < 0 || listen(fd, 8) < 0) {
		snprintf(err, errlen, "cannot listen at %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads what a pipe has (a few reads at most); -1 at EOF. With hold set,
 * only while the ring has room for a whole record without evicting what
 * hold has not sent yet. */
static int drain_pipe(int fd, enum relay_type type, struct relay_ring *ring, unsigned char *buf,
		      struct reader *hold)
{
	int i;

	for (i = 0; i < 16; i++) {
		ssize_t n;

		if (hold && ring->cap - relay_ring_unsent(ring, &hold->cur) < RELAY_RECORD_MAX)
			return 0;
		n = read(fd, buf, RELAY_DATA_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		relay_ring_append(ring, type, buf, (size_t)n);
	}
	return 0;
}

/* The reader the program waits for when the window is full: the live
 * worker's, i.e. the newest replay client that asked, else stdout; NULL
 * when it has stalled for longer than stall_ms (nobody reads: the program
 * goes on, the reader will get a lost record) or stall_ms is 0. */
static struct reader *primary(struct reader *readers, const struct relay_ring *ring, int exited,
			      unsigned stall_ms, int64_t now)
{
	struct reader *p = NULL;
	int i;

	for (i = 1; i <= MAX_CLIENTS; i++)
		if (readers[i].fd >= 0 && !readers[i].dead && readers[i].asked && (!p || readers[i].seq > p->seq))
			p = &readers[i];
	if (!p && !readers[0].dead)
		p = &readers[0];
	if (!p || stall_ms == 0)
		return NULL;
	/* (stdout's reader without a descriptor never makes progress) */
	if (p->fd >= 0 && !reader_wants(p, ring, exited))
		p->progress_at = now;
	return now - p->progress_at < (int64_t)stall_ms ? p : NULL;
}

static const int FORWARDED[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

int relay_serve(const struct relay_opts *o, char **argv)
{
	struct relay_ring ring;
	struct reader readers[1 + MAX_CLIENTS];
	struct sigaction sa;
	unsigned char *buf;
	char err[256];
	int sp[2], outp[2], errp[2];
	int lfd, i, status = 0;
	int out_open = 1, err_open = 1, child_done = 0, exited = 0, stopping = 0;
	int32_t code = 0, sig = 0;
	int64_t drain_end = 0, exit_at = 0, linger_end = 0;
	pid_t pid;

	lfd = listen_at(o->socket_path, o->peer_uid, err, sizeof err);
	if (lfd < 0) {
		fprintf(stderr, "anyon-entry: %s; nothing run\n", err);
		return 125;
	}
	buf = malloc(RELAY_DATA_MAX);
	if (!buf || relay_ring_init(&ring, o->window) < 0 ||
	    pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		fprintf(stderr, "anyon-entry: cannot set up the relay: %s; nothing run\n", strerror(errno));
		return 125;
	}
	sigpipe_w = sp[1];
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < (int)(sizeof FORWARDED / sizeof FORWARDED[0]); i++)
		sigaction(FORWARDED[i], &sa, NULL);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "anyon-entry: fork: %s; nothing run\n", strerror(errno));
		return 125;
	}
	if (pid == 0) {
		sigset_t none;

		setpgid(0, 0);
		for (i = 0; i < (int)(sizeof FORWARDED / sizeof FORWARDED[0]); i++)
			signal(FORWARDED[i], SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0)
			_exit(125);
		execvp(argv[0], argv);
		dprintf(2, "anyon-entry: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);	/* either side may win; both set the same */
	close(outp[1]);
	close(errp[1]);
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	/* Our stdout: the attach stream. Never let it block the program. */
	fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_NONBLOCK);

	memset(readers, 0, sizeof readers);
	for (i = 0; i <= MAX_CLIENTS; i++)
		readers[i].fd = -1;
	readers[0].fd = 1;
	readers[0].pend = malloc(RELAY_RECORD_MAX);
	if (!readers[0].pend)
		readers[0].dead = 1;
	/* Records only to the socket (the worker reads it from the host; the
	 * engine's stream carries nothing): stdout's reader stays, without a
	 * descriptor, as the reader the program waits for until the first
	 * client asks (at most stall_ms), so what the program prints before
	 * the worker connects is not pushed out of the window. */
	if (o->no_stdout)
		readers[0].fd = -1;
	relay_cursor_init(&readers[0].cur, 0);
	readers[0].progress_at = now_ms();

	for (;;) {
		struct pollfd pf[4 + 1 + MAX_CLIENTS];
		int idx_out = -1, idx_err = -1, idx_l = -1, idx_r[1 + MAX_CLIENTS];
		int n = 0, timeout = -1, held;
		int64_t now = now_ms();
		struct reader *hold;
		unsigned char sb[16];

		/* Backpressure: while the live reader keeps reading, the
		 * program waits for it rather than lose what it has not read. */
		hold = primary(readers, &ring, exited, o->stall_ms, now);
		held = hold && ring.cap - relay_ring_unsent(&ring, &hold->cur) < RELAY_RECORD_MAX;
		/* Ending: the program reaped, its pipes at EOF (or the drain
		 * time over), then the exit record out, then the linger. */
		if (child_done && !exited && ((!out_open && !err_open) || (now >= drain_end && !held))) {
			if (out_open || err_open) {
				kill(-pid, SIGKILL);	/* what is left of its group */
				for (i = 0; i < 4; i++) {
					if (out_open)
						drain_pipe(outp[0], RELAY_STDOUT, &ring, buf, NULL);
					if (err_open)
						drain_pipe(errp[0], RELAY_STDERR, &ring, buf, NULL);
				}
			}
			if (out_open)
				close(outp[0]);
			if (err_open)
				close(errp[0]);
			out_open = err_open = 0;
			exited = 1;
			exit_at = now;
			linger_end = now + (int64_t)o->linger_s * 1000;
		}
		if (exited) {
			int out_done = readers[0].dead || (readers[0].sent_exit && readers[0].psent == readers[0].plen);
			/* A reader that got the exit record proves nothing (an
			 * exec's output outlives its reader): whoever has it
			 * ends the linger with a stop (TERM). */
			if (out_done && (stopping || now >= linger_end))
				break;
			if (now >= exit_at + FLUSH_MS + (stopping ? 0 : (int64_t)o->linger_s * 1000))
				break;	/* stdout does not take the exit record */
		}

		pf[n] = (struct pollfd){ .fd = sp[0], .events = POLLIN };
		n++;
		if (out_open && !held) {
			idx_out = n;
			pf[n++] = (struct pollfd){ .fd = outp[0], .events = POLLIN };
		}
		if (err_open && !held) {
			idx_err = n;
			pf[n++] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
		}
		if (held) {
			int64_t left = hold->progress_at + o->stall_ms - now + 1;
			timeout = left < 0 ? 0 : (int)left;
		}
		idx_l = n;
		pf[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (i = 0; i <= MAX_CLIENTS; i++) {
			struct reader *rd = &readers[i];
			short ev = 0;

			idx_r[i] = -1;
			if (rd->dead || rd->fd < 0)
				continue;
			if (rd->is_client)
				ev |= POLLIN;
			if (reader_wants(rd, &ring, exited))
				ev |= POLLOUT;
			if (!ev)
				continue;
			idx_r[i] = n;
			pf[n++] = (struct pollfd){ .fd = rd->fd, .events = ev };
			if (rd->is_client && !rd->asked) {
				int64_t left = rd->deadline - now;
				if (left < 0)
					left = 0;
				if (timeout < 0 || left < timeout)
					timeout = (int)left;
			}
		}
		if (child_done && !exited) {
			int64_t left = drain_end - now;
			timeout = left < 0 ? 0 : (timeout < 0 || left < timeout ? (int)left : timeout);
		}
		if (exited)
			timeout = timeout < 0 || timeout > 200 ? 200 : timeout;

		if (poll(pf, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			sysmsg(&ring, "poll: %s", strerror(errno));
			kill(-pid, SIGKILL);
			break;
		}
		now = now_ms();

		if (pf[0].revents) {
			ssize_t k = read(sp[0], sb, sizeof sb);

			for (i = 0; i < k; i++) {
				if (sb[i] == SIGCHLD)
					continue;
				if (!exited)
					kill(-pid, sb[i]);	/* to the program's whole group */
				if (child_done)
					stopping = 1;	/* a stop once it ended: no linger */
			}
		}
		/* Reap: the program, and orphans when we are PID 1. */
		for (;;) {
			int st;
			pid_t w = waitpid(-1, &st, WNOHANG);

			if (w <= 0)
				break;
			if (w == pid && !child_done) {
				child_done = 1;
				status = st;
				drain_end = now + DRAIN_MS;
				if (WIFSIGNALED(st)) {
					sig = WTERMSIG(st);
					code = 0;
				} else {
					code = WEXITSTATUS(st);
				}
			}
		}
		hold = primary(readers, &ring, exited, o->stall_ms, now);
		if (idx_out >= 0 && pf[idx_out].revents && drain_pipe(outp[0], RELAY_STDOUT, &ring, buf, hold) < 0) {
			close(outp[0]);
			out_open = 0;
		}
		if (idx_err >= 0 && pf[idx_err].revents && drain_pipe(errp[0], RELAY_STDERR, &ring, buf, hold) < 0) {
			close(errp[0]);
			err_open = 0;
		}
		if (pf[idx_l].revents & POLLIN)
			client_accept(lfd, readers, now, o->peer_uid);
		for (i = 0; i <= MAX_CLIENTS; i++) {
			struct reader *rd = &readers[i];

			if (idx_r[i] >= 0 && rd->is_client && (pf[idx_r[i]].revents & (POLLIN | POLLHUP | POLLERR)))
				client_read(rd, &ring);
			if (o->no_stdout && rd->is_client && rd->asked && !readers[0].dead)
				reader_close(&readers[0]);	/* the worker is here: it holds the program now */
			if (idx_r[i] >= 0 && !rd->is_client && (pf[idx_r[i]].revents & (POLLERR | POLLHUP)))
				reader_close(rd);	/* stdout gone: keep draining into the ring */
			if (rd->is_client && rd->fd >= 0 && !rd->asked && now >= rd->deadline)
				reader_close(rd);
		}
		for (i = 0; i <= MAX_CLIENTS; i++)
			if (reader_wants(&readers[i], &ring, exited))
				reader_pump(&readers[i], &ring, exited, code, sig);
	}

	for (i = 0; i <= MAX_CLIENTS; i++)
		reader_close(&readers[i]);
	close(lfd);
	unlink(o->socket_path);
	relay_ring_release(&ring);
	free(buf);
	if (!child_done)
		return 125;
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int relay_replay(const char *socket_path, uint64_t after)
{
	struct sockaddr_un sa;
	char req[REQUEST_MAX + 1];
	unsigned char *buf;
	size_t total = 0;
	int fd, len;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof sa.sun_path) {
		fprintf(stderr, "anyon-entry: the relay socket path is too long\n");
		return 125;
	}
	strcpy(sa.sun_path, socket_path);
	signal(SIGPIPE, SIG_IGN);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "anyon-entry: no relay at %s: %s\n", socket_path, strerror(errno));
		return 125;
	}
	len = snprintf(req, sizeof req, "after %llu\n", (unsigned long long)after);
	buf = malloc(RELAY_DATA_MAX);
	if (!buf || write(fd, req, (size_t)len) != len) {
		fprintf(stderr, "anyon-entry: cannot ask the relay: %s\n", strerror(errno));
		return 125;
	}
	for (;;) {
		ssize_t n = read(fd, buf, RELAY_DATA_MAX), off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "anyon-entry: reading the relay: %s\n", strerror(errno));
			return 1;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		while (off < n) {
			ssize_t w = write(1, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return 1;	/* the reader went away (a worker died again) */
			off += w;
		}
	}
	explicit_bzero(buf, RELAY_DATA_MAX);
	free(buf);
	close(fd);
	if (total == 0) {
		fprintf(stderr, "anyon-entry: the relay refused offset %llu (past the end?)\n",
			(unsigned long long)after);
		return 125;
	}
	return 0;
}
