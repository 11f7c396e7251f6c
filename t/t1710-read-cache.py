#!/usr/bin/env python3
"""On PostgreSQL a child of the pool keeps its answers to hot reads
(fcgi/cache.h) and must never give one after what it answered changed:
  - every table of the schema notifies the channel on a write (trigger);
  - answers are kept: a change the database keeps quiet about (triggers
    off, written by someone who is not anyon) is not seen;
  - a change from another host (stack B, its own data dir: its pool shares
    no count with A's) reaches A's pool by notification, long before the
    keeping time (60 s here) runs out;
  - a change through this host's pool, worker or anyonctl is seen by the
    very next request (the host's shared count of commits): a logout, a
    job the worker ran, a user anyonctl disabled;
  - a sign-out on A ends the session on B as well;
  - a PostgreSQL restart: the pool and the worker connect again on their
    own (the next requests answer, a new job runs) and notifications still
    come afterwards (LISTEN again).
Runs on its own throwaway cluster (it restarts it), whatever the backend."""
import os, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, Client, BUILDDIR, wait_until
import pgcluster

CTL = os.path.join(BUILDDIR, "anyonctl")
t = TAP()


def job_error(c, jid):
    r = c.get("/api/jobs/%d" % jid)
    return r.json["job"].get("error") if r.status == 200 else ("status %d" % r.status)


def raw_session(s, cookie):
    """GET /api/session with exactly this cookie: (status, user id or None,
    whether it set a new cookie)."""
    c = Client(s.port)
    c.cookies = {"anyon_session": cookie}
    r = c.get("/api/session")
    user = (r.json.get("user") or {}).get("id") if r.status == 200 and r.json else None
    return r.status, user, bool(r.headers.get("set-cookie"))


def commits(s):
    with open(os.path.join(s.data, "commit-count"), "rb") as f:
        return int.from_bytes(f.read(8), "little")


def quiet_probe(a, b, clients, jid, value):
    """Fills each client's kept answer for the job, changes the row without
    telling anyone (triggers off, not through anyon), and checks every
    client still gets the kept answer. A commit of either stack meanwhile
    (a worker finishing its bookkeeping) rightly drops the answers: then
    it tries again, up to 5 times."""
    for attempt in range(5):
        time.sleep(0.5)
        before = [job_error(c, jid) for c in clients]
        counts = (commits(a), commits(b))
        admin("SET session_replication_role = replica; UPDATE jobs SET error = '%s %d' WHERE id = %d"
              % (value, attempt, jid))
        after = [[job_error(c, jid) for _ in range(5)] for c in clients]
        if (commits(a), commits(b)) != counts:
            t.diag("a commit meanwhile (counts %r -> %r): again" % (counts, (commits(a), commits(b))))
            continue
        ok = all(all(x == want for x in got) for want, got in zip(before, after))
        if not ok:
            t.diag("kept %r, then %r" % (before, after))
        return ok
    return False


