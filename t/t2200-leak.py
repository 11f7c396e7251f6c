#!/usr/bin/env python3
"""Leak test: known secrets go in through the API, the legacy import and the
CLI, get used, rotated and deleted; then the SQLite file, its WAL, every log
and the audit table are searched for them raw, in base64 and in hex, and the
memory of every anyon-fcgi child (each readable mapping, through
/proc/PID/mem) for the values PUT through the API and the session token:
the request body, libfcgi's input buffer and params, json-c's tokenizer
buffer and string objects are wiped before they are freed."""
import base64, json, os, secrets as rnd, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, BUILDDIR

t = TAP()


def forms(secret):
    """The byte patterns that would betray secret: raw, hex, base64 at every alignment."""
    b = secret.encode()
    out = {b, b.hex().encode(), b.hex().upper().encode()}
    for pad in range(3):
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            e = enc(b"\0" * pad + b)
            out.add(e[4:-4])  # the middle does not depend on neighbours
    return out


def scan(paths, secret_values):
    hits = []
    for p in paths:
        with open(p, "rb") as f:
            blob = f.read()
        for name, v in secret_values.items():
            for pat in forms(v):
                if pat in blob:
                    hits.append("%s: %s (%r...)" % (os.path.basename(p), name, pat[:12]))
    return hits


def process_memory(pid, limit=256 << 20):
    """The bytes of every readable private mapping of pid at most limit bytes
    long (ASan's shadow and reserved spaces are larger and hold no heap)."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            name = f[5] if len(f) > 5 else ""
            if f[1][0] != "r" or hi - lo > limit or name in ("[vvar]", "[vsyscall]", "[vdso]"):
                continue
            if name.startswith("/") and f[1][1] != "w":
                continue  # read-only file mappings: code and constants
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except OSError:
                pass
    return b"".join(out)


def detector_works():
    """The scanner itself must find a planted secret in each encoding."""
    import tempfile
    v = "gho_" + rnd.token_hex(18)
    found = []
    for planted in (v.encode(), v.encode().hex().encode(), base64.b64encode(b"xy" + v.encode())):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"noise " + planted + b" noise")
        found.append(bool(scan([f.name], {"planted": v})))
        os.unlink(f.name)
    return all(found)


t.ok(detector_works(), "the scanner finds a planted secret raw, in hex and in base64")

values = {
    "api_key": "sk-ant-api03-" + rnd.token_urlsafe(30),
    "pat": "ghp_" + rnd.token_hex(18),
    "import_oauth": "gho_" + rnd.token_hex(18),
    "import_pat": "ghp_" + rnd.token_hex(18),
    "startup_oauth": "gho_" + rnd.token_hex(18),
    "cli": "gho_" + rnd.token_hex(18),
}

s = Stack(keep=True)
os.makedirs(s.data, exist_ok=True)
startup_cfg = os.path.join(s.data, "startup.json")
with open(startup_cfg, "w") as f:
    json.dump({"github": {"oauth_token": values["startup_oauth"]}}, f)
s.env["ANYON_LEGACY_CONFIG"] = startup_cfg
env = dict(s.env)
CTL = os.path.join(BUILDDIR, "anyonctl")

with s:
    c = s.client()
    c.session()
    r1 = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": values["api_key"]})
    r2 = c.request("PUT", "/api/secrets/github_pat", {"value": values["pat"]})
    t.ok(r1.status == 200 and r2.status == 200, "secrets stored through the API")
    # a rejected request carrying a secret-like value must not echo it either
    r = c.request("PUT", "/api/secrets/github_token", {"value": values["pat"]})
    t.ok(r.status == 403 and values["pat"] not in r.body, "a refused value is not echoed")

    cfg = os.path.join(s.data, "import.json")
    with open(cfg, "w") as f:
        json.dump({"github": {"oauth_token": values["import_oauth"], "pat": values["import_pat"],
                              "username": "octocat"}}, f)
    r = subprocess.run([CTL, "import-config", cfg, "--user", "octocat"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t.eq(r.returncode, 0, "legacy import")
    t.ok(not any(v in r.stdout for v in values.values()), "import output holds no secret")
    r = subprocess.run([CTL, "secret", "put", "github_token", "--user", "octocat"], env=env,
                       input=values["cli"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t.eq(r.returncode, 0, "CLI put (value on stdin)")
    for kind, user in (("github_token", "octocat"), ("github_pat", "octocat"), ("github_token", "local")):
        r = subprocess.run([CTL, "secret", "check", kind, "--user", user], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        t.ok(r.returncode == 0 and not any(v in r.stdout for v in values.values()),
             "secret %s of %s used, nothing printed" % (kind, user), r.stdout)
    r = subprocess.run([CTL, "rotate-key"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t.eq(r.returncode, 0, "rotation")
    t.eq(c.delete("/api/secrets/github_pat").status, 200, "one secret deleted")

    # while running: the WAL is live
    files = s.storage_files()
    logs = [os.path.join(s.data, "log", f) for f in os.listdir(os.path.join(s.data, "log"))]
    t.ok(s.wal_files(files), "the WAL file exists and is scanned", files)
    hits = scan(files + logs, values)
    t.eq(hits, [], "no secret in the database, WAL or logs while running")

    audit = "\n".join("\t".join(row) for row in s.sql("SELECT * FROM audit")).encode()
    t.ok(len(audit) > 0 and not any(p in audit for v in values.values() for p in forms(v)),
         "no secret in the audit table (%d bytes of rows)" % len(audit))
    ps = subprocess.run(["ps", "axww", "-o", "args"], stdout=subprocess.PIPE, text=True).stdout
    t.ok(not any(v in ps for v in values.values()), "no secret on any process command line")

    # Every pool child: the API's values (also the refused one) and the
    # session cookie are nowhere in its memory once the requests are over.
    # The scan must see memory: the data dir's path (in the child's
    # configuration) is found in each.
    token = next((v.encode() for v in c.cookies.values() if len(v) == 64), None)
    t.ok(token is not None, "the browser holds a session token to look for")
    kids = s.children(s.pid("fcgi"))
    t.ok(len(kids) > 0, "the pool has children to scan (%d)" % len(kids))
    for pid in kids:
        mem = process_memory(pid)
        t.ok(len(mem) > 0 and s.data.encode() in mem,
             "child %d: its memory is read (%d bytes) and the scan finds a known string" % (pid, len(mem)))
        found = [n for n in ("api_key", "pat") if values[n].encode() in mem]
        if token and token in mem:
            found.append("session token")
        t.eq(found, [], "child %d: no secret PUT through the API and no session token in its memory" % pid)

# after stop: logs complete, WAL checkpointed or not
files = s.storage_files()
logs = [os.path.join(s.data, "log", f) for f in os.listdir(os.path.join(s.data, "log"))]
t.eq(scan(files + logs, values), [], "no secret in the database, WAL or logs after stop")
with open(os.path.join(s.data, "keyring")) as f:
    keys = [line.split()[2] for line in f if line.startswith("key ")]
dbbytes = b"".join(open(p, "rb").read() for p in files)
t.ok(keys and not any(k.encode() in dbbytes or bytes.fromhex(k) in dbbytes for k in keys),
     "no key from the keyring in the database files")
t.ok(values["startup_oauth"] not in open(startup_cfg).read() and values["import_oauth"] not in open(cfg).read(),
     "imported config files were scrubbed")
subprocess.run(["rm", "-rf", s.data])
t.done()
