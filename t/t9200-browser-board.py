#!/usr/bin/env python3
"""Browser: the board and a project's screen in headless Chromium (local mode).

A git repository made with real git (one commit on main) is added through
the board's "Add project" dialog (a non-repository and a refused URL first:
their errors sit next to the field the API names); its card opens the
project screen, whose columns are GET /api/meta's task_statuses in order.
Three tasks are created through the "New task" dialog (markup in a title
stays text; a description shows as an excerpt), moved with the keyboard
(Enter on a card's arrow buttons: up, down, right, left; focus stays on
the button) and by drag and drop, each order checked through the API;
edited; deleted after a confirm (Cancel first keeps it). Changes made
through the API by the test (another session: create, move, delete) show
in the page within 3 s through the change feed. A reload of an unchanged
board is revalidated (If-None-Match: a 304 in nginx's access log), a
changed one comes fresh (200). The settings are saved
(a bad base branch is refused next to its field) and read back through
the API; the project is removed after a confirm, and the page goes back to
the board. No unexpected errors in the browser console.

Drag and drop: driven for real with selenium's ActionChains (press on a
card, move to the top edge of another card or the bottom of a column,
release: this chromedriver fires HTML5 dragstart/dragover/drop). One more
drop, into an empty column, is driven by synthetic DragEvents (with a real
DataTransfer) dispatched with execute_script, to also see the drop marker
the page draws mid-drag; the page's own handlers compute the anchor.
"""
import os, re, shutil, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from browser import ActionChains, By, Keys, Page as BasePage, Select, WebDriverException, driven, require_chromium, set_value
from anyontest import TAP, Stack, wait_until
from gitrepo import Git

t = TAP()
require_chromium(t)

tmp = tempfile.mkdtemp(prefix="anyon-t9200-")
git = Git(tmp)
repo = git.make_repo("widget")
plain = os.path.join(tmp, "plain")
os.mkdir(plain)

DRAG = """
const [srcTitle, status, beforeTitle] = arguments;
const byTitle = (x) => [...document.querySelectorAll("#kanban .task-card")]
    .find((c) => c.querySelector(".task-title").textContent === x) || null;
const src = byTitle(srcTitle);
const target = document.querySelector(`#kanban .column[data-status="${status}"]`);
const before = beforeTitle ? byTitle(beforeTitle) : null;
if (!src || !target || (beforeTitle && !before))
    return null;
const dt = new DataTransfer();
const fire = (node, type, y) => node.dispatchEvent(new DragEvent(type,
    { bubbles: true, cancelable: true, dataTransfer: dt, clientX: 10, clientY: y }));
const s = src.getBoundingClientRect();
fire(src, "dragstart", s.top + 4);
let y, node;
if (before) {
    const b = before.getBoundingClientRect();
    y = b.top + 2; node = before;
} else {
    const c = target.getBoundingClientRect();
    y = c.bottom - 3; node = target;
}
fire(node, "dragenter", y);
fire(node, "dragover", y);
const marked = !!document.querySelector(before ? ".task-card.drop-before" : ".task-list.drop-end");
const taken = !fire(node, "drop", y);
fire(src, "dragend", y);
return { marked, taken };
"""


SHOTS = os.environ.get("ANYON_T9200_SHOTS")  # a directory: keep screenshots there


