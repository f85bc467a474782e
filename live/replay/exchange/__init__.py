"""A local Binance-compatible spot exchange: signed REST on loopback over a simulated
account that matches orders against the replay market's trades, with fault injection.
The ccxt broker's tests (and testnet-style runs without the network) trade against it."""

from live.replay.exchange.account import (
    BinanceError,
    MarketRules,
    SimOrder,
    SimTrade,
    SimulatedAccount,
)
from live.replay.exchange.order_lists import SimOrderList
from live.replay.exchange.server import ExchangeSimulator, Fault, FaultKind, RequestRecord

__all__ = [
    "BinanceError",
    "ExchangeSimulator",
    "Fault",
    "FaultKind",
    "MarketRules",
    "RequestRecord",
    "SimOrder",
    "SimOrderList",
    "SimTrade",
    "SimulatedAccount",
]
