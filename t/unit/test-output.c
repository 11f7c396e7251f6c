/* The batched output writer on a real database: batches by size and by
 * time, consecutive seqs, streams kept apart byte for byte, masking across
 * writes, the offset committed with each batch (never past bytes a masker
 * still holds), the per-job and per-user quotas with their exact drop
 * line, the user's byte counter kept by appends and purges, a lost lease,
 * and flat memory. Like test-db it runs on SQLite, or on PostgreSQL when
 * ANYON_TEST_PG_URI names a database it may wipe (`./dev test --pg`);
 * ANYON_TEST_BACKEND=pg without it is a failure, never a skip. On
 * PostgreSQL it works in a schema of its own (t_unit_output). */
#include "autoconfig.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/config.h"
#include "base/util.h"
#include "db/db.h"
#include "db/query.h"
#include "services/jobs.h"
#include "services/mask.h"
#include "services/output.h"
#include "t/unit/tap.h"

static struct db *db;
static int64_t user_id;
static bool threaded;   /* open_writer() gives writers a writer thread */

/* The stored output of a job, read back: each stream's bytes and the
 * chunks' count; seqs checked consecutive from 1. */
struct stored {
	char out[1 << 16], err[1 << 16], sys[4096];
	size_t nout, nerr, nsys;
	int chunks;
	int64_t last_seq;
	bool in_order;
	int64_t out_sizes[64];
};

static int collect(const struct db_chunk *c, void *arg)
{
	struct stored *s = arg;
	char *dst;
	size_t *n, cap;

	if (c->seq != s->last_seq + 1)
		s->in_order = false;
	s->last_seq = c->seq;
	if (strcmp(c->stream, "stdout") == 0) {
		dst = s->out, n = &s->nout, cap = sizeof(s->out);
		if (s->chunks < 64)
			s->out_sizes[s->chunks] = (int64_t)c->len;
	} else if (strcmp(c->stream, "stderr") == 0) {
		dst = s->err, n = &s->nerr, cap = sizeof(s->err);
	} else {
		dst = s->sys, n = &s->nsys, cap = sizeof(s->sys) - 1;
	}
	if (*n + c->len > cap)
		return -1;
	memcpy(dst + *n, c->data, c->len);
	*n += c->len;
	s->sys[s->nsys] = '\0';
	s->chunks++;
	return 0;
}

static struct stored *read_output(int64_t job)
{
	struct stored *s = calloc(1, sizeof(*s));
	bool more = true;

	s->in_order = true;
	while (more)
		if (db_job_output(db, job, s->last_seq, 1000, 1 << 20, collect, s, &more) != DB_OK) {
			s->in_order = false;
			break;
		}
	return s;
}

static int64_t now = 1700000000;

/* A new running job leased to owner. */
static int64_t running_job(const char *owner)
{
	struct db_job job;
	int64_t id;

	if (db_job_create(db, user_id, "echo", "{}", 1, now, &id) ||
	    db_job_claim_next(db, owner, now, 3600, 0, "echo", &job) || job.id != id)
		BAIL_OUT("cannot make a running job");
	db_job_release(&job);
	return id;
}

static struct output_writer *open_writer(int64_t job, const struct mask_set *masks, size_t batch,
					 int64_t ms, int64_t job_max, int64_t user_max)
{
	struct output_limits lim = { batch, ms, job_max, user_max, threaded };
	char err[256];
	struct output_writer *w = output_open(db, job, user_id, "w1", masks, &lim, err, sizeof(err));

	if (!w)
		BAIL_OUT("output_open: %s", err);
	return w;
}

static int64_t job_bytes(int64_t id)
{
	struct db_job j;
	int64_t n = -1;

	if (db_job_get(db, id, 0, &j) == DB_OK) {
		n = j.output_bytes;
		db_job_release(&j);
	}
	return n;
}

/* Rows read back, their largest size, and the bytes compared with the
 * pattern written. */
