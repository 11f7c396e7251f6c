#!/usr/bin/env python3
"""watch-probe.py - how long a job's output takes to reach a watcher of the
change feed (bench/run, the watchers scenario).

    watch-probe.py BASE COOKIE JOB AFTER DB SECONDS

For SECONDS it runs, side by side:
  - an observer reading the database directly, about every 2 ms: the
    first time it sees each job.output event of JOB (a committed batch of
    that job's output) is taken as the batch's commit time. SQLite: a
    read-only connection, the time read right after the answer.
    PostgreSQL (DB a postgresql:// URI): one psql fed a query every 2 ms,
    each row stamped by the server's clock_timestamp(), so psql's own
    buffering does not count. Both clocks are this machine's.
  - two watchers polling GET /api/events?after=N over a kept-alive
    connection with COOKIE, N advanced to each answer's next_after, as
    the page does: "tight" asks again as soon as an answer is in (as each
    of wrk's watchers does), "page" waits 1,000 ms after each answer (the
    page's FEED_INTERVAL_MS, static/js/store.js).
For each job.output event of JOB the observer saw (after its first poll,
and more than GRACE seconds before the end, so that a late sighting is
not cut off), the latency is the watcher's time of reading the answer
minus the observer's first sight. The observer sees a commit up to one
poll late (2 ms plus its query), so latencies are understated by about
that much. Prints one line per sample, "tight MS" or "page MS", then
"unseen NAME N" (events a watcher had not seen by the end: counted as
misses by bench/run) and "observed N" (events sampled). Exits non-zero
when a poll fails.""" 
import http.client, json, os, re, subprocess, sys, threading, time, urllib.parse

base, cookie, job, after, db, seconds = sys.argv[1:7]
job, after, seconds = int(job), int(after), float(seconds)
PAGE_INTERVAL = 1.0
OBSERVE_EVERY = 0.002
GRACE = 2.5
stop = threading.Event()
committed = {}          # event id -> first time the observer saw it
before = set()          # ids in the observer's first answer (committed earlier)
seen = {"tight": {}, "page": {}}   # watcher -> event id -> time of its answer
errors = []
QUERY = ("SELECT id FROM events WHERE kind = 'job.output' AND subject = %d AND id > %d ORDER BY id"
         % (job, after))


def observe_sqlite(path):
    import sqlite3
    c = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True, isolation_level=None)
    while not stop.is_set():
        rows = c.execute(QUERY).fetchall()
        t = time.time()
        for (i,) in rows:
            committed.setdefault(i, t)
        if not before:
            before.update(committed)
            before.add(0)
        time.sleep(OBSERVE_EVERY)
    c.close()


def observe_pg(uri):
    q = ("SELECT id || ' ' || extract(epoch FROM clock_timestamp()) FROM events "
         "WHERE kind = 'job.output' AND subject = %d AND id > %d ORDER BY id;\n" % (job, after))
    p = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", uri],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read():
        for line in p.stdout:
            m = re.fullmatch(r"(\d+) ([0-9.]+)", line.strip())
            if m:
                committed.setdefault(int(m.group(1)), float(m.group(2)))
    # The first answer: what was committed before the probe started.
    first = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-c", QUERY, uri], capture_output=True, text=True)
    if first.returncode:
        errors.append("psql: " + first.stderr.strip()[:200])
        stop.set()
        return
    before.update(int(x) for x in first.stdout.split())
    before.add(0)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        while not stop.is_set():
            p.stdin.write(q)
            p.stdin.flush()
            time.sleep(OBSERVE_EVERY)
    finally:
        p.stdin.close()
        p.wait()
        reader.join()
    if p.returncode:
        errors.append("psql exited with %d" % p.returncode)


def watch(name, interval):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    n = after
    try:
        while not stop.is_set():
            conn.request("GET", "/api/events?after=%d&limit=500" % n, headers={"Cookie": cookie})
            r = conn.getresponse()
            body = r.read()
            t = time.time()
            if r.status != 200:
                raise RuntimeError("GET /api/events answered %d" % r.status)
            d = json.loads(body)
            for e in d["events"]:
                if e["kind"] == "job.output" and e["subject"] == job:
                    seen[name].setdefault(e["id"], t)
            n = max(n, d["next_after"])
            if interval:
                stop.wait(interval)
    except Exception as e:       # reported, and the exit status says so
        errors.append("%s watcher: %s" % (name, e))
        stop.set()
    finally:
        conn.close()


threads = [threading.Thread(target=observe_pg if db.startswith("postgresql:") else observe_sqlite, args=(db,)),
           threading.Thread(target=watch, args=("tight", 0)),
           threading.Thread(target=watch, args=("page", PAGE_INTERVAL))]
for th in threads:
    th.start()
stop.wait(seconds)
end = time.time()
stop.set()
for th in threads:
    th.join()
if errors:
    sys.exit("watch-probe: " + "; ".join(errors))
sample = {i: t for i, t in committed.items() if i not in before and t < end - GRACE}
for name in ("tight", "page"):
    for i, t in sorted(sample.items()):
        if i in seen[name]:
            print("%s %.1f" % (name, 1000 * (seen[name][i] - t)))
    print("unseen %s %d" % (name, sum(1 for i in sample if i not in seen[name])))
print("observed %d" % len(sample))
