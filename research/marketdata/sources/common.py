"""Helpers shared by the sources: range clipping, interval detection, timeframe fitting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from research.marketdata.errors import SourceError
from tradepipe.candles import resample_candles
from tradepipe.capture import open_text
from tradepipe.marketdata.frames import conform_candles
from tradepipe.timeframes import Timeframe, parse_timeframe


def require_file(path: Path | None, what: str) -> Path:
    """The path of an existing file, or one clear SourceError."""
    if path is None:
        raise SourceError(f"the {what} source needs a file: give its path")
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    return path


def first_line(path: Path) -> str:
    """The first non-empty line of a (possibly gzip) text file, without its newline."""
    try:
        with open_text(path) as lines:
            for line in lines:
                if line.strip():
                    return line.strip().lstrip("\ufeff")
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise SourceError(f"{path}: cannot read it as text ({error})") from None
    raise SourceError(f"{path}: the file is empty")


def clip_range(frame: pd.DataFrame, start_ms: int | None, end_ms: int | None) -> pd.DataFrame:
    """Rows with start_ms in [start_ms, end_ms), index reset."""
    keep = np.ones(len(frame), dtype=bool)
    starts = frame["start_ms"].to_numpy()
    if start_ms is not None:
        keep &= starts >= start_ms
    if end_ms is not None:
        keep &= starts < end_ms
    return frame.loc[keep].reset_index(drop=True)


def drop_empty_intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the project's gap policy to exchange candles: an interval without trades has no
    candle, so the zero-volume flat candles some exchanges fill gaps with are dropped."""
    kept: pd.DataFrame = frame.loc[frame["volume"].to_numpy() != 0]
    return kept.reset_index(drop=True)


def detect_interval_ms(starts: npt.NDArray[np.int64]) -> int | None:
    """A candle file's own interval: the smallest step between consecutive candles (gappy
    files still have consecutive candles somewhere). None for fewer than two candles."""
    steps = np.diff(np.unique(starts))
    return int(steps.min()) if len(steps) else None


def fit_timeframe(
    candles: pd.DataFrame, interval_ms: int | None, timeframe: Timeframe, path: Path
) -> pd.DataFrame:
    """Candles of the file's own interval -> candles of `timeframe` (resampled when finer).

    A coarser file cannot be split into finer candles, which is an error naming both.
    """
    if interval_ms is None or interval_ms == timeframe.milliseconds or not len(candles):
        return conform_candles(candles)
    if interval_ms % 1000:
        raise SourceError(f"{path}: candles are {interval_ms} ms apart, not whole seconds")
    own = parse_timeframe(f"{interval_ms // 1000}s")
    if interval_ms > timeframe.milliseconds:
        raise SourceError(
            f"{path}: the file holds {own.name} candles, which cannot make finer "
            f"{timeframe.name} candles; ingest it as {own.name} or coarser"
        )
    if not own.divides(timeframe):
        raise SourceError(
            f"{path}: {timeframe.name} candles cannot be built from the file's {own.name} candles"
        )
    return conform_candles(resample_candles(candles, timeframe))