struct rows {
	int n;
	size_t max, total;
	bool same;
	int64_t last_seq;
};

static int count_rows(const struct db_chunk *c, void *arg)
{
	struct rows *r = arg;

	for (size_t i = 0; i < c->len; i++)
		if (((const unsigned char *)c->data)[i] != (unsigned char)('A' + (r->total + i) % 23))
			r->same = false;
	if (c->seq != r->last_seq + 1)
		r->same = false;
	r->last_seq = c->seq;
	r->n++;
	r->total += c->len;
	if (c->len > r->max)
		r->max = c->len;
	return 0;
}

/* A batch of the default size is stored as rows of at most
 * OUTPUT_CHUNK_BYTES (a page read back stays bounded). */
static void test_chunk_cap(void)
{
	int64_t id = running_job("w1");
	struct output_writer *w = open_writer(id, NULL, OUTPUT_BATCH_BYTES, 100000, 0, 0);
	size_t total = OUTPUT_BATCH_BYTES + 300 * 1024;
	unsigned char *in = malloc(total);
	struct rows r = { .same = true };
	bool more = true;

	for (size_t i = 0; i < total; i++)
		in[i] = (unsigned char)('A' + i % 23);
	for (size_t off = 0; off < total; off += 50000)
		if (output_write(w, OUTPUT_STDOUT, in + off, total - off < 50000 ? total - off : 50000))
			BAIL_OUT("output_write");
	ok(output_close(w) == 0, "close after %zu bytes in one stream", total);
	output_free(w);
	while (more)
		if (db_job_output(db, id, r.last_seq, 1000, 64 << 20, count_rows, &r, &more) != DB_OK)
			BAIL_OUT("db_job_output");
	ok(r.same && r.total == total && r.max <= OUTPUT_CHUNK_BYTES && r.n >= (int)(total / OUTPUT_CHUNK_BYTES),
	   "stored byte for byte in %d rows of at most %d bytes (largest %zu)", r.n, OUTPUT_CHUNK_BYTES, r.max);
	free(in);
}

/* Pages of output read back: at most the byte budget (the first chunk
 * whatever its size) and the chunk limit, saying when more follows; on
 * PostgreSQL the budget is applied in SQL (the rows left out never leave
 * the server). */
static void test_output_pages(void)
{
	int64_t id = running_job("w1");
	struct output_writer *w = open_writer(id, NULL, 100 * 1024, 100000, 0, 0);
	unsigned char *in = malloc(100 * 1024);
	struct rows r;
	bool more;

	for (size_t i = 0; i < 100 * 1024; i++)
		in[i] = (unsigned char)('A' + i % 23);
	/* Ten chunks of 100 KiB (each batch one chunk: batch_bytes 100 KiB). */
	for (int i = 0; i < 10; i++)
		if (output_write(w, OUTPUT_STDOUT, in, 100 * 1024))
			BAIL_OUT("output_write");
	if (output_close(w))
		BAIL_OUT("output_close");
	output_free(w);
	r = (struct rows){ .same = true };
	ok(db_job_output(db, id, 0, 500, 256 * 1024, count_rows, &r, &more) == DB_OK && r.n == 2 && more,
	   "a 256 KiB budget: two chunks of 100 KiB, more (%d chunks)", r.n);
	r = (struct rows){ .same = true };
	ok(db_job_output(db, id, 0, 500, 50 * 1024, count_rows, &r, &more) == DB_OK && r.n == 1 && more &&
	   r.total == 100 * 1024, "a budget smaller than a chunk: that one chunk, more (%d)", r.n);
	r = (struct rows){ .same = true };
	ok(db_job_output(db, id, 0, 3, 64 << 20, count_rows, &r, &more) == DB_OK && r.n == 3 && more,
	   "a limit of 3: three chunks, more (%d)", r.n);
	r = (struct rows){ .same = true, .last_seq = 8 };
	ok(db_job_output(db, id, 8, 500, 256 * 1024, count_rows, &r, &more) == DB_OK && r.n == 2 && !more,
	   "the last two: no more (%d)", r.n);
	free(in);
}

