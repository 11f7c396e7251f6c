/* devflow.h - the rules of a GitHub device flow kept in the database:
 * when a poll may go to GitHub. */
#ifndef ANYON_SERVICES_DEVFLOW_H
#define ANYON_SERVICES_DEVFLOW_H

#include <stdint.h>

#include "db/db.h"

/* Takes the right to poll GitHub now for the flow id of session_id: DB_OK
 * (next_poll_at moved one interval plus margin_s on, so a second process
 * asking at once is told to wait), DB_CONFLICT when it is too early or the
 * flow is over (out tells which), DB_NOTFOUND for another session's flow. */
int devflow_claim_poll(struct db *db, const char *id, int64_t session_id, int64_t now,
		       int64_t margin_s, struct db_flow *out);

#endif
