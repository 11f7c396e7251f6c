#!/usr/bin/env python3
"""Browser: GitHub in the web UI, in a real headless Chromium against the
real stack and the GitHub stand-in (t/lib/fakegithub.py).

Cloud mode: the sign-in screen is all there is; "Sign in with GitHub" shows
the stand-in's user code and a link to its device page, which a second tab
opens; cancelling there ends in "denied" with the server's message and a
"Start again" that gets a new code; approving there signs the page in by
itself (polling), with the login in the header. The import dialog lists,
pages and searches the repositories (a private badge), imports one onto the
board; a repository already imported says so on its row (known ones at once,
a 409 inline). A token revoked on GitHub makes the sign-in-again dialog open
by itself (after an API call, and after a reload from the session) and the
Integrations card show "invalid"; signing in again from the card, then
Disconnect and Sign out work. A user who is no admin sees no container
form on the Jobs screen; a repository search over more than the 1000
repositories the server walks says it was cut short (#import-truncated).
Local mode: no import button, the board's placeholder, the GitHub card
"Not connected", whose Connect links the local user to a GitHub login. No unexpected console errors.
Chromium, chromedriver and Debian's python3-selenium are required.
"""
import os, re, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from browser import By, Keys, Page as BasePage, Select, WebDriverException, driven, require_chromium, set_value
from anyontest import TAP, Stack
from fakegithub import FakeGitHub
from ghsignin import CLIENT_ID, stack_env, sign_in

t = TAP()
require_chromium(t)

SHOTS = os.environ.get("ANYON_T9100_SHOTS")  # a directory: keep screenshots there
LOGIN = "octocat"


class Page(BasePage):
    def rows(self):
        return [e.get_attribute("data-full-name") for e in self.finds("#import-list .repo-row[data-full-name]")]

    def row(self, full):
        return self.find('#import-list .repo-row[data-full-name="%s"]' % full)

    def shot(self, name):
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            self.d.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def state(self):
        return "url: %s\ntoasts: %r\ndevice-status: %r\nimport-status: %r\nmain: %r" % (
            self.d.current_url, self.texts("#toasts .toast"),
            self.text("#device-status"), self.text("#import-status"), (self.text("#main") or "")[:400])


def approve_in_tab(p, code, action):
    """Follows #device-link into a new tab, enters the code on the stand-in's
    page and clicks action (authorize|cancel); returns the page's message."""
    main = p.d.current_window_handle
    before = set(p.d.window_handles)
    p.find("#device-link").click()
    new = p.wait(lambda d: set(d.window_handles) - before)
    if not new:
        return None
    p.d.switch_to.window(new.pop())
    try:
        if not p.wait(lambda d: d.find_element(By.ID, "user_code")):
            return None
        set_value(p.find("#user_code"), code)
        Select(p.find("#login")).select_by_value(LOGIN)
        p.find("#" + action).click()
        p.wait(lambda d: d.find_element(By.ID, "message").text)
        return p.text("#message")
    finally:
        p.d.close()
        p.d.switch_to.window(main)


