"""Candles from an exchange's REST API through ccxt, page by page, as candle frames.

The client, the requests and the paging are the kernel's (tradepipe/exchange_rest.py, shared
with the live feed's backfill); this module resolves the market a user names, checks the
timeframe, and turns each page into the research frame. Its errors are SourceErrors.
Zero-volume candles (exchange fillers for intervals without trades) are dropped: the
project's gap policy is that such intervals have no candle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pandas as pd

from research.marketdata.errors import SourceError
from research.marketdata.sources.common import drop_empty_intervals
from tradepipe.candles import candles_to_frame
from tradepipe.domain import Candle
from tradepipe.exchange_rest import (
    PAGE_LIMIT,
    ExchangeRestError,
    binance_klines,
    call_exchange,
    candle_pages,
    make_public_client,
    ohlcv_candles,
)
from tradepipe.marketdata.frames import conform_candles
from tradepipe.timeframes import Timeframe, parse_timeframe

DEFAULT_EXCHANGE = "binance"


def make_exchange(
    exchange_id: str = DEFAULT_EXCHANGE, timeout_seconds: float = 10.0, api_url: str | None = None
) -> Any:
    """The kernel's public ccxt client (`api_url`: a test server or a mirror)."""
    try:
        return make_public_client(exchange_id, timeout_seconds, api_url)
    except ExchangeRestError as error:
        raise SourceError(str(error)) from None


def estimated_pages(timeframe: str | Timeframe, start_ms: int, end_ms: int) -> int:
    """Requests needed for [start_ms, end_ms) at PAGE_LIMIT candles each (for progress)."""
    span = parse_timeframe(timeframe).milliseconds * PAGE_LIMIT
    return max(1, -(-(end_ms - start_ms) // span))


def fetch_candle_pages(
    exchange: Any,
    symbol: str,
    timeframe: str | Timeframe,
    start_ms: int,
    end_ms: int,
    *,
    limit: int = PAGE_LIMIT,
) -> Iterator[pd.DataFrame]:
    """One candle frame per request, for candles starting in [start_ms, end_ms), in order.

    Stops at end_ms, or when the exchange has nothing newer (an empty page, or a page that
    does not move forward).
    """
    tf = parse_timeframe(timeframe)
    try:
        market = call_exchange(exchange, "load its markets", partial(_market, exchange, symbol))
        offered = getattr(exchange, "timeframes", None) or {}
        if offered and tf.name not in offered:
            raise SourceError(
                f"{exchange.id} has no {tf.name} candles; it offers {', '.join(offered)}"
            )
        fetch_page: Callable[[int], list[Candle]]
        if exchange.id == "binance" and bool(market.get("spot")):
            fetch_page = partial(
                binance_klines, exchange, market["id"], tf, end_ms=end_ms, limit=limit
            )
            full_page: int | None = limit  # Binance fills every page it can
        else:
            fetch_page = partial(ohlcv_candles, exchange, market, tf, limit=limit)
            full_page = None  # other exchanges cap pages below `limit` on their own
        for page in candle_pages(fetch_page, tf, start_ms, end_ms, full_page=full_page):
            yield conform_candles(drop_empty_intervals(candles_to_frame(page)))
    except ExchangeRestError as error:
        raise SourceError(str(error)) from None


def _market(exchange: Any, symbol: str) -> dict[str, Any]:
    """The market for "BTC/USDT", "BTCUSDT" (exchange id) or "btc-usdt" (same letters)."""
    import ccxt

    exchange.load_markets()
    try:
        market: dict[str, Any] = exchange.market(symbol)
        return market
    except ccxt.BadSymbol:
        pass
    letters = re.sub(r"[^A-Z0-9]", "", symbol.upper())
    for candidate in exchange.markets.values():
        if candidate.get("spot") and re.sub(r"[^A-Z0-9]", "", candidate["symbol"]) == letters:
            found: dict[str, Any] = candidate
            return found
    raise SourceError(f"{exchange.id} has no market {symbol!r}; name it like BTC/USDT")
