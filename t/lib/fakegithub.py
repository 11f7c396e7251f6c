#!/usr/bin/env python3
"""fakegithub - a local stand-in for GitHub that speaks its real protocol.

Python 3 standard library only; binds to 127.0.0.1 only.

Two hosts, as in reality (github.com and api.github.com):
  gh.url      web host: /login/device/code, /login/oauth/access_token,
              /login/device (an HTML page a browser can approve codes on),
              git smart HTTP at /<owner>/<repo>.git (token in Basic auth)
  gh.api_url  REST API host: /user, /user/emails, /user/repos,
              /user/memberships/orgs/<org>, /repos/<owner>/<repo>,
              POST and GET /repos/<owner>/<repo>/pulls, GET .../pulls/<n>,
              DELETE /applications/<id>/token|grant
Both hosts also answer the test control API under /_control/ (not logged).
With layout="ghes" there is a single port and the API lives under /api/v3,
as on GitHub Enterprise Server (api_url = url + "/api/v3").

Use from a test:
    from fakegithub import FakeGitHub
    with FakeGitHub(interval=1) as gh:
        gh.add_user("alice", "Alice A", "alice@example.com", repos=["one", {"name": "two", "private": True}])
        ... ANYON_GITHUB_URL=gh.url, ANYON_GITHUB_API_URL=gh.api_url ...
        gh.approve(user_code, "alice")

Run as a program (for a browser test):
    python3 t/lib/fakegithub.py --port 0 [--api-port 0] [--demo] ...
prints the web URL on line 1 and the API URL on line 2, then serves until
SIGTERM/SIGINT. See --help and the /_control/ section below.

Clock: every server-side duration (device code expiry, poll interval
enforcement, token expiry) is multiplied by `time_scale`; the values
*reported* to clients (interval, expires_in) are not. With interval=5 and
time_scale=0.02 a client must leave 0.1 s between polls but is told 5.
A poll earlier than interval*time_scale*(1-poll_slack) after the previous
poll (or after issue, with strict_first_poll) gets slow_down, interval += 5.

Python API (all methods thread-safe; KeyError/ValueError on bad input):
  FakeGitHub(client_id="Ov23liAnyonTest00001" | [ids], client_secret=None,
             port=0, api_port=0, layout="two-ports"|"ghes", interval=5,
             expires_in=900, slow_down_step=5, time_scale=1.0, poll_slack=0.02,
             strict_first_poll=True, slow_down=True, app_tokens=False,
             token_expires_in=28800, refresh_token_expires_in=15811200,
             device_flow_disabled=False, api_versions=("2022-11-28",),
             require_user_agent=True, hang_seconds=30, verbose=False, git_dir=None)
  start()/stop(), context manager; url, api_url, git_dir; configure(**knobs)
  add_user(login, name, email, repos=[name | {add_repo kwargs}], emails=None)
  rename_user(old, new)  (same id and tokens, old login free)
  add_org(login, members=[]);  set_membership(org, login, state="active"|
      "pending"|None, role="member"|"admin"): the table behind
      GET /user/memberships/orgs/<org> (active members are org["members"],
      who also see its private repositories); an OAuth token without
      read:org (or write:org, admin:org) gets 403 there, a non-member 404;
      make it fail with set_fail("/user/memberships", 502 | "timeout")
  add_repo(owner, name, private=False,
      description=None, default_branch="main", collaborators=[], with_git=False,
      files={path: text}, created_at/updated_at/pushed_at=epoch, language, ...)
  device(user_code=None, device_code=None) -> flow dict (latest if no args)
  approve(user_code, login) / deny(user_code) / expire(user_code)
  force_slow_down(n=1, user_code=None)
  revoke(token) / revoke_user(login) / expire_token(token) / token_info(token)
  tokens_for(login)
  set_fail(path_prefix, status|"timeout"|"reset", count=1, host=None,
           body=None, headers=None, hang=None) / clear_fail()
  set_delay(path_prefix, seconds, count=None, host=None): the next `count`
           matching requests (None: all until clear_fail()) are answered
           normally, but only after `seconds`
  Pull requests: POST /repos/{o}/{r}/pulls {title, head, base, body}
      (head "branch" or "owner:branch") checks the branches in the git
      repository the pushes went to: 201 with GitHub's fields; 422
      "Validation Failed" when an open one has the same head and base ("A
      pull request already exists for owner:branch."), when head..base has
      no commits ("No commits between base and head"), or head/base is not
      a branch there (field head/base, code invalid); 404 when the token
      cannot see the repository, 401 without a token. GET .../pulls
      (state=open|closed|all, head=owner:branch, base=, newest first) and
      GET .../pulls/<n>. Numbers count from 1 in each repository.
  set_pull_state(owner, repo, number, state="open"|"closed"|"merged")
      (merged: state closed, merged true, merged_at set; merged is final)
  pulls_list(owner, repo) -> [the single-pull JSON of each, oldest first]
      (control name: pulls)
  reject_push(owner, repo, reason=None): with a reason, every push to the
      repository fails (a pre-receive hook prints it and exits 1: git says
      "[remote rejected] ... (pre-receive hook declined)"); None: accepted again
  requests(path_prefix=None, method=None, host=None) -> [{time, host, method,
           path, headers: [[k, v]], body}];  header_of(entry, name)
  hits() -> {"METHOD /path": n};  hits(path, method=None) -> n
  polls(device_code=None, user_code=None) -> [time.time() of each poll]
  urls_containing(s) -> [paths];  clear_log();  state()
Control HTTP API (either host): POST /_control/<name> with a JSON object of
the method's keyword arguments -> {"ok": true, "result": ...}, 400 {"error"}
on bad arguments; GET for state, requests, hits, polls, devices (query
string = arguments). Names: state requests hits polls devices tokens
configure approve deny expire add_user add_org add_repo revoke revoke_user
expire_token set_fail set_delay clear_fail force_slow_down clear_log
set_pull_state pulls reject_push.
Unconfirmed choices: the 403 message for a token without read:org; a
device code polled again after its token was issued
answers incorrect_device_code; device_flow_disabled is answered by
/login/device/code (HTTP 400) and by the token endpoint (HTTP 200); the
pulls list's head filter without "owner:" taken as the repository owner's.
"""
import argparse
import base64
import html
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

DOCS_REST = "https://docs.github.com/rest"
DEVICE_ERROR_URI = "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"
GRANT_DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_REFRESH = "refresh_token"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # GitHub's look: WDJB-MJHT
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

DEVICE_ERRORS = {
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "Too many requests have been made in the same timeframe.",
    "expired_token": "The `device_code` has expired.",
    "access_denied": "The authorization request was denied.",
    "incorrect_device_code": "The device_code provided is not valid.",
    "incorrect_client_credentials": "The client_id and/or client_secret passed are incorrect.",
    "unsupported_grant_type": "The grant type is not supported.",
    "device_flow_disabled": "Device Flow must be explicitly enabled for this App",
    "bad_refresh_token": "The refresh token passed is incorrect or expired.",
}

CONTROL_METHODS = {
    # name: read-only?
    "state": True, "requests": True, "hits": True, "polls": True, "devices": True,
    "tokens": True, "configure": False, "approve": False, "deny": False,
    "expire": False, "add_user": False, "add_org": False, "add_repo": False, "set_membership": False,
    "revoke": False, "revoke_user": False, "expire_token": False,
    "set_fail": False, "set_delay": False, "clear_fail": False, "force_slow_down": False,
    "clear_log": False, "set_pull_state": False, "pulls": True, "reject_push": False,
}


def _rand_token(prefix, n):
    return prefix + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(n))


