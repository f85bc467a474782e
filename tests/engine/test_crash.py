"""The crash test: the engine as a real process (`python -m live.engine`) trading on a real
replay server, SIGKILLed while it holds open positions and working orders, restarted: every
position resumes (with its barriers and its deadline), every working order is sent to the
broker again exactly once, no order is lost or duplicated; then SIGTERM stops it cleanly
with exit status 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from functools import partial
from pathlib import Path

from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import START_MS, Aio, MarketTimes, add_bots, query
from tests.engine.processes import (
    engine_command,
    log_waiter,
    open_positions,
    reconciled_after,
    start,
    working_orders,
)

SPEED = 100  # the market runs 100 times faster than the wall clock


def test_sigkill_with_open_positions_then_restart_resumes_everything(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path
) -> None:
    add_bots(
        database_url,
        strategies_dir,
        [("mkt", "counting"), ("lim", "always_limit")],
        take_profit_pct=0.3,
        stop_loss_pct=0.3,
        max_holding_seconds=300.0,
        maker_order_timeout_seconds=300.0,
        max_open_positions=2,
    )
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    log = tmp_path / "engine.log"
    processes: list[subprocess.Popen[bytes]] = []

    until = log_waiter(log)

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED) as replay:
            command = engine_command(database_url, replay, strategies_dir)
            processes.append(start(command, log))
            await until(
                partial(active_and_pending_positions, database_url),
                "open positions and pending entries",
            )
            processes[0].send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(processes[0].wait, 10) == -signal.SIGKILL

            at_kill = open_positions(database_url)
            working = working_orders(database_url)
            orders_at_kill = {
                r.client_order_id: r.status
                for r in query(database_url, "SELECT client_order_id, status FROM orders")
            }
            assert working and set(working) <= set(orders_at_kill)
            last_event = query(database_url, "SELECT MAX(id) AS id FROM events")[0].id or 0

            processes.append(start(command, log))
            event = await until(lambda: reconciled_after(database_url, last_event), "restart")
            resumed = {(item["bot"], item["seq"]) for item in event["resumed"]}
            assert resumed == set(at_kill)  # every open position resumed
            assert set(event["resent"]) == working  # every working order sent again, once
            assert event["orphans"] == []
            for key, item in ((k, i) for i in event["resumed"] for k in [(i["bot"], i["seq"])]):
                # the deadline is the persisted one, measured from the persisted open time
                assert item["expires_at_ms"] == at_kill[key]["expires_at_ms"]

            await until(
                partial(broker_and_books_agree, database_url),
                "the broker and the books to agree after trading on",
            )
            processes[1].send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(processes[1].wait, 20) == 0

            assert_no_order_lost_duplicated_or_unsent(database_url, orders_at_kill, working)

    try:
        aio.run(scenario(), timeout=90)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def active_and_pending_positions(database_url: str) -> bool:
    positions = open_positions(database_url).values()
    active = [p for p in positions if p["status"] == "active"]
    pending = [p for p in positions if p["status"] == "pending"]
    return bool(active and pending)


def broker_and_books_agree(database_url: str) -> bool:
    rows = query(database_url, "SELECT detail FROM heartbeats WHERE kind = 'engine'")
    detail = json.loads(rows[0].detail) if isinstance(rows[0].detail, str) else rows[0].detail
    return detail["trades"] > 20 and detail["broker_open_orders"] == detail["book_working_orders"]


def assert_no_order_lost_duplicated_or_unsent(
    database_url: str, orders_at_kill: dict[str, str], working: set[str]
) -> None:
    """After the clean stop: every order of the kill still there once, every working one
    sent; the engine's heartbeat and every bot stopped."""
    orders = query(database_url, "SELECT client_order_id, status FROM orders")
    ids = [row.client_order_id for row in orders]
    assert len(ids) == len(set(ids))  # never duplicated
    assert set(orders_at_kill) <= set(ids)  # never lost
    now = {row.client_order_id: row.status for row in orders}
    assert all(now[order_id] != "new" for order_id in working)  # all were sent
    beats = query(database_url, "SELECT kind, status FROM heartbeats")
    assert ("engine", "stopped") in {(b.kind, b.status) for b in beats}
    statuses = {r.status for r in query(database_url, "SELECT status FROM bots")}
    assert statuses == {"stopped"}
