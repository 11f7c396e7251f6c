/* anyonctl - the admin command line: schema, health of a deployment, jobs.
 * Commands are a table; each gets argc/argv after its own name. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/config.h"
#include "common/jobkinds.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "db/db.h"

static struct db *open_db(bool migrate)
{
	char err[256];
	struct db *db = db_open(g_config.db_path, migrate, err, sizeof(err));

	if (!db)
		die("%s", err);
	return db;
}

static int cmd_migrate(int argc, char **argv)
{
	struct db *db;
	int applied = 0, cur, latest;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: anyonctl migrate\n");
		return 2;
	}
	db = open_db(false);
	if (db_migrate(db, &applied)) {
		db_close(db);
		fprintf(stderr, "anyonctl: migration failed; the database is unchanged from the last good step\n");
		return 1;
	}
	db_schema_version(db, &cur, &latest);
	printf("schema at version %d (%d applied now)\n", cur, applied);
	db_close(db);
	return 0;
}

struct doctor {
	int failures;
};

static void check(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void check(struct doctor *d, bool ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%-5s %-10s ", ok ? "ok" : "FAIL", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	d->failures += !ok;
}

static int cmd_doctor(int argc, char **argv)
{
	struct doctor d = { 0 };
	struct stat st;
	char err[256];
	struct db *db;
	int64_t beat;
	bool docker_ok;
	int cur = 0, latest = 0, rc;

	(void)argc;
	(void)argv;
	check(&d, stat(g_config.data_dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	      access(g_config.data_dir, W_OK) == 0, "data dir", "%s", g_config.data_dir);
	db = db_open(g_config.db_path, false, err, sizeof(err));
	check(&d, db != NULL, "database", "%s", db ? g_config.db_path : err);
	if (!db)
		goto out;
	db_schema_version(db, &cur, &latest);
	check(&d, cur == latest, "schema", "version %d of %d%s", cur, latest,
	      cur == latest ? "" : " (run: anyonctl migrate)");
	rc = cur ? db_worker_latest(db, &beat, &docker_ok) : DB_NOTFOUND;
	if (rc == DB_OK) {
		int64_t age = now_s() - beat;

		check(&d, age <= 3 * g_config.heartbeat_s, "worker", "last heartbeat %llds ago",
		      (long long)age);
		check(&d, docker_ok, "docker", "%s", docker_ok ? "reachable from the worker" :
		      "the worker cannot reach the engine");
	} else {
		check(&d, false, "worker", "no worker has ever run");
	}
	check(&d, stat(g_config.fcgi_socket, &st) == 0 && S_ISSOCK(st.st_mode), "fastcgi",
	      "%s", g_config.fcgi_socket);
	db_close(db);
out:
	printf("%s\n", d.failures ? "problems found" : "all checks passed");
	return d.failures ? 1 : 0;
}

static int print_chunk(const struct db_chunk *c, void *arg)
{
	int64_t *last = arg;

	fwrite(c->data, 1, c->len, strcmp(c->stream, "stdout") ? stderr : stdout);
	*last = c->seq;
	return 0;
}

/* anyonctl job echo [--wait] [--delay MS] LINE... */
static int cmd_job(int argc, char **argv)
{
	json_object *args, *lines;
	struct db_user local;
	struct db_job job;
	int64_t id, delay = 0, after = 0;
	bool wait = false, more;
	char err[256];
	struct db *db;
	int i = 2, rc;

	if (argc < 2 || strcmp(argv[1], "echo")) {
		fprintf(stderr, "usage: anyonctl job echo [--wait] [--delay MS] LINE...\n");
		return 2;
	}
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--wait") == 0)
			wait = true;
		else if (strcmp(argv[i], "--delay") == 0 && i + 1 < argc &&
			 parse_i64(argv[i + 1], 0, ECHO_MAX_DELAY_MS, &delay) == 0)
			i++;
		else {
			fprintf(stderr, "anyonctl job echo: bad option '%s'\n", argv[i]);
			return 2;
		}
	}
	args = json_object_new_object();
	lines = json_object_new_array();
	for (; i < argc; i++)
		json_object_array_add(lines, json_object_new_string(argv[i]));
	json_set(args, "lines", lines);
	json_set(args, "delay_ms", json_object_new_int64(delay));
	if (jobkind_validate("echo", args, err, sizeof(err))) {
		fprintf(stderr, "anyonctl job echo: %s\n", err);
		json_object_put(args);
		return 2;
	}
	db = open_db(true);
	if (db_user_local(db, &local) != DB_OK ||
	    db_job_create(db, local.id, "echo", json_object_to_json_string(args),
			  (int)g_config.job_max_attempts, now_s(), &id)) {
		json_object_put(args);
		db_close(db);
		fprintf(stderr, "anyonctl: cannot queue the job\n");
		return 1;
	}
	json_object_put(args);
	printf("job %lld queued\n", (long long)id);
	fflush(stdout);
	rc = 0;
	while (wait) {
		if (db_job_get(db, id, 0, &job) != DB_OK) {
			rc = 1;
			break;
		}
		db_job_output(db, id, after, 500, 1 << 20, print_chunk, &after, &more);
		fflush(stdout);
		if (job_state_final(job.state) && !more) {
			printf("job %lld %s%s%s\n", (long long)id, job_state_name(job.state),
			       job.error[0] ? ": " : "", job.error);
			rc = job.state == JOB_SUCCEEDED ? 0 : 1;
			db_job_clear(&job);
			break;
		}
		db_job_clear(&job);
		usleep(100 * 1000);
	}
	db_close(db);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "migrate", cmd_migrate, "apply pending schema migrations" },
	{ "doctor", cmd_doctor, "check a deployment: data dir, database, schema, worker, docker, socket" },
	{ "job", cmd_job, "job echo [--wait] [--delay MS] LINE...: queue an echo job" },
};

static void usage(FILE *to)
{
	fprintf(to, "usage: anyonctl COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(to, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(to, "\nSettings come from ANYON_* variables (ANYON_DATA_DIR, ANYON_DB, ...).\n");
}

int main(int argc, char **argv)
{
	log_init("anyonctl");
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	config_load_global();
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "anyonctl: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
