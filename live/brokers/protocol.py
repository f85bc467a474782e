"""The `Broker` seam: what the engine needs from a venue, and what a venue tells it back.

The engine owns the order state machine (`tradepipe.orders.PositionBook`); a broker only
carries orders to a venue and reports what happened to them. Reports go to one sink (the
engine), which applies each to the book of the bot named in the client order id, so a
broker never needs to know about bots, positions or the database.

Client order ids are the book's deterministic ids: placing an id the venue already holds is
a no-op, never a second order. That is what lets the engine re-send an order after a crash
without asking first whether the first send got through.

Implementations: `PaperBroker` (fills simulated against the live trade stream, the
default), `CcxtBroker` (Binance testnet and live through ccxt) and `RoutingBroker` (each
bot's orders to the venue of its mode). A real venue
that is unreachable raises `BrokerUnavailableError` from `place`/`cancel`/`open_orders`
(the engine retries); a venue that refuses an order reports `OrderRejectedReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from tradepipe.domain import Side, Trade
from tradepipe.enums import OrderRole, OrderStatus, OrderType
from tradepipe.orders import Liquidity, OrderState, Position

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerOrder",
    "BrokerReport",
    "BrokerUnavailableError",
    "OrderAcceptedReport",
    "OrderCancelledReport",
    "OrderFilledReport",
    "OrderRejectedReport",
    "ReportSink",
    "VenueFill",
]


class BrokerError(Exception):
    """A broker problem; the message names the order or the venue."""


class BrokerUnavailableError(BrokerError):
    """The venue could not be reached: the request may be retried as it is."""


# Order statuses that mean the venue has had the order on its book.
ACKNOWLEDGED = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """One order as a venue sees it. Exactly one of `quantity` (base currency) and
    `quote_quantity` (a market buy sized in quote currency) is set."""

    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: float | None
    quantity: float | None
    quote_quantity: float | None = None
    # The venue acknowledged this limit order before (it is sent again after a restart):
    # it has been resting on the book, so a simulated venue fills it at its limit when
    # traded through, as it would have without the restart, never at the price of the
    # first trade it sees (which would flatter a take-profit after a rally).
    resting: bool = False
    # A take-profit's position stop: a venue that can rests a stop-loss there beside it
    # (an OCO, live/brokers/protection.py); the paper broker ignores it.
    stop_price: float | None = None

    @classmethod
    def from_state(
        cls, symbol: str, order: OrderState, position: Position | None = None
    ) -> BrokerOrder:
        """What is left to do of `order` (its remaining quantity, after partial fills); a
        take-profit of `position` carries the position's stop price."""
        resting = order.order_type is OrderType.LIMIT and order.status in ACKNOWLEDGED
        stop = None
        if position is not None and order.role is OrderRole.TAKE_PROFIT:
            stop = position.stop_loss_price
        if order.quantity is not None:
            return cls(
                order.client_order_id,
                symbol,
                order.side,
                order.order_type,
                order.price,
                order.quantity - order.filled_quantity,
                resting=resting,
                stop_price=stop,
            )
        assert order.quote_quantity is not None  # a quote-sized market entry
        spent = order.filled_quantity * (order.average_price or 0.0)
        return cls(
            order.client_order_id,
            symbol,
            order.side,
            order.order_type,
            order.price,
            None,
            order.quote_quantity - spent,
        )


@dataclass(frozen=True, slots=True)
class OrderAcceptedReport:
    client_order_id: str
    time_ms: int
    exchange_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderFilledReport:
    """One execution. `fill_id` is the venue's trade id (unique per order), `fee` is in
    quote currency, `complete` says the order has nothing left to fill."""

    client_order_id: str
    time_ms: int
    price: float
    quantity: float
    fee: float
    liquidity: Liquidity
    fill_id: str
    complete: bool = True


@dataclass(frozen=True, slots=True)
class OrderCancelledReport:
    client_order_id: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class OrderRejectedReport:
    client_order_id: str
    time_ms: int
    message: str


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution as the venue lists it (reconciliation compares these with the
    database). `client_order_id` is None when the venue cannot say which order it was."""

    symbol: str
    client_order_id: str | None
    exchange_order_id: str
    fill_id: str
    price: float
    quantity: float
    time_ms: int


BrokerReport = OrderAcceptedReport | OrderFilledReport | OrderCancelledReport | OrderRejectedReport
ReportSink = Callable[[BrokerReport], None]


class Broker(Protocol):
    """A venue for orders. Reports may arrive during `place`/`cancel`/`on_trade` or later,
    from the venue's own connection; the sink must accept them at any time."""

    @property
    def name(self) -> str: ...

    def bind(self, sink: ReportSink) -> None:
        """Send every report to `sink` from now on."""
        ...

    async def place(self, order: BrokerOrder) -> None:
        """Send `order`; a client order id the venue already holds is not sent twice."""
        ...

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        """Ask the venue to cancel; the outcome comes as a report (cancelled, or the fill
        that beat the cancel)."""
        ...

    async def open_orders(self) -> list[BrokerOrder]:
        """Every order working at the venue, for reconciliation at start."""
        ...

    async def recent_fills(self, symbols: Iterable[str], since_ms: int) -> list[VenueFill]:
        """The venue's executions of `symbols` since `since_ms`, for reconciliation (a venue
        whose memory is the engine's own, like paper, has nothing to add: [])."""
        ...

    def on_trade(self, trade: Trade) -> None:
        """A public trade of the market. The paper broker fills against it; a real venue
        only keeps the last price (to check an order's notional before sending it)."""
        ...

    async def close(self) -> None: ...