static void test_batches(void)
{
	int64_t id = running_job("w1");
	struct output_writer *w = open_writer(id, NULL, 1000, 100000, 0, 0);
	char in[2500];
	struct stored *s;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)('a' + i % 26);
	for (int i = 0; i < 10; i++)
		ok(output_write(w, OUTPUT_STDOUT, in + 250 * i, 250) == 0, "write %d of 250 bytes", i);
	s = read_output(id);
	ok(s->chunks == 2 && s->nout == 2000, "before the end: two full batches of 1000 bytes are stored (%d chunks, %zu bytes)",
	   s->chunks, s->nout);
	free(s);
	ok(output_close(w) == 0, "close");
	s = read_output(id);
	ok(s->in_order && s->chunks == 3 && s->last_seq == 3 && s->out_sizes[0] == 1000 && s->out_sizes[1] == 1000 &&
	   s->out_sizes[2] == 500, "three chunks: 1000, 1000 and the 500 left at the end, seqs 1..3");
	ok(s->nout == sizeof(in) && memcmp(s->out, in, sizeof(in)) == 0, "the output is stored byte for byte");
	is_int(job_bytes(id), 2500, "the job's stored-bytes counter");
	free(s);
	output_free(w);

	/* Streams apart, in order, in few transactions. */
	id = running_job("w1");
	w = open_writer(id, NULL, 4096, 100000, 0, 0);
	{
		char o[4000], e[4000];
		size_t no = 0, ne = 0;
		bool all = true;

		for (int i = 0; i < 200; i++) {
			char line[32];
			int n = snprintf(line, sizeof(line), "line %d\n", i);

			if (i % 3 == 0) {
				memcpy(e + ne, line, (size_t)n), ne += (size_t)n;
				all = all && output_write(w, OUTPUT_STDERR, line, (size_t)n) == 0;
			} else {
				memcpy(o + no, line, (size_t)n), no += (size_t)n;
				all = all && output_write(w, OUTPUT_STDOUT, line, (size_t)n) == 0;
			}
		}
		all = all && output_close(w) == 0;
		s = read_output(id);
		ok(all && s->in_order && s->nout == no && s->nerr == ne && memcmp(s->out, o, no) == 0 &&
		   memcmp(s->err, e, ne) == 0, "stdout and stderr interleaved: each stored apart, byte for byte, seqs consecutive");
		ok(s->chunks == 134, "a chunk per run of one stream (%d chunks for 200 lines)", s->chunks);
		free(s);
		output_free(w);
	}

	/* By time. */
	id = running_job("w1");
	w = open_writer(id, NULL, 1 << 15, 100, 0, 0);
	ok(output_write(w, OUTPUT_STDOUT, "early\n", 6) == 0 && output_tick(w) == 0, "a short line");
	s = read_output(id);
	ok(s->chunks == 0, "not stored before 100 ms");
	free(s);
	{
		struct timespec ts = { 0, 150 * 1000000L };

		nanosleep(&ts, NULL);
	}
	ok(output_tick(w) == 0, "tick after 150 ms");
	s = read_output(id);
	ok(s->chunks == 1 && s->nout == 6, "stored after 100 ms by the tick");
	free(s);
	output_close(w);
	output_free(w);
}

