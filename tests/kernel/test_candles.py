"""Candle aggregation: real exchange data, streaming vs batch, the gap policy."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepipe.candles import (
    CANDLE_COLUMNS,
    CandleAggregator,
    CandleResampler,
    OutOfOrderError,
    _ExactSum,
    aggregate_trades,
    candles_from_trades,
    candles_to_frame,
    frame_to_candles,
    resample_candles,
    trades_to_frame,
)
from tradepipe.capture import capture_trades
from tradepipe.domain import Side, Trade
from tradepipe.timeframes import parse_timeframe

XRP_TRADES = "binance_xrpeth_trades_2019-10-11.csv.gz"
XRP_MINUTES = "binance_xrpeth_1m_2019-10-11.csv.gz"
BTC_CAPTURE = "binance_spot_btcusdt_ws_2024-08-08.txt.gz"


def _xrp_trades(shared_data: Path) -> list[Trade]:
    rows = pd.read_csv(shared_data / XRP_TRADES)
    return [
        Trade("XRPETH", int(time), float(price), float(amount), Side(side), int(trade_id))
        for time, trade_id, side, price, amount in rows.itertuples(index=False)
    ]


def _exchange_minutes(shared_data: Path) -> pd.DataFrame:
    minutes = pd.read_csv(shared_data / XRP_MINUTES)
    stamps = pd.to_datetime(minutes.pop("timestamp"), utc=True)
    minutes.insert(0, "start_ms", (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms"))
    return minutes


@pytest.mark.shared_data
def test_xrpeth_trades_rebuild_binance_own_minutes_exactly(shared_data: Path) -> None:
    trades = _xrp_trades(shared_data)
    exchange = _exchange_minutes(shared_data)
    streamed = candles_to_frame(candles_from_trades(trades, "1m"))
    batched = aggregate_trades(trades_to_frame(trades), "1m")
    ohlcv = ["start_ms", "open", "high", "low", "close", "volume"]
    assert len(exchange) == 2469
    for ours in (streamed, batched):
        # every minute, every value, bit for bit: no tolerance
        assert ours[ohlcv].reset_index(drop=True).equals(exchange[ohlcv].reset_index(drop=True))


def _independent_second_candles(capture: Path) -> pd.DataFrame:
    """The capture's 1 s candles computed without any tradepipe code."""
    rows = []
    with gzip.open(capture, "rt") as lines:
        for line in lines:
            message = json.loads(line.split(" ", 1)[1])
            if message.get("stream", "").endswith("@trade"):
                data = message["data"]
                rows.append((data["T"], float(data["p"]), float(data["q"]), not data["m"]))
    trades = pd.DataFrame(rows, columns=["time", "price", "qty", "taker_buy"])
    trades["time"] = pd.to_datetime(trades["time"], unit="ms", utc=True)
    trades["buy_qty"] = trades["qty"].where(trades["taker_buy"], 0.0)
    second = trades.groupby(trades["time"].dt.floor("1s"))
    return second.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("qty", math.fsum),
        taker_buy_volume=("buy_qty", math.fsum),
        trade_count=("price", "size"),
    )


