#!/usr/bin/env python3
"""GitHub device-flow sign-in in cloud mode, against the local stand-in:
flows per session, early polls kept from GitHub, slow_down, expiry, denial,
the allow list, session rotation, tokens only encrypted, logout."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until
from fakegithub import FakeGitHub

t = TAP()
CLIENT_ID = "Ov23liAnyonTest00001"


def poll_until(c, flow_id, want=("complete", "expired", "denied", "error"), timeout=20):
    """Polls as the UI does: waits retry_after/interval between polls."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.post("/api/auth/github/device/poll", {"flow_id": flow_id})
        if r.status != 200 or r.json["status"] in want:
            return r
        time.sleep(min(r.json.get("retry_after") or r.json["interval"], 3))
    return r


def cloud_stack(gh, extra=None):
    env = {"ANYON_CLOUD": "1", "ANYON_GITHUB_URL": gh.url, "ANYON_GITHUB_API_URL": gh.api_url,
           "ANYON_GITHUB_CLIENT_ID": CLIENT_ID, "ANYON_ALLOWED_GITHUB": "alice, Bob",
           "ANYON_ADMIN_GITHUB": "alice", "ANYON_GITHUB_TIMEOUT_MS": "2000",
           # this test makes many sign-in calls from one address; nginx's own
           # limit on /api/auth/ is tested in t3200
           "ANYON_AUTH_RATE": "6000r/m"}
    env.update(extra or {})
    return Stack(env=env, keep=True)


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["one"])
    # bob keeps his email private: /user says null, /user/emails has it
    gh.add_user("bob", "Bob B", None, repos=["two"], emails=["bob@example.com", "b@old.example"])
    gh.add_user("mallory", "Mal", "mal@example.com")
    s = cloud_stack(gh)
    with s:
        a, b = s.client(), s.client()
        ra, rb = a.session(), b.session()
        t.ok(ra.json["user"] is None and ra.json["features"]["cloud"] is True,
             "cloud mode: a new session has no user", ra.json)
        t.eq(a.get("/api/jobs").status, 401, "cloud mode: signed-out calls get 401")

        # two browsers start flows at the same time
        sa = a.post("/api/auth/github/device/start")
        sb = b.post("/api/auth/github/device/start")
        t.ok(sa.status == 200 and sb.status == 200, "two sessions start flows at once", (sa, sb))
        fa, fb = sa.json, sb.json
        t.ok(fa["user_code"] != fb["user_code"] and fa["flow_id"] != fb["flow_id"]
             and fa["verification_uri"].startswith(gh.url) and fa["interval"] == 1 and fa["expires_in"] > 0,
             "each flow has its own code and id", (fa, fb))
        t.ok("device_code" not in sa.body, "the device code never reaches the browser")
        dev = gh.device(user_code=fa["user_code"])
        stored = b"".join(open(f, "rb").read() for f in s.storage_files())
        t.ok(stored and dev["device_code"].encode() not in stored,
             "the device code is not stored in plaintext (%d bytes of database files scanned)" % len(stored))

        # an early poll is answered here, not by GitHub
        polls_before = len(gh.polls(user_code=fa["user_code"]))
        r = a.post("/api/auth/github/device/poll", {"flow_id": fa["flow_id"]})
        t.ok(r.status == 200 and r.json["status"] == "pending" and r.json["retry_after"] >= 1,
             "an early poll answers pending with retry_after", r)
        t.eq(len(gh.polls(user_code=fa["user_code"])), polls_before, "... and did not reach GitHub")

        # another session cannot poll this flow
        r = b.post("/api/auth/github/device/poll", {"flow_id": fa["flow_id"]})
        t.ok(r.status == 404 and r.error_code() == "not_found", "a poll from another session is refused (404)", r)
        r = b.post("/api/auth/github/device/poll", {"flow_id": "zz"})
        t.ok(r.status == 400, "a malformed flow id is refused", r)

        # pending, then approved
        time.sleep(2.1)
        r = a.post("/api/auth/github/device/poll", {"flow_id": fa["flow_id"]})
        t.ok(r.status == 200 and r.json["status"] == "pending", "authorization_pending -> pending", r)
        t.eq(len(gh.polls(user_code=fa["user_code"])), polls_before + 1, "that poll reached GitHub once")

        old_cookie = a.cookies.get("anyon_session")
        gh.approve(fa["user_code"], "alice")
        gh.approve(fb["user_code"], "bob")
        r = poll_until(a, fa["flow_id"])
        t.ok(r.status == 200 and r.json["status"] == "complete" and r.json["user"]["login"] == "alice",
             "alice's flow completes as alice", r)
        t.ok(a.cookies.get("anyon_session") not in (None, old_cookie), "the session token changed at sign-in")
        rb = poll_until(b, fb["flow_id"])
        t.ok(rb.json["status"] == "complete" and rb.json["user"]["login"] == "bob", "bob's flow completes as bob", rb)
        gaps = [y - x for x, y in zip(gh.polls(user_code=fa["user_code"]), gh.polls(user_code=fa["user_code"])[1:])]
        t.ok(all(g >= 0.95 for g in gaps), "GitHub never saw two polls closer than the interval %s" % gaps)

        r = a.session()
        t.ok(r.json["user"]["login"] == "alice" and r.json["user"]["is_admin"] is True
             and r.json["github"] == {"connected": True, "login": "alice", "token_invalid": False},
             "GET /api/session shows alice, admin, GitHub connected", r.json)
        t.ok(r.json["user"]["avatar_url"].startswith("http"), "... with her avatar URL", r.json["user"])
        stale = s.client()
        stale.cookies["anyon_session"] = old_cookie
        r = stale.get("/api/session")
        t.ok(r.json["user"] is None, "the pre-sign-in cookie no longer signs anyone in (no fixation)", r.json)
        r = b.get("/api/auth/github/status")
        t.eq(r.json, {"connected": True, "login": "bob", "token_invalid": False}, "status for bob")
        r = b.session()
        t.ok(r.json["user"]["is_admin"] is False, "bob is not an admin")
        t.eq(s.sql("SELECT email FROM users WHERE login = 'bob'"), [["bob@example.com"]],
             "a private email is read from /user/emails (the primary one)")
        t.eq(s.sql("SELECT email FROM users WHERE login = 'alice'"), [["alice@example.com"]],
             "a public email is taken from /user")

        # tokens: stored encrypted, never in URLs, headers sent on every call
        tokens = gh.tokens_for("alice") + gh.tokens_for("bob")
        t.ok(len(tokens) >= 2, "GitHub issued tokens", tokens)
        blobs = b"".join(open(f, "rb").read() for f in s.storage_files())
        t.ok(len(blobs) > 0, "database files found to scan (%d bytes)" % len(blobs))
        for f in os.listdir(os.path.join(s.data, "log")):
            blobs += open(os.path.join(s.data, "log", f), "rb").read()
        t.ok(not any(tok.encode() in blobs for tok in tokens), "no token in the DB file, WAL or logs")
        t.ok(not any(gh.urls_containing(tok) for tok in tokens), "no token ever sent in a URL")
        reqs = gh.requests()
        t.ok(reqs and all(gh.header_of(q, "User-Agent", ) and gh.header_of(q, "X-GitHub-Api-Version") == "2022-11-28"
                          and gh.header_of(q, "Accept") for q in reqs),
             "every call sent User-Agent, Accept and X-GitHub-Api-Version (%d calls)" % len(reqs))
        t.ok(all(gh.header_of(q, "Accept") == "application/json" for q in reqs if q["path"].startswith("/login/")),
             "device-flow calls ask for JSON")

        # the allow list
        m = s.client()
        m.session()
        fm = m.post("/api/auth/github/device/start").json
        gh.approve(fm["user_code"], "mallory")
        r = poll_until(m, fm["flow_id"])
        t.ok(r.json["status"] == "denied" and "not allowed" in r.json["message"] and "mallory" in r.json["message"],
             "a user not on the allow list is refused with a clear message", r)
        t.ok(m.session().json["user"] is None, "... and is not signed in")
        t.eq(s.sql("SELECT count(*) FROM users WHERE login = 'mallory'"), [["0"]], "... and no user row was made")
        t.ok(s.sql("SELECT count(*) FROM audit WHERE action = 'github.signin' AND outcome = 'denied'") == [["1"]],
             "... and the refusal is audited")

        # denied and expired flows
        d = s.client(); d.session()
        fd = d.post("/api/auth/github/device/start").json
        gh.deny(fd["user_code"])
        r = poll_until(d, fd["flow_id"])
        t.ok(r.json["status"] == "denied" and "cancelled" in r.json["message"], "access_denied -> denied", r)
        fe = d.post("/api/auth/github/device/start").json
        gh.expire(fe["user_code"])
        r = poll_until(d, fe["flow_id"])
        t.ok(r.json["status"] == "expired" and "expired" in r.json["message"], "expired_token -> expired", r)
        n = len(gh.polls(user_code=fe["user_code"]))
        r = d.post("/api/auth/github/device/poll", {"flow_id": fe["flow_id"]})
        t.ok(r.json["status"] == "expired" and len(gh.polls(user_code=fe["user_code"])) == n,
             "a finished flow answers from the database")

        # slow_down raises the interval as GitHub says
        fs = d.post("/api/auth/github/device/start").json
        gh.force_slow_down(1, user_code=fs["user_code"])
        time.sleep(2.1)
        r = d.post("/api/auth/github/device/poll", {"flow_id": fs["flow_id"]})
        t.ok(r.json["status"] == "pending" and r.json["interval"] == 6, "slow_down: the interval becomes GitHub's (6)", r)
        n = len(gh.polls(user_code=fs["user_code"]))
        time.sleep(2.1)
        r = d.post("/api/auth/github/device/poll", {"flow_id": fs["flow_id"]})
        t.ok(r.json["status"] == "pending" and r.json["retry_after"] >= 3 and len(gh.polls(user_code=fs["user_code"])) == n,
             "after slow_down a poll 2 s later is held back", r)

        # rate limit on starting flows, per session
        codes = [d.post("/api/auth/github/device/start").status for _ in range(4)]
        t.ok(429 in codes, "starting too many flows in one session is rate limited %s" % codes)
        r = d.post("/api/auth/github/device/start")
        t.ok(r.status == 429 and r.error_code() == "rate_limited" and r.header("Retry-After"),
             "429 carries Retry-After", r)
        for _ in range(5):
            d.post("/api/auth/github/device/start")
        sid = s.sql("SELECT session_id FROM audit WHERE action = 'github.device_start' AND outcome = 'denied' "
                    "ORDER BY id DESC LIMIT 1")
        t.ok(sid and s.sql("SELECT count(*) FROM audit WHERE action = 'github.device_start' AND outcome = 'denied' "
                           "AND session_id = %s" % sid[0][0]) == [["1"]],
             "refusals in one window write one audit row, not one each", sid)

        # 5xx and timeouts from GitHub
        e = s.client(); e.session()
        gh.set_fail("/login/device/code", 502, count=1)
        r = e.post("/api/auth/github/device/start")
        t.ok(r.status == 502 and r.error_code() == "github_unavailable", "GitHub 5xx -> 502 github_unavailable", r)
        gh.set_fail("/login/device/code", "timeout", count=1, hang=4)
        t0 = time.time()
        r = e.post("/api/auth/github/device/start")
        t.ok(r.status == 502 and r.error_code() == "github_unavailable" and time.time() - t0 < 4,
             "a GitHub that hangs -> 502 after our timeout", r)
        gh.clear_fail()

        # a token answer that breaks the protocol (no usable access_token):
        # a clean error, nothing sent to GitHub as a token, no crash
        for body in ({"token_type": "bearer", "scope": "repo"}, {"access_token": ""}, {"access_token": 42}):
            x = s.client(); x.session()
            fx = x.post("/api/auth/github/device/start").json
            gh.approve(fx["user_code"], "alice")
            gh.set_fail("/login/oauth/access_token", 200, count=1, body=body)
            user_hits = gh.hits("/user")
            r = poll_until(x, fx["flow_id"])
            t.ok(r.status == 200 and r.json["status"] == "error" and "without a token" in r.json["message"],
                 "a token answer %s ends the flow with a clear error" % body, r)
            t.eq(gh.hits("/user"), user_hits, "... and nothing went to GitHub as a token")
            t.ok(x.session().json["user"] is None, "... and the browser is not signed in")
        gh.clear_fail()
        t.ok("killed by signal" not in open(os.path.join(s.data, "log", "fcgi.log")).read(),
             "no FastCGI child crashed")

        # logout
        r = a.post("/api/auth/logout")
        t.eq(r.status, 200, "logout")
        t.ok(a.session().json["user"] is None, "after logout the browser is signed out")
        t.ok(s.sql("SELECT count(*) FROM audit WHERE action = 'signout'") == [["1"]], "logout is audited")
    import shutil; shutil.rmtree(s.data, ignore_errors=True)
t.done()
