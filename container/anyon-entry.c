/* anyon-entry - the agent image's entry point (ENTRYPOINT of container/Dockerfile).
 *
 *     anyon-entry [--secrets-dir DIR] [-- PROGRAM [ARG...]]
 *
 * Reads a secret bundle (container/bundle.h) from stdin to EOF, writes each
 * secret as a 0600 file of the calling user into DIR (default
 * /run/anyon/secrets: the tmpfs Docker mounts with mode=0700,uid=1000,
 * gid=1000), wipes its buffer, then execs PROGRAM in its own process group
 * with stdin from /dev/null. Without a PROGRAM it only writes the files (an
 * exec that adds secrets to a running container). Nothing is written unless
 * the whole bundle is valid; a file that cannot be written undoes the others.
 *
 * Exit status: 125 bad usage, bundle or secrets directory; 126 run as root;
 * 127 PROGRAM cannot be executed; otherwise PROGRAM's own.
 *
 * Built by make on the host (Debian 12) as a static binary without
 * sanitizers, so it runs in the bookworm image whatever the build flags.
 */
#define _DEFAULT_SOURCE
#include "container/bundle.h"
#include "container/relay.h"
#include "container/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_DIR "/run/anyon/secrets"

__attribute__((format(printf, 2, 3), noreturn))
static void die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("anyon-entry: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* Whether buf[0..n) is a whole bundle: it ends with its `end` line, and
 * parses. The first such prefix is the bundle (its `end` stands where the
 * grammar puts it, and nothing may follow). */
static bool bundle_whole(const unsigned char *buf, size_t n)
{
	struct bundle b;
	char err[8];
	bool whole = n >= 4 && memcmp(buf + n - 4, "end\n", 4) == 0 && bundle_parse(buf, n, &b, err, sizeof err) == 0;

	explicit_bzero(&b, sizeof b);
	return whole;
}

/* Reads the bundle from fd 0 into buf (cap bytes): up to its `end` line,
 * or to EOF (an empty stdin, or a malformed bundle the caller rejects).
 * Stopping at `end` means the wrapper never depends on the engine passing
 * the sender's half-close on (see container/README.md). Returns the
 * length, or cap + 1 when there is more than cap, or -1 on a read error.
 * A closed stdin reads as empty. */
static long read_bundle(unsigned char *buf, size_t cap)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(0, buf + n, cap + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EBADF && n == 0)
			return 0;
		if (r < 0)
			return -1;
		if (r == 0)
			return (long)n;
		n += (size_t)r;
		if (n > cap)
			return (long)n;
		if (bundle_whole(buf, n))
			return (long)n;
	}
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Removes the first n files of b from dfd (undoing a write that failed). */
static void unwrite(int dfd, const struct bundle *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		unlinkat(dfd, b->secrets[i].name, 0);
}

/* Writes every secret of b into dir; returns 0, or -1 with err set and
 * nothing left behind. */
static int write_secrets(const char *dir, const struct bundle *b, char *err, size_t errlen)
{
	struct stat st;
	size_t i;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd < 0) {
		snprintf(err, errlen, "cannot open the secrets directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fstat(dfd, &st) < 0 || st.st_uid != getuid() || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "the secrets directory %s must belong to uid %u and be mode 0700",
			 dir, (unsigned)getuid());
		close(dfd);
		return -1;
	}
	for (i = 0; i < b->n; i++) {
		const struct bundle_secret *s = &b->secrets[i];
		int fd = openat(dfd, s->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		int bad;

		if (fd < 0) {
			snprintf(err, errlen, "cannot create %s/%s: %s", dir, s->name, strerror(errno));
			unwrite(dfd, b, i);
			close(dfd);
			return -1;
		}
		bad = fchmod(fd, 0600) < 0 || write_all(fd, s->value, s->len) < 0;
		if (close(fd) < 0 || bad) {
			snprintf(err, errlen, "cannot write %s/%s: %s", dir, s->name, strerror(errno));
			unwrite(dfd, b, i + 1);
			close(dfd);
			return -1;
		}
	}
	close(dfd);
	return 0;
}

#define USAGE "usage: anyon-entry [--secrets-dir DIR] [--relay [--window BYTES] [--stall-ms MS] [--linger SECONDS]" \
	" [--relay-socket PATH] [--relay-peer-uid UID] [--relay-no-stdout]] [-- PROGRAM [ARG...]]\n" \
	"       anyon-entry replay --after OFFSET [--relay-socket PATH]"

