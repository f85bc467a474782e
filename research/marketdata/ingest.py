"""Ingest: bring candles from a source into the store, idempotently and in bounded chunks.

Sources and the exchange a series is stored under (an empty `exchange` picks the default):
- "synthetic": the kernel's SyntheticMarket (seeded by `seed`); always stored under exchange
  "synthetic", so generated prices can never mix with real ones. Needs start and end.
- "csv": a candle, kline or trade CSV (`path`); stored under `exchange`, default "binance".
- "capture": a Binance WebSocket capture (`path`); default exchange "binance".
- "ccxt": the exchange's REST API; `exchange` is the ccxt id, default "binance". Without a
  start it resumes after the newest stored candle; without an end it stops at the last
  closed candle (never stores the candle still forming).

Ranges are half-open [start_ms, end_ms) on candle start times, and only complete candles are
stored (a synthetic range that starts mid-candle begins at the next candle); file sources
without a range take the whole file. Candles are written month by month as chunks arrive, so
memory stays bounded; re-running the same request adds and changes nothing and rewrites no
file. A failure midway (the network drops) keeps the months already written; re-running
completes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.marketdata.errors import IngestError, SourceError
from research.marketdata.sources.capture import capture_candles
from research.marketdata.sources.ccxt_rest import estimated_pages, fetch_candle_pages, make_exchange
from research.marketdata.sources.common import require_file
from research.marketdata.sources.csv_files import read_candle_file
from research.marketdata.sources.synthetic import iter_synthetic_candles, synthetic_chunks
from tradepipe.config import load_settings
from tradepipe.marketdata.frames import CandleValidationError
from tradepipe.marketdata.store import (
    MarketDataStore,
    SeriesKeyError,
    normalize_exchange,
    normalize_symbol,
)
from tradepipe.synthetic import SyntheticMarket
from tradepipe.timeframes import InvalidTimeframeError, Timeframe, parse_timeframe

SOURCES = ("synthetic", "csv", "capture", "ccxt")
DEFAULT_EXCHANGES = {
    "synthetic": "synthetic",
    "csv": "binance",
    "capture": "binance",
    "ccxt": "binance",
}
FLUSH_ROWS = 500_000  # buffered candles written early beyond this, to bound memory

ExchangeFactory = Callable[[str, float], Any]


@dataclass(frozen=True, slots=True)
class IngestRequest:
    source: str
    exchange: str | None  # None or "" for the source's default (see the module docstring)
    symbol: str
    timeframe: str
    path: Path | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    seed: int = 7


@dataclass(frozen=True, slots=True)
class IngestResult:
    exchange: str
    symbol: str
    timeframe: str
    rows_fetched: int  # candles the source delivered for the range (after the gap policy)
    rows_added: int
    rows_changed: int
    rows_total: int  # rows of the whole stored series afterwards
    first_start_ms: int | None  # extent of the fetched candles; None when nothing was fetched
    last_start_ms: int | None


@dataclass(frozen=True, slots=True)
class _Plan:
    exchange: str
    symbol: str
    timeframe: Timeframe
    total_chunks: int
    chunks: Iterator[pd.DataFrame]
    up_to_date: bool = False  # ccxt resume with nothing newer: not an error


def ingest(
    store: MarketDataStore,
    request: IngestRequest,
    progress: Callable[[int, int], None] | None = None,
    *,
    ccxt_timeout_seconds: float | None = None,
    exchange_factory: ExchangeFactory | None = None,
) -> IngestResult:
    """Fetch the request's candles and upsert them; progress(done, total) after each chunk.

    Raises IngestError (a ValueError) with one clear message for every user-caused problem;
    nothing is written for a request that fails validation. `exchange_factory(exchange_id,
    timeout_seconds)` builds the ccxt client (default: a public client of that exchange);
    the timeout defaults to the `ccxt_timeout_seconds` setting (TRADEPIPE_CCXT_TIMEOUT_SECONDS).
    """
    plan = _plan(store, request, ccxt_timeout_seconds, exchange_factory or make_exchange)
    writer = _MonthWriter(store, plan.exchange, plan.symbol, plan.timeframe)
    done = 0
    try:
        for chunk in plan.chunks:
            writer.add(chunk)
            done += 1
            if progress is not None:
                progress(done, max(done, plan.total_chunks))
        writer.flush()
    except CandleValidationError as error:
        raise IngestError(f"{_describe(request)}: {error}") from None
    if writer.fetched == 0 and not plan.up_to_date:
        raise IngestError(f"{_describe(request)}: no candles in {_range_text(request)}")
    return IngestResult(
        exchange=plan.exchange,
        symbol=plan.symbol,
        timeframe=plan.timeframe.name,
        rows_fetched=writer.fetched,
        rows_added=writer.added,
        rows_changed=writer.changed,
        rows_total=writer.total
        if writer.total is not None
        else store.row_count(plan.exchange, plan.symbol, plan.timeframe.name),
        first_start_ms=writer.first_start_ms,
        last_start_ms=writer.last_start_ms,
    )


def _plan(
    store: MarketDataStore,
    request: IngestRequest,
    timeout_seconds: float | None,
    exchange_factory: ExchangeFactory,
) -> _Plan:
    """Validate the request and line up its chunks (lazily: nothing is fetched yet)."""
    source = request.source.strip().lower()
    if source not in SOURCES:
        raise IngestError(f"unknown source {request.source!r}: use one of {', '.join(SOURCES)}")
    try:
        tf = parse_timeframe(request.timeframe)
        exchange = normalize_exchange(request.exchange or DEFAULT_EXCHANGES[source])
        symbol = normalize_symbol(request.symbol)
    except (InvalidTimeframeError, SeriesKeyError) as error:
        raise IngestError(str(error)) from None
    start, end = request.start_ms, request.end_ms
    if start is not None and end is not None and start >= end:
        raise IngestError(f"empty range: start {_iso(start)} is not before end {_iso(end)}")
    takes_file = source in ("csv", "capture")
    if takes_file and request.path is None:
        raise IngestError(f"the {source} source needs a file: give its path")
    if not takes_file and request.path is not None:
        raise IngestError(f"the {source} source takes no file; a path is for csv or capture")

    if source == "synthetic":
        return _synthetic_plan(request, exchange, symbol, tf)
    if source in ("csv", "capture"):
        path = require_file(request.path, source)
        reader = read_candle_file if source == "csv" else _capture_reader(symbol)
        return _Plan(exchange, symbol, tf, 1, _lazy(lambda: reader(path, tf, start, end)))
    return _exchange_plan(store, request, exchange, symbol, tf, timeout_seconds, exchange_factory)


def _synthetic_plan(request: IngestRequest, exchange: str, symbol: str, tf: Timeframe) -> _Plan:
    start, end = request.start_ms, request.end_ms
    if exchange != "synthetic":
        raise IngestError(
            f"synthetic candles are stored under exchange 'synthetic', not {exchange!r}, "
            "so they never mix with real data; leave the exchange empty"
        )
    if start is None or end is None:
        raise IngestError("the synthetic source needs both a start and an end")
    try:
        market = SyntheticMarket(symbol=symbol, seed=request.seed)
        market.trades(start, start)  # validates the range's start and the seed
    except ValueError as error:
        raise IngestError(f"synthetic market: {error}") from None
    chunks = synthetic_chunks(tf, start, end)
    return _Plan(exchange, symbol, tf, len(chunks), iter_synthetic_candles(market, tf, start, end))


def _exchange_plan(
    store: MarketDataStore,
    request: IngestRequest,
    exchange: str,
    symbol: str,
    tf: Timeframe,
    timeout_seconds: float | None,
    exchange_factory: ExchangeFactory,
) -> _Plan:
    """Pages from the exchange; without a start, resumes after the last stored candle."""
    start, end = request.start_ms, request.end_ms
    now_closed = tf.floor_ms(int(time.time() * 1000))  # the forming candle is never stored
    end = now_closed if end is None else min(end, now_closed)
    if start is None:
        last = store.last_start_ms(exchange, symbol, tf.name)
        if last is None:
            raise IngestError(
                f"no stored {exchange} {symbol} {tf.name} candles to resume from: give a start"
            )
        start = last + tf.milliseconds
        if start >= end:
            return _Plan(exchange, symbol, tf, 1, iter(()), up_to_date=True)
    start = -(-start // tf.milliseconds) * tf.milliseconds
    if start >= end:
        raise IngestError(
            f"empty range: no closed {tf.name} candle starts in {_range_text(request)}"
        )
    if timeout_seconds is None:
        timeout_seconds = load_settings().ccxt_timeout_seconds
    client = exchange_factory(exchange, timeout_seconds)
    pages = fetch_candle_pages(client, request.symbol, tf, start, end)
    return _Plan(exchange, symbol, tf, estimated_pages(tf, start, end), pages)


def _capture_reader(
    symbol: str,
) -> Callable[[Path, Timeframe, int | None, int | None], pd.DataFrame]:
    def read(path: Path, tf: Timeframe, start: int | None, end: int | None) -> pd.DataFrame:
        return capture_candles(path, symbol, tf, start, end)

    return read


def _lazy(load: Callable[[], pd.DataFrame]) -> Iterator[pd.DataFrame]:
    yield load()


class _MonthWriter:
    """Buffers chunks and writes whole months, so each month file is written once per run."""

    def __init__(self, store: MarketDataStore, exchange: str, symbol: str, tf: Timeframe):
        self.store, self.exchange, self.symbol, self.tf = store, exchange, symbol, tf
        self.buffer: list[pd.DataFrame] = []
        self.buffered = self.fetched = self.added = self.changed = 0
        self.total: int | None = None
        self._buffered_last = 0
        self.first_start_ms: int | None = None
        self.last_start_ms: int | None = None

    def add(self, chunk: pd.DataFrame) -> None:
        if not len(chunk):
            return
        starts = chunk["start_ms"].to_numpy()
        first, last = int(starts.min()), int(starts.max())
        if self.buffer and (
            _month(first) != _month(self._buffered_last) or self.buffered >= FLUSH_ROWS
        ):
            self.flush()
        self.buffer.append(chunk)
        self.buffered += len(chunk)
        self.fetched += len(chunk)
        self.first_start_ms = (
            first if self.first_start_ms is None else min(first, self.first_start_ms)
        )
        self.last_start_ms = last if self.last_start_ms is None else max(last, self.last_start_ms)
        self._buffered_last = last

    def flush(self) -> None:
        if not self.buffer:
            return
        frame = (
            pd.concat(self.buffer, ignore_index=True) if len(self.buffer) > 1 else self.buffer[0]
        )
        self.buffer, self.buffered = [], 0
        result = self.store.write_candles(self.exchange, self.symbol, self.tf.name, frame)
        self.added += result.rows_added
        self.changed += result.rows_changed
        self.total = result.rows_total


def _month(time_ms: int) -> str:
    return str(np.datetime64(time_ms, "ms").astype("datetime64[M]"))


def _describe(request: IngestRequest) -> str:
    where = f" {request.path}" if request.path is not None else ""
    return f"{request.source}{where} {request.symbol} {request.timeframe}"


def _range_text(request: IngestRequest) -> str:
    if request.start_ms is None and request.end_ms is None:
        return "the whole input"
    start = "the beginning" if request.start_ms is None else _iso(request.start_ms)
    end = "the end" if request.end_ms is None else _iso(request.end_ms)
    return f"[{start}, {end})"


def _iso(time_ms: int) -> str:
    return pd.Timestamp(int(time_ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["IngestError", "IngestRequest", "IngestResult", "SourceError", "ingest"]
