"""Every dashboard page under Streamlit's AppTest against the seeded database (SQLite and
PostgreSQL): no exception, and the seeded values on the page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dashboard.apptest import PAGES, new_app, open_page, page_text, served_on
from tests.dashboard.conftest import Dashboard
from tests.seed_data import (
    BETA_ERROR,
    DATA_FINGERPRINT,
    ENGINE_VERSION,
    FEATURE_SPEC_HASH,
    MEAN_REVERT_ERROR,
    MEAN_REVERT_HASH,
    MOMENTUM_HASH,
    REVIEW_DIVERGENCE,
    SHADOW_DECISIONS,
)
from tradepipe.enums import OrderRole

SHORT = 12  # the dashboard shows hashes by their first 12 characters in tables
# Every page runs on both backends (test_page_shows_the_seeded_values); the interactions
# below exercise the pages, not the database, so SQLite is enough for them.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

EXPECTED = {
    "overview": [
        "Needs attention",
        BETA_ERROR,
        "**gamma** is stale",
        "Net realised PnL",
        "+1.15",  # 0.7 (alpha) + 0.45 (gamma)
        "Unrealised PnL",
        "+1.00",  # alpha's long, 0.5 @ 103 marked at 105
        "Trades today (UTC)",
        "67%",  # 2 wins out of 3 trades
        "engine-1",
        f"version {ENGINE_VERSION}",
        "bots: alpha, beta, gamma",
        "entry not filled yet",  # beta's pending position cannot be marked
        "stop_loss",  # today's trade
    ],
    "orders": [
        "tp-",  # client order ids
        MOMENTUM_HASH[:SHORT],
        "maker order timeout",
        "Inspect position",
        "Orders of this position",
    ],
    "bots": [
        BETA_ERROR,
        "btc-lgbm@champion",
        MOMENTUM_HASH[:SHORT],
        "not registered",
        "engine-1",
        "alpha, beta, gamma",
        ENGINE_VERSION,
    ],
    "models": [
        "btc-lgbm",
        "champion: **version 3**",
        "refused",
        "promoted",
        "sharpe_beats_champion",
        "failed",
        "version 4 refused: sharpe_beats_champion (value=0.9; champion=1.4)",
        DATA_FINGERPRINT,
        FEATURE_SPEC_HASH,
        MOMENTUM_HASH,
        "challenger",
        "Shadow runs",
        "challenger: version 4",
        str(SHADOW_DECISIONS),  # the shadow run's decisions
    ],
    "strategies": [
        "momentum",
        "mean_revert",
        MOMENTUM_HASH,
        MEAN_REVERT_HASH,
        MEAN_REVERT_ERROR,
        "line 12",
        "alpha, beta",
        "**delta** (vanished)",
    ],
    "reviews": [
        "alpha",
        "differ",  # its decisions
        "3 matched of 3 live, 4 backtest",
        REVIEW_DIVERGENCE,  # the newest review's divergences, with their causes
        "slippage: +1.20 bps from the candle price the backtest used (100.0)",
    ],
}


@pytest.fixture
def loopback() -> Iterator[None]:
    with served_on("127.0.0.1"):
        yield


def test_every_page_shows_the_seeded_values(dashboard: Dashboard, loopback: None) -> None:
    at = new_app()
    problems = []
    for page, title in PAGES.items():
        open_page(at, page)
        if at.exception:
            problems.append(f"{page}: {[item.value for item in at.exception]}")
            continue
        if [heading.value for heading in at.title] != [title]:
            problems.append(f"{page}: titled {[heading.value for heading in at.title]}")
        text = page_text(at)
        missing = [value for value in EXPECTED[page] if value not in text]
        if missing:
            problems.append(f"{page}: missing {missing}\n--- page text ---\n{text}")
        charts = [chart.proto.spec for chart in at.get("plotly_chart")]
        if page == "overview":  # the equity curve, its figure's JSON naming its traces
            drawn = len(charts) == 1 and '"all bots"' in charts[0] and '"gamma"' in charts[0]
        elif page == "orders":  # the newest position that traded (alpha's short), candles
            drawn = len(charts) == 1 and '"candlestick"' in charts[0]
        else:
            drawn = charts == []
        if not drawn:
            problems.append(f"{page}: unexpected charts {[spec[:200] for spec in charts]}")
    assert not problems, "\n".join(problems)


@SQLITE_ONLY
def test_position_drill_down(dashboard: Dashboard, loopback: None) -> None:
    seeded = dashboard.seeded
    at = open_page(new_app(), "orders")
    at.selectbox(key="inspect_position").set_value(str(seeded.win_id)).run()
    assert not at.exception
    text = page_text(at)
    for value in ("take_profit", "+1.80", "Fills", "t-tp-", "0.1"):
        assert value in text, value
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Entry"] == "100" and metrics["Exit"] == "102"
    assert metrics["Exit reason"] == "take_profit"
    (chart,) = at.get("plotly_chart")
    spec = chart.proto.spec
    assert '"candlestick"' in spec  # candles from the market data store
    assert '"entry"' in spec and '"exit"' in spec and "take profit 102" in spec
    assert at.query_params["position"] == str(seeded.win_id)  # the address links to it


@SQLITE_ONLY
def test_position_link_opens_the_position(dashboard: Dashboard, loopback: None) -> None:
    seeded = dashboard.seeded
    at = open_page(new_app(), "overview")
    (_, open_positions, trades_today) = (frame.value for frame in at.dataframe)
    assert list(trades_today["position"]) == [f"orders?position={seeded.loss_id}"]
    assert f"orders?position={seeded.active_id}" in list(open_positions["position"])

    at = new_app()
    at.query_params["position"] = str(seeded.timeout_id)  # gamma's trade, not the default
    open_page(at, "orders")
    assert not at.exception
    metrics = {metric.label: metric.value for metric in at.metric}
    assert (metrics["Exit reason"], metrics["Net PnL"]) == ("timeout", "+0.45")


@SQLITE_ONLY
def test_orders_filters(dashboard: Dashboard, loopback: None) -> None:
    at = open_page(new_app(), "orders")
    at.selectbox(key="orders_bot").set_value("gamma").run()
    (orders,) = [frame.value for frame in at.dataframe][:1]
    assert set(orders["bot"]) == {"gamma"} and len(orders) == 2
    at.multiselect[1].set_value([OrderRole.TIMEOUT_EXIT]).run()  # role
    orders = at.dataframe[0].value
    assert list(orders["role"]) == ["timeout exit"]
    assert list(orders["strategy hash"]) == [MEAN_REVERT_HASH[:SHORT]]
    at.selectbox(key="orders_range").set_value("Last 24 hours").run()
    assert not at.exception
    assert "No orders match these filters." in page_text(at)


@SQLITE_ONLY
def test_bots_page_flags_errors_and_stale_heartbeats(dashboard: Dashboard, loopback: None) -> None:
    at = open_page(new_app(), "bots")
    bots, engines = (frame.value for frame in at.dataframe)
    status = dict(zip(bots["bot"], bots["status"], strict=True))
    assert status == {"alpha": "running", "beta": "error", "delta": "stopped", "gamma": "stale"}
    heartbeat = dict(zip(bots["bot"], bots["heartbeat"], strict=True))
    assert heartbeat["delta"] == "never" and heartbeat["gamma"].startswith("10 min")
    model_version = dict(zip(bots["bot"], bots["model version"], strict=True))
    assert model_version["alpha"] == "3"
    assert list(engines["bots owned"]) == ["alpha, beta, gamma"]
    assert "api_token" not in page_text(at)  # secret-looking heartbeat details are left out
