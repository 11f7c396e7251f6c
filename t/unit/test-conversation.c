/* The stream-json parser (services/conversation.c) on what the stand-in CLI
 * prints (t/fixtures/stream-json/, made with t/fixtures/claude): the
 * entries and their offsets, the same entries whatever the split of the
 * bytes across conv_feed() calls and across pages (a non-final
 * conv_finish() then a new parser from conv_consumed()), CRLF, empty
 * lines, garbage, lines and strings past the limits (cut on a UTF-8
 * boundary), several blocks in one message, tool results as arrays, the
 * session id rules and the authentication failures. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/conversation.h"
#include "t/unit/tap.h"

#define SER (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct buf {
	char *data;
	size_t len;
};

static struct buf fixture(const char *name)
{
	const char *src = getenv("ANYON_SRCDIR");
	char path[4096];
	struct buf b = { NULL, 0 };
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/t/fixtures/stream-json/%s", src ? src : ".", name);
	if (!(f = fopen(path, "rb")))
		BAIL_OUT("cannot open %s (run through make check: ANYON_SRCDIR)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.data = malloc((size_t)n + 1);
	if (!b.data || fread(b.data, 1, (size_t)n, f) != (size_t)n)
		BAIL_OUT("cannot read %s", path);
	b.data[n] = '\0';
	b.len = (size_t)n;
	fclose(f);
	return b;
}

/* The entries of data fed in one piece and finished (final); a new string. */
static char *parse_all(const char *data, size_t len, int64_t base, struct conv_parser **keep)
{
	struct conv_parser *p = conv_new(base);
	char *s;

	if (!p || conv_feed(p, data, len))
		BAIL_OUT("conv_feed failed");
	conv_finish(p, true);
	s = strdup(json_object_to_json_string_ext(conv_entries(p), SER));
	if (keep)
		*keep = p;
	else
		conv_free(p);
	return s;
}

static json_object *entry_at(struct conv_parser *p, size_t i)
{
	return json_object_array_get_idx(conv_entries(p), i);
}

static const char *field(json_object *e, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(e, key, &v) || !v)
		return "(none)";
	return json_object_get_string(v);
}

static bool is_cut(json_object *e)
{
	json_object *v;

	return json_object_object_get_ex(e, "cut", &v) && json_object_get_boolean(v);
}

/* Well-formed UTF-8 (Unicode 3.9, Table 3-7), written apart from the parser. */
static bool utf8_ok(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i], lo = 0x80, hi = 0xbf;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		else
			return false;
		if (i + k >= n || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t j = 2; j <= k; j++)
			if (p[i + j] < 0x80 || p[i + j] > 0xbf)
				return false;
		i += k + 1;
	}
	return true;
}

/* Offsets of the non-empty lines of data. */
static size_t line_offsets(const char *data, size_t len, int64_t *out, size_t max)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (i > start && n < max)
				out[n++] = (int64_t)start;
			start = i + 1;
		}
	}
	return n;
}

