-- 017: the Claude sign-in from the browser (issue 11).
--
-- claude_login_inputs: what the user typed for a login (a claude_login
-- job), waiting for the worker to hand it to the CLI's stdin, in id order.
-- Sealed like a secret (key_id, nonce, ciphertext, tag; the AAD binds user
-- and job); the worker deletes a row once delivered.
CREATE TABLE claude_login_inputs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id       INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	key_id       TEXT NOT NULL,
	nonce        BLOB NOT NULL,
	ciphertext   BLOB NOT NULL,
	tag          BLOB NOT NULL,
	created_at   INTEGER NOT NULL
);
CREATE INDEX claude_login_inputs_job ON claude_login_inputs(job_id, id);

-- claude_auth: how the user's claude_credential came (setup-token or
-- interactive) and the last sign-in's failure, for GET /api/auth/claude/status.
CREATE TABLE claude_auth (
	user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
	method       TEXT NOT NULL DEFAULT '',
	last_error   TEXT,
	updated_at   INTEGER NOT NULL
);

-- The Claude CLI of the agent image as each worker found it at start
-- (`claude --version`): its version, or why it is missing or broken.
ALTER TABLE workers ADD COLUMN claude_version TEXT;
ALTER TABLE workers ADD COLUMN claude_error TEXT;
