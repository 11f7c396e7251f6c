/* The streaming masker: each encoding of a known secret, every split point
 * of a secret across two feeds, token shapes nobody announced, ordinary
 * text left alone (and not held back), the bounds, and flat memory over
 * a 200 MB stream (ANYON_TEST_MASK_MB to change the size). */
#include "autoconfig.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "base/util.h"
#include "services/mask.h"
#include "t/unit/tap.h"

/* A growing output buffer for the tests (the masker itself never grows). */
struct sink {
	char *buf;
	size_t len, cap;
};

static int to_sink(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;

	if (s->len + len + 1 > s->cap) {
		s->cap = (s->len + len + 1) * 2;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf)
			BAIL_OUT("out of memory");
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return 0;
}

/* Masks text in one feed; the result is malloc'd. */
static char *mask_once(const struct mask_set *set, const char *text, size_t len)
{
	struct mask_stream *ms = mask_stream_new(set);
	struct sink s = { 0 };

	to_sink(&s, "", 0);
	if (!ms || mask_stream_feed(ms, text, len, to_sink, &s) || mask_stream_finish(ms, to_sink, &s))
		BAIL_OUT("mask failed");
	mask_stream_free(ms);
	return s.buf;
}

/* Masks text split at cut into two feeds. */
static char *mask_split(const struct mask_set *set, const char *text, size_t len, size_t cut)
{
	struct mask_stream *ms = mask_stream_new(set);
	struct sink s = { 0 };

	to_sink(&s, "", 0);
	if (!ms || mask_stream_feed(ms, text, cut, to_sink, &s) ||
	    mask_stream_feed(ms, text + cut, len - cut, to_sink, &s) || mask_stream_finish(ms, to_sink, &s))
		BAIL_OUT("mask failed");
	mask_stream_free(ms);
	return s.buf;
}

/* Masks text one byte per feed. */
static char *mask_bytewise(const struct mask_set *set, const char *text, size_t len)
{
	struct mask_stream *ms = mask_stream_new(set);
	struct sink s = { 0 };

	to_sink(&s, "", 0);
	for (size_t i = 0; i < len; i++)
		if (mask_stream_feed(ms, text + i, 1, to_sink, &s))
			BAIL_OUT("mask failed");
	if (mask_stream_finish(ms, to_sink, &s))
		BAIL_OUT("mask failed");
	mask_stream_free(ms);
	return s.buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Every split of text gives the one-feed answer, as does one byte a feed. */
static bool splits_agree(const struct mask_set *set, const char *text, const char *want)
{
	size_t len = strlen(text);
	bool all = true;
	char *got;

	for (size_t cut = 0; cut <= len; cut++) {
		got = mask_split(set, text, len, cut);
		if (strcmp(got, want) != 0) {
			diag("split at %zu: got '%s', want '%s'", cut, got, want);
			all = false;
		}
		free(got);
	}
	got = mask_bytewise(set, text, len);
	if (strcmp(got, want) != 0) {
		diag("one byte a feed: got '%s', want '%s'", got, want);
		all = false;
	}
	free(got);
	return all;
}

/* Checks one encoded form of the secret inside text: masked once, at
 * most slack characters of the form left on either side, and the same for
 * every split point. */
static void check_form(const struct mask_set *set, const char *what, const char *form, size_t slack)
{
	char text[4096], *got;
	size_t flen = strlen(form);

	snprintf(text, sizeof(text), "line: %s (end)\n", form);
	got = mask_once(set, text, strlen(text));
	if (!ok(count(got, MASK_REPLACEMENT) == 1 &&
		strlen(got) <= strlen(text) - flen + 2 * slack + strlen(MASK_REPLACEMENT) &&
		strncmp(got, "line: ", 6) == 0 && strstr(got, " (end)\n"), "%s: masked", what))
		diag("got '%s'", got);
	ok(splits_agree(set, text, got), "%s: masked the same at each of the %zu split points and byte by byte",
	   what, strlen(text) + 1);
	free(got);
}

static void b64(const unsigned char *in, size_t n, char *out, bool url)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	if (url)
		for (char *p = out; *p; p++)
			*p = *p == '+' ? '-' : *p == '/' ? '_' : *p == '=' ? '\0' : *p;
}

