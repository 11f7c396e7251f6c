#!/usr/bin/env python3
"""Attempts end to end on the real engine and the agent image with the
Claude stand-in, in local mode with a project added by path: the `script`
executor changes files and the change comes back committed on the attempt
branch (the host's mirror holds refs/anyon/attempts/<id>), the diff is
stored with files and hunks, the setup script runs first; a follow-up runs
in the same workspace; the `claude` executor's stream-json is parsed into a
conversation, its session id kept and resumed by a follow-up; stop ends a
run as stopped with its work still committed; the task's status follows;
errors (unknown base branch, executor crash, setup failure, missing and
refused credentials) fail the attempt with a code; two attempts of one task
at once; hooks, fsmonitor and sshCommand planted by the agent in its
workspace never run on the host; the credential is masked in the output
and found in no file of the workspace or the mirror; another user sees
none of it. Docker missing is a failure, never a skip."""
import json, os, shutil, subprocess, sys, tempfile, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, output, text
from anyontest import TAP, Stack, wait_until
from gitrepo import Git

t = TAP()
eng, IMAGE = engine_and_image(t)
INST = "t5300-" + uuid.uuid4().hex[:12]
tmp = tempfile.mkdtemp(prefix="anyon-t5300-")
G = Git(tmp)
KEY = "sk-ant-api03-" + uuid.uuid4().hex + "SECRET"
MARK = "/tmp/anyon-t5300-marker-" + uuid.uuid4().hex
FINAL = ("completed", "failed", "stopped")

work = G.make_repo("widget")
G("checkout", "-q", "-b", "dev", cwd=work)
G("checkout", "-q", "main", cwd=work)


def attempt(c, aid):
    r = c.get("/api/attempts/%d" % aid)
    return r.json["attempt"] if r.status == 200 else None


def wait_attempt(c, aid, timeout=90):
    return wait_until(lambda: (lambda a: a if a and a["state"] in FINAL and not any(
        r["state"] in ("queued", "running") for r in a.get("runs", [])) else None)(attempt(c, aid)),
        timeout=timeout, interval=0.2)


def start(c, task, **body):
    r = c.post("/api/tasks/%d/attempts" % task, body)
    if r.status != 201:
        t.diag("start attempt: %s %s" % (r.status, r.json))
        return None
    return r.json["attempt"]["id"]


def new_task(c, pid, title, description=""):
    return c.post("/api/projects/%d/tasks" % pid, {"title": title, "description": description}).json["task"]["id"]


def task_status(c, tid):
    return c.get("/api/tasks/%d" % tid).json["task"]["status"]


def diff_files(c, aid):
    r = c.get("/api/attempts/%d/diff" % aid)
    return {f["path"]: f for f in r.json.get("files", [])} if r.status == 200 else {}


def conversation(c, aid, run=None):
    entries, after = [], 0
    for _ in range(200):
        q = "/api/attempts/%d/conversation?after=%d" % (aid, after) + ("&run=%d" % run if run else "")
        r = c.get(q)
        if r.status != 200:
            t.diag("conversation: %s %s" % (r.status, r.json))
            return entries
        entries += r.json["entries"]
        if not r.json.get("more"):
            return entries
        after = r.json["next"]
    return entries


def mirror_refs(s, pid):
    m = os.path.join(s.data, "mirrors", "project-%d.git" % pid)
    out = subprocess.run(["git", "--git-dir", m, "for-each-ref", "--format=%(refname) %(objectname)"],
                         capture_output=True, text=True).stdout
    return {l.split(" ")[0]: l.split(" ")[1] for l in out.split("\n") if l}


