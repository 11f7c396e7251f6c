/* output.c - the batched, masked, quota-bound output writer (see output.h). */
#include "autoconfig.h"

#include <pthread.h>
#include <signal.h>
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
#define SYSTEM_LINE_MAX 512
/* Room past batch_bytes for a marked writer: what one relay record (64 KiB)
 * and a masker's hold may add after the last clean point, so a batch can
 * wait for the next one instead of storing past it. */
#define MARKED_SLACK (64 * 1024 + 4096)
/* A marked writer with no clean point stores its buffer anyway after this
 * many batch_ms (output that never reaches a clean point still shows). */
#define UNCLEAN_WAIT 4

enum { S_STDOUT, S_STDERR, S_SYSTEM };
static const char *const stream_names[] = { "stdout", "stderr", "system" };

struct chunk {
	int stream;        /* S_* */
	size_t off, len;   /* in buf */
};

/* A point of the buffer where the producer's position is known exactly:
 * a mark made while neither masker held anything back. */
struct clean {
	size_t used;       /* buffer bytes before it */
	size_t nchunks;    /* chunks then, the last one ... */
	size_t last_len;   /* ... this long */
	int64_t offset;    /* the producer's position */
};

/* What a masker passes on goes to one stream of the writer. */
struct sink {
	struct output_writer *w;
	int stream;
};

/* A batch on its way to the database: chunks pointing into buf, and the
 * producer's offset at its end when it ends at a clean point. */
struct batch {
	struct db_chunk_in in[CHUNKS_MAX];
	size_t n;
	unsigned char *buf;             /* the buffer the chunks point into */
	size_t used;                    /* bytes of it in use: wiped once committed */
	bool has_offset;
	int64_t offset;
};

/* The writer thread (lim.thread): it commits one batch at a time on a
 * connection of its own while the producer fills the other buffer. The
 * producer hands a batch over only when the previous one is committed
 * (or failed), so batches commit in order, at most two buffers exist,
 * and a failure stops every later batch. */
struct committer {
	pthread_t thread;
	bool started;
	struct db *db;                  /* the thread's own connection; owned */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy;                      /* under mu: a batch is handed over, not yet done */
	bool quit;                      /* under mu: no more batches come */
	bool done;                      /* under mu: a result waits for collect() */
	struct batch batch;             /* under mu while busy: the thread's */
	int rc;                         /* under mu: the last batch's DB_* */
	int64_t user_bytes;             /* under mu: what it reported */
};

struct output_writer {
	struct db *db;                  /* borrowed */
	int64_t job_id, user_id;
	char owner[DB_JOB_OWNER_MAX];
	struct output_limits lim;
	struct mask_set *own_masks;     /* when the caller gave none; owned */
	struct mask_stream *ms[2];      /* per stream; owned */
	struct sink sinks[2];
	unsigned char *buf;             /* the batch, cap bytes; owned */
	size_t cap;                     /* batch_bytes + MARKED_SLACK */
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
	bool marked;                    /* the producer gives marks (output_mark()) */
	bool has_clean;                 /* a clean point in the buffer ... */
	struct clean clean;             /* ... the newest one */
	bool has_last;                  /* the newest mark ... */
	int64_t last_offset;            /* ... its position */
	uint64_t last_fed[2];           /* ... and w->fed then */
	int64_t unclean;                /* batches stored with no clean point */
	int failed;                     /* DB_OK, or how a batch failed */
	struct committer *com;          /* the writer thread, or NULL (batches commit in store()); owned */
	unsigned char *spare;           /* the committer's buffer, cap bytes; owned */
	int64_t inflight;               /* bytes of the batch being committed */
};

void output_limits_default(struct output_limits *lim)
{
	lim->batch_bytes = OUTPUT_BATCH_BYTES;
	lim->batch_ms = OUTPUT_BATCH_MS;
	lim->job_max_bytes = g_config.job_max_output_bytes;
	lim->user_max_bytes = g_config.user_max_output_bytes;
	lim->thread = true;
}

/* Commits one batch and its event job.output in one transaction on db.
 * DB_OK, DB_NOTFOUND (the lease is gone) or DB_ERROR. */
