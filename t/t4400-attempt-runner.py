#!/usr/bin/env python3
"""The attempt runner (container/attempt-run, in the agent image at
/usr/local/lib/anyon/attempt-run) on the real engine, in containers made
the way the worker makes an attempt's: host folders repo/home/xfer bound to
/workspace, /home/agent and /run/anyon/xfer (a FIFO `go` of uid 1000 in
xfer), the secrets tmpfs filled by anyon-entry from the bundle on the
container's stdin, `anyon-entry --relay --linger 30 -- attempt-run ...`,
the base branch's bundle pushed in by an exec (`cat > in.bundle`) and `go`
written to the FIFO; outcome and out.bundle read back with `cat` in execs,
out.bundle checked on the host with git.

Cases: the branch made from the base commit, setup run without the
credential, the script executor's changes committed and bundled; the
Claude stand-in seeing its credential, then `--resume` in the same
home/workspace finding its session; no change (bundle=no); exit 3; an
unknown base branch (phase=clone); a failing setup (phase=setup); a TERM
during the executor (still committed and bundled); hooks planted in .git
not run; an agent that switched branches; strict usage (exit 2).

A missing engine is a failure, never a skip. The image is
ANYON_AGENT_IMAGE (./dev test exports it) or what container/build-image
reuses or builds."""
import errno
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import SRCDIR, TAP
from enginestream import engine_and_image
from relayrec import Records

t = TAP()
LABEL = "t4400-%d" % os.getpid()
RUNNER = "/usr/local/lib/anyon/attempt-run"
# As worker/job_container.c mounts it (SECRETS_DIR, SECRETS_TMPFS).
TMPFS = {"/run/anyon/secrets": "rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=1000"}
BRANCH = "anyon/" + secrets.token_hex(4)
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@localhost", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@localhost")

eng, IMAGE = engine_and_image(t)
st, _, _ = eng.call("GET", "/images/%s/json" % urllib.parse.quote(IMAGE, safe=""))
if not t.ok(st == 200, "the image %s exists" % IMAGE, st):
    t.done()


def git(*args, cwd=None, check=True):
    """git on the host (the workspaces belong to uid 1000: safe.directory)."""
    r = subprocess.run(["git", "-c", "safe.directory=*"] + list(args), cwd=cwd, env=GIT_ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and r.returncode != 0:
        raise RuntimeError("git %s: %s" % (" ".join(args), r.stderr.decode(errors="replace")))
    return r.stdout.decode(errors="replace").strip() if check else r


def secret_bundle(items):
    """anyon-entry's secret bundle (container/README.md)."""
    b = b"anyon-secrets 1\n"
    for name, value in items:
        b += b"secret %s %d\n" % (name.encode(), len(value)) + value + b"\n"
    return b + b"end\n"


def mkdir1000(path, mode=0o700):
    os.mkdir(path, mode)
    os.chmod(path, mode)
    os.chown(path, 1000, 1000)
    return path


def remove(cid):
    eng.call("DELETE", "/containers/%s?force=1&v=1" % cid)


def cleanup():
    f = urllib.parse.quote(json.dumps({"label": ["anyon.test=" + LABEL]}))
    for c in eng.json("GET", "/containers/json?all=1&filters=" + f) or []:
        remove(c["Id"])


def create(cmd, mounts=()):
    body = {"Image": IMAGE, "Cmd": cmd, "User": "1000:1000", "Tty": False,
            "Env": ["TINI_KILL_PROCESS_GROUP=1"], "Labels": {"anyon.test": LABEL},
            "OpenStdin": True, "StdinOnce": True, "AttachStdin": True,
            "AttachStdout": True, "AttachStderr": True,
            "HostConfig": {"CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                           "Init": True, "Tmpfs": TMPFS, "NetworkMode": "none",
                           "LogConfig": {"Type": "none", "Config": {}},
                           "Memory": 512 << 20, "PidsLimit": 256, "Mounts": list(mounts)}}
    return eng.json("POST", "/containers/create", body)["Id"]


def exec_in(cid, cmd, stdin=None, timeout=60):
    """(exit status, stdout bytes, stderr bytes) of an exec as uid 1000."""
    eid = eng.json("POST", "/containers/%s/exec" % cid,
                   {"Cmd": cmd, "User": "1000:1000", "AttachStdin": stdin is not None,
                    "AttachStdout": True, "AttachStderr": True, "Tty": False})["Id"]
    s = eng.hijack("/exec/%s/start" % eid, {"Detach": False, "Tty": False})
    if stdin is not None:
        s.send(stdin)
    out, err = s.read_all(timeout)
    ins = None
    for _ in range(100):
        ins = eng.json("GET", "/exec/%s/json" % eid)
        if not ins["Running"]:
            break
        time.sleep(0.05)
    return ins["ExitCode"], out, err


def write_go(path, timeout=30):
    """Writes `go` to the FIFO once the runner has it open for reading
    (O_NONBLOCK: ENXIO until then)."""
    end = time.time() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.time() > end:
                raise
            time.sleep(0.05)
            continue
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)
        return


