"""Nonsense in the bots table costs one bot, never the engine or the other bots.

The table can be edited around `tradepipe bots add` (by hand, by an older version, by
another tool), so the engine checks every row it reads as `bots add` does: each bad row's
bot is in error naming the problem, and a good bot on the same stream trades on. A bot
whose symbol the venue (a Binance-style REST server on loopback) does not list is in error
naming the symbol, instead of warming up forever. And one bot's exception while deciding,
whatever raised it, is that bot's error: the other bots on the stream go on deciding.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from live.engine import BotRunState
from live.replay.rest import RestServer, TradeRecord
from tests.engine.helpers import (
    START_MS,
    Aio,
    add_bots,
    config_for,
    execute,
    push,
    query,
    start_engine,
    walk,
)

# (bot, change to its row, fragment of the error the engine records)
BAD_ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("inf_hold", {"max_holding_seconds": float("inf")}, "max_holding_seconds: Input should be a"),
    ("huge_hold", {"max_holding_seconds": 1e300}, "max_holding_seconds: Input should be less"),
    ("no_take_profit", {"take_profit_pct": 1e308}, "take_profit_pct: Input should be less"),
    ("no_stop", {"stop_loss_pct": 200}, "stop_loss_pct: Input should be less than 100"),
    ("rich", {"capital_per_trade": 1e300}, "capital_per_trade: Input should be less"),
    ("many", {"max_open_positions": 10**9}, "max_open_positions: Input should be less"),
    ("nan_capital", {"capital_per_trade": float("nan")}, "capital_per_trade: Input should be a"),
]  # fmt: skip


def set_config(url: str, name: str, **changes: Any) -> None:
    [row] = query(url, "SELECT config FROM bots WHERE name = :name", name=name)
    config = json.loads(row.config) if isinstance(row.config, str) else dict(row.config)
    config.update(changes)
    # json.dumps writes Infinity/NaN as a hand edit (or an older version) could have
    execute(url, "UPDATE bots SET config = :config WHERE name = :name",
            config=json.dumps(config), name=name)  # fmt: skip


def table(url: str) -> dict[str, Any]:
    return {row.name: row for row in query(url, "SELECT name, status, last_error FROM bots")}


def test_bad_rows_put_their_bots_in_error_and_the_others_trade(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    names = [name for name, _, _ in BAD_ROWS]
    others = ("kraken", "garbled", "weekly", "steady")
    add_bots(database_url, strategies_dir, [(name, "always") for name in (*names, *others)])
    add_bots(database_url, strategies_dir, [("nowhere", "always")], symbol="ZZZUSDT")
    for name, changes, _ in BAD_ROWS:
        set_config(database_url, name, **changes)
    execute(database_url, "UPDATE bots SET exchange = 'kraken' WHERE name = 'kraken'")
    execute(database_url, "UPDATE bots SET config = 'not json {' WHERE name = 'garbled'")
    execute(database_url, "UPDATE bots SET timeframe = '2d' WHERE name = 'weekly'")

    async def scenario() -> None:
        venue = RestServer(TradeRecord(), {"BTCUSDT", "ETHUSDT"})
        port = await venue.start("127.0.0.1", 0)
        config = config_for(database_url, strategies_dir, rest_url=f"http://127.0.0.1:{port}")
        running = await start_engine(config)
        engine = running.engine
        try:
            await push(running, walk(60))
            steady = engine.bot_status("steady")
            assert steady is not None and steady.state is BotRunState.RUNNING
            assert steady.entries > 0
            assert "/api/v3/exchangeInfo" in venue.requests  # the venue was asked
            for name in (*names, "kraken", "garbled", "weekly", "nowhere"):
                assert engine.bot_status(name) is None, name  # never started
            await aio.eventually(
                lambda: all(table(database_url)[name].status == "error" for name in names),
                "every bad bot in error in the table",
            )
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()
            await venue.stop()

    aio.run(scenario())
    rows = table(database_url)
    for name, _, fragment in BAD_ROWS:
        assert rows[name].status == "error", name
        assert fragment in rows[name].last_error, (name, rows[name].last_error)
    expected = {
        "kraken": "invalid bot 'kraken': exchange 'kraken' is not supported: the engine trades",
        "garbled": "config is not JSON",
        "weekly": "invalid bot 'weekly': timeframe '2d' is not supported live",
        "nowhere": "symbol ZZZUSDT is not listed on binance",
    }
    for name, fragment in expected.items():
        assert rows[name].status == "error", name
        assert fragment in rows[name].last_error, (name, rows[name].last_error)
    entries = query(database_url, "SELECT count(*) AS n FROM orders o JOIN bots b "
                    "ON o.bot_id = b.id WHERE b.name != 'steady'")  # fmt: skip
    assert entries[0].n == 0  # no bad bot placed anything


BAD_ENTRY = """
    from tradepipe.strategy import Enter, Strategy, StrategyParameters

    class BadEntry(Strategy[StrategyParameters]):
        def on_candle(self, context):
            # not a StrategyFailure: this raises while the engine builds the entry
            return Enter(limit_price="oops") if context.can_enter else None
