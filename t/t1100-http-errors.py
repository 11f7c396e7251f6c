#!/usr/bin/env python3
"""HTTP errors: 404, 405, 413 (ours and nginx's), 400 for bad JSON, bad fields
and bad query parameters. Every answer is JSON, uncached, with a stable code,
and no bad request leaves a row behind."""
import json, os, socket, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP, Stack

MAX_BODY = 2048

t = TAP()
seen = []   # (what, Response) of every /api/ answer, checked at the end


def req(c, what, method, path, body=None, **kw):
    r = c.request(method, path, body=body, **kw)
    seen.append((what, r))
    return r


def expect_error(r, status, code, name):
    t.ok(r.status == status and r.error_code() == code, name,
         "want %d %s, got %r" % (status, code, r))


def job_count(s):
    return int(s.sql("SELECT count(*) FROM jobs")[0][0])


def raw_http(port, head, body=b"", read_timeout=10):
    """Sends head (+ body) on a fresh socket and returns what comes back
    until the server closes. For requests http.client will not send."""
    sk = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        sk.sendall(head + body)
        data = b""
        while len(data) < 1 << 20:
            try:
                part = sk.recv(65536)
            except ConnectionResetError:
                break
            if not part:
                break
            data += part
        return data
    finally:
        sk.close()


