/* The Claude sign-in's screen as the worker and the API read it
 * (services/claude_login.h): the authorize URL joined across wrapped
 * lines (with CRLF, CSI sequences, indents), the numbered choices, the
 * paste prompt; and the redactor: a wrapped token masked whole at every
 * split of the stream, reported joined, typed text masked, ordinary text
 * passed, the bound. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/claude_login.h"
#include "services/mask.h"
#include "t/unit/tap.h"

static const char URL[] = "https://claude.ai/oauth/authorize?code=true&client_id=9d1c250a-e61b-44d9-88ed-"
	"5944d1962f5e&response_type=code&redirect_uri=https%3A%2F%2Fconsole.anthropic.com%2Foauth%2Fcode%2F"
	"callback&scope=user%3Ainference&code_challenge=roMEjH4M-1bXuUDpRnEWlA5jGJuvQnmYWb-06X1YNCU"
	"&code_challenge_method=S256&state=KUbqYpf5Tgk91WDw0Yv1LUnzXNUfMIZ33MvLYcnZ0Ao";
static const char TOKEN[] = "sk-ant-oat01-8af3f703e8cb2a375b77358ed96b1f153fdc83c6a05aff52217209fdfba35fd4358"
	"416c0b305a256bdafb06189d68AA";

/* text wrapped at width with sep between the pieces, into out. */
static void wrap(const char *text, size_t width, const char *sep, char *out, size_t outlen)
{
	size_t n = strlen(text), o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i += width) {
		o += (size_t)snprintf(out + o, outlen - o, "%s%.*s", i ? sep : "", (int)width, text + i);
	}
}

static void test_url(void)
{
	char screen[4096], wrapped[2048];
	struct claude_screen sc;

	wrap(URL, 80, "\r\n", wrapped, sizeof(wrapped));
	snprintf(screen, sizeof(screen), "Browser didn't open? Use the url below to sign in\r\n\r\n%s\r\n\r\n"
		 CLAUDE_PROMPT " ", wrapped);
	claude_screen_parse(screen, strlen(screen), &sc);
	is_str(sc.url, URL, "a URL wrapped at 80 columns with CRLF is joined");
	ok(sc.needs_code, "the prompt last on screen: the CLI waits for a code");
	ok(!sc.success && sc.n_choices == 0, "no success, no choices");

	/* Indented continuation lines, with colour around each piece. */
	wrap(URL, 37, "\x1b[39m\r\n  \x1b[36m", wrapped, sizeof(wrapped));
	snprintf(screen, sizeof(screen), "\x1b[36m%s\x1b[39m\r\n\r\n \x1b[1m" CLAUDE_PROMPT "\x1b[22m \x1b[7m \x1b[27m",
		 wrapped);
	claude_screen_parse(screen, strlen(screen), &sc);
	is_str(sc.url, URL, "indented, coloured pieces are joined");
	ok(sc.needs_code, "terminal sequences after the prompt still leave it waiting");

	/* The code was typed (the TTY echoes it), then the CLI answers. */
	strcat(screen, "abcgood\r\n");
	claude_screen_parse(screen, strlen(screen), &sc);
	ok(!sc.needs_code, "after the echoed code the CLI no longer waits");
	strcat(screen, "\r\nOAuth error: Request failed with status code 400\r\n");
	claude_screen_parse(screen, strlen(screen), &sc);
	ok(!sc.needs_code && !sc.success, "a refused code: neither waiting nor successful");

	/* A URL followed by a line of text with spaces is not continued. */
	snprintf(screen, sizeof(screen), "see https://example.com/a\r\nnext line here\r\n");
	claude_screen_parse(screen, strlen(screen), &sc);
	is_str(sc.url, "https://example.com/a", "a line with spaces does not continue the URL");
}

static void test_choices(void)
{
	static const char menu[] = "\x1b[1mWelcome to Claude Code\x1b[22m v2.0.14\r\n\r\nSelect login method:\r\n\r\n"
		" \xe2\x9d\xaf 1. Claude account with subscription \xc2\xb7 Pro, Max, Team, or Enterprise\r\n\r\n"
		"   2. Anthropic Console account \xc2\xb7 API usage billing\r\n\r\n"
		"   \x1b[2m3. 3rd-party platform\x1b[22m\r\n\r\n";
	char screen[4096];
	struct claude_screen sc;

	claude_screen_parse(menu, strlen(menu), &sc);
	is_int(sc.n_choices, 3, "three numbered choices");
	is_int(sc.choices[0].number, 1, "the first is 1 (the selection mark removed)");
	is_str(sc.choices[0].label, "Claude account with subscription \xc2\xb7 Pro, Max, Team, or Enterprise",
	       "its label");
	is_str(sc.choices[2].label, "3rd-party platform", "a label's terminal sequences removed");
	ok(!sc.needs_code && !sc.url[0], "a menu: no code asked, no URL");
	snprintf(screen, sizeof(screen), "%s1\r\nBrowser didn't open?\r\n\r\n%s\r\n\r\n" CLAUDE_PROMPT " ", menu, URL);
	claude_screen_parse(screen, strlen(screen), &sc);
	is_int(sc.n_choices, 0, "once a URL follows, the choices are gone");
	ok(sc.needs_code, "and the code is asked");
	strcat(screen, "xgoodx\r\n\r\nLogin successful. Press Enter to continue\r\n");
	claude_screen_parse(screen, strlen(screen), &sc);
	ok(sc.success, "\"Login successful\" is success");
}

