#!/usr/bin/env python3
"""Tasks on a project's board and the change feed: create, list, edit,
delete, move (before, after, at the end, across columns, enough moves into
one spot to renumber a column), validation naming the field, the 64 KiB
description, another user's rows (404), one event per change in order,
paging the feed with `after` and `more`, concurrent moves from two
clients, retention of old events, a removed project taking its tasks; the
board's ETag (a 304 on If-None-Match while nothing changed, a new tag after
every kind of change, 404 for another's project whatever the header)."""
import os, random, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, Client, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

t = TAP()
STATUSES = ["todo", "inprogress", "inreview", "done", "cancelled"]


def field_error(r, field, status=400, code="invalid_field"):
    try:
        return r.status == status and r.json["error"]["code"] == code and r.json["error"].get("field") == field
    except (TypeError, KeyError):
        return False


def board(c, pid):
    """The project's tasks as the API lists them."""
    r = c.get("/api/projects/%d/tasks" % pid)
    assert r.status == 200, r
    return r.json["tasks"]


def column(c, pid, status):
    return [x["id"] for x in board(c, pid) if x["status"] == status]


def positions_distinct(tasks):
    seen = set()
    for x in tasks:
        k = (x["status"], x["position"])
        if k in seen:
            return False
        seen.add(k)
    return True


