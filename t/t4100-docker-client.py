#!/usr/bin/env python3
"""The Docker Engine API client (services/docker.c) against the real engine,
through t/helper/docker-check: version negotiation, a locked-down create
checked through an independent inspect, attach before start with a stdin
bundle and half-close, stdout/stderr separation and order, exit codes, exec
with stdin, kill TERM then KILL, wait, list by label, remove. Then against a
stand-in engine on a unix socket: a newer API version is used in every path
(never pinned), DOCKER_HOST is honoured and other schemes refused, engine
errors come through as the engine's message, oversize and broken answers
are refused. Docker missing is a failure, never a skip."""
import http.server, json, os, re, shutil, socketserver, subprocess, sys, tempfile, threading, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, SRCDIR, wait_until
import dockertest

t = TAP()
HELPER = os.path.join(BUILDDIR, "t", "helper", "docker-check")
SCRATCH = tempfile.mkdtemp(prefix="anyon-t4100-")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")
reports = []


def helper(*args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("ANYON_DOCKER_SOCKET", "DOCKER_HOST")}
    e.update(env or {})
    e["ANYON_DATA_DIR"] = SCRATCH
    p = subprocess.run([HELPER] + list(args), capture_output=True, env=e, timeout=120, cwd=SCRATCH)
    try:
        out = json.loads(p.stdout.decode())
    except ValueError:
        out = {"unparsed": p.stdout.decode(errors="replace"), "stderr": p.stderr.decode(errors="replace")}
    out["rc"] = p.returncode
    if SANITIZER.search(p.stderr.decode(errors="replace")):
        reports.append((args, p.stderr.decode(errors="replace")[:2000]))
    return out


def versioned(out, api):
    """Every path but /_ping carries /v{api}/."""
    paths = out.get("paths", [])
    return bool(paths) and all(p == "GET /_ping" or p.split(" ", 1)[1].startswith("/v%s/" % api) for p in paths)


try:
    eng = dockertest.Engine()
    image = dockertest.busybox_image(eng)
except Exception as e:   # DockerMissing or a failed import: fail loudly
    t.ok(False, "Docker and the busybox test image are available", str(e))
    t.done()

label = "t4100-" + uuid.uuid4().hex[:12]
work = os.path.join(SCRATCH, "work")
os.mkdir(work)
os.chmod(work, 0o777)
created = []


def create(cmd, stdin=True, lab=label, mount=work):
    out = helper("create", image, lab, mount, "stdin" if stdin else "nostdin", "--", *cmd)
    if out.get("id"):
        created.append(out["id"])
    return out


