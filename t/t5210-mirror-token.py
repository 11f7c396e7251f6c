#!/usr/bin/env python3
"""The host mirror with a GitHub token (services/mirror.c through
t/helper/mirror-run) against the GitHub stand-in's smart HTTP: a private
repository is fetched with the right token and refused with a wrong one
(a clean error without the token), an attempt's branch is pushed to it;
and the token is nowhere afterwards: not in the mirror's files (config
included), not in the helper's output, not in any URL the stand-in saw,
and never in git's argv or environment: a wrapper `git` first on PATH
(services/git.c passes PATH on to git) records every run's argv and
environment and the modes of the credential file named on its command
line (0600, in a 0700 directory), then execs the real git. Each of those
files is gone afterwards, also when git was killed at ANYON_GIT_TIMEOUT_S
because the server stopped answering."""
import json, os, re, shutil, stat, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, BUILDDIR
from fakegithub import FakeGitHub
from gitrepo import Git

t = TAP()
tmp = tempfile.mkdtemp(prefix="anyon-t5210-")
G = Git(tmp)
HELPER = os.path.join(BUILDDIR, "t", "helper", "mirror-run")
real_git = shutil.which("git")
if not real_git:
    t.bail("git is not installed")

# the wrapper: argv and environment of every git the helper starts, and
# the modes of the credential file named on its command line (never its
# content), as one JSON line each; then the real git
bindir = os.path.join(tmp, "bin")
os.mkdir(bindir)
record = os.path.join(tmp, "git-runs.log")
with open(os.path.join(bindir, "git"), "w") as f:
    f.write("""#!/usr/bin/env python3
import json, os, re, sys
cred = None
for a in sys.argv[1:]:
    m = re.search(r"< '([^']+)'", a)
    if a.startswith("credential.helper=!") and m:
        p = m.group(1)
        try:
            st, dst = os.lstat(p), os.lstat(os.path.dirname(p))
            cred = {"path": p, "mode": st.st_mode & 0o7777, "dir_mode": dst.st_mode & 0o7777,
                    "mine": st.st_uid == os.getuid() and dst.st_uid == os.getuid(),
                    "regular": (st.st_mode & 0o170000) == 0o100000}
        except OSError as e:
            cred = {"path": p, "error": str(e)}
with open(%r, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ), "cred": cred}) + "\\n")
os.execv(%r, ["git"] + sys.argv[1:])
""" % (record, real_git))
os.chmod(os.path.join(bindir, "git"), 0o755)
data = os.path.join(tmp, "data")
os.mkdir(data, 0o700)
outputs = []


