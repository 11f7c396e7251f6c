#!/usr/bin/env python3
"""A container job survives its worker, on the real Docker engine and the
agent image: the worker killed outright (kill -9) while output flows, and
stopped with SIGTERM (an upgrade), each time the next worker finds the
job's container and carries on through anyon-entry's relay; the stored
stdout and stderr equal what the program printed, byte for byte, with no
gap and no duplicate, and a secret printed throughout stays masked across
the restart. Then: a program that ended while no worker ran (its end is
replayed, exit status kept); output that outran the relay's window while
no worker read it (a system line with the exact count lost); a cancel
after adoption; a container removed while its worker was down (the job
fails once ANYON_ADOPT_WINDOW_S has passed, nothing runs twice). Docker
missing is a failure, never a skip."""
import os, re, secrets, signal, sys, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, job, output, text, wait_done
from anyontest import TAP, Stack, wait_until

t = TAP()
eng, IMAGE = engine_and_image(t)      # a missing engine fails the test
INST = "t4230-" + uuid.uuid4().hex[:12]
WINDOW = 12
ENV = {"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST, "ANYON_CONTAINER_STOP_GRACE_S": "3",
       "ANYON_REAP_INTERVAL_S": "1", "ANYON_WORKER_SLOTS": "2", "ANYON_CONTAINER_MEMORY_MB": "256",
       "ANYON_JOB_LEASE_S": "3", "ANYON_WORKER_GRACE_MS": "1000", "ANYON_ADOPT_WINDOW_S": str(WINDOW)}


def containers(jid):
    return [x for x in eng.list_label("anyon.job=%d" % jid)
            if (x.get("Labels") or {}).get("anyon.instance") == INST]


def submit(c, command, secrets_=None):
    args = {"command": command}
    if secrets_:
        args["secrets"] = secrets_
    r = c.post("/api/jobs", {"kind": "container", "args": args})
    if r.status != 201:
        t.diag("submit: %s %s" % (r.status, r.json))
        return None
    return r.json["job"]["id"]


def stored(c, jid, stream):
    return text(output(c, jid), stream)


def worker_down(s, how):
    """Stops the stack's worker: 'kill' (kill -9) or 'term' (SIGTERM, as an
    upgrade does); returns when it is gone."""
    pid = s.pid("worker")
    os.kill(pid, signal.SIGKILL if how == "kill" else signal.SIGTERM)
    gone = wait_until(lambda: not os.path.exists("/proc/%d" % pid) or
                      open("/proc/%d/stat" % pid).read().split()[2] == "Z", timeout=30)
    pidfile = os.path.join(s.data, "run", "worker.pid")
    if os.path.exists(pidfile):
        os.unlink(pidfile)
    return gone


def worker_up(s):
    s.dev("up", "--no-build")


# A program printing numbered lines on both streams for about 8 s, and a
# secret's value every 1000 lines: what it prints is known exactly.
N = 30000


def expected(stream):
    return "".join("%s %d\n" % (stream, i) for i in range(N))


def program(secret_file=None):
    sec = ('[ $((i %% 1000)) = 0 ] && echo "token=$(cat %s)" >&2; ' % secret_file) if secret_file else ""
    return ["sh", "-c", "i=0; while [ $i -lt %d ]; do echo \"out $i\"; echo \"err $i\" >&2; %s"
            "i=$((i+1)); [ $((i %% 150)) = 0 ] && sleep 0.04; done; exit 0" % (N, sec)]