static int commit_batch(struct db *db, const struct output_writer *w, const struct batch *b,
			int64_t *user_bytes)
{
	int rc;

	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_job_append_batch(db, w->job_id, w->owner, b->in, b->n, b->has_offset ? &b->offset : NULL,
				 now_s(), NULL, user_bytes);
	if (rc == DB_OK && b->n)
		rc = db_event_add(db, w->user_id, "job.output", w->job_id, 0, now_s(), NULL);
	if (rc == DB_OK && db_commit(db))
		rc = DB_ERROR;
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

/* The writer thread: commits what it is handed, wipes it, says how it
 * went. w's fields it reads (ids, owner) do not change after open. */
static void *committer_main(void *arg)
{
	struct output_writer *w = arg;
	struct committer *c = w->com;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct batch b;
		int64_t user_bytes = 0;
		int rc;

		while (!c->busy && !c->quit)
			pthread_cond_wait(&c->cv, &c->mu);
		if (!c->busy)
			break;
		b = c->batch;
		pthread_mutex_unlock(&c->mu);
		rc = commit_batch(c->db, w, &b, &user_bytes);
		OPENSSL_cleanse(b.buf, b.used);
		pthread_mutex_lock(&c->mu);
		c->rc = rc;
		c->user_bytes = user_bytes;
		c->busy = false;
		c->done = true;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* Takes the committer's result, waiting for it when wait is set (else
 * only when it is there already). -1 once a batch failed. */
static int collect(struct output_writer *w, bool wait)
{
	struct committer *c = w->com;

	if (!c)
		return w->failed ? -1 : 0;
	pthread_mutex_lock(&c->mu);
	while (wait && c->busy)
		pthread_cond_wait(&c->cv, &c->mu);
	if (c->done) {
		c->done = false;
		if (c->rc != DB_OK) {
			if (!w->failed)
				w->failed = c->rc;
		} else {
			/* The user's counter now holds the batch. */
			w->user_bytes = c->user_bytes;
			w->user_buffered -= w->inflight;
		}
		w->inflight = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return w->failed ? -1 : 0;
}

/* Starts the writer thread with a connection of its own. Signals stay
 * with the job's thread (their handlers and EINTRs are its business). */
static int committer_start(struct output_writer *w, char *err, size_t errlen)
{
	struct committer *c = calloc(1, sizeof(*c));
	sigset_t all, old;
	int rc;

	w->com = c;
	w->spare = malloc(w->cap);
	if (!c || !w->spare) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->db = db_open_again(w->db, err, errlen);
	if (!c->db)
		return -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	sigfillset(&all);
	/* Faults are the thread's own: left to their handlers. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&c->thread, NULL, committer_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		snprintf(err, errlen, "starting the output's writer thread failed: %s", strerror(rc));
		return -1;
	}
	c->started = true;
	return 0;
}

/* Lets the thread finish the batch it holds, then ends it. */
static void committer_free(struct output_writer *w)
{
	struct committer *c = w->com;

	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->mu);
		c->quit = true;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		pthread_join(c->thread, NULL);
	}
	if (c->db) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
	}
	db_close(c->db);
	free(c);
	w->com = NULL;
}

/* Stores the first n chunks of the buffer, the last one cut to last_len
 * bytes (which together are the first upto bytes), in one transaction with
 * offset (NULL: none); what follows moves to the front of the buffer. With
 * a writer thread the batch is handed to it (once the one before is
 * committed) and the rest goes to the front of the other buffer. */
static int store(struct output_writer *w, size_t n, size_t last_len, size_t upto, const int64_t *offset)
{
	struct batch b = { .n = n, .buf = w->buf, .used = w->used, .has_offset = offset != NULL };
	int64_t user_bytes = 0;
	size_t keep = w->used - upto, k = 0;
	int rc;

	if (w->failed)
		return -1;
	if (!n && !offset)
		return 0;
	if (offset)
		b.offset = *offset;
	for (size_t i = 0; i < n; i++) {
		b.in[i].stream = stream_names[w->chunks[i].stream];
		b.in[i].data = w->buf + w->chunks[i].off;
		b.in[i].len = i + 1 == n ? last_len : w->chunks[i].len;
	}
	if (w->com) {
		/* The committer's buffer is free once its batch is done. */
		if (collect(w, true))
			return -1;
		memcpy(w->spare, w->buf + upto, keep);
		pthread_mutex_lock(&w->com->mu);
		w->com->batch = b;
		w->com->busy = true;
		pthread_cond_broadcast(&w->com->cv);
		pthread_mutex_unlock(&w->com->mu);
		w->buf = w->spare;
		w->spare = b.buf;
		w->inflight = (int64_t)upto;
	} else {
		rc = commit_batch(w->db, w, &b, &user_bytes);
		if (rc != DB_OK) {
			w->failed = rc;
			return -1;
		}
		memmove(w->buf, w->buf + upto, keep);
		OPENSSL_cleanse(w->buf + keep, upto);
		w->user_bytes = user_bytes;
		w->user_buffered = (int64_t)keep;
	}
	/* What stays: the rest of the cut chunk, then the later ones. */
	if (n && last_len < w->chunks[n - 1].len) {
		w->chunks[k++] = (struct chunk){ w->chunks[n - 1].stream, 0, w->chunks[n - 1].len - last_len };
	}
	for (size_t i = n; i < w->nchunks; i++) {
		w->chunks[k] = w->chunks[i];
		w->chunks[k++].off -= upto;
	}
	w->nchunks = k;
	w->used = keep;
	if (keep)
		w->first_ms = mono_ms();
	w->has_clean = false;
	return 0;
}

/* Stores the whole buffer. Its offset: the clean point at its end, if
 * there is one. */
