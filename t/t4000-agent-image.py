#!/usr/bin/env python3
"""The agent image (container/): built without pulling anything, a non-root
user without sudo, the claude stand-in, and anyon-entry receiving secrets
through the container's stdin the way the worker will hand them: 0600 files
of uid 1000 on a tmpfs, absent from inspect, /proc, the image and the host's
container files, gone with the container.

Talks to the real Docker engine (http over its unix socket); a missing engine
is a failure, never a skip. The image is ANYON_AGENT_IMAGE (./dev test
exports it) or whatever container/build-image reuses or builds."""
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import BUILDDIR, SRCDIR, TAP
from enginestream import engine_and_image

t = TAP()
LABEL = "anyon.test=t4000-%d" % os.getpid()
SECRETS_DIR = "/run/anyon/secrets"
TMPFS = {SECRETS_DIR: "rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=1000"}


# ---- the raw Engine client and Stream are in t/lib/enginestream.py ----

def bundle(items):
    """The secret bundle of container/bundle.h."""
    b = b"anyon-secrets 1\n"
    for name, value in items:
        b += b"secret %s %d\n" % (name.encode(), len(value)) + value + b"\n"
    return b + b"end\n"


# ---- the engine and the image ----

eng, IMAGE = engine_and_image(t)
img_q = urllib.parse.quote(IMAGE, safe="")
st, _, data = eng.call("GET", "/images/%s/json" % img_q)
t.ok(st == 200 and re.fullmatch(r"anyon-agent:[0-9a-f]{20}", IMAGE), "the image %s exists" % IMAGE, st)
if st != 200:
    t.done()
info = json.loads(data)
t.eq(info["Config"]["User"], "1000:1000", "the image runs as uid:gid 1000:1000")
t.eq(info["Config"]["Entrypoint"], ["/usr/local/bin/anyon-entry"], "the entry point is anyon-entry")
layers = info["RootFS"]["Layers"]
base = [tag for im in (eng.json("GET", "/images/json") or []) for tag in (im.get("RepoTags") or [])
        if tag.startswith("anyon-base:")
        and eng.json("GET", "/images/%s/json" % urllib.parse.quote(tag, safe=""))["RootFS"]["Layers"] == layers[:1]]
t.ok(base, "its first layer is a debootstrapped anyon-base (an import, no pulled image)", layers[:1])


def create(cmd, env=(), user="1000:1000", mounts=(), stdin=True, init=True):
    body = {"Image": IMAGE, "Cmd": cmd, "User": user, "Tty": False,
            "Env": ["TINI_KILL_PROCESS_GROUP=1"] + list(env),
            "Labels": {"anyon.test": LABEL.split("=", 1)[1]},
            "OpenStdin": stdin, "StdinOnce": stdin, "AttachStdin": stdin,
            "AttachStdout": True, "AttachStderr": True,
            "HostConfig": {"CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                           "Init": init, "Tmpfs": TMPFS, "NetworkMode": "none",
                           "LogConfig": {"Type": "none", "Config": {}},
                           "Memory": 512 << 20, "PidsLimit": 256, "Mounts": list(mounts)}}
    return eng.json("POST", "/containers/create", body)["Id"]


def start_attached(cid):
    """Attach before start (so nothing is missed and stdin is ours), then start."""
    s = eng.hijack("/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1" % cid)
    eng.json("POST", "/containers/%s/start" % cid, want=(204,))
    return s


def wait(cid):
    return eng.json("POST", "/containers/%s/wait?condition=not-running" % cid)["StatusCode"]


def remove(cid):
    st, _, _ = eng.call("DELETE", "/containers/%s?force=1&v=1" % cid)
    return st


def run(cmd, stdin=b"", **kw):
    """(exit status, stdout, stderr) of a container created like anyon's."""
    cid = create(cmd, **kw)
    try:
        s = start_attached(cid)
        s.send(stdin)
        out, err = s.read_all()
        return wait(cid), out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    finally:
        remove(cid)


