#!/usr/bin/env python3
"""The keyring and the settings as installed.

- A keyring handed over the way systemd >= 254 hands a credential (mode
  0400 plus an ACL entry for the service's user, so `ls` shows 0440) is
  accepted, by anyonctl and by the pool at start; a keyring that another
  user or a group may read through its ACL, group bits without an ACL, or
  others' bits are refused. Made with setfacl (installed when missing and
  we are root; otherwise a failure, never a skip).
- anyonctl reads the services' env file (`--config FILE` or ANYON_CONFIG),
  so it acts on the deployment the services run; a file others may write,
  or with a line that is not KEY=VALUE, is refused.
- `init-keys` refuses to make a keyring while the database holds secrets
  (they were sealed by another keyring), and makes one for an empty or new
  database.
- rotate-key run by root keeps the keyring's owner, so a pool running as
  its own user (nobody here) follows the rotation without a restart: the
  next secret it stores is sealed under the new key."""
import os, pwd, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR, BACKEND, new_db

t = TAP()
CTL = os.path.join(BUILDDIR, "anyonctl")
SECRET = "sk-ant-api03-t7030-0123456789abcdef"

if not shutil.which("setfacl") and os.getuid() == 0:
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "acl"],
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)
if not t.ok(shutil.which("setfacl"), "setfacl is here (Debian: acl)"):
    t.done()

T = tempfile.mkdtemp(prefix="anyon-t7030-")
os.chmod(T, 0o755)
keyring = os.path.join(T, "keyring")
# The environment of an admin's shell: nothing of anyon in it.
clean = {k: v for k, v in os.environ.items() if not k.startswith("ANYON_") or k.startswith("ANYON_TEST")}
if BACKEND == "pg":
    import pgcluster
    clean.update(pgcluster.env())
db = new_db(T)
conf = os.path.join(T, "env")
with open(conf, "w") as f:
    f.write("# the services' settings\n\nANYON_DATA_DIR=%s\nANYON_DB='%s'\n  ANYON_KEY_FILE=\"%s\"  \n; a comment\n"
            % (T, db, keyring))
os.chmod(conf, 0o640)


