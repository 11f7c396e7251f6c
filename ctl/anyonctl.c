/* anyonctl - the admin command line: schema, health of a deployment, jobs.
 * Commands are a table; each gets argc/argv after its own name. */
#include "autoconfig.h"

#include <errno.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <fastcgi.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "services/access.h"
#include "services/audit.h"
#include "services/docker.h"
#include "base/config.h"
#include "base/keyring.h"
#include "services/legacy.h"
#include "services/secrets.h"
#include "services/jobkinds.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"

static struct db *open_db(bool migrate)
{
	char err[256];
	struct db *db = db_open(g_config.db_path, migrate, err, sizeof(err));

	if (!db)
		die("%s", err);
	/* What this command changes, the pool's answer cache forgets at once. */
	db_share_commits(db, g_config.data_dir, false);
	return db;
}

static int cmd_migrate(int argc, char **argv)
{
	struct db *db;
	int applied = 0, cur, latest;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: anyonctl migrate\n");
		return 2;
	}
	db = open_db(false);
	if (db_migrate(db, &applied)) {
		db_close(db);
		fprintf(stderr, "anyonctl: migration failed; the database is unchanged from the last good step\n");
		return 1;
	}
	db_schema_version(db, &cur, &latest);
	printf("schema at version %d (%d applied now)\n", cur, applied);
	db_close(db);
	return 0;
}

struct doctor {
	int failures;
};

static void check(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%-5s %-10s ", ok ? "ok" : "FAIL", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	d->failures += !ok;
}

static void note(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line that is worth knowing but no failure. */
static void note(const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%-5s %-10s ", "note", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ---- doctor's FastCGI probe ----
 * libfcgi has no client side, so doctor writes the few records of one
 * request itself (the layouts of libfcgi's fastcgi.h): GET /api/health as
 * nginx sends it from a loopback peer, and reads the answer's Status. */
#define PROBE_TIMEOUT_S 5
#define PROBE_ANSWER_MAX (64 * 1024)

static int probe_connect(const char *target, char *err, size_t errlen)
{
	struct timeval tv = { PROBE_TIMEOUT_S, 0 };
	int fd = -1;

	if (strchr(target, '/')) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		if (!str_copy(sa.sun_path, sizeof(sa.sun_path), target)) {
			snprintf(err, errlen, "socket path too long");
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
				setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
				connect(fd, (struct sockaddr *)&sa, sizeof(sa)))) {
			snprintf(err, errlen, "cannot connect: %s", strerror(errno));
			close(fd);
			return -1;
		}
	} else {
		char host[256];
		const char *colon = strrchr(target, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
		size_t n = colon ? (size_t)(colon - target) : 0;
		int rc;

		if (!colon || n >= sizeof(host)) {
			snprintf(err, errlen, "not a socket path nor HOST:PORT");
			return -1;
		}
		memcpy(host, target, n);
		host[n] = '\0';
		if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
			memmove(host, host + 1, n - 2);
			host[n - 2] = '\0';
		}
		rc = getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints, &ai);
		if (rc) {
			snprintf(err, errlen, "cannot resolve: %s", gai_strerror(rc));
			return -1;
		}
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
				setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
				connect(fd, ai->ai_addr, ai->ai_addrlen))) {
			snprintf(err, errlen, "cannot connect: %s", strerror(errno));
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		return fd;
	}
	if (fd < 0)
		snprintf(err, errlen, "no socket: %s", strerror(errno));
	return fd;
}

/* Appends one record (request id 1, no padding) to buf at *len. */
static void probe_record(unsigned char *buf, size_t *len, unsigned char type, const void *content,
			 size_t clen)
{
	FCGI_Header h = { .version = FCGI_VERSION_1, .type = type, .requestIdB0 = 1,
			  .contentLengthB1 = (unsigned char)(clen >> 8),
			  .contentLengthB0 = (unsigned char)(clen & 0xff) };

	memcpy(buf + *len, &h, sizeof(h));
	if (clen)
		memcpy(buf + *len + sizeof(h), content, clen);
	*len += sizeof(h) + clen;
}

/* One name-value pair of at most 127 bytes each (one-byte lengths). */
static size_t probe_param(unsigned char *p, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	p[0] = (unsigned char)nl;
	p[1] = (unsigned char)vl;
	memcpy(p + 2, name, nl);
	memcpy(p + 2 + nl, value, vl);
	return 2 + nl + vl;
}

/* GET /api/health through the pool's socket. Returns the HTTP status, or
 * -1 with the reason in what; what otherwise gets the answer's "status". */
