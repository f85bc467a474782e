"""Parity: batch and incremental features agree on every row, real data first.

Tolerance: 1e-9 relative, with an absolute floor of 1e-12 for values that are legitimately
about zero (a flat market's return, a balanced taker flow, a z-score on the mean), where a
relative difference means nothing. Every feature is a ratio, a log-ratio or a bounded index
whose meaningful values are far above 1e-12 (one tick on the BTC hourly series moves a
return by ~1e-6). The implementations are built to agree bit for bit (see
`tradepipe.features._shared`); the tolerance states the contract, not what they achieve.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tradepipe.candles import CANDLE_DTYPES, frame_to_candles
from tradepipe.features import FeatureSpec, IncrementalFeatures, compute_features, default_spec

MakeCandles = Callable[..., pd.DataFrame]
RELATIVE = 1e-9
ABSOLUTE_FLOOR = 1e-12


def incremental_frame(candles: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    features = IncrementalFeatures(spec)
    rows = [features.update(candle) for candle in frame_to_candles(candles, "X", "1m")]
    values = np.array(rows, dtype=np.float64).reshape(len(rows), len(spec.feature_names))
    return pd.DataFrame(values, index=candles.index, columns=list(spec.feature_names))


def assert_parity(candles: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Assert the two implementations agree on `candles`; return the batch features."""
    batch = compute_features(candles, spec)
    incremental = incremental_frame(candles, spec)
    left, right = batch.to_numpy(), incremental.to_numpy()
    nan_left, nan_right = np.isnan(left), np.isnan(right)
    for position, name in enumerate(spec.feature_names):
        mismatch = np.flatnonzero(nan_left[:, position] != nan_right[:, position])
        assert not len(mismatch), f"{name}: NaN in one implementation only at row {mismatch[0]}"
    both = ~nan_left
    scale = np.maximum(np.abs(left), np.abs(right))
    off = both & (np.abs(left - right) > RELATIVE * scale + ABSOLUTE_FLOOR)
    if off.any():
        row, position = np.argwhere(off)[0]
        raise AssertionError(
            f"{spec.feature_names[position]} differs at row {row}: batch "
            f"{left[row, position]!r}, incremental {right[row, position]!r} "
            f"({int(off.sum())} values off)"
        )
    return batch


def assert_complete_after_warmup(features: pd.DataFrame, spec: FeatureSpec) -> None:
    settled = features.iloc[spec.warmup :]
    for name, first in spec.warmup_by_feature.items():
        assert features[name].iloc[:first].isna().all(), name
        if not name.startswith("taker_"):
            assert np.isfinite(settled[name]).all(), name


@pytest.mark.shared_data
def test_parity_on_coinbase_btc_hourly(btc_hourly: pd.DataFrame) -> None:
    spec = default_spec()
    assert len(btc_hourly) == 20_111
    features = assert_parity(btc_hourly, spec)
    assert_complete_after_warmup(features, spec)
    # plain OHLCV: no taker volume, so taker flows are NaN throughout
    assert features["taker_net_flow"].isna().all()


@pytest.mark.shared_data
def test_parity_on_the_gappy_flat_altcoin_minutes(gappy_minutes: pd.DataFrame) -> None:
    spec = default_spec()
    assert len(gappy_minutes) == 13_681
    features = assert_parity(gappy_minutes, spec)
    assert_complete_after_warmup(features, spec)
    settled = features.iloc[spec.warmup :]
    # Unchanged closes and zero-range candles are common here: the defined 0/0 cases occur
    # and take their defined values exactly, not values within rounding of them.
    assert (settled["ret_1"] == 0.0).sum() > 2_000
    assert (settled["close_location"] == 0.5).sum() > 1_500
    assert (settled["close_sma_5"] == 1.0).sum() > 100
    assert (settled["logret_std_10"] == 0.0).sum() > 0
    assert (settled["parkinson_10"] == 0.0).sum() > 0


@pytest.mark.shared_data
def test_parity_with_long_and_minimal_windows(
    gappy_minutes: pd.DataFrame,
) -> None:
    spec = FeatureSpec(
        name="long",
        return_horizons=(1, 100),
        sma_windows=(3, 150),
        ema_spans=(2, 200),
        volatility_windows=(2, 90),
        rsi_periods=(2, 30),
        momentum_periods=(1, 77),
        volume_windows=(2, 120),
        taker_flow_windows=(1, 70),
    )
    assert_parity(gappy_minutes.iloc[:5_000], spec)


