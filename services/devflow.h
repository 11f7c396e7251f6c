/* devflow.h - GitHub's device flow, one per browser session, kept in the
 * database (device_flows) so any process of any host can serve any poll:
 * starting a flow, polling GitHub for it no more often than GitHub allows,
 * and handing the token to the sign-in (services/signin.h) when it comes.
 * The device code is sealed with the keyring's active key, bound to the
 * flow and its session; it never leaves the server. */
#ifndef ANYON_SERVICES_DEVFLOW_H
#define ANYON_SERVICES_DEVFLOW_H

#include <stdint.h>

#include "db/db.h"
#include "services/github.h"
#include "services/secrets.h"
#include "services/signin.h"

/* What anyon asks GitHub for: private repositories, the user, the email;
 * and org memberships (DEVFLOW_SCOPE_ORG) only when ANYON_ALLOWED_GITHUB
 * or ANYON_ADMIN_GITHUB has an org:NAME entry. */
#define DEVFLOW_SCOPES "repo read:user user:email"
#define DEVFLOW_SCOPE_ORG " read:org"

enum devflow_rc {
	DEVFLOW_OK,            /* out->flow says where the flow stands */
	DEVFLOW_NOT_FOUND,     /* poll: no such flow in this session */
	DEVFLOW_RATE_LIMITED,  /* start: too many flows lately from the session or the address */
	DEVFLOW_REFUSED,       /* start: GitHub refused; out->message says why */
	DEVFLOW_GITHUB,        /* GitHub failed; out->gh says how. The flow is as it was */
	DEVFLOW_ERROR,         /* database or crypto */
};

/* What a start or a poll came to. */
struct devflow_result {
	struct db_flow flow;   /* the flow as it now stands */
	int64_t expires_in;    /* start: the code's lifetime as GitHub gave it, seconds */
	int64_t retry_after;   /* poll, pending: seconds before GitHub may be asked again */
	struct db_user user;   /* poll, complete: who signed in */
	enum gh_rc gh;         /* DEVFLOW_GITHUB: how GitHub failed */
	char message[256];     /* DEVFLOW_REFUSED: GitHub's reason, for people */
};

/* Starts a flow for session_id (user_id, 0 when none, and remote_addr
 * are for the rate limit and the audit). Calls to GitHub, here and in
 * devflow_poll(), keep to deadline_ms (see github.h). */
enum devflow_rc devflow_start(struct secret_store *st, int64_t session_id, int64_t user_id,
			      const char *remote_addr, int64_t deadline_ms, struct devflow_result *out);

/* Polls flow id for session s: answered from the row when it is over or
 * too early, else GitHub is asked; when GitHub hands out the token the
 * sign-in completes (signin_github()) and the flow ends complete, denied
 * or error. DEVFLOW_OK with out->flow.status "pending" (and retry_after),
 * "complete" (out->user), "expired", "denied" or "error" (out->flow.message). */
enum devflow_rc devflow_poll(struct secret_store *st, const char *id, const struct signin_session *s,
			     int64_t deadline_ms, struct devflow_result *out);

/* Takes the right to poll GitHub now for the flow id of session_id: DB_OK
 * (next_poll_at moved one interval plus margin_s on, so a second process
 * asking at once is told to wait), DB_CONFLICT when it is too early or the
 * flow is over (out tells which), DB_NOTFOUND for another session's flow. */
int devflow_claim_poll(struct db *db, const char *id, int64_t session_id, int64_t now,
		       int64_t margin_s, struct db_flow *out);

#endif
