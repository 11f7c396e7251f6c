#!/usr/bin/env python3
"""Two full stacks (nginx + FastCGI pool + worker each, own ports and data
dirs) on ONE database and one keyring: the SQLite file both name in
ANYON_DB, or with ANYON_TEST_BACKEND=pg one fresh PostgreSQL database.
  - a session made on A works on B: same cookie, same CSRF token, a write;
  - a job queued through A while A's worker is stopped is run by B's
    worker, and its output reads back through A in order;
  - kill -9 of the worker running a job: the other stack's worker takes the
    lease once it expires, and the job ends once, with no output row
    repeated or missing;
  - 200 concurrent POST /api/jobs over both stacks: 200 jobs, distinct ids,
    no 5xx, each claimed exactly once and succeeded once.
Stack B's FastCGI pool listens on TCP (ANYON_FCGI_SOCKET=127.0.0.1:PORT),
as a pool on another host than its nginx would."""
import os, shutil, signal, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, Client, BUILDDIR, BACKEND, new_db, wait_until, free_port

LEASE_S = 2
N_CONCURRENT = 200
t = TAP()
workers = []  # workers this script started, reaped at the end


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_worker(s):
    """A new worker for stack s, with its pid file: `./dev down` stops it."""
    with open(os.path.join(s.data, "log", "worker.log"), "a") as log:
        w = subprocess.Popen([os.path.join(BUILDDIR, "anyon-worker"), "--pid-file",
                              os.path.join(s.data, "run", "worker.pid")],
                             env=s.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    workers.append(w)
    wait_until(lambda: os.path.exists(os.path.join(s.data, "run", "worker.pid")), timeout=10)
    return w.pid


def create(c, lines, delay_ms=0):
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": lines, "delay_ms": delay_ms}})
    return r.json["job"]["id"] if r.status == 201 else t.bail("cannot create a job: %r" % r)


def job(c, jid):
    return c.get("/api/jobs/%d" % jid).json["job"]


def output(c, jid):
    chunks, after = [], 0
    while True:
        r = c.get("/api/jobs/%d/output?after=%d" % (jid, after)).json
        chunks += r["chunks"]
        if not r["chunks"] or r["next_after"] == after:
            return chunks
        after = r["next_after"]


def worker_ran(s, jid, attempt):
    """True when s's worker log says it ran attempt `attempt` of job jid."""
    with open(os.path.join(s.data, "log", "worker.log"), errors="replace") as f:
        return ("job %d (echo): attempt %d\n" % (jid, attempt)) in f.read()


def lease(s, jid):
    """(pid of the worker holding the job's lease, when the lease expires)."""
    rows = s.sql("SELECT lease_owner, lease_expires_at FROM jobs WHERE id = %d" % jid)
    owner, expires = rows[0] if rows else ("", "")
    parts = owner.split(":")  # host:pid:random
    pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else None
    return pid, int(expires) if expires else None


def lease_owner_pid(s, jid):
    return lease(s, jid)[0]


shared = tempfile.mkdtemp(prefix="anyon-t1700-")
db = new_db(shared)
key_file = os.path.join(shared, "keyring")
# One user queues all 200 at once: the per-user quota (t1350) is not what
# this test is about.
env = {"ANYON_JOB_LEASE_S": str(LEASE_S), "ANYON_JOB_MAX_ATTEMPTS": "3", "ANYON_WORKER_GRACE_MS": "500",
       "ANYON_USER_MAX_QUEUED": "1000"}
t.diag("backend %s, database %s" % (BACKEND, db))

try:
    fcgi_tcp = "127.0.0.1:%d" % free_port()
    env_b = dict(env, ANYON_FCGI_SOCKET=fcgi_tcp)
    with Stack(db=db, key_file=key_file, env=env) as a, Stack(db=db, key_file=key_file, env=env_b) as b:
        with open(os.path.join(b.data, "nginx", "nginx.conf")) as f:
            conf = f.read()
        t.ok("server %s max_fails=0;" % fcgi_tcp in conf and "unix:" not in conf.split("upstream", 1)[1].split("}", 1)[0],
             "stack B's nginx reaches its pool over TCP (%s)" % fcgi_tcp)
        t.eq(b.client().get("/api/health").status, 200, "and B answers through it")
        t.ok(a.port != b.port and a.data != b.data and a.db == b.db == db and
             a.env["ANYON_KEY_FILE"] == b.env["ANYON_KEY_FILE"] == key_file,
             "two stacks: own ports and data dirs, one database, one keyring")
        t.ok(not os.path.exists(os.path.join(a.data, "keyring")) and not os.path.exists(os.path.join(b.data, "keyring"))
             and os.path.exists(key_file), "neither made a keyring of its own")

        # ---- a session made on A works on B ----
        ca = a.client()
        r = ca.session()
        t.ok(r.status == 200 and ca.csrf and "anyon_session" in ca.cookies, "A gives a session and a CSRF token", r)
        cb = b.client()
        cb.cookies = dict(ca.cookies)
        cb.csrf = ca.csrf
        r = cb.get("/api/session")
        t.ok(r.status == 200 and r.json["csrf_token"] == ca.csrf and r.json["user"]["login"] == "local" and
             "set-cookie" not in r.headers, "B knows A's cookie: same user, same CSRF token, no new session", r)
        r = cb.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-t1700-" + "x" * 24}, csrf=False)
        t.ok(r.status == 403 and r.error_code() == "csrf_failed", "B refuses a write without the token", r)
        r = cb.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-t1700-" + "x" * 24})
        t.ok(r.status == 200 and (r.json.get("secret") or {}).get("kind") == "anthropic_api_key",
             "a write on B with A's session and CSRF token succeeds", r)
        r = ca.get("/api/secrets")
        t.ok(r.status == 200 and [x["kind"] for x in r.json["secrets"]] == ["anthropic_api_key"],
             "A sees what was written through B", r)
        p = subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "secret", "check", "anthropic_api_key",
                            "--user", "local"], env=a.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=30)
        t.ok(p.returncode == 0, "A's side decrypts the secret B stored: the keyring is shared", p.stdout)

        # ---- A's worker stopped: B's worker runs A's job ----
        wa = a.pid("worker")
        os.kill(wa, signal.SIGTERM)
        t.ok(wait_until(lambda: not alive(wa), timeout=15), "A's worker stops on SIGTERM")
        lines = ["one", "two", "three", "four"]
        jid = create(ca, lines, delay_ms=100)
        t.ok(wait_until(lambda: job(ca, jid)["state"] == "succeeded", timeout=20),
             "a job queued through A succeeds with A's worker stopped", job(ca, jid))
        t.ok(worker_ran(b, jid, 1) and not worker_ran(a, jid, 1), "B's worker ran it")
        chunks = output(ca, jid)
        # Chunks are the worker's batches (several lines may share one).
        t.eq(([ch["seq"] for ch in chunks], {ch["stream"] for ch in chunks}, "".join(ch["data"] for ch in chunks)),
             (list(range(1, len(chunks) + 1)), {"stdout"}, "".join(l + "\n" for l in lines)),
             "its output reads back through A, in order")
        j = job(ca, jid)
        t.ok(j["attempts"] == 1 and j["exit_code"] == 0, "in one attempt", j)

        # ---- kill -9 of the worker running a job: the other takes over ----
        lines = ["line %02d" % i for i in range(12)]
        jid = create(ca, lines, delay_ms=300)
        t.ok(wait_until(lambda: output(ca, jid), timeout=10), "a long job runs (on B's worker, the only one)")
        wb = b.pid("worker")
        t.eq(lease_owner_pid(a, jid), wb, "the lease is B's worker's")
        wa = start_worker(a)
        _, expires = lease(a, jid)
        os.kill(wb, signal.SIGKILL)
        t_kill = time.time()
        t.ok(wait_until(lambda: not alive(wb), timeout=5), "B's worker is killed with SIGKILL")
        owner, last = lease(a, jid)
        if owner == wb:  # B's last renewal, unless A's worker already holds it
            expires = last
        took = wait_until(lambda: any(ch["stream"] == "system" for ch in output(ca, jid)), timeout=LEASE_S + 10)
        t.ok(took and time.time() - t_kill < LEASE_S + 6, "A's new worker takes the job over",
             "after %.1fs" % (time.time() - t_kill))
        t.eq(lease_owner_pid(a, jid), wa, "the lease is now A's worker's")
        t.ok(wait_until(lambda: job(ca, jid)["state"] == "succeeded", timeout=20), "and finishes it", job(ca, jid))
        j, chunks = job(ca, jid), output(cb, jid)
        t.ok(j["attempts"] == 2 and j["exit_code"] == 0 and j["finished_at"] and j["error"] is None,
             "it ended once: succeeded on attempt 2", j)
        sysl = [ch for ch in chunks if ch["stream"] == "system"]
        t.ok(len(sysl) == 1 and "attempt 2" in sysl[0]["data"], "one system chunk notes the second attempt",
             [ch["data"] for ch in sysl])
        t.ok(sysl and sysl[0]["at"] >= expires, "taken only once the lease had run out",
             "note at %s, lease expired at %d" % (sysl[0]["at"] if sysl else None, expires))
        t.eq([ch["seq"] for ch in chunks], list(range(1, len(chunks) + 1)),
             "output seq is 1..N across both workers: no row missing or repeated")
        idx = chunks.index(sysl[0]) if sysl else len(chunks)
        first = "".join(ch["data"] for ch in chunks[:idx])
        second = "".join(ch["data"] for ch in chunks[idx + 1:])
        full = "".join(l + "\n" for l in lines)
        t.ok(0 < len(first) < len(full) and full.startswith(first) and first.endswith("\n"),
             "the killed attempt's output is a clean prefix of the lines", first)
        t.eq(second, full, "the second attempt printed every line exactly once, in order")
        rows = a.sql("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM job_output WHERE job_id = %d" % jid)
        t.eq(rows, [[str(len(chunks))] * 2 + ["1", str(len(chunks))]],
             "the database holds exactly those rows (API and table agree)")
        t.ok(worker_ran(a, jid, 2) and worker_ran(b, jid, 1), "B's worker ran attempt 1, A's worker attempt 2")
        wb = start_worker(b)

        # ---- 200 concurrent POST /api/jobs over both stacks ----
        results = [None] * N_CONCURRENT
        barrier = threading.Barrier(N_CONCURRENT)

        def post(i):
            c = Client((a if i % 2 == 0 else b).port, timeout=60)
            c.cookies, c.csrf = dict(ca.cookies), ca.csrf
            try:
                barrier.wait(timeout=30)
                results[i] = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["job %d" % i]}})
            except Exception as e:  # a refused or reset connection is a failure, not a crash
                results[i] = e

        threads = [threading.Thread(target=post, args=(i,)) for i in range(N_CONCURRENT)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(90)
        bad = [(i, r) for i, r in enumerate(results) if not (hasattr(r, "status") and r.status == 201)]
        t.ok(not bad, "%d concurrent POST /api/jobs (half through A, half through B): all 201, no 5xx"
             % N_CONCURRENT, bad[:5])
        t.ok(not [r for r in results if hasattr(r, "status") and r.status >= 500], "no 5xx answer")
        ids = {}
        for i, r in enumerate(results):
            if hasattr(r, "status") and r.status == 201:
                ids[r.json["job"]["id"]] = i
        t.eq(len(ids), N_CONCURRENT, "%d jobs with distinct ids" % N_CONCURRENT)
        lo, hi = (min(ids), max(ids)) if ids else (0, 0)

        def states():
            rows = a.sql("SELECT state, count(*) FROM jobs WHERE id BETWEEN %d AND %d GROUP BY state" % (lo, hi))
            return dict((s, int(n)) for s, n in rows)

        t.ok(wait_until(lambda: states().get("succeeded") == N_CONCURRENT, timeout=120, interval=0.5),
             "all of them succeed", states())
        rows = a.sql("SELECT id, attempts, exit_code, (SELECT count(*) FROM job_output o WHERE o.job_id = j.id) "
                     "FROM jobs j WHERE id BETWEEN %d AND %d ORDER BY id" % (lo, hi))
        wrong = [r for r in rows if int(r[0]) not in ids or r[1:] != ["1", "0", "1"]]
        t.ok(len(rows) == N_CONCURRENT and not wrong,
             "each was claimed once (attempts 1), exited 0 and wrote one output row", wrong[:5])
        wrong = []
        for jid, i in sorted(ids.items()):
            r = (ca if jid % 2 else cb).get("/api/jobs/%d/output" % jid)
            if r.status != 200 or [(ch["seq"], ch["data"]) for ch in r.json["chunks"]] != [(1, "job %d\n" % i)] \
                    or r.json["state"] != "succeeded":
                wrong.append((jid, r))
        t.ok(not wrong, "each job's output is its own one line, read through either stack", wrong[:3])
        logs = ""
        for s in (a, b):
            with open(os.path.join(s.data, "log", "worker.log"), errors="replace") as f:
                logs += f.read()
        claims = [int(l.split("job ", 1)[1].split(" ", 1)[0]) for l in logs.splitlines()
                  if " (echo): attempt " in l and "job " in l]
        mine = [x for x in claims if x in ids]
        t.ok(sorted(mine) == sorted(ids) and len(mine) == len(set(mine)),
             "the two workers' logs name each job exactly once", (len(mine), len(set(mine))))
        by_a = sum(1 for x in mine if worker_ran(a, x, 1))
        t.diag("A's worker ran %d of them, B's %d" % (by_a, len(mine) - by_a))
finally:
    for w in workers:
        if w.poll() is None:
            w.kill()
        w.wait()

if t.failed:
    t.diag("shared database and keyring kept in " + shared)
else:
    shutil.rmtree(shared, ignore_errors=True)
    if BACKEND == "pg":
        import pgcluster
        pgcluster.drop_db(db)
t.done()
