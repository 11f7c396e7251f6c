/* anyon-fcgi - the FastCGI responder: a prefork pool of N children on one
 * socket. The parent migrates the schema, opens the socket, forks, and
 * replaces any child that dies. Each child serves the connections it
 * accepted, kept alive between requests when nginx asks (fcgi/conns.h).
 * SIGTERM/SIGINT stop the pool gracefully: each child finishes the requests
 * nginx has sent it, closes its connections, then exits. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "services/audit.h"
#include "base/config.h"
#include "base/keyring.h"
#include "services/legacy.h"
#include "base/curlx.h"
#include "base/log.h"
#include "base/procs.h"
#include "base/util.h"
#include "db/db.h"
#include "services/access.h"
#include "services/github.h"
#include "fcgi/api.h"
#include "fcgi/cache.h"
#include "fcgi/conns.h"

/* A child that dies this soon after start is restarted only after a pause,
 * so a crash loop does not spin. */
#define CRASH_WINDOW_MS 1000
#define STOP_GRACE_MS 10000
/* Kept-alive connections: closed after this long idle (longer than nginx's
 * own keepalive_timeout in the configs we ship, so nginx closes first), at
 * most this many per child, and a read inside a request waits this long. */
#define IDLE_TIMEOUT_S_DEFAULT 75
/* Far above what nginx holds open at once (a connection per request in
 * flight plus `keepalive` idle ones per worker): a child at its maximum
 * closes its oldest idle connection, which nginx may have just picked
 * from its cache (a broken pipe; after the upstream's four entries, a 503). */
#define CONNS_PER_CHILD 512
/* Descriptors a child wants: its connections, the database, logs. */
#define NOFILE_WANTED (CONNS_PER_CHILD + 256)
#define REQUEST_READ_MS 15000

/* Loaded by the parent before fork; every child inherits its copy. */
static struct keyring keyring;

static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_child;

static void parent_on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_child = 1;
	else
		got_stop = 1;
}

/* In a child SIGTERM and SIGINT are blocked except while it waits for a
 * request (conns_run), so they only set the flag there. libfcgi's
 * FCGX_ShutdownPending() is not used: its accept is not used either. */
static void child_on_term(int sig)
{
	(void)sig;
	got_stop = 1;
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;   /* no SA_RESTART: accept() must see EINTR */
	sigaction(sig, &sa, NULL);
}

static void serve_one(FCGX_Request *fx, void *arg)
{
	struct secret_store *st = arg;

	cache_before_request(st->db);
	http_dispatch(fx, arg);
}

/* ANYON_FCGI_IDLE_TIMEOUT: seconds a kept-alive connection may stay idle. */
static int idle_timeout_ms(void)
{
	const char *v = getenv("ANYON_FCGI_IDLE_TIMEOUT");
	int64_t s = IDLE_TIMEOUT_S_DEFAULT;

	if (v && *v && parse_i64(v, 1, 3600, &s))
		die("ANYON_FCGI_IDLE_TIMEOUT must be a number of seconds from 1 to 3600, not '%s'", v);
	return (int)s * 1000;
}

/* Raises the soft descriptor limit to NOFILE_WANTED when the hard one
 * allows (the usual soft limit is 1024). */
static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur >= NOFILE_WANTED)
		return;
	r.rlim_cur = r.rlim_max < NOFILE_WANTED ? r.rlim_max : NOFILE_WANTED;
	if (setrlimit(RLIMIT_NOFILE, &r))
		log_warn("raising the descriptor limit to %llu failed: %s", (unsigned long long)r.rlim_cur,
			 strerror(errno));
}

