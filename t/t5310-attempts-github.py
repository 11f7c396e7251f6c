#!/usr/bin/env python3
"""Attempts on a private GitHub repository, in cloud mode against the
GitHub stand-in (its git smart HTTP with token auth, its REST pulls): the
worker's mirror is fetched with the user's token, an attempt's work comes
back, the pull request pushes the attempt branch from the host mirror and
opens the PR (stored and shown, state refreshed after a merge); a rejected
push fails the pull request with GitHub's reason; afterwards the token is
nowhere it must not be (the mirror's config and files, the workspaces, the
job output, the services' logs, the database in clear, the URLs the stand-in
saw); another user's tasks and attempts are 404."""
import json, os, subprocess, sys, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, output
import enginestream
from anyontest import TAP, Stack, wait_until
from fakegithub import FakeGitHub
from ghsignin import stack_env, sign_in

t = TAP()
eng, IMAGE = engine_and_image(t)
INST = "t5310-" + uuid.uuid4().hex[:12]
FINAL = ("completed", "failed", "stopped")


def attempt(c, aid):
    r = c.get("/api/attempts/%d" % aid)
    return r.json["attempt"] if r.status == 200 else None


def wait_attempt(c, aid, timeout=90):
    return wait_until(lambda: (lambda a: a if a and a["state"] in FINAL else None)(attempt(c, aid)),
                      timeout=timeout, interval=0.2)


def wait_pr(c, aid, timeout=60):
    return wait_until(lambda: (lambda a: a if a and a["pr"] and a["pr"]["state"] != "pending" else None)(
        attempt(c, aid)), timeout=timeout, interval=0.2)


