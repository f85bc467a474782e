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

`Clock` is the seam: the trading core takes one by injection. `MarketClock` is the live
one; `SimulatedClock` moves only when told (`set`, `advance`, or the trades it observes),
so a test or a backtest drives timeouts and candle closes step by step, with no wall time.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MarketClock", "SimulatedClock"]


class Clock(Protocol):
    """Market time in ms since the epoch, as the trading core reads it."""

    def observe(self, time_ms: int) -> None:
        """A trade printed at `time_ms` (exchange time) was just received."""

    @property
    def started(self) -> bool:
        """Whether any time is known yet."""

    def now(self) -> int | None:
        """The market time now, or None before any time is known."""

    def now_or(self, fallback_ms: int) -> int:
        """`now()`, or `fallback_ms` before any time is known."""


class MarketClock:
    """The live clock: the last trade's time, run on at the local monotonic rate."""

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


class SimulatedClock:
    """A clock that moves only when told: by `set`, `advance`, or a later trade observed.
    Like the market clock it never goes backwards."""

    def __init__(self, start_ms: int | None = None) -> None:
        self._now_ms = start_ms

    def observe(self, time_ms: int) -> None:
        if self._now_ms is None or time_ms > self._now_ms:
            self._now_ms = time_ms

    def set(self, time_ms: int) -> None:
        """Move to `time_ms`; ValueError if that is before the time already reached."""
        if self._now_ms is not None and time_ms < self._now_ms:
            raise ValueError(
                f"simulated clock cannot go back from {self._now_ms} ms to {time_ms} ms"
            )
        self._now_ms = time_ms

    def advance(self, milliseconds: int) -> int:
        """Move on by `milliseconds` (>= 0) from the time reached; the new time."""
        if milliseconds < 0:
            raise ValueError(f"simulated clock cannot advance by {milliseconds} ms (< 0)")
        if self._now_ms is None:
            raise ValueError("simulated clock has no time yet: set one before advancing")
        self._now_ms += milliseconds
        return self._now_ms

    @property
    def started(self) -> bool:
        return self._now_ms is not None

    def now(self) -> int | None:
        return self._now_ms

    def now_or(self, fallback_ms: int) -> int:
        return fallback_ms if self._now_ms is None else self._now_ms
