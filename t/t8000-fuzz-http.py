#!/usr/bin/env python3
"""A bounded HTTP fuzzer over every route of the route table.

The routes are read from fcgi/routes.c at run time, so a new route is
fuzzed without touching this file. Requests are random and mutated: methods
(right, wrong, odd), path parameters (ints, huge, negative, non-numeric,
long, percent-encoded junk), query strings (repeated keys, huge numbers,
bad UTF-8), bodies (mutated known-good JSON: wrong types, deep nesting,
huge strings, \\u0000, invalid UTF-8, truncation, 1e999; raw binary; wrong
Content-Type), cookies (none, junk, several anyon_session) and sometimes an
Origin header. One part runs in local mode, one in cloud mode signed in
through the GitHub stand-in, which is told to answer oddly (5xx, junk JSON,
hangs up to 1 s, resets) for some requests.

Checks, per stack: every answer is JSON and every error has the documented
shape; no 5xx other than the documented GitHub ones, and those only while
the stand-in was failing (500 `internal` is a bug); no FastCGI child died
(same pids before and after); the worker still heartbeats; no "BUG:" in
the logs; and, from Stack, no sanitizer report.

Deterministic: seed ANYON_FUZZ_SEED (default below), ANYON_FUZZ_N requests
in all (default 3000, 2000 on the ASan build). A failure prints the request
(method, path, headers, body prefix) to reproduce it."""
import http.client, json, os, posixpath, random, re, sys, time, urllib.parse
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, SRCDIR, BUILDDIR, wait_until
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

SEED = int(os.environ.get("ANYON_FUZZ_SEED") or 8000)
ASAN = os.path.basename(os.path.normpath(BUILDDIR)) == "build-asan"
N = int(os.environ.get("ANYON_FUZZ_N") or (2000 if ASAN else 3000))

t = TAP()
t.diag("seed %d (ANYON_FUZZ_SEED), %d requests (ANYON_FUZZ_N)%s" % (SEED, N, ", ASan build" if ASAN else ""))

# ---------------------------------------------------------------- routes
with open(os.path.join(SRCDIR, "fcgi", "routes.c")) as f:
    ROUTES = re.findall(r'\{\s*"([A-Z]+)",\s*"(/api/[^"]*)"', f.read())
t.ok(len(ROUTES) >= 20, "read %d routes from fcgi/routes.c (at least 20)" % len(ROUTES), ROUTES)
PATHS = sorted({p for _, p in ROUTES})

# Known-good bodies (docs/API.md) to mutate, by route pattern.
GOOD = {
    "/api/auth/github/device/poll": lambda: {"flow_id": "%032x" % rnd.getrandbits(128)},
    "/api/projects/from-github": lambda: {"full_name": rnd.choice(["alice/one", "alice/two", "bob/x", "alice/nope"])},
    "/api/jobs": lambda: {"kind": "echo", "args": {"lines": ["a", "b"], "delay_ms": rnd.choice([0, 1, 10]),
                                                   "exit_code": 0, "stream": "stdout"}},
    "/api/secrets/{kind}": lambda: {"value": "sk-ant-api03-" + "x" * rnd.randint(1, 40)},
    "/api/projects": lambda: rnd.choice([{"source": "path", "path": rnd.choice(["/tmp", "/nonexistent", SRCDIR])},
                                         {"source": "url", "url": "https://127.0.0.1:1/x.git"}]),
    "/api/projects/{id}": lambda: {"name": "p", "base_branch": "main", "default_executor": "claude",
                                   "setup_script": "make\n"},
}
# documented 5xx answers that an odd GitHub may cause
GITHUB_5XX = {(502, "github_unavailable"), (502, "github_error"), (504, "github_timeout"),
              (503, "service_unavailable")}
# documented 5xx answers of adding a project by URL (a git server that is
# not there), whatever the stand-in does
GIT_5XX = {(502, "repository_unreachable"), (504, "git_timeout")}
# routes whose success ends or weakens the fuzzer's own signed-in session
# (cloud mode: signing in again costs a device flow, 30 per address)
# the routes where anyon asks GitHub (the stand-in's odd answers matter there)
GITHUB_ROUTES = [(m, p) for m, p in ROUTES if p in ("/api/github/repositories", "/api/projects/from-github",
                                                     "/api/auth/github/device/poll", "/api/auth/github/status")]
