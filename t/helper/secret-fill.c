/* secret-fill - test helper: puts many secrets quickly, or checks them all.
 *   secret-fill fill N     users fill-1..fill-N, each with github_token "gho_fill_<i>"
 *   secret-fill verify N   every one decrypts to its value; prints rows per key
 * Uses ANYON_DATA_DIR / ANYON_DB / the keyring like the real programs. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/keyring.h"
#include "base/log.h"
#include "services/secrets.h"
#include "base/util.h"
#include "db/db.h"

int main(int argc, char **argv)
{
	struct keyring kr = { 0 };
	struct secret_store st;
	char err[256], login[32], want[64];
	struct db *db;
	int64_t n;
	int bad = 0;

	log_init("secret-fill");
	config_load_global();
	if (argc != 3 || parse_i64(argv[2], 1, 1000000, &n))
		die("usage: secret-fill fill|verify N");
	keyring_load_or_die(&kr);
	db = db_open(g_config.db_path, true, err, sizeof(err));
	if (!db)
		die("%s", err);
	st.db = db;
	st.kr = &kr;
	if (strcmp(argv[1], "fill") == 0 && db_begin_write(db) == DB_OK) {
		for (int64_t i = 1; i <= n; i++) {
			struct db_user u;

			snprintf(login, sizeof(login), "fill-%lld", (long long)i);
			snprintf(want, sizeof(want), "gho_fill_%lld", (long long)i);
			if (db_user_create(db, login, "", now_s(), &u) != DB_OK)
				die("cannot create %s", login);
			/* secret_put opens its own transaction: commit around it */
			db_commit(db);
			if (secret_put(&st, u.id, "github_token", want, strlen(want), 0, 0) != SECRET_OK)
				die("cannot store for %s", login);
			db_begin_write(db);
		}
		db_commit(db);
		printf("filled %lld\n", (long long)n);
	} else if (strcmp(argv[1], "verify") == 0) {
		for (int64_t i = 1; i <= n; i++) {
			struct secret_value v;
			struct db_user u;

			snprintf(login, sizeof(login), "fill-%lld", (long long)i);
			snprintf(want, sizeof(want), "gho_fill_%lld", (long long)i);
			if (db_user_by_login(db, login, &u) != DB_OK ||
			    secret_get(&st, u.id, "github_token", 0, &v) != SECRET_OK) {
				bad++;
				continue;
			}
			bad += v.len != strlen(want) || memcmp(v.data, want, v.len) != 0;
			secret_value_release(&v);
		}
		for (int k = 0; k < kr.n; k++) {
			int64_t c = 0;

			db_secret_count_under(db, kr.keys[k].id, &c);
			printf("%s %lld\n", kr.keys[k].id, (long long)c);
		}
		printf("unreadable %d\n", bad);
	} else {
		die("usage: secret-fill fill|verify N");
	}
	db_close(db);
	keyring_wipe(&kr);
	return bad ? 1 : 0;
}