static int probe_health(const char *target, char *what, size_t whatlen)
{
	static const char *const params[][2] = {
		{ "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/api/health" },
		{ "DOCUMENT_URI", "/api/health" }, { "QUERY_STRING", "" },
		{ "SERVER_PROTOCOL", "HTTP/1.1" }, { "GATEWAY_INTERFACE", "CGI/1.1" },
		{ "REMOTE_ADDR", "127.0.0.1" }, { "SERVER_ADDR", "127.0.0.1" },
		{ "SERVER_PORT", "80" }, { "SERVER_NAME", "localhost" }, { "HTTP_HOST", "localhost" },
		{ "CONTENT_LENGTH", "" },
	};
	FCGI_BeginRequestBody begin = { .roleB0 = FCGI_RESPONDER };
	unsigned char req[2048], pbuf[1024], *ans = NULL;
	size_t rlen = 0, plen = 0, alen = 0, out = 0;
	char *text = NULL, *status, *body;
	int fd, code = -1;
	bool ended = false;

	fd = probe_connect(target, what, whatlen);
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(params); i++)
		plen += probe_param(pbuf + plen, params[i][0], params[i][1]);
	probe_record(req, &rlen, FCGI_BEGIN_REQUEST, &begin, sizeof(begin));
	probe_record(req, &rlen, FCGI_PARAMS, pbuf, plen);
	probe_record(req, &rlen, FCGI_PARAMS, NULL, 0);
	probe_record(req, &rlen, FCGI_STDIN, NULL, 0);
	for (size_t sent = 0; sent < rlen;) {
		ssize_t n = send(fd, req + sent, rlen - sent, MSG_NOSIGNAL);

		if (n <= 0) {
			snprintf(what, whatlen, "cannot send the request: %s", strerror(errno));
			goto out;
		}
		sent += (size_t)n;
	}
	ans = malloc(PROBE_ANSWER_MAX);
	text = malloc(PROBE_ANSWER_MAX + 1);
	if (!ans || !text) {
		snprintf(what, whatlen, "out of memory");
		goto out;
	}
	while (!ended && alen < PROBE_ANSWER_MAX) {
		ssize_t n = recv(fd, ans + alen, PROBE_ANSWER_MAX - alen, 0);

		if (n < 0) {
			snprintf(what, whatlen, "no answer within %d s: %s", PROBE_TIMEOUT_S, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		alen += (size_t)n;
		/* Records complete so far: STDOUT content kept, END_REQUEST ends. */
		out = 0;
		for (size_t at = 0; at + FCGI_HEADER_LEN <= alen;) {
			const FCGI_Header *h = (const FCGI_Header *)(ans + at);
			size_t clen = (size_t)h->contentLengthB1 << 8 | h->contentLengthB0;

			if (at + FCGI_HEADER_LEN + clen + h->paddingLength > alen)
				break;
			if (h->type == FCGI_STDOUT) {
				memcpy(text + out, ans + at + FCGI_HEADER_LEN, clen);
				out += clen;
			}
			ended = ended || h->type == FCGI_END_REQUEST;
			at += FCGI_HEADER_LEN + clen + h->paddingLength;
		}
	}
	if (!ended) {
		snprintf(what, whatlen, "the answer ended early (%zu bytes)", alen);
		goto out;
	}
	text[out] = '\0';
	body = strstr(text, "\r\n\r\n");
	status = strncmp(text, "Status:", 7) == 0 ? text : strstr(text, "\r\nStatus:");
	code = 200;
	if (status && (!body || status < body))
		code = atoi(status + (status == text ? 7 : 9));
	if (body) {
		struct json_object *j = NULL, *st = NULL;
		char jerr[64];

		body += 4;
		if (json_parse(body, strlen(body), &j, jerr, sizeof(jerr)) == 0 &&
		    json_object_object_get_ex(j, "status", &st))
			snprintf(what, whatlen, "%d, status %s", code, json_object_get_string(st));
		else
			snprintf(what, whatlen, "%d", code);
		json_object_put(j);
	} else {
		snprintf(what, whatlen, "%d", code);
	}
out:
	free(ans);
	free(text);
	close(fd);
	return code;
}

/* The keyring as the programs find it, and every sealed secret opened
 * once with it. */
static void doctor_keyring(struct doctor *d, struct db *db, int schema)
{
	char path[CONFIG_PATH_MAX], err[CONFIG_PATH_MAX + 320];
	struct secret_store st = { .db = db };
	struct keyring kr = { 0 };
	int64_t checked = 0, bad = 0;

	keyring_path(path, sizeof(path));
	if (keyring_load(&kr, path, err, sizeof(err))) {
		check(d, false, "keyring", "%s", err);
		return;
	}
	check(d, true, "keyring", "%s: %d key(s), active %s", path, kr.n, keyring_active(&kr)->id);
	st.kr = &kr;
	if (schema > 0 && secret_verify_all(&st, &checked, &bad) != SECRET_OK && !bad)
		check(d, false, "secrets", "reading the secrets failed (see the log)");
	else
		check(d, bad == 0, "secrets", bad ? "%lld of %lld do NOT decrypt with this keyring: it is "
		      "not the one that sealed them (ANYON_KEY_FILE of the services' settings?)" :
		      "all %lld decrypt with this keyring", (long long)(bad ? bad : checked),
		      (long long)checked);
	keyring_wipe(&kr);
}

/* ---- doctor --nginx FILE ----
 * nginx itself judges the syntax (`nginx -T -q -c FILE`: the test of -t,
 * then the whole configuration with its includes on stdout); doctor reads
 * that dump only as far as the two settings that break anyon silently:
 * the socket of the anyon_fcgi upstream, and the server_name that must
 * list ANYON_PUBLIC_URL's host. */
#define NGINX_DUMP_MAX (4 * 1024 * 1024)
#define NGINX_ERR_MAX 4096
#define NGINX_WORD_MAX 512

/* Runs nginx -T -q -c FILE. Returns its exit status (127: it could not be
 * started), the dump in *out (malloc'd, the caller frees; NULL when nginx
 * failed) and its stderr in err. -1 when the dump is over the limit. */
static int nginx_dump(const char *file, char **out, char *err, size_t errlen)
{
	char *const argv[] = { "nginx", "-T", "-q", "-c", (char *)file, NULL };
	FILE *errf = tmpfile();
	size_t len = 0, got;
	char *buf = malloc(NGINX_DUMP_MAX + 1);
	int fds[2] = { -1, -1 }, status = 0;
	pid_t pid = -1;
	ssize_t n;

	*out = NULL;
	err[0] = '\0';
	if (!errf || !buf || fcntl(fileno(errf), F_SETFD, FD_CLOEXEC) || pipe2(fds, O_CLOEXEC)) {
		snprintf(err, errlen, "cannot run nginx: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot run nginx: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null < 0 || dup2(null, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fileno(errf), 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		fprintf(stderr, "%s", strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	fds[1] = -1;
	while (len < NGINX_DUMP_MAX && (n = read(fds[0], buf + len, NGINX_DUMP_MAX - len)) != 0) {
		if (n < 0 && errno != EINTR)
			break;
		len += n > 0 ? (size_t)n : 0;
	}
	if (len == NGINX_DUMP_MAX)
		kill(pid, SIGKILL);
	close(fds[0]);
	fds[0] = -1;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rewind(errf);
	got = fread(err, 1, errlen - 1, errf);
	err[got] = '\0';
	fclose(errf);
	if (len == NGINX_DUMP_MAX) {
		free(buf);
		snprintf(err, errlen, "its configuration is over %d MiB: not read", NGINX_DUMP_MAX >> 20);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		free(buf);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
fail:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (errf)
		fclose(errf);
	free(buf);
	return 127;
}

/* nginx's own message: its first line of level warn or worse, without
 * the date, level and pid#tid before it; else its first line. In place. */
static const char *nginx_message(char *text)
{
	static const char *const levels[] = { "[emerg] ", "[alert] ", "[crit] ", "[error] ", "[warn] " };
	char *m = NULL, *nl;
	size_t pid, tid;

	for (size_t i = 0; i < ARRAY_SIZE(levels) && !m; i++)
		if ((m = strstr(text, levels[i])))
			m += strlen(levels[i]);
	if (!m)
		m = text;
	/* "1234#1234: " when written through the error log. */
	pid = strspn(m, "0123456789");
	tid = pid && m[pid] == '#' ? strspn(m + pid + 1, "0123456789") : 0;
	if (tid && strncmp(m + pid + 1 + tid, ": ", 2) == 0)
		m += pid + tid + 3;
	nl = strchr(m, '\n');
	if (nl)
		*nl = '\0';
	return m;
}

/* The next token of nginx's syntax at *p: 'w' (a word, unquoted, into
 * word, cut at its size), ';', '{', '}', or 0 at the end. A '#' that
 * starts a token comments out the rest of its line. */
static int nginx_token(const char **p, char *word, size_t size)
{
	const char *s = *p;
	size_t n = 0;
	char quote = 0;
	bool var = false;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s != '#')
			break;
		while (*s && *s != '\n')
			s++;
	}
	if (!*s) {
		*p = s;
		return 0;
	}
	if (*s == ';' || *s == '{' || *s == '}') {
		*p = s + 1;
		return *s;
	}
	if (*s == '"' || *s == '\'')
		quote = *s++;
	for (char prev = 0; *s; prev = *s++) {
		/* ${name} is one word, braces and all. */
		if (quote ? *s == quote : !var && strchr(" \t\r\n;{}", *s) && !(*s == '{' && prev == '$'))
			break;
		var = !quote && (var ? *s != '}' : *s == '{');
		if (*s == '\\' && s[1])
			s++;
		if (n + 1 < size)
			word[n++] = *s;
	}
	if (quote && *s)
		s++;
	word[n] = '\0';
	*p = s;
	return 'w';
}

/* Whether server_name's name covers host: the same name, "*.suffix" or
 * ".domain" (the domain and every name under it), case aside. */
static bool nginx_name_covers(const char *name, const char *host)
{
	size_t nl = strlen(name), hl = strlen(host);

	if (strcasecmp(name, host) == 0)
		return true;
	if (name[0] == '.' && strcasecmp(name + 1, host) == 0)
		return true;
	if (name[0] == '*' && name[1] == '.')
		name++, nl--;
	return name[0] == '.' && hl > nl && strcasecmp(host + hl - nl, name) == 0;
}

struct nginx_scan {
	char upstream_bad[NGINX_WORD_MAX]; /* the first anyon_fcgi server that is not the socket */
	int upstreams;                     /* "upstream anyon_fcgi" blocks seen */
	int servers, servers_bad;          /* their server entries, and those not the socket */
	bool name_found;                   /* some server_name covers the public host */
	bool name_regex;                   /* some server_name is a regular expression */
	int tls_hops;                      /* servers that set $anyon_https after the locations */
	int tls_early;                     /* servers that set it before them: overwritten */
};

/* The variables anyon-locations.conf sets from the connection and a server
 * for a proxy's plain-HTTP hop sets again after it (anyon-behind-proxy.conf). */
static bool nginx_tls_var(const char *word)
{
	return strcmp(word, "$anyon_https") == 0 || strcmp(word, "$anyon_server_port") == 0;
}

static bool nginx_includes_locations(const char *word)
{
	const char *base = strrchr(word, '/');

	return strcmp(base ? base + 1 : word, "anyon-locations.conf") == 0;
}

/* Walks the dump statement by statement: the files nginx -T prints are
 * whole blocks each, so a running depth is enough to know which block a
 * statement is in. */
static void nginx_scan(const char *dump, const char *sock, const char *host, struct nginx_scan *sc)
{
	char word[NGINX_WORD_MAX], first[32] = "", second[32] = "";
	int depth = 0, up_depth = -1, srv_depth = -1, idx = 0, tok;
	/* In the server block being read, at its own level: the locations
	 * included, and a `set` of nginx_tls_var() before and after that;
	 * server-level `set`s run in order, so only one after the include
	 * overrides what the include sets. */
	bool included = false, set_before = false, set_after = false;
	bool stmt_set = false, stmt_inc = false;

	while ((tok = nginx_token(&dump, word, sizeof(word))) != 0) {
		if (tok == 'w') {
			if (idx == 0)
				str_copy(first, sizeof(first), word);
			else if (idx == 1)
				str_copy(second, sizeof(second), word);
			if (idx == 1 && up_depth >= 0 && depth == up_depth + 1 && strcmp(first, "server") == 0) {
				sc->servers++;
				if (strcmp(word, sock)) {
					if (!sc->servers_bad++)
						str_copy(sc->upstream_bad, sizeof(sc->upstream_bad), word);
				}
			}
			if (idx >= 1 && strcmp(first, "server_name") == 0) {
				sc->name_found = sc->name_found || (host[0] && nginx_name_covers(word, host));
				sc->name_regex = sc->name_regex || word[0] == '~';
			}
			if (idx == 1 && srv_depth >= 0 && depth == srv_depth + 1) {
				stmt_set = strcmp(first, "set") == 0 && nginx_tls_var(word);
				stmt_inc = strcmp(first, "include") == 0 && nginx_includes_locations(word);
			}
			idx++;
			continue;
		}
		if (tok == ';') {
			if (stmt_set && included)
				set_after = true;
			else if (stmt_set)
				set_before = true;
			else if (stmt_inc)
				included = true;
		} else if (tok == '{') {
			if (idx == 2 && strcmp(first, "upstream") == 0 && strcmp(second, "anyon_fcgi") == 0) {
				up_depth = depth;
				sc->upstreams++;
			}
			if (idx == 1 && strcmp(first, "server") == 0 && up_depth < 0 && srv_depth < 0) {
				srv_depth = depth;
				included = set_before = set_after = false;
			}
			depth++;
		} else if (tok == '}' && depth > 0) {
			if (--depth == up_depth)
				up_depth = -1;
			if (depth == srv_depth) {
				srv_depth = -1;
				sc->tls_hops += included && set_after;
				sc->tls_early += included && set_before && !set_after;
			}
		}
		stmt_set = stmt_inc = false;
		idx = 0;
	}
}

/* nginx -t on the configuration nginx runs, then the socket and the names
 * anyon needs in it. */
static void doctor_nginx(struct doctor *d, const char *file)
{
	char err[NGINX_ERR_MAX], sock[CONFIG_PATH_MAX + 8];
	struct nginx_scan sc = { .upstreams = 0 };
	char *dump = NULL;
	int rc = nginx_dump(file, &dump, err, sizeof(err));

	if (rc == 127) {
		check(d, false, "nginx", "cannot run nginx -t: %s (is nginx installed, and on PATH=%s?)",
		      err[0] ? err : "not found", getenv("PATH") ? getenv("PATH") : "");
		return;
	}
	if (rc) {
		const char *msg = nginx_message(err);

		check(d, false, "nginx", "nginx -t -c %s: %s%s", file, msg[0] ? msg : "failed",
		      strstr(msg, "is not allowed here") ? " (give the main configuration that includes the "
		      "site, e.g. /etc/nginx/nginx.conf)" : "");
		return;
	}
	check(d, true, "nginx", "nginx -t -c %s: the syntax is ok", file);
	if (err[0])
		note("nginx", "%s", nginx_message(err));
	/* The pool's socket as nginx names it: unix:PATH, or HOST:PORT. */
	snprintf(sock, sizeof(sock), "%s%s", strchr(g_config.fcgi_socket, '/') ? "unix:" : "",
		 g_config.fcgi_socket);
	nginx_scan(dump, sock, g_config.public_host, &sc);
	free(dump);
	if (!sc.upstreams || !sc.servers)
		check(d, false, "upstream", "no \"upstream anyon_fcgi\" with servers in %s or its includes "
		      "(anyon-locations.conf passes the API to it)", file);
	else if (sc.servers_bad)
		check(d, false, "upstream", "anyon_fcgi has %s but ANYON_FCGI_SOCKET is %s: the two must "
		      "be the same socket", sc.upstream_bad, g_config.fcgi_socket);
	else
		check(d, true, "upstream", "anyon_fcgi: %s (ANYON_FCGI_SOCKET), %d entr%s", sock, sc.servers,
		      sc.servers == 1 ? "y" : "ies");
	if (!g_config.public_host[0])
		note("server_name", "no ANYON_PUBLIC_URL: only the loopback names are served, not checked");
	else if (sc.name_found)
		check(d, true, "server_name", "%s (ANYON_PUBLIC_URL's host) is listed", g_config.public_host);
	else
		check(d, false, "server_name", "no server_name lists %s, the host of ANYON_PUBLIC_URL (anyon "
		      "answers 421 to any other Host)%s", g_config.public_host, sc.name_regex ?
		      "; regular-expression names are not evaluated" : "");
	/* A declaration placed before the include is silently undone by it:
	 * the cookie is then not Secure behind the proxy. */
	if (sc.tls_early)
		check(d, false, "tls_at_proxy", "%d server%s set $anyon_https or $anyon_server_port before "
		      "including anyon-locations.conf, which sets them again from the connection: put the "
		      "sets after the include (docs/DEPLOYMENT.md, \"Behind an existing proxy\")",
		      sc.tls_early, sc.tls_early == 1 ? "" : "s");
	else if (sc.tls_hops)
		note("tls_at_proxy", "%d server%s declare%s that TLS ended at a proxy in front (anyon is told "
		     "HTTPS): only the proxy may reach %s listeners", sc.tls_hops, sc.tls_hops == 1 ? "" : "s",
		     sc.tls_hops == 1 ? "s" : "", sc.tls_hops == 1 ? "its" : "their");
}

static int cmd_doctor(int argc, char **argv)
{
	struct doctor d = { 0 };
	struct stat st;
	char err[256], engine[256], probe[256];
	struct db *db;
	int64_t beat;
	bool docker_ok, engine_ok;
	const char *nginx_conf = NULL;
	int cur = 0, latest = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--nginx") == 0 && i + 1 < argc) {
			nginx_conf = argv[++i];
		} else if (strncmp(argv[i], "--nginx=", 8) == 0 && argv[i][8]) {
			nginx_conf = argv[i] + 8;
		} else {
			fprintf(stderr, "usage: anyonctl doctor [--nginx FILE]   (FILE: nginx's main "
				"configuration, e.g. /etc/nginx/nginx.conf)\n");
			return 2;
		}
	}
	check(&d, stat(g_config.data_dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	      access(g_config.data_dir, W_OK) == 0, "data dir", "%s", g_config.data_dir);
	/* The engine as this host sees it; judged with the worker's view below
	 * (whoever runs doctor need not be allowed to reach Docker). */
	engine_ok = docker_probe(NULL, 5000, engine, sizeof(engine)) == 0;
	if (engine_ok)
		check(&d, true, "engine", "%s", engine);
	db = db_open(g_config.db_path, false, err, sizeof(err));
	check(&d, db != NULL, "database", "%s (%s)", db ? g_config.db_path : err,
	      db ? db_dialect(db) : db_target_is_pg(g_config.db_path) ? "postgresql" : "sqlite");
	if (!db) {
		if (!engine_ok)
			check(&d, false, "engine", "%s", engine);
		goto out;
	}
	db_schema_version(db, &cur, &latest);
	if (cur > latest)
		check(&d, false, "schema", "version %d, newer than this anyonctl's %d: a newer anyon "
		      "migrated this database; install that version here too (migrate cannot go back)",
		      cur, latest);
	else
		check(&d, cur == latest, "schema", "version %d of %d%s", cur, latest, cur == latest ? "" :
		      " (run: anyonctl migrate, or restart the services: they migrate at start)");
	rc = cur ? db_worker_latest(db, &beat, &docker_ok) : DB_NOTFOUND;
	if (rc == DB_OK) {
		int64_t age = now_s() - beat;

		check(&d, age <= 3 * g_config.heartbeat_s, "worker", "last heartbeat %llds ago",
		      (long long)age);
		check(&d, docker_ok, "docker", "%s", docker_ok ? "reachable from the worker" :
		      "the worker cannot reach the engine");
		/* Not reachable from here, but the live worker reaches it: a
		 * note, not a failure (the web pool's user has no Docker access). */
		if (!engine_ok && docker_ok && age <= 3 * g_config.heartbeat_s)
			note("engine", "not reachable from here: %s", engine);
		else if (!engine_ok)
			check(&d, false, "engine", "%s", engine);
	} else {
		check(&d, false, "worker", "no worker has ever run");
		if (!engine_ok)
			check(&d, false, "engine", "%s", engine);
	}
	doctor_keyring(&d, db, cur);
	db_close(db);
out:
	rc = probe_health(g_config.fcgi_socket, probe, sizeof(probe));
	check(&d, rc == 200, "fastcgi", "%s: GET /api/health: %s", g_config.fcgi_socket, probe);
	if (nginx_conf)
		doctor_nginx(&d, nginx_conf);
	printf("%s\n", d.failures ? "problems found" : "all checks passed");
	return d.failures ? 1 : 0;
}

static int print_chunk(const struct db_chunk *c, void *arg)
{
	int64_t *last = arg;

	fwrite(c->data, 1, c->len, strcmp(c->stream, "stdout") ? stderr : stdout);
	*last = c->seq;
	return 0;
}

/* anyonctl job echo [--wait] [--delay MS] LINE... */
static int cmd_job(int argc, char **argv)
{
	json_object *args, *lines;
	struct db_user local;
	struct db_job job;
	int64_t id, delay = 0, after = 0;
	bool wait = false, more;
	char err[256];
	struct db *db;
	int i = 2, rc;

	if (argc < 2 || strcmp(argv[1], "echo")) {
		fprintf(stderr, "usage: anyonctl job echo [--wait] [--delay MS] LINE...\n");
		return 2;
	}
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc &&
			 parse_i64(argv[i + 1], 0, ECHO_MAX_DELAY_MS, &delay) == 0)
			i++;
		else {
			fprintf(stderr, "anyonctl job echo: bad option '%s'\n", argv[i]);
			return 2;
		}
	}
	args = json_object_new_object();
	lines = json_object_new_array();
	for (; i < argc; i++)
		json_object_array_add(lines, json_object_new_string(argv[i]));
	json_set(args, "lines", lines);
	json_set(args, "delay_ms", json_object_new_int64(delay));
	if (jobkind_validate("echo", args, err, sizeof(err))) {
		fprintf(stderr, "anyonctl job echo: %s\n", err);
		json_object_put(args);
		return 2;
	}
	db = open_db(true);
	if (db_user_local(db, &local) != DB_OK ||
	    db_job_create(db, local.id, "echo", json_object_to_json_string(args),
			  jobkind_max_attempts(jobkind_find("echo")), now_s(), &id)) {
		json_object_put(args);
		db_close(db);
		fprintf(stderr, "anyonctl: cannot queue the job\n");
		return 1;
	}
	json_object_put(args);
	printf("job %lld queued\n", (long long)id);
	fflush(stdout);
	rc = 0;
	while (wait) {
		if (db_job_get(db, id, 0, &job) != DB_OK) {
			rc = 1;
			break;
		}
		db_job_output(db, id, after, 500, 1 << 20, print_chunk, &after, &more);
		fflush(stdout);
		if (job_state_final(job.state) && !more) {
			printf("job %lld %s%s%s\n", (long long)id, job_state_name(job.state),
			       job.error[0] ? ": " : "", job.error);
			rc = job.state == JOB_SUCCEEDED ? 0 : 1;
			db_job_release(&job);
			break;
		}
		db_job_release(&job);
		usleep(100 * 1000);
	}
	db_close(db);
	return rc;
}


