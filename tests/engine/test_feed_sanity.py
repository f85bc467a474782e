"""Poison market data through the real engine, its Binance feed and the loopback replay
server (issue 14): one forged trade or frame never stops candles, moves market time,
fills a bot or drops the connection, and a symbol gone silent degrades /health by name."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from live.api import ApiServer, create_app
from live.api.prometheus import engine_registry, render
from live.engine import Engine, EngineConfig, EngineState, build_engine
from live.feeds import BinanceFeed, SuspectCounts
from live.replay import ReplayMessage, ReplayServer, SyntheticSource, trade_message
from tests.api.promtext import parse, value
from tests.engine.helpers import START_MS, Aio, MarketTimes, add_bots, config_for, query
from tests.support import feed_config
from tradepipe.domain import Candle, Trade

MARKET_MS = 1_800_000  # half an hour of synthetic market (~250 trades), 400 times faster
SPEED = 400
INJECT_AT = 60  # the trade after which the forged messages come
DAY_MS = 86_400_000

Forge = Callable[[Trade], list[str]]


class Poisoned(MarketTimes):
    """The synthetic market, with `forge(trade)`'s messages after trade number INJECT_AT."""

    def __init__(self, forge: Forge, symbols: tuple[str, ...] = ("BTCUSDT",)) -> None:
        super().__init__(
            SyntheticSource(list(symbols), start_ms=START_MS, end_ms=START_MS + MARKET_MS)
        )
        self.forge = forge
        self.injected_after: Trade | None = None

    def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
        trades = 0
        for message in super().messages(wall_start_ns, speed):
            yield message
            if message.trade is None:
                continue
            trades += 1
            if trades == INJECT_AT:
                self.injected_after = message.trade
                for raw in self.forge(message.trade):
                    yield replace(message, raw=raw, trade=None)


def expected_seconds() -> set[int]:
    """Every second of the clean market with a trade: the candles the engine must build."""
    source = SyntheticSource(["BTCUSDT"], start_ms=START_MS, end_ms=START_MS + MARKET_MS)
    return {m.trade.time_ms // 1000 * 1000 for m in source.messages(0, 0.0) if m.trade is not None}


def nested(depth: int) -> str:
    return '{"stream":"btcusdt@trade","data":' + '{"a":' * depth + "1" + "}" * depth + "}"


async def run_market(
    aio: Aio, database_url: str, strategies_dir: Path, source: Poisoned, **config: object
) -> tuple[Engine, list[Candle]]:
    """Play `source` through a real engine to the end; the engine (stopped) and its
    candles."""
    candles: list[Candle] = []
    async with ReplayServer(source, speed=SPEED) as replay:
        engine = build_engine(
            config_for(database_url, strategies_dir, **config),
            feed=BinanceFeed(feed_config(replay.url)),
        )
        engine.add_candle_listener(candles.append)
        await engine.start()
        try:
            await aio.eventually(replay.finished.is_set, "the replay to finish", 20)
            wanted = expected_seconds()
            await aio.eventually(
                lambda: {c.start_ms for c in candles} >= wanted, "every candle of the market", 10
            )
            assert engine.feed.metrics().reconnects == 0
        finally:
            await engine.stop()
    return engine, candles


def test_a_trade_id_far_ahead_does_not_stop_candles(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("steady", "always")])
    source = Poisoned(lambda t: [trade_message(replace(t, trade_id=t.trade_id + 10**8))])

    async def scenario() -> None:
        engine, candles = await run_market(aio, database_url, strategies_dir, source)
        assert {c.start_ms for c in candles} == expected_seconds()  # nothing more, none less
        metrics = engine.feed.metrics()
        assert metrics.suspects == SuspectCounts(id_jump=1, rejected=1)
        assert (metrics.duplicates, metrics.gaps) == (0, 0)
        bot = engine.status().bot("steady")
        assert bot is not None and bot.last_candle_ms is not None
        assert bot.last_candle_ms > source.injected_after.time_ms + MARKET_MS // 2  # type: ignore[union-attr]

    aio.run(scenario())


def test_a_trade_in_the_future_does_not_close_a_position_by_timeout(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    # held ten times longer than the market lasts: only a forged clock could time it out
    add_bots(
        database_url,
        strategies_dir,
        [("holder", "always")],
        max_holding_seconds=MARKET_MS / 100,
        take_profit_pct=0.5,
        stop_loss_pct=0.5,
    )

    def forge(t: Trade) -> list[str]:
        wall_ms = time.time_ns() // 1_000_000
        upcoming = replace(t, trade_id=t.trade_id + 1)
        return [
            trade_message(replace(upcoming, time_ms=t.time_ms + DAY_MS)),  # a day ahead
            trade_message(replace(upcoming, time_ms=10**30)),
            trade_message(replace(upcoming, time_ms=wall_ms + DAY_MS)),  # the local clock's
        ]

    source = Poisoned(forge)

    async def scenario() -> None:
        engine, candles = await run_market(
            aio, database_url, strategies_dir, source, candle_close_grace_seconds=0.5
        )
        assert {c.start_ms for c in candles} == expected_seconds()
        metrics = engine.feed.metrics()
        assert metrics.suspects == SuspectCounts(time_jump=1, rejected=1, future_time=2)
        market_now = engine.status().market_time_ms
        assert market_now is not None and market_now < START_MS + MARKET_MS + 60_000
        positions = query(database_url, "SELECT status, exit_reason FROM positions")
        assert positions, "the bot held a position while the forged trades came"
        assert all(p.exit_reason != "timeout" for p in positions)
        assert any(p.status == "active" for p in positions)  # still held at the stop

    aio.run(scenario())


def test_an_absurd_price_or_quantity_never_fills_a_bot(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("trader", "always")], max_holding_seconds=5.0)

    def forge(t: Trade) -> list[str]:
        upcoming = replace(t, trade_id=t.trade_id + 1)
        return [
            trade_message(replace(upcoming, price=1e12)),
            trade_message(replace(upcoming, quantity=1e30)),
            trade_message(replace(upcoming, price=t.price / 1000)),
        ]

    source = Poisoned(forge)

    async def scenario() -> None:
        engine, _ = await run_market(aio, database_url, strategies_dir, source)
        metrics = engine.feed.metrics()
        assert metrics.suspects == SuspectCounts(price_band=2, rejected=2, quantity=1)
        fills = query(database_url, "SELECT price, quantity FROM fills")
        assert len(fills) > 10  # the bot traded all along
        assert source.injected_after is not None
        real = source.injected_after.price
        assert all(real / 2 < f.price < real * 2 for f in fills)
        assert all(f.quantity < 1e6 for f in fills)
        samples, _ = parse(render(engine_registry(engine)).decode())
        assert value(samples, "tradepipe_engine_feed_suspect_price_band_total") == 2
        assert value(samples, "tradepipe_engine_feed_suspect_quantity_total") == 1

    aio.run(scenario())


