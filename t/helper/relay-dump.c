/* relay-dump - runs the worker's relay parser (services/relay.h) over a
 * real stream, for t/t4300-relay.py:
 *
 *     relay-dump START OUTFILE ERRFILE < stream
 *
 * reads stdin in slices of changing sizes (1..4096 bytes: records split
 * anywhere), writes the stdout and stderr payloads to OUTFILE and ERRFILE
 * (system bytes to stdout as "system N" lines' counts), and prints one
 * line per lost record ("lost OFFSET COUNT"), the exit ("exit END CODE
 * SIG"), then "offset N boundary B ended E". Exit 1 with "error MSG" when
 * the parser refuses the stream. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/relay.h"

struct sink {
	FILE *out, *err;
	unsigned long long sys;
};

static int on_data(void *ctx, enum relay_type s, uint64_t off, const unsigned char *p, size_t n)
{
	struct sink *k = ctx;

	(void)off;
	if (s == RELAY_STDOUT)
		return fwrite(p, 1, n, k->out) != n;
	if (s == RELAY_STDERR)
		return fwrite(p, 1, n, k->err) != n;
	k->sys += n;
	return 0;
}

static int on_lost(void *ctx, uint64_t off, uint64_t count)
{
	(void)ctx;
	printf("lost %llu %llu\n", (unsigned long long)off, (unsigned long long)count);
	return 0;
}

static int on_exit_(void *ctx, uint64_t end, int code, int sig)
{
	(void)ctx;
	printf("exit %llu %d %d\n", (unsigned long long)end, code, sig);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct relay_callbacks cb = { on_data, on_lost, on_exit_ };
	struct relay_parser p;
	struct sink k = { 0 };
	unsigned char buf[4096];
	unsigned step = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: relay-dump START OUTFILE ERRFILE < stream\n");
		return 2;
	}
	k.out = fopen(argv[2], "wb");
	k.err = fopen(argv[3], "wb");
	if (!k.out || !k.err) {
		perror("relay-dump");
		return 2;
	}
	relay_parser_init(&p, strtoull(argv[1], NULL, 10), &cb, &k);
	for (;;) {
		ssize_t n;

		step = step * 1103515245u + 12345u;
		n = read(0, buf, 1 + (step >> 8) % sizeof buf);
		if (n < 0) {
			perror("relay-dump: read");
			return 2;
		}
		if (n == 0)
			break;
		if (relay_parser_feed(&p, buf, (size_t)n) < 0) {
			printf("error %s\n", relay_parser_error(&p));
			return 1;
		}
	}
	fclose(k.out);
	fclose(k.err);
	printf("system %llu\n", k.sys);
	printf("offset %llu boundary %d ended %d\n", (unsigned long long)relay_parser_offset(&p),
	       relay_parser_at_boundary(&p), relay_parser_ended(&p));
	return 0;
}
