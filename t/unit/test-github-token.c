/* services/github_token.c as the worker would use it: a database, a
 * keyring and a user id, no request and no session (audits carry session
 * 0). Storing token answers, reading, invalid and unreadable tokens, a
 * refresh that cannot reach GitHub or has no time left, what a failed call
 * means, forgetting; and no token in any audit row. */
#include "autoconfig.h"

#include <stdlib.h>

#include <sqlite3.h>

#include "base/config.h"
#include "base/json.h"
#include "base/keyring.h"
#include "base/util.h"
#include "db/db.h"
#include "services/github_token.h"
#include "t/unit/tap.h"

static char dir[] = "/tmp/anyon-test-ghtoken-XXXXXX";
static char dbpath[256], keypath[256];

/* Runs SQL on a side connection; for a query, the first column of the
 * first row into out. */
static int side_sql(const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *s;
	sqlite3 *h;
	int rc;

	if (out)
		out[0] = '\0';
	if (sqlite3_open(dbpath, &h) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(h, 5000);
	rc = sqlite3_prepare_v2(h, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && out && sqlite3_column_text(s, 0))
			str_copy(out, outlen, (const char *)sqlite3_column_text(s, 0));
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return rc == SQLITE_OK ? 0 : -1;
}

static long long count(const char *sql)
{
	char buf[32];

	return side_sql(sql, buf, sizeof(buf)) == 0 ? atoll(buf) : -1;
}

static json_object *answer(const char *text)
{
	json_object *o = NULL;
	char err[64];

	json_parse(text, strlen(text), &o, err, sizeof(err));
	return o;
}

static bool token_is(struct secret_store *st, int64_t user, const char *want)
{
	struct secret_value v;
	bool same;

	if (github_token_get(st, user, 0, 0, &v) != GH_OK)
		return false;
	same = v.len == strlen(want) && memcmp(v.data, want, v.len) == 0;
	secret_value_release(&v);
	return same;
}

int main(void)
{
	struct secret_store st;
	struct keyring kr = { 0 };
	struct gh_response g;
	struct secret_value v;
	struct db_user u;
	json_object *a;
	bool connected, invalid;
	char err[600], sql[256];
	struct db *db;

	ok(config_load(&g_config, err, sizeof(err)) == 0, "configuration");
	/* Nothing listens on port 9 here: a refresh cannot reach "GitHub". */
	str_copy(g_config.github_url, sizeof(g_config.github_url), "http://127.0.0.1:9");
	g_config.github_timeout_ms = 2000;
	ok(mkdtemp(dir) != NULL, "scratch dir");
	snprintf(dbpath, sizeof(dbpath), "%s/t.db", dir);
	snprintf(keypath, sizeof(keypath), "%s/keyring", dir);
	db = db_open(dbpath, true, err, sizeof(err));
	ok(db && keyring_create(keypath, err, sizeof(err)) == 0 && keyring_load(&kr, keypath, err, sizeof(err)) == 0,
	   "database and keyring");
	st.db = db;
	st.kr = &kr;
	ok(db_user_create(db, "octocat", "", now_s(), &u) == DB_OK, "a user");

	is_int(github_token_get(&st, u.id, 0, 0, &v), GH_NOT_CONNECTED, "no token: not connected");
	ok(v.data == NULL, "... and nothing handed out");
	github_token_status(&st, u.id, &connected, &invalid);
	ok(!connected && !invalid, "status: not connected");

	/* Storing GitHub's answers. */
	a = answer("{\"token_type\":\"bearer\",\"refresh_token\":\"ghr_R1\"}");
	is_int(github_token_store(&st, u.id, 0, a), GH_BAD_ANSWER, "an answer without access_token is refused");
	json_object_put(a);
	a = answer("{\"access_token\":42}");
	is_int(github_token_store(&st, u.id, 0, a), GH_BAD_ANSWER, "a non-string access_token is refused");
	json_object_put(a);
	is_int(count("SELECT count(*) FROM secrets"), 0, "... and nothing was stored");

	a = answer("{\"access_token\":\"ghu_A1\",\"expires_in\":28800,"
		   "\"refresh_token\":\"ghr_R1\",\"refresh_token_expires_in\":15811200}");
	is_int(github_token_store(&st, u.id, 0, a), GH_OK, "an app token answer is stored");
	json_object_put(a);
	ok(count("SELECT count(*) FROM secrets WHERE kind = 'github_token' AND "
		 "expires_at - strftime('%s','now') BETWEEN 28790 AND 28800") == 1 &&
	   count("SELECT count(*) FROM secrets WHERE kind = 'github_refresh_token' AND "
		 "expires_at - strftime('%s','now') BETWEEN 15811190 AND 15811200") == 1,
	   "... both tokens, each with its expiry");
	ok(token_is(&st, u.id, "ghu_A1"), "the token is handed out while it is fresh");

	/* Composes: stored inside a caller's transaction that rolls back. */
	a = answer("{\"access_token\":\"gho_B2\"}");
	ok(db_begin_write(db) == DB_OK && github_token_store(&st, u.id, 0, a) == GH_OK,
	   "a store inside a transaction");
	db_rollback(db);
	json_object_put(a);
	ok(token_is(&st, u.id, "ghu_A1") && db_tx_depth(db) == 0, "... rolled back with it");

	/* About to expire: refreshed first, and GitHub cannot be reached. */
	side_sql("UPDATE secrets SET expires_at = strftime('%s','now') + 30 WHERE kind = 'github_token'", NULL, 0);
	is_int(github_token_get(&st, u.id, 0, 0, &v), GH_UNAVAILABLE,
	       "an expiring token, GitHub unreachable: unavailable");
	github_token_status(&st, u.id, &connected, &invalid);
	ok(connected && !invalid, "... and the token is not marked invalid for that");
	is_int(github_token_get(&st, u.id, 0, mono_ms() - 1, &v), GH_DEADLINE,
	       "a deadline already passed: no refresh call, GH_DEADLINE");
	side_sql("DELETE FROM secrets WHERE kind = 'github_refresh_token'", NULL, 0);
	is_int(github_token_get(&st, u.id, 0, 0, &v), GH_TOKEN_INVALID, "expiring with no refresh token: invalid");
	github_token_status(&st, u.id, &connected, &invalid);
	ok(connected && invalid, "... and marked so");
	is_int(github_token_get(&st, u.id, 0, 0, &v), GH_TOKEN_INVALID, "a marked token stays invalid");

	/* A new sign-in's token replaces it, valid again. */
	a = answer("{\"access_token\":\"gho_C3\"}");
	is_int(github_token_store(&st, u.id, 0, a), GH_OK, "a new token is stored");
	json_object_put(a);
	ok(token_is(&st, u.id, "gho_C3"), "... and used");

	/* What failed calls mean. */
	memset(&g, 0, sizeof(g));
	g.status = 503;
	is_int(github_token_failed(&st, u.id, 0, &g, "a test call"), GH_UNAVAILABLE, "503: unavailable");
	g.status = 429;
	is_int(github_token_failed(&st, u.id, 0, &g, "a test call"), GH_RATE_LIMITED, "429: rate limited");
	g.status = 0;
	g.timed_out = g.deadline = true;
	is_int(github_token_failed(&st, u.id, 0, &g, "a test call"), GH_DEADLINE, "the deadline: GH_DEADLINE");
	g.timed_out = g.deadline = false;
	g.status = 401;
	is_int(github_token_failed(&st, u.id, 0, &g, "a test call"), GH_TOKEN_INVALID, "401: invalid");
	github_token_status(&st, u.id, &connected, &invalid);
	ok(connected && invalid, "... and marked so");
	is_int(count("SELECT count(*) FROM audit WHERE action = 'github.token_invalid' AND session_id IS NULL "
		     "AND detail = 'GitHub answered 401 to a test call'"), 1, "... audited, with no session");

	/* A token that does not decrypt. */
	a = answer("{\"access_token\":\"gho_D4\"}");
	github_token_store(&st, u.id, 0, a);
	json_object_put(a);
	side_sql("UPDATE secrets SET tag = zeroblob(16) WHERE kind = 'github_token'", NULL, 0);
	is_int(github_token_get(&st, u.id, 0, 0, &v), GH_UNREADABLE, "a tampered token: unreadable");

	is_int(github_token_forget(&st, u.id, 0), 0, "forget");
	is_int(github_token_get(&st, u.id, 0, 0, &v), GH_NOT_CONNECTED, "... then not connected");
	is_int(count("SELECT count(*) FROM audit WHERE action = 'github.disconnected' AND session_id IS NULL"), 1,
	       "... audited");

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE detail LIKE '%%gh_\\_%%' ESCAPE '\\' "
		 "OR detail LIKE '%%A1%%' OR detail LIKE '%%R1%%' OR detail LIKE '%%C3%%'");
	is_int(count(sql), 0, "no audit row holds a token");
	ok(count("SELECT count(*) FROM audit") >= 8 &&
	   count("SELECT count(*) FROM audit WHERE session_id IS NOT NULL") == 0,
	   "every audit row so far carries no session");

	db_close(db);
	keyring_wipe(&kr);
	snprintf(sql, sizeof(sql), "rm -rf '%s'", dir);
	ok(system(sql) == 0, "cleanup");
	return done_testing();
}