static struct keyring keyring;

/* Opens the database and the keyring into st. */
static struct db *open_store(struct secret_store *st)
{
	struct db *db = open_db(true);

	keyring_load_or_die(&keyring);
	st->db = db;
	st->kr = &keyring;
	return db;
}

static void close_store(struct db *db)
{
	db_close(db);
	keyring_wipe(&keyring);
}

/* Whether the database already holds secrets, which a new keyring could
 * never open (its first key is "k1" too, with other bytes): true, with
 * what to do in err, also when the database cannot be checked. A SQLite
 * file that does not exist yet holds nothing. */
static bool db_holds_secrets(char *err, size_t errlen)
{
	char oerr[256];
	struct stat st;
	struct db *db;
	int64_t id;
	int cur = 0, latest = 0, n = 0;
	bool holds;

	if (!db_target_is_pg(g_config.db_path) && stat(g_config.db_path, &st) != 0 && errno == ENOENT)
		return false;
	db = db_open(g_config.db_path, false, oerr, sizeof(oerr));
	if (!db) {
		snprintf(err, errlen, "cannot check the database for secrets before making a keyring: %s", oerr);
		return true;
	}
	if (db_schema_version(db, &cur, &latest) ||
	    (cur > 0 && db_secret_ids_not_under(db, "", 0, &id, 1, &n))) {
		db_close(db);
		snprintf(err, errlen, "cannot check the database for secrets before making a keyring");
		return true;
	}
	db_close(db);
	holds = n > 0;
	if (holds)
		snprintf(err, errlen, "the database %s already holds secrets sealed by another keyring; "
			 "a new one could not open them. Use that keyring: ANYON_KEY_FILE of the services' "
			 "settings (anyonctl --config FILE, default " CONFIG_ENV_FILE ")",
			 db_target_is_pg(g_config.db_path) ? "(postgresql)" : g_config.db_path);
	return holds;
}

