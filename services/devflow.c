/* devflow.c - device-flow rules (see devflow.h). */
#include "autoconfig.h"

#include <string.h>

#include "services/devflow.h"

int devflow_claim_poll(struct db *db, const char *id, int64_t session_id, int64_t now,
		       int64_t margin_s, struct db_flow *out)
{
	int rc;

	/* Read, decide, write in one transaction with the row locked (SQLite:
	 * BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE), so two polls of one flow
	 * arriving at two processes never both reach GitHub. */
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_flow_get_locked(db, id, session_id, out);
	if (rc == DB_OK && (strcmp(out->status, "pending") || now < out->next_poll_at))
		rc = DB_CONFLICT;
	if (rc != DB_OK) {
		db_rollback(db);
		return rc;
	}
	if (db_flow_set_next_poll(db, id, now + out->interval_s + margin_s) || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	out->next_poll_at = now + out->interval_s + margin_s;
	return DB_OK;
}
