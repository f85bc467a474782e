"""Damaged model files in a real MLflow store cost the engine nothing (issue 14).

A truncated LightGBM file makes LightGBM call std::terminate: loaded in the engine, it
aborted the process, and every restart aborted again. Versions are now tried in a separate
process first: at start, a bot whose champion cannot load waits in error (naming the
reason) while the other bots trade, and recovers by itself when a good version is
promoted; a damaged version promoted while trading is refused (event and log line) and the
old version keeps trading. The last test runs `tradepipe live run` as a real process."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from live.engine import BotRunState, Engine, EngineEvent
from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    Running,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)
from tests.engine.model_store import ModelStore
from tests.engine.processes import free_port, start

# the first check waits for the model check process to start (it imports mlflow)
FIRST_CHECK_SECONDS = 40.0


def state_of(engine: Engine, bot: str) -> BotRunState | None:
    status = engine.bot_status(bot)
    return status.state if status is not None else None


def version_of(engine: Engine, bot: str) -> str | None:
    status = engine.bot_status(bot)
    return status.model_version if status is not None else None


def bot_row(url: str, name: str) -> Any:
    [row] = query(url, "SELECT status, last_error FROM bots WHERE name = :name", name=name)
    return row


def refusal_of(events: list[EngineEvent], version: str) -> bool:
    return any(e.kind == "model_refused" and e.data["version"] == version for e in events)


class Market:
    """Trades pushed into a running in-process engine, continuing where the last left off."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.seen = 0

    async def trade(self, count: int) -> None:
        trades = walk(count, start_ms=START_MS + self.seen * 1_000, first_id=self.seen + 1)
        await push(self.running, trades)
        self.seen += count


def test_a_truncated_champion_at_start_puts_only_its_bot_in_error_until_a_good_one(
    aio: Aio, database_url: str, strategies_dir: Path, model_store: ModelStore
) -> None:
    name = "truncated_at_start"
    add_bots(
        database_url,
        strategies_dir,
        [("m1", "lgbm_threshold")],
        model_name=name,
        confidence_threshold=0.01,
    )
    add_bots(database_url, strategies_dir, [("plain", "always")])
    broken = model_store.register(name, damage="truncate")
    events: list[EngineEvent] = []

    async def scenario() -> str:
        config = config_for(
            database_url, strategies_dir, mlflow_tracking_uri=model_store.tracking_uri
        )
        running = await start_engine(config)
        engine = running.engine
        engine.bus.subscribe(events.append)
        market = Market(running)
        try:
            await aio.eventually(
                lambda: state_of(engine, "m1") is BotRunState.MODEL_ERROR,
                "the bot of the truncated champion in error",
                FIRST_CHECK_SECONDS,
            )
            await market.trade(40)
            assert state_of(engine, "plain") is BotRunState.RUNNING
            assert engine.core.bots["plain"].entries > 0  # the other bot trades
            assert state_of(engine, "m1") is BotRunState.MODEL_ERROR
            assert engine.core.bots["m1"].entries == 0
            status = engine.bot_status("m1")
            assert status is not None and status.last_error is not None
            assert f"version {broken} refused" in status.last_error
            assert "killed by SIGABRT" in status.last_error
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
            row = bot_row(database_url, "m1")
            assert row.status == "error" and "killed by SIGABRT" in row.last_error

            good = model_store.register(name, seed=2)
            await aio.eventually(lambda: version_of(engine, "m1") == good, "the recovery", 20)
            await market.trade(10)
            assert state_of(engine, "m1") is BotRunState.RUNNING
            assert engine.core.bots["m1"].entries > 0
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
            row = bot_row(database_url, "m1")
            assert row.status == "running" and row.last_error is None
            return good
        finally:
            await engine.stop()

    good = aio.run(scenario(), timeout=120)
    [refused] = [e for e in events if e.kind == "model_refused"]
    assert refused.data["version"] == broken and refused.data["running_version"] is None
    assert refused.data["bots"] == ["m1"]
    [loaded] = [e for e in events if e.kind == "model_loaded"]
    assert loaded.data["version"] == good
    entries = query(
        database_url,
        "SELECT DISTINCT o.model_version FROM orders o JOIN bots b ON b.id = o.bot_id "
        "WHERE b.name = 'm1' AND o.role = 'entry'",
    )
    assert {row.model_version for row in entries} == {good}


