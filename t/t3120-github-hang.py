#!/usr/bin/env python3
"""A hanging GitHub does not stall the API: while GitHub answers nothing,
eight repository searches from one address hold at most two of the pool's
children (nginx answers the rest 429 at once), and /api/health, the
session and the jobs API keep answering for that browser and others.
Searches from many addresses (client sockets bound to distinct 127.0.0.x
sources, which nginx's per-address limit cannot tell apart from real
browsers) hold at most ANYON_GITHUB_CONCURRENCY children (default: all but
one): the rest answer 503 github_busy with Retry-After at once.
A search's walk over GitHub's pages is bounded (10 pages of 100, then
truncated: true) and kept per session for ANYON_GITHUB_REPO_CACHE_S: a
repeated search, even with GitHub hanging, does not ask GitHub; another
user never sees it; disconnecting, signing out and the worker's retention
pass drop it."""
import fcntl, os, signal, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

HANG_S = 6
t = TAP()


def timed_health(c):
    """(status, seconds) of GET /api/health; status 0 when it timed out."""
    t0 = time.time()
    try:
        return c.get("/api/health").status, time.time() - t0
    except OSError:
        return 0, time.time() - t0


def slot_holders(s):
    """The pool's children that hold a GitHub slot file open (only while they hold its lock)."""
    held = []
    for pid in s.children(s.pid("fcgi")):
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
            if any("/run/github-slots/" in os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in fds):
                held.append(pid)
        except OSError:
            pass
    return held


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice", "alice@example.com", repos=["one", {"name": "two", "private": True}])
    gh.add_user("bob", "Bob", "bob@example.com", repos=["bobs-one"])
    gh.add_user("carol", "Carol", "carol@example.com", repos=["c%04d" % i for i in range(1005)])
    env = stack_env(gh, allowed="alice, bob, carol", extra={"ANYON_PURGE_INTERVAL_S": "1","ANYON_GITHUB_TIMEOUT_MS": str(HANG_S * 1000 + 2000),
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

        # Many addresses at once: nginx's per-address limit lets each through.
        gh.set_fail("/user/repos", "timeout", count=None, hang=HANG_S, host="api")
        results = []

        def search_from(addr):
            c = s.client()
            c.source = addr
            c.timeout = HANG_S + 10
            c.cookies = dict(a.cookies)
            t0 = time.time()
            rr = c.get("/api/github/repositories?q=y")
            with lock:
                results.append((rr.status, rr.error_code(), rr.header("Retry-After"), time.time() - t0, addr))
        threads = [threading.Thread(target=search_from, args=("127.0.0.%d" % (20 + i),)) for i in range(8)]
        for th in threads:
            th.start()
            time.sleep(0.05)
        time.sleep(1.0)
        other = s.client()
        other.source = "127.0.0.99"
        other.timeout = 5
        h = timed_health(other)
        t.ok(h[0] == 200 and h[1] < 2, "while 8 addresses search a hanging GitHub, /api/health answers at once", h)
        r = a.get("/api/session")
        t.ok(r.status == 200 and r.json["user"]["login"] == "alice", "alice's session answers", r)
        r = a.post("/api/jobs", {"kind": "echo", "args": {"lines": ["still here"]}})
        t.eq(r.status, 201, "and she can still queue a job")
        r = a.get("/api/jobs")
        t.eq(r.status, 200, "and list her jobs")
        with lock:
            early = list(results)
        busy = [x for x in early if x[0] == 503 and x[1] == "github_busy"]
        t.ok(len(busy) == 5 and all(x[2] == "5" and x[3] < 2 for x in busy),
             "5 of the 8 (all but the pool's 3 GitHub slots) got 503 github_busy with Retry-After at once", early)
        holders = slot_holders(s)
        t.eq(len(holders), 3, "3 children hold a slot file while they wait")
        # A child killed while it holds a slot gives it back (the kernel drops
        # its flock); nginx retries that GET on another child.
        if holders:
            os.kill(holders[0], signal.SIGKILL)
        for th in threads:
            th.join()
        gh.clear_fail()
        t.ok(all(x[1] == "github_busy" or x[0] in (502, 504) for x in results) and
             len([x for x in results if x[1] != "github_busy"]) >= 2,
             "those that held a slot got GitHub's failure once it gave up, the rest github_busy", results)
        t.ok(gh.hits("/user/repos") >= 3, "GitHub was asked by those 3")
        free = []
        for i in range(3):
            with open(os.path.join(s.data, "run", "github-slots", str(i)), "rb") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    free.append(i)
                    fcntl.flock(f, fcntl.LOCK_UN)
                except OSError:
                    pass
        t.eq(free, [0, 1, 2], "afterwards every slot is free, the killed child's too")
        r = a.get("/api/github/repositories?q=one")
        t.ok(r.status == 200 and [x["full_name"] for x in r.json["repositories"]] == ["alice/one"],
             "the slots are free again afterwards: a search works", r)

        # The cache: alice's search above was walked and kept for her session.
        n = gh.hits("/user/repos")
        t.eq(s.sql("SELECT count(*) FROM github_repo_cache"), [["1"]], "the walked list is kept, one row")
        gh.set_fail("/user/repos", "timeout", count=None, hang=HANG_S, host="api")
        t0 = time.time()
        r = a.get("/api/github/repositories?q=TWO")
        t.ok(r.status == 200 and [x["full_name"] for x in r.json["repositories"]] == ["alice/two"]
             and r.json["repositories"][0]["private"] is True and r.json["truncated"] is False
             and time.time() - t0 < 2,
             "with GitHub hanging, a repeated search answers from the cache at once", r)
        gh.clear_fail()
        t.eq(gh.hits("/user/repos"), n, "... and GitHub was not asked")

        b = s.client()
        t.ok(sign_in(b, gh, "bob").json["status"] == "complete", "bob signs in")
        r = b.get("/api/github/repositories?q=one")
        t.ok(r.status == 200 and [x["full_name"] for x in r.json["repositories"]] == ["bob/bobs-one"],
             "bob's search shows his repositories, never alice's cached ones", r)
        t.ok(gh.hits("/user/repos") > n, "bob's search asked GitHub with his own token")
        t.eq(s.sql("SELECT count(*) FROM github_repo_cache"), [["2"]], "two kept lists, one per session")
        r = b.post("/api/auth/logout")
        t.eq(r.status, 200, "bob signs out")
        t.eq(s.sql("SELECT count(*) FROM github_repo_cache"), [["1"]], "signing out dropped his kept list")

        # The TTL: a list older than ANYON_GITHUB_REPO_CACHE_S is walked again.
        s.sql_write("UPDATE github_repo_cache SET fetched_at = fetched_at - 61")
        n = gh.hits("/user/repos")
        r = a.get("/api/github/repositories?q=one")
        t.ok(r.status == 200 and gh.hits("/user/repos") == n + 1, "a list past its TTL is fetched again", r)
        # The worker's retention pass purges lists past their TTL.
        s.sql_write("UPDATE github_repo_cache SET fetched_at = fetched_at - 61")
        t.ok(wait_until(lambda: s.sql("SELECT count(*) FROM github_repo_cache") == [["0"]], timeout=10),
             "the worker's retention pass purged the stale list")
        r = a.get("/api/github/repositories?q=one")
        t.eq(s.sql("SELECT count(*) FROM github_repo_cache"), [["1"]], "kept again by the next search")
        r = a.delete("/api/auth/github")
        t.eq(r.status, 200, "alice disconnects GitHub")
        t.eq(s.sql("SELECT count(*) FROM github_repo_cache"), [["0"]], "disconnecting dropped her kept list")
        r = a.get("/api/github/repositories?q=one")
        t.ok(r.status == 401 and r.error_code() == "github_not_connected", "and nothing is answered from it", r)

        # The walk is bounded: 10 pages of 100, then truncated.
        c = s.client()
        t.ok(sign_in(c, gh, "carol").json["status"] == "complete", "carol (1005 repositories) signs in")
        n = gh.hits("/user/repos")
        r = c.get("/api/github/repositories?q=c1&per_page=100")
        t.ok(r.status == 200 and r.json["truncated"] is True and gh.hits("/user/repos") - n == 10,
             "a search walks at most 10 pages of GitHub's and says truncated: true", r)
        r = c.get("/api/github/repositories?q=c0&per_page=100")
        t.ok(r.status == 200 and r.json["truncated"] is True and gh.hits("/user/repos") - n == 10,
             "... and the kept list says so too", r)
        # offboarding: a disabled user's sessions, and with them the kept list, go
        t.eq(s.sql("SELECT count(*) FROM github_repo_cache"), [["1"]], "carol's list is kept")
        r = subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "users", "disable", "carol"], env=s.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t.ok(r.returncode == 0 and s.sql("SELECT count(*) FROM github_repo_cache") == [["0"]],
             "anyonctl users disable carol drops her kept list with her sessions", r.stdout)
t.done()
