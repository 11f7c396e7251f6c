#!/usr/bin/env python3
"""Kept-alive connections and a hanging GitHub: with the shipped nginx
config (upstream keepalive, fastcgi_keep_conn on) and a pool of two
children that both hold connections nginx keeps, a request that waits on
GitHub leaves its child holding that one connection only (it hands the
others to the pool before it waits: fcgi/conns.h), and bursts of requests
meanwhile all answer at once: none waits behind GitHub on a connection of
the busy child. Afterwards the pool serves as before and nothing was
answered twice."""
import os, signal, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

HANG_S = 8
BURST = 12
t = TAP()


def fcgi_conn_inodes(sock):
    """Socket inodes of the connections accepted on the pool's socket (an
    accepted unix socket shows its listener's path in /proc/net/unix)."""
    out = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]; St 03: connected
            if len(parts) >= 8 and parts[7] == sock and parts[5] == "03":
                out.add(parts[6])
    return out


def conns_of(pid, sock):
    """How many of the pool's FastCGI connections process pid holds."""
    inodes = fcgi_conn_inodes(sock)
    n = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                n += 1
    except OSError:
        pass
    return n


def slot_holders(s):
    held = []
    for pid in s.children(s.pid("fcgi")):
        try:
            if any("/run/github-slots/" in os.readlink("/proc/%d/fd/%s" % (pid, fd))
                   for fd in os.listdir("/proc/%d/fd" % pid)):
                held.append(pid)
        except OSError:
            pass
    return held


def burst(s, n, timeout):
    """n concurrent GET /api/health from fresh clients: [(status, seconds)]."""
    res, lock = [], threading.Lock()

    def one():
        c = s.client()
        c.timeout = timeout
        t0 = time.time()
        try:
            st = c.get("/api/health").status
        except OSError:
            st = 0
        with lock:
            res.append((st, round(time.time() - t0, 2)))
    ths = [threading.Thread(target=one) for _ in range(n)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return res


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice", "alice@example.com", repos=["one"])
    env = stack_env(gh, allowed="alice", extra={
        "ANYON_FCGI_CHILDREN": "2", "ANYON_GITHUB_CONCURRENCY": "1",
        "ANYON_GITHUB_TIMEOUT_MS": str(HANG_S * 1000 + 2000),
        "ANYON_GITHUB_DEADLINE_MS": str(HANG_S * 1000 + 2000)})
    with Stack(env=env) as s:
        sock = os.path.join(s.data, "run", "fcgi.sock")
        a = s.client()
        a.timeout = HANG_S + 10
        t.ok(sign_in(a, gh, "alice").status == 200, "alice signs in")
        kids = s.children(s.pid("fcgi"))
        t.eq(len(kids), 2, "the pool has two children")

        # Requests are too quick to overlap by themselves: while one child
        # is stopped, requests nginx sends it wait and the others open
        # connections the other child accepts; then the other way round.
        # Each round leaves nginx keeping connections to both children.
        warm = []
        for _ in range(10):
            for k in kids:
                os.kill(k, signal.SIGSTOP)
                ths = [threading.Thread(target=lambda: warm.extend(burst(s, 1, 10))) for _ in range(BURST // 2)]
                for th in ths:
                    th.start()
                time.sleep(0.3)
                os.kill(k, signal.SIGCONT)
                for th in ths:
                    th.join()
            if all(conns_of(k, sock) >= 2 for k in kids):
                break
        held = {k: conns_of(k, sock) for k in kids}
        t.ok(all(st == 200 for st, _ in warm) and all(n >= 2 for n in held.values()),
             "nginx keeps connections to both children between requests", (held, warm))

        # A search that waits on a hanging GitHub.
        gh.set_fail("/user/repos", "timeout", count=None, hang=HANG_S, host="api")
        result = []
        th = threading.Thread(target=lambda: result.append(a.get("/api/github/repositories?q=x")))
        t0 = time.time()
        th.start()
        holders = wait_until(lambda: slot_holders(s), timeout=5)
        t.ok(holders and len(holders) == 1, "one child waits on GitHub", holders)
        busy = holders[0] if holders else 0
        t.eq(conns_of(busy, sock), 1, "it holds only the connection of the request it serves: it handed "
             "its other kept connections to the pool first")
        other = [k for k in kids if k != busy]
        took = other and conns_of(other[0], sock)
        t.ok(other and took >= held[other[0]] + held.get(busy, 0) - 1,
             "the other child took them: none was closed", (held, took))

        # Meanwhile: bursts of requests, through every connection nginx keeps.
        slow = []
        rounds = 0
        while time.time() - t0 < HANG_S - 3:
            res = burst(s, BURST, HANG_S + 5)
            rounds += 1
            time.sleep(0.2)
            slow += [x for x in res if x[0] != 200 or x[1] >= (HANG_S - 2) / 2]
        t.ok(rounds >= 2 and not slow, "%d bursts of %d requests while GitHub hangs: every one answered at once, "
             "none behind the wait" % (rounds, BURST), slow)
        th.join()
        gh.clear_fail()
        t.ok(result and result[0].status in (502, 504), "the search gets GitHub's failure when it gives up",
             result and (result[0].status, result[0].json))
        after = burst(s, BURST, 10)
        t.ok(all(st == 200 for st, _ in after), "afterwards the pool serves as before", after)
        t.ok(a.get("/api/github/repositories").status == 200, "and GitHub, answering again, is searched")
        t.ok(sorted(s.children(s.pid("fcgi"))) == sorted(kids), "no child died on the way")
t.done()
