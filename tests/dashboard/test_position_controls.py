"""The Bots page's open positions under Streamlit's AppTest on the seeded database: a barrier
move that cannot hold is refused with its reason and writes nothing; a valid one, and a
close, are written as requests for the engine with `dashboard` as who."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.dashboard.apptest import new_app, open_page, served_on
from tests.dashboard.conftest import Dashboard
from tests.engine.helpers import execute, query

KEY = "tradepipe_positions"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def loopback() -> Iterator[None]:
    with served_on("127.0.0.1"):
        yield


def test_move_and_close_an_open_position_on_the_bots_page(
    dashboard: Dashboard, loopback: None
) -> None:
    url, active = dashboard.database_url, dashboard.seeded.active_id
    execute(
        url,
        "UPDATE orders SET client_order_id = 'alpha-9-en' WHERE position_id = :id "
        "AND role = 'entry'",
        id=active,
    )
    at = open_page(new_app(), "bots")
    [label] = [
        o for o in at.selectbox(key=f"{KEY}_position").options if o.startswith(f"#{active} ")
    ]
    at.selectbox(key=f"{KEY}_position").set_value(label).run()

    # the form shows the chosen position's own barriers
    assert at.number_input(key=f"{KEY}_tp_{active}").value == 104.03

    def move(stop_loss: float) -> list[str]:
        at.number_input(key=f"{KEY}_sl_{active}").set_value(stop_loss)
        [button] = [b for b in at.button if b.label == "Move barriers"]
        button.click().run()
        assert not at.exception, [item.value for item in at.exception]
        return [str(item.value) for item in (*at.error, *at.success)]

    assert move(200.0) == [
        f"position {active}: the take-profit (104.03) must be above the stop-loss (200)"
    ]
    assert query(url, "SELECT name FROM engine_controls WHERE name LIKE 'op:%'") == []
    assert move(102.9) == [f"position {active} takes its new barriers at the engine's next poll"]
    [button] = [b for b in at.button if b.label == "Close position"]
    button.click().run()
    rows = query(
        url, "SELECT value FROM engine_controls WHERE name LIKE 'op:%' ORDER BY updated_at"
    )
    asked = [json.loads(row.value) for row in rows]
    assert [(a["action"], a["by"], a["stop_loss_price"]) for a in asked] == [
        ("move_barriers", "dashboard", 102.9),
        ("close_position", "dashboard", None),
    ]