/* A decimal number without sign or leading zero, at most max; 0 or -1. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0'))
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

static int replay_main(int argc, char **argv)
{
	const char *sock = RELAY_SOCKET_DEFAULT;
	uint64_t after = 0;
	int i, have = 0;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], RELAY_OFFSET_MAX, &after) < 0)
				die(125, "--after wants a byte offset (decimal)");
			have = 1;
		} else if (strcmp(argv[i], "--relay-socket") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else {
			die(125, USAGE);
		}
	}
	if (!have)
		die(125, USAGE);
	if (getuid() == 0 || geteuid() == 0)
		die(126, "refusing to run as root: run the exec as uid 1000 (User \"1000:1000\")");
	return relay_replay(sock, after);
}

int main(int argc, char **argv)
{
	const char *dir = DEFAULT_DIR;
	struct relay_opts ro = { RELAY_SOCKET_DEFAULT, RELAY_WINDOW_DEFAULT, 0, RELAY_STALL_DEFAULT, -1, 0 };
	int relay = 0;
	uint64_t v;
	unsigned char *buf;
	struct bundle b;
	char err[256];
	long len;
	int i, fd, rc;

	if (argc > 1 && strcmp(argv[1], "replay") == 0)
		return replay_main(argc, argv);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--secrets-dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(argv[i], "--relay") == 0) {
			relay = 1;
		} else if (strcmp(argv[i], "--relay-socket") == 0 && i + 1 < argc) {
			ro.socket_path = argv[++i];
		} else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], RELAY_WINDOW_MAX, &v) < 0 || v < RELAY_RING_MIN)
				die(125, "--window wants %d..%zu bytes", RELAY_RING_MIN, RELAY_WINDOW_MAX);
			ro.window = (size_t)v;
		} else if (strcmp(argv[i], "--stall-ms") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], RELAY_STALL_MAX, &v) < 0)
				die(125, "--stall-ms wants 0..%d milliseconds", RELAY_STALL_MAX);
			ro.stall_ms = (unsigned)v;
		} else if (strcmp(argv[i], "--relay-peer-uid") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], 0x7fffffff, &v) < 0)
				die(125, "--relay-peer-uid wants a uid (decimal)");
			ro.peer_uid = (long)v;
		} else if (strcmp(argv[i], "--relay-no-stdout") == 0) {
			ro.no_stdout = 1;
		} else if (strcmp(argv[i], "--linger") == 0 && i + 1 < argc) {
			if (parse_u64(argv[++i], RELAY_LINGER_MAX, &v) < 0)
				die(125, "--linger wants 0..%d seconds", RELAY_LINGER_MAX);
			ro.linger_s = (unsigned)v;
		} else {
			die(125, USAGE);
		}
	}
	if (relay && i >= argc)
		die(125, "--relay needs a PROGRAM");
	/* A terminal would mangle the records (\n to \r\n, echo). */
	if (relay && isatty(1))
		die(125, "--relay writes records: its stdout must not be a terminal (create the container with Tty false)");
	if (getuid() == 0 || geteuid() == 0)
		die(126, "refusing to run as root: run the container as uid 1000 (User \"1000:1000\")");

	buf = malloc(BUNDLE_MAX_BYTES + 1);
	if (!buf)
		die(125, "out of memory");
	len = read_bundle(buf, BUNDLE_MAX_BYTES);
	if (len < 0 || len > BUNDLE_MAX_BYTES) {
		int e = errno;
		explicit_bzero(buf, BUNDLE_MAX_BYTES + 1);
		free(buf);
		if (len < 0)
			die(125, "cannot read the secret bundle from stdin: %s", strerror(e));
		die(125, "the secret bundle is larger than %d bytes", BUNDLE_MAX_BYTES);
	}
	rc = bundle_parse(buf, (size_t)len, &b, err, sizeof err);
	if (rc == 0 && b.n > 0)
		rc = write_secrets(dir, &b, err, sizeof err);
	explicit_bzero(buf, BUNDLE_MAX_BYTES + 1);
	explicit_bzero(&b, sizeof b);
	free(buf);
	if (rc < 0)
		die(125, "%s; nothing written, nothing run", err);
	if (i >= argc)
		return 0;

	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		die(125, "cannot open /dev/null as stdin: %s", strerror(errno));
	if (fd != 0)
		close(fd);
	if (relay)
		return relay_serve(&ro, argv + i);
	/* Its own group, so a TERM to the group (tini with
	 * TINI_KILL_PROCESS_GROUP=1, or kill -TERM -PGID) reaches its children. */
	if (getpgrp() != getpid() && setpgid(0, 0) < 0)
		die(125, "cannot start a process group: %s", strerror(errno));
	execvp(argv[i], argv + i);
	die(127, "cannot run %s: %s", argv[i], strerror(errno));
}
