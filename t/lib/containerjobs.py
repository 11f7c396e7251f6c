"""Reading jobs through the API, for the container-job tests (t4200, t4210,
t4220): a job's reply, waiting for it to end, its output page by page."""
import os

from anyontest import wait_until
import dockertest

FINAL = ("succeeded", "failed", "cancelled")


def engine_and_image(t):
    """The Docker engine (the test fails when it is missing) and the agent
    image ./dev test built (ANYON_AGENT_IMAGE; bails out without it)."""
    eng = dockertest.Engine()
    image = os.environ.get("ANYON_AGENT_IMAGE")
    if not image:
        t.bail("ANYON_AGENT_IMAGE is not set: run through ./dev test, which builds the agent image")
    return eng, image


def job(c, jid):
    return c.get("/api/jobs/%d" % jid).json["job"]


def wait_done(c, jid, timeout=60, interval=0.1):
    """The job's reply once it has ended, or None after timeout seconds."""
    return wait_until(lambda: (lambda j: j if j["state"] in FINAL else None)(job(c, jid)),
                      timeout=timeout, interval=interval)


def output(c, jid):
    """Every chunk stored so far, read page by page."""
    chunks, after = [], 0
    while True:
        r = c.get("/api/jobs/%d/output?after=%d" % (jid, after)).json
        chunks += r["chunks"]
        if r.get("done") or not r["chunks"] or r["next_after"] == after:
            return chunks
        after = r["next_after"]


def text(chunks, stream):
    """The bytes of one stream (stdout, stderr, system) of chunks, joined."""
    return "".join(ch["data"] for ch in chunks if ch["stream"] == stream)
