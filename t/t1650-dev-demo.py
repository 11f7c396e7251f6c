#!/usr/bin/env python3
"""./dev demo: cloud mode against the GitHub stand-in. It starts the
stand-in and the stack, prints how to sign in; the stand-in answers on
loopback with the demo user; a whole sign-in through the printed way
(`./dev demo approve CODE`) works and lists the demo repositories; status
and down find the demo without ANYON_DATA_DIR, and down stops the stand-in
as well as the stack."""
import os, socket, subprocess, sys, urllib.parse, urllib.request, json
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, SRCDIR, wait_until
from ghsignin import poll_until

t = TAP()


class Demo(Stack):
    UP = ("demo", "--no-build")


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except OSError as e:
        return None, str(e)


def refused(url):
    u = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((u.hostname, u.port), timeout=2).close()
        return False
    except OSError:
        return True


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


with Demo() as s:
    run = os.path.join(s.data, "run")
    # the developer's view: no ANYON_DATA_DIR or ANYON_PORT, the state file finds the demo
    bare = {k: v for k, v in s.env.items() if k not in ("ANYON_DATA_DIR", "ANYON_PORT")}

    def dev(*args):
        return subprocess.run([os.path.join(SRCDIR, "dev")] + list(args), env=bare, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)

    out = s.up_output
    with open(os.path.join(run, "fakegithub.urls")) as f:
        web, api = f.read().split()
    t.ok("http://127.0.0.1:%d/" % s.port in out.splitlines(), "demo prints the stack's URL", out)
    t.ok(web in out and api in out and web + "/login/device" in out and "./dev demo approve CODE" in out
         and "octocat" in out, "and the stand-in's URLs, its device page and how to approve a code", out)
    with open(os.path.join(run, "fakegithub.pid")) as f:
        gh_pid = int(f.read())
    socks = [l.split()[3] for l in subprocess.run(["ss", "-ltnpH"], stdout=subprocess.PIPE, text=True).stdout.splitlines()
             if "pid=%d," % gh_pid in l]
    t.ok(web.startswith("http://127.0.0.1:") and api.startswith("http://127.0.0.1:") and len(socks) == 2 and
         all(a.startswith("127.0.0.1:") for a in socks), "the stand-in listens on loopback only", (web, api, socks))

    c = s.client()
    r = c.get("/api/health")
    t.ok(r.status == 200 and r.json == {"status": "ok"}, "/api/health answers (no details before sign-in)", r)
    r = c.session()
    t.ok(r.status == 200 and r.json["features"]["cloud"] is True and r.json["user"] is None,
         "cloud mode is on: a new session has no user", r)

    st, body = fetch(web + "/login/device")
    t.ok(st == 200 and "Device Activation" in body and 'value="octocat"' in body,
         "the stand-in's device page answers and offers octocat", body[:300])
    st, body = fetch(api + "/_control/state")
    state = json.loads(body)["result"] if st == 200 else {}
    t.ok({"octocat", "hubot"} <= set(state.get("users", [])) and "octocat/hello-world" in state.get("repos", []),
         "the stand-in is seeded with the demo users and repositories", state)

    # ---- a whole sign-in, the way the demo explains it ----
    r = c.post("/api/auth/github/device/start")
    t.ok(r.status == 200 and r.json["verification_uri"] == web + "/login/device",
         "device flow start points the browser at the stand-in", r)
    code, flow = (r.json["user_code"], r.json["flow_id"]) if r.status == 200 else ("", "")
    p = dev("demo", "approve", code)
    t.ok(p.returncode == 0 and "approved" in p.stdout, "./dev demo approve CODE (no ANYON_DATA_DIR) approves it",
         p.stdout)
    r = poll_until(c, flow, timeout=30)
    t.ok(r is not None and r.status == 200 and r.json["status"] == "complete" and r.json["user"]["login"] == "octocat",
         "the poll completes: signed in as octocat", r)
    c.session()
    r = c.get("/api/github/repositories")
    names = sorted(x["name"] for x in r.json["repositories"]) if r.status == 200 else r
    t.eq(names, ["hello-world", "secret-plans", "spoon-knife"], "octocat's repositories are listed from the stand-in")
    p = dev("demo", "approve", "BCDF-GHJK")
    t.ok(p.returncode != 0 and "refused" in p.stdout, "approving an unknown code fails and says so", p.stdout)

    # ---- status and down, without ANYON_DATA_DIR ----
    p = dev("status")
    t.ok(p.returncode == 0 and s.data in p.stdout and "GitHub stand-in running" in p.stdout and
         p.stdout.count(" running (pid ") == 4, "status finds the demo and its stand-in", p.stdout)
    pids = {}
    for n in ("nginx", "fcgi", "worker", "fakegithub"):
        with open(os.path.join(run, n + ".pid")) as f:
            pids[n] = int(f.read())
    p = dev("down")
    t.ok(p.returncode == 0 and s.data in p.stdout, "down (no ANYON_DATA_DIR) stops the recorded demo", p.stdout)
    t.ok(wait_until(lambda: not any(alive(x) for x in pids.values()), timeout=10),
         "the stack and the stand-in are gone", {n: alive(x) for n, x in pids.items()})
    t.ok(refused(web) and refused(api) and refused(s.url), "nothing answers on their ports any more")
    left = subprocess.run(["pgrep", "-f", s.data + "/"], stdout=subprocess.PIPE, text=True).stdout.split()
    t.eq(left, [], "no process names the demo's data dir")
    t.eq(os.listdir(run), [], "run/ is empty: no pid file, socket or URL file")
t.done()
