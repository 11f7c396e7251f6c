#!/usr/bin/env python3
"""The container job kind end to end, on the real Docker engine and the
agent image (ANYON_AGENT_IMAGE, built by ./dev test): exit codes, stdout and
stderr kept apart and in order, container facts stored with the job, a
requested secret handed in as a 0600 uid-1000 file and found nowhere else
(output masked raw and in base64, docker inspect, /proc/*/environ and
cmdline in the container, worker logs, the database), the container removed
after every ending, cancel (exits on TERM; ignores TERM: KILL after the
grace; a process group with children), the time limit, orphan reaping
(another instance's containers untouched), five jobs over three slots; then
a worker whose Docker is dead claims no container job and /api/health says
why, and in cloud mode only admins may submit one; then 200 MB through one
job with the job process's peak RSS recorded flat. A worker that stops
mid-run: t4230. Docker missing is a
failure, never a skip."""
import base64, glob, json, os, re, secrets, signal, subprocess, sys, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, job, output, text, wait_done
from anyontest import TAP, Stack, wait_until
import dockertest

t = TAP()
eng, IMAGE = engine_and_image(t)      # a missing engine fails the test
INST = "t4200-" + uuid.uuid4().hex[:12]
GRACE = 3
LIMIT = 15
BASE_ENV = {"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST, "ANYON_CONTAINER_STOP_GRACE_S": str(GRACE),
            "ANYON_REAP_INTERVAL_S": "1", "ANYON_WORKER_SLOTS": "3", "ANYON_CONTAINER_MEMORY_MB": "256"}


def ours():
    return eng.list_label("anyon.instance=" + INST)


def submit(c, command, secrets_=None, status=201):
    args = {"command": command}
    if secrets_ is not None:
        args["secrets"] = secrets_
    r = c.post("/api/jobs", {"kind": "container", "args": args})
    if r.status != status:
        t.diag("submit %r: %s %s" % (command, r.status, r.json))
        return None
    return r.json["job"]["id"] if status == 201 else r


def wait_output(c, jid, needle, timeout=30):
    return wait_until(lambda: needle in text(output(c, jid), "stdout"), timeout=timeout, interval=0.1)


def gone(jid, timeout=15):
    """No container of this instance for job jid is left (listed by label)."""
    return wait_until(lambda: not [x for x in eng.list_label("anyon.job=%d" % jid)
                                   if (x.get("Labels") or {}).get("anyon.instance") == INST], timeout=timeout)


