/* conversation.c - Claude Code's stream-json output turned into
 * conversation entries (see conversation.h).
 *
 * Bytes are gathered into the current line (at most CONV_LINE_MAX of them
 * kept; the rest of a longer line is counted, not kept); each complete
 * line is parsed on its own with json_parse() (json-c's tokenizer,
 * bounded in depth, UTF-8 checked) and turned into entries. Nothing in a
 * line can make the parser fail: what it does not know becomes a raw
 * entry. Every string that goes into an entry comes through text_of(),
 * which makes it valid UTF-8 and cuts it at CONV_TEXT_MAX bytes. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"
#include "services/conversation.h"

struct conv_parser {
	int64_t base;              /* offset of the first byte fed, in the run's output */
	int64_t fed;               /* bytes fed so far */
	int64_t consumed;          /* bytes turned into entries (whole lines) */
	char *line;                /* the current line's first bytes (owned) */
	size_t len;                /* bytes of it kept in line */
	size_t cap;                /* line's allocation */
	bool overlong;             /* the current line passed CONV_LINE_MAX */
	json_object *entries;      /* the array of entries (owned) */
	char session[CONV_SESSION_MAX + 1]; /* first acceptable session id, "" */
	bool has_result;           /* a result line came */
	bool result_error;         /* its is_error */
	char *result_text;         /* its text, valid UTF-8, cut (owned) */
	bool auth_failed;          /* the run reported an authentication failure */
	bool oom;                  /* an allocation failed: entries may be missing */
};

/* What the CLI says when its credential is refused or missing (REFERENCE.md,
 * "Claude Code CLI"; "Missing API key · Run /login" from some versions), and
 * the API's own words for it when the CLI passes them on. */
static const char *const auth_phrases[] = {
	"Invalid API key",
	"Missing API key",
	"Run /login",
	"OAuth token has expired",
	"OAuth token revoked",
	"Failed to authenticate",
	"Please run /login",
	"authentication_error",
	"API Error: 401",
};

/* What the CLI says when Anthropic's API failed or was unreachable, not
 * the credential: an outage to retry, shown apart from "connect Claude". */
static const char *const api_phrases[] = {
	"API Error: 5",
	"API Error: 429",
	"Overloaded",
	"overloaded_error",
	"rate_limit_error",
	"api_error",
	"Connection error",
	"Request timed out",
};

struct conv_parser *conv_new(int64_t base)
{
	struct conv_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->base = base;
	p->entries = json_object_new_array();
	if (!p->entries) {
		free(p);
		return NULL;
	}
	return p;
}

void conv_free(struct conv_parser *p)
{
	if (!p)
		return;
	free(p->line);
	free(p->result_text);
	json_object_put(p->entries);
	free(p);
}

void conv_drop_entries(struct conv_parser *p)
{
	json_object *fresh;

	if (json_object_array_length(p->entries) == 0 || !(fresh = json_object_new_array()))
		return;
	json_object_put(p->entries);
	p->entries = fresh;
}

json_object *conv_entries(struct conv_parser *p)
{
	return p->entries;
}

int64_t conv_consumed(const struct conv_parser *p)
{
	return p->consumed;
}

const char *conv_session_id(const struct conv_parser *p)
{
	return p->session;
}

bool conv_result(const struct conv_parser *p, bool *is_error, const char **text)
{
	if (is_error)
		*is_error = p->has_result && p->result_error;
	if (text)
		*text = p->has_result && p->result_text ? p->result_text : "";
	return p->has_result;
}

bool conv_api_failed(const struct conv_parser *p)
{
	if (p->auth_failed || !p->has_result || !p->result_error || !p->result_text)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(api_phrases); i++)
		if (strstr(p->result_text, api_phrases[i]))
			return true;
	return false;
}

bool conv_auth_failed(const struct conv_parser *p)
{
	return p->auth_failed;
}

/* The length of s[0..n) cut back to a UTF-8 boundary: n, or less when
 * the last sequence started in it does not end in it. */
static size_t utf8_floor(const char *s, size_t n)
{
	size_t i = n, back = 0, need;
	unsigned char c;

	while (i > 0 && back < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0 || (c = (unsigned char)s[i - 1]) < 0xc0)
		return n;   /* ASCII, or stray continuation bytes: nothing cut */
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	return back + 1 < need ? i - 1 : n;
}

/* A JSON string of s[0..n): invalid UTF-8 replaced (U+FFFD), cut at
 * CONV_TEXT_MAX bytes on a UTF-8 boundary, *cut set when anything was
 * left out. NULL only when out of memory. */
