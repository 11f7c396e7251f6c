#!/usr/bin/env python3
"""org:NAME entries in ANYON_ALLOWED_GITHUB and ANYON_ADMIN_GITHUB (cloud
mode, against the GitHub stand-in): bad entries are refused at start; an
active member of a listed org signs in (the device flow then asks for
read:org) and a non-member or a pending invitee is refused; when GitHub
does not answer the membership question the sign-in is refused, not let
through; the worker re-checks members every ANYON_ORG_RECHECK_S: a member
who left loses every session (audited), a GitHub outage changes nothing,
a refused token signs the user out, an admin by org who left the org
loses admin; a user let in by a plain entry is never re-checked; at start
an org-admitted user keeps their sessions while the org entry is listed
and loses them when it is not."""
import os, shutil, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, session_user, stack_env, sign_in

CTL = os.path.join(BUILDDIR, "anyonctl")
MEMBERSHIP = "/user/memberships/orgs/"
t = TAP()


def sessions_of(s, login):
    return int(s.sql("SELECT count(*) FROM sessions WHERE user_id = "
                     "(SELECT id FROM users WHERE login = '%s')" % login)[0][0])


def admission(s, login):
    rows = s.sql("SELECT coalesce(allow_org, ''), coalesce(admin_org, '') FROM user_admission "
                 "WHERE user_id = (SELECT id FROM users WHERE login = '%s')" % login)
    return tuple(rows[0]) if rows else None


def audited(s, action, login, words):
    rows = s.sql("SELECT detail FROM audit WHERE action = '%s'" % action)
    return [r for r in rows if "login=%s " % login in r[0] + " " and words in r[0]]


