#!/usr/bin/env python3
"""Local-mode projects: add a git repository by path (work tree or bare) or
by URL (smart HTTP from the GitHub stand-in, ANYON_GIT_ALLOW_LOCAL_HTTP=1),
with the default branch detected by `git ls-remote --symref`; bad paths,
non-repositories, duplicates, credentials in URLs and plain http refused
with the field named; no hook or fsmonitor of the repository runs; PATCH
of the settings with validation; DELETE. Cloud mode: adding by path does
not exist, settings and delete work on an imported project, and another
user's project is a 404."""
import os, shutil, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in
from gitrepo import Git

t = TAP()
tmp = tempfile.mkdtemp(prefix="anyon-t5100-")
G = Git(tmp)
git, make_repo = G, G.make_repo


def patch(c, path, body, **kw):
    return c.request("PATCH", path, body=body, **kw)


def field(r):
    try:
        return r.json["error"].get("field")
    except (TypeError, KeyError, AttributeError):
        return None


def bad(r, status, code, fld):
    return r.status == status and r.error_code() == code and field(r) == fld


work = make_repo("widget")
bare = os.path.join(tmp, "tools.git")
git("init", "-q", "--bare", "-b", "trunk", bare)
git("push", "-q", bare, "main:trunk", cwd=work)
empty = os.path.join(tmp, "empty")
git("init", "-q", "-b", "dev", empty)
detached = make_repo("detached")
git("checkout", "-q", "--detach", cwd=detached)
plain = os.path.join(tmp, "plain")
os.mkdir(plain)
afile = os.path.join(tmp, "afile")
open(afile, "w").close()
os.symlink(work, os.path.join(tmp, "link-to-widget"))

# A repository that runs a command at every chance: fsmonitor, hooks,
# upload-pack's hook. A marker appears when any of them runs.
evil = make_repo("evil")
marker = os.path.join(tmp, "MARKER")
hook = "#!/bin/sh\necho \"$0\" >> %s\n" % marker
for h in ("post-checkout", "pre-upload-pack", "post-update", "pre-receive", "reference-transaction",
          "update", "post-index-change", "pre-auto-gc", "push-to-checkout", "pre-commit", "post-merge"):
    p = os.path.join(evil, ".git", "hooks", h)
    with open(p, "w") as f:
        f.write(hook)
    os.chmod(p, 0o755)
git("config", "core.fsmonitor", "echo fsmonitor >> %s; false" % marker, cwd=evil)
git("config", "uploadpack.packObjectsHook", "sh -c 'echo packhook >> %s'" % marker, cwd=evil)
# the trap works: an ordinary git command there does write the marker
git("checkout", "-q", "-b", "other", cwd=evil)
git("status", "--short", cwd=evil)
with open(marker) as f:
    seen = f.read()
t.ok("post-checkout" in seen and "fsmonitor" in seen,
     "control: in the trapped repository git's own checkout/status run the hook and fsmonitor", seen)
os.unlink(marker)
git("checkout", "-q", "main", cwd=evil)
os.unlink(marker)

