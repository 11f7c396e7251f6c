-- 008: an entry of ANYON_ALLOWED_GITHUB or ANYON_ADMIN_GITHUB binds to the
-- GitHub account (numeric id) that first signs in with that login, so a
-- renamed account keeps its access and whoever registers the old login
-- later does not get it.
CREATE TABLE access_bindings (
	list       TEXT NOT NULL CHECK (list IN ('allow', 'admin')),
	entry      TEXT NOT NULL,
	github_id  BIGINT NOT NULL,
	bound_at   BIGINT NOT NULL,
	PRIMARY KEY (list, entry)
);
