#!/usr/bin/env python3
"""Local mode (no ANYON_CLOUD=1) serves this machine only, whatever nginx
is told: a request whose peer (REMOTE_ADDR, from nginx's fastcgi_params)
is not loopback gets 403 local_only from the pool itself, sent straight
over FastCGI; loopback peers (127/8, ::1, ::ffff:127.x) are served.
Starting the pool in local mode on a TCP listener that is not loopback
(every address, or another host's) is refused with a message naming the
setting; a loopback TCP listener starts. A unix socket whose folder is
missing (/run/anyon after a reboot) is named in the error."""
import os, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, new_db, free_port
import fcgiclient

t = TAP()
scratch = tempfile.mkdtemp(prefix="anyon-t7020-")
keyring = os.path.join(scratch, "keyring")
env = dict(os.environ, ANYON_KEY_FILE=keyring, ANYON_DATA_DIR=scratch, ANYON_DB=new_db(scratch),
           ANYON_FCGI_CHILDREN="1")
for k in ("ANYON_CLOUD", "ANYON_PUBLIC_URL"):
    env.pop(k, None)
if os.environ.get("ANYON_TEST_BACKEND") == "pg":
    import pgcluster
    env.update(pgcluster.env())
r = subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "init-keys"], env=env,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
t.eq(r.returncode, 0, "a keyring")


def start(sock):
    log = open(os.path.join(scratch, "fcgi.log"), "a+")
    return subprocess.Popen([os.path.join(BUILDDIR, "anyon-fcgi")], env=dict(env, ANYON_FCGI_SOCKET=sock),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def listening(sock, p):
    for _ in range(300):
        if p.poll() is not None:
            return False
        try:
            fcgiclient.request(sock, "GET", "/api/health", timeout=2)
            return True
        except OSError:
            time.sleep(0.05)
    return False


def refused(sock):
    """Runs the pool on sock: (exit code or None when it kept running,
    what it printed)."""
    p = subprocess.Popen([os.path.join(BUILDDIR, "anyon-fcgi")], env=dict(env, ANYON_FCGI_SOCKET=sock),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=10)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        stop(p)
        return None, p.stdout.read()


# ---- the peer, over the unix socket ----
sock = os.path.join(scratch, "fcgi.sock")
p = start(sock)
try:
    t.ok(listening(sock, p), "the pool serves on its unix socket")
    for addr in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
        st, _, body = fcgiclient.request(sock, "GET", "/api/health", REMOTE_ADDR=addr)
        t.eq(st, 200, "a loopback peer %s is served" % addr)
    for addr in ("203.0.113.7", "10.0.0.2", "2001:db8::1", "::ffff:10.0.0.2", "::", "0.0.0.0",
                 "localhost", "127.0.0.1, 203.0.113.7", ""):
        st, _, body = fcgiclient.request(sock, "GET", "/api/health", REMOTE_ADDR=addr)
        t.ok(st == 403 and '"local_only"' in body and "ANYON_CLOUD=1" in body,
             "peer %r is refused: 403 local_only naming ANYON_CLOUD=1" % addr, "%s %s" % (st, body))
    st, _, body = fcgiclient.request(sock, "GET", "/api/health", REMOTE_ADDR=None)
    t.ok(st == 403 and '"local_only"' in body, "no REMOTE_ADDR at all is refused", "%s %s" % (st, body))
    st, _, body = fcgiclient.request(sock, "POST", "/api/session", REMOTE_ADDR="203.0.113.7",
                                     HTTP_ORIGIN="http://localhost")
    t.ok(st == 403 and '"local_only"' in body, "a write from afar is refused the same way", body)
finally:
    stop(p)
with open(os.path.join(scratch, "fcgi.log")) as f:
    log = f.read()
t.ok("refused a request from 203.0.113.7" in log, "the refusal is logged with the peer", log[-2000:])

# ---- the listener ----
port = free_port()
for bad in (":%d" % port, "0.0.0.0:%d" % port, "192.0.2.1:%d" % port, "[::]:%d" % port,
            "example.com:%d" % port):
    rc, out = refused(bad)
    t.ok(rc not in (None, 0) and "ANYON_FCGI_SOCKET '%s'" % bad in out and "local mode" in out
         and "ANYON_CLOUD=1" in out, "local mode on TCP %s is refused at start, clearly" % bad, out)
good = "127.0.0.1:%d" % port
p = start(good)
try:
    t.ok(listening(good, p), "local mode on a loopback TCP listener starts and serves")
    st, _, _ = fcgiclient.request(good, "GET", "/api/health")
    t.eq(st, 200, "and answers a loopback peer")
finally:
    stop(p)

# ---- a reboot emptied /run: the socket's folder is missing ----
gone = os.path.join(scratch, "run-anyon-gone", "fcgi.sock")
rc, out = refused(gone)
t.ok(rc not in (None, 0) and os.path.dirname(gone) in out and "does not exist" in out,
     "a missing socket folder is named in the error", out)
shutil.rmtree(scratch, ignore_errors=True)
t.done()
