#!/usr/bin/env python3
"""The job-kind table: the worker has an executor for every kind (and says
so with --check), and a run past its kind's time limit (capped by
ANYON_JOB_TIME_LIMIT_S) ends failed, with a system line saying why."""
import os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until

t = TAP()

r = subprocess.run([os.path.join(BUILDDIR, "anyon-worker"), "--check"], capture_output=True, text=True,
                   timeout=30)
t.ok(r.returncode == 0 and "echo: executor ok" in r.stdout and "NO EXECUTOR" not in r.stdout,
     "anyon-worker --check: every kind has an executor", (r.returncode, r.stdout, r.stderr))

with Stack(env={"ANYON_JOB_TIME_LIMIT_S": "2"}) as s:
    c = s.client()
    c.session()
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["l%d" % i for i in range(20)], "delay_ms": 500}})
    t.eq(r.status, 201, "a job that would take 10 s")
    jid = r.json["job"]["id"]
    t0 = time.time()
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % jid).json["job"]["state"] not in ("queued", "running"),
                    timeout=30), "it ends")
    took = time.time() - t0
    job = c.get("/api/jobs/%d" % jid).json["job"]
    t.ok(job["state"] == "failed" and "time limit of 2 s" in (job.get("error") or ""),
         "failed: the time limit of 2 s ran out", job)
    t.ok(took < 8, "well before its 10 s", took)
    out = c.get("/api/jobs/%d/output?after=0" % jid).json
    lines = [ch["data"] for ch in out["chunks"] if ch["stream"] == "system"]
    t.ok(any("time limit" in l for l in lines), "a system line says so", lines)
    stdout = [ch for ch in out["chunks"] if ch["stream"] == "stdout"]
    t.ok(0 < len(stdout) < 20, "it printed some lines, not all", len(stdout))
    # anyonctl doctor run by someone who cannot reach Docker while the live
    # worker can (the web pool's user in production): a note, not a failure.
    d = subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "doctor"], capture_output=True, text=True,
                       env=dict(s.env, DOCKER_HOST="unix:///nonexistent/docker.sock"), timeout=60)
    t.ok(re.search(r"^note +engine +not reachable from here", d.stdout, re.M) and
         re.search(r"^ok +docker +reachable from the worker", d.stdout, re.M) and
         not re.search(r"^FAIL +engine", d.stdout, re.M),
         "anyonctl doctor without Docker access, the worker with it: a note on the engine", d.stdout)
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["quick"]}})
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % r.json["job"]["id"]).json["job"]["state"] == "succeeded",
                    timeout=20), "a job within the limit still succeeds")
t.done()