static int cmd_init_keys(int argc, char **argv)
{
	char path[CONFIG_PATH_MAX], err[CONFIG_PATH_MAX + 512];
	bool if_missing = argc > 1 && strcmp(argv[1], "--if-missing") == 0;

	keyring_path(path, sizeof(path));
	if (if_missing && access(path, F_OK) == 0)
		return 0;
	if (access(path, F_OK) != 0 && db_holds_secrets(err, sizeof(err))) {
		fprintf(stderr, "anyonctl: %s\n", err);
		return 1;
	}
	if (keyring_create(path, err, sizeof(err))) {
		fprintf(stderr, "anyonctl: %s\n", err);
		return 1;
	}
	printf("created keyring %s (mode 0600). Back it up: without it no secret can be read.\n", path);
	return 0;
}

/* Finds a user by login, or the local user when login is NULL. */
static int find_user(struct db *db, const char *login, struct db_user *u)
{
	int rc = login ? db_user_by_login(db, login, u) : db_user_local(db, u);

	if (rc != DB_OK)
		fprintf(stderr, "anyonctl: no user '%s'\n", login ? login : "local");
	return rc == DB_OK ? 0 : -1;
}

static int cmd_rotate_key(int argc, char **argv)
{
	const char *retire = NULL;
	bool resume = false;
	int64_t batch = 100, left;
	struct secret_store st;
	char err[CONFIG_PATH_MAX + 160];
	struct db *db;
	int rotated = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--resume") == 0)
			resume = true;
		else if (strcmp(argv[i], "--retire") == 0 && i + 1 < argc)
			retire = argv[++i];
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc &&
			 parse_i64(argv[i + 1], 1, 1000, &batch) == 0)
			i++;
		else {
			fprintf(stderr, "usage: anyonctl rotate-key [--batch N] | --resume | --retire KEY\n");
			return 2;
		}
	}
	db = open_store(&st);
	if (retire) {
		if (!keyring_find(&keyring, retire)) {
			fprintf(stderr, "anyonctl: no key '%s' in the keyring\n", retire);
			close_store(db);
			return 1;
		}
		if (db_secret_count_under(db, retire, &left) || left > 0 ||
		    keyring_active(&keyring) == keyring_find(&keyring, retire)) {
			fprintf(stderr, "anyonctl: key '%s' still seals %lld secret(s)%s; not retired\n", retire,
				(long long)left, keyring_active(&keyring) == keyring_find(&keyring, retire) ?
				" and is the active key" : " (run: anyonctl rotate-key --resume)");
			audit_event(db, 0, 0, "key.retired", "denied", "key=%s in use", retire);
			close_store(db);
			return 1;
		}
		rc = keyring_remove(&keyring, retire, err, sizeof(err));
		if (rc)
			fprintf(stderr, "anyonctl: %s\n", err);
		else
			printf("retired key %s\n", retire);
		audit_event(db, 0, 0, "key.retired", rc ? "error" : "ok", "key=%s", retire);
		close_store(db);
		return rc ? 1 : 0;
	}
	if (!resume) {
		const char *old = keyring_active(&keyring)->id;
		char old_id[KEY_ID_MAX];

		str_copy(old_id, sizeof(old_id), old);
		if (keyring_add_active(&keyring, err, sizeof(err))) {
			fprintf(stderr, "anyonctl: %s\n", err);
			close_store(db);
			return 1;
		}
		printf("new active key %s (was %s)\n", keyring_active(&keyring)->id, old_id);
		printf("running services re-read %s by themselves; services given a copy through "
		       "systemd's LoadCredential= must be restarted now\n", keyring.path);
		audit_event(db, 0, 0, "key.rotated", "ok", "key=%s->%s", old_id, keyring_active(&keyring)->id);
		fflush(stdout);
	}
	rc = secret_rotate(&st, (int)batch, &rotated);
	printf("re-encrypted %d secret(s) under %s\n", rotated, keyring_active(&keyring)->id);
	if (rc == SECRET_UNREADABLE)
		fprintf(stderr, "anyonctl: some secrets do not decrypt and were left as they are (see the log)\n");
	else if (rc != SECRET_OK)
		fprintf(stderr, "anyonctl: rotation stopped on an error; run: anyonctl rotate-key --resume\n");
	close_store(db);
	return rc == SECRET_OK ? 0 : 1;
}