def _iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeGitHub:
    """A fake github.com + api.github.com. See the module docstring."""

    def __init__(self, client_id="Ov23liAnyonTest00001", client_secret=None,
                 port=0, api_port=0, layout="two-ports",
                 interval=5, expires_in=900, slow_down_step=5,
                 time_scale=1.0, poll_slack=0.02, strict_first_poll=True,
                 slow_down=True, app_tokens=False, token_expires_in=28800,
                 refresh_token_expires_in=15811200, device_flow_disabled=False,
                 api_versions=("2022-11-28",), require_user_agent=True,
                 hang_seconds=30.0, verbose=False, git_dir=None):
        self.client_ids = [client_id] if isinstance(client_id, str) else list(client_id)
        self.client_secret = client_secret
        self.port, self.api_port, self.layout = port, api_port, layout
        self.interval = interval
        self.expires_in = expires_in
        self.slow_down_step = slow_down_step
        self.time_scale = time_scale
        self.poll_slack = poll_slack
        self.strict_first_poll = strict_first_poll
        self.slow_down = slow_down
        self.app_tokens = app_tokens
        self.token_expires_in = token_expires_in
        self.refresh_token_expires_in = refresh_token_expires_in
        self.device_flow_disabled = device_flow_disabled
        self.api_versions = tuple(api_versions)
        self.require_user_agent = require_user_agent
        self.hang_seconds = hang_seconds
        self.verbose = verbose
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.users = {}        # login -> dict (type User or Organization)
        self.repos = {}        # "owner/name" (lower) -> dict
        self.devices = {}      # device_code -> dict
        self.tokens = {}       # access token -> dict
        self.refresh_tokens = {}  # refresh token -> dict
        self.log = []          # requests received (not /_control/)
        self.hit_counts = {}   # "METHOD /path" -> n
        self.fails = []        # injected failures
        self.delays = []       # injected delays (answers come late, but right)
        self._forced_slow = {}  # device_code or None -> n
        self._next_user_id = 1001
        self._next_repo_id = 500001
        self.pulls = {}        # "owner/name" (lower) -> [pull dicts], by number
        self._next_pull_id = 1800000001
        self._rate = {}        # identity -> used
        self._servers = []
        self._threads = []
        self._own_git_dir = git_dir is None
        self.git_dir = git_dir
        self.url = self.api_url = None

    # ------------------------------------------------------------ lifecycle
    def start(self):
        if self.git_dir is None:
            self.git_dir = tempfile.mkdtemp(prefix="fakegithub-")
        os.makedirs(self.git_dir, exist_ok=True)
        web = self._serve(self.port, "both" if self.layout == "ghes" else "web")
        self.url = "http://127.0.0.1:%d" % web.server_address[1]
        if self.layout == "ghes":
            self.api_url = self.url + "/api/v3"
        else:
            api = self._serve(self.api_port, "api")
            self.api_url = "http://127.0.0.1:%d" % api.server_address[1]
        return self

    def _serve(self, port, role):
        srv = _Server(("127.0.0.1", port), _Handler)
        srv.fake, srv.role = self, role
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        t.start()
        self._servers.append(srv)
        self._threads.append(t)
        return srv

    def stop(self):
        self.stopping.set()
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers = []
        if self._own_git_dir and self.git_dir:
            shutil.rmtree(self.git_dir, ignore_errors=True)
            self.git_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def configure(self, **kw):
        """Change constructor knobs at run time (interval, expires_in,
        slow_down, app_tokens, device_flow_disabled, time_scale, ...)."""
        allowed = {"interval", "expires_in", "slow_down_step", "time_scale", "poll_slack",
                   "strict_first_poll", "slow_down", "app_tokens", "token_expires_in",
                   "refresh_token_expires_in", "device_flow_disabled", "hang_seconds",
                   "client_secret", "require_user_agent"}
        with self.lock:
            for k, v in kw.items():
                if k == "client_id":
                    self.client_ids = [v] if isinstance(v, str) else list(v)
                elif k == "api_versions":
                    self.api_versions = tuple(v)
                elif k in allowed:
                    setattr(self, k, v)
                else:
                    raise KeyError("unknown setting %r" % k)

    # ------------------------------------------------------------ data
    def add_user(self, login, name=None, email=None, repos=(), id=None, emails=None):
        """Add a user; repos are names or dicts of add_repo() kwargs (owner = login)."""
        with self.lock:
            u = self._new_account(login, "User", id)
            u.update(name=name, email=email, members=None,
                     emails=list(emails) if emails is not None else ([email] if email else []))
        for r in repos:
            if isinstance(r, str):
                self.add_repo(login, r)
            else:
                self.add_repo(login, **r)
        return u

    def rename_user(self, old, new):
        """The account keeps its id and tokens under a new login, as on
        GitHub; the old login is free for someone else to register."""
        with self.lock:
            u = self.users.pop(old)
            u["login"] = new
            self.users[new] = u
            for t in self.tokens.values():
                if t["login"].lower() == old.lower():
                    t["login"] = new
            return u

    def add_org(self, login, members=(), id=None):
        with self.lock:
            o = self._new_account(login, "Organization", id)
            o.update(name=None, email=None, emails=[], members=list(members))
            return o

    def set_membership(self, org, login, state="active", role="member"):
        """login's membership of org: "active", "pending" (invited, not
        joined) or None (none). role: "member" or "admin"."""
        if state not in ("active", "pending", None) or role not in ("member", "admin"):
            raise ValueError("state must be active, pending or None; role member or admin")
        with self.lock:
            o = self._account(org)
            if o is None or o["type"] != "Organization":
                raise KeyError("no such organization %s" % org)
            if self._account(login) is None:
                raise KeyError("no such user %s" % login)
            low = login.lower()
            o["members"] = [m for m in o["members"] if m.lower() != low]
            o.setdefault("pending", [])
            o["pending"] = [m for m in o["pending"] if m.lower() != low]
            o.setdefault("roles", {}).pop(low, None)
            if state == "active":
                o["members"].append(login)
            elif state == "pending":
                o["pending"].append(login)
            if state:
                o["roles"][low] = role

    def _membership(self, org, login):
        """(state, role) of login in org, or None."""
        o = self._account(org)
        if o is None or o["type"] != "Organization":
            return None
        low = login.lower()
        role = o.get("roles", {}).get(low, "member")
        if low in (m.lower() for m in o["members"]):
            return "active", role
        if low in (m.lower() for m in o.get("pending", [])):
            return "pending", role
        return None

    def _new_account(self, login, kind, id):
        if login.lower() in (k.lower() for k in self.users):
            raise ValueError("account %s exists" % login)
        if id is None:
            id, self._next_user_id = self._next_user_id, self._next_user_id + 1
        u = {"login": login, "id": id, "type": kind, "created_at": time.time() - 86400 * 400}
        self.users[login] = u
        return u

    def add_repo(self, owner, name, private=False, description=None, default_branch="main",
                 collaborators=(), with_git=False, files=None, created_at=None,
                 updated_at=None, pushed_at=None, language=None, fork=False,
                 archived=False, id=None):
        """Add a repository. with_git=True creates a real bare repository with
        one commit (files: {path: text}, default a README.md) served over smart HTTP."""
        with self.lock:
            o = self._account(owner)
            if o is None:
                raise KeyError("no such owner %s" % owner)
            if id is None:
                id, self._next_repo_id = self._next_repo_id, self._next_repo_id + 1
            now = time.time()
            n = len(self.repos)
            r = {"id": id, "owner": o["login"], "name": name, "private": bool(private),
                 "description": description, "default_branch": default_branch,
                 "collaborators": list(collaborators), "language": language, "fork": fork,
                 "archived": archived, "git": None,
                 "created_at": created_at if created_at is not None else now - 86400 * (300 - n),
                 "updated_at": updated_at if updated_at is not None else now - 3600 * (200 - n),
                 "pushed_at": pushed_at if pushed_at is not None else now - 3600 * (200 - n)}
            key = ("%s/%s" % (o["login"], name)).lower()
            if key in self.repos:
                raise ValueError("repo %s exists" % key)
            self.repos[key] = r
        if with_git:
            self._make_git(r, files)
        return r

    def _make_git(self, r, files):
        path = os.path.join(self.git_dir, r["owner"], r["name"] + ".git")
        env = _git_env(self.git_dir)
        subprocess.run(["git", "init", "-q", "--bare", "-b", r["default_branch"], path],
                       env=env, check=True)
        work = tempfile.mkdtemp(prefix="fakegithub-wt-")
        try:
            for rel, text in (files or {"README.md": "# %s\n" % r["name"]}).items():
                p = os.path.join(work, rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(text.encode() if isinstance(text, str) else text)
            g = ["git", "--git-dir", path, "--work-tree", work,
                 "-c", "user.name=%s" % r["owner"], "-c", "user.email=%s@users.noreply.github.com" % r["owner"]]
            subprocess.run(g + ["add", "-A"], env=env, check=True)
            subprocess.run(g + ["commit", "-q", "-m", "Initial commit"], env=env, check=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        r["git"] = path

    def _account(self, login):
        for k, v in self.users.items():
            if k.lower() == str(login).lower():
                return v
        return None

    def _repo(self, owner, name):
        return self.repos.get(("%s/%s" % (owner, name)).lower())

    # ------------------------------------------------------------ device flow controls
    def device(self, user_code=None, device_code=None):
        """The device-flow record for a user_code or device_code (latest if neither)."""
        with self.lock:
            if device_code is not None:
                return self.devices.get(device_code)
            if user_code is None:
                return max(self.devices.values(), key=lambda d: d["seq"]) if self.devices else None
            uc = user_code.strip().upper().replace(" ", "")
            for d in self.devices.values():
                if d["user_code"] == uc or d["user_code"].replace("-", "") == uc:
                    return d
            return None

    def _need_device(self, user_code):
        d = self.device(user_code)
        if d is None:
            raise KeyError("no device flow with user code %r" % user_code)
        return d

    def approve(self, user_code, login):
        with self.lock:
            d = self._need_device(user_code)
            if self._account(login) is None:
                raise KeyError("no such user %s" % login)
            d["status"], d["login"] = "approved", self._account(login)["login"]
            return d["device_code"]

    def deny(self, user_code):
        with self.lock:
            self._need_device(user_code)["status"] = "denied"

    def expire(self, user_code):
        with self.lock:
            self._need_device(user_code)["expired"] = True

    def force_slow_down(self, n=1, user_code=None):
        """The next n polls (of this flow, or of any) answer slow_down."""
        with self.lock:
            key = self._need_device(user_code)["device_code"] if user_code else None
            self._forced_slow[key] = self._forced_slow.get(key, 0) + n

    # ------------------------------------------------------------ tokens
    def revoke(self, token):
        with self.lock:
            t = self.tokens.get(token)
            if t is None:
                raise KeyError("unknown token")
            t["revoked"] = True

    def revoke_user(self, login):
        with self.lock:
            for t in self.tokens.values():
                if t["login"].lower() == login.lower():
                    t["revoked"] = True

    def expire_token(self, token):
        with self.lock:
            if token in self.tokens:
                self.tokens[token]["expires_at"] = 0
            elif token in self.refresh_tokens:
                self.refresh_tokens[token]["expires_at"] = 0
            else:
                raise KeyError("unknown token")

    def token_info(self, token):
        """dict(login, scopes, kind, revoked, ...) or None."""
        with self.lock:
            t = self.tokens.get(token)
            return dict(t) if t else None

    def tokens_for(self, login):
        with self.lock:
            return [k for k, t in self.tokens.items() if t["login"].lower() == login.lower()]

    def _issue(self, login, scopes, client_id):
        now = time.monotonic()
        if self.app_tokens:
            tok, rt = _rand_token("ghu_", 36), _rand_token("ghr_", 76)
            self.tokens[tok] = {"login": login, "scopes": [], "kind": "app", "revoked": False,
                                "client_id": client_id, "refresh_token": rt,
                                "expires_at": now + self.token_expires_in * self.time_scale}
            self.refresh_tokens[rt] = {"login": login, "access_token": tok, "used": False,
                                       "client_id": client_id,
                                       "expires_at": now + self.refresh_token_expires_in * self.time_scale}
            return {"access_token": tok, "expires_in": self.token_expires_in, "refresh_token": rt,
                    "refresh_token_expires_in": self.refresh_token_expires_in,
                    "token_type": "bearer", "scope": ""}
        tok = _rand_token("gho_", 36)
        self.tokens[tok] = {"login": login, "scopes": scopes, "kind": "oauth", "revoked": False,
                            "client_id": client_id, "expires_at": None}
        return {"access_token": tok, "token_type": "bearer", "scope": ",".join(scopes)}

    def _token_user(self, token):
        """login for a live token, else None."""
        t = self.tokens.get(token)
        if t is None or t["revoked"]:
            return None
        if t["expires_at"] is not None and time.monotonic() >= t["expires_at"]:
            return None
        return t

    # ------------------------------------------------------------ failures
    def set_fail(self, path_prefix, status, count=1, host=None, body=None, headers=None, hang=None):
        """Next `count` requests whose path starts with path_prefix fail.
        status: an HTTP status (e.g. 502), 'timeout' (hang `hang` s, default
        hang_seconds, then close without answering) or 'reset' (close at once).
        count=None: until clear_fail(). host: 'web', 'api' or None (both).
        Path prefixes for the API host are without /api/v3."""
        with self.lock:
            self.fails.append({"prefix": path_prefix, "status": status, "count": count,
                               "host": host, "body": body, "headers": headers or {}, "hang": hang})

    def set_delay(self, path_prefix, seconds, count=None, host=None):
        """The next `count` requests (None: every one until clear_fail())
        whose path starts with path_prefix are answered as usual, after
        `seconds`. host: 'web', 'api' or None (both)."""
        with self.lock:
            self.delays.append({"prefix": path_prefix, "seconds": float(seconds), "count": count,
                                "host": host})

    def clear_fail(self):
        """Ends every injected failure and delay."""
        with self.lock:
            self.fails = []
            self.delays = []

    def _take(self, rules, role, path):
        with self.lock:
            for f in rules:
                if path.startswith(f["prefix"]) and f["host"] in (None, role):
                    if f["count"] is not None:
                        f["count"] -= 1
                        if f["count"] <= 0:
                            rules.remove(f)
                    return f
        return None

    def _take_fail(self, role, path):
        return self._take(self.fails, role, path)

    def _take_delay(self, role, path):
        return self._take(self.delays, role, path)

    # ------------------------------------------------------------ observation
    def requests(self, path_prefix=None, method=None, host=None):
        """Logged requests: dicts time, host ('web'|'api'), method, path (with
        query, as received), headers (list of [name, value]), body (str)."""
        with self.lock:
            return [dict(e) for e in self.log
                    if (path_prefix is None or e["path"].startswith(path_prefix))
                    and (method is None or e["method"] == method)
                    and (host is None or e["host"] == host)]

    def hits(self, path=None, method=None):
        """{"METHOD /path": n}, or the count for one path (any method unless given)."""
        with self.lock:
            if path is None:
                return dict(self.hit_counts)
            return sum(n for k, n in self.hit_counts.items()
                       if k.split(" ", 1)[1] == path and (method is None or k.split(" ", 1)[0] == method))

    def polls(self, device_code=None, user_code=None):
        """Wall-clock times (time.time()) of every token poll of one flow, or
        {device_code: [times]} for all."""
        with self.lock:
            if device_code is None and user_code is None:
                return {k: list(d["polls"]) for k, d in self.devices.items()}
            d = self.device(user_code, device_code)
            return list(d["polls"]) if d else []

    def devices_list(self):
        with self.lock:
            return [self._device_view(d) for d in self.devices.values()]

    def _device_view(self, d):
        return {k: d[k] for k in ("device_code", "user_code", "client_id", "scope", "status",
                                  "login", "interval", "expired", "polls")}

    def header_of(self, entry, name):
        for k, v in entry["headers"]:
            if k.lower() == name.lower():
                return v
        return None

    def urls_containing(self, s):
        """Logged request paths (URL incl. query) that contain s - should be [] for any token."""
        with self.lock:
            return [e["path"] for e in self.log if s in e["path"] or s in urllib.parse.unquote(e["path"])]

    def clear_log(self):
        with self.lock:
            self.log, self.hit_counts = [], {}

    def state(self):
        with self.lock:
            return {"url": self.url, "api_url": self.api_url, "client_ids": self.client_ids,
                    "users": sorted(self.users), "repos": sorted(self.repos),
                    "devices": [self._device_view(d) for d in self.devices.values()],
                    "hits": dict(self.hit_counts), "fails": list(self.fails),
                    "tokens": len(self.tokens)}

    # ------------------------------------------------------------ pull requests
    def _pull(self, owner, repo, number):
        r = self._repo(owner, repo)
        if r is None:
            raise KeyError("no such repo %s/%s" % (owner, repo))
        for p in self.pulls.get(("%s/%s" % (r["owner"], r["name"])).lower(), []):
            if p["number"] == int(number):
                return r, p
        raise KeyError("no pull %s in %s/%s" % (number, owner, repo))

    def set_pull_state(self, owner, repo, number, state):
        """open, closed, or merged (closed with merged true; final)."""
        if state not in ("open", "closed", "merged"):
            raise ValueError("state must be open, closed or merged")
        with self.lock:
            r, p = self._pull(owner, repo, number)
            if p["merged"] and state != "merged":
                raise ValueError("pull %s is merged" % number)
            now = time.time()
            p["updated_at"] = now
            if state == "open":
                p.update(state="open", closed_at=None)
            else:
                p.update(state="closed", closed_at=p["closed_at"] or now)
                if state == "merged" and not p["merged"]:
                    p.update(merged=True, merged_at=now, merge_commit_sha=p["head_sha"])
            return _pull_json(self, r, p, full=True)

    def pulls_list(self, owner, repo):
        with self.lock:
            r = self._repo(owner, repo)
            if r is None:
                raise KeyError("no such repo %s/%s" % (owner, repo))
            return [_pull_json(self, r, p, full=True)
                    for p in self.pulls.get(("%s/%s" % (r["owner"], r["name"])).lower(), [])]

    def reject_push(self, owner, repo, reason=None):
        """Every push to the repository fails with reason (None: accepted again)."""
        with self.lock:
            r = self._repo(owner, repo)
            if r is None or not r["git"]:
                raise KeyError("no git repository %s/%s" % (owner, repo))
            hook = os.path.join(r["git"], "hooks", "pre-receive")
            why = os.path.join(r["git"], "hooks", "fakegithub-reject-reason")
            if reason is None:
                for p in (hook, why):
                    if os.path.exists(p):
                        os.unlink(p)
                return None
            os.makedirs(os.path.dirname(hook), exist_ok=True)
            with open(why, "w") as f:
                f.write(str(reason) + "\n")
            with open(hook, "w") as f:
                f.write('#!/bin/sh\ncat >/dev/null\ncat "$(dirname "$0")/fakegithub-reject-reason" >&2\nexit 1\n')
            os.chmod(hook, 0o755)
            return None

    # ------------------------------------------------------------ control over HTTP
    def _control(self, name, args):
        if name == "pulls":
            return self.pulls_list(args.get("owner"), args.get("repo"))
        if name == "requests":
            return self.requests(args.get("path_prefix"), args.get("method"), args.get("host"))
        if name == "devices":
            return self.devices_list()
        if name == "tokens":
            login = args.get("login")
            return self.tokens_for(login) if login else []
        return getattr(self, name)(**args)


def _git_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", HOME=home, GIT_AUTHOR_DATE="2024-01-01T00:00:00Z",
               GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    return env


# ====================================================================== HTTP
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    sys_version = ""

    def log_message(self, fmt, *a):
        if self.server.fake.verbose:
            sys.stderr.write("fakegithub: " + (fmt % a) + "\n")

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    # ------------------------------------------------------------ plumbing
    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=b"", headers=(), ctype=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj, headers=()):
        self._send(status, json.dumps(obj, indent=2), headers, "application/json; charset=utf-8")

    def _dispatch(self):
        fake = self.server.fake
        body = self._read_body()
        raw = self.path
        u = urllib.parse.urlsplit(raw)
        path, query = u.path, u.query
        role = self.server.role
        if role == "both":
            if path == "/api/v3" or path.startswith("/api/v3/"):
                role, path = "api", path[len("/api/v3"):] or "/"
            else:
                role = "web"
        self.role, self.rpath, self.query = role, path, query
        self.params = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.body = body
        if path.startswith("/_control/"):
            return self._control(path[len("/_control/"):], body)
        with fake.lock:
            fake.log.append({"time": time.time(), "host": role, "method": self.command, "path": raw,
                             "headers": [[k, v] for k, v in self.headers.items()],
                             "body": body[:65536].decode("utf-8", "replace")})
            key = "%s %s" % (self.command, path)
            fake.hit_counts[key] = fake.hit_counts.get(key, 0) + 1
        d = fake._take_delay(role, path)
        if d is not None:
            fake.stopping.wait(d["seconds"])
        f = fake._take_fail(role, path)
        if f is not None:
            return self._fail(f)
        try:
            if role == "api":
                self._api()
            else:
                self._web()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _fail(self, f):
        fake = self.server.fake
        if f["status"] in ("timeout", "reset"):
            if f["status"] == "timeout":
                fake.stopping.wait(f["hang"] if f["hang"] is not None else fake.hang_seconds)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        st = int(f["status"])
        body = f["body"]
        if body is None:
            body = {"message": {500: "Server Error", 502: "Server Error", 503: "Service Unavailable",
                                504: "We couldn't respond to your request in time. Sorry about that. "
                                     "Please try resubmitting your request and contact us if the problem persists.",
                                403: "API rate limit exceeded", 429: "API rate limit exceeded"}
                                .get(st, "Error"), "documentation_url": DOCS_REST, "status": str(st)}
        self._json(st, body, list(f["headers"].items()))

    def _control(self, name, body):
        fake = self.server.fake
        if name not in CONTROL_METHODS:
            return self._json(404, {"error": "unknown control %s" % name, "known": sorted(CONTROL_METHODS)})
        if self.command == "GET":
            if not CONTROL_METHODS[name]:
                return self._json(405, {"error": "POST /_control/%s with a JSON object" % name})
            args = {k: v[-1] for k, v in self.params.items()}
        else:
            try:
                args = json.loads(body or b"{}")
                assert isinstance(args, dict)
            except (ValueError, AssertionError):
                return self._json(400, {"error": "body must be a JSON object"})
        try:
            res = fake._control(name, args)
        except (KeyError, ValueError, TypeError) as e:
            return self._json(400, {"error": str(e)})
        self._json(200, {"ok": True, "result": res})

    def _form(self):
        """Parameters from the query string, then a form or JSON body (GitHub takes all)."""
        p = {k: v[-1] for k, v in self.params.items()}
        ctype = (self.headers.get("Content-Type") or "").lower()
        if self.body:
            if "json" in ctype:
                try:
                    j = json.loads(self.body)
                    if isinstance(j, dict):
                        p.update({k: str(v) for k, v in j.items()})
                except ValueError:
                    pass
            else:
                for k, v in urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
                    p[k] = v
        return p

    # ------------------------------------------------------------ github.com
    def _web(self):
        path, m = self.rpath, self.command
        if path == "/login/device/code" and m == "POST":
            return self._device_code()
        if path == "/login/oauth/access_token" and m == "POST":
            return self._access_token()
        if path in ("/login/device", "/login/device/") and m in ("GET", "POST"):
            return self._device_page()
        g = re.match(r"^/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?(/info/refs|/git-upload-pack|/git-receive-pack|/HEAD|/objects/.*)$", path)
        if g:
            return self._git(g.group(1), g.group(2), g.group(3))
        self._send(404, "Not Found", ctype="text/plain; charset=utf-8")

    def _oauth_answer(self, obj, status=200):
        accept = (self.headers.get("Accept") or "").lower()
        if "application/json" in accept:
            return self._json(status, obj)
        self._send(status, urllib.parse.urlencode(obj), ctype="application/x-www-form-urlencoded; charset=utf-8")

    def _oauth_error(self, code, **extra):
        obj = {"error": code, "error_description": DEVICE_ERRORS[code], "error_uri": DEVICE_ERROR_URI}
        obj.update(extra)
        self._oauth_answer(obj)

    def _device_code(self):
        fake = self.server.fake
        p = self._form()
        cid = p.get("client_id", "")
        if cid not in fake.client_ids:
            return self._json(404, {"error": "Not Found"})
        if fake.device_flow_disabled:
            obj = {"error": "device_flow_disabled", "error_description": DEVICE_ERRORS["device_flow_disabled"],
                   "error_uri": DEVICE_ERROR_URI}
            return self._oauth_answer(obj, 400)
        scopes = [s for s in re.split(r"[\s,]+", p.get("scope", "")) if s]
        with fake.lock:
            dc = secrets.token_hex(20)
            while True:
                uc = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
                uc = uc[:4] + "-" + uc[4:]
                if not any(d["user_code"] == uc for d in fake.devices.values()):
                    break
            now = time.monotonic()
            fake.devices[dc] = {"device_code": dc, "user_code": uc, "client_id": cid, "scope": scopes,
                                "status": "pending", "login": None, "interval": fake.interval,
                                "expired": False, "created": now,
                                "expires_at": now + fake.expires_in * fake.time_scale,
                                "last_poll": now if fake.strict_first_poll else None,
                                "polls": [], "seq": len(fake.devices)}
        self._oauth_answer({"device_code": dc, "user_code": uc,
                            "verification_uri": fake.url + "/login/device",
                            "expires_in": fake.expires_in, "interval": fake.interval})

    def _access_token(self):
        fake = self.server.fake
        p = self._form()
        cid, grant = p.get("client_id", ""), p.get("grant_type", "")
        if cid not in fake.client_ids:
            return self._oauth_error("incorrect_client_credentials")
        if grant == GRANT_REFRESH:
            return self._refresh(p)
        if grant != GRANT_DEVICE:
            return self._oauth_error("unsupported_grant_type")
        if fake.device_flow_disabled:
            return self._oauth_error("device_flow_disabled")
        with fake.lock:
            d = fake.devices.get(p.get("device_code", ""))
            if d is None or d["client_id"] != cid or d["status"] == "used":
                return self._oauth_error("incorrect_device_code")
            now = time.monotonic()
            d["polls"].append(time.time())
            last, d["last_poll"] = d["last_poll"], now
            if d["expired"] or now >= d["expires_at"]:
                d["expired"] = True
                return self._oauth_error("expired_token")
            forced = None
            for key in (d["device_code"], None):
                if fake._forced_slow.get(key):
                    fake._forced_slow[key] -= 1
                    forced = True
                    break
            early = (fake.slow_down and last is not None
                     and now - last < d["interval"] * fake.time_scale * (1 - fake.poll_slack))
            if forced or early:
                d["interval"] += fake.slow_down_step
                return self._oauth_error("slow_down", interval=d["interval"])
            if d["status"] == "denied":
                return self._oauth_error("access_denied")
            if d["status"] == "pending":
                return self._oauth_error("authorization_pending")
            d["status"] = "used"
            ans = fake._issue(d["login"], d["scope"], cid)
        self._oauth_answer(ans)

    def _refresh(self, p):
        fake = self.server.fake
        if fake.client_secret is not None and p.get("client_secret") != fake.client_secret:
            return self._oauth_error("incorrect_client_credentials")
        with fake.lock:
            r = fake.refresh_tokens.get(p.get("refresh_token", ""))
            if r is None or r["used"] or time.monotonic() >= r["expires_at"] or r["client_id"] != p.get("client_id"):
                return self._oauth_error("bad_refresh_token")
            r["used"] = True
            old = fake.tokens.get(r["access_token"])
            if old:
                old["revoked"] = True
            was_app = fake.app_tokens
            fake.app_tokens = True
            try:
                ans = fake._issue(r["login"], [], r["client_id"])
            finally:
                fake.app_tokens = was_app
        self._oauth_answer(ans)

    def _device_page(self):
        """A tiny stand-in for github.com/login/device: enter the code, pick the user, authorize or cancel."""
        fake = self.server.fake
        msg = ""
        if self.command == "POST":
            p = self._form()
            try:
                if p.get("action") == "cancel":
                    fake.deny(p.get("user_code", ""))
                    msg = "Authorization cancelled."
                else:
                    fake.approve(p.get("user_code", ""), p.get("login", ""))
                    msg = "Congratulations, you're all set! Your device is now connected."
            except KeyError as e:
                msg = "Error: %s" % e.args[0]
        with fake.lock:
            logins = [u["login"] for u in fake.users.values() if u["type"] == "User"]
        code = html.escape(self.params.get("user_code", [""])[-1])
        opts = "".join('<option value="%s">%s</option>' % (html.escape(l), html.escape(l)) for l in logins)
        page = ("<!doctype html><html><head><meta charset=utf-8><title>Device Activation</title></head><body>"
                "<h1>Device Activation</h1><p id=message>%s</p>"
                "<form method=post action=/login/device>"
                "<label>Code <input name=user_code id=user_code value=\"%s\" autocomplete=off></label> "
                "<label>Signed in as <select name=login id=login>%s</select></label> "
                "<button name=action value=authorize id=authorize>Authorize</button> "
                "<button name=action value=cancel id=cancel>Cancel</button></form></body></html>"
                % (html.escape(msg), code, opts))
        self._send(200, page, ctype="text/html; charset=utf-8")

    # ------------------------------------------------------------ git smart HTTP
    def _git(self, owner, name, rest):
        fake = self.server.fake
        plain = "text/plain; charset=utf-8"
        with fake.lock:
            repo = fake._repo(owner, name)
        auth = self.headers.get("Authorization")
        user = None
        if auth:
            try:
                scheme, val = auth.split(None, 1)
                if scheme.lower() == "basic":
                    _, _, pw = base64.b64decode(val).decode().partition(":")
                elif scheme.lower() in ("bearer", "token"):
                    pw = val.strip()
                else:
                    pw = ""
            except (ValueError, UnicodeDecodeError):
                pw = ""
            with fake.lock:
                t = fake._token_user(pw)
            if t is None:
                return self._send(401, "Invalid username or token. Password authentication is not supported for Git operations.\n",
                                  [("WWW-Authenticate", 'Basic realm="GitHub"')], plain)
            user = t["login"]
        push = rest == "/git-receive-pack" or "service=git-receive-pack" in self.query
        if user is None and (push or repo is None or repo["private"]):
            return self._send(401, "", [("WWW-Authenticate", 'Basic realm="GitHub"')], plain)
        with fake.lock:
            visible = repo is not None and _can_see(fake, repo, user, fake.tokens.get(self._token_of()))
            perms = _perms(fake, repo, user) if visible else None
        if not visible or not repo["git"]:
            return self._send(404, "Repository not found.\n", ctype=plain)
        if push and not perms["push"]:
            return self._send(403, "Permission to %s/%s.git denied to %s.\n" % (repo["owner"], repo["name"], user), ctype=plain)
        env = _git_env(fake.git_dir)
        env.update(GIT_PROJECT_ROOT=fake.git_dir, GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO="/%s/%s.git%s" % (repo["owner"], repo["name"], rest),
                   QUERY_STRING=self.query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(self.body)), REMOTE_ADDR="127.0.0.1")
        if user:
            env["REMOTE_USER"] = user
        for h in ("Git-Protocol", "Content-Encoding"):
            if self.headers.get(h):
                env["HTTP_" + h.upper().replace("-", "_")] = self.headers[h]
        pr = subprocess.run(["git", "http-backend"], input=self.body, env=env, capture_output=True)
        out = pr.stdout
        sep = out.find(b"\r\n\r\n")
        sl = 4
        if sep < 0:
            sep, sl = out.find(b"\n\n"), 2
        if sep < 0:
            return self._send(500, "git http-backend failed: %s" % pr.stderr.decode("utf-8", "replace"), ctype=plain)
        status, hdrs = 200, []
        for line in out[:sep].decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k.lower() not in ("content-length", "transfer-encoding"):
                hdrs.append((k.strip(), v.strip()))
        self._send(status, out[sep + sl:], hdrs)

    def _token_of(self):
        auth = self.headers.get("Authorization") or ""
        scheme, _, val = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(val).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        if scheme.lower() in ("bearer", "token"):
            return val.strip()
        return None

    # ------------------------------------------------------------ api.github.com
    def _api_headers(self, tok):
        fake = self.server.fake
        ident = tok or self.client_address[0]
        with fake.lock:
            used = fake._rate[ident] = fake._rate.get(ident, 0) + 1
        limit = 5000 if tok else 60
        h = [("X-GitHub-Media-Type", "github.v3; format=json"),
             ("X-GitHub-Api-Version-Selected", self.headers.get("X-GitHub-Api-Version") or "2022-11-28"),
             ("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(max(0, limit - used))),
             ("X-RateLimit-Reset", str(int(time.time()) + 3600)), ("X-RateLimit-Used", str(used)),
             ("X-RateLimit-Resource", "core"), ("X-GitHub-Request-Id", secrets.token_hex(8).upper()),
             ("X-Content-Type-Options", "nosniff"), ("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP"),
             ("Cache-Control", "private, max-age=60, s-maxage=60" if tok else "public, max-age=60, s-maxage=60")]
        if tok:
            t = fake.tokens.get(tok)
            if t and t["kind"] == "oauth":
                h.append(("X-OAuth-Scopes", ", ".join(t["scopes"])))
            h.append(("X-Accepted-OAuth-Scopes", ""))
        return h

    def _api(self):
        fake = self.server.fake
        path, m = self.rpath.rstrip("/") or "/", self.command
        if fake.require_user_agent and not self.headers.get("User-Agent"):
            return self._send(403, "Request forbidden by administrative rules. Please make sure your request has a "
                                   "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
                                   "Check https://developer.github.com for other possible causes.\n",
                              ctype="text/plain; charset=utf-8")
        ver = self.headers.get("X-GitHub-Api-Version")
        if ver is not None and ver not in fake.api_versions:
            return self._json(400, {"message": "API version %s is not supported." % ver,
                                    "documentation_url": "https://docs.github.com/rest/overview/api-versions",
                                    "status": "400"})
        am = re.match(r"^/applications/([^/]+)/(token|grant)$", path)
        if am and m == "DELETE":
            return self._app_delete(am.group(1))
        auth = self.headers.get("Authorization")
        tok, t = None, None
        if auth:
            scheme, _, val = auth.partition(" ")
            tok = val.strip() if scheme.lower() in ("bearer", "token") else None
            with fake.lock:
                t = fake._token_user(tok) if tok else None
            if t is None:
                return self._json(401, {"message": "Bad credentials", "documentation_url": DOCS_REST, "status": "401"},
                                  self._api_headers(None))
        hdr = self._api_headers(tok)
        login = t["login"] if t else None
        pm = re.match(r"^/repos/([^/]+)/([^/]+)/pulls(?:/([0-9]+))?$", path)
        if pm:
            return self._pulls(pm.group(1), pm.group(2), pm.group(3), login, t, hdr)
        if m not in ("GET", "HEAD"):
            return self._not_found(hdr)
        if (path in ("/user", "/user/emails", "/user/repos") or path.startswith("/user/memberships/")) and login is None:
            return self._json(401, {"message": "Requires authentication",
                                    "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
                                    "status": "401"}, hdr)
        with fake.lock:
            if path == "/user":
                return self._json(200, _user_json(fake, fake._account(login), private=True), hdr)
            if path == "/user/emails":
                if t["kind"] == "oauth" and not ({"user", "user:email"} & set(t["scopes"])):
                    return self._not_found(hdr)
                u = fake._account(login)
                return self._json(200, [{"email": e, "primary": i == 0, "verified": True,
                                         "visibility": "private" if i == 0 else None}
                                        for i, e in enumerate(u["emails"])], hdr)
            if path == "/user/repos":
                return self._user_repos(login, t, hdr)
            mm = re.match(r"^/user/memberships/orgs/([^/]+)$", path)
            if mm:
                return self._org_membership(urllib.parse.unquote(mm.group(1)), login, t, hdr)
            rm = re.match(r"^/repos/([^/]+)/([^/]+)$", path)
            if rm:
                r = fake._repo(rm.group(1), rm.group(2))
                if r is None or not _can_see(fake, r, login, t):
                    return self._json(404, {"message": "Not Found",
                                            "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository",
                                            "status": "404"}, hdr)
                return self._json(200, _repo_json(fake, r, login), hdr)
            um = re.match(r"^/users/([^/]+)$", path)
            if um and fake._account(um.group(1)):
                return self._json(200, _user_json(fake, fake._account(um.group(1)), private=False), hdr)
        return self._not_found(hdr)

    def _org_membership(self, org, login, t, hdr):
        """GET /user/memberships/orgs/{org}: needs read:org on an OAuth token."""
        fake = self.server.fake
        if t["kind"] == "oauth" and not ({"read:org", "write:org", "admin:org"} & set(t["scopes"])):
            return self._json(403, {"message": "You need at least read:org scope or user scope to "
                                               "list your organization memberships.",
                                    "documentation_url": "https://docs.github.com/rest/orgs/members"
                                                         "#get-an-organization-membership-for-the-authenticated-user",
                                    "status": "403"}, hdr)
        m = fake._membership(org, login)
        if m is None:
            return self._not_found(hdr)
        o, u = fake._account(org), fake._account(login)
        return self._json(200, {"url": "%s/orgs/%s/memberships/%s" % (fake.api_url, o["login"], u["login"]),
                                "state": m[0], "role": m[1],
                                "organization_url": "%s/orgs/%s" % (fake.api_url, o["login"]),
                                "organization": _owner_json(fake, o), "user": _owner_json(fake, u)}, hdr)

    def _pulls(self, owner, name, number, login, t, hdr):
        """POST /repos/{o}/{r}/pulls, GET /repos/{o}/{r}/pulls[/{n}]."""
        fake = self.server.fake
        m = self.command
        doc = "https://docs.github.com/rest/pulls/pulls#" + (
            "create-a-pull-request" if m == "POST" else "get-a-pull-request" if number else "list-pull-requests")
        if m == "POST" and number is None and login is None:
            return self._json(401, {"message": "Requires authentication", "documentation_url": doc,
                                    "status": "401"}, hdr)
        with fake.lock:
            r = fake._repo(owner, name)
            if r is None or not _can_see(fake, r, login, t):
                return self._json(404, {"message": "Not Found", "documentation_url": doc, "status": "404"}, hdr)
            key = ("%s/%s" % (r["owner"], r["name"])).lower()
            pulls = fake.pulls.setdefault(key, [])
            if m in ("GET", "HEAD") and number is not None:
                for p in pulls:
                    if p["number"] == int(number):
                        return self._json(200, _pull_json(fake, r, p, full=True), hdr)
                return self._json(404, {"message": "Not Found", "documentation_url": doc, "status": "404"}, hdr)
            if m in ("GET", "HEAD"):
                q = {k: v[-1] for k, v in self.params.items()}
                state = q.get("state") or "open"
                out = [p for p in pulls if state == "all" or p["state"] == state]
                if q.get("head"):
                    ho, _, hb = q["head"].rpartition(":")
                    ho = ho or r["owner"]
                    out = [p for p in out if p["head_owner"].lower() == ho.lower() and p["head"] == hb]
                if q.get("base"):
                    out = [p for p in out if p["base"] == q["base"]]
                out.sort(key=lambda p: p["number"], reverse=(q.get("direction") or "desc") == "desc")
                try:
                    per = min(max(int(q.get("per_page") or 30), 1), 100)
                except ValueError:
                    per = 30
                return self._json(200, [_pull_json(fake, r, p, full=False) for p in out[:per]], hdr)
            if m != "POST" or number is not None:
                return self._not_found(hdr)
            try:
                b = json.loads(self.body or b"{}")
                assert isinstance(b, dict)
            except (ValueError, AssertionError):
                return self._json(400, {"message": "Problems parsing JSON", "documentation_url": doc,
                                        "status": "400"}, hdr)

            def invalid(errors):
                return self._json(422, {"message": "Validation Failed", "errors": errors,
                                        "documentation_url": doc, "status": "422"}, hdr)
            for field in ("title", "head", "base"):
                if not isinstance(b.get(field), str) or not b[field]:
                    if field == "title":
                        return invalid([{"resource": "Issue", "field": "title", "code": "missing_field"}])
                    return invalid([{"resource": "PullRequest", "field": field, "code": "missing_field"}])
            head_owner, _, head = b["head"].rpartition(":")
            head_owner = head_owner or r["owner"]
            hr = r if head_owner.lower() == r["owner"].lower() else fake._repo(head_owner, r["name"])
            base_sha = _branch_sha(r, b["base"])
            head_sha = _branch_sha(hr, head) if hr is not None else None
            if head_sha is None:
                return invalid([{"resource": "PullRequest", "field": "head", "code": "invalid"}])
            if base_sha is None:
                return invalid([{"resource": "PullRequest", "field": "base", "code": "invalid"}])
            label = "%s:%s" % (hr["owner"], head)
            for p in pulls:
                if p["state"] == "open" and p["head_owner"].lower() == hr["owner"].lower() and \
                        p["head"] == head and p["base"] == b["base"]:
                    return invalid([{"resource": "PullRequest", "code": "custom",
                                     "message": "A pull request already exists for %s." % label}])
            if hr is not r:
                subprocess.run(["git", "--git-dir", r["git"], "fetch", "-q", hr["git"],
                                "+refs/heads/%s:refs/fakegithub/head" % head], env=_git_env(fake.git_dir),
                               capture_output=True)
            if _ahead(r, base_sha, head_sha) == 0:
                return invalid([{"resource": "PullRequest", "code": "custom",
                                 "message": "No commits between %s and %s" % (b["base"], b["head"])}])
            now = time.time()
            p = {"id": fake._next_pull_id, "number": len(pulls) + 1, "title": b["title"],
                 "body": b.get("body") if isinstance(b.get("body"), str) else None,
                 "user": login, "head_owner": hr["owner"], "head_repo": hr, "head": head, "head_sha": head_sha,
                 "base": b["base"], "base_sha": base_sha, "state": "open", "merged": False,
                 "merged_at": None, "closed_at": None, "merge_commit_sha": None,
                 "created_at": now, "updated_at": now, "draft": bool(b.get("draft"))}
            fake._next_pull_id += 1
            pulls.append(p)
            out = _pull_json(fake, r, p, full=True)
        self._json(201, out, list(hdr) + [("Location", out["url"])])

    def _not_found(self, hdr):
        self._json(404, {"message": "Not Found", "documentation_url": DOCS_REST, "status": "404"}, hdr)

    def _app_delete(self, cid):
        """DELETE /applications/{client_id}/token|grant, Basic client_id:client_secret, body {"access_token"}."""
        fake = self.server.fake
        auth = self.headers.get("Authorization") or ""
        try:
            u, _, pw = base64.b64decode(auth.split(None, 1)[1]).decode().partition(":")
        except (IndexError, ValueError, UnicodeDecodeError):
            u = pw = None
        if u != cid or cid not in fake.client_ids or (fake.client_secret is not None and pw != fake.client_secret):
            return self._json(404, {"message": "Not Found", "documentation_url": DOCS_REST, "status": "404"})
        try:
            tok = json.loads(self.body or b"{}").get("access_token")
        except (ValueError, AttributeError):
            tok = None
        with fake.lock:
            t = fake.tokens.get(tok or "")
            if t is None or t["client_id"] != cid:
                return self._json(404, {"message": "Not Found", "documentation_url": DOCS_REST, "status": "404"})
            if self.rpath.endswith("/grant"):
                for o in fake.tokens.values():
                    if o["login"] == t["login"] and o["client_id"] == cid:
                        o["revoked"] = True
            t["revoked"] = True
        self._send(204)

    def _user_repos(self, login, t, hdr):
        fake = self.server.fake
        p = {k: v[-1] for k, v in self.params.items()}
        typ = p.get("type")
        if typ and ("visibility" in p or "affiliation" in p):
            return self._json(422, {"message": "Validation Failed", "errors": [
                {"resource": "Search", "field": "q", "code": "invalid"}],
                "documentation_url": "https://docs.github.com/rest/repos/repos#list-repositories-for-the-authenticated-user",
                "status": "422"}, hdr)
        aff = set((p.get("affiliation") or "owner,collaborator,organization_member").split(","))
        vis = p.get("visibility") or "all"
        if typ == "owner":
            aff = {"owner"}
        elif typ == "member":
            aff = {"collaborator", "organization_member"}
        elif typ in ("public", "private"):
            vis = typ
        out = []
        for r in fake.repos.values():
            if not _can_see(fake, r, login, t):
                continue
            rel = set()
            if r["owner"].lower() == login.lower():
                rel.add("owner")
            if login.lower() in (c.lower() for c in r["collaborators"]):
                rel.add("collaborator")
            o = fake._account(r["owner"])
            if o["type"] == "Organization" and login.lower() in (x.lower() for x in o["members"]):
                rel.add("organization_member")
            if not rel & aff:
                continue
            if vis != "all" and (vis == "private") != r["private"]:
                continue
            out.append(r)
        sort = p.get("sort") or "full_name"
        direction = p.get("direction") or ("asc" if sort == "full_name" else "desc")
        keyf = {"created": lambda r: r["created_at"], "updated": lambda r: r["updated_at"],
                "pushed": lambda r: r["pushed_at"]}.get(sort, lambda r: ("%s/%s" % (r["owner"], r["name"])).lower())
        out.sort(key=keyf, reverse=(direction == "desc"))
        try:
            per = int(p.get("per_page") or 30)
        except ValueError:
            per = 30
        per = 30 if per <= 0 else min(per, 100)
        try:
            page = max(1, int(p.get("page") or 1))
        except ValueError:
            page = 1
        last = max(1, (len(out) + per - 1) // per)
        items = out[(page - 1) * per: page * per]
        links = []
        if last > 1 or page > 1:
            base = [(k, v) for k, v in urllib.parse.parse_qsl(self.query, keep_blank_values=True) if k != "page"]

            def link(n, rel):
                return '<%s/user/repos?%s>; rel="%s"' % (fake.api_url, urllib.parse.urlencode([("page", n)] + base), rel)
            if page > 1:
                links.append(link(min(page - 1, last), "prev"))
            if page < last:
                links.append(link(page + 1, "next"))
                links.append(link(last, "last"))
            if page > 1:
                links.append(link(1, "first"))
        h = list(hdr)
        if links:
            h.append(("Link", ", ".join(links)))
        self._json(200, [_repo_json(fake, r, login) for r in items], h)


# ====================================================================== JSON shapes
def _can_see(fake, r, login, t):
    if not r["private"]:
        return True
    if login is None:
        return False
    if t and t.get("kind") == "oauth" and "repo" not in t.get("scopes", []):
        return False  # an OAuth token without the repo scope sees public repositories only
    return _perms(fake, r, login)["pull"]


def _perms(fake, r, login):
    p = dict(admin=False, maintain=False, push=False, triage=False, pull=not r["private"])
    if login is None:
        return p
    ll = login.lower()
    o = fake._account(r["owner"])
    if r["owner"].lower() == ll:
        return dict(admin=True, maintain=True, push=True, triage=True, pull=True)
    if ll in (c.lower() for c in r["collaborators"]):
        p.update(push=True, triage=True, pull=True)
    if o["type"] == "Organization" and ll in (x.lower() for x in o["members"]):
        p["pull"] = True
    return p


def _owner_json(fake, u):
    api = fake.api_url
    return {"login": u["login"], "id": u["id"], "node_id": "MDQ6VXNlcj%d" % u["id"],
            "avatar_url": "%s/avatars/u/%d?v=4" % (fake.url, u["id"]), "gravatar_id": "",
            "url": "%s/users/%s" % (api, u["login"]), "html_url": "%s/%s" % (fake.url, u["login"]),
            "repos_url": "%s/users/%s/repos" % (api, u["login"]), "type": u["type"],
            "user_view_type": "public", "site_admin": False}


def _user_json(fake, u, private):
    d = _owner_json(fake, u)
    d.update(name=u["name"], company=None, blog="", location=None, email=u["email"],
             hireable=None, bio=None, twitter_username=None,
             public_repos=sum(1 for r in fake.repos.values() if r["owner"] == u["login"] and not r["private"]),
             public_gists=0, followers=0, following=0,
             created_at=_iso(u["created_at"]), updated_at=_iso(u["created_at"] + 86400))
    if private:
        d.update(private_gists=0,
                 total_private_repos=sum(1 for r in fake.repos.values() if r["owner"] == u["login"] and r["private"]),
                 owned_private_repos=sum(1 for r in fake.repos.values() if r["owner"] == u["login"] and r["private"]),
                 disk_usage=0, collaborators=0, two_factor_authentication=True,
                 plan={"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000})
    return d


def _repo_json(fake, r, login):
    full = "%s/%s" % (r["owner"], r["name"])
    host = urllib.parse.urlsplit(fake.url).netloc
    d = {"id": r["id"], "node_id": "R_kgDO%08d" % r["id"], "name": r["name"], "full_name": full,
         "private": r["private"], "owner": _owner_json(fake, fake._account(r["owner"])),
         "html_url": "%s/%s" % (fake.url, full), "description": r["description"], "fork": r["fork"],
         "url": "%s/repos/%s" % (fake.api_url, full),
         "created_at": _iso(r["created_at"]), "updated_at": _iso(r["updated_at"]),
         "pushed_at": _iso(r["pushed_at"]),
         "git_url": "git://%s/%s.git" % (host, full), "ssh_url": "git@%s:%s.git" % (host.split(":")[0], full),
         "clone_url": "%s/%s.git" % (fake.url, full), "svn_url": "%s/%s" % (fake.url, full),
         "homepage": None, "size": 1 if r["git"] else 0, "stargazers_count": 0, "watchers_count": 0,
         "language": r["language"], "has_issues": True, "has_projects": True, "has_downloads": True,
         "has_wiki": True, "has_pages": False, "has_discussions": False, "forks_count": 0,
         "mirror_url": None, "archived": r["archived"], "disabled": False, "open_issues_count": 0,
         "license": None, "allow_forking": True, "is_template": False, "web_commit_signoff_required": False,
         "topics": [], "visibility": "private" if r["private"] else "public", "forks": 0,
         "open_issues": 0, "watchers": 0, "default_branch": r["default_branch"]}
    if login is not None:
        d["permissions"] = _perms(fake, r, login)
    return d


def _branch_sha(r, branch):
    """The commit of refs/heads/branch in r's git repository, or None."""
    if r is None or not r["git"] or not re.match(r"^[A-Za-z0-9._/-]+$", branch) or ".." in branch:
        return None
    p = subprocess.run(["git", "--git-dir", r["git"], "rev-parse", "--verify", "-q",
                        "refs/heads/%s^{commit}" % branch], env=_git_env(os.path.dirname(r["git"])),
                       capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def _ahead(r, base_sha, head_sha):
    """Commits of head not in base (head's objects are in r's repository)."""
    p = subprocess.run(["git", "--git-dir", r["git"], "rev-list", "--count", "%s..%s" % (base_sha, head_sha)],
                       env=_git_env(os.path.dirname(r["git"])), capture_output=True, text=True)
    return int(p.stdout.strip() or 0) if p.returncode == 0 else 0


def _pull_json(fake, r, p, full):
    """GitHub's pull request object; full: the single-pull shape (with
    merged, mergeable, comments...), else the list's."""
    full_name = "%s/%s" % (r["owner"], r["name"])
    api = "%s/repos/%s" % (fake.api_url, full_name)
    html_url = "%s/%s/pull/%d" % (fake.url, full_name, p["number"])
    user = fake._account(p["user"]) or fake._account(r["owner"])
    hr = p["head_repo"]
    d = {"url": "%s/pulls/%d" % (api, p["number"]), "id": p["id"], "node_id": "PR_kwDO%010d" % p["id"],
         "html_url": html_url, "diff_url": html_url + ".diff", "patch_url": html_url + ".patch",
         "issue_url": "%s/issues/%d" % (api, p["number"]), "number": p["number"], "state": p["state"],
         "locked": False, "title": p["title"], "user": _owner_json(fake, user), "body": p["body"],
         "created_at": _iso(p["created_at"]), "updated_at": _iso(p["updated_at"]),
         "closed_at": _iso(p["closed_at"]) if p["closed_at"] else None,
         "merged_at": _iso(p["merged_at"]) if p["merged_at"] else None,
         "merge_commit_sha": p["merge_commit_sha"], "assignee": None, "assignees": [],
         "requested_reviewers": [], "labels": [], "milestone": None, "draft": p["draft"],
         "commits_url": "%s/pulls/%d/commits" % (api, p["number"]),
         "head": {"label": "%s:%s" % (p["head_owner"], p["head"]), "ref": p["head"], "sha": p["head_sha"],
                  "user": _owner_json(fake, fake._account(hr["owner"])), "repo": _repo_json(fake, hr, p["user"])},
         "base": {"label": "%s:%s" % (r["owner"], p["base"]), "ref": p["base"], "sha": p["base_sha"],
                  "user": _owner_json(fake, fake._account(r["owner"])), "repo": _repo_json(fake, r, p["user"])},
         "author_association": "OWNER" if p["user"] and p["user"].lower() == r["owner"].lower() else "CONTRIBUTOR",
         "auto_merge": None, "active_lock_reason": None}
    if full:
        d.update(merged=p["merged"], mergeable=None, rebaseable=None,
                 mergeable_state="unknown", merged_by=_owner_json(fake, user) if p["merged"] else None,
                 comments=0, review_comments=0, maintainer_can_modify=False, commits=1,
                 additions=0, deletions=0, changed_files=0)
    return d


# ====================================================================== program
def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake GitHub (web + API + git) on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="web host port (0 = free port)")
    ap.add_argument("--api-port", type=int, default=0, help="API host port (0 = free port)")
    ap.add_argument("--ghes", action="store_true", help="one port, API under /api/v3")
    ap.add_argument("--client-id", action="append", help="accepted client_id (repeatable)")
    ap.add_argument("--client-secret")
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--expires-in", type=int, default=900)
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--no-slow-down", action="store_true")
    ap.add_argument("--app-tokens", action="store_true", help="issue ghu_/ghr_ expiring tokens")
    ap.add_argument("--device-flow-disabled", action="store_true")
    ap.add_argument("--demo", action="store_true",
                    help="add users octocat (3 repos, one private, with git) and hubot")
    ap.add_argument("--git-dir", help="where bare repositories live (default: a temp dir)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    kw = dict(port=a.port, api_port=a.api_port, layout="ghes" if a.ghes else "two-ports",
              client_secret=a.client_secret, interval=a.interval, expires_in=a.expires_in,
              time_scale=a.time_scale, slow_down=not a.no_slow_down, app_tokens=a.app_tokens,
              device_flow_disabled=a.device_flow_disabled, verbose=a.verbose, git_dir=a.git_dir)
    if a.client_id:
        kw["client_id"] = a.client_id
    gh = FakeGitHub(**kw).start()
    if a.demo:
        gh.add_user("octocat", "The Octocat", "octocat@example.com", repos=[
            {"name": "hello-world", "description": "My first repository", "with_git": True},
            {"name": "secret-plans", "private": True, "with_git": True},
            {"name": "spoon-knife", "description": "Fork me"}])
        gh.add_user("hubot", "Hubot", "hubot@example.com", repos=[{"name": "private-bits", "private": True}])
    print(gh.url, flush=True)
    print(gh.api_url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.1):
        pass
    gh.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
