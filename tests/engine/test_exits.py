"""Strategy exits and trailing stops through the real engine on the replay feed: a bot
whose strategy returns `Exit` sees its positions close as `strategy`, a bot with a
trailing stop sees them close as `trailing_stop` at the ratcheted stop, both on the
paper broker and in the database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from live.engine import build_engine
from live.engine.status import BotRunState, BotStatusView
from live.feeds import BinanceFeed
from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import (
    START_MS,
    Aio,
    MarketTimes,
    add_bots,
    config_for,
    push,
    query,
    start_engine,
    walk,
)
from tests.support import feed_config

WINDOW_START_MS = START_MS + 3_600_000
WINDOW_MS = 300_000
SPEED = 100

EXITER = """
    from tradepipe.strategy import Enter, Exit, Strategy, StrategyParameters

    class Exiter(Strategy[StrategyParameters]):
        def on_candle(self, context):
            if context.active_positions:
                return Exit(reason="held a candle")
            return Enter(reason="in") if context.can_enter else None
"""
# Barriers and holding far away: only the strategy or the trailing stop can close.
FAR = {"take_profit_pct": 20.0, "stop_loss_pct": 20.0, "max_holding_seconds": 3_600.0}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def url(request: pytest.FixtureRequest) -> str:
    name = "database_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def test_exits_and_trailing_stops_close_positions_in_the_engine(
    aio: Aio, url: str, strategies_dir: Path
) -> None:
    database_url = url
    (strategies_dir / "exiter.py").write_text(textwrap.dedent(EXITER))
    add_bots(database_url, strategies_dir, [("exiter", "exiter")], **FAR)
    add_bots(database_url, strategies_dir, [("trailer", "always")], trailing_stop_pct=0.02, **FAR)
    end_ms = WINDOW_START_MS + WINDOW_MS
    source = MarketTimes(SyntheticSource(["BTCUSDT"], start_ms=WINDOW_START_MS, end_ms=end_ms))

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED, wait_for_subscribers=1) as replay:
            config = config_for(database_url, strategies_dir, rest_url=replay.rest_url)
            engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)))
            await engine.start()
            try:
                await aio.eventually(replay.finished.is_set, "the replay to finish", 40)
                await aio.eventually(lambda: engine.recorder.pending == 0, "writes flushed")
            finally:
                await engine.stop()

    aio.run(scenario(), timeout=90)
    closed = query(
        database_url,
        "SELECT b.name, p.exit_reason, p.entry_price, p.exit_price, p.stop_loss_price "
        "FROM positions p JOIN bots b ON b.id = p.bot_id WHERE p.status = 'closed'",
    )
    reasons = {(row.name, row.exit_reason) for row in closed}
    assert reasons == {("exiter", "strategy"), ("trailer", "trailing_stop")}, reasons
    exits = query(
        database_url,
        "SELECT o.role, o.order_type FROM orders o JOIN bots b ON b.id = o.bot_id "
        "WHERE b.name = 'exiter' AND o.role != 'entry' AND o.status = 'filled'",
    )
    assert exits and {(row.role, row.order_type) for row in exits} == {("market_exit", "market")}


def test_a_trailing_stop_ratchets_up_with_the_market_and_sells_above_the_entry(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("trailer", "always")], trailing_stop_pct=0.05, **FAR)
    # 15 s up by 0.02 % a second, then down: the trail climbs about 0.3 %, then is hit
    moves = [1.0002] * 15 + [0.9996] * 15

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(240, moves=moves))  # features warm up first
            await aio.eventually(lambda: engine.recorder.pending == 0, "writes flushed")
        finally:
            await engine.stop()

    aio.run(scenario())
    closed = query(
        database_url,
        "SELECT exit_reason, entry_price, exit_price FROM positions WHERE status = 'closed'",
    )
    assert closed and {row.exit_reason for row in closed} == {"trailing_stop"}
    # an entry early in a rise: the stop followed it up and sold well above the entry
    assert any(row.exit_price > row.entry_price * 1.001 for row in closed)


def test_an_exit_naming_no_open_position_puts_only_that_bot_in_error(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    source = """
        from tradepipe.strategy import Exit, Strategy, StrategyParameters

        class Confused(Strategy[StrategyParameters]):
            def on_candle(self, context):
                return Exit(position_seq=99)
    """
    (strategies_dir / "confused.py").write_text(textwrap.dedent(source))
    add_bots(database_url, strategies_dir, [("confused", "confused"), ("steady", "always")])
    seen: dict[str, object] = {}

    async def scenario() -> None:
        running = await start_engine(config_for(database_url, strategies_dir))
        engine = running.engine
        try:
            await push(running, walk(120))
            await aio.eventually(
                lambda: getattr(engine.bot_status("confused"), "state", None) is BotRunState.ERROR,
                "the confused bot in error",
            )
            seen["confused"] = engine.bot_status("confused")
            seen["steady"] = engine.bot_status("steady")
        finally:
            await engine.stop()

    aio.run(scenario())
    confused, steady = seen["confused"], seen["steady"]
    assert isinstance(confused, BotStatusView) and isinstance(steady, BotStatusView)
    assert confused.last_error is not None
    assert "Exit(position_seq=99) names no open position" in confused.last_error
    assert "confused.py" in confused.last_error
    assert steady.state is BotRunState.RUNNING and steady.entries > 0
