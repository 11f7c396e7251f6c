-- 016: attempts - a task's runs of an executor in a container (services/attempts.h).
--
-- executors: what may run a task, one row each (adding one is a row).
-- command and resume are JSON arrays of strings ("{prompt}" and "{session}"
-- are filled in by the runner); parser says how its output reads;
-- credential is the secret kind it needs ('' none). Seeded here; copy-db
-- replaces the target's rows with the source's.
CREATE TABLE executors (
	name         TEXT PRIMARY KEY,
	label        TEXT NOT NULL,
	command      TEXT NOT NULL,
	resume       TEXT,
	parser       TEXT NOT NULL CHECK (parser IN ('claude-stream-json', 'text')),
	credential   TEXT NOT NULL DEFAULT '',
	position     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO executors (name, label, command, resume, parser, credential, position) VALUES
	('claude', 'Claude Code', '["claude","-p","{prompt}","--output-format","stream-json","--verbose"]',
	 '["--resume","{session}"]', 'claude-stream-json', 'claude_credential', 1),
	('script', 'Shell script', '["sh","-c","{prompt}"]', NULL, 'text', '', 2);

-- One attempt: a branch anyon/<8 hex> (unique per user) made from
-- base_branch, its state following its runs. executor is a plain name: an
-- attempt outlives a removed executor row. pr_state: pending (asked),
-- open, closed, merged, or failed (pr_error says why). pr_title/pr_body: what a
-- requested pull request says (NULL: the defaults).
CREATE TABLE attempts (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	task_id      INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
	executor     TEXT NOT NULL,
	base_branch  TEXT NOT NULL,
	branch       TEXT NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'failed', 'stopped')),
	error        TEXT,
	error_code   TEXT,
	session_id   TEXT,
	base_commit  TEXT,
	head_commit  TEXT,
	pr_url       TEXT,
	pr_number    INTEGER,
	pr_state     TEXT,
	pr_title     TEXT,
	pr_body      TEXT,
	pr_error     TEXT,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX attempts_branch ON attempts (user_id, branch);
CREATE INDEX attempts_task ON attempts (task_id, id);
CREATE INDEX attempts_project ON attempts (project_id);

-- One run of an attempt (seq 1 the first, then follow-ups), each one job
-- of kind "attempt". job_id goes NULL when retention purges the job.
CREATE TABLE attempt_runs (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	attempt_id   INTEGER NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	seq          INTEGER NOT NULL,
	prompt       TEXT NOT NULL,
	job_id       INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
	state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'failed', 'stopped')),
	exit_code    INTEGER,
	created_at   INTEGER NOT NULL,
	finished_at  INTEGER
);
CREATE UNIQUE INDEX attempt_runs_seq ON attempt_runs (attempt_id, seq);
CREATE INDEX attempt_runs_job ON attempt_runs (job_id);

-- The attempt branch's diff against its base, as stored by the worker
-- (JSON, services/mirror.h), with its totals.
CREATE TABLE attempt_diffs (
	attempt_id   INTEGER PRIMARY KEY REFERENCES attempts(id) ON DELETE CASCADE,
	diff         TEXT NOT NULL,
	files        INTEGER NOT NULL,
	additions    INTEGER NOT NULL,
	deletions    INTEGER NOT NULL,
	created_at   INTEGER NOT NULL
);
