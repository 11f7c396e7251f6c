-- 009: why a user was let in, for users admitted by an org:NAME entry of
-- ANYON_ALLOWED_GITHUB (allow_org) or made admin by one of
-- ANYON_ADMIN_GITHUB (admin_org); NULL or no row: by a plain entry, never
-- checked with GitHub again. The worker re-checks the membership of users
-- with sessions whose checked_at is older than ANYON_ORG_RECHECK_S.
CREATE TABLE user_admission (
	user_id     BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	allow_org   TEXT,
	admin_org   TEXT,
	checked_at  BIGINT NOT NULL
);
CREATE INDEX user_admission_checked ON user_admission (checked_at);