def test_a_deeply_nested_or_oversize_frame_does_not_drop_the_connection(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    add_bots(database_url, strategies_dir, [("steady", "always")])
    oversize = '{"stream":"btcusdt@trade","data":{"pad":"' + "x" * 100_000 + '"}}'
    source = Poisoned(lambda t: [nested(10_000), "[" * 30_000 + "]" * 30_000, oversize])

    async def scenario() -> None:
        engine, candles = await run_market(aio, database_url, strategies_dir, source)
        assert {c.start_ms for c in candles} == expected_seconds()
        metrics = engine.feed.metrics()
        assert (metrics.message_errors, metrics.oversize, metrics.reconnects) == (2, 1, 0)
        assert engine.metrics()["feed_message_errors_total"] == 2

    aio.run(scenario())


def test_a_silent_symbol_makes_health_degraded_naming_it(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    """ETHUSDT's trades stop at INJECT_AT while BTCUSDT's go on: /health (the real API)
    says degraded and names ETHUSDT; the BTCUSDT bot keeps trading."""
    add_bots(database_url, strategies_dir, [("btc", "always")])
    add_bots(database_url, strategies_dir, [("eth", "always")], symbol="ETHUSDT")

    class EthFallsSilent(Poisoned):
        def messages(self, wall_start_ns: int, speed: float) -> Iterator[ReplayMessage]:
            eth = 0
            for message in MarketTimes.messages(self, wall_start_ns, speed):
                if message.trade is not None and message.trade.symbol == "ETHUSDT":
                    eth += 1
                    if eth > INJECT_AT // 4:
                        continue
                yield message

    source = EthFallsSilent(lambda t: [], symbols=("BTCUSDT", "ETHUSDT"))

    async def scenario() -> None:
        async with ReplayServer(source, speed=SPEED / 2) as replay:
            engine = build_engine(
                config_for(database_url, strategies_dir, feed_silence_seconds=1.0),
                feed=BinanceFeed(feed_config(replay.url, silence_seconds=1.0)),
            )
            server = ApiServer(create_app(engine, token=None), "127.0.0.1", 0)
            serving = asyncio.create_task(server.serve())
            await engine.start()
            try:
                port = await server.wait_started()
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    response = await client.get("/health")
                    assert response.json()["state"] == "running"

                    async def degraded() -> bool:
                        body = (await client.get("/health")).json()
                        return bool(body["state"] == "degraded")

                    await aio.eventually(degraded, "the health to say degraded", 10, 0.05)
                    response = await client.get("/health")
                    body = response.json()
                    assert response.status_code == 503 and body["state"] == "degraded"
                    assert body["degraded_reasons"] == [
                        "feed: ETHUSDT silent (no trades while connected)"
                    ]
                    assert body["feed"]["silent"] == ["ETHUSDT"]
                    assert not replay.finished.is_set()  # BTCUSDT was still trading
                await aio.eventually(replay.finished.is_set, "the replay to finish", 20)
                assert engine.core.trading  # entries go on for the other symbol
                assert engine.state is EngineState.DEGRADED
                btc = engine.status().bot("btc")
                assert btc is not None and btc.entries > 0
            finally:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
                await engine.stop()

    aio.run(scenario())


def test_the_feed_tolerances_come_from_the_settings_and_are_checked(
    database_url: str, strategies_dir: Path, tmp_path: Path
) -> None:
    from live.engine.compose import make_feed
    from tradepipe.config import Settings

    settings = Settings(
        home=tmp_path,
        database_url=database_url,
        strategies_dir=strategies_dir,
        feed_price_band=0.1,
        feed_max_id_jump=5_000,
        feed_max_message_bytes=4096,
        feed_silence_seconds=5.0,
    )
    config = EngineConfig.from_settings(settings)
    feed = make_feed(config)
    assert isinstance(feed, BinanceFeed)
    assert feed.config.sanity.price_band == 0.1 and feed.config.sanity.max_id_jump == 5_000
    assert (feed.config.max_message_bytes, feed.config.silence_seconds) == (4096, 5.0)
    for bad in ({"feed_price_band": 1.5}, {"feed_max_id_jump": 100}, {"feed_max_message_bytes": 0}):
        with pytest.raises(ValueError, match="feed"):
            config_for(database_url, strategies_dir, **bad)