class Page(BasePage):
    def shot(self, name):
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            self.d.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def state(self):
        return "url: %s\ntoasts: %r\nkanban: %r\ndialog: %r" % (
            self.d.current_url, self.texts("#toasts .toast"), self.columns(),
            self.text("dialog[open]"))

    def columns(self):
        """{status: [titles]} as the page shows them."""
        try:
            return self.d.execute_script("""
                const out = {};
                for (const c of document.querySelectorAll('#kanban .column'))
                    out[c.dataset.status] = [...c.querySelectorAll('.task-card .task-title')].map((n) => n.textContent);
                return out;""")
        except WebDriverException:
            return None

    def card(self, title):
        for e in self.finds("#kanban .task-card"):
            try:
                if e.find_element(By.CSS_SELECTOR, ".task-title").text == title:
                    return e
            except WebDriverException:
                pass
        return None

    def button(self, title, sel):
        c = self.card(title)
        return c.find_element(By.CSS_SELECTOR, sel) if c else None

    def disabled(self, title, sel):
        return self.d.execute_script("""
            for (const c of document.querySelectorAll('#kanban .task-card'))
                if (c.querySelector('.task-title').textContent === arguments[0])
                    return c.querySelector(arguments[1]).disabled;
            return null;""", title, sel)

    def press(self, title, sel, key=Keys.ENTER):
        """Sends key to a card's button; the board may be redrawn under
        us (a stale element raises before anything is sent): try again."""
        for _ in range(20):
            try:
                self.button(title, sel).send_keys(key)
                return True
            except (WebDriverException, AttributeError):
                time.sleep(0.1)
        return False

    def click(self, title, sel):
        err = None
        for _ in range(20):
            try:
                self.button(title, sel).click()
                return True
            except (WebDriverException, AttributeError) as e:
                err = e
                time.sleep(0.1)
        t.diag("cannot click %s of %r: %s" % (sel, title, str(err).splitlines()[0]))
        return False

    def focused(self):
        """(task id, data-move or data-action) of the focused element."""
        return self.d.execute_script("""
            const a = document.activeElement, c = a && a.closest('.task-card');
            return c ? [c.dataset.taskId, a.dataset.move || a.dataset.action || null] : null;""")

    def clear_toasts(self):
        for b in self.finds("#toasts .toast-close"):
            try:
                b.click()
            except WebDriverException:
                pass
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "#toasts .toast"))


