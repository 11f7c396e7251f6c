-- 012: bookkeeping for batched output. output_offset: the producer's
-- opaque position, committed with each batch of chunks (a restarted
-- worker resumes after it). output_bytes: bytes of output stored, per job
-- and per user, kept in the transactions that append and purge, for the
-- per-job and per-user output quotas.
ALTER TABLE jobs ADD COLUMN output_offset INTEGER;
ALTER TABLE jobs ADD COLUMN output_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN output_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET output_bytes =
	coalesce((SELECT sum(length(CAST(data AS BLOB))) FROM job_output WHERE job_id = jobs.id), 0);
UPDATE users SET output_bytes = coalesce((SELECT sum(output_bytes) FROM jobs WHERE user_id = users.id), 0);