cluster = pgcluster.Cluster().start()
try:
    uri = cluster.create_db()
    admin = lambda sql: cluster.psql(uri, sql)
    shared = tempfile.mkdtemp(prefix="anyon-t-")
    key_file = os.path.join(shared, "keyring")
    # One child each (every request meets the same cache); a keeping time
    # no test waits out, so only a change can end an answer; a quiet
    # worker (its heartbeat is a write, which would end answers too).
    env = {"ANYON_READ_CACHE_MS": "60000", "ANYON_FCGI_CHILDREN": "1", "ANYON_HEARTBEAT_S": "600"}
    with Stack(db=uri, key_file=key_file, env=env, pg_env=cluster.env()) as a, \
            Stack(db=uri, key_file=key_file, env=env, pg_env=cluster.env()) as b:
        tables = sorted(admin("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                              "AND tablename <> 'schema_migrations'").split())
        notifying = sorted(admin("SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                                 "WHERE t.tgname = 'anyon_changes'").split())
        t.ok(len(tables) > 10 and tables == notifying, "every table notifies anyon_changes on a write",
             "tables %r, with the trigger %r" % (tables, notifying))

        ca = Client(a.port)
        ca.session()
        cookie = ca.cookies["anyon_session"]
        r = ca.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"]}})
        jid = r.json["job"]["id"] if r.status == 201 else t.bail("POST /api/jobs: %r" % r)
        # The worker's commits (claim, output, end) reach A's answers: the job
        # is seen to end though its first answers were kept.
        t.ok(wait_until(lambda: ca.get("/api/jobs/%d" % jid).json["job"]["state"] == "succeeded", timeout=20),
             "a job the worker ran is seen to end through the kept answers")

        # Kept: a change made with triggers off (no notification) by psql (no
        # count) is not seen, on either stack.
        cb = Client(b.port)
        cb.cookies = dict(ca.cookies)
        t.ok(quiet_probe(a, b, [ca, cb], jid, "quiet"), "answers are kept: a change nobody is told of is not seen")

        # From another host: a write with its trigger notifies; both pools
        # forget, long before 60 s.
        admin("UPDATE jobs SET error = 'told' WHERE id = %d" % jid)
        t0 = time.time()
        t.ok(wait_until(lambda: job_error(ca, jid) == "told" and job_error(cb, jid) == "told", timeout=10),
             "a notified change is seen on both stacks (%.2f s)" % (time.time() - t0))

        # This host: what A's pool commits moves the host's count, and the
        # very next request on A sees it.
        n0 = commits(a)
        r = ca.post("/api/jobs", {"kind": "echo", "args": {"lines": ["y"]}})
        t.ok(r.status == 201 and commits(a) > n0, "a write through the pool moves the host's count of commits",
             "%r, count %d -> %d" % (r, n0, commits(a)))
        listed = ca.get("/api/jobs").json
        jid2 = r.json["job"]["id"]
        t.ok(ca.get("/api/jobs/%d" % jid2).status == 200 and
             any(j["id"] == jid2 for j in listed.get("jobs", [])), "the next request sees the new job at once")

        # A sign-out on A: A's very next request no longer knows the session;
        # B forgets it by notification.
        t.ok(raw_session(b, cookie)[1] is not None and raw_session(b, cookie)[1] is not None,
             "B answers the session (kept)")
        r = ca.post("/api/auth/logout")
        t.ok(r.status == 200, "sign out on A", repr(r))
        st, user, fresh = raw_session(a, cookie)
        t.ok(fresh, "A's very next request: the signed-out cookie names no session (a new one is made)",
             "status %d user %r" % (st, user))
        t.ok(wait_until(lambda: raw_session(b, cookie)[2], timeout=10),
             "B no longer answers the signed-out session")

        # anyonctl on this host: a revocation it commits holds at the very
        # next request, though the session's answer was kept.
        cc = Client(a.port)
        cc.session()
        ck = cc.cookies["anyon_session"]
        t.ok(raw_session(a, ck)[1] == 1 and raw_session(a, ck)[1] == 1, "A answers the new session (kept)")
        n0 = commits(a)
        r = subprocess.run([CTL, "users", "revoke-sessions", "local"], env=a.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        t.ok(r.returncode == 0 and commits(a) > n0, "anyonctl users revoke-sessions moves the host's count",
             "%d %s; count %d -> %d" % (r.returncode, r.stdout.strip()[:300], n0, commits(a)))
        st, user, fresh = raw_session(a, ck)
        t.ok(fresh, "A's very next request: the revoked cookie names no session", "status %d user %r" % (st, user))

        # A restart of PostgreSQL ends every connection.
        cluster.restart()
        fresh_client = Client(a.port)
        t.ok(wait_until(lambda: fresh_client.session().status == 200, timeout=15),
             "after a PostgreSQL restart the pool answers again")
        codes = [fresh_client.get("/api/session").status for _ in range(20)]
        t.ok(codes == [200] * 20, "and keeps answering", repr(codes))
        t.ok(wait_until(lambda: "connected again" in open(os.path.join(a.data, "log", "fcgi.log")).read(),
                        timeout=5), "the pool's log says it connected again")
        jid4 = fresh_client.post("/api/jobs", {"kind": "echo", "args": {"lines": ["after"]}})
        jid4 = jid4.json["job"]["id"] if jid4.status == 201 else t.bail("POST /api/jobs after the restart: %r" % jid4)
        t.ok(wait_until(lambda: fresh_client.get("/api/jobs/%d" % jid4).json["job"]["state"] == "succeeded",
                        timeout=30), "the worker connected again and ran a new job")
        t.ok(quiet_probe(a, b, [fresh_client], jid4, "quiet again"), "answers are kept again after the restart")
        admin("UPDATE jobs SET error = 'told again' WHERE id = %d" % jid4)
        t.ok(wait_until(lambda: job_error(fresh_client, jid4) == "told again", timeout=10),
             "notifications come again after the restart (LISTEN again)")
finally:
    cluster.stop()
t.done()
