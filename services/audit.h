/* audit.h - one call to record an event in the audit table.
 *
 * The detail is a short description for people ("kind=github_token"),
 * never a secret value: callers pass names, ids and outcomes only. */
#ifndef ANYON_AUDIT_H
#define ANYON_AUDIT_H

#include <stdint.h>

#include "db/db.h"

/* The program writing events; set once at start-up (log_init does not). */
void audit_set_actor(const char *actor);

/* Records an event; a failure to record is logged, not returned, so an
 * audit problem never turns into a second error for the user. */
void audit_event(struct db *db, int64_t user_id, int64_t session_id, const char *action,
		 const char *outcome, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
