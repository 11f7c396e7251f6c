#!/usr/bin/env python3
"""The harness checks itself: a Stack's sanitizer check is a numbered TAP
test that fails on an ASan, UBSan or LSan report in the logs (with the
report as diagnostics) and passes on clean logs; a Stack needs a TAP.

The stack is not started: a child script plants a log file where the
services write theirs and leaves the Stack's context the way a test does.
Needs no anyon build."""
import os, subprocess, sys, tempfile, textwrap
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from anyontest import TAP

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
t = TAP()

CHILD = textwrap.dedent("""\
    import os, sys
    sys.path.insert(0, %r)
    import anyontest
    from anyontest import TAP, Stack
    t = TAP()
    t.ok(True, "a check before the stack")
    s = Stack()
    s.start = lambda: s              # the services are not needed here
    s.stop = lambda: None
    name, text = sys.argv[1], sys.argv[2]
    with s:
        if name:
            os.makedirs(os.path.join(s.data, "log"), exist_ok=True)
            with open(os.path.join(s.data, "log", name), "w") as f:
                f.write(text)
    print("# data dir " + s.data)
    t.ok(True, "a check after the stack")
    t.done()
""") % LIB


def child(name, text):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(CHILD)
    try:
        r = subprocess.run([sys.executable, f.name, name, text], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    data = [l.split(" ", 3)[3] for l in r.stdout.splitlines() if l.startswith("# data dir ")]
    if data:
        subprocess.run(["rm", "-rf", data[0]])
    return r


ASAN = ("=================================================================\n"
        "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010\n"
        "READ of size 1 at 0x602000000010 thread T0\n"
        "    #0 0x55d0 in handle_jobs fcgi/api_jobs.c:120\n"
        "SUMMARY: AddressSanitizer: heap-use-after-free fcgi/api_jobs.c:120 in handle_jobs\n")
UBSAN = "fcgi/http.c:88:13: runtime error: signed integer overflow: 2147483647 + 1 cannot be represented\n"
LSAN = ("==77==ERROR: LeakSanitizer: detected memory leaks\n"
        "Direct leak of 24 byte(s) in 1 object(s) allocated from:\n")

for label, name, text, needle in (
        ("ASan report file", "asan.4242", ASAN, "heap-use-after-free"),
        ("UBSan report file", "ubsan.99", UBSAN, "signed integer overflow"),
        ("UBSan line in a service log", "fcgi.log", "starting\n" + UBSAN, "signed integer overflow"),
        ("LSan report in a service log", "worker.log", "worker: stopped\n" + LSAN, "detected memory leaks")):
    r = child(name, text)
    out = r.stdout.splitlines()
    t.ok("not ok 2 - no sanitizer reports in logs" in out,
         "%s: `not ok 2 - no sanitizer reports in logs`, numbered between the script's checks" % label,
         r.stdout)
    diags = out[out.index("not ok 2 - no sanitizer reports in logs") + 1:] if "not ok 2 - no sanitizer reports in logs" in out else []
    t.ok(any(l.startswith("#   ") and needle in l for l in diags),
         "%s: the report excerpt follows as diagnostics" % label, r.stdout)
    t.ok("ok 3 - a check after the stack" in out and "1..3" in out and r.returncode == 1,
         "%s: the plan counts it and the script fails" % label, (r.returncode, r.stdout))
    t.ok(not any(l.startswith(("ok -", "not ok -")) for l in out),
         "%s: no unnumbered test line" % label, r.stdout)

r = child("fcgi.log", "anyon-fcgi: 4 children\nanyon-fcgi: stopped\n")
out = r.stdout.splitlines()
t.ok("ok 2 - no sanitizer reports in logs" in out and "1..3" in out and r.returncode == 0,
     "clean logs: `ok 2 - no sanitizer reports in logs` and the script passes", r.stdout)

r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, %r)\n"
                    "from anyontest import Stack\nStack()" % LIB],
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
t.ok(r.returncode != 0 and "create a TAP before a Stack" in r.stdout,
     "a Stack without a TAP is refused, so no script can lose the check", r.stdout[-500:])
t.done()
