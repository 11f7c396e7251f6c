/* api_health.c - GET /api/health: up or not for anyone; the database, the
 * worker, Docker and the version for a signed-in user. */
#include "autoconfig.h"

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "fcgi/api.h"
#include "fcgi/session.h"

/* A worker whose heartbeat is older than this does not vouch for Docker. */
#define HEARTBEAT_STALE_FACTOR 3

void api_health(struct req *r)
{
	json_object *body, *worker;
	int64_t beat = 0, now = now_s();
	bool docker_ok = false, db_ok;
	int rc;

	db_ok = db_ping(r->db) == DB_OK;
	/* Without a signed-in user (or without a database to find one in):
	 * only whether the service answers. The session is read, never
	 * created: health makes no rows. */
	if (db_ok && session_load(r, false))
		return;
	if (!db_ok || !r->has_user) {
		body = json_object_new_object();
		json_set(body, "status", json_object_new_string(db_ok ? "ok" : "down"));
		reply_json(r, db_ok ? 200 : 503, body);
		return;
	}
	rc = db_worker_latest(r->db, &beat, &docker_ok);
	body = json_object_new_object();
	worker = json_object_new_object();
	json_set(body, "status", json_object_new_string(rc != DB_ERROR ? "ok" : "down"));
	json_set(body, "db", json_object_new_string(rc != DB_ERROR ? "ok" : "error"));
	json_set(worker, "last_heartbeat_s", json_i64_or_null(now - beat, rc == DB_OK));
	json_set(body, "worker", worker);
	/* The worker, not this process, talks to Docker: it reports what it saw. */
	docker_ok = docker_ok && rc == DB_OK &&
		    now - beat <= HEARTBEAT_STALE_FACTOR * g_config.heartbeat_s;
	json_set(body, "docker", json_object_new_string(docker_ok ? "ok" : "unreachable"));
	json_set(body, "version", json_object_new_string(PACKAGE_VERSION));
	reply_json(r, rc != DB_ERROR ? 200 : 503, body);
}
