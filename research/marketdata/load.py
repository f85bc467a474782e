"""Candles for research from a store key or a file, with the fingerprint MLflow records.

A data reference is either a path to a file the sources read (OHLCV or 12-column kline CSV,
trade CSV, Binance capture) or a store key `exchange/SYMBOL/timeframe` of a series that
`tradepipe data ingest` stored (see `tradepipe data list`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.marketdata.errors import SourceError
from research.marketdata.sources.capture import capture_candles
from research.marketdata.sources.common import first_line
from research.marketdata.sources.csv_files import (
    CAPTURE_LINE,
    candle_file_interval_ms,
    file_layout,
    read_candle_file,
)
from tradepipe.candles import CANDLE_COLUMNS
from tradepipe.marketdata.store import MarketDataStore, SeriesKeyError
from tradepipe.timeframes import Timeframe, parse_timeframe


@dataclass(frozen=True)
class CandleData:
    """A candle history and where it came from."""

    candles: pd.DataFrame
    source: str  # the file path, or "store:<exchange>/<symbol>/<timeframe>"
    symbol: str
    timeframe: Timeframe

    @property
    def rows(self) -> int:
        return len(self.candles)

    @property
    def start_ms(self) -> int:
        return int(self.candles["start_ms"].iloc[0])

    @property
    def end_ms(self) -> int:
        """Exclusive end: the end of the last candle."""
        return int(self.candles["start_ms"].iloc[-1]) + self.timeframe.milliseconds

    @property
    def content_hash(self) -> str:
        """sha256 of the candle values: the same candles always give the same hash."""
        digest = hashlib.sha256()
        for column in CANDLE_COLUMNS:
            digest.update(np.ascontiguousarray(self.candles[column].to_numpy()).tobytes())
        return digest.hexdigest()

    def fingerprint(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "symbol": self.symbol,
            "timeframe": self.timeframe.name,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "rows": self.rows,
            "content_hash": self.content_hash,
        }


def load_candles(
    reference: str,
    *,
    store: MarketDataStore,
    timeframe: str | Timeframe | None = None,
    symbol: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> CandleData:
    """Load candles from a file or a store key; SourceError says what was wrong.

    `timeframe` is required for trade files and captures; for candle files it defaults to
    the file's own interval. Candles are checked for missing values, which research code
    would otherwise turn silently into NaN features and labels.
    """
    path = Path(reference)
    wanted = parse_timeframe(timeframe) if timeframe is not None else None
    if path.is_file():
        data = _from_file(path, wanted, symbol, start_ms, end_ms)
    elif path.suffix.lower() in {".csv", ".gz", ".txt"} or path.is_dir():
        raise SourceError(f"{reference}: no such file")
    else:
        data = _from_store(reference, store, wanted, start_ms, end_ms)
    if data.candles.empty:
        raise SourceError(f"{reference}: no candles in the requested range")
    _refuse_missing_values(data.candles, reference)
    return data


def _from_file(
    path: Path,
    timeframe: Timeframe | None,
    symbol: str | None,
    start_ms: int | None,
    end_ms: int | None,
) -> CandleData:
    name = symbol.upper() if symbol else path.name.split("_")[0].upper()
    if CAPTURE_LINE.match(first_line(path)):
        if timeframe is None:
            raise SourceError(f"{path}: a capture holds trades; give the candle timeframe")
        candles = capture_candles(path, symbol or "", timeframe, start_ms, end_ms)
        return CandleData(candles, str(path), name, timeframe)
    layout = file_layout(path)
    if timeframe is None:
        if layout == "trades":
            raise SourceError(f"{path}: a trade file needs the candle timeframe")
        timeframe = _own_timeframe(path)
    candles = read_candle_file(path, timeframe, start_ms, end_ms)
    return CandleData(candles, str(path), name, timeframe)


def _own_timeframe(path: Path) -> Timeframe:
    interval = candle_file_interval_ms(path)
    if interval is None or interval % 1000:
        raise SourceError(f"{path}: cannot tell the candles' interval; give the timeframe")
    return parse_timeframe(f"{interval // 1000}s")


def _from_store(
    key: str,
    store: MarketDataStore,
    timeframe: Timeframe | None,
    start_ms: int | None,
    end_ms: int | None,
) -> CandleData:
    parts = key.split("/")
    if len(parts) != 3:
        raise SourceError(
            f"{key}: neither a file nor a store key exchange/SYMBOL/timeframe "
            "(see `tradepipe data list`)"
        )
    exchange, symbol, stored = parts
    try:
        series_timeframe = parse_timeframe(stored)
        if timeframe is not None and timeframe != series_timeframe:
            raise SourceError(f"{key}: the stored series is {stored}, not {timeframe.name}")
        candles = store.read_candles(exchange, symbol, series_timeframe.name, start_ms, end_ms)
    except SeriesKeyError as error:
        raise SourceError(f"{key}: {error}") from None
    if candles.empty and store.row_count(exchange, symbol, stored) == 0:
        raise SourceError(f"{key}: no such stored series (see `tradepipe data list`)")
    return CandleData(candles, f"store:{key}", symbol.upper(), series_timeframe)


def _refuse_missing_values(candles: pd.DataFrame, reference: str) -> None:
    required = ["open", "high", "low", "close", "volume"]
    missing = candles[required].isna()
    if bool(missing.to_numpy().any()):
        row = int(np.flatnonzero(missing.to_numpy().any(axis=1))[0])
        stamp = pd.Timestamp(int(candles["start_ms"].iloc[row]), unit="ms", tz="UTC")
        raise SourceError(f"{reference}: missing values in the candle at {stamp.isoformat()}")
