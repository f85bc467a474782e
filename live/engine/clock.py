"""The market clock: which time drives candles, timeouts and every record of a trade.

One clock for the whole engine, the exchange's: trade times (`T`, ms since the epoch) as
the feed delivers them. Between trades it runs on at the local monotonic rate from the last
trade received, so a holding timeout still fires in a market that has gone quiet, or while
the feed is down. It never goes backwards and never jumps ahead of what the exchange has
said by more than the wall time that really passed.

Consequences, stated once:
- a position's holding deadline, a limit entry's maker timeout, candle boundaries and every
  trading time written to the database (placed, opened, closed, filled) are exchange time;
- a replay played faster than real time runs this clock as fast as the replay (its trade
  times), so timeouts scale with it, as in a backtest;
- audit columns (created_at/updated_at) and heartbeats are wall time, kept by the database
  layer and the heartbeat loop, never by this clock.
"""

from __future__ import annotations

import time

__all__ = ["MarketClock"]


class MarketClock:
    def __init__(self) -> None:
        self._last_ms: int | None = None
        self._at_ns = 0

    def observe(self, time_ms: int) -> None:
        """A trade printed at `time_ms` (exchange time) was just received."""
        if self._last_ms is None or time_ms >= self.now_or(time_ms):
            self._last_ms = time_ms
            self._at_ns = time.monotonic_ns()

    @property
    def started(self) -> bool:
        return self._last_ms is not None

    def now(self) -> int | None:
        """The market time now, or None before the first trade."""
        if self._last_ms is None:
            return None
        return self._last_ms + (time.monotonic_ns() - self._at_ns) // 1_000_000

    def now_or(self, fallback_ms: int) -> int:
        current = self.now()
        return fallback_ms if current is None else current
