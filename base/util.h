/* util.h - small building blocks shared by every program: time, randomness,
 * hashing, hex and strict number parsing. Nothing here allocates. */
#ifndef ANYON_UTIL_H
#define ANYON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Seconds since the epoch (wall clock) and milliseconds on a monotonic clock. */
int64_t now_s(void);
int64_t mono_ms(void);

/* Fills buf with n bytes from the OpenSSL CSPRNG. Returns 0, or -1 on failure. */
int rand_bytes(void *buf, size_t n);

/* Writes 2*n lowercase hex digits and a NUL to out (size >= 2*n+1). */
void hex_encode(const void *in, size_t n, char *out);

/* Decodes exactly 2*n hex digits of in into out. Returns 0, or -1 if in is
 * not exactly that many hex digits. */
int hex_decode(const char *in, void *out, size_t n);

/* SHA-256 of len bytes at data into out. Returns 0, or -1 on failure. */
int sha256(const void *data, size_t len, unsigned char out[32]);

/* Strict base-10 parse of all of s into [min, max]. Returns 0, or -1 when s
 * is empty, has trailing junk, or is out of range. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Copies at most size-1 bytes of src and NUL-terminates. Returns true when
 * all of src fit. */
bool str_copy(char *dst, size_t size, const char *src);

#endif
