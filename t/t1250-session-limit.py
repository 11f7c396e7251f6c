#!/usr/bin/env python3
"""A cookie-less GET creates no database row.

Cloud mode: a browser that has not started signing in carries a signed
anonymous cookie (no row); 1000 cookie-less GETs from one address make no
session row and lock nobody out. A forged, tampered, expired, future,
other-mode, other-key cookie, or one signed before a key rotation, is
replaced, never trusted. The sign-in start with the anonymous CSRF token
works and makes exactly one row (the same one for a second start or a
replayed cookie), the CSRF token stays the same across it, and the
per-address cap (ANYON_SESSIONS_PER_ADDR) now limits sign-in starts only.

Local mode: the first visit is the sign-in (a row), but the table keeps
only the 100 most recently seen local sessions, so 1000 cookie-less GETs
neither grow it nor lock anyone out."""
import hashlib, hmac, os, re, shutil, struct, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import BUILDDIR, TAP, Stack, free_port, send_raw
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, poll_until, stack_env

ANON = re.compile(r"a\.[0-9a-f]{80}")
TOKEN = re.compile(r"[0-9a-f]{64}")
START = "/api/auth/github/device/start"
CAP = 5
LOCAL_MAX = 100
CTL = os.path.join(BUILDDIR, "anyonctl")

t = TAP()


def cookie_attrs(r, name):
    """(value, {attribute: value}) of r's Set-Cookie for name, or (None, {})."""
    for c in r.headers.get("set-cookie", []):
        parts = [p.strip() for p in c.split(";")]
        n, _, value = parts[0].partition("=")
        if n == name:
            return value, {k.lower(): v for k, _, v in (p.partition("=") for p in parts[1:])}
    return None, {}


def send_tls(port, method, path, headers):
    """One HTTPS request with exactly these headers."""
    return send_raw(port, method, path, headers, tls=True)


def set_cookie(r):
    """The anyon_session value r sets, or None."""
    for c in r.headers.get("set-cookie", []):
        name, _, rest = c.partition("=")
        if name == "anyon_session":
            return rest.split(";", 1)[0]
    return None


def anon_key(s):
    """The anonymous-cookie key as the server derives it: HKDF-SHA256 (no
    salt) of the keyring's active key, info 'anyon anonymous cookie v1'."""
    ikm = None
    with open(os.path.join(s.data, "keyring")) as f:
        for line in f:
            w = line.split()
            if len(w) == 4 and w[0] == "key" and w[3] == "active":
                ikm = bytes.fromhex(w[2])
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, b"anyon anonymous cookie v1\x01", hashlib.sha256).digest()


def sign(key, issued, mode=b"c", anon_id=None):
    body = (anon_id or os.urandom(16)) + struct.pack(">q", issued)
    return "a." + (body + hmac.new(key, b"anyon-anon-v1:" + mode + body, hashlib.sha256).digest()[:16]).hex()


def csrf_of(key, value, mode=b"c"):
    token = hmac.new(key, b"anyon-anon-session-v1:" + mode + bytes.fromhex(value[2:])[:16],
                     hashlib.sha256).hexdigest()
    return hashlib.sha256(b"anyon-csrf-v1:" + token.encode()).hexdigest()


def with_cookie(s, value, csrf=None):
    c = s.client()
    c.cookies["anyon_session"] = value
    c.csrf = csrf
    return c


def count(s, table, where=""):
    return int(s.sql("SELECT count(*) FROM %s %s" % (table, where))[0][0])


tmp = tempfile.mkdtemp(prefix="anyon-tls-")
cert, pkey = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-keyout", pkey, "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
TLS = free_port()
EXTRA = "listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;" % (TLS, cert, pkey)

