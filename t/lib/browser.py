"""browser - what the browser tests share: Selenium with Debian's Chromium.

Importing it makes sure python3-selenium can be imported: Debian installs it
for the system Python, so when a pyenv or venv python3 comes first on PATH
the test re-runs itself once under /usr/bin/python3. Without selenium,
chromium or chromedriver the test bails out (fails), never skips.
"""
import os
import sys
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SYSTEM_PYTHON = "/usr/bin/python3"

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    if os.path.exists(SYSTEM_PYTHON) and not os.environ.get("ANYON_T_SYSTEM_PYTHON"):
        os.environ["ANYON_T_SYSTEM_PYTHON"] = "1"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    print("Bail out! python3-selenium is missing (apt-get install python3-selenium)", flush=True)
    sys.exit(1)

__all__ = ["ActionChains", "By", "Keys", "Select", "Page", "WebDriverException", "driven", "require_chromium",
           "start_browser", "set_value"]


def require_chromium(t):
    """Bails out of TAP test t when the browser or its driver is missing."""
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            t.bail("%s is missing (apt-get install %s)" % (path, pkg))


def start_browser():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-gpu", "--no-first-run"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def set_value(el, value):
    el.clear()
    el.send_keys(value)


class Page:
    """The driver plus explicit waits that report instead of raising.
    Tests subclass it for their own state() diagnostics and helpers."""

    def __init__(self, driver):
        self.d = driver
        self.console = []  # every browser log entry seen so far

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    # The page re-renders under our feet: an element found a moment ago may
    # be gone (stale). These readers answer None/False then instead of
    # raising, so a failing check's diagnostics never hide its message.
    def text(self, css):
        try:
            els = self.finds(css)
            return els[0].text if els else None
        except WebDriverException:
            return None

    def texts(self, css):
        """Texts of every match; ones that vanish while read are skipped."""
        out = []
        for e in self.finds(css):
            try:
                out.append(e.text)
            except WebDriverException:
                pass
        return out

    def attr(self, css, name):
        try:
            els = self.finds(css)
            return els[0].get_attribute(name) if els else None
        except WebDriverException:
            return None

    def shown(self, css):
        try:
            els = self.finds(css)
            return bool(els) and els[0].is_displayed()
        except WebDriverException:
            return False

    def wait(self, cond, timeout=10):
        """Waits until cond(driver) is true; returns its value or None."""
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(WebDriverException,)).until(cond)
        except TimeoutException:
            return None

    def wait_css(self, css, timeout=10):
        return self.wait(lambda d: self.shown(css), timeout)

    def logs(self):
        self.console += self.d.get_log("browser")
        return self.console


@contextmanager
def driven(t, stack, page_class=Page, name="browser"):
    """A browser for one Stack: yields page_class(driver). When the test
    raises or any check failed, saves NAME-failure.png in the stack's data
    dir and keeps that dir; always quits the browser."""
    driver = start_browser()
    failed = False
    try:
        yield page_class(driver)
    except Exception:
        failed = True
        raise
    finally:
        if failed or t.failed:
            stack.keep = True
            try:
                driver.save_screenshot(os.path.join(stack.data, name + "-failure.png"))
            except WebDriverException:
                pass
        driver.quit()
