"""An operator's hand on open positions, through a real engine: a moved barrier applies to
the open position (it then exits there), one position is closed at market with exit reason
`operator`, and `bots set --move-open` gives open positions the new barriers; through the
API (in-process, at once) and through the CLI (a request the engine follows at its poll)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.api.harness import engine_api
from tests.engine.helpers import START_MS, Aio, Running, add_bots, query, walk
from tradepipe.domain import Trade

# barriers far away: a position stays open until the operator moves them
WIDE = {"take_profit_pct": 50.0, "stop_loss_pct": 50.0, "max_holding_seconds": 3600.0}


class Market:
    """Trades that go on from where the last ones ended (time, id, price)."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.count = 0
        self.price = 100.0

    def trades(self, count: int, moves: tuple[float, ...] = (1.0002, 0.9998)) -> Iterator[Trade]:
        for trade in walk(
            count, start_ms=START_MS + self.count * 1_000, price=self.price, moves=moves,
            first_id=self.count + 1,
        ):  # fmt: skip
            self.count += 1
            self.price = trade.price
            yield trade

    async def push(self, count: int, moves: tuple[float, ...] = (1.0002, 0.9998)) -> None:
        from tests.engine.helpers import push

        await push(self.running, self.trades(count, moves))
        recorder = self.running.engine.recorder
        await recorder.wait_durable(recorder.last_submitted, 10)


def active_position(database_url: str) -> Any:
    rows = query(database_url, "SELECT * FROM positions WHERE status = 'active' ORDER BY id")
    return rows[-1] if rows else None


def position(database_url: str, position_id: int) -> Any:
    return query(database_url, "SELECT * FROM positions WHERE id = :id", id=position_id)[0]


def test_a_moved_barrier_applies_to_the_open_position_through_the_api(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("mkt", "always")], **WIDE)
    answers: dict[str, Any] = {}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            market = Market(api.running)
            while active_position(database_url) is None:
                await market.push(1)
            held = active_position(database_url)
            answers["id"], price = held.id, market.price
            path = f"/api/positions/{held.id}"
            answers["no_token"] = await api.client.patch(path, json={"stop_loss_price": 99.0})
            answers["wrong_side"] = await api.client.patch(
                path, json={"stop_loss_price": price * 1.01}, headers=api.auth()
            )
            answers["unknown"] = await api.client.patch(
                "/api/positions/999", json={"stop_loss_price": 1.0}, headers=api.auth()
            )
            wanted = {"stop_loss_price": round(price * 0.998, 6),
                      "take_profit_price": round(price * 1.004, 6)}  # fmt: skip
            answers["wanted"] = wanted
            answers["moved"] = await api.client.patch(path, json=wanted, headers=api.auth())
            await market.push(3)  # the old take-profit's cancel confirmed, the new one rests
            await market.push(15, moves=(0.9996,))  # down through the moved stop
            await api.running.engine.stop()

    aio.run(scenario())
    assert answers["no_token"].status_code == 401
    refused = answers["wrong_side"]
    assert refused.status_code == 422
    assert "stop-loss of a long must be below the current price" in refused.json()["error"]
    assert answers["unknown"].status_code == 404
    moved = answers["moved"]
    assert moved.status_code == 200, moved.text
    wanted = answers["wanted"]
    entry = position(database_url, answers["id"]).entry_price
    assert moved.json()["old"]["stop_loss_price"] == pytest.approx(entry * 0.5)
    assert moved.json()["new"]["stop_loss_price"] == wanted["stop_loss_price"]

    row = position(database_url, answers["id"])
    assert (row.status, row.exit_reason) == ("closed", "stop_loss")
    assert row.stop_loss_price == wanted["stop_loss_price"]
    assert row.take_profit_price == wanted["take_profit_price"]
    assert wanted["stop_loss_price"] * 0.999 < row.exit_price <= wanted["stop_loss_price"]
    orders = query(
        database_url,
        "SELECT client_order_id, price, status FROM orders WHERE position_id = :id ORDER BY id",
        id=answers["id"],
    )
    take_profits = [
        (o.client_order_id, o.price, o.status) for o in orders if "-tp" in o.client_order_id
    ]
    assert take_profits[0][0] == "mkt-1-tp" and take_profits[0][2] == "cancelled"
    assert take_profits[1] == ("mkt-1-tp-2", wanted["take_profit_price"], "cancelled")
    [event] = query(
        database_url, "SELECT payload FROM events WHERE kind = 'position_barriers_moved'"
    )
    payload = json.loads(event.payload)
    assert payload["by"] == "api:127.0.0.1"
    assert payload["new"]["stop_loss_price"] == wanted["stop_loss_price"]
    assert payload["old"]["stop_loss_price"] != wanted["stop_loss_price"]


