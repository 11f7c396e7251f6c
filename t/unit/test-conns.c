/* test-conns.c - conns_put() (fcgi/conns.c): an answer written straight to
 * the connection in large FastCGI records arrives whole and in order, after
 * what libfcgi held, framed as the protocol says (version 1, FCGI_STDOUT,
 * the request's id, at most 65,535 bytes each, no empty record before the
 * end), and a connection the peer closed fails cleanly. */
#include "autoconfig.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "base/util.h"
#include "fcgi/conns.h"
#include "t/unit/tap.h"

#define BIG (200 * 1024 + 13)

struct reader {
	int fd;
	unsigned char *buf;   /* owned: everything the peer sent */
	size_t len, cap;
};

static void *read_all(void *arg)
{
	struct reader *rd = arg;
	ssize_t k;

	for (;;) {
		if (rd->len == rd->cap) {
			rd->cap = rd->cap ? rd->cap * 2 : 65536;
			rd->buf = realloc(rd->buf, rd->cap);
			if (!rd->buf)
				abort();
		}
		k = read(rd->fd, rd->buf + rd->len, rd->cap - rd->len);
		if (k <= 0)
			break;
		rd->len += (size_t)k;
	}
	return NULL;
}

/* What the records in buf say: the STDOUT content (owned by the caller),
 * how many STDOUT records carried something, whether every header was
 * right and the stream ended with an empty STDOUT record and an
 * END_REQUEST. */
struct parsed {
	unsigned char *out;
	size_t out_len;
	int records;
	size_t largest;
	bool framed, ended;
};

static struct parsed parse(const unsigned char *b, size_t n, int request_id)
{
	struct parsed p = { .out = malloc(n + 1), .framed = true };
	bool stdout_done = false;
	size_t i = 0;

	while (p.out && i + 8 <= n) {
		size_t clen = (size_t)b[i + 4] << 8 | b[i + 5], plen = b[i + 6];
		int type = b[i + 1], id = b[i + 2] << 8 | b[i + 3];

		if (b[i] != 1 || id != request_id || i + 8 + clen + plen > n) {
			p.framed = false;
			break;
		}
		if (type == 6 && clen) {
			if (stdout_done)
				p.framed = false;   /* content after the end of the stream */
			memcpy(p.out + p.out_len, b + i + 8, clen);
			p.out_len += clen;
			p.records++;
			if (clen > p.largest)
				p.largest = clen;
		} else if (type == 6) {
			stdout_done = true;
		} else if (type == 3) {
			p.ended = stdout_done && i + 8 + clen + plen == n;
		} else {
			p.framed = false;
		}
		i += 8 + clen + plen;
	}
	if (i != n)
		p.framed = false;
	return p;
}

