"""Done when: on the exchange simulator an engine SIGKILLed with an open testnet position
has a resting stop that fills when the market falls; the restarted engine closes the
position from that venue fill (reason stop_loss, the venue's price and fee). And: an
engine that starts to find a position whose take-profit rests without its stop (placed
with venue protection off) places the protection again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from live.replay import ReplayMessage, ReplayServer, SyntheticSource
from live.replay.exchange import ExchangeSimulator, SimOrder
from tests.brokers.helpers import API_KEY, API_SECRET, account
from tests.brokers.test_engine_testnet import CREDENTIALS, add_testnet_bot
from tests.engine.helpers import START_MS, Aio, MarketTimes, query
from tests.engine.processes import EngineProcess, last_event_id, open_positions, reconciled_after
from tradepipe.domain import Side, Trade

SPEED = 100


class Gate:
    """The replay's trades to the exchange while open; closed, the test alone moves the
    exchange's market."""

    def __init__(self, exchange: ExchangeSimulator) -> None:
        self.exchange = exchange
        self.open = True

    def __call__(self, message: ReplayMessage) -> None:
        if self.open:
            self.exchange.on_message(message)


def resting_stops(exchange: ExchangeSimulator) -> list[SimOrder]:
    return [
        o
        for o in exchange.account.orders.values()
        if o.order_type == "STOP_LOSS_LIMIT" and o.is_open
    ]


def held(url: str) -> dict[str, Any] | None:
    """The open position whose take-profit the venue acknowledged, if any."""
    for position in open_positions(url).values():
        exits = position["exits"]
        if position["status"] == "active" and exits and exits[0]["status"] == "open":
            return position
    return None


@pytest.fixture
def engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # the engine process inherits them: the credentials by name, as in production
    monkeypatch.setenv(f"{CREDENTIALS}_API_KEY", API_KEY)
    monkeypatch.setenv(f"{CREDENTIALS}_API_SECRET", API_SECRET)


def start_bot(url: str, strategies: Path) -> None:
    add_testnet_bot(
        url,
        strategies,
        "tn",
        take_profit_pct=1.0,  # far enough that the engine's own barriers stay quiet
        stop_loss_pct=1.0,
        max_holding_seconds=86_400.0,
        max_open_positions=1,
    )


def exchange_settings(exchange: ExchangeSimulator, **more: object) -> dict[str, object]:
    return {
        "exchange_testnet_url": exchange.url,
        "exchange_poll_seconds": 0.05,
        "exchange_rate_limit_ms": 0,
        **more,
    }