def exec_in(cid, cmd, stdin=None, user="1000:1000"):
    """(exit status, stdout, stderr) of an exec, its stdin sent and closed."""
    eid = eng.json("POST", "/containers/%s/exec" % cid,
                   {"Cmd": cmd, "User": user, "AttachStdin": stdin is not None,
                    "AttachStdout": True, "AttachStderr": True, "Tty": False})["Id"]
    s = eng.hijack("/exec/%s/start" % eid, {"Detach": False, "Tty": False})
    if stdin is not None:
        s.send(stdin)
    out, err = s.read_all()
    for _ in range(100):
        ins = eng.json("GET", "/exec/%s/json" % eid)
        if not ins["Running"]:
            break
        time.sleep(0.05)
    return ins["ExitCode"], out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), eid


def cleanup():
    f = urllib.parse.quote(json.dumps({"label": [LABEL]}))
    for c in eng.json("GET", "/containers/json?all=1&filters=" + f) or []:
        remove(c["Id"])


tmp = tempfile.mkdtemp(prefix="anyon-t4000-")
try:
    # ---- the user, no way up ----
    code, out, err = run(["--", "sh", "-c", "id -u; id -g; id -G; command -v sudo || echo no-sudo; "
                          "test -e /etc/sudoers || echo no-sudoers; "
                          "find / -xdev -type f -perm /6000 2>/dev/null; echo end"])
    t.eq((code, out), (0, "1000\n1000\n1000\nno-sudo\nno-sudoers\nend\n"),
         "runs as uid 1000 (gid 1000, no other group), no sudo, no setuid or setgid file")
    code, out, err = run(["--", "id"], user="0:0")
    t.ok(code == 126 and out == "" and "refusing to run as root" in err,
         "anyon-entry refuses to run as root (126) and runs nothing", (code, out, err))
    code, out, err = run(["--", "sh", "-c", "readlink /proc/self/fd/0; echo $$ $(cut -d' ' -f5 /proc/$$/stat)"])
    pid, pgid = out.split()[1:3] if len(out.split()) == 3 else ("?", "!")
    t.ok(code == 0 and out.startswith("/dev/null\n") and pid == pgid,
         "the program's stdin is /dev/null and it leads its own process group", out)
    code, out, err = run(["--", "sh", "-c", "git --version && node --version && /bin/kill --version"])
    t.ok(code == 0 and out.startswith("git version ") and "\nv18." in out and "procps" in out,
         "git, Node.js from Debian and procps' kill are in the image", (out, err))

    # ---- the claude stand-in ----
    code, out, err = run(["--", "claude", "--version"])
    t.ok(code == 0 and re.fullmatch(r"\d+\.\d+\.\d+ \(Claude Code\)\n", out),
         "claude --version prints 'X.Y.Z (Claude Code)'", (code, out, err))

    cred = json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-" + secrets.token_urlsafe(60),
                                         "refreshToken": None, "expiresAt": int(time.time() + 86400) * 1000,
                                         "scopes": ["user:inference"]}}).encode()
    ws = os.path.join(tmp, "ws")
    os.mkdir(ws)
    os.chown(ws, 1000, 1000)
    bind = {"Type": "bind", "Source": ws, "Target": "/workspace"}
    stream_cmd = ["--", "claude", "-p", "hello; write note.txt: from the agent", "--output-format",
                  "stream-json", "--verbose"]
    code, out, err = run(stream_cmd, stdin=bundle([(".credentials.json", cred)]),
                         env=["CLAUDE_CONFIG_DIR=" + SECRETS_DIR], mounts=[bind])
    try:
        lines = [json.loads(x) for x in out.splitlines()]
    except ValueError:
        lines = []
    kinds = [(x.get("type"), x.get("subtype")) for x in lines]
    t.eq((code, kinds), (0, [("system", "init"), ("assistant", None), ("assistant", None),
                              ("user", None), ("result", "success")]),
         "a stream-json run with a credential file from the bundle: init, text, tool_use, tool result, result")
    if len(lines) == 5:
        init, text, use, res, final = lines
        t.ok(init["session_id"] and init["cwd"] == "/workspace" and init["model"] and init["tools"]
             and init["permissionMode"] == "default", "init has session_id, cwd, model, tools, permissionMode", init)
        t.eq(text["message"]["content"], [{"type": "text", "text": "You said: hello"}], "assistant text content")
        tu = use["message"]["content"][0]
        t.ok(tu["type"] == "tool_use" and tu["name"] == "Write" and tu["id"].startswith("toolu_")
             and tu["input"] == {"file_path": "note.txt", "content": "from the agent"}, "assistant tool_use", tu)
        tr = res["message"]["content"][0]
        t.ok(tr["type"] == "tool_result" and tr["tool_use_id"] == tu["id"], "user tool_result answers it", tr)
        t.ok(final["is_error"] is False and final["num_turns"] == 2 and final["session_id"] == init["session_id"]
             and isinstance(final["duration_ms"], int) and "total_cost_usd" in final and "usage" in final
             and final["result"] == "You said: hello", "result: is_error, result, duration_ms, num_turns, "
             "total_cost_usd, usage, session_id", final)
    note = os.path.join(ws, "note.txt")
    t.ok(os.path.exists(note) and open(note).read() == "from the agent" and os.stat(note).st_uid == 1000,
         "the file it wrote is in the bound workspace, owned by uid 1000")
    t.ok(cred not in out.encode() and cred.split(b'"')[5] not in (out + err).encode(),
         "the run prints nothing of the credential")

    code, out, err = run(["--", "claude", "-p", "print 200000 bytes; run id -u; stderr note", "--output-format",
                          "stream-json", "--verbose"], stdin=bundle([(".credentials.json", cred)]),
                         env=["CLAUDE_CONFIG_DIR=" + SECRETS_DIR])
    lines = [json.loads(x) for x in out.splitlines()] if code == 0 else []
    texts = [c["text"] for x in lines if x["type"] == "assistant" for c in x["message"]["content"]
             if c["type"] == "text"]
    results = [c["content"] for x in lines if x["type"] == "user" for c in x["message"]["content"]]
    t.ok(sum(len(x) for x in texts) == 200000 and len(texts) == 4 and results == ["1000\n"] and err == "note\n",
         "directives: 'print N bytes' (64 KiB blocks), 'run CMD' as a Bash tool, 'stderr TEXT'",
         (code, [len(x) for x in texts], results, err))
    code, out, err = run(stream_cmd[:3] + ["--output-format", "stream-json"])
    t.ok(code == 1 and "requires --verbose" in err, "stream-json without --verbose exits 1, as the CLI does", err)
    code, out, err = run(stream_cmd)
    last = json.loads(out.splitlines()[-1]) if out.strip() else {}
    t.ok(code == 1 and last.get("type") == "result" and last.get("is_error") is True
         and last.get("result") == "Invalid API key · Please run /login",
         "without a credential: 'Invalid API key · Please run /login', is_error, exit 1", (code, out[-400:]))
    expired = json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-x", "expiresAt": 1000}}).encode()
    code, out, err = run(stream_cmd, stdin=bundle([(".credentials.json", expired)]),
                         env=["CLAUDE_CONFIG_DIR=" + SECRETS_DIR])
    last = json.loads(out.splitlines()[-1]) if out.strip() else {}
    t.ok(code == 1 and last.get("result") == "OAuth token has expired · Please run /login",
         "an expired credential file: 'OAuth token has expired · Please run /login'", (code, out[-400:]))
    code, out, err = run(["--", "claude", "auth", "status"], stdin=bundle([(".credentials.json", cred)]),
                         env=["CLAUDE_CONFIG_DIR=" + SECRETS_DIR])
    t.ok(code == 0 and json.loads(out) == {"loggedIn": True, "authMethod": "claude.ai", "apiProvider": "firstParty"},
         "auth status: JSON, signed in", (code, out))
    code, out, err = run(["--", "claude", "auth", "status"])
    t.ok(code == 1 and json.loads(out)["loggedIn"] is False, "auth status signed out: loggedIn false, exit 1", out)

    # --resume: the session lives in the config dir, here a bound folder.
    cfg = os.path.join(tmp, "cfg")
    os.mkdir(cfg, 0o700)
    with open(os.path.join(cfg, ".credentials.json"), "wb") as f:
        f.write(cred)
    for p in (cfg, os.path.join(cfg, ".credentials.json")):
        os.chown(p, 1000, 1000)
    cfg_mount = {"Type": "bind", "Source": cfg, "Target": "/home/agent/.claude"}
    code, out, err = run(["--", "claude", "-p", "first", "--output-format", "json"], mounts=[cfg_mount])
    first = json.loads(out) if code == 0 else {}
    code, out, err = run(["--", "claude", "-p", "second", "--output-format", "stream-json", "--verbose",
                          "--resume", first.get("session_id", "none")], mounts=[cfg_mount])
    lines = [json.loads(x) for x in out.splitlines()] if code == 0 else []
    t.ok(first.get("type") == "result" and lines and lines[0]["session_id"] == first["session_id"]
         and "prompt 2 of the session" in lines[1]["message"]["content"][0]["text"],
         "--resume continues the session (json output, then stream-json)", (first, out[:600], err))
    code, out, err = run(["--", "claude", "-p", "x", "--resume", "00000000-0000-0000-0000-000000000000"],
                         mounts=[cfg_mount])
    t.ok(code == 1 and "No conversation found" in err, "--resume of an unknown session fails", (code, err))

    # SIGTERM through tini (Init, TINI_KILL_PROCESS_GROUP=1) to the group.
    signed_in = bundle([(".credentials.json", cred)])
    cfg_env = ["CLAUDE_CONFIG_DIR=" + SECRETS_DIR]
    cid = create(["--", "claude", "-p", "children 2; sleep 60", "--output-format", "stream-json", "--verbose"],
                 env=cfg_env)
    s = start_attached(cid)
    s.send(signed_in)
    s.read_until(lambda s: b'"subtype":"init"' in s.out, 30)
    for _ in range(50):
        c2, ps, _, _ = exec_in(cid, ["sh", "-c", "ps -eo pgid,comm --no-headers"])
        if ps.count("sleep") >= 2:
            break
        time.sleep(0.1)
    groups = {tuple(x.split()) for x in ps.splitlines() if x.split()[1:] in (["node"], ["sleep"])}
    eng.json("POST", "/containers/%s/kill?signal=SIGTERM" % cid, want=(204,))
    out, err = s.read_all(30)
    code = wait(cid)
    remove(cid)
    t.ok(ps.count("sleep") == 2 and len({g for g, _ in groups}) == 1,
         "the stand-in started two children in its process group", ps)
    t.ok(code == 143 and b'"type":"result"' not in out and out.count(b"\n") == 1,
         "SIGTERM: exit 143, no result line", (code, out[-300:], err))
    cid = create(["--", "claude", "-p", "ignore TERM; children 2; sleep 60", "--output-format", "stream-json",
                  "--verbose"], env=cfg_env)
    s = start_attached(cid)
    s.send(signed_in)
    s.read_until(lambda s: b'"subtype":"init"' in s.out, 30)
    for _ in range(50):
        before = exec_in(cid, ["sh", "-c", "ps -eo comm --no-headers"])[1]
        if before.count("sleep") >= 2:
            break
        time.sleep(0.1)
    eng.json("POST", "/containers/%s/kill?signal=SIGTERM" % cid, want=(204,))
    s.read_until(lambda s: b"ignoring SIGTERM" in s.err, 10)
    for _ in range(50):
        after = exec_in(cid, ["sh", "-c", "ps -eo comm --no-headers"])[1]
        if "sleep" not in after:
            break
        time.sleep(0.1)
    alive = eng.json("GET", "/containers/%s/json" % cid)["State"]["Running"]
    t.ok(before.count("sleep") == 2 and "sleep" not in after and "node" in after,
         "TERM reaches the whole group: the children end while the stand-in ignoring TERM lives on",
         (before, after))
    eng.json("POST", "/containers/%s/kill?signal=SIGKILL" % cid, want=(204,))
    s.read_all(30)
    code = wait(cid)
    remove(cid)
    t.ok(alive and code == 137, "'ignore TERM' keeps it running after TERM; KILL ends it (137)", (alive, code))

    # ---- a secret through the wrapper's stdin, as the worker will send it ----
    secret = ("sk-ant-oat01-" + secrets.token_urlsafe(72)).encode()
    second = ("ghu_" + secrets.token_hex(18)).encode()
    digest = hashlib.sha256(secret).hexdigest()
    cid = create(["--", "sh", "-c", "stat -c '%a %u %g %F' " + SECRETS_DIR + "/claude-token; "
                  "sha256sum < " + SECRETS_DIR + "/claude-token; echo ready; exec sleep 300"])
    upper = eng.json("GET", "/containers/%s/json" % cid)["GraphDriver"]["Data"].get("UpperDir", "")
    s = start_attached(cid)
    s.send(bundle([("claude-token", secret)]))
    s.read_until(lambda s: b"ready" in s.out, 30)
    lines = s.out.decode().splitlines()
    t.eq(lines[:1], ["600 1000 1000 regular file"], "the secret is a 0600 file of uid/gid 1000")
    t.ok(len(lines) > 1 and lines[1].split()[0] == digest, "the program reads it whole", lines)
    t.ok(secret not in s.out + s.err, "the wrapper echoes nothing of it")

    code, out, err, eid = exec_in(cid, ["/usr/local/bin/anyon-entry"], stdin=bundle([("github-token", second)]))
    code2, out2, _, _ = exec_in(cid, ["sh", "-c", "stat -c '%a %u' " + SECRETS_DIR + "/github-token; "
                                      "sha256sum < " + SECRETS_DIR + "/github-token"])
    t.ok(code == 0 and code2 == 0 and out2.split()[:3] == ["600", "1000", hashlib.sha256(second).hexdigest()],
         "an exec of anyon-entry without a program adds a secret later", (code, err, out2))
    code, out, err, _ = exec_in(cid, ["/usr/local/bin/anyon-entry"], stdin=bundle([("claude-token", b"other")]))
    code2, out2, _, _ = exec_in(cid, ["sha256sum", SECRETS_DIR + "/claude-token"])
    t.ok(code == 125 and out2.split()[:1] == [digest], "an existing secret is not overwritten", (code, err, out2))

    code, out, err, _ = exec_in(cid, ["sh", "-c", "cat " + SECRETS_DIR + "/claude-token"], user="0:0")
    t.ok(code != 0 and secret not in out.encode(), "root in the container (no capabilities) cannot read it",
         (code, err))
    code, procs, err, _ = exec_in(cid, ["sh", "-c", "for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; "
                                        "do cat $f; echo; done 2>/dev/null"])
    pb = procs.encode()
    t.ok(b"TINI_KILL_PROCESS_GROUP=1" in pb and b"sleep" in pb and b"anyon-entry" in pb,
         "every process's environ and cmdline in the container was read", procs[:300])
    t.ok(secret not in pb and second not in pb, "no secret in any /proc/*/environ or /proc/*/cmdline")
    cins = eng.call("GET", "/containers/%s/json" % cid)[2]
    eins = eng.call("GET", "/exec/%s/json" % eid)[2]
    iins = eng.call("GET", "/images/%s/json" % img_q)[2] + eng.call("GET", "/images/%s/history" % img_q)[2]
    t.ok(secret not in cins and second not in cins, "no secret in docker inspect of the container")
    t.ok(second not in eins, "nor in the inspect of the exec that added one")
    t.ok(secret not in iins and second not in iins, "nor in the image's inspect and history")
    host_files, found = 0, []
    for root in filter(os.path.isdir, [upper, "/var/lib/docker/containers/" + cid]):
        for d, _, files in os.walk(root):
            for fn in files:
                p = os.path.join(d, fn)
                if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < (64 << 20):
                    host_files += 1
                    with open(p, "rb") as f:
                        data = f.read()
                    if secret in data or second in data:
                        found.append(p)
    t.ok(upper and os.path.isdir(upper) and host_files > 0 and not found,
         "nor in the container's files on the host (its upper layer, config, logs)", (upper, host_files, found))
    st = remove(cid)
    st2, _, _ = eng.call("GET", "/containers/%s/json" % cid)
    t.ok(st == 204 and st2 == 404 and not os.path.exists(upper),
         "DELETE ?force=1&v=1 removes the container, its tmpfs and its layer", (st, st2))
    s.read_all(10)

    # ---- hostile bundles through a real container: nothing written, nothing run ----
    probe = ["--", "sh", "-c", "echo ran; ls -A " + SECRETS_DIR]
    code, out, err = run(probe, stdin=bundle([("ok", b"v1"), ("../escape", b"v2")]))
    t.ok(code == 125 and out == "" and "nothing written" in err and "escape" not in err,
         "a bundle with a '../' name: exit 125, the program never runs", (code, out, err))
    code, out, err = run(probe, stdin=bundle([("ok", b"v1")])[:-4])
    t.ok(code == 125 and out == "" and "without \"end\"" in err, "a truncated bundle: exit 125", (code, out, err))
    code, out, err = run(probe, stdin=b"x" * (1024 * 1024 + 10))
    t.ok(code == 125 and out == "" and "larger than" in err, "an oversized bundle: exit 125", (code, out, err))
    code, out, err = run(probe, stdin=bundle([("a", b"1"), ("b", b"2")]))
    t.eq((code, out), (0, "ran\na\nb\n"), "a good bundle: its files and only those, then the program")
    code, out, err = run(probe, stdin=bundle([("a", b"1")]), init=False)
    t.eq((code, out), (0, "ran\na\n"), "the same without Init (the wrapper under PID 1)")
    # The wrapper stops reading at the bundle's end: a stdin never closed
    # (a half-close the engine did not pass on) does not hold the program.
    for what, data in (("a bundle", bundle([("a", b"1")])), ("the empty bundle", b"anyon-secrets 1\nend\n")):
        cid = create(probe)
        try:
            s = start_attached(cid)
            s.send(data, close=False)
            ended = s.read_until(lambda x: x.eof, timeout=30)
            s.close()
            t.ok(ended and wait(cid) == 0 and s.out.decode().startswith("ran\n"),
                 "%s and stdin left open: the program runs and the container ends" % what, (s.out, s.err))
        finally:
            remove(cid)

    # ---- build-image: a lock, and the tag reused ----
    lock = os.path.join(tmp, "lock")
    env = dict(os.environ, ANYON_IMAGE_LOCK=lock)
    cmd = [os.path.join(SRCDIR, "container", "build-image"), "--quiet",
           "--entry", os.path.join(BUILDDIR, "anyon-entry")]
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        time.sleep(1.5)
        waiting = [p.poll() is None for p in procs]
        fcntl.flock(held, fcntl.LOCK_UN)
    outs = [p.communicate(timeout=600) for p in procs]
    t.ok(all(waiting), "build-image waits while another holds its lock", waiting)
    t.ok(all(p.returncode == 0 for p in procs) and [o[0].decode().strip() for o in outs] == [IMAGE, IMAGE],
         "two concurrent runs both print the existing tag (content hash reused)", outs)
except Exception:
    t.ok(False, "the test runs to its end", traceback.format_exc())
finally:
    cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
t.done()
