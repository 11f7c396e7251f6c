#!/usr/bin/env python3
"""anyonctl backup DIR and restore DIR: a backup taken while the pool runs
(SQLite: a consistent copy checked against the keyring; PostgreSQL:
pg_dump) holds the database, the keyring and a manifest with each file's
SHA-256, all mode 0600 in a 0700 folder; restore refuses while the pool
answers and refuses a backup whose files differ from the manifest; after
the database and keyring are wiped, restore puts them back and every
secret decrypts again."""
import json, os, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, BACKEND, new_db

t = TAP()
CTL = os.path.join(BUILDDIR, "anyonctl")
T = tempfile.mkdtemp(prefix="anyon-t7050-")
os.makedirs(os.path.join(T, "run"))
env = {k: v for k, v in os.environ.items() if not k.startswith("ANYON_") or k.startswith("ANYON_TEST")}
if BACKEND == "pg":
    import pgcluster
    env.update(pgcluster.env())
env.update(ANYON_DATA_DIR=T, ANYON_DB=new_db(T), ANYON_KEY_FILE=os.path.join(T, "keyring"),
           ANYON_FCGI_SOCKET=os.path.join(T, "run", "fcgi.sock"), ANYON_FCGI_CHILDREN="1")
SECRETS = {"anthropic_api_key": "sk-ant-api03-t7050-0123456789abcdef",
           "github_pat": "ghp_t7050abcdefghijklmnopqrstuvwxyz0123"}
B = os.path.join(T, "backup")


def ctl(*args, stdin=None):
    return subprocess.run([CTL] + list(args), env=env, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def all_decrypt():
    out = ""
    for kind in SECRETS:
        r = ctl("secret", "check", kind)
        out += r.stdout
        if r.returncode != 0 or "decrypts" not in r.stdout:
            return False, out
    return True, out


t.eq(ctl("init-keys").returncode, 0, "a keyring")
for kind, value in SECRETS.items():
    t.eq(ctl("secret", "put", kind, stdin=value).returncode, 0, "secret %s stored" % kind)
pool = subprocess.Popen([os.path.join(BUILDDIR, "anyon-fcgi")], env=env, stdin=subprocess.DEVNULL,
                        stdout=open(os.path.join(T, "fcgi.log"), "w"), stderr=subprocess.STDOUT,
                        start_new_session=True)
try:
    for _ in range(200):
        if os.path.exists(env["ANYON_FCGI_SOCKET"]):
            break
        time.sleep(0.05)
    r = ctl("backup", B)
    t.ok(r.returncode == 0 and "backed up" in r.stdout, "backup while the pool runs", r.stdout)
    if BACKEND == "sqlite":
        t.ok("all 2 secret(s) of the copy decrypt" in r.stdout, "the copy is checked against the keyring", r.stdout)
    t.ok(all(v not in r.stdout for v in SECRETS.values()), "no value printed")
    dbname = "anyon.pgdump" if BACKEND == "pg" else "anyon.db"
    man = json.load(open(os.path.join(B, "manifest.json")))
    t.ok(man["format"] == "anyon-backup-1" and man["engine"] == ("postgresql" if BACKEND == "pg" else "sqlite")
         and man["database"] == dbname and len(man["files"][dbname]["sha256"]) == 64
         and man["files"]["keyring"]["bytes"] == os.path.getsize(env["ANYON_KEY_FILE"]),
         "the manifest names the engine, the files, their sizes and digests", man)
    modes = {n: oct(os.stat(os.path.join(B, n)).st_mode & 0o777) for n in (dbname, "keyring", "manifest.json")}
    t.ok(oct(os.stat(B).st_mode & 0o777) == "0o700" and set(modes.values()) == {"0o600"},
         "the folder is 0700, every file 0600", modes)
    r = ctl("backup", B)
    t.ok(r.returncode != 0 and "new folder" in r.stdout, "a backup into an existing folder is refused", r.stdout)
    r = ctl("restore", B)
    t.ok(r.returncode != 0 and "stop the services first" in r.stdout, "restore refuses while the pool answers",
         r.stdout)
finally:
    os.killpg(pool.pid, signal.SIGTERM)
    pool.wait(timeout=20)

# ---- wipe ----
os.unlink(env["ANYON_KEY_FILE"])
if BACKEND == "pg":
    pgcluster.shared().psql(env["ANYON_DB"], "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
else:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(env["ANYON_DB"] + suffix):
            os.unlink(env["ANYON_DB"] + suffix)
ok, out = all_decrypt()
t.ok(not ok, "wiped: the secrets are gone", out)

# ---- a tampered backup ----
with open(os.path.join(B, "keyring"), "rb") as f:
    good = f.read()
with open(os.path.join(B, "keyring"), "wb") as f:
    f.write(good.replace(b"key k1 ", b"key k1 0", 1)[:len(good)])
r = ctl("restore", B)
t.ok(r.returncode != 0 and "differs from the manifest" in r.stdout and not os.path.exists(env["ANYON_KEY_FILE"]),
     "a backup whose keyring differs from the manifest is refused, nothing restored", r.stdout)
with open(os.path.join(B, "keyring"), "wb") as f:
    f.write(good)

# ---- restore ----
r = ctl("restore", B)
t.ok(r.returncode == 0 and "all 2 secret(s) of the restored database decrypt" in r.stdout,
     "restore puts back the database and the keyring and checks every secret", r.stdout)
ok, out = all_decrypt()
t.ok(ok, "every secret decrypts again through anyonctl", out)
t.eq(oct(os.stat(env["ANYON_KEY_FILE"]).st_mode & 0o777), "0o600", "the restored keyring is 0600")
if BACKEND == "sqlite":
    t.eq(oct(os.stat(env["ANYON_DB"]).st_mode & 0o777), "0o600", "the restored database is 0600")
r = ctl("migrate")
t.ok(r.returncode == 0 and "0 applied now" in r.stdout, "the restored schema is current", r.stdout)
shutil.rmtree(T, ignore_errors=True)
t.done()
