#!/usr/bin/env python3
"""Jobs end to end: create, poll output in order while it runs, exit codes,
streams, cancel (running and queued), listing, 404s, large output in pages,
bytes that are not UTF-8, and `anyonctl job echo --wait`."""
import http.client, json, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until

t = TAP()


def create(c, lines, **args):
    args["lines"] = lines
    return c.post("/api/jobs", {"kind": "echo", "args": args})


def job(c, jid):
    r = c.get("/api/jobs/%d" % jid)
    return r.json["job"] if r.status == 200 else None


def poll(c, jid, timeout=20):
    """Polls output until done. Returns (chunks, last answer, problems,
    whether partial output was seen before done)."""
    chunks, problems, partial, after = [], [], False, 0
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.get("/api/jobs/%d/output?after=%d" % (jid, after))
        if r.status != 200:
            problems.append(r)
            break
        got = r.json["chunks"]
        if got and got[0]["seq"] != after + 1:
            problems.append("after=%d but first seq %d" % (after, got[0]["seq"]))
        chunks += got
        after = r.json["next_after"]
        if r.json["done"]:
            return chunks, r, problems, partial
        partial = partial or bool(chunks)
        time.sleep(0.05)
    problems.append("not done after %ds" % timeout)
    return chunks, None, problems, partial


def text(chunks):
    return "".join(ch["data"] for ch in chunks)


