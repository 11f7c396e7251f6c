/* claude_login.c - see claude_login.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/crypto.h"
#include "base/util.h"
#include "services/claude_login.h"
#include "services/mask.h"

static bool url_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~:/?#[]@!$&'()*+,;=%", c));
}

static bool token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Length of the escape sequence at p (CSI "ESC [ ... final", or ESC and
 * one byte), 0 when p is not ESC, -1 when it is cut off by the end. */
static long esc_len(const char *p, size_t len)
{
	size_t i;

	if (!len || p[0] != 0x1b)
		return 0;
	if (len < 2)
		return -1;
	if (p[1] != '[')
		return 2;
	for (i = 2; i < len; i++)
		if ((unsigned char)p[i] >= 0x40 && (unsigned char)p[i] <= 0x7e)
			return (long)i + 1;
	return -1;
}

enum { RUN_MORE = 0, RUN_DONE = 1 };

/* The run of cls characters from p[i], joined across wrapped lines
 * (CSI skipped). RUN_DONE with *end just past its last character and the
 * joined run in out (cut at outlen - 1), or RUN_MORE when more bytes are
 * needed to decide (never when at_end). */
static int wrapped_run(const char *p, size_t len, size_t i, bool at_end, bool (*cls)(unsigned char),
		       size_t *end, char *out, size_t outlen)
{
	size_t pos = i, last = i, n = 0;
	long e;

	for (;;) {
		while (pos < len) {
			if (cls((unsigned char)p[pos])) {
				if (n + 1 < outlen)
					out[n++] = p[pos];
				last = ++pos;
			} else if ((e = esc_len(p + pos, len - pos)) > 0) {
				pos += (size_t)e;
			} else if (e < 0 && !at_end) {
				return RUN_MORE;
			} else {
				break;
			}
		}
		if (pos >= len && !at_end)
			return RUN_MORE;
		if (pos < len && (p[pos] == '\r' || p[pos] == '\n')) {
			size_t q = pos, r, start;
			bool any = false;

			while (q < len && p[q] == '\r')
				q++;
			if (q >= len) {
				if (!at_end)
					return RUN_MORE;
				break;
			}
			if (p[q] != '\n')
				break;
			q++;
			/* The next line: spaces, then cls characters only. */
			r = q;
			while (r < len && (p[r] == ' ' || (e = esc_len(p + r, len - r)) != 0)) {
				if (p[r] == ' ')
					r++;
				else if (e < 0)
					break;
				else
					r += (size_t)e;
			}
			start = r;
			while (r < len && (cls((unsigned char)p[r]) || p[r] == 0x1b)) {
				if (p[r] == 0x1b) {
					e = esc_len(p + r, len - r);
					if (e <= 0)
						break;
					r += (size_t)e;
				} else {
					any = true;
					r++;
				}
			}
			while (r < len && p[r] == ' ')
				r++;
			if (r >= len) {
				if (!at_end)
					return RUN_MORE;
				if (!any)
					break;
			} else if (!any || (p[r] != '\r' && p[r] != '\n')) {
				break;
			}
			pos = start;
			continue;
		}
		break;
	}
	*end = last;
	out[n] = '\0';
	return RUN_DONE;
}

/* The text of the line p[from..to) without CSI sequences, trimmed. */
static void plain_line(const char *p, size_t from, size_t to, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = from; i < to;) {
		long e = esc_len(p + i, to - i);

		if (e > 0) {
			i += (size_t)e;
			continue;
		}
		if (e < 0)
			break;
		if (p[i] != '\r' && n + 1 < outlen)
			out[n++] = p[i];
		i++;
	}
	out[n] = '\0';
	while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		out[--n] = '\0';
	if (out[0] == ' ') {
		size_t k = 0;

		while (out[k] == ' ')
			k++;
		memmove(out, out + k, n - k + 1);
	}
}

static const char *find(const char *p, size_t len, const char *needle, size_t from)
{
	size_t nl = strlen(needle);

	for (size_t i = from; i + nl <= len; i++)
		if (memcmp(p + i, needle, nl) == 0)
			return p + i;
	return NULL;
}

