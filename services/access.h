/* access.h - who may use anyon, kept true over time: the allow and admin
 * lists applied at every start, users disabled and re-enabled, sessions
 * revoked. Every change is audited. */
#ifndef ANYON_SERVICES_ACCESS_H
#define ANYON_SERVICES_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

/* Applies the configuration to every user, at start-up: in cloud mode a
 * GitHub user no longer on ANYON_ALLOWED_GITHUB, or disabled, loses every
 * session; everyone's admin flag becomes "on ANYON_ADMIN_GITHUB or granted
 * by anyonctl". *revoked counts sessions removed. */
int access_reconcile(struct db *db, int64_t *revoked);

/* Disables (signs out everywhere and refuses sign-in) or re-enables. */
int access_set_disabled(struct db *db, const struct db_user *u, bool disabled, int64_t *revoked);
/* Signs the user out of every session. */
int access_revoke_sessions(struct db *db, const struct db_user *u, int64_t *revoked);
/* Grants or withdraws admin by hand; *is_admin says what it is now (still
 * true after "off" when the user is on ANYON_ADMIN_GITHUB). */
int access_set_admin_grant(struct db *db, const struct db_user *u, bool grant, bool *is_admin);
/* Whether the GitHub account (github_id, login) is on list, the text of
 * ANYON_ALLOWED_GITHUB (which "allow") or ANYON_ADMIN_GITHUB ("admin"):
 * an entry bound to an account (see db_binding_get) matches that account's
 * id whatever its login is now; an entry not bound yet matches the login
 * (case-insensitive), and with bind it is bound to this id for good (at
 * sign-in). "org:NAME" entries are not supported yet and match nobody. */
bool access_listed(struct db *db, const char *which, const char *list, int64_t github_id,
		   const char *login, bool bind);
/* Whether the lists make this user an admin (no binding is made). */
bool access_listed_admin(struct db *db, const struct db_user *u);
/* Whether the allow list admits this user (no binding is made). */
bool access_listed_allowed(struct db *db, const struct db_user *u);

#endif
