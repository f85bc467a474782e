"""The position lifecycle as pure functions: (position, input) -> (new position, events).

    PENDING --entry filled--> ACTIVE --exit filled--> CLOSED
       |          (take_profit, stop_loss, trailing_stop, timeout, strategy, manual, error)
       +--entry cancelled/rejected, nothing filled--> CLOSED
                                (maker_timeout, rejected, manual, error)

These functions do not know where fills come from. The simulated venue
(`tradepipe.orders.simulate`, candles and the fill model) and a real venue (fills, cancels
and rejections reported by a broker through `PositionBook`) drive the same transitions, so
a backtest and the live engine produce the same events for the same fills.

`simulated` decides one thing: whether a cancel is done at once (the simulated venue
obeys instantly) or only requested (a real venue may fill the order before the cancel
lands, so the machine waits for the venue's answer before placing a replacing exit; that
ordering is what keeps a spot position from being sold twice).
"""

from __future__ import annotations

from tradepipe.enums import ExitReason, OrderRole, OrderStatus, OrderType, PositionStatus, Side
from tradepipe.orders.events import (
    Anomaly,
    Event,
    OrderCancelled,
    OrderCancelRequested,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    PositionClosed,
    PositionOpened,
)
from tradepipe.orders.evolve import evolve
from tradepipe.orders.rules import barrier_prices
from tradepipe.orders.trailing import trail_price
from tradepipe.orders.types import (
    EntryRequest,
    Liquidity,
    OrderState,
    Position,
    client_order_id,
)

Step = tuple[Position, list[Event]]

# The market order that carries each kind of forced exit; any other reason (manual, error)
# travels as MARKET_EXIT and the position's exit_reason says why.
_EXIT_ROLES = {
    ExitReason.STOP_LOSS: OrderRole.STOP_LOSS,
    ExitReason.TRAILING_STOP: OrderRole.STOP_LOSS,
    ExitReason.TIMEOUT: OrderRole.TIMEOUT_EXIT,
}


def exit_role(reason: ExitReason) -> OrderRole:
    return _EXIT_ROLES.get(reason, OrderRole.MARKET_EXIT)


def new_position(
    bot: str, seq: int, symbol: str, request: EntryRequest, time_ms: int, *, simulated: bool
) -> Position:
    """A pending position whose entry order is placed at `time_ms`."""
    limit = request.order_type is OrderType.LIMIT
    price = request.limit_price
    entry = OrderState(
        client_order_id=client_order_id(bot, seq, OrderRole.ENTRY),
        role=OrderRole.ENTRY,
        side=request.side,
        order_type=request.order_type,
        status=OrderStatus.OPEN if simulated else OrderStatus.NEW,
        placed_at_ms=time_ms,
        updated_at_ms=time_ms,
        price=price,
        quantity=request.capital / price if limit and price else None,
        quote_quantity=None if limit else request.capital,
        expires_at_ms=time_ms + request.maker_timeout_ms
        if limit and request.maker_timeout_ms
        else None,
        reason=request.reason,
    )
    return Position(
        bot=bot,
        seq=seq,
        symbol=symbol,
        side=request.side,
        status=PositionStatus.PENDING,
        request=request,
        created_at_ms=time_ms,
        entry=entry,
    )


def _exit_side(position: Position) -> Side:
    return Side.SELL if position.side is Side.BUY else Side.BUY


def _place_exit(
    position: Position,
    role: OrderRole,
    order_type: OrderType,
    time_ms: int,
    *,
    simulated: bool,
    price: float | None = None,
    reason: str | None = None,
) -> Step:
    attempt = 1 + sum(1 for order in position.exits if order.role is role)
    order = OrderState(
        client_order_id=client_order_id(position.bot, position.seq, role, attempt),
        role=role,
        side=_exit_side(position),
        order_type=order_type,
        status=OrderStatus.OPEN if simulated else OrderStatus.NEW,
        placed_at_ms=time_ms,
        updated_at_ms=time_ms,
        price=price,
        quantity=position.quantity - position.exit_quantity,
        reason=reason,
    )
    placed = evolve(position, exits=(*position.exits, order))
    return placed, [
        OrderPlaced(bot=position.bot, time_ms=time_ms, order=order, position_seq=position.seq)
    ]


def replace_order(position: Position, order: OrderState) -> Position:
    if order.client_order_id == position.entry.client_order_id:
        return evolve(position, entry=order)
    exits = tuple(
        order if o.client_order_id == order.client_order_id else o for o in position.exits
    )
    return evolve(position, exits=exits)


