"""The simulated venue: one closed candle applied to one position, by the fill model.

Backtests (and a paper engine that wants backtest-identical fills) feed candles here via
`PositionBook.on_candle`. Every decision about fills is delegated to
`tradepipe.orders.rules`; this module only sequences the resulting transitions.
"""

from __future__ import annotations

from typing import NamedTuple

from tradepipe.enums import ExitReason, OrderRole, OrderType, PositionStatus
from tradepipe.orders import transitions
from tradepipe.orders.evolve import evolve
from tradepipe.orders.rules import Bar, limit_entry_fill, market_fill_price, resolve_candle
from tradepipe.orders.trailing import effective_stop, ratchet
from tradepipe.orders.types import FeeSchedule, Liquidity, Position


def step_candle(
    position: Position, bar: Bar, fees: FeeSchedule, slippage_bps: float = 0.0
) -> transitions.Step:
    """Apply one closed candle to an open position (rules 1 to 6 of the fill model)."""
    costs = _Costs(fees, slippage_bps)
    if position.status is PositionStatus.PENDING:
        return _step_pending(position, bar, costs)
    return _step_active(position, bar, costs, take_profit_eligible=True)


class _Costs(NamedTuple):
    fees: FeeSchedule
    slippage_bps: float


def _step_pending(position: Position, bar: Bar, costs: _Costs) -> transitions.Step:
    entry = position.entry
    if bar.start_ms < entry.placed_at_ms:
        return position, []  # the candle began before the order existed (rule 1)
    if entry.order_type is OrderType.MARKET:
        price = market_fill_price(entry.side, bar.open, costs.slippage_bps)
        at_open, liquidity = True, Liquidity.TAKER
        quantity = position.request.capital / price
    else:
        assert entry.price is not None and entry.quantity is not None
        if entry.expires_at_ms is not None and bar.end_ms > entry.expires_at_ms:
            return transitions.request_entry_cancel(
                position, ExitReason.MAKER_TIMEOUT, entry.expires_at_ms, simulated=True
            )
        fill = limit_entry_fill(position.side, entry.price, bar, resting=entry.resting)
        if fill is None:
            return transitions.replace_order(position, evolve(entry, resting=True)), []
        price, at_open, liquidity = fill
        quantity = entry.quantity
    time_ms = bar.start_ms if at_open else bar.end_ms
    position, events = transitions.apply_fill(
        position,
        entry,
        price,
        quantity,
        costs.fees.fee(price * quantity, liquidity),
        liquidity,
        time_ms,
        complete=True,
        simulated=True,
    )
    position, more = _step_active(position, bar, costs, take_profit_eligible=at_open)
    return position, events + more


def _step_active(
    position: Position, bar: Bar, costs: _Costs, *, take_profit_eligible: bool
) -> transitions.Step:
    market_exit = next(
        (o for o in position.exits if o.is_working and o.order_type is OrderType.MARKET), None
    )
    if market_exit is not None:
        if bar.start_ms < market_exit.placed_at_ms:
            return position, []
        return _fill_exit(position, market_exit.client_order_id, bar.open, bar.start_ms, costs)
    assert position.take_profit_price is not None and position.stop_loss_price is not None
    assert position.expires_at_ms is not None
    stop, stop_reason = effective_stop(position)
    exit_fill = resolve_candle(
        position.side,
        position.take_profit_price,
        stop,
        position.expires_at_ms,
        bar,
        take_profit_eligible=take_profit_eligible,
        stop_reason=stop_reason,
    )
    if exit_fill is None:
        return ratchet(position, bar), []
    reason, price, time_ms = exit_fill
    if reason is ExitReason.TAKE_PROFIT:
        take_profit = position.working_exit(OrderRole.TAKE_PROFIT)
        assert take_profit is not None
        return _fill_exit(position, take_profit.client_order_id, price, time_ms, costs)
    position, events = transitions.begin_exit(position, reason, time_ms, simulated=True)
    placed = position.exits[-1]
    position, more = _fill_exit(position, placed.client_order_id, price, time_ms, costs)
    return position, events + more


def _fill_exit(
    position: Position, order_id: str, price: float, time_ms: int, costs: _Costs
) -> transitions.Step:
    order = position.order(order_id)
    assert order is not None and order.quantity is not None
    liquidity = Liquidity.MAKER if order.order_type is OrderType.LIMIT else Liquidity.TAKER
    if order.order_type is OrderType.MARKET:
        price = market_fill_price(order.side, price, costs.slippage_bps)
    quantity = order.quantity - order.filled_quantity
    return transitions.apply_fill(
        position,
        order,
        price,
        quantity,
        costs.fees.fee(price * quantity, liquidity),
        liquidity,
        time_ms,
        complete=True,
        simulated=True,
    )