with FakeGitHub(interval=1, time_scale=0.02) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com")
    gh.add_user("bob", "Bob B", "bob@example.com")
    gh.add_repo("alice", "vault", private=True, with_git=True, files={"README.md": "vault\n", "app.py": "x = 1\n"})
    env = stack_env(gh, extra={"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST,
                               "ANYON_GIT_ALLOW_LOCAL_HTTP": "1", "ANYON_CONTAINER_STOP_GRACE_S": "5"})
    with Stack(env=env) as s:
        a = s.client()
        t.ok(sign_in(a, gh, "alice").status == 200, "alice signs in")
        token = gh.tokens_for("alice")[0]
        r = a.post("/api/projects/from-github", {"full_name": "alice/vault"})
        t.ok(r.status == 201, "alice imports her private repository", r.json)
        pid = r.json["project"]["id"]
        a.request("PATCH", "/api/projects/%d" % pid, {"default_executor": "script"})
        tid = a.post("/api/projects/%d/tasks" % pid, {"title": "Fix the app", "description": "x should be 2"}).json["task"]["id"]
        aid = a.post("/api/tasks/%d/attempts" % tid, {"prompt": "sed -i s/1/2/ app.py && echo fixed"}).json["attempt"]["id"]
        at = wait_attempt(a, aid)
        t.ok(at and at["state"] == "completed" and at["head_commit"], "the attempt on the private repository completes", at)
        fetches = [e for e in gh.requests("/alice/vault.git/git-upload-pack", method="POST")]
        t.ok(fetches and all((gh.header_of(e, "Authorization") or "").startswith("Basic ") for e in fetches),
             "the mirror was fetched over smart HTTP with Basic credentials",
             [e["path"] for e in gh.requests("/alice/vault.git")])

        # --- the pull request ---
        r = a.post("/api/attempts/%d/pull-request" % aid, {"title": "Make x two"})
        t.ok(r.status == 202 and r.json["attempt"]["pr"]["state"] == "pending", "a pull request is asked for", r.json)
        at = wait_pr(a, aid)
        pr = at and at["pr"]
        t.ok(pr and pr["state"] == "open" and pr["number"] >= 1 and "/alice/vault/pull/" in (pr["url"] or ""),
             "the pull request is opened and stored", pr)
        pulls = gh.pulls_list("alice", "vault")
        t.ok(len(pulls) == 1 and pulls[0]["head"]["ref"] == at["branch"] and pulls[0]["base"]["ref"] == "main"
             and pulls[0]["title"] == "Make x two" and "x should be 2" in (pulls[0]["body"] or ""),
             "the stand-in has it: head the attempt branch, base main, the title and the task's text", pulls)
        t.ok(pulls and pulls[0]["head"]["sha"] == at["head_commit"], "the pushed branch is the attempt's commit",
             pulls and pulls[0]["head"])
        show = subprocess.run(["git", "--git-dir", os.path.join(gh.git_dir, "alice", "vault.git"), "show",
                               at["branch"] + ":app.py"], capture_output=True, text=True)
        t.eq(show.stdout, "x = 2\n", "the branch on GitHub carries the change")
        t.ok(a.post("/api/attempts/%d/pull-request" % aid, {}).error_code() == "pr_exists", "asking again: pr_exists")
        gh.set_pull_state("alice", "vault", pr["number"], "merged")
        r = a.post("/api/attempts/%d/pull-request/refresh" % aid)
        t.ok(r.status == 200 and r.json["attempt"]["pr"]["state"] == "merged", "refresh reads the merge", r.json)

        # --- while an attempt runs: the token is not in its container ---
        aid3 = a.post("/api/tasks/%d/attempts" % tid, {"prompt": "echo running; sleep 30"}).json["attempt"]["id"]
        job3 = wait_until(lambda: (lambda at: at["runs"][0]["job_id"] if at["state"] == "running" else None)(
            attempt(a, aid3)), timeout=60)
        cont = wait_until(lambda: [x for x in eng.list_label("anyon.job=%d" % (job3 or 0))
                                   if (x.get("Labels") or {}).get("anyon.instance") == INST], timeout=30)
        t.ok(cont, "the running attempt's container is found by its labels")
        # The script has started (its first line is stored): the repository
        # is handed in and the executor runs, so the scan sees what the
        # agent sees.
        started = wait_until(lambda: any("running" in ch.get("data", "") for ch in output(a, job3 or 0)),
                             timeout=60)
        t.ok(started, "the script runs", attempt(a, aid3))
        if cont and started:
            cid = cont[0]["Id"]
            t.ok(token not in json.dumps(eng.inspect(cid)), "the token is not in docker inspect (env, cmd, labels, mounts)")
            raw = enginestream.Engine(enginestream.SOCK)
            try:
                eid = raw.json("POST", "/containers/%s/exec" % cid,
                               {"Cmd": ["sh", "-c", "read -r p; for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do "
                                        "grep -lF -e \"$p\" $f 2>/dev/null; done; grep -rlF -e \"$p\" / "
                                        "--exclude-dir=proc --exclude-dir=sys 2>/dev/null; echo scanned"],
                                "User": "1000:1000", "AttachStdin": True, "AttachStdout": True,
                                "AttachStderr": True})["Id"]
                st = raw.hijack("/exec/%s/start" % eid, {"Detach": False, "Tty": False})
                st.send(token.encode() + b"\n")
                out, _ = st.read_all(120)
            except RuntimeError as e:
                out = ("the scan could not run: %s; the attempt: %s" % (e, attempt(a, aid3))).encode()
            t.ok(b"scanned" in out and out.strip() == b"scanned",
                 "nor in any file of the container's filesystem the agent can read", out[:500])
        t.eq(a.post("/api/attempts/%d/stop" % aid3).status, 200, "it is stopped")
        t.ok(wait_attempt(a, aid3)["state"] == "stopped", "and ends stopped")

        # --- a push GitHub rejects ---
        aid2 = a.post("/api/tasks/%d/attempts" % tid, {"prompt": "echo y > y.txt"}).json["attempt"]["id"]
        t.ok(wait_attempt(a, aid2)["state"] == "completed", "a second attempt completes")
        gh.reject_push("alice", "vault", "protected by policy")
        a.post("/api/attempts/%d/pull-request" % aid2, {})
        at2 = wait_pr(a, aid2)
        t.ok(at2 and at2["pr"]["state"] == "failed" and "rejected" in (at2["pr"]["error"] or "")
             and not at2["pr"]["url"], "a rejected push fails the pull request with why", at2 and at2["pr"])
        gh.reject_push("alice", "vault", None)
        r = a.post("/api/attempts/%d/pull-request" % aid2, {})
        at2 = wait_pr(a, aid2)
        t.ok(r.status == 202 and at2 and at2["pr"]["state"] == "open", "asked again once accepted: opened", at2 and at2["pr"])

        # --- the token is nowhere it must not be ---
        hits = subprocess.run(["grep", "-rlF", token, s.data], capture_output=True, text=True).stdout.split()
        hits = [h for h in hits if not h.endswith((".db", ".db-wal", ".db-shm"))]
        t.ok(not hits, "the token is in no file under the data directory (mirror config and objects, workspaces)", hits)
        cfg = open(os.path.join(s.data, "mirrors", "project-%d.git" % pid, "config")).read()
        t.ok(token not in cfg and "127.0.0.1" not in cfg, "the mirror's config has neither token nor remote URL", cfg)
        t.ok(token not in s.logs(), "nor the services' logs")
        jobs = a.get("/api/jobs").json["jobs"]
        t.ok(all(token not in json.dumps(output(a, j["id"])) for j in jobs), "nor any job's output")
        if not s.is_pg:
            raw = open(s.db_path(), "rb").read()
            t.ok(token.encode() not in raw, "nor the database file in clear")
        else:
            t.ok(token not in json.dumps(s.sql("SELECT * FROM secrets")), "nor the secrets table in clear")
        t.ok(not gh.urls_containing(token), "nor any URL the stand-in was asked")

        # --- another user ---
        b = s.client()
        t.ok(sign_in(b, gh, "bob").status == 200, "bob signs in")
        for what, r in (("attempt", b.get("/api/attempts/%d" % aid)),
                        ("diff", b.get("/api/attempts/%d/diff" % aid)),
                        ("conversation", b.get("/api/attempts/%d/conversation" % aid)),
                        ("task's attempts", b.get("/api/tasks/%d/attempts" % tid)),
                        ("start", b.post("/api/tasks/%d/attempts" % tid, {})),
                        ("follow-up", b.post("/api/attempts/%d/follow-up" % aid, {"prompt": "x"})),
                        ("stop", b.post("/api/attempts/%d/stop" % aid)),
                        ("pull request", b.post("/api/attempts/%d/pull-request" % aid, {})),
                        ("refresh", b.post("/api/attempts/%d/pull-request/refresh" % aid))):
            t.ok(r.status == 404, "bob: alice's %s is 404" % what, r)
        t.ok(wait_until(lambda: not eng.list_label("anyon.instance=" + INST), timeout=30), "every container is removed")

t.done()
