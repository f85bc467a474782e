"""The backtrader reference's trailing stops and strategy exits (see the adapter's docstring).

Functions of the adapter's `_Book`, kept apart so the order types the adapter maps stay in
one place and these two rules in another:
- `ratchet_trailing_stops`: after each bar, a position's trail follows the bar's best price
  by `tradepipe.orders.trailing`'s rule, and its Stop order's `info.stop_price` (what the
  broker matches by) moves with it when the trail is the tighter stop;
- `strategy_exit`: a strategy's `Exit` cancels the stop (its OCO group, take-profit and
  timeout, goes with it) and submits a Market sell the broker fills at the next open; a
  pending limit entry is cancelled instead, an unfilled entry with reason `strategy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from research.backtest._backtrader import bt
from research.backtest.records import UnfilledEntry
from tradepipe.enums import ExitReason, Side
from tradepipe.orders.trailing import tighter_stop, trail_price

if TYPE_CHECKING:
    from research.backtest.backtrader_adapter import _Book, _Slot

__all__ = ["ratchet_trailing_stops", "strategy_exit"]


def ratchet_trailing_stops(book: _Book, row: int) -> None:
    """Trailing stops after bar `row` closed."""
    start = int(book.history.start_ms[row])
    for slot in book.slots.values():
        pct = slot.request.trailing_stop_pct
        if pct is None or slot.leaving or slot.opened_at_ms is None:
            continue
        if slot.opened_at_ms > start:  # filled inside this bar: its high may predate the fill
            continue
        assert slot.trailing_stop is not None
        side = slot.request.side
        best = book.history.high[row] if side is Side.BUY else book.history.low[row]
        candidate = float(trail_price(side, float(best), pct))
        if tighter_stop(side, candidate, slot.trailing_stop):
            slot.trailing_stop = candidate
            book.invalidate()
            if tighter_stop(side, candidate, slot.stop_order.info.stop_price):
                slot.stop_order.info.stop_price = candidate


def strategy_exit(book: _Book, slot: _Slot, row: int) -> None:
    """A strategy's Exit of one position at bar `row`'s close."""
    book.invalidate()
    if slot.opened_at_ms is None:  # a pending limit entry: cancel it
        request = slot.request
        assert request.limit_price is not None
        del book.slots[slot.seq]
        book.strategy.cancel(slot.entry_order)
        book.unfilled.append(
            UnfilledEntry(
                placed_at_ms=slot.placed_at_ms,
                cancelled_at_ms=int(book.history.end_ms[row]),
                limit_price=request.limit_price,
                reason=ExitReason.STRATEGY.value,
            )
        )
        return
    if slot.leaving:
        return
    slot.leaving = True
    book.strategy.cancel(slot.stop_order)
    book.strategy.sell(
        data=book.strategy.datas[slot.feed],
        size=slot.quantity,
        exectype=bt.Order.Market,
        tradeid=slot.seq,
    )
