"""Candles from an exchange's REST API through ccxt, page by page.

Binance spot is read from its raw kline rows (the same request ccxt's fetch_ohlcv makes),
parsed by tradepipe.binance.parse_kline_row, because those rows carry taker-buy volume and
trade counts that fetch_ohlcv drops and that live candles built from trades have; every
other exchange goes through the unified `fetch_ohlcv` (taker volume and counts unknown).

Failure is quick and single: a network error is retried a bounded number of times within
the request timeout, then raised as one SourceError "cannot reach <exchange>: ... (offline?)".
ccxt is imported on first use: it takes over a second to import, and most commands (and
every other source) never need it.
Zero-volume candles (exchange fillers for intervals without trades) are dropped: the
project's gap policy is that such intervals have no candle.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pandas as pd

from research.marketdata.errors import SourceError
from research.marketdata.sources.common import clip_range, drop_empty_intervals
from tradepipe.binance import MalformedMessageError, parse_kline_row
from tradepipe.candles import candles_to_frame
from tradepipe.marketdata.frames import conform_candles
from tradepipe.timeframes import Timeframe, parse_timeframe

DEFAULT_EXCHANGE = "binance"
PAGE_LIMIT = 1000  # Binance spot's maximum klines per request
MAX_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 0.25
OHLCV_COLUMNS = ["start_ms", "open", "high", "low", "close", "volume"]
T = TypeVar("T")


def make_exchange(
    exchange_id: str = DEFAULT_EXCHANGE, timeout_seconds: float = 10.0, api_url: str | None = None
) -> Any:
    """A public (no keys) ccxt client with rate limiting and a request timeout.

    `api_url` (e.g. "http://127.0.0.1:8999") points every REST endpoint at another host
    with the same paths: a test server or a mirror.
    """
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise SourceError(f"unknown exchange {exchange_id!r} for ccxt; e.g. binance, kraken")
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_seconds * 1000)}
    if exchange_id == "binance":
        # Spot candles only: skip the futures exchangeInfo calls and the keyed currency call.
        config["options"] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
    exchange = getattr(ccxt, exchange_id)(config)
    if api_url is not None:
        exchange.urls["api"] = _rebase(exchange.urls["api"], api_url.rstrip("/"))
    return exchange


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
    market = _call(exchange, "load its markets", lambda: _resolve_market(exchange, symbol))
    offered = getattr(exchange, "timeframes", None) or {}
    if offered and tf.name not in offered:
        raise SourceError(f"{exchange.id} has no {tf.name} candles; it offers {', '.join(offered)}")
    raw_klines = exchange.id == "binance" and bool(market.get("spot"))
    since = start_ms
    while since < end_ms:
        if raw_klines:
            request = partial(_binance_klines, exchange, market, tf, since, end_ms, limit)
        else:
            request = partial(_unified_ohlcv, exchange, market, tf, since, limit)
        page = _call(exchange, "fetch candles", request)
        if not len(page):
            return
        newest = int(page["start_ms"].max())
        yield conform_candles(drop_empty_intervals(clip_range(page, since, end_ms)))
        if newest < since:
            return
        since = newest + tf.milliseconds


def _binance_klines(
    exchange: Any, market: dict[str, Any], tf: Timeframe, since: int, end_ms: int, limit: int
) -> pd.DataFrame:
    rows = exchange.publicGetKlines(
        {
            "symbol": market["id"],
            "interval": exchange.timeframes.get(tf.name, tf.name),
            "startTime": since,
            "endTime": end_ms - 1,
            "limit": limit,
        }
    )
    try:
        return candles_to_frame([parse_kline_row(row, market["id"], tf) for row in rows])
    except MalformedMessageError as error:
        raise SourceError(f"{exchange.id} sent a malformed kline: {error}") from None


def _unified_ohlcv(
    exchange: Any, market: dict[str, Any], tf: Timeframe, since: int, limit: int
) -> pd.DataFrame:
    rows = exchange.fetch_ohlcv(market["symbol"], tf.name, since=since, limit=limit)
    return pd.DataFrame(rows, columns=OHLCV_COLUMNS).astype({"start_ms": "int64"})


def _resolve_market(exchange: Any, symbol: str) -> dict[str, Any]:
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


def _call(exchange: Any, what: str, action: Callable[[], T]) -> T:
    """Run one request with bounded retries on network errors, inside the request timeout."""
    import ccxt

    deadline = time.monotonic() + exchange.timeout / 1000
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return action()
        except ccxt.NetworkError as error:
            if attempt == MAX_ATTEMPTS or time.monotonic() + RETRY_DELAY_SECONDS > deadline:
                raise SourceError(
                    f"cannot reach {exchange.id} to {what}: {_network_reason(error)} (offline?)"
                ) from None
            time.sleep(RETRY_DELAY_SECONDS * attempt)
        except ccxt.BaseError as error:
            raise SourceError(f"{exchange.id} refused to {what}: {_first_line(error)}") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _network_reason(error: Exception) -> str:
    """The useful part of a ccxt network error: the URL and the socket-level cause."""
    import ccxt

    url = re.search(r"https?://\S+", str(error))
    where = url.group(0) if url else ""
    if isinstance(error, ccxt.RequestTimeout):
        return f"{where} did not answer in time".strip()
    causes: list[str] = []
    cause: BaseException | None = error
    while cause is not None and len(causes) < 10:
        causes.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    errno = re.search(r"\[Errno -?\d+\] [^'\"()\]]+", " ".join(causes))
    reason = errno.group(0).strip() if errno else _first_line(error)
    return f"{where}: {reason}" if where else reason


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _rebase(urls: Any, base: str) -> Any:
    """`urls` (ccxt's nested dict of API roots) with every scheme://host replaced by base."""
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^[a-z]+://[^/]+", base, urls)
    return urls
