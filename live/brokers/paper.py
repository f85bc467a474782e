"""Paper trading: orders filled against the live public trade stream, never sent anywhere.

Fill rules, per public trade (in the order the feed delivers them), for each working order
of that symbol in placement order:

- **market** orders fill at the first trade the broker sees after the order arrived, at
  that trade's price moved `slippage_bps` against the order (a buy pays more, a sell gets
  less; the fill model's rule 6, `market_fill_price`), as taker. A market buy sized in
  quote currency gets `quote / fill price` coins.
- **limit** orders, on the first trade after arrival: if that trade is already at or
  through the limit (at or below it for a buy, at or above for a sell) the order is
  marketable and fills at the trade's price, as taker; otherwise it rests, and later
  fills completely at its own limit price, as maker, on the first trade printed at or
  through the limit. This is the live reading of the candle fill model's rule 3
  (`tradepipe.orders.rules`): marketable on arrival, else filled at the limit when traded.
- fees come from the `FeeSchedule` (maker or taker rate of the notional), in quote currency.
  The defaults of both are the kernel's `PAPER_COSTS` (tradepipe/costs.py), the costs the
  promotion gates judge paper bots at.

Fills are complete (no partial fills): public trades do not say how much of the book a
resting order would have taken, and a paper fill must never be better than reality allows
in a way that flatters a strategy. Fill ids are synthetic and deterministic
(`paper:<client order id>:1`), so the database's unique (order, fill id) holds across
restarts.

The broker keeps its working orders in memory only: after a restart the engine re-registers
every working order from the restored books (the books are the truth in paper mode). A
limit order the broker had acknowledged before the restart comes back `resting`: the same
rules as before the restart apply, so a take-profit the market rallied through while the
engine was down fills at its limit, as maker, not at the first trade price it sees.
(An order acknowledged but not yet traded against before the restart is counted resting
too: the one difference, always at the less favourable price.)
Orders placed again under an id the broker already holds are ignored, as a venue refuses a
duplicate client order id.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from live.brokers.protocol import (
    BrokerOrder,
    BrokerReport,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    OrderRejectedReport,
    ReportSink,
    VenueFill,
)
from tradepipe.costs import PAPER_COSTS
from tradepipe.domain import Side, Trade
from tradepipe.enums import OrderType
from tradepipe.orders import FeeSchedule, Liquidity, market_fill_price

__all__ = ["PaperBroker", "PaperConfig"]

log = logging.getLogger(__name__)
DONE_MEMORY = 100_000


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """`slippage_bps`: adverse move of market fills in basis points (2.0 is 0.02 %)."""

    slippage_bps: float = PAPER_COSTS.slippage_bps
    fees: FeeSchedule = field(default_factory=lambda: PAPER_COSTS.fees)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slippage_bps) and 0 <= self.slippage_bps < 10_000):
            raise ValueError(f"paper slippage_bps must be in [0, 10000): {self.slippage_bps}")


@dataclass(slots=True)
class _Working:
    order: BrokerOrder
    resting: bool = False  # has seen one trade without being marketable


class PaperBroker:
    """A `Broker` that simulates fills from public trades. `clock` gives the market time
    (ms) stamped on acknowledgements and cancels; wall time when it has none yet."""

    name = "paper"

    def __init__(
        self, config: PaperConfig | None = None, *, clock: Callable[[], int | None] | None = None
    ) -> None:
        self.config = config or PaperConfig()
        self._clock = clock
        self._sink: ReportSink | None = None
        self._working: dict[str, _Working] = {}
        self._by_symbol: dict[str, dict[str, _Working]] = {}
        self._done: OrderedDict[str, None] = OrderedDict()  # finished ids, most recent
        self.fills = 0

    # -- the Broker protocol ---------------------------------------------------------------

    def bind(self, sink: ReportSink) -> None:
        self._sink = sink

    async def place(self, order: BrokerOrder) -> None:
        self.submit(order)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        self.withdraw(symbol, client_order_id)

    def submit(self, order: BrokerOrder) -> None:
        """`place`, synchronously (the paper venue awaits nothing): the engine's shadow
        books (live/engine/shadow.py) drive a private paper venue from inside a step."""
        order_id = order.client_order_id
        if order_id in self._working or order_id in self._done:
            log.debug("paper: duplicate order %s ignored", order_id, extra={"order": order_id})
            return
        problem = _invalid(order)
        if problem is not None:
            self._finish(order_id)
            self._report(OrderRejectedReport(order_id, self._now(), problem))
            return
        working = _Working(order, resting=order.resting)
        self._working[order_id] = working
        self._by_symbol.setdefault(order.symbol, {})[order_id] = working
        self._report(OrderAcceptedReport(order_id, self._now(), f"paper-{order_id}"))

    def withdraw(self, symbol: str, client_order_id: str) -> None:
        """`cancel`, synchronously."""
        working = self._working.pop(client_order_id, None)
        if working is not None:
            self._by_symbol.get(working.order.symbol, {}).pop(client_order_id, None)
            self._finish(client_order_id)
        elif client_order_id in self._done:
            return  # filled (or cancelled) before the cancel arrived: that report stands
        # an order this venue never held is not working here: say so as a cancel
        self._report(OrderCancelledReport(client_order_id, self._now()))

    async def open_orders(self) -> list[BrokerOrder]:
        return [working.order for working in self._working.values()]

    async def recent_fills(self, symbols: Iterable[str], since_ms: int) -> list[VenueFill]:
        return []  # every paper fill is the engine's own report: nothing to reconcile

    def on_trade(self, trade: Trade) -> None:
        orders = self._by_symbol.get(trade.symbol)
        if not orders:
            return
        for order_id, working in list(orders.items()):
            fill = self._match(working, trade)
            if fill is None:
                continue
            price, liquidity = fill
            del orders[order_id]
            del self._working[order_id]
            self._finish(order_id)
            self._report(self._filled(working.order, price, liquidity, trade.time_ms))

    async def close(self) -> None:
        self._sink = None

    # -- matching --------------------------------------------------------------------------

    def _match(self, working: _Working, trade: Trade) -> tuple[float, Liquidity] | None:
        order = working.order
        buy = order.side is Side.BUY
        if order.order_type is OrderType.MARKET:
            price = market_fill_price(order.side, trade.price, self.config.slippage_bps)
            return price, Liquidity.TAKER
        assert order.price is not None
        through = trade.price <= order.price if buy else trade.price >= order.price
        if not working.resting:
            working.resting = True
            if through:
                return trade.price, Liquidity.TAKER
            return None
        return (order.price, Liquidity.MAKER) if through else None

    def _filled(
        self, order: BrokerOrder, price: float, liquidity: Liquidity, time_ms: int
    ) -> OrderFilledReport:
        if order.quantity is not None:
            quantity = order.quantity
        else:
            assert order.quote_quantity is not None
            quantity = order.quote_quantity / price
        self.fills += 1
        return OrderFilledReport(
            client_order_id=order.client_order_id,
            time_ms=time_ms,
            price=price,
            quantity=quantity,
            fee=self.config.fees.fee(price * quantity, liquidity),
            liquidity=liquidity,
            fill_id=f"paper:{order.client_order_id}:1",
        )

    # -- plumbing --------------------------------------------------------------------------

    def _finish(self, order_id: str) -> None:
        """Remember a finished id (to ignore it if placed again), within a bounded memory:
        the engine never re-sends a finished order, this only guards against a bug."""
        self._done[order_id] = None
        if len(self._done) > DONE_MEMORY:
            self._done.popitem(last=False)

    def _now(self) -> int:
        market = self._clock() if self._clock is not None else None
        return market if market is not None else time.time_ns() // 1_000_000

    def _report(self, report: BrokerReport) -> None:
        if self._sink is None:
            log.warning("paper: report %s dropped, no sink bound", report)
            return
        self._sink(report)


def _invalid(order: BrokerOrder) -> str | None:
    """Why a venue would refuse the order outright, or None."""
    sizes = [size for size in (order.quantity, order.quote_quantity) if size is not None]
    if len(sizes) != 1 or not (math.isfinite(sizes[0]) and sizes[0] > 0):
        return f"order {order.client_order_id}: needs exactly one positive size"
    if order.order_type is OrderType.LIMIT and not (
        order.price is not None and math.isfinite(order.price) and order.price > 0
    ):
        return f"limit order {order.client_order_id}: needs a positive price"
    if order.order_type is OrderType.LIMIT and order.quantity is None:
        return f"limit order {order.client_order_id}: needs a base quantity"
    return None