try:
    # ---- version negotiation ----
    out = helper("ping")
    t.eq(out.get("api"), eng.api, "the API version comes from /_ping's Api-Version")
    status, ver = eng.get("/version")
    t.eq(out.get("probe"), "%s (API %s)" % (ver["Version"], ver["ApiVersion"]),
         "the heartbeat's probe says ENGINE (API X.Y) as before")
    t.ok(versioned(out, eng.api) and "GET /v%s/version" % eng.api in out["paths"],
         "the probe's /version carries the negotiated version", out)

    # ---- create, locked down, checked through an independent inspect ----
    script = ('umask 077; cat > /run/secrets/bundle; echo one; sleep 0.3; echo two >&2; sleep 0.3; '
              'echo three; stat -c "%a %u" /run/secrets/bundle; id -u; exit 7')
    out = create(["sh", "-c", script])
    t.ok(out["rc"] == 0 and out.get("verified") is True, "create, and the client's own inspect check passes", out)
    cid = out.get("id", "")
    t.ok(re.fullmatch(r"[0-9a-f]{64}", cid) is not None, "a 64-hex container id")
    doc = eng.inspect(cid) or {}
    hc, cfg = doc.get("HostConfig", {}), doc.get("Config", {})
    t.eq(cfg.get("User"), "1000:1000", "inspect: User 1000:1000")
    t.eq(hc.get("CapDrop"), ["ALL"], "inspect: CapDrop ALL")
    t.eq(hc.get("SecurityOpt"), ["no-new-privileges"], "inspect: no-new-privileges")
    t.eq(hc.get("Tmpfs"), {"/run/secrets": "rw,noexec,nosuid,size=1m,mode=0700,uid=1000,gid=1000"},
         "inspect: the secrets tmpfs in the string form")
    mounts = hc.get("Mounts") or []
    t.ok(len(mounts) == 1 and mounts[0].get("Type") == "bind" and mounts[0].get("Source") == work
         and mounts[0].get("Target") == "/work" and not hc.get("Binds"),
         "inspect: the workspace through Mounts, no Binds", hc.get("Mounts"))
    t.ok(hc.get("Memory") == 256 << 20 and hc.get("PidsLimit") == 64 and hc.get("NanoCpus") == 500000000,
         "inspect: memory, pids and CPU limits", (hc.get("Memory"), hc.get("PidsLimit"), hc.get("NanoCpus")))
    t.ok(hc.get("Init") is True and hc.get("NetworkMode") == "none", "inspect: Init, no network")
    t.eq((hc.get("LogConfig") or {}).get("Type"), "none", "inspect: log driver none (no output at rest)")
    t.ok(cfg.get("Labels", {}).get("anyon.test") == label and cfg.get("OpenStdin") is True
         and cfg.get("StdinOnce") is True and cfg.get("Tty") is False, "inspect: labels, stdin once, no TTY")
    t.eq([v for v in cfg.get("Env") or [] if v.startswith("TINI")], ["TINI_KILL_PROCESS_GROUP=1"],
         "inspect: only the environment asked for")

    # ---- attach before start: stdin bundle, half-close, output in order ----
    out = helper("run", cid, "bundle-bytes")
    t.eq(out.get("rc"), 0, "attach, start, send, half-close, read to EOF, wait")
    t.eq(out.get("events"), [["stdout", "one\n"], ["stderr", "two\n"],
                             ["stdout", "three\n600 1000\n1000\n"]],
         "stdout and stderr apart and in order; the bundle became a 0600 uid-1000 file; runs as 1000")
    t.eq(out.get("exit"), 7, "the exit code comes back through wait")
    t.ok(out.get("timeouts", 0) >= 1, "the stream read returned on its timeout while waiting (lease renewal point)",
         out.get("timeouts"))
    t.ok(versioned(out, eng.api), "attach, start and wait paths carry the negotiated version", out.get("paths"))
    out = helper("inspect", cid)
    t.ok(out.get("state") == "exited" and out.get("exit") == 7 and out.get("running") is False
         and out.get("oom_killed") is False and out.get("pid") == 0, "inspect: exited, 7, not OOM-killed", out)

    # ---- exec with stdin in a running container ----
    out = create(["sleep", "300"], stdin=False)
    sid = out.get("id", "")
    t.eq(helper("start", sid).get("rc"), 0, "start a long-running container")
    out = helper("inspect", sid)
    t.ok(out.get("running") is True and out.get("pid", 0) > 0, "inspect: running with a host pid", out)
    out = helper("exec", sid, "through exec stdin", "--", "sh", "-c", "cat; sleep 0.3; echo err >&2; exit 3")
    # Order across the two streams holds only with a pause: the engine
    # copies stdout and stderr separately (each stream keeps its own order).
    t.eq(out.get("events"), [["stdout", "through exec stdin"], ["stderr", "err\n"]],
         "exec: stdin reaches the process, output comes back per stream")
    t.ok(out.get("exit") == 3 and out.get("running") is False and out.get("pid", 0) > 0,
         "exec inspect: exit 3, not running, its pid", out)
    out = helper("exec", sid, "-", "--", "sh", "-c", "echo no stdin; exit 0")
    t.ok(out.get("events") == [["stdout", "no stdin\n"]] and out.get("exit") == 0, "exec without stdin", out)
    t.ok(versioned(out, eng.api), "exec paths carry the negotiated version", out.get("paths"))
    out = helper("exec-tty", sid, "-", "--", "sh", "-c", "echo out; echo err >&2")
    t.ok(out.get("events") == [["raw", "out\r\nerr\r\n"]] and out.get("exit") == 0,
         "exec with a TTY: one raw stream, no frame headers", out)
    out = helper("exec", "f" * 64, "-", "--", "true")
    t.ok(out["rc"] == 1 and "No such container" in out.get("error", "") and out.get("status") == 404,
         "exec in a missing container: the engine's message", out)

    # ---- kill: TERM honoured, TERM ignored then KILL ----
    def started_with_trap(cmd):
        """Starts a container whose script touches /tmp/ready once its trap
        is set, and waits for that (a signal before it would race)."""
        kid = create(["sh", "-c", cmd], stdin=False).get("id", "")
        helper("start", kid)
        ready = wait_until(lambda: helper("exec", kid, "-", "--", "stat", "/tmp/ready").get("exit") == 0,
                           timeout=15, interval=0.1)
        t.ok(ready, "the container's TERM trap is set")
        return kid

    kid = started_with_trap('trap "exit 42" TERM; touch /tmp/ready; while true; do sleep 0.1; done')
    t.eq(helper("kill", kid, "TERM").get("rc"), 0, "kill TERM")
    t.eq(helper("wait", kid, "10000").get("exit"), 42, "wait: the TERM handler's exit code")
    kid = started_with_trap('trap "" TERM; touch /tmp/ready; while true; do sleep 0.1; done')
    helper("kill", kid, "SIGTERM")
    out = helper("wait", kid, "1500")
    t.ok(out["rc"] == 1 and "wait" in out.get("error", ""), "wait gives up at its time limit when TERM is ignored", out)
    t.eq(helper("inspect", kid).get("running"), True, "still running after an ignored TERM")
    t.eq(helper("kill", kid, "KILL").get("rc"), 0, "kill KILL")
    t.eq(helper("wait", kid, "10000").get("exit"), 137, "wait: 137 after KILL")
    out = helper("kill", kid, "TERM;rm")
    t.ok(out["rc"] == 1 and "bad signal" in out.get("error", "") and out.get("paths") == [],
         "a malformed signal is refused before any request", out)

    # ---- refusals surfaced ----
    out = create(["true"], mount=os.path.join(SCRATCH, "missing"))
    t.ok(out["rc"] == 1 and "bind source path does not exist" in out.get("error", ""),
         "a missing bind source: refused (Mounts, not Binds), the engine's message", out)
    t.ok(not os.path.exists(os.path.join(SCRATCH, "missing")), "and nothing was created on the host")
    out = helper("create", image, label, work, "nostdin", "--", "true", env={"DOCKER_CHECK_TMPFS": "rw,size=bogus"})
    created.append(out.get("id", ""))
    t.ok(out["rc"] == 0, "bad tmpfs options pass create (the engine checks them only at start)", out)
    out = helper("start", out.get("id", ""))
    t.ok(out["rc"] == 1 and out.get("status") == 500 and "start: " in out.get("error", "")
         and "size=bogus: invalid argument" in out["error"] and out["error"].endswith("(HTTP 500)"),
         "and start refuses them with a 500 whose message comes through", out)
    out = helper("create", "anyon-test-no-such-image:1", label, work, "nostdin", "--", "true")
    t.ok(out["rc"] == 1 and "No such image" in out.get("error", ""), "a missing image: the engine's message", out)
    out = helper("inspect", "../../etc")
    t.ok(out["rc"] == 1 and out.get("paths") == [], "an id that is a path is refused before any request", out)

    # ---- list by label, remove ----
    out = helper("list", "anyon.test=" + label)
    t.ok(out.get("rc") == 0 and sorted(out.get("ids", [])) == sorted(created) and out.get("count") == len(created),
         "list by label finds exactly this test's %d containers" % len(created), out)
    t.eq(helper("list", "anyon.test=" + label + "-other").get("count"), 0, "another label value finds none")
    t.ok("%22label%22" in " ".join(helper("list", "anyon.test=" + label)["paths"]),
         "the filters are URL-encoded JSON")
    bad = [c for c in created if helper("remove", c).get("rc") != 0]
    t.eq(bad, [], "remove (force, volumes) each")
    t.eq(helper("list", "anyon.test=" + label).get("count"), 0, "none left with the label")
    t.ok(eng.inspect(cid) is None, "the engine no longer knows the container")
    t.eq(helper("remove", cid).get("rc"), 0, "removing a container already gone is fine")
