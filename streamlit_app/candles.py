"""The candles around a position, from research's market data store (read only).

The trading database holds no prices beyond fills, so the position chart reads the same
parquet store the research side ingests into, for the bot's exchange, symbol and timeframe.
Missing data is an answer ("no candles stored for ..."), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tradepipe.db.views import PositionView
from tradepipe.marketdata import MarketDataStore, SeriesKeyError
from tradepipe.timeframes import parse_timeframe

__all__ = ["MAX_CANDLES", "PositionCandles", "position_candles"]

MAX_CANDLES = 1_500  # a readable chart; a longer holding shows its last MAX_CANDLES
_CONTEXT_CANDLES = 30  # before the entry and after the exit, for context


@dataclass(frozen=True, slots=True)
class PositionCandles:
    candles: pd.DataFrame | None
    note: str | None  # why there are no candles, or that they were cut


def position_candles(
    store_root: Path,
    position: PositionView,
    *,
    exchange: str,
    timeframe: str,
    now: datetime | None = None,
) -> PositionCandles:
    """Candles from a little before the position was created to a little after it closed
    (or now, while it is open)."""
    what = f"{exchange} {position.symbol} {timeframe}"
    try:
        step_ms = parse_timeframe(timeframe).milliseconds
    except ValueError as error:
        return PositionCandles(None, f"cannot chart {what}: {error}")
    start = position.opened_at or position.created_at
    end = position.closed_at or now or datetime.now(UTC)
    start_ms = _ms(start) - _CONTEXT_CANDLES * step_ms
    end_ms = _ms(end) + (_CONTEXT_CANDLES + 1) * step_ms
    try:
        candles = MarketDataStore(store_root).read_candles(
            exchange, position.symbol, timeframe, start_ms, end_ms
        )
    except (SeriesKeyError, OSError, ValueError) as error:
        return PositionCandles(None, f"cannot read candles for {what}: {error}")
    if candles.empty:
        return PositionCandles(
            None,
            f"no {what} candles in the market data store ({store_root}) around this position: "
            f"ingest them with `tradepipe data ingest --symbol {position.symbol} "
            f"--timeframe {timeframe} ...`; the marks below are the recorded prices",
        )
    if len(candles) > MAX_CANDLES:
        return PositionCandles(
            candles.tail(MAX_CANDLES).reset_index(drop=True),
            f"showing the last {MAX_CANDLES} of {len(candles)} candles",
        )
    return PositionCandles(candles, None)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
