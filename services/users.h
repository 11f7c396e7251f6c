/* users.h - who a GitHub identity is in anyon. */
#ifndef ANYON_SERVICES_USERS_H
#define ANYON_SERVICES_USERS_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

/* Cloud sign-in: the user with this GitHub id, or, the first time, the
 * user created beforehand with this login (anyonctl) and no GitHub id
 * yet; created when there is neither. Name, email, avatar, login and the
 * admin flag are refreshed from GitHub. Runs in its own transaction level,
 * so it is atomic alone and composes inside a caller's. DB_CONFLICT when
 * the login belongs to another account (a renamed GitHub user). */
int users_signin_github(struct db *db, int64_t github_id, const char *login, const char *name,
			const char *email, const char *avatar_url, bool is_admin, int64_t now,
			struct db_user *out);

#endif
