"""Trades to candles, streaming and batch, for any timeframe from 1 s up.

Gap policy (the only one in the project): **an interval without trades produces no
candle**. Exchanges deliver their own candle files that way (the gappy series in the shared
data), so candles built here compare one to one with theirs; a consumer that needs a regular
grid must say so explicitly instead of receiving invented flat candles.

Intervals are half-open, [start, start + timeframe), aligned to the Unix epoch. Open is the
first trade of the interval in arrival order, close the last; volumes are sums of quantities
correctly rounded (exact until the final rounding, as `math.fsum`), so they do not depend
on the order of summation and match any exact aggregation of the same trades bit for bit.
Resampled volumes are the correctly rounded sum of the finer candles' volumes.

Streaming (`CandleAggregator`, `CandleResampler`) and batch (`aggregate_trades`,
`resample_candles`) agree on every candle; tests prove it on real exchange data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradepipe.domain import Candle, Side, Trade
from tradepipe.timeframes import Timeframe, parse_timeframe

# Column layout of candle and trade frames across the project (store, CLI, research).
# start_ms is int64; every other candle column is float64, with NaN where a source does not
# carry taker volume or trade counts (so one dtype serves complete and partial sources).
CANDLE_COLUMNS = (
    "start_ms",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "taker_buy_volume",
    "trade_count",
)
CANDLE_DTYPES = {"start_ms": "int64"} | {name: "float64" for name in CANDLE_COLUMNS[1:]}
TRADE_COLUMNS = ("time_ms", "trade_id", "price", "quantity", "taker_buy")


class OutOfOrderError(ValueError):
    """Input that goes back in time where time order is required."""


class _ExactSum:
    """Running sum that is exact until read, then correctly rounded (as `math.fsum`).

    Shewchuk's partials: a handful of floats whose exact sum is the exact sum of every
    input. Because the result does not depend on the order of the inputs, streaming and
    batch aggregation, and any independent aggregation with `math.fsum`, agree bit for bit.
    Inputs wait in a short list and are folded into the partials `PENDING` at a time:
    an append per trade on the feed's hot path, the fold's loop once per `PENDING`.
    """

    __slots__ = ("partials", "pending")
    PENDING = 32

    def __init__(self) -> None:
        self.partials: list[float] = []
        self.pending: list[float] = []

    def add(self, value: float) -> None:
        pending = self.pending
        pending.append(value)
        if len(pending) >= self.PENDING:
            self._fold()

    def _fold(self) -> None:
        partials = self.partials
        for value in self.pending:
            kept = 0
            for partial in partials:
                if abs(value) < abs(partial):
                    value, partial = partial, value
                high = value + partial
                low = partial - (high - value)
                if low:
                    partials[kept] = low
                    kept += 1
                value = high
            del partials[kept:]
            partials.append(value)
        self.pending.clear()

    @property
    def total(self) -> float:
        return math.fsum(self.partials + self.pending)


@dataclass(slots=True)
class _CandleBuilder:
    """The open (not yet closed) candle of one interval."""

    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: _ExactSum = field(default_factory=_ExactSum)
    # None once any input lacks the value: a partial sum would be silently too small.
    taker_buy_volume: _ExactSum | None = field(default_factory=_ExactSum)
    trade_count: int | None = 0

    @classmethod
    def starting(cls, start_ms: int, open_price: float) -> _CandleBuilder:
        return cls(start_ms, open_price, open_price, open_price, open_price)

    def add_trade(self, trade: Trade) -> None:
        price = trade.price
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume.add(trade.quantity)
        if trade.taker_side is Side.BUY and self.taker_buy_volume is not None:
            self.taker_buy_volume.add(trade.quantity)
        if self.trade_count is not None:
            self.trade_count += 1

    def add_candle(self, candle: Candle) -> None:
        self.high = max(self.high, candle.high)
        self.low = min(self.low, candle.low)
        self.close = candle.close
        self.volume.add(candle.volume)
        if self.taker_buy_volume is not None:
            if candle.taker_buy_volume is None:
                self.taker_buy_volume = None
            else:
                self.taker_buy_volume.add(candle.taker_buy_volume)
        if self.trade_count is not None:
            if candle.trade_count is None:
                self.trade_count = None
            else:
                self.trade_count += candle.trade_count

    def build(self, symbol: str, timeframe: Timeframe) -> Candle:
        taker = self.taker_buy_volume
        return Candle(
            symbol=symbol,
            timeframe=timeframe,
            start_ms=self.start_ms,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume.total,
            taker_buy_volume=None if taker is None else taker.total,
            trade_count=self.trade_count,
        )


class _StreamingBase:
    """Interval bookkeeping shared by the trade aggregator and the candle resampler.

    Inputs must arrive in time order across intervals; an input for an interval that is
    already closed (or older than the open one) is late: it is counted in `late_inputs` and
    dropped, because a closed candle has been handed on and cannot change.
    """

    def __init__(self, timeframe: Timeframe | str, symbol: str) -> None:
        self.timeframe = parse_timeframe(timeframe)
        self.symbol = symbol
        self._open: _CandleBuilder | None = None
        self._last_closed_start: int | None = None
        self.late_inputs = 0

    @property
    def open_start_ms(self) -> int | None:
        """Start of the interval being built, if any."""
        return None if self._open is None else self._open.start_ms

    def partial(self) -> Candle | None:
        """The interval being built, as a candle so far (not closed, may still change)."""
        return None if self._open is None else self._open.build(self.symbol, self.timeframe)

    def _advance_to(self, start_ms: int) -> tuple[bool, Candle | None]:
        """Make ready for an input of the interval at `start_ms`: (accepted, closed candle)."""
        if self._open is not None:
            if start_ms == self._open.start_ms:
                return True, None
            if start_ms > self._open.start_ms:
                return True, self._close_open()
        elif self._last_closed_start is None or start_ms > self._last_closed_start:
            return True, None
        self.late_inputs += 1
        return False, None

    def _close_open(self) -> Candle | None:
        if self._open is None:
            return None
        candle = self._open.build(self.symbol, self.timeframe)
        self._last_closed_start = self._open.start_ms
        self._open = None
        return candle

    def close_until(self, time_ms: int) -> Candle | None:
        """Close the open candle if its interval has ended by `time_ms` (a clock tick).

        Lets a live engine close a candle on time when no later input arrives.
        """
        if self._open is not None and time_ms >= self._open.start_ms + self.timeframe.milliseconds:
            return self._close_open()
        return None

    def flush(self) -> Candle | None:
        """Close whatever is open (end of input)."""
        return self._close_open()


class CandleAggregator(_StreamingBase):
    """Streaming trades -> candles of one symbol and timeframe, one trade at a time."""

    def add(self, trade: Trade) -> Candle | None:
        """Add a trade; return the candle it closed, if it starts a later interval."""
        start = self.timeframe.floor_ms(trade.time_ms)
        accepted, closed = self._advance_to(start)
        if accepted:
            if self._open is None:
                self._open = _CandleBuilder.starting(start, trade.price)
            self._open.add_trade(trade)
        return closed


class CandleResampler(_StreamingBase):
    """Streaming closed candles of a finer timeframe -> candles of a coarser one."""

    def add(self, candle: Candle) -> Candle | None:
        """Add a closed finer candle; return the coarser candle it closed, if any."""
        if not candle.timeframe.divides(self.timeframe):
            raise ValueError(
                f"cannot build {self.timeframe} candles from {candle.timeframe} candles"
            )
        start = self.timeframe.floor_ms(candle.start_ms)
        accepted, closed = self._advance_to(start)
        if accepted:
            if self._open is None:
                self._open = _CandleBuilder.starting(start, candle.open)
            self._open.add_candle(candle)
        return closed


def candles_from_trades(
    trades: Iterable[Trade], timeframe: Timeframe | str, symbol: str = ""
) -> Iterator[Candle]:
    """Stream every closed candle of `trades` (in time order), the last one included."""
    aggregator: CandleAggregator | None = None
    for trade in trades:
        if aggregator is None:
            aggregator = CandleAggregator(timeframe, symbol or trade.symbol)
        closed = aggregator.add(trade)
        if closed is not None:
            yield closed
    if aggregator is not None:
        last = aggregator.flush()
        if last is not None:
            yield last


def _interval_runs(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index bounds [first, end) of each run of equal interval starts in sorted input."""
    if len(starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    firsts = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    return firsts, np.r_[firsts[1:], len(starts)]


def _exact_run_sums(values: np.ndarray, firsts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Correctly rounded sum of each run (NaN if the run has one), like `_ExactSum`."""
    listed = values.tolist()
    return np.array(
        [math.fsum(listed[a:b]) for a, b in zip(firsts.tolist(), ends.tolist(), strict=True)],
        dtype=np.float64,
    )


def _sorted_interval_starts(times: np.ndarray, frame: Timeframe, what: str) -> np.ndarray:
    if len(times) and bool(np.any(np.diff(times) < 0)):
        raise OutOfOrderError(f"{what} must be sorted by time to aggregate them")
    starts: np.ndarray = times - times % frame.milliseconds
    return starts


def _ohlc_frame(
    starts: np.ndarray,
    firsts: np.ndarray,
    ends: np.ndarray,
    opens: np.ndarray,
    highs: np.ndarray,
    lows: np.ndarray,
    closes: np.ndarray,
    sums: dict[str, np.ndarray],
) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {
        "start_ms": starts[firsts],
        "open": opens[firsts],
        "high": np.maximum.reduceat(highs, firsts) if len(firsts) else highs[:0],
        "low": np.minimum.reduceat(lows, firsts) if len(firsts) else lows[:0],
        "close": closes[ends - 1],
    }
    columns |= {name: _exact_run_sums(values, firsts, ends) for name, values in sums.items()}
    return pd.DataFrame(columns).loc[:, list(CANDLE_COLUMNS)].astype(CANDLE_DTYPES)


def aggregate_trades(trades: pd.DataFrame, timeframe: Timeframe | str) -> pd.DataFrame:
    """Batch trades -> candles (vectorised). `trades` has TRADE_COLUMNS in time order.

    Returns a frame with CANDLE_COLUMNS, one row per interval that has trades.
    """
    frame = parse_timeframe(timeframe)
    _require_columns(trades, ("time_ms", "price", "quantity", "taker_buy"), "trades")
    starts = _sorted_interval_starts(trades["time_ms"].to_numpy(dtype=np.int64), frame, "trades")
    firsts, ends = _interval_runs(starts)
    prices = trades["price"].to_numpy(dtype=np.float64)
    quantities = trades["quantity"].to_numpy(dtype=np.float64)
    taker_buy = trades["taker_buy"].to_numpy(dtype=bool)
    return _ohlc_frame(
        starts, firsts, ends, prices, prices, prices, prices,
        {
            "volume": quantities,
            "taker_buy_volume": np.where(taker_buy, quantities, 0.0),
            "trade_count": np.ones(len(prices)),
        },
    )  # fmt: skip


def resample_candles(candles: pd.DataFrame, timeframe: Timeframe | str) -> pd.DataFrame:
    """Batch finer candles (CANDLE_COLUMNS, in time order) -> coarser candles.

    Taker volume and trade count become unknown (NaN) for a coarser candle when any of its
    finer candles lacks them, as in `CandleResampler`.
    """
    frame = parse_timeframe(timeframe)
    _require_columns(candles, ("start_ms", "open", "high", "low", "close", "volume"), "candles")
    starts = _sorted_interval_starts(candles["start_ms"].to_numpy(dtype=np.int64), frame, "candles")
    firsts, ends = _interval_runs(starts)

    def column(name: str) -> np.ndarray:
        if name not in candles:
            return np.full(len(candles), np.nan)
        return candles[name].to_numpy(dtype=np.float64)

    return _ohlc_frame(
        starts, firsts, ends, column("open"), column("high"), column("low"), column("close"),
        {name: column(name) for name in ("volume", "taker_buy_volume", "trade_count")},
    )  # fmt: skip


def candles_to_frame(candles: Iterable[Candle]) -> pd.DataFrame:
    """Candle objects -> a frame with CANDLE_COLUMNS (None becomes NaN)."""
    rows = [
        (
            c.start_ms,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            math.nan if c.taker_buy_volume is None else c.taker_buy_volume,
            math.nan if c.trade_count is None else c.trade_count,
        )
        for c in candles
    ]
    frame = pd.DataFrame(rows, columns=list(CANDLE_COLUMNS))
    return frame.astype(CANDLE_DTYPES)


def frame_to_candles(frame: pd.DataFrame, symbol: str, timeframe: Timeframe | str) -> list[Candle]:
    """A frame with CANDLE_COLUMNS -> Candle objects (NaN becomes None)."""
    tf = parse_timeframe(timeframe)
    rows = len(frame)

    def optional(column: str) -> list[float]:
        if column not in frame:
            return [math.nan] * rows
        return [float(value) for value in frame[column].to_numpy(dtype="float64")]

    columns = zip(
        frame["start_ms"].to_numpy(dtype="int64").tolist(),
        *(frame[name].to_numpy(dtype="float64").tolist() for name in CANDLE_COLUMNS[1:6]),
        optional("taker_buy_volume"),
        optional("trade_count"),
        strict=True,
    )
    return [
        Candle(
            symbol=symbol,
            timeframe=tf,
            start_ms=start,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            taker_buy_volume=None if math.isnan(taker) else taker,
            trade_count=None if math.isnan(count) else int(count),
        )
        for start, open_, high, low, close, volume, taker, count in columns
    ]


def trades_to_frame(trades: Iterable[Trade]) -> pd.DataFrame:
    """Trade objects -> a frame with TRADE_COLUMNS."""
    rows = [(t.time_ms, t.trade_id, t.price, t.quantity, t.taker_side is Side.BUY) for t in trades]
    frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
    return frame.astype(
        {"time_ms": "int64", "price": "float64", "quantity": "float64", "taker_buy": "bool"}
    )


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing}; it has {list(frame.columns)}")
