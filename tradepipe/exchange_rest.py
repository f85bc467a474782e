"""Candles from an exchange's REST API through ccxt's synchronous client, page by page.

One implementation for research's ingestion (research/marketdata/sources/ccxt_rest.py) and
the live feed's backfill (live/feeds/backfill.py): the public client, the requests and the
paging over klines.

Binance spot is read from its raw kline rows (the request ccxt's fetch_ohlcv makes), parsed
by `parse_kline_row`, because those rows carry the taker-buy volume and trade counts that
fetch_ohlcv drops and that live candles built from trades have; every other exchange goes
through the unified `fetch_ohlcv` (taker volume and counts unknown).

Failure is quick and single: a network error is retried a bounded number of times within
the request timeout (tenacity, by `RETRY`), then raised as one `ExchangeUnreachableError`
"cannot reach <exchange> to ...: ... (offline?)"; an answer that says no is an
`ExchangeRefusedError` at once. ccxt is imported on first use: it takes over a second to
import, and most commands never need it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_before_delay

from tradepipe.binance import MalformedMessageError, parse_kline_row
from tradepipe.domain import Candle
from tradepipe.retries import Backoff
from tradepipe.timeframes import Timeframe

__all__ = [
    "PAGE_LIMIT",
    "ExchangeRefusedError",
    "ExchangeRestError",
    "ExchangeUnreachableError",
    "binance_klines",
    "call_exchange",
    "candle_pages",
    "make_public_client",
    "ohlcv_candles",
]

PAGE_LIMIT = 1000  # Binance spot's maximum klines per request
MAX_ATTEMPTS = 3
RETRY = Backoff(initial_seconds=0.25, maximum_seconds=1.0)
T = TypeVar("T")


class ExchangeRestError(RuntimeError):
    """A request could not be made or was refused; the message names the request."""


class ExchangeUnreachableError(ExchangeRestError):
    """Network trouble on every attempt."""


class ExchangeRefusedError(ExchangeRestError):
    """The exchange answered, and not with what was asked for."""


def make_public_client(
    exchange_id: str = "binance", timeout_seconds: float = 10.0, api_url: str | None = None
) -> Any:
    """A public (no keys) ccxt client with rate limiting and a request timeout.

    `api_url` (e.g. "http://127.0.0.1:8999") points every REST endpoint at another host
    with the same paths: a test server, the replay server or a mirror.
    """
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ExchangeRestError(f"unknown exchange {exchange_id!r} for ccxt; e.g. binance, kraken")
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_seconds * 1000)}
    if exchange_id == "binance":
        # Spot candles only: skip the futures exchangeInfo calls and the keyed currency call.
        config["options"] = {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False}
    client = getattr(ccxt, exchange_id)(config)
    if api_url is not None:
        client.urls["api"] = _rebase(client.urls["api"], api_url.rstrip("/"))
    return client


def candle_pages(
    fetch_page: Callable[[int], list[Candle]],
    timeframe: Timeframe,
    start_ms: int,
    end_ms: int,
    *,
    full_page: int | None = None,
) -> Iterator[list[Candle]]:
    """The candles starting in [start_ms, end_ms), one page per `fetch_page(since)`, in order.

    Stops at end_ms, or when the exchange has nothing newer: an empty page, a page that does
    not move forward, or (with `full_page`, for an exchange that always fills its pages) a
    page shorter than that.
    """
    since = timeframe.floor_ms(start_ms)
    while since < end_ms:
        page = fetch_page(since)
        if not page:
            return
        yield [c for c in page if start_ms <= c.start_ms < end_ms]
        newest = max(c.start_ms for c in page)
        if newest < since or (full_page is not None and len(page) < full_page):
            return
        since = newest + timeframe.milliseconds


def binance_klines(
    client: Any, market_id: str, timeframe: Timeframe, since: int, end_ms: int, limit: int
) -> list[Candle]:
    """One `/api/v3/klines` request: up to `limit` candles of `market_id` from `since`."""
    what = f"fetch klines {market_id} {timeframe.name} from {since} to {end_ms}"
    request = {
        "symbol": market_id,
        "interval": client.timeframes.get(timeframe.name, timeframe.name),
        "startTime": since,
        "endTime": end_ms - 1,
        "limit": limit,
    }
    rows = call_exchange(client, what, lambda: client.publicGetKlines(request))
    if not isinstance(rows, list):
        raise ExchangeRefusedError(
            f"{client.id} answered {what} with {type(rows).__name__}, not rows"
        )
    try:
        return [parse_kline_row(row, market_id, timeframe) for row in rows]
    except MalformedMessageError as error:
        raise ExchangeRefusedError(f"{client.id} sent a malformed kline: {error}") from None


def ohlcv_candles(
    client: Any, market: dict[str, Any], timeframe: Timeframe, since: int, limit: int
) -> list[Candle]:
    """One unified `fetch_ohlcv` request (any exchange ccxt knows)."""
    what = f"fetch {market['symbol']} {timeframe.name} candles from {since}"
    rows = call_exchange(
        client,
        what,
        lambda: client.fetch_ohlcv(market["symbol"], timeframe.name, since=since, limit=limit),
    )
    symbol = market["id"]
    return [
        Candle(
            symbol,
            timeframe,
            int(start),
            float(open_),
            float(high),
            float(low),
            float(close),
            float(volume),
        )
        for start, open_, high, low, close, volume, *_ in rows
    ]


def call_exchange(client: Any, what: str, action: Callable[[], T]) -> T:
    """Run one request, retried on network errors within the client's request timeout."""
    import ccxt

    retrying = Retrying(
        stop=stop_after_attempt(MAX_ATTEMPTS) | stop_before_delay(client.timeout / 1000),
        wait=RETRY.wait(),
        retry=retry_if_exception(lambda error: isinstance(error, ccxt.NetworkError)),
        reraise=True,
    )
    try:
        return retrying(action)
    except ccxt.NetworkError as error:
        raise ExchangeUnreachableError(
            f"cannot reach {client.id} to {what}: {_network_reason(error)} (offline?)"
        ) from None
    except ccxt.BaseError as error:
        raise ExchangeRefusedError(f"{client.id} refused to {what}: {first_line(error)}") from None


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
    reason = errno.group(0).strip() if errno else first_line(error)
    return f"{where}: {reason}" if where else reason


def first_line(error: BaseException) -> str:
    """An error's first line, at most 300 characters (ccxt's messages carry whole bodies)."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def _rebase(urls: Any, base: str) -> Any:
    """`urls` (ccxt's nested dict of API roots) with every scheme://host replaced by base."""
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^[a-z]+://[^/]+", base, urls)
    return urls
