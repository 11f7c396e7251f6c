#!/usr/bin/env python3
"""The FastCGI pool under load: children killed with SIGKILL are replaced and
no GET fails (nginx retries it on another child); SIGTERM stops the pool
cleanly (exit 0, socket and pid file gone) while requests keep coming."""
import os, signal, socket, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until

CHILDREN = 4
THREADS = 4
PER_THREAD = 500          # 2000 requests in all
KILLS_AT = (200, 600, 1000)
# nginx's answer when no child takes the request: the shipped config maps
# 502/503/504 to a JSON 503 service_unavailable.
UNAVAILABLE = (503,)

t = TAP()


class Load:
    """THREADS threads, each doing `count` GETs alternating two paths."""

    def __init__(self, s, cookie, paths, count):
        self.results = []            # (time, path, status or exception text, error code)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(s, cookie, paths, count), daemon=True)
                        for _ in range(THREADS)]

    def run(self, s, cookie, paths, count):
        c = s.client()
        c.timeout = 20
        c.cookies["anyon_session"] = cookie
        for i in range(count):
            path = paths[i % len(paths)]
            try:
                r = c.get(path)
                res = (time.time(), path, r.status, r.error_code() if r.status != 200 else None,
                       r.json is not None)
            except Exception as e:   # noqa: BLE001 - any failure is a finding
                res = (time.time(), path, "%s: %s" % (type(e).__name__, e), None, False)
            with self.lock:
                self.results.append(res)

    def start(self):
        for th in self.threads:
            th.start()
        return self

    def done(self):
        with self.lock:
            return len(self.results)

    def join(self, timeout):
        end = time.time() + timeout
        for th in self.threads:
            th.join(max(0.1, end - time.time()))
        return not any(th.is_alive() for th in self.threads)


def alive(pid):
    """True while pid runs; a zombie waiting for its reaper counts as gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


with Stack(env={"ANYON_FCGI_CHILDREN": str(CHILDREN)}) as s:
    sock = os.path.join(s.data, "run", "fcgi.sock")
    pidfile = os.path.join(s.data, "run", "fcgi.pid")
    log = os.path.join(s.data, "log", "fcgi.log")

    # Run the pool as our own child, so its exit status can be checked.
    os.kill(s.pid("fcgi"), signal.SIGTERM)
    t.ok(wait_until(lambda: not os.path.exists(sock) and not os.path.exists(pidfile), timeout=15),
         "the pool ./dev started stops on SIGTERM and removes its socket and pid file")
    with open(log, "a") as logf:
        pool = subprocess.Popen([os.path.join(BUILDDIR, "anyon-fcgi"), "--pid-file", pidfile],
                                env=s.env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    try:
        t.ok(wait_until(lambda: os.path.exists(sock) and len(s.children(pool.pid)) == CHILDREN, timeout=15),
             "a new pool of %d children is listening" % CHILDREN)
        c = s.client()
        c.session()
        r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["pool"]}})
        t.eq(r.status, 201, "a job to read under load")
        jid = r.json["job"]["id"]
        paths = ["/api/session", "/api/jobs/%d" % jid]

        # ---- SIGKILL children under load ----
        first = s.children(pool.pid)
        load = Load(s, c.cookies["anyon_session"], paths, PER_THREAD).start()
        killed, at = [], []
        for k, threshold in enumerate(KILLS_AT):
            wait_until(lambda: load.done() >= threshold, timeout=60, interval=0.005)
            os.kill(first[k], signal.SIGKILL)
            at.append(load.done())
            killed.append(first[k])
        finished = load.join(120)
        replaced = wait_until(lambda: not set(s.children(pool.pid)) & set(killed) and
                              len(s.children(pool.pid)) == CHILDREN, timeout=15)
        total = THREADS * PER_THREAD
        t.ok(finished and load.done() == total, "all %d GETs completed" % total, load.done())
        t.ok(all(a < total for a in at), "every kill landed while requests were running", at)
        failed = [r for r in load.results if r[2] != 200 or not r[4]]
        t.ok(not failed, "every GET answered 200 with JSON through %d child kills" % len(killed),
             "%d failed, e.g. %r" % (len(failed), failed[:5]))
        t.ok(replaced, "each killed child was replaced", s.children(pool.pid))
        now = s.children(pool.pid)
        t.ok(len(now) == CHILDREN and not set(now) & set(killed) and not any(alive(p) for p in killed),
             "the pool is back to %d children, none of them a killed one" % CHILDREN, (now, killed))
        with open(log) as f:
            text = f.read()
        t.ok(all("child %d killed by signal 9" % p in text for p in killed), "the log names each killed child")
        t.ok(pool.poll() is None, "the pool parent survived")

        # ---- SIGTERM the parent under load ----
        kids = s.children(pool.pid)
        load = Load(s, c.cookies["anyon_session"], paths, 400).start()
        wait_until(lambda: load.done() >= 100, timeout=30, interval=0.01)
        # A connection that sends nothing: the child that accepts it waits in
        # libfcgi for the first bytes (up to 2 s), which is where the SIGTERM
        # lands. libfcgi 2.4.2 spun there for good once its shutdown flag was
        # set (a stale descriptor polled again and again) until the pool's
        # grace ran out and killed the child.
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(sock)
        time.sleep(0.1)
        t0 = time.time()
        pool.send_signal(signal.SIGTERM)
        try:
            rc = pool.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t0
        silent.close()
        with open(log) as f:
            text = f.read()
        t.ok(rc == 0 and took < 5, "SIGTERM under load: the pool exits 0 within a few seconds",
             "rc=%r after %.1fs; log: %s" % (rc, took, text[-600:]))
        load.join(60)
        t.ok(any(r[0] < t0 for r in load.results) and any(r[0] > t0 for r in load.results),
             "requests were answered both before and after the SIGTERM")
        t.ok(not os.path.exists(sock) and not os.path.exists(pidfile), "its socket and pid file are removed")
        t.ok(not any(alive(p) for p in kids), "no child outlives the pool", [p for p in kids if alive(p)])
        with open(log) as f:
            text = f.read()
        t.ok(text.rstrip().endswith("stopped"), "its log says stopped", text[-300:])
        t.ok("did not stop in time" not in text,
             "every child stopped by itself, also the one waiting on a silent connection",
             text[-600:])
        odd = [r for r in load.results
               if not (r[2] == 200 and r[4]) and not (r[2] in UNAVAILABLE and r[3] == "service_unavailable")]
        t.ok(load.done() == THREADS * 400 and not odd,
             "during the stop every request got 200 or JSON service_unavailable, never a broken answer",
             odd[:5])
        r = c.get("/api/session")
        t.ok(r.status in UNAVAILABLE and r.error_code() == "service_unavailable",
             "with the pool gone nginx answers JSON service_unavailable", r)
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
t.done()
