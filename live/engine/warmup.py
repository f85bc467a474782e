"""Feature warm-up from the exchange: a timeframe that starts mid-market asks for the
candles before its first complete one, so its features are ready without waiting for a
full history of live candles. The only part of the trading core that awaits: it runs in
its own tasks and hands the candles to the frame's states when they come."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from live.engine.clock import Clock
from live.engine.config import EngineConfig
from live.engine.features import TimeframeStream
from live.feeds import CandleBackfill

__all__ = ["FeatureWarmup"]

log = logging.getLogger(__name__)


class FeatureWarmup:
    def __init__(
        self,
        config: EngineConfig,
        clock: Clock,
        source: CandleBackfill,
        emit: Callable[[str, str], None],
    ) -> None:
        self.config = config
        self.clock = clock
        self.source = source
        self.emit = emit
        self.tasks: set[asyncio.Task[None]] = set()

    def warm_up(self, frame: TimeframeStream) -> None:
        task = asyncio.get_running_loop().create_task(
            self._warm(frame), name=f"warmup-{frame.symbol}-{frame.timeframe}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    async def _warm(self, frame: TimeframeStream) -> None:
        """Ask the exchange for the candles before `frame`'s first complete one, once the
        market is past it (plus settling time), and feed them to its states."""
        assert frame.complete_from is not None
        ready_at = frame.complete_from + int(self.config.warmup_settle_seconds * 1000)
        while self.clock.now_or(0) < ready_at:
            await asyncio.sleep(0.05)
        start = frame.complete_from - (frame.history.maxlen or 1) * frame.timeframe.milliseconds
        what = f"{frame.symbol} {frame.timeframe}"
        try:
            async with asyncio.timeout(self.config.warmup_timeout_seconds):
                candles = await self.source.fetch_candles(
                    frame.symbol, frame.timeframe, start, frame.complete_from
                )
        except Exception as error:  # BackfillError, a timeout: warm up from live candles
            frame.finish_warmup([])
            self.emit("warmup_failed", f"{what}: features warm up from live candles ({error})")
            return
        taken = frame.finish_warmup(candles)
        log.info(
            "features of %s warmed up from %d exchange candles",
            what,
            taken,
            extra={"symbol": frame.symbol, "timeframe": frame.timeframe.name},
        )
