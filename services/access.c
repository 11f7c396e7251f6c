/* access.c - offboarding and admin rights (see access.h). */
#include "autoconfig.h"

#include "base/config.h"
#include "base/log.h"
#include "services/access.h"
#include "services/audit.h"

bool access_listed_admin(const struct db_user *u)
{
	return !u->is_local && config_list_has(g_config.admin_github, u->login);
}

/* In cloud mode, may u sign in at all? */
static bool allowed(const struct db_user *u)
{
	return !u->disabled && (u->is_local || config_list_has(g_config.allowed_github, u->login));
}

struct reconcile {
	struct db *db;
	int64_t revoked;
	int failed;
};

static int reconcile_one(const struct db_user *u, void *arg)
{
	struct reconcile *rc = arg;
	bool admin = u->admin_grant || access_listed_admin(u) || (u->is_local && u->is_admin);
	int64_t n = 0;

	if (g_config.cloud && !u->is_local && !allowed(u)) {
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
	*is_admin = grant || access_listed_admin(u) || (u->is_local && u->is_admin);
	if (db_user_set_admin(db, u->id, *is_admin, &grant))
		return DB_ERROR;
	audit_event(db, u->id, 0, grant ? "user.admin_granted" : "user.admin_revoked", "ok",
		    "login=%s (anyonctl)%s", u->login, !grant && *is_admin ? "; still admin by the list" : "");
	return DB_OK;
}
