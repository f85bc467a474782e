"""The strategy folder watcher and the registry, on engines fed in memory.

The scenario on the replay feed (tests/engine/test_strategy_files.py) covers the operator's
session; these cover the parts one at a time: the debounce, what counts as a strategy file,
a decision over its time budget, a registry write while the database is away, and that the
engine's registry writes agree with `tradepipe strategies sync`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import textwrap
from pathlib import Path

from live.engine.status import BotRunState
from live.engine.strategy_watch import FolderWatcher
from tests.engine.helpers import Aio, add_bots, config_for, push, query, start_engine, walk
from tradepipe.db import create_engine_for, session_scope
from tradepipe.strategy import content_hash
from tradepipe.strategy.registry_sync import sync_strategies

SLOW_ON_THE_MARKET = """
    import time
    from tradepipe.strategy import Strategy, StrategyParameters

    class Slow(Strategy[StrategyParameters]):
        def on_candle(self, context):
            if context.candle.symbol != "SMOKEUSDT":
                time.sleep(0.3)
            return None
"""


def test_saves_in_quick_succession_give_one_look_and_editor_droppings_none(
    aio: Aio, tmp_path: Path
) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()

    async def scenario() -> None:
        looks: list[float] = []
        loop = asyncio.get_running_loop()
        watcher = FolderWatcher(folder, lambda: looks.append(loop.time()), debounce_seconds=0.2)
        watcher.start()
        try:
            for version in range(5):
                (folder / "a.py").write_text(f"VERSION = {version}\n")
                await asyncio.sleep(0.02)
            await aio.eventually(lambda: len(looks) == 1, "one look after the saves")
            assert watcher.events >= 5
            (folder / ".a.py.swp").write_text("scratch")
            (folder / "_helpers.py").write_text("x = 1\n")
            (folder / "notes.txt").write_text("no")
            (folder / "b.py").write_text("x = 2\n")  # a marker after the droppings
            await aio.eventually(lambda: len(looks) == 2, "the look for b.py")
            events = watcher.events
            (folder / ".b.py.swp").write_text("scratch")
            (folder / ".b.py.swp").rename(folder / ".b.py.swo")
            await asyncio.sleep(0.1)
            assert watcher.events == events and len(looks) == 2
            # renamed over a strategy: the rename's destination counts
            (folder / ".c.tmp").write_text("x = 3\n")
            (folder / ".c.tmp").rename(folder / "c.py")
            await aio.eventually(lambda: len(looks) == 3, "the look for the rename")
            (folder / "c.py").unlink()
            await aio.eventually(lambda: len(looks) == 4, "the look for the deletion")
        finally:
            watcher.stop()

    aio.run(scenario())


def test_a_decision_over_its_time_budget_puts_only_its_bot_in_error(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "slow.py").write_text(textwrap.dedent(SLOW_ON_THE_MARKET))
    add_bots(database_url, strategies_dir, [("slow", "slow"), ("fast", "always")])

    async def scenario() -> None:
        config = config_for(database_url, strategies_dir, strategy_call_budget_seconds=0.1)
        running = await start_engine(config)
        engine = running.engine
        try:
            await push(running, walk(40))
            bots = engine.core.bots
            await aio.eventually(lambda: bots["slow"].state is BotRunState.ERROR, "the error")
            assert "ran past its budget of 0.1 s per call" in (bots["slow"].last_error or "")
            assert bots["fast"].state is BotRunState.RUNNING and bots["fast"].entries > 0
        finally:
            await engine.stop()

    aio.run(scenario())


LOOPS_ON_THE_MARKET = """
    from tradepipe.strategy import Strategy, StrategyParameters

    class Stuck(Strategy[StrategyParameters]):
        def on_candle(self, context):
            while context.candle.symbol != "SMOKEUSDT":
                pass
            return None
"""


def test_an_endless_loop_on_the_live_market_is_stopped_and_fails_only_its_bot(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "stuck.py").write_text(textwrap.dedent(LOOPS_ON_THE_MARKET))
    add_bots(database_url, strategies_dir, [("stuck", "stuck"), ("fast", "always")])

    async def scenario() -> None:
        config = config_for(database_url, strategies_dir, strategy_call_budget_seconds=0.1)
        running = await start_engine(config)
        engine = running.engine
        try:
            await push(running, walk(40))
            bots = engine.core.bots
            await aio.eventually(lambda: bots["stuck"].state is BotRunState.ERROR, "the stop")
            error = bots["stuck"].last_error or ""
            # stopped inside the loop: at its condition (line 6) or its body (line 7)
            assert re.search(r"stuck\.py:[67]: on_candle ran past its budget of 0\.1 s", error)
            assert bots["fast"].state is BotRunState.RUNNING and bots["fast"].entries > 0
            assert engine.core.guard.interrupted == 1
        finally:
            await engine.stop()

    aio.run(scenario())


def test_a_reload_while_the_database_is_away_is_recorded_when_it_is_back(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("c", "counting")])
    path = strategies_dir / "counting.py"
    db_file = database_url.removeprefix("sqlite:///")

    def registry_hash() -> str:
        rows = query(database_url, "SELECT content_hash FROM strategies WHERE name='counting'")
        return str(rows[0][0])

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(20))
            lock = sqlite3.connect(db_file, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            try:
                path.write_text(path.read_text().replace('f"n=', 'f"edited n='))
                edited = content_hash(path.read_bytes())
                await aio.eventually(
                    lambda: engine.core.bots["c"].strategy_hash == edited, "the reload"
                )
                await aio.eventually(
                    lambda: engine.strategies.registry_stale, "the registry write to fail"
                )
            finally:
                lock.execute("COMMIT")
                lock.close()
            assert registry_hash() != edited  # the write could not happen meanwhile
            await engine.strategies.scan()  # the next scan (or change) records it
            assert registry_hash() == edited
        finally:
            await engine.stop()

    aio.run(scenario())


def test_the_engine_and_the_command_line_sync_agree(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "broken.py").write_text("def broken(:\n")
    add_bots(database_url, strategies_dir, [("a", "always")])

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        await running.engine.stop()

    aio.run(scenario())
    engine = create_engine_for(database_url)
    try:
        with session_scope(engine) as session:
            report = sync_strategies(session, strategies_dir)
    finally:
        engine.dispose()
    assert not report.changed, report.summary()  # what the engine wrote is what sync says
    rows = {r.name: r for r in query(database_url, "SELECT * FROM strategies")}
    assert rows["broken"].status == "invalid" and rows["broken"].error_line == 1
    assert rows["always"].status == "valid" and rows["always"].version_count == 1
