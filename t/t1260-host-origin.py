#!/usr/bin/env python3
"""Requests from where they should come, and cookies that cannot be tossed.

- Host: nginx's default server refuses names other than the loopback names
  and ANYON_PUBLIC_URL's (a DNS-rebinding name, a bare address, no Host) with
  a JSON 421; behind it anyon-fcgi checks Host again (a second listener that
  passes every name on to the app proves that layer alone): no session, no
  CSRF token, no write for a foreign Host.
- Origin: a write whose Origin is not an accepted site is refused with 403
  bad_origin even with a valid session and CSRF token; without Origin,
  Sec-Fetch-Site must be same-origin or none; with neither the CSRF token
  decides alone.
- Cookies: two session cookies in one header (one tossed in by a sibling
  domain), the live one wins; over HTTPS the cookie is __Host-anyon_session
  (Secure, Path=/, no Domain) and a plain anyon_session is not read there.
"""
import os, re, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import BUILDDIR, TAP, Stack, free_port, send_raw

ECHO = {"kind": "echo", "args": {"lines": ["origin"]}}
KEY = "/api/secrets/anthropic_api_key"

t = TAP()

# ---- ANYON_PUBLIC_URL is parsed (libcurl) and checked at start ----
def server_names(url):
    env = dict(os.environ, ANYON_PUBLIC_URL=url, ANYON_DATA_DIR=tempfile.gettempdir())
    return subprocess.run([os.path.join(BUILDDIR, "anyonctl"), "server-names"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

r = server_names("https://Anyon.Example.com:8443/")
t.ok(r.returncode == 0 and r.stdout.split() == ["127.0.0.1", "localhost", "[::1]", "anyon.example.com"],
     "server-names: the loopback names and the public URL's host, lower-cased", r)
for bad in ("ftp://anyon.example.com", "anyon.example.com", "https://user:pw@anyon.example.com",
            "https://anyon.example.com/app", "https://anyon.example.com/?x=1", "https://anyon.example.com/#x",
            "https://anyon.example.com:99999", "https://b\u00fccher.example"):
    r = server_names(bad)
    t.ok(r.returncode != 0 and "ANYON_PUBLIC_URL" in r.stderr and r.stdout == "",
         "ANYON_PUBLIC_URL=%s is refused with a message" % bad, r)


send = send_raw


def set_cookies(r):
    """{name: (value, {attribute: value})} of r's Set-Cookie headers."""
    out = {}
    for c in r.headers.get("set-cookie", []):
        parts = [p.strip() for p in c.split(";")]
        name, _, value = parts[0].partition("=")
        attrs = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            attrs[k.lower()] = v
        out[name] = (value, attrs)
    return out


def refused_host(r, what):
    t.ok(r.status == 421 and r.error_code() == "misdirected_request", "%s -> 421 misdirected_request" % what, r)
    t.ok("set-cookie" not in r.headers and "csrf_token" not in r.body, "%s: no cookie, no CSRF token" % what, r)


def count(s, table):
    return int(s.sql("SELECT count(*) FROM %s" % table)[0][0])


tmp = tempfile.mkdtemp(prefix="anyon-tls-")
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
TLS, OPEN = free_port(), free_port()
# Two more listeners in anyon's server block: TLS, and plain HTTP. Each is
# the only server on its port, so nginx hands requests of any Host to anyon
# there: what anyon-fcgi's own checks do shows.
extra = ("listen 127.0.0.1:%d ssl; listen 127.0.0.1:%d; ssl_certificate %s; ssl_certificate_key %s;"
         % (TLS, OPEN, cert, key))

s = Stack(env={"ANYON_NGINX_EXTRA": extra})
PUBLIC = "anyon.test:%d" % s.port
s.env["ANYON_PUBLIC_URL"] = "http://" + PUBLIC + "/"
with s:
    P = s.port
    a = s.client()
    a.session()
    cookie = a.cookies["anyon_session"]
    auth = {"Cookie": "anyon_session=" + cookie, "X-CSRF-Token": a.csrf}
    sessions, jobs = count(s, "sessions"), count(s, "jobs")

    # ---- nginx: only the configured names ----
    refused_host(send(P, "GET", "/api/session", {"Host": "evil.example"}), "nginx: GET /api/session, Host evil.example")
    refused_host(send(P, "GET", "/api/session", {"Host": "evil.example:%d" % P}), "nginx: Host evil.example:PORT")
    r = send(P, "GET", "/", {"Host": "evil.example"})
    t.ok(r.status == 421 and "<html" not in r.body.lower(), "nginx: the UI is not served to a foreign Host either", r)
    r = send(P, "POST", "/api/jobs", dict(auth, Host="evil.example"), ECHO)
    t.eq(r.status, 421, "nginx: a write with a valid session and token but a foreign Host -> 421")
    r = send(P, "GET", "/api/session", {"Host": PUBLIC})
    t.ok(r.status == 200 and r.json["csrf_token"] and "anyon_session" in set_cookies(r),
         "the public URL's host (ANYON_PUBLIC_URL) is served", r)
    r = send(P, "GET", "/api/session", {"Host": "LOCALHOST:%d" % P})
    t.eq(r.status, 200, "localhost:PORT is served (host names are case-insensitive)")

    # ---- anyon-fcgi: Host checked again ----
    before = count(s, "sessions")
    refused_host(send(OPEN, "GET", "/api/session", {"Host": "evil.example"}), "app: Host evil.example")
    refused_host(send(OPEN, "GET", "/api/session", {"Host": "evil.example:%d" % OPEN}), "app: Host evil.example:PORT")
    refused_host(send(OPEN, "GET", "/api/session", {"Host": "127.0.0.1:%d" % P}),
                 "app: a loopback name at another port than the one nginx took the request on")
    refused_host(send(OPEN, "GET", "/api/session", {"Host": "127.0.0.1"}), "app: a loopback name at port 80")
    refused_host(send(OPEN, "GET", "/api/session", {"Host": "127.0.0.1.evil.example:%d" % OPEN}),
                 "app: a name that only starts like a loopback name")
    r = send(OPEN, "POST", "/api/jobs", dict(auth, Host="evil.example"), ECHO)
    t.ok(r.status == 421 and r.error_code() == "misdirected_request",
         "app: a write with a valid session and token but a foreign Host -> 421", r)
    t.eq(count(s, "sessions"), before, "app: no foreign Host created a session")
    r = send(OPEN, "GET", "/api/session", {"Host": "127.0.0.1:%d" % OPEN})
    t.ok(r.status == 200 and r.json["csrf_token"], "app: a loopback name at the listening port is served", r)
    r = send(OPEN, "GET", "/api/session", {"Host": PUBLIC})
    t.eq(r.status, 200, "app: the public URL's host is served on any listener")

    # ---- Origin and Sec-Fetch-Site on writes ----
    t.eq(count(s, "jobs"), jobs, "(no job yet)")
    for origin in ("http://evil.example", "http://evil.example:%d" % P, "null", "https://anyon.test:%d" % P,
                   "http://anyon.test", "http://127.0.0.1:%d" % (P + 1), "http://127.0.0.1:%d.evil.example" % P):
        r = a.post("/api/jobs", ECHO, headers={"Origin": origin})
        t.ok(r.status == 403 and r.error_code() == "bad_origin",
             "Origin %s with a valid session and CSRF token -> 403 bad_origin" % origin, r)
    r = a.request("PUT", KEY, {"value": "sk-ant-api03-attackerKEY0000"}, headers={"Origin": "http://evil.example"})
    t.ok(r.status == 403 and r.error_code() == "bad_origin", "a foreign Origin cannot replace the Anthropic key", r)
    t.eq(a.get("/api/secrets").json, {"secrets": []}, "nothing was stored")
    for site in ("cross-site", "same-site", "bogus"):
        r = a.post("/api/jobs", ECHO, headers={"Sec-Fetch-Site": site})
        t.ok(r.status == 403 and r.error_code() == "bad_origin",
             "no Origin, Sec-Fetch-Site: %s -> 403 bad_origin" % site, r)
    t.eq(count(s, "jobs"), jobs, "no refused write created a job")

    made = 0
    for what, h in (("Origin http://127.0.0.1:PORT", {"Origin": "http://127.0.0.1:%d" % P}),
                    ("Origin http://localhost:PORT", {"Origin": "http://localhost:%d" % P}),
                    ("Origin of ANYON_PUBLIC_URL", {"Origin": "http://" + PUBLIC}),
                    ("Sec-Fetch-Site: same-origin", {"Sec-Fetch-Site": "same-origin"}),
                    ("Sec-Fetch-Site: none", {"Sec-Fetch-Site": "none"}),
                    ("neither Origin nor Sec-Fetch-Site (curl)", {})):
        r = a.post("/api/jobs", ECHO, headers=h)
        made += r.status == 201
        t.eq(r.status, 201, "%s with the CSRF token -> 201" % what)
    r = a.post("/api/jobs", ECHO, headers={"Origin": "http://127.0.0.1:%d" % P}, csrf=False)
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "a same-origin write still needs the CSRF token", r)
    t.eq(count(s, "jobs"), jobs + made, "exactly the accepted writes created jobs")

    # ---- two session cookies: the live one wins ----
    n = count(s, "sessions")
    for what, junk in (("an unknown token", "f" * 64), ("a malformed token", "zz" * 32), ("a short one", "ab")):
        c = s.client()
        r = c.get("/api/session", headers={"Cookie": "anyon_session=%s; anyon_session=%s" % (junk, cookie)})
        t.ok(r.status == 200 and "set-cookie" not in r.headers and r.json["csrf_token"] == a.csrf,
             "%s first, the valid cookie second: the valid session is used" % what, r)
        r = c.post("/api/jobs", ECHO, headers={"Cookie": "anyon_session=%s; anyon_session=%s" % (junk, cookie),
                                                "X-CSRF-Token": a.csrf})
        t.eq(r.status, 201, "%s first: a write with the valid session's token passes" % what)
    r = s.client().get("/api/session", headers={"Cookie": "anyon_session=%s; anyon_session=%s" % (cookie, "f" * 64)})
    t.ok(r.status == 200 and "set-cookie" not in r.headers and r.json["csrf_token"] == a.csrf,
         "the valid cookie first, an unknown one second: still the valid session", r)
    t.eq(count(s, "sessions"), n, "no new session was created for any of them")
    many = "; ".join(["anyon_session=" + "e" * 64] * 4 + ["anyon_session=" + cookie])
    r = s.client().get("/api/session", headers={"Cookie": many})
    t.ok(r.status == 200 and "anyon_session" in set_cookies(r) and r.json["csrf_token"] != a.csrf,
         "at most 4 candidates are looked up: a fifth is not, and a new session is made", r)

    # ---- HTTPS: the __Host- cookie ----
    host = {"Host": "127.0.0.1:%d" % TLS}
    r = send(TLS, "GET", "/api/session", host, tls=True)
    got = set_cookies(r)
    value, attrs = got.get("__Host-anyon_session", (None, {}))
    t.ok(r.status == 200 and re.fullmatch(r"[0-9a-f]{64}", value or "") and "anyon_session" not in got,
         "over HTTPS the session cookie is __Host-anyon_session", r.headers.get("set-cookie"))
    t.ok("secure" in attrs and attrs.get("path") == "/" and "domain" not in attrs and "httponly" in attrs,
         "the __Host- cookie is Secure, HttpOnly, Path=/, without Domain", attrs)
    csrf = r.json["csrf_token"] if r.status == 200 else ""
    hc = dict(host, Cookie="__Host-anyon_session=" + (value or ""))
    r = send(TLS, "GET", "/api/session", hc, tls=True)
    t.ok(r.status == 200 and "set-cookie" not in r.headers and r.json["csrf_token"] == csrf,
         "the __Host- cookie is read back over HTTPS", r)
    r = send(TLS, "POST", "/api/jobs", dict(hc, **{"X-CSRF-Token": csrf, "Origin": "https://127.0.0.1:%d" % TLS}),
             ECHO, tls=True)
    t.eq(r.status, 201, "an HTTPS write from https://127.0.0.1:TLSPORT passes")
    r = send(TLS, "POST", "/api/jobs", dict(hc, **{"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:%d" % TLS}),
             ECHO, tls=True)
    t.ok(r.status == 403 and r.error_code() == "bad_origin", "the same host over http:// is another origin", r)
    r = send(TLS, "GET", "/api/session", dict(host, Cookie="anyon_session=" + cookie), tls=True)
    t.ok(r.status == 200 and "__Host-anyon_session" in set_cookies(r) and r.json["csrf_token"] != a.csrf,
         "over HTTPS a plain anyon_session cookie (tossable) is not read: a fresh __Host- session", r)
    r = send(P, "GET", "/api/session", {"Cookie": "__Host-anyon_session=" + (value or "")})
    t.ok(r.status == 200 and "anyon_session" in set_cookies(r) and r.json["csrf_token"] != csrf,
         "over plain HTTP the __Host- cookie is not read", r)
shutil.rmtree(tmp, ignore_errors=True)
t.done()