void claude_screen_parse(const char *p, size_t len, struct claude_screen *out)
{
	const char *h;
	size_t url_at = 0, sel_at = 0, end, pr = 0;
	bool have_url = false, have_sel = false;
	char line[512];

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; (h = find(p, len, "https://", i)); i = (size_t)(h - p) + 8) {
		url_at = (size_t)(h - p);
		have_url = true;
	}
	if (have_url && wrapped_run(p, len, url_at, true, url_char, &end, out->url, sizeof(out->url)) != RUN_DONE)
		out->url[0] = '\0';
	/* The choices: numbered lines after the last "Select" line, unless a
	 * URL came after it (the choice was made). */
	for (size_t i = 0; (h = find(p, len, "Select", i)); i = (size_t)(h - p) + 6) {
		sel_at = (size_t)(h - p);
		have_sel = true;
	}
	if (have_sel && !(have_url && url_at > sel_at)) {
		size_t i = sel_at;

		while (i < len && out->n_choices < CLAUDE_SCREEN_CHOICES_MAX) {
			size_t e = i;
			char *s;

			while (e < len && p[e] != '\n')
				e++;
			plain_line(p, i, e, line, sizeof(line));
			s = line;
			/* The selected one is marked (❯ or >). */
			if ((unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x9d && (unsigned char)s[2] == 0xaf)
				s += 3;
			else if (*s == '>')
				s++;
			while (*s == ' ')
				s++;
			if (s[0] >= '1' && s[0] <= '9' && s[1] == '.' && s[2] == ' ') {
				struct claude_choice *c = &out->choices[out->n_choices++];

				c->number = s[0] - '0';
				snprintf(c->label, sizeof(c->label), "%s", s + 3);
			}
			i = e + 1;
		}
	}
	for (size_t i = 0; (h = find(p, len, CLAUDE_PROMPT, i)); i = (size_t)(h - p) + 1)
		pr = (size_t)(h - p) + strlen(CLAUDE_PROMPT);
	if (pr) {
		size_t i = pr;

		while (i < len) {
			long e = esc_len(p + i, len - i);

			if (e > 0)
				i += (size_t)e;
			else if (p[i] == ' ')
				i++;
			else
				break;
		}
		out->needs_code = i >= len;
	}
	out->success = find(p, len, "Login successful", 0) || find(p, len, "token created successfully", 0);
}

/* ---- the redactor ---- */

#define TOKEN_START "sk-ant-"

void claude_redact_init(struct claude_redactor *r)
{
	memset(r, 0, sizeof(*r));
}

int claude_redact_add(struct claude_redactor *r, const void *p, size_t len)
{
	if (len < MASK_SECRET_MIN)
		return 0;
	if (r->n_lit >= CLAUDE_INPUTS_QUEUED_MAX || len > CLAUDE_INPUT_MAX)
		return -1;
	if (!(r->lit[r->n_lit] = malloc(len)))
		return -1;
	memcpy(r->lit[r->n_lit], p, len);
	r->lit_len[r->n_lit++] = len;
	return 0;
}

static int held_add(struct claude_redactor *r, const void *p, size_t len)
{
	if (r->len + len > CLAUDE_LOGIN_OUTPUT_MAX)
		return -1;
	if (r->len + len > r->cap) {
		size_t cap = (r->len + len) * 2 + 256;
		char *nb = malloc(cap);

		if (!nb)
			return -1;
		if (r->held) {
			memcpy(nb, r->held, r->len);
			OPENSSL_cleanse(r->held, r->cap);
			free(r->held);
		}
		r->held = nb;
		r->cap = cap;
	}
	memcpy(r->held + r->len, p, len);
	r->len += len;
	return 0;
}

/* Drops the first n held bytes. */
static void held_drop(struct claude_redactor *r, size_t n)
{
	memmove(r->held, r->held + n, r->len - n);
	OPENSSL_cleanse(r->held + r->len - n, n);
	r->len -= n;
}

