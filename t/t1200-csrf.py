#!/usr/bin/env python3
"""Sessions and CSRF: the cookie's attributes, only the token's SHA-256 in
the database, every write refused without the session's own CSRF token (and
nothing written when refused), expired sessions replaced, active ones kept."""
import glob, hashlib, os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack

TTL = 60
ECHO = {"kind": "echo", "args": {"lines": ["csrf"]}}

t = TAP()


def sql_write(s, query):
    """Writes a test fixture straight into the database."""
    s.sql_write(query)


def count(s, table):
    return int(s.sql("SELECT count(*) FROM %s" % table)[0][0])


def cookie_attrs(r):
    """The session Set-Cookie of r as (value, {attribute: value})."""
    for c in r.headers.get("set-cookie", []):
        parts = [p.strip() for p in c.split(";")]
        name, _, value = parts[0].partition("=")
        if name != "anyon_session":
            continue
        attrs = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            attrs[k.lower()] = v
        return value, attrs
    return None, {}


def session_row(s, token):
    h = hashlib.sha256(bytes.fromhex(token)).hexdigest().upper()
    rows = s.sql("SELECT id, expires_at, last_seen_at FROM sessions WHERE %s = '%s'"
                 % (s.pick("hex(token_hash)", "upper(encode(token_hash, 'hex'))"), h))
    return [int(x) for x in rows[0]] if rows else None


def db_bytes(s):
    data = b""
    for path in s.storage_files():
        with open(path, "rb") as f:
            data += f.read()
    return data