def in_board_order(tasks):
    keys = [(STATUSES.index(x["status"]), x["position"]) for x in tasks]
    return keys == sorted(keys) and len(set(keys)) == len(keys)


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["board", "other"])
    gh.add_user("bob", "Bob B", "bob@example.com", repos=["bobs"])
    with Stack(env=stack_env(gh, extra={"ANYON_PURGE_INTERVAL_S": "1"})) as s:
        a, b = s.client(), s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in")
        t.ok(sign_in(b, gh, "bob").json["status"] == "complete", "bob signed in")
        pid = a.post("/api/projects/from-github", {"full_name": "alice/board"}).json["project"]["id"]
        pid2 = a.post("/api/projects/from-github", {"full_name": "alice/other"}).json["project"]["id"]
        bpid = b.post("/api/projects/from-github", {"full_name": "bob/bobs"}).json["project"]["id"]
        # alice's events, in order: (kind, subject); her two imports first
        expected = [("project.added", pid), ("project.added", pid2)]

        # ---- create ----
        r = a.post("/api/projects/%d/tasks" % pid, {"title": "  First task \t"})
        ok = r.status == 201 and r.json["task"]["title"] == "First task" and r.json["task"]["status"] == "todo" \
            and r.json["task"]["description"] == "" and r.json["task"]["project_id"] == pid
        t.ok(ok, "create: 201, title trimmed, status todo, empty description", r)
        t1 = r.json["task"]["id"]
        expected.append(("task.created", t1))
        ids = [t1]
        for i in (2, 3, 4):
            r = a.post("/api/projects/%d/tasks" % pid, {"title": "Task %d" % i, "description": "about %d" % i})
            t.eq(r.status, 201, "create task %d" % i)
            ids.append(r.json["task"]["id"])
            expected.append(("task.created", ids[-1]))
        t.ok(all(x["position"] > 0 for x in board(a, pid)), "positions are positive")
        r = a.post("/api/projects/%d/tasks" % pid, {"title": "Shipped", "status": "done", "description": "d"})
        t.ok(r.status == 201 and r.json["task"]["status"] == "done", "create straight into done", r)
        done1 = r.json["task"]["id"]
        expected.append(("task.created", done1))
        t1, t2, t3, t4 = ids
        t.eq(column(a, pid, "todo"), [t1, t2, t3, t4], "new tasks are appended at the end of their column")

        # validation, each naming its field
        cases = [
            ({}, "title", "no title"),
            ({"title": ""}, "title", "empty title"),
            ({"title": "   \t "}, "title", "blank title"),
            ({"title": 42}, "title", "title not a string"),
            ({"title": "x" * 201}, "title", "201 characters"),
            ({"title": "a\x01b"}, "title", "a C0 control character"),
            ({"title": "a\x7fb"}, "title", "DEL"),
            ({"title": "a\u0085b"}, "title", "a C1 control character"),
            ({"title": "a\u0000b"}, "title", "NUL in the title"),
            ({"title": "ok", "description": 5}, "description", "description not a string"),
            ({"title": "ok", "description": "x" * 65537}, "description", "description of 64 KiB + 1 byte"),
            ({"title": "ok", "description": "a\u0000b"}, "description", "NUL in the description"),
            ({"title": "ok", "status": "doing"}, "status", "unknown status"),
            ({"title": "ok", "status": "todo\u0000x"}, "status", "status with a NUL"),
            ({"title": "ok", "status": 3}, "status", "status not a string"),
        ]
        for body, field, what in cases:
            r = a.post("/api/projects/%d/tasks" % pid, body)
            t.ok(field_error(r, field), "create refused (%s): 400 invalid_field, field %s" % (what, field), r)
        r = a.post("/api/projects/%d/tasks" % pid, {"title": "é" * 200, "description": "ü" * 32768})
        t.ok(r.status == 201 and r.json["task"]["title"] == "é" * 200 and r.json["task"]["description"] == "ü" * 32768
             and r.json["task"]["description_bytes"] == 65536,
             "200 characters of title (400 bytes) and 64 KiB of description are kept exactly", r)
        big = r.json["task"]["id"]
        expected.append(("task.created", big))
        r = a.post("/api/projects/999999/tasks", {"title": "x"})
        t.ok(r.status == 404 and r.error_code() == "not_found", "a task for an unknown project: 404", r)
        r = a.post("/api/projects/%d/tasks" % pid, "not json")
        t.eq(r.status, 400, "a body that is not JSON: 400")

        # ---- list and read ----
        tasks = board(a, pid)
        t.eq([x["id"] for x in tasks], [t1, t2, t3, t4, big, done1], "the list: column by column, by position")
        t.ok(all("description" not in x for x in tasks) and [x["description_bytes"] for x in tasks] == [0, 7, 7, 7, 65536, 1],
             "list items leave the description out and give its length in bytes", tasks)
        r = a.get("/api/projects/%d/tasks" % pid)
        t.ok(r.json["project_id"] == pid and all(set(x) == {"id", "title", "status", "position", "description_bytes",
                                                              "updated_at"} for x in r.json["tasks"]),
             "the list names its project once; each item is a card (no project_id, no created_at)", r)
        r = a.get("/api/tasks/%d" % t2)
        t.ok(r.status == 200 and r.json["task"]["description"] == "about 2" and r.json["task"]["title"] == "Task 2",
             "GET a task: with its description", r)
        t.eq(a.get("/api/tasks/999999").status, 404, "GET an unknown task: 404")
        t.eq(a.get("/api/projects/%d/tasks" % pid2).json["tasks"], [], "another project's board is empty")

        # ---- edit ----
        r = a.patch("/api/tasks/%d" % t2, {"title": " Renamed "})
        t.ok(r.status == 200 and r.json["task"]["title"] == "Renamed" and r.json["task"]["description"] == "about 2",
             "PATCH title: trimmed, description kept", r)
        expected.append(("task.updated", t2))
        r = a.patch("/api/tasks/%d" % t2, {"description": ""})
        t.ok(r.status == 200 and r.json["task"]["description"] == "" and r.json["task"]["title"] == "Renamed",
             "PATCH description to empty, title kept", r)
        expected.append(("task.updated", t2))
        r = a.patch("/api/tasks/%d" % t3, {"title": "Both", "description": "y" * 65536})
        t.ok(r.status == 200 and r.json["task"]["description_bytes"] == 65536, "PATCH both; 64 KiB description", r)
        expected.append(("task.updated", t3))
        for body, field, what in [({}, "title", "nothing to change"), ({"title": ""}, "title", "empty title"),
                                  ({"title": None, "description": "z" * 65537}, "description", "65537 bytes"),
                                  ({"description": ["x"]}, "description", "a list")]:
            r = a.patch("/api/tasks/%d" % t3, body)
            t.ok(field_error(r, field), "PATCH refused (%s), field %s" % (what, field), r)
        t.eq(a.get("/api/tasks/%d" % t3).json["task"]["title"], "Both", "a refused PATCH changed nothing")
        t.eq(a.patch("/api/tasks/999999", {"title": "x"}).status, 404, "PATCH an unknown task: 404")
        r = a.request("PUT", "/api/tasks/%d" % t3, {"title": "x"})
        t.ok(r.status == 405 and set(r.header("Allow").split(", ")) == {"GET", "PATCH", "DELETE"},
             "PUT on a task: 405, Allow lists GET, PATCH, DELETE", r)

        # ---- moves ----
        def move(c, tid, body):
            return c.post("/api/tasks/%d/move" % tid, body)

        r = move(a, t3, {"status": "todo", "before": t1})
        t.ok(r.status == 200 and r.json["task"]["status"] == "todo", "move before the first", r)
        expected.append(("task.moved", t3))
        t.eq(column(a, pid, "todo"), [t3, t1, t2, t4, big], "order after moving before the first")
        r = move(a, t1, {"status": "todo", "after": t4})
        expected.append(("task.moved", t1))
        t.eq(column(a, pid, "todo"), [t3, t2, t4, t1, big], "move after a task in the middle")
        r = move(a, t2, {"status": "inprogress"})
        t.ok(r.status == 200 and r.json["task"]["status"] == "inprogress", "move to another column (its end)", r)
        expected.append(("task.moved", t2))
        r = move(a, t4, {"status": "inprogress", "before": t2})
        expected.append(("task.moved", t4))
        t.eq(column(a, pid, "inprogress"), [t4, t2], "across columns, before a task there")
        r = move(a, big, {"status": "inprogress", "after": t2})
        expected.append(("task.moved", big))
        t.eq(column(a, pid, "inprogress"), [t4, t2, big], "across columns, after the last task there")
        r = move(a, t3, {"status": "todo"})
        expected.append(("task.moved", t3))
        t.eq(column(a, pid, "todo"), [t1, t3], "no anchor: to the end of the same column")
        r = move(a, t1, {"status": "todo", "after": t3})
        expected.append(("task.moved", t1))
        t.eq(column(a, pid, "todo"), [t3, t1], "after the last")
        r = move(a, t1, {"status": "todo", "before": t3})
        expected.append(("task.moved", t1))
        t.eq(column(a, pid, "todo"), [t1, t3], "before the first again")

        # a task in another column, project or user, or unknown: 400 naming the field
        bt = b.post("/api/projects/%d/tasks" % bpid, {"title": "bob's"}).json["task"]["id"]
        ot = a.post("/api/projects/%d/tasks" % pid2, {"title": "elsewhere"}).json["task"]["id"]
        expected.append(("task.created", ot))
        for body, field, what in [
                ({"status": "todo", "before": t2}, "before", "a task of another column"),
                ({"status": "todo", "after": ot}, "after", "a task of another project"),
                ({"status": "todo", "before": bt}, "before", "another user's task"),
                ({"status": "todo", "after": 999999}, "after", "an unknown task"),
                ({"status": "todo", "before": t3}, "before", "the task itself"),
                ({"status": "todo", "before": t1, "after": t1}, "after", "both before and after"),
                ({"status": "todo", "before": "1"}, "before", "before not an integer"),
                ({"status": "todo", "after": 0}, "after", "after 0"),
                ({"status": "later"}, "status", "an unknown status"),
                ({}, "status", "no status"),
                ({"status": ["todo"]}, "status", "status not a string")]:
            r = move(a, t3, body)
            t.ok(field_error(r, field), "move refused (%s): 400, field %s" % (what, field), r)
        t.eq(column(a, pid, "todo"), [t1, t3], "refused moves changed nothing")
        t.eq(move(a, 999999, {"status": "todo"}).status, 404, "moving an unknown task: 404")

        # many moves into one spot: gaps run out, the column is renumbered
        col = []
        for i in range(4):
            r = a.post("/api/projects/%d/tasks" % pid, {"title": "R%d" % i, "status": "inreview"})
            col.append(r.json["task"]["id"])
            expected.append(("task.created", col[-1]))
        statuses = set()
        for i in range(30):            # the last one to the front, 30 times
            tid = col.pop()
            r = move(a, tid, {"status": "inreview", "before": col[0]})
            statuses.add(r.status)
            col.insert(0, tid)
            expected.append(("task.moved", tid))
        t.eq(statuses, {200}, "30 moves to the front of a column all succeed")
        t.eq(column(a, pid, "inreview"), col, "order exact after 30 moves to the front (a renumber on the way)")
        # Keys start 2^20 apart and a move to the front halves the first
        # one: the 21st move found no room, the column was renumbered
        # (2^20, 2*2^20, ...) and the nine moves after it halved again.
        t.eq([x["position"] for x in board(a, pid) if x["status"] == "inreview"], [2 ** 10, 2 ** 11, 2 ** 12, 2 ** 13],
             "the positions show the renumber: four keys under 2^20 after 30 halvings")
        statuses = set()
        for i in range(30):            # the last one just after the first, 30 times
            tid = col.pop()
            r = move(a, tid, {"status": "inreview", "after": col[0]})
            statuses.add(r.status)
            col.insert(1, tid)
            expected.append(("task.moved", tid))
        t.eq(statuses, {200}, "30 moves into the same middle spot all succeed")
        t.eq(column(a, pid, "inreview"), col, "order exact after 30 moves into the middle")
        tasks = board(a, pid)
        t.ok(in_board_order(tasks) and positions_distinct(tasks), "positions strictly increase in every column", tasks)

        # ---- another user's rows: 404, never 403 ----
        for what, r in [("list alice's board", b.get("/api/projects/%d/tasks" % pid)),
                        ("create on alice's board", b.post("/api/projects/%d/tasks" % pid, {"title": "x"})),
                        ("read alice's task", b.get("/api/tasks/%d" % t1)),
                        ("edit alice's task", b.patch("/api/tasks/%d" % t1, {"title": "x"})),
                        ("move alice's task", move(b, t1, {"status": "done"})),
                        ("delete alice's task", b.delete("/api/tasks/%d" % t1))]:
            t.ok(r.status == 404 and r.error_code() == "not_found", "bob cannot %s: 404" % what, r)
        t.eq(a.get("/api/tasks/%d" % t1).json["task"]["title"], "First task", "alice's task is untouched")
        t.eq(b.get("/api/projects/%d/tasks" % bpid).json["tasks"][0]["id"], bt, "bob sees his own board")

        # ---- delete ----
        r = a.delete("/api/tasks/%d" % t4)
        t.ok(r.status == 200 and r.json == {"deleted": t4}, "DELETE: 200 {deleted: id}", r)
        expected.append(("task.deleted", t4))
        t.eq(a.get("/api/tasks/%d" % t4).status, 404, "a deleted task is gone")
        t.eq(a.delete("/api/tasks/%d" % t4).status, 404, "deleting it again: 404")
        t.ok(t4 not in [x["id"] for x in board(a, pid)], "and off the board")

        # ---- the change feed ----
        r = a.get("/api/events")
        t.ok(r.status == 200 and [(e["kind"], e["subject"]) for e in r.json["events"]] == expected[:100]
             and r.json["more"] is (len(expected) > 100), "GET /api/events: from the first, at most 100", r)
        evs, after, pages = [], 0, 0
        while pages < 100:
            r = a.get("/api/events?after=%d&limit=7" % after)
            if r.status != 200:
                break
            pages += 1
            evs += r.json["events"]
            if r.json["more"] and len(r.json["events"]) != 7:
                break
            after = r.json["next_after"]
            if not r.json["more"]:
                break
        t.eq([(e["kind"], e["subject"]) for e in evs], expected, "one event per change, in order, and nothing else")
        t.ok(len(evs) > 50 and pages == (len(evs) + 6) // 7,
             "paging by 7: full pages with more, then a last one (%d events, %d pages)" % (len(evs), pages))
        t.ok(all(evs[i]["id"] < evs[i + 1]["id"] for i in range(len(evs) - 1)), "event ids increase")
        t.ok(all(e["project_id"] == (e["subject"] if e["kind"].startswith("project.") else
                                     pid2 if e["subject"] == ot else pid) for e in evs),
             "each event names its project")
        t.ok(after == evs[-1]["id"], "next_after is the last event's id")
        r = a.get("/api/events?after=%d" % after)
        t.ok(r.status == 200 and r.json == {"events": [], "next_after": after, "more": False},
             "nothing new: an empty page at once, next_after unchanged", r)
        r = b.get("/api/events")
        t.ok(r.status == 200 and [(e["kind"], e["subject"]) for e in r.json["events"]] ==
             [("project.added", bpid), ("task.created", bt)]
             and r.json["more"] is False, "bob's feed holds only his own events", r)
        r = b.get("/api/events?after=%d" % evs[0]["id"])
        t.ok(r.status == 200 and all(e["subject"] in (bt, bpid) for e in r.json["events"]),
             "bob never sees alice's events", r)
        for q, field in [("limit=0", "limit"), ("limit=501", "limit"), ("after=-1", "after"), ("after=x", "after")]:
            r = a.get("/api/events?" + q)
            t.ok(field_error(r, field, code="invalid_parameter"), "events?%s: 400 invalid_parameter, field %s" % (q, field), r)
        t.eq(Client(s.port).get("/api/events").status, 401, "the feed needs a signed-in user")

        # ---- concurrent moves from two clients ----
        a2 = Client(s.port)
        a2.cookies, a2.csrf = dict(a.cookies), a.csrf
        before_ids = sorted(x["id"] for x in board(a, pid))
        results = []

        def mover(c, seed):
            rnd = random.Random(seed)
            for _ in range(40):
                tasks = board(c, pid)
                tid = rnd.choice(tasks)["id"]
                st = rnd.choice(STATUSES[:3])
                others = [x["id"] for x in tasks if x["status"] == st and x["id"] != tid]
                body = {"status": st}
                if others and rnd.random() < 0.7:
                    body[rnd.choice(["before", "after"])] = rnd.choice(others)
                r = move(c, tid, body)
                # an anchor another client just moved away is a fair 400
                results.append(r.status if r.status != 400 else (400, r.json["error"].get("field")))

        th = [threading.Thread(target=mover, args=(c, seed)) for c, seed in ((a, 1), (a2, 2))]
        for x in th:
            x.start()
        for x in th:
            x.join()
        tasks = board(a, pid)
        t.ok(all(x == 200 or x in ((400, "before"), (400, "after")) for x in results) and results.count(200) > 40,
             "80 concurrent moves: each 200 or a 400 for an anchor that moved (%d ok)" % results.count(200),
             sorted(set(map(str, results))))
        t.eq(sorted(x["id"] for x in tasks), before_ids, "every task is still there, once")
        t.ok(in_board_order(tasks) and positions_distinct(tasks), "every position is distinct within its column")
        rows = s.sql("SELECT status, count(*), count(DISTINCT position) FROM tasks WHERE project_id = %d "
                     "GROUP BY status" % pid)
        t.ok(all(r[1] == r[2] for r in rows), "the database agrees: distinct positions per column", rows)
        n_moves = results.count(200)
        r = a.get("/api/events?after=%d&limit=500" % after)
        t.ok(r.status == 200 and len(r.json["events"]) == n_moves and all(e["kind"] == "task.moved" for e in r.json["events"]),
             "one task.moved event per successful concurrent move", r)

        # ---- the board's ETag: a 304 while nothing changed ----
        def tagged(c, p, inm=None):
            return c.get("/api/projects/%d/tasks" % p, headers={"If-None-Match": inm} if inm else None)

        def etag_of(p):
            r = tagged(a, p)
            assert r.status == 200, r
            return r.header("etag")

        r = tagged(a, pid)
        tag0 = r.header("etag")
        t.ok(r.status == 200 and tag0 and tag0.startswith('"') and tag0.endswith('"')
             and r.header("cache-control") == "no-cache",
             "the board: a strong ETag and Cache-Control: no-cache", (r, r.headers))
        t.eq(etag_of(pid), tag0, "the same ETag while nothing changes")
        r = tagged(a, pid, tag0)
        t.ok(r.status == 304 and r.body == "" and r.header("etag") == tag0,
             "If-None-Match with it: 304, no body, the same ETag", (r, r.headers))
        for inm, what in [('"x", ' + tag0, "in a list"), ("W/" + tag0, "weak (W/, as a compressing proxy sends it)"),
                          ("*", "*")]:
            t.eq(tagged(a, pid, inm).status, 304, "If-None-Match %s: 304" % what)
        for inm, what in [('"b1-e0"', "another tag"), (tag0[1:-1], "unquoted"), (tag0[:-1], "unterminated")]:
            r = tagged(a, pid, inm)
            t.ok(r.status == 200 and len(r.json["tasks"]) > 0, "If-None-Match %s: 200 with the board" % what, r)
        r = b.get("/api/projects/%d/tasks" % pid, headers={"If-None-Match": tag0})
        t.ok(r.status == 404 and r.header("etag") is None, "bob with alice's tag: 404, never a 304", (r, r.headers))
        r = b.get("/api/projects/%d/tasks" % pid, headers={"If-None-Match": "*"})
        t.eq(r.status, 404, "bob with If-None-Match *: 404")
        t.eq(a.get("/api/projects/999999/tasks", headers={"If-None-Match": "*"}).status, 404,
             "an unknown project with If-None-Match *: 404")
        t.ok(a.get("/api/tasks/%d" % t3).header("cache-control") == "no-store", "other answers stay no-store")

        seen = {tag0}

        def changed(what, fn):
            before = etag_of(pid)
            fn()
            after = etag_of(pid)
            t.ok(after != before and after not in seen, "a new ETag after %s" % what, (before, after))
            seen.add(after)
            t.eq(tagged(a, pid, before).status, 200, "... and the old one gets the board (200) after %s" % what)
            t.eq(tagged(a, pid, after).status, 304, "... the new one a 304 after %s" % what)
            return after

        def ok201(r):
            assert r.status in (200, 201), r
            return r.json

        e1 = ok201(a.post("/api/projects/%d/tasks" % pid, {"title": "E1", "status": "cancelled"}))["task"]["id"]
        holder = {}
        changed("a create", lambda: holder.update(
            id=ok201(a.post("/api/projects/%d/tasks" % pid, {"title": "E2", "status": "cancelled"}))["task"]["id"]))
        e2 = holder["id"]
        changed("an edit of the title", lambda: ok201(a.patch("/api/tasks/%d" % e2, {"title": "E2b"})))
        # The same second, the same length: only the version tells it.
        changed("a second edit, same length", lambda: ok201(a.patch("/api/tasks/%d" % e2, {"title": "E2c"})))
        changed("an edit of the description", lambda: ok201(a.patch("/api/tasks/%d" % e2, {"description": "d"})))
        changed("a move within a column", lambda: ok201(move(a, e2, {"status": "cancelled", "before": e1})))
        changed("a move across columns", lambda: ok201(move(a, e2, {"status": "inprogress"})))
        changed("a move back", lambda: ok201(move(a, e2, {"status": "cancelled", "after": e1})))

        def renumbering():
            # the last to the front until the gaps run out: the moves that
            # renumber the column each change the tag too
            tags = []
            for _ in range(25):
                last = column(a, pid, "cancelled")[-1]
                before = etag_of(pid)
                ok201(move(a, last, {"status": "cancelled", "before": column(a, pid, "cancelled")[0]}))
                after = etag_of(pid)
                assert after != before and after not in seen and after not in tags, (before, after)
                tags.append(after)
            seen.update(tags[:-1])     # changed() checks the last one
        changed("25 moves to the front (a renumber among them)", renumbering)
        t.ok(max(x["position"] for x in board(a, pid) if x["status"] == "cancelled") < 2 ** 20,
             "... the column was renumbered on the way")
        changed("a delete", lambda: ok201(a.delete("/api/tasks/%d" % e2)))
        changed("a delete of another", lambda: ok201(a.delete("/api/tasks/%d" % e1)))
        tag_a = etag_of(pid)
        r = a.post("/api/projects/%d/tasks" % pid2, {"title": "elsewhere"})
        t.eq(etag_of(pid), tag_a, "a change on another project leaves the tag alone")
        ok201(a.delete("/api/tasks/%d" % r.json["task"]["id"]))
        bt = b.post("/api/projects/%d/tasks" % bpid, {"title": "bob's"}).json["task"]["id"]
        b.delete("/api/tasks/%d" % bt)
        t.eq(etag_of(pid), tag_a, "another user's changes leave it alone")
        r = a.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"]}})
        t.ok(r.status == 201 and wait_until(lambda: a.get("/api/jobs/%d" % r.json["job"]["id"]).json["job"]["state"]
                                            == "succeeded", timeout=20), "a job ran (events of other kinds)", r)
        t.eq(etag_of(pid), tag_a, "... they leave it alone too")
        # Past the events walked for the version (the user's newest 256),
        # the tag is the user's newest event: still a 304 while it holds.
        s.sql_write(s.pick(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
            "INSERT INTO events (user_id, kind, subject, created_at) "
            "SELECT user_id, 'test.filler', 0, %d FROM n, (SELECT user_id FROM projects WHERE id = %d)"
            % (int(time.time()), pid),
            "INSERT INTO events (user_id, kind, subject, created_at) "
            "SELECT user_id, 'test.filler', 0, %d FROM generate_series(1, 300) i, "
            "(SELECT user_id FROM projects WHERE id = %d) u" % (int(time.time()), pid)))
        tag_w = etag_of(pid)
        t.ok(tag_w != tag_a and tag_w not in seen, "300 newer events of other kinds: another tag", (tag_a, tag_w))
        t.eq(tagged(a, pid, tag_w).status, 304, "... which gives a 304 while nothing changes")
        seen.add(tag_w)
        some = board(a, pid)[0]["id"]
        changed("a move behind them", lambda: ok201(move(a, some, {"status": "done"})))

        # ---- a project of too many tasks is refused at creation ----
        now = int(time.time())
        s.sql_write("INSERT INTO tasks (user_id, project_id, title, status, position, created_at, updated_at) "
                    "SELECT user_id, project_id, 'filler', 'cancelled', position + 1000000000, %d, %d FROM tasks "
                    "WHERE id = %d" % (now, now, ot))
        s.sql_write(s.pick(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4998) "
            "INSERT INTO tasks (user_id, project_id, title, status, position, created_at, updated_at) "
            "SELECT user_id, %d, 'f', 'done', i, %d, %d FROM n, (SELECT user_id FROM tasks WHERE id = %d)" % (pid2, now, now, ot),
            "INSERT INTO tasks (user_id, project_id, title, status, position, created_at, updated_at) "
            "SELECT user_id, %d, 'f', 'done', i, %d, %d FROM generate_series(1, 4998) i, "
            "(SELECT user_id FROM tasks WHERE id = %d) u" % (pid2, now, now, ot)))
        t.eq(len(board(a, pid2)), 5000, "a board of 5000 tasks lists whole")
        r = a.post("/api/projects/%d/tasks" % pid2, {"title": "one too many"})
        t.ok(r.status == 409 and r.error_code() == "too_many_tasks", "the 5001st task: 409 too_many_tasks", r)

        # ---- retention ----
        s.sql_write("UPDATE events SET created_at = %d WHERE subject = %d" % (now - 8 * 86400, t1))
        t.ok(wait_until(lambda: s.sql("SELECT count(*) FROM events WHERE subject = %d" % t1) == [["0"]], timeout=15),
             "the worker purges events older than ANYON_RETAIN_EVENTS_S (7 days)")
        t.ok(int(s.sql("SELECT count(*) FROM events WHERE subject = %d" % t3)[0][0]) > 0, "newer events stay")
        r = a.get("/api/events?after=0&limit=500")
        t.ok(r.status == 200 and all(e["subject"] != t1 for e in r.json["events"]) and r.json["events"][0]["id"] > evs[0]["id"],
             "the feed starts after what was purged", r)

        # ---- the board's ETag once retention took all its events ----
        tag_r = etag_of(pid)
        # Retention goes by age, oldest first: all of alice's events age.
        s.sql_write("UPDATE events SET created_at = %d WHERE user_id = (SELECT user_id FROM projects WHERE id = %d)"
                    % (now - 8 * 86400, pid))
        t.ok(wait_until(lambda: s.sql("SELECT count(*) FROM events WHERE user_id = (SELECT user_id FROM projects "
                                      "WHERE id = %d)" % pid) == [["0"]], timeout=15),
             "the user's events are purged")
        tag_p = etag_of(pid)
        t.ok(tag_p != tag_r and tag_p not in seen, "its tag changes (the board's shape)", (tag_r, tag_p))
        t.eq(tagged(a, pid, tag_p).status, 304, "... and gives a 304")
        seen.add(tag_p)
        first = board(a, pid)[0]["id"]
        changed("a move after retention", lambda: ok201(move(a, first, {"status": "cancelled"})))

        # ---- removing a project takes its tasks (the foreign key) ----
        s.sql_write(s.pick("PRAGMA foreign_keys = ON; ", "") + "DELETE FROM projects WHERE id = %d" % pid2)
        t.eq(s.sql("SELECT count(*) FROM tasks WHERE project_id = %d" % pid2), [["0"]],
             "a removed project's tasks are gone with it")
        t.eq(a.get("/api/tasks/%d" % ot).status, 404, "its task answers 404")

