#!/usr/bin/env python3
"""Attempts over HTTP (fcgi/api_attempts.c, services/attempts.c) on a real
stack whose worker cannot reach Docker, so attempt jobs stay queued: start
with the defaults and with each field, field errors naming the field, the
missing Claude credential (409 credential_missing until one is stored),
the queued job of kind attempt with args {attempt, run}, the task moving
to inprogress with its events, follow-up busy while queued, stop of a
queued attempt (stopped at once, the task back to todo), list and read,
the stored diff, a pull request queued, another user's rows 404
everywhere, POST /api/jobs refusing the internal kinds, a deleted task
taking its attempts. Then t/helper/attempt-rules drives the worker's
calls (run started/finished) on the same database: the state and task
rules, on either backend."""
import json, os, re, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

t = TAP()
RULES = os.path.join(BUILDDIR, "t", "helper", "attempt-rules")


def field_error(r, field, status=400, code="invalid_field"):
    try:
        return r.status == status and r.json["error"]["code"] == code and r.json["error"].get("field") == field
    except (TypeError, KeyError):
        return False


def events_since(c, after):
    r = c.get("/api/events?after=%d&limit=500" % after)
    assert r.status == 200, r
    return [(e["kind"], e["subject"]) for e in r.json["events"]]


def last_id(c):
    after = 0
    while True:
        r = c.get("/api/events?after=%d&limit=500" % after).json
        after = r["next_after"]
        if not r["more"]:
            return after


env = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["board"])
    gh.add_user("bob", "Bob B", "bob@example.com", repos=["bobs"])
    with Stack(env=stack_env(gh, extra=env)) as s:
        a, b = s.client(), s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in")
        t.ok(sign_in(b, gh, "bob").json["status"] == "complete", "bob signed in")
        pid = a.post("/api/projects/from-github", {"full_name": "alice/board"}).json["project"]["id"]
        proj = a.get("/api/projects/%d" % pid).json["project"]
        t.ok(proj["default_executor"] == "claude" and proj["base_branch"], "an imported project runs claude by default", proj)
        task = a.post("/api/projects/%d/tasks" % pid, {"title": "Fix the bug", "description": "It crashes."}).json["task"]
        tid = task["id"]

        # ---- the credential ----
        r = a.post("/api/tasks/%d/attempts" % tid, {})
        t.ok(field_error(r, "executor", 409, "credential_missing"),
             "claude without a stored claude_credential: 409 credential_missing, field executor", r)
        t.eq(a.get("/api/tasks/%d" % tid).json["task"]["status"], "todo", "the task did not move")
        t.eq(s.sql("SELECT count(*) FROM attempts"), [["0"]], "no attempt was stored")
        r = a.request("PUT", "/api/secrets/claude_credential", {"value": "sk-ant-oat01-testtoken"})
        t.ok(r.status == 200 and r.json["secret"]["kind"] == "claude_credential", "PUT /api/secrets/claude_credential", r)

        # ---- create with the defaults ----
        after = last_id(a)
        r = a.post("/api/tasks/%d/attempts" % tid, {})
        t.eq(r.status, 201, "create with the defaults: 201")
        at = r.json["attempt"] if r.status == 201 else {}
        aid = at.get("id")
        t.ok(at.get("executor") == "claude" and at.get("base_branch") == proj["base_branch"]
             and re.fullmatch(r"anyon/[0-9a-f]{8}", at.get("branch", "")) and at.get("state") == "queued"
             and at.get("task_id") == tid and at.get("project_id") == pid and at.get("pr") is None
             and at.get("diff") is None and at.get("error") is None and at.get("session_id") is None,
             "the attempt: the project's executor and base branch, branch anyon/<8 hex>, queued", at)
        runs = at.get("runs", [])
        t.ok(len(runs) == 1 and runs[0]["seq"] == 1 and runs[0]["state"] == "queued"
             and runs[0]["prompt"] == "Fix the bug\n\nIt crashes." and runs[0]["job_id"],
             "one run: seq 1, queued, the prompt from the task's title and description, its job", runs)
        job = a.get("/api/jobs/%d" % runs[0]["job_id"]).json["job"] if runs else {}
        t.ok(job.get("kind") == "attempt" and job.get("args") == {"attempt": aid, "run": runs[0]["id"]}
             and job.get("state") == "queued", "the job: kind attempt, args {attempt, run}, queued", job)
        t.eq(a.get("/api/tasks/%d" % tid).json["task"]["status"], "inprogress", "the task moved to inprogress")
        evs = events_since(a, after)
        t.ok(("attempt.created", aid) in evs and ("task.updated", tid) in evs and ("job.created", job.get("id")) in evs,
             "events attempt.created, task.updated and job.created", evs)
        ev = [e for e in a.get("/api/events?after=%d" % after).json["events"] if e["kind"] == "attempt.created"]
        t.ok(ev and ev[0]["project_id"] == pid, "attempt.created names the project", ev)

        # ---- create with each field ----
        r = a.post("/api/tasks/%d/attempts" % tid, {"executor": "script"})
        t.ok(r.status == 201 and r.json["attempt"]["executor"] == "script", "executor given: script", r)
        a_script = r.json["attempt"]["id"]
        r = a.post("/api/tasks/%d/attempts" % tid, {"executor": "script", "prompt": "echo hi > x.txt"})
        t.ok(r.status == 201 and r.json["attempt"]["runs"][0]["prompt"] == "echo hi > x.txt", "prompt given", r)
        a_prompt = r.json["attempt"]["id"]
        r = a.post("/api/tasks/%d/attempts" % tid, {"executor": "script", "base_branch": "release/1.x"})
        t.ok(r.status == 201 and r.json["attempt"]["base_branch"] == "release/1.x", "base_branch given", r)
        a_base = r.json["attempt"]["id"]
        branches = s.sql("SELECT branch FROM attempts")
        t.eq(len(set(x[0] for x in branches)), 4, "each attempt has its own branch")

        # ---- field errors ----
        for body, field, what in [
                ({"executor": "nope"}, "executor", "an unknown executor"),
                ({"executor": 5}, "executor", "executor not a string"),
                ({"executor": "scr\u0000ipt"}, "executor", "executor with a NUL"),
                ({"executor": "script", "prompt": "x" * (64 * 1024 + 1)}, "prompt", "a prompt of 64 KiB + 1"),
                ({"executor": "script", "prompt": "   "}, "prompt", "a blank prompt"),
                ({"executor": "script", "prompt": "a\u0000b"}, "prompt", "a prompt with a NUL"),
                ({"executor": "script", "prompt": ["x"]}, "prompt", "a prompt not a string"),
                ({"executor": "script", "base_branch": "a..b"}, "base_branch", "a bad base branch"),
                ({"executor": "script", "base_branch": "-x"}, "base_branch", "a base branch starting with -"),
                ({"executor": "script", "base_branch": 3}, "base_branch", "base_branch not a string")]:
            r = a.post("/api/tasks/%d/attempts" % tid, body)
            t.ok(field_error(r, field), "create refused (%s): 400, field %s" % (what, field), r)
        r = a.post("/api/tasks/%d/attempts" % tid, {"executor": "script", "prompt": "é" * (32 * 1024)})
        t.ok(r.status == 201 and r.json["attempt"]["runs"][0]["prompt"] == "é" * (32 * 1024),
             "a prompt of exactly 64 KiB is kept exactly", r.status)
        a_big = r.json["attempt"]["id"]
        t.eq(a.post("/api/tasks/999999/attempts", {}).status, 404, "an unknown task: 404")

        # ---- list and read ----
        r = a.get("/api/tasks/%d/attempts" % tid)
        ids = [x["id"] for x in r.json["attempts"]] if r.status == 200 else []
        t.eq(ids, [a_big, a_base, a_prompt, a_script, aid], "the list: newest first")
        t.ok(r.status == 200 and all("prompt" not in run and run["prompt_bytes"] > 0
                                     for x in r.json["attempts"] for run in x["runs"]),
             "list items leave the prompts out (their sizes in)", r)
        r = a.get("/api/attempts/%d" % aid)
        t.ok(r.status == 200 and r.json["attempt"]["id"] == aid and r.json["attempt"]["runs"][0]["prompt"],
             "GET an attempt: with its runs' prompts", r)
        t.eq(a.get("/api/attempts/999999").status, 404, "an unknown attempt: 404")

        # ---- follow-up while queued ----
        r = a.post("/api/attempts/%d/follow-up" % a_script, {"prompt": "more"})
        t.ok(r.status == 409 and r.error_code() == "busy", "a follow-up while the run is queued: 409 busy", r)
        r = a.post("/api/attempts/%d/follow-up" % a_script, {})
        t.ok(field_error(r, "prompt"), "a follow-up without a prompt: 400, field prompt", r)

        # ---- stop ----
        after = last_id(a)
        r = a.post("/api/attempts/%d/stop" % a_script)
        t.ok(r.status == 200 and r.json["attempt"]["state"] == "stopped"
             and r.json["attempt"]["runs"][0]["state"] == "stopped" and r.json["attempt"]["runs"][0]["finished_at"],
             "stop a queued attempt: 200, stopped at once (and its run)", r)
        jid = r.json["attempt"]["runs"][0]["job_id"]
        t.eq(a.get("/api/jobs/%d" % jid).json["job"]["state"], "cancelled", "its job is cancelled")
        t.ok(("attempt.updated", a_script) in events_since(a, after), "event attempt.updated")
        r = a.post("/api/attempts/%d/stop" % a_script)
        t.ok(r.status == 409 and r.error_code() == "not_running", "stop it again: 409 not_running", r)
        t.eq(a.get("/api/tasks/%d" % tid).json["task"]["status"], "inprogress", "others still queued: inprogress")
        after = last_id(a)
        for x in (aid, a_prompt, a_base, a_big):
            t.eq(a.post("/api/attempts/%d/stop" % x).status, 200, "stop attempt %d" % x)
        t.eq(a.get("/api/tasks/%d" % tid).json["task"]["status"], "todo", "every attempt stopped: the task is back in todo")
        t.ok(("task.updated", tid) in events_since(a, after), "with the event task.updated")
        r = a.post("/api/attempts/%d/follow-up" % aid, {"prompt": "go on"})
        t.ok(r.status == 409 and r.error_code() == "no_session", "a claude follow-up without a session: 409 no_session", r)
        r = a.post("/api/attempts/%d/follow-up" % a_script, {"prompt": "echo again"})
        t.ok(r.status == 201 and r.json["attempt"]["state"] == "queued" and len(r.json["attempt"]["runs"]) == 2
             and r.json["attempt"]["runs"][1]["seq"] == 2 and r.json["attempt"]["runs"][1]["prompt"] == "echo again",
             "a script follow-up after a stop: 201, run 2 queued", r)
        t.eq(a.get("/api/tasks/%d" % tid).json["task"]["status"], "inprogress", "the task is inprogress again")
        # A run whose job ends without its worker reporting (here: cancelled
        # through the jobs API) is settled by the worker's heartbeat.
        jid2 = a.get("/api/attempts/%d" % a_script).json["attempt"]["runs"][1]["job_id"]
        t.eq(a.post("/api/jobs/%d/cancel" % jid2).status, 202, "its job cancelled through /api/jobs")
        t.ok(wait_until(lambda: a.get("/api/attempts/%d" % a_script).json["attempt"]["state"] == "stopped",
                        timeout=15), "the worker settles the attempt as stopped (its job ended unreported)")

        # ---- the stored diff ----
        r = a.get("/api/attempts/%d/diff" % aid)
        t.ok(r.status == 404 and r.error_code() == "no_diff", "no diff yet: 404 no_diff", r)
        diff = {"base": "a" * 40, "head": "b" * 40, "files": [{"path": "x.txt", "status": "added", "binary": False,
                "additions": 1, "deletions": 0, "truncated": False, "hunks": []}], "files_total": 1,
                "additions": 1, "deletions": 0, "truncated": False}
        s.sql_write("INSERT INTO attempt_diffs (attempt_id, diff, files, additions, deletions, created_at) "
                    "VALUES (%d, '%s', 1, 1, 0, 0)" % (a_prompt, json.dumps(diff)))
        r = a.get("/api/attempts/%d/diff" % a_prompt)
        t.ok(r.status == 200 and r.json == diff, "GET diff: the stored JSON", r)
        t.eq(a.get("/api/attempts/%d" % a_prompt).json["attempt"]["diff"], {"files": 1, "additions": 1, "deletions": 0},
             "the attempt carries the diff's totals")

        # ---- pull request ----
        r = a.post("/api/attempts/%d/pull-request" % a_prompt, {})
        t.ok(r.status == 409 and r.error_code() == "no_commits", "a pull request of an attempt without work: 409", r)
        s.sql_write("UPDATE attempts SET head_commit = '%s' WHERE id = %d" % ("b" * 40, a_prompt))
        r = a.post("/api/attempts/%d/pull-request" % a_prompt, {"title": "", "body": "x"})
        t.ok(field_error(r, "title"), "an empty title: 400, field title", r)
        after = last_id(a)
        r = a.post("/api/attempts/%d/pull-request" % a_prompt, {"title": "Fix it", "body": "Fixes the crash."})
        t.ok(r.status == 202 and r.json["attempt"]["pr"] == {"url": None, "number": None, "state": "pending",
                                                             "error": None},
             "pull-request: 202, the pr pending until the worker made it", r)
        rows = s.sql("SELECT pr_title, pr_body FROM attempts WHERE id = %d" % a_prompt)
        t.eq(rows, [["Fix it", "Fixes the crash."]], "title and body stored on the attempt")
        jobs = [j for j in a.get("/api/jobs").json["jobs"] if j["kind"] == "pull_request"]
        t.ok(len(jobs) == 1 and jobs[0]["args"] == {"attempt": a_prompt} and jobs[0]["state"] == "queued",
             "a pull_request job {attempt} is queued", jobs)
        t.ok(("attempt.updated", a_prompt) in events_since(a, after), "event attempt.updated")
        s.sql_write("UPDATE attempts SET pr_url = 'https://github.com/alice/board/pull/1', pr_number = 1, "
                    "pr_state = 'open' WHERE id = %d" % a_prompt)
        r = a.get("/api/attempts/%d" % a_prompt)
        t.eq(r.json["attempt"]["pr"], {"url": "https://github.com/alice/board/pull/1", "number": 1, "state": "open",
                                       "error": None}, "pr: url, number, state")
        r = a.post("/api/attempts/%d/pull-request" % a_prompt, {})
        t.ok(r.status == 409 and r.error_code() == "pr_exists", "a second pull request: 409 pr_exists", r)

        # ---- POST /api/jobs refuses the internal kinds ----
        for kind, args in (("attempt", {"attempt": aid, "run": 1}), ("pull_request", {"attempt": aid})):
            r = a.post("/api/jobs", {"kind": kind, "args": args})
            t.ok(field_error(r, "kind"), "POST /api/jobs of kind %s: 400, field kind" % kind, r)

        # ---- another user's rows: 404 ----
        for what, r in [("list alice's attempts", b.get("/api/tasks/%d/attempts" % tid)),
                        ("start one on alice's task", b.post("/api/tasks/%d/attempts" % tid, {"executor": "script"})),
                        ("read alice's attempt", b.get("/api/attempts/%d" % a_prompt)),
                        ("follow up alice's attempt", b.post("/api/attempts/%d/follow-up" % a_script, {"prompt": "x"})),
                        ("stop alice's attempt", b.post("/api/attempts/%d/stop" % aid)),
                        ("read alice's diff", b.get("/api/attempts/%d/diff" % a_prompt)),
                        ("ask a pull request of alice's attempt", b.post("/api/attempts/%d/pull-request" % a_prompt, {}))]:
            t.ok(r.status == 404 and r.error_code() == "not_found", "bob cannot %s: 404" % what, r)
        t.ok(all(e[0] not in ("attempt.created", "attempt.updated") for e in events_since(b, 0)),
             "bob's feed holds none of alice's attempts")

        # ---- the executors come from the table ----
        m = a.get("/api/meta").json
        t.eq([x["name"] for x in m["executors"]], ["claude", "script"], "meta: the executors table's rows")
        r = a.patch("/api/projects/%d" % pid, {"default_executor": "nope"})
        t.ok(field_error(r, "default_executor") and "claude, script" in r.json["error"]["message"],
             "a project's default executor must be a row", r)
        s.sql_write("INSERT INTO executors (name, label, command, parser, position) "
                    "VALUES ('echoer', 'Echo', '[\"echo\",\"{prompt}\"]', 'text', 3)")
        r = a.patch("/api/projects/%d" % pid, {"default_executor": "echoer"})
        t.ok(r.status == 200 and r.json["project"]["default_executor"] == "echoer",
             "a new row is an executor a project may name at once", r)
        r = a.post("/api/tasks/%d/attempts" % tid, {})
        t.ok(r.status == 201 and r.json["attempt"]["executor"] == "echoer", "and the default of a new attempt", r)
        t.eq([x["name"] for x in a.get("/api/meta").json["executors"]], ["claude", "script", "echoer"],
             "meta lists it")

        # ---- deleting the task deletes its attempts ----
        n_before = int(s.sql("SELECT count(*) FROM attempts WHERE task_id = %d" % tid)[0][0])
        t.ok(n_before == 6, "the task has six attempts", n_before)
        t.eq(a.delete("/api/tasks/%d" % tid).status, 200, "delete the task")
        t.eq(s.sql("SELECT count(*) FROM attempts WHERE task_id = %d" % tid), [["0"]], "its attempts are gone")
        t.eq(s.sql("SELECT count(*) FROM attempt_runs"), [["0"]], "and their runs")
        t.eq(s.sql("SELECT count(*) FROM attempt_diffs"), [["0"]], "and their diffs")
        t.eq(a.get("/api/attempts/%d" % aid).status, 404, "an attempt of a deleted task: 404")

        s.sql_write("DELETE FROM executors WHERE name = 'echoer'")
        t.eq([x["name"] for x in a.get("/api/meta").json["executors"]], ["claude", "script"],
             "a removed row is no longer listed")

        # ---- the worker's calls: state and task rules (t/helper/attempt-rules) ----
        p = subprocess.run([RULES, "rules-user"], env=s.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        lines = [l for l in p.stdout.splitlines() if re.match(r"(not )?ok \d+ - ", l)]
        for l in lines:
            t.ok(l.startswith("ok "), "rules: " + l.split(" - ", 1)[1], None if l.startswith("ok ") else p.stdout)
        plan = re.search(r"^1\.\.(\d+)$", p.stdout, re.M)
        t.ok(p.returncode == 0 and plan and int(plan.group(1)) == len(lines) and len(lines) > 50,
             "attempt-rules ran to its end (%s on %s)" % (len(lines), "PostgreSQL" if s.is_pg else "SQLite"),
             (p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
t.done()
