"""Moving the barriers of an open position on an operator's request.

A position's take-profit, stop-loss and holding deadline are fixed when its entry fills
(`transitions.activate`) and a config change never touches them; only an operator's
explicit request moves them, through `move_barriers`:

- the stop-loss and the deadline are watched by the book (`PositionBook.on_tick`), so a
  new value is in force at the next tick;
- the take-profit is a resting limit order holding the position's coins at the venue: it
  is cancelled and placed again at the new price. Simulated, at once; live, the cancel is
  requested and the new order placed when the venue confirms it (`cancel_confirmed` tells
  this cancel from a forced exit's by the position having no `pending_exit`), so the coins
  are never offered twice. A take-profit that fills before the cancel lands closes the
  position at the old price, as the venue decided.

`check_move` refuses a barrier on the wrong side of the current price (a long's stop-loss
at or above it would exit at once; its take-profit at or below it would fill at once at a
worse price than asked): the operator who wants out closes the position instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tradepipe.enums import OrderRole, OrderStatus, OrderType, PositionStatus, Side
from tradepipe.orders.events import BarriersMoved, Event, OrderCancelled, OrderCancelRequested
from tradepipe.orders.evolve import evolve
from tradepipe.orders.transitions import Step, replace_order
from tradepipe.orders.transitions import _place_exit as place_exit
from tradepipe.orders.types import Position

__all__ = [
    "MOVE_REASON",
    "BarrierError",
    "BarrierMove",
    "barriers_of",
    "check_barrier_prices",
    "check_move",
    "move_barriers",
]

MOVE_REASON = "take-profit moved by an operator"


class BarrierError(ValueError):
    """A barrier move that cannot be applied; the message names the barrier and why."""


@dataclass(frozen=True, slots=True)
class BarrierMove:
    """New barriers of one position; None keeps the current one."""

    take_profit_price: float | None = None
    stop_loss_price: float | None = None
    expires_at_ms: int | None = None

    @property
    def empty(self) -> bool:
        return (
            self.take_profit_price is None
            and self.stop_loss_price is None
            and (self.expires_at_ms is None)
        )


def barriers_of(position: Position) -> dict[str, float | int | None]:
    return {
        "take_profit_price": position.take_profit_price,
        "stop_loss_price": position.stop_loss_price,
        "expires_at_ms": position.expires_at_ms,
    }


def check_move(position: Position, move: BarrierMove, price: float | None) -> None:
    """BarrierError unless `move` may be applied to `position` with the market at `price`
    (None: unknown, only the prices' own sense is checked)."""
    name = f"position {position.bot}#{position.seq}"
    if position.status is not PositionStatus.ACTIVE:
        raise BarrierError(
            f"{name} is {position.status.value}: only an active position has barriers"
        )
    if position.pending_exit is not None:
        raise BarrierError(f"{name} is already leaving ({position.pending_exit.value})")
    if move.empty:
        raise BarrierError("give a new take-profit price, stop-loss price or timeout")
    for label, value in (
        ("take-profit", move.take_profit_price),
        ("stop-loss", move.stop_loss_price),
    ):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise BarrierError(f"{label} price must be a positive number, got {value}")
    take_profit = move.take_profit_price or position.take_profit_price
    stop_loss = move.stop_loss_price or position.stop_loss_price
    assert take_profit is not None and stop_loss is not None
    check_barrier_prices(position.side, take_profit, stop_loss, price)


def check_barrier_prices(
    side: Side, take_profit: float, stop_loss: float, price: float | None
) -> None:
    """BarrierError unless a position of `side` may hold these barriers with the market at
    `price` (None: unknown, only their order is checked)."""
    long = side is Side.BUY
    above, below = ("take-profit", "stop-loss") if long else ("stop-loss", "take-profit")
    high, low = (take_profit, stop_loss) if long else (stop_loss, take_profit)
    if high <= low:
        raise BarrierError(f"the {above} ({high:g}) must be above the {below} ({low:g})")
    if price is None:
        return
    kind = "long" if long else "short"
    if high <= price:
        leave = "" if long else " (close the position to leave now)"
        raise BarrierError(
            f"the {above} of a {kind} must be above the current price {price:g}, got {high:g}"
            + leave
        )
    if low >= price:
        leave = " (close the position to leave now)" if long else ""
        raise BarrierError(
            f"the {below} of a {kind} must be below the current price {price:g}, got {low:g}"
            + leave
        )


def move_barriers(
    position: Position, move: BarrierMove, price: float | None, time_ms: int, *, simulated: bool
) -> Step:
    """`position` with `move` applied (checked first: BarrierError): `BarriersMoved`, then
    the events of replacing its take-profit order when that moved."""
    check_move(position, move, price)
    moved, events = _moved(position, move, time_ms, simulated=simulated)
    done = BarriersMoved(bot=moved.bot, time_ms=time_ms, position=moved)
    return moved, [done, *events]


def _moved(position: Position, move: BarrierMove, time_ms: int, *, simulated: bool) -> Step:
    moved = evolve(
        position,
        take_profit_price=move.take_profit_price or position.take_profit_price,
        stop_loss_price=move.stop_loss_price or position.stop_loss_price,
        expires_at_ms=move.expires_at_ms or position.expires_at_ms,
    )
    if moved.take_profit_price == position.take_profit_price:
        return moved, []
    resting = moved.working_exit(OrderRole.TAKE_PROFIT)
    if resting is None:  # none working (a refused one): the new price gets its order now
        return _place_take_profit(moved, time_ms, simulated=simulated)
    if resting.cancel_requested:
        return moved, []  # already on its way out: the new order follows its confirmation
    events: list[Event]
    if simulated:
        gone = evolve(resting, status=OrderStatus.CANCELLED, updated_at_ms=time_ms)
        events = [OrderCancelled(bot=moved.bot, time_ms=time_ms, order=gone,
                                 position_seq=moved.seq, reason=MOVE_REASON)]  # fmt: skip
        moved, placed = _place_take_profit(replace_order(moved, gone), time_ms, simulated=True)
        return moved, events + placed
    asked = evolve(resting, cancel_requested=True, updated_at_ms=time_ms)
    event = OrderCancelRequested(
        bot=moved.bot, time_ms=time_ms, order=asked, position_seq=moved.seq, reason=MOVE_REASON
    )
    return replace_order(moved, asked), [event]


def _place_take_profit(position: Position, time_ms: int, *, simulated: bool) -> Step:
    return place_exit(
        position,
        OrderRole.TAKE_PROFIT,
        OrderType.LIMIT,
        time_ms,
        simulated=simulated,
        price=position.take_profit_price,
    )
