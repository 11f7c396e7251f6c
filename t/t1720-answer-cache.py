#!/usr/bin/env python3
"""The pool's answer cache (fcgi/cache.h) on the backend the suite runs:
SQLite, where a child reads the file's data version before each request,
or PostgreSQL, where it hears notifications. One child, and a keeping time
no check waits out (60 s), so only a change can end a kept answer:
  - polled reads are answered from memory: the child says how many when it
    ends (its log), and a kept board is the same bytes as a built one;
  - a change written by a program that is not anyon (the sqlite3 shell,
    psql), which bumps no count of this host, is seen by the very next
    request: a task retitled on the board, a job's row, the sessions
    deleted (the next request is a new session);
  - a change through anyon (a task created) is seen at once, and the
    board's 304 is kept and ends with its tag;
  - ANYON_READ_CACHE_MS=0 keeps nothing.
t1710 covers what only PostgreSQL has (other hosts, restarts)."""
import os, re, shutil, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until
from gitrepo import Git

t = TAP()
tmp = tempfile.mkdtemp(prefix="anyon-t1720-")
repo = Git(tmp).make_repo("kept")
ENV = {"ANYON_CLOUD": "0", "ANYON_READ_CACHE_MS": "60000", "ANYON_FCGI_CHILDREN": "1", "ANYON_HEARTBEAT_S": "600"}
COUNTS = re.compile(r"answer cache: (\d+) request\(s\) answered from it, (\d+) answer\(s\) kept")


def cache_counts(s):
    """(answered, kept) summed over the children's last words, or None."""
    found = COUNTS.findall(s.logs())
    return (sum(int(a) for a, _ in found), sum(int(k) for _, k in found)) if found else None


def titles(r):
    return [x["title"] for x in r.json["tasks"]] if r.status == 200 else r


with Stack(env=ENV) as s:
    c = s.client()
    r = c.session()
    t.ok(r.status == 200 and c.csrf, "a local session", r)
    r = c.post("/api/projects", {"source": "path", "path": repo})
    t.ok(r.status == 201, "a project by path", r)
    pid = r.json["project"]["id"] if r.status == 201 else 0
    ids = []
    for n in range(3):
        r = c.post("/api/projects/%d/tasks" % pid, {"title": "task %d" % n, "description": "d" * 50})
        ids.append(r.json["task"]["id"] if r.status == 201 else 0)
    t.ok(all(ids), "three tasks")
    board = "/api/projects/%d/tasks" % pid

    # ---- kept: the same bytes, and the board is cards ----
    first = c.get(board)
    again = [c.get(board) for _ in range(5)]
    t.ok(first.status == 200 and all(x.status == 200 and x.body == first.body
                                     and x.header("etag") == first.header("etag") for x in again),
         "the board read six times: the same bytes and tag", first)
    t.eq(first.json["project_id"], pid, "the board names its project once")
    t.eq([sorted(x) for x in first.json["tasks"]],
         [sorted(["id", "title", "status", "position", "description_bytes", "updated_at"])] * 3,
         "each card: id, title, status, position, description_bytes, updated_at (the task's own GET has the rest)")

    # ---- a change by a program that is not anyon: the very next request ----
    s.sql_write("UPDATE tasks SET title = 'renamed outside' WHERE id = %d" % ids[1])
    t.eq(titles(c.get(board)), ["task 0", "renamed outside", "task 2"],
         "a title changed by %s is on the very next board" % ("psql" if s.is_pg else "the sqlite3 shell"))
    t.eq(titles(c.get(board)), ["task 0", "renamed outside", "task 2"], "and stays")

    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["kept"]}})
    jid = r.json["job"]["id"] if r.status == 201 else 0
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % jid).json["job"]["state"] == "succeeded", timeout=30),
         "an echo job ends (seen through the cache)")
    before = c.get("/api/jobs/%d" % jid)
    s.sql_write("UPDATE jobs SET error = 'written outside' WHERE id = %d" % jid)
    r = c.get("/api/jobs/%d" % jid)
    t.ok(before.json["job"].get("error") != "written outside" and r.json["job"].get("error") == "written outside",
         "a job's row changed outside: the very next GET shows it", r)

    old = c.cookies.get("anyon_session")
    t.eq(c.get("/api/session").status, 200, "the session answers (kept)")
    s.sql_write("DELETE FROM sessions")
    r = c.get("/api/session")
    t.ok(r.status == 200 and r.header("set-cookie") and c.cookies.get("anyon_session") != old,
         "the sessions deleted outside: the very next GET is a new session, not the kept answer", r)
    c.session()

    # ---- a change through anyon; the 304 ----
    tag = c.get(board).header("etag")
    t.ok([c.get(board, headers={"If-None-Match": tag}).status for _ in range(3)] == [304] * 3,
         "the board's tag: 304, three times")
    r = c.post("/api/projects/%d/tasks" % pid, {"title": "task 3"})
    t.eq(r.status, 201, "a fourth task")
    r = c.get(board, headers={"If-None-Match": tag})
    t.ok(r.status == 200 and len(r.json["tasks"]) == 4 and r.header("etag") != tag,
         "after it the old tag gets the new board at once", r)

    s.stop()
    counts = cache_counts(s)
    t.ok(counts and counts[0] >= 8 and counts[1] >= 4,
         "the child answered from memory and kept answers (%r)" % (counts,), s.logs())

ENV["ANYON_READ_CACHE_MS"] = "0"
with Stack(env=ENV) as s:
    c = s.client()
    c.session()
    for _ in range(5):
        c.get("/api/session")
    s.stop()
    t.eq(cache_counts(s), None, "ANYON_READ_CACHE_MS=0: no child keeps anything (nor says so)")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