/* Longest tail of the held bytes that is a proper prefix of a pattern. */
static size_t partial_tail(const struct claude_redactor *r)
{
	size_t best = 0;

	for (int k = -1; k < r->n_lit; k++) {
		const char *pat = k < 0 ? TOKEN_START : r->lit[k];
		size_t pl = k < 0 ? strlen(TOKEN_START) : r->lit_len[k];

		for (size_t t = pl - 1; t > best; t--)
			if (t <= r->len && memcmp(r->held + r->len - t, pat, t) == 0) {
				best = t;
				break;
			}
	}
	return best;
}

int claude_redact_feed(struct claude_redactor *r, const void *p, size_t len, bool at_end,
		       claude_out_fn out, claude_token_fn found, void *arg)
{
	static char tok[CLAUDE_TOKEN_MAX];

	if (len && held_add(r, p, len))
		return -1;
	while (r->len) {
		size_t at = r->len, plen = 0, tail, end;
		int which = -2;

		for (size_t i = 0; i < r->len && which == -2; i++) {
			if (r->len - i >= strlen(TOKEN_START) && memcmp(r->held + i, TOKEN_START, strlen(TOKEN_START)) == 0) {
				at = i;
				which = -1;
				break;
			}
			for (int k = 0; k < r->n_lit; k++)
				if (r->len - i >= r->lit_len[k] && memcmp(r->held + i, r->lit[k], r->lit_len[k]) == 0) {
					at = i;
					which = k;
					plen = r->lit_len[k];
					break;
				}
		}
		if (which == -2) {
			tail = at_end ? 0 : partial_tail(r);
			if (r->len > tail && out(arg, r->held, r->len - tail))
				return -1;
			held_drop(r, r->len - tail);
			return 0;
		}
		if (at && out(arg, r->held, at))
			return -1;
		held_drop(r, at);
		if (which == -1) {
			if (wrapped_run(r->held, r->len, 0, at_end, token_char, &end, tok, sizeof(tok)) == RUN_MORE) {
				OPENSSL_cleanse(tok, sizeof(tok));
				return 0;
			}
			if (found)
				found(arg, tok, strlen(tok));
			OPENSSL_cleanse(tok, sizeof(tok));
			plen = end;
		}
		if (out(arg, MASK_REPLACEMENT, strlen(MASK_REPLACEMENT)))
			return -1;
		held_drop(r, plen);
	}
	return 0;
}

void claude_redact_release(struct claude_redactor *r)
{
	if (r->held) {
		OPENSSL_cleanse(r->held, r->cap);
		free(r->held);
	}
	for (int k = 0; k < r->n_lit; k++) {
		OPENSSL_cleanse(r->lit[k], r->lit_len[k]);
		free(r->lit[k]);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- what the user types ---- */

static void input_aad(int64_t user_id, int64_t login_id, char *aad, size_t len)
{
	snprintf(aad, len, "anyon:v1:claude-login-input:%lld:%lld", (long long)user_id, (long long)login_id);
}

int claude_input_seal(struct keyring *kr, int64_t user_id, int64_t login_id, const void *pt, size_t len,
		      char key_id[16], unsigned char nonce[12], unsigned char *ct, unsigned char tag[16])
{
	const struct key *k;
	char aad[96];

	keyring_refresh(kr);
	if (!(k = keyring_active(kr)))
		return -1;
	input_aad(user_id, login_id, aad, sizeof(aad));
	snprintf(key_id, 16, "%s", k->id);
	return aead_seal(k->bytes, aad, strlen(aad), pt, len, nonce, ct, tag);
}

int claude_input_open(struct keyring *kr, int64_t user_id, int64_t login_id, const char *key_id,
		      const unsigned char nonce[12], const unsigned char *ct, size_t len,
		      const unsigned char tag[16], unsigned char *pt)
{
	const struct key *k = keyring_find_fresh(kr, key_id);
	char aad[96];

	if (!k)
		return -1;
	input_aad(user_id, login_id, aad, sizeof(aad));
	return aead_open(k->bytes, aad, strlen(aad), nonce, ct, len, tag, pt);
}
