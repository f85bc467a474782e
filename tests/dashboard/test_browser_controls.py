"""The operator's controls in a real browser: one `streamlit run` against the seeded database
and an MLflow registry of its own, driven in headless Chromium as an operator would (typed
text, clicked options and buttons): the kill switch engaged and released, a bot turned off,
one open position closed, a bot's configuration edited, and on the Models page a champion
rolled back and pinned; each effect asserted in the trading database or the registry.
Screenshots go to test-output/dashboard/controls-*.png."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page

from tests.dashboard.browser import (
    Server,
    choose,
    chromium,
    fill,
    open_page,
    press,
    server,
    wait_for_text,
)
from tests.dashboard.conftest import MODEL_NAME, Dashboard, MlflowStore, build_mlflow_store
from tests.dashboard.test_browser import SCREENSHOTS
from tests.engine.helpers import execute, query
from tradepipe import model_ops
from tradepipe.db import create_engine_for, session_scope
from tradepipe.registry import PIN_TAGS, ModelRegistry

__all__ = ["chromium", "server"]  # fixtures used here, imported from their module

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> MlflowStore:
    """A registry of this test's own: it moves the champion."""
    return build_mlflow_store(tmp_path_factory.mktemp("mlflow_browser_controls"))


def one(url: str, sql: str, **params: object) -> dict[str, object]:
    [row] = query(url, sql, **params)
    return dict(row._mapping)


def test_operator_controls_in_chromium(
    chromium: str, dashboard: Dashboard, server: Server, mlflow_store: MlflowStore
) -> None:
    url, seeded = dashboard.database_url, dashboard.seeded
    # the seeded active position gets an engine's order id, so an engine can find it
    execute(
        url,
        "UPDATE orders SET client_order_id = 'alpha-9-en' "
        "WHERE position_id = :id AND role = 'entry'",
        id=seeded.active_id,
    )
    engine = create_engine_for(url)
    try:  # version 4 promoted over 3: 3 is the champion a rollback returns to
        with session_scope(engine) as session:
            registry = ModelRegistry(mlflow_store.tracking_uri)
            model_ops.promote(
                registry, MODEL_NAME, "4", by="setup", reason="setup", session=session
            )
    finally:
        engine.dispose()
    with open_page(chromium) as tab:
        server.wait_healthy()
        try:
            _bots_page(tab, server, url, seeded.active_id)
            _models_page(tab, server, url, mlflow_store)
        finally:
            tab.screenshot(path=SCREENSHOTS / "controls-last.png")


def _bots_page(tab: Page, server: Server, url: str, position_id: int) -> None:
    tab.goto(f"{server.url}/bots")
    wait_for_text(tab, "Engage kill switch")

    fill(tab, "tradepipe_controls_kill_reason", "browser drill")
    press(tab, "Engage kill switch")
    wait_for_text(tab, "kill switch engaged")
    control = one(url, "SELECT value, updated_by FROM engine_controls WHERE name = 'kill_switch'")
    value = json.loads(str(control["value"]))
    assert (value["engaged"], value["reason"], control["updated_by"]) == (
        True, "browser drill", "dashboard"
    )  # fmt: skip
    wait_for_text(tab, "Release kill switch")
    fill(tab, "tradepipe_controls_kill_reason", "drill over")
    press(tab, "Release kill switch")
    wait_for_text(tab, "kill switch released")
    control = one(url, "SELECT value FROM engine_controls WHERE name = 'kill_switch'")
    assert json.loads(str(control["value"]))["engaged"] is False

    choose(tab, "tradepipe_controls_bot_name", "beta")
    choose(tab, "tradepipe_controls_bot_action", "disable")
    press(tab, "Apply")
    wait_for_text(tab, "beta disabled")
    assert one(url, "SELECT enabled FROM bots WHERE name = 'beta'")["enabled"] in (0, False)

    choose(tab, "tradepipe_positions_position", f"#{position_id} · alpha", prefix=True)
    press(tab, "Close position")
    wait_for_text(tab, f"position {position_id} closes at market")
    [request] = query(url, "SELECT value FROM engine_controls WHERE name LIKE 'op:%'")
    asked = json.loads(request.value)
    assert (asked["action"], asked["position_id"], asked["by"], asked["state"]) == (
        "close_position", position_id, "dashboard", "requested"
    )  # fmt: skip

    choose(tab, "tradepipe_bot_editor_bot", "alpha")
    fill(tab, "tradepipe_bot_editor_alpha_take_profit_pct", "1.25")
    press(tab, "Save")
    wait_for_text(tab, "take_profit_pct")
    config = json.loads(str(one(url, "SELECT config FROM bots WHERE name = 'alpha'")["config"]))
    assert config["take_profit_pct"] == 1.25
    change = one(url, "SELECT payload FROM events WHERE kind = 'bot_config_changed'")
    assert json.loads(str(change["payload"]))["by"] == "dashboard"
    tab.screenshot(path=SCREENSHOTS / "controls-bots.png")


def _models_page(tab: Page, server: Server, url: str, store: MlflowStore) -> None:
    registry = ModelRegistry(store.tracking_uri)
    tab.goto(f"{server.url}/models")
    wait_for_text(tab, "Operator actions", timeout_ms=120_000)  # MLflow reads: slow under load

    choose(tab, "tradepipe_model_action_action", "roll back")
    fill(tab, "tradepipe_model_action_reason", "hit rate fell")
    press(tab, "Apply")
    wait_for_text(tab, f"rollback {MODEL_NAME}: champion 4 → 3")
    champion = registry.champion(MODEL_NAME)
    assert champion is not None and champion.version == "3"

    choose(tab, "tradepipe_model_action_action", "pin")
    fill(tab, "tradepipe_model_action_reason", "audit of 3")
    press(tab, "Apply")
    wait_for_text(tab, f"pin {MODEL_NAME}: champion 3 → 3")
    tags = registry.model_tags(MODEL_NAME)
    assert (tags[PIN_TAGS[0]], tags[PIN_TAGS[1]]) == ("3", "dashboard")
    events = query(url, "SELECT kind FROM events WHERE kind LIKE 'model_%' ORDER BY id")
    assert [row.kind for row in events][-2:] == ["model_rolled_back", "model_pinned"]
    tab.screenshot(path=SCREENSHOTS / "controls-models.png")
