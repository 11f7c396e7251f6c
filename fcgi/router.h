/* router.h - the route table: method, path pattern with {name} captures,
 * handler, what authentication the route needs and in which mode it exists. */
#ifndef ANYON_ROUTER_H
#define ANYON_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct req;

enum auth_need {
	AUTH_NONE,      /* no session touched (health, static-like reads) */
	AUTH_SESSION,   /* a session is created if the browser has none */
	AUTH_USER,      /* a signed-in user is required: 401 otherwise */
};

/* Which deployments offer the route; elsewhere it is "no such endpoint". */
enum route_mode {
	MODE_ANY,       /* local and cloud mode */
	MODE_CLOUD,     /* cloud mode only (ANYON_CLOUD=1): the seed's feature gate */
	MODE_LOCAL,     /* local mode only (a project from a path on the server) */
};

/* What a GET route reads besides the session, in the session's round trip
 * (db_session_find_prefetch()); its handler uses r->pf when pf.done and
 * otherwise reads as usual. */
enum route_prefetch {
	PF_NONE,
	PF_JOB,         /* the job {id} */
	PF_JOB_OUTPUT,  /* the job {id} and its output (?after, ?limit) */
	PF_GITHUB,      /* the user's GitHub token metadata */
	PF_EVENTS,      /* the user's events (?after, ?limit) */
	PF_BOARD,       /* the version of project {id}'s board (its ETag) */
};

typedef void (*route_handler)(struct req *r);

struct route {
	const char *method;      /* "GET", "POST", ... */
	const char *pattern;     /* "/api/jobs/{id}/output" */
	route_handler handler;
	enum auth_need auth;
	enum route_mode mode;
	bool json_body;          /* the body must be a JSON object */
	enum route_prefetch prefetch;
};

#define ROUTE_MAX_PARAMS 4
#define ROUTE_PARAM_MAX 128

struct route_params {
	int n;
	const char *name[ROUTE_MAX_PARAMS];   /* points into the pattern */
	size_t name_len[ROUTE_MAX_PARAMS];
	char value[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
};

enum route_result {
	ROUTE_FOUND,
	ROUTE_NOT_FOUND,
	ROUTE_METHOD_NOT_ALLOWED,
};

/* Matches path against every pattern of a route offered in this mode (a
 * MODE_CLOUD route does not exist outside cloud mode, nor a MODE_LOCAL one
 * in cloud mode: 404, and it is not named in a 405's Allow either). On ROUTE_FOUND sets *found and
 * params. On ROUTE_METHOD_NOT_ALLOWED writes the methods the path accepts,
 * comma-separated, to allow. Captures match one non-empty segment of
 * [A-Za-z0-9._~-] at most ROUTE_PARAM_MAX-1 bytes long. */
enum route_result route_match(const struct route *table, size_t n, bool cloud, const char *method,
			      const char *path, const struct route **found,
			      struct route_params *params, char *allow, size_t allowlen);

/* The API's route table (routes.c), its n entries: for the fuzzers and
 * tests that check every route. */
const struct route *routes_table(size_t *n);

/* The value captured for name, or NULL. */
const char *route_param(const struct route_params *params, const char *name);

#endif