with Stack(env=ENV) as s:
    c = s.client()
    c.session()
    value = "t4230-" + secrets.token_hex(20)
    t.eq(c.request("PUT", "/api/secrets/anthropic_api_key", {"value": value}).status, 200, "a secret stored")

    for how in ("kill", "term"):
        what = "kill -9" if how == "kill" else "SIGTERM"
        jid = submit(c, program("/run/anyon/secrets/anthropic_api_key"), ["anthropic_api_key"])
        t.ok(wait_until(lambda: "out 3000\n" in stored(c, jid, "stdout"), timeout=60),
             "%s: the job's output flows" % what)
        before = len(stored(c, jid, "stdout"))
        t.ok(worker_down(s, how), "%s: the worker is gone" % what)
        t.ok(containers(jid), "%s: the job's container runs on" % what)
        time.sleep(1)
        worker_up(s)
        j = wait_done(c, jid, timeout=90)
        chunks = output(c, jid)
        out, err, sysl = text(chunks, "stdout"), text(chunks, "stderr"), text(chunks, "system")
        t.ok(j and j["state"] == "succeeded" and j["attempts"] == 1 and j["exit_code"] == 0,
             "%s: the job succeeds, one attempt" % what, j)
        t.ok(before < len(out), "%s: output went on after the restart (%d then %d bytes)" % (what, before, len(out)))
        t.ok(out == expected("out"), "%s: stored stdout is what the program printed, byte for byte "
             "(%d bytes, want %d)" % (what, len(out), len(expected("out"))))
        want_err = "".join("err %d\n" % i + ("token=[masked]\n" if i % 1000 == 0 else "") for i in range(N))
        plain_err = err.replace("token=[masked]\n", "")
        t.ok(plain_err == expected("err"), "%s: stored stderr likewise (%d bytes)" % (what, len(plain_err)))
        t.ok(err == want_err, "%s: the secret, printed throughout, is masked every time, also across the "
             "restart" % what)
        t.ok(value not in out + err + sysl, "%s: its value is stored nowhere" % what)
        t.ok("carries on from byte" in sysl, "%s: a system line says where the next worker carried on" % what,
             sysl)
        if how == "term":
            t.ok("the run goes on" in sysl, "SIGTERM: the worker said it left the run to the next one", sysl)
        t.ok(wait_until(lambda: not containers(jid), timeout=20), "%s: the container is removed at the end" % what)
        seqs = [ch["seq"] for ch in chunks]
        t.ok(seqs == list(range(seqs[0], seqs[0] + len(seqs))), "%s: chunk seqs consecutive" % what)
    wlog = open(os.path.join(s.data, "log", "worker.log"), errors="replace").read()
    t.ok(value not in wlog, "the secret's value is not in the worker's log")
    t.ok(len(re.findall(r"adopted from a worker that stopped", wlog)) == 2, "each run was adopted once",
         re.findall(r".*adopted.*", wlog))

    # --- the stream the worker reads is cut off: it reads on from where it was ---
    # The relay serves four replays at once and closes the oldest for a
    # fifth: four replays started beside the adopted worker's cut its one.
    jid = submit(c, program())
    t.ok(wait_until(lambda: "out 2000\n" in stored(c, jid, "stdout"), timeout=60), "another job's output flows")
    worker_down(s, "kill")
    worker_up(s)
    t.ok(wait_until(lambda: "carries on" in stored(c, jid, "system"), timeout=30), "the next worker adopts it")
    cid = containers(jid)[0]["Id"]
    for _ in range(4):
        st, ex = eng.call("POST", "/containers/%s/exec" % cid,
                          {"Cmd": ["/usr/local/bin/anyon-entry", "replay", "--after", "0"], "AttachStdout": False,
                           "AttachStderr": False})
        eng.call("POST", "/exec/%s/start" % ex["Id"], {"Detach": True})
    j = wait_done(c, jid, timeout=90)
    out, err = stored(c, jid, "stdout"), stored(c, jid, "stderr")
    wlog = open(os.path.join(s.data, "log", "worker.log"), errors="replace").read()
    t.ok("output stream ended early; reading on from byte" in wlog, "the worker noticed its replay was cut off",
         re.findall(r".*job %d.*" % jid, wlog)[-5:])
    t.ok(j and j["state"] == "succeeded" and out == expected("out") and err == expected("err"),
         "and read on: stdout and stderr byte for byte (%d, %d bytes)" % (len(out), len(err)), j)

    # --- the program ends while no worker runs: its end is replayed ---
    jid = submit(c, ["sh", "-c", "echo first; sleep 2; echo second; echo late >&2; exit 7"])
    t.ok(wait_until(lambda: "first" in stored(c, jid, "stdout"), timeout=30), "a short job prints its first line")
    worker_down(s, "kill")
    time.sleep(4)
    t.ok(containers(jid), "its program has ended, the container lingers for a worker")
    worker_up(s)
    j = wait_done(c, jid, timeout=60)
    t.ok(j and j["state"] == "failed" and j["exit_code"] == 7 and "status 7" in (j["error"] or ""),
         "the next worker reads the end: failed with the program's status 7", j)
    t.eq(stored(c, jid, "stdout"), "first\nsecond\n", "stdout whole")
    t.eq(stored(c, jid, "stderr"), "late\n", "stderr whole")
    t.ok(wait_until(lambda: not containers(jid), timeout=20), "and its container is removed")

    # --- output that outran the relay's window while no worker read it ---
    BIG = 20 * 1000 * 1000
    jid = submit(c, ["sh", "-c", "echo start; sleep 2; head -c %d /dev/zero | tr '\\0' x; echo; echo end" % BIG])
    t.ok(wait_until(lambda: "start" in stored(c, jid, "stdout"), timeout=30), "a job that will print 20 MB starts")
    worker_down(s, "kill")
    time.sleep(6)
    worker_up(s)
    j = wait_done(c, jid, timeout=90)
    chunks = output(c, jid)
    out, sysl = text(chunks, "stdout"), text(chunks, "system")
    m = re.search(r"(\d+) bytes of output \(from byte (\d+)\) were lost", sysl)
    t.ok(j and j["state"] == "succeeded", "it succeeds", j)
    t.ok(m is not None, "a system line says bytes were lost from the window", sysl)
    if m:
        lost = int(m.group(1))
        t.ok(len(out) + lost == len("start\n") + BIG + len("\nend\n"),
             "stored plus lost is exactly what it printed (%d + %d)" % (len(out), lost))
        t.ok(out.startswith("start\n") and out.endswith("x\nend\n") and set(out[6:-5]) == {"x"},
             "what was kept is in order: the start, the window's last bytes, the end")

    # --- a cancel after adoption ---
    jid = submit(c, ["sh", "-c", "echo ready; while :; do sleep 1; echo tick; done"])
    t.ok(wait_until(lambda: "ready" in stored(c, jid, "stdout"), timeout=30), "a long job runs")
    worker_down(s, "kill")
    worker_up(s)
    t.ok(wait_until(lambda: "carries on" in stored(c, jid, "system"), timeout=30), "the next worker adopts it")
    t.eq(c.post("/api/jobs/%d/cancel" % jid).status, 202, "cancel asked")
    j = wait_done(c, jid, timeout=30)
    t.ok(j and j["state"] == "cancelled", "the adopted job is cancelled", j)
    t.ok(wait_until(lambda: not containers(jid), timeout=20), "and its container removed")

    # --- the container removed while its worker was down ---
    jid = submit(c, ["sh", "-c", "echo ready; sleep 1000"])
    t.ok(wait_until(lambda: "ready" in stored(c, jid, "stdout"), timeout=30), "a job runs")
    worker_down(s, "kill")
    for x in containers(jid):
        eng.remove(x["Id"])
    worker_up(s)
    j = wait_done(c, jid, timeout=WINDOW + 30)
    t.ok(j and j["state"] == "failed" and "no worker carried on" in (j["error"] or "") and j["attempts"] == 1,
         "its job fails once the adoption window has passed, never run again", j)
    t.eq(s.sql("SELECT count(*) FROM jobs WHERE state = 'queued'")[0][0], "0", "nothing was queued again")
t.done()
