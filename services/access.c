/* access.c - offboarding and admin rights (see access.h). */
#include "autoconfig.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "services/access.h"
#include "services/audit.h"

#define ENTRY_MAX 64

bool access_listed(struct db *db, const char *which, const char *list, int64_t github_id,
		   const char *login, bool bind)
{
	const char *p = list;

	while (*p) {
		char entry[ENTRY_MAX];
		int64_t bound = 0;
		size_t n;
		int rc;

		p += strspn(p, ", \t\n");
		n = strcspn(p, ", \t\n");
		if (n == 0)
			break;
		if (n >= sizeof(entry) || strncasecmp(p, "org:", 4) == 0) {
			p += n;   /* too long to be a login; org: entries come later */
			continue;
		}
		for (size_t i = 0; i < n; i++)
			entry[i] = (char)tolower((unsigned char)p[i]);
		entry[n] = '\0';
		p += n;
		rc = db_binding_get(db, which, entry, &bound);
		if (rc == DB_OK) {
			if (github_id > 0 && bound == github_id)
				return true;
			continue;   /* this login's entry belongs to another account */
		}
		if (rc != DB_NOTFOUND || strcasecmp(entry, login) != 0)
			continue;
		if (bind && github_id > 0 && db_binding_add(db, which, entry, github_id, now_s()) == DB_OK) {
			/* Another sign-in may have bound it first: read it back. */
			if (db_binding_get(db, which, entry, &bound) != DB_OK || bound != github_id)
				continue;
			audit_event(db, 0, 0, "access.bound", "ok", "list=%s entry=%s github_id=%lld", which,
				    entry, (long long)github_id);
		}
		return true;
	}
	return false;
}

bool access_listed_admin(struct db *db, const struct db_user *u)
{
	return !u->is_local && access_listed(db, "admin", g_config.admin_github, u->github_id, u->login, false);
}

bool access_listed_allowed(struct db *db, const struct db_user *u)
{
	return u->is_local || access_listed(db, "allow", g_config.allowed_github, u->github_id, u->login, false);
}

/* What u's admin flag should be: granted by anyonctl (grant), on the admin
 * list, or the local user's own (which migration 001 makes an admin). */
static bool admin_for(struct db *db, const struct db_user *u, bool grant)
{
	return grant || access_listed_admin(db, u) || (u->is_local && u->is_admin);
}

/* In cloud mode, may u sign in at all? */
static bool allowed(struct db *db, const struct db_user *u)
{
	return !u->disabled && access_listed_allowed(db, u);
}

struct reconcile {
	struct db *db;
	int64_t revoked;
	int failed;
};

static int reconcile_one(const struct db_user *u, void *arg)
{
	struct reconcile *rc = arg;
	bool admin = admin_for(rc->db, u, u->admin_grant);
	int64_t n = 0;

	if (g_config.cloud && !u->is_local && !allowed(rc->db, u)) {
		if (db_session_delete_user(rc->db, u->id, &n)) {
			rc->failed++;
			return 0;
		}
		if (n > 0) {
			audit_event(rc->db, u->id, 0, "user.offboarded", "ok", "login=%s sessions=%lld (%s)",
				    u->login, (long long)n, u->disabled ? "disabled" : "not on the allow list");
			rc->revoked += n;
		}
	}
	if (admin != u->is_admin) {
		if (db_user_set_admin(rc->db, u->id, admin, NULL)) {
			rc->failed++;
			return 0;
		}
		audit_event(rc->db, u->id, 0, admin ? "user.admin_granted" : "user.admin_revoked", "ok",
			    "login=%s (configuration at start)", u->login);
	}
	return 0;
}

int access_reconcile(struct db *db, int64_t *revoked)
{
	struct reconcile rc = { .db = db };
	int ret;

	/* One transaction: a crash half-way leaves the previous state, and
	 * the next start applies it again. */
	*revoked = 0;
	if (db_begin_write(db))
		return DB_ERROR;
	ret = db_user_list(db, reconcile_one, &rc);
	if (ret || rc.failed || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	*revoked = rc.revoked;
	return DB_OK;
}

int access_revoke_sessions(struct db *db, const struct db_user *u, int64_t *revoked)
{
	int rc = db_session_delete_user(db, u->id, revoked);

	audit_event(db, u->id, 0, "user.sessions_revoked", rc ? "error" : "ok", "login=%s sessions=%lld",
		    u->login, (long long)*revoked);
	return rc;
}

int access_set_disabled(struct db *db, const struct db_user *u, bool disabled, int64_t *revoked)
{
	int rc;

	*revoked = 0;
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_user_set_disabled(db, u->id, disabled);
	if (rc == DB_OK && disabled)
		rc = db_session_delete_user(db, u->id, revoked);
	if (rc == DB_OK)
		audit_event(db, u->id, 0, disabled ? "user.disabled" : "user.enabled", "ok",
			    "login=%s sessions=%lld", u->login, (long long)*revoked);
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	return DB_OK;
}

int access_set_admin_grant(struct db *db, const struct db_user *u, bool grant, bool *is_admin)
{
	*is_admin = admin_for(db, u, grant);
	if (db_user_set_admin(db, u->id, *is_admin, &grant))
		return DB_ERROR;
	audit_event(db, u->id, 0, grant ? "user.admin_granted" : "user.admin_revoked", "ok",
		    "login=%s (anyonctl)%s", u->login, !grant && *is_admin ? "; still admin by the list" : "");
	return DB_OK;
}
