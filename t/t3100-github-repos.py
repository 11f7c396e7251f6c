#!/usr/bin/env python3
"""GitHub repositories and import, revoked and expiring tokens, isolation
between users, local mode's feature gate, nginx's limit on sign-in calls."""
import os, sys, threading
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

t = TAP()

with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    repos = [{"name": "repo-%02d" % i, "description": "demo %d" % i} for i in range(7)]
    repos.append({"name": "secret-sauce", "private": True, "description": "hidden things"})
    gh.add_user("alice", "Alice A", "alice@example.com", repos=repos)
    gh.add_user("bob", "Bob B", "bob@example.com", repos=["bobs-repo", {"name": "bob-private", "private": True}])
    with Stack(env=stack_env(gh)) as s:
        a, b = s.client(), s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in")
        t.ok(sign_in(b, gh, "bob").json["status"] == "complete", "bob signed in")

        # pages, following GitHub's Link header
        seen, page = [], 1
        while page < 10:
            r = a.get("/api/github/repositories?per_page=3&page=%d" % page)
            if r.status != 200:
                break
            seen += [x["full_name"] for x in r.json["repositories"]]
            if not r.json["has_next"]:
                break
            page += 1
        t.eq(page, 3, "8 repositories come in 3 pages of 3, has_next false on the last")
        t.eq(sorted(seen), sorted(["alice/" + x["name"] for x in repos]), "every repository listed once")
        r = a.get("/api/github/repositories?per_page=3")
        x = r.json["repositories"][0]
        t.ok(set(x) >= {"name", "full_name", "private", "default_branch", "description", "updated_at"},
             "a repository carries name, full name, private, default branch, description, updated", x)
        priv = [x for x in a.get("/api/github/repositories?per_page=100").json["repositories"] if x["private"]]
        t.eq([x["full_name"] for x in priv], ["alice/secret-sauce"], "the private flag is passed on")
        r = a.get("/api/github/repositories?q=SAUCE")
        t.ok(r.status == 200 and [x["full_name"] for x in r.json["repositories"]] == ["alice/secret-sauce"],
             "q filters by name, case-insensitively", r)
        r = a.get("/api/github/repositories?q=demo&per_page=2&page=2")
        t.ok(r.status == 200 and len(r.json["repositories"]) == 2 and r.json["has_next"],
             "q results are paginated too", r)
        t.ok(a.get("/api/github/repositories?per_page=500").status == 400, "per_page over 100 refused")
        t.ok(gh.hits("/user/repos") > 0 and not any(gh.urls_containing(tok) for tok in gh.tokens_for("alice")),
             "GitHub was asked with the token in a header only")

        # import
        r = a.post("/api/projects/from-github", {"full_name": "alice/repo-03"})
        t.ok(r.status == 201 and r.json["project"]["github_full_name"] == "alice/repo-03"
             and r.json["project"]["default_branch"] == "main" and r.json["project"]["clone_url"].endswith("repo-03.git"),
             "import creates a project with name, clone URL, default branch", r)
        pid = r.json["project"]["id"] if r.status == 201 else 0
        r = a.post("/api/projects/from-github", {"full_name": "alice/repo-03"})
        t.ok(r.status == 409 and r.error_code() == "already_imported", "importing twice -> 409", r)
        r = a.post("/api/projects/from-github", {"full_name": "alice/secret-sauce"})
        t.ok(r.status == 201 and r.json["project"]["private"] is True, "a private repository of one's own imports", r)
        r = a.post("/api/projects/from-github", {"full_name": "alice/nope"})
        t.ok(r.status == 404 and r.error_code() == "not_found", "an unknown repository -> 404", r)
        r = a.post("/api/projects/from-github", {"full_name": "bob/bob-private"})
        t.ok(r.status == 404, "someone else's private repository -> 404", r)
        for bad in ("noslash", "a/b/c", "../etc", "a/", "/b", "x" * 300 + "/y", 42):
            r = a.post("/api/projects/from-github", {"full_name": bad})
            t.ok(r.status == 400 and r.error_code() == "invalid_field", "bad full_name refused: %r" % (bad,), r)
        r = a.get("/api/projects")
        t.ok(r.status == 200 and len(r.json["projects"]) == 2 and r.json["next_before"] is None,
             "alice has 2 projects, on one page", r)
        r = a.get("/api/projects?limit=1")
        first = r.json["projects"] if r.status == 200 else []
        t.ok(len(first) == 1 and r.json["next_before"] == first[0]["id"], "limit=1: one project and a cursor", r)
        r = a.get("/api/projects?limit=1&before=%d" % first[0]["id"])
        t.ok(r.status == 200 and len(r.json["projects"]) == 1 and r.json["projects"][0]["id"] < first[0]["id"],
             "before= gives the next, older one", r)
        t.eq(a.get("/api/projects?limit=0").status, 400, "limit=0 is refused")

        # isolation: 404, not 403
        r = b.get("/api/projects/%d" % pid)
        t.ok(r.status == 404, "bob cannot see alice's project (404)", r)
        t.eq(b.get("/api/projects").json["projects"], [], "bob's project list is his own")
        r = b.post("/api/projects/from-github", {"full_name": "alice/repo-03"})
        t.ok(r.status == 201, "bob may import alice's public repository as his own project", r)
        job = a.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"]}}).json["job"]["id"]
        t.ok(b.get("/api/jobs/%d" % job).status == 404 and b.post("/api/jobs/%d/cancel" % job).status == 404
             and b.get("/api/jobs/%d/output" % job).status == 404, "bob cannot read or cancel alice's job (404)")
        r = b.get("/api/audit")
        t.ok(r.status == 200 and all(e["user_id"] in (None, b.session().json["user"]["id"]) for e in r.json["events"]),
             "bob's audit log holds only his events")

        # revocation -> github_token_invalid, end to end
        gh.revoke_user("alice")
        r = a.get("/api/github/repositories")
        t.ok(r.status == 401 and r.error_code() == "github_token_invalid", "a revoked token -> 401 github_token_invalid", r)
        r = a.session()
        t.ok(r.json["github"]["token_invalid"] is True and r.json["user"]["login"] == "alice",
             "the session stays, and shows github.token_invalid", r.json)
        r = a.post("/api/projects/from-github", {"full_name": "alice/repo-04"})
        t.ok(r.status == 401 and r.error_code() == "github_token_invalid", "import too says github_token_invalid", r)
        t.ok(s.sql("SELECT count(*) FROM audit WHERE action = 'github.token_invalid'")[0][0] != "0",
             "the invalid token is audited")
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signs in again")
        r = a.session()
        t.ok(r.json["github"]["token_invalid"] is False and a.get("/api/github/repositories").status == 200,
             "after signing in again the token works and the flag is gone", r.json)

        # GitHub down
        gh.set_fail("/user/repos", 503, count=1)
        r = a.get("/api/github/repositories")
        t.ok(r.status == 502 and r.error_code() == "github_unavailable", "GitHub 503 -> 502 github_unavailable", r)
        gh.clear_fail()

        # disconnect
        r = a.delete("/api/auth/github")
        t.ok(r.status == 200 and r.json["connected"] is False, "DELETE /api/auth/github forgets the token", r)
        r = a.get("/api/github/repositories")
        t.ok(r.status == 401 and r.error_code() == "github_not_connected", "then calls say github_not_connected", r)

