/* output.c - the batched, masked, quota-bound output writer (see output.h). */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "services/output.h"

#define CHUNKS_MAX 64      /* chunks per batch: stream switches flush beyond it */
#define MARKS_MAX 64       /* pending marks; a full queue merges into its newest */
#define SYSTEM_LINE_MAX 512

enum { S_STDOUT, S_STDERR, S_SYSTEM };
static const char *const stream_names[] = { "stdout", "stderr", "system" };

struct chunk {
	int stream;        /* S_* */
	size_t off, len;   /* in buf */
};

struct mark {
	int64_t offset;    /* the producer's position */
	uint64_t fed[2];   /* bytes fed to each masker when it was made */
};

/* What a masker passes on goes to one stream of the writer. */
struct sink {
	struct output_writer *w;
	int stream;
};

struct output_writer {
	struct db *db;                  /* borrowed */
	int64_t job_id, user_id;
	char owner[DB_JOB_OWNER_MAX];
	struct output_limits lim;
	struct mask_set *own_masks;     /* when the caller gave none; owned */
	struct mask_stream *ms[2];      /* per stream; owned */
	struct sink sinks[2];
	unsigned char *buf;             /* the batch, lim.batch_bytes; owned */
	size_t used;
	struct chunk chunks[CHUNKS_MAX];
	size_t nchunks;
	int64_t first_ms;               /* when the oldest buffered byte came */
	int64_t stored;                 /* stdout+stderr bytes this job stored or buffered */
	int64_t user_bytes;             /* the user's stored bytes, as of the last batch */
	int64_t user_buffered;          /* bytes buffered since then */
	int64_t dropped;                /* stdout+stderr bytes over a quota */
	bool dropped_user;              /* the first drop was the user's quota */
	uint64_t fed[2];                /* bytes fed to each masker */
	struct mark marks[MARKS_MAX];   /* pending marks, oldest first */
	size_t nmarks;
	bool has_offset;                /* an offset waits for the next batch */
	int64_t offset;
	int failed;                     /* DB_OK, or how a batch failed */
};

void output_limits_default(struct output_limits *lim)
{
	lim->batch_bytes = OUTPUT_BATCH_BYTES;
	lim->batch_ms = OUTPUT_BATCH_MS;
	lim->job_max_bytes = g_config.job_max_output_bytes;
	lim->user_max_bytes = g_config.user_max_output_bytes;
}

/* The marks whose bytes have all left the maskers become the offset the
 * next batch commits. */
static void settle_marks(struct output_writer *w)
{
	uint64_t done[2];
	size_t k = 0;

	for (int i = 0; i < 2; i++)
		done[i] = w->fed[i] - mask_stream_held(w->ms[i]);
	while (k < w->nmarks && w->marks[k].fed[0] <= done[0] && w->marks[k].fed[1] <= done[1]) {
		w->offset = w->marks[k].offset;
		w->has_offset = true;
		k++;
	}
	if (k) {
		memmove(w->marks, w->marks + k, (w->nmarks - k) * sizeof(w->marks[0]));
		w->nmarks -= k;
	}
}

static int flush(struct output_writer *w)
{
	struct db_chunk_in in[CHUNKS_MAX];
	int64_t user_bytes = 0;
	int rc;

	if (w->failed)
		return -1;
	settle_marks(w);
	if (!w->nchunks && !w->has_offset)
		return 0;
	for (size_t i = 0; i < w->nchunks; i++) {
		in[i].stream = stream_names[w->chunks[i].stream];
		in[i].data = w->buf + w->chunks[i].off;
		in[i].len = w->chunks[i].len;
	}
	rc = db_job_append_batch(w->db, w->job_id, w->owner, in, w->nchunks,
				 w->has_offset ? &w->offset : NULL, now_s(), NULL, &user_bytes);
	OPENSSL_cleanse(w->buf, w->used);
	w->used = 0;
	w->nchunks = 0;
	if (rc != DB_OK) {
		w->failed = rc;
		return -1;
	}
	w->has_offset = false;
	w->user_bytes = user_bytes;
	w->user_buffered = 0;
	return 0;
}

/* Buffers bytes of one stream, flushing as the buffer fills. */
static int buffer(struct output_writer *w, int stream, const unsigned char *p, size_t len)
{
	while (len > 0) {
		struct chunk *last = w->nchunks ? &w->chunks[w->nchunks - 1] : NULL;
		size_t room = w->lim.batch_bytes - w->used, take = len < room ? len : room;

		if (room == 0 || (!(last && last->stream == stream) && w->nchunks == CHUNKS_MAX)) {
			if (flush(w))
				return -1;
			continue;
		}
		if (!w->used)
			w->first_ms = mono_ms();
		if (last && last->stream == stream) {
			last->len += take;
		} else {
			w->chunks[w->nchunks++] = (struct chunk){ stream, w->used, take };
		}
		memcpy(w->buf + w->used, p, take);
		w->used += take;
		if (stream != S_SYSTEM)
			w->stored += (int64_t)take;
		w->user_buffered += (int64_t)take;
		p += take;
		len -= take;
	}
	return 0;
}

