"""PATCH /api/bots/NAME over a real engine and a real uvicorn on loopback: the change is
validated, recorded with who and the old and new values, and applies from the bot's next
entry while the position it already holds keeps its barriers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.harness import engine_api
from tests.engine.helpers import Aio, push, query, walk


def test_a_changed_take_profit_applies_to_the_next_entry_only(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    answers: dict[str, Any] = {}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            engine = api.running.engine
            trades = walk(200)
            opened: list[Any] = []
            while not opened:  # alpha ("always") enters once its candles are warm
                await push(api.running, [next(trades)])
                await engine.recorder.wait_durable(engine.recorder.last_submitted, 10)
                opened = query(database_url, "SELECT id FROM positions")
            answers["before"] = max(row.id for row in opened)
            path = "/api/bots/alpha"
            answers["no_token"] = await api.client.patch(path, json={"take_profit_pct": 0.3})
            answers["changed"] = await api.client.patch(
                path, json={"take_profit_pct": 0.3}, headers=api.auth()
            )
            answers["applied"] = engine.core.bots["alpha"].row.config.take_profit_pct
            answers["refused"] = await api.client.patch(
                path, json={"stop_loss_pct": 200}, headers=api.auth()
            )
            answers["unknown_field"] = await api.client.patch(
                path, json={"symbol": "ETHUSDT"}, headers=api.auth()
            )
            answers["unknown_bot"] = await api.client.patch(
                "/api/bots/ghost", json={"take_profit_pct": 1}, headers=api.auth()
            )
            await push(api.running, trades)
            await engine.recorder.wait_durable(engine.recorder.last_submitted, 10)

    aio.run(scenario())

    assert answers["no_token"].status_code == 401
    changed = answers["changed"]
    assert changed.status_code == 200, changed.text
    change = changed.json()["change"]
    assert change["old"] == {"take_profit_pct": 0.05} and change["new"] == {"take_profit_pct": 0.3}
    assert change["by"] == "api:127.0.0.1"
    assert answers["applied"] == 0.3  # in the engine before the answer
    assert answers["refused"].status_code == 422
    assert "stop_loss_pct" in answers["refused"].json()["error"]
    assert answers["unknown_field"].status_code == 422
    assert "cannot set symbol" in answers["unknown_field"].json()["error"]
    assert answers["unknown_bot"].status_code == 404

    positions = query(
        database_url,
        "SELECT p.id, p.entry_price, p.take_profit_price FROM positions p JOIN bots b "
        "ON b.id = p.bot_id WHERE b.name = 'alpha' AND p.entry_price IS NOT NULL ORDER BY p.id",
    )
    first = [row for row in positions if row.id <= answers["before"]]
    later = [row for row in positions if row.id > answers["before"]]
    assert first and later
    for row in first:  # opened before the change: its barrier stays
        assert abs(row.take_profit_price / row.entry_price - 1.0005) < 1e-9
    for row in later:
        assert abs(row.take_profit_price / row.entry_price - 1.003) < 1e-9
    events = query(database_url, "SELECT payload FROM events WHERE kind = 'bot_config_changed'")
    assert len(events) == 1


def test_create_and_delete_a_bot_through_the_api(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    config = {
        "capital_per_trade": 50.0,
        "take_profit_pct": 0.1,
        "stop_loss_pct": 0.1,
        "max_holding_seconds": 60.0,
        "maker_order_timeout_seconds": 10.0,
    }
    new = {"name": "gamma", "strategy": "always", "symbol": "BTCUSDT", "timeframe": "1s",
           "config": config}  # fmt: skip
    answers: dict[str, Any] = {}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            post, auth = api.client.post, api.auth()
            answers["no_token"] = await post("/api/bots", json=new)
            answers["created"] = await post("/api/bots", json=new, headers=auth)
            answers["running"] = api.running.engine.bot_status("gamma")
            answers["again"] = await post("/api/bots", json=new, headers=auth)
            bad = {**new, "name": "delta", "config": {**config, "stop_loss_pct": 100}}
            answers["bad"] = await post("/api/bots", json=bad, headers=auth)
            unknown = {**new, "name": "delta", "strategy": "nope"}
            answers["unknown_strategy"] = await post("/api/bots", json=unknown, headers=auth)
            answers["deleted"] = await api.client.delete("/api/bots/gamma", headers=auth)
            answers["gone"] = await api.client.delete("/api/bots/gamma", headers=auth)
            answers["dropped"] = api.running.engine.bot_status("gamma")
            await push(api.running, walk(60))  # alpha trades: it has history now
            await api.running.engine.recorder.wait_durable(
                api.running.engine.recorder.last_submitted, 10
            )
            answers["history"] = await api.client.delete("/api/bots/alpha", headers=auth)

    aio.run(scenario())
    assert answers["no_token"].status_code == 401
    assert answers["created"].status_code == 201, answers["created"].text
    assert answers["created"].json()["bot"]["name"] == "gamma"
    assert answers["running"] is not None  # the engine took it at once
    assert answers["again"].status_code == 409
    assert answers["bad"].status_code == 422 and "stop_loss_pct" in answers["bad"].text
    assert answers["unknown_strategy"].status_code == 422
    assert "unknown strategy 'nope'" in answers["unknown_strategy"].json()["error"]
    assert answers["history"].status_code == 409, answers["history"].text
    assert answers["deleted"].status_code == 200, answers["deleted"].text
    assert answers["gone"].status_code == 404
    assert answers["dropped"] is None  # the engine let it go at once
    assert not query(database_url, "SELECT id FROM bots WHERE name IN ('gamma', 'delta')")