# GitHub App user tokens that expire: refreshed before use
with FakeGitHub(client_id=CLIENT_ID, interval=1, app_tokens=True, token_expires_in=30) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["one"])
    with Stack(env=stack_env(gh)) as s:
        a = s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "signed in with an expiring app token")
        first = set(gh.tokens_for("alice"))
        t.ok(s.sql("SELECT count(*) FROM secrets WHERE kind IN ('github_token', 'github_refresh_token') "
                   "AND expires_at IS NOT NULL") == [["2"]], "access and refresh token stored with their expiry")
        r = a.get("/api/github/repositories")
        t.eq(r.status, 200, "a token within a minute of expiry is refreshed, then used")
        t.ok(set(gh.tokens_for("alice")) - first, "GitHub issued a new token through the refresh grant")
        t.ok(gh.hits("/login/oauth/access_token") >= 2 and
             s.sql("SELECT count(*) FROM audit WHERE action = 'github.token_refreshed' AND outcome = 'ok'")[0][0] != "0",
             "the refresh is audited")

        # Two requests at once, both finding the token about to expire: both
        # refresh, GitHub honours the first refresh token and refuses the
        # second (already spent). The loser must use the winner's new token,
        # not mark it invalid (which signed the user out of GitHub).
        gh.set_delay("/login/oauth/access_token", 0.5, count=2)
        tabs = [s.client() for _ in range(2)]
        results = [None, None]
        def fetch(i):
            tabs[i].cookies = dict(a.cookies)
            results[i] = tabs[i].get("/api/github/repositories")
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(2)]
        before = gh.hits("/login/oauth/access_token")
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        t.ok(gh.hits("/login/oauth/access_token") - before == 2,
             "both requests went to GitHub to refresh", gh.hits("/login/oauth/access_token") - before)
        t.ok(all(r is not None and r.status == 200 for r in results),
             "both answer 200: the refused refresh used the token the other one stored",
             [(r.status, r.json) if r else None for r in results])
        r = a.session()
        t.ok(r.json["github"]["token_invalid"] is False and a.get("/api/github/repositories").status == 200,
             "the token is not marked invalid, and keeps working", r.json)
        t.ok(s.sql("SELECT count(*) FROM audit WHERE action = 'github.token_refreshed' AND outcome = 'error'")
             == [["0"]], "no failed refresh is recorded")

