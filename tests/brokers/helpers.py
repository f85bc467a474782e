"""Helpers of the broker and exchange tests: the exchange simulator on loopback with one
funded account, a ccxt broker pointed at it with fast retries, the reports it sends, and
public trades to move the simulated market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from live.brokers import BrokerReport
from live.brokers.ccxt_broker import CcxtBroker
from live.brokers.exchange import ExchangeConfig
from live.replay.exchange import ExchangeSimulator, MarketRules, SimulatedAccount
from tests import support
from tradepipe.domain import Side, Trade
from tradepipe.retries import Backoff

API_KEY = "simkey_0123456789abcdef"
API_SECRET = "simsecret_fedcba9876543210"
SYMBOL = "BTCUSDT"
START_MS = 1_704_067_200_000


class Aio(support.Aio):
    RUN_TIMEOUT = 30.0
    EVENTUALLY_TIMEOUT = 5.0


def account(usdt: float = 1_000.0, **rules: Any) -> SimulatedAccount:
    """One account with `usdt` to spend on BTCUSDT (tick 0.01, lot 0.00001, min 5 USDT)."""
    markets = {SYMBOL: MarketRules(SYMBOL, **{k: Decimal(str(v)) for k, v in rules.items()})}
    funded = SimulatedAccount(markets)
    funded.deposit("USDT", usdt)
    return funded


def exchange_config(url: str, **changes: Any) -> ExchangeConfig:
    values: dict[str, Any] = {
        "name": "testnet:SIM",
        "sandbox": True,
        "rest_url": url,
        "timeout_seconds": 1.0,
        "poll_seconds": 0.05,
        "rate_limit_ms": 0.0,
        "retry": Backoff(initial_seconds=0.01, maximum_seconds=0.05),
    }
    values.update(changes)
    return ExchangeConfig(**values)


def trade(price: float, index: int = 0, symbol: str = SYMBOL) -> Trade:
    return Trade(symbol, START_MS + index * 1_000, price, 0.5, Side.SELL, index + 1)


@dataclass
class Venue:
    exchange: ExchangeSimulator
    broker: CcxtBroker
    reports: list[BrokerReport] = field(default_factory=list)

    def market(self, price: float, index: int = 0) -> None:
        """A public trade: the exchange matches against it, the broker keeps its price."""
        self.exchange.on_trade(trade(price, index))
        self.broker.on_trade(trade(price, index))

    def of(self, kind: type[Any], order_id: str | None = None) -> list[Any]:
        return [
            r for r in self.reports if isinstance(r, kind) and order_id in (None, r.client_order_id)
        ]

    def new_broker(self, **changes: Any) -> CcxtBroker:
        """Another broker on the same account (an engine restarted)."""
        broker = CcxtBroker(
            exchange_config(self.exchange.url, **changes), api_key=API_KEY, secret=API_SECRET
        )
        broker.bind(self.reports.append)
        return broker


@asynccontextmanager
async def venue(funded: SimulatedAccount | None = None, **changes: Any) -> AsyncIterator[Venue]:
    async with ExchangeSimulator(funded or account(), {API_KEY: API_SECRET}) as exchange:
        broker = CcxtBroker(
            exchange_config(exchange.url, **changes), api_key=API_KEY, secret=API_SECRET, seed=1
        )
        running = Venue(exchange, broker)
        broker.bind(running.reports.append)
        try:
            yield running
        finally:
            await broker.close()
