#!/usr/bin/env python3
"""Worker leases: a killed worker's job is taken over when its lease runs
out; SIGTERM hands a long job back to the queue after the grace period and
lets a short one finish; a job whose workers keep dying ends failed."""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until

LEASE_S = 2
MAX_ATTEMPTS = 3

t = TAP()
workers = []


def start_worker(s, grace_ms=None):
    env = dict(s.env)
    if grace_ms is not None:
        env["ANYON_WORKER_GRACE_MS"] = str(grace_ms)
    with open(os.path.join(s.data, "log", "worker.log"), "a") as log:
        w = subprocess.Popen([os.path.join(BUILDDIR, "anyon-worker"), "--pid-file",
                              os.path.join(s.data, "run", "worker.pid")],
                             env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    workers.append(w)
    return w


def stop(w, sig=signal.SIGTERM, timeout=15):
    """Signals w and returns (exit status, seconds it took)."""
    t0 = time.time()
    w.send_signal(sig)
    try:
        return w.wait(timeout=timeout), time.time() - t0
    except subprocess.TimeoutExpired:
        return None, time.time() - t0


def create(c, n, delay_ms):
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["line %d" % i for i in range(n)],
                                                      "delay_ms": delay_ms}})
    return r.json["job"]["id"] if r.status == 201 else t.bail("cannot create a job: %r" % r)


def job(c, jid):
    return c.get("/api/jobs/%d" % jid).json["job"]


def output(c, jid):
    return c.get("/api/jobs/%d/output?limit=500" % jid).json["chunks"]


def lease(s, jid):
    return s.sql("SELECT state, attempts, coalesce(lease_owner, 'NULL'), coalesce(CAST(lease_expires_at AS TEXT), 'NULL') "
                 "FROM jobs WHERE id = %d" % jid)[0]


def seqs_ok(chunks):
    return [ch["seq"] for ch in chunks] == list(range(1, len(chunks) + 1))


def lines_after(chunks, marker):
    """stdout text after the last system chunk containing marker."""
    idx = max((i for i, ch in enumerate(chunks) if ch["stream"] == "system" and marker in ch["data"]),
              default=None)
    return None if idx is None else "".join(ch["data"] for ch in chunks[idx + 1:] if ch["stream"] == "stdout")


def full(n):
    return "".join("line %d\n" % i for i in range(n))


