#!/usr/bin/env python3
"""The throwaway PostgreSQL harness (t/lib/pgcluster.py), in every pass:
a cluster starts as the postgres user in a 0700 temp folder, listens on
127.0.0.1 and its own socket only, with password auth over TCP and trust
on the socket alone; fresh databases work through psql; it is stopped and
removed afterwards, also after an exception, SIGTERM, or (serve mode, as
`./dev test --pg` runs it) the death of its parent; the system's clusters
are left alone; a missing initdb is a clear error. Needs no anyon code."""
import os, re, signal, socket, stat, subprocess, sys, tempfile, textwrap, time
LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
sys.path.insert(0, LIB)
from anyontest import TAP, wait_until
import pgcluster
from pgcluster import Cluster, PgError

t = TAP()
ROOT = os.geteuid() == 0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def procs_naming(s):
    """Live processes whose command line contains s."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if s in cmd and alive(int(p)):
            out.append((int(p), cmd))
    return out


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def listening(pid, flag):
    """Local addresses pid listens on (ss -lt or -lx)."""
    out = subprocess.run(["ss", "-l%spH" % flag], stdout=subprocess.PIPE, text=True).stdout
    col = 4 if flag == "x" else 3  # unix sockets have a Netid column first (u_str)
    return sorted(l.split()[col] for l in out.splitlines() if "pid=%d," % pid in l)


def psql(uri, sql, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSFILE"] = "/nonexistent"  # never ~/.pgpass
    env.update(env_extra)
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", uri, "-c", sql],
                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def gone(d, pid, port):
    return not os.path.exists(d) and not alive(pid) and not procs_naming(d) and refused(port)


def clusters():
    r = subprocess.run(["pg_lsclusters", "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.stdout


system_before = clusters()

# ---- one cluster, used ----
with Cluster() as pg:
    d, pid, port = pg.dir, pg.pid, pg.port
    st = os.stat(d)
    owner = st.st_uid == (__import__("pwd").getpwnam("postgres").pw_uid if ROOT else os.geteuid())
    t.ok(owner and stat.S_IMODE(st.st_mode) == 0o700 and os.path.basename(d).startswith("anyon-pg-"),
         "the cluster's temp folder is the server user's, mode 0700", (d, st.st_uid, oct(st.st_mode)))
    with open("/proc/%d/status" % pid) as f:
        uid = int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))
    t.ok(uid != 0 and (not ROOT or uid == __import__("pwd").getpwnam("postgres").pw_uid),
         "the server runs as postgres, not root", uid)
    t.eq(listening(pid, "t"), ["127.0.0.1:%d" % port], "it listens on 127.0.0.1:PORT and no other address")
    t.eq(listening(pid, "x"), [os.path.join(d, "sock", ".s.PGSQL.%d" % port)],
         "and on one unix socket inside its folder")

    uri = pg.create_db("t0200_a")
    t.eq(uri, "postgresql://postgres@127.0.0.1:%d/t0200_a" % port, "create_db gives a TCP URI without a secret")
    r = psql(uri, "CREATE TABLE kv (k text PRIMARY KEY, v int); INSERT INTO kv VALUES ('answer', 42); "
                  "SELECT v FROM kv WHERE k = 'answer'", pg.env())
    t.ok(r.returncode == 0 and r.stdout.strip() == "42", "psql over TCP with PGPASSFILE: a table is written and read",
         r.stdout + r.stderr)
    r = psql(uri, "SELECT current_setting('fsync'), current_setting('synchronous_commit'), "
                  "current_setting('listen_addresses'), current_setting('server_encoding')", pg.env())
    t.eq(r.stdout.strip(), "off|off|127.0.0.1|UTF8", "fsync and synchronous_commit off, UTF8")

    other = pg.create_db()
    r = psql(other, "SELECT count(*) FROM kv", pg.env())
    t.ok(other != uri and r.returncode != 0 and "does not exist" in r.stderr,
         "a second fresh database is empty: the first one's table is not there", (other, r.stderr))
    try:
        pg.create_db("t0200_a")
        t.ok(False, "creating an existing database fails")
    except PgError as e:
        t.ok("already exists" in str(e), "creating an existing database fails", e)
    try:
        pg.create_db("bad; DROP")
        t.ok(False, "a malformed database name is refused")
    except PgError as e:
        t.ok("name" in str(e), "a malformed database name is refused", e)

    # ---- authentication ----
    r = psql(uri, "SELECT 1", {})
    t.ok(r.returncode != 0 and "password" in r.stderr, "TCP without the passfile is refused (no trust on TCP)",
         r.stderr)
    r = psql(pg.socket_uri("t0200_a"), "SELECT v FROM kv", {})
    t.ok(r.returncode == 0 and r.stdout.strip() == "42", "the unix socket trusts, without any password",
         r.stdout + r.stderr)
    with open(os.path.join(pg.data, "pg_hba.conf")) as f:
        hba = [l.split() for l in f if l.strip() and not l.startswith("#")]
    t.eq(hba, [["local", "all", "all", "trust"], ["host", "all", "all", "127.0.0.1/32", "scram-sha-256"]],
         "pg_hba.conf: trust on the socket only, a password on 127.0.0.1 only")
    sock_mode = stat.S_IMODE(os.stat(pg.sock).st_mode)
    t.eq(sock_mode, 0o700, "the socket's folder is 0700: only postgres and root reach the trusting socket")
    with open(pg.passfile) as f:
        password = f.read().strip().rsplit(":", 1)[1]
    t.ok(stat.S_IMODE(os.stat(pg.passfile).st_mode) == 0o600 and len(password) >= 32,
         "the generated password is in a 0600 passfile")
    ps = subprocess.run(["ps", "axww", "-o", "args"], stdout=subprocess.PIPE, text=True).stdout
    logtext = pg.log_tail(10 ** 7)
    t.ok(password not in ps and password not in logtext and password not in uri and
         not any(password in v for v in os.environ.values()),
         "the password is in no command line, log, URI or environment variable")
    t.ok(not os.path.exists(os.path.join(d, "initdb-pw")), "initdb's password file is removed")
t.ok(gone(d, pid, port), "after the block: server gone, port closed, folder removed, no process names it",
     (os.path.exists(d), alive(pid), procs_naming(d)))

# ---- cleanup on failure and on SIGTERM ----
CHILD = textwrap.dedent("""\
    import os, sys, time
    sys.path.insert(0, %r)
    import pgcluster
    how = sys.argv[1]
    if how == "raise":
        with pgcluster.Cluster() as pg:
            print(pg.dir, pg.pid, pg.port, flush=True)
            raise RuntimeError("a failing test")
    pg = pgcluster.shared()          # a private cluster, stopped at exit
    print(pg.dir, pg.pid, pg.port, flush=True)
    pg.create_db("x")
    time.sleep(120)