with Stack(env={"ANYON_MAX_BODY": str(MAX_BODY)}) as s:
    c = s.client()
    r = c.session()
    seen.append(("session", r))
    t.ok(r.status == 200 and c.csrf, "a session with a CSRF token to make writes with", r)
    jobs_before = job_count(s)

    # ---- 404 ----
    for path in ("/api/nope", "/api/jobs/1/nope", "/api//jobs", "/api/jobs/", "/api/health/x"):
        expect_error(req(c, "404", "GET", path), 404, "not_found", "GET %s -> 404 not_found" % path)
    for path in ("/api/jobs/abc", "/api/jobs/0", "/api/jobs/-1", "/api/jobs/99999999999999999999",
                 "/api/jobs/424242"):
        expect_error(req(c, "404", "GET", path), 404, "not_found", "job id %s -> 404 not_found" % path[10:])

    # ---- 405 ----
    r = req(c, "405", "DELETE", "/api/health")
    expect_error(r, 405, "method_not_allowed", "DELETE /api/health -> 405 method_not_allowed")
    t.eq(r.header("Allow"), "GET", "405 names the allowed method in Allow")
    r = req(c, "405", "PUT", "/api/jobs")
    expect_error(r, 405, "method_not_allowed", "PUT /api/jobs -> 405")
    t.eq(sorted(m.strip() for m in (r.header("Allow") or "").split(",")), ["GET", "POST"],
         "Allow lists every method of the path")
    r = req(c, "405", "POST", "/api/session", body={})
    expect_error(r, 405, "method_not_allowed", "POST /api/session -> 405")
    r = req(c, "405", "GET", "/api/jobs/1/cancel")
    t.ok(r.status == 405 and r.header("Allow") == "POST", "GET on a POST-only path -> 405 with Allow: POST", r)
    r = req(c, "405 without a session", "DELETE", "/api/jobs", csrf=False)
    t.eq(r.status, 405, "405 comes before the CSRF check")
    t.ok("allow" not in req(c, "after 405", "GET", "/api/health").headers,
         "the next answer of the pool carries no stale Allow header")

    # ---- 413 from the application ----
    big = '{"kind":"echo","args":{"lines":["%s"]}}' % ("x" * (2 * MAX_BODY))
    for i in range(6):   # more than the pool's children: each must survive it
        r = req(c, "413", "POST", "/api/jobs", body=big, headers={"Content-Type": "application/json"})
        if r.status != 413:
            break
    expect_error(r, 413, "body_too_large", "a body over ANYON_MAX_BODY -> 413 body_too_large")
    t.ok(str(MAX_BODY) in r.json["error"]["message"], "the 413 message states the limit", r)
    r = req(c, "after 413", "GET", "/api/jobs")
    t.eq(r.status, 200, "the pool still answers after refusing large bodies unread")
    exact = '{"kind":"echo","args":{"lines":["%s"]}}'
    exact = exact % ("y" * (MAX_BODY - len(exact) + 2))
    r = req(c, "at the limit", "POST", "/api/jobs", body=exact, headers={"Content-Type": "application/json"})
    t.ok(len(exact) == MAX_BODY and r.status == 201, "a body of exactly ANYON_MAX_BODY bytes is accepted", r)
    jobs_before += 1

    # ---- 413 from nginx: absurd bodies never reach the pool ----
    head = (b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Cookie: anyon_session=%s\r\nX-CSRF-Token: %s\r\nContent-Length: %d\r\n\r\n"
            % (c.cookies["anyon_session"].encode(), c.csrf.encode(), 9 << 20))
    data = raw_http(s.port, head, b"{" * 4096)
    status_line, _, rest = data.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    t.ok(status_line.startswith(b"HTTP/1.1 413"), "a 9 MiB body -> 413 from nginx", data[:300])
    t.ok(b"content-type: application/json" in headers.lower(), "nginx's 413 is JSON", headers)
    t.ok(b'"code":"body_too_large"' in body and b'"message":' in body,
         "nginx's 413 has the API's error shape", body)

    # ---- 400 invalid_json ----
    bad_json = [
        ("truncated", '{"kind":"echo","args":{"lines":["a"'),
        ("trailing junk", '{"kind":"echo","args":{"lines":[]}} x'),
        ("two values", '{"kind":"echo"}{"kind":"echo"}'),
        ("an array", '[{"kind":"echo"}]'),
        ("a string", '"echo"'),
        ("a number", "42"),
        ("null", "null"),
        ("empty body", ""),
        ("only spaces", "   \n"),
        ("deeply nested", '{"kind":"echo","args":' + '{"a":' * 200 + "1" + "}" * 200 + "}"),
        ("deep arrays", "[" * 500 + "]" * 500),
        ("single quotes", "{'kind':'echo'}"),
        ("trailing comma", '{"kind":"echo","args":{"lines":[]},}'),
        ("comment", '{"kind":"echo", /* x */ "args":{"lines":[]}}'),
        ("NUL byte", '{"kind":"echo","args":{"lines":[]}}\x00'),
        ("bare word", "echo"),
    ]
    for what, body in bad_json:
        r = req(c, "invalid_json " + what, "POST", "/api/jobs", body=body,
                headers={"Content-Type": "application/json"})
        expect_error(r, 400, "invalid_json", "malformed JSON (%s) -> 400 invalid_json" % what)
    r = req(c, "invalid_json no body", "POST", "/api/jobs")
    expect_error(r, 400, "invalid_json", "POST without any body -> 400 invalid_json")

    # ---- 400 invalid_field ----
    bad_fields = [
        ("kind missing", {"args": {"lines": []}}),
        ("kind a number", {"kind": 5, "args": {"lines": []}}),
        ("kind null", {"kind": None, "args": {"lines": []}}),
        ("kind unknown", {"kind": "rm -rf", "args": {"lines": []}}),
        ("args an array", {"kind": "echo", "args": []}),
        ("args a string", {"kind": "echo", "args": "lines"}),
        ("args without lines", {"kind": "echo", "args": {}}),
        ("lines a string", {"kind": "echo", "args": {"lines": "a"}}),
        ("lines of numbers", {"kind": "echo", "args": {"lines": [1, 2]}}),
        ("delay_ms a string", {"kind": "echo", "args": {"lines": [], "delay_ms": "10"}}),
        ("delay_ms a float", {"kind": "echo", "args": {"lines": [], "delay_ms": 1.5}}),
        ("delay_ms negative", {"kind": "echo", "args": {"lines": [], "delay_ms": -1}}),
        ("delay_ms too large", {"kind": "echo", "args": {"lines": [], "delay_ms": 10 ** 9}}),
        ("exit_code 256", {"kind": "echo", "args": {"lines": [], "exit_code": 256}}),
        ("exit_code a bool", {"kind": "echo", "args": {"lines": [], "exit_code": True}}),
        ("stream stdin", {"kind": "echo", "args": {"lines": [], "stream": "stdin"}}),
        ("stream a number", {"kind": "echo", "args": {"lines": [], "stream": 1}}),
    ]
    for what, body in bad_fields:
        r = req(c, "invalid_field " + what, "POST", "/api/jobs", body=body)
        named = r.json and ("kind" in r.json["error"]["message"] or "args" in r.json["error"]["message"])
        t.ok(r.status == 400 and r.error_code() == "invalid_field" and named,
             "%s -> 400 invalid_field naming the field" % what, r)
    t.eq(job_count(s), jobs_before, "no refused request created a job")

    # ---- 400 invalid_parameter ----
    r = req(c, "job", "POST", "/api/jobs", body={"kind": "echo", "args": {"lines": ["p"]}})
    t.eq(r.status, 201, "a valid job to read output from")
    jid = r.json["job"]["id"]
    bad_params = [
        "/api/jobs?limit=abc", "/api/jobs?limit=", "/api/jobs?limit=0", "/api/jobs?limit=201",
        "/api/jobs?limit=-5", "/api/jobs?limit=1.5", "/api/jobs?limit=1%002", "/api/jobs?limit=%zz",
        "/api/jobs?limit=" + "9" * 200, "/api/jobs?before=-1", "/api/jobs?before=x",
        "/api/jobs/%d/output?after=-1" % jid, "/api/jobs/%d/output?after=abc" % jid,
        "/api/jobs/%d/output?after=99999999999999999999" % jid,
        "/api/jobs/%d/output?limit=0" % jid, "/api/jobs/%d/output?limit=501" % jid,
    ]
    for path in bad_params:
        r = req(c, "invalid_parameter", "GET", path)
        expect_error(r, 400, "invalid_parameter", "GET %s -> 400 invalid_parameter" % path[:60])
    r = req(c, "good params", "GET", "/api/jobs?limit=1&before=0&unknown=zzz")
    t.ok(r.status == 200 and len(r.json["jobs"]) == 1, "valid parameters and unknown ones are fine", r)

    # ---- requests nginx itself refuses (found by t8000-fuzz-http.py) ----
    # They fail before nginx knows the Host, in its default server: answered
    # in the API's shape there too, not with nginx's HTML page.
    host = b"Host: 127.0.0.1:%d\r\n" % s.port
    for what, line, extra, status, code in (
            ("a lowercase method", b"get /api/session HTTP/1.1", b"", 400, "bad_request"),
            ("%00 in the path", b"GET /api/jobs/1%00 HTTP/1.1", b"", 400, "bad_request"),
            ("a bad percent-encoding in the path", b"DELETE /api/secrets/%zz HTTP/1.1", b"", 400, "bad_request"),
            ("a lone % in the path", b"GET /api/secrets/% HTTP/1.1", b"", 400, "bad_request"),
            ("a 20 kB URI", b"GET /api/jobs/" + b"a" * 20000 + b" HTTP/1.1", b"", 414, "uri_too_long"),
            ("a 20 kB cookie", b"GET /api/session HTTP/1.1", b"Cookie: anyon_session=" + b"a" * 20000 + b"\r\n",
             400, "bad_request")):
        data = raw_http(s.port, line + b"\r\n" + host + extra + b"Connection: close\r\n\r\n")
        head, _, body = data.partition(b"\r\n\r\n")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        t.ok(head.startswith(b"HTTP/1.1 %d " % status) and b"application/json" in head
             and isinstance(doc, dict) and doc.get("error", {}).get("code") == code
             and isinstance(doc["error"].get("message"), str),
             "%s: nginx answers %d %s in JSON" % (what, status, code), data[:600])

    # ---- every answer: JSON, uncached, errors with code and message ----
    bad = [(w, r) for w, r in seen if r.header("Cache-Control") != "no-store"]
    t.ok(not bad, "all %d API answers carry Cache-Control: no-store" % len(seen), bad[:5])
    bad = [(w, r) for w, r in seen
           if not (r.header("Content-Type") or "").startswith("application/json") or
           (r.status != 204 and r.json is None)]
    t.ok(not bad, "all API answers are JSON documents", bad[:5])
    errors = [(w, r) for w, r in seen if r.status >= 400]
    bad = [(w, r) for w, r in errors
           if not (isinstance(r.json, dict) and list(r.json) == ["error"] and
                   isinstance(r.json["error"].get("code"), str) and r.json["error"]["code"] and
                   isinstance(r.json["error"].get("message"), str) and r.json["error"]["message"])]
    t.ok(len(errors) > 60 and not bad,
         "all %d error answers are {error:{code,message}} and nothing else" % len(errors), bad[:5])
    bad = [(w, r) for w, r in errors if "set-cookie" in r.headers]
    t.ok(not bad, "no error answer to a known session sets a cookie", bad[:5])
t.done()
