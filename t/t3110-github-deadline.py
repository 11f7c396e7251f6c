#!/usr/bin/env python3
"""Every GitHub call made while serving one request keeps to one deadline
(ANYON_GITHUB_DEADLINE_MS; 45 s by default, below nginx's 60 s; 2 s here,
with 3 s per call): a repository search that walks slow pages, and a call
that hangs, answer 504 github_timeout when the deadline runs out, although
each call alone stays within its own timeout; the same calls without the
delay, or a single slow one, still succeed; and the FastCGI child is free
at once for the next request."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, sign_in, stack_env

t = TAP()
DEADLINE_S, CALL_S, PAGE_DELAY_S = 2.0, 3.0, 1.0


def timed_get(c, path):
    t0 = time.time()
    r = c.get(path)
    return r, time.time() - t0


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    # 250 repositories: a search that matches none walks 3 of GitHub's pages
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["repo-%03d" % i for i in range(250)])
    # no repository list cache: every search here walks GitHub's pages
    env = stack_env(gh, extra={"ANYON_GITHUB_REPO_CACHE_S": "0",
                               "ANYON_GITHUB_TIMEOUT_MS": str(int(CALL_S * 1000)),
                               "ANYON_GITHUB_DEADLINE_MS": str(int(DEADLINE_S * 1000))})
    with Stack(env=env) as s:
        a = s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in")

        before = gh.hits("/user/repos")
        r, took = timed_get(a, "/api/github/repositories?q=nomatch")
        t.ok(r.status == 200 and r.json["repositories"] == [] and r.json["has_next"] is False,
             "a fast GitHub: a search through every page answers", r)
        t.eq(gh.hits("/user/repos") - before, 3, "... after walking GitHub's 3 pages")

        gh.set_delay("/user/repos", PAGE_DELAY_S, host="api")
        r, took = timed_get(a, "/api/github/repositories?per_page=5")
        t.ok(r.status == 200 and len(r.json["repositories"]) == 5 and took >= PAGE_DELAY_S,
             "one slow page (%.1f s) is within the deadline: 200 after %.2f s" % (PAGE_DELAY_S, took), r)
        r, took = timed_get(a, "/api/github/repositories?q=nomatch")
        t.ok(r.status == 504 and r.error_code() == "github_timeout",
             "3 slow pages (%.1f s each, %.1f s in all) outlast the deadline: 504 github_timeout"
             % (PAGE_DELAY_S, 3 * PAGE_DELAY_S), r)
        t.ok(DEADLINE_S - 0.1 <= took < 3 * PAGE_DELAY_S - 0.3,
             "... answered at the deadline (%.2f s), not when GitHub was done" % took)
        msg = ((r.json or {}).get("error") or {}).get("message", "")
        t.ok("time" in msg, "... with a message that says why", r)
        gh.clear_fail()

        # one call that hangs: cut to the deadline, not the longer per-call timeout
        gh.set_fail("/user/repos", "timeout", count=1, hang=CALL_S + 2)
        r, took = timed_get(a, "/api/github/repositories")
        t.ok(r.status == 504 and r.error_code() == "github_timeout" and took < CALL_S - 0.3,
             "a hanging call ends at the deadline (%.2f s), before its own %.0f s timeout" % (took, CALL_S), r)
        gh.clear_fail()

        # the pool is free again at once: every child can serve
        rs = [a.get("/api/github/repositories?per_page=3") for _ in range(8)]
        t.ok(all(x.status == 200 for x in rs), "then GitHub answers again and so does anyon",
             [x.status for x in rs])
        log = open(os.path.join(s.data, "log", "fcgi.log")).read()
        t.ok("deadline for GitHub ran out" in log, "the log says the deadline ran out")
t.done()
