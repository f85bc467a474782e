"""Each bot's orders to the venue of its mode: one `Broker` in front of several.

The engine has one broker seam; bots do not all trade at one venue (paper by default,
Binance testnet or live when a bot opts in, each with its own credential set). The bot is
named in every client order id (`tradepipe.orders.client_order_id`), so the router finds
the bot of an order, asks `venue_of(bot)` where that bot trades, and hands the order to
that venue's broker, connected on first use (`connect`) and kept for the engine's life.
A venue that cannot be connected (a credential missing, live trading not allowed) refuses
the order with the reason, as a venue would: the engine records a rejection, never a crash.

Reports from every venue go to the one sink; a rejection also becomes an engine event
(`on_event`), so an operator hears of the exchange's reason without reading the orders.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from live.brokers.protocol import (
    Broker,
    BrokerError,
    BrokerOrder,
    BrokerReport,
    OrderCancelledReport,
    OrderRejectedReport,
    ReportSink,
    VenueFill,
)
from tradepipe.domain import Trade
from tradepipe.enums import BotMode
from tradepipe.orders import parse_client_order_id

__all__ = ["PAPER", "RoutingBroker", "Venue", "VenueError"]

log = logging.getLogger(__name__)

EventSink = Callable[[str, str, str | None, dict[str, object]], None]


class VenueError(BrokerError):
    """A venue that cannot be used as configured; the message says what to set."""


@dataclass(frozen=True, slots=True)
class Venue:
    """Where a bot trades: paper, or an exchange mode with a named credential set."""

    mode: BotMode
    credentials: str | None = None

    @property
    def name(self) -> str:
        return "paper" if self.mode is BotMode.PAPER else f"{self.mode.value}:{self.credentials}"


PAPER = Venue(BotMode.PAPER)


class RoutingBroker:
    """A `Broker` that routes by bot. `venue_of(bot)` (None: a bot it does not know, whose
    orders go to paper), `venues()` every venue in use now (for reconciliation)."""

    def __init__(
        self,
        paper: Broker,
        *,
        venue_of: Callable[[str], Venue | None],
        venues: Callable[[], Iterable[Venue]],
        connect: Callable[[Venue], Broker],
        on_event: EventSink | None = None,
    ) -> None:
        self.paper = paper
        self._venue_of = venue_of
        self._venues = venues
        self._connect = connect
        self._on_event = on_event
        self._connected: dict[Venue, Broker] = {}
        self._sink: ReportSink | None = None

    @property
    def name(self) -> str:
        return "+".join(["paper", *sorted(venue.name for venue in self._connected)])

    @property
    def connected(self) -> dict[Venue, Broker]:
        return dict(self._connected)

    def bind(self, sink: ReportSink) -> None:
        self._sink = sink
        self.paper.bind(self._report)
        for broker in self._connected.values():
            broker.bind(self._report)

    async def place(self, order: BrokerOrder) -> None:
        try:
            broker = self.broker_for(order.client_order_id)
        except VenueError as error:
            self._report(OrderRejectedReport(order.client_order_id, _now(), str(error)))
            return
        await broker.place(order)

    async def cancel(self, symbol: str, client_order_id: str) -> None:
        try:
            broker = self.broker_for(client_order_id)
        except VenueError as error:
            # cannot reach its venue: the order stays where it is; say so loudly
            self._event("venue_error", f"cannot cancel {client_order_id}: {error}", None)
            self._report(OrderCancelledReport(client_order_id, _now()))
            return
        await broker.cancel(symbol, client_order_id)

    async def open_orders(self) -> list[BrokerOrder]:
        orders = list(await self.paper.open_orders())
        for venue, broker in self._in_use():
            try:
                orders.extend(await broker.open_orders())
            except BrokerError as error:  # the others still reconcile; this one is named
                self._event("venue_unavailable", f"venue {venue.name}: open orders: {error}", None)
        return orders

    async def recent_fills(self, symbols: Iterable[str], since_ms: int) -> list[VenueFill]:
        wanted = sorted(set(symbols))
        fills = list(await self.paper.recent_fills(wanted, since_ms))
        for venue, broker in self._in_use():
            try:
                fills.extend(await broker.recent_fills(wanted, since_ms))
            except BrokerError as error:
                self._event("venue_unavailable", f"venue {venue.name}: fills: {error}", None)
        return fills

    def on_trade(self, trade: Trade) -> None:
        self.paper.on_trade(trade)
        for broker in self._connected.values():
            broker.on_trade(trade)

    async def close(self) -> None:
        await self.paper.close()
        for broker in self._connected.values():
            await broker.close()
        self._connected.clear()

    # -- routing ---------------------------------------------------------------------------

    def broker_for(self, client_order_id: str) -> Broker:
        parsed = parse_client_order_id(client_order_id)
        venue = self._venue_of(parsed[0]) if parsed is not None else None
        return self.paper if venue is None or venue == PAPER else self._broker(venue)

    def _broker(self, venue: Venue) -> Broker:
        broker = self._connected.get(venue)
        if broker is None:
            broker = self._connect(venue)  # VenueError: not usable as configured
            broker.bind(self._report)
            self._connected[venue] = broker
            log.info("venue %s connected", venue.name, extra={"venue": venue.name})
        return broker

    def _in_use(self) -> list[tuple[Venue, Broker]]:
        """The brokers of every venue in use, connecting those not yet connected; a venue
        that cannot be connected is reported and left out."""
        brokers = []
        for venue in sorted(set(self._venues()) - {PAPER}, key=lambda v: v.name):
            try:
                brokers.append((venue, self._broker(venue)))
            except VenueError as error:
                self._event("venue_error", f"venue {venue.name}: {error}", None)
        return brokers

    def _report(self, report: BrokerReport) -> None:
        if isinstance(report, OrderRejectedReport):
            parsed = parse_client_order_id(report.client_order_id)
            self._event(
                "order_rejected",
                f"order {report.client_order_id} rejected: {report.message}",
                parsed[0] if parsed else None,
            )
        if self._sink is None:
            log.warning("router: report %s dropped, no sink bound", report)
            return
        self._sink(report)

    def _event(self, kind: str, message: str, bot: str | None) -> None:
        if self._on_event is not None:
            self._on_event(kind, message, bot, {})
        else:
            log.warning("%s: %s", kind, message)


def _now() -> int:
    return time.time_ns() // 1_000_000
