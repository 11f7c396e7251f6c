/* curlx.h - what every libcurl caller in anyon shares: a response body
 * bounded in bytes, a call's timeout cut to the caller's deadline, and the
 * text of a transfer error. The GitHub client (services/github.c) and the
 * Docker Engine client (services/docker.c) both use it. */
#ifndef ANYON_CURLX_H
#define ANYON_CURLX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

/* A response body growing up to max bytes, always NUL-terminated once it
 * has a byte. buf is owned by whoever holds the struct (free() it; wipe it
 * first if it may hold a secret). */
struct curlx_body {
	char *buf;        /* owned; NULL until the first byte */
	size_t len;       /* bytes in buf, without the NUL */
	size_t max;       /* the most bytes accepted */
	bool too_large;   /* the answer passed max: the transfer was aborted */
};

/* A CURLOPT_WRITEFUNCTION appending to the struct curlx_body given as
 * CURLOPT_WRITEDATA. Past max, or out of memory, it aborts the transfer. */
size_t curlx_on_body(char *data, size_t size, size_t n, void *arg);

/* A call's total timeout: max_ms, cut to what is left before deadline_ms (a
 * time on mono_ms()'s clock; 0 for none). Returns 0 when the deadline has
 * passed. *cut says whether the deadline is what limits it. */
long curlx_timeout_ms(int64_t deadline_ms, long max_ms, bool *cut);

/* Writes the text of a failed transfer: curl's error buffer when it says
 * something, else curl's name for rc. */
void curlx_error(char *out, size_t outlen, CURLcode rc, const char *errbuf);

/* What to do before a call that may wait on a remote service for long (a
 * GitHub call from a request): the web pool hands its other connections to
 * the rest of the pool (fcgi/conns.h) so nothing queues behind the wait.
 * NULL, the default, does nothing; a program sets it once at start. */
void curlx_set_long_wait_hook(void (*fn)(void));
void curlx_long_wait(void);

#endif
