"""Order round trips through the ccxt broker against the exchange simulator on loopback.

Measured: `CcxtBroker.place` of a market entry until its fill is reported, end to end
(the broker's look-up by client order id, the balance check, ccxt's signing and parsing,
the simulator's checks and matching, the trade query), one order at a time, with ccxt's
rate limiter off. Reference: the bare signed `POST /api/v3/order` with aiohttp and hmac,
the floor of any client speaking this protocol. The ratio is the price of idempotence
(three more requests per order) and of ccxt; on Binance the network's round trip (tens
of milliseconds) dominates both.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from urllib.parse import urlencode

import aiohttp

from benchmarks.harness import Measurement, report
from live.brokers import BrokerOrder, OrderFilledReport
from live.brokers.ccxt_broker import CcxtBroker
from live.brokers.exchange import ExchangeConfig
from live.replay.exchange import ExchangeSimulator, MarketRules, SimulatedAccount
from tradepipe.domain import Side, Trade
from tradepipe.enums import OrderType

ORDERS = 200
KEY, SECRET = "bench_key_0123456789", "bench_secret_0123456789"


def _account() -> SimulatedAccount:
    account = SimulatedAccount({"BTCUSDT": MarketRules("BTCUSDT")})
    account.deposit("USDT", 10_000_000)
    account.on_trade(Trade("BTCUSDT", 1_704_067_200_000, 50_000.0, 1.0, Side.SELL, 1))
    return account


async def _through_broker() -> float:
    async with ExchangeSimulator(_account(), {KEY: SECRET}) as exchange:
        config = ExchangeConfig("testnet:BENCH", sandbox=True, rest_url=exchange.url,
                                rate_limit_ms=0.0, poll_seconds=60.0)  # fmt: skip
        broker = CcxtBroker(config, api_key=KEY, secret=SECRET)
        fills: list[OrderFilledReport] = []
        broker.bind(lambda r: fills.append(r) if isinstance(r, OrderFilledReport) else None)
        broker.on_trade(Trade("BTCUSDT", 1_704_067_200_000, 50_000.0, 1.0, Side.SELL, 1))
        try:
            warm = BrokerOrder("warm-1-en", "BTCUSDT", Side.BUY, OrderType.MARKET, None, None, 20)
            await broker.place(warm)  # markets loaded, connection open
            started = time.perf_counter()
            for seq in range(ORDERS):
                order = BrokerOrder(
                    f"bench-{seq}-en", "BTCUSDT", Side.BUY, OrderType.MARKET, None, None, 20.0
                )
                await broker.place(order)
            elapsed = time.perf_counter() - started
        finally:
            await broker.close()
        assert len(fills) == ORDERS + 1, len(fills)
        return elapsed


async def _bare_requests() -> float:
    async with (
        ExchangeSimulator(_account(), {KEY: SECRET}) as exchange,
        aiohttp.ClientSession() as session,
    ):
        started = time.perf_counter()
        for seq in range(ORDERS):
            query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                               "quoteOrderQty": "20", "newClientOrderId": f"bare-{seq}-en",
                               "timestamp": int(time.time() * 1000)})  # fmt: skip
            signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
            async with session.post(
                f"{exchange.url}/api/v3/order",
                data=f"{query}&signature={signature}",
                headers={"X-MBX-APIKEY": KEY,
                         "Content-Type": "application/x-www-form-urlencoded"},
            ) as response:  # fmt: skip
                assert response.status == 200, await response.text()
                await response.read()
        return time.perf_counter() - started


def run() -> None:
    broker = min(asyncio.run(_through_broker()) for _ in range(3))
    bare = min(asyncio.run(_bare_requests()) for _ in range(3))
    report(
        f"{ORDERS} market entries placed and filled, one at a time, on loopback",
        Measurement("ccxt broker (look-up, balance, place, fills)", broker, ORDERS, "orders"),
        Measurement("bare signed POST /api/v3/order (aiohttp)", bare, ORDERS, "orders"),
    )


if __name__ == "__main__":
    run()
