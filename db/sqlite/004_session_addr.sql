-- 004: where each session was created, to cap new sessions per address.
ALTER TABLE sessions ADD COLUMN created_addr TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_created_addr ON sessions (created_addr, created_at);
