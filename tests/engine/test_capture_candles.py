"""The engine's 1 s candles, built from the real Binance capture served by a real replay
server on loopback, equal an independent pandas aggregation of the capture's trades."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.engine import build_engine
from live.feeds import BinanceFeed
from live.replay import CaptureSource, ReplayServer
from tests.engine.helpers import (
    BTC_CAPTURE,
    Aio,
    add_bots,
    config_for,
)
from tests.support import feed_config, independent_second_candles
from tradepipe.candles import CANDLE_COLUMNS, candles_to_frame
from tradepipe.domain import Candle

CAPTURE_SECONDS = 345  # seconds of the capture with at least one trade


@pytest.mark.shared_data
def test_engine_second_candles_equal_an_independent_aggregation(
    aio: Aio, shared_data: Path, database_url: str, strategies_dir: Path
) -> None:
    capture = shared_data / BTC_CAPTURE
    expected = independent_second_candles(capture)
    add_bots(database_url, strategies_dir, [("btc", "ema_rsi")])
    candles: list[Candle] = []

    async def scenario() -> None:
        async with ReplayServer(CaptureSource(capture), speed=0) as replay:
            config = config_for(database_url, strategies_dir, rest_url=replay.rest_url)
            engine = build_engine(config, feed=BinanceFeed(feed_config(replay.url)))
            engine.add_candle_listener(candles.append)
            await engine.start()
            try:
                await aio.eventually(replay.finished.is_set, "the replay to finish", 30)
                await aio.eventually(lambda: len(candles) >= len(expected), "the last candle")
                metrics = engine.feed.metrics()
                assert metrics.parse_errors == 0 and metrics.trades == 9757
            finally:
                await engine.stop()

    aio.run(scenario(), timeout=60)
    assert len(expected) == CAPTURE_SECONDS
    ours = candles_to_frame(candles)
    columns = list(CANDLE_COLUMNS)
    # every second, every value, bit for bit: no tolerance
    assert ours[columns].equals(expected[columns])