""") % LIB
env_no_shared = {k: v for k, v in os.environ.items() if k not in ("ANYON_TEST_PG_ADMIN_URI", "PGPASSFILE")}
for how in ("raise", "sigterm"):
    p = subprocess.Popen([sys.executable, "-c", CHILD, how], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env_no_shared)
    line = p.stdout.readline().split()
    if how == "sigterm" and line:
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    if len(line) != 3:
        t.ok(False, "%s: the child started a cluster" % how, err)
        continue
    cd, cpid, cport = line[0], int(line[1]), int(line[2])
    t.ok(p.returncode != 0 and wait_until(lambda: gone(cd, cpid, cport), timeout=10),
         {"raise": "an exception in the with block still stops and removes the cluster",
          "sigterm": "SIGTERM to a test holding the shared() cluster stops and removes it"}[how],
         (p.returncode, err[-800:], os.path.exists(cd), alive(cpid)))

# ---- serve: one cluster for a whole run ----
envdir = tempfile.mkdtemp(prefix="anyon-t0200-")
envfile = os.path.join(envdir, "pg-env")


def read_env():
    try:
        with open(envfile) as f:
            return dict(l.rstrip("\n").split("=", 1) for l in f if "=" in l)
    except OSError:
        return None


srv = subprocess.Popen([sys.executable, os.path.join(LIB, "pgcluster.py"), "serve", "--env-file", envfile],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env_no_shared)
e = wait_until(read_env, timeout=60)
t.ok(e and set(e) == {"ANYON_TEST_PG_ADMIN_URI", "ANYON_TEST_PG_URI", "ANYON_TEST_PG_SOCKET_DIR", "PGPASSFILE"}
     and stat.S_IMODE(os.stat(envfile).st_mode) == 0o600,
     "serve writes the run's env lines (0600)", e)
if e:
    sport = int(re.search(r":(\d+)/", e["ANYON_TEST_PG_ADMIN_URI"]).group(1))
    sdir = os.path.dirname(e["ANYON_TEST_PG_SOCKET_DIR"])
    spid = int(open(os.path.join(sdir, "data", "postmaster.pid")).readline())
    r = psql(e["ANYON_TEST_PG_URI"], "CREATE TABLE u (x int); SELECT current_database()", {"PGPASSFILE": e["PGPASSFILE"]})
    t.ok(r.returncode == 0 and r.stdout.strip() == "unit", "ANYON_TEST_PG_URI is the database `unit`, usable",
         r.stdout + r.stderr)
    user = textwrap.dedent("""\
        import sys
        sys.path.insert(0, %r)
        import pgcluster
        a, b = pgcluster.create_db(), pgcluster.create_db()
        print(type(pgcluster.shared()).__name__, a, b)
    """) % LIB
    r = subprocess.run([sys.executable, "-c", user], env=dict(env_no_shared, **e), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    kind, a, b = (r.stdout.split() + ["", "", ""])[:3]
    names = psql(e["ANYON_TEST_PG_ADMIN_URI"], "SELECT datname FROM pg_database", {"PGPASSFILE": e["PGPASSFILE"]}).stdout.split()
    t.ok(kind == "Shared" and a != b and a.rsplit("/", 1)[1] in names and b.rsplit("/", 1)[1] in names
         and a.startswith(e["ANYON_TEST_PG_ADMIN_URI"].rsplit("/", 1)[0]),
         "with those lines exported, each test creates its own databases on the one cluster", r.stdout + str(names))
    srv.send_signal(signal.SIGTERM)
    try:
        rc = srv.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
    t.ok(rc == 0 and wait_until(lambda: gone(sdir, spid, sport), timeout=10) and not os.path.exists(envfile),
         "SIGTERM to serve stops and removes the cluster and its env file", (rc, srv.stdout.read()[-800:]))
else:
    srv.kill()
    srv.wait()

# the parent of serve is killed: serve notices and cleans up
parent = subprocess.Popen(["bash", "-c", 'exec 3>&-; "$0" "$1" serve --env-file "$2" & wait',
                           sys.executable, os.path.join(LIB, "pgcluster.py"), envfile],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_no_shared)
e = wait_until(read_env, timeout=60)
if e:
    sdir = os.path.dirname(e["ANYON_TEST_PG_SOCKET_DIR"])
    sport = int(re.search(r":(\d+)/", e["ANYON_TEST_PG_ADMIN_URI"]).group(1))
    spid = int(open(os.path.join(sdir, "data", "postmaster.pid")).readline())
    parent.kill()
    parent.wait()
    t.ok(wait_until(lambda: gone(sdir, spid, sport), timeout=20),
         "kill -9 of serve's parent (./dev test --pg): serve stops and removes the cluster",
         (os.path.exists(sdir), alive(spid), procs_naming(sdir)))
else:
    parent.kill()
    parent.wait()
    t.ok(False, "kill -9 of serve's parent (./dev test --pg): serve stops and removes the cluster", "serve never started")
subprocess.run(["rm", "-rf", envdir])

# ---- missing initdb: an error, not a skip ----
try:
    Cluster(bindir="/nonexistent/bin")
    t.ok(False, "a missing initdb raises a clear error")
except PgError as err:
    t.ok("initdb" in str(err) and "apt-get install postgresql" in str(err), "a missing initdb raises a clear error",
         err)

t.eq(clusters(), system_before, "the system's clusters (pg_lsclusters) are as they were")
t.done()
