/* JSON helpers: bounded parsing, typed getters, strings from raw bytes. */
#include "autoconfig.h"

#include <stdlib.h>

#include "base/json.h"
#include "t/unit/tap.h"

static int parses(const char *s, size_t len)
{
	json_object *o = NULL;
	char err[128];
	int rc = json_parse(s, len, &o, err, sizeof(err));

	json_object_put(o);
	return rc == 0;
}

#define P(s) parses(s, sizeof(s) - 1)

int main(void)
{
	json_object *o = NULL, *s;
	const char *str;
	int64_t n;
	bool b;
	char err[128], deep[200];

	ok(P("{\"a\":1}"), "object parses");
	ok(P("  [1,2,3]\n"), "array with whitespace parses");
	ok(!P(""), "empty refused");
	ok(!P("{\"a\":"), "truncated refused");
	ok(!P("{\"a\":1} x"), "trailing junk refused");
	ok(!P("{\"a\":1}{}"), "two values refused");
	ok(!parses("{\"a\":1}\0", 8), "NUL byte refused");
	ok(!P("null"), "bare null refused");
	ok(P("42"), "a bare number is a complete value");
	ok(!P("{\"a\":\"\xff\"}"), "invalid UTF-8 inside a string refused");
	ok(P("{\"a\":\"\xc3\xa9\"}"), "valid UTF-8 inside a string accepted");
	/* json-c's own check lets these through (found by fuzz/fuzz-json) */
	ok(!P("{\"a\":\"\xc0\xbc\"}"), "overlong '<' (C0 BC) refused");
	ok(!P("{\"a\":\"\xe0\x80\xbc\"}"), "three-byte overlong refused");
	ok(!P("{\"a\":\"\xed\xa0\x80\"}"), "UTF-8 of a surrogate refused");
	ok(!P("{\"a\":\"\xf4\x90\x80\x80\"}"), "past U+10FFFF refused");
	ok(!P("{\"\xc0\xbc\":1}"), "overlong in a key refused");
	ok(P("{\"a\":\"\xf0\x9f\x98\x80\"}"), "four-byte UTF-8 accepted");
	ok(!P("NaN") && !P("[-Infinity]") && !P("{\"a\":Infinity}"), "NaN and Infinity refused");
	ok(!P("[1e999]"), "a number past a double's range refused");
	ok(P("[1.5e300,-0.0]"), "large finite numbers accepted");
	ok(!P("[1,"), "open array refused");
	ok(!P("{\"a\":01}"), "leading zero refused");
	ok(!P("{\"a\":1,}"), "trailing comma refused");
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	ok(!parses(deep, sizeof(deep)), "nesting deeper than JSON_MAX_DEPTH refused");
	ok(parses(deep + 100 - 10, 20), "shallow nesting accepted");

	ok(json_parse("{\"s\":\"x\",\"i\":7,\"b\":true,\"n\":null}", 33, &o, err, sizeof(err)) == 0,
	   "fixture parses");
	is_int(json_get_str(o, "s", &str), 0, "string field");
	is_str(str, "x", "string value");
	is_int(json_get_i64(o, "i", &n), 0, "int field");
	is_int(n, 7, "int value");
	is_int(json_get_bool(o, "b", &b), 0, "bool field");
	ok(b, "bool value");
	is_int(json_get_str(o, "i", &str), -1, "wrong type is -1");
	is_int(json_get_i64(o, "missing", &n), 1, "absent is 1");
	is_int(json_get_str(o, "n", &str), 1, "null counts as absent");
	json_object_put(o);

	s = json_string_from_bytes("ok \xff\xfe bad \xc3\xa9 \xe2\x82", 15);
	is_str(json_object_get_string(s), "ok \xef\xbf\xbd\xef\xbf\xbd bad \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd",
	       "invalid UTF-8 becomes U+FFFD, valid kept");
	json_object_put(s);
	s = json_string_from_bytes("\xed\xa0\x80", 3);
	is_str(json_object_get_string(s), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "surrogates refused");
	json_object_put(s);
	s = json_string_from_bytes("a\0b", 3);
	is_str(json_object_get_string(s), "a\xef\xbf\xbd" "b", "NUL replaced");
	json_object_put(s);
	{
		json_object *arr = json_object_new_array();
		size_t used = 0;

		ok(json_array_add_within(arr, json_object_new_string("0123456789"), &used, 20) == 0 &&
		   used == 13, "budget: the first item goes in (12 bytes and a comma)");
		ok(json_array_add_within(arr, json_object_new_string("0123456789"), &used, 20) == 1 &&
		   json_object_array_length(arr) == 1 && used == 13, "budget: the next would pass 20 bytes: refused");
		ok(json_array_add_within(arr, json_object_new_string("ab"), &used, 20) == 0 &&
		   json_object_array_length(arr) == 2, "budget: a small one still fits");
		json_object_put(arr);
		arr = json_object_new_array();
		used = 0;
		ok(json_array_add_within(arr, json_object_new_string("far too long for it"), &used, 4) == 0 &&
		   json_object_array_length(arr) == 1, "budget: a page is never empty");
		json_object_put(arr);
	}
	return done_testing();
}
