/* github.h - the calls anyon makes to GitHub, through libcurl.
 *
 * Every call sends User-Agent, Accept and X-GitHub-Api-Version, has a
 * connect and a total timeout (ANYON_GITHUB_TIMEOUT_MS), reads at most
 * GH_MAX_BODY bytes, and never puts a token in a URL. Every call also
 * takes the caller's deadline_ms, a time on the monotonic clock (mono_ms())
 * by which it must be over, 0 for none: its timeout is cut to what is left,
 * and past the deadline no call starts. A request served by anyon-fcgi has
 * one deadline for all its calls (ANYON_GITHUB_DEADLINE_MS after it began),
 * so a handler making several calls still answers before nginx gives up.
 * Base URLs come from ANYON_GITHUB_URL and ANYON_GITHUB_API_URL (tests,
 * GitHub Enterprise).
 *
 * In anyon-fcgi a call also needs one of the pool's GitHub slots
 * (gh_slots_init(): ANYON_GITHUB_CONCURRENCY, default one less than the
 * children), so a hanging GitHub can never hold every child: the first
 * call of a request takes a free slot (a lock file, flock), later calls
 * of the same request keep it, and gh_slot_release() at the end of the
 * request gives it back (so does the kernel when the process dies). A
 * call that finds no free slot is not made: busy, GH_BUSY. */
#ifndef ANYON_GITHUB_H
#define ANYON_GITHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define GH_MAX_BODY (8 * 1024 * 1024)
#define GH_URL_MAX 2048

struct gh_response {
	long status;              /* HTTP status; 0 when there was no answer */
	bool timed_out;
	bool deadline;            /* the caller's deadline ran out (before or during the call) */
	bool busy;                /* not made: every GitHub slot of the pool is in use */
	char error[256];          /* transport problem, when status is 0 */
	char *body;               /* owned, NUL-terminated; wiped by gh_response_release() */
	size_t len;
	json_object *json;        /* owned: body parsed, NULL if not JSON */
	char next_url[GH_URL_MAX];/* Link rel="next", "" on the last page */
};

/* What an exchange with GitHub came to, in one vocabulary for the services
 * that talk to GitHub and for their callers, which map it to their own
 * answers (the API: fcgi/reply_github.c; the worker: a job error). */
enum gh_rc {
	GH_OK = 0,
	GH_NOT_CONNECTED,     /* the user has no GitHub token */
	GH_TOKEN_INVALID,     /* GitHub refused the token (401), or it expired and
			       * could not be refreshed: the user must sign in again */
	GH_UNREADABLE,        /* the stored token does not decrypt */
	GH_UNAVAILABLE,       /* no answer: connection failed, timeout, 5xx */
	GH_DEADLINE,          /* the caller's deadline ran out first */
	GH_BUSY,              /* not asked: every GitHub slot of the pool is taken */
	GH_RATE_LIMITED,      /* 403 or 429: rate limit or permissions */
	GH_NOT_FOUND,         /* no such thing, or the token cannot see it (404) */
	GH_BAD_ANSWER,        /* an answer the protocol does not allow */
	GH_ERROR,             /* our side: database, crypto, memory */
	GH_INVALID,           /* GitHub refused what was asked as invalid (422: a
			       * pull request with no commits, a missing branch) */
};

/* Makes n slot files in dir (created 0700 if missing) for the pool's
 * children to share; call once in the parent, before fork. Without it
 * (the worker, anyonctl) calls take no slot. Returns 0, or -1 with err. */
int gh_slots_init(const char *dir, int n, char *err, size_t errlen);

/* Removes the slot files and their folder: in the parent, once the
 * children are gone. */
void gh_slots_remove(void);

/* Gives back the slot this process holds, if any: at the end of every
 * request. */
void gh_slot_release(void);

/* Frees r's members and wipes them: the body, and the token members of an
 * object answer (access_token, refresh_token, device_code). A reference
 * the caller took to r->json stays valid. */
void gh_response_release(struct gh_response *r);

/* True when the call got no usable answer: timeout, connection failure or 5xx. */
bool gh_unavailable(const struct gh_response *r);

/* What a call that did not succeed comes to (never GH_OK): GH_BUSY, GH_DEADLINE,
 * GH_UNAVAILABLE, GH_RATE_LIMITED or GH_BAD_ANSWER (a 401 too: what it means for a user's
 * token is github_token_failed()'s to say). Logs what happened, naming the
 * call with what ("the repository list"). */
enum gh_rc gh_classify(const struct gh_response *r, const char *what);

/* Checks on what GitHub sends, before anyon keeps or shows it: a word of
 * 1 to max ASCII letters, digits and the characters of extra (a login, a
 * user code), and an http(s) URL under 500 bytes with nothing that could
 * break out of an attribute or a header. */
bool gh_word_ok(const char *s, size_t max, const char *extra);
bool gh_url_ok(const char *s);

/* POST {github_url}/login/device/code with client_id and scope. */
int gh_device_code(const char *scope, int64_t deadline_ms, struct gh_response *out);

/* POST {github_url}/login/oauth/access_token for a device code. */
int gh_poll_token(const char *device_code, int64_t deadline_ms, struct gh_response *out);

/* POST {github_url}/login/oauth/access_token with grant_type=refresh_token.
 * No client secret: GitHub requires one except for tokens that came from
 * the device flow, which anyon's always do. */
int gh_refresh_token(const char *refresh_token, int64_t deadline_ms, struct gh_response *out);

/* GET {github_api_url}{path} with the token. path starts with '/' and may
 * carry a query string built with gh_escape(). */
int gh_api_get(const char *token, const char *path, int64_t deadline_ms, struct gh_response *out);

/* POST {github_api_url}{path} with the token and body as JSON. */
int gh_api_post_json(const char *token, const char *path, json_object *body, int64_t deadline_ms,
		     struct gh_response *out);

/* GET an absolute URL from a Link header. Refused (-1) unless it is on the
 * API host, so a token never goes anywhere else. */
int gh_api_get_url(const char *token, const char *url, int64_t deadline_ms, struct gh_response *out);

/* What GitHub says of the token holder's membership of an organization. */
enum gh_membership {
	GH_MEMBER_ACTIVE,     /* 200 with state "active" */
	GH_MEMBER_NOT,        /* 404 (no such org, or not a member), 403 (no read:org, or
			       * the org refuses the app), or 200 with any other state
			       * ("pending": invited, not joined) */
	GH_MEMBER_UNKNOWN,    /* no answer, timeout, deadline, 5xx, a rate limit (429, or a
			       * 403 that says so), anything else: cannot tell */
	GH_MEMBER_BAD_TOKEN,  /* 401: GitHub refused the token */
};

/* GET /user/memberships/orgs/{org} with the token (needs the read:org
 * scope). r gets the answer (release it); the call is logged when it
 * cannot tell. */
enum gh_membership gh_org_membership(const char *token, const char *org, int64_t deadline_ms,
				     struct gh_response *r);

/* URL-encodes s into out (through curl). Returns 0, or -1 if it does not fit. */
int gh_escape(const char *s, char *out, size_t outlen);

#endif
