#!/usr/bin/env python3
"""Health: up or down for anyone; database, worker heartbeat, Docker as the
worker sees it and the version for a signed-in user only."""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack, wait_until

t = TAP()


def signed_in(s):
    """A client with a session (local mode: the local user)."""
    c = s.client()
    c.session()
    return c


with Stack() as s:
    anon = s.client()
    r = anon.get("/api/health")
    t.ok(r.status == 200 and r.json == {"status": "ok"}, "without a session: only that the service is up", r)
    t.ok("set-cookie" not in r.headers, "health creates no session")
    r = anon.get("/api/health", headers={"Cookie": "anyon_session=" + "ab" * 32})
    t.ok(r.status == 200 and r.json == {"status": "ok"}, "an unknown session cookie: no details either", r)
    c = signed_in(s)
    r = c.get("/api/health")
    t.eq(r.status, 200, "health answers 200")
    t.eq(r.json["status"], "ok", "status ok")
    t.eq(r.json["db"], "ok", "db ok")
    t.ok(isinstance(r.json["worker"]["last_heartbeat_s"], int) and r.json["worker"]["last_heartbeat_s"] <= 3,
         "worker heartbeat is fresh", r.json)
    t.ok(r.json["version"], "version reported")
    t.eq(r.header("Cache-Control"), "no-store", "API answers are not cached")
    t.ok(r.header("Content-Type").startswith("application/json"), "JSON content type", r.header("Content-Type"))
    t.ok(r.header("X-Content-Type-Options") == "nosniff" and r.header("Content-Security-Policy"),
         "security headers from the shipped nginx config")
    # Docker runs on this machine (CI has it): the worker must see it.
    docker_expected = os.path.exists("/var/run/docker.sock")
    if os.environ.get("CI") and not docker_expected:
        t.ok(False, "Docker is required in CI but /var/run/docker.sock is missing")
    t.eq(r.json["docker"], "ok" if docker_expected else "unreachable", "docker state as the worker sees it")

with Stack(env={"ANYON_DOCKER_SOCKET": "/nonexistent/docker.sock"}) as s:
    r = signed_in(s).get("/api/health")
    t.eq(r.json["docker"], "unreachable", "a worker that cannot reach Docker reports unreachable")

with Stack() as s:
    c = signed_in(s)
    os.kill(s.pid("worker"), 15)
    ok = wait_until(lambda: c.get("/api/health").json["worker"]["last_heartbeat_s"] >= 4
                    and c.get("/api/health").json["docker"] == "unreachable", timeout=15)
    t.ok(ok, "with the worker gone the heartbeat ages and docker is no longer vouched for")

with Stack(env={"ANYON_CLOUD": "1", "ANYON_GITHUB_CLIENT_ID": "x"}) as s:
    c = signed_in(s)
    r = c.get("/api/health")
    t.ok(r.status == 200 and r.json == {"status": "ok"},
         "cloud mode: a session that has not signed in gets no details", r)
t.done()