static int cmd_import_config(int argc, char **argv)
{
	const char *path = NULL, *login = NULL;
	struct secret_store st;
	char msg[1600];
	struct db *db;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			login = argv[++i];
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			path = NULL, i = argc;
	}
	if (!path) {
		fprintf(stderr, "usage: anyonctl import-config PATH [--user LOGIN]\n");
		return 2;
	}
	db = open_store(&st);
	rc = legacy_import(&st, path, login, msg, sizeof(msg));
	fprintf(rc < 0 ? stderr : stdout, "%s%s\n", rc < 0 ? "anyonctl: " : "", msg);
	close_store(db);
	return rc < 0 ? 1 : 0;
}

/* Accepts seconds since the epoch or YYYY-MM-DD (UTC). */
static int parse_since(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;

	if (parse_i64(s, 0, INT64_MAX, out) == 0)
		return 0;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (!end || *end)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int print_audit(const struct db_audit *ev, void *arg)
{
	char when[32];
	time_t t = (time_t)ev->at;
	struct tm tm;

	(void)arg;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%-7lld %s user=%-4lld session=%-4lld %-12s %-18s %-6s %s\n", (long long)ev->id, when,
	       (long long)ev->user_id, (long long)ev->session_id, ev->actor, ev->action, ev->outcome,
	       ev->detail);
	return 0;
}

static int cmd_audit(int argc, char **argv)
{
	const char *login = NULL;
	int64_t since = 0, limit = 100;
	struct db_user u = { 0 };
	struct db *db;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			login = argv[++i];
		else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc && parse_since(argv[i + 1], &since) == 0)
			i++;
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc &&
			 parse_i64(argv[i + 1], 1, 100000, &limit) == 0)
			i++;
		else {
			fprintf(stderr, "usage: anyonctl audit [--user LOGIN] [--since EPOCH|YYYY-MM-DD] [--limit N]\n");
			return 2;
		}
	}
	db = open_db(true);
	if (login && find_user(db, login, &u)) {
		db_close(db);
		return 1;
	}
	rc = db_audit_list(db, u.id, since, 0, (int)limit, print_audit, NULL);
	db_close(db);
	return rc ? 1 : 0;
}

static int print_secret(const struct db_secret *s, void *arg)
{
	(void)arg;
	printf("%-22s key=%-4s updated=%lld last_used=%lld expires=%lld%s\n", s->kind, s->key_id,
	       (long long)s->updated_at, (long long)s->last_used_at, (long long)s->expires_at,
	       s->invalid ? " INVALID" : "");
	return 0;
}

/* secret list | put KIND (value on stdin) | check KIND | delete KIND, [--user LOGIN] */
static int cmd_secret(int argc, char **argv)
{
	const char *login = NULL, *verb = argc > 1 ? argv[1] : "", *kind = NULL;
	struct secret_store st;
	struct secret_value v;
	struct db_user u;
	struct db *db;
	int rc = 1;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			login = argv[++i];
		else if (!kind)
			kind = argv[i];
	}
	if (strcmp(verb, "list") && (!kind || !secret_kind_ok(kind))) {
		fprintf(stderr, "usage: anyonctl secret list | put KIND | check KIND | delete KIND [--user LOGIN]\n"
			"  put reads the value from standard input, never from the command line\n");
		return 2;
	}
	db = open_store(&st);
	if (find_user(db, login, &u))
		goto out;
	if (strcmp(verb, "list") == 0) {
		rc = db_secret_list(db, u.id, print_secret, NULL) ? 1 : 0;
	} else if (strcmp(verb, "put") == 0) {
		unsigned char buf[AEAD_MAX_PLAINTEXT + 1];
		size_t n = fread(buf, 1, sizeof(buf), stdin);

		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		if (n == 0 || n > AEAD_MAX_PLAINTEXT)
			fprintf(stderr, "anyonctl: give the value (1 to %d bytes) on standard input\n", AEAD_MAX_PLAINTEXT);
		else if (secret_put(&st, u.id, kind, buf, n, 0, 0) == SECRET_OK)
			rc = 0, printf("stored %s for %s\n", kind, u.login);
		OPENSSL_cleanse(buf, sizeof(buf));
	} else if (strcmp(verb, "check") == 0) {
		int r = secret_get(&st, u.id, kind, 0, &v);

		if (r == SECRET_OK)
			printf("%s for %s: decrypts (%zu bytes)\n", kind, u.login, v.len), rc = 0;
		else
			fprintf(stderr, "anyonctl: %s for %s: %s\n", kind, u.login,
				r == SECRET_NOTFOUND ? "not stored" : "does NOT decrypt");
		secret_value_release(&v);
	} else if (strcmp(verb, "delete") == 0) {
		rc = secret_delete(&st, u.id, kind, 0) == SECRET_OK ? 0 : 1;
	} else {
		fprintf(stderr, "anyonctl: unknown secret command '%s'\n", verb);
		rc = 2;
	}