/* What a masker passes on: stored within the quotas, the rest counted. */
static int from_masker(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;
	struct output_writer *w = s->w;
	int64_t room = INT64_MAX, user_room;
	size_t keep;

	if (w->lim.job_max_bytes > 0)
		room = w->lim.job_max_bytes - w->stored;
	if (w->lim.user_max_bytes > 0) {
		user_room = w->lim.user_max_bytes - w->user_bytes - w->user_buffered;
		if (user_room < room) {
			room = user_room;
			if (room < (int64_t)len && !w->dropped)
				w->dropped_user = true;
		}
	}
	if (room < 0)
		room = 0;
	keep = (int64_t)len < room ? len : (size_t)room;
	w->dropped += (int64_t)(len - keep);
	return buffer(w, s->stream, data, keep);
}

struct output_writer *output_open(struct db *db, int64_t job_id, int64_t user_id, const char *owner,
				  const struct mask_set *masks, const struct output_limits *lim,
				  char *err, size_t errlen)
{
	struct output_writer *w = calloc(1, sizeof(*w));
	struct db_job job;

	if (!w || !str_copy(w->owner, sizeof(w->owner), owner) || !lim->batch_bytes) {
		snprintf(err, errlen, w ? "bad writer settings" : "out of memory");
		free(w);
		return NULL;
	}
	w->db = db;
	w->job_id = job_id;
	w->user_id = user_id;
	w->lim = *lim;
	if (!masks)
		masks = w->own_masks = mask_set_new();
	w->buf = malloc(lim->batch_bytes);
	for (int i = 0; i < 2 && masks; i++) {
		w->ms[i] = mask_stream_new(masks);
		w->sinks[i] = (struct sink){ w, i };
	}
	if (!masks || !w->buf || !w->ms[0] || !w->ms[1]) {
		snprintf(err, errlen, "out of memory");
		output_free(w);
		return NULL;
	}
	if (db_user_output_bytes(db, user_id, &w->user_bytes) != DB_OK) {
		snprintf(err, errlen, "reading the user's stored output failed");
		output_free(w);
		return NULL;
	}
	/* An earlier attempt's output counts against the job's quota too. */
	if (db_job_get(db, job_id, 0, &job) != DB_OK) {
		snprintf(err, errlen, "reading the job failed");
		output_free(w);
		return NULL;
	}
	w->stored = job.output_bytes;
	db_job_release(&job);
	return w;
}

int output_write(struct output_writer *w, enum output_stream stream, const void *data, size_t len)
{
	int i = stream == OUTPUT_STDERR ? S_STDERR : S_STDOUT;

	if (w->failed)
		return -1;
	w->fed[i] += len;
	if (mask_stream_feed(w->ms[i], data, len, from_masker, &w->sinks[i]))
		return -1;
	return output_tick(w);
}

void output_mark(struct output_writer *w, int64_t offset)
{
	struct mark m = { offset, { w->fed[0], w->fed[1] } };

	/* A newer mark over the same bytes, or a full queue: the newest one
	 * moves forward (it commits later, never wrongly). */
	if (w->nmarks && (w->nmarks == MARKS_MAX ||
			  (w->marks[w->nmarks - 1].fed[0] == m.fed[0] && w->marks[w->nmarks - 1].fed[1] == m.fed[1])))
		w->marks[w->nmarks - 1] = m;
	else
		w->marks[w->nmarks++] = m;
}

int output_tick(struct output_writer *w)
{
	if (w->failed)
		return -1;
	if (w->used && mono_ms() - w->first_ms >= w->lim.batch_ms)
		return flush(w);
	return 0;
}

int output_system(struct output_writer *w, const char *text)
{
	char line[SYSTEM_LINE_MAX];
	int n = snprintf(line, sizeof(line) - 1, "%s", text);

	if (w->failed)
		return -1;
	if (n < 0)
		return -1;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	return buffer(w, S_SYSTEM, (unsigned char *)line, (size_t)n);
}

int output_close(struct output_writer *w)
{
	if (w->failed)
		return -1;
	for (int i = 0; i < 2; i++)
		if (mask_stream_finish(w->ms[i], from_masker, &w->sinks[i]))
			return -1;
	if (w->dropped) {
		char line[256];

		if (w->dropped_user)
			snprintf(line, sizeof(line), "output limit reached: %lld bytes were not stored (your jobs' "
				 "stored output is at its limit of %lld bytes)", (long long)w->dropped,
				 (long long)w->lim.user_max_bytes);
		else
			snprintf(line, sizeof(line), "output limit reached: %lld bytes were not stored (a job "
				 "stores at most %lld bytes)", (long long)w->dropped, (long long)w->lim.job_max_bytes);
		if (output_system(w, line))
			return -1;
	}
	return flush(w);
}

bool output_lost(const struct output_writer *w)
{
	return w->failed == DB_NOTFOUND;
}

int64_t output_dropped(const struct output_writer *w)
{
	return w->dropped;
}

void output_free(struct output_writer *w)
{
	if (!w)
		return;
	for (int i = 0; i < 2; i++)
		mask_stream_free(w->ms[i]);
	mask_set_free(w->own_masks);
	if (w->buf)
		OPENSSL_cleanse(w->buf, w->lim.batch_bytes);
	free(w->buf);
	free(w);
}
