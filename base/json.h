/* json.h - helpers over json-c: bounded parsing, typed field access and
 * strings built from untrusted bytes. */
#ifndef ANYON_JSON_H
#define ANYON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* Deepest nesting accepted from outside. */
#define JSON_MAX_DEPTH 32

/* Parses exactly len bytes as one JSON value, refusing trailing bytes,
 * NUL bytes, nesting deeper than JSON_MAX_DEPTH, strings or keys that are
 * not well-formed UTF-8 and numbers JSON has not (NaN, Infinity, or past a
 * double's range). The tokenizer's own buffer is wiped before it is freed
 * and never reallocated, so the parse leaves no copy of a string of buf in
 * freed memory. On success *out is a new reference the caller must
 * json_object_put(). On failure returns -1 and writes a short reason (no
 * input bytes) to err. */
int json_parse(const char *buf, size_t len, json_object **out, char *err, size_t errlen);

/* Overwrites with zeros the bytes of every string value in obj, at any
 * depth, before obj is released: json-c frees without wiping, and a parsed
 * body may hold a secret. Keys, numbers and the tree's shape stay. */
void json_wipe_strings(json_object *obj);

/* Field getters. Each returns 0 when the key is present with the right type,
 * 1 when the key is absent (or null), -1 when present with the wrong type.
 * Strings are borrowed from obj. */
int json_get_str(json_object *obj, const char *key, const char **out);
int json_get_i64(json_object *obj, const char *key, int64_t *out);
int json_get_bool(json_object *obj, const char *key, bool *out);

/* A JSON string from arbitrary bytes: invalid UTF-8 sequences become
 * U+FFFD, so the result always serialises to valid JSON. New reference. */
json_object *json_string_from_bytes(const char *data, size_t len);

/* json_string_from_bytes() of a NUL-terminated string. */
json_object *json_str(const char *s);

/* Adds key: value to obj; NULL value means JSON null. Takes the reference. */
void json_set(json_object *obj, const char *key, json_object *value);

/* An integer or null when has is false. */
json_object *json_i64_or_null(int64_t v, bool has);

/* Appends item (taking its reference) to arr while the items' JSON text
 * stays within budget bytes, counted in *used; the first item always goes
 * in, so a page is never empty. Returns 0 when added, 1 when the item
 * would pass the budget (the item is released, arr is unchanged), -1 on
 * failure (item released). For list answers bounded in bytes. */
int json_array_add_within(json_object *arr, json_object *item, size_t *used, size_t budget);

#endif
