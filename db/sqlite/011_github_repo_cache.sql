-- 011: a session's GitHub repository list, as walked for a search
-- (services/github_repos.c), reused for ANYON_GITHUB_REPO_CACHE_S. One row
-- per session: signing out, revoking a session or offboarding a user
-- deletes the session and with it, by the foreign key, the cached list.
-- The worker's retention pass purges rows older than the TTL.
CREATE TABLE github_repo_cache (
	session_id  INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
	user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	fetched_at  INTEGER NOT NULL,
	truncated   INTEGER NOT NULL DEFAULT 0,
	repos       TEXT NOT NULL
);
CREATE INDEX github_repo_cache_user ON github_repo_cache (user_id);
CREATE INDEX github_repo_cache_fetched ON github_repo_cache (fetched_at);
