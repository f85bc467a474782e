"""The exchange simulator's protocol, spoken by hand (aiohttp and hmac, no ccxt): signed
requests checked as Binance checks them, Binance's error codes, the filters, balances,
matching against the market it is fed (the replay server's trades), and fault injection."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from live.replay import ReplayServer, SyntheticSource
from live.replay.exchange import ExchangeSimulator, Fault, FaultKind
from tests.brokers.helpers import API_KEY, API_SECRET, SYMBOL, Aio, account, trade

START_MS = 1_704_067_200_000


@pytest.fixture
def aio() -> Aio:
    return Aio()


@dataclass
class Client:
    session: aiohttp.ClientSession
    url: str

    async def public(self, path: str) -> tuple[int, Any, dict[str, str]]:
        async with self.session.get(f"{self.url}{path}") as response:
            return response.status, await response.json(), dict(response.headers)

    async def signed(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        *,
        key: str | None = API_KEY,
        secret: str = API_SECRET,
        timestamp: int | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        query = urlencode({**params, "timestamp": timestamp or int(time.time() * 1000)})
        signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        signed = f"{query}&signature={signature}"
        headers = {} if key is None else {"X-MBX-APIKEY": key}
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            request = self.session.post(f"{self.url}{path}", data=signed, headers=headers)
        else:
            request = self.session.request(method, f"{self.url}{path}?{signed}", headers=headers)
        async with request as response:
            text = await response.text()
            body = await response.json() if text.startswith(("{", "[")) else text
            return response.status, body, dict(response.headers)

    async def order(self, **params: Any) -> tuple[int, Any, dict[str, str]]:
        values = {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        return await self.signed("POST", "/api/v3/order", {**values, **params})


@asynccontextmanager
async def simulator(usdt: float = 1_000.0) -> AsyncIterator[tuple[ExchangeSimulator, Client]]:
    async with (
        ExchangeSimulator(account(usdt), {API_KEY: API_SECRET}) as exchange,
        aiohttp.ClientSession() as session,
    ):
        yield exchange, Client(session, exchange.url)


def test_public_endpoints_answer_without_a_key(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (_exchange, client):
            status, body, _ = await client.public("/api/v3/exchangeInfo")
            assert status == 200
            [market] = body["symbols"]
            filters = {f["filterType"]: f for f in market["filters"]}
            assert filters["LOT_SIZE"]["stepSize"] == "0.00001"
            assert filters["NOTIONAL"]["minNotional"] == "5"
            status, body, _ = await client.public("/api/v3/time")
            assert status == 200 and isinstance(body["serverTime"], int)

    aio.run(scenario())


def test_signed_requests_are_checked_like_binance(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (_exchange, client):
            status, body, _ = await client.signed("GET", "/api/v3/account", {})
            assert (
                status == 200
                and {"asset": "USDT", "free": "1000.00000000", "locked": "0.00000000"}
                in body["balances"]
            )
            status, body, _ = await client.signed("GET", "/api/v3/account", {}, key=None)
            assert (status, body["code"]) == (401, -2014)
            status, body, _ = await client.signed("GET", "/api/v3/account", {}, key="other")
            assert (status, body["code"]) == (401, -2015)
            status, body, _ = await client.signed("GET", "/api/v3/account", {}, secret="wrong")
            assert (status, body) == (
                400,
                {"code": -1022, "msg": "Signature for this request is not valid."},
            )
            stale = int(time.time() * 1000) - 6_000
            status, body, _ = await client.signed("GET", "/api/v3/account", {}, timestamp=stale)
            assert (status, body["code"]) == (400, -1021)
            status, body, _ = await client.signed(
                "GET", "/api/v3/account", {"recvWindow": 10_000}, timestamp=stale
            )
            assert status == 200  # a wider window accepts the same request
            status, body, _ = await client.signed("GET", "/api/v3/account", {"recvWindow": 70_000})
            assert (status, body["code"]) == (400, -1131)

    aio.run(scenario())


def test_orders_follow_the_filters_the_balance_and_client_order_ids(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator(usdt=100.0) as (exchange, client):
            exchange.on_trade(trade(50_000.0))
            status, body, _ = await client.order(price="49000.005", quantity="0.001")
            assert (status, body["msg"]) == (400, "Filter failure: PRICE_FILTER")
            status, body, _ = await client.order(price="49000", quantity="0.000015")
            assert body["msg"] == "Filter failure: LOT_SIZE"
            status, body, _ = await client.order(price="49000", quantity="0.00001")
            assert body["msg"] == "Filter failure: NOTIONAL"
            status, body, _ = await client.order(price="49000", quantity="0.01")
            assert (body["code"], body["msg"]) == (
                -2010,
                "Account has insufficient balance for requested action.",
            )
            status, body, _ = await client.order(
                price="49000", quantity="0.001", newClientOrderId="a-1-en"
            )
            assert status == 200 and body["status"] == "NEW" and body["fills"] == []
            assert exchange.account.balances["USDT"] == [Decimal("51.000"), Decimal("49.000")]
            status, body, _ = await client.order(
                price="48000", quantity="0.001", newClientOrderId="a-1-en"
            )
            assert (status, body) == (400, {"code": -2010, "msg": "Duplicate order sent."})
            status, body, _ = await client.signed(
                "DELETE", "/api/v3/order", {"symbol": SYMBOL, "origClientOrderId": "a-1-en"}
            )
            assert body["status"] == "CANCELED"
            assert exchange.account.balances["USDT"] == [Decimal("100.000"), Decimal("0.000")]
            # like Binance, only open orders hold their id: a cancelled one's may be reused
            status, body, _ = await client.order(
                price="48000", quantity="0.001", newClientOrderId="a-1-en"
            )
            assert status == 200
            status, body, _ = await client.signed(
                "GET", "/api/v3/order", {"symbol": SYMBOL, "origClientOrderId": "nope"}
            )
            assert (status, body["code"]) == (400, -2013)

    aio.run(scenario())


def test_orders_match_against_the_trades_the_market_prints(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            exchange.on_trade(trade(50_000.0))
            _, resting, _ = await client.order(price="49900", quantity="0.002")
            _, market, _ = await client.order(type="MARKET", quoteOrderQty="100", side="BUY")
            assert market["status"] == "FILLED" and market["executedQty"] == "0.00200000"
            assert market["fills"][0]["price"] == "50000.00000000"  # the last trade, as taker
            exchange.on_trade(trade(49_950.0, 1))  # above the limit: still resting
            _, still, _ = await client.signed(
                "GET", "/api/v3/order", {"symbol": SYMBOL, "orderId": resting["orderId"]}
            )
            assert still["status"] == "NEW"
            exchange.on_trade(trade(49_800.0, 2))  # through it: fills at the limit, as maker
            _, mine, _ = await client.signed("GET", "/api/v3/myTrades", {"symbol": SYMBOL})
            assert [(t["price"], t["isMaker"]) for t in mine] == [
                ("50000.00000000", False),
                ("49900.00000000", True),
            ]
            assert [t["commissionAsset"] for t in mine] == ["BTC", "BTC"]  # what a buy receives
            _, opened, _ = await client.signed("GET", "/api/v3/openOrders", {"symbol": SYMBOL})
            assert opened == []
            assert exchange.account.balances["BTC"][0] == Decimal("0.00400") * Decimal("0.999")
            # what both buys cost left the free balance; nothing stays held
            assert exchange.account.balances["USDT"] == [Decimal("800.2"), Decimal("0")]

    aio.run(scenario())


def test_faults_are_injected_one_request_at_a_time(aio: Aio) -> None:
    async def scenario() -> None:
        async with simulator() as (exchange, client):
            exchange.inject(Fault(FaultKind.RATE_LIMIT, method="GET", path="/api/v3/account",
                                  retry_after_seconds=7))  # fmt: skip
            status, body, headers = await client.signed("GET", "/api/v3/account", {})
            assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "7")
            exchange.inject(Fault(FaultKind.SERVER_ERROR, method="GET", path="/api/v3/account"))
            status, body, _ = await client.signed("GET", "/api/v3/account", {})
            assert (status, body["code"]) == (503, -1001)
            exchange.inject(Fault(FaultKind.MALFORMED, method="GET", path="/api/v3/account"))
            status, body, _ = await client.signed("GET", "/api/v3/account", {})
            assert status == 200 and not isinstance(body, dict)
            status, _, _ = await client.signed("GET", "/api/v3/account", {})
            assert status == 200  # each fault served once
            exchange.on_trade(trade(50_000.0))
            exchange.inject(Fault(FaultKind.DROP_AFTER_ACCEPT))
            with pytest.raises(aiohttp.ClientError):
                await client.order(price="49000", quantity="0.001", newClientOrderId="a-2-en")
            [stored] = exchange.orders_with_id("a-2-en")  # accepted before the line went dead
            assert stored.status == "NEW" and exchange.placements("a-2-en")[0].status is None

    aio.run(scenario())


def test_the_simulator_matches_on_what_the_replay_feed_publishes(aio: Aio) -> None:
    async def scenario() -> None:
        async with ExchangeSimulator(account(), {API_KEY: API_SECRET}) as exchange:
            source = SyntheticSource([SYMBOL], start_ms=START_MS, end_ms=START_MS + 60_000)
            replay = ReplayServer(
                source, speed=0, wait_for_subscribers=0, on_publish=exchange.on_message
            )
            async with replay:
                await asyncio.wait_for(replay.finished.wait(), 10)
            last = replay.record.klines(SYMBOL, 60_000, None, None, 1)[-1][4]
            assert exchange.account.last_price[SYMBOL] == Decimal(last)

    aio.run(scenario())