static void test_mask_and_offset(void)
{
	static const char secret[] = "hunter2-very-secret";
	struct mask_set *set = mask_set_new();
	int64_t id = running_job("w1");
	struct output_writer *w;
	struct stored *s;
	struct db_job j;
	char err[128];
	bool has = false;
	int64_t off = 0;

	ok(mask_set_add(set, secret, strlen(secret), err, sizeof(err)) == 0, "a secret to mask");
	w = open_writer(id, set, 1 << 15, 0, 0, 0);
	ok(output_write(w, OUTPUT_STDOUT, "pass=hunter2-ve", 15) == 0, "a write ending in half a secret (flushes at once: batch_ms 0)");
	output_mark(w, 15);
	ok(output_write(w, OUTPUT_STDERR, "x", 1) == 0, "a write to stderr, so a batch goes");
	output_mark(w, 16);
	if (db_job_get(db, id, 0, &j) == DB_OK) {
		has = j.has_output_offset;
		db_job_release(&j);
	}
	ok(!has, "no offset committed while bytes before it are held back by the masker");
	ok(output_write(w, OUTPUT_STDOUT, "ry-secret; ok\n", 14) == 0, "the rest of the secret");
	output_mark(w, 30);
	s = read_output(id);
	ok(strstr(s->out, "pass=") && !strstr(s->out, "hunter") && !strstr(s->out, "secret"),
	   "the stored part has no piece of the secret");
	free(s);
	if (db_job_get(db, id, 0, &j) == DB_OK) {
		has = j.has_output_offset;
		off = j.output_offset;
		db_job_release(&j);
	}
	ok(has && off == 30, "the batch that stored the held bytes committed the clean point after them (%lld)",
	   (long long)off);
	ok(output_write(w, OUTPUT_STDERR, "tail ghp_", 9) == 0, "stderr ends in a token's start");
	output_mark(w, 39);
	if (db_job_get(db, id, 0, &j) == DB_OK) {
		off = j.output_offset;
		db_job_release(&j);
	}
	ok(off == 30, "a mark while 'ghp_' is held back commits nothing new (%lld)", (long long)off);
	ok(output_close(w) == 0, "close");
	s = read_output(id);
	s->out[s->nout] = '\0';
	is_str(s->out, "pass=" MASK_REPLACEMENT "; ok\n", "stdout stored masked");
	ok(s->nerr == 10 && memcmp(s->err, "xtail ghp_", 10) == 0,
	   "stderr stored whole: the held start of a token that never came goes at the end");
	free(s);
	if (db_job_get(db, id, 0, &j) == DB_OK) {
		off = j.output_offset;
		db_job_release(&j);
	}
	ok(off == 39, "the last mark commits at close (%lld)", (long long)off);
	output_free(w);
	mask_set_free(set);
}

/* Reads the job's committed offset (-1: none). */
static int64_t job_offset(int64_t id)
{
	struct db_job j;
	int64_t off = -1;

	if (db_job_get(db, id, 0, &j) == DB_OK) {
		if (j.has_output_offset)
			off = j.output_offset;
		db_job_release(&j);
	}
	return off;
}

/* A producer that marks after every write (the relay's way): whenever a
 * batch has gone, what is stored ends exactly at the committed offset
 * (the writer's input here is never masked: output = input), and a
 * detach leaves the store exactly at it, whatever was held back. Writes
 * ending in 'g' (a token's possible start) are held by the masker, so
 * some marks are not clean. */
