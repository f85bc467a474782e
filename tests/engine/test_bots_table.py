"""The bots table drives the running engine: a raising strategy isolates its bot only, and
enable/disable, config edits, strategy changes and strategy file edits apply without a
restart."""

from __future__ import annotations

import json
from pathlib import Path

from live.engine import BotRunState
from tests.engine.helpers import (
    START_MS,
    Aio,
    add_bots,
    bot_config,
    config_for,
    execute,
    push,
    query,
    start_engine,
    walk,
)
from tradepipe.db import create_engine_for, session_scope
from tradepipe.strategy import content_hash


def set_enabled(url: str, name: str, enabled: bool) -> None:
    from tradepipe.bots import set_enabled as write

    engine = create_engine_for(url)
    try:
        with session_scope(engine) as session:
            write(session, name, enabled)
    finally:
        engine.dispose()


def test_a_strategy_that_raises_errors_its_bot_and_no_other(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("boom", "explode"), ("steady", "always")])
    errors: list[str] = []

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        engine.bus.subscribe(
            lambda event: errors.append(event.message) if event.kind == "bot_error" else None
        )
        try:
            await push(running, walk(60))
            boom, steady = engine.bot_status("boom"), engine.bot_status("steady")
            assert boom is not None and boom.state is BotRunState.ERROR
            assert steady is not None and steady.state is BotRunState.RUNNING
            entries = steady.entries
            await push(running, walk(60, start_ms=walk_end(60), first_id=61))
            # the bots table says running while it runs (what `tradepipe bots list` shows)
            await aio.eventually(
                lambda: (
                    query(database_url, "SELECT status FROM bots WHERE name='steady'")[0].status
                    == "running"
                ),
                "the table to say running",
            )
            later = engine.bot_status("steady")
            assert later is not None and later.entries > entries  # the other bot trades on
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    aio.run(scenario())
    [row] = query(database_url, "SELECT status, last_error FROM bots WHERE name = 'boom'")
    assert row.status == "error"
    assert "explode.py:7: on_candle raised RuntimeError: boom at" in row.last_error
    assert len(errors) == 1 and "RuntimeError" in errors[0]
    events = query(database_url, "SELECT bot_name FROM events WHERE kind = 'bot_error'")
    assert [e.bot_name for e in events] == ["boom"]
    assert query(database_url, "SELECT status FROM bots WHERE name = 'steady'")[0].status == (
        "stopped"  # a graceful stop marks running bots stopped
    )


def walk_end(count: int) -> int:
    """The time just after `count` trades of `walk` (one a second)."""
    return START_MS + count * 1_000


def test_disable_enable_config_and_strategy_changes_apply_without_restart(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("a", "always"), ("b", "always")])
    counting_hash = content_hash((strategies_dir / "counting.py").read_bytes())

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        step = 0

        async def more(count: int) -> None:
            nonlocal step
            start = walk_end(step)
            await push(running, walk(count, start_ms=start, first_id=step + 1))
            step += count

        try:
            await more(60)
            # disabled: no new entries; the open position is still managed, then it stops
            set_enabled(database_url, "a", False)
            await aio.eventually(
                lambda: "a" not in engine.core.bots or not engine.core.bots["a"].row.enabled,
                "a disabled",
            )
            entries_a = engine.core.metrics.entries
            before = {n: b.entries for n, b in engine.core.bots.items()}
            await more(40)
            await aio.eventually(lambda: "a" not in engine.core.bots, "a flat and stopped", 5)
            assert engine.core.bots["b"].entries > before["b"]
            assert engine.core.metrics.entries > entries_a
            # a config edit applies to new entries only
            config = bot_config(capital_per_trade=250.0)
            execute(
                database_url, "UPDATE bots SET config = :c WHERE name = 'b'", c=json.dumps(config)
            )
            await aio.eventually(
                lambda: engine.core.bots["b"].config.capital_per_trade == 250.0, "config"
            )
            await more(20)
            newest = max(engine.core.bots["b"].book.positions, key=lambda p: p.seq, default=None)
            assert newest is None or newest.request.capital == 250.0
            # a strategy change: new entries carry the new strategy's hash
            execute(database_url, "UPDATE bots SET strategy_name = 'counting' WHERE name = 'b'")
            await aio.eventually(
                lambda: engine.core.bots["b"].strategy_hash == counting_hash, "strategy"
            )
            await more(20)
            # enabled again: a starts afresh, numbering after its last position
            set_enabled(database_url, "a", True)
            await aio.eventually(lambda: "a" in engine.core.bots, "a started again")
            await more(40)
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    aio.run(scenario())
    rows = query(
        database_url,
        "SELECT b.name, o.client_order_id, o.strategy_hash, o.quantity, o.created_at "
        "FROM orders o JOIN bots b ON b.id = o.bot_id WHERE o.role = 'entry' ORDER BY o.id",
    )
    b_hashes = [r.strategy_hash for r in rows if r.name == "b"]
    assert b_hashes[-1] == counting_hash and b_hashes[0] != counting_hash
    a_ids = [r.client_order_id for r in rows if r.name == "a"]
    assert len(a_ids) == len(set(a_ids)) >= 2  # restarted without reusing an id
    events = {r.kind for r in query(database_url, "SELECT kind FROM events")}
    assert {"bot_started", "bot_stopped", "bot_updated"} <= events


def test_an_edited_strategy_file_is_reloaded_with_its_state_and_a_broken_one_refused(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("c", "counting")])
    path = strategies_dir / "counting.py"

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(50))
            bot = engine.core.bots["c"]
            seen = bot.strategy.seen  # type: ignore[attr-defined]
            old_hash = bot.strategy_hash
            path.write_text(path.read_text().replace('reason=f"n=', 'reason=f"v2 n='))
            await aio.eventually(lambda: engine.core.bots["c"].strategy_hash != old_hash, "reload")
            assert engine.core.bots["c"].strategy.seen == seen  # type: ignore[attr-defined]
            reloaded = engine.core.bots["c"].strategy_hash
            path.write_text("this is not python(")
            await aio.eventually(
                lambda: any(e.kind == "strategy_invalid" for e in engine.bus.recent()),
                "the refusal",
            )
            await push(running, walk(20, start_ms=walk_end(50), first_id=51))
            assert engine.core.bots["c"].strategy_hash == reloaded  # the last good version
            assert engine.core.bots["c"].state is BotRunState.RUNNING
        finally:
            await engine.stop()

    aio.run(scenario())
