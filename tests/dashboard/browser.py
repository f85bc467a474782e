"""The dashboard in a real browser, for the browser tests: `streamlit run` (argv from
streamlit_app.launch) on a free loopback port, a page of the system Chromium driven by
Playwright (no `playwright install`: no browser is downloaded), and an operator's hands on it:
fill a widget, choose a selectbox option, press a button, each widget found by the
`st-key-<key>` class Streamlit gives every keyed element, then wait until Streamlit has
finished the script run the action started and a text shows.

Streamlit marks its root with the script's run state (`data-test-script-state`); under load
a run can start late and be short, so a MutationObserver installed before the app's own
scripts counts the runs that ended, and the waits poll that count every 100 ms.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from streamlit_app.launch import command
from tests.dashboard.conftest import Dashboard
from tests.support import eventually
from tradepipe.config import load_settings

INSTALL_HINT = "install it with `apt-get update && apt-get install -y chromium` (Debian)"
_BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Deadlines, not speed checks: on a loaded 2-core machine a healthy page took over 30 s.
ACTION_TIMEOUT_MS = 60_000
SERVER_TIMEOUT_SECONDS = 60.0
POLL_MS = 100
VIEWPORT: ViewportSize = {"width": 1440, "height": 2000}

_COUNT_RUNS = """
window.__streamlitRunsEnded = 0;
new MutationObserver((records) => {
  for (const record of records) {
    if (record.oldValue === 'running') window.__streamlitRunsEnded += 1;
  }
}).observe(document, {
  subtree: true, attributes: true, attributeOldValue: true,
  attributeFilter: ['data-test-script-state'],
});
"""
_STATE = "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"
_IDLE = f"() => {_STATE} === 'notRunning'"
_RAN_SINCE = f"(before) => window.__streamlitRunsEnded > before && {_STATE} === 'notRunning'"
_SHOWS = (
    f"(text) => {_STATE} === 'notRunning'"
    " && (document.querySelector('[data-testid=\"stMain\"]')?.innerText ?? '').includes(text)"
)


@pytest.fixture(scope="session")  # set up with (so before) the session's MLflow store
def chromium() -> str:
    found = next((path for name in _BINARIES if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip(f"Chromium not found: {INSTALL_HINT} to run the real-browser dashboard test")
    return found


@contextmanager
def open_page(chromium: str) -> Iterator[Page]:
    """A page of a headless `chromium` (the binary at that path), closed on exit."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(ACTION_TIMEOUT_MS)
            page.add_init_script(_COUNT_RUNS)
            yield page
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_healthy(self) -> None:
        eventually(
            self._healthy,
            lambda: f"streamlit healthy at {self.url}:\n{self.log_tail()}",
            SERVER_TIMEOUT_SECONDS,
            0.1,
        )

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"streamlit exited with {self.process.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False  # the server is not listening yet


@contextmanager
def run_streamlit(env: Mapping[str, str], workdir: Path) -> Iterator[Server]:
    """`streamlit run` of the dashboard with `env`, starting; the test waits for it
    (`wait_healthy`) once its browser is up, so the two start side by side."""
    port = free_port()
    argv = command(load_settings(host="127.0.0.1", dashboard_port=port))
    log_path = workdir / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=workdir, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield Server(f"http://127.0.0.1:{port}", process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def server(dashboard: Dashboard, tmp_path: Path) -> Iterator[Server]:
    """The dashboard against the seeded database."""
    with run_streamlit({**os.environ, **dashboard.env}, tmp_path) as running:
        yield running


def main_text(page: Page) -> str:
    main = page.locator('[data-testid="stMain"]')
    return main.inner_text() if main.count() else ""


def wait_idle(page: Page, timeout_ms: float = ACTION_TIMEOUT_MS) -> None:
    """Until no script run is going on."""
    try:
        page.wait_for_function(_IDLE, polling=POLL_MS, timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(f"the page still runs after {timeout_ms / 1000:g} s") from None


def wait_for_text(page: Page, text: str, timeout_ms: float = ACTION_TIMEOUT_MS) -> str:
    """The page's text once the script is idle and `text` shows (AssertionError if not)."""
    try:
        page.wait_for_function(_SHOWS, arg=text, polling=POLL_MS, timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = main_text(page)[:1500]
        raise AssertionError(
            f"{text!r} not shown in {timeout_ms / 1000:g} s; the page shows {shown!r}"
        ) from None
    return main_text(page)


def _widget(page: Page, key: str) -> Locator:
    return page.locator(f".st-key-{key}")


def _change(page: Page, key: str, change: Callable[[], None]) -> None:
    """Make `change` to widget `key`; outside a form that reruns the script: wait until
    that run has ended."""
    _widget(page, key).wait_for()
    if page.locator(f'[data-testid="stForm"] .st-key-{key}').count():
        change()  # a form sends its values on submit only
        return
    wait_idle(page)
    before = page.evaluate("window.__streamlitRunsEnded")
    change()
    try:
        page.wait_for_function(_RAN_SINCE, arg=before, polling=POLL_MS, timeout=ACTION_TIMEOUT_MS)
    except PlaywrightTimeout:
        raise AssertionError(f"no script run ended after changing {key}") from None


def fill(page: Page, key: str, text: str) -> None:
    """Type `text` into the text or number input of widget `key`, replacing its value."""
    field = _widget(page, key).locator("input")

    def type_text() -> None:
        field.fill(text)
        field.blur()  # Streamlit takes a typed value when the field loses focus

    _change(page, key, type_text)


def choose(page: Page, key: str, option: str, *, prefix: bool = False) -> None:
    """Open selectbox `key` and click its option `option` (the first that starts with it,
    with `prefix`)."""
    widget = _widget(page, key)
    combobox = widget.get_by_role("combobox")  # shows the chosen option as its value
    name: str | re.Pattern[str] = re.compile(f"^{re.escape(option)}") if prefix else option
    exact = None if prefix else True
    combobox.wait_for()
    chosen = combobox.input_value()
    if chosen.startswith(option) if prefix else chosen == option:
        return  # a click changes nothing, so no script run would follow

    def pick() -> None:
        wanted = page.get_by_role("option", name=name, exact=exact).first
        for attempt in range(3):  # the list closes when the page redraws under it: reopen it
            if combobox.get_attribute("aria-expanded") != "true":
                widget.get_by_role("button", name="Open").click()
            try:
                wanted.click(timeout=10_000)
                return
            except PlaywrightTimeout:
                if attempt == 2:
                    shown = page.get_by_role("option").all_inner_texts()
                    raise AssertionError(f"no option {option!r} of {key} among {shown}") from None

    _change(page, key, pick)
    expect(combobox).to_have_value(name)


def press(page: Page, label: str) -> None:
    """Click the button labelled `label` in the page's main area."""
    main = page.locator('[data-testid="stMain"]')
    main.get_by_role("button", name=label, exact=True).click()
