#!/usr/bin/env python3
"""New sessions are capped per address, so a loop of cookie-less (or
made-up-cookie) requests cannot grow the sessions table; browsers that have
a session are not affected."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack

t = TAP()
with Stack(env={"ANYON_SESSIONS_PER_ADDR": "5"}) as s:
    base = int(s.sql("SELECT count(*) FROM sessions")[0][0])
    clients = [s.client() for _ in range(5 - base)]
    codes = [c.session().status for c in clients]
    t.eq(codes, [200] * len(clients), "new browsers get sessions up to the cap")
    cookies = {c.cookies.get("anyon_session") for c in clients}
    t.ok(None not in cookies and len(cookies) == len(clients), "each got its own cookie")

    r = s.client().get("/api/session")
    t.ok(r.status == 429 and r.error_code() == "rate_limited" and r.header("Retry-After") == "60"
         and "set-cookie" not in r.headers, "one more cookie-less browser: 429 with Retry-After, no cookie", r)
    faker = s.client()
    faker.cookies["anyon_session"] = "ab" * 32
    r = faker.get("/api/session")
    t.eq(r.status, 429, "a made-up cookie does not get around the cap")
    t.eq(s.sql("SELECT count(*) FROM sessions"), [["5"]], "the sessions table stopped growing at 5")

    r = clients[0].get("/api/session")
    t.ok(r.status == 200 and r.json["user"]["login"] == "local", "a browser with a session is not affected", r)
    r = clients[0].post("/api/jobs", {"kind": "echo", "args": {"lines": ["still here"]}})
    t.eq(r.status, 201, "... and can still write")
    t.eq(s.client().get("/api/health").status, 200, "routes without sessions are not affected")
t.done()
