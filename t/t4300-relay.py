#!/usr/bin/env python3
"""anyon-entry's relay mode (container/README.md, "The relay") in the agent
image on the real engine: the program's output numbered and framed on the
attach stream; a worker that goes away mid-run (its attach stream closed)
comes back with `anyon-entry replay --after OFFSET` in an exec and gets the
rest, twice in a row, byte for byte per stream with no gap and no
duplicate; a window outrun is reported with the exact count of lost bytes;
the program is never blocked by a reader that does not read; TERM reaches
the program's process group; the exit status arrives.

A missing engine is a failure, never a skip. The image is
ANYON_AGENT_IMAGE (./dev test exports it) or what container/build-image
reuses or builds."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import BUILDDIR, SRCDIR, TAP
from enginestream import engine_and_image

t = TAP()
LABEL = "t4300-%d" % os.getpid()
TMPFS = {"/run/anyon/secrets": "rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=1000"}
WINDOW_MIN = 2 * (16 + 65536)


class Relay:
    """A strict reader of the relay records (container/relayfmt.h), like
    services/relay.c: contiguous offsets from start, bounded lengths."""

    def __init__(self, start):
        self.next = start
        self.start = start
        self.used = 0           # bytes of the raw stream consumed
        self.data = {1: b"", 2: b"", 3: b""}
        self.records = []       # (type, offset, payload)
        self.lost = []          # (offset, count)
        self.exit = None        # (end, code, signal)

    def feed(self, raw):
        """Parses the complete records of raw[self.used:]."""
        while len(raw) - self.used >= 16:
            magic, ver, typ, zero, n, off = struct.unpack(">BBBBIQ", raw[self.used:self.used + 16])
            if magic != 0x41 or ver != 1 or zero != 0 or typ not in (1, 2, 3, 4, 5):
                raise ValueError("bad record header %r at %d" % (raw[self.used:self.used + 16], self.used))
            if self.exit is not None:
                raise ValueError("a record after the exit record")
            if off != self.next:
                raise ValueError("record at offset %d, expected %d" % (off, self.next))
            if (typ <= 3 and not 1 <= n <= 65536) or (typ > 3 and n != 8):
                raise ValueError("record type %d of %d bytes" % (typ, n))
            if len(raw) - self.used < 16 + n:
                break
            p = raw[self.used + 16:self.used + 16 + n]
            self.used += 16 + n
            self.records.append((typ, off, p))
            if typ <= 3:
                self.data[typ] += p
                self.next += n
            elif typ == 4:
                count = struct.unpack(">Q", p)[0]
                self.lost.append((off, count))
                self.next += count
            else:
                self.exit = (off,) + struct.unpack(">II", p)
        return self


eng, IMAGE = engine_and_image(t)
st, _, _ = eng.call("GET", "/images/%s/json" % urllib.parse.quote(IMAGE, safe=""))
if not t.ok(st == 200, "the image %s exists" % IMAGE, st):
    t.done()


def create(cmd, tty=False, init=True, mounts=None):
    body = {"Image": IMAGE, "Cmd": cmd, "User": "1000:1000", "Tty": tty,
            "Env": ["TINI_KILL_PROCESS_GROUP=1"], "Labels": {"anyon.test": LABEL},
            "OpenStdin": True, "StdinOnce": True, "AttachStdin": True,
            "AttachStdout": True, "AttachStderr": True,
            "HostConfig": {"CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                           "Init": init, "Tmpfs": TMPFS, "NetworkMode": "none",
                           "LogConfig": {"Type": "none", "Config": {}},
                           "Memory": 512 << 20, "PidsLimit": 256}}
    if mounts:
        body["HostConfig"]["Mounts"] = [{"Type": "bind", "Source": src, "Target": dst, "ReadOnly": False}
                                        for src, dst in mounts]
    return eng.json("POST", "/containers/create", body)["Id"]


def relay_dir(mode):
    """A host directory for the relay's socket, the agent's (uid 1000)."""
    d = tempfile.mkdtemp(prefix="anyon-t4300-")
    os.chown(d, 1000, 1000)
    os.chmod(d, mode)
    return d


def socket_records(path, after, relay, pred, timeout=60):
    """Asks the relay's socket at path (from the host) and reads records."""
    import socket as so
    c = so.socket(so.AF_UNIX)
    c.settimeout(timeout)
    c.connect(path)
    c.sendall(b"after %d\n" % after)
    raw = b""
    end = time.time() + timeout
    while time.time() < end and not pred(relay.feed(raw)):
        b = c.recv(1 << 20)
        if not b:
            break
        raw += b
    c.close()
    return relay


