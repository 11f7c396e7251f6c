-- 013: a container job's container (worker/job_container.c): its id,
-- when it started and ended, its exit status and whether the kernel's
-- OOM killer ended it.
ALTER TABLE jobs ADD COLUMN container_id TEXT;
ALTER TABLE jobs ADD COLUMN container_started_at INTEGER;
ALTER TABLE jobs ADD COLUMN container_ended_at INTEGER;
ALTER TABLE jobs ADD COLUMN container_exit INTEGER;
ALTER TABLE jobs ADD COLUMN container_oom INTEGER NOT NULL DEFAULT 0;