# local mode: GitHub may be connected, import is hidden
with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["one"])
    env = stack_env(gh)
    del env["ANYON_CLOUD"]
    env["ANYON_AUTH_RATE"] = "10r/m"
    with Stack(env=env) as s:
        c = s.client()
        r = c.session()
        t.ok(r.json["features"]["cloud"] is False and r.json["user"]["login"] == "local"
             and r.json["github"]["connected"] is False, "local mode: the local user, GitHub not connected", r.json)
        t.ok(sign_in(c, gh, "alice").json["status"] == "complete", "the local user connects GitHub")
        r = c.session()
        t.ok(r.json["user"]["login"] == "local" and r.json["github"] == {"connected": True, "login": "alice",
                                                                         "token_invalid": False},
             "still the local user, connected as alice", r.json)
        r = c.get("/api/github/repositories")
        t.ok(r.status == 404 and r.error_code() == "not_found", "local mode: repository listing is not offered (404)", r)
        # Without the cloud-only import route, the path is only
        # /api/projects/{id}'s: 405 with Allow: GET, PATCH, DELETE, as for
        # any path that exists for other methods; nothing names the import.
        r = c.post("/api/projects/from-github", {"full_name": "alice/one"})
        t.ok(r.status == 405 and r.error_code() == "method_not_allowed" and r.header("Allow") == "GET, PATCH, DELETE",
             "local mode: import does not exist (POST on /api/projects/{id}: 405, Allow: GET, PATCH, DELETE)", r)
        r = c.post("/api/projects/from-github", {"full_name": "alice/one"}, csrf=False)
        t.ok(r.status == 405 and r.header("Allow") == "GET, PATCH, DELETE",
             "local mode: the route table hides import before any other check (405, not 403)", r)
        r = c.delete("/api/github/repositories")
        t.ok(r.status == 404 and r.error_code() == "not_found" and not r.header("Allow"),
             "local mode: another method on a cloud-only path is 404 too, with no Allow naming it", r)
        # nginx's own rate limit on /api/auth/ (10 a minute here, burst 20)
        codes = [c.get("/api/auth/github/status").status for _ in range(40)]
        r = c.get("/api/auth/github/status")
        t.ok(429 in codes and r.status == 429 and r.error_code() == "rate_limited",
             "nginx limits /api/auth/ per address and answers JSON 429", codes)
t.done()