out:
	close_store(db);
	return rc;
}

static int print_user(const struct db_user *u, void *arg)
{
	printf("%-6lld %-24s github=%-10lld %s%s%s%s\n", (long long)u->id, u->login, (long long)u->github_id,
	       u->is_local ? " local" : "", u->is_admin ? (u->admin_grant ? " admin(granted)" : " admin") : "",
	       u->disabled ? " DISABLED" : "", g_config.cloud && !access_listed_allowed(arg, u) ?
	       " not-on-allow-list" : "");
	return 0;
}

/* users list | disable LOGIN | enable LOGIN | revoke-sessions LOGIN | admin LOGIN on|off */
static int cmd_users(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "";
	struct db_user u;
	int64_t revoked = 0;
	bool admin;
	struct db *db;
	int rc = 1;

	if (strcmp(verb, "list") == 0 && argc == 2) {
		db = open_db(true);
		rc = db_user_list(db, print_user, db) ? 1 : 0;
		db_close(db);
		return rc;
	}
	if (argc < 3 || (strcmp(verb, "admin") == 0 ? argc != 4 || (strcmp(argv[3], "on") && strcmp(argv[3], "off"))
			 : argc != 3 || (strcmp(verb, "disable") && strcmp(verb, "enable") &&
					 strcmp(verb, "revoke-sessions")))) {
		fprintf(stderr, "usage: anyonctl users list | disable LOGIN | enable LOGIN | "
			"revoke-sessions LOGIN | admin LOGIN on|off\n");
		return 2;
	}
	db = open_db(true);
	if (find_user(db, argv[2], &u))
		goto out;
	if (strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0) {
		if (u.is_local && strcmp(verb, "disable") == 0) {
			fprintf(stderr, "anyonctl: the local user cannot be disabled (local mode has no other)\n");
			goto out;
		}
		rc = access_set_disabled(db, &u, strcmp(verb, "disable") == 0, &revoked) ? 1 : 0;
		if (rc == 0)
			printf("%s %sd; %lld session(s) signed out\n", u.login, verb, (long long)revoked);
	} else if (strcmp(verb, "revoke-sessions") == 0) {
		rc = access_revoke_sessions(db, &u, &revoked) ? 1 : 0;
		if (rc == 0)
			printf("%s: %lld session(s) signed out\n", u.login, (long long)revoked);
	} else {
		rc = access_set_admin_grant(db, &u, strcmp(argv[3], "on") == 0, &admin) ? 1 : 0;
		if (rc == 0)
			printf("%s is %san admin%s\n", u.login, admin ? "" : "not ",
			       admin && strcmp(argv[3], "off") == 0 ? " (ANYON_ADMIN_GITHUB lists them)" : "");
	}
out:
	db_close(db);
	return rc;
}

static void copy_progress(const char *table, int64_t rows, void *arg)
{
	(void)arg;
	printf("  %-14s %lld row(s)\n", table, (long long)rows);
	fflush(stdout);
}

/* copy-db SOURCE TARGET: every row of a SQLite install into a new
 * PostgreSQL database (migrated here), ids kept, then every secret opened
 * once under the keyring to prove it came across. */
static int cmd_copy_db(int argc, char **argv)
{
	struct secret_store st = { 0 };
	struct db *src, *dst;
	char err[512];
	int64_t checked, bad;
	int rc;

	if (argc != 3 || db_target_is_pg(argv[1]) || !db_target_is_pg(argv[2])) {
		fprintf(stderr, "usage: anyonctl copy-db SQLITE_PATH postgresql://HOST/DB\n"
			"  the password comes from ~/.pgpass, a service file or ANYON_DB_PASSWORD_FILE\n");
		return 2;
	}
	if (access(argv[1], R_OK)) {
		fprintf(stderr, "anyonctl: cannot read '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	keyring_load_or_die(&keyring);
	src = db_open(argv[1], true, err, sizeof(err));
	if (!src) {
		fprintf(stderr, "anyonctl: source: %s\n", err);
		keyring_wipe(&keyring);
		return 1;
	}
	dst = db_open(argv[2], true, err, sizeof(err));
	if (!dst) {
		fprintf(stderr, "anyonctl: target: %s\n", err);
		db_close(src);
		keyring_wipe(&keyring);
		return 1;
	}
	printf("copying %s -> PostgreSQL\n", argv[1]);
	fflush(stdout);
	rc = db_copy(src, dst, copy_progress, NULL, err, sizeof(err));
	if (rc != DB_OK) {
		fprintf(stderr, "anyonctl: %s; the target is unchanged\n", err);
		goto out;
	}
	st.db = dst;
	st.kr = &keyring;
	rc = secret_verify_all(&st, &checked, &bad);
	if (rc == SECRET_ERROR)
		fprintf(stderr, "anyonctl: reading the copied secrets failed (see the log)\n");
	else if (bad)
		fprintf(stderr, "anyonctl: %lld of %lld copied secret(s) do NOT decrypt (see the log)\n",
			(long long)bad, (long long)checked);
	else
		printf("all %lld secret(s) decrypt in the target\n", (long long)checked);
	audit_event(dst, 0, 0, "db.copied", rc == SECRET_OK ? "ok" : "error", "secrets=%lld bad=%lld",
		    (long long)checked, (long long)bad);
	if (rc == SECRET_OK)
		printf("done: set ANYON_DB to the target and restart every service\n");
out:
	db_close(dst);
	db_close(src);
	keyring_wipe(&keyring);
	return rc == DB_OK ? 0 : 1;
}

/* ---- backup and restore ----
 * A backup is a folder: the database (anyon.db, SQLite's VACUUM INTO: a
 * consistent copy taken in one read transaction while the services run;
 * or anyon.pgdump, pg_dump's custom format), the keyring, and
 * manifest.json naming the engine, the schema version, and each file's
 * size and SHA-256. */
#define BACKUP_FORMAT "anyon-backup-1"
#define BACKUP_MANIFEST "manifest.json"
#define BACKUP_KEYRING "keyring"

/* SHA-256 (hex) and size of a regular file. */
static int file_digest(const char *path, char hex[65], int64_t *bytes)
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = -1;
	ssize_t n;

	*bytes = 0;
	if (fd < 0 || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
			goto out;
		*bytes += n;
	}
	if (n == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32) {
		hex_encode(md, 32, hex);
		rc = 0;
	}
out:
	EVP_MD_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Copies src to a new file dst (refused when it exists) of mode 0600,
 * fsynced. */
static int copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), out = -1, rc = -1;
	ssize_t n;

	if (in < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", src, strerror(errno));
		return -1;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", dst, strerror(errno));
		goto done;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			break;
	if (n != 0 || fsync(out)) {
		snprintf(err, errlen, "cannot copy '%s' to '%s': %s", src, dst, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (out >= 0 && close(out) && rc == 0) {
		snprintf(err, errlen, "cannot write '%s': %s", dst, strerror(errno));
		rc = -1;
	}
	close(in);
	return rc;
}

/* Runs argv (no shell) and waits; 0 when it exited 0. */
static int run_tool(char *const argv[], char *err, size_t errlen)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "anyonctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		snprintf(err, errlen, "%s failed (see above)", argv[0]);
		return -1;
	}
	return 0;
}

/* pg_dump and pg_restore find the password as libpq does (~/.pgpass,
 * PGPASSFILE, a service file), never in their argv or environment. */
static bool pg_tools_ok(void)
{
	const char *pw = getenv("ANYON_DB_PASSWORD_FILE");

	if (pw && *pw && !getenv("PGPASSFILE")) {
		fprintf(stderr, "anyonctl: pg_dump and pg_restore do not read ANYON_DB_PASSWORD_FILE: give the "
			"password in a pgpass file (PGPASSFILE=FILE, mode 0600) for this command\n");
		return false;
	}
	return true;
}

static void manifest_file(json_object *files, const char *dir, const char *name)
{
	char path[CONFIG_PATH_MAX + 64], hex[65];
	int64_t bytes;
	json_object *f = json_object_new_object();

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_digest(path, hex, &bytes) == 0) {
		json_set(f, "bytes", json_object_new_int64(bytes));
		json_set(f, "sha256", json_object_new_string(hex));
	}
	json_set(files, name, f);
}

