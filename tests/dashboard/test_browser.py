"""The dashboard in a real browser: `streamlit run` against the seeded database, each page
loaded in the system Chromium (Playwright, tests/dashboard/browser.py), checked for Streamlit
exception boxes and for real content, and saved as a screenshot under test-output/dashboard/.

Skips (with how to install Chromium) when no Chromium is found; CI installs it, and its
strict mode turns this skip into a failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from streamlit_app.context import REFRESH_SECONDS
from tests.dashboard.browser import POLL_MS, Server, chromium, open_page, server
from tests.dashboard.conftest import Dashboard
from tradepipe.db import Strategy, StrategyStatus, create_engine_for, session_scope

__all__ = ["chromium", "server"]  # fixtures used here, imported from their module

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-output" / "dashboard"
# A deadline, not a speed check: on a loaded 2-core machine the Models page (MLflow reads
# and charts) took over 30 s to draw while it was healthy.
PAGE_TIMEOUT_SECONDS = 120.0


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
PAGE_STATE_JS = """() => {
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
}"""
# True once the page has fully drawn what `check` (a PageCheck) names, or shows an exception.
DRAWN_JS = f"""(check) => {{
  const state = ({PAGE_STATE_JS})();
  return state.exceptions.length > 0 || (
    state.script === 'notRunning'
    && state.headings.includes(check.title)
    && check.texts.every((text) => state.text.includes(text))
    && state.charts >= check.charts
    && state.tables >= check.tables
    && state.skeletons === 0
  );
}}"""
# Resolves after two animation frames: canvas tables and charts paint in one.
_PAINTED_JS = (
    "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
)


def wait_drawn(page: Page, check: PageCheck) -> tuple[dict[str, Any], bool]:
    """The page's state once it has fully drawn or shown an exception, and whether it did
    so within PAGE_TIMEOUT_SECONDS."""
    try:
        page.wait_for_function(
            DRAWN_JS, arg=asdict(check), polling=POLL_MS, timeout=PAGE_TIMEOUT_SECONDS * 1000
        )
    except PlaywrightTimeout:
        return dict(page.evaluate(PAGE_STATE_JS)), False
    page.evaluate(_PAINTED_JS)
    return dict(page.evaluate(PAGE_STATE_JS)), True


def _empty(state: dict[str, Any], check: PageCheck) -> bool:
    """Nothing but the title: no table, no chart, hardly any text."""
    words = state["text"].replace(check.title, "", 1).strip()
    return len(words) < 20 and not state["tables"] and not state["charts"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_page_renders_in_chromium(
    chromium: str, dashboard: Dashboard, server: Server
) -> None:  # chromium first: without it the test skips before starting anything
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    with open_page(chromium) as tab:
        # One page after the other: the server runs every session's script in one Python
        # process, so loading them at once saves nothing and only starves each of them.
        server.wait_healthy()
        for check in PAGES:
            tab.goto(f"{server.url}/{check.path}")
            state, drawn = wait_drawn(tab, check)
            shot = SCREENSHOTS / f"{check.title.lower()}.png"
            tab.screenshot(path=shot)
            if state["exceptions"]:
                problems.append(f"{check.title}: exception box(es): {state['exceptions']}")
            elif not drawn:
                summary = {key: value for key, value in state.items() if key != "text"}
                problems.append(
                    f"{check.title}: not fully drawn in {PAGE_TIMEOUT_SECONDS:g} s ({summary}); "
                    f"visible text: {state['text'][:1000]!r}; see {shot}"
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
    tab.evaluate("() => { window.loadedBeforeTheEdit = true; }")  # a reload forgets it
    timeout = REFRESH_SECONDS * 2 + 5
    try:
        expect(tab.locator('[data-testid="stMain"]')).to_contain_text(
            "hot_edit", timeout=timeout * 1000
        )
    except AssertionError:
        return [f"Strategies: a new strategy did not appear within {timeout:g} s (live refresh)"]
    if not tab.evaluate("() => window.loadedBeforeTheEdit === true"):
        return ["Strategies: the new strategy appeared only after a page reload"]
    return []
