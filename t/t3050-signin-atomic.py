#!/usr/bin/env python3
"""A GitHub sign-in is one transaction: the user row, the tokens, the
session's rotation, the flow's completion and the audit event all happen,
or none does. ANYON_TEST_FAULT breaks the sign-in right after the tokens
are stored, inside the transaction: once by failing there, once by
killing the FastCGI child there. Each time the database file shows
nothing of the sign-in (no user for the GitHub id, no secrets, the
session's token hash and user unchanged, the flow not complete, no 'ok'
audit of it), the browser is still signed out with its old cookie, and
after a restart without the fault the same browser signs in normally."""
import hashlib, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, poll_until, sign_in, stack_env

t = TAP()
GITHUB_ID = 4242


def nothing_left(s, c, cookie, flow_id, how):
    """Checks that no trace of the failed sign-in is in the database."""
    t.eq(s.sql("SELECT count(*) FROM users WHERE github_id = %d OR login = 'alice'" % GITHUB_ID), [["0"]],
         "%s: no user row for the GitHub id" % how)
    t.eq(s.sql("SELECT count(*) FROM secrets"), [["0"]], "%s: no secrets rows" % how)
    token_hash = hashlib.sha256(bytes.fromhex(cookie)).hexdigest()
    t.eq(s.sql("SELECT count(*) FROM sessions WHERE token_hash = %s AND user_id IS NULL"
               % s.pick("X'%s'" % token_hash, "'\\x%s'::bytea" % token_hash)),
         [["1"]], "%s: the session keeps its token hash and has no user (not rotated)" % how)
    t.eq(s.sql("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL"), [["0"]],
         "%s: no session has a user" % how)
    status = s.sql("SELECT status, coalesce(user_id, 0) FROM device_flows WHERE id = '%s'" % flow_id)
    t.ok(len(status) == 1 and status[0][0] != "complete" and status[0][1] == "0",
         "%s: the flow is not complete" % how, status)
    t.eq(s.sql("SELECT count(*) FROM audit WHERE outcome = 'ok' AND action IN "
               "('github.signin', 'secret.stored')"), [["0"]],
         "%s: no audit row of a sign-in or a stored token" % how)
    t.eq(c.cookies.get("anyon_session"), cookie, "%s: the browser got no new cookie" % how)
    r = c.session()
    t.ok(r.status == 200 and r.json["user"] is None, "%s: the browser is still anonymous" % how, r)


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", id=GITHUB_ID, repos=["one"])
    for fault, how in (("signin_after_tokens", "failed sign-in"),
                       ("exit:signin_after_tokens", "killed sign-in")):
        s = Stack(env=stack_env(gh, extra={"ANYON_TEST_FAULT": fault}))
        with s:
            c = s.client()
            c.session()
            start = c.post("/api/auth/github/device/start")
            t.ok(start.status == 200, "%s: a flow starts" % how, start)
            # the session (and its cookie) exists from the start on
            cookie = c.cookies.get("anyon_session")
            gh.approve(start.json["user_code"], "alice")
            r = poll_until(c, start.json["flow_id"])
            def log():
                with open(os.path.join(s.data, "log", "fcgi.log")) as f:
                    return f.read()
            if fault.startswith("exit:"):
                t.ok(r.status == 503 and r.error_code() == "service_unavailable",
                     "%s: the child died mid-request; nginx answers 503" % how, r)
                # the pool's parent logs the death once it has reaped the child
                t.ok(wait_until(lambda: "test fault: exiting at signin_after_tokens" in log()
                                and "exited with status 70" in log()),
                     "%s: it died at the fault, after the tokens were stored, and was replaced" % how, log())
            else:
                t.ok(r.status == 200 and r.json["status"] == "error" and "could not record" in r.json["message"],
                     "%s: the poll ends the flow with an error" % how, r)
                t.ok("test fault: failing at signin_after_tokens" in log(),
                     "%s: it failed at the fault, after the tokens were stored" % how)
                t.eq(s.sql("SELECT count(*) FROM audit WHERE action = 'github.signin' AND outcome = 'error'"),
                     [["1"]], "%s: the failure is audited, after the rollback" % how)
            t.ok(gh.tokens_for("alice"), "%s: GitHub did issue a token" % how)
            nothing_left(s, c, cookie, start.json["flow_id"], how)

            # the same stack and browser, restarted without the fault
            del s.env["ANYON_TEST_FAULT"]
            s.stop()
            s.start()
            r = sign_in(c, gh, "alice")
            t.ok(r.status == 200 and r.json["status"] == "complete" and r.json["user"]["login"] == "alice",
                 "%s, then without the fault: the sign-in completes" % how, r)
            t.ok(c.cookies.get("anyon_session") not in (None, cookie), "... with a new cookie")
            t.eq(s.sql("SELECT count(*) FROM users WHERE github_id = %d" % GITHUB_ID), [["1"]], "... one user row")
            t.eq(s.sql("SELECT kind FROM secrets"), [["github_token"]], "... the token stored")
            r = c.session()
            t.ok(r.json["user"]["login"] == "alice" and r.json["github"]["connected"] is True,
                 "... and the session is alice's, GitHub connected", r.json)
            t.eq(s.sql("SELECT count(*) FROM audit WHERE action = 'github.signin' AND outcome = 'ok'"), [["1"]],
                 "... and audited once")
            tokens = gh.tokens_for("alice")
            t.ok(tokens and not s.sql("SELECT id FROM audit WHERE " + " OR ".join(
                "%s(detail, '%s') > 0" % (s.pick("instr", "strpos"), tok) for tok in tokens)), "no audit row holds a token")
t.done()
