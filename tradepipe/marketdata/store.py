"""The candle store: one parquet file per series and month, upserted idempotently.

Layout (hive-style, so pyarrow/duckdb/polars read it as a partitioned dataset)::

    <root>/exchange=binance/symbol=BTCUSDT/timeframe=1m/month=2024-01.parquet

Each file holds CANDLE_COLUMNS sorted by unique start_ms, in the kernel's CANDLE_DTYPES:
start_ms int64 (ms since epoch, aligned to the timeframe), every other column float64;
taker_buy_volume and trade_count are NaN when the source does not carry them (plain OHLCV
files, generic ccxt). Candles follow tradepipe.candles' gap policy: an interval without
trades has no row.

Writes are upserts keyed by start_ms, and the unit of atomicity is the month file: a file is
rewritten only when a row is added or a value changes (so re-ingesting the same data touches
nothing and keeps every mtime), through a temporary file and os.replace. The whole input is
validated before any file is touched. Writers of one series are serialised with an advisory
lock file, so parallel backfill tasks of the same month cannot lose each other's rows.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tradepipe.candles import CANDLE_COLUMNS, CANDLE_DTYPES
from tradepipe.marketdata.frames import conform_candles, empty_candles, validate_candles
from tradepipe.timeframes import Timeframe, parse_timeframe

SCHEMA = pa.schema(
    [("start_ms", pa.int64())] + [(name, pa.float64()) for name in CANDLE_COLUMNS[1:]]
)
_MONTH_FILE = re.compile(r"^month=(\d{4})-(\d{2})\.parquet$")
# "-" names a series the platform derives from an exchange, e.g. binance-live (what the
# live engine recorded) beside binance (what the exchange published).
_EXCHANGE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_SYMBOL = re.compile(r"^[A-Z0-9]+$")


class SeriesKeyError(ValueError):
    """An exchange or symbol name that cannot name a series."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    rows_added: int
    rows_changed: int
    rows_total: int  # rows of the whole series after the write


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    exchange: str
    symbol: str
    timeframe: str
    rows: int
    first_start_ms: int
    last_start_ms: int
    missing_intervals: int  # intervals between first and last that have no candle


def normalize_exchange(exchange: str) -> str:
    """Exchange ids are lower case ccxt-style ids ("binance", "coinbase", "synthetic"),
    or such an id with a suffix after "-" ("binance-live": the engine's own recording)."""
    name = exchange.strip().lower()
    if not _EXCHANGE.match(name):
        raise SeriesKeyError(
            f"exchange {exchange!r}: use letters, digits, _ and -, e.g. binance or binance-live"
        )
    return name


def normalize_symbol(symbol: str) -> str:
    """One key per market however it is typed: "BTC/USDT", "btc-usdt" and "BTCUSDT" are the
    same series, stored as BTCUSDT (the exchange-id form Binance uses)."""
    name = re.sub(r"[/\-_]", "", symbol.strip().upper())
    if not _SYMBOL.match(name):
        raise SeriesKeyError(f"symbol {symbol!r}: use letters and digits, e.g. BTCUSDT or BTC/USDT")
    return name