NOBODY_CLIENT = """
import socket, sys
n = 0
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])  # the socket is 0666: the connection itself is made
try:
    c.sendall(b"after 0\\n")
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
except OSError:
    pass  # closed at once (a reset): nothing was answered
print(n)
"""


def as_nobody_reads(path):
    """Bytes a process of uid 65534 gets from the socket after asking."""
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3",
                        "-c", NOBODY_CLIENT, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    return r.stdout.strip() or r.stderr.strip()


def start_attached(cid):
    """As the worker will: attach before start, an empty bundle, half-close."""
    s = eng.hijack("/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1" % cid)
    eng.json("POST", "/containers/%s/start" % cid)
    s.send(b"")
    return s


def exec_stream(cid, cmd):
    eid = eng.json("POST", "/containers/%s/exec" % cid,
                   {"Cmd": cmd, "User": "1000:1000", "AttachStdin": False,
                    "AttachStdout": True, "AttachStderr": True, "Tty": False})["Id"]
    return eid, eng.hijack("/exec/%s/start" % eid, {"Detach": False, "Tty": False})


def exec_run(cid, cmd, timeout=60):
    eid, s = exec_stream(cid, cmd)
    s.read_until(lambda x: x.eof, timeout)
    s.close()
    for _ in range(100):
        ins = eng.json("GET", "/exec/%s/json" % eid)
        if not ins["Running"]:
            break
        time.sleep(0.05)
    return ins["ExitCode"], s.out, s.err


def replay(cid, after, sock=None):
    cmd = ["/usr/local/bin/anyon-entry", "replay", "--after", str(after)]
    if sock:
        cmd += ["--relay-socket", sock]
    return exec_stream(cid, cmd)


def wait(cid, timeout=60):
    return eng.json("POST", "/containers/%s/wait?condition=not-running" % cid)["StatusCode"]


def remove(cid):
    eng.call("DELETE", "/containers/%s?force=1&v=1" % cid)


def cleanup():
    f = urllib.parse.quote(json.dumps({"label": ["anyon.test=" + LABEL]}))
    for c in eng.json("GET", "/containers/json?all=1&filters=" + f) or []:
        remove(c["Id"])


DUMP = os.path.join(BUILDDIR, "t", "helper", "relay-dump")


def c_parse(raw, start):
    """The worker's parser (services/relay.c, through t/helper/relay-dump)
    over raw, read in slices of changing sizes: a dict of what it got."""
    d = tempfile.mkdtemp(prefix="anyon-t4300-")
    try:
        o, e = os.path.join(d, "out"), os.path.join(d, "err")
        r = subprocess.run([DUMP, str(start), o, e], input=raw, stdout=subprocess.PIPE, timeout=60)
        res = {"rc": r.returncode, "lost": [], "exit": None, "out": open(o, "rb").read(),
               "err": open(e, "rb").read()}
        for ln in r.stdout.decode().splitlines():
            w = ln.split()
            if w[0] == "lost":
                res["lost"].append((int(w[1]), int(w[2])))
            elif w[0] == "exit":
                res["exit"] = (int(w[1]), int(w[2]), int(w[3]))
            elif w[0] == "offset":
                res["offset"], res["boundary"], res["ended"] = int(w[1]), int(w[3]), int(w[5])
            elif w[0] == "error":
                res["error"] = ln
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def follow(stream, relay, pred, timeout=60):
    """Reads stream into relay until pred(relay)."""
    return stream.read_until(lambda s: pred(relay.feed(s.out)), timeout)


