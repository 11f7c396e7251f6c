/* mask.c - streaming secret masking (see mask.h).
 *
 * At each position of the fed bytes, every pattern that starts with that
 * byte is compared (a bitmap of the patterns' first two bytes turns most
 * positions away at once). The longest match wins; a match that begins
 * inside a masked stretch extends it, so overlapping secrets become one
 * MASK_REPLACEMENT. A position where some pattern matches the bytes up to
 * the end of what was fed, but needs more, is undecided: it and what
 * follows are held back for the next feed. Token shapes match their prefix
 * and a minimum run of token characters; the rest of the run is dropped
 * as it comes, however long it is, so nothing about them is held. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/util.h"
#include "services/mask.h"

#define WORK_BYTES 16384          /* fed bytes scanned per step, beyond the held ones */
#define PATTERNS_MAX (MASK_SECRETS_MAX * 16)

enum tok_class { TOK_ALNUM, TOK_ALNUM_US, TOK_ALNUM_US_DASH };

/* Token shapes masked whether or not the job knows the token. */
static const struct token_shape {
	const char *prefix;
	enum tok_class cls;   /* what the token's body is made of */
	size_t min_run;       /* body bytes needed before it counts as a token */
} shapes[] = {
	{ "ghp_", TOK_ALNUM, 20 },
	{ "gho_", TOK_ALNUM, 20 },
	{ "ghu_", TOK_ALNUM, 20 },
	{ "ghs_", TOK_ALNUM, 20 },
	{ "ghr_", TOK_ALNUM, 20 },
	{ "github_pat_", TOK_ALNUM_US, 20 },
	{ "sk-ant-", TOK_ALNUM_US_DASH, 20 },
};

struct pattern {
	unsigned char *bytes;     /* owned, wiped on free */
	size_t len;
};

struct mask_set {
	struct pattern pats[PATTERNS_MAX];
	size_t npats;
	int nsecrets;
	size_t hold;                      /* longest pattern (or token need) less one */
	uint16_t first[257];              /* pats with first byte c: order[first[c]..first[c+1]) */
	uint16_t order[PATTERNS_MAX];
	unsigned char pair[65536 / 8];    /* bit (b0 << 8 | b1): some pattern or shape starts so */
};

struct mask_stream {
	const struct mask_set *set;   /* borrowed */
	unsigned char *buf;           /* held bytes, then the bytes being scanned; owned */
	size_t cap, len;
	size_t cover;                 /* bytes from buf's start that lie in a masked stretch */
	int run_cls;                  /* a token's body continues: drop bytes of this class; -1 none */
};

enum { M_NONE, M_MATCH, M_MAYBE };

static bool in_class(int cls, unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	if (c == '_')
		return cls == TOK_ALNUM_US || cls == TOK_ALNUM_US_DASH;
	return c == '-' && cls == TOK_ALNUM_US_DASH;
}

static void set_pair(struct mask_set *set, unsigned char a, unsigned char b)
{
	unsigned k = (unsigned)a << 8 | b;

	set->pair[k >> 3] |= (unsigned char)(1u << (k & 7));
}

static bool has_pair(const struct mask_set *set, unsigned char a, unsigned char b)
{
	unsigned k = (unsigned)a << 8 | b;

	return set->pair[k >> 3] & (1u << (k & 7));
}

/* Recomputes the first-byte index, the pair bitmap and the hold. */
static void reindex(struct mask_set *set)
{
	uint16_t count[256] = { 0 }, at[256];
	size_t hold = 0;

	memset(set->pair, 0, sizeof(set->pair));
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		size_t need = strlen(shapes[i].prefix) + shapes[i].min_run;

		set_pair(set, (unsigned char)shapes[i].prefix[0], (unsigned char)shapes[i].prefix[1]);
		if (need > hold)
			hold = need;
	}
	for (size_t i = 0; i < set->npats; i++) {
		count[set->pats[i].bytes[0]]++;
		set_pair(set, set->pats[i].bytes[0], set->pats[i].bytes[1]);
		if (set->pats[i].len > hold)
			hold = set->pats[i].len;
	}
	set->first[0] = 0;
	for (int c = 0; c < 256; c++) {
		set->first[c + 1] = (uint16_t)(set->first[c] + count[c]);
		at[c] = set->first[c];
	}
	for (size_t i = 0; i < set->npats; i++)
		set->order[at[set->pats[i].bytes[0]]++] = (uint16_t)i;
	set->hold = hold - 1;
}