DESTRUCTIVE = re.compile(r"^/api/(auth/logout|auth/github$|sessions(/|$)|sessions/revoke-others|auth/github/device/start)")

rnd = random.Random(SEED)

ODD_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FOO", "get", "PROPFIND"]


def junk_segment():
    return rnd.choice([
        str(rnd.randint(0, 20)), str(rnd.randint(1, 1 << 31)), str(1 << 63), str((1 << 64) + 1),
        "99999999999999999999999999", "-1", "-9223372036854775808", "0", "00", "0x10", "1e3", "1.5",
        "%201", "+1", "abc", "anthropic_api_key", "github_pat", "github_token", "claude_credential",
        "a" * rnd.choice([200, 5000]), "%00", "%ff%fe", "%c0%af", "%2e%2e", "%2f", "%25", "1%00",
        "..", ".", "%e2%82%ac", "%", "%zz", "%C3%A9",
        "".join(rnd.choice("abc%/?#;=&0123456789") for _ in range(rnd.randint(1, 12))),
    ])


def make_path(pattern, ids):
    def sub(m):
        name = m.group(1)
        if ids.get(name) and rnd.random() < 0.3:
            return str(rnd.choice(ids[name]))
        return junk_segment()
    p = re.sub(r"\{(\w+)\}", sub, pattern)
    r = rnd.random()
    if r < 0.05:
        p += "/"
    elif r < 0.08:
        p += "/" + junk_segment()
    elif r < 0.10:
        p = p.replace("/api/", "/api//", 1)
    elif r < 0.12:
        p = p.upper()
    return p


QKEYS = ["limit", "before", "after", "since", "user", "page", "per_page", "q", "x", "", "limit[]"]


def junk_value():
    return rnd.choice([
        "1", "0", "-1", "50", "500", "100000", str(1 << 63), str((1 << 64) + 7), "1e999", "NaN", "abc", "",
        "%00", "%ff", "%c3%28", "%ed%a0%80", "%f4%90%80%80", "%", "%z", "a" * 3000, "1%20", "%E2%82%AC", "+",
        "c3bf", "-9223372036854775809", "0x1f", "%205",
    ])


def make_query():
    if rnd.random() < 0.4:
        return ""
    parts = []
    for _ in range(rnd.randint(1, 6)):
        k = rnd.choice(QKEYS)
        parts.append(k if rnd.random() < 0.1 else "%s=%s" % (k, junk_value()))
    if rnd.random() < 0.2:
        parts *= 2  # repeated keys
    sep = rnd.choice(["&", "&", "&", ";", "&&"])
    return "?" + sep.join(parts)


def odd_value(depth=0):
    c = rnd.randint(0, 15)
    if c == 0:
        return None
    if c == 1:
        return rnd.choice([True, False])
    if c == 2:
        return rnd.choice([0, -1, 1 << 63, -(1 << 63) - 1, 10 ** 30, 1.5, -0.0])
    if c == 3:
        return "x" * rnd.choice([0, 1, 4096, 4097, 100000])
    if c == 4:
        return rnd.choice(["\u0000", "a\u0000b", "\u00e9\u4e2d\U0001f600", "\ud800", "\uffff", "\u202e"])
    if c == 5 and depth < 3:
        return [odd_value(depth + 1) for _ in range(rnd.randint(0, 4))]
    if c == 6 and depth < 3:
        return {rnd.choice(["lines", "delay_ms", "x", "", "kind"]): odd_value(depth + 1)}
    if c == 7:
        return ["line"] * rnd.choice([1, 100, 5000])
    if c == 8:
        return rnd.choice(["echo", "docker", "", "ECHO", "anthropic_api_key"])
    return rnd.choice(["", "a", "alice/one", "../../etc/passwd", "%s", "%n%n%n", "{}", "'; DROP TABLE jobs;--"])


