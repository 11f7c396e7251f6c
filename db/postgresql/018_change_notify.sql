-- 018: every committed write of anyon's tables notifies the channel
-- anyon_changes (db.h DB_CHANGES_CHANNEL).
--
-- The FastCGI pool keeps answers of its hot reads for a moment
-- (fcgi/cache.c); each child listens on this channel and forgets them all
-- when a notification comes, so a change made elsewhere (the worker,
-- anyonctl, the pool of another host) is not answered stale. One
-- statement-level trigger per table; notifications of one transaction
-- with the same payload are folded into one by the server, delivered at
-- commit, never for a rolled-back one. A table added later gets the same
-- trigger in its migration (t/unit/test-db.c checks every table has it).
CREATE FUNCTION anyon_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('anyon_changes', '');
	RETURN NULL;
END $$;

DO $$
DECLARE t record;
BEGIN
	FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
		AND tablename <> 'schema_migrations' ORDER BY tablename
	LOOP
		EXECUTE format('CREATE TRIGGER anyon_changes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE '
			'ON %I FOR EACH STATEMENT EXECUTE FUNCTION anyon_notify_change()', t.tablename);
	END LOOP;
END $$;