def run(*args, token=None, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(PATH=bindir + ":" + env.get("PATH", "/usr/bin:/bin"), ANYON_GIT_ALLOW_LOCAL_HTTP="1")
    env.update(extra_env or {})
    r = subprocess.run([HELPER] + list(args), input=(token or "") + "\n", env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    outputs.append(r.stdout + r.stderr)
    return r


def runs():
    """[{argv, env, cred}] of the git runs recorded so far."""
    if not os.path.exists(record):
        return []
    with open(record) as f:
        return [json.loads(line) for line in f]


def raw_record():
    with open(record) as f:
        return f.read()


with FakeGitHub(interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com",
                repos=[{"name": "secret", "private": True, "with_git": True, "files": {"README.md": "private\n"}}])
    gh.add_user("bob", "Bob B", "bob@example.com")
    with gh.lock:
        token = gh._issue("alice", ["repo"], gh.client_ids[0])["access_token"]
        wrong = gh._issue("bob", ["repo"], gh.client_ids[0])["access_token"]
    bogus = "gho_" + "Z" * 36
    url = gh.url + "/alice/secret.git"
    bare = gh.repos["alice/secret"]["git"]
    main = G("--git-dir", bare, "rev-parse", "main").strip()
    mirror = os.path.join(data, "mirrors", "project-1.git")

    # ---- fetch ----
    r = run("sync", data, "1", url, token=token)
    t.ok(r.returncode == 0, "the private repository is fetched with the token", r.stderr)
    r = run("branch", mirror, "main")
    t.eq(r.stdout.strip(), main, "the mirror's main is the repository's")
    t.ok(len(runs()) >= 2 and any("fetch" in r["argv"] for r in runs()),
         "control: the wrapper saw git's runs (%d)" % len(runs()))
    creds = [r["cred"] for r in runs() if r["cred"]]
    fetch = [r["argv"] for r in runs() if "fetch" in r["argv"]][0]
    helper = [j for j, a in enumerate(fetch) if a.startswith("credential.helper=!")]
    t.ok(len(creds) == 1 and len(helper) == 1, "the credential helper was given on the fetch's command line", creds)
    t.ok(creds and creds[0].get("mode") == 0o600 and creds[0].get("dir_mode") == 0o700 and creds[0]["mine"]
         and creds[0]["regular"], "its file was 0600 in a 0700 directory of ours while git ran", creds)
    t.ok(helper and fetch[helper[0] - 3:helper[0]] == ["-c", "credential.helper=", "-c"],
         "right after an empty credential.helper that resets the list", fetch[:helper[0] + 1] if helper else fetch)
    r = run("sync", data, "2", url, token=bogus)
    t.ok(r.returncode == 2 and "fatal" not in r.stderr and "Authentication failed" in r.stderr,
         "an unknown token is refused with git's reason", r.stderr)
    t.ok(bogus not in r.stderr, "the refused token is not in the error", r.stderr)
    r = run("sync", data, "3", url, token=wrong)
    t.ok(r.returncode == 2 and wrong not in r.stderr, "another user's token cannot read it either", r.stderr)
    r = run("sync", data, "4", url)
    t.ok(r.returncode == 2, "without a token it fails", r.stderr)
    r = run("branch", os.path.join(data, "mirrors", "project-2.git"), "main")
    t.ok(r.returncode != 0, "nothing was fetched with the bad token")

    # ---- push an attempt's branch ----
    base_bundle = os.path.join(tmp, "base.bundle")
    r = run("bundle", mirror, "main", base_bundle)
    t.ok(r.returncode == 0, "bundle of main out of the mirror", r.stderr)
    work = os.path.join(tmp, "work")
    G("clone", "-q", "-b", "main", base_bundle, work)
    G("checkout", "-q", "-b", "anyon/abc12345", cwd=work)
    with open(os.path.join(work, "new.txt"), "w") as f:
        f.write("from the agent\n")
    G("add", "new.txt", cwd=work)
    G("commit", "-q", "-m", "agent's work", cwd=work)
    head = G("rev-parse", "HEAD", cwd=work).strip()
    out_bundle = os.path.join(tmp, "out.bundle")
    G("bundle", "create", "-q", out_bundle, "refs/heads/anyon/abc12345", "^" + main, cwd=work)
    r = run("import", mirror, out_bundle, "anyon/abc12345", "7")
    t.ok(r.returncode == 0 and r.stdout.strip() == head, "the attempt's bundle is imported", r.stderr)

    r = run("push", mirror, "7", "anyon/abc12345", url, token=bogus)
    t.ok(r.returncode == 2 and bogus not in r.stderr, "a push with an unknown token fails cleanly", r.stderr)
    r = run("push", mirror, "7", "anyon/abc12345", url, token=token)
    t.ok(r.returncode == 0, "the push with the token goes through", r.stderr)
    t.eq(G("--git-dir", bare, "rev-parse", "refs/heads/anyon/abc12345").strip(), head,
         "the stand-in has the branch at the attempt's commit")
    pushes = [e for e in gh.requests("/alice/secret.git/git-receive-pack", method="POST")]
    t.ok(pushes and all(gh.header_of(e, "Authorization") for e in pushes),
         "the receive-pack request carried credentials (Basic auth from the helper)")
    t.eq(G("--git-dir", bare, "rev-parse", "main").strip(), main, "the stand-in's main did not move")

    # ---- the token nowhere ----
    secrets = {"token": token, "wrong token": wrong, "unknown token": bogus}
    for name, s in secrets.items():
        hits = []
        for root, dirs, files in os.walk(data):
            for fn in files:
                p = os.path.join(root, fn)
                if os.path.islink(p):
                    continue
                with open(p, "rb") as f:
                    if s.encode() in f.read():
                        hits.append(p)
        t.ok(not hits, "the %s is in no file of the data directory (mirrors, config included)" % name, hits)
        t.ok(not any(s in o for o in outputs), "the %s is not in the helper's output or log" % name)
        t.ok(not any(s in x for r in runs() for x in r["argv"]), "the %s was never in git's argv" % name)
        t.ok(not any(s in k or s in v for r in runs() for k, v in r["env"].items()),
             "the %s was never in git's environment" % name)
        t.ok(s not in raw_record(), "nor anywhere in the wrapper's record")
        t.ok(not gh.urls_containing(s), "the %s was in no URL the stand-in saw" % name)
    with open(os.path.join(mirror, "config")) as f:
        config = f.read()
    t.ok("127.0.0.1" not in config and "credential" not in config and "remote" not in config,
         "the mirror's config names no remote or credential", config)
    cred_files = set(r["cred"]["path"] for r in runs() if r["cred"])
    t.ok(len(cred_files) >= 5 and len(cred_files) == len([r for r in runs() if r["cred"]]),
         "each run with a token had its own credential file (%d)" % len(cred_files))
    t.ok(all(r["cred"].get("mode") == 0o600 and r["cred"].get("dir_mode") == 0o700 for r in runs() if r["cred"]),
         "every one 0600 in a 0700 directory")
    t.ok(cred_files and not any(os.path.exists(p) or os.path.exists(os.path.dirname(p)) for p in cred_files),
         "every credential file and its directory are gone", sorted(cred_files))
    t.ok(not any(r["cred"] for r in runs() if "bundle" in r["argv"] or "rev-parse" in r["argv"]),
         "local runs get no credential")

    # a server that stops answering: git is killed at the time limit and the file still goes
    gh.set_fail("/alice/secret.git/git-upload-pack", "timeout", count=None, hang=20)
    n_before = len(runs())
    t0 = time.time()
    r = run("sync", data, "1", url, token=token, extra_env={"ANYON_GIT_TIMEOUT_S": "2"})
    took = time.time() - t0
    gh.clear_fail()
    t.ok(r.returncode == 2 and "did not finish in time" in r.stderr and token not in r.stderr,
         "a hanging fetch ends at ANYON_GIT_TIMEOUT_S with a clean error", r.stderr)
    t.ok(took < 15, "within the time limit (%.1f s)" % took)
    late = [x["cred"]["path"] for x in runs()[n_before:] if x["cred"]]
    t.ok(late and not any(os.path.exists(os.path.dirname(p)) for p in late),
         "its credential file is gone after the kill", late)
    t.ok(stat.S_IMODE(os.stat(mirror).st_mode) == 0o700, "the mirror is 0700")

shutil.rmtree(tmp, ignore_errors=True)
t.done()
