"""Brokers: the `Broker` seam between the engine's order state machine and a venue; the
paper broker that fills against the live trade stream (the default venue); the router
that sends each bot's orders to its venue. The ccxt broker (Binance testnet and live) is
`live.brokers.ccxt_broker.CcxtBroker`, imported only where used: ccxt is slow to import."""

from live.brokers.paper import PaperBroker, PaperConfig
from live.brokers.protocol import (
    Broker,
    BrokerError,
    BrokerOrder,
    BrokerReport,
    BrokerUnavailableError,
    OrderAcceptedReport,
    OrderCancelledReport,
    OrderFilledReport,
    OrderRejectedReport,
    ReportSink,
    VenueFill,
)
from live.brokers.routing import PAPER, RoutingBroker, Venue, VenueError

__all__ = [
    "PAPER",
    "Broker",
    "BrokerError",
    "BrokerOrder",
    "BrokerReport",
    "BrokerUnavailableError",
    "OrderAcceptedReport",
    "OrderCancelledReport",
    "OrderFilledReport",
    "OrderRejectedReport",
    "PaperBroker",
    "PaperConfig",
    "ReportSink",
    "RoutingBroker",
    "Venue",
    "VenueError",
    "VenueFill",
]