with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    gh.add_user("alice", "Alice A", "alice@example.com", id=1250)
    # Four concurrent starts below each wait on the GitHub stand-in: let all
    # four children do so (the default keeps one child free: 503 github_busy).
    with Stack(env=stack_env(gh, extra={"ANYON_SESSIONS_PER_ADDR": str(CAP), "ANYON_NGINX_EXTRA": EXTRA,
                                        "ANYON_GITHUB_CONCURRENCY": "4"})) as s:
        t.eq(count(s, "sessions"), 0, "cloud: no sessions at start")
        audit0 = count(s, "audit")

        # ---- 1000 cookie-less GETs ----
        codes, values, job_cookies = {}, set(), []
        for i in range(1000):
            r = s.client().get("/api/session" if i % 4 else "/api/jobs")
            codes[r.status] = codes.get(r.status, 0) + 1
            v = set_cookie(r)
            if i % 4:
                values.add(v if v and ANON.fullmatch(v) else None)
            elif v:
                job_cookies.append(v)
        t.eq(codes, {200: 750, 401: 250}, "1000 cookie-less GETs from one address: all answered, none refused")
        t.ok(None not in values and len(values) == 750, "each /api/session got its own signed anonymous cookie",
             sorted(values, key=str)[:2])
        # Only the routes that need a session issue one: a 401 elsewhere
        # leaves the browser's cookie as it is (a GET that raced a sign-in
        # must not replace the new cookie).
        t.eq(job_cookies, [], "a 401 of /api/jobs sets no cookie")
        stale = s.client()
        stale.cookies["anyon_session"] = "0" * 64
        r = stale.get("/api/jobs")
        t.ok(r.status == 401 and not set_cookie(r),
             "nor does one sent with a token that names no session (one a sign-in just rotated away)", r)
        t.eq(count(s, "sessions"), 0, "... and not one session row was made")
        t.eq(count(s, "audit"), audit0, "... nor an audit row")

        # ---- one anonymous browser ----
        a = s.client()
        r = a.session()
        A, csrf = a.cookies.get("anyon_session"), a.csrf
        t.ok(r.status == 200 and r.json["user"] is None and ANON.fullmatch(A or "") and TOKEN.fullmatch(csrf or ""),
             "a new browser is anonymous with a signed cookie and a CSRF token", r)
        r = a.session()
        t.ok(r.status == 200 and set_cookie(r) is None and a.csrf == csrf,
             "its next GET keeps the cookie and the CSRF token", r)
        key = anon_key(s)
        now = int(time.time())
        good = sign(key, now - 100)
        r = with_cookie(s, good).get("/api/session")
        t.ok(r.status == 200 and set_cookie(r) is None and r.json["csrf_token"] == csrf_of(key, good),
             "a cookie signed as documented (HKDF of the active key, HMAC-SHA256) is accepted", r)

        # ---- what is replaced, not trusted ----
        tampered = A[:-1] + ("0" if A[-1] != "0" else "1")
        flipped_id = A[:2] + ("0" if A[2] != "0" else "1") + A[3:]
        bad = [("a tampered MAC", tampered), ("a tampered id", flipped_id),
               ("a made-up value", "a." + os.urandom(40).hex()),
               ("an expired one (issued 24 h + 5 s ago)", sign(key, now - 86400 - 5)),
               ("one issued an hour in the future", sign(key, now + 3600)),
               ("one signed for local mode", sign(key, now - 100, mode=b"l")),
               ("one signed with another key", sign(os.urandom(32), now - 100)),
               ("a session-shaped made-up token", "ab" * 32),
               ("a malformed one", "a." + "zz" * 40)]
        for how, value in bad:
            c = with_cookie(s, value)
            r = c.get("/api/session")
            new = set_cookie(r)
            t.ok(r.status == 200 and r.json["user"] is None and new and ANON.fullmatch(new) and new != value
                 and r.json["csrf_token"] != csrf, "%s is replaced by a fresh anonymous cookie" % how, r)
            csrf_try = csrf_of(key, value) if ANON.fullmatch(value) else csrf
            r = with_cookie(s, value, csrf_try).post(START)
            t.ok(r.status == 403 and r.error_code() == "csrf_failed",
                 "... and cannot start a sign-in, even with the CSRF token it would have", r)
        r = with_cookie(s, "%s; anyon_session=%s" % (tampered, A)).get("/api/session")
        t.ok(r.status == 200 and set_cookie(r) is None and r.json["csrf_token"] == csrf,
             "with a bad and a valid anonymous cookie, the valid one wins", r)
        r = with_cookie(s, A, "0" * 64).post(START)
        t.ok(r.status == 403 and r.error_code() == "csrf_failed", "a wrong CSRF token is refused", r)
        t.eq(count(s, "sessions"), 0, "none of that made a session row")

        # ---- logout while anonymous ----
        c = s.client()
        c.session()
        r = c.post("/api/auth/logout")
        t.ok(r.status == 200 and any("Max-Age=0" in h for h in r.headers.get("set-cookie", [])),
             "logout of an anonymous browser clears its cookie", r)
        t.ok(count(s, "sessions") == 0 and count(s, "audit") == audit0, "... writing no row")

        # ---- the sign-in start makes the row ----
        r = a.post(START)
        T = a.cookies.get("anyon_session")
        t.ok(r.status == 200 and r.json.get("user_code") and TOKEN.fullmatch(T or ""),
             "the sign-in start with the anonymous CSRF token works and sets a session cookie", r)
        h = hashlib.sha256(bytes.fromhex(T)).hexdigest()
        t.eq(s.sql("SELECT count(*), count(user_id) FROM sessions WHERE token_hash = %s"
                   % s.pick("X'%s'" % h, "'\\x%s'::bytea" % h)), [["1", "0"]],
             "exactly one session row, for that cookie, without a user yet")
        t.eq(count(s, "sessions"), 1, "... and no other")
        r = a.session()
        t.ok(r.status == 200 and a.csrf == csrf and set_cookie(r) is None,
             "the CSRF token did not change with the new cookie", r)
        flow = a.post(START)
        t.ok(flow.status == 200 and count(s, "sessions") == 1, "a second start uses the same session", flow)
        b = with_cookie(s, A, csrf)
        r = b.post(START)
        t.ok(r.status == 200 and b.cookies.get("anyon_session") == T and count(s, "sessions") == 1,
             "the anonymous cookie replayed after the start reaches that same session, no new row", r)

        gh.approve(flow.json["user_code"], "alice")
        r = poll_until(a, flow.json["flow_id"])
        t.ok(r.status == 200 and r.json["status"] == "complete" and r.json["user"]["login"] == "alice",
             "the sign-in completes", r)
        t.ok(a.cookies.get("anyon_session") not in (None, T) and count(s, "sessions") == 1,
             "the session token rotated at sign-in (still one row)")
        r = a.session()
        t.ok(r.status == 200 and r.json["user"]["login"] == "alice" and a.csrf != csrf, "alice is signed in", r)
        r = with_cookie(s, A).get("/api/session")
        t.ok(r.status == 200 and r.json["user"] is None and count(s, "sessions") == 1,
             "the old anonymous cookie no longer reaches the signed-in session", r)
        t.eq(b.session().json["user"], None, "nor does the pre-sign-in session cookie")

        # ---- key rotation ----
        d = s.client()
        d.session()
        D, dcsrf = d.cookies["anyon_session"], d.csrf
        p = subprocess.run([CTL, "rotate-key"], env=s.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=60)
        t.ok(p.returncode == 0, "anyonctl rotate-key", p.stdout)
        r = with_cookie(s, D, dcsrf).post(START)
        t.ok(r.status == 403 and r.error_code() == "csrf_failed",
             "after a key rotation an old anonymous cookie starts nothing (403, not 500)", r)
        r = d.session()
        new = set_cookie(r)
        t.ok(r.status == 200 and new and ANON.fullmatch(new) and new != D and d.csrf != dcsrf,
             "... and is silently replaced at the next GET", r)
        t.eq(d.session().json["csrf_token"], d.csrf, "the new one holds")
        r = with_cookie(s, sign(anon_key(s), int(time.time()) - 10)).get("/api/session")
        t.ok(r.status == 200 and set_cookie(r) is None, "cookies signed under the new active key are accepted", r)
        t.eq(count(s, "sessions"), 1, "still one session row")

        # ---- two tabs start at once ----
        e = s.client()
        e.session()
        rows = count(s, "sessions")
        gate, got = threading.Barrier(4), [None] * 4

        def tab(i):
            c = with_cookie(s, e.cookies["anyon_session"], e.csrf)
            gate.wait()
            r = c.post(START)
            got[i] = (r.status, c.cookies.get("anyon_session"))
        tabs = [threading.Thread(target=tab, args=(i,)) for i in range(4)]
        for th in tabs:
            th.start()
        for th in tabs:
            th.join()
        t.ok(all(g and g[0] == 200 for g in got) and len({g[1] for g in got}) == 1
             and TOKEN.fullmatch(got[0][1]) and count(s, "sessions") == rows + 1,
             "four concurrent starts with one anonymous cookie: all work, one session, one cookie", got)

        # ---- cookie flags, plain HTTP and HTTPS ----
        value, attrs = cookie_attrs(s.client().get("/api/session"), "anyon_session")
        t.ok(ANON.fullmatch(value or "") and "httponly" in attrs and attrs.get("samesite") == "Lax"
             and attrs.get("path") == "/" and "domain" not in attrs and "secure" not in attrs,
             "the anonymous cookie is HttpOnly, SameSite=Lax, Path=/ over plain HTTP", attrs)
        host = {"Host": "127.0.0.1:%d" % TLS}
        r = send_tls(TLS, "GET", "/api/session", host)
        value, attrs = cookie_attrs(r, "__Host-anyon_session")
        t.ok(r.status == 200 and ANON.fullmatch(value or "") and "secure" in attrs and "httponly" in attrs
             and attrs.get("path") == "/" and "domain" not in attrs and cookie_attrs(r, "anyon_session")[0] is None,
             "over HTTPS the anonymous cookie is __Host-anyon_session, Secure, without Domain", r.headers)
        tcsrf = r.json["csrf_token"] if r.status == 200 else ""
        hc = dict(host, Cookie="__Host-anyon_session=%s" % value)
        r = send_tls(TLS, "GET", "/api/session", dict(host, Cookie="anyon_session=%s" % value))
        t.ok(r.status == 200 and cookie_attrs(r, "__Host-anyon_session")[0] not in (None, value),
             "over HTTPS a plain (tossable) anyon_session is not read", r)
        rows = count(s, "sessions")
        r = send_tls(TLS, "POST", START, dict(hc, **{"X-CSRF-Token": tcsrf, "Origin": "https://127.0.0.1:%d" % TLS}))
        value, attrs = cookie_attrs(r, "__Host-anyon_session")
        t.ok(r.status == 200 and TOKEN.fullmatch(value or "") and "secure" in attrs and "httponly" in attrs
             and count(s, "sessions") == rows + 1,
             "an HTTPS sign-in start makes the session: a __Host- session cookie, one row", r)
        hc = dict(host, Cookie="__Host-anyon_session=%s" % value)
        r = send_tls(TLS, "GET", "/api/session", hc)
        t.ok(r.status == 200 and "set-cookie" not in r.headers and r.json["csrf_token"] == tcsrf,
             "... read back over HTTPS, with the same CSRF token", r)

        # ---- the per-address cap guards sign-in starts only ----
        starts = []
        for _ in range(CAP - count(s, "sessions")):
            c = s.client()
            c.session()
            starts.append(c.post(START).status)
        t.ok(starts and starts == [200] * len(starts), "new browsers start signing in up to the cap (%d sessions)" % CAP,
             starts)
        c = s.client()
        c.session()
        before = c.cookies["anyon_session"]
        r = c.post(START)
        t.ok(r.status == 429 and r.error_code() == "rate_limited" and r.header("Retry-After") == "60"
             and c.cookies["anyon_session"] == before, "one more start from the address: 429, no session cookie", r)
        t.eq(count(s, "sessions"), CAP, "the sessions table stopped at the cap")
        codes = {c2.get("/api/session").status for c2 in [s.client() for _ in range(20)]}
        t.eq(codes, {200}, "cookie-less visitors from that address are not locked out")
        t.eq(count(s, "sessions"), CAP, "... and still make no row")
        r = a.get("/api/session")
        t.ok(r.status == 200 and r.json["user"]["login"] == "alice", "a signed-in browser is not affected", r)
        t.eq(a.post(START).status, 200, "... and can still start a flow (its session exists)")
shutil.rmtree(tmp, ignore_errors=True)

with Stack() as s:
    base = count(s, "sessions")
    codes, logins = {}, set()
    for i in range(1000):
        r = s.client().get("/api/session")
        codes[r.status] = codes.get(r.status, 0) + 1
        logins.add(r.json["user"]["login"] if r.status == 200 else None)
    t.eq(codes, {200: 1000}, "local: 1000 cookie-less GETs from one address are all answered (no 429)")
    t.eq(logins, {"local"}, "... each as the local user (the first visit is the sign-in)")
    n = count(s, "sessions", "WHERE cloud = 0")
    t.ok(base <= n <= LOCAL_MAX, "... and the table keeps at most %d local sessions" % LOCAL_MAX, n)
    c = s.client()
    r = c.session()
    t.ok(r.status == 200 and TOKEN.fullmatch(c.cookies.get("anyon_session", "")), "a new browser gets a session", r)
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["still here"]}})
    t.eq(r.status, 201, "... and can write")
    t.eq(s.client().get("/api/health").status, 200, "routes without sessions are not affected")
t.done()
