/* mirror-run - test helper: one call of services/mirror.c per run, for
 * t/t5210-mirror-token.py.
 *   mirror-run sync DATA_DIR PROJECT_ID URL        token on stdin
 *   mirror-run branch MIRROR BRANCH                prints the commit
 *   mirror-run bundle MIRROR BRANCH PATH
 *   mirror-run import MIRROR BUNDLE BRANCH ATTEMPT_ID   prints the head
 *   mirror-run push MIRROR ATTEMPT_ID BRANCH URL [force] token on stdin
 * The token is read from stdin (up to its first newline; empty: none), so
 * it is in neither this program's argv nor its environment.
 * ANYON_GIT_ALLOW_LOCAL_HTTP=1 allows http://127.0.0.1 as the worker's
 * setting does. Exit status: 0, 1 when the call returned 1 (no such
 * branch, push rejected), 2 on -1 with "mirror-run: <err>" on stderr. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "services/mirror.h"

static char token[8192];

static void read_token(struct mirror_source *src)
{
	size_t n = fread(token, 1, sizeof(token) - 1, stdin);
	char *nl;

	token[n] = '\0';
	nl = strchr(token, '\n');
	if (nl)
		*nl = '\0';
	src->token = token[0] ? token : NULL;
	src->token_len = strlen(token);
}

static int finish(int rc, const char *out, const char *err)
{
	if (rc == 0 && out)
		printf("%s\n", out);
	if (rc != 0)
		fprintf(stderr, "mirror-run: %s\n", err);
	memset(token, 0, sizeof(token));
	return rc < 0 ? 2 : rc;
}

int main(int argc, char **argv)
{
	struct mirror_source src = { 0 };
	const char *allow = getenv("ANYON_GIT_ALLOW_LOCAL_HTTP");
	char err[1024] = "", sha[MIRROR_SHA_LEN + 1] = "";
	int64_t id;

	log_init("mirror-run");
	src.allow_local_http = allow && strcmp(allow, "1") == 0;
	if (argc == 5 && strcmp(argv[1], "sync") == 0 && parse_i64(argv[3], 1, INT64_MAX, &id) == 0) {
		src.url = argv[4];
		read_token(&src);
		return finish(mirror_sync(argv[2], id, &src, err, sizeof(err)), NULL, err);
	}
	if (argc == 4 && strcmp(argv[1], "branch") == 0)
		return finish(mirror_branch_commit(argv[2], argv[3], sha, err, sizeof(err)), sha,
			      err[0] ? err : "no such branch");
	if (argc == 5 && strcmp(argv[1], "bundle") == 0)
		return finish(mirror_bundle_create(argv[2], argv[3], argv[4], err, sizeof(err)), NULL, err);
	if (argc == 6 && strcmp(argv[1], "import") == 0 && parse_i64(argv[5], 1, INT64_MAX, &id) == 0)
		return finish(mirror_import(argv[2], argv[3], argv[4], id, sha, err, sizeof(err)), sha, err);
	if ((argc == 6 || (argc == 7 && strcmp(argv[6], "force") == 0)) && strcmp(argv[1], "push") == 0 &&
	    parse_i64(argv[3], 1, INT64_MAX, &id) == 0) {
		src.url = argv[5];
		read_token(&src);
		return finish(mirror_push(argv[2], id, argv[4], &src, argc == 7, err, sizeof(err)), NULL, err);
	}
	fprintf(stderr, "usage: see the comment on top of t/helper/mirror-run.c\n");
	return 2;
}
