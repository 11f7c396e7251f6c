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
site) the header changes nothing: the proxy's own address is recorded."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Client, Stack

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
t.done()