with Stack(env={"ANYON_JOB_LEASE_S": str(LEASE_S), "ANYON_JOB_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}) as s:
    c = s.client()
    c.session()
    try:
        # ---- (a) kill -9 mid-job: taken over after the lease ----
        jid = create(c, 6, 300)
        t.ok(wait_until(lambda: output(c, jid), timeout=10), "(a) the job runs on the first worker")
        os.kill(s.pid("worker"), signal.SIGKILL)
        t_kill = time.time()
        t.eq(job(c, jid)["state"], "running", "(a) after kill -9 the job still looks running")
        w2 = start_worker(s, grace_ms=500)
        took = wait_until(lambda: any("attempt 2" in ch["data"] for ch in output(c, jid)), timeout=LEASE_S + 8)
        t.ok(took and time.time() - t_kill < LEASE_S + 5,
             "(a) a new worker takes it over once the lease runs out", "%.1fs" % (time.time() - t_kill))
        t.ok(wait_until(lambda: job(c, jid)["state"] == "succeeded", timeout=10), "(a) and finishes it")
        j, chunks = job(c, jid), output(c, jid)
        t.ok(j["attempts"] == 2 and j["exit_code"] == 0, "(a) succeeded on attempt 2", j)
        sysl = [ch["data"] for ch in chunks if ch["stream"] == "system"]
        t.ok(len(sysl) == 1 and "attempt 2" in sysl[0], "(a) one system chunk notes the attempt", sysl)
        t.ok(seqs_ok(chunks), "(a) output seq stays consecutive across workers", [ch["seq"] for ch in chunks])
        t.eq(lines_after(chunks, "attempt 2"), full(6), "(a) the second attempt printed every line")

        # ---- (b) SIGTERM during a long job, short grace: handed back ----
        jid = create(c, 8, 400)
        t.ok(wait_until(lambda: output(c, jid), timeout=10), "(b) a long job runs on the new worker")
        rc, took = stop(w2)
        t.ok(rc == 0 and took < 3, "(b) SIGTERM with a 500 ms grace: the worker exits 0 promptly",
             "rc=%r after %.1fs" % (rc, took))
        state, attempts, owner, expires = lease(s, jid)
        t.ok(state == "queued" and owner == "NULL" and expires == "NULL",
             "(b) the job is back in the queue with its lease cleared", (state, owner, expires))
        t.eq(attempts, "0", "(b) the handed-back attempt is not counted")
        chunks = output(c, jid)
        t.ok(chunks and chunks[-1]["stream"] == "system" and "back to the queue" in chunks[-1]["data"],
             "(b) its output says it went back to the queue", chunks[-2:])
        t.ok(len([ch for ch in chunks if ch["stream"] == "stdout"]) < 8, "(b) it was stopped part way")
        w3 = start_worker(s, grace_ms=10000)
        t.ok(wait_until(lambda: job(c, jid)["state"] == "succeeded", timeout=15),
             "(b) a new worker runs it to the end")
        chunks = output(c, jid)
        t.ok(seqs_ok(chunks) and lines_after(chunks, "back to the queue") == full(8),
             "(b) the rerun printed every line after the hand-back note", chunks[-3:])
        t.eq(job(c, jid)["attempts"], 1, "(b) it took one counted attempt")

        # ---- (c) SIGTERM during a short job, long grace: it finishes ----
        jid = create(c, 4, 300)
        t.ok(wait_until(lambda: output(c, jid), timeout=10), "(c) a short job runs")
        rc, took = stop(w3)
        j = job(c, jid)
        t.ok(rc == 0, "(c) the worker exits 0", rc)
        t.ok(j["state"] == "succeeded" and j["attempts"] == 1,
             "(c) the job succeeded before the worker exited", j)
        t.eq("".join(ch["data"] for ch in output(c, jid)), full(4), "(c) with all its output and no hand-back")
        t.ok(not os.path.exists(os.path.join(s.data, "run", "worker.pid")), "(c) the worker removed its pid file")

        # ---- (d) workers die max_attempts times: failed, not stuck ----
        jid = create(c, 30, 500)
        for k in range(1, MAX_ATTEMPTS + 1):
            w = start_worker(s)
            claimed = wait_until(lambda: job(c, jid)["attempts"] == k and
                                 any(ch["stream"] == "stdout" for ch in output(c, jid)[-1:]), timeout=LEASE_S + 8)
            rc, _ = stop(w, signal.SIGKILL)
            t.ok(claimed and rc == -signal.SIGKILL, "(d) attempt %d claimed, then its worker killed" % k,
                 job(c, jid))
        t.eq(job(c, jid)["state"], "running", "(d) the job still looks running on a dead lease")
        w = start_worker(s)
        t.ok(wait_until(lambda: job(c, jid)["state"] == "failed", timeout=LEASE_S + 8),
             "(d) the next worker fails it instead of running it again", job(c, jid))
        j = job(c, jid)
        t.ok(j["attempts"] == MAX_ATTEMPTS and j["error"] and str(MAX_ATTEMPTS) in j["error"] and
             j["exit_code"] is None and j["finished_at"], "(d) with an error naming the attempts", j)
        state, _, owner, expires = lease(s, jid)
        t.ok(owner == "NULL" and expires == "NULL", "(d) and no lease left on it", (owner, expires))
        r = c.get("/api/jobs/%d/output" % jid)
        t.ok(r.json["done"] and r.json["state"] == "failed", "(d) output polling sees it done", r)
        rc, _ = stop(w)
        t.eq(rc, 0, "(d) the last worker stops cleanly")
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
t.done()
