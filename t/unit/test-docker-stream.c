/* test-docker-stream: the pure parts of the Docker client: the frame
 * demultiplexer (every split point, several frames per slice, hostile
 * headers) and the parser of a hijack answer's head. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "services/docker.h"
#include "t/unit/tap.h"

/* What the callbacks saw: payload bytes per stream and the sequence of
 * (stream, byte) in order, to check interleaving. */
struct seen {
	char out[4096], err[4096], seq[8192];
	size_t out_len, err_len, seq_len;
	int calls, stop_after;
	int bad_stream;
};

static int on_frame(void *arg, enum docker_stream_kind stream, const char *data, size_t len)
{
	struct seen *s = arg;

	s->calls++;
	if (stream == DOCKER_STDOUT && s->out_len + len <= sizeof(s->out)) {
		memcpy(s->out + s->out_len, data, len);
		s->out_len += len;
	} else if (stream == DOCKER_STDERR && s->err_len + len <= sizeof(s->err)) {
		memcpy(s->err + s->err_len, data, len);
		s->err_len += len;
	} else if (stream != DOCKER_STDOUT && stream != DOCKER_STDERR) {
		s->bad_stream++;
	}
	for (size_t i = 0; i < len && s->seq_len < sizeof(s->seq); i++)
		s->seq[s->seq_len++] = stream == DOCKER_STDOUT ? 'o' : 'e';
	return s->stop_after && s->calls >= s->stop_after;
}

static size_t frame(unsigned char *out, int stream, const char *data, size_t len)
{
	out[0] = (unsigned char)stream;
	out[1] = out[2] = out[3] = 0;
	out[4] = (unsigned char)(len >> 24);
	out[5] = (unsigned char)(len >> 16);
	out[6] = (unsigned char)(len >> 8);
	out[7] = (unsigned char)len;
	memcpy(out + 8, data, len);
	return 8 + len;
}

/* Three frames: "hello\n" on stdout, "oops" on stderr, an empty stdout
 * frame, "world\n" on stdout. */
static size_t sample(unsigned char *buf)
{
	size_t n = 0;

	n += frame(buf + n, 1, "hello\n", 6);
	n += frame(buf + n, 2, "oops", 4);
	n += frame(buf + n, 1, "", 0);
	n += frame(buf + n, 1, "world\n", 6);
	return n;
}

static int check_sample(const struct seen *s)
{
	return s->out_len == 12 && memcmp(s->out, "hello\nworld\n", 12) == 0 && s->err_len == 4 &&
	       memcmp(s->err, "oops", 4) == 0 && s->seq_len == 16 &&
	       memcmp(s->seq, "ooooooeeeeoooooo", 16) == 0 && !s->bad_stream;
}

static void test_splits(void)
{
	unsigned char buf[256];
	size_t n = sample(buf);
	int bad1 = 0, bad2 = 0, boundary = 0;

	/* whole */
	{
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };

		is_int(docker_demux_feed(&dm, (char *)buf, n, on_frame, &s), 0, "all frames in one slice");
		ok(check_sample(&s), "payloads per stream, in order");
		ok(docker_demux_at_boundary(&dm), "ends on a frame boundary");
	}
	/* every single split point */
	for (size_t cut = 0; cut <= n; cut++) {
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };

		if (docker_demux_feed(&dm, (char *)buf, cut, on_frame, &s) ||
		    docker_demux_feed(&dm, (char *)buf + cut, n - cut, on_frame, &s) || !check_sample(&s))
			bad1++;
		if (!docker_demux_at_boundary(&dm))
			boundary++;
	}
	is_int(bad1, 0, "split once at each of %zu points: same payloads", n + 1);
	is_int(boundary, 0, "and every split ends on a boundary");
	/* every pair of split points */
	for (size_t a = 0; a <= n; a++)
		for (size_t b = a; b <= n; b++) {
			struct docker_demux dm = { 0 };
			struct seen s = { 0 };

			if (docker_demux_feed(&dm, (char *)buf, a, on_frame, &s) ||
			    docker_demux_feed(&dm, (char *)buf + a, b - a, on_frame, &s) ||
			    docker_demux_feed(&dm, (char *)buf + b, n - b, on_frame, &s) || !check_sample(&s))
				bad2++;
		}
	is_int(bad2, 0, "split twice at every pair of points: same payloads");
	/* one byte at a time */
	{
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };
		int rc = 0;

		for (size_t i = 0; i < n; i++)
			rc |= docker_demux_feed(&dm, (char *)buf + i, 1, on_frame, &s);
		ok(rc == 0 && check_sample(&s), "one byte per feed");
	}
	/* inside a header or a frame: not a boundary */
	{
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };

		docker_demux_feed(&dm, (char *)buf, 3, on_frame, &s);
		ok(!docker_demux_at_boundary(&dm), "a stream cut inside a header is not at a boundary");
		docker_demux_feed(&dm, (char *)buf + 3, 8, on_frame, &s);
		ok(!docker_demux_at_boundary(&dm), "a stream cut inside a payload is not at a boundary");
	}
}

