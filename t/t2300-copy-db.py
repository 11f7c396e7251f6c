#!/usr/bin/env python3
"""anyonctl copy-db: a SQLite install moved to PostgreSQL keeps every row
and id, so the same browser session, job output and secrets work through a
stack on the copy; the sequences go on after the copied ids; a non-empty
target is refused; and a PostgreSQL URI with a password in it is refused
without echoing it. Runs in every pass: it starts PostgreSQL when the run
has none (a missing PostgreSQL is a failure, never a skip)."""
import os, stat, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR
import pgcluster

CTL = os.path.join(BUILDDIR, "anyonctl")
SECRET = "sk-ant-api03-copydb-0123456789abcdef"

t = TAP()
scratch = tempfile.mkdtemp(prefix="anyon-t2300-")
src = os.path.join(scratch, "src.db")
keyring = os.path.join(scratch, "keyring")
r = subprocess.run([CTL, "init-keys"], env=dict(os.environ, ANYON_KEY_FILE=keyring, ANYON_DATA_DIR=scratch),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t.eq(r.returncode, 0, "a keyring for both stacks")


def wait_job(c, jid):
    for _ in range(200):
        r = c.get("/api/jobs/%d" % jid)
        if r.json and r.json["job"]["state"] in ("succeeded", "failed", "cancelled"):
            return r.json["job"]
        time.sleep(0.05)
    return None


def output_lines(c, jid):
    r = c.get("/api/jobs/%d/output?after=0" % jid)
    return "".join(ch["data"] for ch in r.json["chunks"]) if r.status == 200 else None


# ---- the SQLite install ----
with Stack(db=src, key_file=keyring) as a:
    c = a.client()
    c.session()
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["one", "two", "three"]}})
    t.eq(r.status, 201, "a job on SQLite")
    jid = r.json["job"]["id"]
    t.eq((wait_job(c, jid) or {}).get("state"), "succeeded", "it ran")
    before_output = output_lines(c, jid)
    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": SECRET})
    t.eq(r.status, 200, "a secret stored")
    before_session = c.get("/api/session").json
    cookies, csrf = dict(c.cookies), c.csrf

pg = pgcluster.shared()
target = pg.create_db("t2300_target")
env = dict(os.environ, ANYON_KEY_FILE=keyring, ANYON_DATA_DIR=scratch)
env.update(pgcluster.env())
env.pop("ANYON_DB", None)

r = subprocess.run([CTL, "copy-db", src, target], env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True)
t.ok(r.returncode == 0 and "all 1 secret(s) decrypt in the target" in r.stdout,
     "copy-db copies and proves the secret opens", r.stdout)
t.ok("job_output" in r.stdout and SECRET not in r.stdout, "it reports tables and never a value", r.stdout)
r2 = subprocess.run([CTL, "copy-db", src, target], env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True)
t.ok(r2.returncode == 1 and "not empty" in r2.stdout, "a second copy into the same target is refused", r2.stdout)
r3 = subprocess.run([CTL, "copy-db", target, src], env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True)
t.eq(r3.returncode, 2, "the arguments go SQLite first, PostgreSQL second")

penv = dict(env, ANYON_DB=target)
r = subprocess.run([CTL, "migrate"], env=penv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t.ok(r.returncode == 0 and "0 applied now" in r.stdout, "anyonctl migrate on PostgreSQL: nothing left", r.stdout)
r = subprocess.run([CTL, "doctor"], env=penv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t.ok("(postgresql)" in r.stdout and "schema" in r.stdout and "FAIL  schema" not in r.stdout,
     "anyonctl doctor names the engine and the schema is current", r.stdout)

# ---- the same install on PostgreSQL ----
with Stack(db=target, key_file=keyring) as b:
    c2 = b.client()
    c2.cookies, c2.csrf = cookies, csrf
    r = c2.get("/api/session")
    t.ok(r.status == 200 and "set-cookie" not in r.headers and r.json.get("user") == before_session.get("user")
         and r.json.get("csrf_token") == before_session.get("csrf_token"),
         "the browser's session works on the copy (same cookie, user and CSRF token)", r)
    t.eq(output_lines(c2, jid), before_output, "the job's output reads back the same")
    r = c2.get("/api/secrets")
    t.ok(r.status == 200 and [x["kind"] for x in r.json["secrets"]] == ["anthropic_api_key"],
         "the secret's metadata is there", r)
    r = c2.post("/api/jobs", {"kind": "echo", "args": {"lines": ["after"]}})
    t.ok(r.status == 201 and r.json["job"]["id"] > jid, "a new job gets an id after the copied ones", r)
    t.eq((wait_job(c2, r.json["job"]["id"]) or {}).get("state"), "succeeded", "and the worker on PostgreSQL runs it")
    r = c2.request("PUT", "/api/secrets/anthropic_api_key", {"value": SECRET + "x"})
    t.eq(r.status, 200, "a secret replaced on the copy")
    rows = b.sql("SELECT count(*), max(id) FROM audit")
    t.ok(int(rows[0][0]) > 0, "the audit log came along and goes on", rows)
    ids = b.sql("SELECT id FROM sessions ORDER BY id")
    c3 = b.client()
    c3.session()
    ids2 = b.sql("SELECT id FROM sessions ORDER BY id")
    t.ok(len(ids2) == len(ids) + 1 and int(ids2[-1][0]) > int(ids[-1][0]), "new sessions get fresh ids", ids2)

# ---- a password never rides in the URI ----
bad = target.replace("postgres@", "postgres:hunter2pw@", 1)
r = subprocess.run([CTL, "doctor"], env=dict(env, ANYON_DB=bad), stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True)
t.ok(r.returncode != 0 and "must not contain a password" in r.stdout and "hunter2pw" not in r.stdout,
     "a URI with a password is refused and not echoed", r.stdout)
pwfile = os.path.join(scratch, "db-password")
with open(pwfile, "w") as f:
    f.write("whatever\n")
os.chmod(pwfile, 0o644)
r = subprocess.run([CTL, "doctor"], env=dict(env, ANYON_DB=target, ANYON_DB_PASSWORD_FILE=pwfile),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t.ok(r.returncode != 0 and "mode 0600" in r.stdout and "whatever" not in r.stdout,
     "a password file others can read is refused", r.stdout)

subprocess.run(["rm", "-rf", scratch])
t.done()
