"""backtrader's BackBroker matching orders by tradepipe's candle fill model.

backtrader executes these fills: its order objects, its `_execute` (positions, cash,
commission, order notifications), its OCO groups and its `valid` expiry. Only the
matching (at what price, and in what order, orders trade against a bar) is replaced,
because backtrader's native matching differs from our rules in four places:

1. a resting limit order on a bar that gaps through it fills at the open in backtrader;
   in ours it fills at its own price (a resting bid is hit at its price). Only an order
   arriving with the bar (submitted at the previous close) that is already through the
   open is marketable: it fills at the open, as taker;
2. backtrader tries pending orders one at a time in submission order, each against the
   whole bar, so with a stop and a take-profit both touched the older one wins. We match
   in three phases (the open, then inside the bar, then the close), and within a phase
   exits before limits: timeout at the open (rule 4a), gap through the stop (4b), gap
   through the take-profit (4c), stop touched (4d: the stop wins a tie), take-profit
   touched (4e), timeout at the close (4f);
3. backtrader activates bracket children on the bar after the parent fills. Here an order
   submitted while a bar is being matched (the exits the adapter places the moment an
   entry fills: a one-triggers-OCO order, as exchanges offer) is matched in the remaining
   phases of that same bar (rule 5). One placed inside the bar (after an entry filled
   below the open) cannot fill as a limit on that bar, as the bar's high may have come
   before it existed; a stop can, as the prices below the entry came after it;
4. backtrader's `Close` orders execute at the close of the session end, or at the
   previous bar's close once past it. A `Close` order here is the holding timeout: with
   `info.deadline_ms` X it fills at the open of a bar starting at or after X (the data
   skipped the deadline), else at the close of the first bar ending at or after X.

Market orders (the adapter submits them at cheat-on-open, before the broker matches the
bar) fill at the bar's open, as taker, as they do natively under cheat-on-open.

Fees: `RateCommission` charges price * size * rate (that order of operations, as the
kernel's `FeeSchedule.fee(price * quantity)`, so fees agree to the last bit), with the
maker or taker rate of the fill in hand: the broker sets the rate just before executing.

Times are compared in exact milliseconds from the feed's `start_ms` and `end_ms` lines,
except maker-order expiry, which is backtrader's own `valid` check on its float bar
datetimes (bars are stamped by their end; distinct milliseconds stay ordered in that
representation, whose resolution is about 10 microseconds).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from research.backtest._backtrader import bt
from tradepipe.orders import FeeSchedule, Liquidity

__all__ = ["AT_CLOSE", "AT_OPEN", "INSIDE", "FillModelBroker", "RateCommission"]

# Matching phases of a bar, and where a fill was stamped (its `order.info.fill_at`).
AT_OPEN, INSIDE, AT_CLOSE = 0, 1, 2
_PHASES = (AT_OPEN, INSIDE, AT_CLOSE)


class RateCommission(bt.CommInfoBase):  # type: ignore[misc]
    """A spot commission of `rate` * notional; the broker sets `rate` per fill."""

    params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_PERC), ("percabs", True))

    def __init__(self) -> None:
        super().__init__()
        self.rate = 0.0

    def _getcommission(self, size: float, price: float, pseudoexec: bool) -> float:
        return float(price * abs(size) * self.rate)


def _precedence(order: Any) -> int:
    """Within a phase: market and timeout exits, then stops, then limits (rule 4)."""
    if order.exectype in (bt.Order.Market, bt.Order.Close):
        return 0
    return 1 if order.exectype == bt.Order.Stop else 2


class FillModelBroker(bt.brokers.BackBroker):  # type: ignore[misc]
    """A BackBroker for data feeds of the same bars carrying `start_ms`, `end_ms` and `row`
    lines (one feed per position slot: see the adapter)."""

    pending: deque[Any]  # BackBroker's queue of working orders

    def __init__(self, fees: FeeSchedule) -> None:
        super().__init__()
        self.fees = fees
        self.commission = RateCommission()
        self.addcommissioninfo(self.commission)
        # called synchronously with each completed order, while the bar is being matched
        self.on_execution: Callable[[Any], None] | None = None
        self._phase: int | None = None  # None between bars
        self._row = -1

    def submit(self, order: Any, check: bool = True) -> Any:
        info = order.info
        info.arrives = self._phase is None  # submitted at a close or before an open
        info.limit_from_row = self._row + 1 if self._phase == INSIDE else -1
        return super().submit(order, check)

    def next(self) -> None:
        while self._toactivate:
            self._toactivate.popleft().activate()
        if self.p.checksubmit:
            self.check_submitted()
        self._row = int(self.cerebro.datas[0].row[0])  # every feed carries the same bars
        for order in list(self.pending):
            if order.expire():  # backtrader's own `valid` check: the maker-order timeout
                self.pending.remove(order)
                self.notify(order)
                self._ococheck(order)
                self._bracketize(order, cancel=True)
        for phase in _PHASES:
            self._phase = phase
            tried: set[int] = set()
            while batch := [o for o in self.pending if o.ref not in tried]:
                for order in sorted(batch, key=_precedence):
                    tried.add(order.ref)
                    if order.alive() and order.active():
                        data = order.data
                        self._match(
                            order,
                            phase,
                            data.open[0],
                            data.high[0],
                            data.low[0],
                            data.close[0],
                            data.start_ms[0],
                            data.end_ms[0],
                        )
                self.pending = deque(o for o in self.pending if o.alive())
        self._phase = None
        for order in self.pending:
            order.info.arrives = False  # it has now been on the book through a bar
        self._get_value()

    def _match(
        self,
        order: Any,
        phase: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        start_ms: float,
        end_ms: float,
    ) -> None:
        buy = order.isbuy()
        kind = order.exectype
        if kind == bt.Order.Market:
            if phase == AT_OPEN:
                self._fill(order, open_, AT_OPEN, Liquidity.TAKER)
        elif kind == bt.Order.Close:
            deadline = order.info.deadline_ms
            if phase == AT_OPEN and start_ms >= deadline:
                self._fill(order, open_, AT_OPEN, Liquidity.TAKER)
            elif phase == AT_CLOSE and end_ms >= deadline:
                self._fill(order, close, AT_CLOSE, Liquidity.TAKER)
        elif kind == bt.Order.Stop:
            stop = order.info.stop_price  # the adapter moves it as a trailing stop ratchets
            if phase == AT_OPEN and (open_ >= stop if buy else open_ <= stop):
                self._fill(order, open_, AT_OPEN, Liquidity.TAKER)
            elif phase == INSIDE and (high >= stop if buy else low <= stop):
                self._fill(order, stop, INSIDE, Liquidity.TAKER)
        elif kind == bt.Order.Limit:
            limit = order.created.price
            if phase == AT_OPEN and (open_ <= limit if buy else open_ >= limit):
                if order.info.arrives:  # marketable on arrival: takes the open
                    self._fill(order, open_, AT_OPEN, Liquidity.TAKER)
                else:  # resting: hit at its own price by the gap
                    self._fill(order, limit, AT_OPEN, Liquidity.MAKER)
            elif (
                phase == INSIDE
                and self._row >= order.info.limit_from_row
                and (low <= limit if buy else high >= limit)
            ):
                self._fill(order, limit, INSIDE, Liquidity.MAKER)
        else:
            raise ValueError(f"order type {order.getordername()} is outside the fill model")

    def _fill(self, order: Any, price: float, fill_at: int, liquidity: Liquidity) -> None:
        order.addinfo(fill_at=fill_at, liquidity=liquidity, row=self._row)
        self.commission.rate = self.fees.rate(liquidity)
        # off the book while it executes, as in BackBroker.next: the OCO check that follows
        # cancels every order of the group still pending, which must not include this one
        self.pending.remove(order)
        self._execute(order, ago=0, price=price)
        if order.alive():
            self.pending.append(order)
        if order.status == bt.Order.Completed:
            self._bracketize(order)
            if self.on_execution is not None:
                self.on_execution(order)