struct mask_set *mask_set_new(void)
{
	struct mask_set *set = calloc(1, sizeof(*set));

	if (set)
		reindex(set);
	return set;
}

size_t mask_set_hold(const struct mask_set *set)
{
	return set->hold;
}

static void pattern_wipe(struct pattern *p)
{
	OPENSSL_cleanse(p->bytes, p->len);
	free(p->bytes);
	p->bytes = NULL;
	p->len = 0;
}

void mask_set_free(struct mask_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->npats; i++)
		pattern_wipe(&set->pats[i]);
	OPENSSL_cleanse(set, sizeof(*set));
	free(set);
}

/* Adds one pattern unless the set has it already. -1 when out of memory. */
static int add_pattern(struct mask_set *set, const void *bytes, size_t len)
{
	unsigned char *copy;

	for (size_t i = 0; i < set->npats; i++)
		if (set->pats[i].len == len && memcmp(set->pats[i].bytes, bytes, len) == 0)
			return 0;
	if (set->npats >= PATTERNS_MAX || len < 2)
		return -1;   /* cannot happen: bounded by MASK_SECRETS_MAX and MASK_SECRET_MIN */
	copy = malloc(len);
	if (!copy)
		return -1;
	memcpy(copy, bytes, len);
	set->pats[set->npats].bytes = copy;
	set->pats[set->npats].len = len;
	set->npats++;
	return 0;
}

/* The base64 (and base64url) forms of a secret that starts at byte offset
 * k (0, 1 or 2) of a 3-byte group: only the characters whose six bits all
 * come from the secret, since the ones at either end also carry bits of
 * whatever surrounds it. */
static int add_base64(struct mask_set *set, const unsigned char *s, size_t len)
{
	unsigned char in[MASK_SECRET_MAX + 2], out[(MASK_SECRET_MAX + 4) / 3 * 4 + 8];
	int rc = 0;

	for (size_t k = 0; k < 3 && rc == 0; k++) {
		size_t c0 = (8 * k + 5) / 6, c1 = 8 * (k + len) / 6;

		memset(in, 0, k);
		memcpy(in + k, s, len);
		EVP_EncodeBlock(out, in, (int)(k + len));
		rc = add_pattern(set, out + c0, c1 - c0);
		for (size_t i = c0; i < c1; i++)
			out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
		if (rc == 0)
			rc = add_pattern(set, out + c0, c1 - c0);
	}
	OPENSSL_cleanse(in, sizeof(in));
	OPENSSL_cleanse(out, sizeof(out));
	return rc;
}

static int add_hex(struct mask_set *set, const unsigned char *s, size_t len)
{
	char hex[2 * MASK_SECRET_MAX + 1];
	int rc;

	hex_encode(s, len, hex);
	rc = add_pattern(set, hex, 2 * len);
	for (size_t i = 0; i < 2 * len; i++)
		if (hex[i] >= 'a' && hex[i] <= 'f')
			hex[i] = (char)(hex[i] - 'a' + 'A');
	if (rc == 0)
		rc = add_pattern(set, hex, 2 * len);
	OPENSSL_cleanse(hex, sizeof(hex));
	return rc;
}

/* URL-encoded by libcurl (upper-case escapes), and with lower-case escapes. */
static int add_url(struct mask_set *set, const unsigned char *s, size_t len)
{
	char *e = curl_easy_escape(NULL, (const char *)s, (int)len);
	size_t n;
	int rc;

	if (!e)
		return -1;
	n = strlen(e);
	rc = add_pattern(set, e, n);
	for (size_t i = 0; i + 2 < n; i++)
		if (e[i] == '%')
			for (size_t j = i + 1; j <= i + 2; j++)
				if (e[j] >= 'A' && e[j] <= 'F')
					e[j] = (char)(e[j] - 'A' + 'a');
	if (rc == 0)
		rc = add_pattern(set, e, n);
	OPENSSL_cleanse(e, n);
	curl_free(e);
	return rc;
}

