/* github_token.h - a user's GitHub token, ready to use: read from the
 * secret store, refreshed when it is about to expire, marked invalid when
 * GitHub refuses it, each of those events audited.
 *
 * Nothing here knows HTTP requests or sessions: the API handlers and the
 * worker both call it with a secret store and a user id, and map the
 * enum gh_rc they get to their own answers. session_id only goes into the
 * audit rows (0 outside a request: the worker, anyonctl). No token ever
 * reaches a log line, an error or an audit row. */
#ifndef ANYON_SERVICES_GITHUB_TOKEN_H
#define ANYON_SERVICES_GITHUB_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "services/github.h"
#include "services/secrets.h"

/* The secret kind the token is stored under (GET /api/session reads its
 * metadata with the session, see fcgi/routes.c). */
#define GITHUB_TOKEN_KIND "github_token"
/* Longest token anyon stores (GitHub's are about 40 to 100 bytes). */
#define GITHUB_TOKEN_MAX 1024
/* A token that expires within this many seconds is refreshed before use. */
#define GITHUB_TOKEN_REFRESH_MARGIN_S 60

/* The user's token into out, refreshed first when it expires within
 * GITHUB_TOKEN_REFRESH_MARGIN_S (that call keeps to deadline_ms, see
 * github.h; 0: none). GH_OK (release out with secret_value_release()),
 * GH_NOT_CONNECTED, GH_TOKEN_INVALID (marked so, or the refresh was
 * refused: then it is marked now), GH_UNREADABLE, GH_UNAVAILABLE or
 * GH_DEADLINE (the refresh got no answer; nothing marked), GH_ERROR.
 * out holds nothing unless GH_OK. Two processes refreshing at once: the
 * one whose refresh token GitHub refuses as spent waits briefly for the
 * other's new token and uses it, so call this outside any transaction
 * (the other process must be able to commit). */
enum gh_rc github_token_get(struct secret_store *st, int64_t user_id, int64_t session_id,
			    int64_t deadline_ms, struct secret_value *out);

/* Stores GitHub's token answer for the user: access_token, and when
 * present expires_in, refresh_token and refresh_token_expires_in. Both
 * tokens or neither (its own transaction level, so it also composes into
 * a caller's transaction). GH_OK, GH_BAD_ANSWER when the answer has no
 * usable access_token (nothing stored), GH_ERROR. */
enum gh_rc github_token_store(struct secret_store *st, int64_t user_id, int64_t session_id,
			      json_object *answer);

/* What a failed call made with the user's token comes to: a 401 marks the
 * token invalid, audits it and gives GH_TOKEN_INVALID; anything else is
 * gh_classify()'s answer. what names the call for the log and audit. */
enum gh_rc github_token_failed(struct secret_store *st, int64_t user_id, int64_t session_id,
			       const struct gh_response *g, const char *what);

/* Whether the user has a token, and whether GitHub refused it. Returns 0,
 * or -1 when the database failed. */
int github_token_status(struct secret_store *st, int64_t user_id, bool *connected, bool *invalid);

/* Forgets the user's token and refresh token, and in local mode which
 * GitHub account the user connected; one transaction, audited. Returns 0
 * (also when there was nothing to forget), or -1 when the database failed. */
int github_token_forget(struct secret_store *st, int64_t user_id, int64_t session_id);

#endif
