"""anyontest - the library every system test in t/ imports.

It gives TAP output (git-style: each check named, failures explained) and a
Stack: the real nginx, FastCGI pool and worker, started with `./dev up
--no-build` on a free loopback port with a scratch data directory, stopped
with `./dev down`. After the stack stops, its logs are checked for
sanitizer reports (ASan, UBSan, LSan) as one numbered TAP check of the
script's TAP, `ok N - no sanitizer reports in logs`, so an ASan build fails
a test whose requests hit a memory error. A Stack therefore needs a TAP:
create `t = TAP()` first (or pass tap=).

The database is SQLite in the data dir, or with ANYON_TEST_BACKEND=pg a
fresh PostgreSQL database per Stack (t/lib/pgcluster.py). Stacks can share
one database and keyring: Stack(db=new_db(), key_file=...).
"""
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("ANYON_SRCDIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDDIR = os.environ.get("ANYON_BUILDDIR") or os.path.join(SRCDIR, "build")

# The database backend the stacks use: sqlite (a file in the data dir, the
# default) or pg (ANYON_TEST_BACKEND=pg, as `./dev test --pg` sets: a fresh
# database per Stack on the run's throwaway cluster, see pgcluster.py).
BACKEND = os.environ.get("ANYON_TEST_BACKEND") or "sqlite"
if BACKEND not in ("sqlite", "pg"):
    raise RuntimeError("ANYON_TEST_BACKEND must be sqlite or pg, not %r" % BACKEND)


def new_db(folder=None):
    """A fresh database that one or more Stacks can share (Stack(db=...)):
    the ANYON_DB value. sqlite: anyon.db in folder (a new temp folder by
    default); pg: a new database on the run's cluster."""
    if BACKEND == "pg":
        import pgcluster
        return pgcluster.create_db()
    return os.path.join(folder or tempfile.mkdtemp(prefix="anyon-db-"), "anyon.db")


class TAP:
    """Minimal TAP producer. Every check prints `ok N - name` or `not ok`.
    The newest TAP of the process is TAP.current: Stacks report to it."""

    current = None

    def __init__(self):
        self.n = 0
        self.failed = 0
        TAP.current = self

    def ok(self, cond, name, diag=None):
        self.n += 1
        print(("ok" if cond else "not ok") + " %d - %s" % (self.n, name), flush=True)
        if not cond:
            self.failed += 1
            if diag is not None:
                for line in str(diag).splitlines() or [""]:
                    print("#   " + line, flush=True)
        return bool(cond)

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)

    def bail(self, msg):
        print("Bail out! " + msg, flush=True)
        sys.exit(1)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_install(destdir, prefix, **settings):
    """`make install DESTDIR=destdir prefix=prefix NAME=VALUE...` of the
    build (settings: ANYON_SERVER_NAME=..., see Makefile.am); returns the
    CompletedProcess, output merged. One at a time across the tests of a
    run: make install generates the units and the site in
    BUILDDIR/install-gen before copying them, so two tests installing with
    other settings at once would get each other's files."""
    import fcntl
    argv = ["make", "-C", BUILDDIR, "install", "DESTDIR=" + destdir, "prefix=" + prefix]
    argv += ["%s=%s" % kv for kv in settings.items()]
    with open(os.path.join(BUILDDIR, ".install-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> list of values
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def error_code(self):
        try:
            return self.json["error"]["code"]
        except (TypeError, KeyError):
            return None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


def send_raw(port, method, path, headers, body=None, tls=False):
    """One request with exactly these headers (Host included, when given;
    no Accept-Encoding), over TLS without certificate checks when tls."""
    data = None
    h = dict(headers)
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
        h["Content-Length"] = str(len(data))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host="Host" in h, skip_accept_encoding=True)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders(data)
        resp = conn.getresponse()
        payload = resp.read().decode("utf-8", "replace")
        got = {}
        for k, v in resp.getheaders():
            got.setdefault(k.lower(), []).append(v)
    finally:
        conn.close()
    return Response(resp.status, got, payload)


class Client:
    """One browser: keeps its cookies and sends the CSRF token on writes."""

    def __init__(self, port, timeout=30, source=None):
        self.port = port
        self.timeout = timeout
        # a loopback address to connect from (all of 127/8 is local on
        # Linux): nginx sees it as the client's address
        self.source = source
        self.cookies = {}
        self.csrf = None

    def request(self, method, path, body=None, headers=None, csrf=True, raw=False):
        h = dict(headers or {})
        h.setdefault("User-Agent", "anyontest/1.0 (+t/lib/anyontest.py)")
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h.setdefault("X-CSRF-Token", self.csrf)
        data = body
        if body is not None and not raw and not isinstance(body, (bytes, str)):
            data = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if isinstance(data, str):
            data = data.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout,
                                          source_address=(self.source, 0) if self.source else None)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read().decode("utf-8", "replace")
            headers = {}
            for k, v in r.getheaders():
                headers.setdefault(k.lower(), []).append(v)
        finally:
            conn.close()
        for c in headers.get("set-cookie", []):
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in c:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return Response(r.status, headers, payload)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def session(self):
        """GET /api/session and remember its CSRF token."""
        r = self.get("/api/session")
        if r.status == 200 and r.json:
            self.csrf = r.json.get("csrf_token")
        return r


