"""Strategy files edited, broken, renamed over and deleted while an engine trades.

One engine on the synthetic market from a real replay server, its API on a real uvicorn,
a real WebSocket client on /ws/events, and real files in a temporary strategies folder
(the engine's watchdog sees them; the periodic rescan is pushed out of the test's reach so
that the watcher alone has to notice). The steps run in one scenario because each builds
on the state the last one left, as an operator's session would.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from live.api import ApiServer, create_app
from live.engine import Engine, build_engine
from live.engine.status import BotRunState
from live.feeds import BinanceFeed
from live.replay import ReplayServer, SyntheticSource
from tests.engine.helpers import START_MS, Aio, MarketTimes, add_bots, config_for, query
from tests.support import feed_config
from tradepipe.orders import Position
from tradepipe.strategy import content_hash

TOKEN = "token-of-the-strategy-tests"

TREND = """
    from tradepipe.strategy import Strategy, StrategyParameters

    VERSION = {version}

    class Trend(Strategy[StrategyParameters]):
        def __init__(self, parameters):
            super().__init__(parameters)
            self.seen = 0

        def on_candle(self, context):
            self.seen += 1
            {body}
            return None

        def on_save(self):
            return {{"seen": self.seen}}

        def on_load(self, state):
            self.seen = int(state.get("seen", 0))
"""

HOLDER = """
    from tradepipe.strategy import Enter, Strategy, StrategyParameters

    class Holder(Strategy[StrategyParameters]):
        def on_candle(self, context):
            return None if context.open_positions else Enter(reason="hold")
"""

QUIET = """
    from tradepipe.strategy import Strategy, StrategyParameters

    class Quiet(Strategy[StrategyParameters]):
        def on_candle(self, context):
            return None
"""


def trend(version: int, body: str = "pass") -> str:
    return textwrap.dedent(TREND.format(version=version, body=body))


class Events:
    """Every message of one /ws/events connection, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def read(self, connection: ClientConnection) -> None:
        async for text in connection:
            self.messages.append(json.loads(text))

    def of(self, kind: str, **data: Any) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages
            if m.get("type") == "event"
            and m["kind"] == kind
            and all(m["data"].get(k) == v or m.get(k) == v for k, v in data.items())
        ]

    def kinds_since(self, start: int) -> list[tuple[str, str | None]]:
        return [
            (m["kind"], m.get("bot"))
            for m in self.messages[start:]
            if m.get("type") == "event" and m["kind"].startswith(("strategy_", "bot_"))
        ]


def test_strategy_files_change_under_running_bots(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    folder = strategies_dir
    (folder / "trend.py").write_text(trend(1))
    (folder / "holder.py").write_text(textwrap.dedent(HOLDER))
    (folder / "quiet.py").write_text(textwrap.dedent(QUIET))
    add_bots(database_url, folder, [("t1", "trend"), ("t2", "trend"), ("calm", "quiet")])
    # wide barriers and a long holding time: the position stays open through the scenario
    add_bots(
        database_url,
        folder,
        [("hold", "holder")],
        take_profit_pct=20.0,
        stop_loss_pct=20.0,
        max_holding_seconds=86_400.0,
    )
    # the market's own times, paced 30 times faster than the wall: candles close quickly
    source = MarketTimes(
        SyntheticSource(["BTCUSDT"], start_ms=START_MS, end_ms=START_MS + 6 * 3_600_000)
    )

    async def scenario() -> None:
        async with ReplayServer(source, speed=30) as replay:
            config = config_for(
                database_url, folder, rest_url=replay.rest_url, strategy_rescan_seconds=3600.0
            )
            engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)))
            await engine.start()
            server = ApiServer(create_app(engine, token=TOKEN), "127.0.0.1", 0)
            serving = asyncio.create_task(server.serve())
            try:
                port = await server.wait_started()
                async with (
                    connect(f"ws://127.0.0.1:{port}/ws/events", proxy=None) as socket,
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
                ):
                    events = Events()
                    reading = asyncio.create_task(events.read(socket))
                    try:
                        await steps(aio, engine, events, client, folder, database_url)
                    finally:
                        reading.cancel()
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                await engine.stop()

    aio.run(scenario(), timeout=180)


