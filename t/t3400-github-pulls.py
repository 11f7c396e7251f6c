#!/usr/bin/env python3
"""Pull requests through services/github_pulls.c (t/helper/github-pull)
against the GitHub stand-in, on a branch really pushed over smart HTTP:
create, the same again (found, existed), the state after merge and close,
GitHub's refusals (no commits, no such branch), a revoked token, a
repository the token cannot see, arguments refused before any request,
GitHub down, answers that break the rules, and the deadline."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR  # noqa: E402
from fakegithub import FakeGitHub, GRANT_DEVICE  # noqa: E402

CID = "Ov23liAnyonTest00001"
HELPER = os.path.join(BUILDDIR, "t", "helper", "github-pull")
t = TAP()


def post_form(url, form):
    r = urllib.request.Request(url, urllib.parse.urlencode(form).encode(),
                               {"Accept": "application/json", "User-Agent": "t3400"})
    with urllib.request.urlopen(r, timeout=5) as f:
        return json.loads(f.read())


def token_for(gh, login):
    d = post_form(gh.url + "/login/device/code", {"client_id": CID, "scope": "repo read:user"})
    gh.approve(d["user_code"], login)
    return post_form(gh.url + "/login/oauth/access_token",
                     {"client_id": CID, "device_code": d["device_code"], "grant_type": GRANT_DEVICE})["access_token"]


def helper(gh, token, *args, deadline_ms=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYON_GITHUB")}
    env.update(ANYON_GITHUB_URL=gh.url, ANYON_GITHUB_API_URL=gh.api_url, ANYON_GITHUB_TIMEOUT_MS="5000")
    if deadline_ms is not None:
        env["GITHUB_PULL_DEADLINE_MS"] = str(deadline_ms)
    p = subprocess.run([HELPER] + list(args), input=token + "\n", env=env, capture_output=True, text=True,
                       timeout=30)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = {"rc": "no JSON", "stdout": p.stdout, "stderr": p.stderr}
    out["exit"] = p.returncode
    out["stderr"] = p.stderr
    return out


with FakeGitHub(client_id=CID, interval=1, time_scale=0.05, strict_first_poll=False) as gh:
    gh.add_user("alice", "Alice", "alice@example.com",
                repos=[{"name": "proj", "private": True, "with_git": True, "files": {"README.md": "hi\n"}}])
    gh.add_user("bob", "Bob", "bob@example.com")
    alice, alice2, bob = token_for(gh, "alice"), token_for(gh, "alice"), token_for(gh, "bob")
    tmp = tempfile.mkdtemp(prefix="t3400-")
    try:
        # Two branches pushed the way the worker pushes: one ahead of main, one not.
        askpass = os.path.join(tmp, "askpass.sh")
        with open(askpass, "w") as f:
            f.write('#!/bin/sh\ncase "$1" in Username*) echo x-access-token;; *) echo "$T3400_TOKEN";; esac\n')
        os.chmod(askpass, 0o700)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(HOME=tmp, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_ASKPASS=askpass,
                   T3400_TOKEN=alice)
        work = os.path.join(tmp, "w")
        subprocess.run(["git", "clone", "-q", gh.url + "/alice/proj.git", work], env=env, check=True, timeout=30)
        g = ["git", "-C", work, "-c", "user.name=a", "-c", "user.email=a@example.com"]
        subprocess.run(g + ["checkout", "-q", "-b", "anyon/0a1b2c3d"], env=env, check=True)
        with open(os.path.join(work, "a.txt"), "w") as f:
            f.write("hi\n")
        subprocess.run(g + ["add", "a.txt"], env=env, check=True)
        subprocess.run(g + ["commit", "-q", "-m", "add a.txt"], env=env, check=True)
        subprocess.run(g + ["checkout", "-q", "-b", "anyon/second"], env=env, check=True)
        subprocess.run(g + ["commit", "-q", "--allow-empty", "-m", "second"], env=env, check=True)
        p = subprocess.run(g + ["push", "-q", "origin", "anyon/0a1b2c3d", "anyon/second", "main:anyon/empty"],
                           env=env, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            t.bail("git push to the stand-in failed: " + p.stderr)

        # create
        gh.clear_log()
        r = helper(gh, alice, "create", "alice/proj", "anyon/0a1b2c3d", "main", "Add a.txt", "Made by anyon.")
        t.eq((r["rc"], r["exit"], r["number"], r["state"], r["existed"], r["html_url"]),
             ("GH_OK", 0, 1, "open", False, gh.url + "/alice/proj/pull/1"), "create: a new pull request, open")
        sent = gh.requests("/repos/alice/proj/pulls", method="POST")
        t.eq(len(sent) == 1 and json.loads(sent[0]["body"]),
             {"title": "Add a.txt", "head": "anyon/0a1b2c3d", "base": "main", "body": "Made by anyon."},
             "create: POST /repos/alice/proj/pulls with title, head, base and body as JSON")
        t.ok(len(sent) == 1 and gh.header_of(sent[0], "Authorization") == "Bearer " + alice and
             (gh.header_of(sent[0], "Content-Type") or "").startswith("application/json") and
             gh.header_of(sent[0], "X-GitHub-Api-Version") == "2022-11-28",
             "create: the token as a bearer, JSON, the API version")
        t.eq(gh.urls_containing(alice), [], "the token never in a URL")
        t.eq([(x["number"], x["head"]["ref"], x["base"]["ref"], x["body"]) for x in gh.pulls_list("alice", "proj")],
             [(1, "anyon/0a1b2c3d", "main", "Made by anyon.")], "the stand-in has it")

        # the same again: GitHub's 422, then found
        gh.clear_log()
        r = helper(gh, alice, "create", "alice/proj", "anyon/0a1b2c3d", "main", "Add a.txt again")
        t.eq((r["rc"], r["number"], r["state"], r["existed"]), ("GH_OK", 1, "open", True),
             "create again: already exists, found and given back (existed)")
        looked = [x["path"] for x in gh.requests("/repos/alice/proj/pulls", method="GET")]
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(looked[0]).query) if looked else {}
        t.eq((q.get("head"), q.get("state"), q.get("base")), (["alice:anyon/0a1b2c3d"], ["all"], ["main"]),
             "looked up with head=owner:branch&state=all&base=")
        t.eq(len(gh.pulls_list("alice", "proj")), 1, "no second pull request made")

        # state
        r = helper(gh, alice, "get", "alice/proj", "1")
        t.eq((r["rc"], r["number"], r["state"], r["html_url"]), ("GH_OK", 1, "open", gh.url + "/alice/proj/pull/1"),
             "get: open")
        gh.set_pull_state("alice", "proj", 1, "merged")
        t.eq(helper(gh, alice, "get", "alice/proj", "1")["state"], "merged", "get after a merge: merged")
        r = helper(gh, alice, "create", "alice/proj", "anyon/second", "main", "Second")
        t.eq((r["rc"], r["number"], r["existed"]), ("GH_OK", 2, False), "another branch: number 2")
        gh.set_pull_state("alice", "proj", 2, "closed")
        t.eq(helper(gh, alice, "get", "alice/proj", "2")["state"], "closed", "get after a close: closed")
        r = helper(gh, alice, "create", "alice/proj", "anyon/0a1b2c3d", "main", "After the merge")
        t.eq((r["rc"], r["existed"], r["number"]), ("GH_OK", False, 3),
             "a merged one does not stand in the way of a new one")
        r = helper(gh, alice, "create", "alice/proj", "anyon/second", "main", "Second again")
        t.eq((r["rc"], r["existed"], r["number"], r["state"]), ("GH_OK", False, 4, "open"),
             "nor does a closed one")
        gh.set_pull_state("alice", "proj", 4, "closed")
        r = helper(gh, alice, "get", "alice/proj", "99")
        t.eq((r["rc"], r["exit"], r["number"]), ("GH_NOT_FOUND", 1, 0), "get: no such number")

        # GitHub's refusals
        r = helper(gh, alice, "create", "alice/proj", "anyon/empty", "main", "Nothing")
        t.ok(r["rc"] == "GH_INVALID" and "No commits between main and anyon/empty" in r["error"],
             "a branch with no commits past base: GH_INVALID with GitHub's words", r)
        r = helper(gh, alice, "create", "alice/proj", "anyon/never-pushed", "main", "Nope")
        t.ok(r["rc"] == "GH_INVALID" and "head invalid" in r["error"], "a branch never pushed: GH_INVALID", r)

        # tokens and repositories
        gh.revoke(alice2)
        r = helper(gh, alice2, "create", "alice/proj", "anyon/second", "main", "x")
        t.ok(r["rc"] == "GH_TOKEN_INVALID" and alice2 not in r["error"] + r["stderr"],
             "create with a revoked token: GH_TOKEN_INVALID, the token nowhere in the error", r)
        t.eq(helper(gh, alice2, "get", "alice/proj", "1")["rc"], "GH_TOKEN_INVALID", "get with a revoked token")
        t.eq(helper(gh, bob, "create", "alice/proj", "anyon/second", "main", "x")["rc"], "GH_NOT_FOUND",
             "another user's private repository: GH_NOT_FOUND")
        t.eq(helper(gh, bob, "get", "alice/proj", "1")["rc"], "GH_NOT_FOUND", "get there: GH_NOT_FOUND")
        t.eq(helper(gh, alice, "create", "alice/nosuch", "anyon/second", "main", "x")["rc"], "GH_NOT_FOUND",
             "no such repository: GH_NOT_FOUND")

        # arguments refused before any request
        gh.clear_log()
        bad = [("alice/proj/x", "anyon/second", "main", "x"), ("alice", "anyon/second", "main", "x"),
               ("alice/..", "anyon/second", "main", "x"), ("alice/proj", "a..b", "main", "x"),
               ("alice/proj", "anyon/second", "ma in", "x"), ("alice/proj", "anyon/second", "main", ""),
               ("alice/proj", "anyon/second", "main", "t" * 257), ("alice/proj", "x:y:z", "main", "x")]
        rcs = [helper(gh, alice, "create", *b)["rc"] for b in bad]
        t.eq(rcs, ["GH_INVALID"] * len(bad), "bad repository names, branches and titles: GH_INVALID")
        t.eq(gh.requests(), [], "and no request made for them")

        # GitHub down, answers that break the rules, the deadline
        gh.set_fail("/repos/alice/proj/pulls", 502)
        t.eq(helper(gh, alice, "create", "alice/proj", "anyon/second", "main", "x")["rc"], "GH_UNAVAILABLE",
             "a 502: GH_UNAVAILABLE")
        gh.set_fail("/repos/alice/proj/pulls", 201, body={"number": "1", "html_url": gh.url + "/p", "state": "open"})
        t.eq(helper(gh, alice, "create", "alice/proj", "anyon/second", "main", "x")["rc"], "GH_BAD_ANSWER",
             "a number that is a string: GH_BAD_ANSWER")
        gh.set_fail("/repos/alice/proj/pulls", 200,
                    body={"number": 1, "html_url": "javascript:alert(1)", "state": "open", "merged": False})
        t.eq(helper(gh, alice, "get", "alice/proj", "1")["rc"], "GH_BAD_ANSWER", "an html_url that is no http(s) URL")
        gh.set_fail("/repos/alice/proj/pulls", 200,
                    body={"number": 1, "html_url": gh.url + "/p", "state": "weird", "merged": False})
        t.eq(helper(gh, alice, "get", "alice/proj", "1")["rc"], "GH_BAD_ANSWER", "a state GitHub has not")
        gh.set_fail("/repos/alice/proj/pulls", 200,
                    body={"number": 7, "html_url": gh.url + "/p", "state": "open", "merged": False})
        t.eq(helper(gh, alice, "get", "alice/proj", "1")["rc"], "GH_BAD_ANSWER", "an answer about another number")
        gh.set_fail("/repos/alice/proj/pulls", 403, body={"message": "API rate limit exceeded"})
        t.eq(helper(gh, alice, "get", "alice/proj", "1")["rc"], "GH_RATE_LIMITED", "a 403: GH_RATE_LIMITED")
        gh.set_delay("/repos/alice/proj/pulls", 3, count=1)
        r = helper(gh, alice, "get", "alice/proj", "1", deadline_ms=400)
        t.eq(r["rc"], "GH_DEADLINE", "the caller's deadline runs out: GH_DEADLINE")
        gh.clear_fail()
        t.eq(helper(gh, alice, "get", "alice/proj", "1")["state"], "merged", "and then it answers again")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

t.done()
