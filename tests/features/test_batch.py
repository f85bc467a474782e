"""Batch features mean what the package docstring says, and refuse unusable candles.

Parity proves the two implementations equal; these tests prove they are right, against
independent textbook formulas written with plain pandas.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tradepipe.features import CandleDataError, FeatureSpec, compute_features, default_spec

# pandas' rolling kernels sum in a different order: agreement to rounding, not bit for bit.
MakeCandles = Callable[..., pd.DataFrame]
RELATIVE = 1e-8
ABSOLUTE = 1e-12


def _close(ours: pd.Series, reference: pd.Series | np.ndarray) -> None:
    expected = np.asarray(reference, dtype=np.float64)
    np.testing.assert_allclose(ours.to_numpy(), expected, rtol=RELATIVE, atol=ABSOLUTE)


def _wilder_rsi(close: pd.Series, period: int) -> pd.Series:
    """RSI as the docstring defines it, with a plain loop."""
    values = close.to_numpy()
    out = np.full(len(values), np.nan)
    gain = loss = 0.0
    for t in range(1, len(values)):
        change = values[t] - values[t - 1]
        up, down = max(change, 0.0), max(-change, 0.0)
        if t == 1:
            gain, loss = up, down
        else:
            gain += (up - gain) / period
            loss += (down - loss) / period
        if t >= period:
            out[t] = 50.0 if gain + loss == 0 else 100.0 * gain / (gain + loss)
    return pd.Series(out, index=close.index)


def test_every_feature_matches_its_textbook_formula(make_candles: MakeCandles) -> None:
    candles = make_candles(11, 3_000, flat_share=0.0)
    spec = default_spec()
    ours = compute_features(candles, spec)
    o, h, lo, c, v = (candles[k] for k in ("open", "high", "low", "close", "volume"))
    tb = candles["taker_buy_volume"]
    log_return = np.log(c).diff()
    for hz in spec.return_horizons:
        _close(ours[f"ret_{hz}"], np.log(c).diff(hz))
    for w in spec.sma_windows:
        _close(ours[f"close_sma_{w}"], c / c.rolling(w).mean())
    for s in spec.ema_spans:
        _close(ours[f"close_ema_{s}"], c / c.ewm(span=s, adjust=False, min_periods=s).mean())
    for w in spec.volatility_windows:
        _close(ours[f"logret_std_{w}"], log_return.rolling(w).std())
        park = ((h / lo).map(math.log) ** 2).rolling(w).mean() / (4 * math.log(2))
        _close(ours[f"parkinson_{w}"], np.sqrt(park))
    _close(ours["rsi_14"], _wilder_rsi(c, 14))
    _close(ours["momentum_10"], c / c.shift(10) - 1)
    _close(ours["volume_ratio_20"], v / v.rolling(20).mean())
    _close(ours["volume_zscore_20"], (v - v.rolling(20).mean()) / v.rolling(20).std())
    net = tb - (v - tb)
    _close(ours["taker_net_flow"], net / v)
    _close(ours["taker_net_flow_10"], net.rolling(10).sum() / v.rolling(10).sum())
    _close(ours["body"], (c - o) / (h - lo))
    _close(ours["upper_wick"], (h - np.maximum(o, c)) / (h - lo))
    _close(ours["lower_wick"], (np.minimum(o, c) - lo) / (h - lo))
    _close(ours["close_location"], (c - lo) / (h - lo))
    _close(ours["log_range"], np.log(h / lo))


def test_windowed_sums_forget_huge_values_as_soon_as_they_leave(make_candles: MakeCandles) -> None:
    # Volumes 1e12 then ~10: a running sum (s += new - old) of squares would keep a residue
    # of ~1e8 from the departed values; block sums never hold a value outside the window.
    candles = make_candles(5, 400)
    candles.loc[:29, "volume"] = 1e12
    ours = compute_features(candles, default_spec())["volume_zscore_20"]
    v = candles["volume"]
    reference = (v - v.rolling(20).mean()) / v.rolling(20).apply(lambda x: np.std(x, ddof=1))
    first_clean = 30 + 20 - 1
    _close(ours.iloc[first_clean:], reference.iloc[first_clean:])


def test_output_keeps_the_input_index_and_order_and_leaves_the_input_alone(
    make_candles: MakeCandles,
) -> None:
    candles = make_candles(1, 200)
    candles.index = pd.Index(np.arange(200)[::-1] * 7, name="label")
    before = candles.copy()
    features = compute_features(candles, default_spec())
    assert features.index.equals(candles.index)
    assert tuple(features.columns) == default_spec().feature_names
    assert (features.dtypes == np.float64).all()
    pd.testing.assert_frame_equal(candles, before)


def test_plain_ohlcv_without_taker_column_gives_nan_taker_flows(make_candles: MakeCandles) -> None:
    candles = make_candles(2, 100).drop(columns=["taker_buy_volume", "trade_count", "start_ms"])
    features = compute_features(candles, default_spec())
    assert features["taker_net_flow"].isna().all()
    assert features["taker_net_flow_10"].isna().all()
    assert features["rsi_14"].iloc[30:].notna().all()


def test_taker_window_is_nan_until_it_holds_only_candles_with_taker_volume(
    make_candles: MakeCandles,
) -> None:
    candles = make_candles(4, 100)
    candles.loc[50, "taker_buy_volume"] = np.nan
    features = compute_features(candles, FeatureSpec(taker_flow_windows=(5,)))
    flow = features["taker_net_flow_5"]
    assert flow.iloc[4:50].notna().all()
    assert flow.iloc[50:55].isna().all()
    assert flow.iloc[55:].notna().all()
    assert features["taker_net_flow"].isna().tolist() == [i == 50 for i in range(100)]


def test_empty_and_single_candle_frames(make_candles: MakeCandles) -> None:
    spec = default_spec()
    empty = compute_features(make_candles(1, 1).iloc[:0], spec)
    assert empty.shape == (0, len(spec.feature_names))
    one = compute_features(make_candles(1, 1), spec)
    assert one.shape == (1, len(spec.feature_names))
    assert one["ret_1"].isna().all()
    assert one["log_range"].notna().all()


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("close", 0.0, "'close' must be finite and positive: row 3"),
        ("open", np.nan, "'open' must be finite and positive: row 3"),
        ("low", 1e9, "'low' must not be above high: row 3"),
        ("high", np.inf, "'high' must be finite and positive: row 3"),
        ("volume", -1.0, "'volume' must be finite and not negative: row 3"),
        ("start_ms", 0, "strictly increasing start_ms order: row 3"),
    ],
)
def test_unusable_candles_are_refused_naming_column_and_row(
    make_candles: MakeCandles,
    column: str,
    value: float,
    message: str,
) -> None:
    candles = make_candles(1, 10)
    candles.loc[3, column] = value
    with pytest.raises(CandleDataError, match=message.replace("(", r"\(")):
        compute_features(candles, default_spec())


def test_nullable_and_text_columns(make_candles: MakeCandles) -> None:
    candles = make_candles(1, 50)
    nullable = candles.astype({"volume": "Float64", "taker_buy_volume": "Float64"})
    nullable.loc[7, "taker_buy_volume"] = pd.NA
    features = compute_features(nullable, default_spec())
    assert features["taker_net_flow"].isna().tolist() == [i == 7 for i in range(50)]
    text = candles.astype({"close": str})
    text.loc[2, "close"] = "n/a"
    with pytest.raises(CandleDataError, match="'close' must hold numbers"):
        compute_features(text, default_spec())


def test_missing_columns_are_named() -> None:
    with pytest.raises(CandleDataError, match=r"lack column\(s\) \['volume'\]"):
        compute_features(
            pd.DataFrame({c: [1.0] for c in ("open", "high", "low", "close")}), default_spec()
        )
