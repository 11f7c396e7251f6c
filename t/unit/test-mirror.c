/* The host mirror (services/mirror.c) with real git on repositories made
 * in a scratch directory: sync from a path, branch commits, bundles out
 * and back in (only the attempt's ref changes; extra refs, garbage,
 * oversized bundles, missing prerequisites and bad objects refused), the
 * diff's JSON and its limits, pushes (fast-forward, rejected, forced,
 * branches outside anyon/ refused), removal without following links. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/util.h"
#include "services/mirror.h"
#include "t/unit/tap.h"

static char dir[] = "/tmp/anyon-test-mirror-XXXXXX";

/* Runs a shell command (in dir); its exit status. */
__attribute__((format(printf, 1, 2)))
static int sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The first line of a shell command's stdout into out ("" on failure). */
__attribute__((format(printf, 3, 4)))
static char *cap(char *out, size_t len, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	p = popen(cmd, "r");
	if (!p)
		return out;
	if (!fgets(out, (int)len, p))
		out[0] = '\0';
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
	return out;
}

/* Every ref of the mirror with its value, one per line. */
static char *refs_of(const char *mirror)
{
	static char buf[4][16384];
	static int i;
	char cmd[1024];
	FILE *p;
	size_t n;

	i = (i + 1) % 4;
	snprintf(cmd, sizeof(cmd), "git --git-dir=%s for-each-ref --format='%%(refname) %%(objectname)'", mirror);
	p = popen(cmd, "r");
	n = p ? fread(buf[i], 1, sizeof(buf[i]) - 1, p) : 0;
	buf[i][n] = '\0';
	if (p)
		pclose(p);
	return buf[i];
}

static json_object *file_of(json_object *diff, const char *path)
{
	json_object *files = json_object_object_get(diff, "files");

	for (size_t i = 0; i < json_object_array_length(files); i++) {
		json_object *f = json_object_array_get_idx(files, i);

		if (strcmp(json_object_get_string(json_object_object_get(f, "path")), path) == 0)
			return f;
	}
	return NULL;
}

static const char *sget(json_object *o, const char *k)
{
	json_object *v = json_object_object_get(o, k);

	return v ? json_object_get_string(v) : NULL;
}

static int64_t iget(json_object *o, const char *k)
{
	return json_object_get_int64(json_object_object_get(o, k));
}

static bool bget(json_object *o, const char *k)
{
	return json_object_get_boolean(json_object_object_get(o, k));
}

static size_t hunk_count(json_object *f)
{
	return json_object_array_length(json_object_object_get(f, "hunks"));
}

/* Whether any hunk line of f has t and s. */
static bool has_line(json_object *f, const char *t, const char *s)
{
	json_object *hunks = json_object_object_get(f, "hunks");

	for (size_t i = 0; i < json_object_array_length(hunks); i++) {
		json_object *lines = json_object_object_get(json_object_array_get_idx(hunks, i), "lines");

		for (size_t j = 0; j < json_object_array_length(lines); j++) {
			json_object *l = json_object_array_get_idx(lines, j);

			if (strcmp(sget(l, "t"), t) == 0 && strcmp(sget(l, "s"), s) == 0)
				return true;
		}
	}
	return false;
}

static int import(const char *mirror, const char *bundle, const char *branch, int64_t id, char *head)
{
	char err[512];
	int rc = mirror_import(mirror, bundle, branch, id, head, err, sizeof(err));

	if (rc)
		diag("import: %s", err);
	return rc;
}

