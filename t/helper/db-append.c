/* db-append - benchmark helper: job-output append throughput of the data
 * layer on whatever ANYON_DB names (a SQLite path or a PostgreSQL URI).
 *   db-append ROWS BYTES [PER_TX]
 *                          appends ROWS chunks of BYTES each to one job,
 *                          PER_TX chunks per transaction (default: as many
 *                          as fill the worker's 128 KiB output batch, at
 *                          least one), then prints "rows/s MB/s seconds"
 * The database must be scratch: it gets a user's job and its output. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"
#include "services/jobs.h"
#include "services/output.h"

int main(int argc, char **argv)
{
	char err[256], *chunk;
	int64_t rows, bytes, per_tx, id, t0, ms;
	struct db_chunk_in *batch;
	struct db_user u;
	struct db_job job;
	struct db *db;

	log_init("db-append");
	config_load_global();
	if ((argc != 3 && argc != 4) || parse_i64(argv[1], 1, 10000000, &rows) ||
	    parse_i64(argv[2], 1, 1 << 20, &bytes) || (argc == 4 && parse_i64(argv[3], 1, 4096, &per_tx)))
		die("usage: db-append ROWS BYTES [PER_TX]");
	if (argc == 3)
		per_tx = bytes < OUTPUT_BATCH_BYTES ? OUTPUT_BATCH_BYTES / bytes : 1;
	db = db_open(g_config.db_path, true, err, sizeof(err));
	if (!db)
		die("%s", err);
	chunk = malloc((size_t)bytes);
	batch = calloc((size_t)per_tx, sizeof(*batch));
	if (!chunk || !batch)
		die("out of memory");
	for (int64_t i = 0; i < bytes; i++)
		chunk[i] = (char)('a' + i % 26);
	if (db_user_local(db, &u) || db_job_create(db, u.id, "echo", "{}", 1, now_s(), &id) ||
	    jobs_claim(db, "bench", now_s(), 3600, 0, ~0u, &job))
		die("cannot set up a job to append to");
	db_job_release(&job);
	t0 = mono_ms();
	for (int64_t i = 0; i < per_tx; i++)
		batch[i] = (struct db_chunk_in){ "stdout", chunk, (size_t)bytes };
	for (int64_t i = 0; i < rows; i += per_tx) {
		int64_t offset = i, n = rows - i < per_tx ? rows - i : per_tx;

		if (db_job_append_batch(db, id, "bench", batch, (size_t)n, &offset, now_s(), NULL, NULL))
			die("append %lld failed", (long long)i);
	}
	ms = mono_ms() - t0;
	if (ms < 1)
		ms = 1;
	printf("%.0f %.2f %.3f\n", rows * 1000.0 / ms, rows * bytes * 1000.0 / ms / 1e6, ms / 1000.0);
	db_job_finish(db, id, "bench", JOB_SUCCEEDED, true, 0, NULL, now_s());
	free(chunk);
	free(batch);
	db_close(db);
	return 0;
}
