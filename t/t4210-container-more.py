#!/usr/bin/env python3
"""More container job checks on the real Docker engine (issue 9's tests):
  - two stacks (two workers) on ONE database (the t1700 harness: one
    SQLite file, or with --pg one PostgreSQL database): five container jobs
    submitted at once each run exactly once (attempts 1, one worker log line
    each, and the engine's event stream shows exactly one container created
    per job), with the right outputs;
  - a secret handed to a container job is, after the job, absent from the
    small files under /var/lib/docker (a bounded walk), the agent image's
    history, any remaining container of this instance (none should remain)
    and both workers' logs, and present masked in the stored output where
    the program printed it;
  - 50 MB of known output (seq through head -c) is stored byte for byte:
    the concatenated stdout chunks equal the bytes computed here.
Docker missing is a failure, never a skip."""
import base64, json, os, secrets, shutil, stat, sys, tempfile, time, urllib.parse, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, job, output, text, wait_done
from anyontest import TAP, Stack, BACKEND, new_db, wait_until
import dockertest

t = TAP()
eng, IMAGE = engine_and_image(t)      # a missing engine fails the test
INST = "t4210-" + uuid.uuid4().hex[:12]
ENV = {"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST, "ANYON_CONTAINER_STOP_GRACE_S": "3",
       "ANYON_REAP_INTERVAL_S": "1", "ANYON_WORKER_SLOTS": "3", "ANYON_USER_MAX_RUNNING": "10",
       "ANYON_CONTAINER_MEMORY_MB": "256", "ANYON_JOB_MAX_OUTPUT_BYTES": str(128 << 20)}
T_START = int(time.time()) - 1


def submit(c, command, secrets_=None):
    args = {"command": command}
    if secrets_ is not None:
        args["secrets"] = secrets_
    r = c.post("/api/jobs", {"kind": "container", "args": args})
    if r.status != 201:
        t.bail("cannot submit %r: %s %s" % (command, r.status, r.json))
    return r.json["job"]["id"]


def creates(jid=None):
    """The engine's 'create' events of this instance's containers since the
    test began (by job id when given): every container ever made, removed
    or not."""
    labels = ["anyon.instance=" + INST] + (["anyon.job=%d" % jid] if jid is not None else [])
    f = urllib.parse.quote(json.dumps({"type": ["container"], "event": ["create"], "label": labels}))
    conn_status, raw = events_raw("/events?since=%d&until=%d&filters=%s" % (T_START, int(time.time()) + 1, f))
    if conn_status != 200:
        t.bail("engine events: %s %r" % (conn_status, raw[:200]))
    return [json.loads(l) for l in raw.decode().splitlines() if l.strip()]


def events_raw(path):
    conn = dockertest._UnixConnection(dockertest.socket_path(), 60)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def ours():
    return eng.list_label("anyon.instance=" + INST)


def logs(*stacks):
    out = ""
    for s in stacks:
        d = os.path.join(s.data, "log")
        for n in sorted(os.listdir(d)):
            p = os.path.join(d, n)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    out += f.read().decode("utf-8", "replace")
    return out


def scan_docker_dir(needles, root="/var/lib/docker", max_file=1 << 20, max_files=300000, max_s=120):
    """A bounded walk of root: regular files up to max_file bytes (no
    sockets, devices, fifos, symlinks), at most max_files files or max_s
    seconds. Returns (files scanned, bytes scanned, skipped as large,
    stopped early, paths holding a needle)."""
    files = size = large = 0
    hits = []
    t0 = time.time()
    early = False
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in filenames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size > max_file:
                large += 1
                continue
            try:
                with open(p, "rb") as f:
                    data = f.read(max_file + 1)
            except OSError:
                continue
            files += 1
            size += len(data)
            if any(x in data for x in needles):
                hits.append(p)
            if files >= max_files or time.time() - t0 > max_s:
                early = True
                return files, size, large, early, hits
    return files, size, large, early, hits


