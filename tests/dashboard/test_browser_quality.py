"""The Models page's live quality in a real browser: `streamlit run` against the seeded
database plus recorded evidence of the champion (tests/dashboard/test_model_quality.py),
loaded in headless Chromium, with the table and the chart drawn; the screenshot is saved as
test-output/dashboard/models-live-quality.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard.browser import Server, chromium, open_page, run_streamlit
from tests.dashboard.conftest import Dashboard
from tests.dashboard.test_browser import SCREENSHOTS, PageCheck, wait_drawn
from tests.dashboard.test_model_quality import evidence

__all__ = ["chromium", "evidence"]  # fixtures used here, imported from their modules

EVIDENCE_SETTINGS = (
    "TRADEPIPE_MLFLOW_TRACKING_URI",
    "TRADEPIPE_MARKET_DATA_DIR",
    "TRADEPIPE_DECISION_LOG_DIR",
)


@pytest.fixture
def quality_server(dashboard: Dashboard, evidence: Path, tmp_path: Path) -> Iterator[Server]:
    env = {**os.environ, **dashboard.env} | {name: os.environ[name] for name in EVIDENCE_SETTINGS}
    with run_streamlit(env, tmp_path) as running:
        yield running


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_live_quality_draws_in_chromium(chromium: str, quality_server: Server) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    check = PageCheck(
        "models", "Models", ("Live quality", "btc-lgbm", "version 3"), charts=1, tables=2
    )
    with open_page(chromium) as tab:
        quality_server.wait_healthy()
        tab.goto(f"{quality_server.url}/{check.path}")
        state, drawn = wait_drawn(tab, check)
        tab.screenshot(path=SCREENSHOTS / "models-live-quality.png")
    assert not state["exceptions"], state["exceptions"]
    assert drawn, (
        {key: value for key, value in state.items() if key != "text"},
        quality_server.log_tail(),
    )
