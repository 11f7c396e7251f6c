#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>

#include "services/audit.h"
#include "base/log.h"
#include "base/util.h"

static const char *audit_actor = "anyon";

void audit_set_actor(const char *actor)
{
	audit_actor = actor;
}

void audit_event(struct db *db, int64_t user_id, int64_t session_id, const char *action,
		 const char *outcome, const char *fmt, ...)
{
	struct db_audit ev = { 0 };
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ev.at = now_s();
	ev.user_id = user_id;
	ev.session_id = session_id;
	ev.actor = audit_actor;
	ev.action = action;
	ev.outcome = outcome;
	ev.detail = detail;
	if (db_audit_add(db, &ev))
		log_error("could not record audit event %s (%s)", action, outcome);
}