static void test_standin_output(void)
{
	struct buf b = fixture("ok.jsonl");
	struct conv_parser *p;
	int64_t offs[16];
	size_t nl = line_offsets(b.data, b.len, offs, 16);
	static const char *const types[] = { "init", "tool_use", "tool_result", "tool_use", "tool_result",
					     "text", "result" };
	static const int line_of[] = { 0, 1, 2, 3, 4, 5, 6 };
	json_object *e, *v;
	bool is_error = true;
	const char *text = NULL;
	char *all;

	all = parse_all(b.data, b.len, 0, &p);
	is_int(nl, 7, "the stand-in printed 7 lines");
	is_int(json_object_array_length(conv_entries(p)), 7, "7 entries");
	for (size_t i = 0; i < 7; i++) {
		e = entry_at(p, i);
		is_str(field(e, "type"), types[i], "entry %zu is %s", i, types[i]);
		is_int(json_object_get_int64(json_object_object_get_ex(e, "offset", &v) ? v : NULL),
		       offs[line_of[i]], "entry %zu at its line's offset", i);
	}
	e = entry_at(p, 0);
	is_str(field(e, "model"), "claude-sonnet-4-5-20250929", "init: model");
	ok(json_object_object_get_ex(e, "tools", &v) && json_object_array_length(v) == 4 &&
	   strcmp(json_object_get_string(json_object_array_get_idx(v, 0)), "Bash") == 0, "init: tools");
	ok(strncmp(field(e, "cwd"), "/tmp/", 5) == 0, "init: cwd");
	is_int(strlen(conv_session_id(p)), 36, "the session id is the init's uuid");
	is_str(field(e, "session_id"), conv_session_id(p), "init: session_id");
	e = entry_at(p, 1);
	is_str(field(e, "name"), "Write", "tool_use: name");
	ok(strncmp(field(e, "id"), "toolu_", 6) == 0, "tool_use: id");
	ok(json_object_object_get_ex(e, "input", &v) && strcmp(field(v, "file_path"), "a.txt") == 0 &&
	   strcmp(field(v, "content"), "hi") == 0, "tool_use: input kept");
	e = entry_at(p, 2);
	is_str(field(e, "tool_use_id"), field(entry_at(p, 1), "id"), "tool_result: tool_use_id");
	ok(strstr(field(e, "content"), "File created successfully at: ") != NULL, "tool_result: content");
	is_str(field(e, "is_error"), "false", "tool_result: is_error false");
	is_str(field(entry_at(p, 4), "content"), "x\n", "the echo's output");
	is_int(strlen(field(entry_at(p, 5), "text")), 100, "the 100 bytes of text");
	e = entry_at(p, 6);
	is_str(field(e, "subtype"), "success", "result: subtype");
	is_str(field(e, "num_turns"), "3", "result: num_turns");
	ok(strcmp(field(e, "duration_ms"), "(none)") != 0 && strcmp(field(e, "total_cost_usd"), "0") == 0,
	   "result: duration and cost");
	ok(conv_result(p, &is_error, &text) && !is_error && strlen(text) == 100, "conv_result: success, its text");
	ok(!conv_auth_failed(p), "no authentication failure");
	is_int(conv_consumed(p), b.len, "every byte consumed");
	ok(!strstr(all, "\"cut\""), "nothing cut");
	conv_free(p);
	free(all);
	free(b.data);
}

/* Every split of the bytes in two feeds, and byte by byte, gives the same
 * entries; so does every page boundary (a non-final finish, then a new
 * parser from where the first stopped). */
static void test_splits(const char *name)
{
	struct buf b = fixture(name);
	char *whole = parse_all(b.data, b.len, 0, NULL);
	size_t bad_feed = 0, bad_page = 0, bad_bytes = 0;
	struct conv_parser *p;
	char *s;

	for (size_t k = 0; k <= b.len; k++) {
		struct conv_parser *q;
		json_object *arr;
		int64_t c;

		p = conv_new(0);
		conv_feed(p, b.data, k);
		conv_feed(p, b.data + k, b.len - k);
		conv_finish(p, true);
		if (strcmp(json_object_to_json_string_ext(conv_entries(p), SER), whole) != 0)
			bad_feed++;
		conv_free(p);

		p = conv_new(0);
		conv_feed(p, b.data, k);
		conv_finish(p, false);
		c = conv_consumed(p);
		if (c > (int64_t)k || (c > 0 && b.data[c - 1] != '\n'))
			bad_page++;
		q = conv_new(c);
		conv_feed(q, b.data + c, b.len - (size_t)c);
		conv_finish(q, true);
		arr = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(conv_entries(p)); i++)
			json_object_array_add(arr, json_object_get(entry_at(p, i)));
		for (size_t i = 0; i < json_object_array_length(conv_entries(q)); i++)
			json_object_array_add(arr, json_object_get(entry_at(q, i)));
		if (strcmp(json_object_to_json_string_ext(arr, SER), whole) != 0)
			bad_page++;
		json_object_put(arr);
		conv_free(p);
		conv_free(q);
	}
	p = conv_new(0);
	for (size_t i = 0; i < b.len; i++)
		conv_feed(p, b.data + i, 1);
	conv_finish(p, true);
	s = (char *)json_object_to_json_string_ext(conv_entries(p), SER);
	if (strcmp(s, whole) != 0)
		bad_bytes++;
	conv_free(p);
	is_int(bad_feed, 0, "%s: every split across two feeds gives the same entries", name);
	is_int(bad_page, 0, "%s: every page boundary gives the same entries", name);
	is_int(bad_bytes, 0, "%s: byte by byte gives the same entries", name);
	free(whole);
	free(b.data);
}

