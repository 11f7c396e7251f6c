/* fuzz-conversation: the stream-json parser (services/conversation.c) on
 * untrusted executor output.
 *
 * Invariants: the input fed whole, fed in two pieces split at any point
 * (the first byte picks it), and paged (a non-final conv_finish() there,
 * then a new parser from conv_consumed()) gives the same entries; a
 * non-final finish consumes only whole lines; a final one consumes every
 * byte. Every entry has a known type and an offset inside the input, in
 * order; every string in it (at any depth) is well-formed UTF-8 without
 * NUL, at most CONV_TEXT_MAX bytes; the session id is "" or 1 to
 * CONV_SESSION_MAX bytes of [A-Za-z0-9_-]; the result's text is a string. */
#include "autoconfig.h"

#include <stdbool.h>

#include "fuzz/fuzz.h"
#include "services/conversation.h"

#define SER (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Well-formed UTF-8 by Unicode 15, 3.9, Table 3-7, apart from base/json.c. */
static bool utf8_wellformed(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i], lo = 0x80, hi = 0xbf;
		size_t k;

		if (c <= 0x7f) {
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

static void check_strings(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string: {
		size_t n = (size_t)json_object_get_string_len(o);

		CHECK(n <= CONV_TEXT_MAX);
		CHECK(!memchr(json_object_get_string(o), '\0', n));
		CHECK(utf8_wellformed((const uint8_t *)json_object_get_string(o), n));
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			check_strings(json_object_array_get_idx(o, i));
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			CHECK(utf8_wellformed((const uint8_t *)k, strlen(k)));
			check_strings(v);
		}
		break;
	}
	default:
		break;
	}
}

static void check_entries(json_object *arr, size_t size)
{
	static const char *const types[] = { "init", "text", "thinking", "tool_use", "tool_result", "result",
					     "raw" };
	int64_t last = 0;

	CHECK(json_object_is_type(arr, json_type_array));
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i), *t, *off;
		bool known = false;

		CHECK(json_object_is_type(e, json_type_object));
		CHECK(json_object_object_get_ex(e, "type", &t) && json_object_is_type(t, json_type_string));
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			known = known || strcmp(json_object_get_string(t), types[k]) == 0;
		CHECK(known);
		CHECK(json_object_object_get_ex(e, "offset", &off) && json_object_is_type(off, json_type_int));
		CHECK(json_object_get_int64(off) >= last && json_object_get_int64(off) < (int64_t)size);
		last = json_object_get_int64(off);
		check_strings(e);
	}
}

static char *entries_text(struct conv_parser *p)
{
	const char *s = json_object_to_json_string_ext(conv_entries(p), SER);
	char *c;

	CHECK(s);
	c = strdup(s);
	CHECK(c);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conv_parser *p = conv_new(0), *q;
	size_t k = size ? data[0] * size / 256 : 0;
	const char *sid, *text;
	json_object *arr;
	char *whole, *other;
	bool is_error;
	int64_t c;

	CHECK(p);
	CHECK(conv_feed(p, data, size) == 0);
	conv_finish(p, true);
	CHECK(conv_consumed(p) == (int64_t)size);
	check_entries(conv_entries(p), size);
	sid = conv_session_id(p);
	CHECK(strlen(sid) <= CONV_SESSION_MAX && strspn(sid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							   "0123456789_-") == strlen(sid));
	if (conv_result(p, &is_error, &text))
		CHECK(text && utf8_wellformed((const uint8_t *)text, strlen(text)));
	whole = entries_text(p);
	conv_free(p);

	/* Two feeds. */
	p = conv_new(0);
	CHECK(p);
	CHECK(conv_feed(p, data, k) == 0 && conv_feed(p, data + k, size - k) == 0);
	conv_finish(p, true);
	other = entries_text(p);
	CHECK(strcmp(whole, other) == 0);
	free(other);
	conv_free(p);

	/* Two pages. */
	p = conv_new(0);
	CHECK(p);
	CHECK(conv_feed(p, data, k) == 0);
	conv_finish(p, false);
	c = conv_consumed(p);
	CHECK(c >= 0 && c <= (int64_t)k && (c == 0 || data[c - 1] == '\n'));
	q = conv_new(c);
	CHECK(q);
	CHECK(conv_feed(q, data + c, size - (size_t)c) == 0);
	conv_finish(q, true);
	arr = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(conv_entries(p)); i++)
		json_object_array_add(arr, json_object_get(json_object_array_get_idx(conv_entries(p), i)));
	for (size_t i = 0; i < json_object_array_length(conv_entries(q)); i++)
		json_object_array_add(arr, json_object_get(json_object_array_get_idx(conv_entries(q), i)));
	CHECK(strcmp(whole, json_object_to_json_string_ext(arr, SER)) == 0);
	json_object_put(arr);
	conv_free(p);
	conv_free(q);
	free(whole);
	return 0;
}