static json_object *text_of(const char *s, size_t n, bool *cut)
{
	json_object *o, *c;
	const char *t;
	size_t tn, k;

	if (n > CONV_TEXT_MAX) {
		n = utf8_floor(s, CONV_TEXT_MAX);
		*cut = true;
	}
	o = json_string_from_bytes(s, n);
	if (!o)
		return NULL;
	/* Replacements make the text longer (3 bytes for one): cut again. */
	tn = (size_t)json_object_get_string_len(o);
	if (tn <= CONV_TEXT_MAX)
		return o;
	t = json_object_get_string(o);
	k = CONV_TEXT_MAX;
	while (k > 0 && ((unsigned char)t[k] & 0xc0) == 0x80)
		k--;
	*cut = true;
	c = json_object_new_string_len(t, (int)k);
	json_object_put(o);
	return c;
}

static json_object *text_str(const char *s, bool *cut)
{
	return text_of(s, strlen(s), cut);
}

/* A copy of v (from a parsed line: valid UTF-8, bounded depth) with every
 * string, key aside, cut by text_of(). */
static json_object *copy_cut(json_object *v, bool *cut)
{
	json_object *o;

	switch (json_object_get_type(v)) {
	case json_type_string:
		return text_of(json_object_get_string(v), (size_t)json_object_get_string_len(v), cut);
	case json_type_array:
		o = json_object_new_array();
		for (size_t i = 0; o && i < json_object_array_length(v); i++)
			json_object_array_add(o, copy_cut(json_object_array_get_idx(v, i), cut));
		return o;
	case json_type_object:
		o = json_object_new_object();
		if (o) {
			json_object_object_foreach(v, k, val) {
				if (strlen(k) > CONV_TEXT_MAX) {
					*cut = true;
					continue;
				}
				json_object_object_add(o, k, copy_cut(val, cut));
			}
		}
		return o;
	case json_type_null:
		return NULL;
	default:
		return json_object_get(v);
	}
}

/* A new entry of type type for the line at offset off. */
static json_object *entry(const char *type, int64_t off)
{
	json_object *e = json_object_new_object();

	if (e) {
		json_object_object_add(e, "type", json_object_new_string(type));
		json_object_object_add(e, "offset", json_object_new_int64(off));
	}
	return e;
}

/* Sets key to the string member key of src (cut), or to def when it is
 * absent or not a string (NULL def: JSON null). */
static void put_str(json_object *e, const char *key, json_object *src, const char *srckey,
		    const char *def, bool *cut)
{
	const char *v;

	if (json_get_str(src, srckey, &v) == 0)
		json_object_object_add(e, key, text_str(v, cut));
	else
		json_object_object_add(e, key, def ? json_object_new_string(def) : NULL);
}

