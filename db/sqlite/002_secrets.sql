-- 002: the secret store and the audit log.

-- One row per (user, kind). The plaintext is never here: ciphertext, nonce
-- and tag of AES-256-GCM under key key_id (which lives outside the
-- database), with the AAD binding it to user, kind and row id.
CREATE TABLE secrets (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind         TEXT NOT NULL,
	key_id       TEXT NOT NULL,
	nonce        BLOB NOT NULL CHECK (length(nonce) = 12),
	ciphertext   BLOB NOT NULL,
	tag          BLOB NOT NULL CHECK (length(tag) = 16),
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	last_used_at INTEGER,
	expires_at   INTEGER,
	invalid      INTEGER NOT NULL DEFAULT 0,
	UNIQUE (user_id, kind)
);
CREATE INDEX secrets_key ON secrets (key_id);

-- What happened to secrets, keys and sign-ins. Never a secret value.
CREATE TABLE audit (
	id         INTEGER PRIMARY KEY,
	at         INTEGER NOT NULL,
	user_id    INTEGER,
	session_id INTEGER,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
	detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_user ON audit (user_id, id);
CREATE INDEX audit_at ON audit (at);
