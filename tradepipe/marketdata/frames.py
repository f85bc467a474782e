"""The candle frame every market-data source returns and the store keeps, and its checks.

Columns and types are the kernel's (tradepipe.candles.CANDLE_COLUMNS / CANDLE_DTYPES):
start_ms int64; every other column float64, with taker_buy_volume and trade_count NaN when
the source does not carry them (plain OHLCV files, generic ccxt), so one dtype serves complete
and partial sources. Counts are whole numbers; a fractional count is rejected.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tradepipe.candles import CANDLE_COLUMNS, CANDLE_DTYPES
from tradepipe.timeframes import Timeframe

PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = ("start_ms", *PRICE_COLUMNS, "volume")
OPTIONAL_COLUMNS = ("taker_buy_volume", "trade_count")


class CandleValidationError(ValueError):
    """Candles that break an invariant; nothing was written."""


def empty_candles() -> pd.DataFrame:
    """A candle frame with no rows and the store's column types."""
    return conform_candles(pd.DataFrame({name: [] for name in REQUIRED_COLUMNS}))


def conform_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with exactly CANDLE_COLUMNS in CANDLE_DTYPES, index 0..n-1.

    Optional columns that are absent become unknown (NaN). Raises CandleValidationError for
    missing or unexpected columns, non-numeric values and empty or fractional times.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in frame.columns]
    unexpected = [name for name in frame.columns if name not in CANDLE_COLUMNS]
    if missing or unexpected:
        raise CandleValidationError(
            f"candle frame has columns {list(frame.columns)}; expected {list(CANDLE_COLUMNS)}"
            " (taker_buy_volume and trade_count may be left out)"
        )
    try:
        columns = {
            name: frame[name].astype("float64").to_numpy()
            if name in frame
            else np.full(len(frame), np.nan)
            for name in CANDLE_COLUMNS[1:]
        }
        start = frame["start_ms"]
        if not pd.api.types.is_integer_dtype(start.dtype):
            floats = start.astype("float64")
            if bool(floats.isna().any()) or not bool((floats == floats.round()).all()):
                raise CandleValidationError("column start_ms must hold whole milliseconds")
    except (TypeError, ValueError) as error:
        if isinstance(error, CandleValidationError):
            raise
        raise CandleValidationError(f"candle frame has a non-numeric value: {error}") from None
    out = pd.DataFrame({"start_ms": start.to_numpy(dtype=np.int64), **columns})
    return out.astype(CANDLE_DTYPES)


def validate_candles(frame: pd.DataFrame, timeframe: Timeframe, what: str) -> None:
    """Raise CandleValidationError naming every broken invariant (first offending candle)."""
    start = frame["start_ms"].to_numpy()
    o, h, low, c, volume = (frame[name].to_numpy() for name in (*PRICE_COLUMNS, "volume"))
    taker = frame["taker_buy_volume"].to_numpy()
    count = frame["trade_count"].to_numpy()
    with np.errstate(invalid="ignore"):
        checks = {
            "prices must be finite and positive": ~np.all(np.isfinite([o, h, low, c]), axis=0)
            | (np.minimum(np.minimum(o, c), low) <= 0),
            "high is below max(open, close)": h < np.maximum(o, c),
            "low is above min(open, close)": low > np.minimum(o, c),
            "volume must be finite and >= 0": ~(np.isfinite(volume) & (volume >= 0)),
            "taker_buy_volume must be NaN or between 0 and volume": ~np.isnan(taker)
            & ~((taker >= 0) & (taker <= volume * (1 + 1e-9) + 1e-12)),
            "trade_count must be NaN or a whole number >= 0": ~np.isnan(count)
            & ~((count >= 0) & (count == np.round(count))),
            f"start_ms is not aligned to {timeframe.name}": start % timeframe.milliseconds != 0,
            "start_ms is duplicated": pd.Series(start).duplicated(keep=False).to_numpy(),
        }
    problems = []
    for rule, bad in checks.items():
        if bad.any():
            first = int(start[np.argmax(bad)])
            problems.append(f"{int(bad.sum())} rows: {rule} (first at {_iso(first)}, {first})")
    if problems:
        raise CandleValidationError(
            f"invalid {what} candles, nothing written: " + "; ".join(problems)
        )


def _iso(time_ms: int) -> str:
    return pd.Timestamp(time_ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