/* Inside a JSON string, as json-c writes it with and without '/'
 * escaped (quotes, backslashes and control bytes always are): how a
 * program printing JSON lines, such as the agent's stream-json, shows it. */
static int add_json(struct mask_set *set, const unsigned char *s, size_t len)
{
	static const int flags[] = { JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
				     JSON_C_TO_STRING_PLAIN };
	json_object *o = json_object_new_string_len((const char *)s, (int)len);
	int rc = o ? 0 : -1;

	for (size_t k = 0; k < ARRAY_SIZE(flags) && rc == 0; k++) {
		size_t n = 0;
		const char *e = json_object_to_json_string_length(o, flags[k], &n);

		rc = e && n >= 2 ? add_pattern(set, e + 1, n - 2) : -1;
		if (e)
			OPENSSL_cleanse((void *)e, n);   /* json-c's own buffer */
	}
	if (o) {
		OPENSSL_cleanse((void *)json_object_get_string(o), len);
		json_object_put(o);
	}
	return rc;
}

int mask_set_add(struct mask_set *set, const void *secret, size_t len, char *err, size_t errlen)
{
	const unsigned char *s = secret;
	size_t before = set->npats;

	if (len < MASK_SECRET_MIN || len > MASK_SECRET_MAX) {
		snprintf(err, errlen, "a secret to mask must have %d to %d bytes, not %zu",
			 MASK_SECRET_MIN, MASK_SECRET_MAX, len);
		return -1;
	}
	if (set->nsecrets >= MASK_SECRETS_MAX) {
		snprintf(err, errlen, "at most %d secrets can be masked in one job", MASK_SECRETS_MAX);
		return -1;
	}
	if (add_pattern(set, s, len) || add_hex(set, s, len) || add_base64(set, s, len) ||
	    add_url(set, s, len) || add_json(set, s, len)) {
		while (set->npats > before)
			pattern_wipe(&set->pats[--set->npats]);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	set->nsecrets++;
	reindex(set);
	return 0;
}

struct mask_stream *mask_stream_new(const struct mask_set *set)
{
	struct mask_stream *ms = calloc(1, sizeof(*ms));

	if (!ms)
		return NULL;
	ms->set = set;
	ms->cap = set->hold + WORK_BYTES;
	ms->buf = malloc(ms->cap);
	ms->run_cls = -1;
	if (!ms->buf) {
		free(ms);
		return NULL;
	}
	return ms;
}

void mask_stream_free(struct mask_stream *ms)
{
	if (!ms)
		return;
	OPENSSL_cleanse(ms->buf, ms->cap);
	free(ms->buf);
	free(ms);
}

size_t mask_stream_held(const struct mask_stream *ms)
{
	return ms->len;
}

/* What starts at b[i] (of n bytes): M_MATCH with its length (and, for a
 * token shape, the class its body continues in, else -1), M_MAYBE when a
 * pattern matches up to the end but needs more bytes (never when final),
 * or M_NONE. */
static int match_at(const struct mask_set *set, const unsigned char *b, size_t n, size_t i,
		    bool final, size_t *mlen, int *cls)
{
	size_t avail = n - i, best = 0;
	unsigned char c = b[i];
	bool maybe = false;
	int bcls = -1;

	if (avail >= 2 && !has_pair(set, c, b[i + 1]))
		return M_NONE;
	for (size_t k = set->first[c]; k < set->first[c + 1]; k++) {
		const struct pattern *p = &set->pats[set->order[k]];

		if (avail >= p->len) {
			if (p->len > best && memcmp(b + i, p->bytes, p->len) == 0)
				best = p->len;
		} else if (!final && memcmp(b + i, p->bytes, avail) == 0) {
			maybe = true;
		}
	}
	if (c == 'g' || c == 's') {
		for (size_t k = 0; k < ARRAY_SIZE(shapes); k++) {
			const struct token_shape *t = &shapes[k];
			size_t pl, j;

			/* Most shapes differ at once: no memcmp() for them. */
			if (t->prefix[0] != c || (avail >= 2 && t->prefix[1] != b[i + 1]))
				continue;
			pl = strlen(t->prefix);
			if (avail < pl) {
				if (!final && memcmp(b + i, t->prefix, avail) == 0)
					maybe = true;
				continue;
			}
			if (memcmp(b + i, t->prefix, pl) != 0)
				continue;
			for (j = i + pl; j < n && j - i - pl < t->min_run && in_class((int)t->cls, b[j]); j++)
				;
			if (j - i - pl == t->min_run) {
				if (pl + t->min_run >= best) {
					best = pl + t->min_run;
					bcls = (int)t->cls;
				}
			} else if (j == n && !final) {
				maybe = true;
			}
		}
	}
	if (maybe)
		return M_MAYBE;
	if (!best)
		return M_NONE;
	*mlen = best;
	*cls = bcls;
	return M_MATCH;
}

/* The first position from i on (at most n - 1) where a pattern or shape
 * may start, by the pair bitmap: eight positions per branch while none
 * may. */
static size_t skip_plain(const struct mask_set *set, const unsigned char *b, size_t i, size_t n)
{
	while (i + 8 < n) {
		unsigned hit = 0;

		for (int k = 0; k < 8; k++) {
			unsigned key = (unsigned)b[i + k] << 8 | b[i + k + 1];

			hit |= (unsigned)(set->pair[key >> 3] >> (key & 7)) & 1u;
		}
		if (hit)
			break;
		i += 8;
	}
	while (i + 1 < n && !has_pair(set, b[i], b[i + 1]))
		i++;
	return i;
}

/* Decides what it can of buf, passes it on and keeps the undecided rest
 * at buf's start. */
static int scan(struct mask_stream *ms, bool final, mask_out_fn out, void *arg)
{
	unsigned char *b = ms->buf;
	size_t n = ms->len, i = 0, plain = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		bool masked;
		size_t mlen = 0;
		int cls = -1, m;

		if (i < ms->cover) {
			masked = true;
		} else if (ms->run_cls >= 0 && in_class(ms->run_cls, b[i])) {
			masked = true;
		} else {
			ms->run_cls = -1;
			masked = false;
		}
		/* Most bytes start nothing: skip them through the pair bitmap
		 * (as match_at() would), outside masked stretches and token runs. */
		if (!masked) {
			size_t j = skip_plain(ms->set, b, i, n);

			if (j > i) {
				i = j;
				continue;
			}
		}
		m = match_at(ms->set, b, n, i, final, &mlen, &cls);
		if (m == M_MAYBE)
			break;
		if (m == M_MATCH) {
			if (!masked) {
				if (plain < i)
					rc = out(arg, b + plain, i - plain);
				if (rc == 0)
					rc = out(arg, MASK_REPLACEMENT, sizeof(MASK_REPLACEMENT) - 1);
			}
			if (i + mlen > ms->cover)
				ms->cover = i + mlen;
			if (cls >= 0)
				ms->run_cls = cls;
			masked = true;
		}
		i++;
		if (masked)
			plain = i;
	}
	if (rc == 0 && plain < i)
		rc = out(arg, b + plain, i - plain);
	/* The decided bytes are gone; wipe them as the held ones move down. */
	memmove(b, b + i, n - i);
	OPENSSL_cleanse(b + (n - i), i);
	ms->len = n - i;
	ms->cover = ms->cover > i ? ms->cover - i : 0;
	return rc;
}

int mask_stream_feed(struct mask_stream *ms, const void *data, size_t len,
		     mask_out_fn out, void *arg)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t take = ms->cap - ms->len;

		if (take > len)
			take = len;
		memcpy(ms->buf + ms->len, p, take);
		ms->len += take;
		p += take;
		len -= take;
		if (scan(ms, false, out, arg))
			return -1;
	}
	return 0;
}

int mask_stream_finish(struct mask_stream *ms, mask_out_fn out, void *arg)
{
	int rc = scan(ms, true, out, arg);

	ms->len = 0;
	ms->cover = 0;
	ms->run_cls = -1;
	return rc;
}
