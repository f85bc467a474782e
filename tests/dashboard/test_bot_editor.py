"""The Bots page's editor under Streamlit's AppTest on the seeded database: a changed
take-profit is written through tradepipe.bot_changes and listed in the bot's change history;
a refused value is shown and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard.apptest import new_app, open_page, page_text, served_on
from tests.dashboard.conftest import Dashboard
from tests.engine.helpers import query

KEY = "tradepipe_bot_editor"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def loopback() -> Iterator[None]:
    with served_on("127.0.0.1"):
        yield


def test_edit_a_bot_s_take_profit_on_the_bots_page(dashboard: Dashboard, loopback: None) -> None:
    at = open_page(new_app(), "bots")
    assert "Edit a bot" in page_text(at)
    at.selectbox(key=f"{KEY}_bot").set_value("gamma").run()
    at.number_input(key=f"{KEY}_gamma_take_profit_pct").set_value(1.5)
    at.number_input(key=f"{KEY}_gamma_max_open_positions").set_value(3)
    [save] = [button for button in at.button if button.label == "Save"]
    save.click().run()
    assert not at.exception, [item.value for item in at.exception]
    assert [item.value for item in at.success] == [
        "gamma: take_profit_pct 1.0 → 1.5, max_open_positions 1 → 3"
    ]
    text = page_text(at)
    assert "Configuration changes of gamma" in text and "dashboard" in text
    [row] = query(dashboard.database_url, "SELECT config FROM bots WHERE name = 'gamma'")
    assert '"take_profit_pct": 1.5' in str(row.config) or "'take_profit_pct': 1.5" in str(
        row.config
    )

    at.number_input(key=f"{KEY}_gamma_stop_loss_pct").set_value(150.0)
    [save] = [button for button in at.button if button.label == "Save"]
    save.click().run()
    assert any("stop_loss_pct" in item.value for item in at.error)
    events = query(
        dashboard.database_url, "SELECT id FROM events WHERE kind = 'bot_config_changed'"
    )
    assert len(events) == 1


def test_controls_on_the_bots_page(dashboard: Dashboard, loopback: None) -> None:
    at = open_page(new_app(), "bots")
    controls = "tradepipe_controls"

    def press(label: str) -> None:
        [button] = [button for button in at.button if button.label == label]
        button.click().run()
        assert not at.exception, [item.value for item in at.exception]

    press("Engage kill switch")
    assert any("give a reason" in item.value for item in at.error)
    at.text_input(key=f"{controls}_kill_reason").input("exchange incident")
    press("Engage kill switch")
    assert [item.value for item in at.success][-1].startswith("kill switch engaged")
    [row] = query(dashboard.database_url, "SELECT value, updated_by FROM engine_controls")
    assert "exchange incident" in str(row.value) and row.updated_by == "dashboard"
    at.run()
    assert any("Kill switch **engaged** by dashboard" in item.value for item in at.error)
    at.text_input(key=f"{controls}_kill_reason").input("incident over")
    press("Release kill switch")
    [row] = query(dashboard.database_url, "SELECT value FROM engine_controls")
    assert "false" in str(row.value).lower()

    at.selectbox(key=f"{controls}_bot_name").set_value("gamma")
    at.selectbox(key=f"{controls}_bot_action").set_value("disable")
    press("Apply")
    [gamma] = query(dashboard.database_url, "SELECT enabled FROM bots WHERE name = 'gamma'")
    assert not gamma.enabled
    at.selectbox(key=f"{controls}_bot_action").set_value("assign strategy")
    at.text_input(key=f"{controls}_bot_strategy").input("no_such_strategy")
    press("Apply")
    assert any("unknown strategy 'no_such_strategy'" in item.value for item in at.error)


def test_set_and_remove_a_risk_limit_in_the_editor(dashboard: Dashboard, loopback: None) -> None:
    at = open_page(new_app(), "bots")
    at.selectbox(key=f"{KEY}_bot").set_value("gamma").run()
    limit = f"{KEY}_gamma_daily_loss_limit"
    assert at.number_input(key=limit).value is None  # no limit unless set
    at.number_input(key=limit).set_value(25.0)
    at.number_input(key=f"{KEY}_gamma_max_drawdown_pct").set_value(150.0)  # past 100 %
    [save] = [button for button in at.button if button.label == "Save"]
    save.click().run()
    assert any("max_drawdown_pct" in item.value for item in at.error)
    at.number_input(key=f"{KEY}_gamma_max_drawdown_pct").set_value(None)
    [save] = [button for button in at.button if button.label == "Save"]
    save.click().run()
    assert not at.exception, [item.value for item in at.exception]
    assert [item.value for item in at.success] == ["gamma: daily_loss_limit None → 25.0"]
    at.number_input(key=limit).set_value(None)
    [save] = [button for button in at.button if button.label == "Save"]
    save.click().run()
    assert [item.value for item in at.success] == ["gamma: daily_loss_limit 25.0 → None"]
    [row] = query(dashboard.database_url, "SELECT config FROM bots WHERE name = 'gamma'")
    assert "daily_loss_limit': None" in str(row.config) or '"daily_loss_limit": null' in str(
        row.config
    )
