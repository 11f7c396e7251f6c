-- 007: the browser a session was made from (its User-Agent, bounded), so
-- a user can tell their sessions apart in Settings -> Sessions.
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
