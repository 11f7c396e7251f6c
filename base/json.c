#include "autoconfig.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/printbuf.h>
#include <openssl/crypto.h>

#include "base/json.h"

/* Every string the tokenizer reads passes through its printbuf (tok->pb,
 * public in json-c's headers though marked internal). Sized up front to
 * hold the whole input, it never grows, so realloc() never frees a copy of
 * part of a string unwiped; json_tokener_wipe_free() wipes it before it is
 * freed. */
static int tokener_presize(json_tokener *tok, size_t len)
{
	if (len > (size_t)0x7ffffff0 || printbuf_memset(tok->pb, 0, 0, (int)len + 8) < 0)
		return -1;
	printbuf_reset(tok->pb);
	return 0;
}

static void json_tokener_wipe_free(json_tokener *tok)
{
	if (tok->pb && tok->pb->buf && tok->pb->size > 0)
		OPENSSL_cleanse(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned int cp, min;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		len = 2; cp = p[0] & 0x1f; min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3; cp = p[0] & 0x0f; min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		len = 4; cp = p[0] & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_ok(const char *s, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if ((n = utf8_seq_len((const unsigned char *)s + i, len - i)) == 0)
			return false;
	return true;
}

/* What json-c lets through and JSON has not: its JSON_TOKENER_VALIDATE_UTF8
 * passes overlong forms (C0 BC for '<') and other invalid sequences, and
 * even in strict mode it reads NaN and Infinity, which it would write back
 * as text no browser parses. Every key, string and number is checked
 * again here (both found by fuzz/fuzz-json). */
static bool values_ok(json_object *o, int depth)
{
	if (depth > JSON_MAX_DEPTH + 1)
		return false;
	switch (json_object_get_type(o)) {
	case json_type_string:
		return utf8_ok(json_object_get_string(o), (size_t)json_object_get_string_len(o));
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (!values_ok(json_object_array_get_idx(o, i), depth + 1))
				return false;
		return true;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			if (!utf8_ok(key, strlen(key)) || !values_ok(val, depth + 1))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

int json_parse(const char *buf, size_t len, json_object **out, char *err, size_t errlen)
{
	json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t used;

	*out = NULL;
	if (len == 0) {
		snprintf(err, errlen, "empty body, expected JSON");
		return -1;
	}
	if (len > (size_t)0x7fffffff || memchr(buf, '\0', len)) {
		snprintf(err, errlen, "body is not JSON text");
		return -1;
	}
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok || tokener_presize(tok, len)) {
		if (tok)
			json_tokener_free(tok);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Strings must be valid UTF-8: what is stored is served back as JSON. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A bare number ("42") is complete only once the input ends. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		used = len;
	}
	json_tokener_wipe_free(tok);
	if (!obj && jerr == json_tokener_success) {
		/* a literal null */
		snprintf(err, errlen, "expected a JSON object, got null");
		return -1;
	}
	if (jerr != json_tokener_success) {
		json_wipe_strings(obj);
		json_object_put(obj);
		snprintf(err, errlen, "%s", jerr == json_tokener_continue ?
			 "JSON text ends early" : json_tokener_error_desc(jerr));
		return -1;
	}
	for (; used < len; used++) {
		if (!strchr(" \t\r\n", buf[used])) {
			json_wipe_strings(obj);
			json_object_put(obj);
			snprintf(err, errlen, "trailing bytes after the JSON value");
			return -1;
		}
	}
	if (!values_ok(obj, 0)) {
		json_wipe_strings(obj);
		json_object_put(obj);
		snprintf(err, errlen, "invalid UTF-8 in a string, or a number JSON has not (NaN, Infinity)");
		return -1;
	}
	*out = obj;
	return 0;
}

void json_wipe_strings(json_object *obj)
{
	switch (json_object_get_type(obj)) {
	case json_type_string:
		OPENSSL_cleanse((char *)json_object_get_string(obj), (size_t)json_object_get_string_len(obj));
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(obj); i++)
			json_wipe_strings(json_object_array_get_idx(obj, i));
		break;
	case json_type_object: {
		json_object_object_foreach(obj, key, val) {
			(void)key;
			json_wipe_strings(val);
		}
		break;
	}
	default:
		break;
	}
}

static int get_field(json_object *obj, const char *key, json_type want, json_object **val)
{
	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, val) || !*val)
		return 1;
	return json_object_is_type(*val, want) ? 0 : -1;
}

int json_get_str(json_object *obj, const char *key, const char **out)
{
	json_object *v;
	int rc = get_field(obj, key, json_type_string, &v);

	if (rc == 0)
		*out = json_object_get_string(v);
	return rc;
}

int json_get_i64(json_object *obj, const char *key, int64_t *out)
{
	json_object *v;
	int rc = get_field(obj, key, json_type_int, &v);

	if (rc == 0)
		*out = json_object_get_int64(v);
	return rc;
}

int json_get_bool(json_object *obj, const char *key, bool *out)
{
	json_object *v;
	int rc = get_field(obj, key, json_type_boolean, &v);

	if (rc == 0)
		*out = json_object_get_boolean(v);
	return rc;
}

json_object *json_string_from_bytes(const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;
	json_object *s;
	char *out;
	size_t o = 0;

	/* Worst case every byte becomes the three bytes of U+FFFD. */
	if (len > (SIZE_MAX - 1) / 3 || !(out = malloc(len * 3 + 1)))
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(p + i, len - i);

		if (n == 0 || (n == 1 && p[i] == 0)) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	s = json_object_new_string_len(out, (int)o);
	free(out);
	return s;
}

json_object *json_str(const char *s)
{
	return json_string_from_bytes(s, strlen(s));
}

void json_set(json_object *obj, const char *key, json_object *value)
{
	json_object_object_add(obj, key, value);
}

json_object *json_i64_or_null(int64_t v, bool has)
{
	return has ? json_object_new_int64(v) : NULL;
}

int json_array_add_within(json_object *arr, json_object *item, size_t *used, size_t budget)
{
	size_t len = 0;

	if (!json_object_to_json_string_length(item, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
					       &len)) {
		json_object_put(item);
		return -1;
	}
	len++;   /* the comma */
	if (*used > 0 && (len > budget || *used > budget - len)) {
		json_object_put(item);
		return 1;
	}
	if (json_object_array_add(arr, item)) {
		json_object_put(item);
		return -1;
	}
	*used += len;
	return 0;
}
