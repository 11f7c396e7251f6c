#!/usr/bin/env python3
"""Kept-alive FastCGI connections: a pool of 2 children serves 8 kept
connections in any order (an idle one never pins a child), a connection
carries request after request, one nginx did not ask to keep is closed after
its request, one idle past ANYON_FCGI_IDLE_TIMEOUT is closed, the shipped
nginx config keeps its connections and reuses them, 200 kept connections to two
children are all served again (none dropped to make room), and SIGTERM with idle kept
connections and a request in flight finishes that request, closes the
connections and exits 0 at once."""
import os, select, signal, socket, struct, subprocess, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until

CHILDREN = 2
CONNS = 8
IDLE_S = 4

t = TAP()

BEGIN, END, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7


def record(kind, content):
    pad = (-len(content)) % 8
    return struct.pack("!BBHHBx", 1, kind, 1, len(content), pad) + content + b"\0" * pad


def pair(name, value):
    out = b""
    for n in (len(name), len(value)):
        out += struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
    return out + name + value


class FCGI:
    """A raw FastCGI connection to the pool's socket, as nginx makes them."""

    def __init__(self, path, port, client=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.port = port
        self.client = client
        self.buf = b""

    def head(self, method, uri, keep=True, length=0):
        params = {"REQUEST_METHOD": method, "REQUEST_URI": uri, "QUERY_STRING": "",
                  "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:%d" % self.port,
                  "SERVER_PORT": str(self.port), "SERVER_PROTOCOL": "HTTP/1.1",
                  "CONTENT_LENGTH": str(length) if length else "", "CONTENT_TYPE": "application/json"}
        if self.client:
            params["HTTP_COOKIE"] = "; ".join("%s=%s" % kv for kv in self.client.cookies.items())
            params["HTTP_X_CSRF_TOKEN"] = self.client.csrf
        body = b"".join(pair(k.encode(), v.encode()) for k, v in params.items())
        return (record(BEGIN, struct.pack("!HB5x", 1, 1 if keep else 0)) +
                record(PARAMS, body) + record(PARAMS, b""))

    def send(self, data):
        self.s.sendall(data)

    def get(self, uri="/api/health", keep=True):
        self.send(self.head("GET", uri, keep) + record(STDIN, b""))

    def answer(self, timeout=5):
        """The status of the answer, or None when none came in time."""
        out = b""
        end = time.time() + timeout
        while True:
            while len(self.buf) >= 8:
                _, kind, _, clen, pad = struct.unpack("!BBHHBx", self.buf[:8])
                if len(self.buf) < 8 + clen + pad:
                    break
                content, self.buf = self.buf[8:8 + clen], self.buf[8 + clen + pad:]
                if kind == STDOUT:
                    out += content
                elif kind == END:
                    line = out.split(b"\r\n", 1)[0]
                    return int(line.split()[1]) if line.startswith(b"Status:") else 200
            left = end - time.time()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                return None
            data = self.s.recv(65536)
            if not data:
                return None
            self.buf += data

    def closed(self, timeout):
        """True when the pool closes the connection within timeout."""
        if not select.select([self.s], [], [], timeout)[0]:
            return False
        try:
            return self.s.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.s.close()


def sockets_of(pids):
    n = 0
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:")
                except OSError:
                    pass
        except OSError:
            pass
    return n


with Stack(env={"ANYON_FCGI_CHILDREN": str(CHILDREN), "ANYON_FCGI_IDLE_TIMEOUT": str(IDLE_S)}) as s:
    sock = os.path.join(s.data, "run", "fcgi.sock")
    # A session, for a POST that reads its body before answering.
    web = s.client()
    web.session()
    JOB = b'{"kind":"echo","args":{"lines":["keep-alive"]}}'
    kids = s.children(s.pid("fcgi"))
    t.eq(len(kids), CHILDREN, "the pool has %d children" % CHILDREN)

    # ---- more kept connections than children ----
    conns = [FCGI(sock, s.port) for _ in range(CONNS)]
    time.sleep(0.2)
    order = list(reversed(range(CONNS))) + list(range(CONNS))
    answers = []
    for i in order:
        conns[i].get()
        answers.append(conns[i].answer(timeout=5))
    t.ok(answers == [200] * len(order),
         "%d kept connections to %d children: each answers, one after another in any order, "
         "each twice" % (CONNS, CHILDREN), answers)
    for c in conns:
        c.get()
    answers = [c.answer(timeout=5) for c in conns]
    t.ok(answers == [200] * CONNS, "a request on every connection at once: all answered", answers)
    # Many kept connections, more than a child used to hold (64): none that
    # was served is closed to make room, so nginx never writes a request
    # into a connection the pool dropped (a broken pipe, then a 503).
    many = [FCGI(sock, s.port) for _ in range(200)]
    for c in many:
        c.get()
    first = [c.answer(timeout=10) for c in many]
    for c in many:
        c.get()
    again = [c.answer(timeout=10) for c in many]
    t.ok(first == [200] * 200 and again == [200] * 200,
         "200 kept connections to %d children: each served twice, none dropped to make room" % CHILDREN,
         (first.count(200), again.count(200)))
    for c in many:
        c.close()
    # A connection that sends half a request holds only its child's attention
    # while that child reads: the other child serves everyone else meanwhile.
    half = FCGI(sock, s.port, web)
    half.send(half.head("POST", "/api/jobs", length=len(JOB)) + record(STDIN, JOB[:10]))
    time.sleep(0.3)
    for c in conns:
        c.get()
    answers = [c.answer(timeout=0.2) for c in conns]
    # The busy child accepts nothing: new connections go to the other one.
    fresh = [FCGI(sock, s.port) for _ in range(3)]
    for c in fresh:
        c.get()
    got = [c.answer(timeout=5) for c in fresh]
    t.ok(got == [200] * 3,
         "while one child waits for the rest of a body, the other serves new connections", got)
    t.ok(answers.count(200) == CONNS - answers.count(None),
         "and the requests on its own kept connections (%d of %d)" % (answers.count(200), CONNS), answers)
    for c in fresh:
        c.close()
    half.send(record(STDIN, JOB[10:]) + record(STDIN, b""))
    t.eq(half.answer(timeout=5), 201, "the half-sent request is answered once it is complete")
    late = [c.answer(timeout=5) if a is None else a for c, a in zip(conns, answers)]
    t.ok(late == [200] * CONNS, "then the requests that waited for that child are answered too", late)
    half.close()
    answers = []
    for c in conns:
        c.get()
        answers.append(c.answer(timeout=5))
    t.ok(answers == [200] * CONNS, "and every connection is served again", answers)

    # ---- a large body the handler refuses without reading it ----
    # (a POST without its CSRF header: 403 before the body is read). The
    # rest of the body is read away after the answer, so the connection
    # carries the next request: closing it instead would let nginx put a
    # POST on it before it sees the close (a 503).
    big = FCGI(sock, s.port)
    body = b'{"kind":"echo","args":{"lines":["' + b"x" * (200 * 1024) + b'"]}}'
    big.send(big.head("POST", "/api/jobs", length=len(body)))
    for i in range(0, len(body), 65535):
        big.send(record(STDIN, body[i:i + 65535]))
    big.send(record(STDIN, b""))
    t.eq(big.answer(), 403, "a 200 KiB POST refused before its body is read is answered")
    big.get()
    t.eq(big.answer(), 200, "and its connection, kept, carries the next request")
    t.ok(not big.closed(0.5), "it stays open")
    big.close()

    # ---- nginx did not ask to keep it ----
    once = FCGI(sock, s.port)
    once.get(keep=False)
    t.eq(once.answer(), 200, "a request without FCGI_KEEP_CONN is answered")
    t.ok(once.closed(3), "and its connection closed after it")
    once.close()

    # ---- idle past the limit ----
    time.sleep(IDLE_S / 2.0)
    conns[0].get()
    t.eq(conns[0].answer(), 200, "a connection idle for less than the limit still serves")
    t0 = time.time()
    t.ok(all(c.closed(IDLE_S + 3) for c in conns),
         "connections idle for ANYON_FCGI_IDLE_TIMEOUT (%d s) are closed by the pool" % IDLE_S,
         "%.1fs" % (time.time() - t0))
    for c in conns:
        c.close()
    time.sleep(0.3)

    # ---- the shipped nginx keeps its connections: one client's requests,
    # one after another, reuse what nginx kept instead of connecting anew
    # (2 workers, keepalive 16 each) ----
    base = sockets_of(kids)
    c = s.client()
    codes = [c.get("/api/health").status for _ in range(100)]
    t.ok(codes == [200] * 100, "100 requests through nginx answered")
    kept = sockets_of(kids) - base
    t.ok(1 <= kept <= 32, "the shipped nginx keeps its connections to the pool: %d open after 100 requests" % kept,
         (base, sockets_of(kids)))
    codes = [c.get("/api/health").status for _ in range(100)]
    t.ok(codes == [200] * 100 and sockets_of(kids) - base <= kept + 2,
         "100 more requests reuse them (no connection per request)", (kept, sockets_of(kids) - base))

    # ---- SIGTERM with idle kept connections and a request in flight ----
    pidfile = os.path.join(s.data, "run", "fcgi.pid")
    log = os.path.join(s.data, "log", "fcgi.log")
    os.kill(s.pid("fcgi"), signal.SIGTERM)
    t.ok(wait_until(lambda: not os.path.exists(sock), timeout=15), "the pool ./dev started stops")
    with open(log, "a") as logf:
        pool = subprocess.Popen([os.path.join(BUILDDIR, "anyon-fcgi"), "--pid-file", pidfile],
                                env=s.env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
    try:
        t.ok(wait_until(lambda: os.path.exists(sock) and len(s.children(pool.pid)) == CHILDREN, timeout=15),
             "a new pool is listening")
        idle = [FCGI(sock, s.port) for _ in range(4)]
        for c in idle:
            c.get()
        t.ok([c.answer() for c in idle] == [200] * 4, "four kept connections served, now idle")
        busy = FCGI(sock, s.port, web)
        busy.send(busy.head("POST", "/api/jobs", length=len(JOB)) + record(STDIN, JOB[:10]))
        time.sleep(0.3)
        t0 = time.time()
        pool.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        busy.send(record(STDIN, JOB[10:]) + record(STDIN, b""))
        t.eq(busy.answer(timeout=5), 201, "SIGTERM while a request is half-read: that request is still served")
        t.ok(all(c.closed(5) for c in idle), "the idle kept connections are closed")
        try:
            rc = pool.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.time() - t0
        t.ok(rc == 0 and took < 3, "the pool exits 0 within a few seconds", "rc=%r after %.1fs" % (rc, took))
        with open(log) as f:
            text = f.read()
        t.ok("did not stop in time" not in text, "every child stopped by itself", text[-600:])
        for c in idle + [busy]:
            c.close()
    finally:
        if pool.poll() is None:
            pool.kill()
            pool.wait()
t.done()
