/* retention.h - what anyon keeps and for how long. The worker runs a pass
 * every ANYON_PURGE_INTERVAL_S: expired sessions, device flows a day old,
 * finished jobs (with their output) after ANYON_RETAIN_JOBS_S, audit rows
 * after ANYON_RETAIN_AUDIT_S, change-feed events after
 * ANYON_RETAIN_EVENTS_S, cached GitHub repository lists after
 * ANYON_GITHUB_REPO_CACHE_S. Each pass deletes a bounded batch per table,
 * so no pass holds the database for long; a backlog goes in later passes. */
#ifndef ANYON_SERVICES_RETENTION_H
#define ANYON_SERVICES_RETENTION_H

#include <stdint.h>

#include "db/db.h"

#define RETENTION_BATCH 1000

struct retention_report {
	int64_t sessions, flows, jobs, audit, repo_lists, events;
};

int retention_purge(struct db *db, int64_t now, struct retention_report *out);

#endif
