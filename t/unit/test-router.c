/* Route matching: captures, 404 vs 405, Allow, bad segments. */
#include "autoconfig.h"

#include "fcgi/router.h"
#include "t/unit/tap.h"

static void h(struct req *r) { (void)r; }
static void h2(struct req *r) { (void)r; }

static const struct route table[] = {
	{ "GET", "/api/health", h, AUTH_NONE, MODE_ANY, false, PF_NONE },
	{ "GET", "/api/jobs/{id}", h, AUTH_USER, MODE_ANY, false, PF_NONE },
	{ "DELETE", "/api/jobs/{id}", h2, AUTH_USER, MODE_ANY, false, PF_NONE },
	{ "GET", "/api/jobs/{id}/output", h2, AUTH_USER, MODE_ANY, false, PF_NONE },
	{ "POST", "/api/x/{a}/y/{b}", h, AUTH_USER, MODE_ANY, true, PF_NONE },
	{ "GET", "/api/cloudy", h, AUTH_USER, MODE_CLOUD, false, PF_NONE },
	{ "POST", "/api/both", h, AUTH_USER, MODE_ANY, false, PF_NONE },
	{ "GET", "/api/both", h2, AUTH_USER, MODE_CLOUD, false, PF_NONE },
	{ "GET", "/api/things", h, AUTH_USER, MODE_ANY, false, PF_NONE },
	{ "POST", "/api/things", h2, AUTH_USER, MODE_LOCAL, true, PF_NONE },
	{ "PATCH", "/api/things/{id}", h, AUTH_USER, MODE_ANY, true, PF_NONE },
	{ "DELETE", "/api/things/{id}", h2, AUTH_USER, MODE_ANY, false, PF_NONE },
	{ "GET", "/api/localonly", h, AUTH_USER, MODE_LOCAL, false, PF_NONE },
};
#define N (sizeof(table) / sizeof(table[0]))

int main(void)
{
	const struct route *found = NULL;
	struct route_params p;
	char allow[64];
	char longseg[300];

	is_int(route_match(table, N, true, "GET", "/api/health", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "static path matches");
	ok(found == &table[0], "the right route");
	is_int(p.n, 0, "no captures");

	is_int(route_match(table, N, true, "GET", "/api/jobs/42", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "capture matches");
	is_str(route_param(&p, "id"), "42", "capture value");
	ok(route_param(&p, "nope") == NULL, "unknown capture is NULL");

	is_int(route_match(table, N, true, "DELETE", "/api/jobs/7", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "same pattern, other method");
	ok(found == &table[2], "picks the DELETE route");

	is_int(route_match(table, N, true, "GET", "/api/jobs/7/output", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "nested path");
	ok(found == &table[3], "picks the output route");

	is_int(route_match(table, N, true, "POST", "/api/x/one/y/two", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "two captures");
	is_str(route_param(&p, "a"), "one", "first capture");
	is_str(route_param(&p, "b"), "two", "second capture");

	is_int(route_match(table, N, true, "PUT", "/api/jobs/7", &found, &p, allow, sizeof(allow)),
	       ROUTE_METHOD_NOT_ALLOWED, "known path, wrong method: 405");
	is_str(allow, "GET, DELETE", "Allow lists the path's methods once each");
	is_int(route_match(table, N, true, "POST", "/api/health", &found, &p, allow, sizeof(allow)),
	       ROUTE_METHOD_NOT_ALLOWED, "POST to a GET route: 405");

	is_int(route_match(table, N, true, "GET", "/api/nothing", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "unknown path: 404");
	is_int(route_match(table, N, true, "GET", "/api/jobs/", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "empty capture does not match");
	is_int(route_match(table, N, true, "GET", "/api/jobs/1/2", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "capture is one segment");
	is_int(route_match(table, N, true, "GET", "/api/jobs/%2e%2e", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "percent signs are not segment characters");
	is_int(route_match(table, N, true, "GET", "/api/health/", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "trailing slash is another path");
	is_int(route_match(table, N, true, "GET", "/api/healthz", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "prefix is not a match");
	/* Cloud-only routes do not exist in local mode, not even in Allow. */
	is_int(route_match(table, N, true, "GET", "/api/cloudy", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "cloud mode: a cloud-only route is found");
	is_int(route_match(table, N, false, "GET", "/api/cloudy", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "local mode: a cloud-only route is 404");
	is_int(route_match(table, N, false, "POST", "/api/cloudy", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "local mode: a cloud-only path with another method is 404, not 405");
	is_int(route_match(table, N, true, "PUT", "/api/both", &found, &p, allow, sizeof(allow)),
	       ROUTE_METHOD_NOT_ALLOWED, "cloud mode: 405 on a path with a cloud-only method");
	is_str(allow, "POST, GET", "cloud mode: Allow names both methods");
	is_int(route_match(table, N, false, "GET", "/api/both", &found, &p, allow, sizeof(allow)),
	       ROUTE_METHOD_NOT_ALLOWED, "local mode: the cloud-only method is not allowed");
	is_str(allow, "POST", "local mode: Allow leaves the cloud-only method out");

	/* Local-only routes do not exist in cloud mode, mirroring the above. */
	is_int(route_match(table, N, false, "POST", "/api/things", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "local mode: a local-only route is found");
	ok(found == &table[9], "the local-only POST");
	is_int(route_match(table, N, true, "POST", "/api/things", &found, &p, allow, sizeof(allow)),
	       ROUTE_METHOD_NOT_ALLOWED, "cloud mode: a local-only method on a shared path is 405");
	is_str(allow, "GET", "cloud mode: Allow leaves the local-only method out");
	is_int(route_match(table, N, true, "GET", "/api/localonly", &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "cloud mode: a local-only path is 404");
	is_int(route_match(table, N, false, "GET", "/api/localonly", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "local mode: the local-only path is found");

	/* PATCH is a method like any other. */
	is_int(route_match(table, N, true, "PATCH", "/api/things/12", &found, &p, allow, sizeof(allow)),
	       ROUTE_FOUND, "PATCH routes");
	ok(found == &table[10], "picks the PATCH route");
	is_str(route_param(&p, "id"), "12", "PATCH capture");
	is_int(route_match(table, N, true, "PUT", "/api/things/12", &found, &p, allow, sizeof(allow)),
	       ROUTE_METHOD_NOT_ALLOWED, "PUT where PATCH and DELETE are: 405");
	is_str(allow, "PATCH, DELETE", "Allow names PATCH and DELETE");

	memset(longseg, 'a', sizeof(longseg));
	memcpy(longseg, "/api/jobs/", 10);
	longseg[sizeof(longseg) - 1] = '\0';
	is_int(route_match(table, N, true, "GET", longseg, &found, &p, allow, sizeof(allow)),
	       ROUTE_NOT_FOUND, "over-long capture refused");
	return done_testing();
}
