#!/usr/bin/env python3
"""pgcluster - a throwaway PostgreSQL cluster for tests.

A Cluster lives in one temporary folder (owned by the server's user, mode
0700) holding its data directory, its unix socket and its log. It is run by
Debian's `postgres` user when we are root (`runuser -u postgres --`;
PostgreSQL refuses root), else by the current user. It listens on its
socket and on a free port of 127.0.0.1, nowhere else; it never touches the
system's clusters (no pg_ctlcluster, no systemctl). Durability is off
(fsync, synchronous_commit, full_page_writes) and memory small: it is
thrown away.

Authentication:
  - unix socket: trust. The socket's folder is 0700, so only the server's
    user and root can reach it.
  - TCP 127.0.0.1: scram-sha-256 with a generated password. The password
    is in a 0600 passfile (libpq's format) in the cluster's folder, found
    through PGPASSFILE; it is never in a URI, an argv, an environment
    variable or a log. Trust on TCP would let any local user be superuser
    (and run programs as the server's user) while the tests run.
So URIs carry no secret: postgresql://postgres@127.0.0.1:PORT/NAME, and a
program connecting through one needs PGPASSFILE (env() gives it).

Use from a test:
    from pgcluster import Cluster, create_db
    with Cluster() as pg:                     # started, stopped, removed
        uri = pg.create_db("t0200_a")         # a fresh database
        pg.psql(uri, "SELECT 1")
    uri = create_db()   # on the run's shared cluster (see shared())

One cluster for a whole run: `python3 t/lib/pgcluster.py serve --env-file F`
starts a cluster, creates the database `unit`, writes F (KEY=VALUE lines:
ANYON_TEST_PG_ADMIN_URI, ANYON_TEST_PG_URI, ANYON_TEST_PG_SOCKET_DIR,
PGPASSFILE) and serves until SIGTERM/SIGINT or until its parent exits, then
stops the cluster and removes its folder. `./dev test --pg` exports F's
lines; shared() then uses that cluster, and each test creates its own
databases on it.

Everything is stopped and removed when the `with` block ends (also on an
exception), at interpreter exit, and on SIGTERM (turned into SystemExit
when nobody else handles it). A missing initdb is an error, never a skip.
"""
import argparse
import atexit
import glob
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PREFIX = "anyon-pg-"
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_permissions": "0700",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "'64MB'",
    "shared_buffers": "'16MB'",
    "work_mem": "'4MB'",
    "maintenance_work_mem": "'16MB'",
    "max_connections": "200",
    "ssl": "off",
    "timezone": "'UTC'",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


class PgError(RuntimeError):
    """The cluster could not be set up, used or stopped."""