static size_t counts[4];
static int count_cb(void *arg, enum docker_stream_kind st, const char *d, size_t l)
{
	(void)arg;
	(void)d;
	counts[st] += l;
	return 0;
}

static void test_big_counts(void)
{
	size_t n = 0, size = 3 * (8 + 32768), pos = 0;
	unsigned char *buf = malloc(size);
	char *payload = calloc(1, 32768);
	struct docker_demux dm = { 0 };
	int rc = 0;

	memset(counts, 0, sizeof(counts));
	n += frame(buf + n, 1, payload, 32768);
	n += frame(buf + n, 2, payload, 32768);
	n += frame(buf + n, 1, payload, 32768);
	while (pos < n && rc == 0) {
		size_t take = 4093 < n - pos ? 4093 : n - pos;

		rc = docker_demux_feed(&dm, (char *)buf + pos, take, count_cb, NULL);
		pos += take;
	}
	ok(rc == 0 && counts[1] == 65536 && counts[2] == 32768 && docker_demux_at_boundary(&dm),
	   "32 KiB frames across slices: 64 KiB stdout, 32 KiB stderr");
	free(buf);
	free(payload);
}

static void test_hostile(void)
{
	static const struct {
		unsigned char head[8];
		const char *name;
	} bad[] = {
		{ { 4, 0, 0, 0, 0, 0, 0, 1 }, "unknown stream type 4" },
		{ { 0xff, 0, 0, 0, 0, 0, 0, 1 }, "stream type 255" },
		{ { 1, 1, 0, 0, 0, 0, 0, 1 }, "non-zero padding byte 1" },
		{ { 1, 0, 0, 0x80, 0, 0, 0, 1 }, "non-zero padding byte 3" },
		{ { 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff }, "length 4 GiB - 1" },
		{ { 1, 0, 0, 0, 0, 0x10, 0, 1 }, "length just past the bound" },
		{ { 'H', 'T', 'T', 'P', '/', '1', '.', '1' }, "text where a header should be" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };
		unsigned char buf[64];
		size_t n = frame(buf, 1, "ok", 2);

		memcpy(buf + n, bad[i].head, 8);
		memcpy(buf + n + 8, "payload", 7);
		is_int(docker_demux_feed(&dm, (char *)buf, n + 15, on_frame, &s), -1, "refused: %s",
		       bad[i].name);
		ok(s.out_len == 2 && s.calls == 1, "the good frame before it was delivered, nothing after");
		is_int(docker_demux_feed(&dm, "x", 1, on_frame, &s), -1, "and the stream stays refused");
	}
	{
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };
		unsigned char h[8] = { 1, 0, 0, 0, 0, 0x10, 0, 0 };   /* exactly DOCKER_FRAME_MAX */

		is_int(docker_demux_feed(&dm, (char *)h, 8, on_frame, &s), 0, "a frame of exactly the bound is fine");
	}
	{
		struct docker_demux dm = { 0 };
		struct seen s = { 0 };
		unsigned char h[8] = { 3, 0, 0, 0, 0, 0, 0, 3 };

		docker_demux_feed(&dm, (char *)h, 8, on_frame, &s);
		docker_demux_feed(&dm, "bad", 3, on_frame, &s);
		is_int(s.bad_stream, 1, "stream 3 (the engine's own errors) is passed on as such");
	}
	{
		struct docker_demux dm = { 0 };
		struct seen s = { .stop_after = 1 };
		unsigned char buf[256];
		size_t n = sample(buf);

		is_int(docker_demux_feed(&dm, (char *)buf, n, on_frame, &s), 1, "a callback can stop the feed");
		is_int(s.calls, 1, "no call after the stop");
	}
}