with Stack(env=dict(BASE_ENV, ANYON_JOB_TIME_LIMIT_S=str(LIMIT))) as s:
    c = s.client()
    c.session()

    # --- exit codes, streams, container facts ---
    jid = submit(c, ["sh", "-c", "echo out1; echo err1 >&2; echo out2; seq 1 20000; exit 0"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "succeeded" and j["exit_code"] == 0, "a command that exits 0 succeeds", j)
    ch = output(c, jid)
    want = "out1\nout2\n" + "".join("%d\n" % i for i in range(1, 20001))
    t.ok(text(ch, "stdout") == want, "stdout is stored whole and in order", text(ch, "stdout")[:200])
    t.eq(text(ch, "stderr"), "err1\n", "stderr apart from stdout")
    con = j.get("container") or {}
    t.ok(re.fullmatch(r"[0-9a-f]{64}", con.get("id", "")) and con.get("exit_code") == 0
         and con.get("oom_killed") is False and con.get("started_at") and con.get("ended_at")
         and con["started_at"] <= con["ended_at"], "the job shows its container: id, times, exit, oom", con)
    row = s.sql("SELECT container_id, container_exit, container_oom FROM jobs WHERE id = %d" % jid)
    t.ok(row and row[0][0] == con.get("id") and row[0][1] == "0" and row[0][2] == "0",
         "and they are stored with the job", row)
    t.ok(gone(jid), "its container is removed after success")

    jid = submit(c, ["sh", "-c", "echo bye; exit 3"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "failed" and j["exit_code"] == 3 and "status 3" in (j["error"] or ""),
         "exit status 3: failed with exit_code 3", j)
    t.ok(gone(jid), "its container is removed after failure")

    jid = submit(c, ["/no/such/program"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "failed" and j["exit_code"] == 127, "a program that cannot run: exit 127", j)

    # cross-stream order only with pauses (the engine copies the streams apart)
    jid = submit(c, ["sh", "-c", "for i in 1 2 3; do echo o$i; sleep 0.4; echo e$i >&2; sleep 0.4; done"])
    j = wait_done(c, jid)
    seqd = [(x["stream"], x["data"]) for x in output(c, jid) if x["stream"] in ("stdout", "stderr")]
    t.eq("".join(d for _, d in seqd), "o1\ne1\no2\ne2\no3\ne3\n", "with pauses, the streams interleave in order")
    t.ok(all((st == "stdout") == d.startswith("o") for st, d in seqd), "each line on its own stream", seqd)

    # --- secrets ---
    value = "t4200-" + secrets.token_hex(20)
    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": value})
    t.eq(r.status, 200, "a secret stored")
    b64 = base64.b64encode(value.encode()).decode()
    script = ("f=/run/anyon/secrets/anthropic_api_key; stat -c 'mode=%a uid=%u gid=%g' $f; echo; "
              "cat $f; echo; base64 -w0 $f; echo; "
              "n=$(for p in /proc/[0-9]*; do cat $p/environ $p/cmdline 2>/dev/null; echo; done | grep -cFf $f); "
              "echo proc_hits=$n; id -u; echo ready; sleep 3")
    jid = submit(c, ["sh", "-c", script], ["anthropic_api_key"])
    t.ok(wait_output(c, jid, "ready"), "the job with a secret runs")
    cid = job(c, jid).get("container", {}).get("id")
    doc = eng.inspect(cid) if cid else None
    t.ok(doc is not None and value not in json.dumps(doc) and b64 not in json.dumps(doc),
         "the value is not in docker inspect", cid)
    t.ok(doc and doc["Config"]["User"] == "1000:1000" and doc["HostConfig"]["CapDrop"] == ["ALL"]
         and "no-new-privileges" in doc["HostConfig"]["SecurityOpt"] and doc["HostConfig"]["Init"]
         and doc["HostConfig"]["LogConfig"]["Type"] == "none" and doc["HostConfig"]["NetworkMode"] == "none"
         and doc["HostConfig"]["Memory"] == 256 << 20 and doc["Config"]["Labels"].get("anyon.job") == str(jid)
         and doc["Config"]["Labels"].get("anyon.user") == "1" and "TINI_KILL_PROCESS_GROUP=1" in doc["Config"]["Env"],
         "locked down: user, caps, no-new-privileges, init, no log driver, no network, limits, labels",
         doc and doc["HostConfig"])
    j = wait_done(c, jid)
    out = text(output(c, jid), "stdout")
    t.ok(j["state"] == "succeeded" and "mode=600 uid=1000 gid=1000" in out, "the secret is a 0600 file of uid 1000", out)
    t.ok("proc_hits=0" in out, "not in any /proc/*/environ or cmdline in the container", out)
    t.ok(value not in out and b64 not in out and out.count("[masked]") >= 2,
         "the stored output has it masked, raw and base64", out)
    t.ok(gone(jid), "the container (and its tmpfs) is removed")
    logs = "".join(open(f, errors="replace").read() for f in glob.glob(os.path.join(s.data, "log", "*")))
    t.ok(value not in logs and b64 not in logs, "not in the worker's or the pool's logs")
    dump = s.dump()
    t.ok(value not in dump and b64 not in dump, "not in the database")
    jid = submit(c, ["true"], ["github_pat"])
    j = wait_done(c, jid)
    t.ok(j["state"] == "failed" and "no stored secret" in (j["error"] or ""),
         "a secret the user does not have: failed, saying so", j)
    r = submit(c, ["true"], ["nope"], status=400)
    t.ok(r is not None and r.error_code() == "invalid_field", "an unknown secret kind is refused")
    for bad in ([], ["x"] * 65, [1], ["a" * 4097], None):
        r = c.post("/api/jobs", {"kind": "container", "args": {"command": bad} if bad is not None else {}})
        t.eq(r.status, 400, "bad command %.40r refused" % (bad,))
    r = c.post("/api/jobs", {"kind": "container", "args": {"command": ["true"], "env": ["A=1"]}})
    t.eq(r.status, 400, "an unknown argument refused")

    # --- cancel ---
    jid = submit(c, ["sh", "-c", "trap 'echo got TERM; exit 143' TERM; echo ready; while :; do sleep 0.1; done"])
    t.ok(wait_output(c, jid, "ready"), "a TERM-handling process runs")
    t0 = time.time()
    t.eq(c.post("/api/jobs/%d/cancel" % jid).status, 202, "cancel accepted")
    j = wait_done(c, jid)
    took = time.time() - t0
    out = output(c, jid)
    t.ok(j["state"] == "cancelled" and "got TERM" in text(out, "stdout") and took < GRACE + 2
         and "KILL after" in text(out, "system") and "did not stop" not in text(out, "system"),
         "cancel: TERM reached it, it exited before the grace", (j, took, text(out, "system")))
    t.ok(j.get("container", {}).get("exit_code") == 143, "its exit status is recorded", j.get("container"))
    t.ok(gone(jid), "container removed after cancel")

    jid = submit(c, ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"])
    t.ok(wait_output(c, jid, "ready"), "a process ignoring TERM runs")
    t0 = time.time()
    c.post("/api/jobs/%d/cancel" % jid)
    j = wait_done(c, jid)
    took = time.time() - t0
    t.ok(j["state"] == "cancelled" and took >= GRACE - 0.5 and "did not stop" in text(output(c, jid), "system"),
         "it is killed after the %d s grace" % GRACE, (j, took))
    t.ok(j.get("container", {}).get("exit_code") == 137, "exit 137 (KILL)", j.get("container"))
    t.ok(gone(jid), "container removed")

    jid = submit(c, ["sh", "-c", "(trap 'echo child TERM; exit 0' TERM; while :; do sleep 0.1; done) & c=$!; "
                     "trap 'wait $c; echo parent saw child end; exit 0' TERM; echo ready; wait $c; echo never"])
    t.ok(wait_output(c, jid, "ready"), "a process group with a child runs")
    c.post("/api/jobs/%d/cancel" % jid)
    j = wait_done(c, jid)
    out = output(c, jid)
    t.ok(j["state"] == "cancelled" and "child TERM" in text(out, "stdout")
         and "parent saw child end" in text(out, "stdout") and "did not stop" not in text(out, "system"),
         "TERM reached the whole process group (the child too)", (text(out, "stdout"), text(out, "system")))
    t.ok(gone(jid), "container removed")

    jid = submit(c, ["sh", "-c", "echo ready; exec >/dev/null 2>&1; sleep 1000"])
    t.ok(wait_output(c, jid, "ready"), "a process that closes its output and goes on")
    time.sleep(1.5)
    t.eq(job(c, jid)["state"], "running", "is still running after its output ended")
    c.post("/api/jobs/%d/cancel" % jid)
    j = wait_done(c, jid, timeout=GRACE + 15)
    t.ok(j and j["state"] == "cancelled" and "did not stop" not in text(output(c, jid), "system"),
         "and is cancelled by TERM", j)
    t.ok(gone(jid), "container removed")

    # --- time limit ---
    t0 = time.time()
    jid = submit(c, ["sleep", "1000"])
    j = wait_done(c, jid, timeout=LIMIT + GRACE + 30)
    t.ok(j and j["state"] == "failed" and "time limit of %d s" % LIMIT in (j["error"] or ""),
         "past the time limit: failed", j)
    t.ok(gone(jid), "container removed after the time limit")

    # --- five jobs over three slots ---
    ids = [submit(c, ["sh", "-c", "echo start %d; sleep 2; echo end %d" % (i, i)]) for i in range(5)]
    most, seen = 0, []
    deadline = time.time() + 90
    while time.time() < deadline:
        # one query: the states of the five at one instant (five GETs are not)
        states = [r[0] for r in s.sql("SELECT state FROM jobs WHERE id IN (%s)" % ",".join(map(str, ids)))]
        listed = ours()
        if len(listed) > 3 or states.count("running") > 3:
            seen.append((states, [(x["Labels"].get("anyon.job"), x["State"], x["Status"]) for x in listed]))
        most = max(most, states.count("running"), len(listed))
        if all(x in ("succeeded", "failed", "cancelled") for x in states):
            break
        time.sleep(0.1)
    t.ok(all(job(c, i)["state"] == "succeeded" for i in ids), "five concurrent container jobs succeed",
         [job(c, i)["state"] for i in ids])
    t.ok(2 <= most <= 3, "at most three at once (the slots), more than one", (most, seen[:3]))
    t.ok(all("end %d" % k in text(output(c, i), "stdout") for k, i in enumerate(ids)), "each printed its own lines")

    # --- orphan reaping ---
    bb = dockertest.busybox_image(eng)
    def make(labels):
        st, doc = eng.call("POST", "/containers/create", {"Image": bb, "Cmd": ["sleep", "1000"], "Labels": labels})
        eng.call("POST", "/containers/%s/start" % doc["Id"])
        return doc["Id"]
    other_inst = "t4200-other-" + uuid.uuid4().hex[:8]
    orphan = make({"anyon.instance": INST, "anyon.job": "987654321", "anyon.user": "1"})
    other = make({"anyon.instance": other_inst, "anyon.job": "987654321", "anyon.user": "1"})
    now = int(time.time())
    s.sql_write("INSERT INTO jobs (user_id, kind, args, state, attempts, max_attempts, lease_owner, "
                "lease_expires_at, created_at, started_at) VALUES (1, 'container', '{\"command\":[\"true\"]}', "
                "'running', 1, 1, 'dead-worker:1:x', %d, %d, %d)" % (now - 5, now - 60, now - 60))
    dead_job = int(s.sql("SELECT max(id) FROM jobs")[0][0])
    lost = make({"anyon.instance": INST, "anyon.job": str(dead_job), "anyon.user": "1"})
    t.ok(wait_until(lambda: eng.inspect(orphan) is None, timeout=20), "a container of no known job is reaped")
    t.ok(wait_until(lambda: eng.inspect(lost) is None, timeout=20), "a container of a job whose worker died is reaped")
    j = wait_until(lambda: (lambda x: x if x["state"] == "failed" else None)(job(c, dead_job)), timeout=20)
    t.ok(j is not None and "worker" in (j["error"] or ""), "and that job is settled: failed", j)
    t.ok(eng.inspect(other) is not None, "another instance's container is left alone")
    eng.remove(other)
    t.ok(wait_until(lambda: not ours(), timeout=15), "nothing of this instance is left", ours())
    wlog = open(os.path.join(s.data, "log", "worker.log"), errors="replace").read()
    t.ok("removing container" not in wlog and len(re.findall(r"reaper: removed container", wlog)) == 2,
         "each job removed its own container: the reaper removed only the two planted ones",
         re.findall(r".*(?:removing container|reaper: removed).*", wlog))

# --- a worker-side failure after the container was made still removes it ---
with Stack(env=dict(BASE_ENV, ANYON_TEST_FAULT="container_start", ANYON_REAP_INTERVAL_S="3600")) as s:
    c = s.client()
    c.session()
    jid = submit(c, ["echo", "never"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "failed" and "test fault" in (j["error"] or "") and j.get("container", {}).get("id"),
         "a failure between create and start fails the job (the container had been made)", j)
    t.ok(gone(jid, timeout=1), "and its container is removed at once (not by the reaper)")

# --- a worker that cannot make the relay's directory reads the engine's stream ---
with Stack(env=dict(BASE_ENV, ANYON_TEST_FAULT="relay_dir")) as s:
    c = s.client()
    c.session()
    jid = submit(c, ["sh", "-c", "for i in 1 2 3; do echo out $i; echo err $i >&2; done; exit 5"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "failed" and j.get("exit_code") == 5, "without a relay directory: the job runs, "
         "exit 5", j)
    chunks = output(c, jid)
    t.eq((text(chunks, "stdout"), text(chunks, "stderr")), ("out 1\nout 2\nout 3\n", "err 1\nerr 2\nerr 3\n"),
         "its output came whole through the engine")
    wlog = open(os.path.join(s.data, "log", "worker.log"), errors="replace").read()
    t.ok("relay's directory cannot be made (test fault)" in wlog and
         not os.path.exists(os.path.join(s.data, "workspaces", "relay-%d" % jid)),
         "the worker said why; no relay directory")

# --- a worker whose Docker is dead; cloud mode: admins only ---
import fakegithub
from ghsignin import stack_env, sign_in
with fakegithub.FakeGitHub() as gh:
    gh.add_user("alice")
    gh.add_user("bob")
    env = stack_env(gh, allowed="alice, bob", extra=dict(BASE_ENV, ANYON_ADMIN_GITHUB="alice",
                                                         ANYON_DOCKER_SOCKET="/nonexistent/docker.sock"))
    with Stack(env=env) as s:
        bob, alice = s.client(), s.client()
        t.eq(sign_in(bob, gh, "bob").status, 200, "bob (not an admin) signs in")
        r = bob.post("/api/jobs", {"kind": "container", "args": {"command": ["true"]}})
        t.ok(r.status == 403 and r.error_code() == "forbidden" and "admins" in r.json["error"]["message"],
             "cloud mode: a non-admin may not submit a container job", r)
        t.eq(bob.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"]}}).status, 201, "bob may still run echo")
        t.eq(sign_in(alice, gh, "alice").status, 200, "alice (admin) signs in")
        jid = submit(alice, ["echo", "hi"])
        t.ok(jid is not None, "an admin may submit one")
        time.sleep(3)
        t.eq(job(alice, jid)["state"], "queued", "a worker without Docker does not claim it")
        h = alice.get("/api/health").json
        cj = h.get("container_jobs") or {}
        t.ok(h.get("docker") == "unreachable" and cj.get("queued") == 1 and cj.get("waiting_for_docker") is True
             and "reaches Docker" in (cj.get("reason") or ""), "health says container jobs wait for Docker", h)

# --- 200 MB through one job, the job process's memory flat ---
TOTAL = 200 * 1000 * 1000
big = Stack(env=dict(BASE_ENV, ANYON_JOB_MAX_OUTPUT_BYTES=str(256 << 20), ANYON_WORKER_SLOTS="1",
                     ANYON_JOB_LEASE_S="3", ANYON_WORKER_GRACE_MS="1000"))
# Under ASan freed blocks wait in a quarantine (256 MB by default) before
# reuse, which would read as growth: keep it small so the check means the same.
big.env["ASAN_OPTIONS"] += ":quarantine_size_mb=1"
with big as s:
    c = s.client()
    c.session()
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxy"
    jid = submit(c, ["sh", "-c", "yes %s | head -c %d" % (line, TOTAL)])
    wpid = s.pid("worker")
    samples = []
    t0 = time.time()
    while time.time() - t0 < 600:
        kids = s.children(wpid)
        stored = int((s.sql("SELECT output_bytes FROM jobs WHERE id = %d" % jid) or [["0"]])[0][0] or 0)
        for k in kids:
            try:
                with open("/proc/%d/status" % k) as f:
                    hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))
                samples.append((stored, hwm))
            except (OSError, AttributeError):
                pass
        if job(c, jid)["state"] not in ("queued", "running"):
            break
        # Often: with its writer thread the job stores the last 50 MB in
        # well under a second, and a sample must fall in that window.
        time.sleep(0.05)
    took = time.time() - t0
    j = job(c, jid)
    t.ok(j["state"] == "succeeded", "200 MB job succeeded in %.0f s" % took, j)
    row = s.sql("SELECT output_bytes FROM jobs WHERE id = %d" % jid)
    t.eq(int(row[0][0]), TOTAL, "all 200 MB stored")
    if s.is_pg:
        # The job's connections choose lz4 (db_compress_fast(): pglz was
        # half the server's time); chunks under 2 kB are not compressed.
        kinds = [r[0] for r in s.sql("SELECT DISTINCT pg_column_compression(data) FROM job_output "
                                     "WHERE job_id = %d AND length(data) > 8192" % jid)]
        t.eq(kinds, ["lz4"], "PostgreSQL: the job's output is stored compressed with lz4")
    early = [h for st, h in samples if st >= 20 * 1000 * 1000]
    late = [h for st, h in samples if st >= 150 * 1000 * 1000]
    t.diag("job process VmHWM (kB) after 20 MB: %s, after 150 MB: %s, samples %d"
           % (early[:1], late[-1:], len(samples)))
    t.ok(early and late and late[-1] - early[0] < 8 * 1024,
         "the job process's peak RSS stays flat (grew < 8 MB from 20 MB to 150+ MB stored)",
         (early[:3], late[-3:]))
    t.ok(gone(jid), "container removed")

t.done()
