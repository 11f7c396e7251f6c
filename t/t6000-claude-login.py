#!/usr/bin/env python3
"""Claude sign-in from the browser (issue 11) on the real engine and the
agent image's stand-in CLI (t/fixtures/claude), two GitHub users in cloud
mode:
  - setup-token through the API: the login's container (labels, TTY), the
    authorize URL rebuilt from the lines the terminal wrapped, the paste
    prompt seen, the code typed, the token stored as claude_credential
    (proved by a container job that hashes the handed-over file), masked
    in the output, and nowhere in clear (database files with the WAL, the
    stack's logs, the audit trail, the dump), the container removed;
  - the interactive sign-in: the numbered choices, a choice typed, the
    code, the credentials file the CLI wrote stored;
  - a bad code: the CLI's error shown, the login failed, last_error;
  - cancel and the timeout (ANYON_CLAUDE_LOGIN_TIMEOUT_S) remove the
    container;
  - two users at once: separate containers and credentials; another
    user's login is 404; POST /api/jobs refuses the kind;
  - status, DELETE, an Anthropic API key instead, bad requests.
Docker missing is a failure, never a skip."""
import hashlib, os, sys, time, uuid
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from containerjobs import engine_and_image, output, text, wait_done
from anyontest import TAP, Stack, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

t = TAP()
eng, IMAGE = engine_and_image(t)
INST = "t6000-" + uuid.uuid4().hex[:12]
FINAL = ("succeeded", "failed", "cancelled")


def token_for(code, kind="oat"):
    """The token the stand-in makes of a good code (t/fixtures/README.md)."""
    h = hashlib.sha256(("a:" + code).encode()).hexdigest() + hashlib.sha256(("b:" + code).encode()).hexdigest()
    return "sk-ant-%s01-%sAA" % (kind, h[:93])


def login(c, lid):
    r = c.get("/api/auth/claude/login/%d" % lid)
    return r.json if r.status == 200 else None


def wait_screen(c, lid, pred, timeout=40):
    return wait_until(lambda: (lambda l: l if l and (pred(l) or l["state"] in FINAL) else None)(login(c, lid)),
                      timeout=timeout, interval=0.2)


def start(c, method):
    r = c.post("/api/auth/claude/login", {"method": method})
    if r.status != 201:
        t.diag("start %s: %s %s" % (method, r.status, r.json))
        return None
    return r.json["login_id"]


def all_chunks(c, lid):
    chunks, after = [], 0
    for _ in range(100):
        r = c.get("/api/auth/claude/login/%d?after=%d" % (lid, after)).json
        chunks += r["chunks"]
        if not r["chunks"]:
            return chunks
        after = r["next_after"]
    return chunks


def containers(lid):
    """This test's containers of login lid (other stacks on the engine
    number their jobs too)."""
    return [x for x in eng.list_label("anyon.job=%d" % lid) if (x.get("Labels") or {}).get("anyon.instance") == INST]


def pieces(secret, n=12):
    return [secret[i:i + n] for i in range(0, len(secret) - n + 1, 7)]


def stored_hash(c, kind, command):
    """A container job handed the user's secret of kind runs command on it;
    its output (a hash) is returned."""
    r = c.post("/api/jobs", {"kind": "container", "args": {"command": ["sh", "-c", command], "secrets": [kind]}})
    if r.status != 201:
        t.diag("hash job: %s %s" % (r.status, r.json))
        return None
    j = wait_done(c, r.json["job"]["id"], timeout=60)
    return text(output(c, j["id"]), "stdout").strip() if j and j["state"] == "succeeded" else None


ENV = {"ANYON_AGENT_IMAGE": IMAGE, "ANYON_INSTANCE": INST, "ANYON_REAP_INTERVAL_S": "1",
       "ANYON_WORKER_SLOTS": "3", "ANYON_USER_MAX_RUNNING": "5", "ANYON_ADMIN_GITHUB": "alice, bob",
       "ANYON_CONTAINER_STOP_GRACE_S": "3"}
