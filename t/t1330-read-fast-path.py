#!/usr/bin/env python3
"""The hot reads' fast path: GET /api/session, /api/jobs/{id},
/api/jobs/{id}/output, /api/events and a board's tasks read the session and what they answer
with together (one round trip on PostgreSQL, see docs/PERFORMANCE.md), and
checking the owner after the fact weakens nothing: another user's job and
its output stay a 404, another user's events are never in the feed, the
feed answers byte for byte as the plain read does, a revoked session and a disabled user stop working on the very
next request, a bad parameter is still a 400 after sign-in and a 401
before, a second cookie still finds its session, and the GitHub status
read with the session is the user's own, kept current. The board's version
(its ETag) read with the session likewise: another user's board is a 404,
the answer and the 304 are as the plain read's."""
import http.client, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

CTL = os.path.join(BUILDDIR, "anyonctl")
t = TAP()


def me(c):
    r = c.get("/api/session")
    return r.json.get("user") if r.status == 200 and r.json else None


def raw_get(s, path, cookie):
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def stale_token(c):
    """A cookie value of the right shape that names no session."""
    return "0" * len(c.cookies["anyon_session"])


def output(c, jid, after=0):
    return c.get("/api/jobs/%d/output?after=%d" % (jid, after))


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    for login in ("alice", "bob"):
        gh.add_user(login, login.title(), "%s@example.com" % login, repos=["%s-board" % login])
    s = Stack(env=stack_env(gh))
    with s:
        a, a2, b, anon = s.client(), s.client(), s.client(), s.client()
        for cl, login in ((a, "alice"), (a2, "alice"), (b, "bob")):
            r = sign_in(cl, gh, login)
            t.ok(r.status == 200 and r.json["status"] == "complete", "%s signs in" % login, r)

        r = a.post("/api/jobs", {"kind": "echo", "args": {"lines": ["one", "two", "three"]}})
        t.ok(r.status == 201, "alice creates a job", r)
        jid = r.json["job"]["id"] if r.status == 201 else 0
        t.ok(wait_until(lambda: output(a, jid).json.get("done") is True, timeout=30), "the job ends")

        # ---- the owner reads through the fast path ----
        r = a.get("/api/jobs/%d" % jid)
        t.ok(r.status == 200 and r.json["job"]["id"] == jid and r.json["job"]["state"] == "succeeded",
             "the owner reads her job", r)
        r = output(a, jid)
        data = "".join(ch["data"] for ch in r.json["chunks"]) if r.status == 200 else ""
        t.ok(r.status == 200 and "one" in data and "three" in data and r.json["done"] is True,
             "the owner reads its whole output", r)
        last = r.json["next_after"] if r.status == 200 else 0
        r = a.get("/api/jobs/%d/output?after=0&limit=1" % jid)
        t.ok(r.status == 200 and [ch["seq"] for ch in r.json["chunks"]] == [1] and r.json["next_after"] == 1 and
             r.json["done"] is False, "?limit=1 gives the first chunk only (more may follow)", r)
        r = output(a, jid, last)
        t.ok(r.status == 200 and r.json["chunks"] == [] and r.json["next_after"] == last and r.json["done"],
             "after the last chunk: none, and done", r)
        t.eq(a.get("/api/jobs/%d" % (jid + 1000)).status, 404, "a job that does not exist is a 404")
        t.eq(a.get("/api/jobs/%d/output?after=0" % (jid + 1000)).status, 404, "... and so is its output")

        # ---- another user: 404, never the job or its chunks ----
        for path in ("/api/jobs/%d" % jid, "/api/jobs/%d/output?after=0" % jid,
                     "/api/jobs/%d/output?after=0&limit=1" % jid, "/api/jobs/%d/output" % jid):
            r = b.get(path)
            t.ok(r.status == 404 and r.error_code() == "not_found" and b"one" not in (r.body if isinstance(r.body, bytes) else r.body.encode()),
                 "bob: %s -> 404 without its data" % path, r)

        # ---- parameters: 400 when signed in, 401 before ----
        r = a.get("/api/jobs/%d/output?after=-1" % jid)
        t.ok(r.status == 400 and r.error_code() == "invalid_parameter", "a bad ?after is a 400", r)
        r = a.get("/api/jobs/%d/output?limit=0" % jid)
        t.ok(r.status == 400 and r.error_code() == "invalid_parameter", "a bad ?limit is a 400", r)
        t.eq(anon.get("/api/jobs/%d/output?after=-1" % jid).status, 401, "signed out, a bad ?after is a 401")
        t.eq(anon.get("/api/jobs/%d" % jid).status, 401, "signed out, the job is a 401")
        t.eq(a.get("/api/jobs/x%d" % jid).status, 404, "a job id that is no number is a 404")

        # ---- a second cookie: the first names no session, the second does ----
        stale = stale_token(a)
        st, body = raw_get(s, "/api/jobs/%d" % jid,
                           "anyon_session=%s; anyon_session=%s" % (stale, a.cookies["anyon_session"]))
        t.ok(st == 200 and (b'"id":%d' % jid) in body.replace(b" ", b""),
             "a stale cookie before the live one: the live one is used", (st, body[:200]))
        st, body = raw_get(s, "/api/jobs/%d/output?after=0" % jid,
                           "anyon_session=%s; anyon_session=%s" % (stale, b.cookies["anyon_session"]))
        t.ok(st == 404, "... and another user's live cookie still gets a 404", (st, body[:200]))

        # ---- the change feed: the user's own events, as the plain read gives them ----
        pa = a.post("/api/projects/from-github", {"full_name": "alice/alice-board"})
        pb = b.post("/api/projects/from-github", {"full_name": "bob/bob-board"})
        t.ok(pa.status == 201 and pb.status == 201, "each imports a project", (pa, pb))
        apid = pa.json["project"]["id"] if pa.status == 201 else 0
        bpid = pb.json["project"]["id"] if pb.status == 201 else 0
        atasks = [a.post("/api/projects/%d/tasks" % apid, {"title": "A%d" % i}) for i in range(3)]
        btasks = [b.post("/api/projects/%d/tasks" % bpid, {"title": "B%d" % i}) for i in range(2)]
        t.ok(all(r.status == 201 for r in atasks + btasks), "tasks on each board (events for each)")
        aids = {apid} | {r.json["task"]["id"] for r in atasks if r.status == 201}
        bids = {bpid} | {r.json["task"]["id"] for r in btasks if r.status == 201}
        def board_events(r):   # the project's and tasks' events (not the job's)
            return [e for e in r.json["events"] if e["kind"].split(".")[0] in ("project", "task")]
        r = a.get("/api/events")
        t.ok(r.status == 200 and len(board_events(r)) == 4 and {e["subject"] for e in board_events(r)} == aids
             and r.json["more"] is False, "alice's feed: her project and tasks", r)
        afirst = board_events(r)[0]["id"] if r.status == 200 and board_events(r) else 0
        anewest = r.json["next_after"] if r.status == 200 else 0
        r = b.get("/api/events")
        t.ok(r.status == 200 and len(r.json["events"]) == 3 and {e["subject"] for e in r.json["events"]} == bids,
             "bob's feed: his own only", r)
        bnewest = r.json["next_after"] if r.status == 200 else 0
        r = b.get("/api/events?after=%d&limit=500" % (afirst - 1))
        t.ok(r.status == 200 and {e["subject"] for e in r.json["events"]} == bids and
             all(e["id"] > afirst - 1 for e in r.json["events"]),
             "bob from before alice's first event: still none of hers", r)
        # The same query with a stale first cookie goes the plain way (the
        # session of the second cookie is read alone, then the events).
        live = "anyon_session=%s" % a.cookies["anyon_session"]
        plain = "anyon_session=%s; %s" % (stale_token(a), live)
        for q in ("", "?after=0", "?after=0&limit=2", "?after=%d&limit=1" % afirst, "?after=%d" % anewest,
                  "?limit=500", "?after=%d" % (anewest + 1000)):
            st1, fast = raw_get(s, "/api/events" + q, live)
            st2, slow = raw_get(s, "/api/events" + q, plain)
            t.ok(st1 == 200 and st2 == 200 and fast == slow and b'"events"' in fast,
                 "/api/events%s: the fast path answers byte for byte as the plain read" % q, (st1, fast, st2, slow))
        st, body = raw_get(s, "/api/events?after=0",
                           "anyon_session=%s; anyon_session=%s" % (stale_token(a), b.cookies["anyon_session"]))
        t.ok(st == 200 and b'"events"' in body and all(b'"subject":%d,' % i not in body.replace(b" ", b"")
                                                       for i in aids - bids),
             "bob's cookie behind a stale one: still only his events", (st, body[:300]))
        r = b.get("/api/events?after=%d" % bnewest)
        t.ok(r.status == 200 and r.json == {"events": [], "next_after": bnewest, "more": False},
             "bob's steady poll: nothing new, none of alice's later ones", r)
        r = a.get("/api/events?after=-1")
        t.ok(r.status == 400 and r.error_code() == "invalid_parameter", "a bad ?after is a 400 on the feed", r)
        r = a.get("/api/events?limit=501")
        t.ok(r.status == 400 and r.error_code() == "invalid_parameter", "a bad ?limit is a 400 on the feed", r)
        t.eq(anon.get("/api/events?after=-1").status, 401, "signed out, a bad ?after on the feed is a 401")
        t.eq(anon.get("/api/events").status, 401, "signed out, the feed is a 401")

        # ---- the board's version (its ETag) read with the session ----
        r = a.get("/api/projects/%d/tasks" % apid)
        tag = r.header("etag")
        t.ok(r.status == 200 and len(r.json["tasks"]) == 3 and tag, "alice's board, with its ETag", r)
        st, fast = raw_get(s, "/api/projects/%d/tasks" % apid, live)
        st2, slow = raw_get(s, "/api/projects/%d/tasks" % apid, plain)
        t.ok(st == 200 and st2 == 200 and fast == slow, "the board: the fast path answers byte for byte as the "
             "plain read", (st, fast[:200], st2, slow[:200]))
        r = a.request("GET", "/api/projects/%d/tasks" % apid, headers={"If-None-Match": tag})
        t.ok(r.status == 304 and r.header("etag") == tag, "If-None-Match with it: 304", r)
        for cl, pid, who in ((b, apid, "bob on alice's board"), (a, bpid, "alice on bob's board"),
                             (a, bpid + 1000, "a board that does not exist")):
            r = cl.get("/api/projects/%d/tasks" % pid)
            t.ok(r.status == 404 and r.error_code() == "not_found" and "A0" not in str(r.body) and
                 "B0" not in str(r.body), "%s: 404 without its tasks" % who, r)
        r = b.request("GET", "/api/projects/%d/tasks" % apid, headers={"If-None-Match": tag})
        t.ok(r.status == 404 and not r.header("etag"), "bob with alice's ETag: 404, no tag", r)
        st, body = raw_get(s, "/api/projects/%d/tasks" % apid,
                           "anyon_session=%s; anyon_session=%s" % (stale_token(a), b.cookies["anyon_session"]))
        t.ok(st == 404 and b"A0" not in body, "bob's cookie behind a stale one: alice's board is still a 404",
             (st, body[:200]))
        t.eq(anon.get("/api/projects/%d/tasks" % apid).status, 401, "signed out, the board is a 401")
        a.post("/api/projects/%d/tasks" % apid, {"title": "A3"})
        r = a.request("GET", "/api/projects/%d/tasks" % apid, headers={"If-None-Match": tag})
        t.ok(r.status == 200 and r.header("etag") != tag and len(r.json["tasks"]) == 4,
             "a new task: the old tag gets the whole new board", r)

        # ---- the GitHub status read with the session is the user's own ----
        ra, rb = a.get("/api/session"), b.get("/api/session")
        t.ok(ra.status == 200 and ra.json["github"]["connected"] is True and ra.json["github"]["login"] == "alice"
             and ra.json["github"]["token_invalid"] is False, "alice's session shows her GitHub connection", ra)
        s.sql_write("UPDATE secrets SET invalid = 1 WHERE kind = 'github_token' AND user_id = "
                    "(SELECT id FROM users WHERE login = 'alice')")
        ra, rb = a.get("/api/session"), b.get("/api/session")
        t.ok(ra.status == 200 and ra.json["github"]["token_invalid"] is True,
             "alice's token marked invalid shows at once", ra)
        t.ok(rb.status == 200 and rb.json["github"]["connected"] is True and rb.json["github"]["login"] == "bob"
             and rb.json["github"]["token_invalid"] is False, "bob's status is his own", rb)
        s.sql_write("DELETE FROM secrets WHERE kind = 'github_token' AND user_id = "
                    "(SELECT id FROM users WHERE login = 'bob')")
        rb = b.get("/api/session")
        t.ok(rb.status == 200 and rb.json["user"]["login"] == "bob" and rb.json["github"]["connected"] is False,
             "bob's token gone: not connected", rb)
        r = anon.get("/api/session")
        t.ok(r.status == 200 and r.json["user"] is None and r.json["github"]["connected"] is False,
             "signed out: no user, not connected", r)

        # ---- revoked: the very next request fails ----
        mine = a2.get("/api/sessions").json["sessions"]
        other = [x["id"] for x in mine if not x["current"]]
        t.ok(a.get("/api/jobs/%d" % jid).status == 200 and len(other) == 1, "alice's first browser works")
        r = a2.delete("/api/sessions/%d" % other[0]) if other else None
        t.ok(r is not None and r.status == 200, "her second browser revokes the first", r)
        t.eq(a.get("/api/jobs/%d" % jid).status, 401, "the revoked session cannot read the job at once")
        t.eq(output(a, jid).status, 401, "... nor its output")
        t.eq(a.get("/api/events").status, 401, "... nor its events")
        t.eq(a.get("/api/events?after=0&limit=1").status, 401, "... with any parameters")
        t.eq(a.get("/api/projects/%d/tasks" % apid).status, 401, "... nor the board")
        t.eq(me(a), None, "... and /api/session has no user for it")
        t.eq(a2.get("/api/jobs/%d" % jid).status, 200, "the second browser still reads it")

        # ---- disabled: signed out at once ----
        r = subprocess.run([CTL, "users", "disable", "alice"], env=s.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        t.ok(r.returncode == 0, "anyonctl users disable alice", r.stdout)
        t.eq(a2.get("/api/jobs/%d" % jid).status, 401, "a disabled user's job read is refused at once")
        t.eq(output(a2, jid).status, 401, "... and its output")
        t.eq(a2.get("/api/events").status, 401, "... and the feed")
t.done()