@pytest.mark.shared_data
def test_btcusdt_second_candles_equal_an_independent_pandas_groupby(shared_data: Path) -> None:
    trades = list(capture_trades(shared_data / BTC_CAPTURE))
    assert len(trades) == 9757
    expected = _independent_second_candles(shared_data / BTC_CAPTURE)
    expected_starts = (expected.index - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms")
    streamed = candles_to_frame(candles_from_trades(trades, "1s"))
    batched = aggregate_trades(trades_to_frame(trades), "1s")
    for ours in (streamed, batched):
        assert ours["start_ms"].tolist() == list(expected_starts)
        for column in CANDLE_COLUMNS[1:]:
            assert ours[column].tolist() == expected[column].tolist(), column


@pytest.mark.shared_data
def test_second_candles_resample_to_the_minutes_built_from_trades(shared_data: Path) -> None:
    trades = list(capture_trades(shared_data / BTC_CAPTURE))
    seconds = list(candles_from_trades(trades, "1s"))
    direct = aggregate_trades(trades_to_frame(trades), "1m")

    resampler = CandleResampler("1m", "BTCUSDT")
    streamed = [c for c in map(resampler.add, seconds) if c is not None]
    streamed.append(resampler.flush())  # type: ignore[arg-type]
    for resampled in (
        candles_to_frame(streamed),
        resample_candles(candles_to_frame(seconds), "1m"),
    ):
        exact = ["start_ms", "open", "high", "low", "close", "trade_count"]
        assert resampled[exact].equals(direct[exact])
        # sums of sums round differently from the sum of the trades, within an ulp or two
        for column in ("volume", "taker_buy_volume"):
            np.testing.assert_allclose(resampled[column], direct[column], rtol=1e-13)


def _trade(seconds: float, price: float, quantity: float = 1.0, side: Side = Side.BUY) -> Trade:
    return Trade("TEST", int(seconds * 1000), price, quantity, side)


def test_interval_without_trades_produces_no_candle() -> None:
    trades = [_trade(0.5, 10), _trade(59, 11), _trade(180.2, 12, 2.0, Side.SELL)]
    candles = list(candles_from_trades(trades, "1m"))
    assert [c.start_ms for c in candles] == [0, 180_000]  # minutes 1 and 2 had no trades
    first, last = candles
    assert (first.open, first.high, first.low, first.close, first.volume) == (10, 11, 10, 11, 2)
    assert (last.taker_buy_volume, last.taker_sell_volume, last.trade_count) == (0.0, 2.0, 1)


def test_clock_tick_closes_a_candle_without_waiting_for_the_next_trade() -> None:
    aggregator = CandleAggregator("1m", "TEST")
    assert aggregator.add(_trade(10, 100)) is None
    assert aggregator.close_until(59_999) is None  # the minute is not over yet
    partial = aggregator.partial()
    assert partial is not None and partial.close == 100
    closed = aggregator.close_until(60_000)
    assert closed is not None and closed.start_ms == 0 and closed.end_ms == 60_000
    assert aggregator.partial() is None and aggregator.flush() is None


def test_late_trade_is_counted_and_dropped_never_reopens_a_closed_candle() -> None:
    aggregator = CandleAggregator("1m", "TEST")
    aggregator.add(_trade(10, 100))
    closed = aggregator.add(_trade(70, 101))
    assert closed is not None
    assert aggregator.add(_trade(20, 999)) is None  # belongs to the closed minute
    assert aggregator.late_inputs == 1
    last = aggregator.flush()
    assert last is not None and last.high == 101


def test_batch_refuses_unsorted_trades() -> None:
    frame = trades_to_frame([_trade(70, 1), _trade(10, 2)])
    with pytest.raises(OutOfOrderError, match="sorted"):
        aggregate_trades(frame, "1m")


def test_resampler_refuses_a_timeframe_that_does_not_divide() -> None:
    seven_seconds = frame_to_candles(
        aggregate_trades(trades_to_frame([_trade(1, 1)]), "7s"), "TEST", "7s"
    )
    with pytest.raises(ValueError, match="cannot build 1m candles from 7s"):
        CandleResampler("1m", "TEST").add(seven_seconds[0])


def test_resampling_keeps_unknown_taker_volume_unknown() -> None:
    candles = pd.DataFrame(
        {
            "start_ms": [0, 60_000, 120_000],
            "open": [1.0, 2.0, 3.0],
            "high": [1.0, 2.0, 3.0],
            "low": [1.0, 2.0, 3.0],
            "close": [1.0, 2.0, 3.0],
            "volume": [1.0, 1.0, 1.0],
            "taker_buy_volume": [0.5, np.nan, 0.5],
            "trade_count": [1, 1, 1],
        }
    )
    hourly = resample_candles(candles, "1h")
    assert math.isnan(hourly.loc[0, "taker_buy_volume"])
    assert hourly.loc[0, "trade_count"] == 3
    assert hourly.loc[0, "volume"] == 3.0


trade_lists = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=600_000),
        st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
        st.floats(min_value=1e-8, max_value=1e4, allow_nan=False),
        st.booleans(),
    ),
    max_size=200,
).map(
    lambda rows: [
        Trade("TEST", time, price, quantity, Side.BUY if buy else Side.SELL, index)
        for index, (time, price, quantity, buy) in enumerate(sorted(rows, key=lambda r: r[0]))
    ]
)


def tf_floor(time_ms: int, timeframe: str) -> int:
    return parse_timeframe(timeframe).floor_ms(time_ms)


@settings(max_examples=150, deadline=None)
@given(trades=trade_lists, timeframe=st.sampled_from(["1s", "5s", "1m", "3m", "1h"]))
def test_streaming_and_batch_agree_on_every_candle(trades: list[Trade], timeframe: str) -> None:
    streamed = candles_to_frame(candles_from_trades(trades, timeframe))
    batched = aggregate_trades(trades_to_frame(trades), timeframe)
    assert streamed.equals(batched)
    assert len(streamed) == len({tf_floor(t.time_ms, timeframe) for t in trades})
    # candles round-trip through frames unchanged
    tf = parse_timeframe(timeframe)
    assert candles_to_frame(frame_to_candles(streamed, "TEST", tf)).equals(streamed)


@given(
    st.lists(
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False),
        max_size=200,
    ),
    st.integers(min_value=0, max_value=200),
)
def test_the_running_exact_sum_is_fsum_of_its_inputs_whenever_it_is_read(
    values: list[float], read_at: int
) -> None:
    running = _ExactSum()
    for index, value in enumerate(values):
        running.add(value)
        if index == read_at:  # a read in between changes nothing that follows
            assert running.total == math.fsum(values[: index + 1])
    assert running.total == math.fsum(values)
