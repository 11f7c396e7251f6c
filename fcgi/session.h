/* session.h - cookie sessions and CSRF tokens.
 *
 * The cookie carries 256 random bits as hex; the database keeps only their
 * SHA-256. The CSRF token is derived from the cookie token, so it needs no
 * storage and a database reader cannot forge it. */
#ifndef ANYON_SESSION_H
#define ANYON_SESSION_H

#include <stdbool.h>

#include "fcgi/http.h"

/* Resolves the browser's session (and its user) into r. With create, a new
 * session is made when there is none. Returns 0, or -1 after replying (500,
 * or 429 when the address made too many sessions lately). */
int session_load(struct req *r, bool create);

/* True when the X-CSRF-Token header matches the session. */
bool session_csrf_ok(struct req *r);

/* Writes the CSRF token of the current session (hex, 65 bytes). */
void session_csrf_token(const struct req *r, char out[SESSION_TOKEN_HEX + 1]);

/* Rotation (no fixation) in two halves, so the database half can join a
 * caller's transaction: session_token_new() makes a fresh token and its
 * hash; the caller writes the hash with db_session_rotate() inside its
 * transaction, and only after the commit calls session_adopt(), which
 * makes the token r's (sent in Set-Cookie) and loads user_id as r's user.
 * Returns 0, or -1 (session_adopt(): the user could not be read; the
 * cookie is still sent, as the database already holds its hash). */
int session_token_new(char token[SESSION_TOKEN_HEX + 1], unsigned char hash[32]);
int session_adopt(struct req *r, const char token[SESSION_TOKEN_HEX + 1], int64_t user_id);

/* Ends the session and clears the cookie. */
int session_end(struct req *r);

/* Token hashing, exposed for the unit tests. */
int session_token_hash(const char *token_hex, unsigned char out[32]);

#endif
