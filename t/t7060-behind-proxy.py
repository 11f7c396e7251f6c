#!/usr/bin/env python3
"""Behind an existing proxy (docs/DEPLOYMENT.md, "Behind an existing
proxy"): anyon knows a client by REMOTE_ADDR, nginx's $remote_addr, and
never reads X-Forwarded-For itself. With nginx's realip module trusting
the proxy's address only (set_real_ip_from 127.0.0.1; real_ip_header
X-Forwarded-For; real_ip_recursive on), the address anyon records (a
session's address in GET /api/sessions) is the forwarded client's; local
mode's loopback-only check judges that client (a forwarded outside address
gets 403 local_only), also when the client put a loopback address of its
own to the left of the one the proxy appended; the same header from a
peer that is not the trusted proxy is ignored. Without realip (the shipped
site) the header changes nothing: the proxy's own address is recorded.

TLS ended at the proxy (nginx/anyon-behind-proxy.conf): in cloud mode with
an https ANYON_PUBLIC_URL, a server for the proxy's plain-HTTP hop that
includes anyon-locations.conf and then sets $anyon_https on and
$anyon_server_port 443 makes anyon see HTTPS: the session cookie is
__Host-anyon_session, Secure, read back there, and a write from the
https Origin passes (an http:// one does not). The same requests to the
ordinary plain listener stay plain HTTP (anyon_session, no Secure; the
__Host- cookie is not read there), and no header a client sends there
(X-Forwarded-Proto, HTTPS, Forwarded, ...) changes that. The order counts:
the same `set`s before the include are overwritten by it."""
import os, re, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import SRCDIR, TAP, Client, Stack, free_port, send_raw

t = TAP()
# The advice of the docs, at http level: only the proxy (here 127.0.0.1) may
# say who the client is.
REALIP = "set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For; real_ip_recursive on;"
PROXY, OTHER = "127.0.0.1", "127.0.0.2"   # both loopback: local mode serves them


def visit(s, source, xff):
    """A first visit from source with X-Forwarded-For: xff; returns (status
    of GET /api/session, the address of that session in GET /api/sessions
    or the error code)."""
    c = Client(s.port, source=source)
    r = c.request("GET", "/api/session", headers={"X-Forwarded-For": xff})
    if r.status != 200:
        return r.status, r.error_code()
    c.csrf = r.json.get("csrf_token")
    r = c.get("/api/sessions")
    mine = [x for x in (r.json or {}).get("sessions", []) if x.get("current")]
    return 200, mine[0]["address"] if len(mine) == 1 else r


with Stack(env={"ANYON_NGINX_HTTP_EXTRA": REALIP}) as s:
    t.eq(visit(s, PROXY, "127.0.0.5"), (200, "127.0.0.5"),
         "realip trusting the proxy: the session records the forwarded client's address")
    t.eq(visit(s, PROXY, "203.0.113.7"), (403, "local_only"),
         "a forwarded outside client is refused by local mode (anyon judges the real client)")
    t.eq(visit(s, PROXY, "127.0.0.9, 203.0.113.7"), (403, "local_only"),
         "a loopback address the client wrote left of the proxy's entry is not believed")
    t.eq(visit(s, OTHER, "127.0.0.6"), (200, OTHER),
         "from a peer that is not the trusted proxy the header is ignored: its own address is recorded")
    t.eq(visit(s, OTHER, "203.0.113.7"), (200, OTHER),
         "(and a forwarded outside address from it changes nothing)")

    # The shipped configuration, without realip: anyon never reads the header.
    s.restart(ANYON_NGINX_HTTP_EXTRA="")
    t.eq(visit(s, PROXY, "203.0.113.7"), (200, PROXY),
         "without realip the header is not read: the peer's own address is recorded")

# ---- TLS ended at the proxy ----
NAME = "anyon-t7060.test"
HOP, WRONG = free_port(), free_port()
# The hop's server as nginx/anyon-behind-proxy.conf has it; WRONG sets the
# two before the include, which then sets them again from its connection.
SERVER = ("server { listen 127.0.0.1:%d; server_name " + NAME + "; " + REALIP + " root "
          + os.path.join(SRCDIR, "static") + "; %s }")
TLS_AT_PROXY = "set $anyon_https on; set $anyon_server_port 443;"
HOP_EXTRA = (SERVER % (HOP, "include anyon-locations.conf; " + TLS_AT_PROXY) + " "
             + SERVER % (WRONG, TLS_AT_PROXY + " include anyon-locations.conf;"))
TOKEN = r"[0-9A-Za-z._-]{32,}"   # a session token, anonymous (a.HEX) or not
# A location of one's own beside anyon's (as bench/run adds) that includes
# fastcgi_params: it gets the connection's HTTPS and SERVER_PORT too.
OWN = "location = /api/session { add_header X-Own yes; include fastcgi_params; fastcgi_pass anyon_fcgi; }"


