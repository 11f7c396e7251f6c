-- 001: users, sessions, jobs with ordered output, worker heartbeats.
-- Times are integer seconds since the epoch.

CREATE TABLE users (
	id          INTEGER PRIMARY KEY,
	login       TEXT NOT NULL UNIQUE,
	name        TEXT NOT NULL DEFAULT '',
	is_admin    INTEGER NOT NULL DEFAULT 0,
	is_local    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

-- The implicit user of local (non-cloud) mode.
INSERT INTO users (id, login, name, is_admin, is_local, created_at, updated_at)
VALUES (1, 'local', 'Local user', 1, 1, unixepoch(), unixepoch());

-- Only the SHA-256 of the session token is kept.
CREATE TABLE sessions (
	id           INTEGER PRIMARY KEY,
	token_hash   BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	user_id      INTEGER REFERENCES users(id) ON DELETE CASCADE,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE jobs (
	id               INTEGER PRIMARY KEY,
	user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind             TEXT NOT NULL,
	args             TEXT NOT NULL DEFAULT '{}',
	state            TEXT NOT NULL DEFAULT 'queued'
	                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	attempts         INTEGER NOT NULL DEFAULT 0,
	max_attempts     INTEGER NOT NULL DEFAULT 3,
	lease_owner      TEXT,
	lease_expires_at INTEGER,
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	exit_code        INTEGER,
	error            TEXT,
	created_at       INTEGER NOT NULL,
	started_at       INTEGER,
	finished_at      INTEGER
);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_user ON jobs (user_id, id);

CREATE TABLE job_output (
	job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	seq        INTEGER NOT NULL,
	stream     TEXT NOT NULL CHECK (stream IN ('stdout', 'stderr', 'system')),
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE workers (
	id             TEXT PRIMARY KEY,
	host           TEXT NOT NULL,
	pid            INTEGER NOT NULL,
	started_at     INTEGER NOT NULL,
	heartbeat_at   INTEGER NOT NULL,
	docker_ok      INTEGER NOT NULL DEFAULT 0,
	docker_version TEXT,
	stopped_at     INTEGER
);
