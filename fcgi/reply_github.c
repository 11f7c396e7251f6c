/* reply_github.c - the one place a GitHub result (enum gh_rc, from
 * services/github.h) becomes an HTTP answer. */
#include "autoconfig.h"

#include "base/util.h"
#include "fcgi/api.h"

static const struct {
	enum gh_rc rc;
	int status;
	const char *code;
	const char *message;
	int retry_after;          /* Retry-After seconds, 0 for none */
} replies[] = {
	{ GH_NOT_CONNECTED, 401, "github_not_connected", "connect your GitHub account first", 0 },
	{ GH_TOKEN_INVALID, 401, "github_token_invalid",
	  "GitHub no longer accepts your token (expired or revoked); sign in to GitHub again", 0 },
	{ GH_UNREADABLE, 500, "secret_unreadable", "your stored GitHub token cannot be decrypted; sign in again", 0 },
	{ GH_UNAVAILABLE, 502, "github_unavailable", "GitHub did not answer; try again shortly", 0 },
	{ GH_BUSY, 503, "github_busy",
	  "too many requests are waiting on GitHub right now; try again in a few seconds", 5 },
	{ GH_DEADLINE, 504, "github_timeout",
	  "GitHub did not answer within the time this request may take; try again shortly", 0 },
	{ GH_RATE_LIMITED, 429, "github_rate_limited", "GitHub refused the request (rate limit or permissions)", 0 },
	{ GH_NOT_FOUND, 404, "not_found", "GitHub has no such repository, or your token cannot see it", 0 },
	{ GH_BAD_ANSWER, 502, "github_error", "GitHub gave an answer anyon does not understand", 0 },
	{ GH_ERROR, 500, "internal", "reading or storing your GitHub token failed", 0 },
};

void reply_github(struct req *r, enum gh_rc rc)
{
	for (size_t i = 0; i < ARRAY_SIZE(replies); i++) {
		if (replies[i].rc == rc) {
			r->retry_after = replies[i].retry_after;
			reply_error(r, replies[i].status, replies[i].code, "%s", replies[i].message);
			return;
		}
	}
	reply_error(r, 500, "internal", "unexpected GitHub result %d", (int)rc);
}
