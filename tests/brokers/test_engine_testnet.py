"""Done when: a bot in testnet mode, in a real running engine, trades through the real ccxt
client against the exchange simulator. It places, fills and closes positions; after the
simulator times out an accepted order the retry finds it and no duplicate exists; a
restart reconciles (and an order the database does not know is reported, not adopted)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from live.engine import EngineConfig
from live.replay.exchange import ExchangeSimulator, Fault, FaultKind
from tests.brokers.helpers import API_KEY, API_SECRET, account
from tests.engine.helpers import (
    Aio,
    Running,
    bot_config,
    config_for,
    execute,
    query,
    start_engine,
    walk,
)
from tradepipe.botconfig import parse_bot_config
from tradepipe.bots import NewBot, add_bot
from tradepipe.db import create_engine_for, session_scope
from tradepipe.enums import BotMode

CREDENTIALS = "SIMNET"
POLL_SECONDS = 0.03


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{CREDENTIALS}_API_KEY", API_KEY)
    monkeypatch.setenv(f"{CREDENTIALS}_API_SECRET", API_SECRET)


def add_testnet_bot(url: str, strategies: Path, name: str, **config: Any) -> None:
    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            settings = parse_bot_config(bot_config(credentials=CREDENTIALS, **config))
            new = NewBot(
                name,
                "always",
                "BTCUSDT",
                "1s",
                settings,
                mode=BotMode.TESTNET,
                confirmed_mode=BotMode.TESTNET,
            )
            add_bot(session, new, strategies)
    finally:
        engine.dispose()


class Market:
    """Public trades to both sides: the exchange matches on them, the feed carries them."""

    def __init__(self, exchange: ExchangeSimulator) -> None:
        self.exchange = exchange
        self.sent = 0
        # recent market times, as on a live exchange (fills of the last day are reconciled)
        self.origin_ms = (time.time_ns() // 1_000_000 // 1000 - 600) * 1000

    async def play(self, running: Running, count: int, aio: Aio) -> None:
        outbox = running.engine.core.outbox
        start = self.origin_ms + self.sent * 1_000
        for trade in walk(count, start_ms=start, first_id=self.sent + 1):
            self.exchange.on_trade(trade)
            running.feed.push(trade)
            await aio.within(self._settle(outbox))
        self.sent += count

    @staticmethod
    async def _settle(outbox: Any) -> None:
        """Orders out, then one status poll: fills reach the engine before the next trade
        (as when trades are seconds apart, not microseconds)."""
        if outbox.pending:
            await outbox.idle(4.0)  # within the caller's 5 s bound
        await asyncio.sleep(POLL_SECONDS * 1.5)


def closed_positions(url: str) -> int:
    return int(query(url, "SELECT COUNT(*) AS n FROM positions WHERE status = 'closed'")[0].n)


def test_a_testnet_bot_trades_survives_a_lost_answer_and_reconciles_after_restart(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_testnet_bot(database_url, strategies_dir, "tn")

    async def scenario() -> None:
        async with ExchangeSimulator(account(usdt=10_000.0), {API_KEY: API_SECRET}) as exchange:
            config = config_for(
                database_url,
                strategies_dir,
                exchange_testnet_url=exchange.url,
                exchange_timeout_seconds=0.5,
                exchange_poll_seconds=POLL_SECONDS,
                exchange_rate_limit_ms=0.0,
                reconcile_seconds=0.2,
            )
            market = Market(exchange)
            await trade_through_a_lost_answer(aio, database_url, config, exchange, market)
            stranger_id, lost_fill = meddle_while_the_engine_is_away(database_url, exchange)
            await restart_and_reconcile(
                aio, database_url, config, exchange, market, stranger_id, lost_fill
            )
        assert_every_order_of_the_bot_placed_once_and_recorded(database_url, exchange, lost_fill)

    aio.run(scenario(), timeout=120)


async def trade_through_a_lost_answer(
    aio: Aio, database_url: str, config: EngineConfig, exchange: ExchangeSimulator, market: Market
) -> None:
    """Two closes, then an order whose answer is lost after the exchange stored it: the
    retry finds it, no duplicate exists and the database has its exchange id."""
    running = await start_engine(config)
    engine = running.engine
    try:
        await market.play(running, 60, aio)
        await aio.eventually(lambda: closed_positions(database_url) >= 2, "two closes")
        # the next order's answer is lost after the exchange stored it
        exchange.inject(Fault(FaultKind.HANG_AFTER_ACCEPT, hang_seconds=2.0))
        before = len(exchange.placements())
        await market.play(running, 30, aio)
        await aio.eventually(
            lambda: len(exchange.placements()) > before + 1, "orders after the fault"
        )
        faulted = exchange.placements()[before].params["newClientOrderId"]
        await aio.eventually(lambda: engine.core.outbox.pending == 0, "the retry to settle", 10)
        [lost] = exchange.placements(faulted)
        assert lost.status is None  # stored, never answered: the client timed out
        assert len(exchange.orders_with_id(faulted)) == 1
        recorded = query(
            database_url,
            "SELECT status, exchange_order_id FROM orders WHERE client_order_id = :id",
            id=faulted,
        )
        assert recorded and recorded[0].exchange_order_id == str(
            exchange.orders_with_id(faulted)[0].order_id
        )
        assert engine.broker.name == "paper+testnet:SIMNET"
    finally:
        await engine.stop()


def meddle_while_the_engine_is_away(
    database_url: str, exchange: ExchangeSimulator
) -> tuple[int, Any]:
    """Two orders placed by hand at the exchange and one fill lost from the database;
    returns the resting stranger's exchange id and the lost fill's row."""
    # while the engine is away, someone places an order by hand on the account
    stranger = exchange.account.new_order(
        {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "price": "50.00", "quantity": "0.5", "newClientOrderId": "by_hand_1"},
        exchange.account.market_time_ms or 0,
    )  # fmt: skip
    exchange.account.new_order(  # and one that fills at once
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "10",
         "newClientOrderId": "by_hand_2"},
        exchange.account.market_time_ms or 0,
    )  # fmt: skip
    # and the database loses the record of one fill of a closed position
    [lost_fill] = query(
        database_url,
        "SELECT f.id, f.exchange_fill_id, o.client_order_id FROM fills f "
        "JOIN orders o ON o.id = f.order_id WHERE o.status = 'filled' "
        "ORDER BY f.id LIMIT 1",
    )
    execute(database_url, "DELETE FROM fills WHERE id = :id", id=lost_fill.id)
    return stranger.order_id, lost_fill


async def restart_and_reconcile(
    aio: Aio,
    database_url: str,
    config: EngineConfig,
    exchange: ExchangeSimulator,
    market: Market,
    stranger_id: int,
    lost_fill: Any,
) -> None:
    """The restart reports the strangers and the lost fill, adopts nothing, sends nothing
    again, trades on, and the periodic pass reports only what is new."""
    placed_before_restart = len(exchange.placements())
    running = await start_engine(config)
    engine = running.engine
    try:
        [reconciled] = engine.bus.recent("engine_reconciled")
        assert reconciled.data["unknown_orders"] == ["by_hand_1"]
        found = reconciled.data["unknown_fills"]
        [by_hand] = [f for f in found if "by_hand_2" in f]
        [never_recorded] = [f for f in found if "never recorded" in f]
        assert len(found) == 2
        assert "unknown order by_hand_2" in by_hand
        assert f"fill {lost_fill.exchange_fill_id} " in never_recorded
        assert f"of {lost_fill.client_order_id} never recorded" in never_recorded
        assert engine.bus.recent("reconcile_unknown")
        # a restart sends nothing that is still working at the exchange
        assert len(exchange.placements()) == placed_before_restart
        await market.play(running, 30, aio)
        closed_now = closed_positions(database_url)
        await market.play(running, 30, aio)
        await aio.eventually(
            lambda: closed_positions(database_url) > closed_now, "trading after restart"
        )
        # the periodic pass finds a new stranger, reports only what is new, and
        # leaves every stranger alone
        exchange.account.new_order(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "price": "51.00", "quantity": "0.5", "newClientOrderId": "by_hand_3"},
            exchange.account.market_time_ms or 0,
        )  # fmt: skip
        await aio.eventually(
            lambda: len(engine.bus.recent("reconcile_unknown")) >= 2, "periodic pass"
        )
        first, later = engine.bus.recent("reconcile_unknown")[:2]
        assert first.data["unknown_orders"] == ["by_hand_1"]
        assert later.data == {"unknown_orders": ["by_hand_3"], "unknown_fills": []}
        await market.play(running, 10, aio)  # more passes: nothing else is unknown
        assert len(engine.bus.recent("reconcile_unknown")) == 2
        assert exchange.account.orders[stranger_id].status == "NEW"
    finally:
        await engine.stop()


def assert_every_order_of_the_bot_placed_once_and_recorded(
    database_url: str, exchange: ExchangeSimulator, lost_fill: Any
) -> None:
    # every order the exchange holds for the bot was placed once and is in the database
    # (but the stop legs resting beside take-profits that never traded: those are the
    # venue's protection of the take-profit's position, ended with it)
    ids = Counter(
        o.client_order_id
        for o in exchange.account.orders.values()
        if o.order_type != "STOP_LOSS_LIMIT" or o.executed > 0
    )
    ours = {i: n for i, n in ids.items() if i.startswith("tn-")}
    assert ours and all(n == 1 for n in ours.values()), ours
    orders = query(database_url, "SELECT client_order_id, exchange_order_id FROM orders")
    recorded_ids = {row.client_order_id for row in orders}
    assert set(ours) <= recorded_ids
    # and the database says of each what the exchange says
    statuses = {
        row.client_order_id: row.status
        for row in query(database_url, "SELECT client_order_id, status FROM orders")
    }
    words = {"FILLED": "filled", "CANCELED": "cancelled", "NEW": "open", "EXPIRED": "expired"}
    at_exchange = {
        o.client_order_id: words[o.status]
        for o in exchange.account.orders.values()
        if o.client_order_id in ours
    }
    assert at_exchange == {order_id: statuses[order_id] for order_id in at_exchange}
    # every exchange trade of the bot is a fill in the database, by the exchange's id
    fills = {row.exchange_fill_id for row in query(database_url, "SELECT * FROM fills")}
    bot_orders = {o.order_id for o in exchange.account.orders.values() if o.client_order_id in ours}
    trades = {str(t.trade_id) for t in exchange.account.trades if t.order_id in bot_orders}
    assert trades and trades == fills | {lost_fill.exchange_fill_id}


def test_a_testnet_bot_without_its_credentials_trades_nothing_and_says_why(
    aio: Aio, database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_testnet_bot(database_url, strategies_dir, "tn")
    monkeypatch.delenv(f"{CREDENTIALS}_API_SECRET")

    async def scenario() -> None:
        async with ExchangeSimulator(account(), {API_KEY: API_SECRET}) as exchange:
            config = config_for(database_url, strategies_dir, exchange_testnet_url=exchange.url)
            running = await start_engine(config)
            try:
                await Market(exchange).play(running, 40, aio)
                await aio.eventually(
                    lambda: running.engine.bus.recent("order_rejected"), "the rejection"
                )
                [event] = running.engine.bus.recent("order_rejected")[:1]
                assert "SIMNET_API_SECRET" in event.message and event.bot == "tn"
                assert exchange.placements() == []
            finally:
                await running.engine.stop()

    aio.run(scenario(), timeout=60)