def asked_with(gh, login):
    """Membership requests GitHub got with one of login's tokens."""
    toks = set(gh.tokens_for(login))
    return [e for e in gh.requests(MEMBERSHIP)
            if (gh.header_of(e, "Authorization") or "").partition(" ")[2] in toks]


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    for login in ("alice", "olga", "nick", "paul", "gina", "adam", "oscar"):
        gh.add_user(login, login.title(), "%s@example.com" % login)
    gh.add_org("acme")
    gh.add_org("ops")
    for login in ("olga", "gina", "adam", "oscar"):
        gh.set_membership("acme", login, "active")
    gh.set_membership("acme", "paul", "pending")
    gh.set_membership("ops", "adam", "active")
    s = Stack(env=stack_env(gh, allowed="alice, org:acme",
                            extra={"ANYON_ADMIN_GITHUB": "org:ops", "ANYON_ORG_RECHECK_S": "1"}), keep=True)

    # ---- the lists are checked at start ----
    for var, value, words in (("ANYON_ALLOWED_GITHUB", "alice, org:bad_name", "org:bad_name"),
                              ("ANYON_ALLOWED_GITHUB", "alice org:", "org:"),
                              ("ANYON_ALLOWED_GITHUB", "alice, team:acme", "team:acme"),
                              ("ANYON_ADMIN_GITHUB", "org:-acme", "org:-acme"),
                              ("ANYON_ALLOWED_GITHUB", " ".join("org:o%d" % i for i in range(9)), "more than 8")):
        r = subprocess.run([CTL, "users", "list"], env=dict(s.env, **{var: value}), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        t.ok(r.returncode != 0 and var in r.stdout and words in r.stdout,
             "%s=%r is refused at start, saying why" % (var, value), r.stdout)

    with s:
        # ---- sign-in ----
        o1 = s.client()
        r = sign_in(o1, gh, "olga")
        t.ok(r.status == 200 and r.json["status"] == "complete" and (session_user(o1) or {}).get("login") == "olga",
             "an active member of org:acme signs in", r)
        t.ok("read:org" in gh.devices_list()[-1]["scope"], "with an org: entry the device flow asks for read:org",
             gh.devices_list()[-1])
        t.eq(admission(s, "olga"), ("acme", ""), "olga is remembered as admitted by org acme")
        t.ok((session_user(o1) or {}).get("is_admin") is False, "olga is not an admin (not a member of ops)")
        a = s.client()
        r = sign_in(a, gh, "alice")
        t.ok(r.status == 200 and r.json["status"] == "complete", "alice signs in by her plain entry", r)
        t.eq(admission(s, "alice"), ("", ""), "alice is remembered as admitted by a plain entry")
        alice_asked = len(asked_with(gh, "alice"))
        for login, why in (("nick", "not a member"), ("paul", "invited but not joined")):
            r = sign_in(s.client(), gh, login)
            t.ok(r.status == 200 and r.json["status"] == "denied", "%s (%s) is refused" % (login, why), r)
        t.eq(s.sql("SELECT count(*) FROM users WHERE login IN ('nick', 'paul')"), [["0"]],
             "the refused sign-ins left no user")
        gh.set_fail(MEMBERSHIP, 502, count=None)
        r = sign_in(s.client(), gh, "gina")
        t.ok(r.status == 200 and r.json["status"] == "error" and "acme" in r.json.get("message", ""),
             "GitHub failing on the membership question: the sign-in is refused, saying which org", r)
        t.eq(s.sql("SELECT count(*) FROM users WHERE login = 'gina'"), [["0"]], "... and nothing of gina is kept")
        gh.clear_fail()

        # ---- re-check: GitHub down changes nothing ----
        o2 = s.client()
        r = sign_in(o2, gh, "olga")
        t.ok(r.status == 200 and r.json["status"] == "complete", "olga signs in from a second browser", r)
        gh.set_fail(MEMBERSHIP, 502, count=None)
        gh.set_membership("acme", "olga", None)
        before = len(asked_with(gh, "olga"))
        t.ok(wait_until(lambda: len(asked_with(gh, "olga")) >= before + 3, timeout=15),
             "the worker keeps asking GitHub about olga while it answers 502")
        t.ok(sessions_of(s, "olga") == 2 and (session_user(o1) or {}).get("login") == "olga"
             and (session_user(o2) or {}).get("login") == "olga", "GitHub down: olga keeps both sessions")
        gh.clear_fail()
        gh.set_fail(MEMBERSHIP, "timeout", count=None, hang=3)
        before = len(asked_with(gh, "olga"))
        t.ok(wait_until(lambda: len(asked_with(gh, "olga")) >= before + 2, timeout=20),
             "the worker asks again while GitHub hangs")
        t.eq(sessions_of(s, "olga"), 2, "GitHub hanging: olga keeps both sessions")
        gh.clear_fail()
        for status in (403, 429):
            gh.set_fail(MEMBERSHIP, status, count=None)   # body: "API rate limit exceeded"
            before = len(asked_with(gh, "olga"))
            t.ok(wait_until(lambda: len(asked_with(gh, "olga")) >= before + 2, timeout=15),
                 "the worker asks while GitHub rate-limits with %d" % status)
            t.eq(sessions_of(s, "olga"), 2, "a rate limit (%d) is no answer: olga keeps both sessions" % status)
            gh.clear_fail()

        # ---- re-check: membership gone ----
        t.ok(wait_until(lambda: sessions_of(s, "olga") == 0, timeout=15),
             "GitHub answers again: olga, no longer a member, loses every session")
        t.ok(session_user(o1) is None and session_user(o2) is None, "both of olga's browsers are signed out")
        t.ok(audited(s, "user.offboarded", "olga", "no longer an active member of org acme"),
             "the offboarding is audited with the reason")
        r = sign_in(s.client(), gh, "olga")
        t.ok(r.status == 200 and r.json["status"] == "denied", "olga cannot sign in again", r)
        t.eq(len(asked_with(gh, "alice")), alice_asked, "alice, let in by name, was never re-checked")
        t.eq((session_user(a) or {}).get("login"), "alice", "alice keeps her session")

        # ---- admin by org:ops ----
        ad = s.client()
        r = sign_in(ad, gh, "adam")
        t.ok(r.status == 200 and r.json["status"] == "complete" and (session_user(ad) or {}).get("is_admin") is True,
             "adam, a member of ops, signs in as an admin", r)
        t.eq(admission(s, "adam"), ("acme", "ops"), "adam is remembered as let in by acme, admin by ops")
        gh.set_membership("ops", "adam", None)
        t.ok(wait_until(lambda: (session_user(ad) or {}).get("is_admin") is False, timeout=15),
             "adam leaves ops: no longer an admin after the re-check")
        t.ok(sessions_of(s, "adam") == 1 and (session_user(ad) or {}).get("login") == "adam",
             "... but still signed in (still a member of acme)")
        t.ok(audited(s, "user.admin_revoked", "adam", "no longer an active member of org ops"),
             "the lost admin right is audited with the reason")

        # ---- re-check: the token is revoked ----
        oc = s.client()
        r = sign_in(oc, gh, "oscar")
        t.ok(r.status == 200 and r.json["status"] == "complete", "oscar signs in by org acme", r)
        gh.revoke_user("oscar")
        t.ok(wait_until(lambda: sessions_of(s, "oscar") == 0, timeout=15),
             "oscar's token is revoked on GitHub: every session of his goes")
        t.ok(audited(s, "user.offboarded", "oscar", "GitHub token refused"), "audited: the token was refused")

        # ---- at start ----
        s.restart()
        t.eq((session_user(ad) or {}).get("login"), "adam", "a restart keeps the org-admitted adam's session")
        t.eq((session_user(a) or {}).get("login"), "alice", "... and alice's")
        s.restart(ANYON_ALLOWED_GITHUB="alice", ANYON_ADMIN_GITHUB="")
        t.eq(session_user(ad), None, "org:acme removed from the list: adam is signed out at the next start")
        t.ok(audited(s, "user.offboarded", "adam", "not on the allow list"), "... audited")
        t.eq((session_user(a) or {}).get("login"), "alice", "alice keeps her session")
        r = sign_in(s.client(), gh, "adam")
        t.ok(r.status == 200 and r.json["status"] == "denied", "adam cannot sign in without the org entry", r)
        t.ok("read:org" not in gh.devices_list()[-1]["scope"], "without org: entries read:org is not asked for",
             gh.devices_list()[-1])
if not t.failed:   # kept (keep=True) until now; and when a check failed
    shutil.rmtree(s.data, ignore_errors=True)
t.done()