static void test_crlf_and_empty(void)
{
	struct buf b = fixture("ok.jsonl");
	char *crlf = malloc(b.len * 2 + 16), *a, *c;
	struct conv_parser *p, *q;
	size_t n = 0, bad = 0;

	/* Empty lines (and blank ones) between the lines, CRLF endings. */
	memcpy(crlf, "\r\n \t\r\n\n", 7);
	n = 7;
	for (size_t i = 0; i < b.len; i++) {
		if (b.data[i] == '\n') {
			crlf[n++] = '\r';
			crlf[n++] = '\n';
			crlf[n++] = '\n';
		} else {
			crlf[n++] = b.data[i];
		}
	}
	a = parse_all(b.data, b.len, 0, &p);
	c = parse_all(crlf, n, 0, &q);
	is_int(json_object_array_length(conv_entries(q)), 7, "CRLF and empty lines: the same 7 entries");
	is_str(field(entry_at(q, 0), "offset"), "7", "the first entry's offset is past the empty lines");
	/* The entries without their offsets (deleted from p's and q's own). */
	for (size_t i = 0; i < 7; i++) {
		json_object *x = entry_at(p, i), *y = entry_at(q, i);

		json_object_object_del(x, "offset");
		json_object_object_del(y, "offset");
		if (!json_object_equal(x, y))
			bad++;
	}
	is_int(bad, 0, "CRLF: entries equal but for their offsets");
	is_int(conv_consumed(q), n, "CRLF: every byte consumed");
	conv_free(p);
	conv_free(q);
	free(a);
	free(c);
	free(crlf);
	free(b.data);
}

static void test_garbage(void)
{
	static const char in[] =
		"anyon: cloning\n"                                  /* 0 */
		"{bad json\n"                                       /* 15 */
		"[1,2]\n"                                           /* 25 */
		"{\"type\":\"weird\",\"x\":1}\n"                   /* 31 */
		"{\"type\":\"system\",\"subtype\":\"compact\"}\n"    /* 54 */
		"{\"type\":\"assistant\",\"message\":{}}\n"        /* 92 */
		"\xff\xfe{\"type\":\"result\"}\n"                   /* 126 */
		"{\"type\":\"result\",\"subtype\":\"success\",\"result\":\"a\xc3\"}\n" /* 146 */
		"a\0b\n"                                            /* 198 */
		"{\"type\":\"result\",\"subtype\":1}\n"             /* 202 */
		"{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n";
	struct conv_parser *p;
	char *s = parse_all(in, sizeof(in) - 1, 0, &p);
	json_object *arr = conv_entries(p);
	size_t raws = 0;
	bool valid = true;

	is_int(json_object_array_length(arr), 11, "garbage: one entry a line");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *t = field(e, "text");

		if (strcmp(field(e, "type"), "raw") == 0)
			raws++;
		if (!utf8_ok((const unsigned char *)t, strlen(t)))
			valid = false;
	}
	is_int(raws, 11, "garbage: every one raw");
	ok(valid, "garbage: every text valid UTF-8");
	is_str(field(json_object_array_get_idx(arr, 0), "text"), "anyon: cloning", "a plain line as it was");
	is_str(field(json_object_array_get_idx(arr, 6), "text"), "\xef\xbf\xbd\xef\xbf\xbd{\"type\":\"result\"}",
	       "invalid bytes become U+FFFD");
	is_str(field(json_object_array_get_idx(arr, 8), "text"), "a\xef\xbf\xbd" "b", "a NUL becomes U+FFFD");
	is_str(field(json_object_array_get_idx(arr, 3), "offset"), "31", "offsets of raw lines");
	is_str(field(json_object_array_get_idx(arr, 10), "text"),
	       "{\"type\":\"text\",\"text\":\"hi\"}", "a user block of unknown shape: raw, its JSON");
	ok(!conv_result(p, NULL, NULL), "no result from a result line of the wrong shape");
	is_str(conv_session_id(p), "", "no session id");
	is_int(conv_consumed(p), sizeof(in) - 1, "garbage: every byte consumed");
	conv_free(p);
	free(s);
}

