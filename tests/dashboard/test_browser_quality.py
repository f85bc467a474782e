"""The Models page's live quality in a real browser: `streamlit run` against the seeded
database plus recorded evidence of the champion (tests/dashboard/test_model_quality.py),
loaded in headless Chromium, with the table and the chart drawn; the screenshot is saved as
test-output/dashboard/models-live-quality.png."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlit_app.launch import command
from tests.dashboard.chromium import launch
from tests.dashboard.conftest import Dashboard
from tests.dashboard.test_browser import (
    PAGE_TIMEOUT_SECONDS,
    SCREENSHOTS,
    VIEWPORT,
    PageCheck,
    Server,
    _ready,
    _wait_drawn,
    chromium,
    free_port,
)
from tests.dashboard.test_model_quality import evidence
from tradepipe.config import load_settings

__all__ = ["chromium", "evidence"]  # fixtures used here, imported from their modules

EVIDENCE_SETTINGS = (
    "TRADEPIPE_MLFLOW_TRACKING_URI",
    "TRADEPIPE_MARKET_DATA_DIR",
    "TRADEPIPE_DECISION_LOG_DIR",
)


@pytest.fixture
def quality_server(dashboard: Dashboard, evidence: Path, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    argv = command(load_settings(host="127.0.0.1", dashboard_port=port))
    env = {**os.environ, **dashboard.env} | {name: os.environ[name] for name in EVIDENCE_SETTINGS}
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_live_quality_draws_in_chromium(
    chromium: str, quality_server: Server, tmp_path: Path
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    check = PageCheck(
        "models", "Models", ("Live quality", "btc-lgbm", "version 3"), charts=1, tables=2
    )
    with launch(chromium, tmp_path / "chromium-profile") as browser:
        tab = browser.new_page(*VIEWPORT)
        quality_server.wait_healthy()
        tab.navigate(f"{quality_server.url}/{check.path}")
        state = _wait_drawn(tab, check, time.monotonic() + PAGE_TIMEOUT_SECONDS)
        tab.screenshot(SCREENSHOTS / "models-live-quality.png")
    assert not state.get("exceptions"), state.get("exceptions")
    assert state and _ready(state, check), (
        {key: value for key, value in state.items() if key != "text"},
        quality_server.log_tail(),
    )
