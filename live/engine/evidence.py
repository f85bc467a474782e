"""Evidence: the candles the engine built and the decisions it took, kept for the review.

The event loop only hands items over (`candle`, `decision`): an append to a bounded queue
(a deque: 0.1 us, where queue.Queue's locks cost 1.5 us a put), so recording can never
hold up trading. When the queue is full the item is dropped and counted (`dropped`, in
/metrics as evidence_dropped_total): a slow disk costs evidence, never a late order. One
writer thread takes the queue in batches, every `evidence_flush_seconds` or as soon as it
is half full, and writes:

- candles, grouped by series, into the candle store (`tradepipe.marketdata`) as exchange
  `record_exchange` (e.g. binance-live: what this engine built, beside what the exchange
  published), 1 s candles and every bot timeframe;
- decisions into the decision log (`tradepipe.marketdata.decisions`), day partitions,
  compacted once a day is over and pruned to `decision_retention_days`.

A batch that cannot be written (an unwritable directory, a full disk) is counted as lost
and logged; the first failure and the recovery after it are engine events (`on_event`,
called in the engine's loop). Trading goes on either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tradepipe.candles import candles_to_frame
from tradepipe.domain import Candle
from tradepipe.marketdata import MarketDataStore
from tradepipe.marketdata.decisions import (
    DecisionRecord,
    append_decisions,
    compact,
    decision_days,
    prune,
)

__all__ = ["EvidenceMetrics", "EvidenceRecorder"]

log = logging.getLogger(__name__)

BATCH_ITEMS = 50_000  # the most items written at once
POLL_SECONDS = 0.05  # how often the waiting writer looks at the queue's length
HOUSEKEEPING_SECONDS = 3_600.0  # compaction and retention, at most this often (and at start)


@dataclass(frozen=True, slots=True)
class EvidenceMetrics:
    candles: int  # written
    decisions: int  # written
    dropped: int  # not queued: the queue was full
    lost: int  # queued but not written: the write failed
    failures: int  # batches that failed
    queued: int  # waiting for the writer now


class EvidenceRecorder:
    def __init__(
        self,
        *,
        store_root: Path | None,
        decision_root: Path | None,
        exchange: str,
        retention_days: int,
        queue_size: int,
        flush_seconds: float,
        on_event: Callable[[str, str], None],
    ) -> None:
        self.store = MarketDataStore(store_root) if store_root is not None else None
        self.decision_root = decision_root
        self.exchange = exchange
        self.retention_days = retention_days
        self.flush_seconds = flush_seconds
        self._on_event = on_event
        # One producer (the loop) appends, one consumer (the writer) pops: deque's append
        # and popleft are atomic, and only the producer checks the bound.
        self._items: deque[object] = deque()
        self._limit = queue_size
        self._batch_items = min(BATCH_ITEMS, max(1, queue_size // 2))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failing = False
        self._closed = False  # after close: items are counted as dropped, never queued
        self._last_housekeeping = -HOUSEKEEPING_SECONDS
        self.candles_written = 0
        self.decisions_written = 0
        self.dropped = 0
        self.lost = 0
        self.failures = 0

    @property
    def records_candles(self) -> bool:
        return self.store is not None

    @property
    def records_decisions(self) -> bool:
        return self.decision_root is not None

    # -- the event loop's side: never blocks ------------------------------------------------

    def candle(self, candle: Candle) -> None:
        if self.store is not None:
            self._put(candle)

    def decision(self, record: DecisionRecord) -> None:
        if self.decision_root is not None:
            self._put(record)

    def _put(self, item: object) -> None:
        if self._closed or len(self._items) >= self._limit:
            self.dropped += 1
        else:
            self._items.append(item)

    def metrics(self) -> EvidenceMetrics:
        return EvidenceMetrics(
            self.candles_written,
            self.decisions_written,
            self.dropped,
            self.lost,
            self.failures,
            len(self._items),
        )

    def start(self) -> None:
        """Start the writer thread (from the engine's loop, which hears its events)."""
        if self._thread is not None or (self.store is None and self.decision_root is None):
            return
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="evidence", daemon=True)
        self._thread.start()

    async def close(self, timeout: float) -> bool:
        """Write what is queued (within `timeout`), then stop. False if the writer was
        still busy at the deadline (what it had not written is lost)."""
        self._closed = True
        thread = self._thread
        if thread is None:
            return True
        self._stop.set()
        await asyncio.to_thread(thread.join, timeout)
        self._thread = None
        return not thread.is_alive()

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            deadline = time.monotonic() + self.flush_seconds
            while not self._closed and len(self._items) < self._batch_items:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._stop.wait(min(POLL_SECONDS, left))
            closing = self._closed  # read first: what is queued after it is still taken
            batch = [self._items.popleft() for _ in range(min(len(self._items), BATCH_ITEMS))]
            if batch:
                self._write(batch)
            done = closing and not self._items
            self._housekeeping(force=done)
            if done:
                return

    def _write(self, batch: list[object]) -> None:
        candles: dict[tuple[str, str], list[Candle]] = {}
        decisions: list[DecisionRecord] = []
        for item in batch:
            if isinstance(item, Candle):
                candles.setdefault((item.symbol, item.timeframe.name), []).append(item)
            elif isinstance(item, DecisionRecord):
                decisions.append(item)
        # each series and the decisions apart: one that cannot be written loses only itself
        ok = True
        for (symbol, timeframe), series in candles.items():
            ok &= self._attempt(len(series), partial(self._candles, symbol, timeframe, series))
        if decisions:
            ok &= self._attempt(len(decisions), partial(self._decisions, decisions))
        if ok and self._failing:
            self._failing = False
            log.warning("evidence written again")
            self._event("evidence_recovered", "evidence (candles, decisions) written again")

    def _candles(self, symbol: str, timeframe: str, series: list[Candle]) -> None:
        assert self.store is not None
        self.store.write_candles(self.exchange, symbol, timeframe, candles_to_frame(series))
        self.candles_written += len(series)

    def _decisions(self, decisions: list[DecisionRecord]) -> None:
        assert self.decision_root is not None
        self.decisions_written += append_decisions(self.decision_root, decisions)

    def _attempt(self, items: int, write: Callable[[], None]) -> bool:
        try:
            write()
        except Exception as error:
            self._failed(error, items)
            return False
        return True

    def _housekeeping(self, *, force: bool) -> None:
        """Compact the decision days that are over, and delete those past retention."""
        root = self.decision_root
        now = time.monotonic()
        if root is None or (not force and now - self._last_housekeeping < HOUSEKEEPING_SECONDS):
            return
        self._last_housekeeping = now
        try:
            removed = prune(root, self.retention_days)
            for day in decision_days(root)[:-1]:  # the newest day may still grow
                compact(root, day)
        except Exception as error:
            self._failed(error, 0)
            return
        if removed:
            log.info(
                "decision log: %d days past retention deleted (%s .. %s)",
                len(removed),
                removed[0],
                removed[-1],
                extra={"days": removed},
            )

    def _failed(self, error: BaseException, lost: int) -> None:
        self.failures += 1
        self.lost += lost
        message = f"evidence not written ({lost} items lost): {type(error).__name__}: {error}"
        log.error(message, extra={"lost": lost})
        if not self._failing:
            self._failing = True
            self._event("evidence_write_failed", message + "; trading goes on")

    def _event(self, kind: str, message: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._on_event, kind, message)
