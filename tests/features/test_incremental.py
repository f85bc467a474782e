"""The incremental state: readiness, copies for sharing, refusals that leave it intact."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import replace

import pandas as pd
import pytest

from tradepipe.candles import frame_to_candles
from tradepipe.domain import Candle
from tradepipe.features import CandleDataError, FeatureSpec, IncrementalFeatures, default_spec
from tradepipe.timeframes import parse_timeframe

MakeCandles = Callable[..., pd.DataFrame]


def _candles(make_candles: MakeCandles, rows: int, seed: int = 1) -> list[Candle]:
    return frame_to_candles(make_candles(seed, rows), "BTCUSDT", "1m")


def _same(left: tuple[float, ...], right: tuple[float, ...]) -> bool:
    return all(
        a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(left, right, strict=True)
    )


def test_ready_once_every_feature_is_defined(make_candles: MakeCandles) -> None:
    spec = default_spec()
    features = IncrementalFeatures(spec)
    for row, candle in enumerate(_candles(make_candles, spec.warmup + 2)):
        values = features.update(candle)
        assert features.ready == (row >= spec.warmup)
        assert any(math.isnan(x) for x in values) == (row < spec.warmup)
    assert features.rows == spec.warmup + 2
    named = features.as_dict(values)
    assert list(named) == list(spec.feature_names)
    assert isinstance(values, tuple)


def test_snapshot_restore_replays_identically(make_candles: MakeCandles) -> None:
    candles = _candles(make_candles, 1_500)
    features = IncrementalFeatures(default_spec())
    for candle in candles[:700]:
        features.update(candle)
    state = features.snapshot()
    first = [features.update(candle) for candle in candles[700:]]
    features.restore(state)
    second = [features.update(candle) for candle in candles[700:]]
    assert all(_same(a, b) for a, b in zip(first, second, strict=True))
    hash(state)  # immutable all the way down: safe to keep and share


def test_copies_are_independent(make_candles: MakeCandles) -> None:
    candles = _candles(make_candles, 600)
    other = _candles(make_candles, 600, seed=2)
    original = IncrementalFeatures(default_spec())
    for candle in candles[:300]:
        original.update(candle)
    twins = [original.copy(), copy.deepcopy(original)]
    for candle in other[300:]:  # diverge the original
        original.update(candle)
    for twin in twins:
        reference = IncrementalFeatures(default_spec())
        for candle in candles[:300]:
            reference.update(candle)
        for candle in candles[300:]:
            assert _same(twin.update(candle), reference.update(candle))


def test_restore_refuses_a_state_from_another_spec(make_candles: MakeCandles) -> None:
    state = IncrementalFeatures(FeatureSpec(rsi_periods=(7,))).snapshot()
    with pytest.raises(ValueError, match="warm up a new state"):
        IncrementalFeatures(default_spec()).restore(state)


def test_refused_candles_leave_the_state_untouched(make_candles: MakeCandles) -> None:
    candles = _candles(make_candles, 200)
    features = IncrementalFeatures(default_spec())
    reference = IncrementalFeatures(default_spec())
    for candle in candles[:100]:
        features.update(candle)
        reference.update(candle)
    bad = [
        candles[99],  # the same candle again
        candles[50],  # an older one
        replace(candles[100], close=0.0),
        replace(candles[100], low=math.nan),
        replace(candles[100], high=math.inf),
        replace(candles[100], volume=-1.0),
    ]
    for candle in bad:
        with pytest.raises(CandleDataError):
            features.update(candle)
    for candle in candles[100:]:
        assert _same(features.update(candle), reference.update(candle))


def test_state_stays_bounded_over_a_long_run() -> None:
    spec = default_spec()
    features = IncrementalFeatures(spec)
    minute = parse_timeframe("1m")
    for row in range(5_000):
        price = 100.0 + (row % 7)
        features.update(Candle("X", minute, row * 60_000, price, price + 1, price - 1, price, 1.0))
    longest = max(len(v) for v in features.snapshot().values if isinstance(v, tuple))
    # histories keep the longest look-back (30) and the current value, trimmed every 512
    assert longest <= 30 + 1 + 512


def test_taker_volume_none_or_nan_means_unknown() -> None:
    features = IncrementalFeatures(FeatureSpec(taker_flow_windows=(2,)))
    minute = parse_timeframe("1m")
    rows = [
        features.update(Candle("X", minute, i * 60_000, 1.0, 1.0, 1.0, 1.0, 4.0, taker))
        for i, taker in enumerate([3.0, None, math.nan, 1.0, 1.0])
    ]
    flow = [features.as_dict(r)["taker_net_flow"] for r in rows]
    window = [features.as_dict(r)["taker_net_flow_2"] for r in rows]
    assert flow[0] == 0.5 and math.isnan(flow[1]) and math.isnan(flow[2]) and flow[3] == -0.5
    assert [math.isnan(x) for x in window] == [True, True, True, True, False]
    assert window[4] == -0.5