class Workspace:
    """An attempt's host folders: repo, home (kept across runs) and xfer
    (remade for each run, with its FIFO)."""

    def __init__(self, root, name):
        self.dir = mkdir1000(os.path.join(root, name), 0o755)
        self.repo = mkdir1000(os.path.join(self.dir, "repo"), 0o755)
        self.home = mkdir1000(os.path.join(self.dir, "home"), 0o755)
        self.xfer = os.path.join(self.dir, "xfer")

    def new_xfer(self):
        shutil.rmtree(self.xfer, ignore_errors=True)
        mkdir1000(self.xfer)
        go = os.path.join(self.xfer, "go")
        os.mkfifo(go, 0o600)
        os.chown(go, 1000, 1000)

    def mounts(self):
        return [{"Type": "bind", "Source": self.repo, "Target": "/workspace"},
                {"Type": "bind", "Source": self.home, "Target": "/home/agent"},
                {"Type": "bind", "Source": self.xfer, "Target": "/run/anyon/xfer"}]


def run(ws, argv, base="main", base_commit=None, first=True, setup=None, prompt=None, cred=None,
        in_bundle=None, during=None, go=True, extra_secrets=()):
    """One run as the worker does it. Returns a dict: exit (code, signal),
    out/err (the relay's stdout/stderr), outcome (the file's line, or None),
    bundle (out.bundle's bytes, or None), cat_err."""
    ws.new_xfer()
    args = ["--branch", BRANCH, "--base", base, "--base-commit", base_commit or BASE_COMMIT]
    if first:
        args.append("--first")
    if setup is not None:
        args.append("--setup")
    args += ["--"] + argv
    items = []
    if prompt is not None:
        items.append(("prompt", prompt.encode()))
    if setup is not None:
        items.append(("setup", setup.encode()))
    if cred:
        items.append((cred[0], cred[1].encode()))
    items += list(extra_secrets)
    cid = create(["--relay", "--linger", "30", "--", RUNNER] + args, ws.mounts())
    res = {"cid": cid}
    try:
        s = eng.hijack("/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1" % cid)
        eng.json("POST", "/containers/%s/start" % cid)
        s.send(secret_bundle(items) if items else b"")
        if first and go:
            code, out, err = exec_in(cid, ["sh", "-c", "cat > /run/anyon/xfer/in.bundle"],
                                     stdin=in_bundle if in_bundle is not None else BASE_BUNDLE)
            res["push"] = (code, err)
            write_go(os.path.join(ws.xfer, "go"))
        r = Records()
        if during:
            during(cid, s, r)
        s.read_until(lambda x: r.feed(x.out).exit is not None, 120)
        res["exit"] = r.exit[1:] if r.exit else None
        res["out"], res["err"] = r.data[1].decode(errors="replace"), r.data[2].decode(errors="replace")
        res["attach_err"] = s.err
        code, out, err = exec_in(cid, ["cat", "/run/anyon/xfer/outcome"])
        res["outcome"] = out.decode(errors="replace") if code == 0 else None
        code, out, err = exec_in(cid, ["cat", "/run/anyon/xfer/out.bundle"])
        res["bundle"] = out if code == 0 else None
        res["cat_err"] = err
        s.close()
    finally:
        remove(cid)
    return res


def summary(res):
    return "exit %r, outcome %r\nstdout:\n%s\nstderr:\n%s" % (res.get("exit"), res.get("outcome"),
                                                             res.get("out", "")[-1500:], res.get("err", "")[-1500:])