finally:
    eng.remove_label("anyon.test=" + label)


# ---- a stand-in engine: another version, DOCKER_HOST, hostile answers ----
def frame(stream, data):
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


class Fake(http.server.BaseHTTPRequestHandler):
    seen = []
    api = "1.44"
    ping_version = True

    def log_message(self, *a):
        pass

    def answer(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        Fake.seen.append(("GET", self.path))
        if self.path == "/_ping":
            return self.answer(200, b"OK", "text/plain",
                               [("Api-Version", Fake.api)] if Fake.ping_version else [])
        if not self.path.startswith("/v%s/" % Fake.api):
            return self.answer(400, {"message": "client version too old"})
        rest = self.path[len("/v%s" % Fake.api):]
        if rest == "/version":
            return self.answer(200, {"Version": "29.1.0", "ApiVersion": Fake.api})
        if rest.startswith("/containers/big/json"):
            return self.answer(200, b'{"x":"' + b"a" * (2 << 20) + b'"}')
        if rest.startswith("/containers/ctl/json"):
            return self.answer(500, {"message": "boom\x01\x1b[31m here"})
        if rest.startswith("/exec/"):
            return self.answer(200, {"Running": False, "ExitCode": 0, "Pid": 12})
        if rest.startswith("/containers/slow/json"):
            time.sleep(3)
            return self.answer(200, {})
        if rest.startswith("/containers/weird/json"):
            return self.answer(200, {"State": {"Status": "running", "Running": True, "OOMKilled": False,
                                               "ExitCode": 99999, "Pid": 5}})
        return self.answer(404, {"message": "No such container: x"})

    def do_POST(self):
        Fake.seen.append(("POST", self.path))
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        v = "/v%s" % Fake.api
        if self.path.startswith(v + "/containers/") and self.path.endswith("/exec"):
            kind = self.path.split("/")[3]
            return self.answer(201, {"Id": {"early": "e", "badframe": "b", "cut": "c", "slow": "5"}.get(kind, "0") * 64})
        if self.path.startswith(v + "/exec/") and self.path.endswith("/start"):
            # The head and the first frames in one write: bytes after the
            # head are already in the client's buffer.
            eid = self.path.split("/")[3]
            if eid[0] == "5":
                time.sleep(3)
                return
            frames = {"e": frame(1, b"early\n") + frame(2, b"late\n") + frame(1, b"tail"),
                      "b": frame(1, b"ok\n") + b"\x07\0\0\0\0\0\0\x01x",
                      "c": frame(1, b"ok\n") + frame(1, b"cut")[:7]}[eid[0]]
            self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                             b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frames)
            self.wfile.flush()
            self.close_connection = True
            return
        if "/attach" in self.path:
            return self.answer(409, {"message": "container is not running, cannot attach"})
        return self.answer(404, {"message": "No such container: x"})


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