# Local mode: the same API for the local user (projects come from GitHub
# import only, so the fixture writes one).
with Stack() as s:
    c = s.client()
    c.session()
    s.sql_write("INSERT INTO projects (user_id, name, clone_url, default_branch, created_at) "
                "SELECT id, 'local-board', '', 'main', 0 FROM users WHERE is_local = 1")
    lp = int(s.sql("SELECT id FROM projects WHERE name = 'local-board'")[0][0])
    x = c.post("/api/projects/%d/tasks" % lp, {"title": "one"})
    y = c.post("/api/projects/%d/tasks" % lp, {"title": "two", "status": "todo"})
    t.ok(x.status == 201 and y.status == 201, "local mode: tasks created", (x, y))
    x, y = x.json["task"]["id"], y.json["task"]["id"]
    r = c.post("/api/tasks/%d/move" % x, {"status": "todo", "after": y})
    t.ok(r.status == 200 and column(c, lp, "todo") == [y, x], "local mode: a move", r)
    r = c.get("/api/events")
    t.ok(r.status == 200 and [(e["kind"], e["subject"], e["project_id"]) for e in r.json["events"]] ==
         [("task.created", x, lp), ("task.created", y, lp), ("task.moved", x, lp)] and not r.json["more"],
         "local mode: the feed holds the three changes", r)

    # Jobs report their changes on the same feed.
    after = r.json["next_after"]
    j = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["a", "b"]}}).json["job"]["id"]
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % j).json["job"]["state"] == "succeeded", timeout=20),
         "an echo job runs")
    evs = [(e["kind"], e["subject"]) for e in c.get("/api/events?after=%d" % after).json["events"]]
    kinds = [k for k, subj in evs if subj == j]
    t.ok(kinds[:2] == ["job.created", "job.started"] and kinds[-1] == "job.finished" and
         "job.output" in kinds and set(kinds[2:-1]) == {"job.output"},
         "a job's events: created, started, output, finished, in order", evs)
    after = c.get("/api/events?after=%d&limit=500" % after).json["next_after"]
    j = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"] * 50, "delay_ms": 200}}).json["job"]["id"]
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % j).json["job"]["state"] == "running", timeout=20),
         "a slow job runs")
    t.eq(c.post("/api/jobs/%d/cancel" % j).status, 202, "cancel it")
    t.ok(wait_until(lambda: c.get("/api/jobs/%d" % j).json["job"]["state"] == "cancelled", timeout=20),
         "it is cancelled")
    kinds = [e["kind"] for e in c.get("/api/events?after=%d&limit=500" % after).json["events"] if e["subject"] == j]
    t.ok("job.cancel_requested" in kinds and kinds[-1] == "job.finished" and
         kinds.index("job.cancel_requested") < len(kinds) - 1, "a cancel: cancel_requested, then finished", kinds)

    # The vocabularies the web UI takes from the server.
    r = c.get("/api/meta")
    m = r.json or {}
    t.ok(r.status == 200 and m.get("mode") == "local", "GET /api/meta: 200, local mode", r)
    t.eq(m.get("task_statuses"), ["todo", "inprogress", "inreview", "done", "cancelled"], "meta: the statuses in board order")
    t.eq(m.get("executors"), [{"name": "claude", "label": "Claude Code", "credential": "claude_credential"},
                              {"name": "script", "label": "Shell script", "credential": None}],
         "meta: the executors a project may name (the executors table), with the credential each needs")
    t.eq(sorted((k["name"], k["needs_docker"], k["internal"]) for k in m.get("job_kinds", [])),
         [("attempt", True, True), ("claude_login", True, True), ("container", True, False), ("echo", False, False), ("pull_request", True, True)],
         "meta: the job kinds, what they need, which ones only anyon makes")
    sk = {k["kind"]: k["settable"] for k in m.get("secret_kinds", [])}
    t.ok(sk.get("anthropic_api_key") is True and sk.get("github_pat") is True and sk.get("github_token") is False
         and sk.get("claude_credential") is True, "meta: the secret kinds, which ones a user stores by hand", sk)

t.done()
