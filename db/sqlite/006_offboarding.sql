-- 006: offboarding. A user can be disabled, and can be made admin by
-- anyonctl (admin_grant) besides the ANYON_ADMIN_GITHUB list: is_admin is
-- recomputed from both at every start. A session remembers the mode it
-- was made in (cloud 0/1), so one made in local mode is refused in cloud
-- mode and the reverse.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN admin_grant INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cloud INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET cloud = CASE WHEN user_id IN (SELECT id FROM users WHERE is_local = 1) THEN 0 ELSE 1 END;
