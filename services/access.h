/* access.h - who may use anyon, kept true over time: the allow and admin
 * lists applied at every start, users disabled and re-enabled, sessions
 * revoked. Every change is audited. */
#ifndef ANYON_SERVICES_ACCESS_H
#define ANYON_SERVICES_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "services/secrets.h"

/* Applies the configuration to every user, at start-up: in cloud mode a
 * GitHub user no longer on ANYON_ALLOWED_GITHUB, or disabled, loses every
 * session; everyone's admin flag becomes "on ANYON_ADMIN_GITHUB or granted
 * by anyonctl". A user an org:NAME entry admitted (or made admin) stays
 * while that entry is on the list; GitHub is not asked here (see
 * access_org_recheck()). *revoked counts sessions removed. */
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
 * sign-in). "org:NAME" entries are skipped: see access_admit(). */
bool access_listed(struct db *db, const char *which, const char *list, int64_t github_id,
		   const char *login, bool bind);
/* Whether the lists make this user an admin (no binding is made): a plain
 * entry, or the org:NAME entry that made them admin at sign-in (the
 * user_admission row) while it is still on the list. */
bool access_listed_admin(struct db *db, const struct db_user *u);
/* Whether the allow list admits this user (no binding is made): a plain
 * entry, or the org:NAME entry that admitted them at sign-in while it is
 * still on the list. */
bool access_listed_allowed(struct db *db, const struct db_user *u);

enum access_rc {
	ACCESS_ADMITTED,   /* *adm and *admin say why and what */
	ACCESS_REFUSED,    /* on no list, and no active member of a listed org */
	ACCESS_UNKNOWN,    /* GitHub did not say whether they are a member of org:
			    * refuse the sign-in, never admit on a guess */
};

/* The sign-in's question (cloud mode), with the user's fresh token: does
 * the allow list admit this GitHub account, and is it an admin? Plain
 * entries are matched (and bound) first, as access_listed() says, and a
 * user they admit is never asked about orgs; otherwise each org:NAME entry
 * is asked in turn (GET /user/memberships/orgs/NAME, state "active").
 * The admin list likewise. Every call keeps to deadline_ms. On
 * ACCESS_ADMITTED, adm (user_id 0, checked_at 0) holds the orgs that let
 * the user in or made them admin, "" for plain entries; on ACCESS_UNKNOWN
 * org names the org GitHub did not answer about. */
enum access_rc access_admit(struct db *db, const char *token, int64_t github_id, const char *login,
			    int64_t deadline_ms, struct db_admission *adm, bool *admin, char *org,
			    size_t orglen);

/* Users re-checked per pass, and how long a pass may talk to GitHub. */
#define ACCESS_RECHECK_BATCH 50
#define ACCESS_RECHECK_PASS_MS 10000

struct access_recheck {
	int64_t checked;      /* users whose memberships GitHub confirmed */
	int64_t offboarded;   /* users signed out everywhere: not a member any more,
			       * or their token is refused */
	int64_t demoted;      /* admins by an org who are no longer its members */
	bool unknown;         /* GitHub did not answer: the pass stopped there, nothing
			       * changed for that user, the next pass asks again */
};

/* One pass of the worker's re-check (cloud mode, ANYON_ORG_RECHECK_S > 0):
 * up to ACCESS_RECHECK_BATCH users with sessions whose org membership was
 * last confirmed ANYON_ORG_RECHECK_S ago or more are asked about again
 * with their stored token (refreshed when needed). A user no longer an
 * active member of the org that admitted them, or whose token GitHub
 * refuses, loses every session (audited user.offboarded, as at start); an
 * admin by an org who left it loses admin (user.admin_revoked). When
 * GitHub cannot be reached the pass stops and changes nothing: outages
 * fail open (docs/SECURITY.md says why). Returns 0, or -1 when the
 * database failed. */
int access_org_recheck(struct secret_store *st, int64_t now, struct access_recheck *out);

#endif