def run_cloud(p, gh, s):
    d = p.d
    # --- the sign-in screen is all there is ---
    d.get(s.url + "/")
    t.ok(p.wait_css("#signin-button"), "cloud mode without a user shows the sign-in screen", p.state())
    t.ok("did not start" in (p.text("#signin-code-warning") or "") or
         "started here yourself" in (p.text("#signin-code-warning") or ""),
         "the sign-in screen says to enter only codes you started yourself", p.text("#signin-code-warning"))
    t.eq(d.execute_script("return document.body.dataset.auth"), "signed-out", "the page knows it is signed out")
    t.ok(not p.shown('[data-testid="nav-board"]'), "the navigation is hidden until sign-in")
    t.eq(p.text("#mode-badge"), "cloud", "#mode-badge says cloud")
    p.shot("01-signin")

    # --- the device flow: code, link, denied, start again ---
    p.find("#signin-button").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "device-modal").get_attribute("open") is not None
                and d.find_element(By.ID, "device-user-code").text),
         "Sign in opens #device-modal with a user code", p.state())
    code = p.text("#device-user-code")
    t.eq(code, gh.device()["user_code"], "the code shown is the stand-in's device code")
    link = p.find("#device-link")
    t.eq(link.get_attribute("href"), gh.url + "/login/device", "#device-link goes to the verification page")
    t.ok(link.get_attribute("target") == "_blank" and "noopener" in (link.get_attribute("rel") or ""),
         "the link opens a new tab with rel=noopener", link.get_attribute("rel"))
    t.eq(p.attr("#device-status", "data-state"), "pending", "#device-status is pending")
    p.find("#device-copy").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "device-copy").text != "Copy"),
         "the copy button reports what it did", p.text("#device-copy"))
    p.shot("02-device")

    msg = approve_in_tab(p, code, "cancel")
    t.ok(msg and "cancelled" in msg.lower(), "the stand-in's page cancels the code (second tab)", msg)
    t.ok(p.wait(lambda d: d.find_element(By.ID, "device-status").get_attribute("data-state") == "denied", 40),
         "polling ends in denied by itself", p.state())
    t.ok("cancelled on GitHub" in (p.text("#device-status") or ""), "the server's message is shown",
         p.text("#device-status"))
    t.ok(p.shown("#device-restart"), "a Start again button is offered")
    p.shot("03-denied")
    p.find("#device-restart").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "device-user-code").text not in ("", code)),
         "Start again gets a new code", p.state())
    code = p.text("#device-user-code")
    t.eq(code, gh.device()["user_code"], "the new code is the stand-in's newest")

    msg = approve_in_tab(p, code, "authorize")
    t.ok(msg and "all set" in msg, "the stand-in's page approves the code (second tab)", msg)
    # Device-flow polling takes a few intervals; sanitizer builds on a busy
    # machine are slow: give it time (the wait returns as soon as it is true).
    t.ok(p.wait(lambda d: d.find_element(By.ID, "session-user").text == LOGIN, 40),
         "the page signs in by itself: the header shows the login", p.state())
    t.ok(p.wait(lambda d: not d.find_elements(By.ID, "device-modal") and d.current_url.endswith("#/board")
                and d.find_element(By.ID, "import-open")),
         "the modal closes and the board shows", p.state())
    t.ok(p.shown("#signout") and p.shown('[data-testid="nav-board"]'), "sign-out and navigation are shown")
    t.ok(p.text("#session-avatar"), "the header shows an avatar (initials: the stand-in's avatar is not GitHub's host)")
    r = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import("/js/auth.js").then((m) => done([
            "https://avatars.githubusercontent.com/u/1?v=4", "http://avatars.githubusercontent.com/u/1",
            "https://avatars.githubusercontent.com.evil.example/u/1", "http://127.0.0.1/avatars/u/1",
            "javascript:alert(1)", ""].map((u) => m.avatarUrl({ login: "x", avatar_url: u }))));
    """)
    t.eq(r, ["https://avatars.githubusercontent.com/u/1?v=4", None, None, None, None, None],
         "an avatar is shown only from https://avatars.githubusercontent.com")
    t.ok(p.wait_css("#board-empty"), "the board says there are no projects yet", p.state())
    p.shot("04-board-empty")

    # --- the container form is for admins and the local user only ---
    p.find('[data-testid="nav-jobs"]').click()
    t.ok(p.wait_css("#job-form"), "a signed-in user who is no admin sees the Jobs screen", p.state())
    t.ok(not p.finds("#container-form"), "... but no container form", p.state())
    c = s.client()
    r = sign_in(c, gh, LOGIN)
    t.ok(r.status == 200 and r.json["status"] == "complete", "(the same user signs in through the API)", r)
    r = c.get("/api/session")
    t.ok(r.status == 200 and r.json["user"]["login"] == LOGIN and r.json["user"]["is_admin"] is False,
         "... and is not an admin", r)
    r = c.post("/api/jobs", {"kind": "container", "args": {"command": ["true"]}})
    t.ok(r.status == 403 and r.error_code() == "forbidden", "the API refuses them a container job", r)
    p.find('[data-testid="nav-board"]').click()
    p.wait_css("#import-open")

    # --- import dialog: pages, search, private badge, import ---
    p.find("#import-open").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "import-dialog").get_attribute("open") is not None
                and len(p.rows()) == 8), "#import-dialog lists the first 8 repositories", p.state())
    first = p.rows()
    t.ok(p.find("#import-next").is_enabled() and not p.find("#import-prev").is_enabled(),
         "page 1: next enabled, prev disabled")
    t.eq(d.execute_script("return document.activeElement.id"), "import-search", "focus starts in the search box")
    p.shot("05-import")
    p.find("#import-next").click()
    t.ok(p.wait(lambda d: p.rows() and p.rows()[0] not in first and not p.find("#import-next").is_enabled()),
         "next shows page 2, the last", p.rows())
    t.eq(sorted(first + p.rows()), sorted("%s/%s" % (LOGIN, n) for n in REPOS), "every repository listed once")
    p.find("#import-prev").click()
    t.ok(p.wait(lambda d: p.rows() == first), "prev goes back to page 1")

    set_value(p.find("#import-search"), "secret")
    t.ok(p.wait(lambda d: p.rows() == [LOGIN + "/secret-plans"]), "the search finds one repository", p.rows())
    row = p.row(LOGIN + "/secret-plans")
    t.ok("private" in row.find_element(By.CSS_SELECTOR, ".tag-private").text, "it carries a private badge")
    p.shot("06-search")
    row.find_element(By.CSS_SELECTOR, ".btn-import").click()
    t.ok(p.wait(lambda d: p.row(LOGIN + "/secret-plans").get_attribute("data-state") == "imported"),
         "Import marks the row imported", p.state())
    p.find("#import-search").send_keys(Keys.ESCAPE)
    t.ok(p.wait(lambda d: not d.find_elements(By.ID, "import-dialog")), "Escape closes the dialog")
    t.eq(d.execute_script("return document.activeElement.id"), "import-open", "focus returns to the button")
    sel = '#project-list [data-full-name="%s/secret-plans"]' % LOGIN
    card = p.wait(lambda d: d.find_elements(By.CSS_SELECTOR, sel))
    t.ok(card, "the board shows the imported project", p.state())

    # The board reloads on the import's project.added event: read the card
    # afresh each time rather than hold an element it may replace.
    def card_text(d):
        try:
            return " ".join(x.text for x in d.find_elements(By.CSS_SELECTOR, sel))
        except WebDriverException:   # the element was replaced meanwhile
            return ""
    text = p.wait(lambda d: (lambda x: x if "private" in x and "main" in x and "Top secret" in x else None)(card_text(d)))
    t.ok(text, "the card has the private badge, default branch and description", card_text(d))

    # --- already imported: known ones at once, a 409 inline ---
    c = s.client()
    r = sign_in(c, gh, LOGIN)
    t.ok(r.status == 200 and r.json["status"] == "complete", "a second session of the same user signs in", r)
    p.find("#import-open").click()
    set_value(p.find("#import-search"), "secret")
    t.ok(p.wait(lambda d: p.rows() == [LOGIN + "/secret-plans"]
                and "already imported" in p.row(LOGIN + "/secret-plans").text
                and not p.row(LOGIN + "/secret-plans").find_element(By.CSS_SELECTOR, ".btn-import").is_enabled()),
         "a project on the board is shown as already imported", p.state())
    r = c.post("/api/projects/from-github", {"full_name": LOGIN + "/hello-world"})
    t.eq(r.status, 201, "the other session imports hello-world behind the page's back")
    set_value(p.find("#import-search"), "hello")
    t.ok(p.wait(lambda d: p.rows() == [LOGIN + "/hello-world"]), "the search finds hello-world", p.rows())
    p.row(LOGIN + "/hello-world").find_element(By.CSS_SELECTOR, ".btn-import").click()
    t.ok(p.wait(lambda d: "already imported" in p.row(LOGIN + "/hello-world").text),
         "importing it again says already imported on its row (409)", p.state())
    t.ok(not p.finds("#toasts .toast-error"), "... and not in an error toast", p.state())
    p.shot("07-already")
    p.find(".modal-close").click()
    t.ok(p.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#project-list [data-full-name]")) == 2),
         "the board refreshed: both projects", p.text("#project-list"))
    p.shot("08-board")

    # --- a revoked token: the sign-in-again dialog opens by itself ---
    gh.revoke_user(LOGIN)
    p.find("#import-open").click()
    t.ok(p.wait(lambda d: d.find_element(By.CSS_SELECTOR, '#device-modal[data-purpose="relogin"]')
                .get_attribute("open") is not None),
         "GitHub refusing the token opens the sign-in-again dialog by itself", p.state())
    # textContent: the sign-in-again dialog sits on top, and .text reports
    # only what Selenium judges visible.
    t.ok(p.wait(lambda d: "no longer accepts" in
                (d.find_element(By.ID, "import-status").get_attribute("textContent") or ""), 20),
         "the import dialog says why it has no list", p.state())
    p.shot("09-relogin")
    d.find_element(By.ID, "device-cancel").click()
    t.ok(p.wait(lambda d: not d.find_elements(By.ID, "device-modal")), "Not now closes it")
    p.find("#import-search").send_keys(Keys.ESCAPE)
    p.wait(lambda d: not d.find_elements(By.ID, "import-dialog"))
    d.refresh()
    t.ok(p.wait(lambda d: d.find_element(By.CSS_SELECTOR, '#device-modal[data-purpose="relogin"]')),
         "after a reload, the session's token_invalid opens it by itself too", p.state())
    d.find_element(By.ID, "device-cancel").click()
    p.wait(lambda d: not d.find_elements(By.ID, "device-modal"))
    p.find('[data-testid="nav-settings"]').click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "gh-card-state").get_attribute("data-state") == "invalid"),
         "the Integrations card shows the invalid state", p.state())
    t.ok("Token invalid" in (p.text("#gh-card-state") or ""), "... in words", p.text("#gh-card-state"))
    p.shot("10-settings-invalid")

    # --- sign in again from the card ---
    p.find("#gh-connect").click()
    t.ok(p.wait_css("#device-begin"), "the card's Sign in again opens the dialog", p.state())
    p.find("#device-begin").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "device-user-code").text), "it shows a code", p.state())
    gh.approve(p.text("#device-user-code"), LOGIN)
    t.ok(p.wait(lambda d: d.find_element(By.ID, "gh-card-state").get_attribute("data-state") == "connected", 40),
         "after approval the card says connected", p.state())
    t.eq(p.text("#gh-card-state"), "Connected as " + LOGIN, "... as the login")
    t.eq(p.text("#session-user"), LOGIN, "still signed in as the same user")
    p.shot("11-settings-connected")

    # --- a search that stopped early says so ---
    for i in range(1000):
        gh.add_repo(LOGIN, "bulk-%04d" % i)
    p.find('[data-testid="nav-board"]').click()
    p.wait_css("#import-open")
    p.find("#import-open").click()
    t.ok(p.wait(lambda d: len(p.rows()) == 8), "with 1011 repositories the dialog lists the newest", p.state())
    t.ok(not p.shown("#import-truncated"), "a listing without a search is not said to be cut short")
    set_value(p.find("#import-search"), "secret")
    t.ok(p.wait(lambda d: p.shown("#import-truncated")
                and "1000 most recently updated" in p.text("#import-truncated"), 30),
         "a search over more than 1000 repositories says it looked at the newest 1000 only", p.state())
    t.ok(p.rows() == [] and "No repository matches" in (p.text("#import-status") or ""),
         "(the old secret-plans is beyond them)", p.state())
    set_value(p.find("#import-search"), "bulk-0999")
    t.ok(p.wait(lambda d: p.rows() == [LOGIN + "/bulk-0999"]), "a recent one is found", p.rows())
    t.ok(p.shown("#import-truncated"), "... and the note stays")
    p.shot("12-truncated")
    p.find("#import-search").send_keys(Keys.ESCAPE)
    p.wait(lambda d: not d.find_elements(By.ID, "import-dialog"))
    p.find('[data-testid="nav-settings"]').click()
    # Settled: the Credentials card has its list (a request still on its way
    # at the sign-out below would be a 401 in the console).
    t.ok(p.wait(lambda d: p.shown("#gh-disconnect") and d.find_elements(By.CSS_SELECTOR, "#cred-list > li")),
         "back on Settings, the cards have loaded", p.state())

    # --- disconnect, sign out ---
    p.find("#gh-disconnect").click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "gh-card-state").get_attribute("data-state") == "disconnected"),
         "Disconnect: the card says not connected", p.state())
    t.ok(p.shown("#gh-connect") and not p.shown("#gh-disconnect"), "Connect offered, Disconnect gone")
    # The Credentials card reloads on the session change: let that finish
    # (the GitHub token gone from its list) before signing out, or its
    # request may still be on its way and come back 401.
    t.ok(p.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#cred-list > li") and
                not d.find_elements(By.CSS_SELECTOR, '#cred-list > li[data-kind="github_token"]')),
         "the Credentials card no longer lists the GitHub token", p.state())
    # A background reload already on its way when the button is pressed
    # (the feed saw the disconnect's events late, on a loaded machine)
    # comes back 401: that is the sign-out working, not an error.
    signout_at = time.time() * 1000 - 50
    p.find("#signout").click()
    t.ok(p.wait_css("#signin-button"), "Sign out returns to the sign-in screen", p.state())
    t.ok(not p.shown("#signout") and not p.shown('[data-testid="nav-board"]'), "no sign-out or navigation then")
    t.ok(not p.finds("#signin-reason"), "a deliberate sign-out needs no explanation")
    r = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch("/api/session", { credentials: "same-origin" }).then((r) => r.json()).then((s) => done(s.user));
    """)
    t.eq(r, None, "the server agrees: no user")

    def expected(e):
        m = e["message"]
        if e.get("source") != "network":
            return False
        if m.startswith(gh.url + "/favicon.ico "):
            return True  # the stand-in's page, in the second tab
        if "status of 401" in m and e.get("timestamp", 0) >= signout_at and \
                re.search(r"/api/(secrets|events)[ ?]", m):
            return True  # on its way at the sign-out
        return ("/api/github/repositories" in m and "status of 401" in m) or \
               ("/api/projects/from-github" in m and "status of 409" in m)
    severe = [e for e in p.logs() if e["level"] == "SEVERE" and not expected(e)]
    t.ok(not severe, "no unexpected errors in the browser console", "\n".join(e["message"] for e in severe))
    t.ok(any(expected(e) for e in p.logs()), "the console log was captured (the 401 and 409 are in it)")