async def steps(
    aio: Aio,
    engine: Engine,
    events: Events,
    client: httpx.AsyncClient,
    folder: Path,
    database_url: str,
) -> None:
    """The operator's session, step by step; each step starts from the state the last left."""
    session = OperatorSession(aio, engine, events, client, folder, database_url)
    await session.until(lambda: bool(events.messages), "the snapshot")
    snapshot = events.messages[0]
    assert snapshot["type"] == "snapshot"
    assert {s["name"] for s in snapshot["strategies"]} >= {"trend", "holder", "quiet"}
    bots = session.bots
    await session.until(lambda: bool(bots["hold"].book.positions), "an open position")
    await session.until(
        lambda: bots["hold"].book.positions[0].take_profit_price is not None, "a fill"
    )
    await session.until(lambda: bots["t1"].strategy.seen > 3, "decisions")

    v2 = await an_edit_that_validates_reloads_both_bots(session)
    await a_syntax_error_keeps_the_last_good_version(session, v2)
    await an_endless_loop_is_refused_by_the_smoke_run(session, v2)
    await a_live_only_error_stops_only_its_bots(session)
    await rapid_saves_reload_once(session)
    await a_save_renamed_over_the_file_reloads(session)
    await a_save_of_the_same_bytes_changes_nothing(session)
    positions = await a_deleted_strategy_falls_back_keeping_the_position(session)
    await a_restored_file_waits_for_the_operator(session, positions)
    await the_websocket_saw_the_engine_s_events_in_order(session)


@dataclass
class OperatorSession:
    """What every step works with: the engine, its events as the WebSocket carried them, the
    API client and the strategies folder."""

    aio: Aio
    engine: Engine
    events: Events
    client: httpx.AsyncClient
    folder: Path
    database_url: str

    @property
    def bots(self) -> dict[str, Any]:
        return self.engine.core.bots

    @property
    def path(self) -> Path:
        return self.folder / "trend.py"

    def hash_of(self, *names: str) -> set[str]:
        return {self.bots[name].strategy_hash for name in names}

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        await self.aio.eventually(condition, what, 20)


async def an_edit_that_validates_reloads_both_bots(session: OperatorSession) -> str:
    """1. an edit that validates reloads both bots, keeping the strategy's state"""
    bots, events, path, until = session.bots, session.events, session.path, session.until
    seen = bots["t1"].strategy.seen
    start = len(events.messages)
    path.write_text(trend(2))
    v2 = content_hash(path.read_bytes())
    await until(lambda: session.hash_of("t1", "t2") == {v2}, "both bots on version 2")
    assert bots["t1"].strategy.seen >= seen
    await until(lambda: len(events.of("bot_reloaded", strategy_hash=v2)) == 2, "reload events")
    order = events.kinds_since(start)
    assert order.index(("strategy_edited", None)) < order.index(("bot_reloaded", "t1"))
    assert {bot for kind, bot in order if kind == "bot_reloaded"} == {"t1", "t2"}
    return v2


async def a_syntax_error_keeps_the_last_good_version(session: OperatorSession, v2: str) -> None:
    """2. a syntax error: the strategy is invalid with file and line, the bots keep version 2"""
    bots, events, until = session.bots, session.events, session.until
    session.path.write_text(trend(3) + "\ndef broken(:\n")
    await until(lambda: bool(events.of("strategy_invalid", strategy="trend")), "invalid")
    invalid = events.of("strategy_invalid", strategy="trend")[-1]
    assert "trend.py:" in invalid["data"]["error"] and "syntax error" in invalid["data"]["error"]
    assert invalid["data"]["line"] == len(trend(3).splitlines()) + 2
    assert session.hash_of("t1", "t2") == {v2}
    assert {bots[n].state for n in ("t1", "t2")} == {BotRunState.RUNNING}
    shown = (await session.client.get("/api/strategies/trend")).json()
    assert shown["status"] == "invalid" and shown["content_hash"] == v2
    assert sorted(shown["bots"]) == ["t1", "t2"]


async def an_endless_loop_is_refused_by_the_smoke_run(session: OperatorSession, v2: str) -> None:
    """3. an endless loop in on_candle: refused by the smoke run, version 2 keeps running"""
    events = session.events
    invalid_before = len(events.of("strategy_invalid", strategy="trend"))
    looping = trend(4, "while True: pass")
    loop_line = looping.splitlines().index("        while True: pass") + 1
    session.path.write_text(looping)
    await session.until(
        lambda: len(events.of("strategy_invalid", strategy="trend")) > invalid_before,
        "the endless loop refused",
    )
    error = events.of("strategy_invalid", strategy="trend")[-1]["data"]["error"]
    assert "did not finish within" in error and f"trend.py:{loop_line}:" in error
    assert session.hash_of("t1", "t2") == {v2}


async def a_live_only_error_stops_only_its_bots(session: OperatorSession) -> None:
    """4. a version that raises on the live market (not on the smoke run's candles): its bots
    go into error with the message; the other bots trade on"""
    bots = session.bots
    session.path.write_text(
        trend(5, 'if context.candle.symbol == "BTCUSDT": raise ValueError("live")')
    )
    await session.until(
        lambda: all(bots[n].state is BotRunState.ERROR for n in ("t1", "t2")), "bots in error"
    )
    assert "ValueError: live" in (bots["t1"].last_error or "")
    assert bots["calm"].state is BotRunState.RUNNING
    assert bots["hold"].state is BotRunState.RUNNING


