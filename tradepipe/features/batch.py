"""Batch features: every row of a candle history at once, for training and backtests.

Vectorised with numpy, but written to round exactly as `incremental.py` does (see
`_shared`): natural logarithms go through `math.log` (numpy's SIMD log may differ in the last
bit), windowed sums use the same block decomposition and summation order, and EMAs are pandas'
`ewm(adjust=False)`, whose update the incremental path repeats operation for operation.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from tradepipe.features._shared import (
    NO_MISSING_ROW,
    PARKINSON_SCALE,
    RSI_NO_MOVEMENT,
    CandleDataError,
    ema_center_of_mass,
    wilder_center_of_mass,
)
from tradepipe.features.spec import FeatureSpec

Array = npt.NDArray[np.float64]
_REQUIRED = ("open", "high", "low", "close", "volume")


def compute_features(candles: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Features of every candle: one row per input row (same index), columns in
    `spec.feature_names`, NaN before each feature's warm-up.

    Row i depends only on rows 0..i (no look-ahead). `candles` has the CANDLE_COLUMNS layout
    of `tradepipe.candles` in time order; `taker_buy_volume` may be absent or NaN, which
    makes the taker flow features NaN on those rows.
    """
    o, h, lo, c, v, tb = _validated_columns(candles)
    n = len(c)
    lnc = _log(c)
    ret = np.zeros(n)
    ret[1:] = lnc[1:] - lnc[:-1]
    log_range = _log(h / lo)
    columns = _close_columns(spec, c, lnc)
    columns += _volatility_columns(spec, ret, log_range)
    columns += _rsi_and_momentum_columns(spec, c)
    columns += _volume_and_flow_columns(spec, v, tb)
    if spec.candle_shape:
        columns += _shape_columns(o, h, lo, c, log_range)

    names = spec.feature_names
    assert len(columns) == len(names), "feature columns out of step with spec.feature_names"
    values = np.column_stack(columns) if n else np.empty((0, len(names)))
    for position, name in enumerate(names):
        values[: spec.warmup_by_feature[name], position] = np.nan
    return pd.DataFrame(values, index=candles.index, columns=list(names))


def _close_columns(spec: FeatureSpec, c: Array, lnc: Array) -> list[Array]:
    """Returns over each horizon, then close over its SMA, then close over its EMA."""
    n = len(c)
    columns = []
    for horizon in spec.return_horizons:
        column = np.full(n, np.nan)
        column[horizon:] = lnc[horizon:] - lnc[:-horizon]
        columns.append(column)
    close_runs = _run_lengths(c)
    for window in spec.sma_windows:
        mean = np.where(close_runs >= window, c, _rolling_sum(c, window) / window)
        columns.append(c / mean)
    for span in spec.ema_spans:
        ema = pd.Series(c).ewm(com=ema_center_of_mass(span), adjust=False).mean()
        columns.append(c / ema.to_numpy(dtype=np.float64))
    return columns


def _volatility_columns(spec: FeatureSpec, ret: Array, log_range: Array) -> list[Array]:
    """Std of log returns per window, then Parkinson volatility per window."""
    park = log_range * log_range
    ret_runs = _run_lengths(ret)
    park_runs = _run_lengths(park)
    columns = [np.sqrt(_variance(ret, window, ret_runs)) for window in spec.volatility_windows]
    for window in spec.volatility_windows:
        mean = np.where(park_runs >= window, park, _rolling_sum(park, window) / window)
        columns.append(np.sqrt(np.maximum(mean, 0.0) * PARKINSON_SCALE))
    return columns


def _rsi_and_momentum_columns(spec: FeatureSpec, c: Array) -> list[Array]:
    n = len(c)
    columns = []
    change = np.zeros(n)
    change[1:] = c[1:] - c[:-1]
    gains = np.where(change > 0.0, change, 0.0)
    losses = np.where(change < 0.0, -change, 0.0)
    for rsi_period in spec.rsi_periods:
        com = wilder_center_of_mass(rsi_period)
        gain = np.full(n, np.nan)
        loss = np.full(n, np.nan)
        gain[1:] = pd.Series(gains[1:]).ewm(com=com, adjust=False).mean().to_numpy(np.float64)
        loss[1:] = pd.Series(losses[1:]).ewm(com=com, adjust=False).mean().to_numpy(np.float64)
        moving = gain + loss
        columns.append(_divide(100.0 * gain, moving, moving > 0.0, RSI_NO_MOVEMENT))
    for momentum in spec.momentum_periods:
        column = np.full(n, np.nan)
        column[momentum:] = c[momentum:] / c[:-momentum] - 1.0
        columns.append(column)
    return columns


def _volume_and_flow_columns(spec: FeatureSpec, v: Array, tb: Array) -> list[Array]:
    """Volume ratio and z-score per window, then the taker flows."""
    columns = []
    volume_runs = _run_lengths(v)
    for window in spec.volume_windows:
        constant = volume_runs >= window
        mean = np.where(constant, v, _rolling_sum(v, window) / window)
        std = np.sqrt(_variance(v, window, volume_runs))
        columns.append(_divide(v, mean, mean > 0.0, 1.0))
        columns.append(_divide(v - mean, std, std > 0.0, 0.0))
    missing = np.isnan(tb)
    net = np.where(missing, 0.0, 2.0 * tb - v)
    if spec.taker_net_flow:
        columns.append(np.where(missing, np.nan, _divide(net, v, v > 0.0, 0.0)))
    rows = np.arange(len(v))
    last_missing = np.maximum.accumulate(np.where(missing, rows, NO_MISSING_ROW))
    for window in spec.taker_flow_windows:
        net_sum = _rolling_sum(net, window)
        volume_sum = _rolling_sum(v, window)
        flow = _divide(net_sum, volume_sum, volume_sum > 0.0, 0.0)
        columns.append(np.where(rows - last_missing < window, np.nan, flow))
    return columns