def run_local(p, gh, s):
    d = p.d
    d.get(s.url + "/")
    t.ok(p.wait(lambda d: d.find_element(By.ID, "session-user").text == "local"), "local mode: the local user")
    t.ok(p.wait(lambda d: "GitHub import" in d.find_element(By.ID, "main").text),
         "local mode: the board keeps its placeholder", p.state())
    t.ok(not p.finds("#import-open"), "local mode: no import button")
    t.ok(not p.shown("#signout"), "local mode: no sign-out")
    p.find('[data-testid="nav-settings"]').click()
    t.ok(p.wait(lambda d: d.find_element(By.ID, "gh-card-state").get_attribute("data-state") == "disconnected"),
         "local mode: the GitHub card says not connected", p.state())
    t.eq(p.text("#gh-card-state"), "Not connected", "... in words")
    t.ok(p.shown("#gh-connect"), "local mode: the local user may connect GitHub")
    p.shot("13-local-settings")
    p.find("#gh-connect").click()
    t.ok(p.wait(lambda d: d.find_element(By.CSS_SELECTOR, '#device-modal[data-purpose="connect"]')
                and d.find_element(By.ID, "device-user-code").text), "Connect opens the device flow", p.state())
    gh.approve(p.text("#device-user-code"), LOGIN)
    t.ok(p.wait(lambda d: d.find_element(By.ID, "gh-card-state").text == "Connected as " + LOGIN, 40),
         "local mode: after approval the card says connected as the GitHub login", p.state())
    t.eq(p.text("#session-user"), "local", "local mode: still the local user")
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    t.ok(not severe, "local mode: no errors in the console", "\n".join(e["message"] for e in severe))


REPOS = ["widget-%02d" % i for i in range(9)] + ["secret-plans", "hello-world"]


def browse(stack, fn, *args):
    with driven(t, stack, Page, "t9100") as p:
        fn(p, *args, stack)


with FakeGitHub(client_id=CLIENT_ID, interval=1) as gh:
    repos = [{"name": n, "description": "Widget number %d" % i} for i, n in enumerate(REPOS[:9])]
    repos.append({"name": "secret-plans", "private": True, "description": "Top secret plans"})
    repos.append({"name": "hello-world", "description": "My first repository"})
    gh.add_user(LOGIN, "The Octocat", "octocat@example.com", repos=repos)
    with Stack(env=stack_env(gh, allowed="octocat, alice")) as s:
        browse(s, run_cloud, gh)

    local = stack_env(gh)
    del local["ANYON_CLOUD"]
    with Stack(env=local) as s:
        browse(s, run_local, gh)
t.done()