async def rapid_saves_reload_once(session: OperatorSession) -> None:
    """5. rapid successive saves: one reload, of the last content"""
    bots, events, path, until = session.bots, session.events, session.path, session.until
    edited_before = len(events.of("strategy_edited", strategy="trend"))
    for version in range(6, 11):
        path.write_text(trend(version))
        await asyncio.sleep(0.01)
    final = content_hash(path.read_bytes())
    await until(lambda: session.hash_of("t1", "t2") == {final}, "the last save running")
    await until(lambda: bool(events.of("strategy_edited", content_hash=final)), "its event")
    edits = events.of("strategy_edited", strategy="trend")[edited_before:]
    assert [e["data"]["content_hash"] for e in edits] == [final]
    assert {bots[n].state for n in ("t1", "t2")} == {BotRunState.RUNNING}  # the retry


async def a_save_renamed_over_the_file_reloads(session: OperatorSession) -> None:
    """6. an editor's save: a temporary file renamed over the strategy"""
    path, until = session.path, session.until
    temporary = session.folder / ".trend.py.swp"
    temporary.write_text(trend(11))
    os.replace(temporary, path)
    renamed = content_hash(path.read_bytes())
    await until(lambda: session.hash_of("t1", "t2") == {renamed}, "the renamed save running")
    await until(
        lambda: bool(session.events.of("strategy_edited", content_hash=renamed)), "its event"
    )


async def a_save_of_the_same_bytes_changes_nothing(session: OperatorSession) -> None:
    """7. a save of the same bytes changes nothing"""
    engine, events, path = session.engine, session.events, session.path
    scans, count = engine.strategies.scans, len(events.messages)
    path.write_bytes(path.read_bytes())
    await session.until(lambda: engine.strategies.scans > scans, "the watcher to look again")
    assert [m for m in events.messages[count:] if m["kind"].startswith("strategy_")] == []


async def a_deleted_strategy_falls_back_keeping_the_position(
    session: OperatorSession,
) -> tuple[Position, ...]:
    """8. deleting a strategy whose bot holds a position: the bot falls back to ema_rsi with
    its position, barriers and deadline untouched; returns the positions it held"""
    bots, events, until = session.bots, session.events, session.until
    positions = bots["hold"].book.positions
    (session.folder / "holder.py").unlink()
    await until(lambda: bots["hold"].loaded.name == "ema_rsi", "the fallback")
    await until(lambda: bool(events.of("bot_fell_back", bot="hold")), "the fallback event")
    fell_back = events.of("bot_fell_back", bot="hold")[-1]["data"]
    assert (fell_back["from"], fell_back["to"]) == ("holder", "ema_rsi")
    kept = bots["hold"].book.positions
    assert [p.seq for p in kept] == [p.seq for p in positions] == fell_back["open_positions"]
    for before, after in zip(positions, kept, strict=True):
        assert after.take_profit_price == before.take_profit_price
        assert after.stop_loss_price == before.stop_loss_price
        assert after.expires_at_ms == before.expires_at_ms
    assert bool(events.of("strategy_removed", strategy="holder"))

    def stored_strategy() -> str:
        return str(
            query(session.database_url, "SELECT strategy_name FROM bots WHERE name='hold'")[0][0]
        )

    await until(lambda: stored_strategy() == "ema_rsi", "the bots table to follow")
    return positions


async def a_restored_file_waits_for_the_operator(
    session: OperatorSession, positions: tuple[Position, ...]
) -> None:
    """9. the file comes back: the bot stays on ema_rsi until the operator assigns it"""
    bots, client = session.bots, session.client
    (session.folder / "holder.py").write_text(textwrap.dedent(HOLDER))
    await session.until(
        lambda: bool(session.events.of("strategy_added", strategy="holder")), "the restore"
    )
    await session.engine.poll_bots()
    assert bots["hold"].loaded.name == "ema_rsi"
    refused = await client.post("/api/bots/hold/strategy", json={"strategy": "holder"})
    assert refused.status_code == 401  # control needs the token
    assigned = await client.post(
        "/api/bots/hold/strategy",
        json={"strategy": "holder"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert assigned.status_code == 200, assigned.text
    assert bots["hold"].loaded.name == "holder"
    assert [p.seq for p in bots["hold"].book.positions] == [p.seq for p in positions]


async def the_websocket_saw_the_engine_s_events_in_order(session: OperatorSession) -> None:
    """the WebSocket saw the engine's events in the engine's order"""
    events = session.events
    await session.until(
        lambda: bool(events.of("bot_updated", bot="hold")), "the assignment's event"
    )
    kinds = ("strategy_", "bot_")
    published = [
        (e.kind, e.bot, e.message) for e in session.engine.bus.recent() if e.kind.startswith(kinds)
    ]
    received = [
        (m["kind"], m["bot"], m["message"])
        for m in events.messages
        if m.get("type") == "event" and m["kind"].startswith(kinds)
    ]
    # (the bus remembers its last 500 events only: compare the common tail)
    common = min(len(received), len(published))
    assert common >= 10
    assert received[-common:] == published[-common:]