struct sink {
	char buf[8192];
	size_t len;
	char tokens[4][CLAUDE_TOKEN_MAX];
	int n_tokens;
};

static int to_sink(void *arg, const void *p, size_t len)
{
	struct sink *s = arg;

	if (s->len + len >= sizeof(s->buf))
		return -1;
	memcpy(s->buf + s->len, p, len);
	s->len += len;
	s->buf[s->len] = '\0';
	return 0;
}

static void on_token(void *arg, const char *t, size_t len)
{
	struct sink *s = arg;

	if (s->n_tokens < 4 && len < CLAUDE_TOKEN_MAX)
		memcpy(s->tokens[s->n_tokens++], t, len + 1);
}

/* True when any 8 bytes of secret appear in text. */
static bool leaks(const char *text, const char *secret)
{
	size_t n = strlen(secret);

	for (size_t i = 0; i + 8 <= n; i++) {
		char piece[9];

		memcpy(piece, secret + i, 8);
		piece[8] = '\0';
		if (strstr(text, piece))
			return true;
	}
	return false;
}

static void test_redact(void)
{
	char screen[4096], wrapped[1024], line[512];
	size_t n;
	bool all_ok = true, all_found = true, text_kept = true;

	wrap(TOKEN, 80, "\r\n", wrapped, sizeof(wrapped));
	snprintf(line, sizeof(line), "Use this token by setting: export CLAUDE_CODE_OAUTH_TOKEN=%s", TOKEN);
	n = (size_t)snprintf(screen, sizeof(screen), CLAUDE_PROMPT " my-code-goodXYZ\r\n\r\n"
			     "Your OAuth token (valid for 1 year):\r\n\r\n%s\r\n\r\nStore this token securely.\r\n\r\n",
			     wrapped);
	wrap(line, 80, "\r\n", wrapped, sizeof(wrapped));
	n += (size_t)snprintf(screen + n, sizeof(screen) - n, "%s\r\n", wrapped);
	/* Every split of the stream in two feeds. */
	for (size_t cut = 0; cut <= n; cut++) {
		struct claude_redactor r;
		struct sink s = { .len = 0 };

		claude_redact_init(&r);
		claude_redact_add(&r, "my-code-goodXYZ", 15);
		if (claude_redact_feed(&r, screen, cut, false, to_sink, on_token, &s) ||
		    claude_redact_feed(&r, screen + cut, n - cut, false, to_sink, on_token, &s) ||
		    claude_redact_feed(&r, NULL, 0, true, to_sink, on_token, &s))
			all_ok = false;
		if (leaks(s.buf, TOKEN) || leaks(s.buf, "my-code-goodXYZ")) {
			all_ok = false;
			diag("cut %zu: %s", cut, s.buf);
		}
		if (s.n_tokens != 2 || strcmp(s.tokens[0], TOKEN) || strcmp(s.tokens[1], TOKEN))
			all_found = false;
		if (!strstr(s.buf, "Store this token securely.\r\n") ||
		    !strstr(s.buf, "export CLAUDE_CODE_OAUTH_TOKEN=" MASK_REPLACEMENT "\r\n") ||
		    !strstr(s.buf, "Your OAuth token (valid for 1 year):\r\n\r\n" MASK_REPLACEMENT "\r\n\r\nStore"))
			text_kept = false;
		claude_redact_release(&r);
	}
	ok(all_ok, "a wrapped token and the typed code never pass, whatever the split");
	ok(all_found, "both printings of the token are reported, joined");
	ok(text_kept, "the text around them passes as it was");

	{
		struct claude_redactor r;
		struct sink s = { .len = 0 };

		claude_redact_init(&r);
		claude_redact_feed(&r, "abc sk-an", 9, false, to_sink, on_token, &s);
		is_str(s.buf, "abc ", "a possible token start is held back");
		claude_redact_feed(&r, "other", 5, false, to_sink, on_token, &s);
		is_str(s.buf, "abc sk-another", "and released when it is not one");
		claude_redact_feed(&r, " sk-ant-xyz0123456789", 21, false, to_sink, on_token, &s);
		is_str(s.buf, "abc sk-another ", "a token at the end of what came waits (it may go on)");
		claude_redact_feed(&r, NULL, 0, true, to_sink, on_token, &s);
		is_str(s.buf, "abc sk-another " MASK_REPLACEMENT, "and is masked at the end");
		is_int(claude_redact_add(&r, "short", 5), 0, "a short literal is ignored");
		claude_redact_release(&r);
	}
	{
		struct claude_redactor r;
		struct sink s = { .len = 0 };
		static char big[CLAUDE_LOGIN_OUTPUT_MAX + 16];

		claude_redact_init(&r);
		memset(big, 'a', sizeof(big));
		memcpy(big, "sk-ant-", 7);
		is_int(claude_redact_feed(&r, big, sizeof(big), false, to_sink, on_token, &s), -1,
		       "more than CLAUDE_LOGIN_OUTPUT_MAX held is refused");
		claude_redact_release(&r);
	}
}

int main(void)
{
	test_url();
	test_choices();
	test_redact();
	return done_testing();
}
