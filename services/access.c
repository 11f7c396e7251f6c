/* access.c - offboarding and admin rights (see access.h). */
#include "autoconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "services/access.h"
#include "services/audit.h"
#include "services/github.h"
#include "services/github_token.h"

#define ENTRY_MAX 64

/* The org:NAME entries of list, names only, into orgs; returns how many
 * (config_load() allowed at most CONFIG_ORG_ENTRIES_MAX, each fitting). */
static size_t list_orgs(const char *list, char orgs[][DB_ORG_MAX], size_t max)
{
	const char *p = list;
	size_t count = 0;

	while (*p && count < max) {
		size_t n;

		p += strspn(p, ", \t\n");
		n = strcspn(p, ", \t\n");
		if (n == 0)
			break;
		if (n > 4 && n - 4 < DB_ORG_MAX && strncasecmp(p, "org:", 4) == 0) {
			for (size_t i = 4; i < n; i++)
				orgs[count][i - 4] = (char)tolower((unsigned char)p[i]);
			orgs[count++][n - 4] = '\0';
		}
		p += n;
	}
	return count;
}

/* Whether list has the entry org:NAME (case-insensitive). */
static bool list_has_org(const char *list, const char *org)
{
	char orgs[CONFIG_ORG_ENTRIES_MAX][DB_ORG_MAX];
	size_t n = list_orgs(list, orgs, CONFIG_ORG_ENTRIES_MAX);

	for (size_t i = 0; i < n; i++)
		if (org[0] && strcasecmp(orgs[i], org) == 0)
			return true;
	return false;
}

/* u's admission row; all "" when it has none (or the database failed:
 * then only plain entries count, which never admits more). */
static void admission_of(struct db *db, const struct db_user *u, struct db_admission *a)
{
	if (db_admission_get(db, u->id, a) == DB_ERROR) {
		memset(a, 0, sizeof(*a));
		a->user_id = u->id;
	}
}

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

/* On the admin list by a plain entry. */
static bool plain_admin(struct db *db, const struct db_user *u)
{
	return !u->is_local && access_listed(db, "admin", g_config.admin_github, u->github_id, u->login, false);
}

/* On the allow list by a plain entry. */
static bool plain_allowed(struct db *db, const struct db_user *u)
{
	return u->is_local || access_listed(db, "allow", g_config.allowed_github, u->github_id, u->login, false);
}

bool access_listed_admin(struct db *db, const struct db_user *u)
{
	struct db_admission a;

	if (u->is_local)
		return false;
	if (plain_admin(db, u))
		return true;
	admission_of(db, u, &a);
	return a.admin_org[0] && list_has_org(g_config.admin_github, a.admin_org);
}

