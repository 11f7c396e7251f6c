#!/usr/bin/env python3
"""Container job workspaces (args.workspace) on the real Docker engine and
the agent image: the job writes a file into /workspace (its working
directory) and reads it back; the host directory exists during the run,
mode 0700, owned by 1000:1000, under a 0711 workspaces/; a job without it
gets no mount; ANYON_WORKSPACE_KEEP=never removes it after success and
failure; =failed keeps it after a failure and a cancel, removes it after
success; =always keeps it after success; symlinks the job left (to a host file, to a host directory) are
removed without touching their targets; the retention pass removes a kept
workspace with its job; a bad args.workspace is refused. Docker missing is
a failure, never a skip."""
import hashlib, json, os, stat, sys, tempfile, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, job, output, text, wait_done
from anyontest import TAP, Stack, wait_until

t = TAP()
eng, IMAGE = engine_and_image(t)      # a missing engine fails the test
INST = "t4220-" + uuid.uuid4().hex[:12]
ENV = {"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST, "ANYON_CONTAINER_STOP_GRACE_S": "2",
       "ANYON_REAP_INTERVAL_S": "1", "ANYON_WORKER_SLOTS": "2", "ANYON_CONTAINER_MEMORY_MB": "256"}



def relay_mount_ok(mounts, source):
    """The job's relay directory, read-write, where the relay listens."""
    return any(m.get("Type") == "bind" and m.get("Target") == "/run/anyon/relay" and not m.get("ReadOnly")
               and os.path.realpath(m.get("Source", "")) == os.path.realpath(source) for m in mounts)

def submit(c, command, ws=True, status=201):
    args = {"command": command}
    if ws is not None:
        args["workspace"] = ws
    r = c.post("/api/jobs", {"kind": "container", "args": args})
    if r.status != status:
        t.diag("submit %r: %s %s" % (command, r.status, r.json))
        return None
    return r.json["job"]["id"] if status == 201 else r


def stdout(c, jid):
    return text(output(c, jid), "stdout")


def wsdir(s, jid):
    return os.path.join(s.data, "workspaces", "job-%d" % jid)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# A host directory and file the job's symlinks point at (absolute paths,
# the same inside and outside: resolved on the host they are these).
target = tempfile.mkdtemp(prefix="t4220-target-")
os.chmod(target, 0o755)
with open(os.path.join(target, "keep"), "w") as f:
    f.write("untouched\n")
passwd_sum = sha("/etc/passwd")
LINKS = ("ln -s /etc/passwd /workspace/x; ln -s %s /workspace/d; ln -s /nonexistent /workspace/dangling; "
         "mkdir -p /workspace/ro/a/b; echo z > /workspace/ro/a/b/f; chmod 500 /workspace/ro/a/b /workspace/ro; "
         % target)


def targets_intact():
    return (sha("/etc/passwd") == passwd_sum and os.path.exists("/etc/passwd")
            and open(os.path.join(target, "keep")).read() == "untouched\n")