def test_parity_on_a_synthetic_market_with_taker_volume(make_candles: MakeCandles) -> None:
    candles = make_candles(7, 6_000, missing_taker_share=0.02)
    spec = default_spec()
    features = assert_parity(candles, spec)
    assert_complete_after_warmup(features, spec)
    assert features["taker_net_flow_10"].notna().sum() > 3_000
    assert features["taker_net_flow_10"].isna().sum() > 300  # NaN 10 rows after each gap


def test_parity_on_low_priced_markets_and_flat_runs(make_candles: MakeCandles) -> None:
    candles = make_candles(3, 3_000, price=1.6e-3, flat_share=0.6)
    assert_parity(candles, default_spec())


def test_flat_market_takes_the_defined_values_exactly() -> None:
    rows = 80
    candles = pd.DataFrame(
        {
            "start_ms": np.arange(rows) * 60_000,
            "open": 0.00161,
            "high": 0.00161,
            "low": 0.00161,
            "close": 0.00161,
            "volume": 5.0,
            "taker_buy_volume": 2.0,
            "trade_count": np.nan,
        }
    ).astype(CANDLE_DTYPES)
    spec = default_spec()
    settled = assert_parity(candles, spec).iloc[spec.warmup :]
    expected = {"close_location": 0.5, "rsi_14": 50.0, "volume_ratio_20": 1.0}
    expected |= {"taker_net_flow": -0.2, "taker_net_flow_10": -0.2}
    for name in spec.feature_names:
        if name.startswith(("close_sma", "close_ema")):
            expected[name] = 1.0
        value = expected.get(name, 0.0)
        assert (settled[name] == value).all(), (name, settled[name].iloc[0])


_steps = st.one_of(st.just(0.0), st.floats(-0.1, 0.1))
_fractions = st.one_of(st.just(0.0), st.floats(0.0, 0.05))
_volumes = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1e6))
_taker_shares = st.one_of(st.none(), st.just(0.5), st.floats(0.0, 1.0))


@st.composite
def candle_frames(draw: st.DrawFn, max_rows: int = 160) -> pd.DataFrame:
    rows = draw(st.integers(1, max_rows))
    price = draw(st.sampled_from([1e-8, 1.6e-3, 1.0, 2_500.0, 60_000.0]))
    steps = np.array(draw(st.lists(_steps, min_size=rows, max_size=rows)))
    close = price * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[price], close[:-1]])
    upper = np.array(draw(st.lists(_fractions, min_size=rows, max_size=rows)))
    lower = np.array(draw(st.lists(_fractions, min_size=rows, max_size=rows)))
    volume = np.array(draw(st.lists(_volumes, min_size=rows, max_size=rows)))
    shares = draw(st.lists(_taker_shares, min_size=rows, max_size=rows))
    taker = np.array([math.nan if s is None else s for s in shares]) * volume
    return pd.DataFrame(
        {
            "start_ms": np.arange(rows) * 60_000,
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + upper),
            "low": np.minimum(open_, close) * (1.0 - lower),
            "close": close,
            "volume": volume,
            "taker_buy_volume": taker,
            "trade_count": np.nan,
        }
    ).astype(CANDLE_DTYPES)


def _increasing(low: int, high: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(low, high), max_size=3, unique=True).map(lambda x: tuple(sorted(x)))


@st.composite
def specs(draw: st.DrawFn) -> FeatureSpec:
    try:
        return FeatureSpec(
            name="drawn",
            return_horizons=draw(_increasing(1, 30)),
            sma_windows=draw(_increasing(1, 70)),
            ema_spans=draw(_increasing(1, 30)),
            volatility_windows=draw(_increasing(2, 70)),
            rsi_periods=draw(_increasing(1, 20)),
            momentum_periods=draw(_increasing(1, 20)),
            volume_windows=draw(_increasing(2, 70)),
            taker_net_flow=draw(st.booleans()),
            taker_flow_windows=draw(_increasing(1, 70)),
            candle_shape=draw(st.booleans()),
        )
    except ValidationError:
        assume(False)
        raise


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(candles=candle_frames(), spec=st.one_of(st.just(default_spec()), specs()))
def test_parity_on_generated_short_series(candles: pd.DataFrame, spec: FeatureSpec) -> None:
    assert_parity(candles, spec)