/* Opens every secret of db with kr: prints the count, 0 when all open. */
static int verify_secrets(struct db *db, struct keyring *kr, const char *where)
{
	struct secret_store st = { .db = db, .kr = kr };
	int64_t checked = 0, bad = 0;
	int rc = secret_verify_all(&st, &checked, &bad);

	if (rc != SECRET_OK && !bad) {
		fprintf(stderr, "anyonctl: reading the secrets of %s failed (see the log)\n", where);
		return -1;
	}
	if (bad) {
		fprintf(stderr, "anyonctl: %lld of %lld secret(s) of %s do NOT decrypt with its keyring\n",
			(long long)bad, (long long)checked, where);
		return -1;
	}
	printf("all %lld secret(s) of %s decrypt with its keyring\n", (long long)checked, where);
	return 0;
}

static int cmd_backup(int argc, char **argv)
{
	char path[CONFIG_PATH_MAX + 64], kpath[CONFIG_PATH_MAX], err[CONFIG_PATH_MAX * 2 + 160];
	const char *dir = argc == 2 ? argv[1] : NULL, *dbname;
	bool pg = db_target_is_pg(g_config.db_path);
	json_object *man = NULL, *files;
	struct keyring kr = { 0 };
	struct db *db = NULL, *copy = NULL;
	int cur = 0, latest = 0, rc = 1;

	if (!dir || strchr(dir, '\'')) {
		fprintf(stderr, "usage: anyonctl backup DIR   (a new folder; no ' in its name)\n");
		return 2;
	}
	if (pg && !pg_tools_ok())
		return 1;
	/* Everything made here, pg_dump's file and SQLite's copy included,
	 * is the caller's alone. */
	umask(077);
	keyring_path(kpath, sizeof(kpath));
	if (keyring_load(&kr, kpath, err, sizeof(err))) {
		fprintf(stderr, "anyonctl: %s\n", err);
		return 1;
	}
	if (mkdir(dir, 0700)) {
		fprintf(stderr, "anyonctl: cannot create '%s': %s (give a new folder)\n", dir, strerror(errno));
		goto out;
	}
	db = open_db(false);
	if (db_schema_version(db, &cur, &latest))
		goto out;
	dbname = pg ? "anyon.pgdump" : "anyon.db";
	snprintf(path, sizeof(path), "%s/%s", dir, dbname);
	if (pg) {
		char *const dump[] = { "pg_dump", "--format=custom", "--no-owner", "--file", path,
				       g_config.db_path, NULL };

		if (run_tool(dump, err, sizeof(err))) {
			fprintf(stderr, "anyonctl: %s\n", err);
			goto out;
		}
	} else {
		if (db_snapshot_to(db, path)) {
			fprintf(stderr, "anyonctl: copying the database failed (see the log)\n");
			goto out;
		}
		/* The copy is checked as it will be restored. */
		copy = db_open(path, false, err, sizeof(err));
		if (!copy || verify_secrets(copy, &kr, "the copy")) {
			if (!copy)
				fprintf(stderr, "anyonctl: %s\n", err);
			goto out;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", dir, BACKUP_KEYRING);
	if (copy_file(kpath, path, err, sizeof(err))) {
		fprintf(stderr, "anyonctl: %s\n", err);
		goto out;
	}
	man = json_object_new_object();
	files = json_object_new_object();
	json_set(man, "format", json_object_new_string(BACKUP_FORMAT));
	json_set(man, "created_at", json_object_new_int64(now_s()));
	json_set(man, "engine", json_object_new_string(pg ? "postgresql" : "sqlite"));
	json_set(man, "schema_version", json_object_new_int(cur));
	json_set(man, "database", json_object_new_string(dbname));
	json_set(man, "keyring", json_object_new_string(BACKUP_KEYRING));
	json_set(man, "active_key", json_object_new_string(keyring_active(&kr)->id));
	manifest_file(files, dir, dbname);
	manifest_file(files, dir, BACKUP_KEYRING);
	json_set(man, "files", files);
	snprintf(path, sizeof(path), "%s/%s", dir, BACKUP_MANIFEST);
	if (json_object_to_file_ext(path, man, JSON_C_TO_STRING_PRETTY) || chmod(path, 0600)) {
		fprintf(stderr, "anyonctl: cannot write '%s'\n", path);
		goto out;
	}
	audit_event(db, 0, 0, "db.backup", "ok", "engine=%s schema=%d", pg ? "postgresql" : "sqlite", cur);
	printf("backed up the %s database (schema %d) and the keyring to %s\n",
	       pg ? "postgresql" : "sqlite", cur, dir);
	rc = 0;
out:
	json_object_put(man);
	db_close(copy);
	db_close(db);
	keyring_wipe(&kr);
	return rc;
}

/* Checks a backup folder's manifest against its files; fills engine,
 * dbname. */
static int backup_check(const char *dir, char *engine, size_t elen, char *dbname, size_t dlen)
{
	char path[CONFIG_PATH_MAX + 64], hex[65];
	json_object *man, *v, *files, *f, *sha;
	int64_t bytes;
	const char *names[2];

	snprintf(path, sizeof(path), "%s/%s", dir, BACKUP_MANIFEST);
	man = json_object_from_file(path);
	if (!man || !json_object_object_get_ex(man, "format", &v) ||
	    strcmp(json_object_get_string(v), BACKUP_FORMAT) ||
	    !json_object_object_get_ex(man, "engine", &v) || !str_copy(engine, elen, json_object_get_string(v)) ||
	    !json_object_object_get_ex(man, "database", &v) || !str_copy(dbname, dlen, json_object_get_string(v)) ||
	    strchr(dbname, '/') || !json_object_object_get_ex(man, "files", &files)) {
		fprintf(stderr, "anyonctl: '%s' is not an anyon backup manifest\n", path);
		json_object_put(man);
		return -1;
	}
	names[0] = dbname;
	names[1] = BACKUP_KEYRING;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!json_object_object_get_ex(files, names[i], &f) || !json_object_object_get_ex(f, "sha256", &sha) ||
		    file_digest(path, hex, &bytes) || strcmp(hex, json_object_get_string(sha))) {
			fprintf(stderr, "anyonctl: '%s' is missing or differs from the manifest\n", path);
			json_object_put(man);
			return -1;
		}
	}
	json_object_put(man);
	return 0;
}

/* Replaces dst by a copy of src (temp file, fsync, rename), keeping the
 * owner of what it replaces, or of its folder. */