def activate(position: Position, time_ms: int, *, simulated: bool) -> Step:
    """The entry is done (fully, or partly and then cancelled): set barriers, place TP."""
    request, entry_price = position.request, position.entry_price
    assert entry_price is not None and position.quantity > 0
    take_profit, stop_loss = barrier_prices(
        position.side, entry_price, request.take_profit_pct, request.stop_loss_pct
    )
    active = evolve(
        position,
        status=PositionStatus.ACTIVE,
        opened_at_ms=time_ms,
        take_profit_price=take_profit,
        stop_loss_price=stop_loss,
        trailing_stop_price=None
        if request.trailing_stop_pct is None
        else trail_price(position.side, entry_price, request.trailing_stop_pct),
        expires_at_ms=time_ms + request.max_holding_ms,
        pending_exit=None,  # whatever stopped the entry is done with
    )
    events: list[Event] = [PositionOpened(bot=position.bot, time_ms=time_ms, position=active)]
    active, placed = _place_exit(
        active,
        OrderRole.TAKE_PROFIT,
        OrderType.LIMIT,
        time_ms,
        simulated=simulated,
        price=take_profit,
    )
    if position.pending_exit in (ExitReason.MANUAL, ExitReason.OPERATOR, ExitReason.ERROR):
        # closing was asked for while a partial entry was being cancelled: finish the job
        active, more = begin_exit(active, position.pending_exit, time_ms, simulated=simulated)
        placed += more
    return active, events + placed


def close(position: Position, reason: ExitReason, time_ms: int) -> Step:
    closed = evolve(
        position,
        status=PositionStatus.CLOSED,
        closed_at_ms=time_ms,
        exit_reason=reason,
        pending_exit=None,
    )
    return closed, [PositionClosed(bot=position.bot, time_ms=time_ms, position=closed)]


def apply_fill(
    position: Position,
    order: OrderState,
    price: float,
    quantity: float,
    fee: float,
    liquidity: Liquidity,
    time_ms: int,
    *,
    complete: bool,
    simulated: bool,
) -> Step:
    """One fill of one of the position's orders, and whatever it completes."""
    updated = order.filled(price, quantity, fee, time_ms, complete=complete)
    position = replace_order(position, updated)
    events: list[Event] = [
        OrderFilled(
            bot=position.bot,
            time_ms=time_ms,
            order=updated,
            position_seq=position.seq,
            price=price,
            quantity=quantity,
            fee=fee,
            liquidity=liquidity,
        )
    ]
    if not complete:
        return position, events
    if order.role is OrderRole.ENTRY:
        position, more = activate(position, time_ms, simulated=simulated)
    elif order.role is OrderRole.TAKE_PROFIT:
        position, more = close(position, ExitReason.TAKE_PROFIT, time_ms)
    else:
        position, more = close(position, position.pending_exit or ExitReason.ERROR, time_ms)
    return position, events + more


def begin_exit(position: Position, reason: ExitReason, time_ms: int, *, simulated: bool) -> Step:
    """Leave an active position at market for `reason` (stop, timeout, manual, error).

    The take-profit order holds the position's coins at the venue, so it must be gone
    before the market exit is sent: at once when simulated, after the venue confirms the
    cancel otherwise (see `cancel_confirmed`).
    """
    position = evolve(position, pending_exit=reason)
    take_profit = position.working_exit(OrderRole.TAKE_PROFIT)
    if take_profit is None:
        return _place_exit(
            position, exit_role(reason), OrderType.MARKET, time_ms, simulated=simulated
        )
    if not simulated:
        if take_profit.cancel_requested:
            return position, []
        asked = evolve(take_profit, cancel_requested=True, updated_at_ms=time_ms)
        event = OrderCancelRequested(
            bot=position.bot, time_ms=time_ms, order=asked, position_seq=position.seq, reason=reason
        )
        return replace_order(position, asked), [event]
    position, events = cancel_confirmed(position, take_profit, time_ms, simulated=True)
    return position, events


