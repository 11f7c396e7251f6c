/* The secret bundle anyon-entry reads from stdin (container/bundle.h):
 * well-formed bundles, then hostile ones: path names, bad lengths,
 * truncation at every byte, too many and too large, trailing bytes, random
 * mutations. Every buffer is malloc'd to its exact size, so an ASan build
 * catches any read past the end. */
#include "autoconfig.h"

#include <stdlib.h>

#include "container/bundle.h"
#include "t/unit/tap.h"

static const char VALUE[] = "s3cr3t-VALUE";

/* Parses a copy of text[0..len) in a buffer of exactly len bytes. */
static int parse_n(const char *text, size_t len, struct bundle *b, char *err, size_t errlen)
{
	unsigned char *buf = malloc(len ? len : 1);
	int rc;

	memcpy(buf, text, len);
	err[0] = '\0';
	rc = bundle_parse(buf, len, b, err, errlen);
	free(buf);	/* b's pointers dangle now: callers only read names and lengths */
	return rc;
}

static int parse(const char *text, struct bundle *b, char *err, size_t errlen)
{
	return parse_n(text, strlen(text), b, err, errlen);
}

/* A bundle that must be refused: -1, no secrets, an error that names no value. */
static void refused(const char *text, size_t len, const char *what)
{
	struct bundle b;
	char err[256];
	int rc = parse_n(text, len, &b, err, sizeof err);

	ok(rc == -1 && b.n == 0 && err[0] && !strstr(err, VALUE), "refused: %s (%s)", what, err);
}

#define REFUSED(text, what) refused(text, sizeof(text) - 1, what)