with Stack(env=ENV) as s:
    c = s.client()
    c.session()

    # --- bad args ---
    r = submit(c, ["true"], ws="yes", status=400)
    t.ok(r is not None and "workspace" in json.dumps(r.json), "args.workspace must be a boolean", r and r.json)

    # --- write, read back, the host directory during the run ---
    jid = submit(c, ["sh", "-c", "echo hello > note; cat /workspace/note; pwd; id -u; "
                     "while [ ! -e /workspace/go ]; do sleep 0.1; done"])
    d = wsdir(s, jid)
    t.ok(wait_until(lambda: os.path.isdir(os.path.join(d)) and os.path.exists(os.path.join(d, "note")),
                    timeout=30), "the host directory exists during the run, with the job's file")
    st = os.lstat(d)
    t.ok(stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 1000
         and st.st_gid == 1000, "job-N is a 0700 directory owned by 1000:1000",
         (oct(st.st_mode), st.st_uid, st.st_gid))
    pst = os.lstat(os.path.dirname(d))
    t.eq(oct(stat.S_IMODE(pst.st_mode)), oct(0o711), "workspaces/ is 0711 (list: owner only)")
    with open(os.path.join(d, "note")) as f:
        t.eq(f.read(), "hello\n", "the file the job wrote is on the host")
    j = job(c, jid)
    t.eq(j.get("workspace"), {"exists": True, "kept": False}, "the running job shows its workspace")
    cid = (j.get("container") or {}).get("id")
    ins = eng.inspect(cid) if cid else {}
    mounts = (ins.get("HostConfig") or {}).get("Mounts") or []
    ws_mounts = [m for m in mounts if m.get("Target") == "/workspace"]
    t.ok(len(ws_mounts) == 1 and ws_mounts[0].get("Type") == "bind"
         and ws_mounts[0].get("Source") == os.path.realpath(d) and not ws_mounts[0].get("ReadOnly")
         and (ins.get("Config") or {}).get("WorkingDir") == "/workspace",
         "the container has one read-write bind mount at /workspace, its working directory", mounts)
    rd = os.path.join(os.path.dirname(os.path.realpath(d)), "relay-%d" % jid)
    t.ok(len(mounts) == 2 and relay_mount_ok(mounts, rd), "and the relay's directory (relay-N) at "
         "/run/anyon/relay, nothing else", mounts)
    rst = os.lstat(rd)
    t.ok(stat.S_ISDIR(rst.st_mode) and stat.S_IMODE(rst.st_mode) == 0o711 and rst.st_uid == 1000,
         "relay-N is a 0711 directory of uid 1000 (the worker enters it, only the agent writes)",
         (oct(rst.st_mode), rst.st_uid))
    open(os.path.join(d, "go"), "w").close()
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "succeeded", "the job succeeded", j)
    t.eq(stdout(c, jid), "hello\n/workspace\n1000\n", "it read its file back from /workspace, as uid 1000")
    t.ok(not os.path.exists(d), "never (default): gone after success")
    t.ok(not os.path.exists(rd), "the relay's directory is gone with the container")
    t.eq(job(c, jid).get("workspace"), {"exists": False, "kept": False}, "and the job says it was not kept")

    # --- a job without a workspace gets no mount ---
    jid = submit(c, ["sh", "-c", "pwd; sleep 2"], ws=None)
    t.ok(wait_until(lambda: (job(c, jid).get("container") or {}).get("id"), timeout=30), "a job without one started")
    ins = eng.inspect(job(c, jid)["container"]["id"])
    mounts = (ins.get("HostConfig") or {}).get("Mounts") or []
    t.ok(len(mounts) == 1 and relay_mount_ok(mounts, os.path.join(os.path.dirname(wsdir(s, jid)), "relay-%d" % jid)),
         "no workspace mount (the image's own /workspace, in the container's layer): the relay's only", mounts)
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "succeeded" and j.get("workspace") is None and not os.path.exists(wsdir(s, jid)),
         "it says workspace null and has no directory", j)

    # --- never: removed after failure too, symlinks not followed ---
    jid = submit(c, ["sh", "-c", LINKS + "exit 4"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "failed", "a failing job with symlinks to host files", j)
    t.ok(wait_until(lambda: not os.path.exists(wsdir(s, jid)), timeout=10), "never: gone after failure")
    t.ok(targets_intact(), "/etc/passwd and the linked host directory untouched")

with Stack(env=dict(ENV, ANYON_WORKSPACE_KEEP="failed", ANYON_RETAIN_JOBS_S="1000",
                    ANYON_PURGE_INTERVAL_S="1")) as s:
    c = s.client()
    c.session()
    ok_id = submit(c, ["sh", "-c", LINKS + "echo fine > f"])
    bad = submit(c, ["sh", "-c", LINKS + "echo kept > f; exit 1"])
    j1, j2 = wait_done(c, ok_id), wait_done(c, bad)
    t.ok(j1 and j1["state"] == "succeeded" and not os.path.exists(wsdir(s, ok_id)),
         "failed: gone after success", j1)
    t.ok(j2 and j2["state"] == "failed" and os.path.isfile(os.path.join(wsdir(s, bad), "f")),
         "failed: kept after a failure, with the job's file", j2)
    t.eq(j2.get("workspace"), {"exists": True, "kept": True}, "the failed job says its workspace is kept")
    t.ok(os.path.islink(os.path.join(wsdir(s, bad), "x")), "the kept one still holds its symlinks")
    cancelled = submit(c, ["sh", "-c", "echo c > f; sleep 60"])
    t.ok(wait_until(lambda: os.path.exists(os.path.join(wsdir(s, cancelled), "f")), timeout=30), "a job runs")
    c.post("/api/jobs/%d/cancel" % cancelled)
    j3 = wait_done(c, cancelled)
    t.ok(j3 and j3["state"] == "cancelled" and os.path.isdir(wsdir(s, cancelled)),
         "failed: kept after a cancel", j3)

    # --- retention removes a kept workspace with its job ---
    s.sql_write("UPDATE jobs SET finished_at = %d WHERE id = %d" % (int(time.time()) - 2000, bad))
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % bad).status == 404, timeout=20), "the old job is purged")
    t.ok(wait_until(lambda: not os.path.exists(wsdir(s, bad)), timeout=20), "and its kept workspace removed")
    t.ok(targets_intact(), "its symlinks' targets (/etc/passwd, a host directory) untouched")
    t.ok(os.path.isdir(wsdir(s, cancelled)), "a kept workspace of a job still in the database stays")
    stray = os.path.join(s.data, "workspaces", "job-0123")
    os.mkdir(stray)
    time.sleep(2.5)
    t.ok(os.path.isdir(stray), "a name not exactly job-<digits> is never removed")

    s.restart(ANYON_WORKSPACE_KEEP="always")
    jid = submit(c, ["sh", "-c", "echo a > f"])
    j = wait_done(c, jid)
    t.ok(j and j["state"] == "succeeded" and os.path.isfile(os.path.join(wsdir(s, jid), "f"))
         and j.get("workspace") == {"exists": True, "kept": True}, "always: kept after success", j)

import shutil
shutil.rmtree(target)
t.done()
