#!/usr/bin/env python3
"""Secrets and audit over HTTP: metadata only, settable kinds, validation,
delete, audit pagination, concurrent PUT and DELETE of one kind."""
import os, sys
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack

t = TAP()
with Stack() as s:
    c = s.client()
    c.session()
    r = c.get("/api/secrets")
    t.ok(r.status == 200 and r.json == {"secrets": []}, "no secrets at first", r)

    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-api03-abcdefABCDEF0123"})
    t.eq(r.status, 200, "PUT an API key")
    sec = r.json and r.json.get("secret") or {}
    t.ok(sec.get("kind") == "anthropic_api_key" and sec.get("key_id") == "k1" and "value" not in sec,
         "answer carries metadata, never the value", r)
    t.ok("sk-ant-api03" not in r.body, "the value is not echoed back")
    r = c.get("/api/secrets")
    t.ok(r.status == 200 and [x["kind"] for x in r.json["secrets"]] == ["anthropic_api_key"]
         and "sk-ant" not in r.body, "list shows the kind and metadata only", r)

    r = c.request("PUT", "/api/secrets/github_token", {"value": "gho_x"})
    t.ok(r.status == 403 and r.error_code() == "not_settable", "tokens from sign-in flows are not settable by hand", r)
    r = c.request("PUT", "/api/secrets/nonsense", {"value": "x"})
    t.ok(r.status == 404 and r.error_code() == "not_found", "unknown kind: 404", r)
    for bad, why in (({"value": ""}, "empty"), ({"value": "has space"}, "space"), ({"value": 42}, "number"),
                     ({"value": "x" * 5000}, "too long"), ({}, "missing"), ({"value": "tab\there"}, "control")):
        r = c.request("PUT", "/api/secrets/anthropic_api_key", bad)
        t.ok(r.status == 400 and r.error_code() == "invalid_field", "bad value refused (%s)" % why, r)
    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-x"}, csrf=False)
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "PUT without CSRF token refused", r)

    r = c.delete("/api/secrets/anthropic_api_key")
    t.ok(r.status == 200 and r.json.get("deleted") == "anthropic_api_key", "DELETE", r)
    r = c.delete("/api/secrets/anthropic_api_key")
    t.ok(r.status == 404, "DELETE again: 404", r)
    t.eq(s.sql("SELECT count(*) FROM secrets"), [["0"]], "the row is gone")

    r = c.get("/api/audit")
    actions = [e["action"] for e in r.json["events"]] if r.status == 200 else []
    t.ok("secret.stored" in actions and "secret.deleted" in actions, "the caller sees its audit events", r)
    t.ok(all(e["session_id"] for e in r.json["events"] if e["actor"] == "anyon-fcgi"),
         "API events carry the session", r.json)
    t.ok("sk-ant" not in r.body, "no value in the audit log")
    for i in range(5):
        c.request("PUT", "/api/secrets/github_pat", {"value": "ghp_page%d" % i})
    seen, before, pages = [], 0, 0
    while pages < 20:
        q = "/api/audit?limit=2" + ("&before=%d" % before if before else "")
        r = c.get(q)
        if r.status != 200:
            break
        seen += [e["id"] for e in r.json["events"]]
        pages += 1
        if r.json["next_before"] is None:
            break
        before = r.json["next_before"]
    t.ok(len(seen) >= 7 and seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen),
         "audit pages walk newest to oldest without repeats (%d events, %d pages)" % (len(seen), pages))
    r = c.get("/api/audit?limit=0")
    t.ok(r.status == 400 and r.error_code() == "invalid_parameter", "limit=0 refused", r)

    # PUT stores and reads back in one transaction: a DELETE racing it
    # makes it neither fail nor answer for a row that is gone.
    def hammer(i):
        if i % 2:
            return "DELETE", c.delete("/api/secrets/anthropic_api_key")
        return "PUT", c.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-race%d" % i})
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(hammer, range(400)))
    bad = [(m, r) for m, r in results if not (r.status == 200 or (m == "DELETE" and r.status == 404))]
    t.ok(not bad, "200 PUTs and 200 DELETEs of one kind at once: only 200 and 404, never 5xx", bad[:5])
    puts = [r for m, r in results if m == "PUT" and r.status == 200]
    t.ok(puts and all(r.json["secret"]["kind"] == "anthropic_api_key" for r in puts),
         "every PUT answered the metadata it stored", puts[:2])

    # A body near the limit stays in nginx's memory; one over it is refused
    # before it is read: neither is spooled to nginx's client_body temp dir.
    errlog = os.path.join(s.data, "log", "nginx-error.log")
    big = '{"value":"%s"}' % ("k" * (1024 * 1024 - 64))
    r = c.request("PUT", "/api/secrets/github_pat", big)
    t.ok(r.status == 400 and r.error_code() == "invalid_field", "a near-1-MiB secret body reaches the API", r)
    r = c.request("PUT", "/api/secrets/github_pat", '{"value":"%s"}' % ("k" * (1024 * 1024 + 64)))
    t.ok(r.status == 413 and r.error_code() == "body_too_large", "a body over 1 MiB: nginx's 413", r)
    with open(errlog, errors="replace") as f:
        spooled = [l for l in f if "buffered to a temporary file" in l]
    t.ok(not spooled, "no secret body was buffered to a temp file by nginx", spooled)
t.done()