with Stack() as s, driven(t, s, Page, "t9200") as p:
    d = p.d
    c = s.client()
    c.session()
    meta = c.get("/api/meta").json
    statuses = meta["task_statuses"]
    t.eq(meta["mode"], "local", "the stack runs in local mode")

    def api_columns(pid):
        r = c.get("/api/projects/%s/tasks" % pid)
        out = {st: [] for st in statuses}
        for x in r.json["tasks"]:
            out[x["status"]].append(x["title"])
        return out

    def cols(**kw):
        """The expected {status: titles}: every status, empty unless given."""
        out = {st: [] for st in statuses}
        out.update(kw)
        return out

    # --- the board, local mode: an Add project button ---
    d.get(s.url + "/")
    t.ok(p.wait_css("#board-empty"), "the board says there are no projects yet", p.state())
    t.ok(p.shown("#project-add") and not p.finds("#import-open"),
         "local mode: an Add project button, no GitHub import")

    # --- the dialog: errors next to the field the API names ---
    p.find("#project-add").click()
    t.ok(p.wait_css("#add-project-dialog"), "Add project opens its dialog")
    t.eq(d.execute_script("return document.activeElement.id"), "add-project-location",
         "focus is in the repository field")
    set_value(p.find("#add-project-location"), plain)
    p.find("#add-project-submit").click()
    t.ok(p.wait(lambda d: p.text("#add-project-location-error")), "a plain directory is refused", p.state())
    t.ok("repository" in (p.text("#add-project-location-error") or "").lower()
         and p.attr("#add-project-location", "aria-invalid") == "true",
         "... the error is next to the path field, which is marked invalid", p.text("#add-project-location-error"))
    t.ok(not p.shown("#add-project-error"), "... and not in the form's general error")
    p.shot("01-add-project")
    p.find("#add-project-source-url").click()
    set_value(p.find("#add-project-location"), "ssh://git.example.com/x.git")
    t.eq(p.attr("#add-project-location", "aria-invalid"), None, "typing clears the error")
    p.find("#add-project-submit").click()
    t.ok(p.wait(lambda d: p.text("#add-project-location-error")
                and p.attr("#add-project-location", "aria-invalid") == "true"),
         "an ssh:// URL is refused next to the field (error.field url)", p.state())
    p.find("#add-project-source-path").click()
    set_value(p.find("#add-project-location"), repo)
    p.find("#add-project-submit").click()
    t.ok(p.wait(lambda d: "#/project/" in d.current_url and not d.find_elements(By.ID, "add-project-dialog")),
         "adding the repository closes the dialog and opens its project", p.state())
    pid = d.current_url.rsplit("/", 1)[1]
    r = c.get("/api/projects/" + pid)
    t.ok(r.status == 200 and r.json["project"]["location"] == os.path.realpath(repo)
         and r.json["project"]["base_branch"] == "main" and r.json["project"]["name"] == "widget",
         "the API has the project: its path, base branch main, name widget", r.json)

    # --- the board's card opens the project ---
    t.ok(p.wait(lambda d: p.text("#project-title") == "widget"), "the project screen shows its name", p.state())
    p.find("#back-to-board").click()
    card = p.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#project-list [data-project-id="%s"]' % pid))
    t.ok(card and "widget" in card[0].text and "main" in card[0].text,
         "the board lists the project's card (name, branch)", p.state())
    p.shot("02-board")
    link = p.find('#project-list [data-project-id="%s"] .project-link' % pid)
    t.eq(link.get_attribute("href").rsplit("#", 1)[1], "/project/" + pid,
         "the card's link goes to #/project/<id>")
    link.send_keys(Keys.ENTER)
    t.ok(p.wait(lambda d: d.current_url.endswith("#/project/" + pid) and p.columns() == cols()),
         "Enter on the card's link opens the project: an empty board", p.state())

    # --- columns come from GET /api/meta ---
    t.eq(d.execute_script("return [...document.querySelectorAll('#kanban .column')].map((c) => c.dataset.status)"),
         statuses, "one column per task status, in meta's order")
    t.eq(p.attr('[data-testid="nav-board"]', "aria-current"), "page", "the Board link stays current")

    # --- three tasks through the dialog ---
    def new_task(title, desc=""):
        p.find("#task-new").click()
        p.wait_css("#task-dialog")
        set_value(p.find("#task-title"), title)
        if desc:
            p.find("#task-description").send_keys(desc)
        p.find("#task-submit").click()
        return p.wait(lambda d: not d.find_elements(By.ID, "task-dialog"))

    # an empty title is refused before it is sent, next to the field
    p.find("#task-new").click()
    p.wait_css("#task-dialog")
    p.find("#task-submit").click()
    t.ok(p.wait(lambda d: p.text("#task-title-error")) and p.attr("#task-title", "aria-invalid") == "true",
         "an empty title is marked next to the field", p.state())
    p.find("#task-title").send_keys(Keys.ESCAPE)
    t.ok(p.wait(lambda d: not d.find_elements(By.ID, "task-dialog")), "Escape closes the dialog")

    ok = new_task("Alpha", "First line of alpha.\nSecond line.") and new_task("Bravo <b>bold</b>") \
        and new_task("Charlie")
    B = "Bravo <b>bold</b>"
    t.ok(ok and p.wait(lambda d: p.columns() == cols(todo=["Alpha", B, "Charlie"])),
         "three tasks, in order, in the first column", p.state())
    t.eq(api_columns(pid), cols(todo=["Alpha", B, "Charlie"]), "... and so says the API")
    t.eq(len(p.finds("#kanban .task-title b")), 0, "a title's markup is text")
    t.ok(p.wait(lambda d: "First line of alpha. Second line." in (p.text("#kanban .task-desc") or "")),
         "Alpha's card shows its description's excerpt", p.state())

    # --- move with the keyboard ---
    def key_move(title, move):
        return p.press(title, '[data-move="%s"]' % move)

    ids = {x["title"]: str(x["id"]) for x in c.get("/api/projects/%s/tasks" % pid).json["tasks"]}
    t.ok(p.disabled("Alpha", '[data-move="up"]') is True and p.disabled("Alpha", '[data-move="left"]') is True
         and p.disabled("Charlie", '[data-move="down"]') is True and p.disabled("Bravo <b>bold</b>", '[data-move="up"]') is False,
         "the first card cannot go up, the last not down, the first column not left")
    t.ok(p.wait(lambda d: p.button("Charlie", '[data-move="up"]').get_attribute("aria-label") == "Move \u201cCharlie\u201d up"),
         "the arrow buttons are labelled for screen readers")
    key_move("Charlie", "up")
    t.ok(wait_until(lambda: api_columns(pid) == cols(todo=["Alpha", "Charlie", B])),
         "Enter on Charlie's up button: it moves above Bravo (API)", api_columns(pid))
    t.ok(p.wait(lambda d: p.columns() == cols(todo=["Alpha", "Charlie", B])), "... the page shows it", p.state())
    t.eq(p.focused(), [ids["Charlie"], "up"], "... and focus stays on Charlie's up button")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    t.ok(wait_until(lambda: api_columns(pid) == cols(todo=["Charlie", "Alpha", B])),
         "Enter again: Charlie is first (API)", api_columns(pid))
    t.ok(p.wait(lambda d: p.columns() == cols(todo=["Charlie", "Alpha", B])
                and p.focused() and p.focused()[0] == ids["Charlie"]),
         "... the page shows it; focus is still on Charlie's card (its up button is disabled now)", p.state())
    key_move("Charlie", "down")
    t.ok(wait_until(lambda: api_columns(pid) == cols(todo=["Alpha", "Charlie", B])),
         "Charlie's down button: below Alpha again (API)", api_columns(pid))
    p.wait(lambda d: p.columns() == cols(todo=["Alpha", "Charlie", B]))
    key_move("Alpha", "right")
    want = cols(todo=["Charlie", B])
    want[statuses[1]] = ["Alpha"]
    t.ok(wait_until(lambda: api_columns(pid) == want),
         "Alpha's right button: it goes to the next column, %s (API)" % statuses[1], api_columns(pid))
    t.ok(p.wait(lambda d: p.columns() == want), "... the page shows it", p.state())
    t.eq(p.focused(), [ids["Alpha"], "right"], "... focus follows Alpha to its new column")
    key_move("Alpha", "right")
    want = cols(todo=["Charlie", B])
    want[statuses[2]] = ["Alpha"]
    t.ok(wait_until(lambda: api_columns(pid) == want), "right again: %s" % statuses[2], api_columns(pid))
    p.wait(lambda d: p.columns() == want)
    key_move("Alpha", "left")
    want = cols(todo=["Charlie", B])
    want[statuses[1]] = ["Alpha"]
    t.ok(wait_until(lambda: api_columns(pid) == want), "left: back to %s" % statuses[1], api_columns(pid))
    t.ok(p.wait(lambda d: p.columns() == want), "... the page shows it", p.state())

    # --- drag and drop (synthetic DragEvents; see the docstring) ---
    def drag(title, status, before_title=None):
        """Synthetic DragEvents (see the docstring)."""
        return d.execute_script(DRAG, title, status, before_title)

    def real_drag(title, status, before_title=None):
        """A real drag with the mouse: onto the top edge of before_title's
        card, or the bottom of the column."""
        for _ in range(20):
            try:
                src = p.card(title)
                if before_title:
                    target = p.card(before_title)
                    dy = -target.size["height"] // 2 + 4
                else:
                    target = p.find('#kanban .column[data-status="%s"]' % status)
                    dy = target.size["height"] // 2 - 6
                ActionChains(d).click_and_hold(src).move_to_element_with_offset(target, 0, dy) \
                    .pause(0.1).release().perform()
                return True
            except (WebDriverException, AttributeError):
                time.sleep(0.1)
        return False

    second = statuses[1]
    real_drag(B, second, "Alpha")
    want = cols(todo=["Charlie"])
    want[second] = [B, "Alpha"]
    t.ok(wait_until(lambda: api_columns(pid) == want),
         "Bravo dropped above Alpha in %s: before Alpha (API)" % second, api_columns(pid))
    t.ok(p.wait(lambda d: p.columns() == want), "... the page shows it", p.state())
    real_drag("Charlie", second)
    want = cols()
    want[second] = [B, "Alpha", "Charlie"]
    t.ok(wait_until(lambda: api_columns(pid) == want),
         "Charlie dropped at the end of %s: after Alpha (API)" % second, api_columns(pid))
    p.wait(lambda d: p.columns() == want)
    real_drag("Charlie", second, B)
    want[second] = ["Charlie", B, "Alpha"]
    t.ok(wait_until(lambda: api_columns(pid) == want), "within a column: Charlie dropped above Bravo (API)",
         api_columns(pid))
    t.ok(p.wait(lambda d: p.columns() == want), "... the page shows it", p.state())
    r = drag("Alpha", statuses[-1])
    t.ok(r == {"marked": True, "taken": True},
         "a synthetic drag over the empty last column marks its end and the drop is taken", r)
    want[statuses[-1]] = ["Alpha"]
    want[second] = ["Charlie", B]
    t.ok(wait_until(lambda: api_columns(pid) == want), "Alpha dropped into the empty last column (API)",
         api_columns(pid))
    p.wait(lambda d: p.columns() == want)
    before = c.get("/api/tasks/" + ids[B]).json["task"]["position"]
    real_drag(B, second)  # where it already is (last): nothing is sent
    time.sleep(0.3)
    t.eq(c.get("/api/tasks/" + ids[B]).json["task"]["position"], before, "a drop where the card already is moves nothing")

    p.shot("03-kanban")

    # --- edit ---
    p.click("Alpha", '[data-action="edit"]')
    t.ok(p.wait(lambda d: p.attr("#task-description", "value") == "First line of alpha.\nSecond line."
                and p.find("#task-description").is_enabled()),
         "Edit opens the dialog with the title and the full description", p.state())
    set_value(p.find("#task-title"), "Alpha two")
    set_value(p.find("#task-description"), "Rewritten.")
    p.find("#task-submit").click()
    t.ok(p.wait(lambda d: p.card("Alpha two") is not None and "Rewritten." in p.card("Alpha two").text),
         "the card shows the new title and excerpt", p.state())
    got = c.get("/api/tasks/" + ids["Alpha"]).json["task"]
    t.ok(got["title"] == "Alpha two" and got["description"] == "Rewritten." and got["status"] == statuses[-1],
         "the API has the edit", got)

    # --- delete, after a confirm ---
    p.click("Charlie", '[data-action="delete"]')
    t.ok(p.wait_css("#delete-task-dialog") and "Charlie" in (p.text("#delete-task-dialog") or ""),
         "Delete asks first, naming the task", p.state())
    t.eq(d.execute_script("return document.activeElement.id"), "delete-task-dialog-cancel", "Cancel has the focus")
    p.find("#delete-task-dialog-cancel").click()
    time.sleep(0.3)
    t.eq(c.get("/api/tasks/" + ids["Charlie"]).status, 200, "Cancel keeps the task")
    p.click("Charlie", '[data-action="delete"]')
    p.wait_css("#delete-task-dialog")
    p.find("#delete-task-dialog-ok").click()
    t.ok(wait_until(lambda: c.get("/api/tasks/" + ids["Charlie"]).status == 404), "confirming deletes it (API 404)")
    t.ok(p.wait(lambda d: p.card("Charlie") is None), "... and its card is gone", p.state())

    # --- the change feed: the API's changes reach the page ---
    p.clear_toasts()
    t0 = time.time()
    r = c.post("/api/projects/%s/tasks" % pid, {"title": "From elsewhere", "description": "x"})
    t.eq(r.status, 201, "another session creates a task")
    t.ok(p.wait(lambda d: p.card("From elsewhere") is not None, timeout=3), "it appears within 3 s", p.state())
    t.diag("created -> shown in %.2f s" % (time.time() - t0))
    other = str(r.json["task"]["id"])
    r = c.post("/api/tasks/%s/move" % other, {"status": second, "before": int(ids[B])})
    t.eq(r.status, 200, "another session moves it above Bravo")
    t.ok(p.wait(lambda d: (p.columns() or {}).get(second) == ["From elsewhere", B], timeout=3),
         "the move shows within 3 s", p.state())
    r = c.patch("/api/tasks/" + other, {"title": "Renamed elsewhere"})
    t.ok(r.status == 200 and p.wait(lambda d: p.card("Renamed elsewhere") is not None, timeout=3),
         "a rename shows within 3 s", p.state())
    c.delete("/api/tasks/" + other)
    t.ok(p.wait(lambda d: p.card("Renamed elsewhere") is None, timeout=3), "a delete shows within 3 s", p.state())

    # --- one poller per tab, about once a second, stopped off the screen ---
    COUNT = """
        return performance.getEntriesByType("resource")
            .filter((e) => e.name.includes("/api/events?")).length;"""
    d.execute_script("performance.clearResourceTimings()")
    time.sleep(3.0)
    n = d.execute_script(COUNT)
    t.ok(2 <= n <= 4, "on the project screen the feed is asked about once a second (one poller)", n)
    p.find('[data-testid="nav-jobs"]').click()
    p.wait(lambda d: d.find_elements(By.ID, "job-form"))
    time.sleep(0.3)
    d.execute_script("performance.clearResourceTimings()")
    time.sleep(2.5)
    t.eq(d.execute_script(COUNT), 0, "on the Jobs screen the feed is not polled")
    d.back()
    now = api_columns(pid)
    t.ok(p.wait(lambda d: d.current_url.endswith("#/project/" + pid) and p.columns() == now),
         "back on the project: the same board", p.state())

    # --- the board is revalidated: a 304 while unchanged, a 200 after a change ---
    # What the browser asked and got, from nginx's access log (the test's
    # own API client, anyontest/1.0, left out).
    def board_gets():
        with open(os.path.join(s.data, "log", "nginx-access.log")) as f:
            return [m.group(1) for m in (re.search(r'"GET /api/projects/%s/tasks HTTP/[0-9.]+" (\d{3}) ' % pid, x)
                                         for x in f if "anyontest/" not in x) if m]

    # nginx buffers its access log (flushed every second): let what came
    # before be written, then wait for the line of what comes.
    def settled_gets():
        time.sleep(1.3)
        return board_gets()

    def reload_board():
        n = len(settled_gets())
        d.refresh()
        ok = p.wait(lambda d: len(board_gets()) > n and p.columns() == api_columns(pid), timeout=15)
        return ok, settled_gets()[n:]

    ok, got = reload_board()
    t.ok(ok and got == ["304"], "a reload of the unchanged board: the browser revalidates, a 304", (got, p.state()))
    n = len(settled_gets())
    r = c.post("/api/projects/%s/tasks" % pid, {"title": "Revalidated"})
    t.ok(r.status == 201 and p.wait(lambda d: p.card("Revalidated") is not None, timeout=3),
         "a change elsewhere shows within 3 s", p.state())
    got = settled_gets()[n:]
    t.ok(got and got[-1] == "200", "... through a fresh 200 of the board", got)
    ok, got = reload_board()
    t.ok(ok and got == ["304"] and p.card("Revalidated") is not None,
         "a reload after it: a 304 again, with the new task shown", (got, p.state()))
    c.delete("/api/tasks/%s" % r.json["task"]["id"])
    t.ok(p.wait(lambda d: p.card("Revalidated") is None, timeout=3), "its delete shows", p.state())
    now = api_columns(pid)

    # --- settings ---
    t.eq([o.get_attribute("value") for o in p.finds("#settings-default-executor option")],
         [x["name"] for x in meta["executors"]], "the executor choices are meta's executors")
    t.eq(p.attr("#settings-base-branch", "value"), "main", "the base branch is shown")
    d.execute_script("document.getElementById('project-settings').scrollIntoView()")
    p.shot("04-settings")
    set_value(p.find("#settings-base-branch"), "bad..branch")
    p.find("#settings-save").click()
    t.ok(p.wait(lambda d: p.text("#settings-base-branch-error"))
         and p.attr("#settings-base-branch", "aria-invalid") == "true",
         "a bad base branch is refused next to its field", p.state())
    t.eq(c.get("/api/projects/" + pid).json["project"]["base_branch"], "main", "... and nothing changed")
    set_value(p.find("#settings-base-branch"), "develop")
    set_value(p.find("#settings-setup-script"), "make setup\necho ready")
    Select(p.find("#settings-default-executor")).select_by_value(meta["executors"][-1]["name"])
    p.find("#settings-save").click()
    t.ok(wait_until(lambda: c.get("/api/projects/" + pid).json["project"]["base_branch"] == "develop"),
         "Save writes the settings", p.state())
    got = c.get("/api/projects/" + pid).json["project"]
    t.ok(got["base_branch"] == "develop" and got["setup_script"] == "make setup\necho ready"
         and got["default_executor"] == meta["executors"][-1]["name"] and got["name"] == "widget",
         "the API reads back base branch, setup script and executor", got)
    t.ok(p.wait(lambda d: "Settings saved" in " ".join(p.texts("#toasts .toast"))), "the page says saved")

    # --- remove the project ---
    p.clear_toasts()
    p.find("#project-remove").click()
    t.ok(p.wait_css("#remove-project-dialog") and "widget" in (p.text("#remove-project-dialog") or ""),
         "Remove project asks first, naming it", p.state())
    p.find("#remove-project-dialog-cancel").click()
    time.sleep(0.3)
    t.eq(c.get("/api/projects/" + pid).status, 200, "Cancel keeps the project")
    p.find("#project-remove").click()
    p.wait_css("#remove-project-dialog")
    p.find("#remove-project-dialog-ok").click()
    t.ok(p.wait(lambda d: d.current_url.endswith("#/board") and p.shown("#board-empty")),
         "confirming removes it and goes back to an empty board", p.state())
    t.eq(c.get("/api/projects/" + pid).status, 404, "the API says it is gone")
    t.eq(c.get("/api/tasks/" + ids[B]).status, 404, "... with its tasks")
    t.ok(os.path.isdir(os.path.join(repo, ".git")), "the repository on disk is untouched")

    # --- a project removed in another session leaves its screen ---
    r = c.post("/api/projects", {"source": "path", "path": repo})
    t.eq(r.status, 201, "the API adds it again")
    pid2 = str(r.json["project"]["id"])
    d.refresh()
    p.wait_css("#project-add")
    p.find("#project-add").click()
    p.wait_css("#add-project-dialog")
    set_value(p.find("#add-project-location"), repo)
    p.find("#add-project-submit").click()
    t.ok(p.wait(lambda d: "already" in (p.text("#add-project-location-error") or "")),
         "adding it twice: 'already' under the path field (409 already_added)", p.state())
    p.find("#add-project-location").send_keys(Keys.ESCAPE)
    p.wait(lambda d: not d.find_elements(By.ID, "add-project-dialog"))
    d.get(s.url + "/#/project/" + pid2)
    p.wait(lambda d: p.text("#project-title") == "widget" and p.columns() == cols())
    c.delete("/api/projects/" + pid2)
    t.ok(p.wait(lambda d: d.current_url.endswith("#/board"), timeout=3),
         "removed elsewhere: the project screen goes back to the board within 3 s", p.state())
    d.get(s.url + "/#/project/" + pid2)
    t.ok(p.wait_css("#project-missing"), "a removed project's address says there is no such project")

    def expected(e):
        m = e["message"]
        return e.get("source") == "network" and (
            ("/api/projects " in m and ("status of 400" in m or "status of 409" in m))
            or ("/api/projects/%s " % pid in m and "status of 400" in m)
            or ("/api/projects/%s " % pid2 in m and "status of 404" in m)
            or ("/api/projects/%s/tasks " % pid2 in m and "status of 404" in m))
    severe = [e for e in p.logs() if e["level"] == "SEVERE" and not expected(e)]
    t.ok(not severe, "no unexpected errors in the browser console", "\n".join(e["message"] for e in severe))
shutil.rmtree(tmp, ignore_errors=True)
t.done()