class Stack:
    """The real service on a free port. Use as a context manager: leaving it
    stops the stack and adds the numbered check `no sanitizer reports in
    logs` to tap (default: the script's TAP.current)."""

    SANITIZER_CHECK = "no sanitizer reports in logs"

    def __init__(self, env=None, keep=False, tap=None, db=None, key_file=None, pg_env=None):
        """db: the ANYON_DB to use (see new_db(); default: sqlite in the data
        dir, or a fresh database of its own with the pg backend). key_file:
        an ANYON_KEY_FILE to use instead of the data dir's keyring (stacks
        sharing a database must share their keyring too). pg_env: libpq's
        variables for a PostgreSQL db on a cluster of the test's own
        (default: the run's cluster's)."""
        self.tap = tap or TAP.current
        if self.tap is None:
            raise RuntimeError("create a TAP before a Stack: the stack's sanitizer check is a TAP test")
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="anyon-t-")
        self.keep = keep or os.environ.get("ANYON_TEST_KEEP") == "1"
        self.own_db = db is None and BACKEND == "pg"
        if self.own_db:
            db = new_db()
        self.db = db or os.path.join(self.data, "anyon.db")
        self.env = dict(os.environ)
        if db:
            self.env["ANYON_DB"] = db
        if self.is_pg:
            import pgcluster
            self.env.update(pg_env if pg_env is not None else pgcluster.env())
        if key_file:
            self.env["ANYON_KEY_FILE"] = key_file
        self.env.update({
            "ANYON_PORT": str(self.port),
            "ANYON_DATA_DIR": self.data,
            "ANYON_BUILD_DIR": BUILDDIR,
            # ./dev records the stack it started here, not in the checkout
            # (where it would replace the developer's own ./dev up).
            "ANYON_DEV_STATE": os.path.join(self.data, "dev-state"),
            "ANYON_FCGI_CHILDREN": "4",
            "ANYON_HEARTBEAT_S": "1",
            "ANYON_WORKER_POLL_MS": "50",
            "ASAN_OPTIONS": "log_path=%s/log/asan:detect_leaks=1:abort_on_error=0" % self.data,
            "UBSAN_OPTIONS": "log_path=%s/log/ubsan:print_stacktrace=1" % self.data,
        })
        if os.getuid() == 0:
            # as ./dev up gives it to the pool when run by root (nginx's
            # workers run as nobody), also for a test that starts the pool itself
            import grp, pwd
            self.env["ANYON_FCGI_SOCKET_GROUP"] = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        self.env.update(env or {})
        self.url = "http://127.0.0.1:%d" % self.port
        self.failed = False

    def dev(self, *args, check=True):
        r = subprocess.run([os.path.join(SRCDIR, "dev")] + list(args), env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError("./dev %s failed (%d):\n%s\n%s" % (" ".join(args), r.returncode, r.stdout, self.logs()))
        return r

    # what start() runs: ./dev up, or ./dev demo for a demo stack
    UP = ("up", "--no-build")

    def start(self):
        self.up_output = self.dev(*self.UP).stdout
        # wait for the API and the worker's first heartbeat, so health is
        # meaningful (without a signed-in user /api/health says only "ok")
        deadline = time.time() + 20
        while time.time() < deadline:
            r = self.client().get("/api/health")
            if r.status == 200 and r.json and r.json.get("status") == "ok" \
                    and self.sql("SELECT count(*) FROM workers")[0][0] != "0":
                return self
            time.sleep(0.1)
        raise RuntimeError("stack did not become healthy:\n" + self.logs())

    def stop(self):
        self.dev("down", check=False)

    def restart(self, **env):
        """Stops the stack, changes its environment, starts it again."""
        self.stop()
        self.env.update(env)
        self.start()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            # __exit__ does not run when __enter__ fails: stop what did start
            # and still report what the sanitizers saw.
            self.__exit__(*sys.exc_info())
            raise

    def __exit__(self, *exc):
        self.stop()
        self.check_sanitizers()
        if exc[0] is not None:
            self.keep = True
            # What the services said last: a failure on a CI machine leaves
            # no data directory to read afterwards.
            for line in self.logs().splitlines()[-120:]:
                self.tap.diag(line)
            # A test cut short leaves no container of its own behind.
            inst = self.env.get("ANYON_INSTANCE")
            if inst:
                try:
                    import dockertest
                    dockertest.Engine(timeout=20).remove_label("anyon.instance=" + inst)
                except Exception as e:  # the failure being reported matters more
                    self.tap.diag("removing this stack's containers failed: %s" % e)
        if self.keep:
            self.tap.diag("data kept in " + self.data + (" and database " + self.db if self.is_pg else ""))
        else:
            shutil.rmtree(self.data, ignore_errors=True)
            if self.own_db:
                import pgcluster
                pgcluster.drop_db(self.db)
        return False

    def check_sanitizers(self):
        """The numbered TAP check: no ASan/UBSan/LSan report in the logs."""
        reports = self.sanitizer_reports()
        if reports:
            self.failed = True
            self.keep = True
        excerpt = "in %s/log:\n%s" % (self.data, "\n".join(reports.splitlines()[:80]))
        return self.tap.ok(not reports, self.SANITIZER_CHECK, excerpt)

    def client(self):
        return Client(self.port)

    def pid(self, name):
        with open(os.path.join(self.data, "run", name + ".pid")) as f:
            return int(f.read().strip())

    def children(self, parent):
        out = subprocess.run(["pgrep", "-P", str(parent)], stdout=subprocess.PIPE, text=True).stdout
        return [int(p) for p in out.split()]

    @property
    def is_pg(self):
        return self.db.startswith(("postgresql://", "postgres://"))

    def db_path(self):
        """The SQLite file. A test that reads the file itself does not run
        on PostgreSQL: it fails here rather than pass without looking."""
        if self.is_pg:
            raise RuntimeError("db_path(): this stack's database is PostgreSQL (%s), not a file" % self.db)
        return self.db

    def pick(self, sqlite, pg):
        """The SQL spelling for this stack's engine, where they differ."""
        return pg if self.is_pg else sqlite

    def sql_write(self, query):
        """Writes a fixture straight into the database (not read-only)."""
        if self.is_pg:
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.db, "-c", query],
                           env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, check=True)
        else:
            subprocess.run(["sqlite3", "-cmd", ".timeout 5000", self.db_path(), query], check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def dump(self):
        """A text dump of the whole database (sqlite3 .dump or pg_dump)."""
        if self.is_pg:
            cmd = ["pg_dump", "--no-owner", "-d", self.db]
        else:
            cmd = ["sqlite3", "-readonly", self.db_path(), ".dump"]
        return subprocess.run(cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, errors="replace", check=True).stdout

    def storage_files(self):
        """Every file that holds this database's bytes on disk, for scans
        of what was written: the SQLite file with its -wal and -shm, or on
        PostgreSQL (after a CHECKPOINT, so nothing waits in shared memory)
        the database's relation files and the cluster's WAL segments."""
        if not self.is_pg:
            return sorted(glob.glob(self.db_path() + "*"))
        q = ("CHECKPOINT; SELECT current_setting('data_directory'), "
             "(SELECT oid FROM pg_database WHERE datname = current_database());")
        out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              "-d", self.db, "-c", q], env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True).stdout
        datadir, oid = out.strip().splitlines()[-1].split("\t")
        files = []
        for sub in (os.path.join(datadir, "base", oid), os.path.join(datadir, "pg_wal")):
            for name in sorted(os.listdir(sub)):
                path = os.path.join(sub, name)
                # pg_internal.init is the server's cache of catalog rows,
                # removed and rewritten at any moment: not this database's data.
                if name != "pg_internal.init" and os.path.isfile(path):
                    files.append(path)
        return files

    def wal_files(self, files):
        """Which of storage_files() are the write-ahead log."""
        return [f for f in files if f.endswith("-wal") or os.sep + "pg_wal" + os.sep in f]

    def sql(self, query):
        """Runs a read-only query (sqlite3 shell or psql); returns rows of
        strings, NULL as ''."""
        if self.is_pg:
            env = dict(self.env, PGOPTIONS="-c default_transaction_read_only=on")
            out = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                                  "-d", self.db, "-c", query], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True).stdout
        else:
            # A busy timeout: a read can meet a checkpoint of the live stack.
            out = subprocess.run(["sqlite3", "-readonly", "-cmd", ".timeout 5000", "-separator", "\t",
                                  self.db_path(), query],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True).stdout
        return [line.split("\t") for line in out.splitlines()]

    def logs(self):
        out = []
        logdir = os.path.join(self.data, "log")
        if os.path.isdir(logdir):
            for name in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, name), errors="replace") as f:
                    tail = f.read()[-3000:]
                out.append("== %s ==\n%s" % (name, tail))
        return "\n".join(out)

    def sanitizer_reports(self):
        logdir = os.path.join(self.data, "log")
        found = []
        if not os.path.isdir(logdir):
            return ""
        for name in sorted(os.listdir(logdir)):
            path = os.path.join(logdir, name)
            with open(path, errors="replace") as f:
                text = f.read()
            if name.startswith(("asan", "ubsan")) or "ERROR: AddressSanitizer" in text \
                    or "runtime error:" in text or "ERROR: LeakSanitizer" in text:
                found.append("== %s ==\n%s" % (name, text[:4000]))
        return "\n".join(found)


def wait_until(fn, timeout=10.0, interval=0.05):
    """Polls fn until it returns something true; returns that or None."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() >= deadline:
            return None
        time.sleep(interval)
