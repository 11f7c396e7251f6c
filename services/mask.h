/* mask.h - masks secrets in a job's output before it is stored.
 *
 * A mask_set holds what to look for: every secret value the job knows, in
 * each form it may be printed in (raw; base64 and base64url at each of the
 * three alignments a secret can start at inside a base64 group; URL-encoded;
 * hex in lower and upper case; escaped inside a JSON string), plus token
 * shapes that are masked even when
 * nobody told us about them (gh[opusr]_..., github_pat_..., sk-ant-...).
 * Every match is replaced by MASK_REPLACEMENT; overlapping matches become
 * one replacement.
 *
 * A mask_stream applies a set to one stream (one per stdout, stderr): bytes
 * are fed as they arrive, and a secret split across two feeds is still
 * masked, because bytes that could begin a match are held back until the
 * next feed decides (at most mask_set_hold() bytes) and released by
 * mask_stream_finish() at the end. Ordinary text is not held. Memory is
 * allocated when a stream is made and never grows, whatever is fed.
 *
 * The set is read-only once the streams use it: build it, then make the
 * streams, then free the streams before the set. Both wipe what they hold
 * (the patterns, the held bytes) when freed.
 */
#ifndef ANYON_SERVICES_MASK_H
#define ANYON_SERVICES_MASK_H

#include <stddef.h>
#include <stdint.h>

#define MASK_REPLACEMENT "[masked]"
#define MASK_SECRETS_MAX 32       /* secret values one set takes */
#define MASK_SECRET_MIN 8         /* shorter ones would mask ordinary text */
#define MASK_SECRET_MAX 1024      /* longer ones are refused */

struct mask_set;
struct mask_stream;

/* Receives masked output, in order; returns 0, or -1 to stop the feed. */
typedef int (*mask_out_fn)(void *arg, const void *data, size_t len);

/* A set with the token shapes only. NULL when out of memory. */
struct mask_set *mask_set_new(void);
/* Adds a secret value (copied; the caller wipes its own copy). Returns 0,
 * or -1 with a reason in err (too short, too long, too many, no memory);
 * the set is unchanged then. Adding a value twice is harmless. */
int mask_set_add(struct mask_set *set, const void *secret, size_t len, char *err, size_t errlen);
/* Bytes a stream may hold back at most: the longest pattern less one. */
size_t mask_set_hold(const struct mask_set *set);
/* Wipes the patterns and frees the set. NULL is fine. */
void mask_set_free(struct mask_set *set);

/* A stream over set (borrowed: it must outlive the stream). NULL when out
 * of memory. */
struct mask_stream *mask_stream_new(const struct mask_set *set);
/* Masks len bytes of data, passing what is decided to out. Returns 0, or
 * -1 when out did. */
int mask_stream_feed(struct mask_stream *ms, const void *data, size_t len,
		     mask_out_fn out, void *arg);
/* Ends the stream: decides and passes the held bytes. The stream can be
 * fed again afterwards, as a new stream. */
int mask_stream_finish(struct mask_stream *ms, mask_out_fn out, void *arg);
/* Bytes fed but not yet passed on nor masked (held back). */
size_t mask_stream_held(const struct mask_stream *ms);
/* Wipes the held bytes and frees the stream. NULL is fine. */
void mask_stream_free(struct mask_stream *ms);

#endif