static void test_encodings(void)
{
	/* Bytes chosen so base64 has '+' and '/' and URL-encoding has escapes. */
	static const char secret[] = "s3cr3t/v@lue+~?\"\t\\\xfb\xff=x";
	size_t slen = strlen(secret);
	struct mask_set *set = mask_set_new();
	char err[128], form[4096], *got, *e;
	unsigned char raw[64];

	ok(set && mask_set_add(set, secret, slen, err, sizeof(err)) == 0, "a secret is added");
	check_form(set, "raw", secret, 0);
	check_form(set, "in a JSON string", "s3cr3t/v@lue+~?\\\"\\t\\\\\xfb\xff=x", 0);
	check_form(set, "in a JSON string with '/' escaped", "s3cr3t\\/v@lue+~?\\\"\\t\\\\\xfb\xff=x", 0);
	hex_encode(secret, slen, form);
	check_form(set, "hex, lower case", form, 0);
	for (char *p = form; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	check_form(set, "hex, upper case", form, 0);
	e = curl_easy_escape(NULL, secret, (int)slen);
	ok(e && strcmp(e, secret) != 0, "the secret needs URL-encoding");
	check_form(set, "URL-encoded", e, 0);
	for (char *p = e; *p; p++)
		if (p[0] == '%' && p[1] && p[2]) {
			for (int j = 1; j <= 2; j++)
				if (p[j] >= 'A' && p[j] <= 'F')
					p[j] = (char)(p[j] - 'A' + 'a');
		}
	check_form(set, "URL-encoded, lower-case escapes", e, 0);
	curl_free(e);
	/* The secret at each alignment inside a base64 group, with different
	 * bytes around it: the characters that carry only secret bits go. */
	for (int url = 0; url <= 1; url++)
		for (size_t k = 0; k < 3; k++)
			for (int fill = 0; fill < 2; fill++) {
				char what[96];
				size_t n = 0;

				memset(raw, fill ? 0xA5 : 'Q', k);
				n = k;
				memcpy(raw + n, secret, slen);
				n += slen;
				memset(raw + n, fill ? 0x5A : 'Z', 4);
				n += 4;
				b64(raw, n, form, url);
				snprintf(what, sizeof(what), "%s, secret at offset %zu of a group (filler %d)",
					 url ? "base64url" : "base64", k, fill);
				/* Two characters either side may carry other bytes' bits,
				 * plus the encoded filler itself. */
				check_form(set, what, form, 2 + 6);
			}
	/* Without the secret, the same base64 stays. */
	memset(raw, 'Q', 30);
	b64(raw, 30, form, false);
	got = mask_once(set, form, strlen(form));
	is_str(got, form, "base64 of other bytes is left alone");
	free(got);
	mask_set_free(set);
}

static void test_tokens(void)
{
	struct mask_set *set = mask_set_new();
	static const char *const tokens[] = {
		"ghp_16C7e42F292c6912E7710c838347Ae178B4a",
		"gho_16C7e42F292c6912E7710c838347Ae178B4a",
		"ghu_16C7e42F292c6912E7710c838347Ae178B4a",
		"ghs_16C7e42F292c6912E7710c838347Ae178B4a",
		"ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
		"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd",
		"sk-ant-api03-abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN-AA",
	};
	char text[512], *got;

	for (size_t i = 0; i < ARRAY_SIZE(tokens); i++) {
		char prefix[16];

		snprintf(text, sizeof(text), "token=%s; next\n", tokens[i]);
		got = mask_once(set, text, strlen(text));
		snprintf(prefix, sizeof(prefix), "%.4s", tokens[i]);
		is_str(got, "token=" MASK_REPLACEMENT "; next\n", "token shape %.11s... masked whole", tokens[i]);
		ok(splits_agree(set, text, got), "token shape %.11s...: at every split point too", tokens[i]);
		free(got);
	}
	/* A token body far longer than anything held back: dropped as it comes. */
	{
		size_t n = 100000;
		char *big = malloc(n + 32);

		memcpy(big, "x sk-ant-", 9);
		for (size_t i = 9; i < n; i++)
			big[i] = "abcXYZ019_-"[i % 11];
		memcpy(big + n, " y\n", 4);
		got = mask_bytewise(set, big, strlen(big));
		is_str(got, "x " MASK_REPLACEMENT " y\n", "a 100 kB token body fed one byte at a time is masked as one");
		free(got);
		free(big);
	}
	mask_set_free(set);
}

static void test_ordinary(void)
{
	static const char text[] =
		"Cloning into 'repo'...\nremote: Enumerating objects: 42, done.\n"
		"see github_pat_ docs and the ghp_ prefix; sk-ant-short keys; gh_pages\n"
		"sha 3f786850e387550fdab836ed7e6dc881de23001b base64 aGVsbG8gd29ybGQ=\n"
		"%41%42 100% done, \xe2\x9c\x93 unicode, tabs\tand \r\n";
	struct mask_set *set = mask_set_new();
	struct mask_stream *ms;
	struct sink s = { 0 };
	char err[128], *got;

	ok(set && mask_set_add(set, "correct horse battery", 21, err, sizeof(err)) == 0, "a secret");
	got = mask_once(set, text, sizeof(text) - 1);
	is_str(got, text, "ordinary text, token prefixes without a token, hex and base64 of other things: unchanged");
	ok(splits_agree(set, text, text), "unchanged at every split point too");
	free(got);
	ms = mask_stream_new(set);
	to_sink(&s, "", 0);
	ok(mask_stream_feed(ms, "password: ", 10, to_sink, &s) == 0 && mask_stream_held(ms) == 0 &&
	   strcmp(s.buf, "password: ") == 0, "a prompt that could not start a secret is passed on at once");
	ok(mask_stream_feed(ms, "correct hor", 11, to_sink, &s) == 0 && mask_stream_held(ms) == 11 &&
	   strcmp(s.buf, "password: ") == 0, "the start of a secret is held back");
	ok(mask_stream_feed(ms, "se battery!", 11, to_sink, &s) == 0 && mask_stream_held(ms) == 0 &&
	   strcmp(s.buf, "password: " MASK_REPLACEMENT "!") == 0, "and masked when the rest comes");
	ok(mask_stream_feed(ms, "correct", 7, to_sink, &s) == 0 && mask_stream_finish(ms, to_sink, &s) == 0 &&
	   strcmp(s.buf, "password: " MASK_REPLACEMENT "!correct") == 0, "a held start that never finished is passed on at the end");
	mask_stream_free(ms);
	free(s.buf);
	mask_set_free(set);
}

static void test_overlap_and_bounds(void)
{
	struct mask_set *set = mask_set_new();
	char err[128], big[MASK_SECRET_MAX + 2], *got;
	bool all = true;

	ok(mask_set_add(set, "abcdefgh", 8, err, sizeof(err)) == 0 &&
	   mask_set_add(set, "efghijklmn", 10, err, sizeof(err)) == 0, "two overlapping secrets");
	got = mask_once(set, "<abcdefghijklmn>", 16);
	is_str(got, "<" MASK_REPLACEMENT ">", "overlapping matches become one replacement, nothing of either left");
	free(got);
	ok(mask_set_add(set, "short", 5, err, sizeof(err)) == -1 && strstr(err, "8"), "a 5-byte secret is refused: %s", err);
	memset(big, '/', sizeof(big));
	ok(mask_set_add(set, big, MASK_SECRET_MAX + 1, err, sizeof(err)) == -1, "a secret over %d bytes is refused", MASK_SECRET_MAX);
	ok(mask_set_add(set, big, MASK_SECRET_MAX, err, sizeof(err)) == 0, "one of %d bytes is taken", MASK_SECRET_MAX);
	ok(mask_set_hold(set) == 3 * MASK_SECRET_MAX - 1, "held back at most its URL-encoded length less one (%zu)",
	   mask_set_hold(set));
	for (int i = 3; i < MASK_SECRETS_MAX; i++) {
		char s[32];

		snprintf(s, sizeof(s), "secret-number-%d", i);
		all = all && mask_set_add(set, s, strlen(s), err, sizeof(err)) == 0;
	}
	ok(all, "up to %d secrets", MASK_SECRETS_MAX);
	ok(mask_set_add(set, "one-too-many", 12, err, sizeof(err)) == -1, "one more is refused: %s", err);
	got = mask_once(set, "x secret-number-31 y", 20);
	is_str(got, "x " MASK_REPLACEMENT " y", "the last one still masks");
	free(got);
	mask_set_free(set);
}

/* xorshift: fast test data, not randomness anyone relies on. */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct hashing_sink {
	EVP_MD_CTX *md;
	uint64_t bytes;
	size_t heap_max;     /* the heap's in-use bytes, highest seen while feeding */
};

static int to_hash(void *arg, const void *data, size_t len)
{
	struct hashing_sink *h = arg;

	h->bytes += len;
	return EVP_DigestUpdate(h->md, data, len) == 1 ? 0 : -1;
}

static long vm_hwm_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static void test_memory(void)
{
	const char *mb_env = getenv("ANYON_TEST_MASK_MB");
	uint64_t total = (uint64_t)(mb_env ? atol(mb_env) : 200) << 20, fed = 0;
	struct mask_set *set = mask_set_new();
	struct mask_stream *ms;
	struct hashing_sink out = { EVP_MD_CTX_new(), 0, 0 };
	EVP_MD_CTX *in_md = EVP_MD_CTX_new();
	unsigned char *chunk = malloc(65536), hin[32], hout[32];
	size_t heap0, heap;
	long hwm0, hwm1;
	char err[128];
	bool all = true;

	for (int i = 0; i < MASK_SECRETS_MAX && all; i++) {
		unsigned char s[40];

		for (size_t j = 0; j < sizeof(s); j++)
			s[j] = (unsigned char)next_rand();
		all = mask_set_add(set, s, sizeof(s), err, sizeof(err)) == 0;
	}
	ok(all, "%d secrets", MASK_SECRETS_MAX);
	ms = mask_stream_new(set);
	EVP_DigestInit_ex(out.md, EVP_sha256(), NULL);
	EVP_DigestInit_ex(in_md, EVP_sha256(), NULL);
	heap0 = mallinfo2().uordblks;
	hwm0 = vm_hwm_kb();
	while (fed < total && all) {
		size_t n = 1 + next_rand() % 65536;

		if (n > total - fed)
			n = (size_t)(total - fed);
		for (size_t j = 0; j < n; j += 8) {
			uint64_t r = next_rand();

			memcpy(chunk + j, &r, n - j < 8 ? n - j : 8);
		}
		EVP_DigestUpdate(in_md, chunk, n);
		all = mask_stream_feed(ms, chunk, n, to_hash, &out) == 0;
		fed += n;
		heap = mallinfo2().uordblks;
		if (heap > out.heap_max)
			out.heap_max = heap;
	}
	all = all && mask_stream_finish(ms, to_hash, &out) == 0;
	hwm1 = vm_hwm_kb();
	EVP_DigestFinal_ex(in_md, hin, NULL);
	EVP_DigestFinal_ex(out.md, hout, NULL);
	ok(all && out.bytes == total && memcmp(hin, hout, 32) == 0,
	   "%llu MB of random bytes in pieces of 1 to 65536: passed on byte for byte",
	   (unsigned long long)(total >> 20));
	ok(out.heap_max == heap0, "the heap in use did not grow while feeding (%zu -> %zu bytes)", heap0, out.heap_max);
	ok(hwm0 > 0 && hwm1 - hwm0 < 1024, "peak RSS grew by %ld kB (under 1 MB)", hwm1 - hwm0);
	mask_stream_free(ms);
	mask_set_free(set);
	EVP_MD_CTX_free(out.md);
	EVP_MD_CTX_free(in_md);
	free(chunk);
}

/* Texts made of ordinary words, whole and partial secrets in their forms
 * and tokens, fed in random pieces: always the one-feed answer, which
 * never holds a whole raw or hex secret. */
static void test_random_splits(void)
{
	static const char *const secrets[] = { "Tr0ub4dor&3-horse", "sk-ant-api03-ZZZZZZZZZZZZZZZZZZZZZZZZ", "p%2Fw+d/==" };
	struct mask_set *set = mask_set_new();
	char err[128], hex[256], text[4096];
	bool all = true, clean = true;

	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
		if (mask_set_add(set, secrets[i], strlen(secrets[i]), err, sizeof(err)))
			BAIL_OUT("%s", err);
	for (int round = 0; round < 400; round++) {
		size_t n = 0;
		char *want, *got;
		struct mask_stream *ms = mask_stream_new(set);
		struct sink sk = { 0 };

		while (n < sizeof(text) - 200) {
			const char *sec = secrets[next_rand() % ARRAY_SIZE(secrets)];
			size_t sl = strlen(sec);

			switch (next_rand() % 6) {
			case 0:
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", sec);
				break;
			case 1:
				hex_encode(sec, sl, hex);
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", hex);
				break;
			case 2:   /* a prefix of a secret that stops short */
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%.*s", (int)(next_rand() % sl), sec);
				break;
			case 3:
				n += (size_t)snprintf(text + n, sizeof(text) - n, "ghp_%s", "abcdefghij0123456789XY");
				break;
			default:
				n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", (const char *[]){ " ", "\n",
					"word", "Tr0", "gh", "sk-", "%2", "ok." }[next_rand() % 8]);
				break;
			}
		}
		want = mask_once(set, text, n);
		to_sink(&sk, "", 0);
		for (size_t i = 0; i < n;) {
			size_t piece = 1 + next_rand() % 40;

			if (piece > n - i)
				piece = n - i;
			mask_stream_feed(ms, text + i, piece, to_sink, &sk);
			i += piece;
		}
		mask_stream_finish(ms, to_sink, &sk);
		got = sk.buf;
		if (strcmp(got, want) != 0)
			all = false;
		for (size_t i = 0; i < ARRAY_SIZE(secrets); i++) {
			hex_encode(secrets[i], strlen(secrets[i]), hex);
			if (strstr(want, secrets[i]) || strstr(want, hex))
				clean = false;
		}
		free(got);
		free(want);
		mask_stream_free(ms);
	}
	ok(all, "400 random texts fed in random pieces: the same as in one feed");
	ok(clean, "and no whole secret (raw or hex) survives in any of them");
	mask_set_free(set);
}

int main(void)
{
	test_encodings();
	test_tokens();
	test_ordinary();
	test_overlap_and_bounds();
	test_random_splits();
	test_memory();
	return done_testing();
}