static size_t record(unsigned char *out, int type, const void *content, size_t len)
{
	unsigned char h[8] = { 1, (unsigned char)type, 0, 1, (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };

	memcpy(out, h, 8);
	memcpy(out + 8, content, len);
	return 8 + len;
}

/* A GET as nginx sends it (request id 1, the connection not kept), accepted
 * into fx; the client's end of the connection. */
static int get_request(const char *path, int listen_fd, FCGX_Request *fx)
{
	static const unsigned char begin[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
	static const unsigned char params[] = "\x0e\x03REQUEST_METHODGET";
	unsigned char buf[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = 0;
	int c;

	n += record(buf + n, 1, begin, sizeof(begin));
	n += record(buf + n, 4, params, sizeof(params) - 1);
	n += record(buf + n, 4, "", 0);
	n += record(buf + n, 5, "", 0);
	str_copy(sa.sun_path, sizeof(sa.sun_path), path);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) || write(c, buf, n) != (ssize_t)n)
		BAIL_OUT("cannot talk to the test socket");
	FCGX_InitRequest(fx, listen_fd, 0);
	if (FCGX_Accept_r(fx) < 0)
		BAIL_OUT("FCGX_Accept_r failed");
	return c;
}

/* Serves one request with before (through libfcgi) then parts (conns_put),
 * and returns what the client received, parsed. *rc: conns_put()'s. */
static struct parsed serve(const char *path, int lfd, const char *before, const struct iovec *parts, int n, int *rc)
{
	struct reader rd = { 0 };
	struct parsed p;
	FCGX_Request fx;
	pthread_t th;

	rd.fd = get_request(path, lfd, &fx);
	if (pthread_create(&th, NULL, read_all, &rd))
		BAIL_OUT("no thread");
	if (before)
		FCGX_PutS(before, fx.out);
	*rc = conns_put(&fx, parts, n);
	FCGX_Finish_r(&fx);
	pthread_join(th, NULL);
	close(rd.fd);
	p = parse(rd.buf, rd.len, 1);
	free(rd.buf);
	return p;
}

int main(void)
{
	char dir[] = "/tmp/anyon-conns-XXXXXX", path[128], *big, *want;
	static const char head[] = "Status: 200 OK\r\nContent-Type: application/json\r\n\r\n";
	struct parsed p;
	size_t wlen;
	int lfd, rc;

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir) || FCGX_Init())
		BAIL_OUT("no scratch directory or libfcgi");
	snprintf(path, sizeof(path), "%s/fcgi.sock", dir);
	lfd = FCGX_OpenSocket(path, 4);
	big = malloc(BIG);
	want = malloc(BIG + 256);
	if (lfd < 0 || !big || !want)
		BAIL_OUT("cannot listen on %s", path);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)('a' + (i * 7 + i / 65528) % 26);

	/* A small answer: libfcgi's buffer, as before. */
	p = serve(path, lfd, NULL, (struct iovec[]){ { (char *)head, strlen(head) }, { "{}", 2 }, { "\n", 1 } }, 3, &rc);
	ok(rc == 0 && p.framed && p.ended, "a small answer: framed, ended");
	ok(p.out_len == strlen(head) + 3 && memcmp(p.out, head, strlen(head)) == 0 &&
	   memcmp(p.out + strlen(head), "{}\n", 3) == 0, "and whole");
	ok(p.records == 1, "in one record, through libfcgi's buffer (%d)", p.records);
	free(p.out);

	/* A large one, after something libfcgi held; with an empty part
	 * between (it must not end the stream). */
	p = serve(path, lfd, "X-Before: 1\r\n",
		  (struct iovec[]){ { (char *)head, strlen(head) }, { "", 0 }, { big, BIG }, { "\n", 1 } }, 4, &rc);
	wlen = (size_t)snprintf(want, 256, "X-Before: 1\r\n%s", head);
	memcpy(want + wlen, big, BIG);
	want[wlen + BIG] = '\n';
	wlen += BIG + 1;
	ok(rc == 0 && p.framed && p.ended, "a %d-byte answer: every record framed right, the stream ended once", BIG);
	ok(p.out_len == wlen && memcmp(p.out, want, wlen) == 0, "it arrives whole and in order, what libfcgi held first");
	ok(p.largest <= 65535 && p.largest > 8192, "records of up to 64 KiB (largest %zu), not libfcgi's 8 KiB",
	   p.largest);
	ok(p.records <= 6, "%d records for %zu bytes", p.records, wlen);
	free(p.out);

	/* Many small parts: more than one writev() of iovecs. */
	{
		struct iovec parts[300];

		for (int i = 0; i < 300; i++)
			parts[i] = (struct iovec){ big + i * 100, 100 };
		p = serve(path, lfd, NULL, parts, 300, &rc);
		ok(rc == 0 && p.framed && p.ended && p.out_len == 30000 && memcmp(p.out, big, 30000) == 0,
		   "300 parts of 100 bytes: whole, in order, framed");
		free(p.out);
	}

	/* The peer went away: -1, and the stream is closed for what follows. */
	{
		FCGX_Request fx;
		int c = get_request(path, lfd, &fx);

		close(c);
		rc = conns_put(&fx, (struct iovec[]){ { big, BIG } }, 1);
		ok(rc == -1 && fx.out->isClosed && FCGX_GetError(fx.out) != 0,
		   "a closed peer: -1, the stream closed with the error");
		ok(conns_put(&fx, (struct iovec[]){ { big, BIG } }, 1) == -1, "a second put fails at once");
		FCGX_Finish_r(&fx);
	}

	free(big);
	free(want);
	close(lfd);
	unlink(path);
	rmdir(dir);
	return done_testing();
}