int main(void)
{
	struct bundle b;
	char err[256], big[200], *s;
	size_t i, n;
	static const char good[] =
		"anyon-secrets 1\n"
		"secret github_token 12\ns3cr3t-VALUE\n"
		"secret .credentials.json 5\na\n\0b\n\n"
		"end\n";
	unsigned char *copy;

	/* ---- well-formed ---- */
	is_int(parse("", &b, err, sizeof err), 0, "an empty input is a bundle without secrets");
	is_int(b.n, 0, "no secrets in it");
	is_int(parse("anyon-secrets 1\nend\n", &b, err, sizeof err), 0, "a bundle with no secrets");
	is_int(b.n, 0, "no secrets in it either");

	copy = malloc(sizeof good - 1);
	memcpy(copy, good, sizeof good - 1);
	is_int(bundle_parse(copy, sizeof good - 1, &b, err, sizeof err), 0, "two secrets parse");
	is_int(b.n, 2, "two of them");
	is_str(b.secrets[0].name, "github_token", "first name");
	ok(b.secrets[0].len == 12 && memcmp(b.secrets[0].value, VALUE, 12) == 0, "first value, by length");
	is_str(b.secrets[1].name, ".credentials.json", "a name with a leading dot is a plain file name");
	ok(b.secrets[1].len == 5 && memcmp(b.secrets[1].value, "a\n\0b\n", 5) == 0,
	   "a value with newlines and a NUL byte is taken whole");
	ok(b.secrets[1].value > copy && b.secrets[1].value + b.secrets[1].len < copy + sizeof good - 1,
	   "values point into the input, not past it");
	free(copy);

	/* ---- names ---- */
	ok(bundle_name_ok("a", 1) && bundle_name_ok("A-z_0.9", 7), "plain names pass");
	ok(!bundle_name_ok("..", 2) && !bundle_name_ok(".", 1) && !bundle_name_ok("a..b", 4),
	   "'..', '.' and a name containing '..' are refused");
	ok(!bundle_name_ok("a/b", 3) && !bundle_name_ok("/a", 2), "a '/' is refused");
	ok(!bundle_name_ok("", 0), "an empty name is refused");
	ok(!bundle_name_ok("a b", 3) && !bundle_name_ok("a\0b", 3) && !bundle_name_ok("\xc3\xa9", 2),
	   "spaces, NUL bytes and non-ASCII are refused");
	memset(big, 'n', sizeof big);
	ok(bundle_name_ok(big, BUNDLE_NAME_MAX) && !bundle_name_ok(big, BUNDLE_NAME_MAX + 1),
	   "names up to %d bytes", BUNDLE_NAME_MAX);

	REFUSED("anyon-secrets 1\nsecret ../etc/passwd 12\ns3cr3t-VALUE\nend\n", "a name with ../");
	REFUSED("anyon-secrets 1\nsecret a/b 12\ns3cr3t-VALUE\nend\n", "a name with /");
	REFUSED("anyon-secrets 1\nsecret .. 12\ns3cr3t-VALUE\nend\n", "the name ..");
	REFUSED("anyon-secrets 1\nsecret  12\ns3cr3t-VALUE\nend\n", "an empty name");
	REFUSED("anyon-secrets 1\nsecret a\0b 12\ns3cr3t-VALUE\nend\n", "a NUL byte in a name");
	REFUSED("anyon-secrets 1\nsecret a 12\ns3cr3t-VALUE\nsecret a 12\ns3cr3t-VALUE\nend\n",
		"a name twice");
	s = malloc(BUNDLE_NAME_MAX + 100);
	snprintf(s, BUNDLE_NAME_MAX + 100, "anyon-secrets 1\nsecret %.*s 12\ns3cr3t-VALUE\nend\n",
		 BUNDLE_NAME_MAX + 1, big);
	refused(s, strlen(s), "a name one byte too long");
	free(s);

	/* ---- lengths ---- */
	REFUSED("anyon-secrets 1\nsecret a 0\n\nend\n", "length 0");
	REFUSED("anyon-secrets 1\nsecret a 012\ns3cr3t-VALUE\nend\n", "a leading zero");
	REFUSED("anyon-secrets 1\nsecret a +12\ns3cr3t-VALUE\nend\n", "a sign");
	REFUSED("anyon-secrets 1\nsecret a -1\ns3cr3t-VALUE\nend\n", "a negative length");
	REFUSED("anyon-secrets 1\nsecret a 12x\ns3cr3t-VALUE\nend\n", "a length with a letter");
	REFUSED("anyon-secrets 1\nsecret a \ns3cr3t-VALUE\nend\n", "no length");
	REFUSED("anyon-secrets 1\nsecret a\ns3cr3t-VALUE\nend\n", "no space before a length");
	REFUSED("anyon-secrets 1\nsecret a 65537\ns3cr3t-VALUE\nend\n", "one byte over the value limit");
	REFUSED("anyon-secrets 1\nsecret a 99999999999999999999\ns3cr3t-VALUE\nend\n", "a length that overflows");
	REFUSED("anyon-secrets 1\nsecret a 13\ns3cr3t-VALUE\nend\n", "a value shorter than its length");
	REFUSED("anyon-secrets 1\nsecret a 11\ns3cr3t-VALUE\nend\n", "a value longer than its length");
	REFUSED("anyon-secrets 1\nsecret a 12\ns3cr3t-VALUE", "a value without its newline, at the end");

	/* ---- framing ---- */
	REFUSED("anyon-secrets 2\nend\n", "another version");
	REFUSED("ANYON-SECRETS 1\nend\n", "another magic");
	REFUSED("s3cr3t-VALUE\n", "a bare value");
	REFUSED("anyon-secrets 1\n", "no end");
	REFUSED("anyon-secrets 1\nsecret a 12\ns3cr3t-VALUE\n", "a secret and no end");
	REFUSED("anyon-secrets 1\nend", "end without its newline");
	REFUSED("anyon-secrets 1\nend\ns3cr3t-VALUE", "bytes after end");
	REFUSED("anyon-secrets 1\nend\nend\n", "end twice");
	REFUSED("anyon-secrets 1\nsecrets a 12\ns3cr3t-VALUE\nend\n", "an unknown record");

	/* Truncated at every byte: only the whole bundle (and nothing) pass. */
	n = 0;
	for (i = 1; i < sizeof good - 1; i++) {
		struct bundle t;
		if (parse_n(good, i, &t, err, sizeof err) == 0 || t.n != 0 || strstr(err, VALUE))
			n++;
	}
	is_int(n, 0, "every truncation of a good bundle is refused, with no secrets and no value in the error");

	/* ---- limits ---- */
	{
		size_t cap = 64 + (BUNDLE_MAX_SECRETS + 1) * 40, len = 0;
		char *t = malloc(cap);

		len += (size_t)snprintf(t + len, cap - len, "anyon-secrets 1\n");
		for (i = 0; i < BUNDLE_MAX_SECRETS; i++)
			len += (size_t)snprintf(t + len, cap - len, "secret s%zu 1\nx\n", i);
		len += (size_t)snprintf(t + len, cap - len, "end\n");
		is_int(parse_n(t, len, &b, err, sizeof err), 0, "%d secrets pass", BUNDLE_MAX_SECRETS);
		is_int(b.n, BUNDLE_MAX_SECRETS, "all of them");
		len -= 4;
		len += (size_t)snprintf(t + len, cap - len, "secret s%d 1\nx\nend\n", BUNDLE_MAX_SECRETS);
		refused(t, len, "one secret too many");
		free(t);
	}
	{
		size_t len = 16 + 24 + BUNDLE_VALUE_MAX + 1 + 4;
		char *t = malloc(len + 1);
		int hl;

		hl = snprintf(t, len + 1, "anyon-secrets 1\nsecret big %d\n", BUNDLE_VALUE_MAX);
		memset(t + hl, 'v', BUNDLE_VALUE_MAX);
		memcpy(t + hl + BUNDLE_VALUE_MAX, "\nend\n", 5);
		len = (size_t)hl + BUNDLE_VALUE_MAX + 5;
		is_int(parse_n(t, len, &b, err, sizeof err), 0, "a value of %d bytes passes", BUNDLE_VALUE_MAX);
		ok(b.n == 1 && b.secrets[0].len == BUNDLE_VALUE_MAX, "and keeps its length");
		free(t);
	}
	{
		size_t len = BUNDLE_MAX_BYTES + 1;
		char *t = malloc(len);

		memset(t, '\n', len);
		memcpy(t, "anyon-secrets 1\n", 16);
		refused(t, len, "an input over the total limit");
		memset(t + 16, 'a', len - 16);
		refused(t, BUNDLE_MAX_BYTES, "one long line without a newline");
		free(t);
	}

	/* ---- random mutations: no crash, no read past the end, and what
	 * passes has values inside the input ---- */
	srand(4000);
	n = 0;
	for (i = 0; i < 20000; i++) {
		size_t len = sizeof good - 1, k, flips = 1 + (size_t)rand() % 4;
		unsigned char *m = malloc(len);
		struct bundle t;
		int rc;

		memcpy(m, good, len);
		for (k = 0; k < flips; k++)
			m[(size_t)rand() % len] = (unsigned char)rand();
		len -= (size_t)rand() % 3 == 0 ? (size_t)rand() % len : 0;
		rc = bundle_parse(m, len, &t, err, sizeof err);
		if (rc == 0)
			for (k = 0; k < t.n; k++)
				if (t.secrets[k].value < m || t.secrets[k].value + t.secrets[k].len > m + len ||
				    !bundle_name_ok(t.secrets[k].name, strlen(t.secrets[k].name)))
					n++;
		if (rc != 0 && t.n != 0)
			n++;
		free(m);
	}
	is_int(n, 0, "20000 mutated bundles: refused cleanly or parsed within bounds with valid names");
	return done_testing();
}
