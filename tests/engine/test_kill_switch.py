"""The kill switch: pending entries cancelled, no new entries, open positions still managed;
kept in the database, so a restarted engine (or another one) obeys it until released."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from live.engine import Engine
from tests.engine.helpers import (
    START_MS,
    Aio,
    Running,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)
from tradepipe.enums import PositionStatus


def pending(engine: Engine) -> int:
    return sum(
        1
        for bot in engine.core.bots.values()
        for position in bot.book.positions
        if position.status is PositionStatus.PENDING
    )


def test_kill_switch_cancels_pending_entries_blocks_new_ones_and_survives_a_restart(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("lim", "always_limit"), ("mkt", "always")])
    config = config_for(database_url, strategies_dir)
    seen = 0

    async def trade(running: Running, count: int) -> None:
        nonlocal seen
        await push(running, walk(count, start_ms=START_MS + seen * 1_000, first_id=seen + 1))
        seen += count

    async def first_run() -> int:
        running = await start_engine(config)
        engine = running.engine
        try:
            await trade(running, 40)
            assert pending(engine) >= 1  # the limit entry rests below the market
            cancelled = await engine.engage_kill_switch("test: stop everything")
            assert cancelled >= 1
            await trade(running, 3)
            assert pending(engine) == 0
            entries = engine.core.metrics.entries
            await trade(running, 30)
            assert engine.core.metrics.entries == entries
            assert engine.core.metrics.entries_blocked > 0
            status = engine.status()
            assert (
                status.kill_switch.engaged and status.kill_switch.reason == "test: stop everything"
            )
            assert not any(bot.accepting_entries for bot in status.bots)
            return cancelled
        finally:
            await engine.stop()

    async def second_run() -> None:
        running = await start_engine(config)
        engine = running.engine
        try:
            assert engine.status().kill_switch.engaged  # read back from the database
            await trade(running, 30)
            assert engine.core.metrics.entries == 0
            await engine.release_kill_switch()
            await trade(running, 30)
            assert engine.core.metrics.entries > 0
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    cancelled = aio.run(first_run())
    closed = query(database_url, "SELECT COUNT(*) AS n FROM positions WHERE exit_reason = 'manual'")
    assert closed[0].n == cancelled
    aio.run(second_run())
    [control] = query(database_url, "SELECT value FROM engine_controls WHERE name = 'kill_switch'")
    assert '"engaged": false' in control.value
    kinds = [r.kind for r in query(database_url, "SELECT kind FROM events ORDER BY id")]
    # engaged by the first engine, applied again by the second at its start, released once
    assert kinds.count("kill_switch_engaged") == 2 and kinds.count("kill_switch_released") == 1


def test_the_cli_s_kill_switch_reaches_a_running_engine(
    aio: Aio, database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tradepipe live kill-switch` writes the table; the engine follows it at its next poll,
    cancelling the resting limit entry, and lets entries through again once released."""
    add_bots(database_url, strategies_dir, [("lim", "always_limit"), ("mkt", "always")])
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)
    runner = CliRunner()

    def cli(*args: str) -> str:
        done = runner.invoke(app, ["live", "kill-switch", *args])
        assert done.exit_code == 0, done.stderr
        return done.stdout

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(40))
            assert pending(engine) >= 1
            cli("engage", "--reason", "venue incident")
            await aio.eventually(lambda: engine.status().kill_switch.engaged, "the engage")
            assert engine.status().kill_switch.reason == "venue incident"
            await push(running, walk(3, start_ms=START_MS + 40_000, first_id=41))
            assert pending(engine) == 0  # the cancels went out with the next trades
            assert "ENGAGED" in cli("status") and "venue incident" in cli("status")
            entries = engine.core.metrics.entries
            await push(running, walk(30, start_ms=START_MS + 43_000, first_id=44))
            assert engine.core.metrics.entries == entries
            cli("release", "--reason", "venue back")
            await aio.eventually(lambda: not engine.status().kill_switch.engaged, "the release")
            await push(running, walk(30, start_ms=START_MS + 70_000, first_id=71))
            assert engine.core.metrics.entries > entries
        finally:
            await engine.stop()

    aio.run(scenario())
    refused = runner.invoke(app, ["live", "kill-switch", "engage", "--reason", "  "])
    assert refused.exit_code == 1 and "give a reason" in refused.stderr
    kinds = [row.kind for row in query(database_url, "SELECT kind FROM events ORDER BY id")]
    assert kinds.count("kill_switch_engaged") >= 2  # the operator's, and the engine's


def test_flatten_leaves_no_position_and_no_working_order(
    aio: Aio, database_url: str, strategies_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Engaged with --flatten (the CLI, through the table): every active position is left at
    market and every pending entry cancelled, in a running engine; nothing rests at the
    broker afterwards."""
    # barriers far away: the positions stay open until flattened
    add_bots(
        database_url, strategies_dir, [("lim", "always_limit"), ("mkt", "always")],
        take_profit_pct=50.0, stop_loss_pct=50.0, max_holding_seconds=3600.0,
    )  # fmt: skip
    monkeypatch.setenv("TRADEPIPE_DATABASE_URL", database_url)

    def open_positions(engine: Engine) -> list[PositionStatus]:
        return [p.status for bot in engine.core.bots.values() for p in bot.book.positions]

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(40))
            assert PositionStatus.ACTIVE in open_positions(engine)
            assert PositionStatus.PENDING in open_positions(engine)
            done = CliRunner().invoke(
                app, ["live", "kill-switch", "engage", "--flatten", "--reason", "flatten all"]
            )
            assert done.exit_code == 0, done.stderr
            await aio.eventually(lambda: engine.status().kill_switch.flatten, "the flatten")
            await push(running, walk(5, start_ms=START_MS + 40_000, first_id=41))
            await aio.eventually(lambda: not open_positions(engine), "every position closed")
            assert await engine.broker.open_orders() == []
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    aio.run(scenario())
    rows = query(database_url, "SELECT status, exit_reason FROM positions")
    assert rows and {(row.status, row.exit_reason) for row in rows} == {("closed", "manual")}
