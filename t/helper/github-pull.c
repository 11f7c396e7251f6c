/* github-pull - test helper: drives services/github_pulls.c against GitHub
 * (or t/lib/fakegithub.py) for t/t3400-github-pulls.py. The token is read
 * from stdin (one line), never from argv or the environment. Prints one
 * JSON object: {"rc": name, "number", "html_url", "state", "existed",
 * "error"}; exit status 0 when rc is GH_OK, else 1.
 *   github-pull create OWNER/REPO HEAD BASE TITLE [BODY]
 *   github-pull get OWNER/REPO NUMBER
 * The API URL comes from ANYON_GITHUB_API_URL like the worker's;
 * GITHUB_PULL_DEADLINE_MS sets a deadline that long after the start. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "base/config.h"
#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "services/github_pulls.h"

static const char *rc_name(enum gh_rc rc)
{
	static const char *const names[] = {
		[GH_OK] = "GH_OK", [GH_NOT_CONNECTED] = "GH_NOT_CONNECTED", [GH_TOKEN_INVALID] = "GH_TOKEN_INVALID",
		[GH_UNREADABLE] = "GH_UNREADABLE", [GH_UNAVAILABLE] = "GH_UNAVAILABLE", [GH_DEADLINE] = "GH_DEADLINE",
		[GH_BUSY] = "GH_BUSY", [GH_RATE_LIMITED] = "GH_RATE_LIMITED", [GH_NOT_FOUND] = "GH_NOT_FOUND",
		[GH_BAD_ANSWER] = "GH_BAD_ANSWER", [GH_ERROR] = "GH_ERROR", [GH_INVALID] = "GH_INVALID",
	};

	return (size_t)rc < ARRAY_SIZE(names) && names[rc] ? names[rc] : "?";
}

int main(int argc, char **argv)
{
	char token[1100] = "", err[512] = "";
	struct github_pull pr;
	const char *dl = getenv("GITHUB_PULL_DEADLINE_MS");
	int64_t deadline = dl ? mono_ms() + atoll(dl) : 0, number;
	json_object *out;
	enum gh_rc rc;
	size_t n;

	log_init("github-pull");
	config_load_global();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!fgets(token, sizeof(token), stdin))
		die("usage: the token on stdin");
	n = strcspn(token, "\r\n");
	token[n] = '\0';
	if (argc >= 6 && argc <= 7 && strcmp(argv[1], "create") == 0)
		rc = github_pull_create(token, argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL,
					deadline, &pr, err, sizeof(err));
	else if (argc == 4 && strcmp(argv[1], "get") == 0 && parse_i64(argv[3], 1, INT64_MAX, &number) == 0)
		rc = github_pull_get(token, argv[2], number, deadline, &pr, err, sizeof(err));
	else
		die("usage: github-pull create OWNER/REPO HEAD BASE TITLE [BODY] | get OWNER/REPO NUMBER");
	OPENSSL_cleanse(token, sizeof(token));
	out = json_object_new_object();
	json_set(out, "rc", json_str(rc_name(rc)));
	json_set(out, "number", json_object_new_int64(pr.number));
	json_set(out, "html_url", json_str(pr.html_url));
	json_set(out, "state", json_str(pr.state));
	json_set(out, "existed", json_object_new_boolean(pr.existed));
	json_set(out, "error", rc == GH_OK ? NULL : json_str(err));
	puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN));
	json_object_put(out);
	curl_global_cleanup();
	return rc == GH_OK ? 0 : 1;
}