static void test_blocks(void)
{
	static const char in[] =
		"{\"type\":\"assistant\",\"message\":{\"content\":["
		"{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"x\"},"
		"{\"type\":\"text\",\"text\":\"I will look.\"},"
		"{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Read\",\"input\":{\"file_path\":\"a\",\"limit\":5}},"
		"{\"type\":\"redacted_thinking\",\"data\":\"zz\"}]}}\n"
		"{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":["
		"{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"is_error\":true,\"content\":["
		"{\"type\":\"text\",\"text\":\"one\"},{\"type\":\"image\",\"source\":{}},{\"type\":\"text\",\"text\":\"two\"}]},"
		"{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":\"plain\"}]}}\n";
	struct conv_parser *p;
	char *s = parse_all(in, sizeof(in) - 1, 0, &p);
	json_object *arr = conv_entries(p), *in_obj;
	size_t second = (size_t)(strchr(in, '\n') - in) + 1;
	char off[32];

	is_int(json_object_array_length(arr), 6, "4 blocks and 2 results: 6 entries");
	is_str(field(entry_at(p, 0), "type"), "thinking", "thinking");
	is_str(field(entry_at(p, 0), "text"), "hmm", "thinking: its text");
	is_str(field(entry_at(p, 1), "text"), "I will look.", "text");
	is_str(field(entry_at(p, 2), "type"), "tool_use", "tool_use");
	ok(json_object_object_get_ex(entry_at(p, 2), "input", &in_obj) &&
	   strcmp(field(in_obj, "limit"), "5") == 0, "tool_use: input");
	is_str(field(entry_at(p, 3), "type"), "raw", "an unknown block: raw");
	is_str(field(entry_at(p, 0), "offset"), "0", "blocks share their line's offset");
	is_str(field(entry_at(p, 3), "offset"), "0", "blocks share their line's offset (last)");
	is_str(field(entry_at(p, 4), "content"), "one\n[image]\ntwo", "tool_result: an array's texts joined");
	is_str(field(entry_at(p, 4), "is_error"), "true", "tool_result: is_error");
	is_str(field(entry_at(p, 5), "content"), "plain", "tool_result: a string");
	snprintf(off, sizeof(off), "%zu", second);
	is_str(field(entry_at(p, 5), "offset"), off, "the second line's offset");
	conv_free(p);
	free(s);
}

static void test_limits(void)
{
	size_t big = CONV_LINE_MAX + 100, n = 0;
	char *in = malloc(big + 2 * CONV_TEXT_MAX + 4096), *s;
	const char *t;
	struct conv_parser *p;
	json_object *e;
	char off[32];

	/* An assistant text of 3-byte characters past CONV_TEXT_MAX. */
	n += (size_t)sprintf(in, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"");
	for (size_t i = 0; i < CONV_TEXT_MAX / 3 + 10; i++) {
		memcpy(in + n, "\xe2\x82\xac", 3);
		n += 3;
	}
	n += (size_t)sprintf(in + n, "\"}]}}\n");
	/* A line past CONV_LINE_MAX that is not JSON, then a short one. */
	memset(in + n, 'x', big);
	n += big;
	in[n++] = '\n';
	n += (size_t)sprintf(in + n, "tail\n");
	s = parse_all(in, n, 0, &p);
	is_int(json_object_array_length(conv_entries(p)), 3, "limits: 3 entries");
	e = entry_at(p, 0);
	t = field(e, "text");
	ok(is_cut(e) && strlen(t) <= CONV_TEXT_MAX && strlen(t) > CONV_TEXT_MAX - 4 && strlen(t) % 3 == 0 &&
	   utf8_ok((const unsigned char *)t, strlen(t)), "a long text cut on a UTF-8 boundary, marked cut");
	e = entry_at(p, 1);
	t = field(e, "text");
	ok(strcmp(field(e, "type"), "raw") == 0 && is_cut(e) && strlen(t) == CONV_TEXT_MAX,
	   "a line past CONV_LINE_MAX: a cut raw entry");
	snprintf(off, sizeof(off), "%zu", n - 5);
	is_str(field(entry_at(p, 2), "offset"), off, "the line after it at its offset");
	is_str(field(entry_at(p, 2), "text"), "tail", "the line after it whole");
	is_int(conv_consumed(p), n, "limits: every byte consumed");
	conv_free(p);
	free(s);

	/* The same long line, JSON this time, fed in pieces: still raw, cut. */
	n = (size_t)sprintf(in, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"");
	memset(in + n, 'y', big);
	n += big;
	n += (size_t)sprintf(in + n, "\"}]}}\n");
	p = conv_new(0);
	for (size_t i = 0; i < n; i += 65521)
		conv_feed(p, in + i, n - i < 65521 ? n - i : 65521);
	conv_finish(p, false);
	e = entry_at(p, 0);
	ok(json_object_array_length(conv_entries(p)) == 1 && strcmp(field(e, "type"), "raw") == 0 && is_cut(e),
	   "a JSON line past CONV_LINE_MAX: a cut raw entry");
	conv_free(p);

	/* Not finished, past CONV_LINE_MAX: given out anyway (a reader could
	 * never get past it), and consumed. */
	p = conv_new(0);
	conv_feed(p, in, CONV_LINE_MAX + 1);
	conv_finish(p, false);
	ok(json_object_array_length(conv_entries(p)) == 1 && conv_consumed(p) == CONV_LINE_MAX + 1,
	   "an unfinished line past CONV_LINE_MAX is given out on a page end");
	conv_free(p);

	/* An input object with a huge string: cut inside the copy. */
	n = (size_t)sprintf(in, "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\","
			    "\"name\":\"Write\",\"input\":{\"file_path\":\"f\",\"content\":\"");
	memset(in + n, 'z', CONV_TEXT_MAX + 10);
	n += CONV_TEXT_MAX + 10;
	n += (size_t)sprintf(in + n, "\"}}]}}\n");
	s = parse_all(in, n, 0, &p);
	e = entry_at(p, 0);
	ok(is_cut(e) && json_object_object_get_ex(e, "input", &e) && strlen(field(e, "content")) == CONV_TEXT_MAX &&
	   strcmp(field(e, "file_path"), "f") == 0, "tool_use: a long input string cut, marked");
	conv_free(p);
	free(s);
	free(in);
}

static void test_unfinished_and_base(void)
{
	static const char in[] = "plain\n{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false";
	struct conv_parser *p = conv_new(1000);

	conv_feed(p, in, sizeof(in) - 1);
	conv_finish(p, false);
	is_int(json_object_array_length(conv_entries(p)), 1, "a last line without newline waits");
	is_int(conv_consumed(p), 6, "consumed stops before it");
	is_str(field(entry_at(p, 0), "offset"), "1000", "offsets start at base");
	conv_finish(p, true);
	is_int(json_object_array_length(conv_entries(p)), 2, "final: the last line becomes an entry");
	is_str(field(entry_at(p, 1), "type"), "raw", "an unterminated JSON object is raw");
	is_str(field(entry_at(p, 1), "offset"), "1006", "at base + its offset");
	is_int(conv_consumed(p), sizeof(in) - 1, "final: every byte consumed");
	conv_free(p);
}

static char *one(const char *in, struct conv_parser **p)
{
	return parse_all(in, strlen(in), 0, p);
}

static void test_session_ids(void)
{
	struct conv_parser *p;
	char id128[CONV_SESSION_MAX + 1], id129[CONV_SESSION_MAX + 2], line[1024];
	char *s;

	memset(id128, 'a', CONV_SESSION_MAX);
	id128[CONV_SESSION_MAX] = '\0';
	memset(id129, 'b', CONV_SESSION_MAX + 1);
	id129[CONV_SESSION_MAX + 1] = '\0';

	s = one("{\"type\":\"assistant\",\"session_id\":\"from-assistant\",\"message\":{\"content\":[]}}\n"
		"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"first_ID-1\"}\n"
		"{\"type\":\"result\",\"subtype\":\"success\",\"session_id\":\"second\"}\n", &p);
	is_str(conv_session_id(p), "first_ID-1", "the first init's id, not an assistant's or a later result's");
	conv_free(p);
	free(s);

	s = one("{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"../../etc\"}\n"
		"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"a b\"}\n"
		"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"\"}\n"
		"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":7}\n"
		"{\"type\":\"result\",\"subtype\":\"success\",\"session_id\":\"ok-from-result\"}\n", &p);
	is_str(conv_session_id(p), "ok-from-result", "ids with other characters refused; a result's taken");
	conv_free(p);
	free(s);

	snprintf(line, sizeof(line), "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"%s\"}\n"
		 "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"%s\"}\n", id129, id128);
	s = one(line, &p);
	is_str(conv_session_id(p), id128, "an id of CONV_SESSION_MAX+1 refused, of CONV_SESSION_MAX taken");
	conv_free(p);
	free(s);

	s = one("{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"caf\xc3\xa9\"}\n", &p);
	is_str(conv_session_id(p), "", "non-ASCII refused");
	conv_free(p);
	free(s);
}

