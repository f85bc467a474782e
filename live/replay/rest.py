"""The replay's REST side: the part of Binance's spot REST API a feed needs to backfill.

`TradeRecord` is the replay exchange's memory: every trade it has published, whether or
not anyone was listening, so a client that reconnects can ask for the candles it missed,
and nothing that has not been published yet (as on a real exchange). `RestServer` answers
over HTTP/1.1 on loopback, enough for the real ccxt client:

- `GET /api/v3/klines?symbol=&interval=&startTime=&endTime=&limit=`: 12-column kline rows
  of the intervals that have trades, aggregated here (the exchange's own arithmetic:
  correctly rounded sums, decimal strings that read back as the exact floats);
- `GET /api/v3/exchangeInfo` (`?symbol=` as Binance: that one, or -1121 if unknown),
  `/api/v3/ping`, `/api/v3/time`.
Errors use Binance's shape `{"code": -1121, "msg": "Invalid symbol."}`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tradepipe.domain import Side, Trade
from tradepipe.timeframes import InvalidTimeframeError, parse_timeframe

log = logging.getLogger(__name__)

DEFAULT_LIMIT, MAX_LIMIT = 500, 1000
MAX_REQUEST_BYTES = 16_384
IDLE_SECONDS = 30.0


class TradeRecord:
    """Published trades per symbol, in time order, trimmed to the last `retention_ms`."""

    def __init__(self, retention_ms: int | None = 24 * 3_600_000) -> None:
        self.retention_ms = retention_ms
        self._times: dict[str, list[int]] = {}
        self._trades: dict[str, list[Trade]] = {}

    def add(self, trade: Trade) -> None:
        times = self._times.get(trade.symbol)
        if times is None:
            times = self._times[trade.symbol] = []
            self._trades[trade.symbol] = []
        times.append(trade.time_ms)
        self._trades[trade.symbol].append(trade)
        if self.retention_ms is not None and len(times) % 4096 == 0:
            keep_from = bisect.bisect_left(times, trade.time_ms - self.retention_ms)
            del times[:keep_from]
            del self._trades[trade.symbol][:keep_from]

    def symbols(self) -> list[str]:
        return sorted(self._times)

    def klines(
        self, symbol: str, interval_ms: int, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[list[Any]]:
        """Binance kline rows of intervals with trades, open time in [start_ms, end_ms]:
        the first `limit` from start_ms, or the last `limit` without one."""
        times = self._times.get(symbol, [])
        trades = self._trades.get(symbol, [])
        first = None if start_ms is None else start_ms - start_ms % interval_ms
        low = 0 if first is None else bisect.bisect_left(times, first)
        high = (
            len(times)
            if end_ms is None
            else bisect.bisect_left(times, end_ms - end_ms % interval_ms + interval_ms)
        )
        groups: dict[int, list[Trade]] = {}
        for trade in trades[low:high]:
            groups.setdefault(trade.time_ms - trade.time_ms % interval_ms, []).append(trade)
        starts = [
            start
            for start in groups
            if (start_ms is None or start >= start_ms) and (end_ms is None or start <= end_ms)
        ]
        chosen = starts[:limit] if start_ms is not None else starts[-limit:]
        return [_kline_row(start, interval_ms, groups[start]) for start in chosen]


def _decimal(value: float) -> str:
    """Binance's 8-decimal string when it reads back as the same float, else the exact
    shortest repr (a correctly rounded sum need not sit on an 8-decimal grid)."""
    text = f"{value:.8f}"
    return text if float(text) == value else repr(value)


def _kline_row(start: int, interval_ms: int, trades: list[Trade]) -> list[Any]:
    prices = [t.price for t in trades]
    buys = [t for t in trades if t.taker_side is Side.BUY]
    return [
        start,
        _decimal(prices[0]),
        _decimal(max(prices)),
        _decimal(min(prices)),
        _decimal(prices[-1]),
        _decimal(math.fsum(t.quantity for t in trades)),
        start + interval_ms - 1,
        _decimal(math.fsum(t.price * t.quantity for t in trades)),
        len(trades),
        _decimal(math.fsum(t.quantity for t in buys)),
        _decimal(math.fsum(t.price * t.quantity for t in buys)),
        "0",
    ]


def exchange_info(symbols: Iterable[str]) -> dict[str, Any]:
    """Enough of `/api/v3/exchangeInfo` for ccxt's `load_markets` (quote assets guessed
    from common suffixes)."""
    entries = []
    for symbol in sorted(symbols):
        quote = next((q for q in ("USDT", "USDC", "BTC", "ETH", "BNB") if symbol.endswith(q)), "")
        base = symbol[: -len(quote)] if quote else symbol
        entries.append(
            {
                "symbol": symbol, "status": "TRADING", "baseAsset": base,
                "baseAssetPrecision": 8, "quoteAsset": quote or "USDT", "quotePrecision": 8,
                "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.00000001",
                     "maxPrice": "10000000.00", "tickSize": "0.00000001"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00000001", "maxQty": "9000000.0",
                     "stepSize": "0.00000001"},
                ],
            }
        )  # fmt: skip
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [],
            "exchangeFilters": [], "symbols": entries}  # fmt: skip


class RestServer:
    """A minimal HTTP/1.1 server (keep-alive, GET only) over a `TradeRecord`."""

    def __init__(self, record: TradeRecord, symbols: Iterable[str]) -> None:
        self.record = record
        self.symbols = frozenset(symbols)
        self.requests: deque[str] = deque(maxlen=1000)  # recent paths served, for tests
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connection, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for handler in list(self._handlers):  # idle keep-alive connections end here
                handler.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # the server is stopping; asyncio's stream callback must not see it
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    return
                if len(head) > MAX_REQUEST_BYTES:
                    return
                request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                parts = request_line.split(" ")
                if len(parts) != 3:
                    return
                method, target, _version = parts
                status, body = self.answer(method, target)
                payload = json.dumps(body, separators=(",", ":")).encode()
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    "Content-Type: application/json;charset=UTF-8\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    "Connection: keep-alive\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (ConnectionError, OSError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def answer(self, method: str, target: str) -> tuple[int, Any]:
        """(HTTP status, JSON body) for one request."""
        url = urlsplit(target)
        self.requests.append(url.path)
        if method != "GET":
            return 405, {"code": -1000, "msg": f"method {method} not supported here"}
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/api/v3/ping":
            return 200, {}
        if url.path == "/api/v3/time":
            return 200, {"serverTime": int(time.time() * 1000)}
        if url.path == "/api/v3/exchangeInfo":
            listed = self.symbols | set(self.record.symbols())
            if "symbol" in query:  # as Binance: that symbol only, or an error if unknown
                if query["symbol"] not in listed:
                    return 400, {"code": -1121, "msg": "Invalid symbol."}
                return 200, exchange_info([query["symbol"]])
            return 200, exchange_info(listed)
        if url.path == "/api/v3/klines":
            return self._klines(query)
        return 404, {"code": -1000, "msg": f"no endpoint {url.path} on the replay server"}

    def _klines(self, query: dict[str, str]) -> tuple[int, Any]:
        symbol = query.get("symbol", "")
        if symbol not in self.symbols and symbol not in self.record.symbols():
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        try:
            interval = parse_timeframe(query.get("interval", ""))
        except InvalidTimeframeError:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        try:
            start = int(query["startTime"]) if "startTime" in query else None
            end = int(query["endTime"]) if "endTime" in query else None
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        if not 1 <= limit <= MAX_LIMIT:
            return 400, {"code": -1130, "msg": f"limit must be within 1..{MAX_LIMIT}."}
        return 200, self.record.klines(symbol, interval.milliseconds, start, end, limit)
