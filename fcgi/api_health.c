/* api_health.c - GET /api/health: up or not for anyone; the database, the
 * worker, Docker and the version for a signed-in user. */
#include "autoconfig.h"

#include <stdio.h>

#include "base/config.h"
#include "base/json.h"
#include "base/util.h"
#include "services/jobkinds.h"
#include "fcgi/api.h"
#include "fcgi/session.h"

/* A worker whose heartbeat is older than this does not vouch for Docker. */
#define HEARTBEAT_STALE_FACTOR 3

/* "container_jobs": how many jobs that need Docker are queued, and, when
 * some are but no live worker reaches Docker, why they wait. */
static void container_jobs(struct req *r, json_object *body, int64_t now)
{
	const struct jobkind *all;
	char kinds[JOBKIND_NAMES_MAX];
	json_object *o;
	int64_t queued = 0;
	bool reachable = false;
	size_t n, used = 0;

	kinds[0] = '\0';
	all = jobkind_all(&n);
	for (size_t i = 0; i < n; i++)
		if (all[i].needs & NEED_DOCKER) {
			int m = snprintf(kinds + used, sizeof(kinds) - used, "%s%s", used ? "," : "", all[i].name);

			if (m < 0 || (size_t)m >= sizeof(kinds) - used)
				return;
			used += (size_t)m;
		}
	if (db_job_count_queued_kinds(r->db, kinds, &queued) != DB_OK ||
	    db_worker_docker_any(r->db, now - HEARTBEAT_STALE_FACTOR * g_config.heartbeat_s, &reachable) != DB_OK)
		return;
	o = json_object_new_object();
	json_set(o, "queued", json_object_new_int64(queued));
	json_set(o, "waiting_for_docker", json_object_new_boolean(queued > 0 && !reachable));
	json_set(o, "reason", queued > 0 && !reachable ?
		 json_object_new_string("no running worker reaches Docker: container jobs wait until one does") :
		 NULL);
	json_set(body, "container_jobs", o);
}

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
	container_jobs(r, body, now);
	{
		/* The agent image's CLI as a live worker found it at start:
		 * {version, error} (null: no worker checked yet). */
		char ver[32], err[256];
		int crc = db_claude_cli_latest(r->db, now - HEARTBEAT_STALE_FACTOR * g_config.heartbeat_s, ver,
					       sizeof(ver), err, sizeof(err));
		json_object *cli = NULL;

		if (crc == DB_OK) {
			cli = json_object_new_object();
			json_set(cli, "version", ver[0] ? json_str(ver) : NULL);
			json_set(cli, "ok", json_object_new_boolean(ver[0] != '\0'));
			json_set(cli, "error", err[0] ? json_str(err) : NULL);
		}
		json_set(body, "claude_cli", cli);
	}
	json_set(body, "version", json_object_new_string(PACKAGE_VERSION));
	reply_json(r, rc != DB_ERROR ? 200 : 503, body);
}
