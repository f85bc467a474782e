"""Candles the feed missed, from the exchange's REST API.

A WebSocket reconnect loses the trades sent while the link was down; the exchange still has
their candles. `BinanceRestBackfill` asks Binance's `/api/v3/klines` for them through the
real ccxt client: the kernel's client and kline paging (tradepipe/exchange_rest.py, shared
with research's ingestion), raw kline rows that carry taker volume and trade counts like
candles built from trades. ccxt is synchronous here, run in a worker thread: backfills are
rare and short, and the sync client needs no session to close. ccxt is imported on first
use (it takes seconds to import).

Intervals without trades have no candle (the kernel's gap policy): exchange rows with zero
trades are dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Protocol

from tradepipe.domain import Candle
from tradepipe.exchange_rest import (
    PAGE_LIMIT,
    ExchangeRestError,
    binance_klines,
    candle_pages,
    make_public_client,
)
from tradepipe.timeframes import Timeframe, parse_timeframe


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
            fetch_page = partial(
                binance_klines, exchange, symbol, tf, end_ms=end_ms, limit=self.page_limit
            )
            pages = candle_pages(fetch_page, tf, start_ms, end_ms, full_page=self.page_limit)
            try:
                return [c for page in pages for c in page if c.trade_count != 0]
            except ExchangeRestError as error:
                raise BackfillError(str(error)) from None

    def _client(self) -> Any:
        if self._exchange is None:
            self._exchange = (
                self._factory()
                if self._factory
                else make_public_client("binance", self.timeout_seconds, self.api_url)
            )
        return self._exchange
