"""A Binance-compatible spot REST server on loopback, for the ccxt broker's tests and for
testnet-style runs without the network.

It speaks the part of Binance's REST API that ccxt's `binance` class calls to load markets,
read balances and trade: `GET /api/v3/ping|time|exchangeInfo` (public) and, signed,
`GET /api/v3/account`, `POST|DELETE|GET /api/v3/order`, `GET /api/v3/openOrders`,
`GET /api/v3/myTrades`, and OCO order lists (`POST /api/v3/orderList/oco`,
`GET|DELETE /api/v3/orderList`, `GET /api/v3/openOrderList`). Signed requests are checked
as Binance checks them: the
`X-MBX-APIKEY` header names a known key (-2014/-2015), the HMAC-SHA256 of the parameters
(query string, or form body) under that key's secret matches `signature` (-1022), and
`timestamp` lies within `recvWindow` of the server's clock (-1021). Errors are Binance's
JSON `{"code": ..., "msg": ...}` with its HTTP statuses.

Prices come from the market it is fed: `on_trade` (or `on_message`, the replay server's
`on_publish` hook, so it matches against exactly what the replay feed publishes).

Fault injection (`inject`), each consumed by the next request it matches:
- `HANG_AFTER_ACCEPT` / `DROP_AFTER_ACCEPT`: the order is stored (and may fill), then the
  answer never comes: the connection hangs (the client times out) and is then cut, or is
  cut at once;
- `SERVER_ERROR`: HTTP 5xx before anything is done; `RATE_LIMIT`: HTTP 429 with
  `Retry-After` and -1003; `REJECT`: -2010 with the given message;
- `MALFORMED`: a 200 answer whose body is not the JSON the endpoint promises.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from live.replay.exchange.account import BinanceError, SimOrder, SimulatedAccount
from live.replay.exchange.order_lists import cancel_list, find_list
from live.replay.sources import ReplayMessage
from tradepipe.domain import Trade

__all__ = ["ExchangeSimulator", "Fault", "FaultKind", "RequestRecord"]

log = logging.getLogger(__name__)

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
FUTURE_TOLERANCE_MS = 1_000
SIGNED = {
    ("GET", "/api/v3/account"),
    ("POST", "/api/v3/order"),
    ("DELETE", "/api/v3/order"),
    ("GET", "/api/v3/order"),
    ("GET", "/api/v3/openOrders"),
    ("GET", "/api/v3/myTrades"),
    ("POST", "/api/v3/orderList/oco"),
    ("GET", "/api/v3/orderList"),
    ("DELETE", "/api/v3/orderList"),
    ("GET", "/api/v3/openOrderList"),
}


class FaultKind(StrEnum):
    HANG_AFTER_ACCEPT = "hang_after_accept"
    DROP_AFTER_ACCEPT = "drop_after_accept"
    SERVER_ERROR = "server_error"
    RATE_LIMIT = "rate_limit"
    REJECT = "reject"
    MALFORMED = "malformed"


@dataclass(slots=True)
class Fault:
    """A fault for the next `times` requests of `method` `path`."""

    kind: FaultKind
    method: str = "POST"
    path: str = "/api/v3/order"
    times: int = 1
    status: int = 503  # SERVER_ERROR
    retry_after_seconds: int = 1  # RATE_LIMIT
    message: str = "Account has insufficient balance for requested action."  # REJECT
    hang_seconds: float = 30.0  # HANG_AFTER_ACCEPT: longer than the client waits


@dataclass(slots=True)
class RequestRecord:
    """One request as it arrived; `status` is set once answered (None: never answered)."""

    method: str
    path: str
    params: dict[str, str]
    status: int | None = None


@dataclass
class _Handled:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class ExchangeSimulator:
    """`async with ExchangeSimulator(account, {"key": "secret"}) as exchange:` then point a
    ccxt client at `exchange.url` (see `live.brokers.exchange.make_client`)."""

    def __init__(
        self,
        account: SimulatedAccount,
        api_keys: dict[str, str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.account = account
        self.api_keys = dict(api_keys)
        self.host = host
        self.requested_port = port
        self.port = 0
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._hanging: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only through the server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ExchangeSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- the market and the test's hands -----------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        self.account.on_trade(trade)

    def on_message(self, message: ReplayMessage) -> None:
        """The replay server's `on_publish` hook: match against what the feed publishes."""
        if message.trade is not None:
            self.account.on_trade(message.trade)

    def inject(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear_faults(self) -> None:
        """Answer every request normally again."""
        self._faults.clear()

    def placements(self, client_order_id: str | None = None) -> list[RequestRecord]:
        """Every POST /api/v3/order received (for one client order id, if given)."""
        return [
            r
            for r in self.requests
            if r.method == "POST"
            and r.path == "/api/v3/order"
            and client_order_id in (None, r.params.get("newClientOrderId"))
        ]

    def oco_placements(self) -> list[RequestRecord]:
        """Every POST /api/v3/orderList/oco received."""
        return [
            r for r in self.requests if r.method == "POST" and r.path == "/api/v3/orderList/oco"
        ]

    def orders_with_id(self, client_order_id: str) -> list[SimOrder]:
        return [o for o in self.account.orders.values() if o.client_order_id == client_order_id]

    # -- HTTP --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        query = request.query_string
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(dict(parse_qsl(body, keep_blank_values=True)))
        fault = self._take_fault(request.method, request.path)
        record = RequestRecord(request.method, request.path, params)
        self.requests.append(record)
        try:
            handled = await self._answer(request, query, body, params, fault)
        except BinanceError as error:
            handled = _Handled(error.status, error.body())
        record.status = handled.status
        if handled.body is _MALFORMED:
            return web.Response(status=200, text="<html>upstream hiccup</html>")
        return web.json_response(handled.body, status=handled.status, headers=handled.headers)

    async def _answer(
        self,
        request: web.Request,
        query: str,
        body: str,
        params: dict[str, str],
        fault: Fault | None,
    ) -> _Handled:
        method, path = request.method, request.path
        if fault is not None and fault.kind is FaultKind.SERVER_ERROR:
            raise BinanceError(
                -1001, "Internal error; unable to process your request.", fault.status
            )
        if fault is not None and fault.kind is FaultKind.RATE_LIMIT:
            return _Handled(
                429,
                {"code": -1003, "msg": "Too many requests; current limit is exceeded."},
                {"Retry-After": str(fault.retry_after_seconds)},
            )
        if (method, path) in SIGNED:
            self._authenticate(request, query, body, params)
        if fault is not None and fault.kind is FaultKind.REJECT:
            raise BinanceError(-2010, fault.message)
        handled = self._route(method, path, params)
        if fault is not None and fault.kind is FaultKind.MALFORMED:
            return _Handled(200, _MALFORMED)
        if fault is not None and fault.kind is FaultKind.HANG_AFTER_ACCEPT:
            await asyncio.sleep(fault.hang_seconds)  # the client gives up meanwhile
        if fault is not None and fault.kind in (
            FaultKind.HANG_AFTER_ACCEPT,
            FaultKind.DROP_AFTER_ACCEPT,
        ):
            if request.transport is not None:
                request.transport.abort()  # no answer ever leaves: status stays None
            raise asyncio.CancelledError  # aiohttp ends the handler quietly
        return handled

    def _route(self, method: str, path: str, params: dict[str, str]) -> _Handled:
        account, now = self.account, self.account.market_time_ms or self._clock()
        if (method, path) == ("GET", "/api/v3/ping"):
            return _Handled(200, {})
        if (method, path) == ("GET", "/api/v3/time"):  # the wall: signatures are stamped so
            return _Handled(200, {"serverTime": self._clock()})
        if (method, path) == ("GET", "/api/v3/exchangeInfo"):
            return _Handled(200, self._exchange_info(self._clock()))
        if (method, path) == ("GET", "/api/v3/account"):
            return _Handled(200, self._account_view(now))
        if (method, path) == ("POST", "/api/v3/order"):
            order = account.new_order(params, now)
            return _Handled(200, self._placed(order, now))
        if (method, path) == ("DELETE", "/api/v3/order"):
            return _Handled(200, account.cancel(params, now).view())
        if (method, path) == ("GET", "/api/v3/order"):
            return _Handled(200, account.find(params).view())
        if (method, path) == ("GET", "/api/v3/openOrders"):
            symbol = params.get("symbol")
            return _Handled(200, [o.view() for o in account.open_orders(symbol)])
        if (method, path) == ("GET", "/api/v3/myTrades"):
            return _Handled(200, [t.view() for t in account.my_trades(params)])
        if path in ("/api/v3/orderList/oco", "/api/v3/orderList", "/api/v3/openOrderList"):
            return self._order_list(method, path, params, now)
        raise BinanceError(-1000, f"no endpoint {method} {path} on the exchange simulator", 404)

    def _order_list(self, method: str, path: str, params: dict[str, str], now: int) -> _Handled:
        """OCO: place, query and cancel an order list (live/replay/exchange/order_lists.py)."""
        account = self.account
        if (method, path) == ("POST", "/api/v3/orderList/oco"):
            return _Handled(200, account.new_oco(params, now).view(account, reports=True))
        if (method, path) == ("GET", "/api/v3/orderList"):
            return _Handled(200, find_list(account, params).view(account))
        if (method, path) == ("DELETE", "/api/v3/orderList"):
            order_list = find_list(account, params)
            cancel_list(account, order_list, now)
            return _Handled(200, order_list.view(account, reports=True))
        if (method, path) == ("GET", "/api/v3/openOrderList"):
            lists = account.order_lists.values()
            open_lists = [
                o.view(account) for o in lists
                if any(account.orders[i].is_open for i in o.order_ids)
            ]  # fmt: skip
            return _Handled(200, open_lists)
        raise BinanceError(-1000, f"no endpoint {method} {path} on the exchange simulator", 404)

    def _authenticate(
        self, request: web.Request, query: str, body: str, params: dict[str, str]
    ) -> None:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        secret = self.api_keys.get(key)
        if secret is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        signed = "&".join(
            part
            for part in (query + ("&" if query and body else "") + body).split("&")
            if part and not part.startswith("signature=")
        )
        expected = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, params.get("signature", "")):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        try:
            timestamp = int(params["timestamp"])
            window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (KeyError, ValueError):
            raise BinanceError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        if not 0 < window <= MAX_RECV_WINDOW_MS:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = self._clock()
        if timestamp > now + FUTURE_TOLERANCE_MS or now - timestamp > window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path == path:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # -- bodies ------------------------------------------------------------------------------

    def _exchange_info(self, now: int) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [rules.info() for rules in self.account.markets.values()],
        }  # fmt: skip

    def _account_view(self, now: int) -> dict[str, Any]:
        rate = int(self.account.commission_rate * 10_000)
        return {
            "makerCommission": rate, "takerCommission": rate, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": False,
            "canDeposit": False, "brokered": False, "requireSelfTradePrevention": False,
            "updateTime": now, "accountType": "SPOT",
            "balances": self.account.balance_view(), "permissions": ["SPOT"], "uid": 1,
        }  # fmt: skip

    def _placed(self, order: SimOrder, now: int) -> dict[str, Any]:
        """The FULL new-order answer: the order and the fills it had at once."""
        fills = [
            {key: trade[key] for key in ("price", "qty", "commission", "commissionAsset")}
            | {"tradeId": trade["id"]}
            for trade in (t.view() for t in self.account.trades if t.order_id == order.order_id)
        ]  # fmt: skip
        return {**order.view(), "transactTime": now, "fills": fills}


_MALFORMED = object()
