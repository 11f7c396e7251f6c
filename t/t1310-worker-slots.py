#!/usr/bin/env python3
"""The worker's slots: up to ANYON_WORKER_SLOTS jobs at once, each in a child
process of its own; per-user fairness (ANYON_USER_MAX_RUNNING, cloud mode);
a job whose child dies goes back to the queue and runs again; SIGTERM lets
running jobs finish and the worker exits 0."""
import os, signal, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

t = TAP()


class Sampler:
    """Samples the running jobs (job id -> user id) every 20 ms in a thread."""

    def __init__(self, s):
        self.s = s
        self.samples = []
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop.is_set():
            rows = self.s.sql("SELECT id, user_id FROM jobs WHERE state = 'running'")
            self.samples.append(rows)
            time.sleep(0.02)

    def join(self):
        self.stop.set()
        self.th.join(10)
        return self.samples


def echo(c, n_lines, delay_ms, exit_code=0):
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["line %d" % i for i in range(n_lines)],
                                                      "delay_ms": delay_ms, "exit_code": exit_code}})
    assert r.status == 201, r
    return r.json["job"]["id"]


def states(s, ids):
    return {int(i): st for i, st in s.sql("SELECT id, state FROM jobs WHERE id IN (%s)" %
                                          ",".join(str(i) for i in ids))}


# ---- local mode: five jobs over two slots ----
with Stack(env={"ANYON_WORKER_SLOTS": "2", "ANYON_WORKER_GRACE_MS": "3000"}) as s:
    c = s.client()
    c.session()
    worker = s.pid("worker")
    sampler = Sampler(s)
    ids = [echo(c, 4, 300) for _ in range(5)]
    # While they run, the worker has job children (one per running job).
    kids_seen = set()
    def busy():
        kids_seen.update(s.children(worker))
        return all(st == "succeeded" for st in states(s, ids).values())
    done = wait_until(busy, timeout=60, interval=0.05)
    samples = sampler.join()
    t.ok(done, "five jobs over two slots all succeed", states(s, ids))
    most = max(len(r) for r in samples)
    t.eq(most, 2, "at most two ran at once, and two did run at once")
    t.ok(len(kids_seen) >= 5, "each job ran in a child process of its own", sorted(kids_seen))
    t.ok(s.sql("SELECT count(*) FROM job_output WHERE job_id IN (%s) AND stream = 'stdout'" %
               ",".join(str(i) for i in ids)) == [["20"]], "every line of every job was stored")
    for i in ids:
        seqs = [int(r[0]) for r in s.sql("SELECT seq FROM job_output WHERE job_id = %d ORDER BY seq" % i)]
        if seqs != list(range(1, len(seqs) + 1)):
            t.ok(False, "job %d: output seq consecutive" % i, seqs)
            break
    else:
        t.ok(True, "each job's output seq is consecutive")
    with open(os.path.join(s.data, "log", "worker.log")) as f:
        log = f.read()
    t.ok("started with 2 slot(s)" in log, "the worker says how many slots it has")

    # ---- a job whose child is killed goes back to the queue and runs again ----
    jid = echo(c, 30, 200)
    t.ok(wait_until(lambda: s.sql("SELECT count(*) FROM job_output WHERE job_id = %d" % jid)[0][0] not in ("0",),
                    timeout=20), "a long job is running")
    kids = s.children(worker)
    t.eq(len(kids), 1, "one job child runs it")
    os.kill(kids[0], signal.SIGKILL)
    t.ok(wait_until(lambda: states(s, [jid])[jid] == "succeeded", timeout=60),
         "after its child was killed, the job ran again and succeeded", states(s, [jid]))
    t.eq(s.sql("SELECT attempts FROM jobs WHERE id = %d" % jid), [["2"]], "on attempt 2")
    text = s.pick("CAST(data AS TEXT)", "convert_from(data, 'UTF8')")
    sys_lines = [r[0] for r in s.sql("SELECT %s FROM job_output WHERE job_id = %d AND stream = 'system'" %
                                     (text, jid))]
    t.ok(any("killed by signal 9" in l for l in sys_lines), "a system line says the job's process was killed",
         sys_lines)
    t.ok(s.pid("worker") == worker, "the worker itself lived on")

    # ---- SIGTERM with two jobs running: both finish within the grace ----
    a, b = echo(c, 5, 200), echo(c, 5, 200)
    t.ok(wait_until(lambda: list(states(s, [a, b]).values()) == ["running", "running"], timeout=20),
         "two jobs running")
    os.kill(worker, signal.SIGTERM)
    t.ok(wait_until(lambda: not os.path.exists("/proc/%d" % worker) or
                    open("/proc/%d/stat" % worker).read().rsplit(")", 1)[1].split()[0] == "Z", timeout=20),
         "SIGTERM: the worker exits")
    t.eq(states(s, [a, b]), {a: "succeeded", b: "succeeded"}, "both running jobs finished within the grace")
    with open(os.path.join(s.data, "log", "worker.log")) as f:
        log = f.read()
    t.ok("stopping: 2 job(s) running" in log and log.rstrip().endswith("worker stopped"),
         "the log says it waited for two jobs, then stopped", log[-400:])

# ---- cloud mode: one user cannot take every slot ----
with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com")
    gh.add_user("bob", "Bob B", "bob@example.com")
    env = stack_env(gh, extra={"ANYON_WORKER_SLOTS": "3", "ANYON_USER_MAX_RUNNING": "1"})
    with Stack(env=env) as s:
        alice, bob = s.client(), s.client()
        t.ok(sign_in(alice, gh, "alice").json["status"] == "complete" and
             sign_in(bob, gh, "bob").json["status"] == "complete", "alice and bob signed in")
        sampler = Sampler(s)
        a_ids = [echo(alice, 4, 250) for _ in range(3)]
        b_id = echo(bob, 4, 250)
        ok = wait_until(lambda: all(st == "succeeded" for st in states(s, a_ids + [b_id]).values()),
                        timeout=90, interval=0.1)
        samples = sampler.join()
        t.ok(ok, "all of alice's and bob's jobs succeed", states(s, a_ids + [b_id]))
        a_uid = int(s.sql("SELECT id FROM users WHERE login = 'alice'")[0][0])
        most_alice = max(sum(1 for r in rows if int(r[1]) == a_uid) for rows in samples)
        t.eq(most_alice, 1, "alice never had more than ANYON_USER_MAX_RUNNING=1 job running")
        both = any(len({r[1] for r in rows}) == 2 for rows in samples)
        t.ok(both, "bob's job ran while alice's were still waiting (a free slot went to bob)")

t.done()