class MarketDataStore:
    """Candle series on disk under `root` (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def series_dir(self, exchange: str, symbol: str, timeframe: str | Timeframe) -> Path:
        return (
            self.root
            / f"exchange={normalize_exchange(exchange)}"
            / f"symbol={normalize_symbol(symbol)}"
            / f"timeframe={parse_timeframe(timeframe).name}"
        )

    def write_candles(
        self, exchange: str, symbol: str, timeframe: str, frame: pd.DataFrame
    ) -> WriteResult:
        """Upsert candles keyed by start_ms; validated as a whole before any file changes."""
        tf = parse_timeframe(timeframe)
        directory = self.series_dir(exchange, symbol, tf)
        what = f"{normalize_exchange(exchange)} {normalize_symbol(symbol)} {tf.name}"
        candles = conform_candles(frame)
        validate_candles(candles, tf, what)
        added = changed = 0
        if len(candles):
            directory.mkdir(parents=True, exist_ok=True)
            with _series_lock(directory):
                months = _month_keys(candles["start_ms"].to_numpy())
                for month, rows in candles.groupby(months, sort=True):
                    month_added, month_changed = self._upsert_month(directory, str(month), rows)
                    added += month_added
                    changed += month_changed
        return WriteResult(added, changed, _count_rows(directory))

    def read_candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> pd.DataFrame:
        """Candles with start_ms in [start_ms, end_ms), sorted; empty if there are none."""
        directory = self.series_dir(exchange, symbol, timeframe)
        parts = []
        for path, month_start, month_end in _month_files(directory):
            if (end_ms is not None and month_start >= end_ms) or (
                start_ms is not None and month_end <= start_ms
            ):
                continue
            parts.append(_read_month(path))
        if not parts:
            return empty_candles()
        frame = pd.concat(parts, ignore_index=True)
        keep = np.ones(len(frame), dtype=bool)
        if start_ms is not None:
            keep &= frame["start_ms"].to_numpy() >= start_ms
        if end_ms is not None:
            keep &= frame["start_ms"].to_numpy() < end_ms
        return frame.loc[keep].sort_values("start_ms", kind="stable").reset_index(drop=True)

    def row_count(self, exchange: str, symbol: str, timeframe: str) -> int:
        """Rows of a series (0 when it does not exist), from file metadata only."""
        return _count_rows(self.series_dir(exchange, symbol, timeframe))

    def last_start_ms(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """Start of the newest stored candle of a series (None if the series is empty)."""
        files = _month_files(self.series_dir(exchange, symbol, timeframe))
        for path, _, _ in reversed(files):
            starts = pq.read_table(path, columns=["start_ms"]).column(0).to_numpy()
            if len(starts):
                return int(starts.max())
        return None

    def list_series(self) -> list[SeriesInfo]:
        """Every stored series with its extent and the count of intervals without a candle."""
        series = []
        for directory in sorted(self.root.glob("exchange=*/symbol=*/timeframe=*")):
            try:
                tf = parse_timeframe(directory.name.removeprefix("timeframe="))
            except ValueError:
                continue
            starts = [
                pq.read_table(path, columns=["start_ms"]).column(0).to_numpy()
                for path, _, _ in _month_files(directory)
            ]
            if not starts or not sum(len(part) for part in starts):
                continue
            every = np.concatenate(starts)
            first, last = int(every.min()), int(every.max())
            span = (last - first) // tf.milliseconds + 1
            series.append(
                SeriesInfo(
                    exchange=directory.parent.parent.name.removeprefix("exchange="),
                    symbol=directory.parent.name.removeprefix("symbol="),
                    timeframe=tf.name,
                    rows=len(every),
                    first_start_ms=first,
                    last_start_ms=last,
                    missing_intervals=span - len(every),
                )
            )
        return series

    def _upsert_month(self, directory: Path, month: str, rows: pd.DataFrame) -> tuple[int, int]:
        path = directory / f"month={month}.parquet"
        rows = rows.sort_values("start_ms").reset_index(drop=True)
        if not path.exists():
            _atomic_write(path, rows)
            return len(rows), 0
        old = _read_month(path)
        old_index = pd.Index(old["start_ms"])
        position = old_index.get_indexer(rows["start_ms"])
        present = position >= 0
        added = int((~present).sum())
        before = old.iloc[position[present]].reset_index(drop=True)
        after = rows.loc[present].reset_index(drop=True)
        differs = ~_rows_equal(before, after)
        changed = int(differs.sum())
        if added == 0 and changed == 0:
            return 0, 0
        kept = old.loc[~old_index.isin(rows["start_ms"])]
        merged = pd.concat([kept, rows], ignore_index=True).sort_values("start_ms")
        _atomic_write(path, merged.reset_index(drop=True))
        return added, changed


def _count_rows(directory: Path) -> int:
    return sum(int(pq.read_metadata(path).num_rows) for path, _, _ in _month_files(directory))


def _rows_equal(left: pd.DataFrame, right: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Row-wise equality where unknown equals unknown (NaN)."""
    same = np.ones(len(left), dtype=bool)
    for name in CANDLE_COLUMNS[1:]:
        a = left[name].to_numpy()
        b = right[name].to_numpy()
        same &= (a == b) | (np.isnan(a) & np.isnan(b))
    return same


def _month_keys(start_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    return np.datetime_as_string(start_ms.astype("datetime64[ms]").astype("datetime64[M]"))


def _month_files(directory: Path) -> list[tuple[Path, int, int]]:
    """(path, first ms of the month, first ms of the next month), oldest first."""
    files = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = _MONTH_FILE.match(path.name)
            if match:
                month = np.datetime64(f"{match.group(1)}-{match.group(2)}", "M")
                bounds = np.array([month, month + 1]).astype("datetime64[ms]").astype(np.int64)
                files.append((path, int(bounds[0]), int(bounds[1])))
    return sorted(files, key=lambda item: item[1])


def _read_month(path: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame.loc[:, list(CANDLE_COLUMNS)].astype(CANDLE_DTYPES)


def _atomic_write(path: Path, frame: pd.DataFrame) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        table = pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)
        pq.write_table(table, temporary, compression="zstd")
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _series_lock(directory: Path) -> Iterator[None]:
    with (directory / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
