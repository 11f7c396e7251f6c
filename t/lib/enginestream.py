"""A raw Engine API client for tests that need the hijacked streams
(attach before start, exec with stdin): http/1.1 over the engine's unix
socket, one connection per call, and Stream for a demultiplexed non-TTY
stream. t/lib/dockertest.py covers the plain calls and the test image."""
import json
import os
import socket
import struct
import subprocess
import time

from anyontest import BUILDDIR, SRCDIR

SOCK = (os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")[len("unix://"):]


class Engine:
    def __init__(self, path):
        self.path = path
        st, hdr, _ = self.call("GET", "/_ping", prefix="")
        self.prefix = "/v" + hdr["api-version"]

    def _connect(self, timeout=60):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        return s

    def _send(self, s, method, path, body, upgrade=False, prefix=None):
        data = b"" if body is None else json.dumps(body).encode()
        head = "%s %s%s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
            method, self.prefix if prefix is None else prefix, path, len(data))
        head += "Upgrade: tcp\r\nConnection: Upgrade\r\n" if upgrade else "Connection: close\r\n"
        s.sendall(head.encode() + b"\r\n" + data)

    @staticmethod
    def _head(s):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("the engine closed the connection before answering")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdr = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdr[k.strip().lower()] = v.strip()
        return int(lines[0].split()[1]), hdr, rest

    def call(self, method, path, body=None, prefix=None, timeout=60):
        """(status, headers, body bytes); the connection is closed per call."""
        s = self._connect(timeout)
        try:
            self._send(s, method, path, body, prefix=prefix)
            st, hdr, rest = self._head(s)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
        finally:
            s.close()
        if hdr.get("transfer-encoding") == "chunked":
            out, i = b"", 0
            while True:
                j = rest.index(b"\r\n", i)
                n = int(rest[i:j], 16)
                if n == 0:
                    break
                out += rest[j + 2:j + 2 + n]
                i = j + 2 + n + 2
            rest = out
        return st, hdr, rest

    def json(self, method, path, body=None, want=(200, 201, 204)):
        st, _, data = self.call(method, path, body)
        if st not in want:
            raise RuntimeError("%s %s: %d %s" % (method, path, st, data[:300]))
        return json.loads(data) if data else None

    def hijack(self, path, body=None):
        """POST with Upgrade: tcp; the raw stream after 101."""
        s = self._connect()
        self._send(s, "POST", path, body, upgrade=True)
        st, _, rest = self._head(s)
        if st != 101:
            raise RuntimeError("POST %s: %d, not 101: %r" % (path, st, rest[:300]))
        return Stream(s, rest)


class Stream:
    """A hijacked attach or exec stream without a TTY: 8-byte frame headers
    (stream type, three zeros, big-endian length) demultiplexed."""

    def __init__(self, sock, early):
        self.sock, self.buf = sock, b""
        self.out, self.err, self.eof = b"", b"", False
        self._feed(early)

    def _feed(self, data):
        self.buf += data
        while len(self.buf) >= 8:
            kind, n = self.buf[0], struct.unpack(">I", self.buf[4:8])[0]
            if len(self.buf) < 8 + n:
                break
            if kind == 1:
                self.out += self.buf[8:8 + n]
            elif kind == 2:
                self.err += self.buf[8:8 + n]
            self.buf = self.buf[8 + n:]

    def send(self, data, close=True):
        self.sock.sendall(data)
        if close:
            self.sock.shutdown(socket.SHUT_WR)

    def read_until(self, pred, timeout=60):
        end = time.time() + timeout
        while not pred(self) and not self.eof and time.time() < end:
            self.sock.settimeout(max(0.05, end - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                self.eof = True
            self._feed(chunk)
        return pred(self)

    def read_all(self, timeout=120):
        self.read_until(lambda s: s.eof, timeout)
        self.sock.close()
        return self.out, self.err

    def close(self):
        """Gone without a goodbye, as a killed worker's connection."""
        self.sock.close()


def engine_and_image(t):
    """The engine (a failed check and the end of the test when it does not
    answer) and the agent image: ANYON_AGENT_IMAGE, else built here with
    container/build-image (a failed check when that fails)."""
    try:
        eng = Engine(SOCK)
    except OSError as e:
        t.ok(False, "the Docker engine answers at %s" % SOCK, e)
        t.done()
    t.ok(True, "the Docker engine answers at %s (API %s)" % (SOCK, eng.prefix[2:]))
    image = os.environ.get("ANYON_AGENT_IMAGE")
    if not image:
        r = subprocess.run([os.path.join(SRCDIR, "container", "build-image"), "--quiet",
                            "--entry", os.path.join(BUILDDIR, "anyon-entry")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        image = r.stdout.decode().strip()
        if r.returncode != 0 or not image:
            t.ok(False, "container/build-image makes the agent image", r.stderr.decode()[-2000:])
            t.done()
    return eng, image