int main(void)
{
	char data[256], src[256], mirror[512], scratch[256], remote[256], err[512], sha[MIRROR_SHA_LEN + 1];
	char base[64], head[MIRROR_SHA_LEN + 1], want[128], before_refs[16384], bundle[512], tmp[512];
	struct mirror_source s = { 0 };
	struct stat st;

	if (!mkdtemp(dir))
		BAIL_OUT("mkdtemp: %s", strerror(errno));
	if (chdir(dir))
		BAIL_OUT("chdir");
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("HOME", dir, 1);
	setenv("GIT_AUTHOR_NAME", "T", 1);
	setenv("GIT_AUTHOR_EMAIL", "t@example.com", 1);
	setenv("GIT_COMMITTER_NAME", "T", 1);
	setenv("GIT_COMMITTER_EMAIL", "t@example.com", 1);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(scratch, sizeof(scratch), "%s/scratch", dir);
	snprintf(remote, sizeof(remote), "%s/remote.git", dir);
	mkdir(data, 0700);

	/* the project: main with text, a file to rename, one to delete, a binary, and a branch */
	if (sh("git init -q -b main src && cd src && printf 'a\\nb\\nc\\n' > m.txt && seq 1 50 > r.txt && "
	       "echo gone > d.txt && printf '\\000\\001bin' > b.bin && git add -A && git commit -qm one && "
	       "git branch feature") != 0)
		BAIL_OUT("cannot make the source repository");

	/* ---- sync ---- */
	s.url = src;
	if (!ok(mirror_sync(data, 1, &s, err, sizeof(err)) == 0, "sync from a path"))
		diag("%s", err);
	ok(mirror_path(data, 1, mirror, sizeof(mirror)) == 0, "mirror_path");
	snprintf(want, sizeof(want), "/data/mirrors/project-1.git");
	ok(strlen(mirror) > strlen(want) && strcmp(mirror + strlen(mirror) - strlen(want), want) == 0,
	   "the mirror is <data>/mirrors/project-1.git");
	ok(stat(mirror, &st) == 0 && (st.st_mode & 0777) == 0700, "the mirror's directory is 0700");
	snprintf(tmp, sizeof(tmp), "%s/objects", mirror);
	ok(stat(tmp, &st) == 0 && (st.st_mode & 0077) == 0, "its objects directory is closed to others too");
	snprintf(tmp, sizeof(tmp), "%s/mirrors", data);
	ok(stat(tmp, &st) == 0 && (st.st_mode & 0777) == 0700, "mirrors/ is 0700");
	ok(sh("test -z \"$(ls %s/hooks 2>/dev/null)\"", mirror) == 0, "no hook samples copied into the mirror");
	ok(sh("! grep -q '%s' %s/config", src, mirror) == 0, "the source's location is not stored in the mirror's config");
	is_int(mirror_branch_commit(mirror, "main", sha, err, sizeof(err)), 0, "main is in the mirror");
	is_str(sha, cap(want, sizeof(want), "git -C src rev-parse main"), "at the source's commit");
	is_int(mirror_branch_commit(mirror, "feature", sha, err, sizeof(err)), 0, "and so is the other branch");
	is_int(mirror_branch_commit(mirror, "nope", sha, err, sizeof(err)), 1, "an unknown branch is 1");
	is_int(mirror_branch_commit(mirror, "../x", sha, err, sizeof(err)), -1, "an invalid branch name is -1");
	ok(sh("git --git-dir=%s tag | grep -q .", mirror) != 0, "no tags fetched");

	/* a new commit and a deleted branch at the source: fetched and pruned */
	sh("cd src && echo more >> m.txt && git commit -qam two && git branch -D -q feature && git tag v1");
	if (!ok(mirror_sync(data, 1, &s, err, sizeof(err)) == 0, "a second sync"))
		diag("%s", err);
	mirror_branch_commit(mirror, "main", sha, err, sizeof(err));
	is_str(sha, cap(want, sizeof(want), "git -C src rev-parse main"), "main moved with the source");
	is_int(mirror_branch_commit(mirror, "feature", sha, err, sizeof(err)), 1, "the deleted branch is pruned");
	ok(sh("git --git-dir=%s tag | grep -q .", mirror) != 0, "the source's tag is not fetched");
	{
		struct mirror_source bad = { .url = "ftp://example.com/x.git" };
		struct mirror_source gone = { .url = "/nonexistent/repo" };
		struct mirror_source http = { .url = "http://example.com/x.git" };

		ok(mirror_sync(data, 2, &bad, err, sizeof(err)) == -1, "an ftp URL is refused: %s", err);
		ok(mirror_sync(data, 2, &http, err, sizeof(err)) == -1, "plain http to another host is refused: %s", err);
		ok(mirror_sync(data, 2, &gone, err, sizeof(err)) == -1 && err[0], "a missing path fails with a reason: %s",
		   err);
	}
	cap(base, sizeof(base), "git -C src rev-parse main");

	/* ---- bundles out and back ---- */
	snprintf(bundle, sizeof(bundle), "%s/base.bundle", dir);
	sh("echo old > %s && chmod 644 %s", bundle, bundle);
	if (!ok(mirror_bundle_create(mirror, "main", bundle, err, sizeof(err)) == 0, "bundle of main"))
		diag("%s", err);
	ok(stat(bundle, &st) == 0 && (st.st_mode & 0777) == 0600, "the bundle replaced the old file, mode 0600");
	ok(sh("git bundle list-heads %s | grep -q ' refs/heads/main$'", bundle) == 0, "it carries refs/heads/main");
	ok(sh("test -z \"$(ls -A %s | grep '^.bundle-')\"", dir) == 0, "no temporary directory left next to it");
	ok(mirror_bundle_create(mirror, "nope", bundle, err, sizeof(err)) == -1, "no bundle of an unknown branch");

	/* the container's side: clone, a branch with every kind of change */
	if (sh("git clone -q -b main %s scratch && cd scratch && git checkout -q -b anyon/t1 && "
	       "printf 'a\\nB\\nc\\nmore\\n' > m.txt && git mv r.txt r2.txt && echo 51 >> r2.txt && git rm -q d.txt && "
	       "echo new > n.txt && printf '\\000\\002bin' > b.bin && printf 'caf\\351\\n' > lat.txt && "
	       "seq 1 100 > big.txt && git add -A && git commit -qm attempt && "
	       "git bundle create -q ../att.bundle refs/heads/anyon/t1 ^%s", bundle, base) != 0)
		BAIL_OUT("cannot make the attempt's bundle");
	snprintf(before_refs, sizeof(before_refs), "%s", refs_of(mirror));
	snprintf(tmp, sizeof(tmp), "%s/att.bundle", dir);
	ok(import(mirror, tmp, "anyon/t1", 5, head) == 0, "the attempt's bundle is imported");
	is_str(head, cap(want, sizeof(want), "git -C scratch rev-parse HEAD"), "head is the branch's commit");
	is_str(cap(want, sizeof(want), "git --git-dir=%s rev-parse refs/anyon/attempts/5", mirror), head,
	       "stored as refs/anyon/attempts/5");
	{
		char expect[16384 + 128];

		/* for-each-ref sorts: refs/anyon/ comes before refs/heads/ */
		snprintf(expect, sizeof(expect), "refs/anyon/attempts/5 %s\n%s", head, before_refs);
		is_str(refs_of(mirror), expect, "no other ref changed, no temporary ref left");
	}
	ok(import(mirror, tmp, "anyon/t1", 5, head) == 0, "importing again (a follow-up) replaces the ref");
	ok(import(mirror, tmp, "anyon/other", 6, head) == -1, "a bundle of another branch is refused");

	/* a bundle that also moves main, one with a tag */
	snprintf(before_refs, sizeof(before_refs), "%s", refs_of(mirror));
	sh("cd scratch && git checkout -q main && echo evil > evil.txt && git add evil.txt && git commit -qm evil && "
	   "git checkout -q anyon/t1 && git tag x && "
	   "git bundle create -q ../extra.bundle refs/heads/anyon/t1 refs/heads/main ^%s && "
	   "git bundle create -q ../tag.bundle refs/heads/anyon/t1 refs/tags/x ^%s", base, base);
	snprintf(tmp, sizeof(tmp), "%s/extra.bundle", dir);
	ok(import(mirror, tmp, "anyon/t1", 7, head) == -1, "a bundle that also carries main is refused");
	snprintf(tmp, sizeof(tmp), "%s/tag.bundle", dir);
	ok(import(mirror, tmp, "anyon/t1", 7, head) == -1, "a bundle that also carries a tag is refused");
	is_str(refs_of(mirror), before_refs, "the mirror's refs are as before");
	ok(sh("git --git-dir=%s cat-file -e $(git -C scratch rev-parse main) 2>/dev/null", mirror) != 0,
	   "the moved main's commit did not even get in");

	/* garbage, empty, oversized */
	snprintf(tmp, sizeof(tmp), "%s/garbage.bundle", dir);
	sh("printf '# v2 git bundle\\nnot a ref line\\n\\ngarbage' > %s", tmp);
	ok(import(mirror, tmp, "anyon/t1", 7, head) == -1, "a garbage bundle is refused");
	sh("printf 'garbage' > %s", tmp);
	ok(import(mirror, tmp, "anyon/t1", 7, head) == -1, "a file that is not a bundle is refused");
	sh(": > %s", tmp);
	ok(import(mirror, tmp, "anyon/t1", 7, head) == -1, "an empty file is refused");
	{
		int fd = open(tmp, O_WRONLY | O_TRUNC);

		if (fd < 0 || ftruncate(fd, MIRROR_BUNDLE_MAX + 1) != 0)
			BAIL_OUT("cannot make a large sparse file");
		close(fd);
		ok(mirror_import(mirror, tmp, "anyon/t1", 7, head, err, sizeof(err)) == -1 && strstr(err, "larger"),
		   "a bundle over MIRROR_BUNDLE_MAX is refused before git reads it: %s", err);
		unlink(tmp);
	}
	snprintf(tmp, sizeof(tmp), "%s/link.bundle", dir);
	sh("ln -s att.bundle %s", tmp);
	ok(import(mirror, tmp, "anyon/t1", 7, head) == -1, "a symlink is not followed");

	/* a prerequisite the mirror has not */
	sh("cd scratch && git checkout -q -b anyon/t2 %s && echo x > x.txt && git add x.txt && git commit -qm x && "
	   "echo y > y.txt && git add y.txt && git commit -qm y && "
	   "git bundle create -q ../prereq.bundle refs/heads/anyon/t2 ^HEAD~1", base);
	snprintf(tmp, sizeof(tmp), "%s/prereq.bundle", dir);
	ok(mirror_import(mirror, tmp, "anyon/t2", 8, head, err, sizeof(err)) == -1,
	   "a bundle whose prerequisite is missing is refused: %s", err);
	is_str(refs_of(mirror), before_refs, "the mirror's refs are still as before");

	/* a commit fsck rejects (a bad time zone) */
	if (sh("cd scratch && t=$(git rev-parse HEAD^{tree}) && "
	       "printf 'tree %%s\\nparent %s\\nauthor A <a@example.com> 1 +00x0\\ncommitter A <a@example.com> 1 +0000\\n\\nbad\\n' "
	       "$t > ../bad.commit && c=$(git hash-object -t commit -w --literally ../bad.commit) && "
	       "git update-ref refs/heads/anyon/bad $c && git bundle create -q ../bad.bundle refs/heads/anyon/bad ^%s",
	       base, base) == 0) {
		snprintf(tmp, sizeof(tmp), "%s/bad.bundle", dir);
		ok(mirror_import(mirror, tmp, "anyon/bad", 9, head, err, sizeof(err)) == -1,
		   "a bundle with a malformed commit is refused by fsck: %s", err);
		is_str(refs_of(mirror), before_refs, "and the refs are unchanged");
	} else {
		ok(0, "could not make a malformed commit");
	}

	/* ---- the diff ---- */
	{
		struct mirror_diff_limits l;
		json_object *d = NULL, *f;
		char att[64];

		mirror_diff_limits_default(&l);
		cap(att, sizeof(att), "git --git-dir=%s rev-parse refs/anyon/attempts/5", mirror);
		if (!ok(mirror_diff(mirror, base, att, &l, &d, err, sizeof(err)) == 0 && d, "diff of the attempt"))
			diag("%s", err);
		if (!d)
			BAIL_OUT("no diff");
		is_str(sget(d, "base"), base, "base");
		is_str(sget(d, "head"), att, "head");
		is_int(iget(d, "files_total"), 7, "files_total");
		is_int(json_object_array_length(json_object_object_get(d, "files")), 7, "every file listed");
		ok(!bget(d, "truncated"), "not truncated");
		f = file_of(d, "m.txt");
		ok(f && strcmp(sget(f, "status"), "modified") == 0 && iget(f, "additions") == 1 &&
		   iget(f, "deletions") == 1 && hunk_count(f) == 1, "m.txt: modified, +1 -1, one hunk");
		if (f) {
			json_object *h = json_object_array_get_idx(json_object_object_get(f, "hunks"), 0);

			is_str(sget(h, "header"), "@@ -1,4 +1,4 @@", "its hunk header");
			ok(iget(h, "old_start") == 1 && iget(h, "old_lines") == 4 && iget(h, "new_start") == 1 &&
			   iget(h, "new_lines") == 4, "old/new start and lines");
			ok(has_line(f, "-", "b") && has_line(f, "+", "B") && has_line(f, " ", "a"), "its lines with their kinds");
			ok(has_line(f, " ", "more") && !has_line(f, "+", "more"), "the unchanged last line is context");
		}
		f = file_of(d, "n.txt");
		ok(f && strcmp(sget(f, "status"), "added") == 0 && iget(f, "additions") == 1 && has_line(f, "+", "new"),
		   "n.txt: added");
		f = file_of(d, "d.txt");
		ok(f && strcmp(sget(f, "status"), "deleted") == 0 && iget(f, "deletions") == 1 && has_line(f, "-", "gone"),
		   "d.txt: deleted");
		f = file_of(d, "r2.txt");
		ok(f && strcmp(sget(f, "status"), "renamed") == 0 && sget(f, "old_path") &&
		   strcmp(sget(f, "old_path"), "r.txt") == 0 && iget(f, "additions") == 1 && has_line(f, "+", "51"),
		   "r2.txt: renamed from r.txt, +1");
		ok(!file_of(d, "r.txt"), "the rename's old path is not listed as a file");
		f = file_of(d, "b.bin");
		ok(f && bget(f, "binary") && hunk_count(f) == 0 && iget(f, "additions") == 0, "b.bin: binary, no hunks");
		f = file_of(d, "lat.txt");
		ok(f && has_line(f, "+", "caf\xef\xbf\xbd"), "invalid UTF-8 became U+FFFD");
		ok(file_of(d, "big.txt") && sget(file_of(d, "m.txt"), "old_path") == NULL,
		   "no old_path on a modified file");
		is_int(iget(d, "additions"), 1 + 1 + 1 + 1 + 100, "total additions");
		is_int(iget(d, "deletions"), 1 + 1, "total deletions");
		json_object_put(d);

		/* a file's patch over max_file_bytes: summarized */
		l.max_file_bytes = 200;
		d = NULL;
		ok(mirror_diff(mirror, base, att, &l, &d, err, sizeof(err)) == 0 && d, "diff with max_file_bytes 200");
		f = d ? file_of(d, "big.txt") : NULL;
		ok(f && bget(f, "truncated") && hunk_count(f) == 0 && iget(f, "additions") == 100,
		   "big.txt summarized: truncated, no hunks, its count kept");
		f = d ? file_of(d, "m.txt") : NULL;
		ok(f && !bget(f, "truncated") && hunk_count(f) == 1, "a small file still has its hunk");
		ok(d && bget(d, "truncated"), "the diff says it is truncated");
		json_object_put(d);

		/* beyond max_files: counted only */
		mirror_diff_limits_default(&l);
		l.max_files = 3;
		d = NULL;
		ok(mirror_diff(mirror, base, att, &l, &d, err, sizeof(err)) == 0 && d, "diff with max_files 3");
		ok(d && json_object_array_length(json_object_object_get(d, "files")) == 3 && iget(d, "files_total") == 7 &&
		   iget(d, "additions") == 104 && bget(d, "truncated"), "3 files listed, 7 counted, totals of all");
		json_object_put(d);

		/* max_total_bytes: later files summarized */
		mirror_diff_limits_default(&l);
		l.max_total_bytes = 300;
		d = NULL;
		ok(mirror_diff(mirror, base, att, &l, &d, err, sizeof(err)) == 0 && d, "diff with max_total_bytes 300");
		{
			size_t kept = 0, cut = 0;
			json_object *files = d ? json_object_object_get(d, "files") : NULL;

			for (size_t i = 0; files && i < json_object_array_length(files); i++) {
				json_object *x = json_object_array_get_idx(files, i);

				kept += hunk_count(x) > 0;
				cut += bget(x, "truncated");
			}
			ok(kept >= 1 && cut >= 1, "some files kept their hunks, later ones summarized (%zu, %zu)", kept, cut);
		}
		json_object_put(d);

		ok(mirror_diff(mirror, "main", att, &l, &d, err, sizeof(err)) == -1, "a diff needs commit ids, not names");
		ok(mirror_diff(mirror, base, "0000000000000000000000000000000000000001", &l, &d, err, sizeof(err)) == -1,
		   "an unknown commit fails: %s", err);
	}

	/* names git quotes in its "diff --git" lines still get their hunks */
	if (sh("cd scratch && git checkout -q -b anyon/names %s && printf 'x\\n' > \"$(printf 'tab\\there.txt')\" && "
	       "printf 'x\\n' > 'quo\"te.txt' && printf 'x\\n' > 'back\\slash.txt' && printf 'x\\n' > 'zzz.txt' && "
	       "printf 'x\\n' > 'sp ace.txt' && git add -A && git commit -qm names && "
	       "git bundle create -q ../names.bundle refs/heads/anyon/names ^%s", base, base) != 0)
		BAIL_OUT("cannot make the names bundle");
	{
		static const char *const names[] = { "tab\there.txt", "quo\"te.txt", "back\\slash.txt", "sp ace.txt",
						     "zzz.txt" };
		struct mirror_diff_limits l;
		json_object *d = NULL;
		char nh[MIRROR_SHA_LEN + 1];

		snprintf(tmp, sizeof(tmp), "%s/names.bundle", dir);
		ok(import(mirror, tmp, "anyon/names", 10, nh) == 0, "a branch with odd file names imported");
		mirror_diff_limits_default(&l);
		ok(mirror_diff(mirror, base, nh, &l, &d, err, sizeof(err)) == 0 && d, "its diff");
		for (size_t i = 0; d && i < sizeof(names) / sizeof(names[0]); i++) {
			json_object *f = file_of(d, names[i]);

			ok(f && !bget(f, "truncated") && has_line(f, "+", "x"), "'%s' listed with its hunk", names[i]);
		}
		ok(d && !bget(d, "truncated"), "nothing truncated");
		json_object_put(d);
	}

	/* a change waits for the mirror's lock */
	{
		char lockpath[600], nh[MIRROR_SHA_LEN + 1];
		int64_t t0;
		pid_t pid;
		int fds[2];

		snprintf(lockpath, sizeof(lockpath), "%s/anyon.lock", mirror);
		if (pipe(fds) != 0)
			BAIL_OUT("pipe");
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			int fd = open(lockpath, O_RDWR | O_CREAT, 0600);

			if (fd < 0 || flock(fd, LOCK_EX) != 0)
				_exit(1);
			if (write(fds[1], "x", 1) != 1)
				_exit(1);
			usleep(800 * 1000);
			_exit(0);
		}
		close(fds[1]);
		if (read(fds[0], tmp, 1) != 1)
			BAIL_OUT("the lock holder did not start");
		close(fds[0]);
		t0 = mono_ms();
		snprintf(tmp, sizeof(tmp), "%s/names.bundle", dir);
		ok(import(mirror, tmp, "anyon/names", 11, nh) == 0 && mono_ms() - t0 >= 600,
		   "an import waits while another holds the mirror's lock (%lld ms)", (long long)(mono_ms() - t0));
		waitpid(pid, NULL, 0);
	}

	/* ---- push ---- */
	if (sh("git init -q --bare -b main remote.git && git -C src push -q %s main", remote) != 0)
		BAIL_OUT("cannot make the remote");
	{
		struct mirror_source r = { .url = remote };
		char theirs[64];

		cap(head, sizeof(head), "git --git-dir=%s rev-parse refs/anyon/attempts/5", mirror);

		if (!ok(mirror_push(mirror, 5, "anyon/t1", &r, false, err, sizeof(err)) == 0, "push of attempt 5"))
			diag("%s", err);
		is_str(cap(theirs, sizeof(theirs), "git --git-dir=%s rev-parse refs/heads/anyon/t1", remote), head,
		       "the remote has anyon/t1 at the attempt's head");
		is_int(mirror_push(mirror, 5, "anyon/t1", &r, false, err, sizeof(err)), 0, "pushing it again is fine");

		/* attempt 6: a branch from base that does not contain attempt 5's commit */
		sh("cd scratch && git checkout -q -b anyon/t3 %s && echo other > o.txt && git add o.txt && git commit -qm o && "
		   "git bundle create -q ../t3.bundle refs/heads/anyon/t3 ^%s", base, base);
		snprintf(tmp, sizeof(tmp), "%s/t3.bundle", dir);
		ok(import(mirror, tmp, "anyon/t3", 6, head) == 0, "attempt 6 imported");
		is_int(mirror_push(mirror, 6, "anyon/t1", &r, false, err, sizeof(err)), 1,
		       "a non-fast-forward push is rejected: 1");
		ok(strstr(err, "rejected") != NULL, "with git's reason: %s", err);
		ok(strcmp(cap(theirs, sizeof(theirs), "git --git-dir=%s rev-parse refs/heads/anyon/t1", remote), head) != 0,
		   "the remote's branch did not move");
		if (!ok(mirror_push(mirror, 6, "anyon/t1", &r, true, err, sizeof(err)) == 0, "forced, it goes"))
			diag("%s", err);
		is_str(cap(theirs, sizeof(theirs), "git --git-dir=%s rev-parse refs/heads/anyon/t1", remote), head,
		       "the remote's branch is attempt 6's head");

		cap(want, sizeof(want), "git --git-dir=%s rev-parse refs/heads/main", remote);
		is_int(mirror_push(mirror, 6, "main", &r, true, err, sizeof(err)), -1, "a push to main is refused");
		is_int(mirror_push(mirror, 6, "anyon/", &r, true, err, sizeof(err)), -1, "a push to 'anyon/' is refused");
		is_int(mirror_push(mirror, 6, "anyon/../main", &r, true, err, sizeof(err)), -1,
		       "a push to 'anyon/../main' is refused");
		is_int(mirror_push(mirror, 6, "anyon/x.lock", &r, true, err, sizeof(err)), -1,
		       "a push to 'anyon/x.lock' is refused");
		is_str(cap(theirs, sizeof(theirs), "git --git-dir=%s rev-parse refs/heads/main", remote), want,
		       "the remote's main is untouched");
		is_int(mirror_push(mirror, 99, "anyon/t9", &r, false, err, sizeof(err)), -1,
		       "an attempt without a ref has nothing to push");
	}

	/* ---- removal ---- */
	ok(mirror_remove(data, 1) == 0 && lstat(mirror, &st) != 0, "mirror_remove removes the mirror");
	ok(mirror_remove(data, 1) == 0, "and is fine when it is gone");
	sh("mkdir -p outside && echo keep > outside/keep && ln -s %s/outside %s/mirrors/project-3.git", dir, data);
	ok(mirror_remove(data, 3) == 0, "a mirror that is a symlink is removed");
	ok(sh("test -f outside/keep && ! test -e %s/mirrors/project-3.git", data) == 0,
	   "as a link: what it pointed to is still there");

	if (chdir("/") == 0 && tap_failed == 0)
		sh("rm -rf %s", dir);
	else
		diag("left %s", dir);
	return done_testing();
}
