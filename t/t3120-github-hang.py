#!/usr/bin/env python3
"""A hanging GitHub does not stall the API: while GitHub answers nothing,
eight repository searches from one address hold at most two of the pool's
children (nginx answers the rest 429 at once), and /api/health, the
session and the jobs API keep answering for that browser and others."""
import os, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

HANG_S = 6
t = TAP()
with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice", "alice@example.com", repos=["one"])
    env = stack_env(gh, allowed="alice", extra={"ANYON_GITHUB_TIMEOUT_MS": str(HANG_S * 1000 + 2000),
                                                 "ANYON_GITHUB_DEADLINE_MS": str(HANG_S * 1000 + 2000)})
    with Stack(env=env) as s:
        a = s.client()
        a.timeout = HANG_S + 10
        r = sign_in(a, gh, "alice")
        t.ok(r.status == 200 and r.json["status"] == "complete", "alice signs in", r)
        gh.set_fail("/user/repos", "timeout", count=None, hang=HANG_S, host="api")
        results, lock = [], threading.Lock()

        def search():
            t0 = time.time()
            rr = a.get("/api/github/repositories?q=x")
            with lock:
                results.append((rr.status, time.time() - t0))
        threads = [threading.Thread(target=search) for _ in range(8)]
        for th in threads:
            th.start()
        time.sleep(1.0)
        other = s.client()
        other.timeout = 5
        t0 = time.time()
        h = other.get("/api/health")
        t.ok(h.status == 200, "while 8 searches wait on GitHub, /api/health answers another browser", h)
        r = a.get("/api/session")
        t.ok(r.status == 200 and r.json["user"]["login"] == "alice", "and alice's own session answers", r)
        r = a.post("/api/jobs", {"kind": "echo", "args": {"lines": ["still here"]}})
        t.eq(r.status, 201, "and she can still queue a job")
        for th in threads:
            th.join()
        gh.clear_fail()
        statuses = sorted(st for st, _ in results)
        t.ok(statuses.count(429) >= 6, "nginx refused all but two of the searches at once (429)", results)
        t.ok(all(d < 2 for st, d in results if st == 429), "... without waiting", results)
        t.ok(all(st in (429, 502, 504) for st in statuses), "the two that waited got GitHub's failure, not a 5xx of anyon's own", results)
        r = a.get("/api/github/repositories")
        t.eq(r.status, 200, "once GitHub answers again, searching works")
t.done()
