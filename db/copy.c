/* copy.c - every row of one database into another (anyonctl copy-db):
 * the day one host is not enough, a SQLite install moves to PostgreSQL.
 *
 * Ids are kept (a secret's AAD binds its row id, user and kind, so a
 * renumbered secret would no longer open). The target is migrated first
 * and must hold nothing but what migrations seed; the copy is one
 * transaction on the target, so a failure leaves it as empty as it was.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "db/query.h"

/* Column types: i integer, t text, b blob. Parents before children. */
static const struct copy_table {
	const char *name;
	const char *cols;
	const char *types;
	bool identity;            /* an id sequence to advance afterwards */
} tables[] = {
	{ "users", "id, login, name, is_admin, is_local, created_at, updated_at, github_id, "
	  "github_login, email, avatar_url, disabled, admin_grant, output_bytes", "ittiiiiitttiii", true },
	{ "sessions", "id, token_hash, user_id, created_at, last_seen_at, expires_at, created_addr, cloud, "
	  "user_agent", "ibiiiitit", true },
	{ "jobs", "id, user_id, kind, args, state, attempts, max_attempts, lease_owner, lease_expires_at, "
	  "cancel_requested, exit_code, error, created_at, started_at, finished_at, output_seq, "
	  "output_offset, output_bytes, container_id, container_started_at, container_ended_at, "
	  "container_exit, container_oom", "iitttiitiiitiiiiiitiiii", true },
	{ "job_output", "job_id, seq, stream, data, created_at", "iitbi", false },
	{ "workers", "id, host, pid, started_at, heartbeat_at, docker_ok, docker_version, stopped_at, "
	  "claude_version, claude_error", "ttiiiititt", false },
	{ "secrets", "id, user_id, kind, key_id, nonce, ciphertext, tag, created_at, updated_at, "
	  "last_used_at, expires_at, invalid", "iittbbbiiiii", true },
	{ "audit", "id, at, user_id, session_id, actor, action, outcome, detail", "iiiitttt", true },
	{ "device_flows", "id, session_id, remote_addr, key_id, code_nonce, code_ciphertext, code_tag, "
	  "user_code, verification_uri, interval_s, expires_at, next_poll_at, status, message, user_id, "
	  "created_at", "tittbbbttiiittii", false },
	{ "projects", "id, user_id, name, github_full_name, clone_url, default_branch, private, "
	  "description, created_at, source, location, base_branch, setup_script, default_executor",
	  "iittttititttttt", true },
	{ "access_bindings", "list, entry, github_id, bound_at", "ttii", false },
	{ "github_repo_cache", "session_id, user_id, fetched_at, truncated, repos", "iiiit", false },
	{ "user_admission", "user_id, allow_org, admin_org, checked_at", "itti", false },
	{ "tasks", "id, user_id, project_id, title, description, status, position, created_at, updated_at",
	  "iiitttiii", true },
	{ "events", "id, user_id, kind, subject, project_id, created_at", "iitiii", true },
	{ "executors", "name, label, command, resume, parser, credential, position", "tttttti", false },
	{ "attempts", "id, user_id, project_id, task_id, executor, base_branch, branch, state, error, error_code, "
	  "session_id, base_commit, head_commit, pr_url, pr_number, pr_state, pr_title, pr_body, created_at, "
	  "updated_at", "iiiittttttttttittttii", true },
	{ "attempt_runs", "id, attempt_id, user_id, seq, prompt, job_id, state, exit_code, created_at, finished_at",
	  "iiiititiii", true },
	{ "attempt_diffs", "attempt_id, diff, files, additions, deletions, created_at", "itiiii", false },
	{ "claude_login_inputs", "id, job_id, user_id, key_id, nonce, ciphertext, tag, created_at", "iiitbbbi", true },
	{ "claude_auth", "user_id, method, last_error, updated_at", "itti", false },
};

#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* Whether table t holds rows migrations seed (executors): the target's
 * are replaced by the source's (which may have been changed) rather than
 * counted as data. */
static bool seeded(size_t t)
{
	return strcmp(tables[t].name, "executors") == 0;
}
#define SQL_MAX 1024

/* Queries built at run time; they live as long as the process (a query's
 * slot outlives any one connection). */
static char sel_sql[NTABLES][SQL_MAX], ins_sql[NTABLES][SQL_MAX], cnt_sql[NTABLES][SQL_MAX];
static struct query sel_q[NTABLES], ins_q[NTABLES], cnt_q[NTABLES];

static void build_queries(void)
{
	for (size_t t = 0; t < NTABLES; t++) {
		size_t n = strlen(tables[t].types), o;

		if (sel_q[t].name)
			continue;
		snprintf(sel_sql[t], SQL_MAX, "SELECT %s FROM %s ORDER BY 1, 2", tables[t].cols, tables[t].name);
		o = (size_t)snprintf(ins_sql[t], SQL_MAX, "INSERT INTO %s (%s) VALUES (", tables[t].name,
				     tables[t].cols);
		for (size_t c = 0; c < n && o < SQL_MAX; c++)
			o += (size_t)snprintf(ins_sql[t] + o, SQL_MAX - o, "%s?%zu", c ? ", " : "", c + 1);
		if (o < SQL_MAX)
			snprintf(ins_sql[t] + o, SQL_MAX - o, ")");
		snprintf(cnt_sql[t], SQL_MAX, "SELECT count(*) FROM %s", tables[t].name);
		sel_q[t] = (struct query)QUERY(tables[t].name, sel_sql[t]);
		ins_q[t] = (struct query)QUERY(tables[t].name, ins_sql[t]);
		cnt_q[t] = (struct query)QUERY(tables[t].name, cnt_sql[t]);
	}
}

