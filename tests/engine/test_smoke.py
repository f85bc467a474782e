"""The engine on an in-memory feed: one bot trades, every order lands in the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.engine.helpers import (
    Aio,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)
from tradepipe.db import upgrade_database


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    name = "database_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def test_a_bot_trades_and_every_order_is_recorded(aio: Aio, url: str, strategies_dir: Path) -> None:
    database_url = url
    add_bots(database_url, strategies_dir, [("always1", "always")])

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(200))
            await aio.eventually(lambda: engine.core.metrics.entries >= 3, "entries")
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes flushed")
            await asyncio.sleep(0.3)
            status = engine.status()
            assert status.bot("always1") is not None
        finally:
            await engine.stop()

    aio.run(scenario())
    orders = query(database_url, "SELECT client_order_id, role, status, strategy_hash FROM orders")
    assert len(orders) >= 3
    assert all(row.strategy_hash for row in orders)
    positions = query(database_url, "SELECT status, exit_reason FROM positions")
    assert any(row.status == "closed" for row in positions)
    beats = query(database_url, "SELECT kind, name, status FROM heartbeats")
    assert {(b.kind, b.status) for b in beats} >= {("engine", "stopped"), ("bot", "stopped")}
    fills = query(database_url, "SELECT exchange_fill_id FROM fills")
    assert fills and all(row.exchange_fill_id.startswith("paper:") for row in fills)
    [state] = query(database_url, "SELECT book, strategy_state FROM bot_states")
    assert state.book is not None
    stats = query(database_url, "SELECT trades, wins, losses, fees FROM daily_bot_stats")
    assert stats and stats[0].trades == stats[0].wins + stats[0].losses > 0


def test_two_engines_run_side_by_side_in_one_process(
    aio: Aio, tmp_path: Path, strategies_dir: Path
) -> None:
    urls = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        upgrade_database(url)
        add_bots(url, strategies_dir, [(name, "always")])
        urls.append(url)

    async def scenario() -> None:
        engines = [await start_engine(config_for(url, strategies_dir)) for url in urls]
        try:
            for running in engines:
                await push(running, walk(60))
            assert all(running.engine.core.metrics.entries > 0 for running in engines)
            assert engines[0].engine.engine_id != engines[1].engine.engine_id
        finally:
            for running in engines:
                await running.engine.stop()

    aio.run(scenario())
    names = [
        query(url, "SELECT DISTINCT b.name FROM orders o JOIN bots b ON b.id = o.bot_id")
        for url in urls
    ]
    assert [[row.name for row in rows] for rows in names] == [["one"], ["two"]]