def request_entry_cancel(
    position: Position, reason: ExitReason, time_ms: int, *, simulated: bool
) -> Step:
    """Stop a pending entry (maker timeout, manual or error close). The first reason
    given stands: a later tick does not rename a cancel that is already on its way."""
    entry = position.entry
    if entry.cancel_requested:
        return position, []
    position = evolve(position, pending_exit=reason)
    if simulated:
        return cancel_confirmed(position, entry, time_ms, simulated=True)
    asked = evolve(entry, cancel_requested=True, updated_at_ms=time_ms)
    event = OrderCancelRequested(
        bot=position.bot, time_ms=time_ms, order=asked, position_seq=position.seq, reason=reason
    )
    return replace_order(position, asked), [event]


def cancel_confirmed(
    position: Position, order: OrderState, time_ms: int, *, simulated: bool
) -> Step:
    """The venue (or the simulation) has cancelled `order`; move the position on."""
    reason = position.pending_exit
    cancelled = evolve(order, status=OrderStatus.CANCELLED, updated_at_ms=time_ms)
    position = replace_order(position, cancelled)
    events: list[Event] = [
        OrderCancelled(
            bot=position.bot,
            time_ms=time_ms,
            order=cancelled,
            position_seq=position.seq,
            reason=reason or "cancelled by the venue",
        )
    ]
    if order.role is OrderRole.ENTRY:
        if cancelled.filled_quantity > 0:
            position, more = activate(position, time_ms, simulated=simulated)
        else:
            position, more = close(position, reason or ExitReason.MAKER_TIMEOUT, time_ms)
    elif order.role is OrderRole.TAKE_PROFIT and reason is not None:
        position, more = _place_exit(
            position, exit_role(reason), OrderType.MARKET, time_ms, simulated=simulated
        )
    elif order.role is OrderRole.TAKE_PROFIT and order.cancel_requested:
        # asked for without an exit: an operator moved the take-profit (orders/barriers.py)
        position, more = _place_exit(
            position, OrderRole.TAKE_PROFIT, OrderType.LIMIT, time_ms,
            simulated=simulated, price=position.take_profit_price,
        )  # fmt: skip
    else:
        message = f"{order.client_order_id} was cancelled by the venue; the position lacks it"
        more = [Anomaly(bot=position.bot, time_ms=time_ms, message=message)]
    return position, events + more


def venue_stop_taken(
    position: Position, take_profit: OrderState, stop_id: str, time_ms: int
) -> Step:
    """The stop-loss leg resting at the venue with `take_profit` (an OCO) was triggered:
    the venue expired the take-profit with it, and the stop becomes the position's
    stop-loss exit, whose fills (reported as any order's) close the position."""
    events: list[Event] = []
    if take_profit.is_working:
        expired = evolve(take_profit, status=OrderStatus.EXPIRED, updated_at_ms=time_ms)
        position = replace_order(position, expired)
        reason = "expired at the venue: its stop-loss leg was triggered"
        events.append(
            OrderCancelled(
                bot=position.bot,
                time_ms=time_ms,
                order=expired,
                position_seq=position.seq,
                reason=reason,
            )
        )
    stop = OrderState(
        client_order_id=stop_id,
        role=OrderRole.STOP_LOSS,
        side=_exit_side(position),
        order_type=OrderType.LIMIT,
        status=OrderStatus.OPEN,
        placed_at_ms=take_profit.placed_at_ms,
        updated_at_ms=time_ms,
        price=position.stop_loss_price,
        quantity=take_profit.quantity,
        reason="stop-loss resting at the venue",
    )
    position = evolve(position, exits=(*position.exits, stop), pending_exit=ExitReason.STOP_LOSS)
    return position, events


def rejected(position: Position, order: OrderState, message: str, time_ms: int) -> Step:
    """The venue refused `order`. A refused entry closes the position without a trade; a
    refused exit leaves the position active, so the next tick triggers the exit again."""
    refused = evolve(order, status=OrderStatus.REJECTED, updated_at_ms=time_ms)
    position = replace_order(position, refused)
    events: list[Event] = [
        OrderRejected(
            bot=position.bot,
            time_ms=time_ms,
            order=refused,
            position_seq=position.seq,
            message=message,
        )
    ]
    if order.role is OrderRole.ENTRY and refused.filled_quantity == 0:
        position, more = close(position, ExitReason.REJECTED, time_ms)
        return position, events + more
    if order.role is OrderRole.ENTRY:
        position, more = activate(position, time_ms, simulated=False)
        return position, events + more
    position = evolve(position, pending_exit=None)
    note = f"exit order {order.client_order_id} rejected: {message}"
    return position, [*events, Anomaly(bot=position.bot, time_ms=time_ms, message=note)]