static void test_clean_points(void)
{
	int64_t id = running_job("w1"), pos = 0, off;
	struct output_writer *w = open_writer(id, NULL, 256, 1000000, 0, 0);
	struct stored *s;
	char piece[200];
	unsigned seed = 7;
	int checks = 0, exact = 0, unclean_marks = 0;

	for (int i = 0; i < 400; i++) {
		size_t len = 1 + (rand_r(&seed) % sizeof(piece));
		enum output_stream st = rand_r(&seed) % 3 ? OUTPUT_STDOUT : OUTPUT_STDERR;

		for (size_t k = 0; k < len; k++)
			piece[k] = "abc \n"[rand_r(&seed) % 5];
		if (rand_r(&seed) % 4 == 0) {
			piece[len - 1] = 'g';
			unclean_marks++;
		}
		if (output_write(w, st, piece, len) || output_mark(w, pos + (int64_t)len))
			BAIL_OUT("a write failed");
		pos += (int64_t)len;
		off = job_offset(id);
		if (off >= 0) {
			checks++;
			s = read_output(id);
			exact += (int64_t)(s->nout + s->nerr) == off;
			free(s);
		}
	}
	ok(checks > 50 && exact == checks, "after each of %d batches the store ends exactly at the committed offset "
	   "(%d exact)", checks, exact);
	ok(unclean_marks > 50 && output_unclean(w) == 0,
	   "%d marks were not clean (a byte held back), and no batch went without a clean point (%lld)",
	   unclean_marks, (long long)output_unclean(w));
	ok(output_write(w, OUTPUT_STDOUT, "tail g", 6) == 0 && output_mark(w, pos + 6) == 0,
	   "a last write ends held back");
	ok(output_detach(w) == 0, "detach");
	off = job_offset(id);
	s = read_output(id);
	ok(off == pos && (int64_t)(s->nout + s->nerr) == pos,
	   "detach stores up to the last clean point and commits it (%lld, %zu stored)", (long long)off,
	   s->nout + s->nerr);
	free(s);
	ok(output_write(w, OUTPUT_STDOUT, "x", 1) == -1, "a detached writer writes nothing more");
	output_free(w);
}

static void test_quotas(void)
{
	int64_t id = running_job("w1"), before = 0, after = 0, total;
	struct output_writer *w = open_writer(id, NULL, 512, 100000, 1000, 0);
	char in[3000], want[128];
	struct stored *s;
	bool all = true;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (char)('A' + i % 23);
	for (size_t i = 0; i < sizeof(in); i += 7)
		all = all && output_write(w, i % 2 ? OUTPUT_STDERR : OUTPUT_STDOUT, in + i,
					  sizeof(in) - i < 7 ? sizeof(in) - i : 7) == 0;
	ok(all && output_close(w) == 0, "3000 bytes written to a job with a 1000-byte quota");
	s = read_output(id);
	is_int(s->nout + s->nerr, 1000, "exactly 1000 bytes of stdout and stderr stored");
	snprintf(want, sizeof(want), "output limit reached: 2000 bytes were not stored (a job stores at most 1000 bytes)\n");
	is_str(s->sys, want, "one system line says exactly how many bytes were dropped");
	is_int(output_dropped(w), 2000, "output_dropped agrees");
	is_int(job_bytes(id), 1000 + (int64_t)strlen(want), "the job's counter has what was stored, the line included");
	free(s);
	output_free(w);

	/* A second attempt of the job (a new writer) has no more room. */
	w = open_writer(id, NULL, 512, 100000, 1000, 0);
	ok(output_write(w, OUTPUT_STDOUT, "again\n", 6) == 0 && output_close(w) == 0, "a new writer on the same job");
	s = read_output(id);
	is_int(s->nout + s->nerr, 1000, "an earlier attempt's output counts: nothing more is stored");
	ok(strstr(s->sys, "6 bytes were not stored") != NULL, "and the new writer says so");
	free(s);
	output_free(w);

	/* The user's quota: what the user's jobs stored so far, plus 300. */
	ok(db_user_output_bytes(db, user_id, &before) == DB_OK && before > 0, "the user has %lld bytes stored", (long long)before);
	id = running_job("w1");
	w = open_writer(id, NULL, 128, 100000, 0, before + 300);
	for (int i = 0; i < 20; i++)
		all = all && output_write(w, OUTPUT_STDOUT, in, 50) == 0;
	ok(all && output_close(w) == 0, "a job writes 1000 bytes with 300 left of its user's quota");
	s = read_output(id);
	is_int(s->nout, 300, "300 bytes stored");
	snprintf(want, sizeof(want), "output limit reached: 700 bytes were not stored (your jobs' stored output is at "
		 "its limit of %lld bytes)\n", (long long)(before + 300));
	is_str(s->sys, want, "the line says it was the user's quota");
	free(s);
	output_free(w);
	id = running_job("w1");
	w = open_writer(id, NULL, 128, 100000, 0, before + 300);
	ok(output_write(w, OUTPUT_STDOUT, "more\n", 5) == 0 && output_close(w) == 0, "the next job of that user");
	s = read_output(id);
	ok(s->nout == 0 && strstr(s->sys, "5 bytes were not stored"), "stores nothing, and says so");
	free(s);
	output_free(w);

	/* The counter is the sum of the user's jobs, and purges keep it so. */
	{
		static struct query q_sum = QUERY("test.sum", "SELECT CAST(coalesce(sum(output_bytes), 0) AS BIGINT) FROM jobs WHERE user_id = ?1");
		static struct query q_bytes = QUERY("test.bytes",
			"SELECT coalesce(sum(length(data)), 0) FROM job_output JOIN jobs ON jobs.id = job_id WHERE user_id = ?1");
		static struct query q_bytes_pg = QUERY("test.bytes_pg",
			"SELECT coalesce(sum(octet_length(data)), 0)::bigint FROM job_output JOIN jobs ON jobs.id = job_id WHERE user_id = ?1");
		struct stmt *st = q_start(db, &q_sum);
		int64_t sum = -1, rows = -2, purged = 0;

		q_int(st, 1, user_id);
		if (q_row(st) == DB_OK)
			sum = q_i64(st, 0);
		q_end(st);
		st = q_start(db, db_is_pg(db) ? &q_bytes_pg : &q_bytes);
		q_int(st, 1, user_id);
		if (q_row(st) == DB_OK)
			rows = q_i64(st, 0);
		q_end(st);
		db_user_output_bytes(db, user_id, &total);
		ok(total == sum && sum == rows, "user counter %lld = sum of jobs' counters %lld = bytes in job_output %lld",
		   (long long)total, (long long)sum, (long long)rows);
		/* Finish the quota job and purge it alone. */
		ok(db_job_finish(db, id, "w1", JOB_SUCCEEDED, true, 0, NULL, now) == DB_OK, "a job ends");
		before = job_bytes(id);
		ok(db_job_purge(db, now + 1, 1, &purged) == DB_OK && purged == 1, "the retention purge takes one job");
		db_user_output_bytes(db, user_id, &after);
		is_int(after, total - before, "its bytes came off the user's counter in the same transaction");
	}
}