with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com",
                repos=[{"name": "hello", "with_git": True}, {"name": "hidden", "private": True, "with_git": True}])
    gh.add_user("bob", "Bob B", "bob@example.com", repos=["bobs"])

    # ------------------------------------------------------------ local mode
    with Stack(env={"ANYON_GIT_ALLOW_LOCAL_HTTP": "1"}) as s:
        c = s.client()
        c.session()
        r = c.post("/api/projects", {"source": "path", "path": work})
        p = r.json["project"] if r.status == 201 else {}
        t.ok(r.status == 201 and p["source"] == "path" and p["location"] == os.path.realpath(work)
             and p["name"] == "widget" and p["default_branch"] == "main" and p["base_branch"] == "main"
             and p["default_executor"] == "claude" and p["setup_script"] == "" and p["github_full_name"] is None,
             "a work tree by path: 201, name from the path, default branch main detected, default settings", r)
        wid = p.get("id", 0)
        r = c.post("/api/projects", {"source": "path", "path": bare + "/"})
        t.ok(r.status == 201 and r.json["project"]["name"] == "tools"
             and r.json["project"]["default_branch"] == "trunk" and r.json["project"]["base_branch"] == "trunk"
             and r.json["project"]["location"] == bare,
             "a bare repository by path: name without .git, HEAD's branch trunk, trailing slash gone", r)
        r = c.post("/api/projects", {"source": "path", "path": os.path.join(tmp, "link-to-widget")})
        t.ok(bad(r, 409, "already_added", "path"), "the same repository again through a symlink: 409, field path", r)
        r = c.post("/api/projects", {"source": "path", "path": work})
        t.ok(bad(r, 409, "already_added", "path"), "the same path again: 409", r)

        for what, path in [("a relative path", "widget"), ("a missing path", os.path.join(tmp, "nope")),
                           ("a file", afile), ("a newline", work + "\n"), ("an empty path", ""),
                           ("a path too long", "/" + "a" * 2000)]:
            r = c.post("/api/projects", {"source": "path", "path": path})
            t.ok(bad(r, 400, "invalid_field", "path"), "%s: 400 invalid_field, field path" % what, r)
        r = c.post("/api/projects", {"source": "path", "path": work + "\u0000x"})
        t.ok(bad(r, 400, "invalid_field", "path"), "a NUL in the path: 400, field path", r)
        r = c.post("/api/projects", {"source": "path", "path": plain})
        t.ok(bad(r, 400, "not_a_repository", "path") and "git repository" in r.json["error"]["message"],
             "a directory that is no repository: 400 not_a_repository, field path", r)
        r = c.post("/api/projects", {"source": "path", "path": 5})
        t.ok(bad(r, 400, "invalid_field", "path"), "a path that is not a string: 400", r)
        r = c.post("/api/projects", {"path": work})
        t.ok(bad(r, 400, "invalid_field", "source"), "no source: 400, field source", r)
        r = c.post("/api/projects", {"source": "github", "path": work})
        t.ok(bad(r, 400, "invalid_field", "source"), "source github here: 400, field source", r)
        r = c.post("/api/projects", {"source": "path", "path": work, "colour": "red"})
        t.ok(bad(r, 400, "invalid_field", "colour"), "an unknown field: 400 naming it", r)
        r = c.post("/api/projects", {"source": "path", "path": plain, "name": "x"}, csrf=False)
        t.ok(r.status == 403 and r.error_code() == "csrf_failed", "without the CSRF token: 403", r)

        r = c.post("/api/projects", {"source": "path", "path": empty})
        t.ok(bad(r, 400, "invalid_field", "base_branch"), "an empty repository without base_branch: 400, field base_branch", r)
        r = c.post("/api/projects", {"source": "path", "path": detached})
        t.ok(bad(r, 400, "invalid_field", "base_branch"), "a detached HEAD without base_branch: 400", r)
        r = c.post("/api/projects", {"source": "path", "path": detached, "base_branch": "main", "name": "det"})
        t.ok(r.status == 201 and r.json["project"]["base_branch"] == "main"
             and r.json["project"]["default_branch"] == "" and r.json["project"]["name"] == "det",
             "with base_branch given: 201, no default branch recorded", r)
        r = c.post("/api/projects", {"source": "path", "path": empty, "base_branch": "a..b"})
        t.ok(bad(r, 400, "invalid_field", "base_branch"), "an invalid base_branch at creation: 400", r)

        # no hook, fsmonitor or upload-pack hook of the repository runs
        r = c.post("/api/projects", {"source": "path", "path": evil, "name": "Evil one",
                                     "default_executor": "script", "setup_script": "make\n"})
        time.sleep(0.3)
        t.ok(r.status == 201 and r.json["project"]["name"] == "Evil one"
             and r.json["project"]["default_executor"] == "script" and r.json["project"]["setup_script"] == "make\n"
             and r.json["project"]["default_branch"] == "main",
             "the trapped repository is added, with the settings given at creation", r)
        t.ok(not os.path.exists(marker), "no hook, fsmonitor or upload-pack hook of it ran (no marker)",
             open(marker).read() if os.path.exists(marker) else "")

        # by URL, over the stand-in's smart HTTP
        url = gh.url + "/alice/hello.git"
        r = c.post("/api/projects", {"source": "url", "url": url})
        p = r.json["project"] if r.status == 201 else {}
        t.ok(r.status == 201 and p["source"] == "url" and p["location"] == url and p["name"] == "hello"
             and p["default_branch"] == "main" and p["base_branch"] == "main",
             "a git URL (local http allowed for tests): 201, default branch from the server", r)
        t.ok(gh.hits("/alice/hello.git/info/refs") >= 1, "the server was asked (info/refs)")
        r = c.post("/api/projects", {"source": "url", "url": url})
        t.ok(bad(r, 409, "already_added", "url"), "the same URL again: 409, field url", r)
        t0 = time.time()
        r = c.post("/api/projects", {"source": "url", "url": gh.url + "/alice/hidden.git"})
        t.ok(bad(r, 502, "repository_unreachable", "url") and time.time() - t0 < 9,
             "a repository that asks for credentials: 502 repository_unreachable at once (no prompt)", r)
        r = c.post("/api/projects", {"source": "url", "url": gh.url + "/alice/nothing-here.git"})
        t.ok(bad(r, 502, "repository_unreachable", "url"), "a URL with no repository: 502", r)
        for what, u in [("a user and password", "https://me:secret@example.com/a/b.git"),
                        ("a token as user", "https://ghp_abc@example.com/a/b.git"),
                        ("plain http", "http://example.com/a/b.git"), ("git://", "git://example.com/a/b.git"),
                        ("ssh", "ssh://git@example.com/a/b.git"), ("file://", "file://" + work),
                        ("ext::", "ext::sh -c touch% " + marker), ("a bare path", work),
                        ("spaces", "https://example.com/a b.git"), ("too long", "https://example.com/" + "a" * 1100)]:
            r = c.post("/api/projects", {"source": "url", "url": u})
            t.ok(bad(r, 400, "invalid_field", "url"), "a URL with %s: 400, field url" % what, r)
        r = c.post("/api/projects", {"source": "url", "url": "https://me:secret@example.com/a/b.git"})
        t.ok("secret" not in r.body, "the refused password is not echoed back", r)
        r = c.post("/api/projects", {"source": "url", "path": work})
        t.ok(bad(r, 400, "invalid_field", "url"), "source url without url: 400, field url", r)

        # reading
        r = c.get("/api/projects")
        names = [x["name"] for x in r.json["projects"]] if r.status == 200 else []
        t.eq(sorted(names), sorted(["widget", "tools", "det", "Evil one", "hello"]), "the list has the five projects")
        r = c.get("/api/projects/%d" % wid)
        t.ok(r.status == 200 and set(r.json["project"]) >= {"source", "location", "base_branch", "setup_script",
                                                             "default_executor", "default_branch"},
             "GET one shows source, location and settings", r)
        rows = s.sql("SELECT source, location, base_branch, default_executor FROM projects WHERE id = %d" % wid)
        t.eq(rows, [["path", os.path.realpath(work), "main", "claude"]], "stored as shown")

        # settings
        pp = "/api/projects/%d" % wid
        r = patch(c, pp, {"default_executor": "docker"})
        t.ok(bad(r, 400, "invalid_field", "default_executor") and "claude" in r.json["error"]["message"],
             "an unknown executor: 400, field default_executor, the valid ones named", r)
        r = patch(c, pp, {"setup_script": "x" * (16 * 1024 + 1)})
        t.ok(bad(r, 400, "invalid_field", "setup_script"), "a setup script over 16 KiB: 400, field setup_script", r)
        for b in ["a..b", "-x", "has space", "", "a" * 300]:
            r = patch(c, pp, {"base_branch": b})
            t.ok(bad(r, 400, "invalid_field", "base_branch"), "base_branch %r: 400" % b[:20], r)
        r = patch(c, pp, {"name": ""})
        t.ok(bad(r, 400, "invalid_field", "name"), "an empty name: 400, field name", r)
        r = patch(c, pp, {"name": "x\ny"})
        t.ok(bad(r, 400, "invalid_field", "name"), "a name with a newline: 400", r)
        r = patch(c, pp, {"setup_script": 7})
        t.ok(bad(r, 400, "invalid_field", "setup_script"), "a setup script that is no string: 400", r)
        r = patch(c, pp, {"owner": 2})
        t.ok(bad(r, 400, "invalid_field", "owner"), "an unknown field: 400 naming it", r)
        r = c.get(pp)
        t.ok(r.json["project"]["name"] == "widget" and r.json["project"]["default_executor"] == "claude",
             "nothing changed by the refused requests", r)
        script = "#!/bin/sh\nset -e\nmake deps\n" + "#" * (16 * 1024 - 27)
        r = patch(c, pp, {"setup_script": script, "default_executor": "script"})
        p = r.json["project"] if r.status == 200 else {}
        t.ok(r.status == 200 and p["setup_script"] == script and len(script) == 16 * 1024
             and p["default_executor"] == "script" and p["name"] == "widget" and p["base_branch"] == "main",
             "a 16 KiB setup script and the executor set; the rest kept", r)
        r = patch(c, pp, {"name": "Widget (main)", "base_branch": "release/1.0"})
        p = r.json["project"] if r.status == 200 else {}
        t.ok(r.status == 200 and p["name"] == "Widget (main)" and p["base_branch"] == "release/1.0"
             and p["setup_script"] == script and p["default_branch"] == "main",
             "name and base branch changed; the script kept; the detected default branch stays", r)
        r = patch(c, pp, {"setup_script": ""})
        t.ok(r.status == 200 and r.json["project"]["setup_script"] == "", "the setup script may be emptied", r)
        r = patch(c, "/api/projects/999999", {"name": "x"})
        t.ok(r.status == 404 and r.error_code() == "not_found", "PATCH of no such project: 404", r)
        r = patch(c, pp, {"name": "x"}, csrf=False)
        t.ok(r.status == 403, "PATCH without the CSRF token: 403", r)
        r = c.request("PUT", pp, body={"name": "x"})
        t.ok(r.status == 405 and r.header("Allow") == "GET, PATCH, DELETE",
             "PUT on a project: 405, Allow: GET, PATCH, DELETE", r)

        # delete
        r = c.delete(pp)
        t.ok(r.status == 200, "DELETE: 200", r)
        r = c.get(pp)
        t.ok(r.status == 404 and r.error_code() == "not_found", "then GET: 404", r)
        r = c.delete(pp)
        t.ok(r.status == 404, "DELETE again: 404", r)
        t.eq(s.sql("SELECT count(*) FROM projects WHERE id = %d" % wid), [["0"]], "the row is gone")
        ev = [(e["kind"], e["subject"]) for e in c.get("/api/events?limit=500").json["events"]
              if e["subject"] == wid and e["kind"].startswith("project.")]
        t.ok(ev[0] == ("project.added", wid) and ev[-1] == ("project.deleted", wid) and
             ("project.updated", wid) in ev and len([k for k, _ in ev if k == "project.deleted"]) == 1,
             "the change feed has its project.added, project.updated and one project.deleted", ev)
        r = c.post("/api/projects", {"source": "path", "path": work})
        t.ok(r.status == 201 and r.json["project"]["id"] != wid, "the path can be added again after", r)
        audit = s.sql("SELECT action FROM audit WHERE action LIKE 'project.%' ORDER BY id")
        t.ok(["project.added"] in audit and ["project.deleted"] in audit, "adding and deleting are audited", audit)
        t.ok(not os.path.exists(marker), "still no marker at the end", None)

    # ------------------------------------------------------------ cloud mode
    with Stack(env=stack_env(gh)) as s:
        a, b = s.client(), s.client()
        t.ok(sign_in(a, gh, "alice").json["status"] == "complete", "cloud: alice signed in")
        t.ok(sign_in(b, gh, "bob").json["status"] == "complete", "cloud: bob signed in")
        r = a.post("/api/projects", {"source": "path", "path": work})
        t.ok(r.status == 405 and r.error_code() == "method_not_allowed" and r.header("Allow") == "GET",
             "cloud mode: adding by path does not exist (POST /api/projects: 405, Allow: GET only)", r)
        r = a.post("/api/projects", {"source": "url", "url": gh.url + "/alice/hello.git"})
        t.ok(r.status == 405, "cloud mode: nor by URL", r)
        t.eq(s.sql("SELECT count(*) FROM projects"), [["0"]], "nothing stored")
        r = a.post("/api/projects/from-github", {"full_name": "alice/hello"})
        p = r.json["project"] if r.status == 201 else {}
        t.ok(r.status == 201 and p["source"] == "github" and p["location"] == p["clone_url"]
             and p["base_branch"] == "main" and p["default_executor"] == "claude",
             "an imported project: source github, location its clone URL, base branch its default", r)
        pid = p.get("id", 0)
        pp = "/api/projects/%d" % pid
        r = b.get(pp)
        t.ok(r.status == 404 and r.error_code() == "not_found", "bob: GET alice's project 404", r)
        r = patch(b, pp, {"name": "mine"})
        t.ok(r.status == 404 and r.error_code() == "not_found", "bob: PATCH alice's project 404", r)
        r = b.delete(pp)
        t.ok(r.status == 404 and r.error_code() == "not_found", "bob: DELETE alice's project 404", r)
        r = patch(a, pp, {"base_branch": "dev", "setup_script": "npm ci\n"})
        t.ok(r.status == 200 and r.json["project"]["base_branch"] == "dev"
             and r.json["project"]["name"] == "hello", "alice changes her project's settings", r)
        r = a.delete(pp)
        t.ok(r.status == 200 and a.get(pp).status == 404, "alice deletes it", r)

shutil.rmtree(tmp, ignore_errors=True)
t.done()