static void child_main(int listen_fd, const int handoff[2])
{
	struct conns_limits lim = {
		.idle_ms = idle_timeout_ms(),
		.max = 0,
		.read_ms = REQUEST_READ_MS,
		.handoff = { handoff[0], handoff[1] },
	};
	struct secret_store store;
	struct db *db;
	char err[256];
	sigset_t stop, wait;
	struct rlimit nofile;
	int rc;

	raise_nofile();
	lim.max = CONNS_PER_CHILD;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < NOFILE_WANTED)
		lim.max = nofile.rlim_cur > 128 ? (int)(nofile.rlim_cur - 64) / 2 : 32;
	set_handler(SIGTERM, child_on_term);
	set_handler(SIGINT, child_on_term);
	set_handler(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	/* SIGTERM and SIGINT only while waiting: never inside a request. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_SETMASK, &stop, NULL);
	sigemptyset(&wait);

	/* A connection per process, opened after fork. */
	db = db_open(g_config.db_path, false, err, sizeof(err));
	if (!db) {
		log_error("%s", err);
		_exit(1);
	}
	store.db = db;
	store.kr = &keyring;
	cache_child_init(db);
	/* A request about to wait on GitHub first hands this child's other
	 * connections to the pool: with nginx keeping connections, requests
	 * sent on them would otherwise wait behind GitHub. */
	curlx_set_long_wait_hook(conns_hand_off);
	rc = conns_run(listen_fd, &lim, &got_stop, &wait, serve_one, &store);
	cache_child_done();
	db_close(db);
	keyring_wipe(&keyring);
	curl_global_cleanup();
	exit(rc ? 1 : 0);
}

/* ANYON_FCGI_SOCKET_GROUP: the group nginx's workers run as, so they can
 * connect to the 0660 socket without running as the pool's user. */
static void socket_group(const char *path, const char *name)
{
	struct group *g = getgrnam(name);

	if (!g)
		die("ANYON_FCGI_SOCKET_GROUP: no group '%s'", name);
	if (chown(path, (uid_t)-1, g->gr_gid))
		die("cannot give '%s' to group '%s': %s", path, name, strerror(errno));
}

/* libfcgi exits on its own ("bind/listen: No such file or directory") when
 * a unix socket's folder is missing, as /run/anyon is after a reboot
 * without systemd's RuntimeDirectory=: say which folder first. */
