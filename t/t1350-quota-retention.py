#!/usr/bin/env python3
"""Nothing a user can cause grows without bound: a user may have at most
ANYON_USER_MAX_QUEUED jobs queued (429 quota_exceeded beyond, exact even
under concurrent submissions), and the worker's retention pass deletes
finished jobs with their output after ANYON_RETAIN_JOBS_S and audit rows
after ANYON_RETAIN_AUDIT_S, keeping what is younger or still running."""
import os, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until

t = TAP()
MAX_QUEUED = 3


def wait_state(c, jid, states, timeout=20):
    ok = wait_until(lambda: c.get("/api/jobs/%d" % jid).json["job"]["state"] in states, timeout=timeout)
    return ok


# One slot: one long job keeps the worker busy, so the next ones stay queued.
with Stack(env={"ANYON_USER_MAX_QUEUED": str(MAX_QUEUED), "ANYON_WORKER_SLOTS": "1"}) as s:
    c = s.client()
    c.session()
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["a", "b", "c", "d"], "delay_ms": 3000}})
    t.eq(r.status, 201, "a long job")
    busy = r.json["job"]["id"]
    t.ok(wait_state(c, busy, ("running",)), "it runs")
    ids = []
    for i in range(MAX_QUEUED):
        r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["q%d" % i]}})
        ids.append(r.json["job"]["id"] if r.status == 201 else None)
    t.ok(all(ids), "%d jobs queue" % MAX_QUEUED, ids)
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["over"]}})
    t.ok(r.status == 429 and r.error_code() == "quota_exceeded" and r.header("Retry-After"),
         "one more is refused: 429 quota_exceeded with Retry-After", r)
    t.eq(s.sql("SELECT count(*) FROM jobs WHERE state = 'queued'"), [[str(MAX_QUEUED)]],
         "the refused job was not stored")
    t.eq(c.post("/api/jobs/%d/cancel" % ids[0]).status, 202, "cancel one queued job")
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["again"]}})
    t.eq(r.status, 201, "then there is room for one more")
    for jid in ids[1:] + [r.json["job"]["id"]]:
        c.post("/api/jobs/%d/cancel" % jid)

    # Concurrent submissions: exactly MAX_QUEUED get in.
    statuses, lock = [], threading.Lock()

    def submit():
        rr = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["race"]}})
        with lock:
            statuses.append(rr.status)
    threads = [threading.Thread(target=submit) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.ok(statuses.count(201) == MAX_QUEUED and statuses.count(429) == 20 - MAX_QUEUED,
         "20 concurrent submissions: exactly %d accepted, the rest 429" % MAX_QUEUED, sorted(statuses))
    c.post("/api/jobs/%d/cancel" % busy)

with Stack(env={"ANYON_RETAIN_JOBS_S": "1000", "ANYON_RETAIN_AUDIT_S": "1000", "ANYON_RETAIN_FLOWS_S": "3600",
                "ANYON_PURGE_INTERVAL_S": "1"}) as s:
    c = s.client()
    c.session()
    old = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["old"]}}).json["job"]["id"]
    young = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["young"]}}).json["job"]["id"]
    t.ok(wait_state(c, old, ("succeeded",)) and wait_state(c, young, ("succeeded",)), "two jobs ran")
    t.ok(s.sql("SELECT count(*) FROM job_output WHERE job_id = %d" % old) != [["0"]], "the old one has output")
    now = int(time.time())
    s.sql_write("UPDATE jobs SET finished_at = %d WHERE id = %d" % (now - 2000, old))
    s.sql_write("INSERT INTO audit (at, actor, action, outcome, detail) VALUES (%d, 'test', 'test.old', 'ok', '')"
                % (now - 5000))
    s.sql_write("INSERT INTO audit (at, actor, action, outcome, detail) VALUES (%d, 'test', 'test.recent', 'ok', '')"
                % now)
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % old).status == 404, timeout=15),
         "a job finished longer ago than ANYON_RETAIN_JOBS_S is purged")
    t.eq(s.sql("SELECT count(*) FROM job_output WHERE job_id = %d" % old), [["0"]], "... with its output")
    t.eq(c.get("/api/jobs/%d" % young).status, 200, "a younger finished job stays")
    t.ok(wait_until(lambda: s.sql("SELECT count(*) FROM audit WHERE action = 'test.old'") == [["0"]], timeout=15),
         "an audit row older than ANYON_RETAIN_AUDIT_S is purged")
    t.eq(s.sql("SELECT count(*) FROM audit WHERE action = 'test.recent'"), [["1"]], "a recent one stays")
    # Device flows (GitHub sign-ins) past ANYON_RETAIN_FLOWS_S; a young one stays.
    sid = s.sql("SELECT max(id) FROM sessions")[0][0]
    blob = s.pick("X'00'", "'\\x00'::bytea")
    for fid, at in (("oldflow", now - 4000), ("newflow", now - 60)):
        s.sql_write("INSERT INTO device_flows (id, session_id, key_id, code_nonce, code_ciphertext, code_tag, "
                    "user_code, verification_uri, interval_s, expires_at, next_poll_at, status, created_at) "
                    "VALUES ('%s', %s, 'k1', %s, %s, %s, 'ABCD-1234', 'http://x/', 5, %d, %d, 'expired', %d)"
                    % (fid, sid, blob, blob, blob, at + 900, at, at))
    t.ok(wait_until(lambda: s.sql("SELECT id FROM device_flows WHERE id IN ('oldflow', 'newflow')") == [["newflow"]],
                    timeout=15), "a device flow older than ANYON_RETAIN_FLOWS_S is purged, a young one stays",
         s.sql("SELECT id FROM device_flows"))
    running = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x", "y"], "delay_ms": 1500}}).json["job"]["id"]
    t.ok(wait_state(c, running, ("running",)), "a running job")
    s.sql_write("UPDATE jobs SET created_at = %d, started_at = %d WHERE id = %d" % (now - 9000, now - 9000, running))
    time.sleep(2.5)
    t.eq(c.get("/api/jobs/%d" % running).status, 200, "an old job that has not finished is never purged")
t.done()