bool access_listed_allowed(struct db *db, const struct db_user *u)
{
	struct db_admission a;

	if (plain_allowed(db, u))
		return true;
	admission_of(db, u, &a);
	return a.allow_org[0] && list_has_org(g_config.allowed_github, a.allow_org);
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

/* Signs u out everywhere for why, audited as user.offboarded, in the
 * caller's transaction. *n counts the sessions. */
static int offboard(struct db *db, const struct db_user *u, const char *why, int64_t *n)
{
	*n = 0;
	if (db_session_delete_user(db, u->id, n))
		return DB_ERROR;
	if (*n > 0)
		audit_event(db, u->id, 0, "user.offboarded", "ok", "login=%s sessions=%lld (%s)", u->login,
			    (long long)*n, why);
	return DB_OK;
}

static int reconcile_one(const struct db_user *u, void *arg)
{
	struct reconcile *rc = arg;
	struct db_admission a;
	bool admin;
	int64_t n = 0;

	if (db_admission_get(rc->db, u->id, &a) == DB_ERROR) {
		rc->failed++;
		return 0;
	}
	admin = admin_for(rc->db, u, u->admin_grant);
	/* Listed by name now: never asked about an org again. */
	if (g_config.cloud && !u->is_local && a.allow_org[0] && plain_allowed(rc->db, u)) {
		a.allow_org[0] = '\0';
		if (db_admission_put(rc->db, &a)) {
			rc->failed++;
			return 0;
		}
	}
	if (g_config.cloud && !u->is_local && !allowed(rc->db, u)) {
		if (offboard(rc->db, u, u->disabled ? "disabled" : "not on the allow list", &n)) {
			rc->failed++;
			return 0;
		}
		rc->revoked += n;
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

/* Asks about each org of orgs (count of them) in turn: the first the user
 * is an active member of goes into found. ACCESS_ADMITTED when one is,
 * ACCESS_UNKNOWN (org says which) when none is and GitHub did not answer
 * about one of them, else ACCESS_REFUSED. */
static enum access_rc ask_orgs(const char *token, char orgs[][DB_ORG_MAX], size_t count, int64_t deadline_ms,
			       char *found, char *org, size_t orglen)
{
	enum access_rc rc = ACCESS_REFUSED;

	for (size_t i = 0; i < count; i++) {
		struct gh_response g;
		enum gh_membership m = gh_org_membership(token, orgs[i], deadline_ms, &g);

		gh_response_release(&g);
		if (m == GH_MEMBER_ACTIVE) {
			str_copy(found, DB_ORG_MAX, orgs[i]);
			return ACCESS_ADMITTED;
		}
		/* A fresh token GitHub refuses cannot tell us anything either. */
		if (m == GH_MEMBER_UNKNOWN || m == GH_MEMBER_BAD_TOKEN) {
			if (rc != ACCESS_UNKNOWN)
				str_copy(org, orglen, orgs[i]);
			rc = ACCESS_UNKNOWN;
		}
	}
	return rc;
}

enum access_rc access_admit(struct db *db, const char *token, int64_t github_id, const char *login,
			    int64_t deadline_ms, struct db_admission *adm, bool *admin, char *org,
			    size_t orglen)
{
	char orgs[CONFIG_ORG_ENTRIES_MAX][DB_ORG_MAX];
	enum access_rc rc;
	size_t n;

	memset(adm, 0, sizeof(*adm));
	*admin = false;
	org[0] = '\0';
	if (!access_listed(db, "allow", g_config.allowed_github, github_id, login, true)) {
		n = list_orgs(g_config.allowed_github, orgs, CONFIG_ORG_ENTRIES_MAX);
		rc = ask_orgs(token, orgs, n, deadline_ms, adm->allow_org, org, orglen);
		if (rc != ACCESS_ADMITTED)
			return rc;
	}
	*admin = access_listed(db, "admin", g_config.admin_github, github_id, login, true);
	if (!*admin) {
		n = list_orgs(g_config.admin_github, orgs, CONFIG_ORG_ENTRIES_MAX);
		rc = ask_orgs(token, orgs, n, deadline_ms, adm->admin_org, org, orglen);
		if (rc == ACCESS_UNKNOWN)
			return rc;
		*admin = rc == ACCESS_ADMITTED;
	}
	return ACCESS_ADMITTED;
}

enum recheck_rc {
	RECHECK_DONE,      /* decided (and recorded) */
	RECHECK_UNKNOWN,   /* GitHub did not answer: stop the pass */
	RECHECK_FAILED,    /* the database failed */
};

/* What one membership of u says; on GH_MEMBER_BAD_TOKEN the token is
 * marked invalid (audited), as for any call GitHub answers with 401. */
static enum gh_membership ask_one(struct secret_store *st, const struct db_user *u, const char *token,
				  const char *org, int64_t deadline_ms)
{
	struct gh_response g;
	enum gh_membership m = gh_org_membership(token, org, deadline_ms, &g);

	if (m == GH_MEMBER_BAD_TOKEN)
		github_token_failed(st, u->id, 0, &g, "the org membership re-check");
	gh_response_release(&g);
	return m;
}

/* u lost the org that made them admin: admin now only if a plain entry or
 * anyonctl says so. */
static int demote(struct db *db, const struct db_user *u, const char *why, struct access_recheck *out)
{
	bool admin = u->admin_grant || plain_admin(db, u);

	if (admin == u->is_admin)
		return DB_OK;
	if (db_user_set_admin(db, u->id, admin, NULL))
		return DB_ERROR;
	audit_event(db, u->id, 0, "user.admin_revoked", "ok", "login=%s (%s)", u->login, why);
	out->demoted++;
	return DB_OK;
}

/* The decision for one user (keep_allow false: signed out everywhere for
 * why; keep_admin false: the admin org is gone), written in one
 * transaction with the time of the check. When the user signed in again
 * since a was read, that sign-in decided afresh and nothing is written. */
static enum recheck_rc recheck_apply(struct secret_store *st, const struct db_user *u, struct db_admission *a,
				     bool keep_allow, bool keep_admin, const char *why, int64_t now,
				     struct access_recheck *out)
{
	struct db *db = st->db;
	struct db_admission cur;
	char admin_why[160];
	int64_t n = 0;
	int rc = DB_OK;

	if (why[0])
		str_copy(admin_why, sizeof(admin_why), why);
	else
		snprintf(admin_why, sizeof(admin_why), "no longer an active member of org %s", a->admin_org);
	if (db_begin_write(db))
		return RECHECK_FAILED;
	if (db_admission_get(db, a->user_id, &cur) != DB_OK || cur.checked_at != a->checked_at ||
	    strcmp(cur.allow_org, a->allow_org) || strcmp(cur.admin_org, a->admin_org)) {
		db_rollback(db);
		return RECHECK_DONE;
	}
	if (!keep_allow)
		rc = offboard(db, u, why, &n);
	if (rc == DB_OK && !keep_admin) {
		rc = demote(db, u, admin_why, out);
		a->admin_org[0] = '\0';
	}
	a->checked_at = now;
	if (rc == DB_OK)
		rc = db_admission_put(db, a);
	if (rc != DB_OK || db_commit(db)) {
		db_rollback(db);
		return RECHECK_FAILED;
	}
	if (!keep_allow) {
		out->offboarded++;
		log_info("org re-check: signed out %s everywhere (%lld session(s)): %s", u->login, (long long)n, why);
	}
	if (keep_allow && keep_admin)
		out->checked++;
	return RECHECK_DONE;
}

static enum recheck_rc recheck_one(struct secret_store *st, struct db_admission *a, int64_t now,
				   int64_t deadline_ms, struct access_recheck *out)
{
	bool keep_allow = true, keep_admin = true;
	struct secret_value tok;
	struct db_user u;
	enum gh_membership m;
	char why[160] = "";
	enum gh_rc grc;

	if (db_user_get(st->db, a->user_id, &u))
		return RECHECK_FAILED;
	if (u.is_local || u.disabled)
		return recheck_apply(st, &u, a, true, true, "", now, out);
	grc = github_token_get(st, u.id, 0, deadline_ms, &tok);
	if (grc == GH_UNAVAILABLE || grc == GH_DEADLINE) {
		log_warn("org re-check of %s: GitHub did not answer the token refresh; asking again next pass",
			 u.login);
		return RECHECK_UNKNOWN;
	}
	if (grc == GH_TOKEN_INVALID || grc == GH_NOT_CONNECTED)
		return recheck_apply(st, &u, a, !a->allow_org[0], !a->admin_org[0],
				     "GitHub token refused or gone: sign in again", now, out);
	if (grc != GH_OK) {
		/* Our side (the key, the database): nothing to learn from GitHub. */
		log_warn("org re-check of %s: the stored GitHub token cannot be read; skipped", u.login);
		return recheck_apply(st, &u, a, true, true, "", now, out);
	}
	m = GH_MEMBER_ACTIVE;
	if (a->allow_org[0]) {
		m = ask_one(st, &u, (const char *)tok.data, a->allow_org, deadline_ms);
		if (m == GH_MEMBER_NOT)
			snprintf(why, sizeof(why), "no longer an active member of org %s", a->allow_org);
	}
	if (m == GH_MEMBER_ACTIVE && a->admin_org[0]) {
		m = ask_one(st, &u, (const char *)tok.data, a->admin_org, deadline_ms);
		keep_admin = m != GH_MEMBER_NOT;
		if (m == GH_MEMBER_NOT)
			m = GH_MEMBER_ACTIVE;   /* admitted all the same */
	}
	secret_value_release(&tok);
	if (m == GH_MEMBER_UNKNOWN)
		return RECHECK_UNKNOWN;
	if (m == GH_MEMBER_BAD_TOKEN)
		snprintf(why, sizeof(why), "GitHub token refused: sign in again");
	/* Whoever is shut out, or whose token no longer shows anything, loses
	 * every right an org gave them. */
	if (m != GH_MEMBER_ACTIVE) {
		keep_allow = !a->allow_org[0];
		keep_admin = !a->admin_org[0];
	}
	return recheck_apply(st, &u, a, keep_allow, keep_admin, why, now, out);
}

int access_org_recheck(struct secret_store *st, int64_t now, struct access_recheck *out)
{
	struct db_admission due[ACCESS_RECHECK_BATCH];
	int64_t deadline_ms = mono_ms() + ACCESS_RECHECK_PASS_MS;
	size_t n;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (db_admission_due(st->db, now - g_config.org_recheck_s, due, ARRAY_SIZE(due), &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		enum recheck_rc rc = recheck_one(st, &due[i], now, deadline_ms, out);

		if (rc == RECHECK_UNKNOWN) {
			out->unknown = true;
			break;
		}
		if (rc == RECHECK_FAILED)
			ret = -1;
	}
	return ret;
}
