/* output.h - a running job's output on its way into the database: masked
 * (services/mask.h), buffered and written in batches, within quotas.
 *
 * A producer (an executor) writes (stream, bytes) as they come. Each
 * stream is masked on its own; what the maskers pass on is buffered and
 * written as one transaction per batch (db_job_append_batch()): when
 * batch_bytes are buffered, when the oldest buffered byte is batch_ms old
 * (checked on each write and by output_tick()), and at the end. Chunks get
 * consecutive seqs; a stream's bytes are stored byte for byte as masked.
 *
 * Quotas: a job stores at most job_max_bytes of stdout and stderr (what
 * an earlier attempt of it stored, system lines included, counts), and
 * while its user's jobs have user_max_bytes stored (their counter is read
 * at open and comes back with every batch) it stores nothing more. What
 * goes over is counted and dropped, and output_close() writes one system
 * line saying exactly how many bytes were not stored. System lines are
 * never dropped (they are few and short).
 *
 * Offsets: output_mark() tells the writer the producer's position (an
 * opaque number, e.g. bytes relayed so far) after everything written so
 * far. A mark made while neither masker holds bytes back is a clean point:
 * the position is exactly where the buffered output ends. Once a producer
 * gives marks, batches end at clean points and each commits its point's
 * position in its transaction, so a producer restarted from the committed
 * offset neither loses nor repeats output, and its fresh maskers start
 * where the old ones held nothing (a secret is never cut in two by a
 * restart). A batch waits for a clean point up to batch_bytes plus the
 * size of one relay record, or 4 x batch_ms; past that it is stored
 * anyway without an offset (output_unclean() counts those: a restart
 * then repeats what was stored since the last clean point).
 *
 * Writer thread (lim.thread): the transactions run on a thread of the
 * writer's own, with its own connection (db_open_again()), so the
 * database's work overlaps the producer's reading and masking. A due
 * batch is handed over once the one before it is committed; the producer
 * meanwhile fills a second buffer. Batches commit in order, each as
 * above; a failed one is reported by the next call that stores, marks,
 * ticks or closes (that call and every later one fail, and no later
 * batch is written). output_close() and output_detach() return once
 * everything is committed; output_free() waits for a batch in flight.
 * Without it every batch commits inside the call that makes it due.
 *
 * Memory is fixed at open: the batch buffer (two with the thread), the
 * maskers' buffers and a small queue of marks, however much is written.
 */
#ifndef ANYON_SERVICES_OUTPUT_H
#define ANYON_SERVICES_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "services/mask.h"

enum output_stream { OUTPUT_STDOUT, OUTPUT_STDERR };

struct output_limits {
	size_t batch_bytes;        /* flush when this much is buffered */
	int64_t batch_ms;          /* ... or when the oldest buffered byte is this old */
	int64_t job_max_bytes;     /* stdout+stderr one job stores; 0: no limit */
	int64_t user_max_bytes;    /* the user's stored output past which nothing is stored; 0: no limit */
	bool thread;               /* commit on a writer thread with its own connection */
};

/* A batch (one transaction) of up to 1 MiB: on PostgreSQL each batch
 * costs several round trips besides its rows, which at 128 KiB were most
 * of the time of a fast-printing job. Its rows (chunks) are at most
 * OUTPUT_CHUNK_BYTES each, so a page of output read back stays bounded. */
#define OUTPUT_BATCH_BYTES (1024 * 1024)
#define OUTPUT_CHUNK_BYTES (128 * 1024)
#define OUTPUT_BATCH_MS 250

/* The defaults: 1 MiB, 250 ms, the quotas of g_config, a writer thread. */
void output_limits_default(struct output_limits *lim);

struct output_writer;

/* A writer for job (running, leased to owner) of user_id. masks is
 * borrowed and must outlive the writer; NULL masks token shapes only.
 * NULL with a reason in err when out of memory or the database failed. */
struct output_writer *output_open(struct db *db, int64_t job_id, int64_t user_id, const char *owner,
				  const struct mask_set *masks, const struct output_limits *lim,
				  char *err, size_t errlen);
/* Masks and buffers len bytes of stream, flushing when due. Returns 0, or
 * -1 once a batch failed (the lease is gone or the database failed; see
 * output_lost()); from then on every call fails and nothing is written. */
int output_write(struct output_writer *w, enum output_stream stream, const void *data, size_t len);
/* Records that the producer's position after everything written so far
 * is offset, and stores a batch when one is due. Returns 0 or -1 as
 * output_write(). A marked writer stores only at marks (and when its
 * buffer is full): mark after each write. */
int output_mark(struct output_writer *w, int64_t offset);
/* Flushes when the oldest buffered byte is due. Returns 0 or -1 as
 * output_write(). Call it while the producer waits. */
int output_tick(struct output_writer *w);
/* Buffers one system line (text without a newline; one is added). */
int output_system(struct output_writer *w, const char *text);
/* Ends the job's output: the maskers pass on what they held, the drop
 * line is written if anything was dropped, and the last batch commits
 * with the last mark. Returns 0 or -1 as output_write(). The writer
 * stays allocated: free it with output_free(). */
int output_close(struct output_writer *w);
/* Leaves the job's output to another writer (a worker that carries on
 * after this one): stores up to the newest clean point with its offset
 * and wipes the rest, which the producer gives again from that offset.
 * Nothing more is written: every later call fails. Returns 0 or -1. */
int output_detach(struct output_writer *w);
/* Batches a marked writer stored with no clean point at their end. */
int64_t output_unclean(const struct output_writer *w);
/* True when a batch failed because owner no longer holds the job. */
bool output_lost(const struct output_writer *w);
/* Bytes of stdout and stderr dropped over a quota so far. */
int64_t output_dropped(const struct output_writer *w);
/* Frees the writer (what was not flushed is wiped and lost). NULL is fine. */
void output_free(struct output_writer *w);

#endif