def show(s, pid, ref, path):
    m = os.path.join(s.data, "mirrors", "project-%d.git" % pid)
    r = subprocess.run(["git", "--git-dir", m, "show", "%s:%s" % (ref, path)], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


ENV = {"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST, "ANYON_CONTAINER_STOP_GRACE_S": "10",
       "ANYON_PURGE_INTERVAL_S": "1",
       "ANYON_WORKER_SLOTS": "3", "ANYON_CONTAINER_MEMORY_MB": "512"}

with Stack(env=ENV) as s:
    c = s.client()
    c.session()
    pid = c.post("/api/projects", {"source": "path", "path": work}).json["project"]["id"]
    r = c.request("PATCH", "/api/projects/%d" % pid, {"setup_script": "echo setup-ran > .setup-ran\n"
                                                      "env | grep -c ANTHROPIC > .setup-env || true\n",
                                                      "default_executor": "script"})
    t.ok(r.status == 200, "the project's setup script and default executor are set", r.json)

    # --- the script executor: a change comes back committed ---
    tid = new_task(c, pid, "Add a file", "make new.txt")
    aid = start(c, tid, prompt="echo hello > new.txt && echo more >> README.md && echo done-script")
    t.ok(aid, "an attempt starts with the script executor")
    t.ok(wait_until(lambda: task_status(c, tid) == "inprogress", timeout=10), "the task is in progress")
    a = wait_attempt(c, aid)
    t.ok(a and a["state"] == "completed", "the attempt completes", a)
    t.ok(a and a["branch"].startswith("anyon/") and len(a["base_commit"] or "") == 40
         and len(a["head_commit"] or "") == 40 and a["head_commit"] != a["base_commit"],
         "it has its branch, base and head commits", a)
    t.eq(task_status(c, tid), "inreview", "the task is in review once its attempt ended")
    refs = mirror_refs(s, pid)
    t.ok(a and refs.get("refs/anyon/attempts/%d" % aid) == a["head_commit"],
         "the mirror holds the attempt's branch under refs/anyon/attempts/<id>", refs)
    t.ok(refs.get("refs/heads/main") and not [r for r in refs if r.startswith("refs/heads/anyon")],
         "and nothing else of the container's landed in the mirror", refs)
    t.eq(show(s, pid, "refs/anyon/attempts/%d" % aid, "new.txt"), "hello\n", "the new file is in the commit")
    t.eq(show(s, pid, "refs/anyon/attempts/%d" % aid, ".setup-ran"), "setup-ran\n",
         "the setup script ran in the workspace first")
    t.eq((show(s, pid, "refs/anyon/attempts/%d" % aid, ".setup-env") or "").strip(), "0",
         "the setup script saw no credential variable")
    files = diff_files(c, aid)
    t.ok(files.get("new.txt", {}).get("status") == "added" and files["new.txt"]["additions"] == 1,
         "the diff lists new.txt as added", files.get("new.txt"))
    rm = files.get("README.md", {})
    t.ok(rm.get("status") == "modified" and any(l["t"] == "+" and l["s"].startswith("more")
                                                for h in rm.get("hunks", []) for l in h["lines"]),
         "and README.md modified with its hunk", rm)
    t.ok(a and a.get("diff") and a["diff"]["files"] >= 3, "the attempt shows the diff's summary", a and a.get("diff"))
    conv = conversation(c, aid)
    t.ok(any(e["type"] == "raw" and "done-script" in e.get("text", "") for e in conv),
         "the script's output is in the conversation as raw lines", conv[-5:])
    run1 = a["runs"][0]
    t.ok("done-script" in text(output(c, run1["job_id"]), "stdout"), "and in the run's raw log")

    # --- follow-up in the same workspace ---
    r = c.post("/api/attempts/%d/follow-up" % aid, {"prompt": "test -f new.txt && echo again > second.txt"})
    t.ok(r.status == 201, "a follow-up is queued", r.json)
    a = wait_attempt(c, aid)
    t.ok(a and a["state"] == "completed" and len(a["runs"]) == 2, "the follow-up completes as a second run", a)
    files = diff_files(c, aid)
    t.ok("second.txt" in files and "new.txt" in files, "it ran in the same workspace: the diff has both",
         sorted(files))
    t.eq(show(s, pid, "refs/anyon/attempts/%d" % aid, "second.txt"), "again\n", "and the mirror has the new commit")

    # --- failures ---
    tid2 = new_task(c, pid, "Broken")
    aid2 = start(c, tid2, prompt="echo before; exit 7")
    a = wait_attempt(c, aid2)
    t.ok(a and a["state"] == "failed" and a["error_code"] == "executor_failed", "an executor exit 7 fails it", a)
    t.ok(a and a["runs"][0]["exit_code"] == 7, "with the run's exit code", a and a["runs"])
    aid3 = start(c, tid2, prompt="true", base_branch="no-such-branch")
    a = wait_attempt(c, aid3)
    t.ok(a and a["state"] == "failed" and a["error_code"] == "unknown_base_branch",
         "an unknown base branch fails it with its code", a)
    aid4 = start(c, tid2, prompt="cat README.md", base_branch="dev")
    a = wait_attempt(c, aid4)
    t.ok(a and a["state"] == "completed" and a["base_branch"] == "dev", "another base branch works", a)
    c.request("PATCH", "/api/projects/%d" % pid, {"setup_script": "echo setup-fails; exit 4\n"})
    aid5 = start(c, tid2, prompt="true")
    a = wait_attempt(c, aid5)
    t.ok(a and a["state"] == "failed" and a["error_code"] == "setup_failed", "a failing setup fails it", a)
    c.request("PATCH", "/api/projects/%d" % pid, {"setup_script": ""})
    gone = G.make_repo("gone")
    gpid = c.post("/api/projects", {"source": "path", "path": gone}).json["project"]["id"]
    os.rename(gone, gone + ".moved")
    gtid = new_task(c, gpid, "Nowhere")
    a = wait_attempt(c, start(c, gtid, executor="script", prompt="true"))
    t.ok(a and a["state"] == "failed" and a["error_code"] == "clone_failed" and a["error"],
         "a repository that cannot be fetched fails the attempt with clone_failed", a)

    # --- stop: the run ends stopped, its work so far still comes back ---
    tid3 = new_task(c, pid, "Long")
    aid6 = start(c, tid3, prompt="echo partial > partial.txt; echo sleeping; sleep 120")
    t.ok(wait_until(lambda: "sleeping" in text(output(c, (attempt(c, aid6)["runs"][0]["job_id"] or 0)), "stdout")
                    if attempt(c, aid6)["runs"][0].get("job_id") else False, timeout=60), "a long run is running")
    r = c.post("/api/attempts/%d/stop" % aid6)
    t.ok(r.status == 200, "stop is accepted", r.json)
    a = wait_attempt(c, aid6, timeout=60)
    t.ok(a and a["state"] == "stopped", "the attempt ends stopped", a)
    t.ok("partial.txt" in diff_files(c, aid6), "what it had written came back committed", diff_files(c, aid6))
    t.eq(task_status(c, tid3), "todo", "the task of a stopped attempt (its only one) goes back to todo")

    # --- two attempts of one task at once ---
    tid4 = new_task(c, pid, "Twice")
    ids = [start(c, tid4, prompt="sleep 2; echo %d > n.txt" % i) for i in (1, 2)]
    done = [wait_attempt(c, i) for i in ids]
    t.ok(all(d and d["state"] == "completed" for d in done), "two attempts of one task both complete", done)
    t.ok(done[0] and done[1] and done[0]["branch"] != done[1]["branch"], "on branches of their own")
    t.eq([show(s, pid, "refs/anyon/attempts/%d" % i, "n.txt") for i in ids], ["1\n", "2\n"],
         "each with its own work")

    # --- hooks and config planted by the agent never run on the host ---
    evil = ("mkdir -p .git/hooks && for h in pre-commit post-commit post-checkout reference-transaction "
            "pre-push post-rewrite; do printf '#!/bin/sh\\necho $0 >> %s\\n' > .git/hooks/$h; "
            "chmod +x .git/hooks/$h; done && git config core.fsmonitor 'echo fsmonitor >> %s' && "
            "git config core.sshCommand 'echo ssh >> %s' && echo x > planted.txt") % (MARK, MARK, MARK)
    aid7 = start(c, tid4, prompt=evil)
    a = wait_attempt(c, aid7)
    t.ok(a and a["state"] == "completed" and "planted.txt" in diff_files(c, aid7),
         "an agent that plants hooks and config still has its work brought back", a)
    t.ok(not os.path.exists(MARK), "nothing it planted ran on the host (no marker file)")

    # --- Claude: stream-json parsed, session resumed ---
    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": KEY})
    t.ok(r.status in (200, 201, 204), "a Claude API key is stored", r.json)
    tid5 = new_task(c, pid, "Claude task")
    aid8 = start(c, tid5, executor="claude",
                 prompt="write hello.txt: hi from claude; run echo from-bash; run echo key=$ANTHROPIC_API_KEY")
    a = wait_attempt(c, aid8)
    t.ok(a and a["state"] == "completed" and a["executor"] == "claude", "a Claude attempt completes", a)
    sess = a and a["session_id"]
    t.ok(sess and len(sess) >= 8, "its session id is kept", sess)
    conv = conversation(c, aid8)
    kinds = [e["type"] for e in conv]
    t.ok(kinds and kinds[0] == "init" and "tool_use" in kinds and "tool_result" in kinds and kinds[-1] == "result",
         "the conversation has init, tool calls and results, and the result last", kinds)
    t.ok(any(e["type"] == "tool_use" and e.get("name") == "Write" and "hello.txt" in json.dumps(e.get("input"))
             for e in conv), "a tool call carries its input", [e for e in conv if e["type"] == "tool_use"])
    res = [e for e in conv if e["type"] == "result"]
    t.ok(res and "total_cost_usd" in res[0] and "num_turns" in res[0] and "duration_ms" in res[0],
         "the result has cost, turns and duration", res)
    raw = "".join(ch["data"] for ch in output(c, a["runs"][0]["job_id"]))
    t.ok(KEY not in raw and KEY not in json.dumps(conv), "the key it printed is masked in the output and the conversation")
    t.ok("hello.txt" in diff_files(c, aid8), "Claude's file is in the diff")
    r = c.post("/api/attempts/%d/follow-up" % aid8, {"prompt": "write second.txt: again"})
    t.ok(r.status == 201, "a follow-up of the Claude attempt", r.json)
    a = wait_attempt(c, aid8)
    conv2 = conversation(c, aid8, run=2)
    init2 = [e for e in conv2 if e["type"] == "init"]
    t.ok(a and a["state"] == "completed" and init2 and init2[0].get("session_id") == sess,
         "the follow-up resumed the same session", (a and a["state"], init2))
    t.ok({"hello.txt", "second.txt"} <= set(diff_files(c, aid8)), "both runs' files are on the branch")

    # --- the credential: nowhere in the workspace, the mirror or the logs ---
    hits = subprocess.run(["grep", "-rlF", KEY, s.data], capture_output=True, text=True).stdout.strip()
    t.ok(not hits, "the key is in no file under the data directory (workspaces, mirrors)", hits)
    t.ok(KEY not in s.logs(), "nor in the services' logs")

    # --- refused and missing credentials ---
    c.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-api03-invalid-key"})
    aid9 = start(c, tid5, executor="claude", prompt="hello")
    a = wait_attempt(c, aid9)
    t.ok(a and a["state"] == "failed" and a["error_code"] == "credential_invalid",
         "a credential Claude refuses fails the attempt with credential_invalid", a)
    c.delete("/api/secrets/anthropic_api_key")
    r = c.post("/api/tasks/%d/attempts" % tid5, {"executor": "claude"})
    t.ok(r.status == 409 and r.error_code() == "credential_missing",
         "without a credential a Claude attempt is refused with credential_missing", r.json)

    t.ok(wait_until(lambda: not eng.list_label("anyon.instance=" + INST), timeout=30),
         "every container is removed")

    # --- what outlives the rows goes with them ---
    def ws(i):
        return os.path.join(s.data, "workspaces", "attempt-%d" % i)
    t.ok(all(os.path.isdir(os.path.join(ws(i), "repo", ".git")) for i in ids),
         "an ended attempt keeps its workspace (for follow-ups)")
    t.eq(c.delete("/api/tasks/%d" % tid4).status, 200, "the task of two attempts is deleted")
    t.ok(wait_until(lambda: not any(os.path.exists(ws(i)) for i in ids), timeout=20),
         "their workspaces are removed")
    t.ok(os.path.isdir(ws(aid)), "another task's attempt keeps its own")
    mirror = os.path.join(s.data, "mirrors", "project-%d.git" % pid)
    t.eq(c.delete("/api/projects/%d" % pid).status, 200, "the project is removed")
    t.ok(wait_until(lambda: not os.path.exists(mirror) and not os.path.exists(ws(aid)), timeout=20),
         "its mirror and every attempt workspace go with it")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