def cookies(r):
    """{name: (value, set of lower-cased attributes)} of r's Set-Cookie."""
    out = {}
    for c in r.headers.get("set-cookie", []):
        parts = [p.strip() for p in c.split(";")]
        name, _, value = parts[0].partition("=")
        out[name] = (value, {p.split("=")[0].lower() for p in parts[1:]})
    return out


def plain_session(r, what):
    got = cookies(r)
    value, attrs = got.get("anyon_session", ("", set()))
    t.ok(r.status == 200 and re.fullmatch(TOKEN, value) and "secure" not in attrs
         and "__Host-anyon_session" not in got, what + ": anyon_session without Secure (plain HTTP)",
         (r.status, r.headers.get("set-cookie")))


with Stack(env={"ANYON_CLOUD": "1", "ANYON_GITHUB_CLIENT_ID": "x", "ANYON_PUBLIC_URL": "https://" + NAME,
                "ANYON_NGINX_HTTP_EXTRA": HOP_EXTRA, "ANYON_NGINX_EXTRA": OWN}) as s:
    host = {"Host": NAME, "X-Forwarded-For": "198.51.100.7"}
    r = send_raw(HOP, "GET", "/api/session", host)
    got = cookies(r)
    value, attrs = got.get("__Host-anyon_session", ("", set()))
    t.ok(r.status == 200 and re.fullmatch(TOKEN, value) and "anyon_session" not in got,
         "through the proxy's hop: the session cookie is __Host-anyon_session", (r.status, got))
    t.ok({"secure", "httponly", "path"} <= attrs and "domain" not in attrs,
         "and it is Secure, HttpOnly, Path=/, without Domain", attrs)
    t.ok(r.header("strict-transport-security") == "max-age=31536000",
         "HSTS is on the hop's answers (the browser sees them over the proxy's TLS)", r.headers)
    csrf = r.json["csrf_token"] if r.status == 200 else ""
    r = send_raw(HOP, "GET", "/api/session", {"Host": "evil.example"})
    t.ok(r.status == 421 and r.error_code() == "misdirected_request" and "set-cookie" not in r.headers,
         "the hop trusts TLS, not the name: another Host through it is refused (421)", r)
    hc = dict(host, Cookie="__Host-anyon_session=" + value)
    r = send_raw(HOP, "GET", "/api/session", hc)
    t.ok(r.status == 200 and "set-cookie" not in r.headers and r.json["csrf_token"] == csrf,
         "the __Host- cookie is read back through the hop: the same session", r)
    r = send_raw(HOP, "POST", "/api/auth/logout", dict(hc, **{"X-CSRF-Token": csrf, "Origin": "http://" + NAME}))
    t.ok(r.status == 403 and r.error_code() == "bad_origin",
         "a write from http://NAME through the hop: 403 bad_origin (another origin)", r)
    r = send_raw(HOP, "POST", "/api/auth/logout", dict(hc, Origin="https://" + NAME))
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "from https://NAME without the CSRF token: 403", r)
    r = send_raw(HOP, "POST", "/api/auth/logout", dict(hc, **{"X-CSRF-Token": csrf, "Origin": "https://" + NAME}))
    t.ok(r.status == 200 and {"secure", "max-age"} <= cookies(r).get("__Host-anyon_session", ("", set()))[1],
         "a write from https://NAME with the token passes the Origin and CSRF checks; the cookie "
         "is cleared as __Host-, Secure", (r.status, r.body, r.headers.get("set-cookie")))

    # The ordinary listener, plain HTTP, with the same Host: nothing changes there.
    r = send_raw(s.port, "GET", "/api/session", {"Host": NAME})
    plain_session(r, "the plain listener, Host " + NAME)
    r = send_raw(s.port, "GET", "/api/session", {"Host": NAME, "Cookie": "__Host-anyon_session=" + value})
    plain_session(r, "the plain listener with the hop's __Host- cookie (not read there: a new one)")
    for fake in ({"X-Forwarded-Proto": "https"}, {"HTTPS": "on"}, {"X-Forwarded-Ssl": "on"},
                 {"Forwarded": "for=198.51.100.7;proto=https"}, {"X-Forwarded-Port": "443"},
                 {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1", "HTTPS": "on"}):
        r = send_raw(s.port, "GET", "/api/session", dict(fake, Host=NAME))
        plain_session(r, "the plain listener, a client sending %s" % fake)
    r = send_raw(s.port, "GET", "/api/session", {"Host": "127.0.0.1:%d" % s.port})
    t.eq(r.header("x-own"), "yes", "(a location of one's own answered)")
    plain_session(r, "a location of one's own in the plain server, Host 127.0.0.1:PORT (SERVER_PORT is the "
                  "listener's)")
    r = send_raw(WRONG, "GET", "/api/session", {"Host": NAME})
    plain_session(r, "the `set`s BEFORE the include: the include sets them again from the connection")
t.done()
