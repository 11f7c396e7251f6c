"""Helpers for tests that need a browser signed in through the GitHub stand-in."""
import time

CLIENT_ID = "Ov23liAnyonTest00001"


def stack_env(gh, allowed="alice, bob", extra=None):
    env = {"ANYON_CLOUD": "1", "ANYON_GITHUB_URL": gh.url, "ANYON_GITHUB_API_URL": gh.api_url,
           "ANYON_GITHUB_CLIENT_ID": CLIENT_ID, "ANYON_ALLOWED_GITHUB": allowed,
           "ANYON_GITHUB_TIMEOUT_MS": "2000", "ANYON_AUTH_RATE": "6000r/m"}
    env.update(extra or {})
    return env


def poll_until(c, flow_id, timeout=20):
    deadline = time.time() + timeout
    r = None
    while time.time() < deadline:
        r = c.post("/api/auth/github/device/poll", {"flow_id": flow_id})
        if r.status != 200 or r.json["status"] != "pending":
            return r
        time.sleep(min(r.json.get("retry_after") or r.json["interval"], 3))
    return r


def sign_in(c, gh, login):
    """Runs the whole device flow for client c as GitHub user login."""
    c.session()
    start = c.post("/api/auth/github/device/start")
    if start.status != 200:
        return start
    gh.approve(start.json["user_code"], login)
    r = poll_until(c, start.json["flow_id"])
    c.session()  # new CSRF token after the session token rotated
    return r


def session_user(c):
    """The signed-in user of client c (the session reply's "user"), or None."""
    r = c.get("/api/session")
    return r.json.get("user") if r.status == 200 and r.json else None
