/* The git runner (services/git.c): time limit kills the whole process
 * group, output bounded, environment cleaned, no descriptor leaks; and the
 * project rules built on it (services/projects.c). */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "services/git.h"
#include "services/projects.h"
#include "t/unit/tap.h"

static struct git_opts opts(int64_t timeout_ms, size_t out_max)
{
	struct git_opts o = { .timeout_ms = timeout_ms, .out_max = out_max, .err_max = 4096 };

	return o;
}

/* The pid a shell alias wrote to path, or 0. */
static long read_pid(const char *path)
{
	FILE *f = fopen(path, "r");
	long pid = 0;

	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/* Whether pid is dead: no such process, or a zombie (an orphan waits for
 * a reaper that may be slow, or absent in a container). */
static bool gone(pid_t pid)
{
	for (int i = 0; i < 200; i++) {
		char path[64], stat[256];
		FILE *f;
		char *rp;
		bool dead;

		snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
		f = fopen(path, "r");
		if (!f)
			return true;
		dead = fgets(stat, sizeof(stat), f) && (rp = strrchr(stat, ')')) && (rp[2] == 'Z' || rp[2] == 'X');
		fclose(f);
		if (dead)
			return true;
		usleep(10000);
	}
	return false;
}

int main(void)
{
	struct git_result res;
	struct git_opts o;
	int64_t t0, took;
	char dir[] = "/tmp/anyon-test-git-XXXXXX", pidfile[256], alias[512], marker[300];
	static char listing[8192];
	int leak_fd;

	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);

	/* an ordinary run */
	{
		const char *args[] = { "version", NULL };

		o = opts(10000, 4096);
		is_int(git_run(args, &o, &res), 0, "git version runs");
		ok(strncmp(res.out, "git version ", 12) == 0, "its stdout is captured: %s", res.out);
		is_int(res.exit_code, 0, "exit code 0");
		ok(!res.timed_out && !res.out_cut, "neither timed out nor cut");
		git_result_release(&res);
	}

	/* the time limit: a command that would run 30 s is killed, with the
	 * process it started (its whole process group) */
	{
		const char *args[] = { "-c", alias, "hang", NULL };

		snprintf(alias, sizeof(alias), "alias.hang=!echo $$ > %s; sleep 30", pidfile);
		o = opts(300, 4096);
		t0 = mono_ms();
		is_int(git_run(args, &o, &res), 0, "a hanging run returns");
		took = mono_ms() - t0;
		ok(res.timed_out, "it timed out");
		is_int(res.exit_code, -1, "no exit code for a killed run");
		ok(took >= 300 && took < 3000, "it ended at the limit (%lld ms)", (long long)took);
		{
			long pid = read_pid(pidfile);

			ok(pid > 0, "the alias's shell wrote its pid");
			ok(pid > 0 && gone((pid_t)pid), "the shell git started is gone too (process group killed)");
		}
		git_result_release(&res);
	}

	/* git exits but something it left holds the pipe: not the whole limit */
	{
		const char *args[] = { "-c", "alias.bg=!(sleep 30 &); echo done", "bg", NULL };

		o = opts(10000, 4096);
		t0 = mono_ms();
		is_int(git_run(args, &o, &res), 0, "a run leaving a background process returns");
		took = mono_ms() - t0;
		ok(!res.timed_out && res.exit_code == 0, "it is not a timeout: git exited 0");
		is_str(res.out, "done\n", "its output is kept");
		ok(took < 3000, "it did not wait for the straggler (%lld ms)", (long long)took);
		git_result_release(&res);
	}

	/* output bounded: 1 MB written, 1000 bytes kept, the writer not blocked */
	{
		const char *args[] = { "-c", "alias.big=!head -c 1000000 /dev/zero | tr '\\000' x; echo oops >&2",
				       "big", NULL };

		o = opts(10000, 1000);
		o.err_max = 3;
		is_int(git_run(args, &o, &res), 0, "a run with large output returns");
		is_int(res.out_len, 1000, "stdout kept up to out_max");
		ok(res.out_cut, "stdout says it was cut");
		is_int(strlen(res.out), 1000, "stdout is NUL-terminated at the bound");
		ok(res.out[0] == 'x' && res.out[999] == 'x', "the bytes kept are the first ones");
		is_int(res.err_len, 3, "stderr kept up to err_max");
		ok(res.err_cut && strcmp(res.err, "oop") == 0, "stderr cut too: %s", res.err);
		is_int(res.exit_code, 0, "the writer finished (exit 0)");
		git_result_release(&res);
	}

	/* a clean environment, and none of our descriptors */
	{
		const char *args[] = { "-c", alias, "envy", NULL };
		const char *extra[] = { "ANYON_EXTRA=yes", NULL };

		setenv("ANYON_SECRETISH", "leak", 1);
		setenv("GIT_DIR", "/nonexistent", 1);
		setenv("GIT_SSH_COMMAND", "touch /tmp/pwned", 1);
		/* not O_CLOEXEC: must still not reach git */
		snprintf(marker, sizeof(marker), "%s/leak-marker", dir);
		leak_fd = open(marker, O_RDONLY | O_CREAT, 0600);
		/* What the shell git starts holds open, by target: the shell's own
		 * descriptors (a pipeline's ends, a saved fd) vary, the marker file
		 * must not be among them. */
		snprintf(alias, sizeof(alias), "alias.envy=!env; ls -l /proc/$$/fd/ > %s/fds; true", dir);
		o = opts(10000, 65536);
		o.env = extra;
		is_int(git_run(args, &o, &res), 0, "env runs");
		ok(!strstr(res.out, "ANYON_SECRETISH") && !strstr(res.out, "GIT_DIR=") &&
		   !strstr(res.out, "GIT_SSH_COMMAND"), "nothing of our environment is inherited");
		ok(strstr(res.out, "GIT_CONFIG_NOSYSTEM=1\n") && strstr(res.out, "GIT_CONFIG_GLOBAL=/dev/null\n") &&
		   strstr(res.out, "GIT_TERMINAL_PROMPT=0\n") && strstr(res.out, "GIT_ALLOW_PROTOCOL=file\n"),
		   "no system or global config, no prompt, file protocol only");
		ok(strstr(res.out, "ANYON_EXTRA=yes\n") != NULL, "the caller's extra entries are passed");
		ok(strstr(res.out, "core.hookspath") || strstr(res.out, "core.hooksPath"),
		   "the safe config goes along to what git runs (GIT_CONFIG_PARAMETERS)");
		git_result_release(&res);
		{
			char path[300];
			FILE *f;

			snprintf(path, sizeof(path), "%s/fds", dir);
			f = fopen(path, "r");
			listing[0] = '\0';
			if (f) {
				size_t n = fread(listing, 1, sizeof(listing) - 1, f);

				listing[n] = '\0';
				fclose(f);
			}
			ok(strstr(listing, " 0 -> ") && !strstr(listing, "leak-marker"),
			   "git's children do not get the caller's descriptors (fd %d, leak-marker, not passed)", leak_fd);
			if (strstr(listing, "leak-marker"))
				diag("%s", listing);
			unlink(path);
		}
		close(leak_fd);
		unlink(marker);
	}

	/* git's error line */
	{
		const char *args[] = { "ls-remote", "--", dir, NULL };
		char line[200];

		o = opts(10000, 4096);
		is_int(git_run(args, &o, &res), 0, "ls-remote on a plain directory runs");
		ok(res.exit_code != 0, "and fails (exit %d)", res.exit_code);
		git_err_line(&res, line, sizeof(line));
		ok(strstr(line, "does not appear to be a git repository") || strstr(line, "not a git repository"),
		   "the error line without 'fatal: ': %s", line);
		git_result_release(&res);
	}

	/* project rules */
	/* (which executors exist is the executors table's: t/helper/attempt-rules) */
	ok(project_branch_ok("main") && project_branch_ok("release/1.2") && project_branch_ok("feat-x_y"),
	   "ordinary branch names pass");
	{
		static const char *const bad[] = { "", "-x", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[",
						   "a\\b", "a/", "/a", "a.", "a.lock", "a.lock/b", "a//b", "a@{1}",
						   "@", ".a", "a/.b", "a\nb", NULL };
		int bad_ok = 0;

		for (int i = 0; bad[i]; i++)
			if (project_branch_ok(bad[i])) {
				printf("# accepted: '%s'\n", bad[i]);
				bad_ok++;
			}
		is_int(bad_ok, 0, "branch names git refuses are refused");
	}
	{
		char name[128];

		ok(project_name_from("/srv/git/widget.git", name, sizeof(name)) == 0 && strcmp(name, "widget") == 0,
		   "name of /srv/git/widget.git: %s", name);
		ok(project_name_from("/home/me/code/app/", name, sizeof(name)) == 0 && strcmp(name, "app") == 0,
		   "name of a path with a trailing slash: %s", name);
		ok(project_name_from("https://example.com/team/tool.git", name, sizeof(name)) == 0 &&
		   strcmp(name, "tool") == 0, "name of a URL: %s", name);
		ok(project_name_from("/x/.git", name, sizeof(name)) == 0 && strcmp(name, "x") == 0,
		   "name of a work tree's .git is the work tree's: %s", name);
		ok(project_name_from("/", name, sizeof(name)) != 0 && project_name_from("/.git", name, sizeof(name)) != 0,
		   "no name from / or /.git");
	}
	{
		char why[200];

		ok(project_url_check("https://example.com/a/b.git", false, why, sizeof(why)) == 0, "https URL passes");
		ok(project_url_check("https://user:pw@example.com/a.git", false, why, sizeof(why)) != 0 &&
		   strstr(why, "password"), "credentials refused: %s", why);
		ok(project_url_check("https://token@example.com/a.git", false, why, sizeof(why)) != 0,
		   "a user name alone refused");
		ok(project_url_check("http://example.com/a.git", false, why, sizeof(why)) != 0 &&
		   strstr(why, "https"), "http refused: %s", why);
		ok(project_url_check("http://127.0.0.1:8/a.git", false, why, sizeof(why)) != 0,
		   "local http refused without the test setting");
		ok(project_url_check("http://127.0.0.1:8/a.git", true, why, sizeof(why)) == 0 &&
		   project_url_check("http://localhost/a.git", true, why, sizeof(why)) == 0,
		   "local http allowed with it");
		ok(project_url_check("http://example.com/a.git", true, why, sizeof(why)) != 0,
		   "other http hosts refused even with it");
		ok(project_url_check("ext::sh -c touch% /tmp/x", true, why, sizeof(why)) != 0 &&
		   project_url_check("file:///etc", true, why, sizeof(why)) != 0 &&
		   project_url_check("ssh://example.com/a.git", true, why, sizeof(why)) != 0 &&
		   project_url_check("https://example.com/a\n.git", true, why, sizeof(why)) != 0,
		   "other schemes and control characters refused");
	}
	{
		char b[64];

		project_parse_symref("ref: refs/heads/trunk\tHEAD\n0123abcd\tHEAD\n", b, sizeof(b));
		is_str(b, "trunk", "symref parsed");
		project_parse_symref("0123abcd\tHEAD\n", b, sizeof(b));
		is_str(b, "", "no symref: no branch");
		project_parse_symref("ref: refs/heads/a..b\tHEAD\n", b, sizeof(b));
		is_str(b, "", "an invalid branch from a server is not taken");
	}

	unlink(pidfile);
	rmdir(dir);
	return done_testing();
}
