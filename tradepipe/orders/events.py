"""What the state machine says happened: one typed stream for backtester, engine and database.

Every transition returns a tuple of these events in the order things happened. Order and
position events carry a full snapshot of the order or position *after* the transition, so
a consumer (the database writer upserts rows; the backtester collects closed positions; the
engine sends `OrderPlaced` orders to its broker) never needs to ask the machine for more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from tradepipe.enums import ExitReason, Side
from tradepipe.orders.serialise import StateError, build, record_to_dict
from tradepipe.orders.types import Liquidity, OrderState, Position

__all__ = [
    "Anomaly",
    "EntryRefused",
    "Event",
    "OrderAccepted",
    "OrderCancelRequested",
    "OrderCancelled",
    "OrderFilled",
    "OrderPlaced",
    "OrderRejected",
    "PositionClosed",
    "PositionOpened",
    "PositionPending",
    "event_from_dict",
    "event_to_dict",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    bot: str
    time_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryRefused(Event):
    """An entry the machine would not take (e.g. the bot's position limit); no position."""

    kind: ClassVar[str] = "entry_refused"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Anomaly(Event):
    """A report the machine cannot apply (a fill for an unknown or finished order...).

    State is left unchanged; the engine should log it and reconcile with the venue.
    """

    kind: ClassVar[str] = "anomaly"
    message: str
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _OrderEvent(Event):
    order: OrderState
    position_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlaced(_OrderEvent):
    """A new order to send (live) or that the simulated venue now holds."""

    kind: ClassVar[str] = "order_placed"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(_OrderEvent):
    kind: ClassVar[str] = "order_accepted"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(_OrderEvent):
    """One fill: `quantity` at `price`, costing `fee` (quote currency)."""

    kind: ClassVar[str] = "order_filled"
    price: float
    quantity: float
    fee: float
    liquidity: Liquidity

    @property
    def cash_flow(self) -> float:
        """Quote currency into (+) or out of (-) the account from this fill, fee included."""
        notional = self.price * self.quantity
        side = notional if self.order.side is Side.SELL else -notional
        return side - self.fee


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelRequested(_OrderEvent):
    """Live only: ask the venue to cancel; the machine waits for `on_cancelled`."""

    kind: ClassVar[str] = "order_cancel_requested"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(_OrderEvent):
    kind: ClassVar[str] = "order_cancelled"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(_OrderEvent):
    kind: ClassVar[str] = "order_rejected"
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _PositionEvent(Event):
    position: Position

    @property
    def position_seq(self) -> int:
        return self.position.seq


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionPending(_PositionEvent):
    """A position exists: its entry order is working, nothing is filled yet."""

    kind: ClassVar[str] = "position_pending"


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpened(_PositionEvent):
    """The entry filled: the position is active with its barriers set."""

    kind: ClassVar[str] = "position_opened"


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(_PositionEvent):
    """The position is closed; exactly one exit reason, PnL final."""

    kind: ClassVar[str] = "position_closed"

    @property
    def exit_reason(self) -> ExitReason:
        assert self.position.exit_reason is not None  # set by every close
        return self.position.exit_reason

    @property
    def net_pnl(self) -> float:
        return self.position.net_pnl


@dataclass(frozen=True, slots=True, kw_only=True)
class BarriersMoved(_PositionEvent):
    """An operator moved the active position's barriers (tradepipe/orders/barriers.py)."""

    kind: ClassVar[str] = "barriers_moved"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        EntryRefused,
        Anomaly,
        OrderPlaced,
        OrderAccepted,
        OrderFilled,
        OrderCancelRequested,
        OrderCancelled,
        OrderRejected,
        PositionPending,
        PositionOpened,
        PositionClosed,
        BarriersMoved,
    )
}


def event_to_dict(event: Event) -> dict[str, Any]:
    """The event as plain data with its `kind`, e.g. for the database's events table."""
    return {"kind": event.kind, **record_to_dict(event)}


def event_from_dict(data: dict[str, Any]) -> Event:
    body = dict(data)
    kind = body.pop("kind", None)
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise StateError(f"unknown event kind {kind!r}")
    return build(
        cls,
        body,
        {
            "order": OrderState.from_dict,
            "position": Position.from_dict,
            "liquidity": Liquidity,
        },
    )
