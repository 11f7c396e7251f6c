/* signin.h - completing a GitHub sign-in once the device flow brought a
 * token: who the token belongs to, whether they may in, and everything a
 * sign-in writes, in one transaction.
 *
 * That transaction holds the user (created or refreshed; in local mode the
 * local user's GitHub identity), the tokens in the secret store, the
 * session's new token hash and user, the flow marked complete, and the
 * audit event. A process killed at any point leaves all of it or none.
 * The session's cookie is the caller's: it sets it only after success. */
#ifndef ANYON_SERVICES_SIGNIN_H
#define ANYON_SERVICES_SIGNIN_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "db/db.h"
#include "services/secrets.h"

/* The session signing in, as the sign-in needs it. */
struct signin_session {
	int64_t id;                    /* the session's row */
	int64_t user_id;               /* its user now, 0: none. Local mode: the
					* user who connects GitHub */
	unsigned char new_hash[32];    /* SHA-256 of the session's next token: the
					* session is rotated to it (no fixation) */
};

enum signin_rc {
	SIGNIN_OK,        /* signed in: *out is the user, f is complete */
	SIGNIN_DENIED,    /* not on ANYON_ALLOWED_GITHUB (cloud mode) nor an active member
			   * of one of its org:NAME entries, or disabled; audited */
	SIGNIN_FAILED,    /* nothing of the sign-in was kept (also when GitHub did not
			   * say whether the user is a member of a listed org) */
};

/* Signs in with GitHub's token answer to the device flow f (pending) of
 * session s. Asks GitHub who the token belongs to (keeping to deadline_ms,
 * see github.h), then writes everything
 * in one transaction and sets f's status, message and user to what it
 * wrote. On SIGNIN_DENIED and SIGNIN_FAILED, f is unchanged, nothing is
 * written but an audit event, and msg says why, for people; ending the
 * flow is the caller's. */
enum signin_rc signin_github(struct secret_store *st, struct db_flow *f, const struct signin_session *s,
			     json_object *answer, int64_t deadline_ms, struct db_user *out, char *msg,
			     size_t msglen);

#endif