static void test_auth(void)
{
	static const char *const files[] = { "badkey.jsonl", "expired.jsonl", "revoked.jsonl" };
	struct conv_parser *p;
	const char *text;
	bool is_error;
	char *s;

	for (size_t i = 0; i < 3; i++) {
		struct buf b = fixture(files[i]);

		s = parse_all(b.data, b.len, 0, &p);
		ok(conv_auth_failed(p) && conv_result(p, &is_error, &text) && is_error && strstr(text, "/login"),
		   "%s: an authentication failure", files[i]);
		conv_free(p);
		free(s);
		free(b.data);
	}
	s = one("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,\"result\":\"Failed to authenticate\"}\n",
		&p);
	ok(conv_auth_failed(p), "\"Failed to authenticate\" in an error result");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,"
		"\"result\":\"Missing API key \u00b7 Run /login\"}\n", &p);
	ok(conv_auth_failed(p), "\"Missing API key \u00b7 Run /login\" in an error result");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,"
		"\"result\":\"API Error: 401 {\\\"type\\\":\\\"error\\\",\\\"error\\\":{\\\"type\\\":"
		"\\\"authentication_error\\\",\\\"message\\\":\\\"invalid x-api-key\\\"}}\"}\n", &p);
	ok(conv_auth_failed(p), "the API's 401 passed on in an error result");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"result\",\"subtype\":\"error_during_execution\",\"is_error\":true,"
		"\"result\":\"API Error: 529 overloaded\"}\n", &p);
	ok(!conv_auth_failed(p), "another error result is no authentication failure");
	ok(conv_api_failed(p), "... but an API failure (529 overloaded)");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true,"
		"\"result\":\"API Error: 401 authentication_error\"}\n", &p);
	ok(!conv_api_failed(p), "a refused credential is not an API failure");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
		"\"result\":\"I fixed the Connection error handling\"}\n", &p);
	ok(!conv_api_failed(p), "words of an API failure in a successful result are not one");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"assistant\",\"error\":\"authentication_failed\",\"message\":{\"content\":"
		"[{\"type\":\"text\",\"text\":\"x\"}]}}\n", &p);
	ok(conv_auth_failed(p), "an assistant message marked authentication_failed");
	conv_free(p);
	free(s);
	s = one("{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"Invalid API key\"}]}}\n"
		"{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"result\":\"Please run /login\"}\n", &p);
	ok(!conv_auth_failed(p), "the words in a text or a successful result are no failure");
	conv_free(p);
	free(s);
	{
		struct buf b = fixture("fail.jsonl");

		s = parse_all(b.data, b.len, 0, &p);
		ok(!conv_auth_failed(p) && conv_result(p, &is_error, &text) && is_error &&
		   strcmp(text, "stand-in: failed as asked") == 0, "fail.jsonl: an error result, not an auth failure");
		is_str(field(entry_at(p, 2), "is_error"), "true", "fail.jsonl: the failed tool's result");
		conv_free(p);
		free(s);
		free(b.data);
	}
}

int main(void)
{
	test_standin_output();
	test_splits("ok.jsonl");
	test_splits("fail.jsonl");
	test_splits("badkey.jsonl");
	test_crlf_and_empty();
	test_garbage();
	test_blocks();
	test_limits();
	test_unfinished_and_base();
	test_session_ids();
	test_auth();
	return done_testing();
}