static int flush(struct output_writer *w)
{
	bool at_end = w->has_clean && w->clean.used == w->used;

	if (w->marked && !at_end && w->used)
		w->unclean++;
	return store(w, w->nchunks, w->nchunks ? w->chunks[w->nchunks - 1].len : 0, w->used,
		     at_end ? &w->clean.offset : NULL);
}

/* A marked writer stores up to its newest clean point, so the committed
 * offset is exactly where what is stored ends. */
static int flush_clean(struct output_writer *w)
{
	if (!w->has_clean)
		return 0;
	return store(w, w->clean.nchunks, w->clean.last_len, w->clean.used, &w->clean.offset);
}

/* Whether the buffer is due to be stored: full enough, or old enough. */
static int flush_due(struct output_writer *w)
{
	int64_t age = w->used ? mono_ms() - w->first_ms : 0;

	if (collect(w, false))
		return -1;
	if (!w->marked)
		return w->used && age >= w->lim.batch_ms ? flush(w) : 0;
	if (w->has_clean && (w->used >= w->lim.batch_bytes || age >= w->lim.batch_ms))
		return flush_clean(w);
	if (w->used && age >= UNCLEAN_WAIT * (w->lim.batch_ms > 0 ? w->lim.batch_ms : 0))
		return flush(w);
	return 0;
}

/* Buffers bytes of one stream, flushing as the buffer fills. */
static int buffer(struct output_writer *w, int stream, const unsigned char *p, size_t len)
{
	while (len > 0) {
		struct chunk *last = w->nchunks ? &w->chunks[w->nchunks - 1] : NULL;
		size_t limit = w->marked ? w->cap : w->lim.batch_bytes;
		size_t room = limit - w->used, take = len < room ? len : room;
		/* A chunk (a stored row) holds at most OUTPUT_CHUNK_BYTES:
		 * a batch of several rows is still one transaction. */
		bool extend = last && last->stream == stream && last->len < OUTPUT_CHUNK_BYTES;

		if (extend && take > OUTPUT_CHUNK_BYTES - last->len)
			take = OUTPUT_CHUNK_BYTES - last->len;
		if (room == 0 || (!extend && w->nchunks == CHUNKS_MAX)) {
			/* Full: up to the clean point when that frees room, else all. */
			if ((w->has_clean && w->clean.used > 0 ? flush_clean(w) : flush(w)))
				return -1;
			continue;
		}
		if (!w->used)
			w->first_ms = mono_ms();
		if (extend) {
			last->len += take;
		} else {
			if (take > OUTPUT_CHUNK_BYTES)
				take = OUTPUT_CHUNK_BYTES;
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
	w->cap = lim->batch_bytes + MARKED_SLACK;
	w->buf = malloc(w->cap);
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
	if (lim->thread && committer_start(w, err, errlen)) {
		output_free(w);
		return NULL;
	}
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
	/* A marked writer decides at the mark that follows. */
	return w->marked ? 0 : flush_due(w);
}

int output_mark(struct output_writer *w, int64_t offset)
{
	w->marked = true;
	w->has_last = true;
	w->last_offset = offset;
	w->last_fed[0] = w->fed[0];
	w->last_fed[1] = w->fed[1];
	if (!mask_stream_held(w->ms[0]) && !mask_stream_held(w->ms[1])) {
		/* Everything fed is in the buffer (or dropped): offset is
		 * exactly where the buffer ends. */
		w->has_clean = true;
		w->clean.used = w->used;
		w->clean.nchunks = w->nchunks;
		w->clean.last_len = w->nchunks ? w->chunks[w->nchunks - 1].len : 0;
		w->clean.offset = offset;
	}
	return flush_due(w);
}

int output_tick(struct output_writer *w)
{
	return flush_due(w);
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
	/* Everything left the maskers: the newest mark is clean if nothing
	 * was fed after it. */
	if (w->has_last && w->last_fed[0] == w->fed[0] && w->last_fed[1] == w->fed[1]) {
		w->has_clean = true;
		w->clean.used = w->used;
		w->clean.nchunks = w->nchunks;
		w->clean.last_len = w->nchunks ? w->chunks[w->nchunks - 1].len : 0;
		w->clean.offset = w->last_offset;
	}
	if (flush(w))
		return -1;
	return collect(w, true);
}

int output_detach(struct output_writer *w)
{
	if (w->failed)
		return -1;
	if (flush_clean(w) || collect(w, true))
		return -1;
	/* The rest comes again, from the committed offset, to the next
	 * writer: nothing of it is kept. */
	OPENSSL_cleanse(w->buf, w->used);
	w->used = 0;
	w->nchunks = 0;
	w->failed = DB_CONFLICT;
	return 0;
}

int64_t output_unclean(const struct output_writer *w)
{
	return w->unclean;
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
	committer_free(w);
	for (int i = 0; i < 2; i++)
		mask_stream_free(w->ms[i]);
	mask_set_free(w->own_masks);
	if (w->buf)
		OPENSSL_cleanse(w->buf, w->cap);
	free(w->buf);
	if (w->spare)
		OPENSSL_cleanse(w->spare, w->cap);
	free(w->spare);
	free(w);
}