def test_the_cli_closes_one_position_and_moves_barriers_in_a_running_engine(
    aio: Aio, database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tradepipe positions move|close` and `bots set --move-open` write requests; the engine
    follows them at its next poll: the moved take-profit fills at its new price, the closed
    position leaves at market with exit reason operator, the new config's barriers reach the
    open position."""
    add_bots(database_url, strategies_dir, [("mkt", "always")], **WIDE)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    runner = CliRunner()
    seen: dict[str, Any] = {}

    def cli(*args: str, code: int = 0) -> str:
        done = runner.invoke(app, list(args))
        assert done.exit_code == code, done.stdout + done.stderr
        return done.stdout + done.stderr

    async def until_active(market: Market, after: int = 0) -> Any:
        while (held := active_position(database_url)) is None or held.id <= after:
            await market.push(1)
        return held

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            engine, market = api.running.engine, Market(api.running)
            first = await until_active(market)
            await aio.eventually(
                lambda: '"price_source": "engine"' in cli("positions", "list", "--json"),
                "the published price",
            )
            seen["list"] = json.loads(cli("positions", "list", "--json").splitlines()[0])
            seen["refused"] = cli(
                "positions", "move", str(first.id), "--stop-loss-price",
                str(market.price * 1.05), code=1,
            )  # fmt: skip
            target = round(market.price * 1.002, 6)
            cli("positions", "move", str(first.id), "--take-profit-price", str(target))
            seen["first"], seen["target"] = first.id, target
            await aio.eventually(lambda: _moved(engine, target), "the moved take-profit")
            await market.push(12, moves=(1.0004,))  # up through the moved take-profit
            second = await until_active(market, after=first.id)
            # 2 %: far above where the market still goes (the entry came during the rise)
            cli("bots", "set", "mkt", "--take-profit-pct", "2", "--move-open")
            await aio.eventually(lambda: _moved(engine, round(second.entry_price * 1.02, 6)),
                                 "the configured take-profit on the open position")  # fmt: skip
            cli("positions", "close", str(second.id))
            seen["second"] = second.id
            # no trade until the engine has followed the request: only its exit may end it
            await aio.eventually(lambda: _applied(database_url) == 3, "the close request followed")
            while position(database_url, second.id).status != "closed":
                await market.push(1)  # the market exit fills at the next trade
            await engine.stop()

    aio.run(scenario())
    listed = seen["list"]
    assert listed["id"] == seen["first"] and listed["price_source"] == "engine"
    assert listed["unrealised_pnl"] is not None and listed["price_age_seconds"] is not None
    assert "stop-loss of a long must be below the current price" in seen["refused"]
    first = position(database_url, seen["first"])
    assert (first.exit_reason, first.take_profit_price) == ("take_profit", seen["target"])
    assert first.exit_price == pytest.approx(seen["target"])
    second = position(database_url, seen["second"])
    assert (second.status, second.exit_reason) == ("closed", "operator")
    assert second.take_profit_price == pytest.approx(second.entry_price * 1.02)
    kinds = [row.kind for row in query(database_url, "SELECT kind FROM events ORDER BY id")]
    assert kinds.count("position_barriers_moved") == 2
    assert kinds.count("position_closed_by_operator") == 1
    states = query(database_url, "SELECT value FROM engine_controls WHERE name LIKE 'op:%'")
    assert len(states) == 3 and all('"state": "applied"' in row.value for row in states)
    closing = query(
        database_url, "SELECT payload FROM events WHERE kind = 'position_closed_by_operator'"
    )
    assert json.loads(closing[0].payload)["by"].startswith("cli")


def _applied(database_url: str) -> int:
    """How many operator requests the engine has followed (applied)."""
    rows = query(database_url, "SELECT value FROM engine_controls WHERE name LIKE 'op:%'")
    return sum('"state": "applied"' in row.value for row in rows)


def _moved(engine: Any, take_profit: float) -> bool:
    positions = engine.core.bots["mkt"].book.positions
    return bool(positions) and positions[0].take_profit_price == pytest.approx(take_profit)


def test_the_api_closes_one_position_and_moves_open_positions_with_a_config_change(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("mkt", "always")], **WIDE)
    answers: dict[str, Any] = {}

    async def scenario() -> None:
        async with engine_api(database_url, strategies_dir) as api:
            market = Market(api.running)
            while (held := active_position(database_url)) is None:
                await market.push(1)
            answers["too_tight"] = await api.client.patch(
                "/api/bots/mkt", json={"stop_loss_pct": 0.0001, "move_open": True},
                headers=api.auth(),
            )  # fmt: skip
            answers["moved"] = await api.client.patch(
                "/api/bots/mkt", json={"stop_loss_pct": 2.0, "move_open": True}, headers=api.auth()
            )
            answers["listed"] = (await api.client.get("/api/positions?status=active")).json()
            answers["pnl"] = (await api.client.get("/api/pnl")).json()
            answers["price"] = market.price
            path = f"/api/positions/{held.id}/close"
            answers["no_token"] = await api.client.post(path)
            answers["closed"] = await api.client.post(path, headers=api.auth())
            answers["again"] = await api.client.post(path, headers=api.auth())
            answers["id"] = held.id
            await market.push(3)
            await api.running.engine.stop()

    aio.run(scenario())
    too_tight = answers["too_tight"]
    assert too_tight.status_code == 422 and "no position moved" in too_tight.json()["error"]
    moved = answers["moved"].json()["moved"]
    assert answers["moved"].status_code == 200 and len(moved) == 1
    assert moved[0]["new"]["stop_loss_price"] == pytest.approx(
        moved[0]["old"]["stop_loss_price"] / 0.5 * 0.98
    )
    [listed] = answers["listed"]["positions"]
    mark = listed["mark"]  # at the engine's last trade, not the entry fill
    assert (mark["price"], mark["price_source"]) == (answers["price"], "engine")
    assert mark["unrealised_pnl"] == pytest.approx(
        (answers["price"] - listed["entry_price"]) * listed["quantity"]
    )
    assert mark["price_age_seconds"] is not None and mark["note"] is None
    unrealised = answers["pnl"]["unrealised"]
    assert unrealised["total"] == pytest.approx(mark["unrealised_pnl"])
    assert unrealised["price_sources"] == ["engine"] and unrealised["marked"] == 1
    assert answers["no_token"].status_code == 401
    assert answers["closed"].status_code == 200, answers["closed"].text
    assert answers["again"].status_code == 409
    row = position(database_url, answers["id"])
    assert (row.status, row.exit_reason) == ("closed", "operator")


def test_requests_that_cannot_be_taken_are_refused_with_a_clear_error(
    database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_bots(database_url, strategies_dir, [("mkt", "always")], **WIDE)
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    runner = CliRunner()

    def refused(*args: str) -> str:
        done = runner.invoke(app, list(args))
        assert done.exit_code == 1, done.stdout
        return done.stderr

    assert "no position 999" in refused("positions", "close", "999")
    assert "no position 999" in refused("positions", "move", "999", "--stop-loss-price", "1")
    assert "no bot called 'ghost'" in refused("bots", "set", "ghost", "--move-open")
    assert query(database_url, "SELECT name FROM engine_controls WHERE name LIKE 'op:%'") == []