def ctl(*args, env=None, stdin=None):
    return subprocess.run([CTL] + list(args), env=env or clean, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


# ---- one configuration: anyonctl --config FILE ----
r = ctl("--config", conf, "init-keys")
t.ok(r.returncode == 0 and os.path.exists(keyring), "init-keys --config FILE makes the keyring the file names",
     r.stdout + r.stderr)
t.ok("settings from %s" % conf in r.stderr, "anyonctl says which settings it read", r.stderr)
r = ctl("--config", conf, "secret", "put", "anthropic_api_key", stdin=SECRET)
t.ok(r.returncode == 0, "a secret stored through the file's database and keyring", r.stderr)
r = ctl("secret", "check", "anthropic_api_key", env=dict(clean, ANYON_CONFIG=conf))
t.ok(r.returncode == 0 and "decrypts" in r.stdout, "ANYON_CONFIG=FILE: the same deployment", r.stdout + r.stderr)
r = ctl("--config=" + conf, "secret", "check", "anthropic_api_key")
t.ok(r.returncode == 0 and SECRET not in r.stdout + r.stderr, "--config=FILE too, and no value printed", r.stdout)
other = dict(clean, ANYON_DATA_DIR=os.path.join(T, "elsewhere"))
os.makedirs(other["ANYON_DATA_DIR"])
r = ctl("secret", "check", "anthropic_api_key", env=other)
t.ok(r.returncode != 0 and "ANYON_KEY_FILE" in r.stderr and "anyonctl init-keys" in r.stderr,
     "without the file: another deployment, whose missing keyring is explained, not just 'init-keys'", r.stderr)

os.chmod(conf, 0o646)
r = ctl("--config", conf, "secret", "list")
t.ok(r.returncode != 0 and "writable by group or others" in r.stderr, "settings others may write are refused",
     r.stderr)
os.chmod(conf, 0o640)
bad = os.path.join(T, "bad.env")
with open(bad, "w") as f:
    f.write("ANYON_DATA_DIR=%s\nexport ANYON_DB=x\n" % T)
r = ctl("--config", bad, "secret", "list")
t.ok(r.returncode != 0 and "line 2: not KEY=VALUE" in r.stderr, "a line of another shape is refused by number",
     r.stderr)
r = ctl("--config", os.path.join(T, "missing.env"), "secret", "list")
t.ok(r.returncode != 0 and "missing.env" in r.stderr, "a missing file is refused, not ignored", r.stderr)

# ---- init-keys never makes a second keyring for a database with secrets ----
conf2 = os.path.join(T, "env2")
lost = os.path.join(T, "keyring-new")
with open(conf2, "w") as f:
    f.write("ANYON_DATA_DIR=%s\nANYON_DB=%s\nANYON_KEY_FILE=%s\n" % (T, db, lost))
r = ctl("--config", conf2, "init-keys")
t.ok(r.returncode == 1 and "already holds secrets" in r.stderr and not os.path.exists(lost),
     "init-keys refuses while the database holds secrets of another keyring", r.stdout + r.stderr)
fresh = new_db(tempfile.mkdtemp(prefix="anyon-t7030-db-", dir=T))
r = ctl("migrate", env=dict(clean, ANYON_DATA_DIR=T, ANYON_DB=fresh, ANYON_KEY_FILE=lost))
r = ctl("init-keys", env=dict(clean, ANYON_DATA_DIR=T, ANYON_DB=fresh, ANYON_KEY_FILE=lost))
t.ok(r.returncode == 0 and os.path.exists(lost), "a migrated database without secrets gets its keyring",
     r.stdout + r.stderr)
if BACKEND == "sqlite":
    nodb = os.path.join(T, "no-such-dir-yet", "anyon.db")
    r = ctl("init-keys", env=dict(clean, ANYON_DATA_DIR=T, ANYON_DB=nodb, ANYON_KEY_FILE=lost + "2"))
    t.ok(r.returncode == 0 and os.path.exists(lost + "2") and not os.path.exists(nodb),
         "a database not made yet holds nothing: keyring made, no database created", r.stdout + r.stderr)

# ---- systemd's credential ACL ----
me = os.geteuid()


def acl(*cmds, mode=None):
    subprocess.run(["setfacl", "-b", keyring], check=True)
    if mode is not None:
        os.chmod(keyring, mode)
    for c in cmds:
        subprocess.run(["setfacl", "-m", c, keyring], check=True)
    return oct(os.stat(keyring).st_mode & 0o777)


shown = acl("u:%d:r" % me, mode=0o400)
r = ctl("--config", conf, "secret", "check", "anthropic_api_key")
t.ok(shown == "0o440" and r.returncode == 0 and "decrypts" in r.stdout,
     "mode 0400 plus an ACL entry for our user (shown as %s, as systemd >= 254 delivers a credential): "
     "accepted" % shown, r.stdout + r.stderr)
env = dict(clean)
env.update(ANYON_DATA_DIR=T, ANYON_DB=db, ANYON_KEY_FILE=keyring, ANYON_FCGI_SOCKET=os.path.join(T, "fcgi.sock"),
           ANYON_FCGI_CHILDREN="1")
log = open(os.path.join(T, "fcgi.log"), "w+")
pool = subprocess.Popen([os.path.join(BUILDDIR, "anyon-fcgi")], env=env, stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT)
for _ in range(200):
    if os.path.exists(env["ANYON_FCGI_SOCKET"]) or pool.poll() is not None:
        break
    time.sleep(0.05)
t.ok(pool.poll() is None and os.path.exists(env["ANYON_FCGI_SOCKET"]), "the pool starts with that keyring",
     open(log.name).read())
pool.send_signal(signal.SIGTERM)
pool.wait(timeout=20)

nobody = pwd.getpwnam("nobody").pw_uid
for cmds, mode, what in (((("u:%d:r" % me), "u:%d:r" % nobody), 0o400, "another user (nobody) through the ACL"),
                         ((("u:%d:r" % me), "g:nogroup:r"), 0o400, "a group through the ACL"),
                         (("u:%d:r" % me,), 0o404, "others, beside an ACL"),
                         ((), 0o440, "its group, no ACL"),
                         ((), 0o644, "everyone")):
    shown = acl(*cmds, mode=mode)
    r = ctl("--config", conf, "secret", "check", "anthropic_api_key")
    t.ok(r.returncode != 0 and "group or others" in r.stderr and "chmod 600" in r.stderr,
         "a keyring readable by %s (shown as %s) is refused" % (what, shown), r.stderr)
acl(mode=0o600)

# ---- rotate-key by root keeps the owner ----
if os.getuid() == 0:
    os.chown(keyring, nobody, pwd.getpwnam("nobody").pw_gid)
    r = ctl("--config", conf, "rotate-key")
    st = os.stat(keyring)
    t.ok(r.returncode == 0 and st.st_uid == nobody and st.st_mode & 0o777 == 0o600,
         "rotate-key as root keeps the keyring the services' user's (0600)", r.stdout + r.stderr)
    t.ok("re-read" in r.stdout and "LoadCredential" in r.stdout, "and says what running services do", r.stdout)
    os.chown(keyring, 0, 0)
    r = ctl("--config", conf, "secret", "check", "anthropic_api_key")
    t.ok(r.returncode == 0, "the secret still decrypts under the new key", r.stderr)

# ---- rotation under a running pool that runs as its own user ----
# The pool runs as nobody and reads the keyring file itself; root rotates.
# The new file stays nobody's, so the running pool re-reads it and seals
# the next secret under the new key, without a restart.
if os.getuid() == 0 and shutil.which("setpriv"):
    import json
    import fcgiclient
    R = tempfile.mkdtemp(prefix="anyon-t7030-rot-")
    nogroup = pwd.getpwnam("nobody").pw_gid
    renv = dict(clean, ANYON_DATA_DIR=R, ANYON_DB=os.path.join(R, "anyon.db"), ANYON_KEY_FILE=os.path.join(R, "keyring"),
                ANYON_FCGI_SOCKET=os.path.join(R, "fcgi.sock"), ANYON_FCGI_CHILDREN="1")
    ctl("init-keys", env=renv)
    ctl("migrate", env=renv)
    for dirpath, _, names in os.walk(R):
        os.chown(dirpath, nobody, nogroup)
        for n in names:
            os.chown(os.path.join(dirpath, n), nobody, nogroup)
    pool = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=%d" % nogroup, "--clear-groups",
                             os.path.join(BUILDDIR, "anyon-fcgi")], env=renv, stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(T, "rot.log"), "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        for _ in range(200):
            if os.path.exists(renv["ANYON_FCGI_SOCKET"]) or pool.poll() is not None:
                break
            time.sleep(0.05)
        sock = renv["ANYON_FCGI_SOCKET"]
        st, h, body = fcgiclient.request(sock, "GET", "/api/session")
        cookie = h.get("set-cookie", "").split(";", 1)[0]
        csrf = json.loads(body).get("csrf_token") if st == 200 else None
        t.ok(st == 200 and cookie and csrf, "a session with the pool run by nobody", (st, h, body))
        r = ctl("rotate-key", env=renv)
        t.ok(r.returncode == 0 and os.stat(renv["ANYON_KEY_FILE"]).st_uid == nobody and "k2" in r.stdout,
             "root rotates to k2; the keyring stays nobody's", r.stdout + r.stderr)
        st, _, body = fcgiclient.request(sock, "PUT", "/api/secrets/anthropic_api_key",
                                         body=json.dumps({"value": SECRET}), CONTENT_TYPE="application/json",
                                         HTTP_COOKIE=cookie, HTTP_X_CSRF_TOKEN=csrf, HTTP_ORIGIN="http://localhost")
        t.ok(st == 200, "the running pool stores a secret after the rotation", (st, body))
        r = ctl("secret", "list", env=renv)
        t.ok("anthropic_api_key" in r.stdout and "key=k2" in r.stdout, "sealed under the new key k2, no restart",
             r.stdout + r.stderr)
    finally:
        if pool.poll() is None:
            os.killpg(pool.pid, signal.SIGTERM)
        pool.wait(timeout=20)
    shutil.rmtree(R, ignore_errors=True)
else:
    t.ok(False, "as root with setpriv: rotation under a pool run by another user")
shutil.rmtree(T, ignore_errors=True)
t.done()
