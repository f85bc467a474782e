"""Domain types shared by research and live: trades and candles.

Times are integers, milliseconds since the Unix epoch in UTC, as exchanges report them;
integers keep interval arithmetic exact. Prices and quantities are floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tradepipe.timeframes import Timeframe


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Trade:
    """One public trade. `taker_side` is the aggressor's side: BUY lifted the offer."""

    symbol: str
    time_ms: int
    price: float
    quantity: float
    taker_side: Side
    trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed OHLCV candle for [start_ms, start_ms + timeframe).

    `taker_buy_volume` and `trade_count` are None when the source does not carry them
    (plain OHLCV files); candles built from trades always have both.
    """

    symbol: str
    timeframe: Timeframe
    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    taker_buy_volume: float | None = None
    trade_count: int | None = None

    @property
    def end_ms(self) -> int:
        """First millisecond after the candle (exclusive end)."""
        return self.start_ms + self.timeframe.milliseconds

    @property
    def taker_sell_volume(self) -> float | None:
        if self.taker_buy_volume is None:
            return None
        return self.volume - self.taker_buy_volume