def fetch_bundle(data, name):
    """Fetches the branch out of a bundle into a fresh clone of the source
    repository; returns the clone's path (the branch as refs/heads/BRANCH)."""
    d = tempfile.mkdtemp(prefix=name + "-", dir=TMP)
    b = os.path.join(d, "out.bundle")
    with open(b, "wb") as f:
        f.write(data)
    clone = os.path.join(d, "clone")
    git("clone", "-q", SRC, clone)
    git("bundle", "verify", "-q", b, cwd=clone)
    git("fetch", "-q", b, "refs/heads/%s:refs/heads/%s" % (BRANCH, BRANCH), cwd=clone)
    return clone


def bundle_heads(data):
    d = tempfile.mkdtemp(prefix="heads-", dir=TMP)
    b = os.path.join(d, "x.bundle")
    with open(b, "wb") as f:
        f.write(data)
    return [ln.split()[1] for ln in git("bundle", "list-heads", b).splitlines()]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


TMP = tempfile.mkdtemp(prefix="anyon-t4400-")
os.chmod(TMP, 0o755)
try:
    # ---- the runner in the image ----
    cid = create(["--", "sh", "-c", "stat -c '%a %u %g' " + RUNNER + "; test -w " + RUNNER +
                  " && echo writable; cat " + RUNNER])
    s = eng.hijack("/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1" % cid)
    eng.json("POST", "/containers/%s/start" % cid)
    s.send(b"")
    out, err = s.read_all(60)
    remove(cid)
    head, _, body = out.partition(b"\n")
    t.ok(head == b"755 0 0" and body == open(os.path.join(SRCDIR, "container", "attempt-run"), "rb").read(),
         "the image has container/attempt-run at %s, mode 0755, root's, not writable by uid 1000" % RUNNER,
         (head, err))

    # ---- strict usage: exit 2 with a message, nothing run ----
    sha = "0" * 40
    cases = [
        (["--bogus"], "unknown option '--bogus'"),
        (["--branch", "a", "--base", "main", "--base-commit", sha], "no executor after --"),
        (["--branch", "a..b", "--base", "main", "--base-commit", sha, "--", "true"], "--branch: not a valid"),
        (["--branch", "a", "--base", "-x", "--base-commit", sha, "--", "true"], "--base: not a valid"),
        (["--branch", "a", "--base", "@{-1}", "--base-commit", sha, "--", "true"], "--base: not a valid"),
        (["--branch", "a", "--base", "main", "--base-commit", "abc", "--", "true"], "--base-commit: not a 40-hex"),
        (["--branch", "a", "--base", "main", "--base-commit", "G" * 40, "--", "true"], "--base-commit: not a 40-hex"),
        (["--branch", "a", "--base", "main", "--", "true"], "--base-commit is required"),
        (["--branch", "a", "--branch", "b", "--base", "main", "--base-commit", sha, "--", "true"], "given twice"),
        (["--branch", "a", "--base", "main", "--base-commit", sha, "--setup", "--", "true"], "--setup needs --first"),
        (["--branch"], "--branch needs a value"),
    ]
    script = "".join("%s %s 2>&1; echo \"rc=$?\"; " % (RUNNER, " ".join("'%s'" % a for a in argv))
                     for argv, _ in cases)
    cid = create(["--", "sh", "-c", script])
    s = eng.hijack("/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1" % cid)
    eng.json("POST", "/containers/%s/start" % cid)
    s.send(b"")
    out, err = s.read_all(60)
    remove(cid)
    chunks = out.decode(errors="replace").split("rc=")
    got = [(c.split("\n", 1)[0], c) for c in chunks[1:len(cases) + 1]]
    bad = [(argv, msg, chunks[i] if i < len(chunks) else None) for i, (argv, msg) in enumerate(cases)
           if i >= len(got) or got[i][0] != "2" or msg not in chunks[i] or "usage: attempt-run" not in chunks[i]]
    t.ok(len(got) == len(cases) and not bad,
         "bad usage (unknown option, bad branch/base names, base commit not 40 hex, a missing or repeated "
         "option, no executor): exit 2 with a message", bad or out)

    # ---- the source repository and the base bundle, as the worker's mirror gives it ----
    SRC = os.path.join(TMP, "src")
    os.mkdir(SRC)
    git("init", "-q", "-b", "main", SRC)
    with open(os.path.join(SRC, "README"), "w") as f:
        f.write("the project\n")
    git("add", "README", cwd=SRC)
    git("commit", "-q", "-m", "first", cwd=SRC)
    with open(os.path.join(SRC, "README"), "a") as f:
        f.write("more\n")
    git("commit", "-q", "-am", "second", cwd=SRC)
    git("branch", "other", "HEAD~1", cwd=SRC)
    BASE_COMMIT = git("rev-parse", "main", cwd=SRC)
    bpath = os.path.join(TMP, "base.bundle")
    git("bundle", "create", "-q", bpath, "refs/heads/main", "refs/heads/other", cwd=SRC)
    BASE_BUNDLE = open(bpath, "rb").read()

    # ---- the script executor: clone, setup, changes committed and bundled ----
    key = "sk-ant-api03-" + secrets.token_urlsafe(40)
    ws = Workspace(TMP, "script")
    setup = ("echo setup-stdout; echo setup-stderr >&2; pwd > ~/setup-pwd; "
             "git rev-parse --abbrev-ref HEAD > ~/setup-branch; "
             "printf '%s' \"${ANTHROPIC_API_KEY-unset}\" > ~/setup-env; ls -A /run/anyon/secrets > ~/setup-ls\n")
    prompt = ("echo executor-stdout; printf 'hello\\n' > hello.txt; echo changed >> README; mkdir -p d/e; "
              "echo deep > d/e/f.txt; printf '%s' \"$ANTHROPIC_API_KEY\" | sha256sum > ~/exec-key; "
              "readlink /proc/self/fd/0 > ~/exec-stdin\n\n\n")
    res = run(ws, ["sh", "-c", "{prompt}"], setup=setup, prompt=prompt, cred=("ANTHROPIC_API_KEY", key))
    t.ok(res.get("push", (1,))[0] == 0, "the base bundle goes in with an exec of `cat > in.bundle`", res.get("push"))
    t.ok(res["exit"] == (0, 0) and res["outcome"] == "phase=done code=0 bundle=yes\n",
         "outcome phase=done code=0 bundle=yes; the runner exits 0", summary(res))
    t.eq(res["out"], "executor-stdout\n", "stdout is the executor's alone (setup's output goes to stderr)")
    t.ok("setup-stdout" in res["err"] and "setup-stderr" in res["err"] and "anyon: cloning main" in res["err"]
         and all(ln.startswith("anyon: ") or ln.startswith("setup-") for ln in res["err"].splitlines()),
         "stderr: the runner's lines prefixed 'anyon: ' and the setup's output", res["err"])
    t.ok(read(os.path.join(ws.home, "setup-pwd")) == "/workspace\n"
         and read(os.path.join(ws.home, "setup-branch")) == BRANCH + "\n",
         "setup ran in /workspace, on the attempt branch",
         (read(os.path.join(ws.home, "setup-pwd")), read(os.path.join(ws.home, "setup-branch"))))
    t.ok(read(os.path.join(ws.home, "setup-env")) == "unset"
         and read(os.path.join(ws.home, "setup-ls")) == "prompt\nsetup\n",
         "setup saw no credential variable, and the credential file was gone from the secrets",
         (read(os.path.join(ws.home, "setup-env")), read(os.path.join(ws.home, "setup-ls"))))
    t.ok(read(os.path.join(ws.home, "exec-key")) == hashlib.sha256(key.encode()).hexdigest() + "  -\n"
         and read(os.path.join(ws.home, "exec-stdin")) == "/dev/null\n",
         "the executor got the credential in its variable, stdin /dev/null",
         (read(os.path.join(ws.home, "exec-key")), read(os.path.join(ws.home, "exec-stdin"))))
    t.ok(key not in res["out"] + res["err"] and key.encode() not in open(os.path.join(ws.repo, ".git", "config"),
                                                                           "rb").read(),
         "the credential is in neither the output nor .git/config")
    ok = res["bundle"] is not None
    if ok:
        heads = bundle_heads(res["bundle"])
        clone = fetch_bundle(res["bundle"], "script")
        log = git("log", "--format=%H %P|%an <%ae>|%cn <%ce>|%s", "refs/heads/" + BRANCH, "^" + BASE_COMMIT,
                  cwd=clone).splitlines()
        files = git("diff", "--name-status", BASE_COMMIT, "refs/heads/" + BRANCH, cwd=clone)
        hello = git("show", "refs/heads/%s:hello.txt" % BRANCH, cwd=clone)
        t.eq(heads, ["refs/heads/" + BRANCH], "out.bundle carries refs/heads/%s only" % BRANCH)
        t.ok(len(log) == 1 and log[0].split("|")[0].split() == [log[0].split()[0], BASE_COMMIT]
             and log[0].split("|")[1:3] == ["anyon <anyon@localhost>"] * 2,
             "fetched on the host: one commit on top of the base commit, by anyon <anyon@localhost>", log)
        t.ok(files.split("\n") == ["M\tREADME", "A\td/e/f.txt", "A\thello.txt"] and hello == "hello",
             "it has the executor's changes (modified, new, nested)", files)
    t.ok(ok, "out.bundle came back", summary(res))
    t.eq(git("remote", cwd=ws.repo) + "|" + git("branch", "--show-current", cwd=ws.repo) + "|" +
         git("config", "user.name", cwd=ws.repo) + " <" + git("config", "user.email", cwd=ws.repo) + ">|" +
         git("status", "--porcelain", cwd=ws.repo),
         "|%s|anyon <anyon@localhost>|" % BRANCH,
         "the workspace: no remote left, on the attempt branch, identity anyon, nothing uncommitted")
    t.ok(not os.path.exists(os.path.join(ws.xfer, "in.bundle")), "the runner removed in.bundle")

    # A follow-up in the same workspace (no --first): more changes, the
    # bundle has both commits.
    res = run(ws, ["sh", "-c", "{prompt} && echo again > again.txt"], first=False, prompt="echo run2 >&2")
    ok = res["outcome"] == "phase=done code=0 bundle=yes\n" and res["bundle"] is not None
    if ok:
        clone = fetch_bundle(res["bundle"], "follow")
        n = git("rev-list", "--count", "refs/heads/" + BRANCH, "^" + BASE_COMMIT, cwd=clone)
        ok = n == "2" and git("show", "refs/heads/%s:again.txt" % BRANCH, cwd=clone) == "again" \
            and "run2" in res["err"]
    t.ok(ok, "a follow-up run (no --first) commits on top: the bundle has both commits after the base",
         summary(res))

    # ---- the Claude stand-in: its credential, then --resume ----
    ws = Workspace(TMP, "claude")
    claude = ["claude", "-p", "{prompt}", "--output-format", "stream-json", "--verbose"]
    tok = "sk-ant-oat01-" + secrets.token_urlsafe(40)
    res = run(ws, claude, prompt="hello; write note.txt: from claude\n", cred=("CLAUDE_CODE_OAUTH_TOKEN", tok))
    try:
        lines = [json.loads(x) for x in res["out"].splitlines()]
    except ValueError:
        lines = []
    init = lines[0] if lines else {}
    final = lines[-1] if lines else {}
    t.ok(res["outcome"] == "phase=done code=0 bundle=yes\n" and init.get("apiKeySource") == "CLAUDE_CODE_OAUTH_TOKEN"
         and final.get("type") == "result" and final.get("is_error") is False and init.get("cwd") == "/workspace",
         "claude -p {prompt} --output-format stream-json --verbose: the stand-in sees CLAUDE_CODE_OAUTH_TOKEN, "
         "runs in /workspace, succeeds", summary(res))
    t.ok(tok not in res["out"] + res["err"], "the token is not in the output")
    session = init.get("session_id", "none")
    ok = res["bundle"] is not None
    if ok:
        clone = fetch_bundle(res["bundle"], "claude1")
        ok = git("show", "refs/heads/%s:note.txt" % BRANCH, cwd=clone) == "from claude"
    t.ok(ok, "the file the stand-in wrote comes back committed")
    key2 = "sk-ant-api03-" + secrets.token_urlsafe(40)
    res = run(ws, claude + ["--resume", session], first=False, prompt="write note2.txt: again",
              cred=("ANTHROPIC_API_KEY", key2))
    try:
        lines = [json.loads(x) for x in res["out"].splitlines()]
    except ValueError:
        lines = []
    texts = [c.get("text", "") for x in lines if x.get("type") == "assistant" for c in x["message"]["content"]]
    t.ok(res["outcome"] == "phase=done code=0 bundle=yes\n" and lines and lines[0].get("session_id") == session
         and lines[0].get("apiKeySource") == "ANTHROPIC_API_KEY" and any("prompt 2 of the session" in x for x in texts),
         "--resume <session> in a new container on the same home/workspace finds the session (ANTHROPIC_API_KEY)",
         summary(res))
    ok = res["bundle"] is not None
    if ok:
        clone = fetch_bundle(res["bundle"], "claude2")
        ok = git("rev-list", "--count", "refs/heads/" + BRANCH, "^" + BASE_COMMIT, cwd=clone) == "2" \
            and git("show", "refs/heads/%s:note2.txt" % BRANCH, cwd=clone) == "again"
    t.ok(ok, "the resumed run's change comes back on top of the first")

    # ---- no change: bundle=no ----
    ws = Workspace(TMP, "nochange")
    res = run(ws, ["sh", "-c", "{prompt}"], prompt="echo nothing to do")
    t.ok(res["exit"] == (0, 0) and res["outcome"] == "phase=done code=0 bundle=no\n" and res["bundle"] is None,
         "no change and no commit: phase=done bundle=no, no out.bundle", summary(res))

    # ---- the executor exits 3: done, code 3, the runner exits 3 ----
    ws = Workspace(TMP, "exit3")
    res = run(ws, ["sh", "-c", "{prompt}"], prompt="echo partial > partial.txt; exit 3")
    t.ok(res["exit"] == (3, 0) and res["outcome"] == "phase=done code=3 bundle=yes\n",
         "an executor exiting 3: outcome phase=done code=3 (its work still bundled), the runner exits 3",
         summary(res))

    # ---- an unknown base branch: phase=clone ----
    ws = Workspace(TMP, "nobase")
    res = run(ws, ["sh", "-c", "{prompt}"], base="nosuch", prompt="touch ran")
    t.ok(res["exit"] == (1, 0) and res["outcome"] == "phase=clone code=-1 bundle=no\n"
         and not os.path.exists(os.path.join(ws.repo, "ran")),
         "an unknown base branch: phase=clone code=-1, exit 1, the executor never runs", summary(res))
    ws = Workspace(TMP, "nocommit")
    res = run(ws, ["sh", "-c", "{prompt}"], base_commit="1" * 40, prompt="touch ran")
    t.ok(res["exit"] == (1, 0) and res["outcome"] == "phase=clone code=-1 bundle=no\n",
         "a base commit that is not in the bundle: phase=clone", summary(res))

    # ---- an executor that cannot be started: phase=executor ----
    ws = Workspace(TMP, "noexec")
    res = run(ws, ["no-such-executor", "{prompt}"], prompt="x", cred=("ANTHROPIC_API_KEY", "k1"))
    t.ok(res["exit"] == (1, 0) and res["outcome"] == "phase=executor code=-1 bundle=no\n"
         and "cannot find the executor no-such-executor" in res["err"],
         "an executor that is not there: phase=executor code=-1, exit 1", summary(res))
    ws = Workspace(TMP, "twocreds")
    res = run(ws, ["sh", "-c", "touch ran"], prompt="x", cred=("ANTHROPIC_API_KEY", "k1"),
              extra_secrets=[("CLAUDE_CODE_OAUTH_TOKEN", b"k2")])
    t.ok(res["exit"] == (1, 0) and res["outcome"] == "phase=executor code=-1 bundle=no\n"
         and not os.path.exists(os.path.join(ws.repo, "ran")),
         "two credential files: phase=executor, the executor never runs", summary(res))

    # ---- a failing setup: phase=setup ----
    ws = Workspace(TMP, "badsetup")
    res = run(ws, ["sh", "-c", "{prompt}"], setup="echo step1 > ~/step1\nfalse\necho step2 > ~/step2\n",
              prompt="touch ran")
    t.ok(res["exit"] == (1, 0) and res["outcome"] == "phase=setup code=-1 bundle=no\n"
         and os.path.exists(os.path.join(ws.home, "step1")) and not os.path.exists(os.path.join(ws.home, "step2"))
         and not os.path.exists(os.path.join(ws.repo, "ran")),
         "a failing setup (sh -e stops at the first failure): phase=setup, exit 1, the executor never runs",
         summary(res))

    # ---- TERM during the executor: the work is still committed and bundled ----
    ws = Workspace(TMP, "term")

    def term(cid, s, r):
        marker = os.path.join(ws.repo, "before-sleep.txt")
        end = time.time() + 60
        while not os.path.exists(marker) and time.time() < end:
            s.read_until(lambda x: r.feed(x.out).exit is not None, 0.2)
        time.sleep(0.3)
        eng.json("POST", "/containers/%s/kill?signal=SIGTERM" % cid, want=(204,))

    t0 = time.time()
    res = run(ws, ["sh", "-c", "{prompt}"], prompt="echo work > before-sleep.txt; sleep 60; echo late > late.txt",
              during=term)
    ok = res["bundle"] is not None
    if ok:
        clone = fetch_bundle(res["bundle"], "term")
        ok = git("show", "refs/heads/%s:before-sleep.txt" % BRANCH, cwd=clone) == "work" \
            and git("ls-tree", "--name-only", "refs/heads/" + BRANCH, cwd=clone).split() == ["README",
                                                                                             "before-sleep.txt"]
    t.ok(res["outcome"] == "phase=done code=143 bundle=yes\n" and res["exit"] == (143, 0) and ok
         and time.time() - t0 < 40,
         "TERM during `sleep` (docker kill -> tini -> the relay -> the group): the executor dies (143), the "
         "runner commits and bundles what it left", summary(res))

    # A TERM while the runner waits for `go`: it ends at once, phase=clone.
    ws = Workspace(TMP, "termgo")

    def term_waiting(cid, s, r):
        s.read_until(lambda x: "waiting for the base branch" in r.feed(x.out).data[2].decode(), 30)
        eng.json("POST", "/containers/%s/kill?signal=SIGTERM" % cid, want=(204,))

    t0 = time.time()
    res = run(ws, ["sh", "-c", "{prompt}"], prompt="touch ran", during=term_waiting, go=False)
    t.ok(res["exit"] == (1, 0) and res["outcome"] == "phase=clone code=-1 bundle=no\n"
         and "stopped before the clone" in res["err"] and time.time() - t0 < 20
         and not os.path.exists(os.path.join(ws.repo, "ran")),
         "TERM while it waits for `go`: phase=clone, exit 1, nothing run", summary(res))

    # ---- hooks planted by the agent do not run at the runner's commit ----
    ws = Workspace(TMP, "hooks")
    plant = ("for h in pre-commit prepare-commit-msg commit-msg post-commit post-index-change reference-transaction; "
             "do printf '#!/bin/sh\\necho %s >> /home/agent/hook-ran\\nexit 1\\n' $h > .git/hooks/$h; "
             "chmod +x .git/hooks/$h; done; mkdir -p myhooks; cp .git/hooks/* myhooks/; "
             "git config core.hooksPath myhooks; git config core.fsmonitor 'echo fsmonitor >> /home/agent/hook-ran'; "
             "echo y > y.txt")
    res = run(ws, ["sh", "-c", "{prompt}"], prompt=plant)
    ok = res["bundle"] is not None
    if ok:
        clone = fetch_bundle(res["bundle"], "hooks")
        ok = git("show", "refs/heads/%s:y.txt" % BRANCH, cwd=clone) == "y"
    t.ok(res["outcome"] == "phase=done code=0 bundle=yes\n" and ok
         and not os.path.exists(os.path.join(ws.home, "hook-ran")),
         "hooks planted in .git/hooks and core.hooksPath, and an fsmonitor, do not run at the runner's commit",
         (read(os.path.join(ws.home, "hook-ran")), summary(res)))

    # ---- the agent switched branches: the attempt branch follows HEAD ----
    ws = Workspace(TMP, "switch")
    res = run(ws, ["sh", "-c", "{prompt}"],
              prompt="git checkout -q -b elsewhere && echo z > z.txt && git add z.txt && "
                     "git commit -q -m 'agent commit' && echo w > w.txt")
    ok = res["bundle"] is not None
    if ok:
        clone = fetch_bundle(res["bundle"], "switch")
        subjects = git("log", "--format=%s", "refs/heads/" + BRANCH, "^" + BASE_COMMIT, cwd=clone).splitlines()
        ok = len(subjects) == 2 and subjects[1] == "agent commit" and \
            git("show", "refs/heads/%s:w.txt" % BRANCH, cwd=clone) == "w"
    t.ok(res["outcome"] == "phase=done code=0 bundle=yes\n" and ok
         and git("branch", "--show-current", cwd=ws.repo) == BRANCH,
         "an agent that switched branches: its commit and what it left uncommitted come back on the "
         "attempt branch, and the workspace is back on it", summary(res))
    heads = bundle_heads(res["bundle"]) if res["bundle"] else None
    t.eq(heads, ["refs/heads/" + BRANCH], "the bundle still carries the attempt branch only")
except Exception:
    t.ok(False, "the test runs to its end", traceback.format_exc())
finally:
    cleanup()
    # The workspaces belong to uid 1000 (files made in the containers): root removes them.
    shutil.rmtree(TMP, ignore_errors=True)
t.done()
