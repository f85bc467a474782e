"""Engine events: what the engine itself decided or noticed (a bot started, erred, a model
was swapped or refused, the database went away...), as opposed to the order state machine's
events (`tradepipe.orders.Event`).

Each one goes two ways: to the database's events table (through the recorder, for the
dashboard and for humans) and to the in-process `EventBus` (for the control API, tests
and anything else in the process that wants to react without polling the database).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tradepipe.orders import Event, event_to_dict

__all__ = ["PUBLISHED_ORDER_KINDS", "EngineEvent", "EventBus", "publish_order_events"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """`kind` is a short snake_case word (bot_error, model_refused...); `data` is JSON-able."""

    kind: str
    message: str
    bot: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def payload(self) -> dict[str, Any]:
        return {"message": self.message, **dict(self.data)}


class EventBus:
    """Synchronous publish/subscribe inside one engine, plus the last `keep` events."""

    def __init__(self, keep: int = 500) -> None:
        self._subscribers: list[Callable[[EngineEvent], None]] = []
        self._recent: deque[EngineEvent] = deque(maxlen=keep)

    def subscribe(self, callback: Callable[[EngineEvent], None]) -> Callable[[], None]:
        """Call `callback` with every event from now on; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: EngineEvent) -> None:
        self._recent.append(event)
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a listener must not break the engine
                log.exception("event listener %r failed on %s", callback, event.kind)

    def recent(self, kind: str | None = None) -> tuple[EngineEvent, ...]:
        """Recent events, oldest first, optionally of one kind."""
        return tuple(e for e in self._recent if kind is None or e.kind == kind)


# State machine events that go to the event bus as they happen.
PUBLISHED_ORDER_KINDS = frozenset(
    {
        "order_placed",
        "order_filled",
        "order_cancelled",
        "order_rejected",
        "position_opened",
        "position_closed",
        "entry_refused",
    }
)


def publish_order_events(bus: EventBus, bot: str, symbol: str, events: list[Event]) -> None:
    """Order and position events on the bus (listeners such as /ws/events); their
    durable record is the orders, fills and positions tables, not the events table."""
    if not bus.has_subscribers:
        return
    for event in events:
        if event.kind not in PUBLISHED_ORDER_KINDS:
            continue
        data = event_to_dict(event)
        order = data.get("order")
        subject = order.get("client_order_id") if isinstance(order, dict) else None
        seq = data.get("position_seq")
        message = f"{bot}: {event.kind.replace('_', ' ')}"
        message += f" {subject}" if subject else f" position {seq}" if seq else ""
        bus.publish(EngineEvent(event.kind, message, bot, data))