"""


def test_one_bots_exception_while_deciding_never_stops_the_others(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "bad_entry.py").write_text(textwrap.dedent(BAD_ENTRY))
    # "abad" sorts first: it is decided before the others of the stream
    add_bots(database_url, strategies_dir,
             [("abad", "bad_entry"), ("mid", "always"), ("zlast", "always")])  # fmt: skip

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(40))
            bad = engine.bot_status("abad")
            assert bad is not None and bad.state is BotRunState.ERROR
            before = {name: engine.bot_status(name) for name in ("mid", "zlast")}
            await push(running, walk(40, start_ms=START_MS + 40_000, first_id=41))
            for name, status in before.items():
                later = engine.bot_status(name)
                assert status is not None and later is not None
                assert later.state is BotRunState.RUNNING, name
                assert later.decisions > status.decisions, name  # still deciding
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes")
        finally:
            await engine.stop()

    aio.run(scenario())
    [row] = query(database_url, "SELECT status, last_error FROM bots WHERE name = 'abad'")
    assert row.status == "error"
    assert "bot abad failed while deciding: TypeError" in row.last_error
    trading = query(database_url, "SELECT count(*) AS n FROM orders o JOIN bots b "
                    "ON o.bot_id = b.id WHERE b.name IN ('mid', 'zlast')")  # fmt: skip
    assert trading[0].n > 0


NEVER = """
    from tradepipe.strategy import Strategy, StrategyParameters

    class Never(Strategy[StrategyParameters]):
        def on_candle(self, context):
            return None
"""


def test_a_running_bot_moved_to_a_symbol_the_venue_does_not_list_is_in_error(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    (strategies_dir / "never.py").write_text(textwrap.dedent(NEVER))  # flat: free to move
    add_bots(database_url, strategies_dir, [("mover", "never"), ("steady", "always")])

    async def scenario() -> None:
        venue = RestServer(TradeRecord(), {"BTCUSDT"})
        port = await venue.start("127.0.0.1", 0)
        config = config_for(database_url, strategies_dir, rest_url=f"http://127.0.0.1:{port}")
        running = await start_engine(config)
        engine = running.engine
        try:
            await push(running, walk(60))
            execute(database_url, "UPDATE bots SET symbol = 'ZZZUSDT' WHERE name = 'mover'")
            await aio.eventually(
                lambda: (
                    (mover := engine.bot_status("mover")) is not None
                    and mover.state is BotRunState.ERROR
                ),
                "the move refused",
            )
            mover = engine.bot_status("mover")
            assert mover is not None and mover.symbol == "BTCUSDT"  # it did not move
            assert mover.last_error == (
                "bot mover cannot move to ZZZUSDT: symbol ZZZUSDT is not listed on binance"
            )
            steady = engine.bot_status("steady")
            assert steady is not None and steady.state is BotRunState.RUNNING
        finally:
            await engine.stop()
            await venue.stop()

    aio.run(scenario())
