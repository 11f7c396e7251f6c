#!/usr/bin/env python3
"""Browser: the web shell in a real headless Chromium against the real stack.

The page loads and shows the local session, local mode and a healthy dot; the
session cookie is HttpOnly; an echo job run from the Jobs screen streams its
lines (as text, never markup) into the output and ends succeeded; a running
job can be cancelled; a bad input shows the server's error message in a
toast; the browser console shows no errors. Chromium, chromedriver and
Debian's python3-selenium are required: without them this test fails.
"""
import os, re, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from browser import By, Page as BasePage, WebDriverException, driven, require_chromium, set_value
from anyontest import TAP, Stack

t = TAP()
require_chromium(t)


class Page(BasePage):
    def state(self):
        """What the page shows, for a failing check's diagnostics."""
        return "url: %s\ntoasts: %r\njob-state: %r\njob-output: %r" % (
            self.d.current_url, self.texts("#toasts .toast"),
            self.text("#job-state"), self.text("#job-output"))

    def clear_toasts(self):
        """Dismisses every toast: they sit over the Settings cards' buttons."""
        for b in self.finds("#toasts .toast-close"):
            try:
                b.click()
            except WebDriverException:
                pass
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#toasts .toast"))


with Stack() as s, driven(t, s, Page, "t9000") as p:
    driver = p.d
    # --- the shell loads, with the session and health in the header ---
    driver.get(s.url + "/")
    loaded = p.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#main .screen"))
    t.ok(loaded and driver.title.endswith("anyon"), "the page loads and renders a screen", p.state())
    t.ok(driver.current_url.endswith("#/board"), "the default route is the board", driver.current_url)
    t.ok(p.wait(lambda d: "GitHub import" in d.find_element(By.ID, "main").text),
         "the board says projects come with GitHub import")
    t.ok(p.wait(lambda d: d.find_element(By.ID, "session-user").text == "local"),
         "#session-user shows the local user", p.text("#session-user"))
    t.ok(p.wait(lambda d: d.find_element(By.ID, "mode-badge").text == "local"),
         "#mode-badge says local", p.text("#mode-badge"))
    # Like t1000: Docker is on this machine when its socket is.
    want = "ok" if os.path.exists("/var/run/docker.sock") else "degraded"
    t.ok(p.wait(lambda d: d.find_element(By.ID, "health-dot").get_attribute("data-state") == want),
         "the health dot reaches state %s" % want, p.attr("#health-dot", "data-state"))

    cookies = {c["name"]: c for c in driver.get_cookies()}
    sc = cookies.get("anyon_session")
    t.ok(sc and sc.get("httpOnly") is True, "the session cookie is HttpOnly", cookies)
    t.ok("anyon_session" not in driver.execute_script("return document.cookie"),
         "scripts cannot read the session cookie")

    # --- run an echo job from the Jobs screen and watch it finish ---
    p.find('[data-testid="nav-jobs"]').click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "job-form")), "the Jobs screen shows the job form")
    lines = ["t9000 alpha", "<b>bravo</b>", "charlie"]
    set_value(p.find("#job-lines"), "\n".join(lines))
    set_value(p.find("#job-delay"), "150")
    p.find("#job-submit").click()
    t.ok(p.wait(lambda d: re.search(r"#/jobs/\d+$", d.current_url)),
         "submitting opens the new job", p.state())
    job_id = driver.current_url.rsplit("/", 1)[1]
    t.ok(p.wait(lambda d: d.find_element(By.ID, "job-state").text == "succeeded", timeout=20),
         "#job-state reaches succeeded", p.state())
    t.eq(p.text("#job-output"), "\n".join(lines), "#job-output holds the job's lines, in order")
    t.eq(len(p.finds("#job-output b")), 0, "output is shown as text, not markup")
    t.eq(p.text("#job-exit-code"), "exit 0", "the exit code is shown")
    t.ok(not p.find("#job-cancel").is_displayed(), "no Cancel button once the job is over")
    t.ok(p.wait(lambda d: d.find_element(
            By.CSS_SELECTOR, '#job-list [data-job-id="%s"]' % job_id).get_attribute("data-state") == "succeeded"),
         "#job-list shows the job as succeeded", p.text("#job-list"))

    # --- cancel a running job ---
    set_value(p.find("#job-lines"), "\n".join("slow %d" % i for i in range(8)))
    set_value(p.find("#job-delay"), "700")
    p.find("#job-submit").click()
    t.ok(p.wait(lambda d: re.search(r"#/jobs/\d+$", d.current_url)
                and d.current_url.rsplit("/", 1)[1] != job_id
                and d.find_element(By.ID, "job-state").text == "running"
                and "slow 0" in d.find_element(By.ID, "job-output").text, timeout=15),
         "a slow job runs and streams its first line", p.state())
    p.find("#job-cancel").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "job-state").text == "cancelled", timeout=15),
         "Cancel stops it: #job-state reaches cancelled", p.state())
    out = p.text("#job-output") or ""
    t.ok("slow 7" not in out and "cancelled" in out, "the output ends at the cancel", out)

    # --- a bad input shows the server's message ---
    c = s.client()
    c.session()
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": ["x"], "delay_ms": 99999,
                                                      "exit_code": 0, "stream": "stdout"}})
    t.eq(r.error_code(), "invalid_field", "the API refuses delay_ms 99999")
    message = r.json["error"]["message"]
    set_value(p.find("#job-lines"), "x")
    set_value(p.find("#job-delay"), "99999")
    p.find("#job-submit").click()
    toast = p.wait(lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "#toasts .toast-error")
                              if message in e.text])
    t.ok(toast, "an error toast carries the server's message", p.state())
    t.ok(toast and toast[0].get_attribute("data-code") == "invalid_field", "the toast knows the error code")
    t.eq(p.attr("#job-delay", "aria-invalid"), "true", "the delay field is marked invalid")

    # --- settings show the health report ---
    p.find('[data-testid="nav-settings"]').click()
    t.ok(p.wait(lambda d: "0.1.0" in d.find_element(By.ID, "settings-health").text
                and d.find_element(By.CSS_SELECTOR, '[data-testid="health-db"]').text == "ok"),
         "Settings shows the health report", p.text("#main"))

    # --- settings: the Credentials card stores a key and never shows it ---
    t.ok(p.wait(lambda d: d.find_element(By.ID, "cred-empty").text == "No credentials stored"),
         "the Credentials card says no credentials are stored", p.text("#cred-card"))
    t.ok("encrypted at rest" in (p.text("#cred-card") or ""), "... and that values are encrypted at rest")
    key = "sk-ant-t9000-" + os.urandom(8).hex()
    p.clear_toasts()
    set_value(p.find("#cred-anthropic"), key)
    p.find("#cred-anthropic-save").click()
    row = '#cred-list [data-kind="anthropic_api_key"]'
    t.ok(p.wait(lambda d: "Anthropic API key" in d.find_element(By.CSS_SELECTOR, row).text),
         "saving shows a row for the Anthropic API key", p.state())
    t.ok(p.wait(lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "#toasts .toast-success")
                           if "API key saved" in e.text]), "... with a success toast", p.state())
    t.eq(p.find("#cred-anthropic").get_attribute("value"), "", "the key input is cleared")
    t.ok(key not in driver.page_source, "the page never holds the key's value")
    t.ok(not p.finds("#cred-empty"), "the empty note is gone")

    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant bad"})
    t.eq(r.status, 400, "the API refuses a key with a space")
    message = r.json["error"]["message"]
    p.clear_toasts()
    set_value(p.find("#cred-anthropic"), "sk-ant bad")
    p.find("#cred-anthropic-save").click()
    t.ok(p.wait(lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "#toasts .toast-error")
                           if message in e.text]), "a key with a space shows the server's message", p.state())
    t.eq(p.attr("#cred-anthropic", "aria-invalid"), "true", "... and marks the input invalid")

    p.clear_toasts()
    p.find("#cred-delete-anthropic_api_key").click()
    t.ok(p.wait_css("#cred-delete-anthropic_api_key-yes") and p.finds(row),
         "Remove asks to confirm first; the row stays", p.text("#cred-card"))
    p.find("#cred-delete-anthropic_api_key-no").click()
    t.ok(p.wait_css("#cred-delete-anthropic_api_key") and p.finds(row), "No keeps the key")
    p.find("#cred-delete-anthropic_api_key").click()
    p.wait_css("#cred-delete-anthropic_api_key-yes")
    p.find("#cred-delete-anthropic_api_key-yes").click()
    t.ok(p.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, row)
                and d.find_element(By.ID, "cred-empty").is_displayed()),
         "Yes removes the key: the row disappears", p.text("#cred-card"))
    t.eq(c.get("/api/secrets").json["secrets"], [], "the API holds no secret any more")

    # --- settings: Sessions lists this browser and another, and signs the other out ---
    other = s.client()
    other.session()
    t.ok(other.get("/api/jobs").status == 200, "a second client has a session of the local user")
    driver.refresh()
    p.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#main .screen"))
    t.ok(p.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sessions-list .session-row")) >= 2),
         "the Sessions card lists this browser and the other client", p.text("#sessions-card"))
    t.ok(p.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#sessions-list .session-row[data-current="true"]')) == 1
                and "This browser" in d.find_element(By.CSS_SELECTOR, '.session-row[data-current="true"]').text),
         "exactly one row is marked as this browser", p.text("#sessions-card"))
    t.ok("anyontest" in (p.text("#sessions-card") or ""), "the other session shows its browser", p.text("#sessions-card"))
    p.clear_toasts()
    p.find("#sessions-revoke-others").click()
    t.ok(p.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sessions-list .session-row")) == 1),
         "Sign out all other sessions leaves only this one", p.text("#sessions-card"))
    old_cookie = dict(other.cookies)
    r = other.get("/api/session")
    t.ok(r.status == 200 and other.cookies.get("anyon_session") != old_cookie.get("anyon_session"),
         "the other client's session is gone (it is given a new one)", r)

    # --- no errors in the console, apart from the 400s we asked for ---
    def expected(e):
        return (e.get("source") == "network" and "status of 400" in e["message"]
                and ("/api/jobs " in e["message"] or "/api/secrets/anthropic_api_key " in e["message"]))
    severe = [e for e in p.logs() if e["level"] == "SEVERE" and not expected(e)]
    t.ok(not severe, "no errors in the browser console", "\n".join(e["message"] for e in severe))
    t.ok(any(expected(e) for e in p.logs()), "the console log was captured (the refused POST is in it)")

    # --- api.js: a stale CSRF token is renewed and the write retried once ---
    # (last, because the refused first try is a console error of its own)
    r = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        (async () => {
            const m = await import("/js/api.js");
            const s = await m.session();
            s.csrf_token = "0".repeat(64);
            const seen = [];
            window.addEventListener("anyon:api-error", (e) => seen.push(e.detail.code));
            const { job } = await m.api.post("/api/jobs", { kind: "echo", args: { lines: ["csrf"] } });
            let code = null;
            try {
                await m.api.post("/api/jobs/" + job.id + "/nope", undefined, { toast: false });
            } catch (e) {
                code = e instanceof m.ApiError ? e.status + " " + e.code : String(e);
            }
            done({ id: job.id, code, seen });
        })().catch((e) => done({ error: String(e) }));
    """)
    t.ok(isinstance(r, dict) and isinstance(r.get("id"), int),
         "a write with a stale CSRF token succeeds after one renewal", r)
    t.ok(isinstance(r, dict) and r.get("code") == "404 not_found" and r.get("seen") == ["not_found"],
         "a failed call throws ApiError and fires anyon:api-error with its code", r)
t.done()
