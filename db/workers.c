/* workers.c - worker heartbeats (what /api/health reports). */
#include "autoconfig.h"

#include "db/query.h"

static struct query q_beat = QUERY("worker.heartbeat",
	"INSERT INTO workers (id, host, pid, started_at, heartbeat_at, docker_ok, docker_version) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET "
	"heartbeat_at = excluded.heartbeat_at, docker_ok = excluded.docker_ok, "
	"docker_version = excluded.docker_version, stopped_at = NULL");
static struct query q_stopped = QUERY("worker.stopped",
	"UPDATE workers SET stopped_at = ?2 WHERE id = ?1");
static struct query q_latest = QUERY("worker.latest",
	"SELECT heartbeat_at, docker_ok FROM workers ORDER BY heartbeat_at DESC LIMIT 1");

int db_worker_heartbeat(struct db *db, const char *id, const char *host, int pid,
			int64_t started_at, int64_t now, bool docker_ok,
			const char *docker_version)
{
	struct stmt *s = q_start(db, &q_beat);

	q_text(s, 1, id);
	q_text(s, 2, host);
	q_int(s, 3, pid);
	q_int(s, 4, started_at);
	q_int(s, 5, now);
	q_bool(s, 6, docker_ok);
	q_text_or_null(s, 7, docker_version);
	return q_exec(s, NULL);
}

int db_worker_stopped(struct db *db, const char *id, int64_t now)
{
	struct stmt *s = q_start(db, &q_stopped);

	q_text(s, 1, id);
	q_int(s, 2, now);
	return q_exec(s, NULL);
}

static struct query q_docker_any = QUERY("worker.docker_any",
	"SELECT EXISTS (SELECT 1 FROM workers WHERE heartbeat_at >= ?1 AND stopped_at IS NULL "
	"AND docker_ok <> 0)");

int db_worker_docker_any(struct db *db, int64_t since, bool *yes)
{
	struct stmt *s = q_start(db, &q_docker_any);
	int rc;

	q_int(s, 1, since);
	rc = q_row(s);
	if (rc == DB_OK)
		*yes = q_i64(s, 0) != 0;
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

int db_worker_latest(struct db *db, int64_t *heartbeat_at, bool *docker_ok)
{
	struct stmt *s = q_start(db, &q_latest);
	int rc = q_row(s);

	if (rc == DB_OK) {
		*heartbeat_at = q_i64(s, 0);
		*docker_ok = q_i64(s, 1) != 0;
	}
	q_end(s);
	return rc;
}
