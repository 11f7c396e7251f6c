/* retention.c - one retention pass (see retention.h). */
#include "autoconfig.h"

#include <string.h>

#include "base/config.h"
#include "services/retention.h"

int retention_purge(struct db *db, int64_t now, struct retention_report *out)
{
	int sessions = 0, flows = 0, rc = DB_OK;

	memset(out, 0, sizeof(*out));
	if (db_session_purge(db, now, &sessions))
		rc = DB_ERROR;
	/* Device flows live 15 minutes; after ANYON_RETAIN_FLOWS_S (a day) they
	 * are only clutter. */
	if (db_flow_purge(db, now - g_config.retain_flows_s, &flows))
		rc = DB_ERROR;
	if (db_job_purge(db, now - g_config.retain_jobs_s, RETENTION_BATCH, &out->jobs))
		rc = DB_ERROR;
	if (db_audit_purge(db, now - g_config.retain_audit_s, RETENTION_BATCH, &out->audit))
		rc = DB_ERROR;
	/* The change feed: a tab away longer than this reloads its board. */
	if (db_event_purge(db, now - g_config.retain_events_s, RETENTION_BATCH, &out->events))
		rc = DB_ERROR;
	/* Cached GitHub repository lists past their TTL (all of them with 0). */
	if (db_repo_cache_purge(db, now - g_config.github_repo_cache_s, &out->repo_lists))
		rc = DB_ERROR;
	out->sessions = sessions;
	out->flows = flows;
	return rc;
}
