#!/usr/bin/env python3
"""Access that is taken away stays taken away (cloud mode, against the
GitHub stand-in): a user dropped from ANYON_ALLOWED_GITHUB loses every
session at the next start, and a former admin loses admin rights; anyonctl
users disables (signed out at once, sign-in refused), enables, revokes
sessions and grants admin, each audited; a session made in local mode is
refused in cloud mode and the reverse; list entries bind to the GitHub
account (numeric id) that first signs in with them, so a renamed account
keeps its access and a newcomer with the old login does not get it."""
import os, shutil, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, session_user, stack_env, sign_in

CTL = os.path.join(BUILDDIR, "anyonctl")
t = TAP()


def ctl(s, *args):
    return subprocess.run([CTL] + list(args), env=s.env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def audited_any(s, action):
    return s.sql("SELECT count(*) FROM audit WHERE action = '%s'" % action) != [["0"]]


def audited(s, action, login):
    rows = s.sql("SELECT outcome, detail FROM audit WHERE action = '%s'" % action)
    return [r for r in rows if "login=%s" % login in r[1]]


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    for login in ("alice", "bob", "carol"):
        gh.add_user(login, login.title(), "%s@example.com" % login)
    s = Stack(env=stack_env(gh, allowed="alice, bob, carol", extra={"ANYON_ADMIN_GITHUB": "alice"}), keep=True)
    with s:
        a, b, c = s.client(), s.client(), s.client()
        for cl, login in ((a, "alice"), (b, "bob"), (c, "carol")):
            r = sign_in(cl, gh, login)
            t.ok(r.status == 200 and r.json["status"] == "complete", "%s signs in" % login, r)
        t.ok((session_user(a) or {}).get("is_admin") is True and (session_user(b) or {}).get("is_admin") is False,
             "alice is an admin by the list, bob is not")
        alice_id = session_user(a)["id"]
        r = a.get("/api/audit?limit=200")
        t.ok(r.status == 200 and any(e.get("user_id") not in (alice_id, None) for e in r.json["events"]),
             "the admin reads everyone's audit events", r)

        # ---- bob leaves the allow list, alice the admin list: restart ----
        s.restart(ANYON_ALLOWED_GITHUB="alice, carol", ANYON_ADMIN_GITHUB="")
        t.eq(session_user(b), None, "bob's session is gone after the restart")
        t.eq(b.get("/api/jobs").status, 401, "bob can no longer call the API")
        t.ok(s.sql("SELECT count(*) FROM sessions WHERE user_id = (SELECT id FROM users WHERE login = 'bob')")
             == [["0"]], "none of bob's sessions is left in the database")
        t.ok(audited(s, "user.offboarded", "bob"), "bob's offboarding is audited")
        ua = session_user(a)
        t.ok(ua and ua["login"] == "alice" and ua["is_admin"] is False,
             "alice keeps her session but is no longer an admin", ua)
        t.ok(audited(s, "user.admin_revoked", "alice"), "the lost admin right is audited")
        r = a.get("/api/audit?limit=200")
        t.ok(r.status == 200 and r.json["events"] and all(e.get("user_id") == alice_id for e in r.json["events"]),
             "the former admin now reads only her own audit events", r)
        r = sign_in(s.client(), gh, "bob")
        t.ok(r.status == 200 and r.json["status"] == "denied", "bob cannot sign in again", r)

        # ---- anyonctl users ----
        r = ctl(s, "users", "list")
        t.ok(r.returncode == 0 and "alice" in r.stdout and "bob" in r.stdout and "not-on-allow-list" in r.stdout,
             "users list shows every user and who is off the list", r.stdout)
        r = ctl(s, "users", "disable", "carol")
        t.ok(r.returncode == 0 and "1 session(s) signed out" in r.stdout, "users disable carol", r.stdout)
        t.eq(session_user(c), None, "carol is signed out at once, without a restart")
        r = sign_in(s.client(), gh, "carol")
        t.ok(r.status == 200 and r.json["status"] == "denied" and "disabled" in r.json.get("message", ""),
             "a disabled user's sign-in is refused, saying so", r)
        t.ok(s.sql("SELECT count(*) FROM sessions WHERE user_id = (SELECT id FROM users WHERE login = 'carol')")
             == [["0"]], "the refused sign-in left no session for carol")
        r = ctl(s, "users", "enable", "carol")
        t.eq(r.returncode, 0, "users enable carol")
        c = s.client()
        r = sign_in(c, gh, "carol")
        t.ok(r.status == 200 and r.json["status"] == "complete" and (session_user(c) or {}).get("login") == "carol",
             "an enabled user signs in again", r)
        r = ctl(s, "users", "admin", "carol", "on")
        t.ok(r.returncode == 0 and (session_user(c) or {}).get("is_admin") is True, "users admin carol on: at once", r.stdout)
        s.restart()
        t.ok((session_user(c) or {}).get("is_admin") is True, "a granted admin stays one across a restart")
        r = ctl(s, "users", "admin", "carol", "off")
        t.ok(r.returncode == 0 and (session_user(c) or {}).get("is_admin") is False, "users admin carol off", r.stdout)
        r = ctl(s, "users", "revoke-sessions", "alice")
        t.ok(r.returncode == 0 and session_user(a) is None, "users revoke-sessions alice signs her out", r.stdout)
        for action, login in (("user.disabled", "carol"), ("user.enabled", "carol"), ("user.admin_granted", "carol"),
                              ("user.admin_revoked", "carol"), ("user.sessions_revoked", "alice")):
            t.ok(audited(s, action, login), "%s of %s is audited" % (action, login))
        r = ctl(s, "users", "disable", "nobody-here")
        t.ok(r.returncode != 0, "an unknown login is an error", r.stdout)
        r = ctl(s, "users", "frobnicate", "carol")
        t.eq(r.returncode, 2, "an unknown verb is a usage error")

        # ---- Settings -> Sessions: a user's own sessions ----
        c2 = s.client()
        r = sign_in(c2, gh, "carol")
        t.ok(r.status == 200 and r.json["status"] == "complete", "carol signs in from a second browser", r)
        r = c.get("/api/sessions")
        mine = r.json["sessions"] if r.status == 200 else []
        t.ok(len(mine) == 2 and sum(1 for x in mine if x["current"]) == 1, "carol sees her two sessions, "
             "this one marked", r)
        t.ok(all(x["address"] == "127.0.0.1" and x["browser"] and x["created_at"] and x["last_seen_at"]
                 for x in mine), "each with address, browser, created and last seen", mine)
        other = [x["id"] for x in mine if not x["current"]]
        bob_rows = s.sql("SELECT id FROM sessions WHERE user_id IS NULL OR "
                         "user_id <> (SELECT id FROM users WHERE login = 'carol') ORDER BY id DESC")
        if bob_rows:
            r = c.delete("/api/sessions/%s" % bob_rows[0][0])
            t.ok(r.status == 404 and r.error_code() == "not_found", "another user's session is a 404", r)
        else:
            t.ok(False, "a foreign session exists to try", bob_rows)
        r = c.post("/api/sessions/revoke-others")
        t.ok(r.status == 200 and r.json["revoked"] == 1 and session_user(c2) is None and (session_user(c) or {}).get("login") == "carol",
             "revoke all others: the second browser is signed out, this one is not", r)
        r = c.delete("/api/sessions/%d" % other[0]) if other else None
        t.ok(r is not None and r.status == 404, "a revoked session is gone", r)
        t.ok(audited_any(s, "session.revoked"), "revocations are audited")
        cur = [x["id"] for x in mine if x["current"]]
        r = c.delete("/api/sessions/%d" % cur[0])
        t.ok(r.status == 200 and session_user(c) is None, "revoking this session signs out here", r)
        r = c.get("/api/sessions")
        t.ok(r.status in (401, 403), "signed out: no session list", r)
        c = s.client()
        r = sign_in(c, gh, "carol")
        t.ok(r.status == 200 and r.json["status"] == "complete", "carol signs in again", r)

        # ---- mode switch: the same data dir in local mode, then cloud again ----
        s.restart(ANYON_CLOUD="0")
        r = c.get("/api/session")
        u = r.json.get("user") if r.json else None
        t.ok(r.status == 200 and u and u["is_local"] is True and "set-cookie" in r.headers,
             "in local mode carol's cloud cookie is not honoured: a new local session replaces it", r)
        local_cookies = dict(c.cookies)
        s.restart(ANYON_CLOUD="1")
        c.cookies = dict(local_cookies)
        r = c.get("/api/session")
        t.ok(r.status == 200 and r.json.get("user") is None, "in cloud mode the local-mode session is refused", r)
        t.eq(c.get("/api/jobs").status, 401, "... and cannot call the API as the local admin")

        # ---- the lists follow the GitHub account, not the login ----
        t.ok(s.sql("SELECT github_id FROM access_bindings WHERE list = 'allow' AND entry = 'carol'")
             == [[str(gh.users["carol"]["id"])]], "carol's allow entry is bound to her GitHub id")
        carol_id = gh.users["carol"]["id"]
        gh.rename_user("carol", "carol-renamed")
        gh.add_user("carol", "Not Carol", "imposter@example.com")
        t.ok(gh.users["carol"]["id"] != carol_id, "someone else registers the login 'carol' on GitHub")
        r = sign_in(s.client(), gh, "carol")
        t.ok(r.status == 200 and r.json["status"] == "denied", "the newcomer named carol is refused", r)
        c3 = s.client()
        r = sign_in(c3, gh, "carol-renamed")
        u = session_user(c3)
        t.ok(r.status == 200 and r.json["status"] == "complete" and u and u["login"] == "carol-renamed",
             "the renamed account signs in by its id, under its new login", (r, u))
        s.restart()
        t.eq((session_user(c3) or {}).get("login"), "carol-renamed", "and keeps its session across a restart")
if not t.failed:   # kept (keep=True) for the restart above; and when a check failed
    shutil.rmtree(s.data, ignore_errors=True)
t.done()