with Stack(env={"ANYON_SESSION_TTL": str(TTL)}) as s:
    a = s.client()
    r = a.session()
    token, attrs = cookie_attrs(r)
    t.eq(r.status, 200, "GET /api/session answers 200")
    t.ok(token and re.fullmatch(r"[0-9a-f]{64}", token), "the session cookie is a 64-hex token", token)
    t.ok("httponly" in attrs, "the cookie is HttpOnly", attrs)
    t.eq(attrs.get("samesite"), "Lax", "the cookie is SameSite=Lax")
    t.eq(attrs.get("path"), "/", "the cookie has Path=/")
    t.ok("secure" not in attrs, "no Secure flag over plain HTTP", attrs)
    t.ok(attrs.get("max-age", "").isdigit() and int(attrs["max-age"]) > 0, "the cookie has a Max-Age", attrs)
    t.ok(re.fullmatch(r"[0-9a-f]{64}", a.csrf or "") and a.csrf != token,
         "the CSRF token is 64 hex and not the cookie's token", a.csrf)

    # ---- only the hash is stored ----
    rows = s.sql(s.pick("SELECT hex(token_hash), length(token_hash) FROM sessions",
                        "SELECT upper(encode(token_hash, 'hex')), octet_length(token_hash) FROM sessions"))
    want = hashlib.sha256(bytes.fromhex(token)).hexdigest().upper()
    t.eq(rows, [[want, "32"]], "the sessions table holds sha256(token) and nothing else of it")
    dump = s.dump()
    t.ok(token not in dump.lower() and a.csrf not in dump.lower(),
         "neither the token nor the CSRF token appears in a dump of the database")
    raw = db_bytes(s)
    t.ok(bytes.fromhex(want) in raw, "the stored hash is found in the database files (the scan works)")
    t.ok(bytes.fromhex(token) not in raw and token.encode() not in raw and token.upper().encode() not in raw,
         "the raw token is nowhere in the database files, as bytes or hex")

    r2 = a.get("/api/session")
    t.ok(r2.status == 200 and "set-cookie" not in r2.headers and r2.json["csrf_token"] == a.csrf,
         "a known session is reused: no new cookie, same CSRF token", r2)
    t.eq(count(s, "sessions"), 1, "reusing a session adds no row")

    # ---- writes need the session's own CSRF token ----
    jobs = count(s, "jobs")
    r = a.post("/api/jobs", ECHO, csrf=False)
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "POST without X-CSRF-Token -> 403 csrf_failed", r)
    for what, bad in (("a wrong token", "0" * 64), ("a short token", a.csrf[:63]),
                      ("a longer token", a.csrf + "0"), ("the cookie's token", token),
                      ("an empty token", ""), ("the token upper-cased", a.csrf.upper())):
        r = a.post("/api/jobs", ECHO, headers={"X-CSRF-Token": bad}, csrf=False)
        t.ok(r.status == 403 and r.error_code() == "csrf_failed", "%s -> 403 csrf_failed" % what, r)
    b = s.client()
    b.session()
    t.ok(b.csrf and b.csrf != a.csrf, "a second browser gets its own CSRF token")
    r = a.post("/api/jobs", ECHO, headers={"X-CSRF-Token": b.csrf}, csrf=False)
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "another session's token -> 403", r)
    t.eq(count(s, "jobs"), jobs, "no refused POST created a job")

    sessions = count(s, "sessions")
    anon = s.client()
    r = anon.post("/api/jobs", ECHO, headers={"X-CSRF-Token": a.csrf})
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "POST with no cookie at all -> 403", r)
    t.ok("set-cookie" not in r.headers, "a refused cookieless POST sets no cookie", r.headers)
    anon.cookies["anyon_session"] = "f" * 64
    r = anon.post("/api/jobs", ECHO, headers={"X-CSRF-Token": a.csrf})
    t.ok(r.status == 403 and "set-cookie" not in r.headers, "POST with an unknown session cookie -> 403", r)
    anon.cookies["anyon_session"] = "not-hex"
    r = anon.post("/api/jobs", ECHO, headers={"X-CSRF-Token": a.csrf})
    t.eq(r.status, 403, "POST with a malformed session cookie -> 403")
    t.eq(count(s, "sessions"), sessions, "refused writes created no session")
    t.eq(count(s, "jobs"), jobs, "and no job")

    r = a.post("/api/jobs", ECHO)
    t.ok(r.status == 201 and r.json["job"]["state"] in ("queued", "running", "succeeded"),
         "the right token -> 201", r)
    jid = r.json["job"]["id"] if r.status == 201 else 0
    t.eq(count(s, "jobs"), jobs + 1, "exactly one job row created")
    r = b.post("/api/jobs/%d/cancel" % jid, csrf=False)
    t.ok(r.status == 403 and r.error_code() == "csrf_failed", "cancel without a token -> 403 too", r)
    t.eq(s.sql("SELECT cancel_requested FROM jobs WHERE id = %d" % jid), [["0"]],
         "the refused cancel changed nothing")

    # ---- a garbage cookie on a read gets a fresh session ----
    g = s.client()
    g.cookies["anyon_session"] = "zz" * 32
    r = g.session()
    new, _ = cookie_attrs(r)
    t.ok(r.status == 200 and new and new != "zz" * 32 and session_row(s, new),
         "a GET with a garbage cookie gets a fresh, stored session", r)

    # ---- expiry ----
    c = s.client()
    c.session()
    old_token, old_csrf = c.cookies["anyon_session"], c.csrf
    sid = session_row(s, old_token)[0]
    sql_write(s, "UPDATE sessions SET expires_at = %d WHERE id = %d" % (int(time.time()) - 1, sid))
    before = count(s, "sessions")
    r = c.session()
    new, _ = cookie_attrs(r)
    t.ok(r.status == 200 and new and new != old_token, "an expired session gets a fresh cookie on GET", r)
    t.ok(c.csrf and c.csrf != old_csrf, "and a new CSRF token")
    # (Not a count of rows: the worker's retention pass may delete the
    # expired one meanwhile.)
    t.ok(session_row(s, new) and session_row(s, new)[0] != sid and count(s, "sessions") in (before, before + 1),
         "the fresh session is a new row")
    now = int(time.time())
    exp = session_row(s, new)[1] if session_row(s, new) else 0
    t.ok(now + TTL - 5 <= exp <= now + TTL + 5, "a new session lives ANYON_SESSION_TTL seconds",
         "expires_at - now = %d" % (exp - now))
    old = s.client()
    old.cookies["anyon_session"], old.csrf = old_token, old_csrf
    r = old.post("/api/jobs", ECHO)
    t.ok(r.status == 403 and "set-cookie" not in r.headers, "the expired session's token no longer writes", r)

    # ---- an active session is kept alive ----
    # Last seen most of a TTL ago and about to expire: a request must push
    # the expiry a full TTL ahead, or active users are logged out.
    now = int(time.time())
    sql_write(s, "UPDATE sessions SET last_seen_at = %d, expires_at = %d "
                 "WHERE id = %d" % (now - (TTL - 10), now + 10, session_row(s, new)[0]))
    r = c.get("/api/session")
    now = int(time.time())
    exp = session_row(s, new)[1]
    t.ok(r.status == 200 and "set-cookie" not in r.headers and exp >= now + TTL - 5,
         "using a session extends its expiry by the idle timeout", "expires_at - now = %d" % (exp - now))

    # ---- the token never reaches a log ----
    logs = ""
    for path in glob.glob(os.path.join(s.data, "log", "*")):
        with open(path, errors="replace") as f:
            logs += f.read()
    t.ok(logs and token not in logs and a.csrf not in logs, "no log holds a session or CSRF token")
t.done()
