"""Candles the feed missed, from the exchange's REST API.

A WebSocket reconnect loses the trades sent while the link was down; the exchange still has
their candles. `BinanceRestBackfill` asks Binance's `/api/v3/klines` for them through the
real ccxt client (raw kline rows, parsed by the kernel's `parse_kline_row`, because those
carry taker volume and trade counts like candles built from trades). ccxt is synchronous
here, run in a worker thread: backfills are rare and short, and the sync client needs no
session to close. ccxt is imported on first use (it takes seconds to import).

Intervals without trades have no candle (the kernel's gap policy): exchange rows with zero
trades are dropped.

Note: research/marketdata/sources/ccxt_rest.py pages klines the same way for ingestion;
`live/` may not import `research/`, so the shared part belongs in the kernel one day.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from tradepipe.binance import MalformedMessageError, parse_kline_row
from tradepipe.domain import Candle
from tradepipe.timeframes import Timeframe, parse_timeframe

PAGE_LIMIT = 1000  # Binance's maximum klines per request


class BackfillError(RuntimeError):
    """The exchange could not be asked, or refused; the message names the request."""


class CandleBackfill(Protocol):
    """The exchange's own candles of one symbol for a past window."""

    async def fetch_candles(
        self, symbol: str, timeframe: Timeframe | str, start_ms: int, end_ms: int
    ) -> list[Candle]:
        """Closed candles starting in [start_ms, end_ms), in time order, none empty.
        Raises BackfillError."""
        ...


class InMemoryBackfill:
    """A backfill from candles the test holds; records every request, can be made to fail."""

    def __init__(self, candles: Iterable[Candle] = (), *, error: str | None = None) -> None:
        self.candles = list(candles)
        self.error = error
        self.requests: list[tuple[str, str, int, int]] = []

    async def fetch_candles(
        self, symbol: str, timeframe: Timeframe | str, start_ms: int, end_ms: int
    ) -> list[Candle]:
        tf = parse_timeframe(timeframe)
        self.requests.append((symbol, tf.name, start_ms, end_ms))
        if self.error is not None:
            raise BackfillError(self.error)
        return [
            candle
            for candle in self.candles
            if candle.symbol == symbol
            and candle.timeframe == tf
            and start_ms <= candle.start_ms < end_ms
        ]


class BinanceRestBackfill:
    """Klines from Binance spot (or anything speaking its REST API at `api_url`, such as
    the replay server) through ccxt."""

    def __init__(
        self,
        api_url: str | None = None,
        *,
        timeout_seconds: float = 10.0,
        page_limit: int = PAGE_LIMIT,
        exchange_factory: Callable[[], Any] | None = None,
    ) -> None:
        if not 1 <= page_limit <= PAGE_LIMIT:
            raise ValueError(f"page_limit must be within 1..{PAGE_LIMIT}, got {page_limit}")
        self.api_url = api_url
        self.timeout_seconds = timeout_seconds
        self.page_limit = page_limit
        self._factory = exchange_factory
        self._exchange: Any = None
        self._lock = threading.Lock()  # one ccxt client, one request at a time

    async def fetch_candles(
        self, symbol: str, timeframe: Timeframe | str, start_ms: int, end_ms: int
    ) -> list[Candle]:
        tf = parse_timeframe(timeframe)
        return await asyncio.to_thread(self._fetch, symbol, tf, start_ms, end_ms)

    def _fetch(self, symbol: str, tf: Timeframe, start_ms: int, end_ms: int) -> list[Candle]:
        with self._lock:
            exchange = self._client()
            candles: list[Candle] = []
            since = tf.floor_ms(start_ms)
            while since < end_ms:
                rows = self._request(exchange, symbol, tf, since, end_ms)
                try:
                    page = [parse_kline_row(row, symbol, tf) for row in rows]
                except MalformedMessageError as error:
                    raise BackfillError(f"binance sent a malformed kline: {error}") from None
                candles.extend(
                    c for c in page if start_ms <= c.start_ms < end_ms and c.trade_count != 0
                )
                if len(rows) < self.page_limit or not page or page[-1].start_ms < since:
                    break
                since = page[-1].start_ms + tf.milliseconds
            return candles

    def _request(
        self, exchange: Any, symbol: str, tf: Timeframe, since: int, end_ms: int
    ) -> list[Any]:
        import ccxt

        what = f"klines {symbol} {tf.name} from {since} to {end_ms}"
        try:
            rows = exchange.publicGetKlines(
                {
                    "symbol": symbol,
                    "interval": tf.name,
                    "startTime": since,
                    "endTime": end_ms - 1,
                    "limit": self.page_limit,
                }
            )
        except ccxt.NetworkError as error:
            raise BackfillError(f"cannot reach binance for {what}: {_first_line(error)}") from None
        except ccxt.BaseError as error:
            raise BackfillError(f"binance refused {what}: {_first_line(error)}") from None
        if not isinstance(rows, list):
            raise BackfillError(f"binance answered {what} with {type(rows).__name__}, not rows")
        return rows

    def _client(self) -> Any:
        if self._exchange is None:
            self._exchange = self._factory() if self._factory else self._make_exchange()
        return self._exchange

    def _make_exchange(self) -> Any:
        import ccxt

        exchange = ccxt.binance(
            {
                "enableRateLimit": True,
                "timeout": int(self.timeout_seconds * 1000),
                "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
            }
        )
        if self.api_url is not None:
            exchange.urls["api"] = _rebase(exchange.urls["api"], self.api_url.rstrip("/"))
        return exchange


def _rebase(urls: Any, base: str) -> Any:
    """ccxt's nested dict of API roots with every scheme://host replaced by `base`."""
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^[a-z]+://[^/]+", base, urls)
    return urls


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