static void test_lost_and_memory(void)
{
	int64_t id = running_job("w1");
	struct output_writer *w = open_writer(id, NULL, 1 << 15, 100000, 0, 0);
	char *chunk = malloc(65536);
	size_t heap_warm = 0, heap_max = 0;
	int64_t total = 32LL << 20, done = 0, r;
	bool all = true;

	for (int i = 0; i < 65536; i++)
		chunk[i] = (char)(' ' + i % 90);
	while (done < total && all) {
		size_t n = 1 + (size_t)(done * 7919 % 65535);

		all = output_write(w, done % 3 ? OUTPUT_STDOUT : OUTPUT_STDERR, chunk, n) == 0;
		done += (int64_t)n;
		if (!heap_warm && done >= (4LL << 20))
			heap_warm = mallinfo2().uordblks;
		if (heap_warm && mallinfo2().uordblks > heap_max)
			heap_max = mallinfo2().uordblks;
	}
	ok(all && output_close(w) == 0, "32 MB written");
	is_int(job_bytes(id), done, "all of it stored");
	ok(heap_max < heap_warm + 256 * 1024, "the heap in use stayed flat after the first 4 MB (%zu -> at most %zu bytes)",
	   heap_warm, heap_max);
	output_free(w);
	free(chunk);

	id = running_job("w1");
	w = open_writer(id, NULL, 64, 100000, 0, 0);
	ok(output_write(w, OUTPUT_STDOUT, "mine\n", 5) == 0, "a write while holding the lease");
	{
		struct db_job j;

		/* The job goes back to the queue and another worker takes it. */
		ok(db_job_release_lease(db, id, "w1") == DB_OK &&
		   db_job_claim_next(db, "w2", now, 3600, 0, "echo", &j) == DB_OK && j.id == id, "another worker takes the job");
		db_job_release(&j);
	}
	all = true;
	for (int i = 0; i < 100 && all; i++)
		all = output_write(w, OUTPUT_STDOUT, "0123456789", 10) == 0;
	ok(!all && output_lost(w), "the next batch fails: the lease is lost");
	r = output_write(w, OUTPUT_STDOUT, "x", 1);
	ok(r == -1 && output_close(w) == -1, "and everything after fails too");
	{
		struct stored *s = read_output(id);

		is_int(s->nout, 0, "nothing was written under the other worker's lease, not even what was buffered before");
		free(s);
	}
	output_free(w);
}