N = 3000
SEQ = ("i=0; while [ $i -lt %d ]; do printf 'out %%06d\\n' $i; printf 'err %%06d\\n' $i >&2; "
       "i=$((i+1)); [ $((i %% 100)) = 0 ] && sleep 0.1; done; exit 3" % N)
WANT_OUT = "".join("out %06d\n" % i for i in range(N)).encode()
WANT_ERR = "".join("err %06d\n" % i for i in range(N)).encode()

try:
    # ---- a worker that dies twice mid-run ----
    cid = create(["--relay", "--linger", "120", "--", "sh", "-c", SEQ])
    a = start_attached(cid)
    r1 = Relay(0)
    follow(a, r1, lambda r: r.next >= 20000)
    a.close()   # the worker is killed: its attach stream gone mid-record, most likely
    t.ok(20000 <= r1.next < 2 * len(WANT_OUT) and r1.exit is None and a.err == b"",
         "the attach stream carries framed records only, numbered from 0 (read %d bytes, then gone)" % r1.next,
         (r1.next, a.err[:200]))
    # What the worker stored and committed: what its parser passed on, up
    # to the last byte received (a record may be cut: its head counts).
    c1 = c_parse(a.out, 0)
    x1 = c1["offset"]
    t.ok(c1["rc"] == 0 and x1 >= r1.next and c1["exit"] is None and not c1["lost"],
         "the worker's parser (services/relay.c) reads the cut stream up to offset %d%s"
         % (x1, "" if c1.get("boundary") else ", inside a record"), c1)
    code, out, err = exec_run(cid, ["stat", "-c", "%a %u %F", "/run/anyon/relay/sock"])
    t.eq((code, out), (0, b"600 1000 socket\n"), "the relay socket: mode 0600, uid 1000")
    time.sleep(1.5)   # the program goes on printing with nobody attached

    e2, s2 = replay(cid, x1)
    r2 = Relay(x1)
    follow(s2, r2, lambda r: r.next >= x1 + 20000)
    s2.close()   # the second worker dies too
    c2 = c_parse(s2.out, x1)
    x2 = c2["offset"]
    t.ok(not r2.lost and x2 > x1 and r2.records[0][1] == x1 and c2["rc"] == 0 and not c2["lost"],
         "a replay after %d starts exactly there (read up to %d, then gone)" % (x1, x2), (r2.records[:1], c2))
    time.sleep(1)
    e3, s3 = replay(cid, x2)
    r3 = Relay(x2)
    follow(s3, r3, lambda r: r.exit is not None, timeout=90)
    s3.read_until(lambda s: s.eof, 10)
    t.ok(r3.exit is not None and not r3.lost and s3.err == b"",
         "a third reader follows live output to the exit record", (r3.exit, r3.lost, s3.err[:300]))
    c3 = c_parse(s3.out, x2)
    t.ok(c3["rc"] == 0 and c3["ended"] and c3["boundary"] and c3["exit"] == r3.exit,
         "the worker's parser reads the third stream to its exit record", c3)
    got_out = c1["out"] + c2["out"] + c3["out"]
    got_err = c1["err"] + c2["err"] + c3["err"]
    t.ok(got_out == WANT_OUT, "stdout as the worker's parser stored it: attach + replay + replay is exactly "
         "what the program printed (%d bytes, no gap, no duplicate)" % len(WANT_OUT), (len(got_out), len(WANT_OUT)))
    t.ok(got_err == WANT_ERR, "stderr: the same (%d bytes)" % len(WANT_ERR), (len(got_err), len(WANT_ERR)))
    t.eq(r3.exit, (len(WANT_OUT) + len(WANT_ERR), 3, 0), "the exit record: the end offset, exit code 3")
    time.sleep(0.5)
    t.eq(eng.json("GET", "/containers/%s/json" % cid)["State"]["Running"], True,
         "after the exit, the wrapper lingers (--linger) for a worker to come back")
    eng.json("POST", "/containers/%s/kill?signal=TERM" % cid)
    t.eq(wait(cid), 3, "a TERM ends the linger at once; the container's status is the program's, 3")
    ins = eng.json("GET", "/exec/%s/json" % e3)
    t.eq(ins["ExitCode"], 0, "the replay exec exits 0")
    remove(cid)

    # ---- a window outrun: the exact count ----
    M = 40000
    cid = create(["--relay", "--window", str(WINDOW_MIN), "--linger", "120", "--", "sh", "-c",
                  "i=0; while [ $i -lt %d ]; do printf 'line %%08d\\n' $i; i=$((i+1)); done; "
                  "echo done > /tmp/finished" % M])
    want = "".join("line %08d\n" % i for i in range(M)).encode()
    a = start_attached(cid)
    r1 = Relay(0)
    follow(a, r1, lambda r: r.next >= 1000)
    a.close()
    x1 = r1.next
    end = time.time() + 60
    while time.time() < end and exec_run(cid, ["cat", "/tmp/finished"])[0] != 0:
        time.sleep(0.2)
    e2, s2 = replay(cid, x1)
    r2 = Relay(x1)
    follow(s2, r2, lambda r: r.exit is not None)
    lost = sum(c for _, c in r2.lost)
    t.ok(len(r2.lost) == 1 and r2.lost[0][0] == x1 and r2.records[0][0] == 4,
         "a replay older than the window starts with one lost record at its offset", r2.lost)
    t.ok(r2.exit is not None and r2.exit[0] == len(want) and
         lost == len(want) - x1 - len(r2.data[1]) and 0 < len(r2.data[1]) <= WINDOW_MIN,
         "the lost count is exact: %d bytes of %d, the window holds the last %d" % (lost, len(want), len(r2.data[1])),
         (lost, len(want), x1, len(r2.data[1]), r2.exit))
    t.ok(r1.data[1] == want[:x1] and r2.data[1] == want[x1 + lost:],
         "what came before and after the gap is what the program printed there")
    c2 = c_parse(s2.out, x1)
    t.ok(c2["rc"] == 0 and c2["lost"] == [(x1, lost)] and c2["out"] == r2.data[1] and c2["exit"] == r2.exit,
         "the worker's parser reports the same lost count, bytes and exit", c2.get("lost"))
    t.eq(r2.exit[1:], (0, 0), "the exit status: 0")
    remove(cid)

    # ---- a live reader slower than the program loses nothing ----
    # The smallest window, 2.6 MB printed at once, the attach stream read
    # slowly: the program waits for the reader (backpressure) instead of
    # the window dropping what it has not read.
    cid = create(["--relay", "--window", str(WINDOW_MIN), "--", "seq", "1", "400000"])
    want = "".join("%d\n" % i for i in range(1, 400001)).encode()
    a = start_attached(cid)
    r1 = Relay(0)
    t0 = time.time()
    while r1.exit is None and time.time() < t0 + 60 and not a.eof:
        had = len(a.out)
        a.read_until(lambda s: len(s.out) >= had + 16384, 5)
        r1.feed(a.out)
        time.sleep(0.01)
    t.ok(r1.exit == (len(want), 0, 0) and not r1.lost and r1.data[1] == want,
         "a slow reader (%.1f s for %d bytes through a %d-byte window): no lost record, every byte"
         % (time.time() - t0, len(want), WINDOW_MIN), (r1.exit, r1.lost, len(r1.data[1])))
    a.close()
    remove(cid)

    # ---- never blocked: a reader that never reads ----
    # Inside the image, a second relay whose stdout is a pipe nobody reads
    # (`| sleep`): the program waits --stall-ms for it, then prints its
    # 20 MB into the window and ends; with --stall-ms 0 it never waits.
    BIG = 20000000
    for stall, lo, hi in ((0, 0, 10), (3000, 3, 15)):
        cid = create(["--", "sh", "-c",
                      "mkdir -m 700 /tmp/r && /usr/local/bin/anyon-entry --relay --relay-socket /tmp/r/sock "
                      "--stall-ms %d --linger 120 -- sh -c 'head -c %d /dev/zero; echo fin > /tmp/fin' "
                      "</dev/null | sleep 600" % (stall, BIG)])
        a = start_attached(cid)
        t0 = time.time()
        done = False
        while time.time() < t0 + 30 and not done:
            done = exec_run(cid, ["cat", "/tmp/fin"])[0] == 0
            time.sleep(0.1)
        took = time.time() - t0
        t.ok(done and lo <= took < hi, "--stall-ms %d, stdout blocked for good: the relay drains on, "
             "20 MB printed in %.1f s (%d..%d)" % (stall, took, lo, hi))
        e2, s2 = replay(cid, 0, "/tmp/r/sock")
        r2 = Relay(0)
        follow(s2, r2, lambda r: r.exit is not None)
        lost = sum(c for _, c in r2.lost)
        t.ok(r2.exit == (BIG, 0, 0) and lost + len(r2.data[1]) == BIG and r2.data[1] == b"\0" * len(r2.data[1])
             and 0 < len(r2.data[1]) <= 8 << 20,
             "a replay from 0: %d bytes lost, the last %d (default window 8 MiB), the exit" % (lost, len(r2.data[1])),
             (r2.exit, lost, len(r2.data[1])))
        a.close()
        remove(cid)

    # ---- TERM reaches the process group; the exit status arrives ----
    cid = create(["--relay", "--", "sh", "-c",
                  "(trap 'echo child-got-term; exit 0' TERM; while :; do sleep 0.1; done) & "
                  "trap 'echo parent-got-term' TERM; echo ready; wait; wait; exit 7"])
    a = start_attached(cid)
    r1 = Relay(0)
    follow(a, r1, lambda r: b"ready\n" in r.data[1])
    eng.json("POST", "/containers/%s/kill?signal=TERM" % cid)
    follow(a, r1, lambda r: r.exit is not None)
    t.ok(b"child-got-term\n" in r1.data[1] and b"parent-got-term\n" in r1.data[1],
         "TERM to the container (tini, then the wrapper) reaches the program and its child", r1.data)
    t.ok(r1.exit is not None and r1.exit[1:] == (7, 0), "the exit record: code 7", r1.exit)
    t.eq(wait(cid), 7, "the container's status: 7")
    remove(cid)

    # Without Init the wrapper is PID 1: it still forwards TERM and reaps.
    cid = create(["--relay", "--", "sh", "-c",
                  "(sleep 0.2 &) ; trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.1; done"],
                 init=False)
    a = start_attached(cid)
    r1 = Relay(0)
    follow(a, r1, lambda r: b"ready\n" in r.data[1])
    time.sleep(0.5)   # the orphaned sleep is reparented to the wrapper and ends
    code, out, err = exec_run(cid, ["ps", "-e", "-o", "pid=,stat=,comm="])
    zombies = [ln for ln in out.decode().splitlines() if ln.split()[1].startswith("Z")]
    eng.json("POST", "/containers/%s/kill?signal=TERM" % cid)
    follow(a, r1, lambda r: r.exit is not None)
    t.ok(b"got-term\n" in r1.data[1] and r1.exit is not None and r1.exit[1:] == (5, 0) and wait(cid) == 5,
         "as PID 1 (no Init): TERM forwarded, exit 5 relayed", (r1.data, r1.exit))
    t.ok(code == 0 and not zombies, "as PID 1 it reaps orphans (no zombie)", out)
    remove(cid)

    cid = create(["--relay", "--", "sh", "-c", "echo x; kill -KILL $$"])
    a = start_attached(cid)
    r1 = Relay(0)
    follow(a, r1, lambda r: r.exit is not None)
    t.ok(r1.exit == (2, 0, 9) and r1.data[1] == b"x\n", "a program killed by a signal: the exit record says 9",
         r1.exit)
    t.eq(wait(cid), 137, "the container's status: 128 + 9")
    remove(cid)

    # ---- refusals ----
    cid = create(["--relay", "--", "sh", "-c", "echo hi; sleep 30"])
    a = start_attached(cid)
    r1 = Relay(0)
    follow(a, r1, lambda r: r.next >= 3)
    code, out, err = exec_run(cid, ["/usr/local/bin/anyon-entry", "replay", "--after", "4"])
    t.ok(code == 125 and out == b"" and b"refused" in err, "a replay past the end is refused (125)", (code, out, err))
    code, out, err = exec_run(cid, ["/usr/local/bin/anyon-entry", "replay", "--after", "-1"])
    t.ok(code == 125 and out == b"", "a bad offset: usage error (125)", (code, out, err))
    code, out, err = exec_run(cid, ["/usr/local/bin/anyon-entry", "replay", "--after", "0",
                                    "--relay-socket", "/tmp/none"])
    t.ok(code == 125 and out == b"" and b"no relay" in err, "no relay there: 125", (code, out, err))
    code, out, err = exec_run(cid, ["/usr/local/bin/anyon-entry", "--relay", "--", "true"])
    t.ok(code == 125 and b"cannot listen" in err, "a second relay on the same socket is refused", (code, err))
    a.close()
    remove(cid)
    code_cid = create(["--relay", "--window", "10", "--", "true"])
    a = start_attached(code_cid)
    a.read_until(lambda s: s.eof, 30)
    t.ok(wait(code_cid) == 125 and b"--window" in a.err, "a window below the minimum: 125", a.err)
    remove(code_cid)
    code_cid = create(["--relay", "--", "echo", "never"], tty=True)
    a = start_attached(code_cid)
    a.read_until(lambda s: s.eof, 30)
    a.close()
    t.ok(wait(code_cid) == 125, "relay mode on a terminal (Tty true) is refused: 125")
    remove(code_cid)

    # ---- the worker's own socket (--relay-peer-uid, --relay-no-stdout) ----
    # The job's relay directory is a host directory of the agent's (0711)
    # mounted where the relay listens; the worker (here: this test, uid
    # 0) asks the socket from the host and the attach stream carries
    # nothing. What the program prints before anyone asks is held (20 MB
    # through an 8 MiB window, asked 2 s late): nothing lost.
    d = relay_dir(0o711)
    BIG = 20000000
    cid = create(["--relay", "--relay-peer-uid", "0", "--relay-no-stdout", "--linger", "30", "--", "sh", "-c",
                  "head -c %d /dev/zero; %s" % (BIG, SEQ)], mounts=[(d, "/run/anyon/relay")])
    a = start_attached(cid)
    sock = os.path.join(d, "sock")
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    st = os.lstat(sock)
    t.ok(st.st_uid == 1000 and (st.st_mode & 0o777) == 0o666, "the socket in the host directory: uid 1000, 0666",
         (st.st_uid, oct(st.st_mode)))
    got = as_nobody_reads(sock)
    t.ok(got == "0", "another uid (65534) connects but is answered nothing", got)
    time.sleep(2)
    r = socket_records(sock, 0, Relay(0), lambda r: r.exit is not None)
    t.ok(r.exit == (BIG + len(WANT_OUT) + len(WANT_ERR), 3, 0) and not r.lost and
         r.data[1] == b"\0" * BIG + WANT_OUT and r.data[2] == WANT_ERR,
         "the peer reads everything from the socket, the first 20 MB held for it: no lost record, exit 3",
         (r.exit, r.lost, len(r.data[1]), len(r.data[2])))
    eng.call("POST", "/containers/%s/kill?signal=TERM" % cid)
    wait(cid)
    a.read_until(lambda s: s.eof, 30)
    t.ok(a.out == b"" and a.err == b"", "the attach stream carried nothing", (a.out[:100], a.err[:200]))
    remove(cid)
    # Without a peer, a directory others may enter is refused.
    cid = create(["--relay", "--", "true"], mounts=[(d, "/run/anyon/relay")])
    a = start_attached(cid)
    a.read_until(lambda s: s.eof, 30)
    t.ok(wait(cid) == 125 and b"mode 0700" in a.err, "a 0711 directory without --relay-peer-uid: 125", a.err)
    remove(cid)
    shutil.rmtree(d, ignore_errors=True)
except Exception:
    t.ok(False, "the test runs to its end", traceback.format_exc())
finally:
    cleanup()
t.done()
