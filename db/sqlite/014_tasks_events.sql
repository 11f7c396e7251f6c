-- 014: tasks on a project's board, and the per-user change feed.
--
-- A task's place in its column is `position`, an integer key unique within
-- (project, status). New keys leave gaps (services/tasks.c: TASK_GAP), so a
-- move writes one row; when two neighbours leave no room between them the
-- column is renumbered in the same transaction. Titles count characters,
-- descriptions bytes.
CREATE TABLE tasks (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	title        TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
	description  TEXT NOT NULL DEFAULT '' CHECK (length(CAST(description AS BLOB)) <= 65536),
	status       TEXT NOT NULL CHECK (status IN ('todo', 'inprogress', 'inreview', 'done', 'cancelled')),
	position     INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
-- A project's board, column by column in order; no two tasks share a place.
CREATE UNIQUE INDEX tasks_column ON tasks (project_id, status, position);
CREATE INDEX tasks_user ON tasks (user_id);

-- One row per change a user's browser should hear of, written in the same
-- transaction as the change. Ids only grow (AUTOINCREMENT: never reused,
-- not even after retention empties the table), and one user's writes are
-- serialized (BEGIN IMMEDIATE), so `after=N` never skips a row. project_id
-- is a plain number: the event outlives its project.
CREATE TABLE events (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	kind         TEXT NOT NULL,
	subject      INTEGER NOT NULL,
	project_id   INTEGER,
	created_at   INTEGER NOT NULL
);
CREATE INDEX events_user ON events (user_id, id);
CREATE INDEX events_created ON events (created_at);
