/* session.h - cookie sessions and CSRF tokens.
 *
 * A session's cookie carries 256 random bits as hex; the database keeps
 * only their SHA-256. The CSRF token is derived from the cookie token, so
 * it needs no storage and a database reader cannot forge it.
 *
 * In cloud mode a browser that has not started signing in has no session
 * row: its cookie (same name) is anonymous, "a." and in hex a random id,
 * its issue time and an HMAC-SHA256 of both under a key derived (HKDF)
 * from the keyring's active key. It is checked without the database and
 * lives ANON_TTL_S; a forged, tampered, expired or other-mode one (or one
 * signed before a key rotation) is ignored and replaced at the next GET.
 * Its CSRF token is that of the session token it becomes at the sign-in
 * start (session_begin()), an HMAC of its id, so the CSRF token the UI
 * holds stays valid across that change. Local mode has no anonymous
 * state: the first visit is the sign-in (see session.c). */
#ifndef ANYON_SESSION_H
#define ANYON_SESSION_H

#include <stdbool.h>

#include "fcgi/http.h"

#define ANON_COOKIE_LEN 82               /* "a." + 80 hex digits */
#define ANON_TTL_S (24 * 60 * 60)

/* Resolves the browser's session (and its user) into r. When there is
 * none: in cloud mode a valid anonymous cookie makes r->anon (with create,
 * a fresh one is issued when there is none), nothing written; in local
 * mode, with create, a session of the local user is made. Returns 0, or
 * -1 after replying 500. */
int session_load(struct req *r, bool create);

/* Gives an anonymous browser (r->anon) its session row, at the sign-in
 * start: the token derived from its cookie, sent in Set-Cookie. Nothing
 * to do when r has a session. Returns 0, or -1 after replying (429 when
 * the address made ANYON_SESSIONS_PER_ADDR sessions in 10 minutes, 500). */
int session_begin(struct req *r);

/* True when the X-CSRF-Token header matches the session (or the
 * anonymous cookie). */
bool session_csrf_ok(struct req *r);

/* Writes the CSRF token of the current session or anonymous cookie (hex,
 * 65 bytes). Returns 0, or -1 (out empty) when r has neither or no key. */
int session_csrf_token(struct req *r, char out[SESSION_TOKEN_HEX + 1]);

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