def _shape_columns(o: Array, h: Array, lo: Array, c: Array, log_range: Array) -> list[Array]:
    candle_range = h - lo
    ranged = candle_range > 0.0
    return [
        _divide(c - o, candle_range, ranged, 0.0),
        _divide(h - np.maximum(o, c), candle_range, ranged, 0.0),
        _divide(np.minimum(o, c) - lo, candle_range, ranged, 0.0),
        _divide(c - lo, candle_range, ranged, 0.5),
        log_range,
    ]


def _rolling_sum(values: Array, window: int) -> Array:
    """Sums over the last `window` rows (rows before 0 count as 0), formed as `_shared`
    describes: previous block's suffix sum + this block's prefix sum, no subtraction."""
    n = len(values)
    blocks = -(-n // window)
    padded = np.zeros(blocks * window)
    padded[:n] = values
    rows = padded.reshape(blocks, window)
    starts = rows.copy()
    starts[:, 0] += 0.0  # the incremental prefix starts from 0.0 (turns -0.0 into 0.0)
    prefix = np.cumsum(starts, axis=1)
    suffix = np.zeros((blocks, window + 1))
    suffix[1:, :window] = np.cumsum(rows[:-1, ::-1], axis=1)[:, ::-1]
    return (suffix[:, 1:] + prefix).ravel()[:n]


def _variance(values: Array, window: int, runs: npt.NDArray[np.int64]) -> Array:
    """Sample variance over the window from sums of x and x^2: clamped at 0, and exactly 0
    on a window of identical values (where rounding would otherwise leave a residue)."""
    first = _rolling_sum(values, window)
    second = _rolling_sum(values * values, window)
    var = (second - first * first / window) / (window - 1)
    return np.where((runs >= window) | (var < 0.0), 0.0, var)


def _run_lengths(values: Array) -> npt.NDArray[np.int64]:
    """How many consecutive rows, ending at each row, hold the value of that row."""
    n = len(values)
    rows = np.arange(n, dtype=np.int64)
    changed = np.ones(n, dtype=bool)
    changed[1:] = values[1:] != values[:-1]
    starts = np.maximum.accumulate(np.where(changed, rows, 0))
    return rows - starts + 1


def _divide(
    numerator: Array, denominator: Array, where: npt.NDArray[np.bool_], otherwise: float
) -> Array:
    """numerator / denominator where `where`, else `otherwise` (no 0/0 warnings, no NaN)."""
    result = np.full(np.shape(numerator), otherwise, dtype=np.float64)
    np.divide(numerator, denominator, out=result, where=where)
    return result


def _log(values: Array) -> Array:
    # math.log, not np.log: the incremental path uses math.log and the two may differ by an ulp.
    return np.fromiter(map(math.log, values.tolist()), dtype=np.float64, count=len(values))


def _validated_columns(candles: pd.DataFrame) -> tuple[Array, Array, Array, Array, Array, Array]:
    missing = [name for name in _REQUIRED if name not in candles.columns]
    if missing:
        raise CandleDataError(
            f"candles lack column(s) {missing}: features need {list(_REQUIRED)} "
            "(and optionally taker_buy_volume)"
        )
    o, h, lo, c, v = (_floats(candles, name) for name in _REQUIRED)
    if "taker_buy_volume" in candles.columns:
        tb = _floats(candles, "taker_buy_volume")
    else:
        tb = np.full(len(c), np.nan)
    positive = "must be finite and positive"
    checks = (
        ("open", (o > 0.0) & (o < math.inf), positive),
        ("high", (h > 0.0) & (h < math.inf), positive),
        ("low", (lo > 0.0) & (lo < math.inf), positive),
        ("close", (c > 0.0) & (c < math.inf), positive),
        ("low", lo <= h, "must not be above high"),
        ("volume", (v >= 0.0) & (v < math.inf), "must be finite and not negative"),
    )
    for name, valid, rule in checks:
        if not bool(valid.all()):
            row = int(np.argmin(valid))
            raise CandleDataError(
                f"candle column {name!r} {rule}: row {row} (index {candles.index[row]!r}) "
                f"has {name}={candles[name].iloc[row]!r}; repair or drop that candle"
            )
    if "start_ms" in candles.columns and len(candles) > 1:
        starts = candles["start_ms"].to_numpy(dtype=np.int64)
        backwards = np.diff(starts) <= 0
        if bool(backwards.any()):
            row = int(np.argmax(backwards)) + 1
            raise CandleDataError(
                f"candles must be in strictly increasing start_ms order: row {row} starts at "
                f"{starts[row]} after {starts[row - 1]}; sort them and drop duplicates"
            )
    return o, h, lo, c, v, tb


def _floats(candles: pd.DataFrame, name: str) -> Array:
    try:
        return candles[name].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise CandleDataError(
            f"candle column {name!r} must hold numbers ({candles[name].dtype} given): {error}"
        ) from error
