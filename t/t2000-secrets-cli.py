#!/usr/bin/env python3
"""Secret store from anyonctl: keyring checks, rotation killed half-way and
resumed, retire refused while in use, config.json import (good, malformed,
twice, at service start)."""
import json, os, signal, stat, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR, SRCDIR

t = TAP()
data = tempfile.mkdtemp(prefix="anyon-t2000-")
env = dict(os.environ, ANYON_DATA_DIR=data)
CTL = os.path.join(BUILDDIR, "anyonctl")
FILL = os.path.join(BUILDDIR, "t", "helper", "secret-fill")


def run(*args, stdin=None, e=None):
    return subprocess.run(list(args), input=stdin, env=e or env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def verify(n):
    r = run(FILL, "verify", str(n))
    counts = dict(line.split() for line in r.stdout.splitlines())
    return r.returncode, {k: int(v) for k, v in counts.items()}


# ---- keyring ----
r = run(CTL, "secret", "list")
t.ok(r.returncode != 0 and "init-keys" in r.stderr, "no keyring: refused, and told how to make one", r.stderr)
r = run(CTL, "init-keys")
t.eq(r.returncode, 0, "init-keys creates a keyring")
keyfile = os.path.join(data, "keyring")
t.eq(stat.S_IMODE(os.stat(keyfile).st_mode), 0o600, "keyring has mode 0600")
t.ok(run(CTL, "init-keys").returncode != 0, "init-keys refuses to overwrite")
t.eq(run(CTL, "init-keys", "--if-missing").returncode, 0, "init-keys --if-missing is harmless")
os.chmod(keyfile, 0o644)
r = run(CTL, "secret", "list")
t.ok(r.returncode != 0 and "group or others" in r.stderr, "mode 0644: anyonctl refuses", r.stderr)
os.chmod(keyfile, 0o600)

# ---- put / check through the CLI (value on stdin, never argv) ----
r = run(CTL, "secret", "put", "github_token", stdin="gho_cliSecretValue42\n")
t.eq(r.returncode, 0, "secret put from stdin")
r = run(CTL, "secret", "check", "github_token")
t.ok(r.returncode == 0 and "decrypts (20 bytes)" in r.stdout, "secret check decrypts", r.stdout + r.stderr)
t.ok("gho_cliSecretValue42" not in r.stdout + r.stderr, "check never prints the value")

# ---- rotation killed half-way, then resumed ----
N = 20000
t.eq(run(FILL, "fill", str(N)).returncode, 0, "filled %d secrets" % N)
partial = None
for delay in (0.05, 0.1, 0.2, 0.3, 0.5, 0.8):
    p = subprocess.Popen([CTL, "rotate-key", "--batch", "1"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    rc, counts = verify(N)
    active_keys = [k for k in counts if k.startswith("k")]
    newest = max(active_keys, key=lambda k: int(k[1:]))
    if rc == 0 and 0 < counts.get(newest, 0) < N:
        partial = (counts, newest)
        break
    # rotation finished (or never started) before the kill: try a later/earlier point
t.ok(partial is not None, "a rotation was killed half-way (some rows under the new key, some not)", partial)
if partial:
    counts, newest = partial
    t.eq(counts["unreadable"], 0, "after kill -9 every secret still decrypts (%s)" % counts)
    r = run(CTL, "rotate-key", "--resume")
    t.eq(r.returncode, 0, "rotate-key --resume finishes the job")
    rc, counts = verify(N)
    t.ok(rc == 0 and counts.get(newest) == N + 1, "all rows now under %s and readable" % newest, counts)
    r = run(CTL, "rotate-key", "--retire", newest)
    t.ok(r.returncode != 0 and "active" in r.stderr, "retiring the active key is refused", r.stderr)

# a retire refused while a row still uses the key
r = run(CTL, "rotate-key")
t.eq(r.returncode, 0, "another full rotation")
subprocess.run(["sqlite3", os.path.join(data, "anyon.db"),
                "UPDATE secrets SET key_id = 'k1' WHERE id = (SELECT min(id) FROM secrets)"], check=True)
r = run(CTL, "rotate-key", "--retire", "k1")
t.ok(r.returncode != 0 and "still seals 1" in r.stderr, "retire refused while a row uses the key", r.stderr)
subprocess.run(["sqlite3", os.path.join(data, "anyon.db"), "DELETE FROM secrets WHERE key_id = 'k1'"], check=True)
r = run(CTL, "rotate-key", "--retire", "k1")
t.eq(r.returncode, 0, "retire succeeds once no row uses the key")
t.ok(" k1 " not in open(keyfile).read(), "k1 is gone from the keyring file")
r = run(CTL, "audit", "--limit", "50000")
t.ok("key.rotated" in r.stdout and "key.retired" in r.stdout and "denied" in r.stdout,
     "rotation and retirement (refused and done) are audited")

# ---- config.json import ----
cfg = os.path.join(data, "config.json")
legacy = {"theme": "DARK", "executor_profile": {"executor": "CLAUDE_CODE"},
          "github": {"pat": "ghp_legacyPAT0123456789", "oauth_token": "gho_legacyOAUTH0123456789",
                     "username": "octocat", "primary_email": "octo@example.com", "default_pr_base": "main"}}
with open(cfg, "w") as f:
    json.dump(legacy, f)
os.chmod(cfg, 0o644)
r = run(CTL, "import-config", cfg, "--user", "octocat")
t.eq(r.returncode, 0, "import-config succeeds")
after = json.load(open(cfg))
t.ok("pat" not in after["github"] and "oauth_token" not in after["github"], "tokens removed from config.json")
t.ok(after["github"]["username"] == "octocat" and after["github"]["primary_email"] == "octo@example.com"
     and after["theme"] == "DARK" and after["executor_profile"] == legacy["executor_profile"]
     and after["github"]["default_pr_base"] == "main", "every other field kept")
baks = [f for f in os.listdir(data) if f.startswith("config.json.bak-")]
t.eq(len(baks), 1, "one backup written")
if baks:
    bak = os.path.join(data, baks[0])
    t.eq(stat.S_IMODE(os.stat(bak).st_mode), 0o600, "backup has mode 0600")
    t.eq(json.load(open(bak)), legacy, "backup holds the original")
r = run(CTL, "secret", "check", "github_token", "--user", "octocat")
t.eq(r.returncode, 0, "oauth token readable from the store for octocat")
r = run(CTL, "secret", "check", "github_pat", "--user", "octocat")
t.eq(r.returncode, 0, "PAT readable from the store for octocat")
before = open(cfg).read()
r = run(CTL, "import-config", cfg, "--user", "octocat")
t.ok(r.returncode == 0 and "nothing to import" in r.stdout, "second import is harmless", r.stdout)
t.eq(open(cfg).read(), before, "second import leaves the file as it was")
t.eq(len([f for f in os.listdir(data) if f.startswith("config.json.bak-")]), 1, "and writes no new backup")

bad = os.path.join(data, "bad.json")
with open(bad, "w") as f:
    f.write('{"github": {"pat": "ghp_x",')
st_before = os.stat(bad)
r = run(CTL, "import-config", bad)
t.ok(r.returncode != 0 and "not a JSON object" in r.stderr, "malformed JSON: clear error", r.stderr)
t.ok(open(bad).read() == '{"github": {"pat": "ghp_x",' and os.stat(bad).st_mtime_ns == st_before.st_mtime_ns,
     "malformed file untouched")
t.eq([f for f in os.listdir(data) if f.startswith("bad.json.")], [], "no backup of a malformed file")
r = run(CTL, "import-config", os.path.join(data, "missing.json"))
t.ok(r.returncode != 0 and "cannot open" in r.stderr, "unreadable file: clear error", r.stderr)
r = run(CTL, "audit", "--user", "octocat")
t.ok("config.imported" in r.stdout and "secret.stored" in r.stdout, "import is audited")

# ---- the services: refuse a bad keyring, import ANYON_LEGACY_CONFIG at start ----
s = Stack()
os.makedirs(s.data, exist_ok=True)
subprocess.run([CTL, "init-keys"], env=dict(s.env), check=True, stdout=subprocess.DEVNULL)
os.chmod(os.path.join(s.data, "keyring"), 0o640)
r = s.dev("up", "--no-build", check=False)
log = open(os.path.join(s.data, "log", "fcgi.log")).read() if os.path.exists(os.path.join(s.data, "log", "fcgi.log")) else ""
t.ok(r.returncode != 0 and "group or others" in log, "anyon-fcgi refuses to start with a 0640 keyring", r.stdout + log)
s.stop()
os.chmod(os.path.join(s.data, "keyring"), 0o600)
cfg2 = os.path.join(s.data, "legacy-config.json")
with open(cfg2, "w") as f:
    json.dump({"github": {"oauth_token": "gho_startupToken987654321", "username": "local"}}, f)
s.env["ANYON_LEGACY_CONFIG"] = cfg2
with s:
    t.ok("oauth_token" not in json.load(open(cfg2))["github"], "ANYON_LEGACY_CONFIG is imported at start")
    c = s.client()
    c.session()
    r = c.get("/api/secrets")
    t.ok(r.status == 200 and any(x["kind"] == "github_token" for x in r.json["secrets"]),
         "the imported token shows in GET /api/secrets", r)
    t.eq(len([f for f in os.listdir(s.data) if f.startswith("legacy-config.json.bak-")]), 1,
         "one backup even though two services ran the import")

subprocess.run(["rm", "-rf", data])
t.done()
