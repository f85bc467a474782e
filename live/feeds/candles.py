"""Trades to closed 1 s candles per symbol, with the holes of reconnects filled from REST.

The engine builds its candles from trades (the kernel's `CandleAggregator`); a reconnect
loses trades, and a candle built from part of its trades is wrong, not just late. So after
a `Gap(symbol, from_ms, to_ms)` the seconds from floor(from_ms) through floor(to_ms) belong
to the exchange's record: their candles come from a `CandleBackfill` (REST klines), and the
candles built from the live trades of those seconds are kept aside only as a fallback.
Live candles of later seconds are held back meanwhile, so consumers see one series in time
order with no hole and no half-built candle.

The window is fetched once its last second is over (a trade of a later second arrived, or
the clock passed it) plus `settle_seconds` for the exchange to index it. If the backfill
fails after its retries, the live-built candles are released instead and the gap is counted
as unhealed: the series goes on, and the loss is visible, never silent.

While the feed is down, a symbol's open candle is not closed by the clock: whether trades
were missed is known only at the symbol's next trade (a Gap comes first if they were).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from live.feeds.backfill import BackfillError, CandleBackfill
from live.feeds.protocol import FeedState, FeedStatus, Gap
from tradepipe.candles import CandleAggregator
from tradepipe.domain import Candle, Trade
from tradepipe.timeframes import parse_timeframe

log = logging.getLogger(__name__)

SECOND = parse_timeframe("1s")
SECOND_MS = SECOND.milliseconds
END_OF_TIME = 2**62


@dataclass(frozen=True, slots=True)
class HealingConfig:
    settle_seconds: float = 1.0
    attempts: int = 3
    retry_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.settle_seconds < 0 or self.retry_seconds < 0 or self.attempts < 1:
            raise ValueError("healing needs settle_seconds >= 0, retry_seconds >= 0, attempts >= 1")


@dataclass(slots=True)
class HealingStats:
    gaps: int = 0
    backfills: int = 0
    backfilled_candles: int = 0
    replaced_candles: int = 0  # live-built candles superseded by the exchange's
    unhealed_gaps: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Heal:
    first_ms: int  # first second owned by the backfill
    last_ms: int  # last second owned by the backfill (inclusive)
    held: list[Candle] = field(default_factory=list)  # live candles after the window
    fallback: dict[int, Candle] = field(default_factory=dict)  # live candles in it
    task: asyncio.Task[None] | None = None


class _Series:
    __slots__ = (
        "aggregator",
        "heal",
        "horizon_ms",
        "last_emitted_ms",
        "replaced_through_ms",
        "suspended",
    )

    def __init__(self, symbol: str) -> None:
        self.aggregator = CandleAggregator(SECOND, symbol)
        self.heal: _Heal | None = None
        self.horizon_ms = -1  # market time known to have passed: last trade, tick or flush
        self.last_emitted_ms = -1
        self.replaced_through_ms = -1
        self.suspended = False


class SecondCandles:
    """A `FeedConsumer` that hands closed 1 s candles to `on_candle`, in time order per
    symbol, gaps repaired through `backfill`."""

    def __init__(
        self,
        on_candle: Callable[[Candle], None],
        backfill: CandleBackfill,
        config: HealingConfig | None = None,
    ) -> None:
        self._on_candle = on_candle
        self._backfill = backfill
        self.config = config or HealingConfig()
        self._series: dict[str, _Series] = {}
        self.stats = HealingStats()

    # -- FeedConsumer --------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        series = self._series.get(trade.symbol) or self._new_series(trade.symbol)
        series.suspended = False
        if trade.time_ms > series.horizon_ms:
            series.horizon_ms = trade.time_ms
        closed = series.aggregator.add(trade)
        if closed is not None:
            self._closed(series, closed)
        self._maybe_heal(series)

    def on_gap(self, gap: Gap) -> None:
        self.stats.gaps += 1
        series = self._series.get(gap.symbol) or self._new_series(gap.symbol)
        first = max(SECOND.floor_ms(gap.from_ms), series.last_emitted_ms + SECOND_MS)
        last = SECOND.floor_ms(gap.to_ms)
        if first > last:
            return  # everything it could touch is already out: nothing left to repair
        heal = series.heal
        if heal is None:
            series.heal = _Heal(first, last)
        elif last > heal.last_ms:
            heal.last_ms = last
            moved = [c for c in heal.held if c.start_ms <= last]
            heal.held = [c for c in heal.held if c.start_ms > last]
            heal.fallback.update((c.start_ms, c) for c in moved)

    def on_status(self, status: FeedStatus) -> None:
        if status.state is not FeedState.CONNECTED:
            for series in self._series.values():
                series.suspended = True

    # -- the clock and the end -----------------------------------------------------------

    def close_until(self, now_ms: int) -> None:
        """A clock tick: close candles whose second is over and start due backfills."""
        for series in self._series.values():
            if series.suspended:
                continue
            series.horizon_ms = max(series.horizon_ms, now_ms)
            closed = series.aggregator.close_until(now_ms)
            if closed is not None:
                self._closed(series, closed)
            self._maybe_heal(series)

    def flush(self) -> None:
        """End of input: close every open candle and start every pending backfill."""
        for series in self._series.values():
            series.horizon_ms = END_OF_TIME
            closed = series.aggregator.flush()
            if closed is not None:
                self._closed(series, closed)
            self._maybe_heal(series)

    async def wait_idle(self) -> None:
        """Until no backfill is running (callers bound it with a timeout)."""
        while True:
            tasks = [s.heal.task for s in self._series.values() if s.heal and s.heal.task]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for series in self._series.values():
            if series.heal is not None and series.heal.task is not None:
                series.heal.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await series.heal.task

    def pending_gaps(self) -> dict[str, tuple[int, int]]:
        """Windows (first, last second) awaiting their backfill, by symbol."""
        return {s: (v.heal.first_ms, v.heal.last_ms) for s, v in self._series.items() if v.heal}

    # -- inside --------------------------------------------------------------------------

    def _new_series(self, symbol: str) -> _Series:
        series = self._series[symbol] = _Series(symbol)
        return series

    def _closed(self, series: _Series, candle: Candle) -> None:
        heal = series.heal
        if heal is not None:
            if candle.start_ms <= heal.last_ms:
                heal.fallback[candle.start_ms] = candle
            else:
                heal.held.append(candle)
        elif candle.start_ms <= series.replaced_through_ms:
            self.stats.replaced_candles += 1
        else:
            self._emit(series, candle)

    def _emit(self, series: _Series, candle: Candle) -> None:
        if candle.start_ms <= series.last_emitted_ms:
            return  # already out (the clock closed it before the gap was known)
        series.last_emitted_ms = candle.start_ms
        try:
            self._on_candle(candle)
        except Exception:
            log.exception("candle consumer failed on %s", candle)

    def _maybe_heal(self, series: _Series) -> None:
        """Start the backfill once the window's last second is over."""
        heal = series.heal
        if heal is not None and heal.task is None and self._window_over(series, heal):
            heal.task = asyncio.get_running_loop().create_task(
                self._heal(series, heal), name=f"backfill-{series.aggregator.symbol}"
            )

    @staticmethod
    def _window_over(series: _Series, heal: _Heal) -> bool:
        return series.horizon_ms >= heal.last_ms + SECOND_MS

    async def _heal(self, series: _Series, heal: _Heal) -> None:
        symbol = series.aggregator.symbol
        while True:
            window_end = heal.last_ms + SECOND_MS
            if self.config.settle_seconds:
                await asyncio.sleep(self.config.settle_seconds)
            try:
                candles = await self._fetch(symbol, heal.first_ms, window_end)
            except BackfillError as error:
                self._give_up(series, heal, f"backfill of {symbol} failed: {error}")
                return
            self.stats.backfills += 1
            self.stats.backfilled_candles += len(candles)
            self.stats.replaced_candles += sum(1 for start in heal.fallback if start < window_end)
            for candle in sorted(candles, key=lambda c: c.start_ms):
                self._emit(series, candle)
            series.replaced_through_ms = max(series.replaced_through_ms, window_end - SECOND_MS)
            if heal.last_ms < window_end:
                break
            # another gap widened the window while this one was fetched: fetch the rest
            heal.first_ms = window_end
            heal.fallback = {k: v for k, v in heal.fallback.items() if k >= window_end}
            if not self._window_over(series, heal):
                heal.task = None  # the next trade or tick past the window starts it
                return
        series.heal = None
        for candle in heal.held:
            self._emit(series, candle)

    async def _fetch(self, symbol: str, start_ms: int, end_ms: int) -> list[Candle]:
        attempts = self.config.attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._backfill.fetch_candles(symbol, SECOND, start_ms, end_ms)
            except BackfillError as error:
                if attempt == attempts:
                    raise
                log.warning("backfill attempt %d of %d: %s", attempt, attempts, error)
                await asyncio.sleep(self.config.retry_seconds * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _give_up(self, series: _Series, heal: _Heal, reason: str) -> None:
        log.error("%s; releasing the candles built from the trades received", reason)
        self.stats.unhealed_gaps += 1
        self.stats.errors.append(reason)
        series.heal = None
        for start in sorted(heal.fallback):
            self._emit(series, heal.fallback[start])
        for candle in heal.held:
            self._emit(series, candle)
