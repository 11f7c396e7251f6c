#!/usr/bin/env python3
"""Self-test of t/lib/fakegithub.py: drive the GitHub stand-in with urllib the
way anyon will (device flow, REST with Link pagination, failures, git over
smart HTTP with a token, pull requests, rejected pushes). Depends on nothing else in the repository."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from fakegithub import FakeGitHub, GRANT_DEVICE  # noqa: E402

N = 0
FAILED = 0
CID = "Ov23liAnyonTest00001"
UA = "anyon-test/1.0"
API_HEADERS = {"User-Agent": UA, "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def ok(cond, name, diag=None):
    global N, FAILED
    N += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (N, name), flush=True)
    if not cond:
        FAILED += 1
        if diag is not None:
            for line in str(diag).splitlines() or [""]:
                print("#   " + line, flush=True)
    return bool(cond)


def eq(got, want, name):
    return ok(got == want, name, "got:  %r\nwant: %r" % (got, want))


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        try:
            self.json = json.loads(body)
        except ValueError:
            self.json = None


def req(url, data=None, headers=None, method=None, timeout=5):
    if isinstance(data, dict):
        data = urllib.parse.urlencode(data).encode()
    r = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(r, timeout=timeout) as f:
            return Resp(f.status, f.headers, f.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def post_json(url, form, **kw):
    return req(url, form, {"Accept": "application/json", "User-Agent": UA}, **kw)


def api(gh, path, token=None, scheme="Bearer", **kw):
    h = dict(API_HEADERS)
    if token:
        h["Authorization"] = "%s %s" % (scheme, token)
    return req(path if path.startswith("http") else gh.api_url + path, headers=h, **kw)


def parse_link(v):
    out = {}
    for part in (v or "").split(","):
        m = re.match(r'\s*<([^>]+)>;\s*rel="(\w+)"', part)
        if m:
            out[m.group(2)] = m.group(1)
    return out


def start_flow(gh, scope="repo read:user user:email"):
    return post_json(gh.url + "/login/device/code", {"client_id": CID, "scope": scope}).json


def wait_interval(gh, dc):
    """Sleep the flow's current interval, on the server's scaled clock."""
    time.sleep(gh.device(device_code=dc)["interval"] * SCALE + 0.05)


def poll(gh, dc, cid=CID, grant=GRANT_DEVICE):
    return post_json(gh.url + "/login/oauth/access_token",
                     {"client_id": cid, "device_code": dc, "grant_type": grant}).json


T0 = time.time()
SCALE = 0.1  # server clock: a reported interval of 1 s is enforced as 0.1 s

with FakeGitHub(interval=1, time_scale=SCALE) as gh:
    ok(gh.url.startswith("http://127.0.0.1:") and gh.api_url.startswith("http://127.0.0.1:") and gh.url != gh.api_url,
       "web and API hosts on two loopback ports", (gh.url, gh.api_url))
    gh.add_user("alice", "Alice Liddell", "alice@example.com",
                repos=["r1", "r2", {"name": "r3", "private": True}, "r4", "r5"])
    gh.add_user("bob", "Bob", "bob@example.com", repos=[{"name": "hidden", "private": True}, "open"])

    # --- device code
    d = start_flow(gh)
    # The first poll at once, well inside the enforced interval (1 s × SCALE)
    # even on a loaded machine; checked below with the other polls.
    first = poll(gh, d["device_code"])
    ok(set(d) >= {"device_code", "user_code", "verification_uri", "expires_in", "interval"}, "device code answer fields", d)
    ok(re.fullmatch(r"[0-9a-f]{40}", d["device_code"]) is not None, "device_code is 40 hex")
    ok(re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", d["user_code"]) is not None, "user_code like WDJB-MJHT", d["user_code"])
    eq((d["verification_uri"], d["expires_in"], d["interval"]), (gh.url + "/login/device", 900, 1),
       "verification_uri, expires_in, interval")

    r = req(gh.url + "/login/device/code", {"client_id": CID, "scope": "repo"})
    q = dict(urllib.parse.parse_qsl(r.body.decode()))
    ok(r.status == 200 and r.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
       and q.get("interval") == "1" and "user_code" in q, "form-encoded answer without Accept: application/json", r.body)
    r = post_json(gh.url + "/login/device/code", {"client_id": "nope", "scope": "repo"})
    eq((r.status, r.json), (404, {"error": "Not Found"}), "unknown client_id is 404 Not Found")

    # --- polling
    p = first
    eq((p.get("error"), p.get("interval")), ("slow_down", 6), "poll before the interval: slow_down, interval raised by 5")
    ok("error_description" in p and "error_uri" in p, "error answers carry error_description and error_uri", p)
    wait_interval(gh, d["device_code"])
    eq(poll(gh, d["device_code"]).get("error"), "authorization_pending", "poll after the raised interval: authorization_pending")
    eq(len(gh.polls(d["device_code"])), 2, "poll timestamps recorded per device_code")
    r = req(gh.url + "/login/oauth/access_token", {"client_id": CID, "device_code": d["device_code"], "grant_type": GRANT_DEVICE})
    ok(dict(urllib.parse.parse_qsl(r.body.decode())).get("error") in ("slow_down", "authorization_pending"),
       "poll without Accept answers form-encoded", r.body)
    wait_interval(gh, d["device_code"])
    gh.force_slow_down(1, d["user_code"])
    eq(poll(gh, d["device_code"]).get("error"), "slow_down", "force_slow_down makes the next poll slow_down")
    eq(poll(gh, d["device_code"], cid=CID + "x").get("error"), "incorrect_client_credentials", "unknown client_id on poll")
    eq(poll(gh, "0" * 40).get("error"), "incorrect_device_code", "unknown device_code: incorrect_device_code")
    eq(poll(gh, d["device_code"], grant="authorization_code").get("error"), "unsupported_grant_type", "unsupported_grant_type")

    # approve through the control HTTP API, as the browser test will
    r = req(gh.url + "/_control/approve", json.dumps({"user_code": d["user_code"].lower(), "login": "alice"}).encode(),
            {"Content-Type": "application/json"})
    ok(r.status == 200 and r.json["ok"], "approve over /_control/", r.body)
    wait_interval(gh, d["device_code"])
    tok = poll(gh, d["device_code"])
    ok(re.fullmatch(r"gho_[A-Za-z0-9]{36}", tok.get("access_token", "")) is not None
       and tok.get("token_type") == "bearer" and tok.get("scope") == "repo,read:user,user:email",
       "approved: gho_ token, bearer, scope", tok)
    wait_interval(gh, d["device_code"])
    eq(poll(gh, d["device_code"]).get("error"), "incorrect_device_code", "a device code gives one token only")
    token = tok["access_token"]

    # --- API
    r = api(gh, "/user", token)
    ok(r.status == 200 and r.json["login"] == "alice" and r.json["name"] == "Alice Liddell"
       and r.json["email"] == "alice@example.com" and isinstance(r.json["id"], int) and r.json["avatar_url"],
       "GET /user with Bearer", r.body)
    eq(r.headers["Content-Type"], "application/json; charset=utf-8", "JSON content type")
    ok(r.headers["X-GitHub-Media-Type"] and r.headers["X-RateLimit-Remaining"] and r.headers["X-RateLimit-Limit"] == "5000",
       "X-GitHub-Media-Type and X-RateLimit-* headers")
    eq(r.headers["X-OAuth-Scopes"], "repo, read:user, user:email", "X-OAuth-Scopes")
    eq(api(gh, "/user", token, scheme="token").json["login"], "alice", "GET /user with 'token' scheme")
    r = req(gh.api_url + "/user", headers={"Authorization": "Bearer " + token, "User-Agent": ""})
    eq(r.status, 403, "no User-Agent: 403 as on GitHub")
    r = req(gh.api_url + "/user", headers=dict(API_HEADERS, **{"X-GitHub-Api-Version": "1999-01-01",
                                                                "Authorization": "Bearer " + token}))
    eq(r.status, 400, "unsupported X-GitHub-Api-Version: 400")
    eq(api(gh, "/user").status, 401, "GET /user without a token: 401")
    r = api(gh, "/user/emails", token)
    eq([(e["email"], e["primary"], e["verified"]) for e in r.json], [("alice@example.com", True, True)], "GET /user/emails")

    url, names, pages = gh.api_url + "/user/repos?per_page=2&sort=full_name", [], []
    while url:
        r = api(gh, url, token)
        links = parse_link(r.headers.get("Link"))
        pages.append(sorted(links))
        names += [x["full_name"] for x in r.json]
        url = links.get("next")
    eq(names, ["alice/r1", "alice/r2", "alice/r3", "alice/r4", "alice/r5"], "repos over 3 pages following Link")
    eq(pages, [["last", "next"], ["first", "last", "next", "prev"], ["first", "prev"]],
       "Link rels: page 1 next/last, middle all four, last page no next")
    r = api(gh, "/user/repos?per_page=2", token)
    ok(r.headers["Link"].startswith('<%s/user/repos?page=2&per_page=2>; rel="next", ' % gh.api_url),
       "Link is absolute on the API host, formatted as GitHub does", r.headers["Link"])
    x = api(gh, "/user/repos?per_page=100&visibility=private", token).json
    eq([y["name"] for y in x], ["r3"], "visibility=private")
    x = x[0]
    ok(set(x) >= {"id", "name", "full_name", "private", "owner", "html_url", "clone_url", "default_branch",
                  "description", "updated_at", "pushed_at", "permissions"}
       and x["owner"]["login"] == "alice" and x["private"] is True and x["permissions"]["admin"] is True
       and x["clone_url"] == gh.url + "/alice/r3.git", "repo fields", x)
    eq(len(api(gh, "/user/repos?per_page=500", token).json), 5, "per_page capped, no Link on a single page")
    ok("Link" not in api(gh, "/user/repos", token).headers, "no Link header when everything fits")
    eq(api(gh, "/repos/alice/r3", token).json["full_name"], "alice/r3", "GET /repos/{owner}/{repo}")
    r = api(gh, "/repos/bob/hidden", token)
    eq((r.status, r.json["message"]), (404, "Not Found"), "someone else's private repo is 404, not 403")
    eq(api(gh, "/repos/bob/open", token).status, 200, "someone else's public repo is visible")

    gh.revoke(token)
    r = api(gh, "/user", token)
    eq((r.status, r.json["message"], r.json["documentation_url"]), (401, "Bad credentials", "https://docs.github.com/rest"),
       "revoked token: 401 Bad credentials")

    # --- denied and expired flows
    d = start_flow(gh)
    gh.deny(d["user_code"])
    time.sleep(1 * SCALE + 0.05)
    eq(poll(gh, d["device_code"]).get("error"), "access_denied", "denied flow: access_denied")
    d = start_flow(gh)
    gh.expire(d["user_code"])
    eq(poll(gh, d["device_code"]).get("error"), "expired_token", "expire(): expired_token")
    gh.configure(expires_in=2)
    d = start_flow(gh)
    time.sleep(2 * SCALE + 0.05)
    eq(poll(gh, d["device_code"]).get("error"), "expired_token", "expires_in elapsed: expired_token")
    gh.configure(expires_in=900, device_flow_disabled=True)
    eq(post_json(gh.url + "/login/device/code", {"client_id": CID}).json.get("error"), "device_flow_disabled",
       "device_flow_disabled when configured")
    gh.configure(device_flow_disabled=False)

    # --- failures
    gh.set_fail("/user/repos", 502, count=1)
    t = gh.hits("/user/repos")
    eq(api(gh, "/user/repos", "x").status, 502, "set_fail: 502 injected")
    eq(api(gh, "/user/emails", "x").status, 401, "other paths unaffected")
    eq(gh.hits("/user/repos"), t + 1, "hit counters")
    gh.set_fail("/login/oauth/access_token", "timeout", count=1, hang=3)
    t0 = time.time()
    try:
        req(gh.url + "/login/oauth/access_token", {"client_id": CID}, timeout=0.5)
        timed_out = False
    except OSError:
        timed_out = True
    ok(timed_out and time.time() - t0 < 2, "set_fail timeout: the server hangs")
    gh.set_delay("/users/alice", 0.6, count=2, host="api")
    for i in range(3):
        t0 = time.time()
        st = api(gh, "/users/alice").status
        took = time.time() - t0
        ok(st == 200 and (took >= 0.6 if i < 2 else took < 0.5),
           "set_delay: request %d answered 200 %s" % (i + 1, "after the delay" if i < 2 else "at once (count used up)"),
           "%d after %.2f s" % (st, took))
    gh.set_delay("/users/alice", 0.6)
    gh.clear_fail()
    t0 = time.time()
    ok(api(gh, "/users/alice").status == 200 and time.time() - t0 < 0.5, "clear_fail() ends delays too")

    # --- request log
    ok(gh.urls_containing(token) == [] and all(token not in e["body"] for e in gh.requests(host="api")),
       "no token in any URL", gh.urls_containing(token))
    e = gh.requests("/user", host="api")[0]
    eq((gh.header_of(e, "User-Agent"), gh.header_of(e, "Accept"), gh.header_of(e, "X-GitHub-Api-Version")),
       (UA, "application/vnd.github+json", "2022-11-28"), "request log keeps headers")
    r = req(gh.url + "/_control/hits")
    ok(r.status == 200 and r.json["result"].get("POST /login/device/code", 0) >= 5, "GET /_control/hits", r.body)

# --- GitHub App tokens (ghu_/ghr_, refresh)
with FakeGitHub(interval=1, time_scale=SCALE, app_tokens=True, strict_first_poll=False) as gh:
    gh.add_user("carol", "Carol", "carol@example.com")
    d = start_flow(gh)
    gh.approve(d["user_code"], "carol")
    tk = poll(gh, d["device_code"])
    ok(tk.get("access_token", "").startswith("ghu_") and tk.get("refresh_token", "").startswith("ghr_")
       and tk.get("expires_in") == 28800 and tk.get("refresh_token_expires_in", 0) > 28800, "app mode: ghu_ + ghr_", tk)
    r = post_json(gh.url + "/login/oauth/access_token",
                  {"client_id": CID, "grant_type": "refresh_token", "refresh_token": tk["refresh_token"]})
    new = r.json
    ok(new.get("access_token", "").startswith("ghu_") and new["access_token"] != tk["access_token"], "refresh gives a new token", new)
    eq(api(gh, "/user", tk["access_token"]).status, 401, "refresh retires the old access token")
    eq(api(gh, "/user", new["access_token"]).json["login"], "carol", "new access token works")
    r = post_json(gh.url + "/login/oauth/access_token",
                  {"client_id": CID, "grant_type": "refresh_token", "refresh_token": tk["refresh_token"]})
    eq(r.json.get("error"), "bad_refresh_token", "refresh retires the old refresh token")
    gh.expire_token(new["access_token"])
    eq(api(gh, "/user", new["access_token"]).status, 401, "expired ghu_ token: 401")

# --- org memberships: GET /user/memberships/orgs/<org>, read:org needed
with FakeGitHub(interval=1, time_scale=SCALE, strict_first_poll=False) as gh:
    gh.add_user("erin", "Erin", "erin@example.com")
    gh.add_org("acme")
    tokens = {}
    for scope in ("repo read:user", "repo read:user read:org"):
        d = start_flow(gh, scope)
        gh.approve(d["user_code"], "erin")
        tokens[scope] = poll(gh, d["device_code"])["access_token"]
    tok, noorg = tokens["repo read:user read:org"], tokens["repo read:user"]
    eq(api(gh, "/user/memberships/orgs/acme", tok).status, 404, "membership: not a member is 404")
    gh.set_membership("acme", "erin", "pending")
    r = api(gh, "/user/memberships/orgs/acme", tok)
    eq((r.status, r.json and r.json["state"]), (200, "pending"), "an invitation not accepted: state pending")
    gh.set_membership("acme", "erin", "active", role="admin")
    r = api(gh, "/user/memberships/orgs/ACME", tok)
    ok(r.status == 200 and r.json["state"] == "active" and r.json["role"] == "admin"
       and r.json["organization"]["login"] == "acme" and r.json["user"]["login"] == "erin",
       "an active member: 200, state active, role, organization, user", r.body)
    r = api(gh, "/user/memberships/orgs/acme", noorg)
    ok(r.status == 403 and "read:org" in r.json["message"], "a token without read:org: 403", r.body)
    eq(api(gh, "/user/memberships/orgs/acme").status, 401, "no token: 401")
    eq(api(gh, "/user/memberships/orgs/nosuchorg", tok).status, 404, "an unknown org: 404")
    gh.set_fail("/user/memberships", 502)
    eq(api(gh, "/user/memberships/orgs/acme", tok).status, 502, "set_fail makes it fail")
    gh.set_membership("acme", "erin", None)
    eq(api(gh, "/user/memberships/orgs/acme", tok).status, 404, "membership removed: 404 again")
    r = req(gh.url + "/_control/set_membership", json.dumps({"org": "acme", "login": "erin"}).encode(),
            {"Content-Type": "application/json"}, method="POST")
    eq((r.status, api(gh, "/user/memberships/orgs/acme", tok).status), (200, 200), "set_membership over /_control/")

# --- git smart HTTP with a token
if shutil.which("git"):
    with FakeGitHub(interval=1, time_scale=SCALE, strict_first_poll=False) as gh:
        gh.add_user("dave", "Dave", "dave@example.com",
                    repos=[{"name": "proj", "private": True, "with_git": True, "files": {"README.md": "hello\n", "src/a.c": "int x;\n"}}])
        gh.add_user("eve", "Eve", "eve@example.com")
        d = start_flow(gh)
        gh.approve(d["user_code"], "dave")
        token = poll(gh, d["device_code"])["access_token"]
        d = start_flow(gh)
        gh.approve(d["user_code"], "eve")
        eve = poll(gh, d["device_code"])["access_token"]
        tmp = tempfile.mkdtemp(prefix="t0100-")
        try:
            askpass = os.path.join(tmp, "askpass.sh")
            with open(askpass, "w") as f:
                f.write('#!/bin/sh\ncase "$1" in Username*) echo x-access-token;; *) echo "$T0100_TOKEN";; esac\n')
            os.chmod(askpass, 0o700)
            base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
            base.update(HOME=tmp, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
            url = gh.url + "/dave/proj.git"

            def clone(dest, tok=None):
                env = dict(base)
                if tok:
                    env.update(GIT_ASKPASS=askpass, T0100_TOKEN=tok)
                return subprocess.run(["git", "clone", "-q", url, os.path.join(tmp, dest)], env=env,
                                      capture_output=True, text=True, timeout=20)
            p = clone("c1", token)
            ok(p.returncode == 0 and open(os.path.join(tmp, "c1", "src", "a.c")).read() == "int x;\n",
               "git clone over smart HTTP with the token from GIT_ASKPASS", p.stderr)
            ok(token not in open(os.path.join(tmp, "c1", ".git", "config")).read(), "token not in .git/config")
            ok(gh.urls_containing(token) == [], "token never in a git URL")
            e = [e for e in gh.requests("/dave/proj.git") if gh.header_of(e, "Authorization")]
            ok(e and gh.header_of(e[0], "Authorization").startswith("Basic "), "git sent Basic auth")
            p = clone("c2")
            ok(p.returncode != 0, "clone of a private repo without a token is refused", p.stderr)
            ok(any(e["path"].startswith("/dave/proj.git/info/refs") for e in gh.requests()), "refusal seen at info/refs")
            p = clone("c3", "gho_wrong")
            ok(p.returncode != 0 and "Invalid username or token" in p.stderr, "clone with a wrong token is refused", p.stderr)
            p = clone("c4", eve)
            ok(p.returncode != 0 and "not found" in p.stderr.lower(), "another user's private repo: not found", p.stderr)
            # push back as the owner
            c1 = os.path.join(tmp, "c1")
            env = dict(base, GIT_ASKPASS=askpass, T0100_TOKEN=token)
            g = ["git", "-C", c1, "-c", "user.name=d", "-c", "user.email=d@example.com"]
            subprocess.run(g + ["commit", "-q", "--allow-empty", "-m", "second"], env=env, check=True)
            p = subprocess.run(g + ["push", "-q", "origin", "HEAD"], env=env, capture_output=True, text=True, timeout=20)
            ok(p.returncode == 0, "push as the owner", p.stderr)
            out = subprocess.run(["git", "--git-dir", os.path.join(gh.git_dir, "dave", "proj.git"), "log", "--format=%s"],
                                 env=base, capture_output=True, text=True).stdout.splitlines()
            eq(out, ["second", "Initial commit"], "pushed commit reached the bare repository")

            # --- pull requests, checked against the pushed branches
            subprocess.run(g + ["checkout", "-q", "-b", "feature"], env=env, check=True)
            subprocess.run(g + ["commit", "-q", "--allow-empty", "-m", "feature work"], env=env, check=True)
            subprocess.run(g + ["push", "-q", "origin", "feature", "main:same"], env=env, check=True, timeout=20)
            head_sha = subprocess.run(g + ["rev-parse", "HEAD"], env=env, capture_output=True, text=True).stdout.strip()

            def create(tok, **b):
                return api(gh, "/repos/dave/proj/pulls", tok, data=json.dumps(b).encode(), method="POST")
            r = create(token, title="Feature", head="feature", base="main", body="Does things.")
            p = r.json or {}
            eq((r.status, p.get("number"), p.get("state"), p.get("merged"), p.get("title"), p.get("body")),
               (201, 1, "open", False, "Feature", "Does things."), "POST pulls: 201, the first number, open")
            eq((p.get("html_url"), p.get("url"), r.headers.get("Location")),
               (gh.url + "/dave/proj/pull/1", gh.api_url + "/repos/dave/proj/pulls/1", gh.api_url + "/repos/dave/proj/pulls/1"),
               "POST pulls: html_url, url and Location")
            eq((p["head"]["ref"], p["head"]["sha"], p["head"]["label"], p["base"]["ref"], p["user"]["login"],
                isinstance(p.get("id"), int), p.get("merged_at")),
               ("feature", head_sha, "dave:feature", "main", "dave", True, None), "POST pulls: head, base, user")
            r = create(token, title="Again", head="dave:feature", base="main")
            eq((r.status, r.json["message"], r.json["errors"]),
               (422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                                            "message": "A pull request already exists for dave:feature."}]),
               "the same head and base again: 422, already exists")
            r = create(token, title="Nothing", head="same", base="main")
            eq((r.status, r.json["errors"][0].get("message")), (422, "No commits between main and same"),
               "a head with no commits past base: 422")
            r = create(token, title="Nope", head="nope", base="main")
            eq((r.status, r.json["errors"]), (422, [{"resource": "PullRequest", "field": "head", "code": "invalid"}]),
               "a head branch that was never pushed: 422 head invalid")
            r = create(token, title="Nope", head="feature", base="nope")
            eq((r.status, r.json["errors"][0].get("field")), (422, "base"), "a base that is no branch: 422 base invalid")
            eq(create(token, head="feature", base="main").status, 422, "no title: 422")
            eq(create(eve, title="x", head="feature", base="main").status, 404, "a token that cannot see the repo: 404")
            eq(create(None, title="x", head="feature", base="main").status, 401, "no token: 401")
            eq(api(gh, "/repos/dave/nosuch/pulls", token, data=b"{}", method="POST").status, 404, "no such repo: 404")
            r = api(gh, "/repos/dave/proj/pulls?head=dave:feature&state=all", token)
            eq((r.status, [x["number"] for x in r.json], "merged" in r.json[0]), (200, [1], False),
               "GET pulls?head=owner:branch&state=all finds it (the list's shape, without merged)")
            eq([x["number"] for x in api(gh, "/repos/dave/proj/pulls?head=dave:other&state=all", token).json], [],
               "another head: none")
            r = api(gh, "/repos/dave/proj/pulls/1", token)
            eq((r.status, r.json["state"], r.json["merged"], r.json["merged_at"]), (200, "open", False, None),
               "GET pulls/1: open")
            gh.set_pull_state("dave", "proj", 1, "merged")
            r = api(gh, "/repos/dave/proj/pulls/1", token)
            ok(r.json["state"] == "closed" and r.json["merged"] is True and r.json["merged_at"] and r.json["closed_at"],
               "set_pull_state merged: closed, merged, merged_at", r.json)
            r = create(token, title="Second", head="feature", base="main")
            eq((r.status, r.json.get("number")), (201, 2), "a merged one does not block a new one: number 2")
            r = req(gh.url + "/_control/set_pull_state", json.dumps({"owner": "dave", "repo": "proj", "number": 2,
                                                                    "state": "closed"}).encode(),
                    {"Content-Type": "application/json"}, method="POST")
            r = api(gh, "/repos/dave/proj/pulls/2", token)
            eq((r.json["state"], r.json["merged"], r.json["merged_at"] is None), ("closed", False, True),
               "set_pull_state closed over /_control/")
            eq(api(gh, "/repos/dave/proj/pulls", token).json, [], "GET pulls: open ones only by default")
            eq(api(gh, "/repos/dave/proj/pulls/99", token).status, 404, "GET pulls/99: 404")
            eq([(x["number"], x["state"], x["merged"]) for x in gh.pulls_list("dave", "proj")],
               [(1, "closed", True), (2, "closed", False)], "pulls_list")
            gh.revoke(token)
            eq(api(gh, "/repos/dave/proj/pulls/1", token).status, 401, "a revoked token: 401")
            # --- rejected pushes
            d = start_flow(gh)
            gh.approve(d["user_code"], "dave")
            env["T0100_TOKEN"] = poll(gh, d["device_code"])["access_token"]
            subprocess.run(g + ["commit", "-q", "--allow-empty", "-m", "more"], env=env, check=True)
            gh.reject_push("dave", "proj", "error: GH006: Protected branch update failed for refs/heads/feature.")
            p = subprocess.run(g + ["push", "-q", "origin", "feature"], env=env, capture_output=True, text=True, timeout=20)
            ok(p.returncode != 0 and "GH006: Protected branch update failed" in p.stderr and "declined" in p.stderr,
               "reject_push: the push fails with the reason", p.stderr)
            gh.reject_push("dave", "proj", None)
            p = subprocess.run(g + ["push", "-q", "origin", "feature"], env=env, capture_output=True, text=True, timeout=20)
            ok(p.returncode == 0, "reject_push(None): accepted again", p.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
else:
    ok(True, "# SKIP git not installed")

ok(time.time() - T0 < 20, "self-test under 20 s (%.1f s)" % (time.time() - T0))
print("1..%d" % N, flush=True)
sys.exit(1 if FAILED else 0)