static void put_num(json_object *e, const char *key, json_object *src)
{
	json_object *v;

	if (json_object_object_get_ex(src, key, &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		json_object_object_add(e, key, json_object_get(v));
	else
		json_object_object_add(e, key, NULL);
}

static void add(struct conv_parser *p, json_object *e, bool cut)
{
	if (!e) {
		p->oom = true;
		return;
	}
	if (cut)
		json_object_object_add(e, "cut", json_object_new_boolean(true));
	if (json_object_array_add(p->entries, e)) {
		json_object_put(e);
		p->oom = true;
	}
}

static void add_raw(struct conv_parser *p, const char *s, size_t n, bool cut, int64_t off)
{
	json_object *e = entry("raw", off);

	if (e)
		json_object_object_add(e, "text", text_of(s, n, &cut));
	add(p, e, cut);
}

/* A raw entry of a JSON value of the line (a block of a known line that
 * has a shape of its own): its JSON text. */
static void add_raw_json(struct conv_parser *p, json_object *v, int64_t off)
{
	size_t n;
	const char *s = json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	if (!s) {
		p->oom = true;
		return;
	}
	add_raw(p, s, n, false, off);
}

static bool session_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONV_SESSION_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void take_session(struct conv_parser *p, json_object *line)
{
	const char *s;

	if (!p->session[0] && json_get_str(line, "session_id", &s) == 0 && session_ok(s))
		str_copy(p->session, sizeof(p->session), s);
}

static bool auth_words(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(auth_phrases); i++)
		if (strstr(s, auth_phrases[i]))
			return true;
	return false;
}

/* {"type":"system","subtype":"init",...}; false: not that shape. */
static bool on_init(struct conv_parser *p, json_object *line, int64_t off)
{
	const char *sub;
	json_object *tools, *e, *arr;
	bool cut = false;

	if (json_get_str(line, "subtype", &sub) != 0 || strcmp(sub, "init") != 0)
		return false;
	take_session(p, line);
	if (!(e = entry("init", off))) {
		p->oom = true;
		return true;
	}
	put_str(e, "session_id", line, "session_id", "", &cut);
	put_str(e, "model", line, "model", "", &cut);
	put_str(e, "cwd", line, "cwd", "", &cut);
	arr = json_object_new_array();
	if (json_object_object_get_ex(line, "tools", &tools) && json_object_is_type(tools, json_type_array))
		for (size_t i = 0; arr && i < json_object_array_length(tools); i++) {
			json_object *t = json_object_array_get_idx(tools, i);

			if (json_object_is_type(t, json_type_string))
				json_object_array_add(arr, copy_cut(t, &cut));
		}
	json_object_object_add(e, "tools", arr);
	add(p, e, cut);
	return true;
}

/* One block of an assistant message. */
static void on_assistant_block(struct conv_parser *p, json_object *b, int64_t off)
{
	const char *type;
	json_object *e, *input;
	bool cut = false;

	if (json_get_str(b, "type", &type) != 0) {
		add_raw_json(p, b, off);
		return;
	}
	if (strcmp(type, "text") == 0 && json_get_str(b, "text", &(const char *){ NULL }) == 0) {
		e = entry("text", off);
		if (e)
			put_str(e, "text", b, "text", "", &cut);
	} else if (strcmp(type, "thinking") == 0 &&
		   json_get_str(b, "thinking", &(const char *){ NULL }) == 0) {
		e = entry("thinking", off);
		if (e)
			put_str(e, "text", b, "thinking", "", &cut);
	} else if (strcmp(type, "tool_use") == 0 && json_get_str(b, "name", &(const char *){ NULL }) == 0) {
		e = entry("tool_use", off);
		if (e) {
			put_str(e, "id", b, "id", "", &cut);
			put_str(e, "name", b, "name", "", &cut);
			if (json_object_object_get_ex(b, "input", &input) &&
			    json_object_is_type(input, json_type_object))
				json_object_object_add(e, "input", copy_cut(input, &cut));
			else
				json_object_object_add(e, "input", json_object_new_object());
		}
	} else {
		add_raw_json(p, b, off);   /* redacted_thinking, server tools, ... */
		return;
	}
	add(p, e, cut);
}

/* The text of a tool result's content: a string, or an array of blocks
 * whose texts are joined with newlines (other blocks as "[type]"). Cut
 * to CONV_TEXT_MAX bytes. */
static json_object *result_content(json_object *c, bool *cut)
{
	size_t total = 0, n;
	char *buf;
	json_object *o;

	if (json_object_is_type(c, json_type_string))
		return text_of(json_object_get_string(c), (size_t)json_object_get_string_len(c), cut);
	if (!json_object_is_type(c, json_type_array))
		return json_object_new_string("");
	buf = malloc(CONV_TEXT_MAX + 1);
	if (!buf)
		return NULL;
	for (size_t i = 0; i < json_object_array_length(c); i++) {
		json_object *b = json_object_array_get_idx(c, i);
		const char *type = "", *s;
		char other[80];

		json_get_str(b, "type", &type);
		if (strcmp(type, "text") == 0 && json_get_str(b, "text", &s) == 0) {
			n = strlen(s);
		} else {
			snprintf(other, sizeof(other), "[%.64s]", type[0] ? type : "?");
			s = other;
			n = strlen(s);
		}
		if (i > 0 && total < CONV_TEXT_MAX)
			buf[total++] = '\n';
		if (n > CONV_TEXT_MAX - total) {
			n = utf8_floor(s, CONV_TEXT_MAX - total);
			*cut = true;
		}
		memcpy(buf + total, s, n);
		total += n;
		if (*cut)
			break;
	}
	o = text_of(buf, total, cut);
	free(buf);
	return o;
}

/* One block of a user message: tool results. */
static void on_user_block(struct conv_parser *p, json_object *b, int64_t off)
{
	const char *type;
	json_object *e, *c;
	bool cut = false, is_error = false;

	if (json_get_str(b, "type", &type) != 0 || strcmp(type, "tool_result") != 0) {
		add_raw_json(p, b, off);
		return;
	}
	if (!(e = entry("tool_result", off))) {
		p->oom = true;
		return;
	}
	put_str(e, "tool_use_id", b, "tool_use_id", "", &cut);
	json_object_object_add(e, "content", json_object_object_get_ex(b, "content", &c) ?
			       result_content(c, &cut) : json_object_new_string(""));
	json_get_bool(b, "is_error", &is_error);
	json_object_object_add(e, "is_error", json_object_new_boolean(is_error));
	add(p, e, cut);
}

/* assistant or user: one entry a block of message.content. */
static bool on_message(struct conv_parser *p, json_object *line, bool assistant, int64_t off)
{
	json_object *msg, *content;
	const char *err;
	size_t n;

	if (!json_object_object_get_ex(line, "message", &msg) ||
	    !json_object_object_get_ex(msg, "content", &content) ||
	    !json_object_is_type(content, json_type_array))
		return false;
	/* The SDK marks an assistant message that stands for a failed call. */
	if (assistant && json_get_str(line, "error", &err) == 0 && strcmp(err, "authentication_failed") == 0)
		p->auth_failed = true;
	n = json_object_array_length(content);
	for (size_t i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(content, i);

		if (assistant)
			on_assistant_block(p, b, off);
		else
			on_user_block(p, b, off);
	}
	return true;
}

static bool on_result(struct conv_parser *p, json_object *line, int64_t off)
{
	json_object *e, *t;
	bool cut = false, is_error = false;
	const char *text = "";

	if (json_get_str(line, "subtype", &(const char *){ NULL }) != 0)
		return false;
	take_session(p, line);
	json_get_bool(line, "is_error", &is_error);
	if (!(e = entry("result", off))) {
		p->oom = true;
		return true;
	}
	put_str(e, "subtype", line, "subtype", "", &cut);
	json_object_object_add(e, "is_error", json_object_new_boolean(is_error));
	put_str(e, "text", line, "result", "", &cut);
	put_num(e, "duration_ms", line);
	put_num(e, "num_turns", line);
	put_num(e, "total_cost_usd", line);
	put_str(e, "session_id", line, "session_id", "", &cut);
	if (json_object_object_get_ex(e, "text", &t) && t)
		text = json_object_get_string(t);
	free(p->result_text);
	p->result_text = strdup(text);
	if (!p->result_text)
		p->oom = true;
	p->has_result = true;
	p->result_error = is_error;
	if (is_error && auth_words(text))
		p->auth_failed = true;
	add(p, e, cut);
	return true;
}

/* One complete line (without its newline) at offset off. */
static void on_line(struct conv_parser *p, const char *s, size_t n, bool overlong, int64_t off)
{
	json_object *line = NULL;
	const char *type;
	char err[64];
	size_t i;
	bool known = false;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	for (i = 0; i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'); i++)
		;
	if (i == n && !overlong)
		return;   /* an empty line */
	if (overlong) {
		add_raw(p, s, n, true, off);
		return;
	}
	if (json_parse(s, n, &line, err, sizeof(err)) || !json_object_is_type(line, json_type_object) ||
	    json_get_str(line, "type", &type) != 0) {
		json_object_put(line);
		add_raw(p, s, n, false, off);
		return;
	}
	if (strcmp(type, "system") == 0)
		known = on_init(p, line, off);
	else if (strcmp(type, "assistant") == 0)
		known = on_message(p, line, true, off);
	else if (strcmp(type, "user") == 0)
		known = on_message(p, line, false, off);
	else if (strcmp(type, "result") == 0)
		known = on_result(p, line, off);
	json_object_put(line);
	if (!known)
		add_raw(p, s, n, false, off);
}

/* Ends the current line (the newline, if any, already counted in fed). */
static void end_line(struct conv_parser *p, int64_t end)
{
	on_line(p, p->line ? p->line : "", p->len, p->overlong, p->base + p->consumed);
	p->len = 0;
	p->overlong = false;
	p->consumed = end;
}

/* Keeps bytes of the current line, up to CONV_LINE_MAX. */
static int keep(struct conv_parser *p, const char *s, size_t n)
{
	if (p->len + n > CONV_LINE_MAX) {
		n = CONV_LINE_MAX - p->len;
		p->overlong = true;
	}
	if (n == 0)
		return 0;
	if (p->len + n > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *nl;

		while (cap < p->len + n)
			cap *= 2;
		if (cap > CONV_LINE_MAX)
			cap = CONV_LINE_MAX;
		if (!(nl = realloc(p->line, cap)))
			return -1;
		p->line = nl;
		p->cap = cap;
	}
	memcpy(p->line + p->len, s, n);
	p->len += n;
	return 0;
}

int conv_feed(struct conv_parser *p, const void *data, size_t len)
{
	const char *s = data;

	while (len > 0) {
		const char *nl = memchr(s, '\n', len);
		size_t n = nl ? (size_t)(nl - s) : len;

		if (!p->overlong && keep(p, s, n))
			return -1;
		p->fed += (int64_t)n;
		if (nl) {
			p->fed++;
			end_line(p, p->fed);
			n++;
		}
		s += n;
		len -= n;
	}
	return p->oom ? -1 : 0;
}

void conv_finish(struct conv_parser *p, bool final)
{
	/* Without its newline the line may still grow, unless the run is over
	 * or it is already too long to be anything but a cut raw entry (else
	 * a reader paging through the output could never get past it). */
	if (p->fed > p->consumed && (final || p->overlong))
		end_line(p, p->fed);
}