def test_damaged_versions_promoted_while_trading_are_refused_and_the_old_one_trades_on(
    aio: Aio,
    database_url: str,
    strategies_dir: Path,
    model_store: ModelStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "damaged_while_trading"
    add_bots(
        database_url,
        strategies_dir,
        [("m1", "lgbm_threshold")],
        model_name=name,
        confidence_threshold=0.01,
    )
    first = model_store.register(name)
    events: list[EngineEvent] = []
    caplog.set_level(logging.ERROR, logger="live.engine")

    async def scenario() -> tuple[str, list[str]]:
        config = config_for(
            database_url, strategies_dir, mlflow_tracking_uri=model_store.tracking_uri
        )
        running = await start_engine(config)
        engine = running.engine
        engine.bus.subscribe(events.append)
        market = Market(running)
        try:
            await aio.eventually(
                lambda: version_of(engine, "m1") == first, "the champion", FIRST_CHECK_SECONDS
            )
            await market.trade(40)
            assert engine.core.bots["m1"].entries > 0
            refused = []
            for damage in ("truncate", "garbage", "empty"):
                version = model_store.register(name, damage=damage, seed=len(refused) + 2)
                refused.append(version)
                await aio.eventually(
                    partial(refusal_of, events, version),
                    f"the refusal of the {damage} version",
                    20,
                )
                assert version_of(engine, "m1") == first  # the old version keeps trading
                assert state_of(engine, "m1") is BotRunState.RUNNING
                entries = engine.core.bots["m1"].entries
                await market.trade(20)
                assert engine.core.bots["m1"].entries > entries

            good = model_store.register(name, seed=9)
            await aio.eventually(lambda: version_of(engine, "m1") == good, "the good version", 20)
            entries = engine.core.bots["m1"].entries
            await market.trade(20)
            assert engine.core.bots["m1"].entries > entries
            return good, refused
        finally:
            await engine.stop()

    good, refused = aio.run(scenario(), timeout=150)
    refusals = {e.data["version"]: e for e in events if e.kind == "model_refused"}
    assert sorted(refusals) == sorted(refused)
    assert all(e.data["running_version"] == first for e in refusals.values())
    assert "killed by SIGABRT" in refusals[refused[0]].data["reason"]
    assert "cannot load" in refusals[refused[1]].data["reason"]
    assert "cannot load" in refusals[refused[2]].data["reason"]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    for version in refused:
        assert any(f"version {version} refused" in line for line in logged), logged
    versions = query(
        database_url,
        "SELECT DISTINCT o.model_version FROM orders o JOIN bots b ON b.id = o.bot_id "
        "WHERE b.name = 'm1' AND o.role = 'entry'",
    )
    assert {row.model_version for row in versions} == {first, good}


def test_tradepipe_live_run_does_not_abort_on_a_truncated_champion(
    aio: Aio, tmp_path: Path, database_url: str, strategies_dir: Path, model_store: ModelStore
) -> None:
    name = "truncated_live_run"
    add_bots(
        database_url,
        strategies_dir,
        [("m1", "lgbm_threshold")],
        model_name=name,
        confidence_threshold=0.01,
    )
    add_bots(database_url, strategies_dir, [("plain", "always")])
    broken = model_store.register(name, damage="truncate")
    log = tmp_path / "engine.log"
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=START_MS + 3_600_000))
    engine: subprocess.Popen[bytes] | None = None

    async def scenario() -> None:
        nonlocal engine
        async with ReplayServer(source, speed=100) as replay:
            engine = start(
                [sys.executable, "-m", "app", "live", "run"],
                log,
                TRADEPIPE_DATABASE_URL=database_url,
                TRADEPIPE_STRATEGIES_DIR=str(strategies_dir),
                TRADEPIPE_MLFLOW_TRACKING_URI=model_store.tracking_uri,
                TRADEPIPE_FEED_URL=replay.url,
                TRADEPIPE_FEED_REST_URL=str(replay.rest_url),
                TRADEPIPE_ENGINE_API_PORT=str(free_port()),
                TRADEPIPE_ENGINE_MODEL_POLL_SECONDS="0.5",
                TRADEPIPE_ENGINE_HEARTBEAT_SECONDS="0.5",
            )
            until = partial(until_unless_it_exits, engine, log)
            await until(
                partial(refused_in_bots_table, database_url),
                "the bot of the truncated champion in error",
            )
            await until(lambda: entries_of_plain(database_url) > 0, "the other bot's entries")
            refusals = [
                json.loads(r.payload) if isinstance(r.payload, str) else r.payload
                for r in query(
                    database_url, "SELECT payload FROM events WHERE kind = 'model_refused'"
                )
            ]
            assert [r["version"] for r in refusals] == [broken]
            assert "killed by SIGABRT" in refusals[0]["reason"]
            assert engine.poll() is None  # still running, not aborted
            engine.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(engine.wait, 30) == 0

    try:
        aio.run(scenario(), timeout=150)
    finally:
        if engine is not None and engine.poll() is None:
            engine.kill()
            engine.wait(10)
    text = log.read_text()
    assert "model_refused" in text and "killed by SIGABRT" in text  # the log line
    assert "terminate called" in text  # LightGBM's abort happened, in the check process


async def until_unless_it_exits(
    engine: subprocess.Popen[bytes], log: Path, condition: Any, what: str, timeout: float = 60.0
) -> Any:
    """Poll `condition` (in a thread) until it is truthy; fail at once if the engine exits,
    or after `timeout`, with the engine's log."""

    def while_running() -> Any:
        if engine.poll() is not None:
            raise AssertionError(
                f"the engine exited ({engine.returncode}) waiting for {what}:\n" + log.read_text()
            )
        return condition()

    return await Aio.eventually_in_thread(while_running, what, log, timeout, 0.2)


def refused_in_bots_table(database_url: str) -> bool:
    row = bot_row(database_url, "m1")
    return row.status == "error" and "killed by SIGABRT" in (row.last_error or "")


def entries_of_plain(database_url: str) -> int:
    rows = query(
        database_url,
        "SELECT COUNT(*) AS n FROM orders o JOIN bots b ON b.id = o.bot_id "
        "WHERE b.name = 'plain' AND o.role = 'entry'",
    )
    return int(rows[0].n)
