"""The per-symbol candle pipeline: one feature state per (timeframe, spec) shared by bots,
resampled candles equal to the kernel's batch resampling, the partial first interval left
out, and new states warmed up from the kept candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from live.engine.features import SymbolPipeline
from live.feeds import InMemoryBackfill
from tests.engine.helpers import Aio, add_bots, config_for, push, start_engine, walk
from tradepipe.candles import candles_to_frame, resample_candles
from tradepipe.domain import Candle
from tradepipe.features import FeatureSpec, IncrementalFeatures, default_spec
from tradepipe.timeframes import ONE_SECOND, parse_timeframe

START = 1_704_067_200_000  # a minute boundary


def seconds(count: int, start_ms: int = START) -> list[Candle]:
    candles = []
    for index in range(count):
        price = 100.0 + (index % 7) - (index % 3) * 0.5
        candles.append(
            Candle(
                "BTCUSDT",
                ONE_SECOND,
                start_ms + index * 1_000,
                price,
                price + 1,
                price - 1,
                price + 0.25,
                1.0 + index % 4,
                0.5,
                3,
            )
        )
    return candles


def test_bots_on_the_same_timeframe_and_spec_share_one_state() -> None:
    pipeline = SymbolPipeline("BTCUSDT", history=50)
    spec = default_spec()
    first = pipeline.join("a", "1m", spec)
    assert pipeline.join("b", "1m", spec) is first
    other = pipeline.join("c", "5s", spec)
    assert other is not first and first.bots == {"a", "b"}
    rows = [row for candle in seconds(125) for row in pipeline.on_second(candle)]
    minutes = [row for row in rows if row.stream is first]
    assert [row.candle.start_ms for row in minutes] == [START, START + 60_000]
    pipeline.leave("a")
    pipeline.leave("b")
    assert "1m" not in pipeline.timeframes and "5s" in pipeline.timeframes


def test_resampled_candles_equal_the_kernels_batch_resampling() -> None:
    pipeline = SymbolPipeline("BTCUSDT", history=50)
    stream = pipeline.join("a", "15s", default_spec())
    for candle in seconds(300):
        pipeline.on_second(candle)
    pipeline.close_until(START + 300_000)
    batch = resample_candles(candles_to_frame(seconds(300)), "15s")
    live = candles_to_frame(pipeline.timeframes["15s"].history)
    pd.testing.assert_frame_equal(live, batch.tail(len(live)).reset_index(drop=True))
    assert stream.state.rows == len(batch) == 20


def test_a_stream_started_inside_an_interval_leaves_that_candle_out() -> None:
    pipeline = SymbolPipeline("BTCUSDT", history=50)
    pipeline.join("a", "1m", default_spec())
    rows = [row for c in seconds(150, start_ms=START + 30_000) for row in pipeline.on_second(c)]
    frame = pipeline.timeframes["1m"]
    assert frame.partial_skipped == 1  # [START, START + 1 m) was seen from its 31st second
    assert [row.candle.start_ms for row in rows] == [START + 60_000]  # then +120 s is open


def test_a_new_spec_is_warmed_up_from_the_kept_candles() -> None:
    pipeline = SymbolPipeline("BTCUSDT", history=100)
    pipeline.join("a", "1s", default_spec())
    candles = seconds(80)
    for candle in candles:
        pipeline.on_second(candle)
    small = FeatureSpec(
        name="small",
        return_horizons=(1,),
        sma_windows=(5,),
        ema_spans=(12,),
        volatility_windows=(10,),
        rsi_periods=(14,),
        momentum_periods=(10,),
        volume_windows=(20,),
        taker_flow_windows=(10,),
    )
    stream = pipeline.join("a", "1s", small)
    assert stream.ready and stream.bots == {"a"}
    reference = IncrementalFeatures(small)
    for candle in candles:
        expected = reference.update(candle)
    assert stream.last_row == expected
    assert len(pipeline.timeframes["1s"].streams) == 1  # the old state nobody reads is gone


def test_a_new_timeframe_is_warmed_up_from_the_exchange_and_trades_at_once(
    aio: Aio, database_url: str, strategies_dir: Path
) -> None:
    """A 1m bot started mid-minute: the minute it starts in is left out, the exchange is
    asked for the 300 minutes before the first whole one, and the bot decides from that
    whole minute's close on, instead of after 31 minutes of live candles."""
    minute = parse_timeframe("1m")
    earlier = [
        Candle("BTCUSDT", minute, START - (i + 1) * 60_000, 100.0, 101.0, 99.0, 100.5, 2.0, 1.0, 9)
        for i in range(400)
    ]
    backfill = InMemoryBackfill(earlier)
    add_bots(database_url, strategies_dir, [("m", "always")], timeframe="1m")

    async def scenario() -> None:
        config = config_for(database_url, strategies_dir, warmup_from_exchange=True)
        running = await start_engine(config, backfill=backfill)
        try:
            await push(running, walk(150, start_ms=START + 30_000))  # to START + 3 min
            await aio.eventually(lambda: running.engine.core.metrics.entries >= 1, "an entry")
            frame = running.engine.core.symbols["BTCUSDT"].timeframes["1m"]
            assert frame.partial_skipped == 1  # the minute it started in
            starts = [candle.start_ms for candle in frame.history]
            assert starts[0] < START and START not in starts and START + 60_000 in starts
        finally:
            await running.engine.stop()

    aio.run(scenario())
    assert backfill.requests == [("BTCUSDT", "1m", START + 60_000 - 300 * 60_000, START + 60_000)]
