-- 003: GitHub identities, device-flow state per session, projects.

ALTER TABLE users ADD COLUMN github_id INTEGER;
ALTER TABLE users ADD COLUMN github_login TEXT;
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar_url TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_github_id ON users (github_id) WHERE github_id IS NOT NULL;

-- One row per device flow. Any FastCGI process can serve any poll, and a
-- flow belongs to the session that started it. The device code is sealed
-- (AES-256-GCM, AAD bound to the flow) like every other secret.
CREATE TABLE device_flows (
	id               TEXT PRIMARY KEY,
	session_id       INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	remote_addr      TEXT NOT NULL DEFAULT '',
	key_id           TEXT NOT NULL,
	code_nonce       BLOB NOT NULL,
	code_ciphertext  BLOB NOT NULL,
	code_tag         BLOB NOT NULL,
	user_code        TEXT NOT NULL,
	verification_uri TEXT NOT NULL,
	interval_s       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	next_poll_at     INTEGER NOT NULL,
	status           TEXT NOT NULL DEFAULT 'pending'
	                 CHECK (status IN ('pending', 'complete', 'expired', 'denied', 'error')),
	message          TEXT NOT NULL DEFAULT '',
	user_id          INTEGER REFERENCES users(id) ON DELETE SET NULL,
	created_at       INTEGER NOT NULL
);
CREATE INDEX device_flows_session ON device_flows (session_id, created_at);
CREATE INDEX device_flows_addr ON device_flows (remote_addr, created_at);

CREATE TABLE projects (
	id                 INTEGER PRIMARY KEY,
	user_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name               TEXT NOT NULL,
	github_full_name   TEXT,
	clone_url          TEXT NOT NULL DEFAULT '',
	default_branch     TEXT NOT NULL DEFAULT '',
	private            INTEGER NOT NULL DEFAULT 0,
	description        TEXT NOT NULL DEFAULT '',
	created_at         INTEGER NOT NULL,
	UNIQUE (user_id, github_full_name)
);
