"""Brokers: the `Broker` seam between the engine's order state machine and a venue, and
the paper broker that fills against the live trade stream (the default venue)."""

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
)

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
    "PaperBroker",
    "PaperConfig",
    "ReportSink",
]
