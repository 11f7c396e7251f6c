/* fuzz.h - what every libFuzzer target under fuzz/ shares: the entry point's
 * prototype and CHECK(), which turns a broken invariant into a crash that
 * libFuzzer reports (and saves the input of). */
#ifndef ANYON_FUZZ_H
#define ANYON_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* A NUL-terminated copy of at most max bytes of data (the rest is cut).
 * The caller frees it. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size, size_t max)
{
	size_t n = size < max ? size : max;
	char *s = malloc(n + 1);

	CHECK(s);
	memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

#endif