def raw_get(s, c, path):
    """GET returning the raw body bytes, to see what a strict client sees."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": "anyon_session=" + c.cookies["anyon_session"]})
        return conn.getresponse().read()
    finally:
        conn.close()


def strict_json(data):
    try:
        return json.loads(data.decode("utf-8", "strict"))
    except ValueError:
        return None


# One slot: the queue order (a job waits behind a running one) is what
# this file checks; t1310 runs several slots.
with Stack(env={"ANYON_WORKER_SLOTS": "1"}) as s:
    c = s.client()
    c.session()
    created = []

    # ---- the round trip ----
    lines = ["alpha", "beta", "gamma ünïcödé", "delta"]
    r = create(c, lines, delay_ms=300)
    t.eq(r.status, 201, "POST /api/jobs echo -> 201")
    j = r.json["job"]
    jid = j["id"]
    created.append(jid)
    t.ok(j["state"] == "queued" and j["kind"] == "echo" and j["args"]["lines"] == lines and
         j["attempts"] == 0 and j["exit_code"] is None and j["finished_at"] is None,
         "the new job is queued with its args", j)
    chunks, last, problems, partial = poll(c, jid)
    t.ok(not problems, "polling with after=next_after never skips or repeats", problems)
    t.eq([ch["seq"] for ch in chunks], [1, 2, 3, 4], "one chunk per line, consecutive seq from 1")
    t.eq(text(chunks), "".join(l + "\n" for l in lines), "the output text matches, UTF-8 intact")
    t.eq({ch["stream"] for ch in chunks}, {"stdout"}, "on stdout by default")
    t.ok(last and last.json["state"] == "succeeded" and last.json["exit_code"] == 0,
         "done with state succeeded and exit_code 0", last)
    t.ok(partial, "polling saw partial output while the job was running")
    j = job(c, jid)
    t.ok(j and j["state"] == "succeeded" and j["attempts"] == 1 and j["exit_code"] == 0 and
         j["error"] is None and j["created_at"] <= j["started_at"] <= j["finished_at"],
         "GET /api/jobs/{id} shows the finished job", j)
    r = c.get("/api/jobs/%d/output?after=4" % jid)
    t.ok(r.status == 200 and r.json["chunks"] == [] and r.json["done"] and r.json["next_after"] == 4,
         "polling past the end: no chunks, done, next_after unchanged", r)
    r = c.get("/api/jobs/%d/output?after=0&limit=1" % jid)
    t.ok(r.status == 200 and [ch["seq"] for ch in r.json["chunks"]] == [1] and not r.json["done"]
         and r.json["next_after"] == 1, "limit=1 gives one chunk and is not done while more remain", r)

    # ---- exit codes and streams ----
    r = create(c, ["oops"], exit_code=3)
    jid = r.json["job"]["id"]
    created.append(jid)
    chunks, last, problems, _ = poll(c, jid)
    j = job(c, jid)
    t.ok(last and last.json["state"] == "failed" and last.json["exit_code"] == 3,
         "exit_code 3 -> state failed, exit_code 3", last)
    t.ok(j["state"] == "failed" and j["exit_code"] == 3 and "3" in (j["error"] or ""),
         "the failed job carries an error naming the status", j)
    t.eq(text(chunks), "oops\n", "a failing job's output is kept")

    r = create(c, ["e1", "e2"], stream="stderr")
    jid = r.json["job"]["id"]
    created.append(jid)
    chunks, last, problems, _ = poll(c, jid)
    t.ok(last and chunks and all(ch["stream"] == "stderr" for ch in chunks) and text(chunks) == "e1\ne2\n",
         "stream stderr is honoured", chunks)

    r = create(c, [])
    jid = r.json["job"]["id"]
    created.append(jid)
    chunks, last, problems, _ = poll(c, jid)
    t.ok(last and chunks == [] and last.json["state"] == "succeeded", "a job without lines succeeds silently", last)

    # ---- large output arrives in pages ----
    big = ["%03d:" % i + "x" * 4000 for i in range(100)]
    r = create(c, big)
    jid = r.json["job"]["id"]
    created.append(jid)
    t.ok(wait_until(lambda: job(c, jid)["state"] == "succeeded", timeout=20), "a 400 KB job finishes")
    r = c.get("/api/jobs/%d/output" % jid)
    n = len(r.json["chunks"])
    t.ok(0 < n < 100 and not r.json["done"], "one answer does not carry 400 KB: partial and not done",
         "%d chunks, done=%r" % (n, r.json["done"]))
    chunks, last, problems, _ = poll(c, jid)
    t.ok(not problems and text(chunks) == "".join(l + "\n" for l in big),
         "following next_after gives all of it in order", problems)

    # ---- limits of the echo job (the default body limit lets them through) ----
    r = create(c, [""] * 1001)
    t.ok(r.status == 400 and r.error_code() == "invalid_field", "more than 1000 lines -> 400 invalid_field", r)
    r = create(c, ["z" * 4097])
    t.ok(r.status == 400 and r.error_code() == "invalid_field", "a line over 4096 bytes -> 400 invalid_field", r)
    r = create(c, ["x"], note="kept forever?")
    t.ok(r.status == 400 and r.error_code() == "invalid_field" and "note" in r.json["error"]["message"],
         "an argument the kind does not know -> 400 invalid_field, not stored", r)

    # ---- cancel ----
    r = create(c, ["tick %d" % i for i in range(30)], delay_ms=500)
    long_id = r.json["job"]["id"]
    r = create(c, ["never"])
    queued_id = r.json["job"]["id"]
    created += [long_id, queued_id]
    t.ok(wait_until(lambda: c.get("/api/jobs/%d/output" % long_id).json["chunks"], timeout=10),
         "the long job is running and printing")
    t.eq(job(c, queued_id)["state"], "queued", "the job behind it waits in the queue")
    r = c.post("/api/jobs/%d/cancel" % queued_id)
    t.ok(r.status == 202 and r.json["job"]["state"] == "cancelled", "cancel of a queued job -> 202, cancelled at once", r)
    r = c.get("/api/jobs/%d/output" % queued_id)
    t.ok(r.json["done"] and r.json["chunks"] == [] and r.json["state"] == "cancelled",
         "the cancelled queued job never ran", r)
    t0 = time.time()
    r = c.post("/api/jobs/%d/cancel" % long_id)
    t.ok(r.status == 202 and r.json["job"]["cancel_requested"] is True, "cancel of a running job -> 202", r)
    ended = wait_until(lambda: job(c, long_id)["state"] == "cancelled", timeout=5)
    t.ok(ended and time.time() - t0 < 3, "the running job ends cancelled within a couple of seconds",
         "after %.1fs: %r" % (time.time() - t0, job(c, long_id)))
    chunks, last, problems, _ = poll(c, long_id)
    t.ok(chunks and chunks[-1]["stream"] == "system" and "cancel" in chunks[-1]["data"] and
         len(chunks) < 30, "its output ends with a system line saying so", chunks[-3:])
    t.ok(job(c, long_id)["exit_code"] is None, "a cancelled job has no exit code")
    seen = len(chunks)
    more = wait_until(lambda: len(c.get("/api/jobs/%d/output" % long_id).json["chunks"]) != seen, timeout=1.5)
    t.ok(not more, "no output arrives after the cancel")
    r = c.post("/api/jobs/%d/cancel" % long_id)
    t.ok(r.status == 409 and r.error_code() == "job_finished", "cancelling it again -> 409", r)
    r = c.post("/api/jobs/%d/cancel" % created[0])
    t.ok(r.status == 409 and r.error_code() == "job_finished" and job(c, created[0])["state"] == "succeeded",
         "cancel of a succeeded job -> 409 and it stays succeeded", r)

    # ---- what does not exist ----
    for method, path in (("GET", "/api/jobs/999999"), ("GET", "/api/jobs/999999/output"),
                         ("POST", "/api/jobs/999999/cancel")):
        r = c.request(method, path)
        t.ok(r.status == 404 and r.error_code() == "not_found", "%s %s -> 404" % (method, path), r)

    # ---- listing ----
    r = c.get("/api/jobs")
    ids = [j["id"] for j in r.json["jobs"]] if r.status == 200 else []
    t.ok(ids and ids == sorted(ids, reverse=True), "GET /api/jobs lists newest first", ids)
    t.ok(set(created) <= set(ids), "and holds every job made here", (created, ids))
    r = c.get("/api/jobs?limit=2")
    t.eq([j["id"] for j in r.json["jobs"]], ids[:2], "limit=2 gives the two newest")
    r = c.get("/api/jobs?before=%d&limit=3" % ids[1])
    t.eq([j["id"] for j in r.json["jobs"]], ids[2:5], "before=ID continues below ID")
    r = c.get("/api/jobs?limit=2")
    t.eq(r.json["next_before"], ids[1], "a full page says where the next starts (next_before)")

    # ---- list answers are bounded in bytes as well as rows ----
    fat = []
    for i in range(3):
        r = create(c, [("%d" % i) * 4000] * 150, delay_ms=0)   # ~600 KB of args each
        fat.append(r.json["job"]["id"])
    pages, got, sizes, before = 0, [], [], 0
    while pages < 50:
        r = c.get("/api/jobs?limit=200" + ("&before=%d" % before if before else ""))
        if r.status != 200:
            break
        pages += 1
        sizes.append(len(r.body))
        got += [j["id"] for j in r.json["jobs"]]
        if r.json["next_before"] is None:
            break
        before = r.json["next_before"]
    t.ok(max(sizes) < 1024 * 1024 + 4096, "no answer of GET /api/jobs?limit=200 passes about 1 MiB", sizes)
    t.ok(set(fat) <= set(got) and got == sorted(got, reverse=True) and len(set(got)) == len(got),
         "following next_before still gives every job once, newest first (%d pages)" % pages, got[:6])

    # ---- a body that is not UTF-8 is not JSON (docs/API.md: invalid_json) ----
    # JSON text is UTF-8 (RFC 8259): the server refuses it whole rather than
    # storing bytes it would later have to serve back as JSON.
    before = [j["id"] for j in c.get("/api/jobs?limit=1").json["jobs"]]
    r = c.post("/api/jobs", b'{"kind":"echo","args":{"lines":["bad \xff\xfe byte","ok"]}}',
               headers={"Content-Type": "application/json"})
    t.ok(r.status == 400 and r.error_code() == "invalid_json",
         "a body that is not UTF-8 -> 400 invalid_json", r)
    t.eq([j["id"] for j in c.get("/api/jobs?limit=1").json["jobs"]], before,
         "and no job was created from it")
    bad = [p for p in ("/api/jobs/%d" % created[0], "/api/jobs/%d/output" % created[0], "/api/jobs")
           if strict_json(raw_get(s, c, p)) is None]
    t.ok(not bad, "every answer so far is strict UTF-8 JSON", bad)

    # ---- anyonctl ----
    env = dict(s.env, ANYON_DATA_DIR=s.data)
    p = subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "job", "echo", "--wait", "hello", "world"],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    t.eq(p.returncode, 0, "anyonctl job echo --wait exits 0")
    t.ok("hello\nworld\n" in p.stdout and "succeeded" in p.stdout, "and prints the job's lines",
         p.stdout + p.stderr)
    r = c.get("/api/jobs?limit=1")
    t.ok(r.json["jobs"] and r.json["jobs"][0]["args"]["lines"] == ["hello", "world"] and
         r.json["jobs"][0]["state"] == "succeeded", "the CLI's job is the local user's newest", r)
t.done()