def find_bindir(bindir=None):
    """The folder of initdb and pg_ctl: bindir, $ANYON_PG_BINDIR, Debian's
    newest /usr/lib/postgresql/*/bin, or PATH. PgError when none has initdb."""
    cands = [bindir] if bindir else []
    if not bindir and os.environ.get("ANYON_PG_BINDIR"):
        cands.append(os.environ["ANYON_PG_BINDIR"])
    if not cands:
        deb = glob.glob("/usr/lib/postgresql/*/bin")
        cands += sorted(deb, key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[-2].split(".")],
                        reverse=True)
        on_path = shutil.which("initdb")
        if on_path:
            cands.append(os.path.dirname(on_path))
    for d in cands:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    raise PgError("initdb/pg_ctl not found (looked in %s): install PostgreSQL "
                  "(apt-get install postgresql, or ./dev test --pg does it) or set ANYON_PG_BINDIR"
                  % (", ".join(cands) or "/usr/lib/postgresql/*/bin and PATH"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _clean_env():
    """Our environment without libpq's PG* variables, which would redirect
    the server tools to another cluster."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


_live = set()           # clusters of this process not stopped yet
_sigterm_installed = False


def _stop_all():
    for c in list(_live):
        c.stop()


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def _install_cleanup():
    global _sigterm_installed
    if not _sigterm_installed:
        atexit.register(_stop_all)
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            try:
                signal.signal(signal.SIGTERM, _on_sigterm)
            except ValueError:  # not the main thread: atexit still cleans up
                pass
        _sigterm_installed = True


class _Client:
    """What creating databases needs: an admin URI and the passfile."""

    admin_uri = None
    passfile = None
    _seq = itertools.count(1)

    def env(self):
        """Environment additions for a program connecting through our URIs."""
        return {"PGPASSFILE": self.passfile}

    def psql(self, uri, sql, check=True):
        """Runs sql through psql on uri; returns stdout (unaligned, tuples
        only, tab-separated). PgError on failure when check."""
        env = _clean_env()
        env.update(self.env())
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-d", uri, "-c", sql], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if check and r.returncode != 0:
            raise PgError("psql failed (%d): %s" % (r.returncode, r.stderr.strip()))
        return r.stdout if check else r

    def uri(self, name):
        base = self.admin_uri.rsplit("/", 1)[0]
        return "%s/%s" % (base, name)

    def create_db(self, name=None):
        """Creates a fresh database (a generated name by default) and
        returns its URI. PgError if it exists."""
        if name is None:
            script = re.sub(r"[^a-z0-9]+", "_", os.path.basename(sys.argv[0] or "py").lower())[:30]
            name = "t_%s_%d_%d_%s" % (script.strip("_"), os.getpid(), next(self._seq), secrets.token_hex(2))
        if not NAME_RE.match(name):
            raise PgError("database name %r: use [a-z0-9_], at most 63" % name)
        self.psql(self.admin_uri, 'CREATE DATABASE "%s" TEMPLATE template0 ENCODING \'UTF8\'' % name)
        return self.uri(name)

    def drop_db(self, name_or_uri):
        name = name_or_uri.rsplit("/", 1)[-1]
        if not NAME_RE.match(name):
            raise PgError("database name %r" % name)
        self.psql(self.admin_uri, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


class Cluster(_Client):
    """A throwaway cluster. start()/stop(), or use as a context manager."""

    def __init__(self, bindir=None, port=None, tmpdir=None, user=None):
        self.bindir = find_bindir(bindir)
        self.want_port = port
        self.tmpdir = tmpdir
        # root runs the server as postgres; anyone else as themselves
        self.user = user or ("postgres" if os.geteuid() == 0 else None)
        self.dir = self.data = self.sock = self.log = None
        self.port = None
        self.pid = None

    # ---------------------------------------------------------------- running
    def _as_server(self, argv, check=True, timeout=120):
        cmd = list(argv)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        r = subprocess.run(cmd, env=_clean_env(), cwd=self.dir, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise PgError("%s failed (%d):\n%s" % (os.path.basename(argv[0]), r.returncode, r.stdout[-3000:]))
        return r

    def _tool(self, name):
        return os.path.join(self.bindir, name)

    def start(self):
        _install_cleanup()
        base = self.tmpdir or ("/tmp" if self.user else tempfile.gettempdir())
        self.dir = tempfile.mkdtemp(prefix=PREFIX, dir=base)
        _live.add(self)
        try:
            self._setup()
        except BaseException:
            self.stop()
            raise
        return self

    def _setup(self):
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log = os.path.join(self.dir, "postgresql.log")
        self.passfile = os.path.join(self.dir, "pgpass")
        with open(os.path.join(self.dir, "owner.pid"), "w") as f:
            f.write("%d\n" % os.getpid())
        os.mkdir(self.sock, 0o700)
        password = secrets.token_urlsafe(32)
        pwfile = os.path.join(self.dir, "initdb-pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if self.user:
            pw = pwd.getpwnam(self.user)
            for p in (self.dir, self.sock, pwfile, os.path.join(self.dir, "owner.pid")):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        try:
            self._as_server([self._tool("initdb"), "-D", self.data, "-U", "postgres", "-E", "UTF8",
                             "--no-locale", "--no-sync", "--no-instructions", "--pwfile", pwfile,
                             "--auth-local=trust", "--auth-host=scram-sha-256"])
        finally:
            os.unlink(pwfile)
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("# anyon test cluster: the socket (folder 0700) trusts, TCP on 127.0.0.1 needs the password\n"
                    "local all all trust\n"
                    "host all all 127.0.0.1/32 scram-sha-256\n")
        last = None
        for _ in range(5):  # a free port may be taken before the server binds it
            self.port = self.want_port or free_port()
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("\n# anyon test cluster\n")
                for k, v in SETTINGS.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("port = %d\nunix_socket_directories = '%s'\n" % (self.port, self.sock))
            r = self._as_server([self._tool("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                                 "-s", "start"], check=False)
            if r.returncode == 0:
                break
            last = r.stdout + self.log_tail()
            if self.want_port or "already in use" not in last:
                raise PgError("pg_ctl start failed:\n%s" % last)
        else:
            raise PgError("pg_ctl start failed 5 times:\n%s" % last)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("127.0.0.1:%d:*:postgres:%s\n" % (self.port, password))
        self.admin_uri = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def restart(self):
        """Restarts the server (fast: every connection is ended), same
        folder and port, as an administrator's restart would."""
        self._as_server([self._tool("pg_ctl"), "-D", self.data, "-l", self.log, "-m", "fast", "-w",
                         "-t", "60", "-s", "restart"])
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def socket_uri(self, name="postgres"):
        """The socket form of a database's URI (trust: no passfile needed)."""
        return "postgresql://postgres@/%s?host=%s&port=%d" % (name, self.sock, self.port)

    def log_tail(self, n=3000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except (OSError, TypeError):
            return ""

    def stop(self):
        """Stops the server (fast, then immediate, then SIGKILL) and removes
        the folder. Harmless when called again."""
        _live.discard(self)
        if self.dir is None:
            return
        if self.data and os.path.exists(os.path.join(self.data, "postmaster.pid")):
            for mode in ("fast", "immediate"):
                r = self._as_server([self._tool("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "20",
                                     "-s", "stop"], check=False)
                if r.returncode == 0:
                    break
        if self.pid and _alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            deadline = time.time() + 10
            while _alive(self.pid) and time.time() < deadline:
                time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Shared(_Client):
    """A cluster someone else runs (`pgcluster.py serve`), from its env lines."""

    def __init__(self, admin_uri, passfile):
        self.admin_uri = admin_uri
        self.passfile = passfile


_shared = None


def shared():
    """The cluster for this run: the one in ANYON_TEST_PG_ADMIN_URI (and
    PGPASSFILE) when `./dev test --pg` started one, else one started now for
    this process, reused by every later call and stopped at exit."""
    global _shared
    if _shared is None:
        uri = os.environ.get("ANYON_TEST_PG_ADMIN_URI")
        if uri:
            pf = os.environ.get("PGPASSFILE")
            if not pf or not os.path.exists(pf):
                raise PgError("ANYON_TEST_PG_ADMIN_URI is set but PGPASSFILE (%r) is missing" % pf)
            _shared = Shared(uri, pf)
        else:
            _shared = Cluster().start()
    return _shared


def create_db(name=None):
    """A fresh database on the run's cluster; returns its URI."""
    return shared().create_db(name)


def drop_db(name_or_uri):
    shared().drop_db(name_or_uri)


def env():
    return shared().env()


def serve(env_file):
    """Runs one cluster until SIGTERM/SIGINT or the parent's exit."""
    parent = os.getppid()
    done = []
    signal.signal(signal.SIGTERM, lambda *_: done.append(1))
    signal.signal(signal.SIGINT, lambda *_: done.append(1))
    with Cluster() as pg:
        unit = pg.create_db("unit")
        lines = {"ANYON_TEST_PG_ADMIN_URI": pg.admin_uri, "ANYON_TEST_PG_URI": unit,
                 "ANYON_TEST_PG_SOCKET_DIR": pg.sock, "PGPASSFILE": pg.passfile}
        tmp = env_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            for k, v in lines.items():
                f.write("%s=%s\n" % (k, v))
        os.rename(tmp, env_file)
        print("pgcluster: serving on 127.0.0.1:%d and %s (pid %d)" % (pg.port, pg.sock, pg.pid), flush=True)
        try:
            while not done and os.getppid() == parent and _alive(pg.pid):
                time.sleep(0.2)
            if not _alive(pg.pid):
                print("pgcluster: the server exited:\n" + pg.log_tail(), file=sys.stderr, flush=True)
                return 1
        finally:
            try:
                os.unlink(env_file)
            except OSError:
                pass
    print("pgcluster: stopped and removed", flush=True)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="A throwaway PostgreSQL cluster for anyon's tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run one cluster until SIGTERM or the parent exits")
    s.add_argument("--env-file", required=True, help="where to write KEY=VALUE lines (0600)")
    a = ap.parse_args(argv)
    try:
        return serve(os.path.abspath(a.env_file))
    except PgError as e:
        print("pgcluster: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
