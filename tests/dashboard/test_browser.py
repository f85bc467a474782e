"""The dashboard in a real browser: `streamlit run` (argv from streamlit_app.launch) on a
free loopback port against the seeded database, each page loaded in headless Chromium,
checked for Streamlit exception boxes and for real content, and saved as a screenshot
under test-output/dashboard/.

Skips (with how to install Chromium) when no Chromium is found; CI installs it, and its
strict mode turns this skip into a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamlit_app.context import REFRESH_SECONDS
from streamlit_app.launch import command
from tests.dashboard.chromium import INSTALL_HINT, Page, find_chromium, launch
from tests.dashboard.conftest import Dashboard
from tradepipe.config import load_settings
from tradepipe.db import Strategy, StrategyStatus, create_engine_for, session_scope

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "dashboard"
# A deadline, not a speed check: on a loaded 2-core machine the Models page (MLflow reads
# and charts) took over 30 s to draw while it was healthy.
PAGE_TIMEOUT_SECONDS = 90.0
SERVER_TIMEOUT_SECONDS = 30.0
VIEWPORT = (1440, 2000)


@dataclass(frozen=True)
class PageCheck:
    path: str  # URL path; the Overview is the root
    title: str
    texts: tuple[str, ...]  # must be on the page (tables draw on a canvas: not these)
    charts: int = 0
    tables: int = 0


PAGES = (
    PageCheck("", "Overview", ("Needs attention", "Net realised PnL", "+1.15", "engine-1"),
              charts=1, tables=3),
    PageCheck("orders", "Orders", ("Inspect position", "Orders of this position"),
              charts=1, tables=2),
    PageCheck("bots", "Bots", ("is stale", "Engines"), tables=2),
    PageCheck("models", "Models", ("btc-lgbm", "champion", "version 3"), tables=1),
    PageCheck("reviews", "Reviews", ("1 review(s), newest first", "Review"), tables=2),
    # the Strategies page last: the live refresh check below runs on it
    PageCheck("strategies", "Strategies", ("mean_revert", "line 12", "vanished"), tables=1),
)  # fmt: skip

# What the page shows right now; Streamlit marks its root with the script's run state.
PAGE_STATE_JS = """(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const main = document.querySelector('[data-testid="stMain"]');
  const inMain = (selector) => main ? main.querySelectorAll(selector).length : 0;
  return {
    script: app ? app.getAttribute('data-test-script-state') : null,
    exceptions: Array.from(document.querySelectorAll('[data-testid="stException"]'))
      .map((box) => box.innerText.slice(0, 800)),
    headings: main ? Array.from(main.querySelectorAll('h1')).map((h) => h.innerText.trim()) : [],
    text: main ? main.innerText : '',
    charts: inMain('[data-testid="stPlotlyChart"] .main-svg'),
    tables: inMain('[data-testid="stDataFrame"] canvas'),
    skeletons: inMain('[data-testid="stSkeleton"]') + inMain('[data-testid="stAppSkeleton"]'),
  };
})()"""


@pytest.fixture(scope="session")  # set up with (so before) the session's MLflow store
def chromium() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip(f"Chromium not found: {INSTALL_HINT} to run the real-browser dashboard test")
    return found


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
        deadline = time.monotonic() + SERVER_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"streamlit exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"streamlit not healthy in {SERVER_TIMEOUT_SECONDS} s:\n{self.log_tail()}")


@pytest.fixture
def server(dashboard: Dashboard, tmp_path: Path) -> Iterator[Server]:
    """`streamlit run` of the dashboard (argv from the launcher), starting; the test waits
    for it (`wait_healthy`) once its browser is up, so the two start side by side."""
    port = free_port()
    argv = command(load_settings(host="127.0.0.1", dashboard_port=port))
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=tmp_path,
            env={**os.environ, **dashboard.env},
            stdout=log,
            stderr=subprocess.STDOUT,
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


def _ready(state: dict[str, Any], check: PageCheck) -> bool:
    return (
        state["script"] == "notRunning"
        and check.title in state["headings"]
        and all(text in state["text"] for text in check.texts)
        and state["charts"] >= check.charts
        and state["tables"] >= check.tables
        and state["skeletons"] == 0
    )


def _wait_drawn(page: Page, check: PageCheck, deadline: float) -> dict[str, Any]:
    """The page's state once it has fully drawn or shown an exception (or at `deadline`)."""
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = page.evaluate(PAGE_STATE_JS) or {}
        if state.get("exceptions") or (state and _ready(state, check)):
            time.sleep(0.3)  # let the canvas tables and charts paint before the screenshot
            return dict(page.evaluate(PAGE_STATE_JS))
        time.sleep(0.1)
    return state


def _empty(state: dict[str, Any], check: PageCheck) -> bool:
    """Nothing but the title: no table, no chart, hardly any text."""
    words = state["text"].replace(check.title, "", 1).strip()
    return len(words) < 20 and not state["tables"] and not state["charts"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_page_renders_in_chromium(
    chromium: str, dashboard: Dashboard, server: Server, tmp_path: Path
) -> None:  # chromium first: without it the test skips before starting anything
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    with launch(chromium, tmp_path / "chromium-profile") as browser:
        # One page after the other: the server runs every session's script in one Python
        # process, so loading them at once saves nothing and only starves each of them.
        tab = browser.new_page(*VIEWPORT)
        server.wait_healthy()
        for check in PAGES:
            tab.navigate(f"{server.url}/{check.path}")
            state = _wait_drawn(tab, check, time.monotonic() + PAGE_TIMEOUT_SECONDS)
            shot = SCREENSHOTS / f"{check.title.lower()}.png"
            tab.screenshot(shot)
            if state.get("exceptions"):
                problems.append(f"{check.title}: exception box(es): {state['exceptions']}")
            elif not state or not _ready(state, check):
                summary = {key: value for key, value in state.items() if key != "text"}
                problems.append(
                    f"{check.title}: not fully drawn in {PAGE_TIMEOUT_SECONDS} s ({summary}); "
                    f"visible text: {state.get('text', '')[:1000]!r}; see {shot}"
                )
            elif _empty(state, check):
                problems.append(f"{check.title}: empty page: {state['text']!r}")
        # Still on the Strategies page: a strategy that breaks now shows up without a reload.
        if not problems:
            problems.extend(_live_refresh_problems(tab, dashboard.database_url))
    assert not problems, "\n".join([*problems, "--- streamlit log ---", server.log_tail()])


def _live_refresh_problems(tab: Page, database_url: str) -> list[str]:
    engine = create_engine_for(database_url)
    try:
        with session_scope(engine) as session:
            session.add(
                Strategy(
                    name="hot_edit",
                    file_path="strategies/hot_edit.py",
                    class_name="HotEdit",
                    content_hash="e" * 64,
                    status=StrategyStatus.INVALID,
                    error="strategies/hot_edit.py:3: SyntaxError: invalid syntax",
                    error_line=3,
                )
            )
    finally:
        engine.dispose()
    before = tab.evaluate("performance.getEntriesByType('navigation').length")
    timeout = REFRESH_SECONDS * 2 + 5
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "hot_edit" in (tab.evaluate(PAGE_STATE_JS) or {}).get("text", ""):
            if tab.evaluate("performance.getEntriesByType('navigation').length") != before:
                return ["Strategies: the new strategy appeared only after a page reload"]
            return []
        time.sleep(0.2)
    return [f"Strategies: a new strategy did not appear within {timeout:g} s (live refresh)"]