shared = tempfile.mkdtemp(prefix="anyon-t4210-")
db = new_db(shared)
key_file = os.path.join(shared, "keyring")
t.diag("backend %s, database %s, instance %s" % (BACKEND, db, INST))
try:
    with Stack(db=db, key_file=key_file, env=ENV) as a, Stack(db=db, key_file=key_file, env=ENV) as b:
        ca = a.client()
        ca.session()
        cb = b.client()
        cb.cookies, cb.csrf = dict(ca.cookies), ca.csrf
        t.ok(a.db == b.db == db and a.pid("worker") != b.pid("worker"), "two stacks, two workers, one database")

        # ---- five container jobs at once over two workers: each runs once ----
        ids = [submit(ca if i % 2 == 0 else cb,
                      ["sh", "-c", "echo start %d; sleep 2; seq 1 %d; echo end %d" % (i, 1000 * (i + 1), i)])
               for i in range(5)]
        done = [wait_done(ca, i, timeout=90) for i in ids]
        t.ok(all(j and j["state"] == "succeeded" and j["exit_code"] == 0 for j in done),
             "five container jobs on two workers succeed", [j and j["state"] for j in done])
        t.ok(all(j and j["attempts"] == 1 for j in done), "each in one attempt", [j and j["attempts"] for j in done])
        wrong = []
        for k, jid in enumerate(ids):
            want = "start %d\n" % k + "".join("%d\n" % n for n in range(1, 1000 * (k + 1) + 1)) + "end %d\n" % k
            got = text(output(cb if k % 2 == 0 else ca, jid), "stdout")
            if got != want:
                wrong.append((jid, len(got), got[:80]))
        t.ok(not wrong, "each job's stdout is exactly its own lines (read through the other stack)", wrong)
        ev = creates()
        per = {}
        for e in ev:
            j = (e.get("Actor", {}).get("Attributes") or {}).get("anyon.job")
            per[j] = per.get(j, 0) + 1
        t.eq(per, dict((str(i), 1) for i in ids), "the engine created exactly one container per job (events)")
        wl = logs(a, b)
        runs = dict((i, wl.count("job %d (container): attempt 1\n" % i)) for i in ids)
        t.ok(all(n == 1 for n in runs.values()) and "attempt 2" not in wl,
             "the two workers' logs name each job once", runs)
        ran_a = sum(1 for i in ids if ("job %d (container): attempt 1\n" % i) in logs(a))
        t.ok(1 <= ran_a <= 4, "both workers took part (at most 3 slots each): A ran %d, B %d" % (ran_a, 5 - ran_a))
        t.ok(wait_until(lambda: not ours(), timeout=20), "no container of this instance is left", ours())

        # ---- a secret: masked in the output, nowhere else ----
        value = "t4210-" + secrets.token_hex(24)
        r = ca.request("PUT", "/api/secrets/anthropic_api_key", {"value": value})
        t.eq(r.status, 200, "a secret stored")
        jid = submit(cb, ["sh", "-c", "echo before; cat /run/anyon/secrets/anthropic_api_key; echo; echo after"],
                     ["anthropic_api_key"])
        j = wait_done(ca, jid, timeout=90)
        out = text(output(ca, jid), "stdout")
        t.ok(j and j["state"] == "succeeded", "the job with the secret succeeds", j)
        t.eq(out, "before\n[masked]\nafter\n", "the stored output has it masked where it was printed")
        cid = (j.get("container") or {}).get("id") if j else None
        t.ok(cid and wait_until(lambda: eng.inspect(cid) is None, timeout=20),
             "its container (%s) is gone: docker inspect finds nothing" % (cid or "?")[:12])
        left = [eng.inspect(x["Id"]) for x in ours()]
        t.ok(not left and not any(value in json.dumps(d) for d in left if d),
             "no container of this instance remains to hold it", [d and d["Id"] for d in left])
        st, hist = eng.get("/images/%s/history" % urllib.parse.quote(IMAGE, safe=""))
        t.ok(st == 200 and isinstance(hist, list) and hist and value not in json.dumps(hist),
             "not in the agent image's history (%d layers)" % (len(hist) if isinstance(hist, list) else -1), st)
        wl = logs(a, b)
        b64 = base64.b64encode(value.encode()).decode()
        t.ok(wl and value not in wl and b64 not in wl,
             "not in either worker's or pool's logs, raw or base64 (%d bytes read)" % len(wl))
        files, size, large, early, hits = scan_docker_dir([value.encode(), base64.b64encode(value.encode())])
        t.diag("/var/lib/docker: %d regular files up to 1 MiB scanned (%d bytes), %d larger skipped%s"
               % (files, size, large, ", stopped at the bound" if early else ""))
        t.ok(files > 0 and not hits, "not in any small file under /var/lib/docker", hits[:5])

        # ---- 50 MB of known output, byte for byte ----
        TOTAL = 50 * 1000 * 1000
        want = "".join("%d\n" % n for n in range(1, 7000001)).encode()[:TOTAL]
        t.eq(len(want), TOTAL, "the expected 50 MB computed")
        jid = submit(ca, ["sh", "-c", "seq 1 7000000 | head -c %d" % TOTAL])
        j = wait_done(ca, jid, timeout=600)
        t.ok(j and j["state"] == "succeeded", "the 50 MB job succeeds", j)
        chunks = output(cb, jid)
        got = "".join(ch["data"] for ch in chunks if ch["stream"] == "stdout").encode()
        t.ok(got == want, "all 50 MB stored byte for byte (%d chunks)" % len(chunks),
             (len(got), next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)))
        t.eq([ch["seq"] for ch in chunks], list(range(1, len(chunks) + 1)), "chunk seq 1..N, no gap")
        t.eq(a.sql("SELECT output_bytes FROM jobs WHERE id = %d" % jid), [[str(TOTAL)]], "output_bytes is 50 MB")
finally:
    for x in ours():
        eng.remove(x["Id"])

if t.failed:
    t.diag("shared database and keyring kept in " + shared)
else:
    shutil.rmtree(shared, ignore_errors=True)
    if BACKEND == "pg":
        import pgcluster
        pgcluster.drop_db(db)
t.done()