sock = os.path.join(SCRATCH, "fake.sock")
srv = Server(sock, Fake)
threading.Thread(target=srv.serve_forever, daemon=True).start()
try:
    env = {"DOCKER_HOST": "unix://" + sock}
    out = helper("ping", env=env)
    t.ok(out.get("api") == "1.44" and out.get("probe") == "29.1.0 (API 1.44)",
         "DOCKER_HOST=unix:// is honoured; a 1.44 engine gets 1.44", out)
    t.ok(("GET", "/v1.44/version") in Fake.seen and versioned(out, "1.44"),
         "every path carries the engine's version, none a pinned one", out.get("paths"))
    t.eq(helper("ping", env={"ANYON_DOCKER_SOCKET": sock, "DOCKER_HOST": "unix:///nonexistent"}).get("api"), "1.44",
         "ANYON_DOCKER_SOCKET wins over DOCKER_HOST")
    out = helper("ping", env={"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    t.ok(out["rc"] == 1 and "only unix://" in out.get("error", ""), "DOCKER_HOST=tcp:// refused clearly", out)
    out = helper("ping", env={"ANYON_DOCKER_SOCKET": os.path.join(SCRATCH, "nothing.sock")})
    t.ok(out["rc"] == 1 and out.get("error"), "no engine: a transport error, no crash", out)
    out = helper("inspect", "ctl", env=env)
    t.ok(out["rc"] == 1 and "boom??[31m here (HTTP 500)" in out.get("error", ""),
         "an engine error: its message, control bytes neutralised", out)
    out = helper("inspect", "big", env=env)
    t.ok(out["rc"] == 1 and "larger than" in out.get("error", ""), "an oversize answer is refused", out)
    out = helper("inspect", "weird", env=env)
    t.ok(out["rc"] == 1 and "State" in out.get("error", ""), "an exit code out of range is refused", out)
    out = helper("run", "abc", "x", env=env)
    t.ok(out["rc"] == 1 and "cannot attach (HTTP 409)" in out.get("error", ""),
         "a refused hijack: the engine's message from the error body", out)
    t.ok(("POST", "/v1.44/containers/abc/attach?stream=1&stdin=1&stdout=1&stderr=1") in Fake.seen,
         "the hijack request carries the negotiated version too")
    # anyonctl doctor probes the engine from its own host through the same client
    ctl = os.path.join(BUILDDIR, "anyonctl")

    def doctor(extra):
        e = {k: v for k, v in os.environ.items() if k not in ("ANYON_DOCKER_SOCKET", "DOCKER_HOST")}
        e.update(extra, ANYON_DATA_DIR=SCRATCH)
        return subprocess.run([ctl, "doctor"], env=e, capture_output=True, text=True, cwd=SCRATCH).stdout
    r = doctor(env)
    t.ok(re.search(r"^ok +engine +29\.1\.0 \(API 1\.44\)$", r, re.M), "anyonctl doctor: the engine at DOCKER_HOST", r)
    r = doctor({})
    t.ok(re.search(r"^ok +engine +%s \(API %s\)$" % (re.escape(ver["Version"]), re.escape(ver["ApiVersion"])), r, re.M),
         "anyonctl doctor: the real engine by default", r)
    r = doctor({"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    t.ok(re.search(r"^FAIL +engine +DOCKER_HOST .*only unix://", r, re.M), "anyonctl doctor: a tcp DOCKER_HOST fails clearly", r)
    out = helper("exec", "early", "-", "--", "true", env=env)
    t.eq(out.get("events"), [["stdout", "early\n"], ["stderr", "late\n"], ["stdout", "tail"]],
         "frames that came in the same read as the 101 head are not lost")
    out = helper("exec", "badframe", "-", "--", "true", env=env)
    t.ok(out["rc"] == 1 and out.get("error") == "bad frame", "a hostile frame header ends the stream", out)
    out = helper("exec", "cut", "-", "--", "true", env=env)
    t.ok(out["rc"] == 1 and "inside a frame" in out.get("error", ""), "a stream cut inside a frame is noticed", out)
    denv = dict(env, DOCKER_CHECK_DEADLINE_MS="700")
    t0 = time.monotonic()
    out = helper("inspect", "slow", env=denv)
    took = time.monotonic() - t0
    t.ok(out["rc"] == 1 and "deadline ran out" in out.get("error", "") and took < 2.5,
         "a call is cut to the caller's deadline (%.1f s)" % took, out)
    t0 = time.monotonic()
    out = helper("exec", "slow", "-", "--", "true", env=denv)
    took = time.monotonic() - t0
    t.ok(out["rc"] == 1 and "deadline ran out" in out.get("error", "") and took < 2.5,
         "a hijack whose head never comes is cut to the deadline (%.1f s)" % took, out)
    Fake.ping_version = False
    out = helper("ping", env=env)
    t.ok(out["rc"] == 1 and "Api-Version" in out.get("error", ""), "an engine without Api-Version: refused, not guessed", out)
finally:
    srv.shutdown()
    srv.server_close()

# ---- the source pins no version ----
src = open(os.path.join(SRCDIR, "services", "docker.c")).read()
t.eq(re.findall(r"/v1\.\d+", src), [], "services/docker.c has no pinned /v1.NN path")
t.ok(not reports, "no sanitizer reports from the helper", reports[:1])
shutil.rmtree(SCRATCH, ignore_errors=True)
t.done()
