#!/usr/bin/env python3
"""Browser: the web shell in a real headless Chromium against the real stack.

The page loads and shows the local session, local mode and a healthy dot; the
session cookie is HttpOnly; an echo job run from the Jobs screen streams its
lines (as text, never markup) into the output and ends succeeded; a running
job can be cancelled; a bad input shows the server's error message in a
toast; the browser console shows no errors. Chromium, chromedriver and
Debian's python3-selenium are required: without them this test fails.

The output view: stdout, stderr and anyon's system lines are spans of their
own stream; control sequences are removed; a megabyte of output is trimmed
in the page (with a note) and the view follows the tail unless scrolled up.
The container form: shown to the local user, splits the command as it says,
offers the stored credentials, and runs a real container job (stdout and
stderr apart, exit status, container facts, Cancel).
"""
import json, os, re, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from browser import By, Page as BasePage, Select, WebDriverException, driven, require_chromium, set_value
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


    def stream_text(self, stream):
        """The output's text of one stream (textContent: all of it)."""
        return "".join(e.get_attribute("textContent") for e in
                       self.finds('#job-output [data-stream="%s"]' % stream))

    def new_job(self, old_id):
        """Waits for the URL to name a job other than old_id; returns its id."""
        ok = self.wait(lambda d: re.search(r"#/jobs/\d+$", d.current_url)
                       and d.current_url.rsplit("/", 1)[1] != old_id)
        return self.d.current_url.rsplit("/", 1)[1] if ok else None


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

    c = s.client()
    c.session()

    # --- the output view: streams apart, control sequences removed ---
    t.ok("cancel" in p.stream_text("system").lower(), "the cancel note is a system line", p.stream_text("system"))
    t.ok("slow 0" in p.stream_text("stdout") and "cancel" not in p.stream_text("stdout").lower(),
         "the job's own lines are stdout", p.stream_text("stdout"))
    Select(p.find("#job-stream")).select_by_value("stderr")
    # (an escape character cannot be typed: put it in as a script would)
    driver.execute_script("arguments[0].value = arguments[1]", p.find("#job-lines"),
                          "err one\n\x1b[31mred\x1b[0m text")
    set_value(p.find("#job-delay"), "0")
    set_value(p.find("#job-exit"), "4")
    prev = driver.current_url.rsplit("/", 1)[1]
    p.find("#job-submit").click()
    job_id = p.new_job(prev)
    t.ok(job_id and p.wait(lambda d: d.find_element(By.ID, "job-state").text == "failed", timeout=20),
         "an echo job on stderr exiting 4 ends failed", p.state())
    t.ok(p.wait(lambda d: p.stream_text("stderr") == "err one\nred text\n"),
         "its lines are stderr, the colour codes removed", p.stream_text("stderr"))
    t.eq(p.stream_text("stdout"), "", "nothing on stdout")
    t.eq(p.text("#job-exit-code"), "exit 4", "the exit status is shown")
    t.eq(p.attr("#job-exit-code", "data-ok"), "false", "... marked as a failure")
    t.ok(not p.shown("#job-container") and not p.shown("#job-oom"), "an echo job has no container line")
    Select(p.find("#job-stream")).select_by_value("stdout")
    set_value(p.find("#job-exit"), "0")

    # --- a megabyte of output: the page keeps the tail, says so, follows it ---
    big = ["big %04d " % i + "x" * 1000 for i in range(1000)]
    r = c.post("/api/jobs", {"kind": "echo", "args": {"lines": big, "delay_ms": 0}})
    t.eq(r.status, 201, "an echo job of 1000 lines of 1 KB is made")
    big_id = str(r.json["job"]["id"])
    driver.get(s.url + "/#/jobs/" + big_id)
    tail = lambda d: d.execute_script("return document.getElementById('job-output').textContent")
    t.ok(p.wait(lambda d: d.find_element(By.ID, "job-state").text == "succeeded"
                and tail(d).endswith(big[-1] + "\n"), timeout=30),
         "it succeeds and the page holds the tail, to the last line", p.attr("#job-state", "textContent"))
    kept = tail(driver)
    t.ok(len(kept) <= 512 * 1024, "at most 512 KiB of it stays in the page", len(kept))
    t.ok(p.shown("#job-output-trimmed") and "dropped" in p.text("#job-output-trimmed"),
         "a note says earlier output was dropped from the page", p.text("#job-output-trimmed"))
    t.ok(driver.execute_script("""const o = document.getElementById('job-output');
        return o.scrollHeight - o.scrollTop - o.clientHeight < 24;"""), "the view is at the tail")
    t.ok(not p.shown("#job-output-follow"), "no Follow button while following")

    # The tail-following itself, on the module with a small cap and
    # markup, escape sequences and scrolling of our own.
    r = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import("/js/terminal.js").then(async (m) => {
            const host = document.createElement("div");
            document.getElementById("main").append(host);
            const term = m.terminal({ id: "t9000-term", label: "test", cap: 500 });
            host.append(term.element);
            const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
            for (let i = 0; i < 100; i++)
                term.write([{ stream: i % 2 ? "stderr" : "stdout", data: "line " + i + "\\n" }]);
            await frame();
            const pre = term.pre, res = {};
            res.atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
            pre.scrollTop = 0;
            pre.dispatchEvent(new Event("scroll"));
            await frame();
            term.write([{ stream: "stdout", data: "<img src=x onerror=alert(1)>\\x1b]0;title\\x07\\x1b[1" },
                        { stream: "stdout", data: "mbold\\x1b[0m\\r\\n" }]);
            await frame();
            res.stayed = pre.scrollTop === 0;
            res.follow = !document.getElementById("t9000-term-follow").hidden;
            res.imgs = pre.querySelectorAll("img").length;
            res.text = pre.textContent.slice(-40);
            res.kept = pre.textContent.length;
            res.trimmed = document.getElementById("t9000-term-trimmed").textContent;
            document.getElementById("t9000-term-follow").click();
            await frame();
            res.back = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24 && term.following;
            res.followHidden = document.getElementById("t9000-term-follow").hidden;
            host.remove();
            done(res);
        }).catch((e) => done({ error: String(e) }));
    """)
    t.ok(r.get("atEnd"), "the view follows the tail as output comes", r)
    t.ok(r.get("stayed") and r.get("follow"), "scrolled up, new output leaves the view be and offers Follow", r)
    t.ok(r.get("imgs") == 0 and r.get("text", "").endswith("<img src=x onerror=alert(1)>bold\n"),
         "markup stays text; a title and a split bold sequence are removed", r)
    t.ok(r.get("kept", 1e9) <= 500 and "dropped" in r.get("trimmed", ""), "the cap holds, with its note", r)
    t.ok(r.get("back") and r.get("followHidden"), "Follow output jumps to the tail and follows again", r)

    # --- the container form: the local user may run a command in a container ---
    p.find('[data-testid="nav-jobs"]').click()
    t.ok(p.wait_css("#container-form"), "the local user sees the container form", p.state())
    set_value(p.find("#container-command"), "echo 'a b' | tr a-z A-Z")
    t.eq(p.text("#container-argv"), "argv: " + json.dumps(["sh", "-c", "echo 'a b' | tr a-z A-Z"],
                                                         separators=(",", ":")),
         "a shell command runs as sh -c, and the form says so")
    t.ok("sh -c" in (p.text("#container-command-hint") or ""), "... in its hint", p.text("#container-command-hint"))
    Select(p.find("#container-split")).select_by_value("lines")
    set_value(p.find("#container-command"), "printf\n%s|\nfirst arg\n\n$HOME\n\n")
    t.eq(p.text("#container-argv"), "argv: " + json.dumps(["printf", "%s|", "first arg", "", "$HOME"],
                                                         separators=(",", ":")),
         "one argument per line, as written, trailing empty lines dropped")
    t.ok(p.wait_css("#container-secrets-none"), "with no credential stored the form says where to add one",
         p.text("#container-secrets"))
    r = c.request("PUT", "/api/secrets/anthropic_api_key", {"value": "sk-ant-t9000-" + os.urandom(8).hex()})
    t.eq(r.status, 200, "an Anthropic key is stored through the API")
    driver.refresh()
    t.ok(p.wait_css("#container-secret-anthropic_api_key"), "the form offers the stored key", p.text("#container-secrets"))
    t.ok(not p.find("#container-secret-anthropic_api_key").is_selected(), "... not ticked by default")

    set_value(p.find("#container-command"), "echo out-1; echo err-1 >&2; sleep 0.5; echo out-2; exit 3")
    p.find("#container-secret-anthropic_api_key").click()
    prev = driver.current_url.rsplit("/", 1)[-1]
    p.find("#container-submit").click()
    job_id = p.new_job(prev)
    t.ok(job_id, "Run in container opens the new job", p.state())
    r = c.get("/api/jobs/%s" % job_id)
    t.ok(r.status == 200 and r.json["job"]["kind"] == "container"
         and r.json["job"]["args"]["command"][:2] == ["sh", "-c"]
         and r.json["job"]["args"]["secrets"] == ["anthropic_api_key"],
         "the job is a container job with the command and the ticked key", r)
    t.ok(p.wait(lambda d: d.find_element(By.ID, "job-state").text == "failed", timeout=90),
         "the container job ends failed (exit 3)", p.state())
    t.eq(p.stream_text("stdout"), "out-1\nout-2\n", "stdout holds its lines")
    t.eq(p.stream_text("stderr"), "err-1\n", "stderr holds its own, apart")
    t.eq(p.text("#job-exit-code"), "exit 3", "the exit status is shown")
    t.ok(p.wait(lambda d: "Container" in d.find_element(By.ID, "job-container").text),
         "the container line is shown", p.text("#job-container"))
    t.ok(not p.shown("#job-oom"), "no OOM flag")

    set_value(p.find("#container-command"), "echo started; sleep 120; echo never")
    p.find("#container-secret-anthropic_api_key").click()  # untick
    prev = job_id
    p.find("#container-submit").click()
    job_id = p.new_job(prev)
    t.ok(job_id and p.wait(lambda d: "started" in p.stream_text("stdout")
                           and d.find_element(By.ID, "job-state").text == "running", timeout=90),
         "a long container job runs and streams", p.state())
    p.find("#job-cancel").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "job-state").text == "cancelled", timeout=30),
         "Cancel stops the container job", p.state())
    t.ok("never" not in p.stream_text("stdout"), "its output ends at the cancel", p.stream_text("stdout"))
    c.request("DELETE", "/api/secrets/anthropic_api_key")
    p.clear_toasts()

    # --- a bad input shows the server's message ---
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
