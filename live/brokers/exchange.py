"""The exchange side of the ccxt broker: its config, the ccxt client, and how errors read.

One `ExchangeConfig` per venue (Binance testnet or live, one credential set). The client is
ccxt's `binance` (async), limited to spot (no futures or margin endpoints are ever called,
so a testnet account or a key with spot rights only works), in sandbox mode for testnet.
`rest_url` replaces every spot REST base URL: that is how tests and local runs point the
real ccxt client at the exchange simulator (`live.replay.exchange`) on loopback.

Errors are read in three kinds, because the broker must treat them differently:
- `Transient`: the outcome is unknown or the venue asked us to slow down (network errors,
  timeouts, HTTP 5xx, Binance's -1000/-1001 "try again", 429/418 rate limits): retried
  with backoff and jitter, honouring `Retry-After`; an order is looked up by its client
  order id before it is sent again;
- `Refused`: the exchange answered and said no (filters, balance, unknown symbol): never
  retried, reported with the exchange's own message;
- `Malformed`: an answer that is not what the endpoint promises: a clear error naming the
  endpoint, never a guess.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async

from live.brokers.protocol import BrokerError
from tradepipe.orders import FeeSchedule
from tradepipe.retries import Backoff

__all__ = [
    "ExchangeConfig",
    "MalformedResponseError",
    "exchange_message",
    "is_refusal",
    "is_transient",
    "make_client",
    "retry_after_seconds",
]

TESTNET_URL = "https://testnet.binance.vision"
LIVE_URL = "https://api.binance.com"


class MalformedResponseError(BrokerError):
    """The exchange answered with something the endpoint never returns."""


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """One venue: `name` (e.g. "testnet:BINANCE_TESTNET") appears in every message."""

    name: str
    sandbox: bool
    rest_url: str | None = None  # overrides the spot REST base URL (the simulator)
    timeout_seconds: float = 10.0
    recv_window_ms: int = 5_000
    poll_seconds: float = 1.0  # order status polling
    fills_lookback_seconds: float = 86_400.0  # recent fills read by reconciliation
    # ccxt's client-side limiter, in milliseconds per unit of Binance request weight: 10 is
    # Binance's 6,000 weight a minute. 0 turns it off (the local simulator has no limit).
    rate_limit_ms: float = 10.0
    # Reads and cancels whose outcome is unknown: `retry_attempts` tries each, waiting by
    # `retry` between them (doubling, jittered so engines that lost the venue together do
    # not return together), never less than the exchange's Retry-After.
    retry: Backoff = field(default_factory=lambda: Backoff(0.25, 10.0))
    retry_attempts: int = 5
    fees: FeeSchedule = field(default_factory=lambda: FeeSchedule(0.001, 0.001))
    # A take-profit goes out as an OCO with its position's stop-loss resting beside it
    # (live/brokers/protection.py); the stop-limit's limit lies `stop_limit_pct` percent
    # beyond its trigger, so a fall through the stop still fills it.
    protection: bool = True
    stop_limit_pct: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.stop_limit_pct) and 0 < self.stop_limit_pct < 50):
            raise ValueError(f"exchange stop_limit_pct must be in (0, 50): {self.stop_limit_pct!r}")
        for name in ("timeout_seconds", "poll_seconds", "fills_lookback_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"exchange setting {name} must be > 0: {value!r}")
        if not (math.isfinite(self.rate_limit_ms) and self.rate_limit_ms >= 0):
            raise ValueError(f"exchange rate_limit_ms must be >= 0: {self.rate_limit_ms!r}")
        if self.retry_attempts < 1:
            raise ValueError(f"exchange retry_attempts must be >= 1: {self.retry_attempts!r}")
        if not 0 < self.recv_window_ms <= 60_000:
            raise ValueError("exchange recv_window_ms must be within 1..60000 (Binance's limit)")

    @property
    def base_url(self) -> str:
        return (self.rest_url or (TESTNET_URL if self.sandbox else LIVE_URL)).rstrip("/")


def make_client(config: ExchangeConfig, api_key: str, secret: str) -> Any:
    """ccxt's async Binance client for `config`, spot only."""
    client = ccxt_async.binance(
        {
            "apiKey": api_key,
            "secret": secret,
            "timeout": int(config.timeout_seconds * 1000),
            "enableRateLimit": config.rate_limit_ms > 0,
            "rateLimit": config.rate_limit_ms or 10.0,
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,  # a wallet (sapi) endpoint: testnet has none
                "recvWindow": config.recv_window_ms,
                # signed requests carry our clock: follow the exchange's (-1021 otherwise)
                "adjustForTimeDifference": True,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
            },
        }
    )
    if config.sandbox:
        client.set_sandbox_mode(True)
    if config.rest_url is not None:
        base = config.base_url
        client.urls["api"]["public"] = f"{base}/api/v3"
        client.urls["api"]["private"] = f"{base}/api/v3"
        client.urls["api"]["v1"] = f"{base}/api/v1"
    return client


def is_transient(error: BaseException) -> bool:
    """Worth retrying: network trouble, a timeout, 5xx, a rate limit, "try again"."""
    if isinstance(error, ccxt.BadResponse):
        return False  # malformed: the same request gets the same answer
    return isinstance(error, ccxt.OperationFailed | TimeoutError | ConnectionError)


def is_refusal(error: BaseException) -> bool:
    """The exchange answered and said no (never retried)."""
    return isinstance(error, ccxt.ExchangeError) and not isinstance(error, ccxt.AuthenticationError)


def exchange_message(error: BaseException) -> str:
    """The exchange's own `msg` (and code) when the error carries Binance's JSON."""
    text = str(error)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            return text
        if isinstance(body, dict) and "msg" in body:
            return f"{body['msg']} (code {body.get('code')})"
    return text.removeprefix("binance ")


def retry_after_seconds(client: Any, error: BaseException) -> float | None:
    """Binance's Retry-After (seconds) after a 429/418; None for other errors.

    ccxt keeps only the last response's headers per client; with concurrent requests this
    may be another answer's, so it is a lower bound to honour, not an exact wait."""
    if not isinstance(error, ccxt.DDoSProtection):
        return None
    headers = getattr(client, "last_response_headers", None) or {}
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None