bool db_copy_covers(const char *table)
{
	for (size_t t = 0; t < NTABLES; t++)
		if (strcmp(tables[t].name, table) == 0)
			return true;
	return false;
}

static int count_rows(struct db *db, size_t t, int64_t *n)
{
	struct stmt *s = q_start(db, &cnt_q[t]);
	int rc = q_row(s);

	*n = rc == DB_OK ? q_i64(s, 0) : -1;
	q_end(s);
	return rc == DB_OK ? DB_OK : DB_ERROR;
}

/* Empty means: no rows but the local user that migration 001 seeds. */
static int target_empty(struct db *dst, char *err, size_t errlen)
{
	static struct query q_seeded = QUERY("copy.seeded",
		"SELECT count(*) FROM users WHERE NOT (id = 1 AND is_local = 1)");
	struct stmt *s;
	int64_t n;

	for (size_t t = 0; t < NTABLES; t++) {
		if (seeded(t))
			continue;
		if (strcmp(tables[t].name, "users") == 0) {
			s = q_start(dst, &q_seeded);
			n = q_row(s) == DB_OK ? q_i64(s, 0) : -1;
			q_end(s);
		} else if (count_rows(dst, t, &n)) {
			n = -1;
		}
		if (n != 0) {
			snprintf(err, errlen, n < 0 ? "cannot read table %s of the target" :
				 "the target is not empty (table %s has rows); copy-db only fills a new database",
				 tables[t].name);
			return DB_CONFLICT;
		}
	}
	return DB_OK;
}

static int copy_table(struct db *src, struct db *dst, size_t t, int64_t *copied)
{
	const char *types = tables[t].types;
	struct stmt *in = q_start(src, &sel_q[t]);
	int rc;

	*copied = 0;
	while ((rc = q_step(in)) == BE_ROW) {
		struct stmt *out = q_start(dst, &ins_q[t]);

		for (int c = 0; types[c]; c++) {
			size_t len;
			const void *b;

			if (q_null(in, c))
				continue;
			switch (types[c]) {
			case 'i':
				q_int(out, c + 1, q_i64(in, c));
				break;
			case 't':
				q_text(out, c + 1, q_str(in, c));
				break;
			default:
				b = q_blob_col(in, c, &len);
				q_blob(out, c + 1, b, len);
				break;
			}
		}
		if (q_exec(out, NULL)) {
			rc = DB_ERROR;
			break;
		}
		(*copied)++;
	}
	q_end(in);
	return rc == BE_DONE ? DB_OK : DB_ERROR;
}

/* PostgreSQL: identity sequences continue after the copied ids. */
static int advance_sequences(struct db *dst)
{
	char sql[256];

	if (!db_is_pg(dst))
		return DB_OK;
	for (size_t t = 0; t < NTABLES; t++) {
		if (!tables[t].identity)
			continue;
		snprintf(sql, sizeof(sql), "SELECT setval(pg_get_serial_sequence('%s', 'id'), "
			 "(SELECT coalesce(max(id), 0) + 1 FROM %s), false)", tables[t].name, tables[t].name);
		if (db_exec(dst, sql))
			return DB_ERROR;
	}
	return DB_OK;
}

int db_copy(struct db *src, struct db *dst, db_copy_progress_fn progress, void *arg,
	    char *err, size_t errlen)
{
	static struct query q_unseed = QUERY("copy.unseed", "DELETE FROM users WHERE id = 1 AND is_local = 1");
	int cur_s, lat_s, cur_d, lat_d, rc;

	build_queries();
	if (db_schema_version(src, &cur_s, &lat_s) || db_schema_version(dst, &cur_d, &lat_d)) {
		snprintf(err, errlen, "cannot read the schema versions");
		return DB_ERROR;
	}
	if (cur_s != lat_s || cur_d != lat_d) {
		snprintf(err, errlen, "both databases must be migrated to version %d first (source %d, target %d)",
			 lat_s, cur_s, cur_d);
		return DB_ERROR;
	}
	if (db_begin_write(dst)) {
		snprintf(err, errlen, "cannot start a transaction on the target");
		return DB_ERROR;
	}
	rc = target_empty(dst, err, errlen);
	if (rc == DB_OK && q_exec(q_start(dst, &q_unseed), NULL))
		rc = DB_ERROR;
	for (size_t t = 0; rc == DB_OK && t < NTABLES; t++) {
		int64_t copied, there;

		if (seeded(t)) {
			char sql[128];

			snprintf(sql, sizeof(sql), "DELETE FROM %s", tables[t].name);
			if (db_exec(dst, sql)) {
				snprintf(err, errlen, "emptying table %s of the target failed", tables[t].name);
				rc = DB_ERROR;
				break;
			}
		}
		rc = copy_table(src, dst, t, &copied);
		if (rc == DB_OK && (count_rows(dst, t, &there) || there != copied)) {
			snprintf(err, errlen, "table %s: %lld rows read, %lld in the target",
				 tables[t].name, (long long)copied, (long long)there);
			rc = DB_ERROR;
		} else if (rc != DB_OK) {
			snprintf(err, errlen, "copying table %s failed (see the log)", tables[t].name);
		} else if (progress) {
			progress(tables[t].name, copied, arg);
		}
	}
	if (rc == DB_OK && advance_sequences(dst)) {
		snprintf(err, errlen, "advancing the id sequences failed (see the log)");
		rc = DB_ERROR;
	}
	if (rc != DB_OK || db_commit(dst)) {
		db_rollback(dst);
		if (rc == DB_OK)
			snprintf(err, errlen, "committing the copy failed");
		return rc == DB_CONFLICT ? DB_CONFLICT : DB_ERROR;
	}
	return DB_OK;
}