with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=[])
    gh.add_user("bob", "Bob B", "bob@example.com", repos=[])
    with Stack(env=stack_env(gh, extra=ENV)) as s:
        a, b = s.client(), s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in")
        t.ok(sign_in(b, gh, "bob").json["status"] == "complete", "bob signed in")
        st = a.get("/api/auth/claude/status").json
        t.ok(st["connected"] is False and st["method"] is None, "status before: not connected", st)
        h = a.get("/api/health").json
        t.ok((h.get("claude_cli") or {}).get("ok") is True and h["claude_cli"]["version"] == "2.0.14"
             and h["claude_cli"]["error"] is None, "health: the worker found the image's CLI (claude --version)", h)

        # ---- bad requests ----
        r = a.post("/api/auth/claude/login", {"method": "password"})
        t.ok(r.status == 400 and r.json["error"].get("field") == "method", "an unknown method: 400, field method", r)
        r = a.post("/api/jobs", {"kind": "claude_login", "args": {"method": "setup-token"}})
        t.ok(r.status == 400 and r.json["error"].get("field") == "kind", "POST /api/jobs of kind claude_login: 400", r)

        # ---- setup-token, end to end ----
        CODE = "code-good-" + uuid.uuid4().hex
        TOKEN = token_for(CODE)
        lid = start(a, "setup-token")
        t.ok(lid, "POST /api/auth/claude/login {setup-token}: 201 with a login_id")
        l = wait_screen(a, lid, lambda l: l.get("needs_code"))
        t.ok(l and l["state"] == "running" and l["needs_code"], "the CLI waits for a pasted code", l)
        url = (l or {}).get("authorize_url") or ""
        raw = text(all_chunks(a, lid), "stdout")
        t.ok(url.startswith("https://claude.ai/oauth/authorize?code=true&client_id=") and "&state=" in url
             and "code_challenge_method=S256" in url and len(url) > 240, "the authorize URL, whole", url)
        t.ok(url not in raw and url[:80] in raw and "\r\n" in raw,
             "the raw output has the URL wrapped over lines (terminal bytes kept, CRLF)", raw[:400])
        t.ok("Paste code here if prompted >" in raw, "the prompt is in the raw chunks")
        cs = containers(lid)
        t.ok(len(cs) == 1 and cs[0]["Labels"].get("anyon.instance") == INST, "one login container, labelled", cs)
        if cs:
            ins = eng.inspect(cs[0]["Id"])
            t.ok(ins and ins["Config"]["User"] == "1000:1000" and ins["HostConfig"]["CapDrop"] == ["ALL"]
                 and "/run/anyon/secrets" in (ins["HostConfig"].get("Tmpfs") or {})
                 and not any(e.startswith("CLAUDE_CONFIG_DIR=") or "sk-ant-" in e for e in ins["Config"].get("Env") or []),
                 "locked down like any job container; no credential nor config dir in its own environment",
                 ins and ins["HostConfig"])
        r = b.post("/api/auth/claude/login/%d/input" % lid, {"text": "x"})
        t.eq(r.status, 404, "bob cannot type into alice's login")
        t.eq(b.get("/api/auth/claude/login/%d" % lid).status, 404, "bob cannot read alice's login")
        t.eq(b.post("/api/auth/claude/login/%d/cancel" % lid).status, 404, "bob cannot cancel alice's login")
        r = a.post("/api/auth/claude/login/%d/input" % lid, {"text": "x" * 2049})
        t.ok(r.status == 400 and r.json["error"].get("field") == "text", "an input over 2048 bytes: 400", r)
        r = a.post("/api/auth/claude/login/%d/input" % lid, {"text": CODE})
        t.eq(r.status, 202, "the code is accepted for delivery: 202")
        l = wait_screen(a, lid, lambda l: False, timeout=40)
        t.ok(l and l["state"] == "succeeded" and l["error"] is None, "the login succeeded", l)
        chunks = all_chunks(a, lid)
        out = text(chunks, "stdout")
        t.ok("token created successfully" in out and "[masked]" in out, "the success text, the token masked", out[-600:])
        t.ok(not any(p in out for p in pieces(TOKEN)) and CODE not in out,
             "no piece of the token, nor the code, in the stored output", out[-600:])
        t.ok(wait_until(lambda: not containers(lid), timeout=15), "the login container is gone")
        st = a.get("/api/auth/claude/status").json
        t.ok(st["connected"] and st["method"] == "setup-token" and not st["invalid"] and st["last_error"] is None
             and st["expires_at"] and st["expires_at"] > time.time() + 360 * 86400, "status: connected by setup-token, a year", st)
        t.eq(stored_hash(a, "claude_credential", "sha256sum < /run/anyon/secrets/claude_credential | cut -c1-64"),
             hashlib.sha256(TOKEN.encode()).hexdigest(), "the stored claude_credential is exactly the printed token")
        t.eq(s.sql("SELECT count(*) FROM claude_login_inputs")[0][0], "0", "no typed input is left in the database")
        audit = a.get("/api/audit?limit=200").json
        alist = audit.get("events") or audit.get("audit") or audit.get("entries") or []
        t.ok(any(e.get("action") == "claude.login" and e.get("outcome") == "ok" for e in alist),
             "an audit entry for the sign-in", audit)
        ev = a.get("/api/events?after=0&limit=500").json
        t.ok(any(e["kind"] == "claude.updated" and e["subject"] == lid for e in ev["events"]), "the event claude.updated", ev)

        # ---- the interactive sign-in ----
        CODE2 = "other-good-" + uuid.uuid4().hex
        lid2 = start(a, "interactive")
        l = wait_screen(a, lid2, lambda l: len(l.get("choices") or []) == 3)
        ch = (l or {}).get("choices") or []
        t.ok([c["number"] for c in ch] == [1, 2, 3] and ch[0]["label"].startswith("Claude account with subscription")
             and not l["needs_code"] and not l["authorize_url"], "the login method menu's choices", l)
        a.post("/api/auth/claude/login/%d/input" % lid2, {"text": "1"})
        l = wait_screen(a, lid2, lambda l: l.get("needs_code"))
        t.ok(l and l["needs_code"] and l["choices"] == [] and (l["authorize_url"] or "").startswith("https://claude.ai/"),
             "choice 1: the URL and the prompt, the choices gone", l)
        a.post("/api/auth/claude/login/%d/input" % lid2, {"text": CODE2 + "\n"})
        l = wait_screen(a, lid2, lambda l: False)
        t.ok(l and l["state"] == "succeeded", "the interactive login succeeded", l)
        out2 = text(all_chunks(a, lid2), "stdout")
        t.ok("Login successful" in out2 and CODE2 not in out2, "its output: success, the code masked", out2[-400:])
        st = a.get("/api/auth/claude/status").json
        t.ok(st["connected"] and st["method"] == "interactive", "status: interactive", st)
        ACCESS2 = token_for(CODE2)
        t.eq(stored_hash(a, "claude_credential", "grep -o 'sk-ant-oat01-[A-Za-z0-9_-]*' /run/anyon/secrets/claude_credential"
                         " | sha256sum | cut -c1-64"),
             hashlib.sha256((ACCESS2 + "\n").encode()).hexdigest(), "the stored credential is the CLI's credentials file")
        t.ok(wait_until(lambda: not containers(lid2), timeout=15), "its container is gone")

        # ---- a bad code ----
        lid3 = start(a, "setup-token")
        l = wait_screen(a, lid3, lambda l: l.get("needs_code"))
        a.post("/api/auth/claude/login/%d/input" % lid3, {"text": "not-the-right-one"})
        l = wait_screen(a, lid3, lambda l: False)
        out3 = text(all_chunks(a, lid3), "stdout")
        t.ok(l and l["state"] == "failed" and l["error"] and "OAuth error" in out3, "a bad code: the CLI's error shown, failed", l)
        st = a.get("/api/auth/claude/status").json
        t.ok(st["connected"] and st["last_error"], "status keeps the credential and says what failed", st)
        audit = a.get("/api/audit?limit=200").json.get("events") or []
        t.ok(any(e["action"] == "claude.login" and e["outcome"] == "error" and ("login=%d" % lid3) in e["detail"]
                 for e in audit), "the failed sign-in is audited", audit[:5])
        t.ok(wait_until(lambda: not containers(lid3), timeout=15), "the failed login's container is gone")
        r = a.post("/api/auth/claude/login/%d/input" % lid3, {"text": "late"})
        t.ok(r.status == 409 and r.error_code() == "login_ended", "input after the end: 409 login_ended", r)

        # ---- cancel ----
        lid4 = start(a, "interactive")
        wait_screen(a, lid4, lambda l: l.get("choices"))
        t.ok(wait_until(lambda: containers(lid4), timeout=15), "a login container runs")
        r = a.post("/api/auth/claude/login/%d/cancel" % lid4)
        t.eq(r.status, 202, "cancel: 202")
        l = wait_screen(a, lid4, lambda l: False)
        t.ok(l and l["state"] == "cancelled", "the login is cancelled", l)
        t.ok(wait_until(lambda: not containers(lid4), timeout=15), "cancel removed the container")

        # ---- two users at once ----
        CA, CB = "alice-good-" + uuid.uuid4().hex, "bob-good-" + uuid.uuid4().hex
        la, lb = start(a, "setup-token"), start(b, "setup-token")
        sa = wait_screen(a, la, lambda l: l.get("needs_code"))
        sb = wait_screen(b, lb, lambda l: l.get("needs_code"))
        ca, cb = containers(la), containers(lb)
        t.ok(sa and sb and sa["needs_code"] and sb["needs_code"] and len(ca) == 1 and len(cb) == 1
             and ca[0]["Id"] != cb[0]["Id"] and ca[0]["Labels"]["anyon.user"] != cb[0]["Labels"]["anyon.user"],
             "two logins at once: two containers, one per user", (ca, cb))
        t.ok(sa and sb and sa["authorize_url"] != sb["authorize_url"], "each with its own authorize URL")
        a.post("/api/auth/claude/login/%d/input" % la, {"text": CA})
        b.post("/api/auth/claude/login/%d/input" % lb, {"text": CB})
        fa, fb = wait_screen(a, la, lambda l: False), wait_screen(b, lb, lambda l: False)
        t.ok(fa and fb and fa["state"] == fb["state"] == "succeeded", "both succeed", (fa, fb))
        cmd = "sha256sum < /run/anyon/secrets/claude_credential | cut -c1-64"
        t.eq(stored_hash(a, "claude_credential", cmd), hashlib.sha256(token_for(CA).encode()).hexdigest(),
             "alice has her token")
        t.eq(stored_hash(b, "claude_credential", cmd), hashlib.sha256(token_for(CB).encode()).hexdigest(),
             "bob has his")

        # ---- nowhere in clear ----
        secrets_ = [TOKEN, token_for(CA), token_for(CB), ACCESS2, CODE, CODE2, CA, CB]
        blob = b""
        for f in s.storage_files():
            with open(f, "rb") as fh:
                blob += fh.read()
        t.ok(blob and not any(x.encode() in blob or any(p.encode() in blob for p in pieces(x, 16)) for x in secrets_),
             "no token or code, nor a piece of one, in the database files (WAL included)")
        dump = s.dump()
        t.ok(not any(x in dump for x in secrets_), "nor in the database dump")
        logs = ""
        for n in sorted(os.listdir(os.path.join(s.data, "log"))):
            p = os.path.join(s.data, "log", n)
            if os.path.isfile(p):
                with open(p, errors="replace") as fh:
                    logs += fh.read()
        t.ok(logs and not any(x in logs for x in secrets_), "nor in the stack's logs")
        t.ok(not any(x in str(a.get("/api/audit?limit=200").json) for x in secrets_), "nor in the audit trail")

        # ---- status, delete, an API key instead ----
        r = a.delete("/api/auth/claude")
        t.ok(r.status == 200 and r.json["connected"] is False, "DELETE /api/auth/claude: disconnected", r)
        t.eq(a.get("/api/auth/claude/status").json["connected"], False, "status: not connected")
        t.eq(b.get("/api/auth/claude/status").json["connected"], True, "bob's credential stays")
        r = a.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-api03-" + uuid.uuid4().hex})
        t.eq(r.status, 200, "an Anthropic API key stored instead")
        st = a.get("/api/auth/claude/status").json
        t.ok(st["connected"] and st["method"] == "api_key", "status: connected by API key", st)

        # ---- the timeout ----
        s.restart(ANYON_CLAUDE_LOGIN_TIMEOUT_S="6")
        a, b = s.client(), s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in again")
        lid5 = start(a, "setup-token")
        t.ok(wait_until(lambda: containers(lid5), timeout=20), "an abandoned login's container runs")
        l = wait_screen(a, lid5, lambda l: False, timeout=40)
        t.ok(l and l["state"] == "failed" and "timed out" in (l["error"] or ""), "the abandoned login times out", l)
        t.ok(wait_until(lambda: not containers(lid5), timeout=15), "and its container is removed")

        # ---- a missing CLI: the health banner says so ----
        s.restart(ANYON_AGENT_IMAGE="anyon-agent:no-such-image")
        a = s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "alice signed in once more")
        cli = (a.get("/api/health").json.get("claude_cli") or {})
        t.ok(cli.get("ok") is False and cli.get("version") is None and "no-such-image" in (cli.get("error") or ""),
             "health: a worker whose image has no usable CLI says why", cli)
        t.ok(wait_until(lambda: s.sql("SELECT count(*) FROM audit WHERE action = 'claude.cli_broken'") [0][0] in ("1", 1),
                        timeout=15), "and writes the event claude.cli_broken in the audit trail",
             s.sql("SELECT action, outcome, detail FROM audit ORDER BY id DESC LIMIT 5"))
    t.ok(not eng.list_label("anyon.probe=" + INST), "no probe container is left")
    t.ok(not eng.list_label("anyon.instance=" + INST), "no container of this test is left")
    eng.remove_label("anyon.instance=" + INST)
t.done()
