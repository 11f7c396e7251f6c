/* fuzz-json: json_parse() (base/json.c), the parser of every request body,
 * and json_string_from_bytes(), which turns untrusted bytes into strings
 * that are served back.
 *
 * Invariants: a refusal leaves no object and a short reason; an accepted
 * value has no NUL in its input, nests at most JSON_MAX_DEPTH deep, has
 * only well-formed UTF-8 in its keys and strings (checked apart from
 * base/json.c), serialises to text json_parse() accepts again as an equal
 * value that serialises the same (a stored body can be read back); and
 * json_wipe_strings() leaves every string zero. A string from bytes always serialises to valid
 * JSON, is well-formed UTF-8 at most three times the input, and keeps
 * well-formed input without NUL unchanged. */
#include "autoconfig.h"

#include <stdbool.h>

#include "base/json.h"
#include "fuzz/fuzz.h"

#define SER (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static int depth(json_object *o)
{
	int max = 0, d;

	switch (json_object_get_type(o)) {
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if ((d = depth(json_object_array_get_idx(o, i))) > max)
				max = d;
		return max + 1;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			if ((d = depth(v)) > max)
				max = d;
		}
		return max + 1;
	}
	default:
		return 0;
	}
}

static void check_wiped(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string: {
		const char *s = json_object_get_string(o);

		for (int i = 0; i < json_object_get_string_len(o); i++)
			CHECK(s[i] == 0);
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			check_wiped(json_object_array_get_idx(o, i));
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			check_wiped(v);
		}
		break;
	}
	default:
		break;
	}
}

/* Well-formed UTF-8 by the table of Unicode 15, 3.9 (Table 3-7), written
 * apart from base/json.c's own check. */
static bool utf8_wellformed(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		uint8_t lo = 0x80, hi = 0xbf;
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
		if (i + k >= n)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t j = 2; j <= k; j++)
			if (p[i + j] < 0x80 || p[i + j] > 0xbf)
				return false;
		i += k + 1;
	}
	return true;
}

static void check_utf8(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_string:
		CHECK(utf8_wellformed((const uint8_t *)json_object_get_string(o),
				      (size_t)json_object_get_string_len(o)));
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			check_utf8(json_object_array_get_idx(o, i));
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			CHECK(utf8_wellformed((const uint8_t *)k, strlen(k)));
			check_utf8(v);
		}
		break;
	}
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	json_object *o = NULL, *o2 = NULL, *s, *back = NULL;
	char err[128];
	const char *text, *text2;
	size_t len, len2;
	char *copy;

	memset(err, 'x', sizeof(err));
	if (json_parse(buf, size, &o, err, sizeof(err))) {
		CHECK(o == NULL);
		CHECK(memchr(err, '\0', sizeof(err)) && err[0] != '\0');
	} else {
		CHECK(o != NULL);
		CHECK(size > 0 && !memchr(buf, '\0', size));
		CHECK(depth(o) <= JSON_MAX_DEPTH);
		check_utf8(o);
		text = json_object_to_json_string_length(o, SER, &len);
		CHECK(text);
		copy = malloc(len + 1);
		CHECK(copy);
		memcpy(copy, text, len + 1);
		CHECK(json_parse(copy, len, &o2, err, sizeof(err)) == 0);
		CHECK(json_object_equal(o, o2));
		text2 = json_object_to_json_string_length(o2, SER, &len2);
		CHECK(len2 == len && memcmp(copy, text2, len) == 0);
		json_wipe_strings(o);
		check_wiped(o);
		free(copy);
		json_object_put(o2);
		json_object_put(o);
	}

	s = json_string_from_bytes(buf, size);
	CHECK(s);
	CHECK((size_t)json_object_get_string_len(s) <= 3 * size);
	CHECK(!memchr(json_object_get_string(s), '\0', (size_t)json_object_get_string_len(s)));
	text = json_object_to_json_string_length(s, SER, &len);
	CHECK(json_parse(text, len, &back, err, sizeof(err)) == 0);
	CHECK(json_object_is_type(back, json_type_string));
	CHECK(strcmp(json_object_get_string(back), json_object_get_string(s)) == 0);
	check_utf8(s);
	if (!memchr(data, '\0', size) && utf8_wellformed(data, size))
		CHECK((size_t)json_object_get_string_len(s) == size &&
		      memcmp(json_object_get_string(s), data, size) == 0);
	json_object_put(back);
	json_object_put(s);
	return 0;
}