static void socket_dir_check(const char *path)
{
	char dir[CONFIG_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		die("cannot listen on '%s': its folder '%s' does not exist (systemd makes it with "
		    "RuntimeDirectory=; see docs/DEPLOYMENT.md)", path, dir);
}

/* At most ANYON_GITHUB_CONCURRENCY children (default one less than the
 * children, at least one) wait on GitHub at once: the rest keep serving. */
static void github_slots(int children)
{
	char dir[CONFIG_PATH_MAX + 32], err[CONFIG_PATH_MAX + 128];
	int n = (int)g_config.github_concurrency;

	if (n == 0)
		n = children > 1 ? children - 1 : 1;
	snprintf(dir, sizeof(dir), "%s/run", g_config.data_dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		die("cannot create '%s': %s", dir, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/run/github-slots", g_config.data_dir);
	if (gh_slots_init(dir, n, err, sizeof(err)))
		die("%s", err);
	log_info("at most %d of %d children wait on GitHub at once", n, children);
}

struct pool {
	struct procs kids;      /* one child per slot, replaced when it dies */
	int listen_fd;
	int handoff[2];         /* conns_handoff_open(): every child has both ends */
	bool respawn;           /* false once the pool is stopping */
};

static void child_start(void *arg)
{
	struct pool *p = arg;

	child_main(p->listen_fd, p->handoff);
}

static int spawn(struct pool *p, int slot)
{
	return procs_spawn(&p->kids, slot, child_start, p) > 0 ? 0 : -1;
}

/* A child died: say how and, unless the pool is stopping, replace it
 * (after a pause when it died young, so a crash loop does not spin). */
static void on_child_exit(int slot, pid_t pid, int status, int64_t ran_ms, void *ctx)
{
	struct pool *p = ctx;

	if (!p->respawn)
		return;
	if (WIFSIGNALED(status))
		log_warn("child %ld killed by signal %d; replacing it", (long)pid, WTERMSIG(status));
	else
		log_warn("child %ld exited with status %d; replacing it", (long)pid, WEXITSTATUS(status));
	if (ran_ms < CRASH_WINDOW_MS)
		sleep(1);
	spawn(p, slot);
}

static void usage(FILE *to)
{
	fprintf(to, "usage: anyon-fcgi [--socket PATH] [--children N] [--pid-file PATH]\n"
		"Serves the anyon API over FastCGI. Settings come from ANYON_* variables;\n"
		"see docs/DEPLOYMENT.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "children", required_argument, NULL, 'n' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *pid_file = NULL;
	struct pool pool = { 0 };
	sigset_t block, old;
	struct db *db;
	int64_t revoked = 0;
	bool tcp;
	char err[256];
	int64_t n;
	int c;

	log_init("anyon-fcgi");
	audit_set_actor("anyon-fcgi");
	config_load_global();
	while ((c = getopt_long(argc, argv, "s:n:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!str_copy(g_config.fcgi_socket, sizeof(g_config.fcgi_socket), optarg))
				die("socket path too long");
			break;
		case 'n':
			if (parse_i64(optarg, 1, 256, &n))
				die("--children must be a number from 1 to 256");
			g_config.fcgi_children = (int)n;
			break;
		case 'p':
			pid_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}

	if (config_check_listener(&g_config, err, sizeof(err)))
		die("%s", err);
	socket_dir_check(g_config.fcgi_socket);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	keyring_load_or_die(&keyring);
	/* Migrate in the parent, then close: no connection crosses fork(). */
	db = db_open(g_config.db_path, true, err, sizeof(err));
	if (!db)
		die("%s", err);
	legacy_import_from_env(db, &keyring);
	/* Access follows the configuration at every start: users off the allow
	 * list (or disabled) lose their sessions, admin flags follow the lists. */
	if (access_reconcile(db, &revoked))
		die("applying the allow and admin lists to the users failed (see the log)");
	if (revoked)
		log_info("signed out %lld session(s) of users no longer allowed in", (long long)revoked);
	db_close(db);

	if (FCGX_Init())
		die("cannot initialise libfcgi");
	/* libfcgi reads "HOST:PORT" or ":PORT" as TCP (a pool on another host
	 * than nginx; FCGI_WEB_SERVER_ADDRS limits who may connect), anything
	 * with a slash as a unix socket path. */
	tcp = !strchr(g_config.fcgi_socket, '/') && strchr(g_config.fcgi_socket, ':');
	pool.listen_fd = FCGX_OpenSocket(g_config.fcgi_socket, 256);
	if (pool.listen_fd < 0)
		die("cannot listen on '%s': %s", g_config.fcgi_socket, strerror(errno));
	/* Every child waits on it with its connections; the one that
	 * accepts first gets the connection, the others find nothing. */
	if (fcntl(pool.listen_fd, F_SETFL, fcntl(pool.listen_fd, F_GETFL) | O_NONBLOCK))
		die("cannot make '%s' non-blocking: %s", g_config.fcgi_socket, strerror(errno));
	idle_timeout_ms();   /* a bad value stops the start, not each child */
	/* Held open here for the pool's life, so a connection handed over
	 * outlives the child that handed it and waits for one to take it. */
	/* The children's shared count of commits (fcgi/cache.h). */
	cache_pool_init();
	if (conns_handoff_open(pool.handoff))
		die("cannot make the pool's hand-off pair: %s", strerror(errno));
	/* nginx reaches the socket through the group; nobody else may. */
	if (!tcp && chmod(g_config.fcgi_socket, 0660))
		die("cannot set the mode of '%s': %s", g_config.fcgi_socket, strerror(errno));
	if (!tcp && g_config.fcgi_socket_group[0])
		socket_group(g_config.fcgi_socket, g_config.fcgi_socket_group);
	if (pid_file)
		write_pid_file(pid_file);

	github_slots(g_config.fcgi_children);
	if (procs_init(&pool.kids, g_config.fcgi_children))
		die("out of memory");
	pool.respawn = true;

	/* Signals are handled only inside sigsuspend(), so none is lost
	 * between checking the flags and waiting. */
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	set_handler(SIGCHLD, parent_on_signal);
	set_handler(SIGTERM, parent_on_signal);
	set_handler(SIGINT, parent_on_signal);
	signal(SIGPIPE, SIG_IGN);

	for (int i = 0; i < pool.kids.n; i++)
		if (spawn(&pool, i))
			die("cannot start the pool");
	log_info("listening on %s with %d children", g_config.fcgi_socket, pool.kids.n);

	while (!got_stop) {
		sigsuspend(&old);
		if (got_child) {
			got_child = 0;
			pool.respawn = !got_stop;
			procs_reap(&pool.kids, on_child_exit, &pool);
		}
	}
	log_info("stopping: letting children finish their requests");
	pool.respawn = false;
	procs_stop(&pool.kids, SIGTERM, STOP_GRACE_MS, NULL, NULL);
	gh_slots_remove();
	if (!tcp)
		unlink(g_config.fcgi_socket);
	if (pid_file)
		unlink(pid_file);
	procs_free(&pool.kids);
	keyring_wipe(&keyring);
	curl_global_cleanup();
	log_info("stopped");
	return 0;
}
