#!/usr/bin/env python3
"""anyonctl doctor tells the truth and exits non-zero on any failure: it
makes a real FastCGI request (GET /api/health) through the pool's socket,
so a killed pool whose socket file is left behind is a failure; it opens
every stored secret with the keyring the programs would use, so a keyring
that is not the one that sealed them (or one others may read) is a
failure; and a schema newer than the program is named as such, not
"run migrate"."""
import os, re, signal, sqlite3, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, BACKEND, new_db

t = TAP()
CTL = os.path.join(BUILDDIR, "anyonctl")
T = tempfile.mkdtemp(prefix="anyon-t7040-")
os.makedirs(os.path.join(T, "run"))
env = {k: v for k, v in os.environ.items() if not k.startswith("ANYON_") or k.startswith("ANYON_TEST")}
if BACKEND == "pg":
    import pgcluster
    env.update(pgcluster.env())
env.update(ANYON_DATA_DIR=T, ANYON_DB=new_db(T), ANYON_KEY_FILE=os.path.join(T, "keyring"),
           ANYON_FCGI_SOCKET=os.path.join(T, "run", "fcgi.sock"), ANYON_FCGI_CHILDREN="2", ANYON_HEARTBEAT_S="1")
SOCK = env["ANYON_FCGI_SOCKET"]


def ctl(*args, e=None, stdin=None):
    return subprocess.run([CTL] + list(args), env=e or env, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def doctor(e=None):
    r = ctl("doctor", e=e)
    lines = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^(ok|FAIL|note)\s+(\S+)\s+(.*)$", line)
        if m:
            lines.setdefault(m.group(2), (m.group(1), m.group(3)))
    return r, lines


def consistent(r, lines):
    """The exit code follows the lines: 1 when any line is FAIL."""
    failed = any(v[0] == "FAIL" for v in lines.values())
    return r.returncode == (1 if failed else 0)


t.eq(ctl("init-keys").returncode, 0, "a keyring")
t.eq(ctl("migrate").returncode, 0, "a schema")
r = ctl("secret", "put", "anthropic_api_key", stdin="sk-ant-api03-t7040-0123456789abcdef")
t.eq(r.returncode, 0, "a secret")
procs = []
for prog in ("anyon-fcgi", "anyon-worker"):
    procs.append(subprocess.Popen([os.path.join(BUILDDIR, prog)], env=env, stdin=subprocess.DEVNULL,
                                  stdout=open(os.path.join(T, prog + ".log"), "w"), stderr=subprocess.STDOUT,
                                  start_new_session=True))
try:
    for _ in range(200):
        if os.path.exists(SOCK):
            break
        time.sleep(0.05)
    time.sleep(1.5)   # a worker heartbeat

    r, lines = doctor()
    t.ok(lines.get("fastcgi", ("",))[0] == "ok" and "GET /api/health: 200" in lines["fastcgi"][1],
         "a live pool: ok fastcgi, by a real request through the socket", r.stdout)
    t.ok(lines.get("keyring", ("",))[0] == "ok" and lines.get("secrets", ("",))[0] == "ok"
         and "all 1 decrypt" in lines["secrets"][1], "ok keyring, and every stored secret decrypts", r.stdout)
    t.ok(consistent(r, lines), "the exit code follows the lines (%d)" % r.returncode, r.stdout)

    # ---- a killed pool leaves its socket file behind ----
    os.killpg(procs[0].pid, signal.SIGKILL)
    procs[0].wait()
    t.ok(os.path.exists(SOCK), "the killed pool's socket file is still there")
    r, lines = doctor()
    t.ok(lines.get("fastcgi", ("",))[0] == "FAIL" and "cannot connect" in lines["fastcgi"][1],
         "a killed pool: FAIL fastcgi, saying the socket does not answer", r.stdout)
    t.eq(r.returncode, 1, "and doctor exits 1")

    # ---- the wrong keyring ----
    other = dict(env, ANYON_KEY_FILE=os.path.join(T, "keyring-other"))
    t.eq(ctl("init-keys", e=dict(other, ANYON_DB=os.path.join(T, "nothing-here.db"))).returncode, 0,
         "another keyring")
    r, lines = doctor(other)
    t.ok(lines.get("secrets", ("",))[0] == "FAIL" and "1 of 1 do NOT decrypt" in lines["secrets"][1],
         "a keyring that did not seal the secrets: FAIL secrets", r.stdout)
    os.chmod(env["ANYON_KEY_FILE"], 0o644)
    r, lines = doctor()
    t.ok(lines.get("keyring", ("",))[0] == "FAIL" and "group or others" in lines["keyring"][1]
         and r.returncode == 1, "a keyring others may read: FAIL keyring, exit 1", r.stdout)
    os.chmod(env["ANYON_KEY_FILE"], 0o600)

    # ---- a schema newer than this anyonctl ----
    sql = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future', 0)"
    if BACKEND == "pg":
        pgcluster.shared().psql(env["ANYON_DB"], sql)
    else:
        with sqlite3.connect(env["ANYON_DB"]) as c:
            c.execute(sql)
    r, lines = doctor()
    t.ok(lines.get("schema", ("",))[0] == "FAIL" and "newer than this anyonctl" in lines["schema"][1]
         and "anyonctl migrate" not in lines["schema"][1], "a newer schema is named, without advising migrate",
         r.stdout)
    t.eq(r.returncode, 1, "and doctor exits 1")
finally:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
t.done()
