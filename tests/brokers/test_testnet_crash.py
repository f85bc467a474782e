"""A testnet bot's engine SIGKILLed while it holds positions at the exchange simulator, the
market trading on without it, then restarted: every order it had at the exchange is found
(not placed again), fills that happened while it was away arrive, and afterwards the
database says of every order what the exchange says."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from functools import partial
from pathlib import Path

import pytest

from live.replay import ReplayServer, SyntheticSource
from live.replay.exchange import ExchangeSimulator
from tests.brokers.helpers import API_KEY, API_SECRET, account
from tests.brokers.test_engine_testnet import CREDENTIALS, add_testnet_bot
from tests.engine.helpers import START_MS, Aio, MarketTimes, query
from tests.engine.processes import (
    engine_command,
    log_waiter,
    open_positions,
    reconciled_after,
    start,
)

SPEED = 100
WORDS = {"FILLED": "filled", "CANCELED": "cancelled", "NEW": "open", "EXPIRED": "expired"}


def test_sigkill_of_a_testnet_engine_then_restart_finds_every_order(
    aio: Aio,
    tmp_path: Path,
    database_url: str,
    strategies_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the engine process inherits them: the credentials by name, as in production
    monkeypatch.setenv(f"{CREDENTIALS}_API_KEY", API_KEY)
    monkeypatch.setenv(f"{CREDENTIALS}_API_SECRET", API_SECRET)
    add_testnet_bot(
        database_url,
        strategies_dir,
        "tn",
        take_profit_pct=0.05,  # close enough to be taken while the engine is away
        stop_loss_pct=0.5,
        max_holding_seconds=300.0,
        max_open_positions=2,
    )
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    log = tmp_path / "engine.log"
    processes: list[subprocess.Popen[bytes]] = []

    until = log_waiter(log)

    async def scenario() -> None:
        exchange = ExchangeSimulator(account(usdt=100_000.0), {API_KEY: API_SECRET})
        replay = ReplayServer(source, speed=SPEED, on_publish=exchange.on_message)
        async with exchange, replay:
            command = engine_command(database_url, replay, strategies_dir)
            for name, value in {
                "exchange_testnet_url": exchange.url,
                "exchange_poll_seconds": 0.05,
                "exchange_rate_limit_ms": 0,
            }.items():
                command += ["--set", f"{name}={value}"]
            processes.append(start(command, log))

            await until(
                partial(take_profit_resting_at_the_exchange, database_url, exchange),
                "an open position with its take-profit at the exchange",
                timeout=90,
            )
            processes[0].send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(processes[0].wait, 10) == -signal.SIGKILL
            placed_at_kill = placed_ids(exchange)
            last_event = query(database_url, "SELECT MAX(id) AS id FROM events")[0].id or 0
            trades_at_kill = len(exchange.account.trades)

            def filled_while_away() -> set[int]:
                return {t.order_id for t in exchange.account.trades[trades_at_kill:]}

            # the market trades on with the bot away until its take-profit is taken
            taken_away = await until(filled_while_away, "a fill while the engine is away", 60)

            processes.append(start(command, log))
            event = await until(
                lambda: reconciled_after(database_url, last_event), "restart", timeout=90
            )
            assert event["orphans"] == [] and event["unknown_orders"] == []
            closed_before = count_closed(database_url)
            await until(
                lambda: count_closed(database_url) > closed_before + 1, "trading on", timeout=90
            )
            processes[1].send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(processes[1].wait, 20) == 0

        assert_nothing_placed_twice_and_the_database_agrees(
            database_url, exchange, placed_at_kill, taken_away
        )

    try:
        aio.run(scenario(), timeout=120)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def count_closed(url: str) -> int:
    return int(query(url, "SELECT COUNT(*) AS n FROM positions WHERE status = 'closed'")[0].n)


def placed_ids(exchange: ExchangeSimulator) -> Counter[str]:
    """The client order ids of every order placed: single orders, and the take-profit leg
    of each OCO (its stop leg is the venue's protection of it)."""
    ids = Counter(r.params["newClientOrderId"] for r in exchange.placements())
    # an OCO refused (the market already past a leg) went out as the take-profit alone
    ids.update(r.params["aboveClientOrderId"] for r in exchange.oco_placements() if r.status == 200)
    return ids


def take_profit_resting_at_the_exchange(database_url: str, exchange: ExchangeSimulator) -> bool:
    positions = open_positions(database_url).values()
    resting = any(  # and still resting there: not filled before the kill
        o.client_order_id.endswith("-tp") and o.is_open for o in exchange.account.orders.values()
    )
    return resting and any(p["status"] == "active" and p["exits"] for p in positions)


def assert_nothing_placed_twice_and_the_database_agrees(
    database_url: str,
    exchange: ExchangeSimulator,
    placed_at_kill: Counter[str],
    taken_away: set[int],
) -> None:
    # nothing placed twice: not across the crash, not ever
    placed = placed_ids(exchange)
    assert placed and max(placed.values()) == 1, placed
    at_exchange = Counter(o.client_order_id for o in exchange.account.orders.values())
    assert max(at_exchange.values()) == 1
    assert set(placed_at_kill) <= set(placed)
    # of every order from before the crash, the database says what the exchange says,
    # fills taken while the engine was away included (later orders may have filled
    # after the final stop: the next start's reconciliation would bring those)
    recorded = {
        r.client_order_id: r.status
        for r in query(database_url, "SELECT client_order_id, status FROM orders")
    }
    before = [o for o in exchange.account.orders.values() if o.client_order_id in placed_at_kill]
    for order in before:
        assert recorded[order.client_order_id] == WORDS[order.status], order
    assert {o.order_id for o in before if o.status == "FILLED"} >= taken_away
