"""One step of the trading core (the events, fills and rows of one input, committed
together) and the core's counters: plain records the core, its decisions and its risk
ledger share (live/engine/core.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from live.engine.features import ClosedRow
from live.engine.persistence import FillRecord
from tradepipe.orders import Event

__all__ = ["CoreMetrics", "Step"]


@dataclass(slots=True)
class Step:
    time_ms: int
    events: dict[str, list[Event]] = field(default_factory=dict)
    fills: dict[str, list[FillRecord]] = field(default_factory=dict)
    exchange_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    rows: list[ClosedRow] = field(default_factory=list)
    booked: dict[str, int] = field(default_factory=dict)  # events seen by the risk ledger
    # when the step's input reached the core: a decision's latency is counted from here
    started_ns: int = field(default_factory=time.perf_counter_ns)

    def add(self, bot: str, events: Iterable[Event]) -> None:
        events = list(events)
        if events:
            self.events.setdefault(bot, []).extend(events)

    def unbooked(self, bot: str) -> list[Event]:
        """`bot`'s events the risk ledger has not seen yet (and now has)."""
        events = self.events.get(bot, [])
        start, self.booked[bot] = self.booked.get(bot, 0), len(events)
        return events[start:]


@dataclass(slots=True)
class CoreMetrics:
    trades: int = 0
    seconds: int = 0
    decisions: int = 0
    entries: int = 0
    entries_blocked: int = 0
    entries_refused_risk: int = 0
    predict_calls: int = 0
    predicted_rows: int = 0
    reports: int = 0
    unknown_reports: int = 0
