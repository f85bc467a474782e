"""The inputs of one backtest, checked once and laid out for a per-candle loop.

Both engines run on a `History`: the candles as numpy columns, the precomputed batch
features, the optional model probabilities, and `ready`, the rows on which the strategy is
called. A row is not ready while any feature the strategy declares in `required_features`
is NaN (the warm-up of a rolling feature, or a taker-flow feature on a candle without taker
volume): the strategy is not called there, exactly as the live engine does not call it
before its incremental features are warm. Fills still happen on those rows.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.backtest.errors import BacktestError
from research.backtest.records import iso_utc
from tradepipe.domain import Candle
from tradepipe.features import CandleDataError, FeatureSpec, compute_features, default_spec
from tradepipe.strategy import Strategy
from tradepipe.timeframes import InvalidTimeframeError, Timeframe, parse_timeframe

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_PRICES = ("open", "high", "low", "close")


def strategy_label(strategy: Strategy[Any]) -> str:
    """How errors name a strategy: its class and, when it came from a file, the file."""
    cls = type(strategy)
    try:
        return f"{cls.__name__} ({inspect.getfile(cls)})"
    except (TypeError, OSError):
        return cls.__name__


@dataclass(frozen=True, eq=False)
class History:
    """Candles, features and probabilities of one run, row-aligned."""

    symbol: str
    timeframe: Timeframe
    start_ms: IntArray
    end_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    taker_buy_volume: FloatArray
    trade_count: FloatArray
    features: pd.DataFrame
    probabilities: tuple[float | None, ...] | None  # as the strategy sees them
    probability_values: FloatArray | None  # the same, NaN for none (for batch code)
    ready: BoolArray

    def __len__(self) -> int:
        return len(self.start_ms)

    def candle(self, row: int) -> Candle:
        """The kernel candle of `row` (built on demand: most rows never need one)."""
        taker = float(self.taker_buy_volume[row])
        count = float(self.trade_count[row])
        return Candle(
            self.symbol,
            self.timeframe,
            int(self.start_ms[row]),
            float(self.open[row]),
            float(self.high[row]),
            float(self.low[row]),
            float(self.close[row]),
            float(self.volume[row]),
            None if math.isnan(taker) else taker,
            None if math.isnan(count) else int(count),
        )

    def time_of(self, row: int) -> str:
        """The candle's start as ISO-8601 UTC, for messages."""
        return iso_utc(int(self.start_ms[row]))


def prepare_history(
    candles: pd.DataFrame,
    strategy: Strategy[Any],
    *,
    symbol: str,
    timeframe: str | Timeframe,
    features: pd.DataFrame | None,
    feature_spec: FeatureSpec | None,
    probabilities: npt.ArrayLike | None,
) -> History:
    """Check every input and build the `History`; BacktestError names what is wrong."""
    try:
        frame = parse_timeframe(timeframe)
    except InvalidTimeframeError as error:
        raise BacktestError(str(error)) from None
    start_ms = _start_times(candles, frame)
    columns = {name: _column(candles, name) for name in (*_PRICES, "volume")}
    for name in ("taker_buy_volume", "trade_count"):
        columns[name] = (
            _column(candles, name, allow_nan=True)
            if name in candles.columns
            else np.full(len(candles), np.nan)
        )
    feature_frame = _features(candles, strategy, features, feature_spec)
    required = list(strategy.required_features)
    if required:
        ready = ~np.isnan(feature_frame[required].to_numpy(dtype=np.float64)).any(axis=1)
    else:
        ready = np.ones(len(candles), dtype=bool)
    if not ready.any():
        raise BacktestError(
            f"data too short: {len(candles)} candles, and the features "
            f"{', '.join(required)} that {strategy_label(strategy)} requires are never all "
            "defined (give more candles than their warm-up)"
        )
    values = _probabilities(probabilities, len(candles))
    return History(
        symbol=symbol,
        timeframe=frame,
        start_ms=start_ms,
        end_ms=start_ms + frame.milliseconds,
        features=feature_frame,
        probabilities=None if values is None else _as_seen(values),
        probability_values=values,
        ready=ready,
        **columns,
    )


def _start_times(candles: pd.DataFrame, frame: Timeframe) -> IntArray:
    if "start_ms" not in candles.columns:
        raise BacktestError(
            f"candles have columns {list(candles.columns)}: start_ms is missing "
            "(use the layout of tradepipe.candles.CANDLE_COLUMNS)"
        )
    if len(candles) == 0:
        raise BacktestError("data too short: no candles")
    if not pd.api.types.is_integer_dtype(candles["start_ms"].dtype):
        raise BacktestError("candles: start_ms must be integer milliseconds")
    start = candles["start_ms"].to_numpy(dtype=np.int64)
    steps = np.diff(start)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise BacktestError(f"candles: start_ms is not increasing at row {row}")
    if (start % frame.milliseconds != 0).any():
        row = int(np.flatnonzero(start % frame.milliseconds != 0)[0])
        raise BacktestError(
            f"candles: row {row} (start_ms {start[row]}) is not aligned to the {frame.name} "
            "timeframe; is the timeframe right?"
        )
    return start


def _column(candles: pd.DataFrame, name: str, *, allow_nan: bool = False) -> FloatArray:
    if name not in candles.columns:
        raise BacktestError(f"candles have no {name} column")
    values = candles[name].to_numpy(dtype=np.float64)
    if not allow_nan and np.isnan(values).any():
        row = int(np.flatnonzero(np.isnan(values))[0])
        raise BacktestError(f"candles: {name} is missing at row {row}")
    return values


def _features(
    candles: pd.DataFrame,
    strategy: Strategy[Any],
    features: pd.DataFrame | None,
    spec: FeatureSpec | None,
) -> pd.DataFrame:
    if features is None:
        try:
            features = compute_features(candles, spec or default_spec())
        except CandleDataError as error:
            raise BacktestError(f"cannot compute features: {error}") from None
    elif len(features) != len(candles):
        raise BacktestError(
            f"features have {len(features)} rows for {len(candles)} candles: "
            "they must be row-aligned"
        )
    missing = [name for name in strategy.required_features if name not in features.columns]
    if missing:
        raise BacktestError(
            f"{strategy_label(strategy)} requires features {', '.join(missing)}, which the "
            "feature frame (or spec) does not have"
        )
    return features.reset_index(drop=True)


def _probabilities(values: npt.ArrayLike | None, rows: int) -> FloatArray | None:
    """Per-row model probabilities, checked; NaN means no prediction for that row."""
    if values is None:
        return None
    array = np.array(values, dtype=np.float64)  # a copy the strategy cannot change
    array.flags.writeable = False
    if array.shape != (rows,):
        raise BacktestError(
            f"probabilities have shape {array.shape}; expected one per candle ({rows},)"
        )
    outside = (array < 0) | (array > 1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise BacktestError(f"probabilities: {array[row]} at row {row} is not in [0, 1]")
    return array


def _as_seen(values: FloatArray) -> tuple[float | None, ...]:
    """NaN (no prediction for that row) becomes None, which is what a strategy sees when
    no model is available."""
    return tuple(None if math.isnan(p) else p for p in values.tolist())