def mutate_obj(o):
    o = json.loads(json.dumps(o))
    for _ in range(rnd.randint(1, 3)):
        target = o
        if isinstance(o.get("args"), dict) and rnd.random() < 0.5:
            target = o["args"]
        keys = list(target.keys())
        c = rnd.randint(0, 3)
        if c == 0 and keys:
            target[rnd.choice(keys)] = odd_value()
        elif c == 1 and keys:
            del target[rnd.choice(keys)]
        elif c == 2:
            target[rnd.choice(["x", "lines", "exit_code", "stream", "delay_ms", "value", "flow_id", "full_name",
                               "\u0000", ""])] = odd_value()
        else:
            pass
    return o


# raw JSON text that Python's json cannot produce
RAW_JSON = [
    b'{"kind":"echo","args":{"lines":["a"],"delay_ms":1e999}}', b'{"value":1e999}', b'{"flow_id":-1e-999}',
    b'{"kind":"echo","kind":"echo","args":{}}', b'{"full_name":"a\\u0000b/c"}', b'{"value":"\\ud800\\udc00"}',
    b'{"value":"\\ud800"}', b'{"value":"\\u0000"}', b'{"kind":"e\xffcho"}', b'{"value":"\xc0\xaf"}',
    b'{"value":"\xed\xa0\x80"}', b'{"a":1}garbage', b'{"a":1}{"b":2}', b"{", b"", b"null", b"[]", b"1", b'"x"',
    b'{"a":' * 5000 + b"1" + b"}" * 5000, b"[" * 100000, b"\xef\xbb\xbf{}", b'{"a":1,}', b"{'a':1}",
    b'{"a":NaN}', b'{"a":Infinity}', b'{"a":01}', b'{"a":-}', b'{"a":"\\x41"}', b'{"a":"\t"}', b"{}\x00",
    b'{"lines":["' + b"\xf0\x9f" + b'"]}', b'{"kind":"echo","args":{"lines":[' + b'"x",' * 20000 + b'"y"]}}',
]


def make_body(pattern):
    """(bytes or None, content type or None)"""
    c = rnd.random()
    ctype = "application/json"
    if pattern in GOOD and c < 0.55:
        o = GOOD[pattern]()
        if rnd.random() < 0.8:
            o = mutate_obj(o)
        data = json.dumps(o, ensure_ascii=rnd.random() < 0.5).encode("utf-8", "surrogatepass")
        if rnd.random() < 0.15:   # deep nesting, as text (Python's json would recurse)
            d = rnd.choice([10, 200, 2000])
            data = b'{"x":' + b'[{"a":' * d + data + b"}]" * d + b"}"
        r = rnd.random()
        if r < 0.1:
            data = data[:rnd.randint(0, len(data))]
        elif r < 0.2:
            i = rnd.randint(0, len(data))
            data = data[:i] + bytes([rnd.randint(0x80, 0xff)]) + data[i:]
        elif r < 0.25:
            data = bytearray(data)
            for _ in range(rnd.randint(1, 3)):
                data[rnd.randrange(len(data))] = rnd.randint(0, 255)
            data = bytes(data)
    elif c < 0.75:
        data = rnd.choice(RAW_JSON)
    elif c < 0.85:
        data = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 16, 300, 5000])))
        ctype = rnd.choice(["application/octet-stream", "application/json", None])
    elif c < 0.9:
        data = b"a=1&b=2"
        ctype = "application/x-www-form-urlencoded"
    elif c < 0.93:
        data = b"x" * rnd.choice([1 << 20, (1 << 20) + 1])
    else:
        return None, None
    r = rnd.random()
    if r < 0.1:
        ctype = rnd.choice(["text/plain", "application/json; charset=latin1", "multipart/form-data; boundary=x",
                            "", "application/json\x7f"])
    elif r < 0.15:
        ctype = None
    return data, ctype


def junk_cookie():
    return rnd.choice([
        "anyon_session=" + "%064x" % rnd.getrandbits(256), "anyon_session=", "anyon_session=\x7f\x01",
        "anyon_session=" + "a" * 5000, "anyon_session=%00", "foo=bar", "=", ";;;", "anyon_session",
        "__Host-anyon_session=" + "%064x" % rnd.getrandbits(256),
    ])


