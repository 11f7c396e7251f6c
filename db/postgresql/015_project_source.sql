-- 015: where a project comes from and its settings (services/projects.c).
-- source: 'github' (imported; clone_url and github_full_name say where),
-- 'path' (a git repository on the server) or 'url' (a git URL); location:
-- the path or URL (NULL for GitHub rows). base_branch: the branch work
-- starts from (the repository's default branch unless changed);
-- setup_script: run before the agent; default_executor: what runs a task.
ALTER TABLE projects ADD COLUMN source TEXT NOT NULL DEFAULT 'github';
ALTER TABLE projects ADD COLUMN location TEXT;
ALTER TABLE projects ADD COLUMN base_branch TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN setup_script TEXT NOT NULL DEFAULT '';
ALTER TABLE projects ADD COLUMN default_executor TEXT NOT NULL DEFAULT 'claude';
UPDATE projects SET base_branch = default_branch;
-- one project per path or URL and user (GitHub rows: UNIQUE (user_id, github_full_name))
CREATE UNIQUE INDEX projects_location ON projects (user_id, source, location);
