/* fuzz-jobargs: jobkind_validate() (services/jobkinds.c) on a body parsed
 * by json_parse(), as POST /api/jobs and the worker call it.
 *
 * Input: the first byte picks the kind and the size of the error buffer;
 * the rest is the args' JSON text. Invariants: accepted args are an
 * object; a kind spelled with other case or spacing is unknown; echo's
 * verdict agrees with its rules written again here (only its own keys,
 * values within its limits); a refusal says why in a NUL-terminated
 * message that fits any buffer;
 * the answer does not change when asked twice. */
#include "autoconfig.h"

#include <stdbool.h>

#include "base/json.h"
#include "services/jobkinds.h"
#include "fuzz/fuzz.h"

static const char *const kinds[] = { "echo", "ECHO", "", "container", "echo " };

static bool int_in(json_object *args, const char *key, int64_t lo, int64_t hi)
{
	json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(args, key, &v) || !v)
		return true;
	if (!json_object_is_type(v, json_type_int))
		return false;
	n = json_object_get_int64(v);
	return n >= lo && n <= hi;
}

/* The echo kind's rules, written again from its documentation. */
static bool echo_ok(json_object *args)
{
	static const char *const known[] = { "lines", "delay_ms", "exit_code", "stream" };
	json_object *lines, *stream;

	json_object_object_foreach(args, key, val) {
		bool k = false;

		(void)val;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			k |= strcmp(key, known[i]) == 0;
		if (!k)
			return false;
	}
	if (!json_object_object_get_ex(args, "lines", &lines) || !json_object_is_type(lines, json_type_array) ||
	    json_object_array_length(lines) > ECHO_MAX_LINES)
		return false;
	for (size_t i = 0; i < json_object_array_length(lines); i++) {
		json_object *l = json_object_array_get_idx(lines, i);

		if (!json_object_is_type(l, json_type_string) || json_object_get_string_len(l) > ECHO_MAX_LINE)
			return false;
	}
	if (json_object_object_get_ex(args, "stream", &stream) && stream &&
	    (!json_object_is_type(stream, json_type_string) ||
	     (strcmp(json_object_get_string(stream), "stdout") && strcmp(json_object_get_string(stream), "stderr"))))
		return false;
	return int_in(args, "delay_ms", 0, ECHO_MAX_DELAY_MS) && int_in(args, "exit_code", 0, 255);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_object *args = NULL;
	const char *kind;
	char perr[128], *err, *err2;
	size_t errlen;
	int rc, rc2;

	if (size < 1)
		return 0;
	kind = kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))];
	errlen = 1 + (size_t)(data[0] >> 3) * 4;   /* 1 to 125 bytes, exactly: ASan sees any overrun */
	if (json_parse((const char *)data + 1, size - 1, &args, perr, sizeof(perr)))
		args = NULL;   /* and the validator must refuse a missing object */
	err = malloc(errlen);
	err2 = malloc(errlen);
	CHECK(err && err2);
	rc = jobkind_validate(kind, args, err, errlen);
	rc2 = jobkind_validate(kind, args, err2, errlen);
	CHECK(rc == 0 || rc == -1);
	CHECK(rc == rc2);
	if (rc == 0) {
		/* no kind is named by case or spacing games */
		CHECK(strcmp(kind, "ECHO") && strcmp(kind, "") && strcmp(kind, "echo "));
		CHECK(json_object_is_type(args, json_type_object));
		if (strcmp(kind, "echo") == 0)
			CHECK(echo_ok(args));
	} else {
		CHECK(memchr(err, '\0', errlen));
		CHECK(errlen == 1 || err[0] != '\0');
		CHECK(strcmp(err, err2) == 0);
		if (strcmp(kind, "echo") == 0 && args && json_object_is_type(args, json_type_object))
			CHECK(!echo_ok(args));
	}
	free(err);
	free(err2);
	json_object_put(args);
	return 0;
}