static void test_head(void)
{
	long status = 0, clen = 0;
	size_t hl = 0;
	const char *up = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
			 "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
	char buf[512];
	size_t n = strlen(up);
	int bad = 0;

	is_int(docker_parse_head(up, n, &status, &hl, &clen), 1, "a 101 head parses");
	is_int(status, 101, "status 101");
	is_int(hl, n, "head length includes the blank line");
	is_int(clen, -1, "no Content-Length");
	/* stream bytes right after the head */
	memcpy(buf, up, n);
	memcpy(buf + n, "\1\0\0\0\0\0\0\2hi", 10);
	is_int(docker_parse_head(buf, n + 10, &status, &hl, &clen), 1, "bytes after the head");
	is_int(hl, n, "are not part of the head");
	for (size_t i = 0; i < n; i++)
		if (docker_parse_head(up, i, &status, &hl, &clen) != 0)
			bad++;
	is_int(bad, 0, "every prefix of the head asks for more bytes");

	{
		const char *e = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
				"Content-Length: 44\r\n\r\n";

		is_int(docker_parse_head(e, strlen(e), &status, &hl, &clen), 1, "a 404 head parses");
		ok(status == 404 && clen == 44, "status 404, Content-Length 44");
	}
	{
		static const char *const bad_heads[] = {
			"SSH-2.0-OpenSSH\r\n\r\n",
			"HTTP/2 101 x\r\n\r\n",
			"HTTP/1.1 1x1 x\r\n\r\n",
			"HTTP/1.1 099 x\r\n\r\n",
			"HTTP/1.1 101x\r\n\r\n",
			"HTTP/1.1 500 x\r\nContent-Length: -5\r\n\r\n",
			"HTTP/1.1 500 x\r\nContent-Length: 99999999999999\r\n\r\n",
			"HTTP/1.1 500 x\r\nContent-Length: 12abc\r\n\r\n",
			"GET",
		};

		for (size_t i = 0; i < ARRAY_SIZE(bad_heads); i++)
			is_int(docker_parse_head(bad_heads[i], strlen(bad_heads[i]), &status, &hl, &clen), -1,
			       "refused: bad head %zu", i);
	}
	{
		char *big = malloc(DOCKER_HEAD_MAX + 16);

		memcpy(big, "HTTP/1.1 101 UPGRADED\r\nX: ", 26);
		memset(big + 26, 'a', DOCKER_HEAD_MAX - 10);
		is_int(docker_parse_head(big, DOCKER_HEAD_MAX + 16, &status, &hl, &clen), -1,
		       "a head without an end past %d bytes is refused", DOCKER_HEAD_MAX);
		free(big);
	}
}

static void test_ids(void)
{
	ok(docker_id_ok("0123abcdef"), "a hex id is fine");
	ok(docker_id_ok("anyon-job_1.x"), "a name is fine");
	ok(!docker_id_ok(""), "empty refused");
	ok(!docker_id_ok("../x"), "a path refused");
	ok(!docker_id_ok("a/b"), "a slash refused");
	ok(!docker_id_ok("a?b"), "a query refused");
	ok(!docker_id_ok("-rf"), "a leading dash refused");
	ok(!docker_id_ok("a b"), "a space refused");
}

int main(void)
{
	test_splits();
	test_big_counts();
	test_hostile();
	test_head();
	test_ids();
	return done_testing();
}