static int replace_file(const char *src, const char *dst, char *err, size_t errlen)
{
	char tmp[CONFIG_PATH_MAX + 16], dir[CONFIG_PATH_MAX];
	struct stat st;
	bool have = lstat(dst, &st) == 0;
	char *slash;

	snprintf(tmp, sizeof(tmp), "%s.restore", dst);
	unlink(tmp);
	if (copy_file(src, tmp, err, errlen))
		return -1;
	if (!have) {
		str_copy(dir, sizeof(dir), dst);
		slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		have = stat(slash ? dir : ".", &st) == 0;
	}
	if ((have && chown(tmp, st.st_uid, st.st_gid) && geteuid() == 0) || rename(tmp, dst)) {
		snprintf(err, errlen, "cannot put '%s' in place: %s", dst, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	char path[CONFIG_PATH_MAX + 64], kpath[CONFIG_PATH_MAX], err[CONFIG_PATH_MAX * 2 + 160];
	char engine[32], dbname[64], probe[256];
	const char *dir = argc == 2 ? argv[1] : NULL;
	bool pg = db_target_is_pg(g_config.db_path);
	struct keyring kr = { 0 };
	struct db *db = NULL;
	int rc = 1;

	if (!dir) {
		fprintf(stderr, "usage: anyonctl restore DIR   (stop anyon-fcgi and anyon-worker first)\n");
		return 2;
	}
	if (backup_check(dir, engine, sizeof(engine), dbname, sizeof(dbname)))
		return 1;
	if (strcmp(engine, pg ? "postgresql" : "sqlite")) {
		fprintf(stderr, "anyonctl: the backup is of a %s database, ANYON_DB is %s\n", engine,
			pg ? "postgresql" : "sqlite");
		return 1;
	}
	if (pg && !pg_tools_ok())
		return 1;
	/* Never under running services. */
	if (probe_health(g_config.fcgi_socket, probe, sizeof(probe)) > 0) {
		fprintf(stderr, "anyonctl: the pool answers on %s: stop the services first "
			"(systemctl stop anyon-fcgi anyon-worker)\n", g_config.fcgi_socket);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, dbname);
	if (pg) {
		char *const restore[] = { "pg_restore", "--clean", "--if-exists", "--no-owner",
					  "--single-transaction", "--exit-on-error", "--dbname",
					  g_config.db_path, path, NULL };

		if (run_tool(restore, err, sizeof(err))) {
			fprintf(stderr, "anyonctl: %s\n", err);
			return 1;
		}
	} else {
		char side[CONFIG_PATH_MAX + 8];

		if (replace_file(path, g_config.db_path, err, sizeof(err))) {
			fprintf(stderr, "anyonctl: %s\n", err);
			return 1;
		}
		/* The old database's WAL must not be replayed into the new file. */
		snprintf(side, sizeof(side), "%s-wal", g_config.db_path);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", g_config.db_path);
		unlink(side);
	}
	keyring_path(kpath, sizeof(kpath));
	snprintf(path, sizeof(path), "%s/%s", dir, BACKUP_KEYRING);
	if (replace_file(path, kpath, err, sizeof(err))) {
		fprintf(stderr, "anyonctl: %s\n", err);
		return 1;
	}
	printf("restored the %s database and the keyring (%s) from %s\n", engine, kpath, dir);
	if (keyring_load(&kr, kpath, err, sizeof(err))) {
		fprintf(stderr, "anyonctl: %s\n", err);
		return 1;
	}
	db = open_db(false);
	if (verify_secrets(db, &kr, "the restored database") == 0)
		rc = 0;
	audit_event(db, 0, 0, "db.restored", rc ? "error" : "ok", "engine=%s", engine);
	db_close(db);
	keyring_wipe(&kr);
	if (rc == 0)
		printf("start the services: systemctl start anyon-fcgi anyon-worker\n");
	return rc;
}

/* The host names nginx's server_name must list for this configuration:
 * the loopback names, then ANYON_PUBLIC_URL's host (as libcurl parsed and
 * config_load() checked it). ./dev writes them into its nginx config. */
static int cmd_server_names(int argc, char **argv)
{
	(void)argv;

	if (argc != 1) {
		fprintf(stderr, "usage: anyonctl server-names\n");
		return 2;
	}
	bool loopback = false;

	for (size_t i = 0; config_loopback_hosts[i]; i++) {
		printf("%s%s", i ? " " : "", config_loopback_hosts[i]);
		loopback = loopback || strcmp(g_config.public_host, config_loopback_hosts[i]) == 0;
	}
	if (g_config.public_host[0] && !loopback)
		printf(" %s", g_config.public_host);
	printf("\n");
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "migrate", cmd_migrate, "apply pending schema migrations" },
	{ "doctor", cmd_doctor, "[--nginx FILE]: check a deployment: data dir, database, schema, worker, "
	  "docker, keyring and secrets, a request through the pool's socket; with --nginx FILE "
	  "(nginx's main configuration, e.g. /etc/nginx/nginx.conf, as root): nginx -t, and its "
	  "anyon_fcgi socket and server_name against the settings, and the order of a declared "
	  "TLS-ended-at-a-proxy; exit 1 on any failure" },
	{ "server-names", cmd_server_names, "the host names nginx's server_name must list (ANYON_PUBLIC_URL's)" },
	{ "job", cmd_job, "job echo [--wait] [--delay MS] LINE...: queue an echo job" },
	{ "init-keys", cmd_init_keys, "[--if-missing]: create the keyring with one active key" },
	{ "rotate-key", cmd_rotate_key, "[--batch N] | --resume | --retire KEY: new key, re-encrypt, retire" },
	{ "import-config", cmd_import_config, "PATH [--user LOGIN]: move config.json tokens into the store" },
	{ "audit", cmd_audit, "[--user LOGIN] [--since EPOCH|YYYY-MM-DD] [--limit N]: print audit events" },
	{ "secret", cmd_secret, "list | put KIND | check KIND | delete KIND [--user LOGIN]" },
	{ "users", cmd_users, "list | disable L | enable L | revoke-sessions L | admin L on|off" },
	{ "copy-db", cmd_copy_db, "SQLITE_PATH postgresql://...: move an install to PostgreSQL" },
	{ "backup", cmd_backup, "DIR: the database (online, consistent), the keyring and a manifest" },
	{ "restore", cmd_restore, "DIR: put a backup back (services stopped); every secret checked" },
};

static void usage(FILE *to)
{
	fprintf(to, "usage: anyonctl [--config FILE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(to, "\nSettings come from FILE (KEY=VALUE lines, as systemd's EnvironmentFile=), else from\n"
		"$ANYON_CONFIG, else from " CONFIG_ENV_FILE " when it exists and neither ANYON_DATA_DIR nor\n"
		"ANYON_DB is set, and from ANYON_* variables (docs/DEPLOYMENT.md).\n");
}

/* One configuration for every program: the settings come from --config
 * FILE, else ANYON_CONFIG, else the installation's env file when it exists
 * and the environment names no deployment of its own (neither
 * ANYON_DATA_DIR nor ANYON_DB), else the environment alone. Returns the
 * file read (NULL: none); dies when a file that is to be read cannot be. */
static const char *read_settings(const char *given)
{
	const char *path = given;
	char err[CONFIG_PATH_MAX + 160];

	if (!path && getenv("ANYON_CONFIG") && *getenv("ANYON_CONFIG"))
		path = getenv("ANYON_CONFIG");
	if (!path && !getenv("ANYON_DATA_DIR") && !getenv("ANYON_DB") && access(CONFIG_ENV_FILE, F_OK) == 0)
		path = CONFIG_ENV_FILE;
	if (path && config_read_env_file(path, err, sizeof(err)))
		die("%s (run anyonctl as root or the services' user, or give --config FILE)", err);
	return path;
}

int main(int argc, char **argv)
{
	const char *config = NULL;

	log_init("anyonctl");
	audit_set_actor("anyonctl");
	if (argc > 2 && strcmp(argv[1], "--config") == 0) {
		config = argv[2];
		argc -= 2;
		argv += 2;
	} else if (argc > 1 && strncmp(argv[1], "--config=", 9) == 0) {
		config = argv[1] + 9;
		argc--;
		argv++;
	}
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	config = read_settings(config);
	if (config && strcmp(argv[1], "server-names"))
		fprintf(stderr, "anyonctl: settings from %s\n", config);
	config_load_global();
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "anyonctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