/* Makes every insert of job's output fail (a database that refuses the
 * write), or with job 0 drops that again. */
static void refuse_output(int64_t job)
{
	char sql[512];

	if (strcmp(db_dialect(db), "sqlite") == 0)
		snprintf(sql, sizeof(sql), job ? "CREATE TRIGGER t_refuse BEFORE INSERT ON job_output WHEN NEW.job_id = "
			 "%lld BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" : "DROP TRIGGER t_refuse",
			 (long long)job);
	else
		snprintf(sql, sizeof(sql), job ? "CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS "
			 "$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; CREATE TRIGGER t_refuse BEFORE "
			 "INSERT ON job_output FOR EACH ROW WHEN (NEW.job_id = %lld) EXECUTE FUNCTION t_refuse()" :
			 "DROP TRIGGER t_refuse ON job_output; DROP FUNCTION t_refuse()", (long long)job);
	if (db_exec(db, sql) != DB_OK)
		BAIL_OUT("cannot %s the refusing trigger", job ? "make" : "drop");
}

/* With a writer thread: many small batches, committed on the thread's
 * connection while the job's own renews its lease (both write: on SQLite
 * they take turns at the lock), arrive in order, byte for byte, each
 * stream apart, with the last mark committed; a detach waits for the
 * batch in flight; a batch the database refuses fails the writer (the
 * call after it, and close), and nothing after it is written. */
static void test_thread(void)
{
	int64_t id = running_job("w1"), pos = 0;
	struct output_writer *w = open_writer(id, NULL, 1024, 1000000, 0, 0);
	char o[40000], e[40000], line[32];
	size_t no = 0, ne = 0;
	struct stored *s;
	bool all = true, cancel;
	int renewed = 0, r;

	for (int i = 0; all && i < 4000; i++) {
		bool err = i % 3 == 0;
		int n = snprintf(line, sizeof(line), "%c%07d\n", err ? 'e' : 'o', i);

		memcpy(err ? e + ne : o + no, line, (size_t)n);
		*(err ? &ne : &no) += (size_t)n;
		pos += n;
		all = output_write(w, err ? OUTPUT_STDERR : OUTPUT_STDOUT, line, (size_t)n) == 0 &&
		      output_mark(w, pos) == 0;
		if (i % 50 == 0)
			renewed += db_job_renew(db, id, "w1", now, 3600, &cancel) == DB_OK;
	}
	ok(all && renewed == 80, "4000 lines written and marked, the lease renewed 80 times meanwhile (%d)", renewed);
	ok(output_close(w) == 0, "close: everything committed");
	s = read_output(id);
	ok(s->in_order && s->chunks > 100, "%d chunks, seqs consecutive", s->chunks);
	ok(s->nout == no && memcmp(s->out, o, no) == 0 && s->nerr == ne && memcmp(s->err, e, ne) == 0,
	   "each stream stored byte for byte, in order (%zu and %zu bytes)", s->nout, s->nerr);
	is_int(job_offset(id), pos, "the last mark is committed");
	free(s);
	output_free(w);

	id = running_job("w1");
	w = open_writer(id, NULL, 1024, 1000000, 0, 0);
	for (int i = 0; i < 300; i++)
		if (output_write(w, OUTPUT_STDOUT, "0123456789abcdef", 16) || output_mark(w, 16 * (i + 1)))
			BAIL_OUT("a write failed");
	ok(output_detach(w) == 0, "detach after 4800 bytes");
	s = read_output(id);
	ok(job_offset(id) == (int64_t)s->nout && s->nout > 3000,
	   "the store ends exactly at the committed offset once detach returns (%zu)", s->nout);
	free(s);
	output_free(w);

	id = running_job("w1");
	w = open_writer(id, NULL, 1024, 1000000, 0, 0);
	refuse_output(id);
	all = true;
	/* 4800 bytes: a second batch is due, and waits for the first. */
	for (int i = 0; i < 300 && all; i++)
		all = output_write(w, OUTPUT_STDOUT, "0123456789abcdef", 16) == 0 && output_mark(w, 16 * (i + 1)) == 0;
	ok(!all && !output_lost(w), "a batch the database refuses fails a later call (not as a lost lease)");
	r = output_write(w, OUTPUT_STDOUT, "x", 1);
	ok(r == -1 && output_close(w) == -1, "and everything after fails too, close included");
	refuse_output(0);
	s = read_output(id);
	is_int(s->nout, 0, "nothing of that job was stored");
	free(s);
	output_free(w);

	/* A batch in flight when the writer is freed (a lost job's way out)
	 * is committed, not torn. */
	id = running_job("w1");
	w = open_writer(id, NULL, 1024, 1000000, 0, 0);
	for (int i = 0; i < 80; i++)
		if (output_write(w, OUTPUT_STDOUT, "0123456789abcdef", 16))
			BAIL_OUT("a write failed");
	output_free(w);
	s = read_output(id);
	ok(s->in_order && s->nout == 1024, "free: the batch handed over is stored whole (%zu bytes)", s->nout);
	free(s);
}

