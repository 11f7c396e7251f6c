#!/usr/bin/env python3
"""Job output through the real stack goes through the worker's output
writer: token shapes are masked before they are stored, a job stores at
most ANYON_JOB_MAX_OUTPUT_BYTES (one system line says exactly how many
bytes were dropped), a user's jobs store at most ANYON_USER_MAX_OUTPUT_BYTES
(the job that reaches it stores up to it, then new jobs are refused with
429 quota_exceeded), the per-user counter equals the bytes stored, and the
retention pass takes purged jobs' bytes off it so the user may run jobs
again. The echo job's printed-bytes offset is committed with its output."""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until

t = TAP()
JOB_MAX, USER_MAX = 600, 1000


def run(c, lines, **args):
    r = c.post("/api/jobs", {"kind": "echo", "args": dict(lines=lines, **args)})
    if r.status != 201:
        return r, None
    jid = r.json["job"]["id"]
    wait_until(lambda: c.get("/api/jobs/%d" % jid).json["job"]["state"] in ("succeeded", "failed"), timeout=20)
    return r, jid


def output(c, jid):
    chunks, after = [], 0
    while True:
        r = c.get("/api/jobs/%d/output?after=%d" % (jid, after))
        chunks += r.json["chunks"]
        after = r.json["next_after"]
        if r.json["done"] or not r.json["chunks"]:
            return chunks


def streams(chunks):
    out = "".join(ch["data"] for ch in chunks if ch["stream"] == "stdout")
    system = [ch["data"] for ch in chunks if ch["stream"] == "system"]
    return out, system


def counter(s):
    return int(s.sql("SELECT output_bytes FROM users WHERE login = 'local'")[0][0])


def stored(s):
    fn = s.pick("length", "octet_length")
    return int(s.sql("SELECT coalesce(sum(%s(data)), 0) FROM job_output" % fn)[0][0])


with Stack(env={"ANYON_JOB_MAX_OUTPUT_BYTES": str(JOB_MAX), "ANYON_USER_MAX_OUTPUT_BYTES": str(USER_MAX),
                "ANYON_RETAIN_JOBS_S": "1000", "ANYON_PURGE_INTERVAL_S": "1"}) as s:
    c = s.client()
    c.session()

    token = "ghp_" + "A1b2C3d4E5" * 4
    r, jid = run(c, ["token=" + token + " end"])
    out, _ = streams(output(c, jid))
    t.eq(out, "token=[masked] end\n", "a GitHub token shape in the output is masked before it is stored")
    t.eq(s.sql("SELECT count(*) FROM job_output WHERE " +
               s.pick("instr(data, CAST('A1b2C3' AS BLOB)) > 0", "position('A1b2C3'::bytea in data) > 0")), [["0"]],
         "the token is nowhere in the database")

    lines = ["%02d" % i + "x" * 97 for i in range(10)]     # 10 lines of 100 bytes
    printed = "".join(l + "\n" for l in lines)
    r, a = run(c, lines)
    out, system = streams(output(c, a))
    t.eq(out, printed[:JOB_MAX], "a job stores its first %d bytes, byte for byte" % JOB_MAX)
    t.eq(system, ["output limit reached: %d bytes were not stored (a job stores at most %d bytes)\n"
                  % (1000 - JOB_MAX, JOB_MAX)], "one system line says exactly how many bytes were dropped")
    t.eq(s.sql("SELECT output_offset FROM jobs WHERE id = %d" % a), [[str(len(printed))]],
         "the echo job's offset (bytes it printed) was committed with its output")
    t.eq(counter(s), stored(s), "the user's counter equals the bytes stored")

    room = USER_MAX - counter(s)
    r, b = run(c, lines)
    out, system = streams(output(c, b))
    t.eq(out, printed[:room], "the job that reaches the user's quota stores up to it (%d bytes)" % room)
    t.eq(system, ["output limit reached: %d bytes were not stored (your jobs' stored output is at its limit "
                  "of %d bytes)\n" % (1000 - room, USER_MAX)], "and says it was the user's quota")
    t.ok(counter(s) >= USER_MAX and counter(s) == stored(s), "the user is at the quota; the counter is exact",
         counter(s))

    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["more"]}})
    t.ok(r.status == 429 and r.error_code() == "quota_exceeded" and "stored output" in r.json["error"]["message"]
         and r.header("Retry-After"), "a new job is refused: 429 quota_exceeded", r)
    t.eq(s.sql("SELECT count(*) FROM jobs WHERE id > %d" % b), [["0"]], "and not stored")

    # Retention purges job a: its bytes come off the counter, and jobs run again.
    before = counter(s)
    a_bytes = int(s.sql("SELECT output_bytes FROM jobs WHERE id = %d" % a)[0][0])
    s.sql_write("UPDATE jobs SET finished_at = %d WHERE id = %d" % (int(time.time()) - 5000, a))
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % a).status == 404, timeout=15), "the retention pass purges job a")
    t.eq(counter(s), before - a_bytes, "its %d bytes came off the user's counter" % a_bytes)
    t.eq(counter(s), stored(s), "which still equals the bytes stored")
    r, d = run(c, ["again"])
    t.ok(r.status == 201 and streams(output(c, d))[0] == "again\n", "the user can run jobs again", r)
t.done()