def send(port, method, path, headers, body, timeout=15):
    """One request on a fresh connection; (status, headers dict, bytes) or an exception text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        hs = {}
        for k, v in r.getheaders():
            hs.setdefault(k.lower(), []).append(v)
        return r.status, hs, data
    finally:
        conn.close()


def under_api(path):
    """Whether nginx sends this request to the API: /api/ after it decodes
    the path, merges slashes and resolves dot segments (else: static files)."""
    p = urllib.parse.unquote(path.split("?", 1)[0])
    p = posixpath.normpath(re.sub("/+", "/", p))
    return p.startswith("/api/")


def describe(method, path, headers, body):
    b = body[:200] if body is not None else None
    p = path if len(path) < 300 else "%s... (%d bytes)" % (path[:300], len(path))
    hs = [(k, v if len(v) < 300 else v[:300] + "... (%d bytes)" % len(v)) for k, v in headers]
    return "%s %s\nheaders: %r\nbody (%s bytes): %r" % (method, p, hs, len(body) if body is not None else "no", b)


class Fuzz:
    def __init__(self, s, main, cloud, gh=None):
        self.s, self.main, self.cloud, self.gh = s, main, cloud, gh
        self.ids = {"id": [], "kind": ["anthropic_api_key", "github_pat"]}
        self.count = 0
        self.statuses = {}
        self.bad_shape = []      # answers that are not JSON or not the error shape
        self.bad_5xx = []        # undocumented or unexpected 5xx, exceptions
        self.routes_hit = set()
        self.destructive_left = 8
        self.signins = 0
        self.gh_odd = 0
        self.last_signin = None

    def ensure_session(self, github=True):
        """The main browser keeps a session (and in cloud mode, a signed-in user;
        with github, one whose GitHub token works, while the budget of sign-ins
        lasts: each costs a device flow, and an address has 30 per 10 minutes)."""
        r = self.main.session()
        if not self.cloud:
            return r.status == 200
        if r.status == 200 and r.json.get("user"):
            if not github or (r.json["github"]["connected"] and not r.json["github"]["token_invalid"]) \
                    or self.signins >= 12:
                return True
        self.main.cookies.clear()
        self.signins += 1
        r = sign_in(self.main, self.gh, "alice")
        self.last_signin = r
        return r.status == 200 and r.json.get("status") == "complete"

    def odd_github(self):
        """Tells the stand-in to answer the next request(s) oddly; True when it did."""
        if not self.cloud or rnd.random() < 0.6:
            return False
        prefix = rnd.choice(["/user/repos", "/user", "/repos/", "/login/device/code", "/login/oauth/access_token", "/"])
        kind = rnd.random()
        hang = None
        body = None
        if kind < 0.1:
            status = "timeout"
            hang = rnd.choice([0.1, 0.5, 1.0])
        elif kind < 0.2:
            status = "reset"
        elif kind < 0.6:
            status = rnd.choice([500, 502, 503, 504, 403, 429, 401, 404, 422, 301, 418])
            body = rnd.choice([None, "junk", [], {}, {"message": 5}, 0])
        else:
            status = 200
            body = rnd.choice(["junk", [], {}, [None], [{"name": 5}], [{"full_name": None, "id": "x"}],
                               {"login": 7, "id": "x"}, {"access_token": 5}, {"error": 5}, {"device_code": None},
                               [{"name": "x" * 100000}], None, 1e300])
        self.gh.set_fail(prefix, status, count=rnd.choice([1, 1, 3, None]), body=body, hang=hang)
        self.gh_odd += 1
        return True

    def one(self):
        method, pattern = rnd.choice(ROUTES)
        # cloud mode: a quarter of the requests go, signed in, where anyon asks GitHub
        to_github = self.cloud and rnd.random() < 0.25
        if to_github:
            method, pattern = rnd.choice(GITHUB_ROUTES)
        if rnd.random() < 0.15:
            method = rnd.choice(ODD_METHODS)
        if rnd.random() < 0.03:
            pattern = rnd.choice(["/api/", "/api", "/api/nope", "/api/jobs/1/2/3", "/api/health/x", "/api/%00"])
        path = make_path(pattern, self.ids) + make_query()
        headers = []
        body = None
        mode = rnd.random()
        use_main = mode < 0.7 or to_github
        if use_main and DESTRUCTIVE.match(pattern) and method != "GET" and self.cloud:
            if self.destructive_left <= 0:
                use_main = False
            else:
                self.destructive_left -= 1
        if use_main:
            if "anyon_session" not in self.main.cookies or self.count % 150 == 0:
                self.ensure_session()
            cookie = "; ".join("%s=%s" % kv for kv in self.main.cookies.items())
            if rnd.random() < 0.1 and not to_github:
                cookie = junk_cookie() + "; " + cookie + ("; " + junk_cookie() if rnd.random() < 0.5 else "")
            headers.append(("Cookie", cookie))
            if (to_github or rnd.random() < 0.9) and self.main.csrf:
                headers.append(("X-CSRF-Token", self.main.csrf if rnd.random() < 0.9 else self.main.csrf[:-1] + "0"))
        elif mode < 0.9:
            headers.append(("Cookie", "; ".join(junk_cookie() for _ in range(rnd.randint(1, 5)))))
            if rnd.random() < 0.3:
                headers.append(("X-CSRF-Token", rnd.choice(["", "x", "%064x" % rnd.getrandbits(256)])))
        if rnd.random() < 0.15 and not to_github:
            headers.append(("Origin", rnd.choice(["http://evil.example", "null", "http://127.0.0.1:%d" % self.s.port,
                                                  "http://localhost:1", "", "http://127.0.0.1:%d/x" % self.s.port])))
        if rnd.random() < 0.05:
            headers.append(("Sec-Fetch-Site", rnd.choice(["cross-site", "same-origin", "none", "same-site"])))
        if rnd.random() < 0.05:
            headers.append(("User-Agent", rnd.choice(["\x01\x02", "a" * 1000, "é".encode().decode("latin-1")])))
        else:
            headers.append(("User-Agent", "anyon-fuzz/1.0 (+t/t8000-fuzz-http.py)"))
        if to_github and pattern == "/api/projects/from-github" and rnd.random() < 0.5:
            body, ctype = json.dumps(GOOD[pattern]()).encode(), "application/json"
        elif method not in ("GET", "HEAD") or rnd.random() < 0.05:
            body, ctype = make_body(pattern)
            if ctype is not None:
                headers.append(("Content-Type", ctype))
        odd = self.odd_github()
        try:
            try:
                status, rh, data = send(self.s.port, method, path, headers, body)
            except Exception as e:  # noqa: BLE001 - any failure to answer is a finding
                self.bad_5xx.append("%s: %s\n%s" % (type(e).__name__, e, describe(method, path, headers, body)))
                return
        finally:
            if odd:
                self.gh.clear_fail()
        self.count += 1
        self.routes_hit.add((method, pattern))
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if use_main:
            for c in rh.get("set-cookie", []):
                name, _, rest = c.partition("=")
                if "Max-Age=0" in c:
                    self.main.cookies.pop(name, None)
                else:
                    self.main.cookies[name] = rest.split(";", 1)[0]
        self.check(method, path, headers, body, status, data, odd)
        try:
            o = json.loads(data)
            if status in (200, 201) and isinstance(o, dict) and isinstance(o.get("job"), dict):
                self.ids["id"].append(o["job"]["id"])
        except ValueError:
            pass

    def check(self, method, path, headers, body, status, data, odd):
        what = describe(method, path, headers, body)
        try:
            o = json.loads(data) if data else None
        except ValueError:
            o = "<not JSON>"
        code = None
        if isinstance(o, dict) and isinstance(o.get("error"), dict):
            code = o["error"].get("code")
        if method != "HEAD" and under_api(path):
            if status >= 400:
                if not (isinstance(o, dict) and isinstance(code, str) and isinstance(o["error"].get("message"), str)):
                    self.bad_shape.append("%d %r\n%s" % (status, data[:200], what))
            elif not isinstance(o, dict):
                self.bad_shape.append("%d %r\n%s" % (status, data[:200], what))
        if status >= 500:
            allowed = (odd and (status, code) in GITHUB_5XX) \
                or (method == "POST" and path.split("?")[0] == "/api/projects" and (status, code) in GIT_5XX) \
                or (status == 503 and code == "github_not_configured" and not self.cloud)
            if not allowed:
                self.bad_5xx.append("%d %r (stand-in failing: %s)\n%s" % (status, data[:200], odd, what))

    def run(self, n):
        self.main.cookies.clear()
        t.ok(self.ensure_session(), "%s: the fuzzer's browser has a session%s" % (
            self.label, " and is signed in as alice" if self.cloud else ""))
        # a few real ids to aim at
        for _ in range(3):
            r = self.main.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"]}})
            if r.status == 201:
                self.ids["id"].append(r.json["job"]["id"])
        if self.cloud:
            r = self.main.post("/api/projects/from-github", {"full_name": "alice/one"})
            if r.status == 201:
                self.ids["id"].append(r.json["project"]["id"])
        pool = self.s.pid("fcgi")
        before = sorted(self.s.children(pool))
        t0 = time.time()
        while self.count < n:
            self.one()
            if len(self.bad_5xx) > 50:
                break
        took = time.time() - t0
        t.diag("%s: %d requests in %.1f s over %d (method, route) pairs; statuses %s; %d odd GitHub answers; %d sign-ins"
               % (self.label, self.count, took, len(self.routes_hit), sorted(self.statuses.items()), self.gh_odd,
                  self.signins))
        missed = [r for r in ROUTES if r not in self.routes_hit]
        t.ok(not missed, "%s: every route of the table was fuzzed with its own method" % self.label, missed)
        t.ok(not self.bad_shape, "%s: every answer is JSON, every error {\"error\":{\"code\",\"message\"}}" % self.label,
             "%d bad answers; the first:\n%s" % (len(self.bad_shape), "\n--\n".join(self.bad_shape[:5])))
        t.ok(not self.bad_5xx, "%s: no 5xx but the documented GitHub ones while the stand-in failed, no dropped request"
             % self.label, "%d findings; the first:\n%s" % (len(self.bad_5xx), "\n--\n".join(self.bad_5xx[:5])))
        after = sorted(self.s.children(pool))
        t.ok(len(before) == 4 and before == after, "%s: the same 4 FastCGI children before and after (none died)"
             % self.label, "before %s after %s" % (before, after))
        ok = self.ensure_session(github=False)
        h = wait_until(lambda: (lambda r: r if r.status == 200 and r.json.get("worker") and
                                r.json["worker"].get("last_heartbeat_s") is not None and
                                r.json["worker"]["last_heartbeat_s"] <= 3 else None)(self.main.get("/api/health")),
                       timeout=10)
        t.ok(ok and h, "%s: the worker still heartbeats (/api/health)" % self.label,
             "session ok: %s, last sign-in: %r, health: %r" % (ok, self.last_signin, self.main.get("/api/health")))
        bugs = []
        logdir = os.path.join(self.s.data, "log")
        for name in sorted(os.listdir(logdir)):
            with open(os.path.join(logdir, name), errors="replace") as f:
                bugs += ["%s: %s" % (name, line.rstrip()) for line in f if "BUG:" in line]
        t.ok(not bugs, "%s: no BUG: lines in the logs" % self.label, "\n".join(bugs[:20]))


LOCAL_N = N // 2
CLOUD_N = N - LOCAL_N
COMMON = {"ANYON_SESSIONS_PER_ADDR": "1000000", "ANYON_USER_MAX_QUEUED": "1000000", "ANYON_AUTH_RATE": "100000r/m"}

with Stack(env=COMMON) as s:
    fz = Fuzz(s, s.client(), cloud=False)
    fz.label = "local mode"
    fz.run(LOCAL_N)

with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", repos=["one", "two", {"name": "p", "private": True}])
    gh.add_user("bob", "Bob B", "bob@example.com", repos=["x"])
    env = stack_env(gh, allowed="alice", extra=dict(COMMON, ANYON_GITHUB_TIMEOUT_MS="700",
                                                    ANYON_GITHUB_DEADLINE_MS="1500"))
    with Stack(env=env) as s:
        c = s.client()
        c.timeout = 15
        fz = Fuzz(s, c, cloud=True, gh=gh)
        fz.label = "cloud mode"
        fz.run(CLOUD_N)
t.done()
