-- 005: a per-job output counter, so appending a chunk numbers it by
-- bumping the job row (which serializes appenders on every engine)
-- instead of reading max(seq).
ALTER TABLE jobs ADD COLUMN output_seq BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET output_seq = coalesce((SELECT max(seq) FROM job_output WHERE job_id = jobs.id), 0);