int main(void)
{
	char dir[] = "/tmp/anyon-test-output-XXXXXX", target[512], err[256];
	const char *pg = getenv("ANYON_TEST_PG_URI"), *backend = getenv("ANYON_TEST_BACKEND");
	struct db_user u;

	config_load_global();
	ok(mkdtemp(dir) != NULL, "scratch dir");
	if (backend && strcmp(backend, "pg") == 0 && !(pg && *pg))
		BAIL_OUT("ANYON_TEST_BACKEND=pg but ANYON_TEST_PG_URI is not set");
	if (pg && *pg) {
		/* A schema of its own: test-db and test-secrets wipe the
		 * database's public schema, and make check runs them alongside. */
		snprintf(target, sizeof(target), "%s%coptions=-csearch_path%%3Dt_unit_output", pg,
			 strchr(pg, '?') ? '&' : '?');
		db = db_open(target, false, err, sizeof(err));
		ok(db && db_exec(db, "DROP SCHEMA IF EXISTS t_unit_output CASCADE; CREATE SCHEMA t_unit_output;") == DB_OK,
		   "PostgreSQL test schema made afresh");
		db_close(db);
	} else {
		snprintf(target, sizeof(target), "%s/t.db", dir);
	}
	diag("backend: %s", pg && *pg ? "postgresql" : "sqlite");
	db = db_open(target, true, err, sizeof(err));
	if (!db)
		BAIL_OUT("%s", err);
	if (db_user_local(db, &u))
		BAIL_OUT("no local user");
	user_id = u.id;
	test_batches();
	test_chunk_cap();
	test_output_pages();
	test_mask_and_offset();
	test_clean_points();
	test_quotas();
	test_lost_and_memory();
	/* Again with a writer thread, where timing does not decide what the
	 * checks see. */
	threaded = true;
	diag("with a writer thread");
	test_quotas();
	test_lost_and_memory();
	test_thread();
	db_close(db);
	if (!pg || !*pg) {
		char path[600];

		snprintf(path, sizeof(path), "%s/t.db", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/t.db-wal", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/t.db-shm", dir);
		unlink(path);
	}
	rmdir(dir);
	return done_testing();
}