def test_a_sigkilled_engine_leaves_a_resting_stop_that_fills_and_closes_the_position(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path, engine_env: None
) -> None:
    start_bot(database_url, strategies_dir)
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))

    async def scenario() -> None:
        exchange = ExchangeSimulator(account(usdt=100_000.0), {API_KEY: API_SECRET})
        gate = Gate(exchange)
        replay = ReplayServer(source, speed=SPEED, on_publish=gate)
        async with exchange, replay:
            engine = EngineProcess(
                database_url, replay, strategies_dir, tmp_path / "engine.log",
                **exchange_settings(exchange),
            )  # fmt: skip
            try:
                engine.start()
                position = await engine.until(
                    lambda: held(database_url) if resting_stops(exchange) else None,
                    "an open position with its stop resting at the exchange",
                )
                assert position is not None
                gate.open = False  # from here on the test moves the exchange's market
                assert await engine.kill() < 0
                seq, quantity = position["seq"], position["entry"]["filled_quantity"]
                [stop] = resting_stops(exchange)
                # every open position is protected at the venue, for all it holds
                assert stop.client_order_id == f"tn-{seq}-vs"
                assert float(stop.quantity) == pytest.approx(quantity, abs=1e-5)
                assert float(stop.stop_price) == pytest.approx(
                    position["stop_loss_price"], abs=0.01
                )
                # with the engine dead, the market falls through the stop
                price = float((stop.stop_price * Decimal("0.998")).quantize(Decimal("0.01")))
                when = (exchange.account.market_time_ms or 0) + 1_000
                exchange.on_trade(Trade("BTCUSDT", when, price, 1.0, Side.SELL, 10**9))
                assert stop.status == "FILLED"
                [fill] = [t for t in exchange.account.trades if t.order_id == stop.order_id]
                last_event = last_event_id(database_url)
                engine.start()
                await engine.until(
                    lambda: reconciled_after(database_url, last_event), "the restart"
                )
                [closed] = await engine.until(
                    lambda: closed_position(database_url, seq), "the position closed"
                )
                assert closed.exit_reason == "stop_loss"
                assert closed.exit_price == pytest.approx(price)
                entry_fee = position["entry"]["fee"]
                assert closed.fees == pytest.approx(entry_fee + float(fill.commission))
                orders = {
                    row.client_order_id: (row.role, row.status)
                    for row in query(
                        database_url, "SELECT client_order_id, role, status FROM orders"
                    )
                }
                assert orders[f"tn-{seq}-vs"] == ("stop_loss", "filled")
                assert orders[f"tn-{seq}-tp"] == ("take_profit", "expired")
                recorded = query(
                    database_url,
                    "SELECT f.exchange_fill_id AS id FROM fills f JOIN orders o "
                    "ON o.id = f.order_id WHERE o.client_order_id = :id",
                    id=f"tn-{seq}-vs",
                )
                assert [row.id for row in recorded] == [str(fill.trade_id)]
                assert await engine.stop() == 0
            finally:
                engine.cleanup()
        # sold once: the venue's stop, never an engine exit besides it
        sells = [
            t
            for t in exchange.account.trades
            if t.side == "SELL"
            and exchange.account.orders[t.order_id].client_order_id.startswith(f"tn-{seq}-")
        ]
        assert [t.order_id for t in sells] == [stop.order_id]

    aio.run(scenario(), timeout=150)


def test_a_take_profit_found_without_its_stop_at_start_is_protected_again(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path, engine_env: None
) -> None:
    start_bot(database_url, strategies_dir)
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))

    async def scenario() -> None:
        exchange = ExchangeSimulator(account(usdt=100_000.0), {API_KEY: API_SECRET})
        replay = ReplayServer(source, speed=SPEED, on_publish=exchange.on_message)
        async with exchange, replay:
            log = tmp_path / "engine.log"
            unprotected = EngineProcess(
                database_url, replay, strategies_dir, log,
                **exchange_settings(exchange, exchange_venue_protection=False),
            )  # fmt: skip
            protected = EngineProcess(
                database_url, replay, strategies_dir, log, **exchange_settings(exchange)
            )
            try:
                unprotected.start()
                position = await unprotected.until(
                    lambda: held(database_url), "an open position with its take-profit"
                )
                assert position is not None
                assert await unprotected.kill() < 0
                assert resting_stops(exchange) == [] and not exchange.oco_placements()
                seq = position["seq"]
                protected.start()
                [stop] = await protected.until(
                    lambda: resting_stops(exchange), "the stop placed again", timeout=60
                )
                assert stop.client_order_id == f"tn-{seq}-vs"
                legs = exchange.orders_with_id(f"tn-{seq}-tp")
                assert [o.status for o in legs] == ["CANCELED", "NEW"]
                assert legs[-1].order_list_id == stop.order_list_id >= 0
                assert stop.quantity == legs[-1].quantity
                # the book never noticed the swap: its take-profit is working as before
                again = open_positions(database_url)[("tn", seq)]
                assert again["exits"][0]["status"] == "open"
                assert await protected.stop() == 0
            finally:
                unprotected.cleanup()
                protected.cleanup()

    aio.run(scenario(), timeout=150)


def closed_position(url: str, seq: int) -> list[Any]:
    """The closed position `seq` of bot tn (found through its entry order)."""
    return query(
        url,
        "SELECT p.exit_reason, p.exit_price, p.fees FROM positions p JOIN orders o "
        "ON o.position_id = p.id WHERE o.client_order_id = :id AND p.status = 'closed'",
        id=f"tn-{seq}-en",
    )
