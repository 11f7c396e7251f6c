#!/usr/bin/env python3
"""The first start of a deployment: anyon-fcgi, anyon-worker and two
`anyonctl migrate` started at the same moment on a fresh database all come
up, 20 times over (each migrates at start; SQLite's first switch to WAL
and PostgreSQL's first CREATE TABLE must not kill the loser of the race).
On the backend of the run (ANYON_TEST_BACKEND: a fresh SQLite file or a
fresh PostgreSQL database per round). On SQLite every other round starts
while the new file is held by a writer for 300 ms."""
import os, shutil, signal, sqlite3, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, BACKEND, new_db

ROUNDS = 20
t = TAP()
scratch = tempfile.mkdtemp(prefix="anyon-t7010-")
keyring = os.path.join(scratch, "keyring")
base_env = dict(os.environ, ANYON_KEY_FILE=keyring, ANYON_DATA_DIR=scratch)
base_env.pop("ANYON_DB", None)
if BACKEND == "pg":
    import pgcluster
    base_env.update(pgcluster.env())
r = subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "init-keys"], env=base_env,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t.eq(r.returncode, 0, "a keyring")


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def round_(i):
    """Starts the three at once on a fresh database; returns what failed
    ("" when all came up)."""
    d = os.path.join(scratch, "r%02d" % i)
    os.makedirs(os.path.join(d, "run"))
    env = dict(base_env, ANYON_DATA_DIR=d, ANYON_DB=new_db(d),
               ANYON_FCGI_SOCKET=os.path.join(d, "run", "fcgi.sock"), ANYON_FCGI_CHILDREN="1")
    logs = {n: os.path.join(d, n + ".log") for n in ("fcgi", "worker", "migrate", "migrate2")}
    # Each waits on one pipe until all are forked, then all exec at once
    # when it closes (the race is in the first milliseconds).
    gate_r, gate_w = os.pipe()
    # SQLite, every other round: the file is in the middle of its first
    # write (a rollback-journal write lock, as while one of them turns the
    # new file to WAL) when they start: switching to WAL then fails at once
    # with "database is locked", whatever the busy timeout.
    holder = None
    if BACKEND == "sqlite" and i % 2 == 0:
        holder = sqlite3.connect(env["ANYON_DB"], isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    procs = {}
    for name, argv in (("fcgi", ["anyon-fcgi"]), ("worker", ["anyon-worker"]),
                       ("migrate", ["anyonctl", "migrate"]), ("migrate2", ["anyonctl", "migrate"])):
        with open(logs[name], "w") as log:
            procs[name] = subprocess.Popen(["sh", "-c", 'read x; exec "$@" </dev/null', "gate",
                                            os.path.join(BUILDDIR, argv[0])] + argv[1:], env=env,
                                           stdin=gate_r, stdout=log, stderr=log)
    os.close(gate_r)
    os.close(gate_w)
    if holder:
        time.sleep(0.3)
        holder.execute("ROLLBACK")
        holder.close()
    why = []
    try:
        for name in ("migrate", "migrate2"):
            if procs[name].wait(timeout=30) != 0:
                why.append("anyonctl migrate: " + read(logs[name]))
        deadline = time.time() + 30
        up = {"fcgi": "listening on", "worker": "started with"}
        while up and time.time() < deadline:
            for name in list(up):
                if up[name] in read(logs[name]):
                    del up[name]
                elif procs[name].poll() is not None:
                    why.append("%s exited %s: %s" % (name, procs[name].returncode, read(logs[name])))
                    del up[name]
            time.sleep(0.05)
        for name in up:
            why.append("%s not up in 30 s: %s" % (name, read(logs[name])))
        for name in ("fcgi", "worker"):
            if procs[name].poll() is not None and not any(w.startswith(name) for w in why):
                why.append("%s exited %s: %s" % (name, procs[name].returncode, read(logs[name])))
    finally:
        for name in ("fcgi", "worker"):
            if procs[name].poll() is None:
                procs[name].send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return "\n".join(why)


failures = []
for i in range(ROUNDS):
    w = round_(i)
    if w:
        failures.append("round %d:\n%s" % (i, w))
t.ok(not failures, "%d rounds of pool + worker + migrate on a fresh %s database: all came up"
     % (ROUNDS, BACKEND), "\n".join(failures)[:4000])
shutil.rmtree(scratch, ignore_errors=True)
t.done()
